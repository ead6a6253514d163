/*
 * dataset.c — dataset by name and directory, the synthetic generator, stats.
 */
#include "internal.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static int find_file(char *out, size_t n, const char *dir, const char *base) {
    snprintf(out, n, "%s/%s.gz", dir, base);
    if (access(out, F_OK) == 0) return 1;
    snprintf(out, n, "%s/%s", dir, base);
    return access(out, F_OK) == 0;
}

int oialr_dataset_load(oialr_dataset *ds, const char *name, const char *dir, int split) {
    memset(ds, 0, sizeof *ds);
    char img[4096], lab[4096];
    int fashion = strcmp(name, "fashion-mnist") == 0, mnist = strcmp(name, "mnist") == 0;
    if (fashion || mnist || strcmp(name, "idx") == 0) {
        if (!dir) {
            if (!fashion)
                return oialr_seterr(OIALR_ERR_ARG, "%s: give the directory of its IDX files with --data DIR", name);
            dir = OIALR_FASHION_MNIST_DIR;
        }
        const char *pre = split == OIALR_SPLIT_TRAIN ? "train" : "t10k";
        char bi[64], bl[64];
        snprintf(bi, sizeof bi, "%s-images-idx3-ubyte", pre);
        snprintf(bl, sizeof bl, "%s-labels-idx1-ubyte", pre);
        int hi = find_file(img, sizeof img, dir, bi), hl = find_file(lab, sizeof lab, dir, bl);
        if (!hi || !hl) {
            if (strcmp(dir, OIALR_FASHION_MNIST_DIR) == 0)
                return oialr_seterr(OIALR_ERR_NOTFOUND,
                                    "%s: Fashion-MNIST not found; install it with 'apt-get install "
                                    "dataset-fashion-mnist' or give IDX files with --data DIR",
                                    dir);
            return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no %s[.gz] in this directory", dir, hi ? bl : bi);
        }
        /* MNIST and Fashion-MNIST have 10 classes; 'idx' (EMNIST, ...) counts them */
        return data_idx_load(ds, img, lab, fashion || mnist ? 10 : 0, fashion ? "Fashion-MNIST" : "MNIST");
    }
    if (strcmp(name, "cifar10") == 0 || strcmp(name, "cifar-10") == 0) {
        if (!dir) return oialr_seterr(OIALR_ERR_ARG, "cifar10: give the directory of its binary batches with --data DIR");
        char paths[5][4096];
        const char *pp[5];
        int np = 0;
        if (split == OIALR_SPLIT_TRAIN) {
            for (int i = 1; i <= 5; i++) {
                snprintf(paths[np], sizeof paths[np], "%s/data_batch_%d.bin", dir, i);
                if (access(paths[np], F_OK) == 0) { pp[np] = paths[np]; np++; }
            }
        } else {
            snprintf(paths[0], sizeof paths[0], "%s/test_batch.bin", dir);
            if (access(paths[0], F_OK) == 0) { pp[0] = paths[0]; np = 1; }
        }
        if (np == 0)
            return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no CIFAR-10 %s batches (%s)", dir,
                                split == OIALR_SPLIT_TRAIN ? "training" : "test",
                                split == OIALR_SPLIT_TRAIN ? "data_batch_1.bin ..." : "test_batch.bin");
        return oialr_cifar10_load(ds, pp, np);
    }
    return oialr_seterr(OIALR_ERR_ARG, "unknown dataset '%s' (known: fashion-mnist, mnist, idx, cifar10, synthetic)",
                        name);
}

/* Each class has a smooth random prototype; samples are the prototype plus
 * noise, clipped to bytes. Learnable, deterministic, no download. */
int oialr_dataset_synthetic(oialr_dataset *ds, int64_t n, int c, int h, int w, int nclass, float noise,
                            uint64_t seed) {
    memset(ds, 0, sizeof *ds);
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || nclass < 2 || nclass > 255)
        return oialr_seterr(OIALR_ERR_ARG, "synthetic: bad shape");
    size_t per = (size_t)c * h * w;
    ds->x = malloc(per * (size_t)n);
    ds->y = malloc((size_t)n);
    float *proto = malloc(per * (size_t)nclass * sizeof(float));
    if (!ds->x || !ds->y || !proto) {
        free(proto);
        oialr_dataset_free(ds);
        return OIALR_ERR_NOMEM;
    }
    oialr_rng r;
    oialr_rng_seed(&r, seed, 7);
    for (int k = 0; k < nclass; k++) {
        /* sum of a few random plane waves: smooth, distinct per class */
        float fx[3], fy[3], ph[3];
        for (int j = 0; j < 3; j++) {
            fx[j] = 6.2831853f * (0.5f + 2.0f * oialr_rng_uniform(&r)) / (float)w;
            fy[j] = 6.2831853f * (0.5f + 2.0f * oialr_rng_uniform(&r)) / (float)h;
            ph[j] = 6.2831853f * oialr_rng_uniform(&r);
        }
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < h; i++)
                for (int jx = 0; jx < w; jx++) {
                    float v = 0.0f;
                    for (int j = 0; j < 3; j++) v += sinf(fx[j] * (float)jx + fy[j] * (float)i + ph[j] + (float)ch);
                    proto[(size_t)k * per + ((size_t)ch * h + i) * w + jx] = 128.0f + 40.0f * v;
                }
    }
    for (int64_t s = 0; s < n; s++) {
        int k = (int)oialr_rng_below(&r, (uint32_t)nclass);
        ds->y[s] = (uint8_t)k;
        for (size_t i = 0; i < per; i++) {
            float v = proto[(size_t)k * per + i] + noise * 255.0f * oialr_rng_normal(&r);
            ds->x[(size_t)s * per + i] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
        }
    }
    free(proto);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->nclass = nclass;
    return OIALR_OK;
}

int oialr_dataset_take_tail(oialr_dataset *ds, int64_t n, oialr_dataset *tail) {
    memset(tail, 0, sizeof *tail);
    if (n <= 0 || n >= ds->n) return oialr_seterr(OIALR_ERR_ARG, "cannot take %lld of %lld samples", (long long)n, (long long)ds->n);
    size_t per = (size_t)ds->c * ds->h * ds->w;
    tail->x = malloc(per * (size_t)n);
    tail->y = malloc((size_t)n);
    if (!tail->x || !tail->y) {
        oialr_dataset_free(tail);
        return OIALR_ERR_NOMEM;
    }
    int64_t first = ds->n - n;
    memcpy(tail->x, ds->x + per * (size_t)first, per * (size_t)n);
    memcpy(tail->y, ds->y + first, (size_t)n);
    tail->n = n;
    tail->c = ds->c;
    tail->h = ds->h;
    tail->w = ds->w;
    tail->nclass = ds->nclass;
    ds->n = first;
    return OIALR_OK;
}

void oialr_dataset_free(oialr_dataset *ds) {
    free(ds->x);
    free(ds->y);
    memset(ds, 0, sizeof *ds);
}

void oialr_dataset_stats(const oialr_dataset *ds, float *mean, float *std) {
    size_t hw = (size_t)ds->h * ds->w;
    for (int ch = 0; ch < ds->c; ch++) {
        double s = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < ds->n; i++) {
            const uint8_t *p = ds->x + ((size_t)i * ds->c + ch) * hw;
            uint64_t a = 0, a2 = 0;
            for (size_t k = 0; k < hw; k++) {
                a += p[k];
                a2 += (uint64_t)p[k] * p[k];
            }
            s += (double)a;
            s2 += (double)a2;
        }
        double cnt = (double)ds->n * (double)hw;
        double mu = s / cnt / 255.0;
        double var = s2 / cnt / (255.0 * 255.0) - mu * mu;
        mean[ch] = (float)mu;
        std[ch] = (float)sqrt(var > 1e-12 ? var : 1e-12);
    }
}
