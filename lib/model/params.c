/*
 * params.c — the parameter table: registration while a model is built, one
 * allocation for data and gradients, lookups, glob matching of names, and
 * the matrix of a weight (formed from its factors once it is low-rank).
 */
#include "model/graph.h"

#include <cblas.h>
#include <fnmatch.h>
#include <string.h>

int params_add(oialr_params *p, const char *name, const char *layer, int kind, int ndim, const int64_t *shape) {
    if (p->count == p->capacity) {
        int cap = p->capacity ? 2 * p->capacity : 16;
        oialr_param_info *n = realloc(p->info, (size_t)cap * sizeof *n);
        if (!n) return OIALR_ERR_NOMEM;
        p->info = n;
        p->capacity = cap;
    }
    oialr_param_info *pi = &p->info[p->count];
    memset(pi, 0, sizeof *pi);
    snprintf(pi->name, sizeof pi->name, "%s", name);
    snprintf(pi->layer, sizeof pi->layer, "%s", layer);
    pi->kind = kind;
    pi->ndim = ndim;
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) {
        pi->shape[i] = shape[i];
        size *= shape[i];
    }
    if (kind == OIALR_PARAM_MATRIX) {
        pi->rows = shape[0];
        pi->cols = size / shape[0];
    } else {
        pi->rows = 1;
        pi->cols = size;
    }
    pi->size = pi->capacity = (size_t)size;
    pi->decay = kind == OIALR_PARAM_MATRIX;
    pi->trainable = kind != OIALR_PARAM_BUFFER;
    return p->count++;
}

int params_alloc(oialr_params *p) {
    size_t total = 0;
    for (int i = 0; i < p->count; i++) {
        /* keep every view 16-float (64-byte) aligned */
        total = (total + 15) & ~(size_t)15;
        p->info[i].offset = total;
        total += p->info[i].capacity;
    }
    p->total = total;
    size_t bytes;
    if (oialr_mul_size(total ? total : 1, sizeof(float), &bytes)) return OIALR_ERR_OVERFLOW;
    p->data = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    p->grad = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p->data || !p->grad) return OIALR_ERR_NOMEM;
    memset(p->data, 0, bytes);
    memset(p->grad, 0, bytes);
    return OIALR_OK;
}

void params_free(oialr_params *p) {
    free(p->info);
    free(p->data);
    free(p->grad);
    memset(p, 0, sizeof *p);
}

int oialr_params_find(const oialr_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->info[i].name, name) == 0) return i;
    return -1;
}

size_t oialr_params_trainable(const oialr_params *p) {
    size_t n = 0;
    for (int i = 0; i < p->count; i++)
        if (p->info[i].trainable) n += p->info[i].size;
    return n;
}

int oialr_glob_match(const char *pattern, const char *name) {
    for (const char *g = pattern;; g++) {
        const char *end = strchr(g, ',');
        size_t len = end ? (size_t)(end - g) : strlen(g);
        char one[512];
        if (len > 0 && len < sizeof one) {
            memcpy(one, g, len);
            one[len] = '\0';
            if (fnmatch(one, name, 0) == 0) return 1;
        }
        if (!end) return 0;
        g = end;
    }
}

int oialr_params_weight(const oialr_params *p, int i, float *out, float *tmp) {
    if (i < 0 || i >= p->count || p->info[i].kind != OIALR_PARAM_MATRIX)
        return oialr_seterr(OIALR_ERR_ARG, "parameter %d is not a weight matrix", i);
    const oialr_param_info *pi = &p->info[i];
    const float *w = p->data + pi->offset;
    if (pi->rank == 0) {
        memcpy(out, w, pi->size * sizeof *out);
        return OIALR_OK;
    }
    int r = (int)pi->rank, rows = (int)pi->rows, cols = (int)pi->cols;
    float *t = tmp ? tmp : malloc((size_t)rows * (size_t)r * sizeof *t);
    if (!t) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory forming U Sigma V^T", pi->name);
    /* t = U Σ; out = t Vᵀ */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, r, r, 1.0f, pi->u, r, w, r, 0.0f, t, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, r, 1.0f, t, r, pi->v, r, 0.0f, out, cols);
    if (!tmp) free(t);
    return OIALR_OK;
}
