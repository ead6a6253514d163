/*
 * check_metrics.c — known-answer tests of lib/metrics (oialr/metrics.h).
 *
 * Every Core test loops over shapes (tall, wide, square) and both precisions;
 * the tolerance is 1e-5 on the float64 path and 1e-3 on float32 (the issue's
 * targets). Test matrices are built as W = U diag(s) Vᵀ from random
 * orthonormal U, V (tests/util_linalg.c), so every answer is exact.
 *
 * Known answers used below (n = min(rows, cols)):
 *   - rotation: Q_b = U G Vᵀ with G a rotation by θ in k disjoint coordinate
 *     planes gives tr(Q_aᵀ Q_b) = tr(G) = n - 2k + 2k cos θ, so
 *     S = 1 - (2k/n)(1 - cos θ)   (each plane changes two diagonal entries);
 *   - flipping the sign of f singular values (W_b = U diag(±s) Vᵀ) turns
 *     f pairs (u_j, v_j) into (u_j, -v_j): S = 1 - 2f/n;
 *   - S(W, cW) = sign(c); S(W, W) = rank/n;
 *   - rotating top-k column j of U towards column k+j by φ_j gives principal
 *     angles exactly {φ_j} between the two top-k left subspaces.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/internal.h"
#include "oialr/metrics.h"
#include "util_linalg.h"

/* --------------------------------------------------------------------------- */

typedef struct { int rows, cols, prec; } shape_case;
static const shape_case CASES[] = {
    {60, 20, OIALR_PREC_F64}, {20, 60, OIALR_PREC_F64}, {24, 24, OIALR_PREC_F64},
    {60, 20, OIALR_PREC_F32}, {20, 60, OIALR_PREC_F32}, {24, 24, OIALR_PREC_F32},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

/* 1: the tests run on the Gram path (svd_ws_set_gram; the "Gram" case
 * reruns the known-answer tests with it, set per test by its fixture) */
static int use_gram;

static double tol_of(int prec) { return prec == OIALR_PREC_F64 ? 1e-5 : 1e-3; }

/* A test problem: U (m×n), V (n×n) and scratch. */
typedef struct {
    int rows, cols, m, n, prec;
    double *u, *v, *s, *w;
    float *wf;
    oialr_svd_ws *ws;
} prob;

static void prob_init(prob *p, const shape_case *c, uint64_t seed) {
    p->rows = c->rows; p->cols = c->cols; p->prec = c->prec;
    p->m = c->rows >= c->cols ? c->rows : c->cols;
    p->n = c->rows >= c->cols ? c->cols : c->rows;
    p->u = malloc(sizeof(double) * p->m * p->n);
    p->v = malloc(sizeof(double) * p->n * p->n);
    p->s = malloc(sizeof(double) * p->n);
    p->w = malloc(sizeof(double) * p->m * p->n);
    p->wf = malloc(sizeof(float) * p->m * p->n);
    tu_orthonormal(p->u, p->m, p->n, seed);
    tu_orthonormal(p->v, p->n, p->n, seed + 1000);
    for (int i = 0; i < p->n; i++) p->s[i] = 3.0 * pow(0.85, i); /* distinct, well conditioned */
    ck_assert_int_eq(oialr_svd_ws_new(&p->ws, p->prec), OIALR_OK);
    svd_ws_set_gram(p->ws, use_gram);
}

static void prob_free(prob *p) {
    free(p->u); free(p->v); free(p->s); free(p->w); free(p->wf);
    oialr_svd_ws_free(p->ws);
}

/* Factor of the stored matrix built from (u, s, v). */
static oialr_factor *factor_of(prob *p, const double *u, const double *s, const double *v) {
    oialr_factor *f;
    ck_assert_int_eq(oialr_factor_new(&f, p->rows, p->cols, p->prec), OIALR_OK);
    tu_compose(p->w, p->rows, p->cols, u, s, v);
    int rc;
    if (p->prec == OIALR_PREC_F64) {
        rc = oialr_factor_compute_f64(f, p->ws, p->w);
    } else {
        tu_to_float(p->wf, p->w, (size_t)p->m * p->n);
        rc = oialr_factor_compute(f, p->ws, p->wf);
    }
    ck_assert_msg(rc == OIALR_OK, "compute: %s", oialr_errmsg());
    return f;
}

static double *dup(const double *x, size_t n) {
    double *y = malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static double stab(const oialr_factor *a, const oialr_factor *b) {
    double s = NAN;
    ck_assert_int_eq(oialr_stability(a, b, &s), OIALR_OK);
    return s;
}

/* --------------------------------------------------------------------------- */
/* Core */

START_TEST(test_self_stability) {
    prob p;
    prob_init(&p, &CASES[_i], 11 + _i);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    ck_assert_double_eq_tol(stab(a, a), 1.0, tol_of(p.prec));
    ck_assert_int_eq(oialr_factor_rank(a), p.n);
    /* Q = U Vᵀ */
    double *q = malloc(sizeof(double) * p.m * p.n), *ex = malloc(sizeof(double) * p.m * p.n);
    ck_assert_int_eq(oialr_factor_polar(a, q), OIALR_OK);
    for (int i = 0; i < p.m; i++)
        for (int j = 0; j < p.n; j++) {
            double acc = 0;
            for (int k = 0; k < p.n; k++) acc += p.u[i + k * p.m] * p.v[j + k * p.n];
            ex[i + (size_t)j * p.m] = acc;
        }
    ck_assert_double_le(tu_maxdiff(q, ex, (size_t)p.m * p.n), tol_of(p.prec));
    free(q); free(ex);
    oialr_factor_free(a);
    prob_free(&p);
}
END_TEST

START_TEST(test_rotation_known_angle) {
    const double thetas[] = {1e-3, 0.3, 1.0, M_PI / 2, 3.0};
    const int planes[] = {1, 3, 5};
    prob p;
    prob_init(&p, &CASES[_i], 21 + _i);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    for (size_t ti = 0; ti < sizeof thetas / sizeof *thetas; ti++)
        for (size_t ki = 0; ki < sizeof planes / sizeof *planes; ki++) {
            int k = planes[ki];
            double th = thetas[ti];
            double *ub = dup(p.u, (size_t)p.m * p.n);
            /* U G: rotate column pairs (2j, 2j+1), j < k */
            for (int j = 0; j < k; j++) tu_rotate_cols(ub, p.m, 2 * j, 2 * j + 1, th);
            oialr_factor *b = factor_of(&p, ub, p.s, p.v);
            double expect = 1.0 - (2.0 * k / p.n) * (1.0 - cos(th));
            double got = stab(a, b);
            ck_assert_msg(fabs(got - expect) <= tol_of(p.prec), "%dx%d prec %d k=%d θ=%g: S=%.10f expected %.10f",
                          p.rows, p.cols, p.prec, k, th, got, expect);
            ck_assert_double_eq_tol(stab(b, a), got, 1e-12);
            oialr_factor_free(b);
            free(ub);
        }
    oialr_factor_free(a);
    prob_free(&p);
}
END_TEST

START_TEST(test_prescribed_spectrum) {
    prob p;
    prob_init(&p, &CASES[_i], 31 + _i);
    /* geometric spectrum with a plateau and a wide range (σ₁/σ_n ~ 1e3) */
    for (int i = 0; i < p.n; i++) p.s[i] = i < 4 ? 10.0 : 5.0 * pow(0.7, i - 4);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    const double *sg = oialr_factor_sigma(a);
    ck_assert_ptr_nonnull(sg);
    for (int i = 0; i < p.n; i++)
        ck_assert_msg(fabs(sg[i] - p.s[i]) <= tol_of(p.prec) * p.s[0], "σ_%d = %.10g, expected %.10g", i, sg[i], p.s[i]);
    oialr_spectrum sp;
    ck_assert_int_eq(oialr_spectrum_metrics(sg, p.rows, p.cols, 0.15, &sp), OIALR_OK);
    double sum = 0, sumsq = 0, h = 0;
    for (int i = 0; i < p.n; i++) { sum += p.s[i]; sumsq += p.s[i] * p.s[i]; }
    for (int i = 0; i < p.n; i++) h -= p.s[i] / sum * log(p.s[i] / sum);
    int cut = 0;
    while (cut < p.n && p.s[cut] >= 0.15 * p.s[0]) cut++;
    double t = tol_of(p.prec);
    ck_assert_double_eq_tol(sp.sigma1, 10.0, t * 10);
    ck_assert_double_eq_tol(sp.frobenius, sqrt(sumsq), t * 10);
    ck_assert_double_eq_tol(sp.stable_rank, sumsq / 100.0, t * 10);
    ck_assert_double_eq_tol(sp.effective_rank, exp(h), t * 10);
    ck_assert_double_eq_tol(sp.condition / (10.0 / p.s[p.n - 1]), 1.0, t * 10);
    ck_assert_int_eq(sp.cutoff_rank, cut);
    ck_assert_double_eq_tol(sp.param_share, (double)cut * (p.m + p.n + cut) / ((double)p.m * p.n), 1e-12);
    ck_assert_double_eq_tol(sp.trainable_share, (double)cut * cut / ((double)p.m * p.n), 1e-12);
    oialr_factor_free(a);
    prob_free(&p);
}
END_TEST

START_TEST(test_repeated_singular_values) {
    prob p;
    prob_init(&p, &CASES[_i], 41 + _i);
    /* σ = (2,2,2,2, 1,1,1, then distinct): U and V are not unique */
    for (int i = 0; i < p.n; i++) p.s[i] = i < 4 ? 2.0 : i < 7 ? 1.0 : 0.9 * pow(0.9, i - 7);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    /* the same matrix built from bases rotated inside each repeated block:
     * (U R) Σ (V R)ᵀ = U Σ Vᵀ, so only the computed vectors differ */
    double *ub = dup(p.u, (size_t)p.m * p.n), *vb = dup(p.v, (size_t)p.n * p.n);
    tu_rotate_cols(ub, p.m, 0, 3, 0.7); tu_rotate_cols(vb, p.n, 0, 3, 0.7);
    tu_rotate_cols(ub, p.m, 1, 2, -1.2); tu_rotate_cols(vb, p.n, 1, 2, -1.2);
    tu_rotate_cols(ub, p.m, 4, 6, 2.5); tu_rotate_cols(vb, p.n, 4, 6, 2.5);
    oialr_factor *b = factor_of(&p, ub, p.s, vb);
    ck_assert_double_eq_tol(stab(a, b), 1.0, tol_of(p.prec));
    /* all singular values equal: W = c·U Vᵀ, S against any spectrum is 1 */
    double *flat = malloc(sizeof(double) * p.n);
    for (int i = 0; i < p.n; i++) flat[i] = 1.5;
    oialr_factor *c = factor_of(&p, p.u, flat, p.v);
    ck_assert_double_eq_tol(stab(a, c), 1.0, tol_of(p.prec));
    const double *sg = oialr_factor_sigma(c);
    for (int i = 0; i < p.n; i++) ck_assert_double_eq_tol(sg[i], 1.5, tol_of(p.prec));
    /* principal angles between the top-4 subspaces (a repeated block) are 0 */
    double th[8];
    int64_t ku;
    ck_assert_int_eq(oialr_principal_angles(p.ws, a, b, OIALR_SIDE_LEFT, 4, th, &ku), OIALR_OK);
    ck_assert_int_eq(ku, 4);
    for (int i = 0; i < 4; i++) ck_assert_double_le(th[i], p.prec == OIALR_PREC_F64 ? 1e-6 : 3e-3);
    free(flat); free(ub); free(vb);
    oialr_factor_free(a); oialr_factor_free(b); oialr_factor_free(c);
    prob_free(&p);
}
END_TEST

START_TEST(test_sign_flips) {
    prob p;
    prob_init(&p, &CASES[_i], 51 + _i);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    /* flipping u_j and v_j together is the same matrix: S = 1 */
    double *ub = dup(p.u, (size_t)p.m * p.n), *vb = dup(p.v, (size_t)p.n * p.n);
    for (int j = 0; j < p.n; j += 2) {
        for (int i = 0; i < p.m; i++) ub[i + j * p.m] = -ub[i + j * p.m];
        for (int i = 0; i < p.n; i++) vb[i + j * p.n] = -vb[i + j * p.n];
    }
    oialr_factor *b = factor_of(&p, ub, p.s, vb);
    ck_assert_double_eq_tol(stab(a, b), 1.0, tol_of(p.prec));
    oialr_factor_free(b);
    /* flipping f of the singular values: S = 1 - 2f/n */
    for (int f = 1; f <= 3; f++) {
        double *sf = dup(p.s, (size_t)p.n);
        for (int j = 0; j < f; j++) sf[3 * j + 1] = -sf[3 * j + 1];
        oialr_factor *c = factor_of(&p, p.u, sf, p.v);
        ck_assert_double_eq_tol(stab(a, c), 1.0 - 2.0 * f / p.n, tol_of(p.prec));
        /* the singular values themselves are unchanged */
        ck_assert_double_le(tu_maxdiff(oialr_factor_sigma(c), p.s, (size_t)p.n), tol_of(p.prec) * p.s[0]);
        oialr_factor_free(c);
        free(sf);
    }
    /* S(W, -W) = -1, S(W, 7W) = 1 */
    double *neg = dup(p.s, (size_t)p.n), *big = dup(p.s, (size_t)p.n);
    for (int j = 0; j < p.n; j++) { neg[j] = -neg[j]; big[j] *= 7; }
    oialr_factor *d = factor_of(&p, p.u, neg, p.v), *e = factor_of(&p, p.u, big, p.v);
    ck_assert_double_eq_tol(stab(a, d), -1.0, tol_of(p.prec));
    ck_assert_double_eq_tol(stab(a, e), 1.0, tol_of(p.prec));
    oialr_factor_free(d); oialr_factor_free(e);
    free(neg); free(big); free(ub); free(vb);
    oialr_factor_free(a);
    prob_free(&p);
}
END_TEST

/* Angles: rotate top-k column j (j < k) of U towards column k + j by φ_j and
 * of V towards column k + j by ψ_j. Needs n >= 2k. */
START_TEST(test_principal_angles_known) {
    const double phi[3] = {1e-6, 0.02, 1.5}, psi[3] = {0.4, 3e-5, 1.2};
    const double tiny_phi[3] = {1e-7, 3e-6, 1e-4};
    prob p;
    prob_init(&p, &CASES[_i], 61 + _i);
    const int k = 3;
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    for (int variant = 0; variant < 2; variant++) {
        const double *ph = variant ? tiny_phi : phi;
        double *ub = dup(p.u, (size_t)p.m * p.n), *vb = dup(p.v, (size_t)p.n * p.n);
        for (int j = 0; j < k; j++) {
            tu_rotate_cols(ub, p.m, j, k + j, ph[j]);
            tu_rotate_cols(vb, p.n, j, k + j, psi[j]);
        }
        oialr_factor *b = factor_of(&p, ub, p.s, vb);
        double th[3];
        int64_t ku;
        for (int side = 0; side < 2; side++) {
            const double *want = side == OIALR_SIDE_LEFT ? ph : psi;
            double sorted[3] = {want[0], want[1], want[2]};
            for (int i = 1; i < 3; i++)
                for (int j = i; j > 0 && sorted[j] < sorted[j - 1]; j--) {
                    double t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t;
                }
            ck_assert_int_eq(oialr_principal_angles(p.ws, a, b, side, k, th, &ku), OIALR_OK);
            ck_assert_int_eq(ku, k);
            for (int i = 0; i < k; i++) {
                if (p.prec == OIALR_PREC_F64)
                    /* relative accuracy 1e-5, even for 1e-7 rad */
                    ck_assert_msg(fabs(th[i] - sorted[i]) <= 1e-5 * sorted[i], "side %d θ_%d=%.12g expected %.12g", side,
                                  i, th[i], sorted[i]);
                else
                    ck_assert_msg(fabs(th[i] - sorted[i]) <= 1e-3, "f32 side %d θ_%d=%.8g expected %.8g", side, i,
                                  th[i], sorted[i]);
            }
            double g = sqrt(sorted[0] * sorted[0] + sorted[1] * sorted[1] + sorted[2] * sorted[2]);
            ck_assert_double_eq_tol(oialr_grassmann(th, k), g, p.prec == OIALR_PREC_F64 ? 1e-5 * g : 1e-3);
        }
        /* symmetric in (a, b) */
        double th2[3];
        ck_assert_int_eq(oialr_principal_angles(p.ws, b, a, OIALR_SIDE_LEFT, k, th2, &ku), OIALR_OK);
        ck_assert_int_eq(oialr_principal_angles(p.ws, a, b, OIALR_SIDE_LEFT, k, th, &ku), OIALR_OK);
        for (int i = 0; i < k; i++)
            ck_assert_double_le(fabs(th[i] - th2[i]), p.prec == OIALR_PREC_F64 ? 1e-5 * th[i] : 1e-3);
        oialr_factor_free(b);
        free(ub); free(vb);
    }
    /* the same subspace: every angle is 0 */
    double th[3];
    int64_t ku;
    ck_assert_int_eq(oialr_principal_angles(p.ws, a, a, OIALR_SIDE_RIGHT, k, th, &ku), OIALR_OK);
    for (int i = 0; i < k; i++) ck_assert_double_le(th[i], p.prec == OIALR_PREC_F64 ? 1e-7 : 1e-3);
    oialr_factor_free(a);
    prob_free(&p);
}
END_TEST

/* The gesvd fallback (taken when gesdd does not converge) gives the same
 * answers; forced here since no small matrix makes gesdd fail on demand. */
START_TEST(test_gesvd_fallback) {
    prob p;
    prob_init(&p, &CASES[_i], 131 + _i);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    double *ub = dup(p.u, (size_t)p.m * p.n);
    tu_rotate_cols(ub, p.m, 0, 1, 0.4);
    oialr_svd_ws_force_fallback(p.ws, 1);
    oialr_factor *b = factor_of(&p, ub, p.s, p.v);
    ck_assert_int_eq(oialr_svd_ws_fallbacks(p.ws), 1);
    oialr_svd_ws_force_fallback(p.ws, 0);
    ck_assert_double_eq_tol(stab(a, b), 1.0 - (2.0 / p.n) * (1.0 - cos(0.4)), tol_of(p.prec));
    ck_assert_double_le(tu_maxdiff(oialr_factor_sigma(b), p.s, (size_t)p.n), tol_of(p.prec) * p.s[0]);
    oialr_factor_free(a); oialr_factor_free(b);
    free(ub);
    prob_free(&p);
}
END_TEST

/* The analyzer's --double path: float32 input, float64 SVD. */
START_TEST(test_float_input_double_svd) {
    shape_case c = {40, 16, OIALR_PREC_F64};
    prob p;
    prob_init(&p, &c, 71);
    tu_compose(p.w, p.rows, p.cols, p.u, p.s, p.v);
    tu_to_float(p.wf, p.w, (size_t)p.m * p.n);
    oialr_factor *a, *b;
    ck_assert_int_eq(oialr_factor_new(&a, p.rows, p.cols, OIALR_PREC_F64), OIALR_OK);
    ck_assert_int_eq(oialr_factor_new(&b, p.rows, p.cols, OIALR_PREC_F64), OIALR_OK);
    ck_assert_int_eq(oialr_factor_compute(a, p.ws, p.wf), OIALR_OK);
    ck_assert_int_eq(oialr_factor_compute_f64(b, p.ws, p.w), OIALR_OK);
    ck_assert_double_eq_tol(stab(a, b), 1.0, 1e-5);
    ck_assert_double_le(tu_maxdiff(oialr_factor_sigma(a), p.s, (size_t)p.n), 1e-5);
    oialr_factor_free(a); oialr_factor_free(b);
    prob_free(&p);
}
END_TEST

START_TEST(test_spectrum_exact) {
    /* σ = (4, 2, 1, 1, 0) of a 8×5 matrix: p = (1/2, 1/4, 1/8, 1/8, 0),
     * H = 1.75 ln 2, so effective rank 2^1.75 */
    const double s[5] = {4, 2, 1, 1, 0};
    oialr_spectrum sp;
    ck_assert_int_eq(oialr_spectrum_metrics(s, 8, 5, 0.25, &sp), OIALR_OK);
    ck_assert_int_eq(sp.n, 5);
    ck_assert_double_eq_tol(sp.frobenius, sqrt(22.0), 1e-14);
    ck_assert_double_eq_tol(sp.stable_rank, 22.0 / 16.0, 1e-14);
    ck_assert_double_eq_tol(sp.effective_rank, pow(2.0, 1.75), 1e-13);
    ck_assert(isinf(sp.condition));
    ck_assert_int_eq(sp.cutoff_rank, 4); /* σ >= 1 */
    ck_assert_double_eq_tol(sp.param_share, 4.0 * (8 + 5 + 4) / 40.0, 1e-14);
    ck_assert_double_eq(sp.sigma_min, 0.0);
    /* β = 0 keeps everything, β = 1 keeps the plateau at σ₁ */
    ck_assert_int_eq(oialr_spectrum_metrics(s, 5, 8, 0.0, &sp), OIALR_OK);
    ck_assert_int_eq(sp.cutoff_rank, 5);
    ck_assert_int_eq(oialr_spectrum_metrics(s, 5, 8, 1.0, &sp), OIALR_OK);
    ck_assert_int_eq(sp.cutoff_rank, 1);
    /* huge values do not overflow σ² */
    const double h[2] = {1e200, 1e200};
    ck_assert_int_eq(oialr_spectrum_metrics(h, 2, 2, 0.15, &sp), OIALR_OK);
    ck_assert_double_eq_tol(sp.frobenius / 1e200, sqrt(2.0), 1e-14);
    ck_assert_double_eq_tol(sp.stable_rank, 2.0, 1e-14);
    ck_assert_double_eq_tol(sp.effective_rank, 2.0, 1e-14);
}
END_TEST

START_TEST(test_workspace_reuse) {
    /* one workspace across shapes, big then small then big */
    const int shapes[][2] = {{50, 30}, {7, 3}, {3, 9}, {50, 30}, {64, 64}};
    oialr_svd_ws *ws;
    ck_assert_int_eq(oialr_svd_ws_new(&ws, OIALR_PREC_F32), OIALR_OK);
    ck_assert_int_eq(oialr_svd_ws_reserve(ws, 64, 64), OIALR_OK);
    size_t bytes = oialr_svd_ws_bytes(ws);
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        shape_case c = {shapes[t][0], shapes[t][1], OIALR_PREC_F32};
        prob p;
        prob_init(&p, &c, 81 + t);
        oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
        oialr_factor *b;
        ck_assert_int_eq(oialr_factor_new(&b, p.rows, p.cols, OIALR_PREC_F32), OIALR_OK);
        ck_assert_int_eq(oialr_factor_compute(b, ws, p.wf), OIALR_OK);
        ck_assert_double_eq_tol(stab(a, b), 1.0, 1e-3);
        oialr_factor_free(a); oialr_factor_free(b);
        prob_free(&p);
    }
    ck_assert_uint_eq(oialr_svd_ws_bytes(ws), bytes); /* reserved once: no growth */
    oialr_svd_ws_free(ws);
}
END_TEST

/* --------------------------------------------------------------------------- */
/* Limits */

START_TEST(test_nan_inf_rejected) {
    prob p;
    prob_init(&p, &CASES[_i], 91 + _i);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    oialr_factor *b;
    ck_assert_int_eq(oialr_factor_new(&b, p.rows, p.cols, p.prec), OIALR_OK);
    const double bad[2] = {NAN, INFINITY};
    for (int t = 0; t < 2; t++) {
        tu_compose(p.w, p.rows, p.cols, p.u, p.s, p.v);
        p.w[p.m * p.n / 2] = bad[t];
        tu_to_float(p.wf, p.w, (size_t)p.m * p.n);
        int rc = p.prec == OIALR_PREC_F64 ? oialr_factor_compute_f64(b, p.ws, p.w) : oialr_factor_compute(b, p.ws, p.wf);
        ck_assert_int_eq(rc, OIALR_ERR_NUMERIC);
        ck_assert_ptr_nonnull(strstr(oialr_errmsg(), "non-finite"));
        ck_assert(!oialr_factor_valid(b));
        ck_assert_ptr_null(oialr_factor_sigma(b));
        double s = 0.5;
        ck_assert_int_eq(oialr_stability(a, b, &s), OIALR_ERR_ARG);
        ck_assert_double_eq(s, 0.5); /* untouched */
    }
    /* the workspace is still good afterwards */
    oialr_factor *c = factor_of(&p, p.u, p.s, p.v);
    ck_assert_double_eq_tol(stab(a, c), 1.0, tol_of(p.prec));
    oialr_factor_free(a); oialr_factor_free(b); oialr_factor_free(c);
    prob_free(&p);
}
END_TEST

START_TEST(test_zero_matrix) {
    prob p;
    prob_init(&p, &CASES[_i], 101 + _i);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    double *zs = calloc((size_t)p.n, sizeof(double));
    oialr_factor *z = factor_of(&p, p.u, zs, p.v);
    ck_assert_int_eq(oialr_factor_rank(z), 0);
    for (int i = 0; i < p.n; i++) ck_assert_double_eq(oialr_factor_sigma(z)[i], 0.0);
    ck_assert_double_eq(stab(a, z), 0.0);
    ck_assert_double_eq(stab(z, z), 0.0);
    double th[4];
    int64_t ku = -1;
    ck_assert_int_eq(oialr_principal_angles(p.ws, a, z, OIALR_SIDE_LEFT, 4, th, &ku), OIALR_OK);
    ck_assert_int_eq(ku, 0);
    ck_assert_double_eq(oialr_grassmann(th, 0), 0.0);
    oialr_spectrum sp;
    ck_assert_int_eq(oialr_spectrum_metrics(oialr_factor_sigma(z), p.rows, p.cols, 0.15, &sp), OIALR_OK);
    ck_assert_int_eq(sp.cutoff_rank, 0);
    ck_assert_double_eq(sp.frobenius, 0.0);
    ck_assert_double_eq(sp.stable_rank, 0.0);
    ck_assert_double_eq(sp.effective_rank, 0.0);
    ck_assert(isnan(sp.condition));
    ck_assert_double_eq(sp.param_share, 0.0);
    free(zs);
    oialr_factor_free(a); oialr_factor_free(z);
    prob_free(&p);
}
END_TEST

START_TEST(test_rank_deficient) {
    prob p;
    prob_init(&p, &CASES[_i], 111 + _i);
    /* rank 5: σ = (3, 2.5, 2, 1.5, 1, 0, ...) */
    for (int i = 0; i < p.n; i++) p.s[i] = i < 5 ? 3.0 - 0.5 * i : 0.0;
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    ck_assert_int_eq(oialr_factor_rank(a), 5);
    ck_assert_double_eq_tol(stab(a, a), 5.0 / p.n, tol_of(p.prec));
    /* Q = U_5 V_5ᵀ exactly, whatever LAPACK put in the null space */
    double *q = malloc(sizeof(double) * p.m * p.n), *ex = malloc(sizeof(double) * p.m * p.n);
    ck_assert_int_eq(oialr_factor_polar(a, q), OIALR_OK);
    for (int i = 0; i < p.m; i++)
        for (int j = 0; j < p.n; j++) {
            double acc = 0;
            for (int k = 0; k < 5; k++) acc += p.u[i + k * p.m] * p.v[j + k * p.n];
            ex[i + (size_t)j * p.m] = acc;
        }
    ck_assert_double_le(tu_maxdiff(q, ex, (size_t)p.m * p.n), tol_of(p.prec));
    /* angles clamp k to the rank */
    double th[16];
    int64_t ku;
    ck_assert_int_eq(oialr_principal_angles(p.ws, a, a, OIALR_SIDE_LEFT, 10, th, &ku), OIALR_OK);
    ck_assert_int_eq(ku, 5);
    free(q); free(ex);
    oialr_factor_free(a);
    prob_free(&p);
}
END_TEST

START_TEST(test_vectors) {
    /* n = 1: a row or column vector; S = ±1 */
    const double w[6] = {1, -2, 3, 0.5, 0, 2};
    double wn[6];
    for (int i = 0; i < 6; i++) wn[i] = -w[i];
    oialr_svd_ws *ws;
    ck_assert_int_eq(oialr_svd_ws_new(&ws, OIALR_PREC_F64), OIALR_OK);
    for (int orient = 0; orient < 2; orient++) {
        int rows = orient ? 6 : 1, cols = orient ? 1 : 6;
        oialr_factor *a, *b;
        ck_assert_int_eq(oialr_factor_new(&a, rows, cols, OIALR_PREC_F64), OIALR_OK);
        ck_assert_int_eq(oialr_factor_new(&b, rows, cols, OIALR_PREC_F64), OIALR_OK);
        ck_assert_int_eq(oialr_factor_compute_f64(a, ws, w), OIALR_OK);
        ck_assert_int_eq(oialr_factor_compute_f64(b, ws, wn), OIALR_OK);
        ck_assert_int_eq(oialr_factor_n(a), 1);
        ck_assert_int_eq(oialr_factor_m(a), 6);
        ck_assert_double_eq_tol(oialr_factor_sigma(a)[0], sqrt(1 + 4 + 9 + 0.25 + 4), 1e-12);
        ck_assert_double_eq_tol(stab(a, a), 1.0, 1e-12);
        ck_assert_double_eq_tol(stab(a, b), -1.0, 1e-12);
        oialr_factor_free(a); oialr_factor_free(b);
    }
    oialr_svd_ws_free(ws);
}
END_TEST

START_TEST(test_bad_arguments) {
    oialr_svd_ws *ws, *ws64;
    oialr_factor *f = NULL, *g, *h, *d;
    ck_assert_int_eq(oialr_svd_ws_new(&ws, 7), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_svd_ws_new(&ws, OIALR_PREC_F32), OIALR_OK);
    ck_assert_int_eq(oialr_svd_ws_new(&ws64, OIALR_PREC_F64), OIALR_OK);
    ck_assert_int_eq(oialr_svd_ws_reserve(ws, 0, 4), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_factor_new(&f, 0, 3, OIALR_PREC_F32), OIALR_ERR_ARG);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(oialr_factor_new(&f, 3, -1, OIALR_PREC_F32), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_factor_new(&f, 3, 3, 5), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_factor_new(&f, INT64_MAX / 2, 3, OIALR_PREC_F32), OIALR_ERR_OVERFLOW);
    ck_assert_int_eq(oialr_factor_new(&f, 4, 3, OIALR_PREC_F32), OIALR_OK);
    ck_assert_int_eq(oialr_factor_new(&g, 3, 4, OIALR_PREC_F32), OIALR_OK);
    ck_assert_int_eq(oialr_factor_new(&h, 4, 3, OIALR_PREC_F32), OIALR_OK);
    ck_assert_int_eq(oialr_factor_new(&d, 4, 3, OIALR_PREC_F64), OIALR_OK);
    const float w[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13};
    const double wd[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13};
    ck_assert_int_eq(oialr_factor_compute(f, ws, NULL), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_factor_compute(f, ws64, w), OIALR_ERR_MISMATCH); /* precision of ws */
    ck_assert_int_eq(oialr_factor_compute(f, ws, w), OIALR_OK);
    ck_assert_int_eq(oialr_factor_compute(g, ws, w), OIALR_OK);
    ck_assert_int_eq(oialr_factor_compute_f64(d, ws64, wd), OIALR_OK);
    double s;
    ck_assert_int_eq(oialr_stability(f, h, &s), OIALR_ERR_ARG);      /* h never computed */
    ck_assert_int_eq(oialr_stability(f, g, &s), OIALR_ERR_MISMATCH); /* 4x3 vs 3x4 */
    ck_assert_int_eq(oialr_stability(f, d, &s), OIALR_ERR_MISMATCH); /* f32 vs f64 */
    ck_assert_int_eq(oialr_stability(f, f, NULL), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_stability(NULL, f, &s), OIALR_ERR_ARG);
    double th[3];
    int64_t ku;
    ck_assert_int_eq(oialr_principal_angles(ws, f, f, 2, 2, th, &ku), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_principal_angles(ws, f, f, OIALR_SIDE_LEFT, -1, th, &ku), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_principal_angles(ws64, f, f, OIALR_SIDE_LEFT, 2, th, &ku), OIALR_ERR_MISMATCH);
    ck_assert_int_eq(oialr_principal_angles(ws, f, f, OIALR_SIDE_LEFT, 99, th, &ku), OIALR_OK);
    ck_assert_int_eq(ku, 3);
    oialr_spectrum sp;
    const double up[3] = {1, 2, 0}, neg[3] = {2, 1, -1}, nan3[3] = {NAN, 1, 0};
    ck_assert_int_eq(oialr_spectrum_metrics(up, 3, 3, 0.15, &sp), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_spectrum_metrics(neg, 3, 3, 0.15, &sp), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_spectrum_metrics(nan3, 3, 3, 0.15, &sp), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_spectrum_metrics(wd, 3, 3, 1.5, &sp), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_spectrum_metrics(wd, 3, 3, NAN, &sp), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_spectrum_metrics(NULL, 3, 3, 0.1, &sp), OIALR_ERR_ARG);
    oialr_factor_free(f); oialr_factor_free(g); oialr_factor_free(h); oialr_factor_free(d);
    oialr_factor_free(NULL);
    oialr_svd_ws_free(ws); oialr_svd_ws_free(ws64);
    oialr_svd_ws_free(NULL);
}
END_TEST

/* --------------------------------------------------------------------------- */
/* Gram: the Gram path (svd_ws_set_gram) against float64 gesdd, the reference */

static void gram_on(void) { use_gram = 1; }
static void gram_off(void) { use_gram = 0; }

/* Factor of w (rows×cols float32) on the Gram path or by float64 gesdd. */
static oialr_factor *factor_by(const float *w, int rows, int cols, int prec, int gram, int64_t *ill) {
    oialr_svd_ws *ws;
    oialr_factor *f;
    ck_assert_int_eq(oialr_svd_ws_new(&ws, gram ? prec : OIALR_PREC_F64), OIALR_OK);
    svd_ws_set_gram(ws, gram);
    ck_assert_int_eq(oialr_factor_new(&f, rows, cols, gram ? prec : OIALR_PREC_F64), OIALR_OK);
    int rc = oialr_factor_compute(f, ws, w);
    ck_assert_msg(rc == OIALR_OK, "compute: %s", oialr_errmsg());
    int64_t g, i;
    svd_ws_gram_counts(ws, &g, &i);
    ck_assert_int_eq(g + i, gram ? 1 : 0);
    if (ill) *ill = i;
    oialr_svd_ws_free(ws);
    return f;
}

/* Every metric of a pair of snapshots, fast path against the reference:
 * S, σ (relative to σ₁ and, for σₙ, to itself), the rank, and the left
 * and right principal angles (top k). */
static void gram_compare(int rows, int cols, double kappa, uint64_t seed, int expect_ill) {
    int m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows, k = n >= 3 ? n / 3 : 1;
    double *u = malloc(sizeof(double) * m * n), *v = malloc(sizeof(double) * n * n), *s = malloc(sizeof(double) * n);
    double *w = malloc(sizeof(double) * m * n);
    float *wa = malloc(sizeof(float) * m * n), *wb = malloc(sizeof(float) * m * n);
    tu_orthonormal(u, m, n, seed);
    tu_orthonormal(v, n, n, seed + 1);
    for (int i = 0; i < n; i++) s[i] = n > 1 ? pow(kappa, -(double)i / (n - 1)) : 1.0; /* σ₁/σₙ = kappa */
    tu_compose(w, rows, cols, u, s, v);
    tu_to_float(wa, w, (size_t)m * n);
    for (int j = 0; j < k && n > 1; j++) {
        tu_rotate_cols(u, m, j, n - 1 - j, 0.01 * (j + 1));
        tu_rotate_cols(v, n, j, k + j, 0.002);
    }
    tu_compose(w, rows, cols, u, s, v);
    tu_to_float(wb, w, (size_t)m * n);
    for (int prec = OIALR_PREC_F32; prec <= OIALR_PREC_F64; prec++) {
        int64_t ill_a, ill_b;
        oialr_factor *fa = factor_by(wa, rows, cols, prec, 1, &ill_a), *fb = factor_by(wb, rows, cols, prec, 1, &ill_b);
        oialr_factor *ra = factor_by(wa, rows, cols, prec, 0, NULL), *rb = factor_by(wb, rows, cols, prec, 0, NULL);
        ck_assert_int_eq(ill_a, expect_ill);
        ck_assert_int_eq(ill_b, expect_ill);
        double sf = stab(fa, fb), sr = stab(ra, rb);
        ck_assert_msg(fabs(sf - sr) <= 1e-5, "%dx%d κ %g prec %d: S %.12f, gesdd %.12f", rows, cols, kappa, prec, sf, sr);
        ck_assert_msg(fabs(stab(fa, fa) - 1.0) <= 1e-5, "S(W, W) = %.12f", stab(fa, fa));
        const double *gs = oialr_factor_sigma(fb), *rs = oialr_factor_sigma(rb);
        for (int i = 0; i < n; i++)
            ck_assert_msg(fabs(gs[i] - rs[i]) <= 1e-5 * rs[0], "σ_%d %.12g, gesdd %.12g", i, gs[i], rs[i]);
        ck_assert_msg(fabs(gs[n - 1] - rs[n - 1]) <= 1e-5 * rs[n - 1], "σ_n %.12g, gesdd %.12g", gs[n - 1], rs[n - 1]);
        ck_assert_int_eq(oialr_factor_rank(fb), oialr_factor_rank(rb));
        /* angles: the float64 paths agree to 1e-5 relative; a float32
         * factor (Q, Vᵀ rounded) to the float32 tolerance */
        oialr_svd_ws *wsf, *wsr;
        ck_assert_int_eq(oialr_svd_ws_new(&wsf, prec), OIALR_OK);
        ck_assert_int_eq(oialr_svd_ws_new(&wsr, OIALR_PREC_F64), OIALR_OK);
        double *tf = malloc(sizeof(double) * n), *tr = malloc(sizeof(double) * n);
        for (int side = 0; side < 2; side++) {
            int64_t kf, kr;
            ck_assert_int_eq(oialr_principal_angles(wsf, fa, fb, side, k, tf, &kf), OIALR_OK);
            ck_assert_int_eq(oialr_principal_angles(wsr, ra, rb, side, k, tr, &kr), OIALR_OK);
            ck_assert_int_eq(kf, kr);
            double gf = oialr_grassmann(tf, kf), gr = oialr_grassmann(tr, kr);
            double tol = prec == OIALR_PREC_F64 ? 1e-5 * gr + 1e-12 : 1e-3; /* + 1e-12: a zero angle */
            ck_assert_msg(fabs(gf - gr) <= tol, "side %d: Grassmann %.12g, gesdd %.12g", side, gf, gr);
            ck_assert_msg(fabs(tf[kf - 1] - tr[kr - 1]) <= (prec == OIALR_PREC_F64 ? 1e-5 * tr[kr - 1] + 1e-12 : 1e-3),
                          "side %d: largest angle %.12g, gesdd %.12g", side, tf[kf - 1], tr[kr - 1]);
        }
        free(tf); free(tr);
        oialr_svd_ws_free(wsf); oialr_svd_ws_free(wsr);
        oialr_factor_free(fa); oialr_factor_free(fb); oialr_factor_free(ra); oialr_factor_free(rb);
    }
    free(u); free(v); free(s); free(w); free(wa); free(wb);
}

/* Well and badly conditioned, below the Gram path's limit (1e5): no gesdd. */
START_TEST(test_gram_vs_gesdd) {
    static const struct { int rows, cols; double kappa; } C[] = {
        {120, 80, 10}, {80, 120, 3e3}, {96, 96, 3e4}, {200, 64, 9e4}, {64, 1, 1}, {1, 40, 1}};
    gram_compare(C[_i].rows, C[_i].cols, C[_i].kappa, 500 + _i, 0);
}
END_TEST

/* Above it the Gram path hands the matrix to float64 gesdd (and a
 * float32 factor gets gesdd's float64 answer rounded). */
START_TEST(test_gram_ill_conditioned) {
    static const struct { int rows, cols; double kappa; } C[] = {{96, 96, 1e7}, {120, 60, 3e5}, {50, 100, 1e12}};
    gram_compare(C[_i].rows, C[_i].cols, C[_i].kappa, 600 + _i, 1);
}
END_TEST

/* The ill-conditioned route forced on a well-conditioned matrix gives the
 * Gram path's answers; gesdd's own fallback (gesvd) still works below it. */
START_TEST(test_gram_forced_routes) {
    prob p;
    prob_init(&p, &CASES[_i], 700 + _i);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    svd_ws_force_ill(p.ws, 1);
    oialr_svd_ws_force_fallback(p.ws, 1);
    oialr_factor *b = factor_of(&p, p.u, p.s, p.v);
    int64_t g, ill;
    svd_ws_gram_counts(p.ws, &g, &ill);
    ck_assert_int_eq(g, 1);
    ck_assert_int_eq(ill, 1);
    ck_assert_int_eq(oialr_svd_ws_fallbacks(p.ws), 1); /* gesdd "failed": gesvd */
    ck_assert_double_eq_tol(stab(a, b), 1.0, 1e-5);
    ck_assert_double_le(tu_maxdiff(oialr_factor_sigma(a), oialr_factor_sigma(b), (size_t)p.n), 1e-5 * p.s[0]);
    double *qa = malloc(sizeof(double) * p.m * p.n), *qb = malloc(sizeof(double) * p.m * p.n);
    ck_assert_int_eq(oialr_factor_polar(a, qa), OIALR_OK);
    ck_assert_int_eq(oialr_factor_polar(b, qb), OIALR_OK);
    ck_assert_double_le(tu_maxdiff(qa, qb, (size_t)p.m * p.n), p.prec == OIALR_PREC_F64 ? 1e-10 : 1e-6);
    free(qa); free(qb);
    oialr_factor_free(a); oialr_factor_free(b);
    prob_free(&p);
}
END_TEST

/* A float32 factor on the Gram path is float64-accurate: S of a rotation
 * known exactly, at κ = 3e4 where float32 gesdd is off by ~1e-3. */
START_TEST(test_gram_f32_accuracy) {
    shape_case c = {90, 60, OIALR_PREC_F32};
    prob p;
    prob_init(&p, &c, 800);
    svd_ws_set_gram(p.ws, 1);
    for (int i = 0; i < p.n; i++) p.s[i] = pow(3e4, -(double)i / (p.n - 1));
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v);
    double *ub = dup(p.u, (size_t)p.m * p.n);
    for (int j = 0; j < 3; j++) tu_rotate_cols(ub, p.m, p.n - 1 - 2 * j, p.n - 2 - 2 * j, 0.05);
    oialr_factor *b = factor_of(&p, ub, p.s, p.v);
    double expect = 1.0 - (6.0 / p.n) * (1.0 - cos(0.05));
    /* the float32 storage of W moves its small singular vectors by ~eps32 κ */
    ck_assert_msg(fabs(stab(a, b) - expect) <= 1e-4, "S %.10f expected %.10f", stab(a, b), expect);
    free(ub);
    oialr_factor_free(a); oialr_factor_free(b);
    prob_free(&p);
}
END_TEST

/* The analyzer reads a snapshot straight into the factor's own buffer
 * (oialr_factor_input_buffer): the Gram path, which reads W by blocks and
 * writes Q over it (wide) or works from a copy (tall), gives the same
 * factor as from a separate input. */
START_TEST(test_gram_input_buffer) {
    prob p;
    prob_init(&p, &CASES[_i], 900 + _i);
    svd_ws_set_gram(p.ws, 1);
    oialr_factor *a = factor_of(&p, p.u, p.s, p.v), *b;
    ck_assert_int_eq(oialr_factor_new(&b, p.rows, p.cols, p.prec), OIALR_OK);
    float *in = oialr_factor_input_buffer(b);
    memcpy(in, p.wf, sizeof(float) * p.m * p.n); /* factor_of left W's float copy in p.wf */
    if (p.prec == OIALR_PREC_F32) ck_assert_int_eq(oialr_factor_compute(b, p.ws, in), OIALR_OK);
    else ck_assert_int_eq(oialr_factor_compute_f64(b, p.ws, p.w), OIALR_OK);
    double *qa = malloc(sizeof(double) * p.m * p.n), *qb = malloc(sizeof(double) * p.m * p.n);
    ck_assert_int_eq(oialr_factor_polar(a, qa), OIALR_OK);
    ck_assert_int_eq(oialr_factor_polar(b, qb), OIALR_OK);
    ck_assert_double_le(tu_maxdiff(qa, qb, (size_t)p.m * p.n), p.prec == OIALR_PREC_F64 ? 1e-12 : 1e-6);
    ck_assert_double_le(tu_maxdiff(oialr_factor_sigma(a), oialr_factor_sigma(b), (size_t)p.n), 1e-12);
    free(qa); free(qb);
    oialr_factor_free(a); oialr_factor_free(b);
    prob_free(&p);
}
END_TEST

static Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *core = tcase_create("Core");
    tcase_add_loop_test(core, test_self_stability, 0, NCASES);
    tcase_add_loop_test(core, test_rotation_known_angle, 0, NCASES);
    tcase_add_loop_test(core, test_prescribed_spectrum, 0, NCASES);
    tcase_add_loop_test(core, test_repeated_singular_values, 0, NCASES);
    tcase_add_loop_test(core, test_sign_flips, 0, NCASES);
    tcase_add_loop_test(core, test_principal_angles_known, 0, NCASES);
    tcase_add_loop_test(core, test_gesvd_fallback, 0, NCASES);
    tcase_add_test(core, test_float_input_double_svd);
    tcase_add_test(core, test_spectrum_exact);
    tcase_add_test(core, test_workspace_reuse);
    suite_add_tcase(s, core);
    TCase *lim = tcase_create("Limits");
    tcase_add_loop_test(lim, test_nan_inf_rejected, 0, NCASES);
    tcase_add_loop_test(lim, test_zero_matrix, 0, NCASES);
    tcase_add_loop_test(lim, test_rank_deficient, 0, NCASES);
    tcase_add_test(lim, test_vectors);
    tcase_add_test(lim, test_bad_arguments);
    suite_add_tcase(s, lim);
    /* the Core and Limits known answers again on the Gram path, and the
     * fast path against float64 gesdd */
    TCase *gram = tcase_create("Gram");
    tcase_add_checked_fixture(gram, gram_on, gram_off);
    tcase_add_loop_test(gram, test_self_stability, 0, NCASES);
    tcase_add_loop_test(gram, test_rotation_known_angle, 0, NCASES);
    tcase_add_loop_test(gram, test_prescribed_spectrum, 0, NCASES);
    tcase_add_loop_test(gram, test_repeated_singular_values, 0, NCASES);
    tcase_add_loop_test(gram, test_sign_flips, 0, NCASES);
    tcase_add_loop_test(gram, test_principal_angles_known, 0, NCASES);
    tcase_add_loop_test(gram, test_nan_inf_rejected, 0, NCASES);
    tcase_add_loop_test(gram, test_zero_matrix, 0, NCASES);
    /* float64 cases only: a rank-5 matrix rounded to float32 has full rank
     * in float64 arithmetic, which the Gram path uses (its rank is float64
     * gesdd's: test_gram_ill_conditioned) */
    tcase_add_loop_test(gram, test_rank_deficient, 0, 3);
    tcase_add_loop_test(gram, test_gram_vs_gesdd, 0, 6);
    tcase_add_loop_test(gram, test_gram_ill_conditioned, 0, 3);
    tcase_add_loop_test(gram, test_gram_forced_routes, 0, NCASES);
    tcase_add_test(gram, test_gram_f32_accuracy);
    tcase_add_loop_test(gram, test_gram_input_buffer, 0, NCASES);
    suite_add_tcase(s, gram);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
