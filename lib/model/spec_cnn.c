/*
 * spec_cnn.c — "cnn:W1,W2,...[,blocks=N][,act=relu|gelu|tanh]": a small ResNet.
 *
 *   stem:  conv3x3(C -> W1) - BN - ReLU
 *   stage s (width Ws, stride 2 from the second stage on), N basic blocks:
 *          x -> conv3x3(stride) - BN - ReLU - conv3x3 - BN -> + skip -> ReLU
 *          skip = x, or conv1x1(stride) - BN when the shape changes
 *   head:  global average pool - dense(nclass)
 *
 * Convolutions feeding a batch norm have no bias (as in torchvision).
 * Default: cnn:16,32,64,blocks=1. Names: stem.conv, s1.b0.conv1, ...
 */
#include "model/graph.h"
#include "model/spec.h"

#include <string.h>

static int conv_bn(oialr_model *m, const char *name, int x, int OC, int K, int stride, int act) {
    char nm[OIALR_NAME_MAX];
    snprintf(nm, sizeof nm, "%s.conv", name);
    if ((x = graph_conv(m, nm, x, OC, K, stride, K / 2, 0)) < 0) return x;
    snprintf(nm, sizeof nm, "%s.bn", name);
    if ((x = graph_batchnorm(m, nm, x)) < 0) return x;
    return act ? graph_act(m, act, x) : x;
}

int spec_build_cnn(oialr_model *m, const char *args) {
    int width[8], nw = 0;
    long blocks = 1;
    int act = OP_RELU;
    spec_iter it;
    spec_iter_init(&it, args);
    const char *key, *val;
    int rc;
    while ((rc = spec_iter_next(&it, &key, &val)) > 0) {
        long v;
        if (!key) {
            if (spec_parse_int(val, 1, 4096, &v)) return oialr_seterr(OIALR_ERR_SPEC, "cnn: bad width '%s'", val);
            if (nw == 8) return oialr_seterr(OIALR_ERR_SPEC, "cnn: at most 8 stages");
            width[nw++] = (int)v;
        } else if (strcmp(key, "blocks") == 0) {
            if (spec_parse_int(val, 1, 16, &blocks)) return oialr_seterr(OIALR_ERR_SPEC, "cnn: blocks must be 1..16");
        } else if (strcmp(key, "act") == 0) {
            if (strcmp(val, "relu") == 0) act = OP_RELU;
            else if (strcmp(val, "gelu") == 0) act = OP_GELU;
            else if (strcmp(val, "tanh") == 0) act = OP_TANH;
            else return oialr_seterr(OIALR_ERR_SPEC, "cnn: act must be relu, gelu or tanh (got '%s')", val);
        } else {
            return oialr_seterr(OIALR_ERR_SPEC, "cnn: unknown option '%s' (known: blocks, act)", key);
        }
    }
    if (rc < 0) return rc;
    if (nw == 0) {
        width[0] = 16;
        width[1] = 32;
        width[2] = 64;
        nw = 3;
    }
    int x = conv_bn(m, "stem", 0, width[0], 3, 1, act);
    if (x < 0) return x;
    char name[48];
    for (int s = 0; s < nw; s++) {
        for (int b = 0; b < blocks; b++) {
            int stride = (s > 0 && b == 0) ? 2 : 1;
            if (m->nodes[x].shape[1] < 2 || m->nodes[x].shape[2] < 2) stride = 1; /* tiny inputs */
            int in = x;
            snprintf(name, sizeof name, "s%d.b%d.1", s + 1, b);
            if ((x = conv_bn(m, name, in, width[s], 3, stride, act)) < 0) return x;
            snprintf(name, sizeof name, "s%d.b%d.2", s + 1, b);
            if ((x = conv_bn(m, name, x, width[s], 3, 1, 0)) < 0) return x;
            int skip = in;
            if (m->nodes[in].size != m->nodes[x].size) {
                snprintf(name, sizeof name, "s%d.b%d.down", s + 1, b);
                if ((skip = conv_bn(m, name, in, width[s], 1, stride, 0)) < 0) return skip;
            }
            if ((x = graph_add(m, x, skip)) < 0) return x;
            if ((x = graph_act(m, act, x)) < 0) return x;
        }
    }
    if ((x = graph_gap(m, x)) < 0) return x;
    if ((x = graph_dense(m, "head", x, m->nclass, 1)) < 0) return x;
    int len = snprintf(m->spec, sizeof m->spec, "cnn:");
    for (int s = 0; s < nw && len < (int)sizeof m->spec; s++)
        len += snprintf(m->spec + len, sizeof m->spec - (size_t)len, "%d,", width[s]);
    if (len < (int)sizeof m->spec)
        snprintf(m->spec + len, sizeof m->spec - (size_t)len, "blocks=%ld,act=%s", blocks, oialr_ops[act]->name);
    return OIALR_OK;
}
