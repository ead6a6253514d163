/*
 * nn/conv.c — conv2d forward/backward: im2col + cblas_sgemm, and the naive
 * six-loop references. See nn/conv.h for shapes and the scratch layout.
 */
#include "nn/conv.h"

#include <cblas.h>
#include <stddef.h>
#include <string.h>

#include "base/hot.h"
#include "nn/par.h"
#include "nn/vec16.h"
#include "oialr/base.h"

/* Aim for col + tmp of about 256 Ki floats (1 MiB) per thread: the im2col
 * columns are still in L2 when the GEMM reads them, and the product when it
 * is copied out; a GEMM with N = nb*P >= 1000 columns is still efficient. */
#define CONV_CHUNK_FLOATS (1u << 18)

conv2d_dims conv2d_make(int C, int H, int W, int OC, int KH, int KW, int stride, int pad)
{
    OIALR_ASSERT(C > 0 && H > 0 && W > 0 && OC > 0 && KH > 0 && KW > 0 && stride > 0 && pad >= 0);
    conv2d_dims d = {C, H, W, OC, KH, KW, stride, pad, 0, 0};
    OIALR_ASSERT(H + 2 * pad >= KH && W + 2 * pad >= KW);
    d.OH = (H + 2 * pad - KH) / stride + 1;
    d.OW = (W + 2 * pad - KW) / stride + 1;
    return d;
}

int conv2d_chunk(const conv2d_dims *d, int B)
{
    size_t K = (size_t)d->C * d->KH * d->KW, P = (size_t)d->OH * d->OW;
    size_t per = (K + (size_t)d->OC) * P;
    size_t nb = CONV_CHUNK_FLOATS / per;
    /* planes of >= 512 pixels: one sample per GEMM (N = P is wide enough),
     * whose product needs no reordering into NCHW */
    if (nb < 1 || P >= 512) nb = 1;
    if (nb > (size_t)B) nb = (size_t)B;
    return (int)nb;
}

// ---------------------------------------------------------------------------
// The direct kernel: 3x3 with pad 1 or 1x1 with pad 0, stride 1 or 2, OC a
// multiple of 16 (the convs of a ResNet).
//
// Each input plane is copied into zero-bordered buffers, and for stride 2
// split into its 4 phases (even/odd rows x even/odd columns), so that output
// pixel (oh, ow) of tap (kh, kw) reads phase (kh%S, kw%S) at (oh + kh/S,
// ow + kw/S). The output is computed in the buffers' width Wq too: output
// q = oh*Wq + ow reads q + off(tap) in its phase, so every tap of 16
// consecutive outputs is one contiguous 16-float load, and 16 output channels
// accumulate in 16 vectors (GCC vector extension: registers on AVX-512) from
// broadcast weights. The columns past OW are computed and dropped. No im2col
// is written and nothing is packed per call but the weights (into [block of
// 16 outputs][input channel][tap][16]). The input gradient of a stride-1 3x3
// conv is the same kernel over dout with the weights flipped and transposed,
// so it is used there too (C a multiple of 16), and that of a stride-2 3x3
// conv is four such small convs, one per phase of the input (dinp2_taps),
// written to every other pixel; the weight gradient has its
// own direct kernel for few input channels (dw_direct, below); the rest stay
// im2col + sgemm.

static int direct_shape(const conv2d_dims *d)
{
    return d->KH == d->KW && ((d->KH == 3 && d->pad == 1) || (d->KH == 1 && d->pad == 0)) &&
           (d->stride == 1 || d->stride == 2);
}
/* measured (bench_kernels): 1x1 stride 2 is slower direct (3/4 of the phase
 * planes are copied for nothing), so the shortcuts stay on the GEMM */
static int fwd_shape(const conv2d_dims *d)
{
    return direct_shape(d) && d->OC % 16 == 0 && !(d->KH == 1 && d->stride == 2);
}
/* The stride-2 input gradient by phases, measured (bench_kernels, 2026-12-03,
 * Xeon with AVX-512, 3 alternating runs against im2col + sgemm + col2im):
 * 16->32 27, 25, 24% vs 20, 23, 23% of sgemm with 16 floats, level with 8;
 * 32->64 slower with both (32, 34, 30% vs 36, 35, 34%; 8 floats 30-36% vs
 * 38-45%). So at stride 2 it is for C = 16, on AVX-512 only (direct_dinp). */
static int dinp_shape(const conv2d_dims *d)
{
    return d->KH == 3 && d->KW == 3 && d->pad == 1 && d->C % 16 == 0 && (d->stride == 1 || (d->stride == 2 && d->C == 16));
}
/* the weight gradient (dw_direct below): 3x3 pad-1 convs of up to 16 input
 * channels, or 32 at stride 1. Measured in bench_kernels (2026-12-02, 2
 * alternating runs, whole layer vs im2col + sgemm): stem 1->16 34-36% vs
 * 24-26% of sgemm, 16->16 70-72% vs 65-67%, 16->32 s2 47-48% vs 48-50%.
 * After its loads were kept in registers (DW_IN_REG, 2026-12-03; the weight
 * gradient alone, 2 threads, 3 alternating runs): 32->32 14x14 89-91 GFLOP/s
 * vs 54-68 with sgemm; 32->64 s2 50-55 vs 52-60 and 64->64 7x7 (1 thread)
 * 39 vs 38-43, so those keep sgemm. */
static int dw_shape(const conv2d_dims *d)
{
    return d->KH == 3 && d->KW == 3 && d->pad == 1 && (d->stride == 1 || d->stride == 2) &&
           (d->C <= 16 || (d->C <= 32 && d->stride == 1));
}
/* The 16-float kernels are used where they pay (nn_simd: AVX-512). On an
 * AVX2 EPYC (bench_kernels, 2026-12-02) GCC's split 16-float code ran the
 * direct 16->16 conv at 11% of sgemm against 45-57% for im2col + sgemm; the
 * 8-float build (direct_block8) is used there for the input gradient
 * (16->16 48-52% -> 60-62%, 32->32 65-66% -> 70%, 64->64 74-75% -> 80-82%
 * for the whole layer) and not for the forward (level, docs/bench.md). The
 * scratch is sized for the shape either way. */
static int direct_fwd(const conv2d_dims *d) { return fwd_shape(d) && (nn_simd() == NN_SIMD_V16); }
static int direct_dinp(const conv2d_dims *d)
{
    return dinp_shape(d) && (d->stride == 1 ? nn_simd() != NN_SIMD_BLAS : nn_simd() == NN_SIMD_V16);
}
static int direct_dw(const conv2d_dims *d)
{
    return dw_shape(d) && nn_simd_avx512();
}

/* Where the kernel reads: H x W planes (zero padded by pad, split into S*S
 * phases of Hq x Wq, each lq floats, ps apart), nq outputs per plane (OH rows
 * of Wq, a multiple of 16), tap t at off[t] from the channel's first phase.
 * One sample has ps = lq; the weight gradient lays G samples side by side in
 * each phase (ps = G*lq, sample j at j*lq: dir_group). */
typedef struct dir_geom {
    int H, W, pad, S, K, OH, OW, Hq, Wq, ntap;
    size_t nq, lq, ps, lc; /* lc: floats per channel (S*S phases) */
    size_t off[9];
    /* where output (h, x) < (OH, OW) lands in a YH x YW plane: row h*ys + y0,
     * column x*ys + x0 (1, 0, 0 but for the stride-2 input gradient's phases) */
    int ys, y0, x0, YH, YW;
} dir_geom;

static void dir_offsets(dir_geom *g)
{
    const int K = g->K, S = g->S;
    g->lc = (size_t)S * S * g->ps;
    for (int kh = 0; kh < K; kh++)
        for (int kw = 0; kw < K; kw++)
            g->off[kh * K + kw] =
                (size_t)((kh % S) * S + kw % S) * g->ps + (size_t)(kh / S) * g->Wq + (size_t)(kw / S);
}

static dir_geom dir_make(int H, int W, int K, int S, int pad, int OH, int OW)
{
    dir_geom g = {.H = H, .W = W, .pad = pad, .S = S, .K = K, .OH = OH, .OW = OW, .ntap = K * K,
                  .ys = 1, .YH = OH, .YW = OW};
    g.Hq = (H + 2 * pad + S - 1) / S;
    g.Wq = (W + 2 * pad + S - 1) / S;
    g.nq = ((size_t)OH * g.Wq + 15) & ~(size_t)15;
    const size_t maxoff = (size_t)((K - 1) / S) * g.Wq + (size_t)((K - 1) / S);
    size_t lq = g.nq + maxoff + 1;
    if (lq < (size_t)g.Hq * g.Wq) lq = (size_t)g.Hq * g.Wq;
    g.lq = (lq + 15) & ~(size_t)15;
    g.ps = g.lq;
    dir_offsets(&g);
    return g;
}
static dir_geom dir_group(dir_geom g, int G)
{
    g.ps = (size_t)G * g.lq;
    dir_offsets(&g);
    return g;
}
static dir_geom dir_fwd_geom(const conv2d_dims *d)
{
    return dir_make(d->H, d->W, d->KH, d->stride, d->pad, d->OH, d->OW);
}
/* The input gradient of a 3x3 pad-1 stride-2 conv, split by the parity
 * (ph, pw) of the input pixel (2a + ph, 2b + pw): it reads dout at rows
 * a + dh, dh = (ph + 1 - kh)/2 for the taps kh of parity 1 - ph (kh = 1 for
 * ph = 0; kh = 0, 2 for ph = 1), and the same for the columns. Each phase is a
 * small conv over dout (1, 2, 2 and 4 taps: the 9 of the kernel once), read
 * from one buffer with a zero row and column past its end. The taps of phase
 * p, kernel index k[t] and offset dh*Wq + dw, in the order pack_dinp2 packs. */
static int dinp2_taps(int p, int Wq, int k[4], size_t off[4])
{
    const int ph = p >> 1, pw = p & 1;
    int n = 0;
    for (int kh = 0; kh < 3; kh++)
        for (int kw = 0; kw < 3; kw++)
            if ((kh + ph) % 2 == 1 && (kw + pw) % 2 == 1) {
                k[n] = kh * 3 + kw;
                off[n] = (size_t)((ph + 1 - kh) / 2) * (size_t)Wq + (size_t)((pw + 1 - kw) / 2);
                n++;
            }
    return n;
}

/* The geometries of the input gradient over dout: one same 3x3 conv
 * (stride 1), or the 4 phases of dinp2_taps (stride 2), sharing one buffer
 * layout (H, W, lc) and each with its own taps, nq and output mapping.
 * Returns their number. */
static int dir_dinp_geoms(const conv2d_dims *d, dir_geom g[4])
{
    if (d->stride == 1) {
        g[0] = dir_make(d->OH, d->OW, 3, 1, 1, d->H, d->W);
        return 1;
    }
    dir_geom b = {.H = d->OH, .W = d->OW, .pad = 0, .S = 1, .K = 3, .Hq = d->OH + 1, .Wq = d->OW + 1,
                  .ys = 2, .YH = d->H, .YW = d->W};
    size_t lq = (size_t)b.Hq * b.Wq;
    for (int p = 0; p < 4; p++) {
        g[p] = b;
        g[p].y0 = p >> 1, g[p].x0 = p & 1;
        g[p].OH = (d->H - g[p].y0 + 1) / 2, g[p].OW = (d->W - g[p].x0 + 1) / 2;
        g[p].nq = ((size_t)g[p].OH * b.Wq + 15) & ~(size_t)15;
        int k[4];
        g[p].ntap = dinp2_taps(p, b.Wq, k, g[p].off);
        const size_t need = g[p].nq + (size_t)b.Wq + 2;
        if (need > lq) lq = need;
    }
    lq = (lq + 15) & ~(size_t)15;
    for (int p = 0; p < 4; p++) g[p].lq = g[p].ps = g[p].lc = lq;
    return 4;
}

/* samples side by side for the weight gradient: a group of >= DW_GROUP_Q
 * outputs (at most B) */
#define DW_GROUP_Q 768
static int dw_group_size(const conv2d_dims *d, int B)
{
    const dir_geom g = dir_fwd_geom(d);
    int G = (int)((DW_GROUP_Q + g.nq - 1) / g.nq);
    return G < B ? G : B;
}

/* per thread: the channels' buffers + 16 output planes (forward, input
 * gradient), or a group's inputs and output gradients (weight gradient) */
static size_t direct_floats(const conv2d_dims *d, int B)
{
    size_t n = 0;
    if (dw_shape(d)) {
        const dir_geom g = dir_group(dir_fwd_geom(d), dw_group_size(d, B));
        n = (size_t)d->C * g.lc + (size_t)d->OC * g.ps;
    }
    if (fwd_shape(d)) {
        dir_geom g = dir_fwd_geom(d);
        size_t m = (size_t)d->C * g.lc + 16 * g.nq;
        if (m > n) n = m;
    }
    if (dinp_shape(d)) {
        dir_geom g[4];
        const int ng = dir_dinp_geoms(d, g);
        for (int p = 0; p < ng; p++) {
            size_t m = (size_t)d->OC * g[p].lc + 16 * g[p].nq;
            if (m > n) n = m;
        }
    }
    return n;
}

const char *conv2d_kernel_name(const conv2d_dims *d, int B)
{
    static const char *const names[8] = {
        NULL,
        "direct (fwd) + im2col/sgemm (dinp, dw)",
        "direct (dinp) + im2col/sgemm (fwd, dw)",
        "direct (fwd, dinp) + im2col/sgemm (dw)",
        "direct (dw) + im2col/sgemm (fwd, dinp)",
        "direct (fwd, dw) + im2col/sgemm (dinp)",
        "direct (dinp, dw) + im2col/sgemm (fwd)",
        "direct (fwd, dinp, dw)",
    };
    const int k = direct_fwd(d) | direct_dinp(d) << 1 | direct_dw(d) << 2;
    if (k) return names[k];
    return conv2d_chunk(d, B) == 1 ? "im2col + sgemm, 1 sample a chunk" : "im2col + sgemm, several samples a chunk";
}

/* obuf[o][q], o < 16, q < nq = sum over c < cin, taps t of wp[c][t][o] * in[c*lc + off[t] + q] */
OIALR_HOT static void direct_block(float *restrict obuf, const float *restrict in, const float *restrict wp, int cin,
                                   const dir_geom *g)
{
    const int nt = g->ntap;
    const size_t nq = g->nq, lc = g->lc;
    size_t off[9];
    for (int t = 0; t < nt; t++) off[t] = g->off[t];
    for (size_t q = 0; q < nq; q += 16) {
        v16 acc[16];
#pragma GCC unroll 16
        for (int o = 0; o < 16; o++) acc[o] = (v16){0};
        for (int c = 0; c < cin; c++) {
            const float *x = in + (size_t)c * lc + q;
            const float *wc = wp + (size_t)c * nt * 16;
            for (int t = 0; t < nt; t++) {
                const v16 v = ld16(x + off[t]);
                const float *wt = wc + t * 16;
#pragma GCC unroll 16
                for (int o = 0; o < 16; o++) acc[o] += wt[o] * v;
            }
        }
#pragma GCC unroll 16
        for (int o = 0; o < 16; o++) st16(obuf + (size_t)o * nq + q, acc[o]);
    }
}

#if defined(OIALR_HOT_CLONES)
/* The same product for AVX2 (16 ymm registers of 8 floats; nn_simd() ==
 * NN_SIMD_V8): 16 outputs x 16 channels would need 32 of them, so each 16
 * outputs are done as channel groups of 6, 6 and 4 x 2 vectors (12
 * accumulators; per tap 2 loads of x and NO broadcasts). Used for the input
 * gradient only (direct_dinp): there it beat im2col + sgemm + col2im, as a
 * forward it did not (docs/layers.md). */

__attribute__((target("arch=x86-64-v3"), always_inline)) static inline void
block8_group(float *restrict obuf, const float *restrict in, const float *restrict wp, int cin, const size_t *off,
             int nt, size_t lc, size_t nq, size_t q, int o0, const int NO)
{
    v8 a0[6], a1[6];
#pragma GCC unroll 6
    for (int o = 0; o < NO; o++) a0[o] = (v8){0}, a1[o] = (v8){0};
    for (int c = 0; c < cin; c++) {
        const float *x = in + (size_t)c * lc + q;
        const float *wc = wp + (size_t)c * nt * 16 + o0;
#pragma GCC unroll 9
        for (int t = 0; t < nt; t++) {
            const v8 x0 = *(const v8u *)(x + off[t]), x1 = *(const v8u *)(x + off[t] + 8);
            const float *wt = wc + t * 16;
#pragma GCC unroll 6
            for (int o = 0; o < NO; o++) {
                a0[o] += wt[o] * x0;
                a1[o] += wt[o] * x1;
            }
        }
    }
#pragma GCC unroll 6
    for (int o = 0; o < NO; o++) {
        *(v8u *)(obuf + (size_t)(o0 + o) * nq + q) = a0[o];
        *(v8u *)(obuf + (size_t)(o0 + o) * nq + q + 8) = a1[o];
    }
}

__attribute__((target("arch=x86-64-v3"))) static void direct_block8(float *restrict obuf, const float *restrict in,
                                                                    const float *restrict wp, int cin,
                                                                    const dir_geom *g)
{
    const int nt = g->ntap;
    const size_t nq = g->nq, lc = g->lc;
    size_t off[9];
    for (int t = 0; t < nt; t++) off[t] = g->off[t];
    for (size_t q = 0; q < nq; q += 16) {
        block8_group(obuf, in, wp, cin, off, nt, lc, nq, q, 0, 6);
        block8_group(obuf, in, wp, cin, off, nt, lc, nq, q, 6, 6);
        block8_group(obuf, in, wp, cin, off, nt, lc, nq, q, 12, 4);
    }
}
#endif

#if defined(OIALR_HOT_CLONES)
/* Row copies of the direct kernels on AVX-512 (split_cols_v16, row_out_v16):
 * rows of 7, 14 or 28 floats, and at stride 2 every other one, are short and
 * odd for 16-float vectors. Built for the baseline, these copies were scalar (the
 * column split of a stride-2 input, the input gradient's every other pixel)
 * or 4 floats wide, and together took as long as the 16->32 stride-2 conv's
 * arithmetic (perf of bench_kernels, 2026-12-03): here a row is one or two
 * masked loads, a permute, a masked store. */
#include <immintrin.h>

/* the first n lanes (none for n <= 0) */
OIALR_AVX512 static inline __mmask16 lanes16(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* ev[i] = row[2i], od[i] = row[2i + 1] for the W floats of a row */
OIALR_AVX512 static void split_cols_v16(float *ev, float *od, const float *row, int W)
{
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
    for (int w = 0; w < W; w += 32) {
        const int n = W - w;
        const __m512 a = _mm512_maskz_loadu_ps(lanes16(n), row + w);
        const __m512 b = _mm512_maskz_loadu_ps(lanes16(n - 16), row + w + 16);
        _mm512_mask_storeu_ps(ev + w / 2, lanes16((n + 1) / 2), _mm512_permutex2var_ps(a, ie, b));
        _mm512_mask_storeu_ps(od + w / 2, lanes16(n / 2), _mm512_permutex2var_ps(a, io, b));
    }
}

/* y[x*ys] = r[x] + bb, or += r[x] (add), for x < n; ys 1 or 2 */
OIALR_AVX512 static inline __attribute__((always_inline)) void row_out_v16(float *y, const float *r, int n, int ys,
                                                                          float bb, int add)
{
    const __m512 vb = _mm512_set1_ps(bb);
    if (ys == 1) {
        for (int x = 0; x < n; x += 16) {
            const __mmask16 m = lanes16(n - x);
            const __m512 v = _mm512_maskz_loadu_ps(m, r + x);
            _mm512_mask_storeu_ps(y + x, m, _mm512_add_ps(v, add ? _mm512_maskz_loadu_ps(m, y + x) : vb));
        }
        return;
    }
    /* 8 values to the even lanes of 16 */
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int x = 0; x < n; x += 8) {
        const int k = n - x < 8 ? n - x : 8;
        const __mmask16 m = (__mmask16)(0x5555 & lanes16(2 * k - 1));
        const __m512 v = _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(lanes16(k), r + x));
        float *yy = y + 2 * (size_t)x;
        _mm512_mask_storeu_ps(yy, m, _mm512_add_ps(v, add ? _mm512_maskz_loadu_ps(m, yy) : vb));
    }
}

/* direct_run's copy-out of a block of 16 planes (see there), AVX-512 */
OIALR_AVX512 static void block_out_v16(float *dst, const float *obuf, const float *bias, const dir_geom *gp,
                                       size_t ps, int add)
{
    for (int o = 0; o < 16; o++) {
        float *y = dst + (size_t)o * ps + (size_t)gp->y0 * gp->YW + gp->x0;
        const float *r = obuf + (size_t)o * gp->nq;
        const float bb = bias ? bias[o] : 0.0f;
        for (int h = 0; h < gp->OH; h++)
            row_out_v16(y + (size_t)h * gp->ys * gp->YW, r + (size_t)h * gp->Wq, gp->OW, gp->ys, bb, add);
    }
}
#endif

/* planes [n][H][W] -> the buffers' interiors (the borders are zeroed by the
 * caller once per call): row ih + pad of the padded plane is row (ih+pad)/S
 * of phase row (ih+pad)%S */
static void pad_planes(float *restrict buf, const float *restrict src, int n, const dir_geom *g)
{
    const int H = g->H, W = g->W, S = g->S, p = g->pad, Wq = g->Wq;
#if defined(OIALR_HOT_CLONES)
    const int avx512 = S == 2 && nn_simd_avx512();
#endif
    for (int c = 0; c < n; c++)
        for (int h = 0; h < H; h++) {
            const float *row = src + ((size_t)c * H + h) * W;
            const int ph = h + p;
            float *dst = buf + (size_t)c * g->lc + (size_t)(ph % S) * S * g->ps + (size_t)(ph / S) * Wq;
            if (S == 1) {
                memcpy(dst + p, row, sizeof(float) * (size_t)W);
                continue;
            }
            /* the even and the odd columns, each into its phase */
            float *d[2];
            for (int w0 = 0; w0 < 2; w0++) d[w0] = dst + (size_t)((w0 + p) % 2) * g->ps + (size_t)((w0 + p) / 2);
#if defined(OIALR_HOT_CLONES)
            if (avx512) {
                split_cols_v16(d[0], d[1], row, W);
                continue;
            }
#endif
            for (int w0 = 0; w0 < 2; w0++)
                for (int w = w0, i = 0; w < W; w += 2, i++) d[w0][i] = row[w];
        }
}

/* forward weights: wp[ob][c][t][o] = w[ob*16+o][c][t] */
static void pack_fwd(float *restrict wp, const float *restrict w, const conv2d_dims *d)
{
    const int C = d->C, OC = d->OC, nt = d->KH * d->KW;
    for (int ob = 0; ob < OC / 16; ob++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < nt; t++)
                for (int o = 0; o < 16; o++)
                    wp[(((size_t)ob * C + c) * nt + t) * 16 + o] = w[((size_t)(ob * 16 + o) * C + c) * nt + t];
}
/* input-gradient weights: flipped and transposed, wq[cb][oc][t][i] = w[oc][cb*16+i][8-t];
 * at stride 2 by phase, wq[cb][p][oc][t][i] = w[oc][cb*16+i][k_p[t]] (dinp2_taps) */
static void pack_dinp(float *restrict wq, const float *restrict w, const conv2d_dims *d)
{
    const int C = d->C, OC = d->OC;
    for (int cb = 0; cb < C / 16; cb++) {
        float *q = wq + (size_t)cb * OC * 9 * 16;
        for (int p = 0; p < (d->stride == 1 ? 1 : 4); p++) {
            int k[9];
            size_t off[4];
            int nt = 9;
            if (d->stride == 1)
                for (int t = 0; t < 9; t++) k[t] = 8 - t;
            else
                nt = dinp2_taps(p, 1, k, off);
            for (int oc = 0; oc < OC; oc++)
                for (int t = 0; t < nt; t++)
                    for (int i = 0; i < 16; i++) *q++ = w[((size_t)oc * C + cb * 16 + i) * 9 + k[t]];
        }
    }
}

// ---------------------------------------------------------------------------
// The weight gradient of the 3x3 pad-1 convs (stride 1 or 2, any C and OC;
// used for C <= 16, direct_dw):
// dw[oc][c][t] = sum over samples and q of gq[oc][q] * x[c][q + off[t]], x
// the forward's phase layout with G samples side by side in each phase
// (dir_group), gq the output gradient in the same Wq-wide rows, zero past OW
// (so the dropped columns add nothing). NO <= 3 output channels x 9 taps
// accumulate in 9*NO vectors over 16 consecutive q: NO + 9 loads for 9*NO
// multiply-adds, then one horizontal sum each per channel and group; G makes
// a group >= DW_GROUP_Q outputs long so those sums stay a small share.

/* Built for AVX-512 alone (OIALR_AVX512; direct_dw asks nn_simd_avx512),
 * not as OIALR_HOT's clones: its x loads are kept in a register
 * (DW_IN_REG), which needs a zmm. GCC otherwise folds each load into the NO
 * multiply-adds that use it, and these loads are unaligned, so most split a
 * cache line: 27 such loads per 27 multiply-adds made the load ports the
 * limit. */
#if defined(OIALR_HOT_CLONES)
#define DW_IN_REG(v) __asm__("" : "+v"(v))
#else
#define DW_IN_REG(v) ((void)0)
#endif

OIALR_AVX512 static inline __attribute__((always_inline)) void dw_tile(float *restrict dw, const float *restrict gq,
                                                                       const float *restrict x, size_t gs, int NO,
                                                                       const dir_geom *g, int n, size_t dws)
{
    v16 acc[3][9];
#pragma GCC unroll 3
    for (int o = 0; o < NO; o++)
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) acc[o][t] = (v16){0};
    size_t off[9];
    for (int t = 0; t < 9; t++) off[t] = g->off[t];
    for (int j = 0; j < n; j++)
        for (size_t q = (size_t)j * g->lq, qe = q + g->nq; q < qe; q += 16) {
            v16 gv[3];
#pragma GCC unroll 3
            for (int o = 0; o < NO; o++) gv[o] = ld16(gq + (size_t)o * gs + q);
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++) {
                v16 xv = ld16(x + q + off[t]);
                DW_IN_REG(xv);
#pragma GCC unroll 3
                for (int o = 0; o < NO; o++) acc[o][t] += gv[o] * xv;
            }
        }
    for (int o = 0; o < NO; o++)
        for (int t = 0; t < 9; t++) dw[(size_t)o * dws + t] += hsum16(&acc[o][t]);
}

/* dw[OC][C][9] += the gradient of n samples laid out in xb (C channels of
 * g->lc) and gb (OC planes gs = G*lq apart) */
OIALR_AVX512 static void dw_direct(float *restrict dw, const float *restrict xb, const float *restrict gb,
                                   const conv2d_dims *d, const dir_geom *g, int n)
{
    const int C = d->C, OC = d->OC;
    const size_t gs = g->ps, dws = (size_t)C * 9;
    for (int o0 = 0, no; o0 < OC; o0 += no) {
        /* tiles of 3 channels, the last 4 as 2 + 2 (a tile of 1 makes 10
         * loads for 9 multiply-adds) */
        no = OC - o0 == 4 ? 2 : OC - o0 < 3 ? OC - o0 : 3;
        for (int c = 0; c < C; c++) {
            float *dd = dw + (size_t)o0 * dws + (size_t)c * 9;
            const float *gg = gb + (size_t)o0 * gs, *xx = xb + (size_t)c * g->lc;
            if (no == 3) dw_tile(dd, gg, xx, gs, 3, g, n, dws);
            else if (no == 2) dw_tile(dd, gg, xx, gs, 2, g, n, dws);
            else dw_tile(dd, gg, xx, gs, 1, g, n, dws);
        }
    }
}

/* samples [s0, s0 + n) of inp and dout into the group layout: xb by
 * pad_planes, gb[oc][j*lq + h*Wq + x] = dout[s0+j][oc][h][x] (the rest of
 * both stays the zeros the caller wrote once) */
static void dw_gather(float *restrict xb, float *restrict gb, const float *inp, const float *dout,
                      const conv2d_dims *d, const dir_geom *g, int s0, int n)
{
    const size_t inS = (size_t)d->C * d->H * d->W, P = (size_t)d->OH * d->OW;
    for (int j = 0; j < n; j++) {
        pad_planes(xb + (size_t)j * g->lq, inp + (size_t)(s0 + j) * inS, d->C, g);
        for (int oc = 0; oc < d->OC; oc++) {
            const float *src = dout + ((size_t)(s0 + j) * d->OC + oc) * P;
            float *dst = gb + (size_t)oc * g->ps + (size_t)j * g->lq;
            for (int h = 0; h < d->OH; h++)
                memcpy(dst + (size_t)h * g->Wq, src + (size_t)h * d->OW, sizeof(float) * (size_t)d->OW);
        }
    }
}

double conv2d_flops(const conv2d_dims *d, int B)
{
    return 2.0 * B * d->OC * (double)d->OH * d->OW * (double)d->C * d->KH * d->KW;
}

// ---------------------------------------------------------------------------
// im2col / col2im over a chunk of nb samples.
// col[(c*KH+kh)*KW+kw][s*P + oh*OW + ow] = inp[s][c][oh*S-pad+kh][ow*S-pad+kw]
// (0 outside the image). ld = nb*P.

/* Range of ow for which iw = ow*S - pad + kw lies in [0, W). */
static void valid_range(int *lo, int *hi, int kw, int S, int pad, int W, int OW)
{
    int a = pad - kw; /* need ow*S >= a */
    int l = a <= 0 ? 0 : (a + S - 1) / S;
    int b = W - 1 + pad - kw; /* need ow*S <= b */
    int h = b < 0 ? -1 : b / S;
    if (h > OW - 1) h = OW - 1;
    if (l > OW) l = OW;
    *lo = l;
    *hi = h + 1; /* exclusive; may be <= lo */
    if (*hi < *lo) *hi = *lo;
}

/* Stride 1 with OW == W (a "same" conv): the col row of tap (kh, kw) is the
 * input plane shifted by dh*W + dw (dh = kh - pad, dw = kw - pad), so a plane
 * is one contiguous copy and then the columns that wrapped around a row edge
 * (and the rows outside the image) are zeroed. */
static int shift_ok(const conv2d_dims *d)
{
    return d->stride == 1 && d->OW == d->W && d->OH == d->H;
}

/* Rows [*lo, *hi) of the output whose input row oh + dh is in the image. */
static void shift_rows(int dh, int H, int *lo, int *hi)
{
    *lo = dh < 0 ? -dh : 0;
    *hi = dh > 0 ? H - dh : H;
    if (*hi < *lo) *hi = *lo;
}

OIALR_HOT static void im2col_shift(float *restrict col, const float *restrict inp, const conv2d_dims *d, int nb)
{
    const int C = d->C, H = d->H, W = d->W, KH = d->KH, KW = d->KW, pad = d->pad;
    const size_t P = (size_t)H * W, ld = (size_t)nb * P;
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                const int dh = kh - pad, dw = kw - pad;
                int lo, hi;
                shift_rows(dh, H, &lo, &hi);
                const ptrdiff_t shift = (ptrdiff_t)dh * W + dw;
                const size_t i0 = (size_t)lo * W + (size_t)(dw < 0 ? -dw : 0);
                const size_t i1 = (size_t)hi * W - (size_t)(dw > 0 ? dw : 0);
                float *row = col + ((size_t)(c * KH + kh) * KW + kw) * ld;
                for (int s = 0; s < nb; s++) {
                    const float *plane = inp + ((size_t)s * C + c) * P;
                    float *dst = row + (size_t)s * P;
                    if (hi <= lo) {
                        memset(dst, 0, sizeof(float) * P);
                        continue;
                    }
                    memset(dst, 0, sizeof(float) * i0);
                    if (i1 > i0) memcpy(dst + i0, plane + (ptrdiff_t)i0 + shift, sizeof(float) * (i1 - i0));
                    else memset(dst + i0, 0, sizeof(float) * (i0 - i1)); /* cannot happen with W > |dw| */
                    memset(dst + i1, 0, sizeof(float) * (P - i1));
                    /* the columns that wrapped to the neighbouring row */
                    if (dw > 0)
                        for (int oh = lo; oh < hi; oh++)
                            for (int ow = W - dw; ow < W; ow++) dst[(size_t)oh * W + ow] = 0.0f;
                    else if (dw < 0)
                        for (int oh = lo; oh < hi; oh++)
                            for (int ow = 0; ow < -dw; ow++) dst[(size_t)oh * W + ow] = 0.0f;
                }
            }
}

/* col2im_add for the same case: zero the wrapped columns of dcol (scratch),
 * then one contiguous shifted add per plane. */
OIALR_HOT static void col2im_shift_add(float *restrict inp, float *restrict col, const conv2d_dims *d, int nb)
{
    const int C = d->C, H = d->H, W = d->W, KH = d->KH, KW = d->KW, pad = d->pad;
    const size_t P = (size_t)H * W, ld = (size_t)nb * P;
    for (int s = 0; s < nb; s++)
        for (int c = 0; c < C; c++) {
            float *plane = inp + ((size_t)s * C + c) * P;
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    const int dh = kh - pad, dw = kw - pad;
                    int lo, hi;
                    shift_rows(dh, H, &lo, &hi);
                    if (hi <= lo) continue;
                    float *src = col + ((size_t)(c * KH + kh) * KW + kw) * ld + (size_t)s * P;
                    if (dw > 0)
                        for (int oh = lo; oh < hi; oh++)
                            for (int ow = W - dw; ow < W; ow++) src[(size_t)oh * W + ow] = 0.0f;
                    else if (dw < 0)
                        for (int oh = lo; oh < hi; oh++)
                            for (int ow = 0; ow < -dw; ow++) src[(size_t)oh * W + ow] = 0.0f;
                    const size_t i0 = (size_t)lo * W + (size_t)(dw < 0 ? -dw : 0);
                    const size_t i1 = (size_t)hi * W - (size_t)(dw > 0 ? dw : 0);
                    float *dst = plane + (ptrdiff_t)dh * W + dw;
                    for (size_t i = i0; i < i1; i++) dst[i] += src[i];
                }
        }
}

static void im2col(float *col, const float *inp, const conv2d_dims *d, int nb)
{
    if (shift_ok(d) && d->W > d->pad) {
        im2col_shift(col, inp, d, nb);
        return;
    }
    const int C = d->C, H = d->H, W = d->W, KH = d->KH, KW = d->KW, S = d->stride, pad = d->pad;
    const int OH = d->OH, OW = d->OW;
    const size_t P = (size_t)OH * OW, ld = (size_t)nb * P, HW = (size_t)H * W;
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                float *row = col + ((size_t)(c * KH + kh) * KW + kw) * ld;
                int lo, hi;
                valid_range(&lo, &hi, kw, S, pad, W, OW);
                for (int s = 0; s < nb; s++) {
                    const float *plane = inp + ((size_t)s * C + c) * HW;
                    float *dst = row + (size_t)s * P;
                    for (int oh = 0; oh < OH; oh++, dst += OW) {
                        int ih = oh * S - pad + kh;
                        if (ih < 0 || ih >= H) {
                            memset(dst, 0, sizeof(float) * (size_t)OW);
                            continue;
                        }
                        /* index of ow's input pixel: base + ow*S (valid for lo <= ow < hi) */
                        const ptrdiff_t base = (ptrdiff_t)ih * W - pad + kw;
                        for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                        if (S == 1) {
                            if (hi > lo) memcpy(dst + lo, plane + base + lo, sizeof(float) * (size_t)(hi - lo));
                        } else {
                            for (int ow = lo; ow < hi; ow++) dst[ow] = plane[base + (ptrdiff_t)ow * S];
                        }
                        for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
                    }
                }
            }
}

/* inp[s][c][ih][iw] += col[...] for every pixel that reads it (col is
 * scratch: the shifted path zeroes its wrapped columns). */
static void col2im_add(float *inp, float *col, const conv2d_dims *d, int nb)
{
    if (shift_ok(d) && d->W > d->pad) {
        col2im_shift_add(inp, col, d, nb);
        return;
    }
    const int C = d->C, H = d->H, W = d->W, KH = d->KH, KW = d->KW, S = d->stride, pad = d->pad;
    const int OH = d->OH, OW = d->OW;
    const size_t P = (size_t)OH * OW, ld = (size_t)nb * P, HW = (size_t)H * W;
    for (int s = 0; s < nb; s++)
        for (int c = 0; c < C; c++) {
            float *plane = inp + ((size_t)s * C + c) * HW;
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    const float *src = col + ((size_t)(c * KH + kh) * KW + kw) * ld + (size_t)s * P;
                    int lo, hi;
                    valid_range(&lo, &hi, kw, S, pad, W, OW);
                    for (int oh = 0; oh < OH; oh++, src += OW) {
                        int ih = oh * S - pad + kh;
                        if (ih < 0 || ih >= H) continue;
                        const ptrdiff_t base = (ptrdiff_t)ih * W - pad + kw;
                        for (int ow = lo; ow < hi; ow++) plane[base + (ptrdiff_t)ow * S] += src[ow];
                    }
                }
        }
}

// ---------------------------------------------------------------------------
// fast path: the batch is split across nn_threads() threads (nn/par.h), each
// with its own slice of the scratch: col[K, nb*P], tmp[OC, nb*P] and, for the
// backward, private dw[OC*K] and db[OC] accumulators summed after the join.

/* a thread's slice: col, tmp, private dw and db, then the direct kernel's
 * buffers; after the NN_MAX_THREADS slices, the packed direct weights */
static size_t gemm_floats(const conv2d_dims *d, int nb)
{
    size_t K = (size_t)d->C * d->KH * d->KW, P = (size_t)d->OH * d->OW;
    return (K + (size_t)d->OC) * (size_t)nb * P + (size_t)d->OC * K + (size_t)d->OC;
}
static size_t thread_floats(const conv2d_dims *d, int B)
{
    size_t n = gemm_floats(d, conv2d_chunk(d, B)) + direct_floats(d, B);
    return (n + 15) & ~(size_t)15; /* 64-byte slices: no false sharing */
}
static size_t packed_floats(const conv2d_dims *d)
{
    return fwd_shape(d) || dinp_shape(d) ? (size_t)d->OC * d->C * d->KH * d->KW : 0;
}

size_t conv2d_scratch_size(const conv2d_dims *d, int B)
{
    return (size_t)NN_MAX_THREADS * thread_floats(d, B) + packed_floats(d);
}

typedef struct conv_job {
    float *out, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout;
    float *scratch;
    const float *wp; /* packed weights of the direct kernel (NULL: not used) */
    const conv2d_dims *d;
    int B;
    int set; /* dinp = instead of += */
} conv_job;

/* The direct kernel over samples [lo, hi): dst[s] (=, or += with add) of
 * cout = 16*nblk planes of YH x YW, from src[s] (cin planes of H x W), with
 * weights packed per block of 16 outputs; bias (or NULL) for the forward.
 * g[0..ng) are the geometries that together make the output (one, or the
 * phases of the stride-2 input gradient); they share the buffer layout, and
 * each one's weights follow the previous one's within a block. */
static void direct_run(float *dst, const float *src, const float *wp, const float *bias, int cin, int cout, int add,
                       float *buf, const dir_geom *g, int ng, int lo, int hi)
{
    const size_t inS = (size_t)cin * g->H * g->W, YP = (size_t)g->YH * g->YW;
    /* (the phases of the stride-2 input gradient write every other pixel
     * each, together every pixel once: so = works for them too) */
    int ntot = 0;
    for (int p = 0; p < ng; p++) ntot += g[p].ntap;
    float *obuf = buf + (size_t)cin * g->lc;
#if defined(OIALR_HOT_CLONES)
    const int use8 = nn_simd() == NN_SIMD_V8; /* the AVX2 build (input gradient only: direct_dinp) */
    const int avx512 = nn_simd_avx512();
#endif
    memset(buf, 0, sizeof(float) * (size_t)cin * g->lc);
    for (int s = lo; s < hi; s++) {
        pad_planes(buf, src + (size_t)s * inS, cin, g);
        for (int ob = 0; ob < cout / 16; ob++) {
            const float *wb = wp + (size_t)ob * cin * ntot * 16;
            for (int p = 0; p < ng; wb += (size_t)cin * g[p].ntap * 16, p++) {
                const dir_geom *gp = g + p;
                const int OH = gp->OH, OW = gp->OW, Wq = gp->Wq, ys = gp->ys, YW = gp->YW;
                if (OH == 0 || OW == 0) continue;
#if defined(OIALR_HOT_CLONES)
                if (use8) {
                    direct_block8(obuf, buf, wb, cin, gp);
                } else
#endif
                    direct_block(obuf, buf, wb, cin, gp);
                float *yb = dst + ((size_t)s * cout + ob * 16) * YP;
                const float *bb16 = bias ? bias + ob * 16 : NULL;
#if defined(OIALR_HOT_CLONES)
                if (avx512) {
                    block_out_v16(yb, obuf, bb16, gp, YP, add);
                    continue;
                }
#endif
                for (int o = 0; o < 16; o++) {
                    float *y = yb + (size_t)o * YP + (size_t)gp->y0 * YW + gp->x0;
                    const float *r = obuf + (size_t)o * gp->nq;
                    const float bb = bb16 ? bb16[o] : 0.0f;
                    for (int h = 0; h < OH; h++) {
                        const float *rr = r + (size_t)h * Wq;
                        float *yy = y + (size_t)h * ys * YW;
                        if (!add && ys == 1)
                            for (int x = 0; x < OW; x++) yy[x] = rr[x] + bb;
                        else if (!add)
                            for (int x = 0; x < OW; x++) yy[(size_t)x * ys] = rr[x] + bb;
                        else if (ys == 1)
                            for (int x = 0; x < OW; x++) yy[x] += rr[x];
                        else
                            for (int x = 0; x < OW; x++) yy[(size_t)x * ys] += rr[x];
                    }
                }
            }
        }
    }
}

static void forward_share(void *ctx, int t, int nt)
{
    const conv_job *j = ctx;
    const conv2d_dims *d = j->d;
    const int OC = d->OC, nbmax = conv2d_chunk(d, j->B);
    const int K = d->C * d->KH * d->KW;
    const size_t P = (size_t)d->OH * d->OW, inS = (size_t)d->C * d->H * d->W, outS = (size_t)OC * P;
    float *col = j->scratch + (size_t)t * thread_floats(d, j->B), *tmp = col + (size_t)K * nbmax * P;
    int lo, hi;
    nn_share(j->B, t, nt, &lo, &hi);
    if (j->wp) {
        const dir_geom g = dir_fwd_geom(d);
        direct_run(j->out, j->inp, j->wp, j->b, d->C, OC, 0, col + gemm_floats(d, nbmax), &g, 1, lo, hi);
        return;
    }
    for (int s0 = lo; s0 < hi; s0 += nbmax) {
        int nb = hi - s0 < nbmax ? hi - s0 : nbmax;
        const size_t ld = (size_t)nb * P;
        im2col(col, j->inp + (size_t)s0 * inS, d, nb);
        /* with one sample, the product lands in out directly */
        float *dst = nb == 1 && !j->b ? j->out + (size_t)s0 * outS : tmp;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)ld, K, 1.0f, j->w, K, col, (int)ld, 0.0f,
                    dst, (int)ld);
        if (dst != tmp) continue;
        /* tmp[oc][s*P+p] -> out[s0+s][oc][p] (+ bias) */
        for (int s = 0; s < nb; s++) {
            float *o = j->out + (size_t)(s0 + s) * outS;
            for (int oc = 0; oc < OC; oc++) {
                const float *tt = tmp + (size_t)oc * ld + (size_t)s * P;
                float *oo = o + (size_t)oc * P;
                if (j->b) {
                    const float bb = j->b[oc];
                    for (size_t p = 0; p < P; p++) oo[p] = tt[p] + bb;
                } else {
                    memcpy(oo, tt, sizeof(float) * P);
                }
            }
        }
    }
}

static int conv_threads(const conv2d_dims *d, int B)
{
    int nt = nn_threads(), nc = (B + conv2d_chunk(d, B) - 1) / conv2d_chunk(d, B);
    if (direct_fwd(d) || direct_dw(d)) nc = B; /* the direct kernels go sample by sample */
    return nt < nc ? nt : nc;
}

static float *packed_area(float *scratch, const conv2d_dims *d, int B)
{
    return scratch + (size_t)NN_MAX_THREADS * thread_floats(d, B);
}

void conv2d_forward(float *out, const float *inp, const float *w, const float *b, float *scratch,
                    const conv2d_dims *d, int B)
{
    conv_job j = {out, NULL, NULL, NULL, inp, w, b, NULL, scratch, NULL, d, B, 0};
    if (direct_fwd(d)) {
        float *wp = packed_area(scratch, d, B);
        pack_fwd(wp, w, d);
        j.wp = wp;
    }
    nn_parallel(forward_share, &j, conv_threads(d, B));
}

static void backward_share(void *ctx, int t, int nt)
{
    const conv_job *j = ctx;
    const conv2d_dims *d = j->d;
    const int OC = d->OC, nbmax = conv2d_chunk(d, j->B);
    const int K = d->C * d->KH * d->KW;
    const size_t P = (size_t)d->OH * d->OW, inS = (size_t)d->C * d->H * d->W, outS = (size_t)OC * P;
    float *col = j->scratch + (size_t)t * thread_floats(d, j->B), *tmp = col + (size_t)K * nbmax * P;
    /* thread 0 accumulates into dw, db; the others into their own, summed after */
    float *dw = j->dw, *db = j->db;
    if (t > 0) {
        float *priv = tmp + (size_t)OC * nbmax * P;
        dw = j->dw ? priv : NULL;
        db = j->db ? priv + (size_t)OC * K : NULL;
        memset(priv, 0, sizeof(float) * ((size_t)OC * K + (size_t)OC));
    }
    int lo, hi;
    nn_share(j->B, t, nt, &lo, &hi);
    const int ddw = dw && direct_dw(d), gemm_dw = dw && !ddw;
    if (ddw) { /* the weight gradient, group by group (dw_direct) */
        const int G = dw_group_size(d, j->B);
        const dir_geom g = dir_group(dir_fwd_geom(d), G);
        float *xb = col + gemm_floats(d, nbmax), *gb = xb + (size_t)d->C * g.lc;
        memset(xb, 0, sizeof(float) * ((size_t)d->C * g.lc + (size_t)OC * g.ps));
        for (int s0 = lo; s0 < hi; s0 += G) {
            const int n = hi - s0 < G ? hi - s0 : G;
            dw_gather(xb, gb, j->inp, j->dout, d, &g, s0, n);
            dw_direct(dw, xb, gb, d, &g, n);
        }
    }
    if (db)
        for (int s = lo; s < hi; s++)
            for (int oc = 0; oc < OC; oc++) {
                const float *gg = j->dout + (size_t)s * outS + (size_t)oc * P;
                float acc = 0.0f;
                for (size_t p = 0; p < P; p++) acc += gg[p];
                db[oc] += acc;
            }
    if (!gemm_dw && !j->dinp) return;
    for (int s0 = lo; s0 < hi; s0 += nbmax) {
        int nb = hi - s0 < nbmax ? hi - s0 : nbmax;
        const size_t ld = (size_t)nb * P;
        /* dout[s0+s][oc][p] -> tmp[oc][s*P+p] for the GEMMs (in place when nb == 1) */
        const float *g0 = j->dout + (size_t)s0 * outS;
        const float *gm = g0;
        if (nb > 1 && (gemm_dw || !j->wp)) {
            for (int s = 0; s < nb; s++)
                for (int oc = 0; oc < OC; oc++)
                    memcpy(tmp + (size_t)oc * ld + (size_t)s * P, g0 + (size_t)s * outS + (size_t)oc * P,
                           sizeof(float) * P);
            gm = tmp;
        }
        if (gemm_dw) { /* a frozen weight (dw NULL) needs neither the product nor the im2col */
            im2col(col, j->inp + (size_t)s0 * inS, d, nb);
            /* dw[OC,K] += g[OC,ld] @ col[K,ld]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, K, (int)ld, 1.0f, gm, (int)ld, col, (int)ld,
                        1.0f, dw, K);
        }
        if (j->dinp && j->wp) {
            dir_geom g[4];
            const int ng = dir_dinp_geoms(d, g);
            direct_run(j->dinp, j->dout, j->wp, NULL, OC, d->C, !j->set, col + gemm_floats(d, nbmax), g, ng, s0,
                       s0 + nb);
        } else if (j->dinp) {
            /* dcol[K,ld] = w[OC,K]^T @ g[OC,ld], written over col */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)ld, OC, 1.0f, j->w, K, gm, (int)ld, 0.0f,
                        col, (int)ld);
            /* taps overlap: col2im adds, into zeros with set (the chunk's
             * slice, about to be hot, not a pass over the whole gradient) */
            if (j->set) memset(j->dinp + (size_t)s0 * inS, 0, sizeof(float) * (size_t)nb * inS);
            col2im_add(j->dinp + (size_t)s0 * inS, col, d, nb);
        }
    }
}

void conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                     float *scratch, const conv2d_dims *d, int B, int set)
{
    conv_job j = {NULL, dinp, dw, db, inp, w, NULL, dout, scratch, NULL, d, B, set};
    if (dinp && direct_dinp(d)) {
        float *wq = packed_area(scratch, d, B);
        pack_dinp(wq, w, d);
        j.wp = wq;
    }
    const int nt = conv_threads(d, B);
    nn_parallel(backward_share, &j, nt);
    const int nbmax = conv2d_chunk(d, B);
    const size_t K = (size_t)d->C * d->KH * d->KW, P = (size_t)d->OH * d->OW, OC = (size_t)d->OC;
    for (int t = 1; t < nt; t++) {
        const float *pw = scratch + (size_t)t * thread_floats(d, B) + (K + OC) * (size_t)nbmax * P;
        if (dw)
            for (size_t i = 0; i < OC * K; i++) dw[i] += pw[i];
        if (db)
            for (size_t i = 0; i < OC; i++) db[i] += pw[OC * K + i];
    }
}

// ---------------------------------------------------------------------------
// naive references

void conv2d_forward_naive(float *out, const float *inp, const float *w, const float *b, const conv2d_dims *d,
                          int B)
{
    const int C = d->C, H = d->H, W = d->W, OC = d->OC, KH = d->KH, KW = d->KW;
    for (int n = 0; n < B; n++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < d->OH; oh++)
                for (int ow = 0; ow < d->OW; ow++) {
                    float acc = b ? b[oc] : 0.0f;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int ih = oh * d->stride - d->pad + kh, iw = ow * d->stride - d->pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += inp[(((size_t)n * C + c) * H + ih) * W + iw] *
                                       w[(((size_t)oc * C + c) * KH + kh) * KW + kw];
                            }
                    out[(((size_t)n * OC + oc) * d->OH + oh) * d->OW + ow] = acc;
                }
}

void conv2d_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const conv2d_dims *d, int B)
{
    const int C = d->C, H = d->H, W = d->W, OC = d->OC, KH = d->KH, KW = d->KW;
    for (int n = 0; n < B; n++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < d->OH; oh++)
                for (int ow = 0; ow < d->OW; ow++) {
                    float g = dout[(((size_t)n * OC + oc) * d->OH + oh) * d->OW + ow];
                    if (db) db[oc] += g;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int ih = oh * d->stride - d->pad + kh, iw = ow * d->stride - d->pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                size_t ii = (((size_t)n * C + c) * H + ih) * W + iw;
                                size_t wi = (((size_t)oc * C + c) * KH + kh) * KW + kw;
                                if (dw) dw[wi] += g * inp[ii];
                                if (dinp) dinp[ii] += g * w[wi];
                            }
                }
}
