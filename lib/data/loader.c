/*
 * loader.c — views of a dataset through index lists: the seeded
 * train/validation split, shuffled epochs, normalised float batches.
 */
#include "oialr/data.h"

#include <string.h>

static void shuffle(int64_t *idx, int64_t n, oialr_rng *r) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)oialr_rng_below(r, (uint32_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static void loader_setup(oialr_loader *l, const oialr_dataset *ds, int64_t *idx, int64_t n, int shuf,
                         uint64_t seed, uint64_t stream) {
    memset(l, 0, sizeof *l);
    l->ds = ds;
    l->idx = idx;
    l->n = n;
    l->shuffle = shuf;
    oialr_rng_seed(&l->rng, seed, stream);
    for (int i = 0; i < 4; i++) {
        l->mean[i] = 0.0f;
        l->std[i] = 1.0f;
    }
}

int oialr_loader_init(oialr_loader *l, const oialr_dataset *ds, int shuf, uint64_t seed) {
    int64_t *idx = malloc((size_t)(ds->n ? ds->n : 1) * sizeof *idx);
    if (!idx) return OIALR_ERR_NOMEM;
    for (int64_t i = 0; i < ds->n; i++) idx[i] = i;
    loader_setup(l, ds, idx, ds->n, shuf, seed, 11);
    return OIALR_OK;
}

int oialr_loader_split(oialr_loader *train, oialr_loader *val, const oialr_dataset *ds, int64_t nval,
                       uint64_t seed) {
    if (nval < 0 || nval >= ds->n)
        return oialr_seterr(OIALR_ERR_ARG, "validation size %lld must be in [0, %lld)", (long long)nval,
                            (long long)ds->n);
    int64_t *perm = malloc((size_t)ds->n * sizeof *perm);
    int64_t *vidx = malloc((size_t)(nval ? nval : 1) * sizeof *vidx);
    if (!perm || !vidx) {
        free(perm);
        free(vidx);
        return OIALR_ERR_NOMEM;
    }
    for (int64_t i = 0; i < ds->n; i++) perm[i] = i;
    oialr_rng r;
    oialr_rng_seed(&r, seed, 13);
    shuffle(perm, ds->n, &r);
    memcpy(vidx, perm + (ds->n - nval), (size_t)nval * sizeof *vidx);
    loader_setup(train, ds, perm, ds->n - nval, 1, seed, 11);
    loader_setup(val, ds, vidx, nval, 0, seed, 12);
    return OIALR_OK;
}

void oialr_loader_free(oialr_loader *l) {
    free(l->idx);
    l->idx = NULL;
    l->n = 0;
}

void oialr_loader_set_norm(oialr_loader *l, const float *mean, const float *std) {
    for (int i = 0; i < l->ds->c && i < 4; i++) {
        l->mean[i] = mean[i];
        l->std[i] = std[i];
    }
}

void oialr_loader_reset(oialr_loader *l) {
    l->cursor = 0;
    if (l->shuffle) shuffle(l->idx, l->n, &l->rng);
}

int oialr_loader_next(oialr_loader *l, float *x, uint8_t *y, int B) {
    const oialr_dataset *ds = l->ds;
    size_t hw = (size_t)ds->h * ds->w, per = hw * ds->c;
    int got = 0;
    float scale[4], shift[4];
    for (int ch = 0; ch < ds->c && ch < 4; ch++) {
        scale[ch] = 1.0f / (255.0f * l->std[ch]);
        shift[ch] = -l->mean[ch] / l->std[ch];
    }
    while (got < B && l->cursor < l->n) {
        int64_t s = l->idx[l->cursor++];
        const uint8_t *src = ds->x + (size_t)s * per;
        float *dst = x + (size_t)got * per;
        for (int ch = 0; ch < ds->c; ch++) {
            float a = scale[ch < 4 ? ch : 3], b = shift[ch < 4 ? ch : 3];
            for (size_t k = 0; k < hw; k++) dst[ch * hw + k] = (float)src[ch * hw + k] * a + b;
        }
        y[got++] = ds->y[s];
    }
    return got;
}
