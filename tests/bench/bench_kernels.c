/*
 * tests/bench/bench_kernels.c — GFLOP/s of the CNN and ViT layer kernels
 * (forward + backward, realistic shapes, batch 128) next to the OpenBLAS
 * sgemm ceiling measured in the same run.
 *
 *     build/bench/bench_kernels [seconds-per-case]     (default 0.5)
 *
 * FLOPs counted are the multiply-adds of the products only (2 per MAC):
 * forward F, backward 2F (input and weight gradients), so a layer's
 * fwd+bwd is 3F. Threads: OpenBLAS's default (OPENBLAS_NUM_THREADS).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/embed.h"
#include "nn/norm.h"
#include "nn/pool.h"

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

static double g_secs = 0.5;

/* run fn(ctx) until g_secs have passed (after one warm-up), return s/call */
static double timeit(void (*fn)(void *), void *ctx)
{
    fn(ctx);
    int n = 0;
    double t0 = now(), t;
    do {
        fn(ctx);
        n++;
        t = now() - t0;
    } while (t < g_secs);
    return t / n;
}

// --- sgemm ceiling ----------------------------------------------------------
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
static double bench_gemm(int M, int N, int K)
{
    gemm_ctx g = {M, N, K, alloc_rand((size_t)M * K), alloc_rand((size_t)K * N), alloc_rand((size_t)M * N)};
    double s = timeit(run_gemm, &g);
    free(g.a), free(g.b), free(g.c);
    return 2.0 * M * N * K / s * 1e-9;
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
    conv2d_backward(c->need_dinp ? c->dx : NULL, c->dw, c->db, c->y, c->x, c->w, c->s, &c->d, c->B);
}
static void bench_conv(const char *name, int B, int C, int H, int OC, int K, int S, int pad, int need_dinp,
                       double ceil)
{
    conv_ctx c;
    c.d = conv2d_make(C, H, H, OC, K, K, S, pad);
    c.B = B;
    c.need_dinp = need_dinp;
    size_t nx = (size_t)B * C * H * H, ny = (size_t)B * OC * c.d.OH * c.d.OW, nw = (size_t)OC * C * K * K;
    c.x = alloc_rand(nx), c.w = alloc_rand(nw), c.b = alloc_rand(OC), c.y = alloc_rand(ny);
    c.dx = alloc_rand(nx), c.dw = alloc_rand(nw), c.db = alloc_rand(OC);
    c.s = alloc_rand(conv2d_scratch_size(&c.d, B));
    double s = timeit(run_conv, &c);
    double f = conv2d_flops(&c.d, B) * (need_dinp ? 3 : 2);
    printf("%-34s %8.2f ms %8.1f GFLOP/s %5.0f%% of sgemm  (chunk %d, scratch %.1f MiB)\n", name, s * 1e3,
           f / s * 1e-9, 100 * f / s * 1e-9 / ceil, conv2d_chunk(&c.d, B),
           conv2d_scratch_size(&c.d, B) * 4.0 / (1 << 20));
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.dx), free(c.dw), free(c.db), free(c.s);
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
    attention_backward(a->dq, a->dk, a->dv, a->s, a->y, a->q, a->k, a->v, a->att, a->B, a->T, a->NH, a->HS);
}
static void bench_att(const char *name, int B, int T, int NH, int HS, double ceil)
{
    size_t n = (size_t)B * T * NH * HS, na = (size_t)B * NH * T * T;
    att_ctx a = {B,           T,           NH,          HS,          alloc_rand(n), alloc_rand(n),
                 alloc_rand(n), alloc_rand(n), alloc_rand(na), alloc_rand(n), alloc_rand(n), alloc_rand(n),
                 alloc_rand(attention_scratch_size(B, T, NH, HS))};
    double s = timeit(run_att, &a);
    double f = 3 * attention_flops(B, T, NH, HS);
    printf("%-34s %8.2f ms %8.1f GFLOP/s %5.0f%% of sgemm\n", name, s * 1e3, f / s * 1e-9, 100 * f / s * 1e-9 / ceil);
    free(a.q), free(a.k), free(a.v), free(a.y), free(a.att), free(a.dq), free(a.dk), free(a.dv), free(a.s);
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

int main(int argc, char **argv)
{
    if (argc > 1) g_secs = atof(argv[1]);
    if (g_secs <= 0) g_secs = 0.5;
    printf("bench_kernels: OpenBLAS threads %d, %.2f s per case, batch 128\n", openblas_get_num_threads(), g_secs);
    double ceil = bench_gemm(1024, 1024, 1024);
    printf("%-34s %8s    %8.1f GFLOP/s  (the ceiling below)\n", "sgemm 1024^3", "", ceil);
    printf("%-34s %8s    %8.1f GFLOP/s\n", "sgemm 32 x 25088 x 288 (conv-like)", "", bench_gemm(32, 25088, 288));
    printf("%-34s %8s    %8.1f GFLOP/s\n", "sgemm 2176 x 64 x 64 (ViT dense)", "", bench_gemm(2176, 64, 64));
    printf("%-34s %8s    %8.1f GFLOP/s\n", "sgemm 17 x 17 x 16 (one head)", "", bench_gemm(17, 17, 16));

    printf("-- conv2d forward + backward (fwd F, bwd 2F) --\n");
    bench_conv("conv 1->32 28x28 k3 p1 (no dinp)", 128, 1, 28, 32, 3, 1, 1, 0, ceil);
    bench_conv("conv 32->32 28x28 k3 p1", 128, 32, 28, 32, 3, 1, 1, 1, ceil);
    bench_conv("conv 32->64 28x28 k3 s2 p1", 128, 32, 28, 64, 3, 2, 1, 1, ceil);
    bench_conv("conv 64->64 14x14 k3 p1", 128, 64, 14, 64, 3, 1, 1, 1, ceil);
    bench_conv("conv 64->128 14x14 k3 s2 p1", 128, 64, 14, 128, 3, 2, 1, 1, ceil);
    bench_conv("conv 128->128 7x7 k3 p1", 128, 128, 7, 128, 3, 1, 1, 1, ceil);
    bench_conv("conv 32->64 28x28 k1 s2 (shortcut)", 128, 32, 28, 64, 1, 2, 0, 1, ceil);

    printf("-- attention core, ViT patch 7 dim 64 heads 4 tokens 17 --\n");
    bench_att("attention B128 T17 NH4 HS16", 128, 17, 4, 16, ceil);
    bench_att("attention B128 T65 NH4 HS16", 128, 65, 4, 16, ceil);

    {
        pe_ctx e = {128, 1, 28, 7, 64, 0, 0, 0, 0, 0, 0, 0};
        size_t nx = (size_t)128 * 28 * 28, nw = (size_t)64 * 49, ny = (size_t)128 * 16 * 64;
        e.x = alloc_rand(nx), e.w = alloc_rand(nw), e.b = alloc_rand(64), e.y = alloc_rand(ny);
        e.dw = alloc_rand(nw), e.db = alloc_rand(64), e.s = alloc_rand(patch_embed_scratch_size(128, 1, 28, 28, 7));
        double s = timeit(run_pe, &e), f = 2.0 * 128 * 16 * 64 * 49 * 2;
        printf("%-34s %8.2f ms %8.1f GFLOP/s\n", "patch embed 1x28x28 P7 D64", s * 1e3, f / s * 1e-9);
        free(e.x), free(e.w), free(e.b), free(e.y), free(e.dw), free(e.db), free(e.s);
    }
    {
        const int B = 128, C = 32, HW = 784;
        size_t n = (size_t)B * C * HW;
        norm_ctx k = {B, C, HW, alloc_rand(n), alloc_rand(n), alloc_rand(HW), alloc_rand(HW),
                      alloc_rand((size_t)B * C * HW / 4 + B * C), alloc_rand((size_t)B * C), alloc_rand(C),
                      alloc_rand(C), alloc_rand(n), alloc_rand(HW), alloc_rand(HW)};
        double s = timeit(run_bn, &k);
        printf("%-34s %8.2f ms %8.1f GB/s (~5 passes)\n", "batchnorm 128x32x28x28 fwd+bwd", s * 1e3,
               5.0 * n * 4 / s * 1e-9);
        s = timeit(run_pool, &k);
        printf("%-34s %8.2f ms\n", "maxpool 2x2 128x32x28x28 fwd+bwd", s * 1e3);
        /* layer norm over 64 wide rows, 128*17 tokens */
        k.B = 128, k.C = 17, k.HW = 64;
        s = timeit(run_ln, &k);
        printf("%-34s %8.2f ms\n", "layernorm 2176x64 fwd+bwd", s * 1e3);
        free(k.x), free(k.y), free(k.w), free(k.b), free(k.m), free(k.r), free(k.rm), free(k.rv), free(k.dx);
        free(k.dw), free(k.db);
    }
    return 0;
}
