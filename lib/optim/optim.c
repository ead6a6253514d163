/*
 * optim.c — SGD with momentum/Nesterov (PyTorch's formulation: v = mu v + g;
 * Nesterov uses g + mu v; weight decay added to g as L2) and AdamW (decoupled
 * decay w -= lr wd w, bias-corrected moments). One flat loop per parameter
 * over the shared layout; frozen parameters are skipped.
 */
#include "oialr/optim.h"
#include "base/hot.h"

#include <math.h>
#include <string.h>

const char *const oialr_opt_names[OIALR_OPT_COUNT + 1] = {"sgd", "adamw", NULL};
const char *const oialr_sched_names[OIALR_SCHED_COUNT + 1] = {"constant", "step", "cosine", NULL};

void oialr_optim_defaults(oialr_optim_config *cfg, int kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    if (kind == OIALR_OPT_ADAMW) {
        cfg->lr = 1e-3f;
        cfg->beta1 = 0.9f;
        cfg->beta2 = 0.999f;
        cfg->eps = 1e-8f;
        cfg->weight_decay = 0.01f;
    } else {
        cfg->lr = 0.05f;
        cfg->momentum = 0.9f;
    }
}

static float *zalloc(size_t n) {
    size_t bytes;
    if (oialr_mul_size(n ? n : 1, sizeof(float), &bytes)) return NULL;
    return calloc(1, bytes);
}

int oialr_optim_init(oialr_optim *o, const oialr_optim_config *cfg, const oialr_params *p) {
    memset(o, 0, sizeof *o);
    if (cfg->kind != OIALR_OPT_SGD && cfg->kind != OIALR_OPT_ADAMW)
        return oialr_seterr(OIALR_ERR_ARG, "unknown optimizer %d", cfg->kind);
    if (!(cfg->lr >= 0.0f) || !(cfg->weight_decay >= 0.0f))
        return oialr_seterr(OIALR_ERR_ARG, "learning rate and weight decay must be >= 0");
    o->cfg = *cfg;
    o->total = p->total;
    if (cfg->kind == OIALR_OPT_ADAMW || cfg->momentum != 0.0f) {
        if (!(o->m = zalloc(p->total))) return OIALR_ERR_NOMEM;
    }
    if (cfg->kind == OIALR_OPT_ADAMW) {
        if (!(o->v = zalloc(p->total))) {
            oialr_optim_free(o);
            return OIALR_ERR_NOMEM;
        }
    }
    return OIALR_OK;
}

void oialr_optim_free(oialr_optim *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

OIALR_HOT static void sgd_param(const oialr_optim_config *c, float *restrict w, const float *restrict g,
                                float *restrict buf, size_t n, float lr, float wd) {
    float mu = c->momentum;
    if (!buf) {
        for (size_t i = 0; i < n; i++) w[i] -= lr * (g[i] + wd * w[i]);
    } else if (c->nesterov) {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            float v = mu * buf[i] + gi;
            buf[i] = v;
            w[i] -= lr * (gi + mu * v);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float v = mu * buf[i] + g[i] + wd * w[i];
            buf[i] = v;
            w[i] -= lr * v;
        }
    }
}

OIALR_HOT static void adamw_param(const oialr_optim_config *c, float *restrict w, const float *restrict g,
                                  float *restrict m, float *restrict v, size_t n, float lr, float wd, int64_t t) {
    float b1 = c->beta1, b2 = c->beta2;
    float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    float step = lr / bc1;
    float rbc2 = 1.0f / sqrtf(bc2);
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= lr * wd * w[i];
        w[i] -= step * mi / (sqrtf(vi) * rbc2 + c->eps);
    }
}

void oialr_optim_step(oialr_optim *o, oialr_params *p, float lr) {
    OIALR_ASSERT(p->total == o->total);
    o->t++;
    for (int k = 0; k < p->count; k++) {
        const oialr_param_info *pi = &p->info[k];
        if (!pi->trainable) continue;
        float wd = pi->decay ? o->cfg.weight_decay : 0.0f;
        float *w = p->data + pi->offset;
        const float *g = p->grad + pi->offset;
        if (o->cfg.kind == OIALR_OPT_SGD)
            sgd_param(&o->cfg, w, g, o->m ? o->m + pi->offset : NULL, pi->size, lr, wd);
        else
            adamw_param(&o->cfg, w, g, o->m + pi->offset, o->v + pi->offset, pi->size, lr, wd, o->t);
    }
}

void oialr_optim_reset_param(oialr_optim *o, const oialr_params *p, int index) {
    const oialr_param_info *pi = &p->info[index];
    if (o->m) memset(o->m + pi->offset, 0, pi->size * sizeof(float));
    if (o->v) memset(o->v + pi->offset, 0, pi->size * sizeof(float));
}

float oialr_schedule_lr(const oialr_schedule *s, int64_t step) {
    float lr = s->base_lr;
    if (s->warmup > 0 && step < s->warmup) return lr * (float)(step + 1) / (float)s->warmup;
    switch (s->kind) {
    case OIALR_SCHED_STEP:
        if (s->step_size > 0) lr *= powf(s->gamma, (float)((step - s->warmup) / s->step_size));
        break;
    case OIALR_SCHED_COSINE: {
        int64_t span = s->total - s->warmup;
        if (span <= 0) break;
        double t = (double)(step - s->warmup) / (double)span;
        if (t > 1.0) t = 1.0;
        lr = s->min_lr + 0.5f * (lr - s->min_lr) * (float)(1.0 + cos(M_PI * t));
        break;
    }
    default: break;
    }
    return lr;
}
