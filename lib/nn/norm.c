/*
 * nn/norm.c — batch norm 2d (train / eval) and layer norm (see nn/norm.h).
 *
 * Batch-norm statistics end in double: a channel of a 128 x 28 x 28 batch
 * sums 100k floats, where a float accumulator would lose ~3 digits (bn_acc:
 * float lanes flushed to double). The fast kernels walk groups of adjacent
 * channels, each sample's planes of a group contiguously (bn_group); the
 * naive references index element by element and do all arithmetic in
 * double.
 */
#include "nn/norm.h"

#include <math.h>

#include "base/hot.h"
#include "nn/par.h"
#include "nn/vec16.h"

// ---------------------------------------------------------------------------
// batch norm 2d

/* Channels are independent: each kernel runs on a range [c0, c1) and the
 * public function splits the channels across nn_threads() (nn/par.h) when the
 * tensor is big enough to pay for the fork. */
#define BN_PAR_MIN (1 << 15) /* floats */

typedef struct bn_job {
    float *out, *mean, *rstd, *running_mean, *running_var, *dinp, *dweight, *dbias;
    const float *inp, *weight, *bias, *dout, *cmean, *crstd, *rmean, *rvar;
    int B, C, HW;
    int relu, set; /* the ReLU fused (its mask recomputed in the backward); backward: dinp = instead of += */
    float eps, momentum;
} bn_job;

static int bn_threads(int B, int C, int HW)
{
    if ((size_t)B * C * HW < BN_PAR_MIN) return 1;
    int nt = nn_threads();
    return nt < C ? nt : C;
}

/* The sums over a channel's B planes (B*HW values) in 16 float lanes and
 * one float for the planes' tails, moved into double every BN_FLUSH values a
 * lane: a float accumulator of 100k values (a channel of a 128 x 28 x 28
 * batch) would lose ~3 digits, one of 256 about 2e-5 at worst. One
 * horizontal sum per flush, not per plane: at 7 x 7 (49 values: 3 vectors
 * and a tail) the per-plane sums were most of the norm's time, 1.9 ms a
 * layer of 128 x 64 x 7 x 7 against 2.3 ms for 16 x 28 x 28, 4 times the
 * data (bench_kernels, 2026-12-03). */
#define BN_FLUSH 256
typedef struct bn_acc {
    v16 a, b;    /* lanes */
    float ta, tb; /* the tails */
    int n;        /* values a lane since the last flush */
    double sa, sb;
} bn_acc;

static inline void acc_flush(bn_acc *q)
{
    q->sa += (double)hsum16(&q->a) + q->ta;
    q->sb += (double)hsum16(&q->b) + q->tb;
    q->a = q->b = (v16){0};
    q->ta = q->tb = 0.0f;
    q->n = 0;
}
/* after a plane of HW values */
static inline void acc_plane(bn_acc *q, int HW)
{
    q->n += (HW + 15) / 16;
    if (q->n >= BN_FLUSH) acc_flush(q);
}

/* a += x - k, b += (x - k)^2 over one plane */
static inline void plane_sums(bn_acc *q, const float *restrict x, int n, float k)
{
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const v16 d = ld16(x + i) - k;
        q->a += d;
        q->b += d * d;
    }
    for (; i < n; i++) {
        const float d = x[i] - k;
        q->ta += d;
        q->tb += d * d;
    }
    acc_plane(q, n);
}

/* a += g, b += g * (x - m) */
static inline void plane_dot(bn_acc *q, const float *restrict g, const float *restrict x, int n, float m)
{
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const v16 gg = ld16(g + i);
        q->a += gg;
        q->b += gg * (ld16(x + i) - m);
    }
    for (; i < n; i++) {
        q->ta += g[i];
        q->tb += g[i] * (x[i] - m);
    }
    acc_plane(q, n);
}

/* The norm's affine map x * sc + sh, as the forward computes it: the
 * backward of BN + ReLU recomputes the ReLU's mask from x with these, bit for
 * bit (norm.c is built without FMA contraction), so it need not read the
 * ReLU's output: one stream less in both of its passes. */
static inline void bn_affine(const float *weight, const float *bias, int c, float mean, float rstd, float *sc,
                             float *sh)
{
    *sc = weight ? weight[c] * rstd : rstd;
    *sh = (bias ? bias[c] : 0.0f) - mean * *sc;
}
static inline int relu_on(float x, float sc, float sh) { return x * sc + sh > 0.0f; }

/* the same with g masked where the ReLU after the norm gave 0 */
static inline void plane_dot_mask(bn_acc *q, const float *restrict g, const float *restrict x, int n, float m,
                                  float sc, float sh)
{
    typedef int v16i __attribute__((vector_size(64)));
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const v16 xv = ld16(x + i);
        const v16 gg = (v16)((v16i)ld16(g + i) & (v16i)(xv * sc + sh > 0.0f)); /* relu_on */
        q->a += gg;
        q->b += gg * (xv - m);
    }
    for (; i < n; i++) {
        const float gg = relu_on(x[i], sc, sh) ? g[i] : 0.0f;
        q->ta += gg;
        q->tb += gg * (x[i] - m);
    }
    acc_plane(q, n);
}

/* out = x * g + sh, or max(0, that) with relu (NaN propagates) */
static inline void affine_plane(float *restrict o, const float *restrict x, int n, float g, float sh, int relu)
{
    if (relu)
        for (int i = 0; i < n; i++) {
            const float v = x[i] * g + sh;
            o[i] = v < 0.0f ? 0.0f : v;
        }
    else
        for (int i = 0; i < n; i++) o[i] = x[i] * g + sh;
}

/* Channels go in groups of adjacent ones, so that each sample's planes of
 * a group are one contiguous run of about BN_RUN floats: a 7 x 7 channel
 * alone is 128 runs of 49 floats 12 KB apart (its 64 channels apart), which
 * the prefetchers do not follow. Each channel still sums its planes in
 * sample order, so the results do not depend on the grouping. */
#define BN_RUN 768
#define BN_GMAX 64
static int bn_group(int HW, int n)
{
    int g = (BN_RUN + HW - 1) / HW;
    if (g > BN_GMAX) g = BN_GMAX;
    return g < n ? g : n;
}

OIALR_HOT static void bn_train_range(float *restrict out, float *mean, float *rstd, float *running_mean,
                                     float *running_var, const float *restrict inp, const float *weight,
                                     const float *bias, int B, int C, int HW, float eps, float momentum, int relu,
                                     int c0, int c1)
{
    const double n = (double)B * HW;
    bn_acc q[BN_GMAX];
    float k[BN_GMAX], sc[BN_GMAX], sh[BN_GMAX];
    for (int cg = c0, G; cg < c1; cg += G) {
        G = bn_group(HW, c1 - cg);
        /* one pass of shifted sums: with k near the mean, E[(x-k)^2] -
         * E[x-k]^2 has no cancellation to speak of (relative error ~ eps *
         * (1 + (mean-k)^2/var)); k = the mean of the first plane, 1/B of
         * the data read once more */
        for (int j = 0; j < G; j++) {
            bn_acc q0 = {0};
            plane_sums(&q0, inp + (size_t)(cg + j) * HW, HW, 0.0f);
            acc_flush(&q0);
            k[j] = (float)(q0.sa / HW);
            q[j] = (bn_acc){0};
        }
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + cg) * HW;
            for (int j = 0; j < G; j++) plane_sums(&q[j], x + (size_t)j * HW, HW, k[j]);
        }
        for (int j = 0; j < G; j++) {
            const int c = cg + j;
            acc_flush(&q[j]);
            const double ms = q[j].sa / n; /* mean of x - k */
            const double m = k[j] + ms;
            double v = q[j].sb / n - ms * ms;
            if (v < 0.0) v = 0.0;
            const float r = (float)(1.0 / sqrt(v + eps));
            mean[c] = (float)m;
            rstd[c] = r;
            bn_affine(weight, bias, c, mean[c], r, &sc[j], &sh[j]);
            if (running_mean) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * (float)m;
            if (running_var) {
                double vu = n > 1.0 ? v * n / (n - 1.0) : v;
                running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (float)vu;
            }
        }
        for (int b = 0; b < B; b++) {
            const size_t o = ((size_t)b * C + cg) * HW;
            for (int j = 0; j < G; j++)
                affine_plane(out + o + (size_t)j * HW, inp + o + (size_t)j * HW, HW, sc[j], sh[j], relu);
        }
    }
}

OIALR_HOT static void bn_eval_range(float *restrict out, const float *restrict inp, const float *weight,
                                    const float *bias, const float *running_mean, const float *running_var, int B,
                                    int C, int HW, float eps, int relu, int c0, int c1)
{
    for (int c = c0; c < c1; c++) {
        const float r = (float)(1.0 / sqrt((double)running_var[c] + eps));
        float g, sh;
        bn_affine(weight, bias, c, running_mean[c], r, &g, &sh);
        for (int b = 0; b < B; b++)
            affine_plane(out + ((size_t)b * C + c) * HW, inp + ((size_t)b * C + c) * HW, HW, g, sh, relu);
    }
}

/* dx (=, or += without set) = wr * (g' - k0 - (x - m) * r * k1), g' = g
 * masked by the ReLU (relu_on) with relu */
static inline void dx_plane(float *restrict dx, const float *restrict g, const float *restrict x, int n, float wr,
                            float k0, float k1, float m, float r, float sc, float sh, int relu, int set)
{
    if (relu) {
        if (set)
            for (int i = 0; i < n; i++)
                dx[i] = wr * ((relu_on(x[i], sc, sh) ? g[i] : 0.0f) - k0 - (x[i] - m) * r * k1);
        else
            for (int i = 0; i < n; i++)
                dx[i] += wr * ((relu_on(x[i], sc, sh) ? g[i] : 0.0f) - k0 - (x[i] - m) * r * k1);
    } else if (set) {
        for (int i = 0; i < n; i++) dx[i] = wr * (g[i] - k0 - (x[i] - m) * r * k1);
    } else {
        for (int i = 0; i < n; i++) dx[i] += wr * (g[i] - k0 - (x[i] - m) * r * k1);
    }
}

OIALR_HOT static void bn_backward_range(float *restrict dinp, float *dweight, float *dbias,
                                        const float *restrict dout, const float *restrict inp, const float *mean,
                                        const float *rstd, const float *weight, const float *bias, int B, int C,
                                        int HW, int relu, int set, int c0, int c1)
{
    const double n = (double)B * HW;
    bn_acc q[BN_GMAX];
    float sc[BN_GMAX], sh[BN_GMAX], wr[BN_GMAX], k0[BN_GMAX], k1[BN_GMAX];
    for (int cg = c0, G; cg < c1; cg += G) {
        G = bn_group(HW, c1 - cg);
        for (int j = 0; j < G; j++) {
            bn_affine(weight, bias, cg + j, mean[cg + j], rstd[cg + j], &sc[j], &sh[j]); /* the ReLU's mask */
            q[j] = (bn_acc){0};
        }
        /* sum(dout), sum(dout * (x - m)) */
        for (int b = 0; b < B; b++) {
            const size_t o = ((size_t)b * C + cg) * HW;
            for (int j = 0; j < G; j++) {
                const float *x = inp + o + (size_t)j * HW, *g = dout + o + (size_t)j * HW;
                if (relu) plane_dot_mask(&q[j], g, x, HW, mean[cg + j], sc[j], sh[j]);
                else plane_dot(&q[j], g, x, HW, mean[cg + j]);
            }
        }
        for (int j = 0; j < G; j++) {
            const int c = cg + j;
            acc_flush(&q[j]);
            const double sg = q[j].sa, sgx = q[j].sb * rstd[c]; /* sum(dout * xhat) */
            if (dbias) dbias[c] += (float)sg;
            if (dweight) dweight[c] += (float)sgx;
            /* dx = w*r * (g - sg/n - xhat * sgx/n) */
            wr[j] = (weight ? weight[c] : 1.0f) * rstd[c];
            k0[j] = (float)(sg / n), k1[j] = (float)(sgx / n);
        }
        if (!dinp) continue;
        for (int b = 0; b < B; b++) {
            const size_t o = ((size_t)b * C + cg) * HW;
            for (int j = 0; j < G; j++) {
                const size_t p = o + (size_t)j * HW;
                dx_plane(dinp + p, dout + p, inp + p, HW, wr[j], k0[j], k1[j], mean[cg + j], rstd[cg + j], sc[j],
                         sh[j], relu, set);
            }
        }
    }
}

static void bn_train_share(void *ctx, int t, int nt)
{
    const bn_job *j = ctx;
    int c0, c1;
    nn_share(j->C, t, nt, &c0, &c1);
    bn_train_range(j->out, j->mean, j->rstd, j->running_mean, j->running_var, j->inp, j->weight, j->bias, j->B,
                   j->C, j->HW, j->eps, j->momentum, j->relu, c0, c1);
}

void batchnorm2d_forward_train_act(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                                   const float *inp, const float *weight, const float *bias, int B, int C, int HW,
                                   float eps, float momentum, int relu)
{
    bn_job j = {.out = out, .mean = mean, .rstd = rstd, .running_mean = running_mean, .running_var = running_var,
                .inp = inp, .weight = weight, .bias = bias, .B = B, .C = C, .HW = HW, .eps = eps,
                .momentum = momentum, .relu = relu};
    nn_parallel(bn_train_share, &j, bn_threads(B, C, HW));
}

void batchnorm2d_forward_train(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                               const float *inp, const float *weight, const float *bias, int B, int C, int HW,
                               float eps, float momentum)
{
    batchnorm2d_forward_train_act(out, mean, rstd, running_mean, running_var, inp, weight, bias, B, C, HW, eps,
                                  momentum, 0);
}

static void bn_eval_share(void *ctx, int t, int nt)
{
    const bn_job *j = ctx;
    int c0, c1;
    nn_share(j->C, t, nt, &c0, &c1);
    bn_eval_range(j->out, j->inp, j->weight, j->bias, j->rmean, j->rvar, j->B, j->C, j->HW, j->eps, j->relu, c0, c1);
}

void batchnorm2d_forward_eval_act(float *out, const float *inp, const float *weight, const float *bias,
                                  const float *running_mean, const float *running_var, int B, int C, int HW,
                                  float eps, int relu)
{
    bn_job j = {.out = out, .inp = inp, .weight = weight, .bias = bias, .rmean = running_mean,
                .rvar = running_var, .B = B, .C = C, .HW = HW, .eps = eps, .relu = relu};
    nn_parallel(bn_eval_share, &j, bn_threads(B, C, HW));
}

void batchnorm2d_forward_eval(float *out, const float *inp, const float *weight, const float *bias,
                              const float *running_mean, const float *running_var, int B, int C, int HW,
                              float eps)
{
    batchnorm2d_forward_eval_act(out, inp, weight, bias, running_mean, running_var, B, C, HW, eps, 0);
}

static void bn_backward_share(void *ctx, int t, int nt)
{
    const bn_job *j = ctx;
    int c0, c1;
    nn_share(j->C, t, nt, &c0, &c1);
    bn_backward_range(j->dinp, j->dweight, j->dbias, j->dout, j->inp, j->cmean, j->crstd, j->weight, j->bias, j->B,
                      j->C, j->HW, j->relu, j->set, c0, c1);
}

void batchnorm2d_backward_act(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *mean, const float *rstd, const float *weight, const float *bias, int B,
                              int C, int HW, int relu, int set)
{
    bn_job j = {.dinp = dinp, .dweight = dweight, .dbias = dbias, .dout = dout, .inp = inp, .cmean = mean,
                .crstd = rstd, .weight = weight, .bias = bias, .B = B, .C = C, .HW = HW, .relu = relu, .set = set};
    nn_parallel(bn_backward_share, &j, bn_threads(B, C, HW));
}

void batchnorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *mean, const float *rstd, const float *weight, int B, int C, int HW)
{
    batchnorm2d_backward_act(dinp, dweight, dbias, dout, inp, mean, rstd, weight, NULL, B, C, HW, 0, 0);
}

void batchnorm2d_forward_train_naive(float *out, float *mean, float *rstd, float *running_mean,
                                     float *running_var, const float *inp, const float *weight, const float *bias,
                                     int B, int C, int HW, float eps, float momentum)
{
    const double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        double s = 0.0, ss = 0.0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) s += inp[((size_t)b * C + c) * HW + i];
        double m = s / n;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) {
                double dx = inp[((size_t)b * C + c) * HW + i] - m;
                ss += dx * dx;
            }
        double v = ss / n, r = 1.0 / sqrt(v + eps);
        mean[c] = (float)m;
        rstd[c] = (float)r;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)b * C + c) * HW + i;
                out[j] = (float)((inp[j] - m) * r * (weight ? weight[c] : 1.0) + (bias ? bias[c] : 0.0));
            }
        if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m);
        if (running_var)
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * (n > 1 ? v * n / (n - 1) : v));
    }
}

void batchnorm2d_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *mean, const float *rstd, const float *weight, int B, int C, int HW)
{
    const double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        double sg = 0.0, sgx = 0.0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)b * C + c) * HW + i;
                sg += dout[j];
                sgx += (double)dout[j] * ((double)inp[j] - mean[c]) * rstd[c];
            }
        if (dbias) dbias[c] += (float)sg;
        if (dweight) dweight[c] += (float)sgx;
        if (!dinp) continue;
        double w = weight ? weight[c] : 1.0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)b * C + c) * HW + i;
                double xhat = ((double)inp[j] - mean[c]) * rstd[c];
                dinp[j] += (float)(w * rstd[c] * (dout[j] - sg / n - xhat * sgx / n));
            }
    }
}

// ---------------------------------------------------------------------------
// layer norm

/* sum(x - k) and *s2 = sum((x - k)^2) (s2 may be NULL) over one row, in
 * lanes summed as a tree */
static inline float row_sum(const float *restrict x, int n, float k, float *s2)
{
    bn_acc q = {0};
    plane_sums(&q, x, n, k);
    if (s2) *s2 = (float)(q.sb + hsum16(&q.b) + q.tb);
    return (float)(q.sa + hsum16(&q.a) + q.ta);
}

/* Rows are independent in the forward and for dinp; dweight and dbias sum
 * over rows, so the backward gives each thread a block of rows (dinp) and a
 * block of columns (dweight, dbias) instead: no reduction, and every column
 * accumulates its rows in the same order as one thread would. */
typedef struct ln_job {
    float *out, *mean, *rstd, *dinp, *dweight, *dbias;
    const float *inp, *weight, *bias, *dout, *cmean, *crstd;
    int N, D;
    float eps;
} ln_job;

static int ln_threads(int N, int D)
{
    if ((size_t)N * D < BN_PAR_MIN) return 1;
    int nt = nn_threads();
    return nt < N ? nt : N;
}

OIALR_HOT static void ln_forward_rows(float *restrict out, float *mean, float *rstd, const float *restrict inp,
                                      const float *weight, const float *bias, int r0, int r1, int D, float eps)
{
    for (int r = r0; r < r1; r++) {
        const float *x = inp + (size_t)r * D;
        float *o = out + (size_t)r * D;
        /* two passes (mean, then deviations), in lanes */
        const float m = row_sum(x, D, 0.0f, NULL) / (float)D;
        float v;
        row_sum(x, D, m, &v);
        v /= (float)D;
        const float rs = 1.0f / sqrtf(v + eps);
        for (int i = 0; i < D; i++) {
            float y = (x[i] - m) * rs;
            o[i] = (weight ? y * weight[i] : y) + (bias ? bias[i] : 0.0f);
        }
        mean[r] = m;
        rstd[r] = rs;
    }
}

static void ln_forward_share(void *ctx, int t, int nt)
{
    const ln_job *j = ctx;
    int r0, r1;
    nn_share(j->N, t, nt, &r0, &r1);
    ln_forward_rows(j->out, j->mean, j->rstd, j->inp, j->weight, j->bias, r0, r1, j->D, j->eps);
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int D, float eps)
{
    ln_job j = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .weight = weight, .bias = bias, .N = N, .D = D,
                .eps = eps};
    nn_parallel(ln_forward_share, &j, ln_threads(N, D));
}

/* dxhat = g*w; dx = rs*(dxhat - mean(dxhat) - xhat*mean(dxhat*xhat)) */
OIALR_HOT static void ln_backward_rows(float *restrict dinp, const float *restrict dout, const float *restrict inp,
                                       const float *mean, const float *rstd, const float *weight, int r0, int r1,
                                       int D)
{
    for (int r = r0; r < r1; r++) {
        const float *x = inp + (size_t)r * D, *g = dout + (size_t)r * D;
        const float m = mean[r], rs = rstd[r];
        bn_acc q = {0}; /* (no flush: a row is summed in float, as before) */
        int i0 = 0;
        if (weight)
            for (; i0 + 16 <= D; i0 += 16) {
                const v16 dxh = ld16(g + i0) * ld16(weight + i0);
                q.a += dxh;
                q.b += dxh * ((ld16(x + i0) - m) * rs);
            }
        for (int i = i0; i < D; i++) {
            float xh = (x[i] - m) * rs;
            float dxh = weight ? g[i] * weight[i] : g[i];
            q.ta += dxh;
            q.tb += dxh * xh;
        }
        float a = hsum16(&q.a) + q.ta, ax = hsum16(&q.b) + q.tb;
        a /= (float)D;
        ax /= (float)D;
        float *dx = dinp + (size_t)r * D;
        for (int i = 0; i < D; i++) {
            float xh = (x[i] - m) * rs;
            float dxh = weight ? g[i] * weight[i] : g[i];
            dx[i] += rs * (dxh - a - xh * ax);
        }
    }
}

/* dweight[c], dbias[c] += over the rows, 16 columns at a time in registers
 * (adding into memory row by row made each row wait on the previous row's
 * store: the largest part of the layer norm in perf); the same sums in the
 * same order as before */
OIALR_HOT static void ln_backward_cols(float *restrict dweight, float *restrict dbias, const float *restrict dout,
                                       const float *restrict inp, const float *mean, const float *rstd, int N, int D,
                                       int c0, int c1)
{
    int i = c0;
    for (; i + 16 <= c1; i += 16) {
        v16 ab = {0}, aw = {0};
        if (dbias) ab = ld16(dbias + i);
        if (dweight) aw = ld16(dweight + i);
        for (int r = 0; r < N; r++) {
            const v16 g = ld16(dout + (size_t)r * D + i);
            ab += g;
            aw += g * ((ld16(inp + (size_t)r * D + i) - mean[r]) * rstd[r]);
        }
        if (dbias) st16(dbias + i, ab);
        if (dweight) st16(dweight + i, aw);
    }
    for (; i < c1; i++) {
        float ab = dbias ? dbias[i] : 0.0f, aw = dweight ? dweight[i] : 0.0f;
        for (int r = 0; r < N; r++) {
            const float g = dout[(size_t)r * D + i];
            ab += g;
            aw += g * ((inp[(size_t)r * D + i] - mean[r]) * rstd[r]);
        }
        if (dbias) dbias[i] = ab;
        if (dweight) dweight[i] = aw;
    }
}

static void ln_backward_share(void *ctx, int t, int nt)
{
    const ln_job *j = ctx;
    int r0, r1, c0, c1;
    nn_share(j->N, t, nt, &r0, &r1);
    nn_share(j->D, t, nt, &c0, &c1);
    if (j->dinp) ln_backward_rows(j->dinp, j->dout, j->inp, j->cmean, j->crstd, j->weight, r0, r1, j->D);
    if (j->dweight || j->dbias)
        ln_backward_cols(j->dweight, j->dbias, j->dout, j->inp, j->cmean, j->crstd, j->N, j->D, c0, c1);
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *mean, const float *rstd, const float *weight, int N, int D)
{
    ln_job j = {.dinp = dinp, .dweight = dweight, .dbias = dbias, .dout = dout, .inp = inp, .cmean = mean,
                .crstd = rstd, .weight = weight, .N = N, .D = D};
    nn_parallel(ln_backward_share, &j, ln_threads(N, D));
}

void layernorm_forward_naive(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                             const float *bias, int N, int D, float eps)
{
    for (int r = 0; r < N; r++) {
        double s = 0.0, ss = 0.0;
        for (int i = 0; i < D; i++) s += inp[(size_t)r * D + i];
        double m = s / D;
        for (int i = 0; i < D; i++) ss += (inp[(size_t)r * D + i] - m) * (inp[(size_t)r * D + i] - m);
        double rs = 1.0 / sqrt(ss / D + eps);
        for (int i = 0; i < D; i++)
            out[(size_t)r * D + i] =
                (float)((inp[(size_t)r * D + i] - m) * rs * (weight ? weight[i] : 1.0) + (bias ? bias[i] : 0.0));
        mean[r] = (float)m;
        rstd[r] = (float)rs;
    }
}

void layernorm_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *mean, const float *rstd, const float *weight, int N, int D)
{
    for (int r = 0; r < N; r++) {
        double a = 0.0, ax = 0.0;
        for (int i = 0; i < D; i++) {
            size_t j = (size_t)r * D + i;
            double xh = ((double)inp[j] - mean[r]) * rstd[r];
            double dxh = (double)dout[j] * (weight ? weight[i] : 1.0);
            a += dxh;
            ax += dxh * xh;
            if (dbias) dbias[i] += dout[j];
            if (dweight) dweight[i] += (float)(dout[j] * xh);
        }
        if (!dinp) continue;
        for (int i = 0; i < D; i++) {
            size_t j = (size_t)r * D + i;
            double xh = ((double)inp[j] - mean[r]) * rstd[r];
            double dxh = (double)dout[j] * (weight ? weight[i] : 1.0);
            dinp[j] += (float)(rstd[r] * (dxh - a / D - xh * ax / D));
        }
    }
}
