/*
 * check_lowrank.c — the low-rank layers of OIALR (nn/lowrank.h), dense and
 * conv: the fast kernels against references that form W = U Σ Vᵀ, and
 * finite-difference gradient checks of the input, Σ and the bias, over
 * tables of shapes (tall, wide, rank 1, full rank, a batch of one; for the
 * conv also strides, padding, 1x1 and 3x3 kernels, OC > K, 1..3 threads).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "nn/lowrank.h"
#include "nn/par.h"
#include "util_grad.h"

#define ATOL 1e-4
#define RTOL 1e-3

static const struct {
    int N, C, OC, R, bias;
} cases[] = {
    {4, 7, 5, 3, 1}, {1, 6, 9, 2, 1}, {8, 12, 4, 4, 0}, {3, 5, 5, 5, 1}, {6, 16, 10, 1, 1}, {130, 33, 21, 8, 1},
};
#define NCASE ((int)(sizeof cases / sizeof cases[0]))

typedef struct lr_ctx {
    int N, C, OC, R;
    float *x, *u, *s, *v, *b, *y, *mid, *scratch, *dx, *ds, *db;
} lr_ctx;

static void lr_alloc(lr_ctx *k, int i, uint64_t seed) {
    k->N = cases[i].N, k->C = cases[i].C, k->OC = cases[i].OC, k->R = cases[i].R;
    size_t N = (size_t)k->N, C = (size_t)k->C, OC = (size_t)k->OC, R = (size_t)k->R;
    k->x = tu_alloc(N * C), k->u = tu_alloc(OC * R), k->s = tu_alloc(R * R), k->v = tu_alloc(C * R);
    k->b = cases[i].bias ? tu_alloc(OC) : NULL;
    k->y = tu_alloc(N * OC), k->mid = tu_alloc(N * R), k->scratch = tu_alloc(lowrank_scratch(k->N, k->R));
    k->dx = tu_alloc(N * C), k->ds = tu_alloc(R * R), k->db = tu_alloc(OC);
    tu_rng r;
    tu_rng_seed(&r, seed);
    tu_fill_uniform(k->x, N * C, &r, -1, 1);
    tu_fill_uniform(k->u, OC * R, &r, -1, 1);
    tu_fill_uniform(k->s, R * R, &r, -1, 1);
    tu_fill_uniform(k->v, C * R, &r, -1, 1);
    if (k->b) tu_fill_uniform(k->b, OC, &r, -1, 1);
}

static void lr_free(lr_ctx *k) {
    free(k->x), free(k->u), free(k->s), free(k->v), free(k->b), free(k->y), free(k->mid), free(k->scratch);
    free(k->dx), free(k->ds), free(k->db);
}

static void lr_fwd(void *c) {
    lr_ctx *k = c;
    lowrank_forward(k->y, k->mid, k->scratch, k->x, k->u, k->s, k->v, k->b, k->N, k->C, k->OC, k->R);
}

static void lr_bwd(void *c, const float *dy) {
    lr_ctx *k = c;
    lowrank_backward(k->dx, k->ds, k->b ? k->db : NULL, k->scratch, dy, k->mid, k->u, k->s, k->v, k->N, k->C,
                     k->OC, k->R);
}

/* fast == naive, forward and backward, into pre-filled gradients */
START_TEST(test_lowrank_fast_vs_naive) {
    lr_ctx k;
    lr_alloc(&k, _i, 11 + (uint64_t)_i);
    size_t N = (size_t)k.N, C = (size_t)k.C, OC = (size_t)k.OC, R = (size_t)k.R;
    float *y2 = tu_alloc(N * OC), *dy = tu_alloc(N * OC), *dx2 = tu_alloc(N * C), *ds2 = tu_alloc(R * R);
    float *db2 = tu_alloc(OC);
    tu_rng r;
    tu_rng_seed(&r, 5);
    tu_fill_uniform(dy, N * OC, &r, -1, 1);
    tu_fill_uniform(k.dx, N * C, &r, -1, 1), memcpy(dx2, k.dx, N * C * sizeof *dx2);
    tu_fill_uniform(k.ds, R * R, &r, -1, 1), memcpy(ds2, k.ds, R * R * sizeof *ds2);
    tu_fill_uniform(k.db, OC, &r, -1, 1), memcpy(db2, k.db, OC * sizeof *db2);
    lr_fwd(&k);
    lowrank_forward_naive(y2, k.x, k.u, k.s, k.v, k.b, k.N, k.C, k.OC, k.R);
    ck_assert_msg(tu_close_ratio(k.y, y2, N * OC, ATOL, RTOL) <= 1, "forward, case %d", _i);
    for (int with_dinp = 0; with_dinp < 2; with_dinp++) {
        lowrank_backward(with_dinp ? k.dx : NULL, k.ds, k.db, k.scratch, dy, k.mid, k.u, k.s, k.v, k.N, k.C, k.OC,
                         k.R);
        lowrank_backward_naive(with_dinp ? dx2 : NULL, ds2, db2, dy, k.x, k.u, k.s, k.v, k.N, k.C, k.OC, k.R);
        ck_assert_msg(tu_close_ratio(k.dx, dx2, N * C, ATOL, RTOL) <= 1, "dinp, case %d", _i);
        ck_assert_msg(tu_close_ratio(k.ds, ds2, R * R, ATOL, RTOL) <= 1, "ds, case %d", _i);
        ck_assert_msg(tu_close_ratio(k.db, db2, OC, ATOL, RTOL) <= 1, "db, case %d", _i);
    }
    free(y2), free(dy), free(dx2), free(ds2), free(db2);
    lr_free(&k);
}
END_TEST

START_TEST(test_lowrank_gradcheck) {
    lr_ctx k;
    lr_alloc(&k, _i, 3 + (uint64_t)_i);
    size_t N = (size_t)k.N, C = (size_t)k.C, OC = (size_t)k.OC, R = (size_t)k.R;
    tu_param ps[3] = {{"x", k.x, k.dx, N * C}, {"s", k.s, k.ds, R * R}, {"b", k.b, k.b ? k.db : NULL, OC}};
    tu_grad_problem p = {&k, lr_fwd, lr_bwd, k.y, N * OC, ps, k.b ? 3 : 2};
    tu_grad_result res = tu_grad_check(&p, NULL);
    ck_assert_msg(res.ok, "low-rank dense grad, case %d: %s", _i, res.msg);
    lr_free(&k);
}
END_TEST

// ---------------------------------------------------------------------------
// conv: a weight [OC, C, KH, KW] held as u[OC,R] s[R,R] vt[R,C,KH,KW]

static const struct {
    int B, C, H, W, OC, KH, KW, stride, pad, R;
} conv_cases[] = {
    {2, 3, 8, 8, 6, 3, 3, 1, 1, 3},    /* 3x3 same conv, pad 1 */
    {2, 4, 7, 9, 5, 3, 3, 2, 1, 2},    /* stride 2, pad 1, odd, non-square */
    {1, 6, 5, 5, 4, 1, 1, 1, 0, 4},    /* 1x1, batch 1, R = min(OC, K) = OC */
    {3, 2, 6, 6, 8, 1, 1, 1, 0, 2},    /* 1x1, OC > K, R = min(OC, K) = K */
    {2, 3, 6, 6, 5, 3, 3, 1, 1, 1},    /* R = 1 */
    {2, 2, 5, 5, 20, 3, 3, 1, 0, 18},  /* 3x3 with OC > K = 18, full rank, no pad */
    {2, 3, 8, 8, 4, 1, 1, 2, 0, 2},    /* strided 1x1 (ResNet shortcut) */
    {1, 3, 9, 9, 4, 3, 3, 2, 1, 1},    /* batch 1, stride 2, R = 1 */
    {5, 8, 12, 12, 16, 3, 3, 1, 1, 6}, /* several samples per conv GEMM chunk */
    {3, 4, 24, 24, 8, 3, 3, 1, 1, 4},  /* P >= 512: one sample per conv GEMM */
};
#define NCONV ((int)(sizeof conv_cases / sizeof conv_cases[0]))

typedef struct lrc_ctx {
    conv2d_dims d, dv; /* the full conv and the Vᵀ conv (OC = R) */
    int B, R;
    size_t nx, ny, nm, nu, nv; /* floats of inp, out, mid, u, vt */
    float *x, *u, *s, *vt, *b, *y, *mid, *scratch, *dx, *ds, *db;
} lrc_ctx;

static void nan_fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

/* Random inp, u, s, vt (and b); out, mid and the scratch hold NaN, so a
 * forward that leaves part of them unwritten, or reads scratch it did not
 * write, shows. */
static void lrc_alloc(lrc_ctx *k, int i, int bias, uint64_t seed) {
    const int OC = conv_cases[i].OC, R = conv_cases[i].R;
    k->d = conv2d_make(conv_cases[i].C, conv_cases[i].H, conv_cases[i].W, OC, conv_cases[i].KH, conv_cases[i].KW,
                       conv_cases[i].stride, conv_cases[i].pad);
    k->dv = conv2d_make(k->d.C, k->d.H, k->d.W, R, k->d.KH, k->d.KW, k->d.stride, k->d.pad);
    k->B = conv_cases[i].B, k->R = R;
    const size_t B = (size_t)k->B, P = (size_t)k->d.OH * k->d.OW, K = (size_t)k->d.C * k->d.KH * k->d.KW;
    k->nx = B * k->d.C * k->d.H * k->d.W, k->ny = B * OC * P, k->nm = B * R * P;
    k->nu = (size_t)OC * R, k->nv = (size_t)R * K;
    k->x = tu_alloc(k->nx), k->u = tu_alloc(k->nu), k->s = tu_alloc((size_t)R * R), k->vt = tu_alloc(k->nv);
    k->b = bias ? tu_alloc((size_t)OC) : NULL;
    k->y = tu_alloc(k->ny), k->mid = tu_alloc(k->nm);
    const size_t nscr = lowrank_conv_scratch(&k->d, k->B, R);
    k->scratch = tu_alloc(nscr);
    k->dx = tu_alloc(k->nx), k->ds = tu_alloc((size_t)R * R), k->db = tu_alloc((size_t)OC);
    tu_rng r;
    tu_rng_seed(&r, seed);
    tu_fill_uniform(k->x, k->nx, &r, -1, 1);
    tu_fill_uniform(k->u, k->nu, &r, -1, 1);
    tu_fill_uniform(k->s, (size_t)R * R, &r, -1, 1);
    tu_fill_uniform(k->vt, k->nv, &r, -1, 1);
    if (k->b) tu_fill_uniform(k->b, (size_t)OC, &r, -1, 1);
    nan_fill(k->y, k->ny), nan_fill(k->mid, k->nm), nan_fill(k->scratch, nscr);
}

static void lrc_free(lrc_ctx *k) {
    free(k->x), free(k->u), free(k->s), free(k->vt), free(k->b), free(k->y), free(k->mid), free(k->scratch);
    free(k->dx), free(k->ds), free(k->db);
}

static void lrc_fwd(void *c) {
    lrc_ctx *k = c;
    lowrank_conv_forward(k->y, k->mid, k->scratch, k->x, k->u, k->s, k->vt, k->b, &k->d, k->B, k->R);
}

static void lrc_bwd(void *c, const float *dy) {
    lrc_ctx *k = c;
    lowrank_conv_backward(k->dx, k->ds, k->b ? k->db : NULL, k->scratch, dy, k->mid, k->x, k->u, k->s, k->vt, &k->d,
                          k->B, k->R);
}

/* fast == naive for case i: out, mid (== the Vᵀ conv), and backward into
 * random pre-filled gradients, without and with dinp (db NULL without bias) */
static void lrc_compare(int i, int bias) {
    lrc_ctx k;
    lrc_alloc(&k, i, bias, 21 + (uint64_t)i);
    const size_t R = (size_t)k.R, OC = (size_t)k.d.OC;
    float *y2 = tu_alloc(k.ny), *mid2 = tu_alloc(k.nm), *dy = tu_alloc(k.ny), *dx2 = tu_alloc(k.nx);
    float *ds2 = tu_alloc(R * R), *db2 = tu_alloc(OC);
    tu_rng r;
    tu_rng_seed(&r, 8);
    tu_fill_uniform(dy, k.ny, &r, -1, 1);
    tu_fill_uniform(k.dx, k.nx, &r, -1, 1), memcpy(dx2, k.dx, k.nx * sizeof *dx2);
    tu_fill_uniform(k.ds, R * R, &r, -1, 1), memcpy(ds2, k.ds, R * R * sizeof *ds2);
    tu_fill_uniform(k.db, OC, &r, -1, 1), memcpy(db2, k.db, OC * sizeof *db2);
    lrc_fwd(&k);
    lowrank_conv_forward_naive(y2, k.x, k.u, k.s, k.vt, k.b, &k.d, k.B, k.R);
    conv2d_forward_naive(mid2, k.x, k.vt, NULL, &k.dv, k.B);
    ck_assert_msg(tu_close_ratio(k.y, y2, k.ny, ATOL, RTOL) <= 1, "conv forward, case %d bias %d", i, bias);
    ck_assert_msg(tu_close_ratio(k.mid, mid2, k.nm, ATOL, RTOL) <= 1, "conv mid, case %d bias %d", i, bias);
    float *db = bias ? k.db : NULL, *db2p = bias ? db2 : NULL;
    for (int with_dinp = 0; with_dinp < 2; with_dinp++) {
        lowrank_conv_backward(with_dinp ? k.dx : NULL, k.ds, db, k.scratch, dy, k.mid, k.x, k.u, k.s, k.vt, &k.d,
                              k.B, k.R);
        lowrank_conv_backward_naive(with_dinp ? dx2 : NULL, ds2, db2p, dy, k.x, k.u, k.s, k.vt, &k.d, k.B, k.R);
        ck_assert_msg(tu_close_ratio(k.dx, dx2, k.nx, ATOL, RTOL) <= 1, "conv dinp, case %d bias %d dinp %d", i,
                      bias, with_dinp);
        ck_assert_msg(tu_close_ratio(k.ds, ds2, R * R, ATOL, RTOL) <= 1, "conv ds, case %d bias %d dinp %d", i, bias,
                      with_dinp);
        ck_assert_msg(tu_close_ratio(k.db, db2, OC, ATOL, RTOL) <= 1, "conv db, case %d bias %d dinp %d", i, bias,
                      with_dinp);
    }
    free(y2), free(mid2), free(dy), free(dx2), free(ds2), free(db2);
    lrc_free(&k);
}

START_TEST(test_lowrank_conv_fast_vs_naive) {
    lrc_compare(_i, 0);
    lrc_compare(_i, 1);
}
END_TEST

START_TEST(test_lowrank_conv_gradcheck) {
    lrc_ctx k;
    lrc_alloc(&k, _i, 1, 5 + (uint64_t)_i);
    const size_t R = (size_t)k.R;
    tu_param ps[3] = {{"x", k.x, k.dx, k.nx}, {"s", k.s, k.ds, R * R}, {"b", k.b, k.db, (size_t)k.d.OC}};
    tu_grad_problem p = {&k, lrc_fwd, lrc_bwd, k.y, k.ny, ps, 3};
    tu_grad_result res = tu_grad_check(&p, NULL);
    ck_assert_msg(res.ok, "low-rank conv grad, case %d: %s", _i, res.msg);
    lrc_free(&k);
}
END_TEST

/* The samples split across 1, 2 and 3 threads (nn/par.h): uneven shares,
 * private ds/db summed after; a batch of one on more threads than samples. */
static const int conv_thread_cases[] = {8, 9, 2};

START_TEST(test_lowrank_conv_threads) {
    const int saved = nn_threads();
    for (int nt = 1; nt <= 3; nt++) {
        openblas_set_num_threads(nt);
        ck_assert_int_eq(nn_threads(), nt);
        lrc_compare(conv_thread_cases[_i], 0);
        lrc_compare(conv_thread_cases[_i], 1);
    }
    openblas_set_num_threads(saved);
}
END_TEST

static Suite *lowrank_suite(void) {
    Suite *s = suite_create("lowrank");
    TCase *core = tcase_create("Core");
    tcase_add_loop_test(core, test_lowrank_fast_vs_naive, 0, NCASE);
    tcase_add_loop_test(core, test_lowrank_gradcheck, 0, NCASE);
    tcase_add_loop_test(core, test_lowrank_conv_fast_vs_naive, 0, NCONV);
    tcase_add_loop_test(core, test_lowrank_conv_gradcheck, 0, NCONV);
    tcase_add_loop_test(core, test_lowrank_conv_threads, 0,
                        (int)(sizeof conv_thread_cases / sizeof conv_thread_cases[0]));
    suite_add_tcase(s, core);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(lowrank_suite());
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
