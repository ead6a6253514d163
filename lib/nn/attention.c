/*
 * nn/attention.c — softmax(q kᵀ/sqrt(HS)) v per head, forward and backward
 * (see nn/attention.h).
 *
 * Three kernels, chosen by the head's size (attention_kernel_name):
 *   - lanes (T <= 32 tokens, HS = 16 or 32: the ViT's 17 x 16 heads): 16 (or
 *     8) (batch, head) problems at once, one per lane of every vector
 *     (nn/attention_lanes.h says how and why); groups split across threads.
 *   - fused (T <= 32, HS = 48 or 64): one pass per (batch, head) over
 *     16-float vectors. kᵀ (and vᵀ
 *     in the backward) is packed on the stack so that a row of scores is an
 *     axpy along contiguous rows, the exponentials are a polynomial that
 *     vectorizes (exp_neg below), and dk, dv collect in a local T x HS block
 *     added to the caller's once. At 17 x 17 x 16 five separate
 *     sgemm calls per head cost more in call and packing overhead than in
 *     arithmetic (8-15% of the sgemm rate).
 *   - sgemm: one strided cblas_sgemm per (batch, head) for each product,
 *     reading the heads in place (leading dimension C), for longer sequences.
 * Backward, with P = att and G = dout:
 *     dP = G vᵀ;  dS = P ∘ (dP - rowsum(P ∘ dP)) / sqrt(HS)
 *     dq += dS k;  dk += dSᵀ q;  dv += Pᵀ G
 */
#include "nn/attention.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/hot.h"
#include "nn/par.h"
#include "nn/vec16.h"

size_t attention_scratch_size(int B, int T, int NH, int HS)
{
    (void)HS;
    return (size_t)B * NH * T * T;
}

double attention_flops(int B, int T, int NH, int HS)
{
    return 4.0 * B * NH * (double)T * T * HS;
}

static void softmax_rows(float *a, int T)
{
    for (int i = 0; i < T; i++) {
        float *r = a + (size_t)i * T;
        float m = r[0];
        for (int j = 1; j < T; j++) m = r[j] > m ? r[j] : m;
        float s = 0.0f;
        for (int j = 0; j < T; j++) {
            r[j] = expf(r[j] - m);
            s += r[j];
        }
        float inv = 1.0f / s;
        for (int j = 0; j < T; j++) r[j] *= inv;
    }
}

// ---------------------------------------------------------------------------
// fused kernel: heads of T <= 32 tokens and HS = 16, 32, 48 or 64. A row of
// scores is two 16-float vectors (padded with zeros past T), a row of q, k,
// v, out is HS/16 of them; GCC's vector extension keeps them in registers
// (plain loops over 17 and 16 left every axpy a store-to-load chain).

#define ATT_TP 32     /* score rows padded to 32 */
#define ATT_MAXHS 64

/* with a kernel of the CPU's width (nn_simd): on AVX2 GCC's split 16-float
 * code ran at 2% of sgemm, against 6-11% for sgemm per head */
static int use_fused(int T, int HS)
{
    return T <= ATT_TP && HS % 16 == 0 && HS <= ATT_MAXHS && nn_simd() != NN_SIMD_BLAS;
}

/* the lane kernel: heads of up to 32 tokens and HS = 16 or 32 (its arrays,
 * T x HS vectors, live on the stack), at the level in force if the CPU has
 * it (a forced 16-float level on an AVX2 CPU takes the fused kernel's
 * portable clone) */
static int use_lanes(int T, int HS)
{
#if defined(OIALR_HOT_CLONES)
    const int l = nn_simd();
    return T <= 32 && (HS == 16 || HS == 32) && l != NN_SIMD_BLAS && l <= nn_simd_cpu();
#else
    (void)T, (void)HS;
    return 0;
#endif
}
#define LANES 16 /* the most lanes of a group */
static int lane_width(void) { return nn_simd() == NN_SIMD_V8 ? 8 : 16; }

const char *attention_kernel_name(int T, int HS)
{
    if (use_lanes(T, HS))
        return nn_simd() == NN_SIMD_V8 ? "lanes across heads (8-float)" : "lanes across heads (16-float)";
    if (!use_fused(T, HS)) return "sgemm per head";
    return nn_simd() == NN_SIMD_V8 ? "fused per head (8-float)" : "fused per head (16-float)";
}

/* exp(x) for x <= 0 (a softmax row minus its max): 2^n * p(r), x = n ln2 + r,
 * |r| <= ln2/2, p of degree 6 (relative error < 2e-7, as expf within a few
 * ulp); below -87 the result is clamped to exp(-87) ~ 1.6e-38, which no sum
 * containing exp(0) = 1 can tell from 0. A NaN stays NaN. Written without
 * calls or branches so that a loop over it vectorizes. */
static inline float exp_neg(float x)
{
    x = x < -87.0f ? -87.0f : x;
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504f + magic;
    float n = t - magic;
    float r = x - n * 0.693145752f; /* ln2 in two parts */
    r = r - n * 1.42860677e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits); /* t = 1.5 * 2^23 + n: its low bits hold n */
    bits = (bits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* kt[e][j] = k[j][e] for j < T, 0 up to ATT_TP */
static inline void pack_t(float *restrict kt, const float *restrict k, int T, int HS, int C)
{
    memset(kt, 0, sizeof(float) * (size_t)HS * ATT_TP);
    for (int j = 0; j < T; j++) {
        const float *kj = k + (size_t)j * C;
        for (int e = 0; e < HS; e++) kt[e * ATT_TP + j] = kj[e];
    }
}

/* the head kernels (nn/attention_head.h): 16-float vectors for AVX-512 (in
 * the OIALR_HOT clones), 8-float ones for AVX2 */
#define HEAD_VEC v16
#define HEAD_VECU v16u
#define HEAD_VW 16
#define HEAD_ATTR OIALR_HOT
#define HEAD_NAME(x) x##_v16
#include "nn/attention_head.h"

#if defined(OIALR_HOT_CLONES)
#define HEAD_VEC v8
#define HEAD_VECU v8u
#define HEAD_VW 8
#define HEAD_ATTR __attribute__((target("arch=x86-64-v3")))
#define HEAD_NAME(x) x##_v8
#include "nn/attention_head.h"
#endif

/* the lane kernels (nn/attention_lanes.h): each built for its own CPU only,
 * not as the portable clones of OIALR_HOT (the 16-float kernel emulated on
 * SSE2 and AVX2 took minutes to compile under the sanitizers), so the lanes
 * run where nn_simd_cpu() has the width (use_lanes) */
#if defined(OIALR_HOT_CLONES)
typedef int v16i __attribute__((vector_size(64)));
typedef int v8i __attribute__((vector_size(32)));
#define HEAD_VEC v16
#define HEAD_VECU v16u
#define HEAD_VI v16i
#define HEAD_VW 16
#define HEAD_ATTR OIALR_AVX512
#define HEAD_NAME(x) x##_v16
#include "nn/attention_lanes.h"

#define HEAD_VEC v8
#define HEAD_VECU v8u
#define HEAD_VI v8i
#define HEAD_VW 8
#define HEAD_ATTR __attribute__((target("arch=x86-64-v3")))
#define HEAD_NAME(x) x##_v8
#include "nn/attention_lanes.h"
#endif

/* the fused kernel of 8 floats (use8: nn_simd() is NN_SIMD_V8, asked once per
 * range by the caller) or 16 */
static void head_forward(int use8, float *o, float *a, const float *q, const float *k, const float *v, int T, int HS,
                         int C, float scale)
{
#if defined(OIALR_HOT_CLONES)
    if (use8) {
        head_forward_v8(o, a, q, k, v, T, HS, C, scale);
        return;
    }
#else
    (void)use8;
#endif
    head_forward_v16(o, a, q, k, v, T, HS, C, scale);
}
static void head_backward(int use8, float *dq, float *dk, float *dv, const float *g, const float *q, const float *k,
                          const float *v, const float *a, int T, int HS, int C, float scale)
{
#if defined(OIALR_HOT_CLONES)
    if (use8) {
        head_backward_v8(dq, dk, dv, g, q, k, v, a, T, HS, C, scale);
        return;
    }
#else
    (void)use8;
#endif
    head_backward_v16(dq, dk, dv, g, q, k, v, a, T, HS, C, scale);
}

// ---------------------------------------------------------------------------
// threads and the sgemm kernel

/* The (batch, head) problems are independent: batches are split across
 * nn_threads() (nn/par.h), each running its heads with single-threaded sgemm
 * (OpenBLAS takes its small-matrix path at T x T x HS = 17 x 17 x 16). */
#define ATT_PAR_MIN (1 << 16) /* multiply-adds of one forward */

typedef struct att_job {
    float *out, *att, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *catt;
    int B, T, NH, HS;
    int bwd; /* the lane kernel: backward */
    int set; /* ATT_SET_*: those gradients = instead of += */
} att_job;

static int att_threads(int B, int T, int NH, int HS)
{
    if ((double)B * NH * T * T * HS < ATT_PAR_MIN) return 1;
    int nt = nn_threads();
    return nt < B ? nt : B;
}

static void forward_range(const att_job *j, int b0, int b1)
{
    const int T = j->T, NH = j->NH, HS = j->HS, C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int fused = use_fused(T, HS), use8 = fused && nn_simd() == NN_SIMD_V8;
    for (int b = b0; b < b1; b++)
        for (int h = 0; h < NH; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * HS;
            float *a = j->att + ((size_t)b * NH + h) * T * T;
            if (fused) {
                head_forward(use8, j->out + off, a, j->q + off, j->k + off, j->v + off, T, HS, C, scale);
                continue;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, j->q + off, C, j->k + off, C,
                        0.0f, a, T);
            softmax_rows(a, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, a, T, j->v + off, C, 0.0f,
                        j->out + off, C);
        }
}

static void forward_share(void *ctx, int t, int nt)
{
    const att_job *j = ctx;
    int b0, b1;
    nn_share(j->B, t, nt, &b0, &b1);
    forward_range(j, b0, b1);
}

/* group g of the lane kernel, W lanes: problems p = b*NH + h from p0 = g*W,
 * nl of them; the lanes past nl repeat the last, for reads only */
static int lane_group(const att_job *j, int W, int g, size_t *off, size_t *aoff)
{
    const int P = j->B * j->NH, p0 = g * W, nl = P - p0 < W ? P - p0 : W;
    const int C = j->NH * j->HS;
    for (int l = 0; l < W; l++) {
        const int p = p0 + (l < nl ? l : nl - 1), b = p / j->NH, h = p % j->NH;
        off[l] = (size_t)b * j->T * C + (size_t)h * j->HS;
        aoff[l] = (size_t)p * j->T * j->T;
    }
    return nl;
}

static int lane_groups(int B, int NH) { return (B * NH + lane_width() - 1) / lane_width(); }

/* the groups of share t, forward or backward (j->bwd) */
static void lanes_share(void *ctx, int t, int nt)
{
    const att_job *j = ctx;
    const float scale = 1.0f / sqrtf((float)j->HS);
    const int W = lane_width(), T = j->T, HS = j->HS, C = j->NH * j->HS;
    int g0, g1;
    nn_share(lane_groups(j->B, j->NH), t, nt, &g0, &g1);
    for (int g = g0; g < g1; g++) {
        size_t off[LANES], aoff[LANES];
        const int nl = lane_group(j, W, g, off, aoff);
#if defined(OIALR_HOT_CLONES)
        if (W == 8 && j->bwd)
            lanes_backward_v8(j->dq, j->dk, j->dv, j->dout, j->q, j->k, j->v, j->catt, off, aoff, nl, T, HS, C,
                              scale, j->set);
        else if (W == 8)
            lanes_forward_v8(j->out, j->att, j->q, j->k, j->v, off, aoff, nl, T, HS, C, scale);
        else if (j->bwd)
            lanes_backward_v16(j->dq, j->dk, j->dv, j->dout, j->q, j->k, j->v, j->catt, off, aoff, nl, T, HS, C,
                               scale, j->set);
        else
            lanes_forward_v16(j->out, j->att, j->q, j->k, j->v, off, aoff, nl, T, HS, C, scale);
#else
        (void)nl, (void)scale, (void)T, (void)HS, (void)C;
#endif
    }
}

/* threads for the lane kernel: as att_threads, over groups */
static int lane_threads(int B, int T, int NH, int HS)
{
    const int nt = att_threads(B, T, NH, HS), ng = lane_groups(B, NH);
    return nt < ng ? nt : ng;
}

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int T,
                       int NH, int HS)
{
    att_job j = {.out = out, .att = att, .q = q, .k = k, .v = v, .B = B, .T = T, .NH = NH, .HS = HS};
    if (use_lanes(T, HS))
        nn_parallel(lanes_share, &j, lane_threads(B, T, NH, HS));
    else
        nn_parallel(forward_share, &j, att_threads(B, T, NH, HS));
}

/* rows t < T of HS floats, C apart: a head's slice of a [T,C] gradient */
static void zero_head(float *d, int T, int HS, int C)
{
    for (int t = 0; t < T; t++) memset(d + (size_t)t * C, 0, sizeof(float) * (size_t)HS);
}

static void backward_range(const att_job *j, int b0, int b1)
{
    const int T = j->T, NH = j->NH, HS = j->HS, C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int fused = use_fused(T, HS), use8 = fused && nn_simd() == NN_SIMD_V8;
    /* sgemm: beta 0 writes; the fused kernel adds, into its head's rows zeroed just before */
    const float bq = j->set & ATT_SET_Q ? 0.0f : 1.0f, bk = j->set & ATT_SET_K ? 0.0f : 1.0f,
                bv = j->set & ATT_SET_V ? 0.0f : 1.0f;
    for (int b = b0; b < b1; b++)
        for (int h = 0; h < NH; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * HS;
            const float *a = j->catt + ((size_t)b * NH + h) * T * T;
            if (fused) {
                if (j->dq && (j->set & ATT_SET_Q)) zero_head(j->dq + off, T, HS, C);
                if (j->dk && (j->set & ATT_SET_K)) zero_head(j->dk + off, T, HS, C);
                if (j->dv && (j->set & ATT_SET_V)) zero_head(j->dv + off, T, HS, C);
                head_backward(use8, j->dq ? j->dq + off : NULL, j->dk ? j->dk + off : NULL, j->dv ? j->dv + off : NULL,
                              j->dout + off, j->q + off, j->k + off, j->v + off, a, T, HS, C, scale);
                continue;
            }
            float *ds = j->scratch + ((size_t)b * NH + h) * T * T;
            if (j->dv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, a, T, j->dout + off, C, bv,
                            j->dv + off, C);
            if (!j->dq && !j->dk) continue;
            /* dP = G vᵀ */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, j->dout + off, C, j->v + off, C,
                        0.0f, ds, T);
            for (int i = 0; i < T; i++) {
                const float *p = a + (size_t)i * T;
                float *r = ds + (size_t)i * T;
                float dot = 0.0f;
                for (int jj = 0; jj < T; jj++) dot += p[jj] * r[jj];
                for (int jj = 0; jj < T; jj++) r[jj] = p[jj] * (r[jj] - dot) * scale;
            }
            if (j->dq)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, ds, T, j->k + off, C, bq,
                            j->dq + off, C);
            if (j->dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, ds, T, j->q + off, C, bk,
                            j->dk + off, C);
        }
}

static void backward_share(void *ctx, int t, int nt)
{
    const att_job *j = ctx;
    int b0, b1;
    nn_share(j->B, t, nt, &b0, &b1);
    backward_range(j, b0, b1);
}

void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q,
                        const float *k, const float *v, const float *att, int B, int T, int NH, int HS, int set)
{
    att_job j = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .dout = dout, .q = q, .k = k, .v = v,
                 .catt = att, .B = B, .T = T, .NH = NH, .HS = HS, .set = set};
    j.bwd = 1;
    if (use_lanes(T, HS))
        nn_parallel(lanes_share, &j, lane_threads(B, T, NH, HS));
    else
        nn_parallel(backward_share, &j, att_threads(B, T, NH, HS));
}

// ---------------------------------------------------------------------------
// references

void attention_forward_naive(float *out, float *att, const float *q, const float *k, const float *v, int B,
                             int T, int NH, int HS)
{
    const int C = NH * HS;
    const double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            float *a = att + ((size_t)b * NH + h) * T * T;
            for (int i = 0; i < T; i++) {
                double m = -INFINITY, s = 0.0;
                for (int j = 0; j < T; j++) {
                    double dot = 0.0;
                    for (int e = 0; e < HS; e++)
                        dot += (double)q[((size_t)b * T + i) * C + h * HS + e] * k[((size_t)b * T + j) * C + h * HS + e];
                    a[i * T + j] = (float)(dot * scale);
                    if (dot * scale > m) m = dot * scale;
                }
                for (int j = 0; j < T; j++) s += exp((double)a[i * T + j] - m);
                for (int j = 0; j < T; j++) a[i * T + j] = (float)(exp((double)a[i * T + j] - m) / s);
                for (int e = 0; e < HS; e++) {
                    double acc = 0.0;
                    for (int j = 0; j < T; j++) acc += (double)a[i * T + j] * v[((size_t)b * T + j) * C + h * HS + e];
                    out[((size_t)b * T + i) * C + h * HS + e] = (float)acc;
                }
            }
        }
}

void attention_backward_naive(float *dq, float *dk, float *dv, const float *dout, const float *q,
                              const float *k, const float *v, const float *att, int B, int T, int NH, int HS)
{
    const int C = NH * HS;
    const double scale = 1.0 / sqrt((double)HS);
#define IX(b, t, h, e) (((size_t)(b) * T + (t)) * C + (size_t)(h) * HS + (e))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *a = att + ((size_t)b * NH + h) * T * T;
            for (int i = 0; i < T; i++) {
                /* dP[i][j] = sum_e G[i][e] v[j][e]; dS = P (dP - sum_j P dP) */
                double dot = 0.0;
                for (int j = 0; j < T; j++) {
                    double dp = 0.0;
                    for (int e = 0; e < HS; e++) dp += (double)dout[IX(b, i, h, e)] * v[IX(b, j, h, e)];
                    dot += a[i * T + j] * dp;
                }
                for (int j = 0; j < T; j++) {
                    double dp = 0.0;
                    for (int e = 0; e < HS; e++) dp += (double)dout[IX(b, i, h, e)] * v[IX(b, j, h, e)];
                    double dsij = a[i * T + j] * (dp - dot) * scale;
                    for (int e = 0; e < HS; e++) {
                        if (dq) dq[IX(b, i, h, e)] += (float)(dsij * k[IX(b, j, h, e)]);
                        if (dk) dk[IX(b, j, h, e)] += (float)(dsij * q[IX(b, i, h, e)]);
                        if (dv) dv[IX(b, j, h, e)] += (float)(a[i * T + j] * (double)dout[IX(b, i, h, e)]);
                    }
                }
            }
        }
#undef IX
}
