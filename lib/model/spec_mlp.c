/*
 * spec_mlp.c — "mlp:H1,H2,...[,act=relu|gelu|tanh][,dropout=P]".
 * Hidden layers are named fc1..fcL, the head fc{L+1}. Default: mlp:512,512.
 */
#include "model/graph.h"
#include "model/spec.h"

#include <string.h>

int spec_build_mlp(oialr_model *m, const char *args) {
    int hidden[32], nh = 0, act = OP_RELU;
    float dropout = 0.0f;
    spec_iter it;
    spec_iter_init(&it, args);
    const char *key, *val;
    int rc;
    while ((rc = spec_iter_next(&it, &key, &val)) > 0) {
        if (!key) {
            long v;
            if (spec_parse_int(val, 1, 1 << 20, &v)) return oialr_seterr(OIALR_ERR_SPEC, "mlp: bad width '%s'", val);
            if (nh == 32) return oialr_seterr(OIALR_ERR_SPEC, "mlp: more than 32 hidden layers");
            hidden[nh++] = (int)v;
        } else if (strcmp(key, "act") == 0) {
            if (strcmp(val, "relu") == 0) act = OP_RELU;
            else if (strcmp(val, "gelu") == 0) act = OP_GELU;
            else if (strcmp(val, "tanh") == 0) act = OP_TANH;
            else return oialr_seterr(OIALR_ERR_SPEC, "mlp: act must be relu, gelu or tanh (got '%s')", val);
        } else if (strcmp(key, "dropout") == 0) {
            double d;
            if (spec_parse_float(val, 0.0, 0.95, &d)) return oialr_seterr(OIALR_ERR_SPEC, "mlp: dropout must be in [0, 0.95]");
            dropout = (float)d;
        } else {
            return oialr_seterr(OIALR_ERR_SPEC, "mlp: unknown option '%s' (known: act, dropout)", key);
        }
    }
    if (rc < 0) return rc;
    if (nh == 0) {
        hidden[0] = hidden[1] = 512;
        nh = 2;
    }
    int x = 0;
    char name[32];
    for (int i = 0; i < nh; i++) {
        snprintf(name, sizeof name, "fc%d", i + 1);
        if ((x = graph_dense(m, name, x, hidden[i], 1)) < 0) return x;
        if ((x = graph_act(m, act, x)) < 0) return x;
        if ((x = graph_dropout(m, x, dropout)) < 0) return x;
    }
    snprintf(name, sizeof name, "fc%d", nh + 1);
    if ((x = graph_dense(m, name, x, m->nclass, 1)) < 0) return x;
    /* normalised spec */
    int len = snprintf(m->spec, sizeof m->spec, "mlp:");
    for (int i = 0; i < nh && len < (int)sizeof m->spec; i++)
        len += snprintf(m->spec + len, sizeof m->spec - (size_t)len, "%s%d", i ? "," : "", hidden[i]);
    if (len < (int)sizeof m->spec)
        snprintf(m->spec + len, sizeof m->spec - (size_t)len, ",act=%s,dropout=%g", oialr_ops[act]->name, (double)dropout);
    return OIALR_OK;
}
