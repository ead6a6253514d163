/*
 * tests/bench/bench_kernels.c — GFLOP/s of the CNN and ViT layer kernels
 * (forward + backward, realistic shapes, batch 128) as a fraction of the
 * OpenBLAS sgemm ceiling, and where a training step of the default CNN and
 * ViT spends its time.
 *
 *     build/bench/bench_kernels [SECONDS] [--rounds R] [--only TEXT] [--no-models]
 *
 * SECONDS (default 0.3) is the time per measurement. The machine is shared,
 * so the ceiling drifts: every case runs R rounds (default 3) of "sgemm
 * 1024^3 for a third of SECONDS, then the kernel for SECONDS", and its
 * fraction of the ceiling is the median of the per-round fractions; the
 * spread (lowest-highest round) follows it. --only runs the cases whose name
 * contains TEXT.
 *
 * FLOPs counted are the multiply-adds of the products only (2 per MAC):
 * forward F, backward 2F (input and weight gradients; F without the input
 * gradient), so a layer's fwd+bwd is 3F. Threads: OpenBLAS's default
 * (OPENBLAS_NUM_THREADS).
 *
 * The model part builds `cnn` and `vit` as `oialr train` does (1x28x28, 10
 * classes, batch 128), and times one forward + backward node by node, the
 * loop of oialr_model_forward/backward (lib/model/graph.c) written out with a
 * clock around each node: the share of the step per layer kind, and per conv.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/graph.h"
#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/embed.h"
#include "nn/nn.h"
#include "nn/norm.h"
#include "nn/par.h"
#include "nn/pool.h"
#include "nn/vec16.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_rand(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)((double)rand() / RAND_MAX - 0.5);
    return p;
}

static double g_secs = 0.3;
static int g_rounds = 3;
static const char *g_only;

#define MAX_ROUNDS 15

/* run fn(ctx) until secs have passed (after one warm-up), return s/call */
static double timeit_for(void (*fn)(void *), void *ctx, double secs)
{
    fn(ctx);
    int n = 0;
    double t0 = now(), t;
    do {
        fn(ctx);
        n++;
        t = now() - t0;
    } while (t < secs);
    return t / n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}
static double vmin(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}
static double vmax(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

// --- sgemm ------------------------------------------------------------------
typedef struct gemm_ctx {
    int M, N, K;
    float *a, *b, *c;
} gemm_ctx;
static void run_gemm(void *p)
{
    gemm_ctx *g = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->M, g->N, g->K, 1.0f, g->a, g->K, g->b, g->N, 0.0f,
                g->c, g->N);
}
static gemm_ctx gemm_make(int M, int N, int K)
{
    return (gemm_ctx){M, N, K, alloc_rand((size_t)M * K), alloc_rand((size_t)K * N), alloc_rand((size_t)M * N)};
}
static void gemm_free(gemm_ctx *g) { free(g->a), free(g->b), free(g->c); }
static double gemm_rate(gemm_ctx *g, double secs)
{
    return 2.0 * g->M * g->N * g->K / timeit_for(run_gemm, g, secs) * 1e-9;
}

static gemm_ctx g_ceil; /* 1024^3, the ceiling */

/* R rounds of (ceiling, kernel): *sec = median seconds per call of fn,
 * frac[r] = the round's GFLOP/s over its ceiling (flops may be 0: then only
 * the time); returns the median ceiling. */
static double rounds(void (*fn)(void *), void *ctx, double flops, double *sec, double *frac)
{
    double t[MAX_ROUNDS], c[MAX_ROUNDS];
    for (int r = 0; r < g_rounds; r++) {
        c[r] = gemm_rate(&g_ceil, g_secs / 3);
        t[r] = timeit_for(fn, ctx, g_secs);
        frac[r] = flops > 0 ? flops / t[r] * 1e-9 / c[r] : 0.0;
    }
    *sec = median(t, g_rounds);
    return median(c, g_rounds);
}

static int selected(const char *name) { return !g_only || strstr(name, g_only); }

static void report(const char *name, double sec, double flops, const double *frac, double ceil)
{
    if (flops > 0)
        printf("%-40s %8.3f ms %7.1f GFLOP/s %4.0f%% of sgemm (rounds %3.0f-%3.0f%%, ceiling %.0f)", name, sec * 1e3,
               flops / sec * 1e-9, 100 * median(frac, g_rounds), 100 * vmin(frac, g_rounds),
               100 * vmax(frac, g_rounds), ceil);
    else
        printf("%-40s %8.3f ms", name, sec * 1e3);
}

static void bench_gemm_case(const char *name, int M, int N, int K)
{
    if (!selected(name)) return;
    gemm_ctx g = gemm_make(M, N, K);
    double sec, frac[MAX_ROUNDS], ceil = rounds(run_gemm, &g, 2.0 * M * N * K, &sec, frac);
    report(name, sec, 2.0 * M * N * K, frac, ceil);
    putchar('\n');
    gemm_free(&g);
}

// --- conv -------------------------------------------------------------------
typedef struct conv_ctx {
    conv2d_dims d;
    int B, need_dinp;
    float *x, *w, *b, *y, *dx, *dw, *db, *s;
} conv_ctx;
static void run_conv(void *p)
{
    conv_ctx *c = p;
    conv2d_forward(c->y, c->x, c->w, c->b, c->s, &c->d, c->B);
    conv2d_backward(c->need_dinp ? c->dx : NULL, c->dw, c->db, c->y, c->x, c->w, c->s, &c->d, c->B, 0);
}
static void bench_conv(const char *name, int B, int C, int H, int OC, int K, int S, int pad, int need_dinp)
{
    if (!selected(name)) return;
    conv_ctx c;
    c.d = conv2d_make(C, H, H, OC, K, K, S, pad);
    c.B = B;
    c.need_dinp = need_dinp;
    size_t nx = (size_t)B * C * H * H, ny = (size_t)B * OC * c.d.OH * c.d.OW, nw = (size_t)OC * C * K * K;
    c.x = alloc_rand(nx), c.w = alloc_rand(nw), c.b = NULL, c.y = alloc_rand(ny);
    c.dx = alloc_rand(nx), c.dw = alloc_rand(nw), c.db = NULL;
    c.s = alloc_rand(conv2d_scratch_size(&c.d, B));
    double f = conv2d_flops(&c.d, B) * (need_dinp ? 3 : 2);
    double sec, frac[MAX_ROUNDS], ceil = rounds(run_conv, &c, f, &sec, frac);
    report(name, sec, f, frac, ceil);
    printf("  [%s]\n", conv2d_kernel_name(&c.d, B));
    free(c.x), free(c.w), free(c.y), free(c.dx), free(c.dw), free(c.s);
}

// --- attention --------------------------------------------------------------
typedef struct att_ctx {
    int B, T, NH, HS;
    float *q, *k, *v, *y, *att, *dq, *dk, *dv, *s;
} att_ctx;
static void run_att(void *p)
{
    att_ctx *a = p;
    attention_forward(a->y, a->att, a->q, a->k, a->v, a->B, a->T, a->NH, a->HS);
    attention_backward(a->dq, a->dk, a->dv, a->s, a->y, a->q, a->k, a->v, a->att, a->B, a->T, a->NH, a->HS, 0);
}
static void bench_att(const char *name, int B, int T, int NH, int HS)
{
    if (!selected(name)) return;
    size_t n = (size_t)B * T * NH * HS, na = (size_t)B * NH * T * T;
    att_ctx a = {B,           T,           NH,          HS,          alloc_rand(n), alloc_rand(n),
                 alloc_rand(n), alloc_rand(n), alloc_rand(na), alloc_rand(n), alloc_rand(n), alloc_rand(n),
                 alloc_rand(attention_scratch_size(B, T, NH, HS))};
    double f = 3 * attention_flops(B, T, NH, HS);
    double sec, frac[MAX_ROUNDS], ceil = rounds(run_att, &a, f, &sec, frac);
    report(name, sec, f, frac, ceil);
    putchar('\n');
    free(a.q), free(a.k), free(a.v), free(a.y), free(a.att), free(a.dq), free(a.dk), free(a.dv), free(a.s);
}

// --- dense token layers (the ViT's projections and MLP) -----------------------
typedef struct dense_ctx {
    int N, C, OC;
    float *x, *w, *b, *y, *dx, *dw, *db;
} dense_ctx;
static void run_dense(void *p)
{
    dense_ctx *d = p;
    dense_forward(d->y, d->x, d->w, d->b, d->N, d->C, d->OC);
    dense_backward(d->dx, d->dw, d->db, d->y, d->x, d->w, d->N, d->C, d->OC, 0);
}
static void bench_dense(const char *name, int N, int C, int OC)
{
    if (!selected(name)) return;
    dense_ctx d = {N, C, OC, alloc_rand((size_t)N * C), alloc_rand((size_t)OC * C), alloc_rand(OC),
                   alloc_rand((size_t)N * OC), alloc_rand((size_t)N * C), alloc_rand((size_t)OC * C), alloc_rand(OC)};
    double f = 3 * 2.0 * N * C * OC;
    double sec, frac[MAX_ROUNDS], ceil = rounds(run_dense, &d, f, &sec, frac);
    report(name, sec, f, frac, ceil);
    putchar('\n');
    /* the weight gradient alone, the BLAS path against the hand-written
     * kernels' level, alternating in this process (best of 8 x 50 calls) */
    double best[2] = {1e30, 1e30};
    for (int rep = 0; rep < 8; rep++)
        for (int k = 0; k < 2; k++) {
            nn_simd_force(k ? -1 : NN_SIMD_BLAS);
            double t0 = now();
            for (int it = 0; it < 50; it++) dense_backward(NULL, d.dw, NULL, d.y, d.x, d.w, N, C, OC, 0);
            const double t = (now() - t0) / 50;
            if (t < best[k]) best[k] = t;
        }
    nn_simd_force(-1);
    printf("  weight gradient alone: sgemm %.1f us, default kernels %.1f us (%.2fx)\n", best[0] * 1e6,
           best[1] * 1e6, best[0] / best[1]);
    free(d.x), free(d.w), free(d.b), free(d.y), free(d.dx), free(d.dw), free(d.db);
}

// --- patch embedding, norms (memory-bound: report ms) -------------------------
typedef struct pe_ctx {
    int B, C, H, P, D;
    float *x, *w, *b, *y, *dw, *db, *s;
} pe_ctx;
static void run_pe(void *p)
{
    pe_ctx *e = p;
    patch_embed_forward(e->y, e->x, e->w, e->b, e->s, e->B, e->C, e->H, e->H, e->P, e->D);
    patch_embed_backward(NULL, e->dw, e->db, e->y, e->x, e->w, e->s, e->B, e->C, e->H, e->H, e->P, e->D);
}

typedef struct norm_ctx {
    int B, C, HW;
    float *x, *y, *w, *b, *m, *r, *rm, *rv, *dx, *dw, *db;
} norm_ctx;
static void run_bn(void *p)
{
    norm_ctx *n = p;
    batchnorm2d_forward_train(n->y, n->m, n->r, n->rm, n->rv, n->x, n->w, n->b, n->B, n->C, n->HW, 1e-5f, 0.1f);
    batchnorm2d_backward(n->dx, n->dw, n->db, n->y, n->x, n->m, n->r, n->w, n->B, n->C, n->HW);
}
static void run_ln(void *p)
{
    norm_ctx *n = p; /* rows B*C of width HW */
    layernorm_forward(n->y, n->m, n->r, n->x, n->w, n->b, n->B * n->C, n->HW, 1e-5f);
    layernorm_backward(n->dx, n->dw, n->db, n->y, n->x, n->m, n->r, n->w, n->B * n->C, n->HW);
}
static void run_pool(void *p)
{
    norm_ctx *n = p; /* max pool 2x2 of [B*C, 28, 28]; m used as argmax storage */
    maxpool2d_forward(n->y, (int32_t *)n->m, n->x, n->B * n->C, 28, 28, 2, 2, 0);
    maxpool2d_backward(n->dx, n->y, (int32_t *)n->m, n->B * n->C, 28, 28, 2, 2, 0);
}

/* nn_parallel's own cost: 2 shares of next to nothing, back to back, and
 * each after a 128^3 sgemm (OpenBLAS's threads run in between, as between
 * the layers of a step) */
typedef struct par_ctx {
    volatile int hits[NN_MAX_THREADS];
    gemm_ctx g;
} par_ctx;
static void par_nop(void *ctx, int t, int nt)
{
    (void)nt;
    ((par_ctx *)ctx)->hits[t]++;
}
static void run_par(void *p) { nn_parallel(par_nop, p, 2); }
static void run_par_gemm(void *p)
{
    run_gemm(&((par_ctx *)p)->g);
    nn_parallel(par_nop, p, 2);
}

static void bench_memory_bound(void)
{
    if (selected("nn_parallel")) {
        par_ctx *c = calloc(1, sizeof *c);
        c->g = gemm_make(128, 128, 128);
        double best = 1e9, gap = 1e9;
        for (int r = 0; r < g_rounds; r++) {
            const double a = timeit_for(run_par, c, g_secs), b = timeit_for(run_par_gemm, c, g_secs),
                         g = timeit_for(run_gemm, &c->g, g_secs);
            best = a < best ? a : best;
            gap = b - g < gap ? b - g : gap;
        }
        printf("nn_parallel, 2 shares of nothing         %7.2f us a call; after a 128^3 sgemm %+.2f us (best of %d)\n",
               best * 1e6, gap * 1e6, g_rounds);
        gemm_free(&c->g);
        free(c);
    }
    if (selected("patch embed 1x28x28 P7 D64")) {
        pe_ctx e = {128, 1, 28, 7, 64, 0, 0, 0, 0, 0, 0, 0};
        size_t nx = (size_t)128 * 28 * 28, nw = (size_t)64 * 49, ny = (size_t)128 * 16 * 64;
        e.x = alloc_rand(nx), e.w = alloc_rand(nw), e.b = alloc_rand(64), e.y = alloc_rand(ny);
        e.dw = alloc_rand(nw), e.db = alloc_rand(64), e.s = alloc_rand(patch_embed_scratch_size(128, 1, 28, 28, 7));
        double f = 2.0 * 128 * 16 * 64 * 49 * 2, sec, frac[MAX_ROUNDS], ceil = rounds(run_pe, &e, f, &sec, frac);
        report("patch embed 1x28x28 P7 D64 (no dinp)", sec, f, frac, ceil);
        putchar('\n');
        free(e.x), free(e.w), free(e.b), free(e.y), free(e.dw), free(e.db), free(e.s);
    }
    const int B = 128, C = 32, HW = 784;
    size_t n = (size_t)B * C * HW;
    norm_ctx k = {B, C, HW, alloc_rand(n), alloc_rand(n), alloc_rand(HW), alloc_rand(HW),
                  alloc_rand((size_t)B * C * HW / 4 + B * C), alloc_rand((size_t)B * C), alloc_rand(C),
                  alloc_rand(C), alloc_rand(n), alloc_rand(HW), alloc_rand(HW)};
    double sec, frac[MAX_ROUNDS];
    if (selected("batchnorm")) {
        rounds(run_bn, &k, 0, &sec, frac);
        report("batchnorm 128x32x28x28 fwd+bwd", sec, 0, frac, 0);
        /* the minimum is 5 tensor passes: read x, write y; read x and dy, write dx */
        printf("  %.1f GB/s counting 5 passes\n", 5.0 * n * 4 / sec * 1e-9);
    }
    if (selected("maxpool")) {
        rounds(run_pool, &k, 0, &sec, frac);
        report("maxpool 2x2 128x32x28x28 fwd+bwd", sec, 0, frac, 0);
        putchar('\n');
    }
    if (selected("layernorm")) {
        k.B = 128, k.C = 17, k.HW = 64; /* layer norm over 64 wide rows, 128*17 tokens */
        rounds(run_ln, &k, 0, &sec, frac);
        report("layernorm 2176x64 fwd+bwd", sec, 0, frac, 0);
        putchar('\n');
    }
    free(k.x), free(k.y), free(k.w), free(k.b), free(k.m), free(k.r), free(k.rm), free(k.rv), free(k.dx);
    free(k.dw), free(k.db);
}

// --- a model's training step, node by node ----------------------------------
/* oialr_model_forward + oialr_model_backward of lib/model/graph.c with a
 * clock around every node; acc[i] += the node's forward + backward seconds
 * (its share of the gradient zeroing included). */
static void model_step(oialr_model *m, const float *x, const uint8_t *y, int B, double *acc)
{
    double t0 = now();
    m->x_in = x;
    m->B = B;
    m->last_train = 1;
    for (int i = 1; i < m->nnodes; i++) {
        oialr_ops[m->nodes[i].op]->forward(m, &m->nodes[i], B, 1);
        double t1 = now();
        acc[i] += t1 - t0;
        t0 = t1;
    }
    memcpy(m->targets, y, (size_t)B);
    m->have_targets = 1;
    softmax_xent_forward(m->probs, NULL, oialr_model_logits(m), m->targets, B, m->nclass, m->smoothing);
    for (int i = 0; i < m->params.count; i++) {
        const oialr_param_info *pi = &m->params.info[i];
        memset(m->params.grad + pi->offset, 0, pi->size * sizeof(float));
    }
    node *last = &m->nodes[m->nnodes - 1];
    memset(node_dout(m, last), 0, (size_t)B * last->size * sizeof(float));
    softmax_xent_backward(node_dout(m, last), m->probs, m->targets, B, m->nclass, m->smoothing);
    double t1 = now();
    acc[0] += t1 - t0;
    t0 = t1;
    for (int i = m->nnodes - 1; i >= 1; i--) {
        node *n = &m->nodes[i];
        int ins[3] = {n->in0, n->in1, n->in2};
        for (int k = 0; k < 3; k++) {
            node *src = ins[k] > 0 ? &m->nodes[ins[k]] : NULL;
            if (src && src->last_consumer == i && !src->grad_set)
                memset(node_dout(m, src), 0, (size_t)B * src->size * sizeof(float));
        }
        oialr_ops[n->op]->backward(m, n, B);
        t1 = now();
        acc[i] += t1 - t0;
        t0 = t1;
    }
}

static void bench_model(const char *spec)
{
    char name[64];
    snprintf(name, sizeof name, "model %s", spec);
    if (!selected(name)) return;
    const int B = 128;
    oialr_model *m = NULL;
    if (oialr_model_create(&m, spec, 1, 28, 28, 10, B, 0) != 0) {
        fprintf(stderr, "bench_kernels: cannot build %s\n", spec);
        return;
    }
    float *x = alloc_rand((size_t)B * 28 * 28);
    uint8_t y[128];
    for (int b = 0; b < B; b++) y[b] = (uint8_t)(rand() % 10);
    double *acc = calloc((size_t)m->nnodes, sizeof(double));
    double step[MAX_ROUNDS], frac[MAX_ROUNDS];
    const double flops = 3.0 * m->flops * B;
    for (int w = 0; w < 3; w++) model_step(m, x, y, B, acc); /* warm-up */
    memset(acc, 0, sizeof(double) * (size_t)m->nnodes);
    int nsteps = 0;
    for (int r = 0; r < g_rounds; r++) {
        double c = gemm_rate(&g_ceil, g_secs / 3), t0 = now(), t;
        int n = 0;
        do {
            model_step(m, x, y, B, acc);
            n++;
            t = now() - t0;
        } while (t < 3 * g_secs);
        nsteps += n;
        step[r] = t / n;
        frac[r] = flops / step[r] * 1e-9 / c;
    }
    double sec = median(step, g_rounds);
    printf("-- %s, batch %d: forward + backward of one step (no optimizer), %.2f MFLOP/sample (3F counted) --\n",
           spec, B, 3.0 * m->flops / 1e6);
    printf("%-40s %8.3f ms %7.1f GFLOP/s %4.0f%% of sgemm (rounds %3.0f-%3.0f%%)\n", "step", sec * 1e3,
           flops / sec * 1e-9, 100 * median(frac, g_rounds), 100 * vmin(frac, g_rounds), 100 * vmax(frac, g_rounds));
    double total = 0.0;
    for (int i = 0; i < m->nnodes; i++) total += acc[i];
    /* per kind, then the conv and attention nodes one by one */
    double kind[OP_COUNT] = {0};
    for (int i = 1; i < m->nnodes; i++) kind[m->nodes[i].op] += acc[i];
    printf("  share of the step by layer kind:");
    for (int k = 1; k < OP_COUNT; k++)
        if (kind[k] > 0) printf(" %s %.1f%%", oialr_ops[k]->name, 100 * kind[k] / total);
    printf(" (loss+zeroing of grads %.1f%%)\n", 100 * acc[0] / total);
    for (int i = 1; i < m->nnodes; i++) {
        const node *n = &m->nodes[i];
        const double s = acc[i] / nsteps;
        if (n->op != OP_CONV && n->op != OP_ATTN) { /* the memory-bound nodes of 1% or more, no rate */
            if (acc[i] >= 0.01 * total)
                printf("  %-20s %-9s %8.3f ms %5.1f%% of the step\n", n->name, oialr_ops[n->op]->name, s * 1e3,
                       100 * acc[i] / total);
            continue;
        }
        double f = 0.0;
        if (n->op == OP_CONV) {
            const struct conv_args *a = &n->arg.conv;
            conv2d_dims d = conv2d_make(a->c, a->h, a->w, a->oc, a->k, a->k, a->stride, a->pad);
            f = conv2d_flops(&d, B) * (n->in0 == 0 ? 2 : 3);
        } else {
            f = 3 * attention_flops(B, n->arg.attn.t, n->arg.attn.nh, n->arg.attn.hs);
        }
        printf("  %-20s %-9s %8.3f ms %5.1f%% of the step %7.1f GFLOP/s\n", n->name, oialr_ops[n->op]->name,
               s * 1e3, 100 * acc[i] / total, f / s * 1e-9);
    }
    free(acc);
    free(x);
    oialr_model_free(m);
}

int main(int argc, char **argv)
{
    int models = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) g_rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) g_only = argv[++i];
        else if (strcmp(argv[i], "--no-models") == 0) models = 0;
        else if (argv[i][0] != '-') g_secs = atof(argv[i]);
        else {
            fprintf(stderr, "usage: bench_kernels [SECONDS] [--rounds R] [--only TEXT] [--no-models]\n");
            return 2;
        }
    }
    if (g_secs <= 0) g_secs = 0.3;
    if (g_rounds < 1) g_rounds = 1;
    if (g_rounds > MAX_ROUNDS) g_rounds = MAX_ROUNDS;
    printf("bench_kernels: OpenBLAS threads %d, %.2f s per measurement, %d rounds (ceiling, kernel) per case, "
           "batch 128\n",
           openblas_get_num_threads(), g_secs, g_rounds);
    g_ceil = gemm_make(1024, 1024, 1024);
    bench_gemm_case("sgemm 1024^3 (the ceiling)", 1024, 1024, 1024);
    bench_gemm_case("sgemm 32 x 25088 x 288 (conv-like)", 32, 25088, 288);
    bench_gemm_case("sgemm 2176 x 64 x 64 (ViT dense)", 2176, 64, 64);
    bench_gemm_case("sgemm 17 x 17 x 16 (one head)", 17, 17, 16);

    printf("-- conv2d forward + backward (fwd F, bwd 2F), the default CNN (cnn:16,32,64) --\n");
    bench_conv("cnn stem 1->16 28x28 k3 (no dinp)", 128, 1, 28, 16, 3, 1, 1, 0);
    bench_conv("cnn s1 16->16 28x28 k3", 128, 16, 28, 16, 3, 1, 1, 1);
    bench_conv("cnn s2.1 16->32 28x28 k3 s2", 128, 16, 28, 32, 3, 2, 1, 1);
    bench_conv("cnn s2.2 32->32 14x14 k3", 128, 32, 14, 32, 3, 1, 1, 1);
    bench_conv("cnn s2.down 16->32 28x28 k1 s2", 128, 16, 28, 32, 1, 2, 0, 1);
    bench_conv("cnn s3.1 32->64 14x14 k3 s2", 128, 32, 14, 64, 3, 2, 1, 1);
    bench_conv("cnn s3.2 64->64 7x7 k3", 128, 64, 7, 64, 3, 1, 1, 1);
    bench_conv("cnn s3.down 32->64 14x14 k1 s2", 128, 32, 14, 64, 1, 2, 0, 1);
    printf("-- conv2d, wider shapes --\n");
    bench_conv("conv 1->32 28x28 k3 p1 (no dinp)", 128, 1, 28, 32, 3, 1, 1, 0);
    bench_conv("conv 32->32 28x28 k3 p1", 128, 32, 28, 32, 3, 1, 1, 1);
    bench_conv("conv 64->64 14x14 k3 p1", 128, 64, 14, 64, 3, 1, 1, 1);
    bench_conv("conv 128->128 7x7 k3 p1", 128, 128, 7, 128, 3, 1, 1, 1);
    bench_conv("conv 32->64 28x28 k1 s2 (shortcut)", 128, 32, 28, 64, 1, 2, 0, 1);

    printf("-- attention core, ViT patch 7 dim 64 heads 4 tokens 17 --\n");
    bench_att("attention B128 T17 NH4 HS16", 128, 17, 4, 16);
    bench_att("attention B128 T65 NH4 HS16", 128, 65, 4, 16);
    printf("-- dense token layers, fwd + bwd (3F), ViT rows B*T = 2176 --\n");
    bench_dense("dense 2176 rows 64->64", 2176, 64, 64);
    bench_dense("dense 2176 rows 64->128", 2176, 64, 128);
    bench_dense("dense 2176 rows 128->64", 2176, 128, 64);
    printf("-- memory-bound kernels --\n");
    bench_memory_bound();
    if (models) {
        bench_model("cnn");
        bench_model("vit");
    }
    gemm_free(&g_ceil);
    return 0;
}
