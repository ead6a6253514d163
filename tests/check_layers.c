/*
 * tests/check_layers.c — the CNN and ViT layer kernels: fast paths against
 * their naive references, finite-difference gradient checks over tables of
 * shapes, batch norm train vs eval, attention against softmax(QKᵀ/√d)V.
 *
 * Suite "layers": case "Core" (normal shapes, loop tests over the tables)
 * and case "Limits" (degenerate sizes, NULL input gradients, and, when
 * Check forks, the assertions on impossible shapes).
 */
#include <check.h>
#include <stdio.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "nn/attention.h"
#include "model/graph.h"
#include "oialr/lowrank.h"
#include "nn/nn.h"
#include "nn/conv.h"
#include "nn/vec16.h"
#include "nn/embed.h"
#include "nn/norm.h"
#include "nn/par.h"
#include "nn/pool.h"
#include "util_grad.h"

/* fast vs naive: |a-b| <= ATOL + RTOL*|b| */
#define ATOL 1e-4
#define RTOL 1e-3

static void copy(float *dst, const float *src, size_t n)
{
    memcpy(dst, src, n * sizeof(float));
}

// ---------------------------------------------------------------------------
// conv2d

typedef struct conv_case {
    int B, C, H, W, OC, KH, KW, stride, pad, bias;
} conv_case;

static const conv_case conv_cases[] = {
    {2, 3, 8, 8, 4, 3, 3, 1, 1, 1},   /* same conv */
    {2, 2, 7, 9, 3, 3, 3, 2, 1, 1},   /* stride 2, odd, non-square */
    {1, 4, 6, 6, 5, 1, 1, 1, 0, 0},   /* 1x1, no bias */
    {3, 2, 5, 5, 2, 5, 5, 1, 2, 1},   /* 5x5 */
    {2, 3, 9, 9, 4, 3, 3, 3, 0, 1},   /* stride = kernel */
    {2, 2, 6, 5, 3, 2, 3, 2, 1, 1},   /* rectangular kernel */
    {1, 2, 4, 4, 3, 3, 3, 1, 2, 1},   /* pad wider than needed */
    {2, 3, 8, 8, 2, 1, 1, 2, 0, 1},   /* strided 1x1 (ResNet shortcut) */
    {2, 3, 5, 9, 4, 3, 3, 1, 1, 0},   /* same conv, non-square (shifted im2col) */
    {2, 2, 3, 3, 2, 5, 5, 1, 2, 1},   /* same 5x5 on 3x3: whole taps outside */
    /* conv2d_kernel_name: the direct 3x3 kernel (OC a multiple of 16; for
     * dinp C too) */
    {2, 3, 6, 7, 16, 3, 3, 1, 1, 1},   /* direct forward, im2col backward */
    {2, 16, 5, 6, 16, 3, 3, 1, 1, 0},  /* direct forward and dinp */
    {1, 16, 3, 19, 32, 3, 3, 1, 1, 1}, /* rows longer than 16, two output blocks */
    {1, 32, 2, 2, 16, 3, 3, 1, 1, 0},  /* 2x2 planes: every tap half outside */
    {2, 3, 7, 9, 16, 3, 3, 2, 1, 1},   /* stride 2 (phases), odd sizes */
    {1, 5, 8, 8, 16, 3, 3, 2, 1, 0},   /* stride 2, even sizes */
    {2, 16, 7, 9, 16, 3, 3, 2, 1, 1},  /* stride-2 dinp by phases, odd sizes */
    {1, 16, 8, 6, 32, 3, 3, 2, 1, 0},  /* the same, even sizes, two output blocks */
    {1, 32, 8, 6, 32, 3, 3, 2, 1, 0},  /* C = 32: im2col + sgemm for dinp, by measurement */
    {1, 16, 1, 3, 16, 3, 3, 2, 1, 1},  /* one input row: the odd-row phases are empty */
    {1, 16, 5, 37, 16, 3, 3, 2, 1, 0}, /* stride 2, rows of 37: two 32-float column splits, phase rows past 16 */
    {2, 4, 7, 6, 16, 1, 1, 2, 0, 1},   /* 1x1 stride 2 (the shortcut): im2col + sgemm, by measurement */
    {1, 3, 5, 5, 32, 1, 1, 1, 0, 0},   /* 1x1 stride 1 */
    /* the direct weight gradient groups G samples side by side (G = 7 here,
     * 8 at stride 2): a full group, then a partial one */
    {20, 3, 9, 9, 8, 3, 3, 1, 1, 1},   /* two groups a thread, OC not a multiple of 3 */
    {20, 2, 17, 17, 5, 3, 3, 2, 1, 0}, /* the same at stride 2 (phases) */
    {3, 2, 6, 6, 1, 3, 3, 1, 1, 1},    /* one output channel: the weight gradient's 1-channel tile */
    {2, 32, 6, 5, 16, 3, 3, 1, 1, 1},  /* C = 32 at stride 1: the direct weight gradient, by measurement */
};
#define NCONV ((int)(sizeof conv_cases / sizeof conv_cases[0]))

typedef struct conv_ctx {
    conv2d_dims d;
    int B;
    float *x, *w, *b, *y, *dx, *dw, *db, *scratch;
} conv_ctx;

static void conv_fwd(void *c)
{
    conv_ctx *k = c;
    conv2d_forward(k->y, k->x, k->w, k->b, k->scratch, &k->d, k->B);
}
static void conv_bwd(void *c, const float *dy)
{
    conv_ctx *k = c;
    conv2d_backward(k->dx, k->dw, k->b ? k->db : NULL, dy, k->x, k->w, k->scratch, &k->d, k->B, 0);
}

/* fast forward/backward == naive, with random pre-filled grads (accumulation) */
static void conv_compare(const conv_case *t, int with_dinp)
{
    conv2d_dims d = conv2d_make(t->C, t->H, t->W, t->OC, t->KH, t->KW, t->stride, t->pad);
    size_t nx = (size_t)t->B * t->C * t->H * t->W, nw = (size_t)t->OC * t->C * t->KH * t->KW;
    size_t ny = (size_t)t->B * t->OC * d.OH * d.OW;
    tu_rng r;
    tu_rng_seed(&r, 42 + (uint64_t)t->C * 7 + (uint64_t)t->H);
    float *x = tu_alloc(nx), *w = tu_alloc(nw), *b = tu_alloc(t->OC), *y1 = tu_alloc(ny), *y2 = tu_alloc(ny);
    float *dy = tu_alloc(ny), *dx1 = tu_alloc(nx), *dx2 = tu_alloc(nx), *dw1 = tu_alloc(nw), *dw2 = tu_alloc(nw);
    float *db1 = tu_alloc(t->OC), *db2 = tu_alloc(t->OC), *s = tu_alloc(conv2d_scratch_size(&d, t->B));
    tu_fill_uniform(x, nx, &r, -1, 1);
    tu_fill_uniform(w, nw, &r, -1, 1);
    tu_fill_uniform(b, t->OC, &r, -1, 1);
    tu_fill_uniform(dy, ny, &r, -1, 1);
    tu_fill_uniform(dx1, nx, &r, -1, 1);
    copy(dx2, dx1, nx);
    tu_fill_uniform(dw1, nw, &r, -1, 1);
    copy(dw2, dw1, nw);
    tu_fill_uniform(db1, t->OC, &r, -1, 1);
    copy(db2, db1, t->OC);
    const float *bb = t->bias ? b : NULL;
    conv2d_forward(y1, x, w, bb, s, &d, t->B);
    conv2d_forward_naive(y2, x, w, bb, &d, t->B);
    ck_assert_msg(tu_close_ratio(y1, y2, ny, ATOL, RTOL) <= 1, "conv fwd B%d C%d %dx%d OC%d k%dx%d s%d p%d", t->B,
                  t->C, t->H, t->W, t->OC, t->KH, t->KW, t->stride, t->pad);
    conv2d_backward(with_dinp ? dx1 : NULL, dw1, db1, dy, x, w, s, &d, t->B, 0);
    conv2d_backward_naive(with_dinp ? dx2 : NULL, dw2, db2, dy, x, w, &d, t->B);
    ck_assert_msg(tu_close_ratio(dx1, dx2, nx, ATOL, RTOL) <= 1, "conv dinp");
    ck_assert_msg(tu_close_ratio(dw1, dw2, nw, ATOL, RTOL) <= 1, "conv dw");
    ck_assert_msg(tu_close_ratio(db1, db2, t->OC, ATOL, RTOL) <= 1, "conv db");
    if (with_dinp) { /* set: the input gradient written over NaN == the naive one into zeros */
        for (size_t i = 0; i < nx; i++) dx1[i] = NAN, dx2[i] = 0.0f;
        conv2d_backward(dx1, NULL, NULL, dy, x, w, s, &d, t->B, 1);
        conv2d_backward_naive(dx2, NULL, NULL, dy, x, w, &d, t->B);
        ck_assert_msg(tu_close_ratio(dx1, dx2, nx, ATOL, RTOL) <= 1, "conv dinp set (%s)", conv2d_kernel_name(&d, t->B));
    }
    free(x), free(w), free(b), free(y1), free(y2), free(dy), free(dx1), free(dx2), free(dw1), free(dw2);
    free(db1), free(db2), free(s);
}

static void conv_gradcheck(const conv_case *t)
{
    conv_ctx k;
    k.d = conv2d_make(t->C, t->H, t->W, t->OC, t->KH, t->KW, t->stride, t->pad);
    k.B = t->B;
    size_t nx = (size_t)t->B * t->C * t->H * t->W, nw = (size_t)t->OC * t->C * t->KH * t->KW;
    size_t ny = (size_t)t->B * t->OC * k.d.OH * k.d.OW;
    tu_rng r;
    tu_rng_seed(&r, 7);
    k.x = tu_alloc(nx), k.w = tu_alloc(nw), k.b = t->bias ? tu_alloc(t->OC) : NULL, k.y = tu_alloc(ny);
    k.dx = tu_alloc(nx), k.dw = tu_alloc(nw), k.db = tu_alloc(t->OC);
    k.scratch = tu_alloc(conv2d_scratch_size(&k.d, t->B));
    tu_fill_uniform(k.x, nx, &r, -1, 1);
    tu_fill_uniform(k.w, nw, &r, -1, 1);
    if (k.b) tu_fill_uniform(k.b, t->OC, &r, -1, 1);
    tu_param ps[3] = {{"x", k.x, k.dx, nx}, {"w", k.w, k.dw, nw}, {"b", k.b, k.b ? k.db : NULL, (size_t)t->OC}};
    tu_grad_problem p = {&k, conv_fwd, conv_bwd, k.y, ny, ps, t->bias ? 3 : 2};
    tu_grad_result res = tu_grad_check(&p, NULL);
    ck_assert_msg(res.ok, "conv grad (C%d %dx%d k%d s%d p%d): %s", t->C, t->H, t->W, t->KH, t->stride, t->pad,
                  res.msg);
    free(k.x), free(k.w), free(k.b), free(k.y), free(k.dx), free(k.dw), free(k.db), free(k.scratch);
}

/* Every conv case runs three times (_i = 3 * case + level): with the
 * hand-written kernels off (the BLAS paths), the 8-float ones (on an AVX2 CPU;
 * else BLAS again) and the 16-float ones forced on, whatever this CPU would
 * choose (nn_simd), so every path is tested on every machine. */
static const conv_case *conv_case_kernels(int i)
{
    const int level = nn_simd_force(i % 3);
    const conv_case *t = &conv_cases[i / 3];
    const conv2d_dims d = conv2d_make(t->C, t->H, t->W, t->OC, t->KH, t->KW, t->stride, t->pad);
    const char *name = conv2d_kernel_name(&d, t->B);
    const int dinp = t->KH == 3 && t->KW == 3 && t->pad == 1 && t->stride == 1 && t->C % 16 == 0;
    if (level == NN_SIMD_BLAS)
        ck_assert_msg(strstr(name, "direct") == NULL, "kernels off: %s", name);
    if (level == NN_SIMD_V8)
        ck_assert_msg(strcmp(name, "direct (dinp) + im2col/sgemm (fwd, dw)") == 0 || (!dinp && !strstr(name, "direct")),
                      "8-float: %s", name);
    return t;
}

START_TEST(test_conv_fast_vs_naive)
{
    conv_compare(conv_case_kernels(_i), 1);
}
END_TEST

START_TEST(test_conv_gradcheck)
{
    conv_gradcheck(conv_case_kernels(_i));
}
END_TEST

/* A frozen weight: conv2d_backward with dw NULL skips the weight gradient
 * (and its im2col) and leaves dinp, db exactly as with dw, accumulated into
 * pre-filled values; also with db NULL, and the naive reference with dw NULL
 * agrees. */
static void conv_null_dw(const conv_case *t)
{
    conv2d_dims d = conv2d_make(t->C, t->H, t->W, t->OC, t->KH, t->KW, t->stride, t->pad);
    size_t nx = (size_t)t->B * t->C * t->H * t->W, nw = (size_t)t->OC * t->C * t->KH * t->KW;
    size_t ny = (size_t)t->B * t->OC * d.OH * d.OW, OC = (size_t)t->OC;
    tu_rng r;
    tu_rng_seed(&r, 99 + (uint64_t)t->OC);
    float *x = tu_alloc(nx), *w = tu_alloc(nw), *dy = tu_alloc(ny), *dw = tu_alloc(nw);
    float *dx1 = tu_alloc(nx), *dx2 = tu_alloc(nx), *dx3 = tu_alloc(nx), *dx4 = tu_alloc(nx);
    float *db1 = tu_alloc(OC), *db2 = tu_alloc(OC), *db4 = tu_alloc(OC), *s = tu_alloc(conv2d_scratch_size(&d, t->B));
    tu_fill_uniform(x, nx, &r, -1, 1);
    tu_fill_uniform(w, nw, &r, -1, 1);
    tu_fill_uniform(dy, ny, &r, -1, 1);
    tu_fill_uniform(dw, nw, &r, -1, 1);
    tu_fill_uniform(dx1, nx, &r, -1, 1);
    copy(dx2, dx1, nx), copy(dx3, dx1, nx), copy(dx4, dx1, nx);
    tu_fill_uniform(db1, OC, &r, -1, 1);
    copy(db2, db1, OC), copy(db4, db1, OC);
    conv2d_backward(dx1, dw, db1, dy, x, w, s, &d, t->B, 0);
    conv2d_backward(dx2, NULL, db2, dy, x, w, s, &d, t->B, 0);
    conv2d_backward(dx3, NULL, NULL, dy, x, w, s, &d, t->B, 0);
    conv2d_backward_naive(dx4, NULL, db4, dy, x, w, &d, t->B);
    ck_assert_msg(tu_max_abs_diff(dx2, dx1, nx) == 0, "dw NULL: dinp differs (C%d %dx%d OC%d k%d s%d p%d)", t->C,
                  t->H, t->W, t->OC, t->KH, t->stride, t->pad);
    ck_assert_msg(tu_max_abs_diff(db2, db1, OC) == 0, "dw NULL: db differs");
    ck_assert_msg(tu_max_abs_diff(dx3, dx1, nx) == 0, "dw, db NULL: dinp differs");
    ck_assert_msg(tu_close_ratio(dx4, dx1, nx, ATOL, RTOL) <= 1, "naive, dw NULL: dinp");
    ck_assert_msg(tu_close_ratio(db4, db1, OC, ATOL, RTOL) <= 1, "naive, dw NULL: db");
    free(x), free(w), free(dy), free(dw), free(dx1), free(dx2), free(dx3), free(dx4), free(db1), free(db2);
    free(db4), free(s);
}

START_TEST(test_conv_null_dw)
{
    conv_null_dw(conv_case_kernels(_i));
}
END_TEST

/* A batch that needs two GEMM chunks (K*P large): chunk edges are right. */
START_TEST(test_conv_chunks)
{
    conv_case t = {9, 256, 16, 16, 4, 3, 3, 1, 1, 1};
    conv2d_dims d = conv2d_make(t.C, t.H, t.W, t.OC, t.KH, t.KW, t.stride, t.pad);
    ck_assert_int_lt(conv2d_chunk(&d, t.B), t.B);
    conv_compare(&t, 1);
}
END_TEST

/* The batch split across threads (nn/par.h): 1, 2 and 3 threads (uneven
 * shares), one-sample chunks (the product written straight into out) and
 * multi-sample chunks, with and without bias; private dw/db summed after. */
static const conv_case thread_cases[] = {
    {9, 64, 16, 16, 8, 3, 3, 1, 1, 0},  /* nb = 1 */
    {7, 64, 32, 32, 8, 3, 3, 2, 1, 1},  /* nb = 1, strided, bias */
    {13, 16, 16, 16, 8, 3, 3, 1, 1, 1}, /* nb > 1, uneven chunks */
    {5, 16, 24, 24, 32, 3, 3, 1, 1, 1}, /* the direct kernel (nb = 1), uneven shares */
    {5, 16, 48, 48, 16, 3, 3, 2, 1, 0}, /* the direct kernel at stride 2 */
};

START_TEST(test_conv_threads)
{
    const int saved = nn_threads();
    for (int nt = 1; nt <= 3; nt++) {
        openblas_set_num_threads(nt);
        ck_assert_int_eq(nn_threads(), nt);
        const conv_case *t = &thread_cases[_i];
        conv2d_dims d = conv2d_make(t->C, t->H, t->W, t->OC, t->KH, t->KW, t->stride, t->pad);
        ck_assert_int_lt(conv2d_chunk(&d, t->B), t->B);
        conv_compare(t, 1);
        conv_compare(t, 0);
        conv_null_dw(t); /* threads > 0 keep a private db but no dw */
    }
    openblas_set_num_threads(saved);
}
END_TEST

// ---------------------------------------------------------------------------
// pooling

typedef struct pool_case {
    int BC, H, W, K, S, pad;
} pool_case;

static const pool_case pool_cases[] = {
    {3, 8, 8, 2, 2, 0}, {2, 7, 7, 3, 2, 1}, {2, 5, 6, 3, 1, 1}, {1, 9, 9, 3, 3, 0}, {2, 6, 6, 2, 1, 1},
};
#define NPOOL ((int)(sizeof pool_cases / sizeof pool_cases[0]))

typedef struct pool_ctx {
    const pool_case *t;
    int kind; /* 0 max, 1 avg, 2 global */
    float *x, *y, *dx;
    int32_t *am;
} pool_ctx;

static void pool_fwd(void *c)
{
    pool_ctx *k = c;
    const pool_case *t = k->t;
    if (k->kind == 0) maxpool2d_forward(k->y, k->am, k->x, t->BC, t->H, t->W, t->K, t->S, t->pad);
    if (k->kind == 1) avgpool2d_forward(k->y, k->x, t->BC, t->H, t->W, t->K, t->S, t->pad);
    if (k->kind == 2) global_avgpool_forward(k->y, k->x, t->BC, t->H * t->W);
}
static void pool_bwd(void *c, const float *dy)
{
    pool_ctx *k = c;
    const pool_case *t = k->t;
    if (k->kind == 0) maxpool2d_backward(k->dx, dy, k->am, t->BC, t->H, t->W, t->K, t->S, t->pad);
    if (k->kind == 1) avgpool2d_backward(k->dx, dy, t->BC, t->H, t->W, t->K, t->S, t->pad);
    if (k->kind == 2) global_avgpool_backward(k->dx, dy, t->BC, t->H * t->W);
}

START_TEST(test_pool)
{
    const pool_case *t = &pool_cases[_i];
    int OH = pool_out_size(t->H, t->K, t->S, t->pad), OW = pool_out_size(t->W, t->K, t->S, t->pad);
    size_t nx = (size_t)t->BC * t->H * t->W, ny = (size_t)t->BC * OH * OW;
    tu_rng r;
    tu_rng_seed(&r, 3);
    float *x = tu_alloc(nx), *y1 = tu_alloc(ny), *y2 = tu_alloc(ny), *dy = tu_alloc(ny);
    float *dx1 = tu_alloc(nx), *dx2 = tu_alloc(nx);
    int32_t *am = calloc(ny, sizeof *am);
    tu_fill_distinct(x, nx, &r, -2.0f, 0.05f);
    tu_fill_uniform(dy, ny, &r, -1, 1);
    /* max */
    maxpool2d_forward(y1, am, x, t->BC, t->H, t->W, t->K, t->S, t->pad);
    maxpool2d_forward_naive(y2, x, t->BC, t->H, t->W, t->K, t->S, t->pad);
    ck_assert(tu_max_abs_diff(y1, y2, ny) == 0.0);
    maxpool2d_backward(dx1, dy, am, t->BC, t->H, t->W, t->K, t->S, t->pad);
    maxpool2d_backward_naive(dx2, dy, x, t->BC, t->H, t->W, t->K, t->S, t->pad);
    ck_assert(tu_close_ratio(dx1, dx2, nx, 1e-6, 1e-6) <= 1);
    /* avg */
    memset(dx1, 0, nx * sizeof(float));
    memset(dx2, 0, nx * sizeof(float));
    avgpool2d_forward(y1, x, t->BC, t->H, t->W, t->K, t->S, t->pad);
    avgpool2d_forward_naive(y2, x, t->BC, t->H, t->W, t->K, t->S, t->pad);
    ck_assert(tu_close_ratio(y1, y2, ny, ATOL, RTOL) <= 1);
    avgpool2d_backward(dx1, dy, t->BC, t->H, t->W, t->K, t->S, t->pad);
    avgpool2d_backward_naive(dx2, dy, t->BC, t->H, t->W, t->K, t->S, t->pad);
    ck_assert(tu_close_ratio(dx1, dx2, nx, ATOL, RTOL) <= 1);
    /* gradient checks: max (distinct inputs 0.05 apart, eps 0.01: no argmax
     * change), avg, global */
    pool_ctx k = {t, 0, x, y1, dx1, am};
    tu_param ps[1] = {{"x", x, dx1, nx}};
    for (int kind = 0; kind < 3; kind++) {
        k.kind = kind;
        tu_grad_problem p = {&k, pool_fwd, pool_bwd, y1, kind == 2 ? (size_t)t->BC : ny, ps, 1};
        tu_grad_result res = tu_grad_check(&p, NULL);
        ck_assert_msg(res.ok, "pool kind %d case %d: %s", kind, _i, res.msg);
    }
    free(x), free(y1), free(y2), free(dy), free(dx1), free(dx2), free(am);
}
END_TEST

// ---------------------------------------------------------------------------
// batch norm and layer norm

typedef struct bn_case {
    int B, C, HW;
} bn_case;
/* the last three: channel groups of 64 + 6 (HW 1), lanes flushed to double
 * twice per channel (80 planes of 7 vectors), groups of 16 + 4 with a tail */
static const bn_case bn_cases[] = {{4, 3, 5}, {2, 5, 9}, {8, 2, 1}, {3, 4, 16}, {3, 70, 1}, {80, 3, 100}, {12, 20, 49}};
#define NBN ((int)(sizeof bn_cases / sizeof bn_cases[0]))

typedef struct bn_ctx {
    int B, C, HW;
    float *x, *w, *b, *y, *mean, *rstd, *dx, *dw, *db;
} bn_ctx;
static void bn_fwd(void *c)
{
    bn_ctx *k = c;
    batchnorm2d_forward_train(k->y, k->mean, k->rstd, NULL, NULL, k->x, k->w, k->b, k->B, k->C, k->HW, 1e-5f,
                              0.1f);
}
static void bn_bwd(void *c, const float *dy)
{
    bn_ctx *k = c;
    batchnorm2d_backward(k->dx, k->dw, k->db, dy, k->x, k->mean, k->rstd, k->w, k->B, k->C, k->HW);
}

START_TEST(test_batchnorm)
{
    const bn_case *t = &bn_cases[_i];
    const size_t n = (size_t)t->B * t->C * t->HW;
    tu_rng r;
    tu_rng_seed(&r, 11);
    bn_ctx k = {t->B, t->C, t->HW, tu_alloc(n), tu_alloc(t->C), tu_alloc(t->C), tu_alloc(n), tu_alloc(t->C),
                tu_alloc(t->C), tu_alloc(n), tu_alloc(t->C), tu_alloc(t->C)};
    tu_fill_uniform(k.x, n, &r, -1, 3);
    tu_fill_uniform(k.w, t->C, &r, 0.5f, 1.5f);
    tu_fill_uniform(k.b, t->C, &r, -1, 1);
    /* fast vs naive, forward with running statistics and backward */
    float *y2 = tu_alloc(n), *m2 = tu_alloc(t->C), *r2 = tu_alloc(t->C), *dy = tu_alloc(n);
    float *rm1 = tu_alloc(t->C), *rv1 = tu_alloc(t->C), *rm2 = tu_alloc(t->C), *rv2 = tu_alloc(t->C);
    float *dx2 = tu_alloc(n), *dw2 = tu_alloc(t->C), *db2 = tu_alloc(t->C);
    for (int c = 0; c < t->C; c++) rv1[c] = rv2[c] = 1.0f;
    batchnorm2d_forward_train(k.y, k.mean, k.rstd, rm1, rv1, k.x, k.w, k.b, t->B, t->C, t->HW, 1e-5f, 0.1f);
    batchnorm2d_forward_train_naive(y2, m2, r2, rm2, rv2, k.x, k.w, k.b, t->B, t->C, t->HW, 1e-5f, 0.1f);
    ck_assert(tu_close_ratio(k.y, y2, n, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(k.mean, m2, t->C, 1e-6, 1e-5) <= 1);
    ck_assert(tu_close_ratio(k.rstd, r2, t->C, 1e-6, 1e-5) <= 1);
    ck_assert(tu_close_ratio(rm1, rm2, t->C, 1e-6, 1e-5) <= 1);
    ck_assert(tu_close_ratio(rv1, rv2, t->C, 1e-6, 1e-5) <= 1);
    /* PyTorch's update, from running (0, 1) with momentum 0.1 */
    const double nn = (double)t->B * t->HW;
    for (int c = 0; c < t->C; c++) {
        double s = 0, ss = 0;
        for (int b = 0; b < t->B; b++)
            for (int i = 0; i < t->HW; i++) s += k.x[((size_t)b * t->C + c) * t->HW + i];
        double m = s / nn;
        for (int b = 0; b < t->B; b++)
            for (int i = 0; i < t->HW; i++) {
                double d = k.x[((size_t)b * t->C + c) * t->HW + i] - m;
                ss += d * d;
            }
        ck_assert_double_eq_tol(rm1[c], 0.1 * m, 1e-5);
        ck_assert_double_eq_tol(rv1[c], 0.9 + 0.1 * (nn > 1 ? ss / (nn - 1) : ss / nn), 1e-5);
    }
    tu_fill_uniform(dy, n, &r, -1, 1);
    batchnorm2d_backward(k.dx, k.dw, k.db, dy, k.x, k.mean, k.rstd, k.w, t->B, t->C, t->HW);
    batchnorm2d_backward_naive(dx2, dw2, db2, dy, k.x, m2, r2, k.w, t->B, t->C, t->HW);
    ck_assert(tu_close_ratio(k.dx, dx2, n, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(k.dw, dw2, t->C, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(k.db, db2, t->C, ATOL, RTOL) <= 1);
    /* train vs eval: eval with the batch's own (biased) statistics as running
     * statistics reproduces the train output */
    for (int c = 0; c < t->C; c++) {
        rm1[c] = k.mean[c];
        rv1[c] = 1.0f / (k.rstd[c] * k.rstd[c]) - 1e-5f;
    }
    batchnorm2d_forward_eval(y2, k.x, k.w, k.b, rm1, rv1, t->B, t->C, t->HW, 1e-5f);
    ck_assert(tu_close_ratio(y2, k.y, n, 1e-3, 1e-3) <= 1);
    /* gradient check of the train-mode forward */
    if (t->B * t->HW > 1) {
        tu_param ps[3] = {{"x", k.x, k.dx, n}, {"w", k.w, k.dw, (size_t)t->C}, {"b", k.b, k.db, (size_t)t->C}};
        tu_grad_problem p = {&k, bn_fwd, bn_bwd, k.y, n, ps, 3};
        tu_grad_opts o = {1e-2, 2e-3, 3e-2, 64, 5};
        tu_grad_result res = tu_grad_check(&p, &o);
        ck_assert_msg(res.ok, "batchnorm grad case %d: %s", _i, res.msg);
    }
    free(k.x), free(k.w), free(k.b), free(k.y), free(k.mean), free(k.rstd), free(k.dx), free(k.dw), free(k.db);
    free(y2), free(m2), free(r2), free(dy), free(rm1), free(rv1), free(rm2), free(rv2), free(dx2), free(dw2);
    free(db2);
}
END_TEST

/* Eval mode converges to the population statistics: many train steps on
 * batches from one distribution, then eval normalises a fresh batch. */
/* Channels split across 1, 2 and 3 threads (a tensor big enough for the
 * parallel path, C not a multiple of the thread count): fast == naive; the
 * second shape's ranges of 13 and 12 channels are one partial group each. */
static const bn_case bn_thread_cases[] = {{6, 5, 1500}, {20, 37, 49}};
START_TEST(test_batchnorm_threads)
{
    const int B = bn_thread_cases[_i].B, C = bn_thread_cases[_i].C, HW = bn_thread_cases[_i].HW;
    const int saved = nn_threads();
    const size_t n = (size_t)B * C * HW;
    tu_rng r;
    tu_rng_seed(&r, 13);
    float *x = tu_alloc(n), *w = tu_alloc(C), *b = tu_alloc(C), *dy = tu_alloc(n);
    float *y1 = tu_alloc(n), *y2 = tu_alloc(n), *m1 = tu_alloc(C), *m2 = tu_alloc(C), *r1 = tu_alloc(C),
          *r2 = tu_alloc(C);
    float *dx1 = tu_alloc(n), *dx2 = tu_alloc(n), *dw1 = tu_alloc(C), *dw2 = tu_alloc(C), *db1 = tu_alloc(C),
          *db2 = tu_alloc(C);
    tu_fill_uniform(x, n, &r, -1, 3);
    tu_fill_uniform(w, C, &r, 0.5f, 1.5f);
    tu_fill_uniform(b, C, &r, -1, 1);
    tu_fill_uniform(dy, n, &r, -1, 1);
    batchnorm2d_forward_train_naive(y2, m2, r2, NULL, NULL, x, w, b, B, C, HW, 1e-5f, 0.1f);
    batchnorm2d_backward_naive(dx2, dw2, db2, dy, x, m2, r2, w, B, C, HW);
    for (int nt = 1; nt <= 3; nt++) {
        openblas_set_num_threads(nt);
        memset(dx1, 0, n * sizeof *dx1);
        memset(dw1, 0, C * sizeof *dw1);
        memset(db1, 0, C * sizeof *db1);
        batchnorm2d_forward_train(y1, m1, r1, NULL, NULL, x, w, b, B, C, HW, 1e-5f, 0.1f);
        ck_assert_msg(tu_close_ratio(y1, y2, n, ATOL, RTOL) <= 1, "bn fwd, %d threads", nt);
        batchnorm2d_backward(dx1, dw1, db1, dy, x, m1, r1, w, B, C, HW);
        ck_assert_msg(tu_close_ratio(dx1, dx2, n, ATOL, RTOL) <= 1, "bn dx, %d threads", nt);
        ck_assert_msg(tu_close_ratio(dw1, dw2, C, ATOL, RTOL) <= 1, "bn dw, %d threads", nt);
        ck_assert_msg(tu_close_ratio(db1, db2, C, ATOL, RTOL) <= 1, "bn db, %d threads", nt);
        /* eval with the batch statistics reproduces train */
        for (int c = 0; c < C; c++) m1[c] = m2[c], r1[c] = 1.0f / (r2[c] * r2[c]) - 1e-5f;
        batchnorm2d_forward_eval(y1, x, w, b, m1, r1, B, C, HW, 1e-5f);
        ck_assert_msg(tu_close_ratio(y1, y2, n, 1e-3, 1e-3) <= 1, "bn eval, %d threads", nt);
    }
    openblas_set_num_threads(saved);
    free(x), free(w), free(b), free(dy), free(y1), free(y2), free(m1), free(m2), free(r1), free(r2);
    free(dx1), free(dx2), free(dw1), free(dw2), free(db1), free(db2);
}
END_TEST

/* The one-pass shifted statistics on data far from 0 (mean 1000, std 0.01)
 * and with an outlier in the first plane: mean and rstd as the naive double
 * two-pass reference. */
START_TEST(test_batchnorm_offset)
{
    const int B = 8, C = 2, HW = 50;
    const size_t n = (size_t)B * C * HW;
    tu_rng r;
    tu_rng_seed(&r, 29);
    float *x = tu_alloc(n), *y1 = tu_alloc(n), *y2 = tu_alloc(n), *m1 = tu_alloc(C), *m2 = tu_alloc(C),
          *r1 = tu_alloc(C), *r2 = tu_alloc(C);
    tu_fill_uniform(x, n, &r, 999.98f, 1000.02f);
    x[HW + 3] = 1e4f; /* channel 1, first plane */
    batchnorm2d_forward_train(y1, m1, r1, NULL, NULL, x, NULL, NULL, B, C, HW, 1e-5f, 0.1f);
    batchnorm2d_forward_train_naive(y2, m2, r2, NULL, NULL, x, NULL, NULL, B, C, HW, 1e-5f, 0.1f);
    ck_assert(tu_close_ratio(m1, m2, C, 1e-6, 1e-6) <= 1);
    ck_assert(tu_close_ratio(r1, r2, C, 1e-6, 1e-3) <= 1);
    free(x), free(y1), free(y2), free(m1), free(m2), free(r1), free(r2);
}
END_TEST

/* Batch norm with the ReLU after it fused (what the graph runs when a norm
 * feeds a ReLU alone) == the naive norm, then max(0, .); its backward from
 * the ReLU's gradient == relu backward then the naive norm's backward, both
 * accumulating and writing (set) an input gradient full of NaN. */
START_TEST(test_batchnorm_relu)
{
    const bn_case *t = &bn_cases[_i];
    const int B = t->B, C = t->C, HW = t->HW;
    const size_t n = (size_t)B * C * HW;
    tu_rng r;
    tu_rng_seed(&r, 23 + (uint64_t)_i);
    float *x = tu_alloc(n), *w = tu_alloc(C), *b = tu_alloc(C), *y1 = tu_alloc(n), *y2 = tu_alloc(n);
    float *m1 = tu_alloc(C), *r1 = tu_alloc(C), *m2 = tu_alloc(C), *r2 = tu_alloc(C), *rm = tu_alloc(C), *rv = tu_alloc(C);
    float *dy = tu_alloc(n), *g = tu_alloc(n), *dx1 = tu_alloc(n), *dx2 = tu_alloc(n), *dw1 = tu_alloc(C);
    float *dw2 = tu_alloc(C), *db1 = tu_alloc(C), *db2 = tu_alloc(C);
    tu_fill_uniform(x, n, &r, -1, 3);
    tu_fill_uniform(w, C, &r, 0.5f, 1.5f);
    tu_fill_uniform(b, C, &r, -1, 1);
    tu_fill_uniform(dy, n, &r, -1, 1);
    batchnorm2d_forward_train_act(y1, m1, r1, NULL, NULL, x, w, b, B, C, HW, 1e-5f, 0.1f, 1);
    batchnorm2d_forward_train_naive(y2, m2, r2, NULL, NULL, x, w, b, B, C, HW, 1e-5f, 0.1f);
    for (size_t i = 0; i < n; i++) y2[i] = y2[i] > 0 ? y2[i] : 0.0f;
    ck_assert(tu_close_ratio(y1, y2, n, ATOL, RTOL) <= 1);
    int pos = 0;
    for (size_t i = 0; i < n; i++) pos += y1[i] > 0;
    ck_assert(pos > 0 && (size_t)pos < n); /* the mask matters */
    /* eval, with the batch's statistics as running ones */
    for (int c = 0; c < C; c++) rm[c] = m1[c], rv[c] = 1.0f / (r1[c] * r1[c]) - 1e-5f;
    batchnorm2d_forward_eval_act(dx1, x, w, b, rm, rv, B, C, HW, 1e-5f, 1);
    ck_assert(tu_close_ratio(dx1, y2, n, 1e-4, 1e-3) <= 1);
    for (size_t i = 0; i < n; i++) g[i] = y2[i] > 0 ? dy[i] : 0.0f;
    for (int set = 0; set <= 1; set++) {
        for (size_t i = 0; i < n; i++) dx1[i] = set ? NAN : 0.5f, dx2[i] = set ? 0.0f : 0.5f;
        for (int c = 0; c < C; c++) dw1[c] = dw2[c] = db1[c] = db2[c] = 0.25f;
        batchnorm2d_backward_act(dx1, dw1, db1, dy, x, m1, r1, w, b, B, C, HW, 1, set);
        batchnorm2d_backward_naive(dx2, dw2, db2, g, x, m2, r2, w, B, C, HW);
        ck_assert_msg(tu_close_ratio(dx1, dx2, n, ATOL, RTOL) <= 1, "dx, set %d", set);
        ck_assert(tu_close_ratio(dw1, dw2, C, ATOL, RTOL) <= 1);
        ck_assert(tu_close_ratio(db1, db2, C, ATOL, RTOL) <= 1);
    }
    /* the mask the backward recomputes from x is the forward's own, bit for
     * bit: the same as the plain backward of dy masked by y1 > 0 */
    for (size_t i = 0; i < n; i++) g[i] = y1[i] > 0 ? dy[i] : 0.0f;
    batchnorm2d_backward_act(dx1, dw1, db1, dy, x, m1, r1, w, b, B, C, HW, 1, 1);
    batchnorm2d_backward_act(dx2, dw2, db2, g, x, m1, r1, w, NULL, B, C, HW, 0, 1);
    ck_assert(tu_max_abs_diff(dx1, dx2, n) == 0);
    /* set without the ReLU: the plain backward into zeros */
    for (size_t i = 0; i < n; i++) dx1[i] = NAN, dx2[i] = 0.0f;
    batchnorm2d_backward_act(dx1, NULL, NULL, dy, x, m1, r1, w, NULL, B, C, HW, 0, 1);
    batchnorm2d_backward_naive(dx2, NULL, NULL, dy, x, m2, r2, w, B, C, HW);
    ck_assert(tu_close_ratio(dx1, dx2, n, ATOL, RTOL) <= 1);
    free(x), free(w), free(b), free(y1), free(y2), free(m1), free(r1), free(m2), free(r2), free(rm), free(rv);
    free(dy), free(g), free(dx1), free(dx2), free(dw1), free(dw2), free(db1), free(db2);
}
END_TEST

/* The writing (set) variants of the ReLU and residual-add backward equal the
 * accumulating ones into zeros, whatever the gradient held before; the
 * accumulating ones add. Sizes across the threading threshold. */
START_TEST(test_act_set)
{
    static const size_t sizes[] = {37, (size_t)1 << 19};
    for (int k = 0; k < 2; k++) {
        const size_t n = sizes[k];
        tu_rng r;
        tu_rng_seed(&r, 5);
        float *x = tu_alloc(n), *g = tu_alloc(n), *d1 = tu_alloc(n), *d2 = tu_alloc(n);
        tu_fill_uniform(x, n, &r, -1, 1);
        tu_fill_uniform(g, n, &r, -1, 1);
        for (size_t i = 0; i < n; i++) d1[i] = NAN, d2[i] = 0.0f;
        relu_backward_set(d1, g, x, n);
        relu_backward(d2, g, x, n);
        /* one assertion per array (a passing ck_assert writes to Check's pipe) */
        size_t bad = n;
        for (size_t i = 0; i < n && bad == n; i++)
            if (d1[i] != d2[i]) bad = i;
        ck_assert_msg(bad == n, "relu_backward_set, n %zu: element %zu", n, bad);
        for (size_t i = 0; i < n; i++) d1[i] = NAN, d2[i] = 1.0f;
        add_backward(d1, d2, g, n, 1, 0);
        for (size_t i = 0; i < n && bad == n; i++)
            if (d1[i] != g[i] || d2[i] != 1.0f + g[i]) bad = i;
        ck_assert_msg(bad == n, "add_backward set/add, n %zu: element %zu", n, bad);
        add_backward(d1, d2, g, n, 0, 1); /* now d1 = 2g, d2 = g */
        for (size_t i = 0; i < n && bad == n; i++)
            if (d1[i] != g[i] + g[i] || d2[i] != g[i]) bad = i;
        ck_assert_msg(bad == n, "add_backward add/set, n %zu: element %zu", n, bad);
        add_backward(NULL, d2, g, n, 0, 1);
        for (size_t i = 0; i < n && bad == n; i++)
            if (d2[i] != g[i]) bad = i;
        ck_assert_msg(bad == n, "add_backward set, n %zu: element %zu", n, bad);
        free(x), free(g), free(d1), free(d2);
    }
}
END_TEST

/* The fused add + ReLU equals add_forward then relu_forward (NaN and the
 * zeros included), and its backward equals relu_backward then add_backward,
 * for every set/accumulate pair, one gradient NULL, and both the same array.
 * Sizes across the threading threshold. */
START_TEST(test_add_relu)
{
    static const size_t sizes[] = {37, (size_t)1 << 19};
    for (int k = 0; k < 2; k++) {
        const size_t n = sizes[k];
        tu_rng r;
        tu_rng_seed(&r, 8);
        float *a = tu_alloc(n), *b = tu_alloc(n), *y = tu_alloc(n), *s = tu_alloc(n), *y2 = tu_alloc(n);
        float *g = tu_alloc(n), *da = tu_alloc(n), *db = tu_alloc(n), *ra = tu_alloc(n), *rb = tu_alloc(n);
        float *rg = tu_alloc(n);
        tu_fill_uniform(a, n, &r, -1, 1);
        tu_fill_uniform(b, n, &r, -1, 1);
        tu_fill_uniform(g, n, &r, -1, 1);
        a[0] = NAN, a[1] = 0.5f, b[1] = -0.5f; /* NaN propagates; a sum of exactly 0 */
        add_relu_forward(y, a, b, n);
        add_forward(s, a, b, n);
        relu_forward(y2, s, n);
        ck_assert(isnan(y[0]) && y[1] == 0.0f);
        size_t bad = n;
        for (size_t i = 1; i < n && bad == n; i++)
            if (y[i] != y2[i]) bad = i;
        ck_assert_msg(bad == n, "add_relu_forward, n %zu: element %zu", n, bad);
        for (int set = 0; set < 4; set++) {
            const int sa = set & 1, sb = set >> 1;
            tu_fill_uniform(da, n, &r, -1, 1);
            tu_fill_uniform(db, n, &r, -1, 1);
            copy(ra, da, n), copy(rb, db, n);
            for (size_t i = 0; i < n; i++) rg[i] = 0.0f;
            relu_backward(rg, g, y, n);
            add_backward(ra, rb, rg, n, sa, sb);
            if (sa) da[3] = NAN; /* a written gradient does not read what was there */
            if (sb) db[3] = NAN;
            add_relu_backward(da, db, g, y, n, sa, sb);
            ck_assert_msg(tu_max_abs_diff(da, ra, n) == 0 && tu_max_abs_diff(db, rb, n) == 0,
                          "add_relu_backward n %zu set %d/%d", n, sa, sb);
        }
        /* one gradient only, and both into one array (x + x) */
        copy(ra, da, n);
        add_relu_backward(NULL, da, g, y, n, 0, 0);
        add_backward(NULL, ra, rg, n, 0, 0);
        ck_assert(tu_max_abs_diff(da, ra, n) == 0);
        add_relu_backward(da, da, g, y, n, 1, 0);
        for (size_t i = 0; i < n; i++) ra[i] = 2.0f * rg[i];
        ck_assert(tu_max_abs_diff(da, ra, n) == 0);
        free(a), free(b), free(y), free(s), free(y2), free(g), free(da), free(db), free(ra), free(rb), free(rg);
    }
}
END_TEST

/* The graph's fusions (a batch norm or an add writing the ReLU it feeds
 * alone; input gradients written by their last consumer, the first to run
 * backward, without a zeroing pass) give the plain graph's loss and
 * gradients: the same model with the fusions undone by hand (every node
 * counted as read twice, no gradient "set") as the reference. A ReLU CNN
 * with residual blocks and a shortcut conv, the same with its second conv
 * low-rank (OP_CONV_LR adds: it zeroes a gradient it was to write), two
 * blocks a stage, and a ViT (its residual adds, denses, GELUs and attention
 * write their inputs' gradients), the same with its first MLP layer
 * low-rank (OP_DENSE_LR zeroes first). */
static const char *const fusion_specs[] = {"cnn:16,32,blocks=1", "cnn:16,32,blocks=1", "cnn:16,16,blocks=2",
                                           "vit:patch=4,dim=16,depth=2,heads=2,mlp=32",
                                           "vit:patch=4,dim=16,depth=2,heads=2,mlp=32"};
/* weight `name` (rows x cols) low-rank, rank 3, the same factors in both models */
static void fusion_lowrank(oialr_model *m[2], const char *name, int rows, int cols)
{
    const int p = oialr_params_find(oialr_model_params(m[0]), name), R = 3;
    ck_assert_int_ge(p, 0);
    float *u = tu_alloc((size_t)rows * R), *s = tu_alloc((size_t)R * R), *v = tu_alloc((size_t)cols * R);
    tu_rng q;
    tu_rng_seed(&q, 4);
    tu_fill_uniform(u, (size_t)rows * R, &q, -0.3f, 0.3f);
    tu_fill_uniform(s, (size_t)R * R, &q, -1, 1);
    tu_fill_uniform(v, (size_t)cols * R, &q, -0.3f, 0.3f);
    for (int k = 0; k < 2; k++) ck_assert_int_eq(oialr_model_lowrank_set(m[k], p, u, s, v, R), 0);
    free(u), free(s), free(v);
}

START_TEST(test_graph_fusion)
{
    const int B = 6, C = 1, H = 8, W = 8;
    oialr_model *m[2];
    for (int k = 0; k < 2; k++) ck_assert_int_eq(oialr_model_create(&m[k], fusion_specs[_i], C, H, W, 4, B, 3), 0);
    int fused = 0, set = 0;
    for (int i = 0; i < m[0]->nnodes; i++) fused += writes_relu(m[0], &m[0]->nodes[i]), set += m[0]->nodes[i].grad_set;
    if (_i == 0) ck_assert(fused >= 5 && set >= 6); /* stem, s1 and s2 first norms and the adds; norms, ReLUs, adds */
    if (_i == 1) fusion_lowrank(m, "s1.b0.2.conv.weight", 16, 16 * 9); /* fed by a BN+ReLU */
    if (_i == 4) fusion_lowrank(m, "blocks.0.mlp.fc2.weight", 16, 32);  /* fed by the GELU */
    for (int i = 0; i < m[1]->nnodes; i++) {
        m[1]->nodes[i].consumers = 2;
        m[1]->nodes[i].grad_set = 0;
    }
    tu_rng r;
    tu_rng_seed(&r, 31);
    float *x = tu_alloc((size_t)B * C * H * W);
    tu_fill_uniform(x, (size_t)B * C * H * W, &r, -1, 1);
    uint8_t y[6] = {0, 1, 2, 3, 1, 2};
    float loss[2];
    for (int step = 0; step < 2; step++) { /* twice: stale gradients would show */
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(oialr_model_forward(m[k], x, y, B, 1, &loss[k], NULL), 0);
            ck_assert_int_eq(oialr_model_backward(m[k]), 0);
        }
        ck_assert_float_eq_tol(loss[0], loss[1], 1e-6);
        const oialr_params *p0 = oialr_model_params(m[0]), *p1 = oialr_model_params(m[1]);
        ck_assert(tu_close_ratio(p0->grad, p1->grad, p0->total, 1e-6, 1e-4) <= 1);
        ck_assert(tu_close_ratio(oialr_model_logits(m[0]), oialr_model_logits(m[1]), (size_t)B * 4, 1e-6, 1e-5) <= 1);
        /* eval mode too */
        for (int k = 0; k < 2; k++) ck_assert_int_eq(oialr_model_forward(m[k], x, NULL, B, 0, NULL, NULL), 0);
        ck_assert(tu_close_ratio(oialr_model_logits(m[0]), oialr_model_logits(m[1]), (size_t)B * 4, 1e-6, 1e-5) <= 1);
    }
    oialr_model_free(m[0]);
    oialr_model_free(m[1]);
    free(x);
}
END_TEST

START_TEST(test_batchnorm_running)
{
    enum { B = 16, C = 2, HW = 8 };
    float x[B * C * HW], y[B * C * HW], mean[C], rstd[C], rm[C] = {0, 0}, rv[C] = {1, 1};
    tu_rng r;
    tu_rng_seed(&r, 5);
    for (int it = 0; it < 200; it++) {
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++)
                for (int i = 0; i < HW; i++) /* channel c: uniform on [c, c + 2*(c+1)) */
                    x[(b * C + c) * HW + i] = (float)c + 2.0f * (c + 1) * (float)tu_rng_uniform(&r);
        batchnorm2d_forward_train(y, mean, rstd, rm, rv, x, NULL, NULL, B, C, HW, 1e-5f, 0.1f);
    }
    for (int c = 0; c < C; c++) {
        double mu = c + (c + 1.0), var = (2.0 * (c + 1)) * (2.0 * (c + 1)) / 12.0;
        ck_assert_double_eq_tol(rm[c], mu, 0.1 * (c + 1));
        ck_assert_double_eq_tol(rv[c], var, 0.15 * var);
    }
}
END_TEST

typedef struct ln_ctx {
    int N, D;
    float *x, *w, *b, *y, *mean, *rstd, *dx, *dw, *db;
} ln_ctx;
static void ln_fwd(void *c)
{
    ln_ctx *k = c;
    layernorm_forward(k->y, k->mean, k->rstd, k->x, k->w, k->b, k->N, k->D, 1e-5f);
}
static void ln_bwd(void *c, const float *dy)
{
    ln_ctx *k = c;
    layernorm_backward(k->dx, k->dw, k->db, dy, k->x, k->mean, k->rstd, k->w, k->N, k->D);
}

/* Rows (forward, dinp) and columns (dweight, dbias) split across 1, 2 and 3
 * threads: N = 600 rows of 65 (>= 32 Ki values), fast == naive. */
START_TEST(test_layernorm_threads)
{
    const int N = 600, D = 65, saved = nn_threads();
    const size_t n = (size_t)N * D;
    tu_rng r;
    tu_rng_seed(&r, 19);
    float *x = tu_alloc(n), *w = tu_alloc(D), *b = tu_alloc(D), *dy = tu_alloc(n);
    float *y1 = tu_alloc(n), *y2 = tu_alloc(n), *m1 = tu_alloc(N), *m2 = tu_alloc(N), *r1 = tu_alloc(N),
          *r2 = tu_alloc(N);
    float *dx1 = tu_alloc(n), *dx2 = tu_alloc(n), *dw1 = tu_alloc(D), *dw2 = tu_alloc(D), *db1 = tu_alloc(D),
          *db2 = tu_alloc(D);
    tu_fill_uniform(x, n, &r, -2, 2);
    tu_fill_uniform(w, D, &r, 0.5f, 1.5f);
    tu_fill_uniform(b, D, &r, -1, 1);
    tu_fill_uniform(dy, n, &r, -1, 1);
    layernorm_forward_naive(y2, m2, r2, x, w, b, N, D, 1e-5f);
    layernorm_backward_naive(dx2, dw2, db2, dy, x, m2, r2, w, N, D);
    for (int nt = 1; nt <= 3; nt++) {
        openblas_set_num_threads(nt);
        memset(dx1, 0, n * sizeof *dx1), memset(dw1, 0, D * sizeof *dw1), memset(db1, 0, D * sizeof *db1);
        layernorm_forward(y1, m1, r1, x, w, b, N, D, 1e-5f);
        ck_assert_msg(tu_close_ratio(y1, y2, n, ATOL, RTOL) <= 1, "ln fwd, %d threads", nt);
        layernorm_backward(dx1, dw1, db1, dy, x, m1, r1, w, N, D);
        ck_assert_msg(tu_close_ratio(dx1, dx2, n, ATOL, RTOL) <= 1, "ln dx, %d threads", nt);
        ck_assert_msg(tu_close_ratio(dw1, dw2, D, ATOL, RTOL) <= 1, "ln dw, %d threads", nt);
        ck_assert_msg(tu_close_ratio(db1, db2, D, ATOL, RTOL) <= 1, "ln db, %d threads", nt);
    }
    openblas_set_num_threads(saved);
    free(x), free(w), free(b), free(dy), free(y1), free(y2), free(m1), free(m2), free(r1), free(r2);
    free(dx1), free(dx2), free(dw1), free(dw2), free(db1), free(db2);
}
END_TEST

START_TEST(test_layernorm)
{
    static const int shapes[][2] = {{5, 8}, {3, 17}, {1, 64}};
    const int N = shapes[_i][0], D = shapes[_i][1];
    const size_t n = (size_t)N * D;
    tu_rng r;
    tu_rng_seed(&r, 13);
    ln_ctx k = {N, D, tu_alloc(n), tu_alloc(D), tu_alloc(D), tu_alloc(n), tu_alloc(N), tu_alloc(N),
                tu_alloc(n), tu_alloc(D), tu_alloc(D)};
    float *y2 = tu_alloc(n), *m2 = tu_alloc(N), *r2 = tu_alloc(N), *dy = tu_alloc(n), *dx2 = tu_alloc(n);
    float *dw2 = tu_alloc(D), *db2 = tu_alloc(D);
    tu_fill_uniform(k.x, n, &r, -2, 2);
    tu_fill_uniform(k.w, D, &r, 0.5f, 1.5f);
    tu_fill_uniform(k.b, D, &r, -1, 1);
    tu_fill_uniform(dy, n, &r, -1, 1);
    layernorm_forward(k.y, k.mean, k.rstd, k.x, k.w, k.b, N, D, 1e-5f);
    layernorm_forward_naive(y2, m2, r2, k.x, k.w, k.b, N, D, 1e-5f);
    ck_assert(tu_close_ratio(k.y, y2, n, ATOL, RTOL) <= 1);
    layernorm_backward(k.dx, k.dw, k.db, dy, k.x, k.mean, k.rstd, k.w, N, D);
    layernorm_backward_naive(dx2, dw2, db2, dy, k.x, m2, r2, k.w, N, D);
    ck_assert(tu_close_ratio(k.dx, dx2, n, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(k.dw, dw2, D, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(k.db, db2, D, ATOL, RTOL) <= 1);
    tu_param ps[3] = {{"x", k.x, k.dx, n}, {"w", k.w, k.dw, (size_t)D}, {"b", k.b, k.db, (size_t)D}};
    tu_grad_problem p = {&k, ln_fwd, ln_bwd, k.y, n, ps, 3};
    tu_grad_opts o = {1e-2, 2e-3, 3e-2, 64, 9};
    tu_grad_result res = tu_grad_check(&p, &o);
    ck_assert_msg(res.ok, "layernorm grad: %s", res.msg);
    free(k.x), free(k.w), free(k.b), free(k.y), free(k.mean), free(k.rstd), free(k.dx), free(k.dw), free(k.db);
    free(y2), free(m2), free(r2), free(dy), free(dx2), free(dw2), free(db2);
}
END_TEST

// ---------------------------------------------------------------------------
// attention

typedef struct att_case {
    int B, T, NH, HS;
} att_case;
/* T <= 32 and HS = 16 or 32: the lane kernel (attention_kernel_name; 4
 * problems in one group, 18 in a full one and a partial one); HS = 64 and
 * T <= 32: the fused kernel; the others, and T = 33, the sgemm kernel */
static const att_case att_cases[] = {{2, 5, 2, 4},   {1, 17, 4, 8}, {3, 3, 1, 6},  {2, 8, 3, 5},
                                     {2, 17, 2, 16}, {1, 32, 1, 32}, {3, 17, 6, 16}, {1, 3, 2, 64},
                                     {1, 33, 1, 16}};
#define NATT ((int)(sizeof att_cases / sizeof att_cases[0]))

typedef struct att_ctx {
    att_case t;
    float *q, *k, *v, *y, *att, *dq, *dk, *dv, *s;
} att_ctx;
static void att_fwd(void *c)
{
    att_ctx *a = c;
    attention_forward(a->y, a->att, a->q, a->k, a->v, a->t.B, a->t.T, a->t.NH, a->t.HS);
}
static void att_bwd(void *c, const float *dy)
{
    att_ctx *a = c;
    attention_backward(a->dq, a->dk, a->dv, a->s, dy, a->q, a->k, a->v, a->att, a->t.B, a->t.T, a->t.NH,
                       a->t.HS, 0);
}

START_TEST(test_attention)
{
    /* each case three times: the sgemm kernel, the fused one of 8 floats
     * (on an AVX2 CPU; else the sgemm one again), of 16 floats */
    const att_case *t = &att_cases[_i / 3];
    const int level = nn_simd_force(_i % 3), fused = t->T <= 32 && t->HS % 16 == 0;
    /* the lanes where the CPU has the level (nn_simd_cpu) */
    const int lanes = t->T <= 32 && (t->HS == 16 || t->HS == 32) && level <= nn_simd_cpu();
    const char *name = attention_kernel_name(t->T, t->HS);
    if (level == NN_SIMD_BLAS || !fused)
        ck_assert_str_eq(name, "sgemm per head");
    else if (lanes)
        ck_assert_str_eq(name, level == NN_SIMD_V8 ? "lanes across heads (8-float)" : "lanes across heads (16-float)");
    else
        ck_assert_str_eq(name, level == NN_SIMD_V8 ? "fused per head (8-float)" : "fused per head (16-float)");
    const int C = t->NH * t->HS;
    const size_t n = (size_t)t->B * t->T * C, na = (size_t)t->B * t->NH * t->T * t->T;
    tu_rng r;
    tu_rng_seed(&r, 17 + (uint64_t)(_i / 3));
    att_ctx a = {*t, tu_alloc(n), tu_alloc(n), tu_alloc(n), tu_alloc(n), tu_alloc(na), tu_alloc(n), tu_alloc(n),
                 tu_alloc(n), tu_alloc(attention_scratch_size(t->B, t->T, t->NH, t->HS))};
    float *y2 = tu_alloc(n), *att2 = tu_alloc(na), *dy = tu_alloc(n);
    float *dq2 = tu_alloc(n), *dk2 = tu_alloc(n), *dv2 = tu_alloc(n);
    tu_fill_uniform(a.q, n, &r, -1.5f, 1.5f);
    tu_fill_uniform(a.k, n, &r, -1.5f, 1.5f);
    tu_fill_uniform(a.v, n, &r, -1, 1);
    tu_fill_uniform(dy, n, &r, -1, 1);
    attention_forward(a.y, a.att, a.q, a.k, a.v, t->B, t->T, t->NH, t->HS);
    attention_forward_naive(y2, att2, a.q, a.k, a.v, t->B, t->T, t->NH, t->HS);
    ck_assert(tu_close_ratio(a.y, y2, n, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(a.att, att2, na, 1e-6, 1e-4) <= 1);
    for (size_t i = 0; i < na; i += t->T) { /* rows of att sum to 1 */
        double s = 0;
        for (int j = 0; j < t->T; j++) s += a.att[i + j];
        ck_assert_double_eq_tol(s, 1.0, 1e-5);
    }
    attention_backward(a.dq, a.dk, a.dv, a.s, dy, a.q, a.k, a.v, a.att, t->B, t->T, t->NH, t->HS, 0);
    attention_backward_naive(dq2, dk2, dv2, dy, a.q, a.k, a.v, att2, t->B, t->T, t->NH, t->HS);
    ck_assert(tu_close_ratio(a.dq, dq2, n, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(a.dk, dk2, n, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(a.dv, dv2, n, ATOL, RTOL) <= 1);
    /* set: the written gradients over NaN == the naive ones; with only dk
     * written, dq and dv add onto what they held (one backward's worth: 2x) */
    for (size_t i = 0; i < n; i++) a.dq[i] = a.dk[i] = a.dv[i] = NAN;
    attention_backward(a.dq, a.dk, a.dv, a.s, dy, a.q, a.k, a.v, a.att, t->B, t->T, t->NH, t->HS,
                       ATT_SET_Q | ATT_SET_K | ATT_SET_V);
    ck_assert_msg(tu_close_ratio(a.dq, dq2, n, ATOL, RTOL) <= 1, "dq set (%s)", attention_kernel_name(t->T, t->HS));
    ck_assert(tu_close_ratio(a.dk, dk2, n, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(a.dv, dv2, n, ATOL, RTOL) <= 1);
    for (size_t i = 0; i < n; i++) a.dk[i] = NAN;
    attention_backward(a.dq, a.dk, a.dv, a.s, dy, a.q, a.k, a.v, a.att, t->B, t->T, t->NH, t->HS, ATT_SET_K);
    ck_assert(tu_close_ratio(a.dk, dk2, n, ATOL, RTOL) <= 1);
    for (size_t i = 0; i < n; i++) dq2[i] *= 2.0f, dv2[i] *= 2.0f;
    ck_assert(tu_close_ratio(a.dq, dq2, n, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(a.dv, dv2, n, ATOL, RTOL) <= 1);
    for (size_t i = 0; i < n; i++) a.dq[i] = a.dk[i] = a.dv[i] = 0.0f;
    tu_param ps[3] = {{"q", a.q, a.dq, n}, {"k", a.k, a.dk, n}, {"v", a.v, a.dv, n}};
    tu_grad_problem p = {&a, att_fwd, att_bwd, a.y, n, ps, 3};
    tu_grad_result res = tu_grad_check(&p, NULL);
    ck_assert_msg(res.ok, "attention grad case %d: %s", _i, res.msg);
    free(a.q), free(a.k), free(a.v), free(a.y), free(a.att), free(a.dq), free(a.dk), free(a.dv), free(a.s);
    free(y2), free(att2), free(dy), free(dq2), free(dk2), free(dv2);
}
END_TEST

/* Batches split across 1, 2 and 3 threads (the ViT's T = 17, 4 heads of 16;
 * 13 batches: uneven shares): fast == naive, also without dq. */
START_TEST(test_attention_threads)
{
    const int B = 13, T = 17, NH = 4, HS = 16, C = NH * HS, saved = nn_threads();
    const size_t n = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    tu_rng r;
    tu_rng_seed(&r, 31);
    float *q = tu_alloc(n), *k = tu_alloc(n), *v = tu_alloc(n), *dy = tu_alloc(n);
    float *s = tu_alloc(attention_scratch_size(B, T, NH, HS));
    float *y1 = tu_alloc(n), *y2 = tu_alloc(n), *a1 = tu_alloc(na), *a2 = tu_alloc(na);
    float *dq1 = tu_alloc(n), *dk1 = tu_alloc(n), *dv1 = tu_alloc(n), *dq2 = tu_alloc(n), *dk2 = tu_alloc(n),
          *dv2 = tu_alloc(n);
    tu_fill_uniform(q, n, &r, -1.5f, 1.5f);
    tu_fill_uniform(k, n, &r, -1.5f, 1.5f);
    tu_fill_uniform(v, n, &r, -1, 1);
    tu_fill_uniform(dy, n, &r, -1, 1);
    attention_forward_naive(y2, a2, q, k, v, B, T, NH, HS);
    attention_backward_naive(dq2, dk2, dv2, dy, q, k, v, a2, B, T, NH, HS);
    for (int nt = 1; nt <= 3; nt++) {
        openblas_set_num_threads(nt);
        memset(dq1, 0, n * sizeof *dq1), memset(dk1, 0, n * sizeof *dk1), memset(dv1, 0, n * sizeof *dv1);
        attention_forward(y1, a1, q, k, v, B, T, NH, HS);
        ck_assert_msg(tu_close_ratio(y1, y2, n, ATOL, RTOL) <= 1, "attention fwd, %d threads", nt);
        ck_assert_msg(tu_close_ratio(a1, a2, na, 1e-6, 1e-4) <= 1, "attention att, %d threads", nt);
        attention_backward(dq1, dk1, dv1, s, dy, q, k, v, a1, B, T, NH, HS, 0);
        ck_assert_msg(tu_close_ratio(dq1, dq2, n, ATOL, RTOL) <= 1, "attention dq, %d threads", nt);
        ck_assert_msg(tu_close_ratio(dk1, dk2, n, ATOL, RTOL) <= 1, "attention dk, %d threads", nt);
        ck_assert_msg(tu_close_ratio(dv1, dv2, n, ATOL, RTOL) <= 1, "attention dv, %d threads", nt);
        memset(dk1, 0, n * sizeof *dk1);
        attention_backward(NULL, dk1, NULL, s, dy, q, k, v, a1, B, T, NH, HS, 0);
        ck_assert_msg(tu_close_ratio(dk1, dk2, n, ATOL, RTOL) <= 1, "attention dk alone, %d threads", nt);
    }
    openblas_set_num_threads(saved);
    free(q), free(k), free(v), free(dy), free(s), free(y1), free(y2), free(a1), free(a2);
    free(dq1), free(dk1), free(dv1), free(dq2), free(dk2), free(dv2);
}
END_TEST

/* Against softmax(QKᵀ/√d)V written out for one head by hand: two tokens,
 * head size 1, q = k = (1, 0): scores (1, 0) / 1 -> att row 0 = softmax(1, 0). */
START_TEST(test_attention_by_hand)
{
    float q[2] = {1, 0}, k[2] = {1, 0}, v[2] = {2, 4}, y[2], att[4];
    attention_forward(y, att, q, k, v, 1, 2, 1, 1);
    double e = exp(1.0), p0 = e / (e + 1.0);
    ck_assert_double_eq_tol(att[0], p0, 1e-6);
    ck_assert_double_eq_tol(att[1], 1 - p0, 1e-6);
    ck_assert_double_eq_tol(att[2], 0.5, 1e-6); /* q[1] = 0: uniform */
    ck_assert_double_eq_tol(y[0], 2 * p0 + 4 * (1 - p0), 1e-5);
    ck_assert_double_eq_tol(y[1], 3.0, 1e-5);
}
END_TEST

// ---------------------------------------------------------------------------
// ViT token layers

typedef struct pe_ctx {
    int B, C, H, W, P, D;
    float *x, *w, *b, *y, *dx, *dw, *db, *s;
} pe_ctx;
static void pe_fwd(void *c)
{
    pe_ctx *k = c;
    patch_embed_forward(k->y, k->x, k->w, k->b, k->s, k->B, k->C, k->H, k->W, k->P, k->D);
}
static void pe_bwd(void *c, const float *dy)
{
    pe_ctx *k = c;
    patch_embed_backward(k->dx, k->dw, k->db, dy, k->x, k->w, k->s, k->B, k->C, k->H, k->W, k->P, k->D);
}

START_TEST(test_patch_embed)
{
    /* the last has N = 640 >= 512 token rows: the threaded dense path */
    static const int shapes[][6] = {{2, 1, 8, 8, 4, 5}, {2, 3, 9, 7, 3, 4}, {1, 2, 10, 10, 4, 3}, {40, 1, 28, 28, 7, 8}};
    const int *sh = shapes[_i];
    pe_ctx k = {sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], 0, 0, 0, 0, 0, 0, 0, 0};
    const int NP = (k.H / k.P) * (k.W / k.P);
    const size_t nx = (size_t)k.B * k.C * k.H * k.W, nw = (size_t)k.D * k.C * k.P * k.P;
    const size_t ny = (size_t)k.B * NP * k.D;
    tu_rng r;
    tu_rng_seed(&r, 23);
    k.x = tu_alloc(nx), k.w = tu_alloc(nw), k.b = tu_alloc(k.D), k.y = tu_alloc(ny);
    k.dx = tu_alloc(nx), k.dw = tu_alloc(nw), k.db = tu_alloc(k.D);
    k.s = tu_alloc(patch_embed_scratch_size(k.B, k.C, k.H, k.W, k.P));
    float *y2 = tu_alloc(ny), *dy = tu_alloc(ny), *dx2 = tu_alloc(nx), *dw2 = tu_alloc(nw), *db2 = tu_alloc(k.D);
    tu_fill_uniform(k.x, nx, &r, -1, 1);
    tu_fill_uniform(k.w, nw, &r, -1, 1);
    tu_fill_uniform(k.b, k.D, &r, -1, 1);
    tu_fill_uniform(dy, ny, &r, -1, 1);
    patch_embed_forward(k.y, k.x, k.w, k.b, k.s, k.B, k.C, k.H, k.W, k.P, k.D);
    patch_embed_forward_naive(y2, k.x, k.w, k.b, k.B, k.C, k.H, k.W, k.P, k.D);
    ck_assert(tu_close_ratio(k.y, y2, ny, ATOL, RTOL) <= 1);
    /* = a conv with kernel = stride = P, tokens in row-major patch order */
    conv2d_dims d = conv2d_make(k.C, k.H, k.W, k.D, k.P, k.P, k.P, 0);
    float *yc = tu_alloc((size_t)k.B * k.D * NP);
    conv2d_forward_naive(yc, k.x, k.w, k.b, &d, k.B);
    for (int b = 0; b < k.B; b++)
        for (int t = 0; t < NP; t++)
            for (int j = 0; j < k.D; j++)
                ck_assert_float_eq_tol(k.y[((size_t)b * NP + t) * k.D + j], yc[((size_t)b * k.D + j) * NP + t], 1e-4);
    patch_embed_backward(k.dx, k.dw, k.db, dy, k.x, k.w, k.s, k.B, k.C, k.H, k.W, k.P, k.D);
    patch_embed_backward_naive(dx2, dw2, db2, dy, k.x, k.w, k.B, k.C, k.H, k.W, k.P, k.D);
    ck_assert(tu_close_ratio(k.dx, dx2, nx, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(k.dw, dw2, nw, ATOL, RTOL) <= 1);
    ck_assert(tu_close_ratio(k.db, db2, k.D, ATOL, RTOL) <= 1);
    if (_i < 3) { /* finite differences on the small shapes only */
        tu_param ps[3] = {{"x", k.x, k.dx, nx}, {"w", k.w, k.dw, nw}, {"b", k.b, k.db, (size_t)k.D}};
        tu_grad_problem p = {&k, pe_fwd, pe_bwd, k.y, ny, ps, 3};
        tu_grad_result res = tu_grad_check(&p, NULL);
        ck_assert_msg(res.ok, "patch embed grad: %s", res.msg);
    }
    free(k.x), free(k.w), free(k.b), free(k.y), free(k.dx), free(k.dw), free(k.db), free(k.s);
    free(y2), free(dy), free(dx2), free(dw2), free(db2), free(yc);
}
END_TEST

/* cls token -> position embedding -> (mean | pick token 0), as one problem */
typedef struct tok_ctx {
    int B, T, D, pool; /* pool 0: mean, 1: pick class token, 2: pick last */
    float *x, *cls, *pos, *h, *y, *dx, *dcls, *dpos, *dh;
} tok_ctx;
static void tok_fwd(void *c)
{
    tok_ctx *k = c;
    cls_token_forward(k->h, k->x, k->cls, k->B, k->T, k->D);
    pos_embed_forward(k->h, k->h, k->pos, k->B, k->T + 1, k->D);
    if (k->pool == 0) token_mean_forward(k->y, k->h, k->B, k->T + 1, k->D);
    else token_pick_forward(k->y, k->h, k->pool == 1 ? 0 : k->T, k->B, k->T + 1, k->D);
}
static void tok_bwd(void *c, const float *dy)
{
    tok_ctx *k = c;
    size_t nh = (size_t)k->B * (k->T + 1) * k->D;
    memset(k->dh, 0, nh * sizeof(float));
    if (k->pool == 0) token_mean_backward(k->dh, dy, k->B, k->T + 1, k->D);
    else token_pick_backward(k->dh, dy, k->pool == 1 ? 0 : k->T, k->B, k->T + 1, k->D);
    /* position embedding passes the gradient through: dh is both dout and dinp */
    pos_embed_backward(NULL, k->dpos, k->dh, k->B, k->T + 1, k->D);
    cls_token_backward(k->dx, k->dcls, k->dh, k->B, k->T, k->D);
}

START_TEST(test_tokens)
{
    tok_ctx k = {3, 4, 5, _i, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const size_t nx = (size_t)k.B * k.T * k.D, nh = (size_t)k.B * (k.T + 1) * k.D;
    tu_rng r;
    tu_rng_seed(&r, 29);
    k.x = tu_alloc(nx), k.cls = tu_alloc(k.D), k.pos = tu_alloc((size_t)(k.T + 1) * k.D), k.h = tu_alloc(nh);
    k.y = tu_alloc((size_t)k.B * k.D), k.dx = tu_alloc(nx), k.dcls = tu_alloc(k.D);
    k.dpos = tu_alloc((size_t)(k.T + 1) * k.D), k.dh = tu_alloc(nh);
    tu_fill_uniform(k.x, nx, &r, -1, 1);
    tu_fill_uniform(k.cls, k.D, &r, -1, 1);
    tu_fill_uniform(k.pos, (size_t)(k.T + 1) * k.D, &r, -1, 1);
    tok_fwd(&k);
    for (int j = 0; j < k.D; j++) /* token 0 of sample 1 = cls + pos[0] */
        ck_assert_float_eq_tol(k.h[(size_t)(k.T + 1) * k.D + j], k.cls[j] + k.pos[j], 1e-6);
    tu_param ps[3] = {{"x", k.x, k.dx, nx}, {"cls", k.cls, k.dcls, (size_t)k.D},
                      {"pos", k.pos, k.dpos, (size_t)(k.T + 1) * k.D}};
    tu_grad_problem p = {&k, tok_fwd, tok_bwd, k.y, (size_t)k.B * k.D, ps, 3};
    tu_grad_opts o = {1e-2, 2e-3, 2e-2, 0, 31}; /* every entry */
    tu_grad_result res = tu_grad_check(&p, &o);
    ck_assert_msg(res.ok, "token layers (pool %d): %s", _i, res.msg);
    free(k.x), free(k.cls), free(k.pos), free(k.h), free(k.y), free(k.dx), free(k.dcls), free(k.dpos), free(k.dh);
}
END_TEST

// ---------------------------------------------------------------------------
// Limits

/* Output 1x1 (kernel covers the padded input); a NULL dinp is skipped and
 * leaves dw, db as with dinp. */
START_TEST(test_conv_limits)
{
    conv_case full = {2, 3, 3, 3, 4, 5, 5, 1, 1, 1};
    conv2d_dims d = conv2d_make(3, 3, 3, 4, 5, 5, 1, 1);
    ck_assert_int_eq(d.OH, 1);
    ck_assert_int_eq(d.OW, 1);
    conv_compare(&full, 1);
    conv_compare(&full, 0);
    conv_gradcheck(&full);
    conv_case big_stride = {1, 2, 8, 8, 2, 2, 2, 5, 0, 1}; /* stride > kernel: pixels skipped */
    conv_compare(&big_stride, 1);
    conv_gradcheck(&big_stride);
    conv_case b1 = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}; /* all sizes 1 */
    conv_compare(&b1, 1);
}
END_TEST

START_TEST(test_norm_limits)
{
    /* one value per channel: var 0, out = bias, running var uses var (n=1) */
    float x[2] = {3, -1}, y[2], mean[2], rstd[2], rm[2] = {0, 0}, rv[2] = {1, 1}, w[2] = {2, 2}, b[2] = {5, 6};
    batchnorm2d_forward_train(y, mean, rstd, rm, rv, x, w, b, 1, 2, 1, 1e-5f, 0.1f);
    ck_assert_float_eq_tol(y[0], 5, 1e-6);
    ck_assert_float_eq_tol(y[1], 6, 1e-6);
    ck_assert_float_eq_tol(rv[0], 0.9f, 1e-6);
    ck_assert(isfinite(rstd[0]));
    /* NULL weight/bias = affine off; NULL dinp is skipped */
    float dw[2] = {0, 0}, db[2] = {0, 0}, dy[2] = {1, 1};
    batchnorm2d_backward(NULL, dw, db, dy, x, mean, rstd, w, 1, 2, 1);
    ck_assert_float_eq_tol(db[0], 1, 1e-6);
    /* layer norm over D = 1: out = bias */
    float lm, lr, ly;
    float lx = 7, lb = 0.25f;
    layernorm_forward(&ly, &lm, &lr, &lx, NULL, &lb, 1, 1, 1e-5f);
    ck_assert_float_eq_tol(ly, 0.25f, 1e-6);
}
END_TEST

START_TEST(test_attention_limits)
{
    /* one token: att = 1, out = v, no gradient to q, k */
    float q[4] = {1, 2, 3, 4}, k[4] = {-1, 0, 2, 1}, v[4] = {5, 6, 7, 8}, y[4], att[2];
    float dq[4] = {0}, dk[4] = {0}, dv[4] = {0}, dy[4] = {1, 1, 1, 1}, s[2];
    attention_forward(y, att, q, k, v, 1, 1, 2, 2);
    for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(y[i], v[i], 1e-6);
    attention_backward(dq, dk, dv, s, dy, q, k, v, att, 1, 1, 2, 2, 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq_tol(dq[i], 0, 1e-6);
        ck_assert_float_eq_tol(dk[i], 0, 1e-6);
        ck_assert_float_eq_tol(dv[i], 1, 1e-6);
    }
    /* huge scores do not overflow the softmax */
    float qb[2] = {1e4f, 1e4f}, kb[2] = {1e4f, -1e4f}, vb[2] = {1, 2}, yb[2], ab[4];
    attention_forward(yb, ab, qb, kb, vb, 1, 2, 1, 1);
    ck_assert(isfinite(yb[0]) && isfinite(yb[1]));
    ck_assert_float_eq_tol(yb[0], 1, 1e-6);
    /* NULL dq, dk: only dv */
    float dv2[4] = {0};
    attention_backward(NULL, NULL, dv2, s, dy, q, k, v, att, 1, 1, 2, 2, 0);
    ck_assert_float_eq_tol(dv2[3], 1, 1e-6);
}
END_TEST

START_TEST(test_pool_limits)
{
    /* window = image: max/avg pool to 1x1 equal the global ones */
    float x[6] = {1, 5, 2, 4, 3, 0}, y[2], g[1];
    int32_t am[2];
    maxpool2d_forward(y, am, x, 1, 2, 2, 2, 2, 0); /* first 2x2 plane {1,5,2,4} */
    ck_assert_float_eq(y[0], 5);
    ck_assert_int_eq(am[0], 1);
    ck_assert_int_eq(pool_out_size(3, 2, 1, 0), 2);
    maxpool2d_forward(y, am, x, 1, 2, 3, 2, 1, 0); /* 2x3 plane, window 2, stride 1: 1x2 out */
    ck_assert_float_eq(y[0], 5);
    ck_assert_float_eq(y[1], 5);
    ck_assert_int_eq(am[1], 1);
    global_avgpool_forward(g, x, 1, 6);
    ck_assert_float_eq_tol(g[0], 2.5f, 1e-6);
    /* a NaN in a window comes out of the max pool */
    float xn[4] = {1, NAN, 2, 3}, yn[1];
    maxpool2d_forward(yn, am, xn, 1, 2, 2, 2, 2, 0);
    ck_assert(isnan(yn[0]));
}
END_TEST

/* Impossible shapes are programmer errors: OIALR_ASSERT aborts. */
START_TEST(test_conv_bad_shape)
{
    (void)!freopen("/dev/null", "w", stderr); /* forked child: keep the expected message out of the log */
    conv2d_make(1, 2, 2, 1, 5, 5, 1, 0);
}
END_TEST
START_TEST(test_pool_bad_pad)
{
    (void)!freopen("/dev/null", "w", stderr);
    pool_out_size(8, 2, 2, 2);
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *core = tcase_create("Core");
    tcase_set_timeout(core, 60);
    tcase_add_loop_test(core, test_conv_fast_vs_naive, 0, 3 * NCONV);
    tcase_add_loop_test(core, test_conv_gradcheck, 0, 3 * NCONV);
    tcase_add_loop_test(core, test_conv_null_dw, 0, 3 * NCONV);
    tcase_add_test(core, test_conv_chunks);
    tcase_add_loop_test(core, test_conv_threads, 0, (int)(sizeof thread_cases / sizeof thread_cases[0]));
    tcase_add_loop_test(core, test_pool, 0, NPOOL);
    tcase_add_loop_test(core, test_batchnorm, 0, NBN);
    tcase_add_loop_test(core, test_batchnorm_relu, 0, NBN);
    tcase_add_test(core, test_act_set);
    tcase_add_test(core, test_add_relu);
    tcase_add_loop_test(core, test_graph_fusion, 0, (int)(sizeof fusion_specs / sizeof fusion_specs[0]));
    tcase_add_test(core, test_batchnorm_running);
    tcase_add_loop_test(core, test_batchnorm_threads, 0, (int)(sizeof bn_thread_cases / sizeof bn_thread_cases[0]));
    tcase_add_test(core, test_batchnorm_offset);
    tcase_add_loop_test(core, test_layernorm, 0, 3);
    tcase_add_test(core, test_layernorm_threads);
    tcase_add_loop_test(core, test_attention, 0, 3 * NATT);
    tcase_add_test(core, test_attention_by_hand);
    tcase_add_test(core, test_attention_threads);
    tcase_add_loop_test(core, test_patch_embed, 0, 4);
    tcase_add_loop_test(core, test_tokens, 0, 3);
    suite_add_tcase(s, core);

    TCase *lim = tcase_create("Limits");
    tcase_add_test(lim, test_conv_limits);
    tcase_add_test(lim, test_norm_limits);
    tcase_add_test(lim, test_attention_limits);
    tcase_add_test(lim, test_pool_limits);
    const char *fork = getenv("CK_FORK");
    if (!fork || strcmp(fork, "no") != 0) { /* an abort would kill a non-forking run */
        tcase_add_test_raise_signal(lim, test_conv_bad_shape, SIGABRT);
        tcase_add_test_raise_signal(lim, test_pool_bad_pad, SIGABRT);
    }
    suite_add_tcase(s, lim);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(layers_suite());
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
