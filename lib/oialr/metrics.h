/*
 * oialr/metrics.h — the orthogonal-basis and spectrum metrics of one weight
 * matrix and of a pair of snapshots: polar factor, stability, principal
 * angles, Grassmann distance, singular values and rank metrics, and the
 * power-law exponent α of the eigenvalue spectrum (WeightWatcher's).
 *
 * The analyzer (`oialr analyze`, offline over a stored trajectory) is the
 * user today; these are also the functions an online controller is to call,
 * so that offline replay and online decisions share one implementation.
 * Formulas and conventions are in docs/metrics.md; in short:
 *
 *   Orientation. A weight stored row-major as rows×cols is viewed tall:
 *   W (m×n, m >= n) is the stored matrix if rows >= cols, else its transpose.
 *   Thin SVD W = U Σ Vᵀ, σ_1 >= ... >= σ_n >= 0.
 *
 *   Polar factor Q = U_r V_rᵀ over the r numerically nonzero singular pairs,
 *   r = #{σ_i > tol}, tol = max(m, n)·eps·σ_1 (eps of the working precision).
 *   For a full-rank W this is the usual Q = U Vᵀ (unique: independent of the
 *   signs of singular pairs and of rotations inside repeated σ). Dropping the
 *   null pairs makes Q unique for rank-deficient W too; Q = 0 for W = 0.
 *
 *   Stability S(a, b) = tr(Q_aᵀ Q_b) / n  in [-1, 1].  S(W, W) = r / n
 *   (1 for full rank, 0 for a zero matrix).
 *
 * Usage (no allocation per call once the objects are sized):
 *
 *     oialr_svd_ws *ws; oialr_factor *fa, *fb;
 *     oialr_svd_ws_new(&ws, OIALR_PREC_F32);
 *     oialr_factor_new(&fa, rows, cols, OIALR_PREC_F32);  (same for fb)
 *     oialr_factor_compute(fa, ws, w_a);  oialr_factor_compute(fb, ws, w_b);
 *     oialr_stability(fa, fb, &s);
 *
 * A workspace and a factor are used by one thread at a time; different
 * threads use different workspaces. The functions call LAPACK/BLAS and leave
 * the number of BLAS threads alone (see oialr_set_threads()).
 */
#ifndef OIALR_METRICS_H
#define OIALR_METRICS_H

#include "oialr/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Working precision of an SVD: float32 (default of the analyzer) or float64. */
enum oialr_prec { OIALR_PREC_F32 = 0, OIALR_PREC_F64 = 1 };

/* Which singular subspace: left = the m-dimensional (column) side of the
 * tall-oriented W, right = the n-dimensional side. */
enum oialr_side { OIALR_SIDE_LEFT = 0, OIALR_SIDE_RIGHT = 1 };

/* ---------------------------------------------------------------------------
 * Workspace: scratch for the SVD of one matrix (copy of the input, U, Vᵀ,
 * LAPACK work arrays). It grows to the largest matrix it has seen and then
 * never allocates again. */
typedef struct oialr_svd_ws oialr_svd_ws;

/* A new, empty workspace of precision prec (enum oialr_prec). */
OIALR_API int oialr_svd_ws_new(oialr_svd_ws **ws, int prec);
/* Size the workspace for rows×cols (either orientation) now, so that later
 * calls do not allocate. Optional: compute calls reserve as needed. */
OIALR_API int oialr_svd_ws_reserve(oialr_svd_ws *ws, int64_t rows, int64_t cols);
OIALR_API void oialr_svd_ws_free(oialr_svd_ws *ws);
/* Bytes held by the workspace (for memory accounting). */
OIALR_API size_t oialr_svd_ws_bytes(const oialr_svd_ws *ws);
/* Number of times gesdd did not converge and gesvd was used instead. */
OIALR_API int64_t oialr_svd_ws_fallbacks(const oialr_svd_ws *ws);
/* Testing: with force != 0, every factorisation takes the fallback path
 * (gesvd after a pretended gesdd failure), so that path can be checked. */
OIALR_API void oialr_svd_ws_force_fallback(oialr_svd_ws *ws, int force);

/* ---------------------------------------------------------------------------
 * Factor: what is kept of one snapshot's SVD — Q (m×n), V (n×n), σ (n) —
 * enough for stability and for principal angles on either side
 * (U_k = Q V_k for k <= r). Sized for one shape at creation. */
typedef struct oialr_factor oialr_factor;

/* A factor for rows×cols matrices (either orientation) in precision prec;
 * filled by the compute functions below. */
OIALR_API int oialr_factor_new(oialr_factor **f, int64_t rows, int64_t cols, int prec);
OIALR_API void oialr_factor_free(oialr_factor *f);
/* Bytes held by the factor (for memory accounting). */
OIALR_API size_t oialr_factor_bytes(const oialr_factor *f);

/* Factor the row-major rows×cols matrix w (rows, cols as given to
 * oialr_factor_new). The input is not modified. Returns OIALR_ERR_NUMERIC
 * (and leaves f marked invalid) if w holds NaN or Inf, or if both gesdd and
 * gesvd fail to converge. The float64 path converts float input exactly. */
OIALR_API int oialr_factor_compute(oialr_factor *f, oialr_svd_ws *ws, const float *w);
OIALR_API int oialr_factor_compute_f64(oialr_factor *f, oialr_svd_ws *ws, const double *w);

/* A rows*cols float buffer owned by f (its Q storage) that may be passed as
 * w to oialr_factor_compute(f, ...): a streaming caller reads a snapshot
 * straight into it and saves one matrix of memory. The compute overwrites
 * it; f is invalid from this call until the compute succeeds. */
OIALR_API float *oialr_factor_input_buffer(oialr_factor *f);

/* Shape of the tall orientation, numerical rank r, and whether the stored
 * matrix was transposed to make it tall (rows < cols). */
OIALR_API int64_t oialr_factor_m(const oialr_factor *f);
OIALR_API int64_t oialr_factor_n(const oialr_factor *f);
OIALR_API int64_t oialr_factor_rank(const oialr_factor *f);
OIALR_API int oialr_factor_valid(const oialr_factor *f);
/* Singular values, descending, n of them, always in double. NULL if !valid. */
OIALR_API const double *oialr_factor_sigma(const oialr_factor *f);
/* Copy Q (m×n, column-major, i.e. Q[i + j*m]) out in double. */
OIALR_API int oialr_factor_polar(const oialr_factor *f, double *q);

/* ---------------------------------------------------------------------------
 * Pair metrics. Both factors must have the same shape and precision
 * (OIALR_ERR_MISMATCH otherwise) and be valid (OIALR_ERR_ARG otherwise). */

/* S = tr(Q_aᵀ Q_b) / n, accumulated in double. */
OIALR_API int oialr_stability(const oialr_factor *a, const oialr_factor *b, double *s);

/* Principal angles 0 <= θ_1 <= ... <= θ_k <= π/2 between the top-k singular
 * subspaces of a and b on one side. k is clamped to min(rank_a, rank_b)
 * (the top-k subspace is undefined past the rank); *k_used gets the value
 * used and theta must hold k values. Small angles come from the sines
 * (singular values of (I - P_a P_aᵀ) P_b), large ones (> π/4) from the
 * cosines (singular values of P_aᵀ P_b), so both ends are accurate. */
OIALR_API int oialr_principal_angles(oialr_svd_ws *ws, const oialr_factor *a,
                                     const oialr_factor *b, int side, int64_t k,
                                     double *theta, int64_t *k_used);

/* Grassmann distance ‖θ‖₂ = sqrt(Σ θ_i²) (0 for k = 0). */
OIALR_API double oialr_grassmann(const double *theta, int64_t k);

/* ---------------------------------------------------------------------------
 * Spectrum metrics of one matrix from its singular values. */
typedef struct oialr_spectrum {
    int64_t rows, cols;      /* stored shape */
    int64_t n;               /* min(rows, cols): number of singular values */
    double sigma1;           /* σ_1, spectral norm */
    double sigma_min;        /* σ_n */
    double frobenius;        /* sqrt(Σ σ_i²) */
    double stable_rank;      /* ‖W‖_F² / σ_1²  (0 for W = 0) */
    double effective_rank;   /* exp(-Σ p_i ln p_i), p_i = σ_i / Σσ  (0 for W = 0) */
    double condition;        /* σ_1 / σ_n  (+Inf if σ_n = 0 < σ_1; NaN for W = 0) */
    int64_t cutoff_rank;     /* r_β = #{σ_i >= β σ_1}  (0 for W = 0) */
    double param_share;      /* r_β (m + n + r_β) / (m n): the parameters of
                              * U_r, V_r and a dense r×r Σ over those of W */
    double trainable_share;  /* r_β² / (m n): what OIALR trains (Σ only) */
    double beta;             /* β used */
} oialr_spectrum;

/* sigma: n values, descending, >= 0 (OIALR_ERR_ARG otherwise, or if
 * beta is not in [0, 1], or NaN). */
OIALR_API int oialr_spectrum_metrics(const double *sigma, int64_t rows, int64_t cols,
                                     double beta, oialr_spectrum *out);

/* ---------------------------------------------------------------------------
 * Power-law exponent α of the eigenvalue spectrum λ_i = σ_i², fitted as
 * WeightWatcher does (docs/metrics.md, "Power-law exponent α"): for every
 * candidate x_min among the λ_i (all but the largest), the continuous
 * maximum-likelihood α = 1 + t / Σ_{λ_i >= x_min} ln(λ_i / x_min) over the
 * t eigenvalues of the tail, and the x_min kept is the one of the smallest
 * Kolmogorov–Smirnov distance between the tail and the fitted law. */
typedef struct oialr_powerlaw {
    double alpha;     /* the exponent (> 1); NaN if undefined */
    double xmin;      /* λ where the fitted tail starts (units of σ²); NaN if undefined */
    double ks;        /* KS distance D at xmin, in [0, 1]; NaN if undefined */
    int64_t n_tail;   /* eigenvalues >= xmin (0 if undefined) */
    int64_t n_used;   /* nonzero eigenvalues fitted: λ_i > 1e-12 λ_1 */
} oialr_powerlaw;

/* Fewer nonzero eigenvalues than this: no fit (WeightWatcher's min_evals). */
#define OIALR_POWERLAW_MIN_EVALS 10

/* sigma: n singular values, descending, >= 0 (OIALR_ERR_ARG otherwise).
 * OIALR_ERR_NUMERIC, with out's fields NaN / 0 (n_used still set), when α
 * is undefined: fewer than OIALR_POWERLAW_MIN_EVALS nonzero eigenvalues, or
 * all of them equal. Allocates 2·n doubles of scratch per call
 * (OIALR_ERR_NOMEM). Thread-safe; O(n) memory, and milliseconds for
 * n = 4096 (the KS scan stops each candidate as soon as it cannot win). */
OIALR_API int oialr_powerlaw_fit(const double *sigma, int64_t n, oialr_powerlaw *out);

#ifdef __cplusplus
}
#endif
#endif /* OIALR_METRICS_H */
