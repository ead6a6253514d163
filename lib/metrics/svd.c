/*
 * svd.c — the SVD workspace, the per-snapshot factor (Q, Vᵀ, σ), stability
 * and principal angles. Formulas: docs/metrics.md.
 *
 * Legend: rows×cols is the stored (row-major) shape; m×n (m >= n) the tall
 * orientation; every internal matrix is column-major with leading dimension
 * equal to its row count (A[i + j*m]). "elem" is float or double according
 * to the precision of the workspace/factor.
 *
 * Two ways to a factor: LAPACK gesdd in the factor's precision (the
 * reference), or, with svd_ws_set_gram (the analyzer's default and the
 * OIALR checks), the eigen-decomposition of the float64 Gram matrix
 * G = WᵀW = V Σ² Vᵀ and Q = W V Σ⁻¹ Vᵀ, which is about as fast as float32
 * gesdd and float64-accurate while κ = σ₁/σₙ <= GRAM_MAX_COND; a matrix
 * above that goes to float64 gesdd (docs/metrics.md, "Precision").
 */
#include "metrics/internal.h"

#include <cblas.h>
#include <lapacke.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* --------------------------------------------------------------------------- */

struct oialr_svd_ws {
    int prec;
    size_t esz;              /* sizeof(float) or sizeof(double) */
    void *a;    size_t a_n;  /* copy of the input, m×n; later P_a */
    void *u;    size_t u_n;  /* U, m×n; later P_b / M */
    void *s;    size_t s_n;  /* singular values, n */
    void *work; size_t work_n; /* LAPACK work; also holds the small matrices of
                                * the principal angles (>= n² + 16n elements) */
    lapack_int *iwork; size_t iwork_n;
    int64_t last_m, last_n;  /* shape the work size was queried for */
    int last_gram;           /* ... and the path */
    size_t last_lwork;
    int64_t fallbacks;
    int force_fallback;      /* testing: behave as if gesdd had failed */
    /* the Gram path (svd_ws_set_gram) */
    int gram;
    double *g;    size_t g_n;   /* n×n: G, then H⁻¹ = V Σ⁻¹ Vᵀ */
    double *z;    size_t z_n;   /* n×n: eigenvectors of G (ascending); before
                                 * and after them, blocks of rows of W in
                                 * double and of Q (2 × gram_b × n) */
    int gram_b;                 /* rows per block (<= GRAM_B) */
    double *ev;   size_t ev_n;  /* n eigenvalues, then dsyevr's work (ework_n) */
    lapack_int *eiw; size_t eiw_n; /* dsyevr: 2n isuppz, then its iwork (eiwork_n) */
    size_t ework_n, eiwork_n;
    int64_t gram_done, gram_ill; /* factors by the Gram path; sent to gesdd */
    int force_ill;           /* testing: treat every matrix as ill-conditioned */
    oialr_svd_ws *ws64;      /* float64 gesdd for an ill-conditioned float32 factor */
    oialr_factor *f64;       /* its factor (the last shape) */
};

/* Rows of W per block when W is converted to double on the fly. */
#define GRAM_B 128

struct oialr_factor {
    int prec;
    size_t esz;
    int64_t rows, cols, m, n;
    int transposed;          /* 1: W = storedᵀ (rows < cols) */
    int valid;
    int64_t rank;
    void *q;                 /* m×n */
    void *vt;                /* n×n, row i = v_iᵀ */
    double *sigma;           /* n */
};

static size_t prec_size(int prec) { return prec == OIALR_PREC_F64 ? sizeof(double) : sizeof(float); }

/* Grow *buf to hold n elements of size esz (never shrinks). */
static int grow(void **buf, size_t *cap, size_t n, size_t esz) {
    if (n <= *cap) return OIALR_OK;
    size_t bytes;
    if (oialr_mul_size(n, esz, &bytes)) return oialr_seterr(OIALR_ERR_OVERFLOW, "svd workspace: %zu elements overflow", n);
    void *p = realloc(*buf, bytes);
    if (!p) return oialr_seterr(OIALR_ERR_NOMEM, "svd workspace: cannot allocate %zu bytes", bytes);
    *buf = p;
    *cap = n;
    return OIALR_OK;
}

int oialr_svd_ws_new(oialr_svd_ws **ws, int prec) {
    if (!ws || (prec != OIALR_PREC_F32 && prec != OIALR_PREC_F64))
        return oialr_seterr(OIALR_ERR_ARG, "oialr_svd_ws_new: bad precision %d", prec);
    *ws = calloc(1, sizeof **ws);
    if (!*ws) return oialr_seterr(OIALR_ERR_NOMEM, "oialr_svd_ws_new: out of memory");
    (*ws)->prec = prec;
    (*ws)->esz = prec_size(prec);
    (*ws)->last_m = (*ws)->last_n = -1;
    return OIALR_OK;
}

void oialr_svd_ws_free(oialr_svd_ws *ws) {
    if (!ws) return;
    free(ws->a); free(ws->u); free(ws->s);
    free(ws->work); free(ws->iwork);
    free(ws->g); free(ws->z); free(ws->ev); free(ws->eiw);
    oialr_svd_ws_free(ws->ws64);
    oialr_factor_free(ws->f64);
    free(ws);
}

size_t oialr_svd_ws_bytes(const oialr_svd_ws *ws) {
    if (!ws) return 0;
    return (ws->a_n + ws->u_n + ws->s_n + ws->work_n) * ws->esz + ws->iwork_n * sizeof(lapack_int) + sizeof *ws +
           (ws->g_n + ws->z_n + ws->ev_n) * sizeof(double) + ws->eiw_n * sizeof(lapack_int) +
           oialr_svd_ws_bytes(ws->ws64) + oialr_factor_bytes(ws->f64);
}

void svd_ws_set_gram(oialr_svd_ws *ws, int on) {
    if (ws) ws->gram = on != 0;
}

int svd_ws_gram(const oialr_svd_ws *ws) { return ws && ws->gram; }

void svd_ws_gram_counts(const oialr_svd_ws *ws, int64_t *gram, int64_t *ill) {
    *gram = ws ? ws->gram_done : 0;
    *ill = ws ? ws->gram_ill : 0;
}

void svd_ws_force_ill(oialr_svd_ws *ws, int force) {
    if (ws) ws->force_ill = force != 0;
}

int64_t oialr_svd_ws_fallbacks(const oialr_svd_ws *ws) { return ws ? ws->fallbacks : 0; }

void oialr_svd_ws_force_fallback(oialr_svd_ws *ws, int force) {
    if (ws) ws->force_fallback = force != 0;
}

/* Optimal LAPACK work size (elements) for gesdd('S'), gesvd('S','S') on m×n
 * (unless values_only: the Gram path of a float32 factor needs no vectors
 * from gesdd) and gesdd('N') on m×k for any k <= n. */
static int query_lwork(int prec, int64_t m, int64_t n, int values_only, size_t *lwork) {
    lapack_int M = (lapack_int)m, N = (lapack_int)n, info;
    lapack_int iw[1];
    double best = 0;
    if (prec == OIALR_PREC_F64) {
        double w = 0, d = 0;
        if (!values_only) {
            info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'S', M, N, &d, M, &d, &d, M, &d, N, &w, -1, iw);
            OIALR_ASSERT(info == 0);
            best = fmax(best, w);
            info = LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, 'S', 'S', M, N, &d, M, &d, &d, M, &d, N, &w, -1);
            OIALR_ASSERT(info == 0);
            best = fmax(best, w);
        }
        info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'N', M, N, &d, M, &d, &d, 1, &d, 1, &w, -1, iw);
        OIALR_ASSERT(info == 0);
        best = fmax(best, w);
    } else {
        float w = 0, d = 0;
        if (!values_only) {
            info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', M, N, &d, M, &d, &d, M, &d, N, &w, -1, iw);
            OIALR_ASSERT(info == 0);
            best = fmax(best, w);
            info = LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, 'S', 'S', M, N, &d, M, &d, &d, M, &d, N, &w, -1);
            OIALR_ASSERT(info == 0);
            best = fmax(best, w);
        }
        info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'N', M, N, &d, M, &d, &d, 1, &d, 1, &w, -1, iw);
        OIALR_ASSERT(info == 0);
        best = fmax(best, w);
    }
    /* gesdd('N') on m×k, k < n, needs at most 3k + max(m, 7k) <= the above;
     * a little slack guards against float rounding of the returned size. */
    *lwork = (size_t)best + 16 + 8 * (size_t)n;
    return OIALR_OK;
}

/* Size for the tall shape m×n. */
static int ws_reserve_tall(oialr_svd_ws *ws, int64_t m, int64_t n) {
    if (m == ws->last_m && n == ws->last_n && ws->gram == ws->last_gram) return OIALR_OK;
    if ((int64_t)(lapack_int)m != m || (int64_t)(lapack_int)n != n)
        return oialr_seterr(OIALR_ERR_OVERFLOW, "matrix %lldx%lld too large for LAPACK ints", (long long)m, (long long)n);
    size_t mn, nn, lwork;
    int rc;
    if ((rc = oialr_mul_size((size_t)m, (size_t)n, &mn)) || (rc = oialr_mul_size((size_t)n, (size_t)n, &nn)))
        return oialr_seterr(rc, "matrix %lldx%lld: size overflow", (long long)m, (long long)n);
    int values_only = ws->gram && ws->prec == OIALR_PREC_F32;
    if ((rc = query_lwork(ws->prec, m, n, values_only, &lwork))) return rc;
    if (lwork < nn + 16 * (size_t)n + 64) lwork = nn + 16 * (size_t)n + 64; /* angles: see oialr_principal_angles */
    if ((rc = grow(&ws->a, &ws->a_n, mn, ws->esz)) || (rc = grow(&ws->u, &ws->u_n, mn, ws->esz)) ||
        (rc = grow(&ws->s, &ws->s_n, (size_t)n, ws->esz)) ||
        (rc = grow(&ws->work, &ws->work_n, lwork, ws->esz)) ||
        (rc = grow((void **)&ws->iwork, &ws->iwork_n, 8 * (size_t)n, sizeof(lapack_int))))
        return rc;
    if (ws->gram) {
        /* dsyevr's optimal work (blocked tridiagonalisation), at least 26n / 10n */
        double wq = 0, d = 0;
        lapack_int iq = 0, nf = 0, isz[2];
        lapack_int info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, 'V', 'A', 'L', (lapack_int)n, &d, (lapack_int)n, 0.0,
                                              0.0, 0, 0, 0.0, &nf, &d, &d, (lapack_int)n, isz, &wq, -1, &iq, -1);
        OIALR_ASSERT(info == 0);
        ws->ework_n = (size_t)wq > 26 * (size_t)n ? (size_t)wq : 26 * (size_t)n;
        ws->eiwork_n = (size_t)iq > 10 * (size_t)n ? (size_t)iq : 10 * (size_t)n;
        /* the row blocks share Z's room, which holds two blocks of
         * GRAM_B rows for n >= 2 GRAM_B and is made that big below it
         * (narrow blocks make many tiny BLAS calls) */
        size_t b = (size_t)m < GRAM_B ? (size_t)m : GRAM_B;
        ws->gram_b = (int)b;
        size_t zn = nn > 2 * b * (size_t)n ? nn : 2 * b * (size_t)n;
        if ((rc = grow((void **)&ws->g, &ws->g_n, nn, sizeof(double))) ||
            (rc = grow((void **)&ws->z, &ws->z_n, zn, sizeof(double))) ||
            (rc = grow((void **)&ws->ev, &ws->ev_n, (size_t)n + ws->ework_n, sizeof(double))) ||
            (rc = grow((void **)&ws->eiw, &ws->eiw_n, 2 * (size_t)n + ws->eiwork_n, sizeof(lapack_int))))
            return rc;
    }
    ws->last_gram = ws->gram;
    ws->last_m = m;
    ws->last_n = n;
    ws->last_lwork = ws->work_n;
    return OIALR_OK;
}

int oialr_svd_ws_reserve(oialr_svd_ws *ws, int64_t rows, int64_t cols) {
    if (!ws || rows <= 0 || cols <= 0)
        return oialr_seterr(OIALR_ERR_ARG, "oialr_svd_ws_reserve: bad shape %lldx%lld", (long long)rows, (long long)cols);
    return ws_reserve_tall(ws, rows >= cols ? rows : cols, rows >= cols ? cols : rows);
}

/* --------------------------------------------------------------------------- */

int oialr_factor_new(oialr_factor **f, int64_t rows, int64_t cols, int prec) {
    if (!f) return oialr_seterr(OIALR_ERR_ARG, "oialr_factor_new: NULL");
    *f = NULL;
    if (rows <= 0 || cols <= 0)
        return oialr_seterr(OIALR_ERR_ARG, "oialr_factor_new: bad shape %lldx%lld", (long long)rows, (long long)cols);
    if (prec != OIALR_PREC_F32 && prec != OIALR_PREC_F64)
        return oialr_seterr(OIALR_ERR_ARG, "oialr_factor_new: bad precision %d", prec);
    oialr_factor *p = calloc(1, sizeof *p);
    if (!p) return oialr_seterr(OIALR_ERR_NOMEM, "oialr_factor_new: out of memory");
    p->prec = prec;
    p->esz = prec_size(prec);
    p->rows = rows;
    p->cols = cols;
    p->transposed = rows < cols;
    p->m = p->transposed ? cols : rows;
    p->n = p->transposed ? rows : cols;
    size_t mn, nn, qb, vb, sb;
    if (oialr_mul_size((size_t)p->m, (size_t)p->n, &mn) || oialr_mul_size((size_t)p->n, (size_t)p->n, &nn) ||
        oialr_mul_size(mn, p->esz, &qb) || oialr_mul_size(nn, p->esz, &vb) ||
        oialr_mul_size((size_t)p->n, sizeof(double), &sb)) {
        free(p);
        return oialr_seterr(OIALR_ERR_OVERFLOW, "oialr_factor_new: %lldx%lld overflows", (long long)rows, (long long)cols);
    }
    p->q = malloc(qb);
    p->vt = malloc(vb);
    p->sigma = malloc(sb);
    if (!p->q || !p->vt || !p->sigma) {
        oialr_factor_free(p);
        return oialr_seterr(OIALR_ERR_NOMEM, "oialr_factor_new: cannot allocate %lldx%lld", (long long)rows, (long long)cols);
    }
    *f = p;
    return OIALR_OK;
}

void oialr_factor_free(oialr_factor *f) {
    if (!f) return;
    free(f->q); free(f->vt); free(f->sigma);
    free(f);
}

size_t oialr_factor_bytes(const oialr_factor *f) {
    if (!f) return 0;
    return (size_t)(f->m * f->n + f->n * f->n) * f->esz + (size_t)f->n * sizeof(double) + sizeof *f;
}

float *oialr_factor_input_buffer(oialr_factor *f) {
    if (!f) return NULL;
    f->valid = 0;
    return f->q; /* m*n elements of 4 or 8 bytes: room for rows*cols floats */
}

int64_t oialr_factor_m(const oialr_factor *f) { return f->m; }
int64_t oialr_factor_n(const oialr_factor *f) { return f->n; }
int64_t oialr_factor_rank(const oialr_factor *f) { return f->valid ? f->rank : 0; }
int oialr_factor_valid(const oialr_factor *f) { return f && f->valid; }
const double *oialr_factor_sigma(const oialr_factor *f) { return f && f->valid ? f->sigma : NULL; }

int oialr_factor_polar(const oialr_factor *f, double *q) {
    if (!f || !q || !f->valid) return oialr_seterr(OIALR_ERR_ARG, "oialr_factor_polar: invalid factor");
    size_t mn = (size_t)(f->m * f->n);
    if (f->prec == OIALR_PREC_F64) memcpy(q, f->q, mn * sizeof(double));
    else for (size_t i = 0; i < mn; i++) q[i] = ((const float *)f->q)[i];
    return OIALR_OK;
}

/* Copy the stored row-major rows×cols matrix into the column-major tall
 * m×n buffer dst, converting type; return the number of non-finite values.
 * The finiteness test accumulates x - x, which is 0 for finite x and NaN
 * for Inf/NaN, so the loop stays branch-free. */
#define COPY_TALL(NAME, DT, ST)                                                        \
    static int64_t NAME(DT *restrict dst, const ST *restrict src, int64_t rows, int64_t cols) { \
        double acc = 0;                                                                 \
        if (rows < cols) { /* W = storedᵀ: column-major m×n (m=cols) is the same memory */ \
            size_t total = (size_t)(rows * cols);                                       \
            for (size_t i = 0; i < total; i++) { ST x = src[i]; acc += (double)(x - x); dst[i] = (DT)x; } \
        } else { /* W = stored: transpose row-major into column-major, in blocks */     \
            const int64_t B = 32, m = rows;                                             \
            for (int64_t i0 = 0; i0 < rows; i0 += B)                                   \
                for (int64_t j0 = 0; j0 < cols; j0 += B) {                              \
                    int64_t i1 = i0 + B < rows ? i0 + B : rows;                         \
                    int64_t j1 = j0 + B < cols ? j0 + B : cols;                         \
                    for (int64_t i = i0; i < i1; i++)                                   \
                        for (int64_t j = j0; j < j1; j++) {                             \
                            ST x = src[i * cols + j];                                   \
                            acc += (double)(x - x);                                     \
                            dst[i + j * m] = (DT)x;                                     \
                        }                                                               \
                }                                                                       \
        }                                                                               \
        if (acc == 0) return 0;                                                         \
        int64_t bad = 0;                                                                \
        size_t total = (size_t)(rows * cols);                                           \
        for (size_t i = 0; i < total; i++) bad += !isfinite((double)src[i]);            \
        return bad;                                                                     \
    }
COPY_TALL(copy_ff, float, float)
COPY_TALL(copy_fd, float, double)
COPY_TALL(copy_df, double, float)
COPY_TALL(copy_dd, double, double)

static int64_t copy_input(const oialr_factor *f, oialr_svd_ws *ws, const void *w, int src_f64) {
    if (f->prec == OIALR_PREC_F64)
        return src_f64 ? copy_dd(ws->a, w, f->rows, f->cols) : copy_df(ws->a, w, f->rows, f->cols);
    return src_f64 ? copy_fd(ws->a, w, f->rows, f->cols) : copy_ff(ws->a, w, f->rows, f->cols);
}

/* The number of NaN/Inf among n floats or doubles (branch-free first pass,
 * as in COPY_TALL). */
static int64_t count_nonfinite(const void *w, size_t n, int f64) {
    double acc = 0;
    if (f64) for (size_t i = 0; i < n; i++) { double x = ((const double *)w)[i]; acc += x - x; }
    else for (size_t i = 0; i < n; i++) { float x = ((const float *)w)[i]; acc += (double)(x - x); }
    if (acc == 0) return 0;
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(f64 ? ((const double *)w)[i] : (double)((const float *)w)[i]);
    return bad;
}

/* gesdd('S') of ws->a into ws->s, ws->u, f->vt; on non-convergence recopy
 * the input and use gesvd. */
static int factor_svd(oialr_factor *f, oialr_svd_ws *ws, const void *w, int src_f64) {
    lapack_int M = (lapack_int)f->m, N = (lapack_int)f->n, info;
    lapack_int lw = (lapack_int)ws->work_n;
    if (f->prec == OIALR_PREC_F64)
        info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'S', M, N, ws->a, M, ws->s, ws->u, M, f->vt, N, ws->work, lw, ws->iwork);
    else
        info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', M, N, ws->a, M, ws->s, ws->u, M, f->vt, N, ws->work, lw, ws->iwork);
    OIALR_ASSERT(info >= 0);
    if (info == 0 && !ws->force_fallback) return OIALR_OK;
    ws->fallbacks++;
    oialr_log(OIALR_LOG_DEBUG, "gesdd did not converge (info=%d) on %lldx%lld; using gesvd", (int)info,
              (long long)f->rows, (long long)f->cols);
    copy_input(f, ws, w, src_f64);
    if (f->prec == OIALR_PREC_F64)
        info = LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, 'S', 'S', M, N, ws->a, M, ws->s, ws->u, M, f->vt, N, ws->work, lw);
    else
        info = LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, 'S', 'S', M, N, ws->a, M, ws->s, ws->u, M, f->vt, N, ws->work, lw);
    OIALR_ASSERT(info >= 0);
    if (info > 0)
        return oialr_seterr(OIALR_ERR_NUMERIC, "SVD of %lldx%lld did not converge (gesdd and gesvd, info=%d)",
                            (long long)f->rows, (long long)f->cols, (int)info);
    return OIALR_OK;
}

static int factor_compute(oialr_factor *f, oialr_svd_ws *ws, const void *w, int src_f64);

// ----------------------------------------------------------------------------
// the Gram path: G = WᵀW in float64, G = Z diag(λ) Zᵀ (dsyevr, λ ascending),
// σ_i = sqrt(λ_{n-1-i}), V = Z reversed, Q = W H⁻¹ with H⁻¹ = V Σ⁻¹ Vᵀ =
// T Tᵀ, T = Z diag(λ^(-1/4)). Its errors grow like eps64 κ² (σₙ relative:
// ≈ 0.1 eps64 κ², measured; docs/metrics.md), so a matrix with κ above
// GRAM_MAX_COND (or λₙ <= 0: rank-deficient or zero) goes to gesdd.

#define GRAM_MAX_COND 1e5

/* Where the Gram path reads W (m×n tall) from: the column-major copy in
 * ws->a, or the caller's stored matrix itself (row-major rows×cols, which
 * is W column-major when rows < cols), float or double. */
typedef struct {
    const void *p;
    int f64;         /* elements are double */
    int rowmajor;    /* W[i, j] = p[i*ld + j], else p[i + j*ld] */
    int64_t ld;
} wsrc;

/* Rows i0..i0+b of W into the b×n double block dst (ld b). */
static void rows_to_double(const wsrc *w, int64_t n, int64_t i0, int64_t b, double *dst) {
    if (w->rowmajor) {
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < n; j++) {
                size_t at = (size_t)((i0 + i) * w->ld + j);
                dst[i + j * b] = w->f64 ? ((const double *)w->p)[at] : (double)((const float *)w->p)[at];
            }
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        size_t at = (size_t)(i0 + j * w->ld);
        if (w->f64) for (int64_t i = 0; i < b; i++) dst[i + j * b] = ((const double *)w->p)[at + i];
        else for (int64_t i = 0; i < b; i++) dst[i + j * b] = (double)((const float *)w->p)[at + i];
    }
}

/* The factor of W by the Gram path: W is ws->a for a float64 factor, and
 * *src (by blocks of rows) for a float32 one. Returns 1 (and leaves f->q
 * untouched: it may hold the input) when W is too ill-conditioned for it or
 * dsyevr failed, 0 when f holds the factor. Q is written by blocks of rows
 * after every row of W was read for G, and each block of W is read again
 * just before its block of Q is written over the same rows, so src may be
 * f->q itself when both are column-major m×n. */
static int gram_factor(oialr_factor *f, oialr_svd_ws *ws, const wsrc *src) {
    int m = (int)f->m, n = (int)f->n;
    double *g = ws->g, *z = ws->z, *ev = ws->ev;
    if (f->prec == OIALR_PREC_F64) {
        cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, n, m, 1.0, ws->a, m, 0.0, g, n);
    } else {
        int B = ws->gram_b;
        for (int i0 = 0; i0 < m; i0 += B) { /* blocks in Z's room, before Z */
            int b = m - i0 < B ? m - i0 : B;
            rows_to_double(src, n, i0, b, z);
            cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, n, b, 1.0, z, b, i0 ? 1.0 : 0.0, g, n);
        }
    }
    lapack_int found = 0;
    lapack_int info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, 'V', 'A', 'L', n, g, n, 0.0, 0.0, 0, 0, 0.0, &found, ev, z, n,
                                          ws->eiw, ws->ev + n, (lapack_int)ws->ework_n,
                                          ws->eiw + 2 * (size_t)n, (lapack_int)ws->eiwork_n);
    OIALR_ASSERT(info >= 0);
    if (info > 0 || found != n) return 1;
    double lmax = ev[n - 1], lmin = ev[0];
    if (ws->force_ill || !(lmin > 0) || !(lmax <= GRAM_MAX_COND * GRAM_MAX_COND * lmin)) return 1;
    /* σ descending, Vᵀ (row i = column n-1-i of Z) */
    for (int i = 0; i < n; i++) f->sigma[i] = sqrt(ev[n - 1 - i]);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) {
            double x = z[j + (size_t)(n - 1 - i) * n];
            if (f->prec == OIALR_PREC_F64) ((double *)f->vt)[i + (size_t)j * n] = x;
            else ((float *)f->vt)[i + (size_t)j * n] = (float)x;
        }
    /* H⁻¹ = T Tᵀ into g (both triangles, for dgemm) */
    for (int j = 0; j < n; j++) {
        double c = 1.0 / sqrt(sqrt(ev[j]));
        for (int i = 0; i < n; i++) z[i + (size_t)j * n] *= c;
    }
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, n, n, 1.0, z, n, 0.0, g, n);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < j; i++) g[i + (size_t)j * n] = g[j + (size_t)i * n];
    /* Q = W H⁻¹: directly in float64, by blocks of rows for float32 */
    if (f->prec == OIALR_PREC_F64) {
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, ws->a, m, g, n, 0.0, f->q, m);
    } else {
        int B = ws->gram_b;
        double *in = z, *out = z + (size_t)B * n; /* Z (T) is not needed any more */
        for (int i0 = 0; i0 < m; i0 += B) {
            int b = m - i0 < B ? m - i0 : B;
            rows_to_double(src, n, i0, b, in);
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, b, n, n, 1.0, in, b, g, n, 0.0, out, b);
            float *q = (float *)f->q + i0;
            for (int j = 0; j < n; j++)
                for (int i = 0; i < b; i++) q[i + (size_t)j * m] = (float)out[i + (size_t)j * b];
        }
    }
    f->rank = n; /* κ <= GRAM_MAX_COND: every σ is above m eps64 σ₁ */
    return 0;
}

/* An ill-conditioned float32 factor on the Gram path: float64 gesdd in a
 * float64 factor of the same shape, rounded into f. */
static int gram_ill_f32(oialr_factor *f, oialr_svd_ws *ws, const void *w, int src_f64) {
    int rc;
    if (!ws->ws64 && (rc = oialr_svd_ws_new(&ws->ws64, OIALR_PREC_F64))) return rc;
    ws->ws64->force_fallback = ws->force_fallback;
    if (ws->f64 && (ws->f64->rows != f->rows || ws->f64->cols != f->cols)) {
        oialr_factor_free(ws->f64);
        ws->f64 = NULL;
    }
    if (!ws->f64 && (rc = oialr_factor_new(&ws->f64, f->rows, f->cols, OIALR_PREC_F64))) return rc;
    int64_t fb = ws->ws64->fallbacks;
    rc = factor_compute(ws->f64, ws->ws64, w, src_f64);
    ws->fallbacks += ws->ws64->fallbacks - fb;
    if (rc) return rc;
    size_t mn = (size_t)(f->m * f->n), nn = (size_t)(f->n * f->n);
    for (size_t i = 0; i < mn; i++) ((float *)f->q)[i] = (float)((const double *)ws->f64->q)[i];
    for (size_t i = 0; i < nn; i++) ((float *)f->vt)[i] = (float)((const double *)ws->f64->vt)[i];
    memcpy(f->sigma, ws->f64->sigma, (size_t)f->n * sizeof(double));
    f->rank = ws->f64->rank;
    f->valid = 1;
    return OIALR_OK;
}

static int factor_compute(oialr_factor *f, oialr_svd_ws *ws, const void *w, int src_f64) {
    if (!f || !ws || !w) return oialr_seterr(OIALR_ERR_ARG, "oialr_factor_compute: NULL argument");
    if (ws->prec != f->prec)
        return oialr_seterr(OIALR_ERR_MISMATCH, "oialr_factor_compute: workspace and factor precisions differ");
    f->valid = 0;
    int rc = ws_reserve_tall(ws, f->m, f->n);
    if (rc) return rc;
    /* The Gram path of a float32 factor reads the input where it is, unless
     * it is the factor's own buffer in another layout (stored rows >= cols):
     * the blocks of Q written there would overwrite rows still to be read. */
    size_t total = (size_t)(f->rows * f->cols), esz_in = src_f64 ? sizeof(double) : sizeof(float);
    uintptr_t w0 = (uintptr_t)w, w1 = w0 + total * esz_in, q0 = (uintptr_t)f->q, q1 = q0 + total * f->esz;
    int direct = ws->gram && f->prec == OIALR_PREC_F32 && (f->transposed || w1 <= q0 || q1 <= w0);
    int64_t bad = direct ? count_nonfinite(w, total, src_f64) : copy_input(f, ws, w, src_f64);
    if (bad)
        return oialr_seterr(OIALR_ERR_NUMERIC, "%lld non-finite value(s) (NaN/Inf) in %lldx%lld matrix", (long long)bad,
                            (long long)f->rows, (long long)f->cols);
    if (ws->gram) {
        wsrc src = {ws->a, f->prec == OIALR_PREC_F64, 0, f->m};
        if (direct) src = (wsrc){w, src_f64, !f->transposed, f->transposed ? f->m : f->cols};
        if (gram_factor(f, ws, &src) == 0) {
            ws->gram_done++;
            f->valid = 1;
            return OIALR_OK;
        }
        ws->gram_ill++;
        if (f->prec == OIALR_PREC_F32) return gram_ill_f32(f, ws, w, src_f64);
        copy_input(f, ws, w, src_f64); /* the float64 factor's copy: dsyevr did not touch it, but be plain */
    }
    if ((rc = factor_svd(f, ws, w, src_f64))) return rc;

    int64_t n = f->n, m = f->m, r = 0;
    for (int64_t i = 0; i < n; i++)
        f->sigma[i] = f->prec == OIALR_PREC_F64 ? ((double *)ws->s)[i] : (double)((float *)ws->s)[i];
    double eps = f->prec == OIALR_PREC_F64 ? DBL_EPSILON : FLT_EPSILON;
    double tol = (double)m * eps * f->sigma[0];
    if (f->sigma[0] > 0)
        while (r < n && f->sigma[r] > tol) r++;
    f->rank = r;
    /* Q = U_r Vᵀ_r (m×n) */
    if (r == 0) {
        memset(f->q, 0, (size_t)(m * n) * f->esz);
    } else if (f->prec == OIALR_PREC_F64) {
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)r, 1.0, ws->u, (int)m, f->vt,
                    (int)n, 0.0, f->q, (int)m);
    } else {
        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)r, 1.0f, ws->u, (int)m, f->vt,
                    (int)n, 0.0f, f->q, (int)m);
    }
    f->valid = 1;
    return OIALR_OK;
}

int oialr_factor_compute(oialr_factor *f, oialr_svd_ws *ws, const float *w) { return factor_compute(f, ws, w, 0); }
int oialr_factor_compute_f64(oialr_factor *f, oialr_svd_ws *ws, const double *w) { return factor_compute(f, ws, w, 1); }

/* --------------------------------------------------------------------------- */

static int check_pair(const oialr_factor *a, const oialr_factor *b, const char *who) {
    if (!a || !b) return oialr_seterr(OIALR_ERR_ARG, "%s: NULL factor", who);
    if (!a->valid || !b->valid) return oialr_seterr(OIALR_ERR_ARG, "%s: factor not computed (or failed)", who);
    if (a->rows != b->rows || a->cols != b->cols)
        return oialr_seterr(OIALR_ERR_MISMATCH, "%s: shapes differ (%lldx%lld vs %lldx%lld)", who, (long long)a->rows,
                            (long long)a->cols, (long long)b->rows, (long long)b->cols);
    if (a->prec != b->prec) return oialr_seterr(OIALR_ERR_MISMATCH, "%s: precisions differ", who);
    return OIALR_OK;
}

int oialr_stability(const oialr_factor *a, const oialr_factor *b, double *s) {
    int rc = check_pair(a, b, "oialr_stability");
    if (rc) return rc;
    if (!s) return oialr_seterr(OIALR_ERR_ARG, "oialr_stability: NULL output");
    size_t mn = (size_t)(a->m * a->n);
    double acc = 0;
    if (a->prec == OIALR_PREC_F64) {
        const double *x = a->q, *y = b->q;
        for (size_t i = 0; i < mn; i++) acc += x[i] * y[i];
    } else {
        /* four partial sums in double: vectorisable, and no float rounding */
        const float *x = a->q, *y = b->q;
        double p0 = 0, p1 = 0, p2 = 0, p3 = 0;
        size_t i = 0;
        for (; i + 4 <= mn; i += 4) {
            p0 += (double)x[i] * y[i];
            p1 += (double)x[i + 1] * y[i + 1];
            p2 += (double)x[i + 2] * y[i + 2];
            p3 += (double)x[i + 3] * y[i + 3];
        }
        for (; i < mn; i++) p0 += (double)x[i] * y[i];
        acc = (p0 + p1) + (p2 + p3);
    }
    *s = acc / (double)a->n;
    return OIALR_OK;
}

/* C = op(A) op(B), column-major, in the factor's precision. */
static void gemm(int prec, int ta, int tb, int m, int n, int k, double alpha, const void *a, int lda, const void *b,
                 int ldb, double beta, void *c, int ldc) {
    CBLAS_TRANSPOSE A = ta ? CblasTrans : CblasNoTrans, B = tb ? CblasTrans : CblasNoTrans;
    if (prec == OIALR_PREC_F64)
        cblas_dgemm(CblasColMajor, A, B, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        cblas_sgemm(CblasColMajor, A, B, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
}

/* Singular values (descending, into out as double) of the m×n matrix x
 * (destroyed). */
static int svd_values(oialr_svd_ws *ws, int m, int n, void *x, int ldx, double *out, size_t off) {
    lapack_int info, lw = (lapack_int)(ws->work_n - off), mn = m < n ? m : n;
    void *work = (char *)ws->work + off * ws->esz;
    if (ws->prec == OIALR_PREC_F64) {
        double dummy = 0;
        info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'N', m, n, x, ldx, ws->s, &dummy, 1, &dummy, 1, work, lw, ws->iwork);
        OIALR_ASSERT(info >= 0);
        for (lapack_int i = 0; i < mn && info == 0; i++) out[i] = ((double *)ws->s)[i];
    } else {
        float dummy = 0;
        info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'N', m, n, x, ldx, ws->s, &dummy, 1, &dummy, 1, work, lw, ws->iwork);
        OIALR_ASSERT(info >= 0);
        for (lapack_int i = 0; i < mn && info == 0; i++) out[i] = ((float *)ws->s)[i];
    }
    if (info > 0) return oialr_seterr(OIALR_ERR_NUMERIC, "principal angles: SVD did not converge (info=%d)", (int)info);
    return OIALR_OK;
}

/* Top-k basis of one side of f into dst (d×k, column-major, ld d):
 * left U_k = Q V_k (valid for k <= rank), right V_k. */
static void side_basis(const oialr_factor *f, int side, int64_t k, void *dst) {
    int m = (int)f->m, n = (int)f->n, kk = (int)k;
    if (side == OIALR_SIDE_LEFT) {
        gemm(f->prec, 0, 1, m, kk, n, 1.0, f->q, m, f->vt, n, 0.0, dst, m);
        return;
    }
    for (int j = 0; j < kk; j++) /* column j of V = row j of Vᵀ */
        for (int i = 0; i < n; i++) {
            if (f->prec == OIALR_PREC_F64) ((double *)dst)[i + (size_t)j * n] = ((const double *)f->vt)[j + (size_t)i * n];
            else ((float *)dst)[i + (size_t)j * n] = ((const float *)f->vt)[j + (size_t)i * n];
        }
}

/*
 * Sines of the principal angles between span(P_a) and span(P_b), both
 * k-dimensional in R^d, are the singular values of (I - P_a P_aᵀ) P_b.
 * When a's side basis is complete (d orthonormal columns: always on the
 * right, and on the left of a full-rank square matrix), I - P_a P_aᵀ =
 * C_a C_aᵀ with C_a the other d - k columns, and the sines are the
 * singular values of the small (d-k)×k matrix C_aᵀ P_b: min(k, d-k) of
 * them, the other angles being 0. Otherwise M = P_b - P_a (P_aᵀ P_b) (d×k).
 * θ = asin(sine): relative accuracy for small angles; near π/2 the
 * absolute error is about sqrt(eps) (documented in docs/metrics.md).
 */
int oialr_principal_angles(oialr_svd_ws *ws, const oialr_factor *a, const oialr_factor *b, int side, int64_t k,
                           double *theta, int64_t *k_used) {
    int rc = check_pair(a, b, "oialr_principal_angles");
    if (rc) return rc;
    if (!ws || !k_used || (k > 0 && !theta) || k < 0 || (side != OIALR_SIDE_LEFT && side != OIALR_SIDE_RIGHT))
        return oialr_seterr(OIALR_ERR_ARG, "oialr_principal_angles: bad argument (k=%lld, side=%d)", (long long)k, side);
    if (ws->prec != a->prec) return oialr_seterr(OIALR_ERR_MISMATCH, "oialr_principal_angles: workspace precision differs");
    if (k > a->rank) k = a->rank;
    if (k > b->rank) k = b->rank;
    *k_used = k;
    if (k == 0) return OIALR_OK;
    if ((rc = ws_reserve_tall(ws, a->m, a->n))) return rc;

    int prec = a->prec, m = (int)a->m, n = (int)a->n, K = (int)k;
    int d = side == OIALR_SIDE_LEFT ? m : n;
    int complete = side == OIALR_SIDE_RIGHT || (m == n && a->rank == n);
    int nsin;
    double *sines = theta; /* computed in place, descending */
    if (complete) {
        int c = d - K;
        nsin = c < K ? c : K;
        if (nsin > 0) {
            size_t esz = ws->esz;
            const char *vt_rest = (const char *)a->vt + (size_t)K * esz; /* rows K.. of Vᵀ, ld n */
            if (side == OIALR_SIDE_RIGHT) {
                /* X = Vᵀ_a[K:, :] V_b,k = Vᵀ_a[K:, :] (Vᵀ_b[:K, :])ᵀ */
                gemm(prec, 0, 1, c, K, n, 1.0, vt_rest, n, b->vt, n, 0.0, ws->work, c);
            } else {
                /* C_a = Q_a V_a[:, K:], X = C_aᵀ U_b,k */
                gemm(prec, 0, 1, n, c, n, 1.0, a->q, n, vt_rest, n, 0.0, ws->a, n);
                side_basis(b, side, k, ws->u);
                gemm(prec, 1, 0, c, K, n, 1.0, ws->a, n, ws->u, n, 0.0, ws->work, c);
            }
            /* X ((d-k)×k <= n²/4) sits at the start of work, LAPACK's work after it */
            if ((rc = svd_values(ws, c, K, ws->work, c, sines, (size_t)c * (size_t)K))) return rc;
        }
    } else {
        side_basis(a, side, k, ws->a);
        side_basis(b, side, k, ws->u);
        gemm(prec, 1, 0, K, K, d, 1.0, ws->a, d, ws->u, d, 0.0, ws->work, K);   /* C = P_aᵀ P_b (in work) */
        gemm(prec, 0, 0, d, K, K, -1.0, ws->a, d, ws->work, K, 1.0, ws->u, d);  /* M = P_b - P_a C */
        nsin = K;
        if ((rc = svd_values(ws, d, K, ws->u, d, sines, 0))) return rc;         /* C is no longer needed */
    }
    /* ascending angles: k - nsin zeros, then asin of the sines, smallest first */
    double tmp;
    for (int i = 0, j = nsin - 1; i < j; i++, j--) { tmp = sines[i]; sines[i] = sines[j]; sines[j] = tmp; }
    for (int i = nsin - 1; i >= 0; i--) theta[(K - nsin) + i] = asin(fmin(1.0, sines[i]));
    for (int i = 0; i < K - nsin; i++) theta[i] = 0.0;
    return OIALR_OK;
}

double oialr_grassmann(const double *theta, int64_t k) {
    double acc = 0;
    for (int64_t i = 0; i < k; i++) acc += theta[i] * theta[i];
    return sqrt(acc);
}

// ----------------------------------------------------------------------------
// a factor's state as bytes (metrics/internal.h)

size_t factor_state_bytes_shape(int64_t rows, int64_t cols, int prec) {
    int64_t m = rows < cols ? cols : rows, n = rows < cols ? rows : cols;
    return 2 * sizeof(int64_t) + (size_t)(m * n + n * n) * prec_size(prec) + (size_t)n * sizeof(double);
}

size_t factor_state_bytes(const oialr_factor *f) { return factor_state_bytes_shape(f->rows, f->cols, f->prec); }

void factor_state_save(const oialr_factor *f, unsigned char *buf) {
    int64_t head[2] = {f->valid, f->rank};
    size_t q = (size_t)(f->m * f->n) * f->esz, vt = (size_t)(f->n * f->n) * f->esz;
    memcpy(buf, head, sizeof head);
    buf += sizeof head;
    memcpy(buf, f->q, q);
    memcpy(buf + q, f->vt, vt);
    memcpy(buf + q + vt, f->sigma, (size_t)f->n * sizeof(double));
}

void factor_state_load(oialr_factor *f, const unsigned char *buf) {
    int64_t head[2];
    size_t q = (size_t)(f->m * f->n) * f->esz, vt = (size_t)(f->n * f->n) * f->esz;
    memcpy(head, buf, sizeof head);
    buf += sizeof head;
    f->valid = head[0] == 1 && head[1] >= 0 && head[1] <= f->n; /* damaged: invalid, never trusted */
    f->rank = f->valid ? head[1] : 0;
    memcpy(f->q, buf, q);
    memcpy(f->vt, buf + q, vt);
    memcpy(f->sigma, buf + q + vt, (size_t)f->n * sizeof(double));
}
