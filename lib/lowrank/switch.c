/*
 * switch.c — the numerical steps of OIALR (lowrank/internal.h): the switch
 * of a full-rank weight to U Σ Vᵀ, the rotation of Σ back to diagonal, the
 * truncation rule, and what each does to the optimizer's moments.
 *
 * Moments. Let the optimizer hold M (first moment, or SGD's momentum) and
 * A (AdamW's second moment) for W. W = U Σ Vᵀ with U, V fixed is linear in
 * Σ, so the gradient of Σ is Uᵀ G V and a first moment that had always seen
 * Σ's gradients would be exactly Uᵀ M V: that is carried over, at the
 * switch and (with U_σ, V_σ) at every rotation. A is a mean of squares and
 * has no exact counterpart. PROJECT carries it by the squared bases,
 * (U∘U)ᵀ A (V∘V): each Σ entry gets a weighted mean of the W entries it
 * is made of, so the step size stays of the order it had. RESET zeroes both
 * (what the reference implementation does); with the step count kept,
 * AdamW's bias correction then no longer matches and the first updates
 * after the switch are larger. docs/lowrank.md compares the two.
 */
#include "lowrank/internal.h"
#include "oialr/params.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

void lr_work_free(lr_work *w) {
    free(w->a), free(w->b), free(w->c), free(w->d), free(w->e);
    memset(w, 0, sizeof *w);
}

static float *grow(float **p, size_t *have, size_t n) {
    if (n <= *have) return *p;
    float *q = realloc(*p, n * sizeof *q);
    if (!q) return NULL;
    *p = q;
    *have = n;
    return q;
}

int oialr_lowrank_keep(const float *sigma, int cur, int n, double beta) {
    int passing = 0;
    double cut = beta * (double)sigma[0];
    while (passing < cur && (double)sigma[passing] >= cut) passing++;
    return oialr_lowrank_keep_rank(passing, cur, n);
}

int oialr_lowrank_keep_rank(int passing, int cur, int n) {
    int keep = passing;
    int half = (cur + 1) / 2;            /* cut at most half of the rank */
    int floor_ = (int)floor(0.01 * n);   /* keep at least 1% of n, and 1 */
    if (floor_ < 1) floor_ = 1;
    if (keep < half) keep = half;
    if (keep < floor_) keep = floor_;
    if (keep > cur) keep = cur;
    return keep;
}

/* out[r, r] = aᵀ x b for a [ra, r] (lda) and b [rb, r] (ldb), x [ra, rb]
 * (ldx); tmp [ra, r]. squared: use a∘a and b∘b (into sa, sb). */
static void project(float *out, const float *a, int lda, const float *x, int ldx, const float *b, int ldb, int ra,
                    int rb, int r, float *tmp) {
    /* tmp = x b */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ra, r, rb, 1.0f, x, ldx, b, ldb, 0.0f, tmp, r);
    /* out = aᵀ tmp */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, r, ra, 1.0f, a, lda, tmp, r, 0.0f, out, r);
}

static void square(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i] * src[i];
}

/* Moments of a slot: M <- aᵀ M b, A <- (a∘a)ᵀ A (b∘b) or both zero. The
 * source is [ra, rb] with leading dimension rb, the result [r, r] compact,
 * written over the start of the same slot. */
static int carry_moments(oialr_optim *o, size_t off, const float *a, const float *b, int ra, int rb, int r,
                         int moments, lr_work *w) {
    if (!o) return OIALR_OK;
    size_t rr = (size_t)r * r;
    if (moments == OIALR_MOMENTS_RESET) {
        if (o->m) memset(o->m + off, 0, rr * sizeof(float));
        if (o->v) memset(o->v + off, 0, rr * sizeof(float));
        return OIALR_OK;
    }
    float *tmp = grow(&w->c, &w->nc, (size_t)ra * r), *res = grow(&w->d, &w->nd, rr);
    float *sq = grow(&w->e, &w->ne, (size_t)(ra + rb) * r);
    if (!tmp || !res || !sq) return oialr_seterr(OIALR_ERR_NOMEM, "OIALR: out of memory for the moments");
    if (o->m) {
        project(res, a, r, o->m + off, rb, b, r, ra, rb, r, tmp);
        memcpy(o->m + off, res, rr * sizeof *res);
    }
    if (o->v) {
        float *sa = sq, *sb = sq + (size_t)ra * r;
        square(sa, a, (size_t)ra * r);
        square(sb, b, (size_t)rb * r);
        project(res, sa, r, o->v + off, rb, sb, r, ra, rb, r, tmp);
        for (size_t i = 0; i < rr; i++) o->v[off + i] = res[i] > 0 ? res[i] : 0.0f;
    }
    return OIALR_OK;
}

/* Thin SVD of the row-major rows x cols x (destroyed): s [k], u [rows, k],
 * vt [k, cols], k = min(rows, cols). */
static int svd(float *x, int rows, int cols, float *s, float *u, float *vt, const char *name) {
    int k = rows < cols ? rows : cols;
    lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', rows, cols, x, cols, s, u, k, vt, cols);
    if (info > 0) {
        /* gesdd did not converge: the slower gesvd, as lib/metrics does */
        float *superb = malloc((size_t)k * sizeof *superb);
        if (!superb) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", name);
        info = LAPACKE_sgesvd(LAPACK_ROW_MAJOR, 'S', 'S', rows, cols, x, cols, s, u, k, vt, cols, superb);
        free(superb);
    }
    if (info != 0) return oialr_seterr(OIALR_ERR_NUMERIC, "%s: the SVD did not converge (LAPACK info %d)", name,
                                       (int)info);
    return OIALR_OK;
}

static void transpose(float *dst, const float *src, int rows, int cols, int ld_src) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)j * rows + i] = src[(size_t)i * ld_src + j];
}

int lr_switch(oialr_model *m, oialr_optim *o, int param, double beta, int moments, lr_work *w, int *rank_after) {
    oialr_params *p = oialr_model_params(m);
    const oialr_param_info *pi = &p->info[param];
    if (pi->rank) return oialr_seterr(OIALR_ERR_ARG, "%s is low-rank already", pi->name);
    int rows = (int)pi->rows, cols = (int)pi->cols, k = rows < cols ? rows : cols;
    size_t rc = (size_t)rows * cols;
    float *x = grow(&w->a, &w->na, rc + (size_t)rows * k + (size_t)k * cols + (size_t)cols * k + (size_t)k * k + k);
    if (!x) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for the switch", pi->name);
    float *u = x + rc, *vt = u + (size_t)rows * k, *v = vt + (size_t)k * cols, *sig = v + (size_t)cols * k;
    float *s = sig + (size_t)k * k;
    const float *wdata = p->data + pi->offset;
    for (size_t i = 0; i < rc; i++)
        if (!isfinite(wdata[i])) return oialr_seterr(OIALR_ERR_NUMERIC, "%s holds NaN/Inf: cannot switch", pi->name);
    memcpy(x, wdata, rc * sizeof *x);
    int rc_ = svd(x, rows, cols, s, u, vt, pi->name);
    if (rc_) return rc_;
    int r = oialr_lowrank_keep(s, k, k, beta);
    /* U_r: first r columns of u [rows, k]; V_r = (first r rows of vt)ᵀ */
    float *ur = x; /* x is free now: reuse it for the compact U_r */
    for (int i = 0; i < rows; i++) memmove(ur + (size_t)i * r, u + (size_t)i * k, (size_t)r * sizeof *ur);
    transpose(v, vt, r, cols, cols);
    memset(sig, 0, (size_t)r * r * sizeof *sig);
    for (int i = 0; i < r; i++) sig[(size_t)i * r + i] = s[i];
    if ((rc_ = carry_moments(o, pi->offset, ur, v, rows, cols, r, moments, w))) return rc_;
    if ((rc_ = oialr_model_lowrank_set(m, param, ur, sig, v, r))) return rc_;
    *rank_after = r;
    return OIALR_OK;
}

int lr_rotate(oialr_model *m, oialr_optim *o, int param, double beta, int moments, lr_work *w, int *rank_before,
              int *rank_after) {
    oialr_params *p = oialr_model_params(m);
    const oialr_param_info *pi = &p->info[param];
    float *u, *v;
    int r;
    int rc = oialr_model_lowrank_factors(m, param, &u, &v, &r);
    if (rc) return rc;
    int rows = (int)pi->rows, cols = (int)pi->cols;
    size_t rr = (size_t)r * r;
    /* x: Σ's copy for the SVD; U_σ, V_σᵀ, V_σ, the new Σ, the new U and V */
    float *x = grow(&w->a, &w->na, 5 * rr + (size_t)(rows + cols) * r);
    if (!x) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for the rotation", pi->name);
    float *us = x + rr, *vst = us + rr, *vs = vst + rr, *sig = vs + rr;
    float *nu = sig + rr, *nv = nu + (size_t)rows * r;
    float *sv = grow(&w->b, &w->nb, (size_t)r);
    if (!sv) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for the rotation", pi->name);
    const float *sdata = p->data + pi->offset;
    for (size_t i = 0; i < rr; i++)
        if (!isfinite(sdata[i])) return oialr_seterr(OIALR_ERR_NUMERIC, "%s: Sigma holds NaN/Inf", pi->name);
    memcpy(x, sdata, rr * sizeof *x);
    if ((rc = svd(x, r, r, sv, us, vst, pi->name))) return rc;
    transpose(vs, vst, r, r, r);
    /* U <- U U_σ, V <- V V_σ */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, r, r, 1.0f, u, r, us, r, 0.0f, nu, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cols, r, r, 1.0f, v, r, vs, r, 0.0f, nv, r);
    memset(sig, 0, rr * sizeof *sig);
    for (int i = 0; i < r; i++) sig[(size_t)i * r + i] = sv[i];
    if ((rc = carry_moments(o, pi->offset, us, vs, r, r, r, moments, w))) return rc;
    if ((rc = oialr_model_lowrank_set(m, param, nu, sig, nv, r))) return rc;
    *rank_before = r;
    int keep = oialr_lowrank_keep(sv, r, rows < cols ? rows : cols, beta);
    if ((rc = oialr_model_lowrank_truncate(m, o, param, keep))) return rc;
    *rank_after = keep;
    return OIALR_OK;
}
