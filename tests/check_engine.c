/*
 * check_engine.c — the training engine: dense/activation/loss kernels
 * (fast vs naive, finite-difference gradients), a whole-model gradient
 * check, optimizers on quadratics with known minima, schedules, and a short
 * training run that must learn, deterministically.
 */
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/graph.h"
#include "nn/nn.h"
#include "nn/par.h"
#include "nn/vec16.h"
#include "oialr.h"
#include "util_grad.h"

/* --------------------------------------------------------------------------
 * dense */

static const int DENSE_SHAPES[][3] = {{1, 1, 1}, {4, 7, 5}, {17, 33, 9}, {64, 128, 96}};
#define NDENSE ((int)(sizeof DENSE_SHAPES / sizeof DENSE_SHAPES[0]))

/* fast == naive: forward with and without bias, the backward accumulating
 * into pre-filled gradients, and writing (set) the input gradient over NaN */
static void dense_compare(int N, int C, int OC, uint64_t seed, const char *what) {
    tu_rng r;
    tu_rng_seed(&r, seed);
    float *x = tu_alloc((size_t)N * C), *w = tu_alloc((size_t)OC * C), *b = tu_alloc(OC);
    float *y1 = tu_alloc((size_t)N * OC), *y2 = tu_alloc((size_t)N * OC), *dy = tu_alloc((size_t)N * OC);
    float *dx1 = tu_alloc((size_t)N * C), *dx2 = tu_alloc((size_t)N * C);
    float *dw1 = tu_alloc((size_t)OC * C), *dw2 = tu_alloc((size_t)OC * C), *db1 = tu_alloc(OC), *db2 = tu_alloc(OC);
    tu_fill_uniform(x, (size_t)N * C, &r, -1, 1);
    tu_fill_uniform(w, (size_t)OC * C, &r, -1, 1);
    tu_fill_uniform(b, OC, &r, -1, 1);
    tu_fill_uniform(dy, (size_t)N * OC, &r, -1, 1);
    tu_fill_uniform(dx1, (size_t)N * C, &r, -1, 1);
    memcpy(dx2, dx1, (size_t)N * C * sizeof *dx1);
    dense_forward(y1, x, w, b, N, C, OC);
    dense_forward_naive(y2, x, w, b, N, C, OC);
    ck_assert_msg(tu_close_ratio(y1, y2, (size_t)N * OC, 1e-4, 1e-4) <= 1.0, "forward differs (%s)", what);
    dense_forward(y1, x, w, NULL, N, C, OC); /* no bias: exactly x W^T */
    dense_forward_naive(y2, x, w, NULL, N, C, OC);
    ck_assert_msg(tu_close_ratio(y1, y2, (size_t)N * OC, 1e-4, 1e-4) <= 1.0, "forward without bias (%s)", what);
    dense_backward(dx1, dw1, db1, dy, x, w, N, C, OC, 0);
    dense_backward_naive(dx2, dw2, db2, dy, x, w, N, C, OC);
    ck_assert_msg(tu_close_ratio(dx1, dx2, (size_t)N * C, 1e-4, 1e-4) <= 1.0, "dinp differs (%s)", what);
    ck_assert_msg(tu_close_ratio(dw1, dw2, (size_t)OC * C, 1e-4, 1e-4) <= 1.0, "dw differs (%s)", what);
    ck_assert_msg(tu_close_ratio(db1, db2, OC, 1e-4, 1e-4) <= 1.0, "db differs (%s)", what);
    for (size_t i = 0; i < (size_t)N * C; i++) dx1[i] = NAN, dx2[i] = 0.0f;
    dense_backward(dx1, dw1, NULL, dy, x, w, N, C, OC, 1);
    dense_backward_naive(dx2, dw2, NULL, dy, x, w, N, C, OC);
    ck_assert_msg(tu_close_ratio(dx1, dx2, (size_t)N * C, 1e-4, 1e-4) <= 1.0, "dinp set (%s)", what);
    dense_backward(NULL, dw1, NULL, dy, x, w, N, C, OC, 0); /* no dinp, no bias */
    dense_backward_naive(NULL, dw2, NULL, dy, x, w, N, C, OC);
    ck_assert_msg(tu_close_ratio(dw1, dw2, (size_t)OC * C, 1e-4, 1e-4) <= 1.0, "dw without dinp (%s)", what);
    free(x); free(w); free(b); free(y1); free(y2); free(dy); free(dx1); free(dx2);
    free(dw1); free(dw2); free(db1); free(db2);
}

START_TEST(dense_fast_vs_naive) {
    dense_compare(DENSE_SHAPES[_i][0], DENSE_SHAPES[_i][1], DENSE_SHAPES[_i][2], 42 + (uint64_t)_i, "BLAS path");
}
END_TEST

/* Many rows (>= 512): rows and output features split across 1, 2 and 3
 * threads (nn/par.h), also with fewer output features than threads. */
START_TEST(dense_threads) {
    static const int shapes[][3] = {{600, 20, 7}, {1030, 64, 2}};
    const int saved = openblas_get_num_threads();
    for (int nt = 1; nt <= 3; nt++) {
        openblas_set_num_threads(nt);
        char what[32];
        snprintf(what, sizeof what, "%d threads", nt);
        dense_compare(shapes[_i][0], shapes[_i][1], shapes[_i][2], 5 + (uint64_t)nt, what);
    }
    openblas_set_num_threads(saved);
}
END_TEST

/* The token-layer shapes (>= 512 rows, widths multiples of 16) take the
 * small-width kernel of nn/dense.c at the 16-float level on an AVX-512 CPU:
 * dense_compare with the hand-written kernels off and on (_i = 2 * shape +
 * level), rows not a multiple of its 6-row tiles, 1..4 vectors of 16 and
 * widths past 64 (two column blocks). */
static const int DENSE_SMALL[][3] = {{517, 64, 64}, {600, 32, 48}, {1030, 128, 80}, {513, 16, 128}};
START_TEST(dense_small_width) {
    const int level = nn_simd_force(_i % 2 ? NN_SIMD_V16 : NN_SIMD_BLAS);
    dense_compare(DENSE_SMALL[_i / 2][0], DENSE_SMALL[_i / 2][1], DENSE_SMALL[_i / 2][2], 11 + (uint64_t)_i,
                  level == NN_SIMD_V16 ? "16-float level" : "kernels off");
    nn_simd_force(-1);
}
END_TEST

typedef struct {
    int N, C, OC;
    float *x, *w, *b, *y, *dx, *dw, *db;
} dense_ctx;
static void dense_f(void *c) {
    dense_ctx *k = c;
    dense_forward(k->y, k->x, k->w, k->b, k->N, k->C, k->OC);
}
static void dense_b(void *c, const float *dy) {
    dense_ctx *k = c;
    dense_backward(k->dx, k->dw, k->db, dy, k->x, k->w, k->N, k->C, k->OC, 0);
}

START_TEST(dense_gradcheck) {
    dense_ctx k = {.N = DENSE_SHAPES[_i][0], .C = DENSE_SHAPES[_i][1], .OC = DENSE_SHAPES[_i][2]};
    size_t nx = (size_t)k.N * k.C, nw = (size_t)k.OC * k.C, ny = (size_t)k.N * k.OC;
    tu_rng r;
    tu_rng_seed(&r, 7);
    k.x = tu_alloc(nx); k.w = tu_alloc(nw); k.b = tu_alloc(k.OC); k.y = tu_alloc(ny);
    k.dx = tu_alloc(nx); k.dw = tu_alloc(nw); k.db = tu_alloc(k.OC);
    tu_fill_uniform(k.x, nx, &r, -1, 1);
    tu_fill_uniform(k.w, nw, &r, -1, 1);
    tu_fill_uniform(k.b, k.OC, &r, -1, 1);
    tu_param ps[] = {{"x", k.x, k.dx, nx}, {"w", k.w, k.dw, nw}, {"b", k.b, k.db, (size_t)k.OC}};
    tu_grad_problem p = {&k, dense_f, dense_b, k.y, ny, ps, 3};
    tu_grad_result res = tu_grad_check(&p, NULL);
    ck_assert_msg(res.ok, "dense %dx%dx%d: %s", k.N, k.C, k.OC, res.msg);
    free(k.x); free(k.w); free(k.b); free(k.y); free(k.dx); free(k.dw); free(k.db);
}
END_TEST

/* --------------------------------------------------------------------------
 * elementwise layers: one table, one loop test */

typedef struct {
    int which;
    size_t n;
    float *x, *y, *dx, *mask;
} act_ctx;

enum { A_RELU, A_GELU, A_TANH, A_DROPOUT, A_COUNT };
static const char *const ACT_NAMES[] = {"relu", "gelu", "tanh", "dropout"};

static void act_f(void *c) {
    act_ctx *k = c;
    switch (k->which) {
    case A_RELU: relu_forward(k->y, k->x, k->n); break;
    case A_GELU: gelu_forward(k->y, k->x, k->n); break;
    case A_TANH: tanh_forward(k->y, k->x, k->n); break;
    case A_DROPOUT: dropout_forward(k->y, k->x, k->mask, k->n); break;
    }
}
static void act_b(void *c, const float *dy) {
    act_ctx *k = c;
    switch (k->which) {
    case A_RELU: relu_backward(k->dx, dy, k->x, k->n); break;
    case A_GELU: gelu_backward(k->dx, dy, k->x, k->n); break;
    case A_TANH:
        tanh_forward(k->y, k->x, k->n);
        tanh_backward(k->dx, dy, k->y, k->n);
        break;
    case A_DROPOUT: dropout_backward(k->dx, dy, k->mask, k->n); break;
    }
}

START_TEST(act_gradcheck) {
    act_ctx k = {.which = _i, .n = 200};
    tu_rng r;
    tu_rng_seed(&r, 3);
    k.x = tu_alloc(k.n); k.y = tu_alloc(k.n); k.dx = tu_alloc(k.n); k.mask = tu_alloc(k.n);
    /* distinct values away from ReLU's kink */
    tu_fill_distinct(k.x, k.n, &r, -2.0f + 0.005f, 0.02f);
    for (size_t i = 0; i < k.n; i++) k.mask[i] = (i % 3 == 0) ? 0.0f : 1.5f;
    tu_param ps[] = {{"x", k.x, k.dx, k.n}};
    tu_grad_problem p = {&k, act_f, act_b, k.y, k.n, ps, 1};
    tu_grad_opts o = {.eps = 1e-3, .atol = 2e-3, .rtol = 2e-2, .max_per_param = 0, .seed = 1};
    tu_grad_result res = tu_grad_check(&p, &o);
    ck_assert_msg(res.ok, "%s: %s", ACT_NAMES[_i], res.msg);
    free(k.x); free(k.y); free(k.dx); free(k.mask);
}
END_TEST

START_TEST(gelu_known_values) {
    /* GELU(tanh approx): GELU(0)=0, GELU(1)=0.841192, GELU(-1)=-0.158808 */
    float x[3] = {0.0f, 1.0f, -1.0f}, y[3];
    gelu_forward(y, x, 3);
    ck_assert_float_eq_tol(y[0], 0.0f, 1e-7f);
    ck_assert_float_eq_tol(y[1], 0.841192f, 1e-5f);
    ck_assert_float_eq_tol(y[2], -0.158808f, 1e-5f);
}
END_TEST

/* nn_parallel (nn/par.c): every share of a call runs once, with its own
 * t and the call's nt, however the pool's workers wait between calls: back
 * to back (they are still polling), after a pause longer than their polling
 * (asleep on the condition variable), from inside a share (fresh threads),
 * and after nn_pool_shutdown (new workers). */
typedef struct par_count {
    int hits[NN_MAX_THREADS], bad, nested;
} par_count;
static void par_hit(void *ctx, int t, int nt) {
    par_count *c = ctx;
    if (t < 0 || t >= nt || nt > NN_MAX_THREADS) __atomic_fetch_add(&c->bad, 1, __ATOMIC_RELAXED);
    else __atomic_fetch_add(&c->hits[t], 1, __ATOMIC_RELAXED);
}
static void par_nested(void *ctx, int t, int nt) {
    par_count *c = ctx;
    par_hit(ctx, t, nt);
    if (t == 0) { /* the pool is busy with this call: fresh threads */
        par_count inner = {{0}, 0, 0};
        nn_parallel(par_hit, &inner, 3);
        c->nested = inner.hits[0] == 1 && inner.hits[1] == 1 && inner.hits[2] == 1 && inner.bad == 0;
    }
}
static int par_calls(nn_task fn, par_count *c, int nt, int calls, long pause_ns) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < calls; i++) {
        nn_parallel(fn, c, nt);
        if (pause_ns > 0) nanosleep(&(struct timespec){0, pause_ns}, NULL);
    }
    int ok = c->bad == 0;
    for (int t = 0; t < NN_MAX_THREADS; t++) ok = ok && c->hits[t] == (t < nt ? calls : 0);
    return ok;
}
START_TEST(parallel_pool) {
    par_count c;
    for (int nt = 1; nt <= NN_MAX_THREADS; nt++)
        ck_assert_msg(par_calls(par_hit, &c, nt, 500, 0), "back to back, %d shares", nt);
    ck_assert_msg(par_calls(par_hit, &c, 2, 20, 3000000), "3 ms apart (workers asleep)");
    ck_assert_msg(par_calls(par_hit, &c, 3, 20, 200000), "0.2 ms apart");
    ck_assert_msg(par_calls(par_nested, &c, 2, 10, 0) && c.nested, "a call from inside a share");
    nn_pool_shutdown();
    ck_assert_msg(par_calls(par_hit, &c, 4, 50, 0), "after nn_pool_shutdown");
    nn_pool_shutdown();
}
END_TEST

/* relu_forward/backward and add_forward split across 1, 2 and 3 threads
 * (>= 256 Ki values; 300001 so the last share ends off a block): exact. */
START_TEST(elementwise_threads) {
    const size_t n = 300001;
    const int saved = openblas_get_num_threads();
    tu_rng r;
    tu_rng_seed(&r, 3);
    float *a = tu_alloc(n), *b = tu_alloc(n), *y = tu_alloc(n), *d = tu_alloc(n);
    tu_fill_uniform(a, n, &r, -1, 1);
    tu_fill_uniform(b, n, &r, -1, 1);
    a[n - 1] = NAN;
    for (int nt = 1; nt <= 3; nt++) {
        openblas_set_num_threads(nt);
        /* one assertion per array (a passing ck_assert writes to Check's pipe) */
        size_t bad = n;
        relu_forward(y, a, n);
        for (size_t i = 0; i + 1 < n && bad == n; i++)
            if (y[i] != (a[i] < 0 ? 0.0f : a[i])) bad = i;
        ck_assert_msg(bad == n, "relu_forward, %d threads: element %zu", nt, bad);
        ck_assert(isnan(y[n - 1]));
        for (size_t i = 0; i < n; i++) d[i] = 1.0f;
        relu_backward(d, b, a, n);
        for (size_t i = 0; i < n && bad == n; i++)
            if (d[i] != 1.0f + (a[i] > 0 ? b[i] : 0.0f)) bad = i;
        ck_assert_msg(bad == n, "relu_backward, %d threads: element %zu", nt, bad);
        add_forward(y, a, b, n);
        for (size_t i = 0; i + 1 < n && bad == n; i++)
            if (y[i] != a[i] + b[i]) bad = i;
        ck_assert_msg(bad == n, "add_forward, %d threads: element %zu", nt, bad);
    }
    openblas_set_num_threads(saved);
    free(a); free(b); free(y); free(d);
}
END_TEST

/* gelu_forward/backward (rational tanh, threaded from 64 Ki values) against
 * the formula with tanh in double, over [-12, 12] and with NaN, on 1, 2 and
 * 3 threads; 70001 values so the shares end off a 16-value block. */
START_TEST(gelu_vs_libm) {
    const size_t n = 70001;
    const int saved = openblas_get_num_threads();
    float *x = tu_alloc(n), *y = tu_alloc(n), *g = tu_alloc(n), *dx = tu_alloc(n);
    for (size_t i = 0; i < n; i++) {
        x[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);
        g[i] = 1.0f;
    }
    x[n / 3] = NAN;
    for (int nt = 1; nt <= 3; nt++) {
        openblas_set_num_threads(nt);
        memset(dx, 0, n * sizeof *dx);
        gelu_forward(y, x, n);
        gelu_backward(dx, g, x, n);
        for (size_t i = 0; i < n; i++) {
            if (i == n / 3) {
                ck_assert(isnan(y[i]) && isnan(dx[i]));
                continue;
            }
            double xv = x[i], u = 0.7978845608028654 * (xv + 0.044715 * xv * xv * xv), th = tanh(u);
            double yr = 0.5 * xv * (1.0 + th);
            double du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * xv * xv);
            double dr = 0.5 * (1.0 + th) + 0.5 * xv * (1.0 - th * th) * du;
            ck_assert_msg(fabs(y[i] - yr) <= 2e-6 + 2e-6 * fabs(yr), "gelu(%g) = %g, want %g", xv, y[i], yr);
            /* in the tails 1 - th*th in float is off by ~1e-7 times |x du| ~ 100, as with tanhf */
            ck_assert_msg(fabs(dx[i] - dr) <= 2e-5 + 2e-6 * fabs(dr), "gelu'(%g) = %g, want %g", xv, dx[i], dr);
        }
        /* the writing variant: the same values over NaN, bit for bit */
        float *dx2 = malloc(n * sizeof *dx2);
        ck_assert_ptr_nonnull(dx2);
        for (size_t i = 0; i < n; i++) dx2[i] = NAN;
        gelu_backward_set(dx2, g, x, n);
        size_t bad = n;
        for (size_t i = 0; i < n && bad == n; i++)
            if (i != n / 3 && dx2[i] != dx[i]) bad = i;
        ck_assert_msg(bad == n && isnan(dx2[n / 3]), "gelu_backward_set, %d threads: element %zu", nt, bad);
        free(dx2);
    }
    openblas_set_num_threads(saved);
    free(x); free(y); free(g); free(dx);
}
END_TEST

/* --------------------------------------------------------------------------
 * softmax cross-entropy */

typedef struct {
    int N, NC;
    float smoothing;
    float *z, *dz, *probs, *loss;
    unsigned char *t;
} xent_ctx;
static void xent_f(void *c) {
    xent_ctx *k = c;
    k->loss[0] = softmax_xent_forward(k->probs, NULL, k->z, k->t, k->N, k->NC, k->smoothing);
}
static void xent_b(void *c, const float *dl) {
    xent_ctx *k = c;
    /* L = loss * dl[0]: scale the accumulated gradient by dl[0] */
    size_t n = (size_t)k->N * k->NC;
    float *tmp = tu_alloc(n);
    softmax_xent_forward(k->probs, NULL, k->z, k->t, k->N, k->NC, k->smoothing);
    softmax_xent_backward(tmp, k->probs, k->t, k->N, k->NC, k->smoothing);
    for (size_t i = 0; i < n; i++) k->dz[i] += dl[0] * tmp[i];
    free(tmp);
}

START_TEST(xent_gradcheck) {
    float smooth[] = {0.0f, 0.1f};
    xent_ctx k = {.N = 6, .NC = 5, .smoothing = smooth[_i]};
    size_t n = (size_t)k.N * k.NC;
    tu_rng r;
    tu_rng_seed(&r, 5);
    k.z = tu_alloc(n); k.dz = tu_alloc(n); k.probs = tu_alloc(n); k.loss = tu_alloc(1);
    k.t = malloc((size_t)k.N);
    tu_fill_uniform(k.z, n, &r, -3, 3);
    for (int i = 0; i < k.N; i++) k.t[i] = (unsigned char)(i % k.NC);
    tu_param ps[] = {{"logits", k.z, k.dz, n}};
    tu_grad_problem p = {&k, xent_f, xent_b, k.loss, 1, ps, 1};
    tu_grad_opts o = {.eps = 1e-3, .atol = 1e-4, .rtol = 1e-2, .max_per_param = 0, .seed = 2};
    tu_grad_result res = tu_grad_check(&p, &o);
    ck_assert_msg(res.ok, "smoothing %g: %s", (double)k.smoothing, res.msg);
    free(k.z); free(k.dz); free(k.probs); free(k.loss); free(k.t);
}
END_TEST

START_TEST(xent_known_values) {
    /* uniform logits: loss = log(NC) whatever the smoothing */
    float z[8] = {0}, p[8];
    unsigned char t[2] = {1, 3};
    int correct = -1;
    float l = softmax_xent_forward(p, &correct, z, t, 2, 4, 0.0f);
    ck_assert_float_eq_tol(l, logf(4.0f), 1e-6f);
    ck_assert_float_eq_tol(p[0], 0.25f, 1e-7f);
    l = softmax_xent_forward(p, &correct, z, t, 2, 4, 0.3f);
    ck_assert_float_eq_tol(l, logf(4.0f), 1e-6f);
    /* a confident right answer: loss ~ 0, counted correct */
    float z2[3] = {20.0f, 0.0f, 0.0f};
    unsigned char t2[1] = {0};
    l = softmax_xent_forward(p, &correct, z2, t2, 1, 3, 0.0f);
    ck_assert_float_lt(l, 1e-6f);
    ck_assert_int_eq(correct, 1);
}
END_TEST

/* --------------------------------------------------------------------------
 * whole model: parameter gradients against finite differences of the loss */

typedef struct {
    oialr_model *m;
    float *x;
    uint8_t *y;
    int B;
    float loss;
} model_ctx;
static void model_f(void *c) {
    model_ctx *k = c;
    ck_assert_int_eq(oialr_model_forward(k->m, k->x, k->y, k->B, 1, &k->loss, NULL), OIALR_OK);
}
static void model_b(void *c, const float *dl) {
    model_ctx *k = c;
    oialr_params *p = oialr_model_params(k->m);
    float *saved = tu_alloc(p->total);
    memcpy(saved, p->grad, p->total * sizeof(float)); /* the checker's pre-fill */
    ck_assert_int_eq(oialr_model_forward(k->m, k->x, k->y, k->B, 1, &k->loss, NULL), OIALR_OK);
    ck_assert_int_eq(oialr_model_backward(k->m), OIALR_OK); /* zeroes then writes grads */
    for (size_t i = 0; i < p->total; i++) p->grad[i] = saved[i] + dl[0] * p->grad[i];
    free(saved);
}

static const struct {
    const char *spec;
    int c, h, w;
} MODEL_SPECS[] = {
    /* every model family, with and without its options */
    {"mlp:16,12", 1, 4, 5},
    {"mlp:8,act=gelu", 1, 4, 5},
    {"mlp:8,8,act=tanh", 1, 4, 5},
    /* smooth activations: a ReLU kink inside the finite difference would
     * fail the check without a bug (ReLU itself is checked above) */
    {"cnn:4,6,blocks=1,act=tanh", 1, 6, 6},
    {"cnn:3,blocks=2,act=gelu", 2, 5, 4},
    {"vit:patch=2,dim=8,depth=1,heads=2,mlp=12", 1, 4, 4},
    {"vit:patch=2,dim=6,depth=2,heads=3,mlp=8,pool=mean", 3, 4, 6},
};

START_TEST(model_gradcheck) {
    model_ctx k = {.B = 5};
    int c = MODEL_SPECS[_i].c, h = MODEL_SPECS[_i].h, w = MODEL_SPECS[_i].w;
    int rc = oialr_model_create(&k.m, MODEL_SPECS[_i].spec, c, h, w, 3, 8, 11);
    ck_assert_msg(rc == OIALR_OK, "%s: %s", MODEL_SPECS[_i].spec, oialr_errmsg());
    tu_rng r;
    tu_rng_seed(&r, 9);
    size_t nx = (size_t)5 * c * h * w;
    k.x = tu_alloc(nx);
    k.y = malloc(5);
    tu_fill_uniform(k.x, nx, &r, -1, 1);
    for (int i = 0; i < 5; i++) k.y[i] = (uint8_t)(i % 3);
    oialr_params *p = oialr_model_params(k.m);
    tu_param ps[64];
    int np = 0;
    for (int i = 0; i < p->count && np < 64; i++)
        if (p->info[i].kind != OIALR_PARAM_BUFFER)
        ps[np++] = (tu_param){p->info[i].name, p->data + p->info[i].offset, p->grad + p->info[i].offset,
                              p->info[i].size};
    tu_grad_problem prob = {&k, model_f, model_b, &k.loss, 1, ps, np};
    tu_grad_opts o = {.eps = 1e-3, .atol = 1e-4, .rtol = 2e-2, .max_per_param = 32, .seed = 3};
    tu_grad_result res = tu_grad_check(&prob, &o);
    ck_assert_msg(res.ok, "%s: %s", MODEL_SPECS[_i].spec, res.msg);
    oialr_model_free(k.m);
    free(k.x);
    free(k.y);
}
END_TEST

/* One layer selection for the recorder and the analyzer: a comma list of
 * globs, any of which may match. */
START_TEST(glob_lists) {
    ck_assert(oialr_glob_match("fc*", "fc1.weight"));
    ck_assert(!oialr_glob_match("fc*", "head.weight"));
    ck_assert(oialr_glob_match("conv*,head.*", "head.weight"));
    ck_assert(oialr_glob_match("conv*,head.*", "conv1"));
    ck_assert(!oialr_glob_match("conv*,head.*", "fc1.weight"));
    ck_assert(!oialr_glob_match("", "fc1"));
    ck_assert(!oialr_glob_match(",,", "fc1"));
    ck_assert(oialr_glob_match(",fc1,", "fc1"));
    ck_assert(oialr_glob_match("s1.b0.[12].conv", "s1.b0.2.conv"));
}
END_TEST

START_TEST(model_layout) {
    oialr_model *m;
    ck_assert_int_eq(oialr_model_create(&m, "mlp:512,512", 1, 28, 28, 10, 128, 0), OIALR_OK);
    oialr_params *p = oialr_model_params(m);
    ck_assert_int_eq(p->count, 6);
    int i = oialr_params_find(p, "fc1.weight");
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(p->info[i].rows, 512);
    ck_assert_int_eq(p->info[i].cols, 784);
    ck_assert_int_eq(p->info[i].kind, OIALR_PARAM_MATRIX);
    ck_assert_int_eq(p->info[oialr_params_find(p, "fc3.bias")].kind, OIALR_PARAM_BIAS);
    ck_assert_uint_eq(oialr_params_trainable(p), 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10);
    /* views are disjoint and inside the buffer */
    for (int a = 0; a < p->count; a++) {
        ck_assert_uint_le(p->info[a].offset + p->info[a].size, p->total);
        for (int b = a + 1; b < p->count; b++)
            ck_assert(p->info[a].offset + p->info[a].size <= p->info[b].offset ||
                      p->info[b].offset + p->info[b].size <= p->info[a].offset);
    }
    /* PyTorch default init: |w| <= 1/sqrt(fan_in), and not all equal */
    const float *w = p->data + p->info[i].offset;
    float bound = 1.0f / sqrtf(784.0f), mx = 0.0f;
    for (size_t k = 0; k < p->info[i].size; k++) mx = fmaxf(mx, fabsf(w[k]));
    ck_assert_float_le(mx, bound);
    ck_assert_float_gt(mx, 0.9f * bound);
    ck_assert_str_eq(oialr_model_spec(m), "mlp:512,512,act=relu,dropout=0");
    oialr_model_free(m);
}
END_TEST

START_TEST(model_bad_specs) {
    static const char *bad[] = {"", "mlp:", "mlp:0", "mlp:abc", "mlp:12,act=swish", "mlp:12,dropout=2",
                                "mlp:12,foo=1", "resnet:3", "mlp:12,=3", "mlp:-4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oialr_model *m = NULL;
        int rc = oialr_model_create(&m, bad[i], 1, 28, 28, 10, 4, 0);
        if (strcmp(bad[i], "mlp:") == 0) { /* empty list: defaults */
            ck_assert_int_eq(rc, OIALR_OK);
            oialr_model_free(m);
            continue;
        }
        ck_assert_msg(rc == OIALR_ERR_SPEC, "'%s' gave %d", bad[i], rc);
        ck_assert_ptr_null(m);
        ck_assert_msg(strlen(oialr_errmsg()) > 0, "no message for '%s'", bad[i]);
    }
    oialr_model *m = NULL;
    ck_assert_int_eq(oialr_model_create(&m, "mlp:8", 1, 28, 28, 10, 0, 0), OIALR_ERR_ARG);
    /* too long for the tokenizer and the recorded spec: refused, not cut */
    char lng[400] = "mlp:";
    for (int i = 0; i < 90; i++) strcat(lng, "16,");
    strcat(lng, "16");
    ck_assert_int_eq(oialr_model_create(&m, lng, 1, 28, 28, 10, 4, 0), OIALR_ERR_SPEC);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(oialr_errmsg(), "at most 255"), "%s", oialr_errmsg());
}
END_TEST

START_TEST(model_batch_limits) {
    oialr_model *m;
    ck_assert_int_eq(oialr_model_create(&m, "mlp:8", 1, 2, 2, 3, 4, 0), OIALR_OK);
    float x[5 * 4] = {0};
    uint8_t y[5] = {0, 1, 2, 0, 1}, bad[1] = {7};
    ck_assert_int_eq(oialr_model_forward(m, x, y, 5, 1, NULL, NULL), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_model_forward(m, x, bad, 1, 1, NULL, NULL), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_model_forward(m, x, NULL, 2, 0, NULL, NULL), OIALR_OK);
    ck_assert_int_eq(oialr_model_backward(m), OIALR_ERR_ARG); /* no labels, eval mode */
    /* NaN weights: the loss is reported, not propagated silently */
    oialr_params *p = oialr_model_params(m);
    p->data[0] = NAN;
    x[0] = 1.0f;
    float loss;
    ck_assert_int_eq(oialr_model_forward(m, x, y, 2, 1, &loss, NULL), OIALR_ERR_NUMERIC);
    oialr_model_free(m);
}
END_TEST

/* --------------------------------------------------------------------------
 * optimizers: f(w) = 1/2 Σ a_i (w_i - c_i)^2, minimum at c */

static int run_quadratic(const oialr_optim_config *cfg, int steps, float lr, float *err) {
    oialr_params p = {0};
    int64_t shape[2] = {4, 5};
    params_add(&p, "w", "dense", OIALR_PARAM_MATRIX, 2, shape);
    int64_t bshape[1] = {3};
    params_add(&p, "b", "dense", OIALR_PARAM_BIAS, 1, bshape);
    ck_assert_int_eq(params_alloc(&p), OIALR_OK);
    float a[32], c[32];
    for (int i = 0; i < 32; i++) {
        a[i] = 0.5f + 0.1f * (float)(i % 7);
        c[i] = (float)(i % 5) - 2.0f;
    }
    oialr_optim o;
    ck_assert_int_eq(oialr_optim_init(&o, cfg, &p), OIALR_OK);
    for (int s = 0; s < steps; s++) {
        for (int k = 0; k < p.count; k++) {
            float *w = p.data + p.info[k].offset, *g = p.grad + p.info[k].offset;
            for (size_t i = 0; i < p.info[k].size; i++) g[i] = a[i] * (w[i] - c[i]);
        }
        oialr_optim_step(&o, &p, lr);
    }
    float e = 0.0f;
    for (int k = 0; k < p.count; k++) {
        float *w = p.data + p.info[k].offset;
        for (size_t i = 0; i < p.info[k].size; i++) e = fmaxf(e, fabsf(w[i] - c[i]));
    }
    *err = e;
    oialr_optim_free(&o);
    params_free(&p);
    return 0;
}

START_TEST(optim_quadratic) {
    oialr_optim_config cfg;
    float err;
    oialr_optim_defaults(&cfg, OIALR_OPT_SGD);
    cfg.momentum = 0.0f;
    run_quadratic(&cfg, 300, 0.5f, &err);
    ck_assert_msg(err < 1e-4f, "plain sgd: %g", (double)err);
    oialr_optim_defaults(&cfg, OIALR_OPT_SGD);
    run_quadratic(&cfg, 300, 0.1f, &err);
    ck_assert_msg(err < 1e-4f, "sgd momentum: %g", (double)err);
    cfg.nesterov = 1;
    run_quadratic(&cfg, 300, 0.1f, &err);
    ck_assert_msg(err < 1e-4f, "sgd nesterov: %g", (double)err);
    oialr_optim_defaults(&cfg, OIALR_OPT_ADAMW);
    cfg.weight_decay = 0.0f;
    run_quadratic(&cfg, 3000, 0.01f, &err);
    ck_assert_msg(err < 1e-3f, "adamw: %g", (double)err);
}
END_TEST

START_TEST(optim_decoupled_decay) {
    /* zero gradient: AdamW shrinks matrices by (1 - lr*wd) per step, and
     * leaves biases alone; a frozen parameter does not move */
    oialr_params p = {0};
    int64_t ws[2] = {2, 2}, bs[1] = {2};
    params_add(&p, "w", "dense", OIALR_PARAM_MATRIX, 2, ws);
    params_add(&p, "b", "dense", OIALR_PARAM_BIAS, 1, bs);
    params_add(&p, "f", "dense", OIALR_PARAM_MATRIX, 2, ws);
    ck_assert_int_eq(params_alloc(&p), OIALR_OK);
    for (size_t i = 0; i < p.total; i++) p.data[i] = 1.0f;
    p.info[2].trainable = 0;
    oialr_optim_config cfg;
    oialr_optim_defaults(&cfg, OIALR_OPT_ADAMW);
    cfg.weight_decay = 0.1f;
    oialr_optim o;
    ck_assert_int_eq(oialr_optim_init(&o, &cfg, &p), OIALR_OK);
    for (int s = 0; s < 10; s++) oialr_optim_step(&o, &p, 0.5f);
    ck_assert_float_eq_tol(p.data[p.info[0].offset], powf(1.0f - 0.05f, 10.0f), 1e-6f);
    ck_assert_float_eq(p.data[p.info[1].offset], 1.0f);
    ck_assert_float_eq(p.data[p.info[2].offset], 1.0f);
    oialr_optim_free(&o);
    params_free(&p);
}
END_TEST

START_TEST(schedules) {
    oialr_schedule s = {.kind = OIALR_SCHED_COSINE, .base_lr = 1.0f, .warmup = 10, .total = 110};
    ck_assert_float_eq_tol(oialr_schedule_lr(&s, 0), 0.1f, 1e-6f);
    ck_assert_float_eq_tol(oialr_schedule_lr(&s, 9), 1.0f, 1e-6f);
    ck_assert_float_eq_tol(oialr_schedule_lr(&s, 10), 1.0f, 1e-6f);
    ck_assert_float_eq_tol(oialr_schedule_lr(&s, 60), 0.5f, 1e-6f);
    ck_assert_float_eq_tol(oialr_schedule_lr(&s, 110), 0.0f, 1e-6f);
    oialr_schedule st = {.kind = OIALR_SCHED_STEP, .base_lr = 1.0f, .step_size = 5, .gamma = 0.5f};
    ck_assert_float_eq(oialr_schedule_lr(&st, 4), 1.0f);
    ck_assert_float_eq_tol(oialr_schedule_lr(&st, 5), 0.5f, 1e-7f);
    ck_assert_float_eq_tol(oialr_schedule_lr(&st, 12), 0.25f, 1e-7f);
    oialr_schedule c = {.kind = OIALR_SCHED_CONSTANT, .base_lr = 0.3f};
    ck_assert_float_eq(oialr_schedule_lr(&c, 1000), 0.3f);
}
END_TEST

/* --------------------------------------------------------------------------
 * training end to end on synthetic data */

static int train_synthetic(const char *spec, int threads, int opt, float lr, int epochs, float *final_loss, float *acc,
                           float **weights, size_t *nw) {
    oialr_set_threads(threads);
    oialr_dataset ds;
    ck_assert_int_eq(oialr_dataset_synthetic(&ds, 1200, 1, 12, 12, 4, 0.3f, 5), OIALR_OK);
    oialr_loader tr, va;
    ck_assert_int_eq(oialr_loader_split(&tr, &va, &ds, 200, 3), OIALR_OK);
    float mean[1], std[1];
    oialr_dataset_stats(&ds, mean, std);
    oialr_loader_set_norm(&tr, mean, std);
    oialr_loader_set_norm(&va, mean, std);
    oialr_model *m;
    ck_assert_int_eq(oialr_model_create(&m, spec, 1, 12, 12, 4, 32, 1), OIALR_OK);
    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.epochs = epochs;
    cfg.batch = 32;
    oialr_optim_defaults(&cfg.optim, opt);
    cfg.optim.lr = lr;
    cfg.schedule.kind = OIALR_SCHED_COSINE; /* the end point is the settled model, not a step mid-oscillation */
    oialr_trainer t;
    ck_assert_int_eq(oialr_trainer_init(&t, &cfg, m, &tr, &va, NULL), OIALR_OK);
    int rc = oialr_train_run(&t);
    ck_assert_msg(rc == OIALR_OK, "train: %s", oialr_errmsg());
    ck_assert_int_eq(t.metrics.step, epochs * ((1000 + 31) / 32));
    *final_loss = t.metrics.val_loss;
    *acc = t.metrics.val_acc;
    oialr_params *p = oialr_model_params(m);
    *nw = p->total;
    *weights = tu_alloc(p->total);
    memcpy(*weights, p->data, p->total * sizeof(float));
    oialr_trainer_free(&t);
    oialr_model_free(m);
    oialr_loader_free(&tr);
    oialr_loader_free(&va);
    oialr_dataset_free(&ds);
    return 0;
}

START_TEST(train_learns_and_is_deterministic) {
    float l1, a1, l2, a2, *w1, *w2;
    size_t n1, n2;
    train_synthetic("mlp:64,dropout=0.1", 1, OIALR_OPT_SGD, 0.05f, 3, &l1, &a1, &w1, &n1);
    /* chance is 25% for 4 classes and log(4)=1.386 */
    ck_assert_msg(l1 < 0.3f, "validation loss after 3 epochs: %g", (double)l1);
    ck_assert_msg(a1 > 0.9f, "validation accuracy: %g", (double)a1);
    train_synthetic("mlp:64,dropout=0.1", 1, OIALR_OPT_SGD, 0.05f, 3, &l2, &a2, &w2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(w1, w2, n1 * sizeof(float)) == 0, "same seed, one thread: weights differ");
    free(w1);
    free(w2);
}
END_TEST

/* Each model family learns the synthetic task in 8 epochs (chance: 25%, loss 1.39). */
static const struct {
    const char *spec;
    int opt;
    float lr;
} FAMILIES[] = {
    {"cnn:8,16", OIALR_OPT_SGD, 0.05f},
    {"vit:patch=4,dim=32,depth=2,heads=4,mlp=64", OIALR_OPT_ADAMW, 2e-3f},
};

START_TEST(train_each_family) {
    float loss, acc, *w;
    size_t n;
    train_synthetic(FAMILIES[_i].spec, 2, FAMILIES[_i].opt, FAMILIES[_i].lr, 8, &loss, &acc, &w, &n);
    ck_assert_msg(loss < 0.5f && acc > 0.85f, "%s: validation loss %g, accuracy %g", FAMILIES[_i].spec, (double)loss,
                  (double)acc);
    free(w);
}
END_TEST

/* A hook that stops the run: the code comes back, run_end still runs. */
static int stop_at_5(oialr_trainer *t, void *u) {
    (void)u;
    return t->metrics.step == 5 ? OIALR_ERR_INTERRUPTED : 0;
}
static int count_end(oialr_trainer *t, void *u) {
    (void)t;
    ++*(int *)u;
    return 0;
}

START_TEST(hooks_stop_and_end) {
    oialr_dataset ds;
    ck_assert_int_eq(oialr_dataset_synthetic(&ds, 300, 1, 4, 4, 3, 0.1f, 1), OIALR_OK);
    oialr_loader tr;
    ck_assert_int_eq(oialr_loader_init(&tr, &ds, 1, 0), OIALR_OK);
    oialr_model *m;
    ck_assert_int_eq(oialr_model_create(&m, "mlp:8", 1, 4, 4, 3, 16, 0), OIALR_OK);
    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.batch = 16;
    oialr_trainer t;
    ck_assert_int_eq(oialr_trainer_init(&t, &cfg, m, &tr, NULL, NULL), OIALR_OK);
    int ends = 0;
    oialr_hook h1 = {.name = "stop", .step_end = stop_at_5};
    oialr_hook h2 = {.name = "end", .user = &ends, .run_end = count_end};
    oialr_trainer_add_hook(&t, &h1);
    oialr_trainer_add_hook(&t, &h2);
    ck_assert_int_eq(oialr_train_run(&t), OIALR_ERR_INTERRUPTED);
    ck_assert_int_eq(t.metrics.step, 5);
    ck_assert_int_eq(ends, 1);
    oialr_trainer_free(&t);
    oialr_model_free(m);
    oialr_loader_free(&tr);
    oialr_dataset_free(&ds);
}
END_TEST

static Suite *engine_suite(void) {
    Suite *s = suite_create("engine");
    TCase *core = tcase_create("Core");
    tcase_add_loop_test(core, dense_fast_vs_naive, 0, NDENSE);
    tcase_add_loop_test(core, dense_gradcheck, 0, NDENSE);
    tcase_add_loop_test(core, dense_threads, 0, 2);
    tcase_add_loop_test(core, dense_small_width, 0, 2 * (int)(sizeof DENSE_SMALL / sizeof DENSE_SMALL[0]));
    tcase_add_loop_test(core, act_gradcheck, 0, A_COUNT);
    tcase_add_test(core, gelu_known_values);
    tcase_add_test(core, gelu_vs_libm);
    tcase_add_test(core, elementwise_threads);
    tcase_add_test(core, parallel_pool);
    tcase_add_loop_test(core, xent_gradcheck, 0, 2);
    tcase_add_test(core, xent_known_values);
    tcase_add_loop_test(core, model_gradcheck, 0, (int)(sizeof MODEL_SPECS / sizeof MODEL_SPECS[0]));
    tcase_add_test(core, model_layout);
    tcase_add_test(core, glob_lists);
    tcase_add_test(core, optim_quadratic);
    tcase_add_test(core, optim_decoupled_decay);
    tcase_add_test(core, schedules);
    tcase_add_test(core, train_learns_and_is_deterministic);
    tcase_add_loop_test(core, train_each_family, 0, (int)(sizeof FAMILIES / sizeof FAMILIES[0]));
    tcase_add_test(core, hooks_stop_and_end);
    tcase_set_timeout(core, 120);
    suite_add_tcase(s, core);
    TCase *lim = tcase_create("Limits");
    tcase_add_test(lim, model_bad_specs);
    tcase_add_test(lim, model_batch_limits);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(engine_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
