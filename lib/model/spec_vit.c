/*
 * spec_vit.c — "vit:patch=P,dim=D,depth=L,heads=H,mlp=M[,pool=cls|mean]":
 * a pre-norm vision transformer.
 *
 *   patch embedding (P x P, stride P) -> [class token] -> + position embedding
 *   L blocks:  x = x + attn.o(attention(attn.q/k/v(LN1(x))))
 *              x = x + mlp.fc2(GELU(mlp.fc1(LN2(x))))
 *   LN -> class token (pool=cls) or mean of tokens (pool=mean) -> head
 *
 * Default: vit:patch=7,dim=64,depth=4,heads=4,mlp=128,pool=cls (28x28 -> 16
 * patches + 1 class token). Names: patch, cls, pos, blocks.0.attn.q, ...
 */
#include "model/graph.h"
#include "model/spec.h"

#include <string.h>

int spec_build_vit(oialr_model *m, const char *args) {
    long patch = 7, dim = 64, depth = 4, heads = 4, mlp = 128;
    int pool_cls = 1;
    spec_iter it;
    spec_iter_init(&it, args);
    const char *key, *val;
    int rc;
    while ((rc = spec_iter_next(&it, &key, &val)) > 0) {
        long *dst = NULL, hi = 0;
        if (!key) return oialr_seterr(OIALR_ERR_SPEC, "vit: expected key=value, got '%s'", val);
        if (strcmp(key, "patch") == 0) dst = &patch, hi = 64;
        else if (strcmp(key, "dim") == 0) dst = &dim, hi = 4096;
        else if (strcmp(key, "depth") == 0) dst = &depth, hi = 64;
        else if (strcmp(key, "heads") == 0) dst = &heads, hi = 64;
        else if (strcmp(key, "mlp") == 0) dst = &mlp, hi = 16384;
        else if (strcmp(key, "pool") == 0) {
            if (strcmp(val, "cls") == 0) pool_cls = 1;
            else if (strcmp(val, "mean") == 0) pool_cls = 0;
            else return oialr_seterr(OIALR_ERR_SPEC, "vit: pool must be cls or mean");
            continue;
        } else {
            return oialr_seterr(OIALR_ERR_SPEC, "vit: unknown option '%s' (known: patch, dim, depth, heads, mlp, pool)", key);
        }
        if (spec_parse_int(val, 1, hi, dst)) return oialr_seterr(OIALR_ERR_SPEC, "vit: %s must be 1..%ld", key, hi);
    }
    if (rc < 0) return rc;
    int x = graph_patch(m, "patch", 0, (int)patch, (int)dim);
    if (x < 0) return x;
    if (pool_cls && (x = graph_cls(m, "cls", x)) < 0) return x;
    if ((x = graph_pos(m, "pos", x)) < 0) return x;
    char nm[48];
    for (int l = 0; l < depth; l++) {
        int res = x;
        snprintf(nm, sizeof nm, "blocks.%d.ln1", l);
        if ((x = graph_layernorm(m, nm, x)) < 0) return x;
        snprintf(nm, sizeof nm, "blocks.%d.attn", l);
        if ((x = graph_attention(m, nm, x, (int)heads)) < 0) return x;
        if ((x = graph_add(m, x, res)) < 0) return x;
        res = x;
        snprintf(nm, sizeof nm, "blocks.%d.ln2", l);
        if ((x = graph_layernorm(m, nm, x)) < 0) return x;
        snprintf(nm, sizeof nm, "blocks.%d.mlp.fc1", l);
        if ((x = graph_dense_kind(m, nm, "mlp.fc1", x, (int)mlp, 1)) < 0) return x;
        if ((x = graph_act(m, OP_GELU, x)) < 0) return x;
        snprintf(nm, sizeof nm, "blocks.%d.mlp.fc2", l);
        if ((x = graph_dense_kind(m, nm, "mlp.fc2", x, (int)dim, 1)) < 0) return x;
        if ((x = graph_add(m, x, res)) < 0) return x;
    }
    if ((x = graph_layernorm(m, "ln", x)) < 0) return x;
    if ((x = graph_tokens(m, pool_cls ? OP_TOKPICK : OP_TOKMEAN, x)) < 0) return x;
    if ((x = graph_dense(m, "head", x, m->nclass, 1)) < 0) return x;
    snprintf(m->spec, sizeof m->spec, "vit:patch=%ld,dim=%ld,depth=%ld,heads=%ld,mlp=%ld,pool=%s", patch, dim, depth,
             heads, mlp, pool_cls ? "cls" : "mean");
    return OIALR_OK;
}
