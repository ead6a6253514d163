/*
 * dense.c — fully connected layer, out[N,OC] = inp[N,C] @ w[OC,C]^T + b.
 * Fast path: three cblas_sgemm calls, or for the token layers of a ViT the
 * small-width kernel below; naive reference loops at the end.
 */
#include "nn/nn.h"
#include "nn/par.h"
#include "nn/vec16.h"

#include <cblas.h>

#include "base/hot.h"

/* Token layers (a ViT's N = B*T = 2176 rows of width 64..128) are many rows
 * of a small product, where OpenBLAS's own threads mostly spin; from
 * DENSE_PAR_ROWS rows on, the rows (forward, dinp) and the output features
 * (dw, db) are split across nn_threads() with single-threaded sgemm inside
 * (nn/par.h). Smaller N (an MLP's batch of 128) keeps OpenBLAS threading. */
#define DENSE_PAR_ROWS 512

// ---------------------------------------------------------------------------
// The small-width kernel: many rows (2176 tokens) of a product whose other
// sides are 64..128 wide. OpenBLAS packs both operands for every call, and
// at K = 64 its packing took 40% of a ViT step's sgemm time in perf. Here
// the narrow operand B (W transposed for the forward, packed once per call;
// W itself for the input gradient; the layer's input for the weight
// gradient, whose A = dout transposed is read with a k-stride) is read in
// place, row k of it as up to 4 vectors, and SG_R rows of the output
// accumulate in SG_R x 4 registers from broadcast elements of A. Built for
// AVX-512 only (OIALR_AVX512), used where nn_simd_avx512() says so.

#if defined(OIALR_HOT_CLONES)
#define SG_R 6         /* rows of a tile: 6 x 4 accumulators + 4 of B */
#define SG_PACK 16384  /* floats of W transposed on the caller's stack (64 KB) */

/* c[i*ldc + m] (+ bias[m]) (+)= sum over k < K of a[i*lda + k*ka] * b[k*ldb + m],
 * for i < NR (SG_R, 4, 2 or 1) and m < 16*NV */
static inline __attribute__((always_inline)) void sg_tile(float *restrict c, size_t ldc, const float *restrict a,
                                                          size_t lda, size_t ka, const float *restrict b,
                                                          size_t ldb, int K, const float *bias, int add,
                                                          const int NV, const int NR)
{
    v16 acc[SG_R][4];
#pragma GCC unroll 6
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[i][v] = (v16){0};
    for (int k = 0; k < K; k++) {
        v16 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) bv[v] = ld16(b + (size_t)k * ldb + 16 * v);
#pragma GCC unroll 6
        for (int i = 0; i < NR; i++) {
            const float x = a[i * lda + (size_t)k * ka];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] += x * bv[v];
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            float *d = c + i * ldc + 16 * v;
            v16 y = acc[i][v];
            if (bias) y += ld16(bias + 16 * v);
            if (add) y += ld16(d);
            st16(d, y);
        }
}

#define SG_TILE(NV, NR) sg_tile(cc, ldc, aa, lda, ka, bb, ldb, K, bias ? bias + m0 : NULL, add, NV, NR)
#define SG_NV(NR)                                                                                                 \
    do {                                                                                                           \
        if (nv == 4) SG_TILE(4, NR);                                                                               \
        else if (nv == 3) SG_TILE(3, NR);                                                                          \
        else if (nv == 2) SG_TILE(2, NR);                                                                          \
        else SG_TILE(1, NR);                                                                                       \
    } while (0)
/* the same over n rows and M columns (a multiple of 16) */
OIALR_AVX512 static void small_gemm(float *c, size_t ldc, const float *a, size_t lda, size_t ka, const float *b,
                                    size_t ldb, int n, int K, int M, const float *bias, int add)
{
    for (int r = 0; r < n; r += SG_R) {
        const int nr = n - r < SG_R ? n - r : SG_R;
        for (int m0 = 0; m0 < M; m0 += 64) {
            const int nv = M - m0 >= 64 ? 4 : (M - m0) / 16;
            /* a full tile, or the rest as tiles of 4, 2 and 1 rows (single
             * rows alone made the weight gradient's last rows 4 times
             * slower per element) */
            for (int i = 0, ni; i < nr; i += ni) {
                ni = nr - i >= SG_R ? SG_R : nr - i >= 4 ? 4 : nr - i >= 2 ? 2 : 1;
                float *cc = c + (size_t)(r + i) * ldc + m0;
                const float *aa = a + (size_t)(r + i) * lda, *bb = b + m0;
                if (ni == SG_R) SG_NV(SG_R);
                else if (ni == 4) SG_NV(4);
                else if (ni == 2) SG_NV(2);
                else SG_NV(1);
            }
        }
    }
}
#undef SG_NV
#undef SG_TILE
#endif

typedef struct dense_job {
    float *out, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout;
    const float *wt; /* forward: W transposed for small_gemm, or NULL (sgemm) */
    int N, C, OC;
    int set; /* dinp = instead of += */
} dense_job;

#if defined(OIALR_HOT_CLONES)
/* the small-width kernel for N rows of C -> OC (see above) */
static int use_small(int N, int C, int OC) {
    return N >= DENSE_PAR_ROWS && C % 16 == 0 && OC % 16 == 0 && (size_t)C * OC <= SG_PACK && nn_simd_avx512();
}
#endif

/* rows of the forward; wt: W transposed (small_gemm), or NULL (sgemm) */
static void forward_rows(float *out, const float *inp, const float *w, const float *wt, const float *b, int N,
                         int C, int OC) {
#if defined(OIALR_HOT_CLONES)
    if (wt) {
        small_gemm(out, (size_t)OC, inp, (size_t)C, 1, wt, (size_t)OC, N, C, OC, b, 0);
        return;
    }
#else
    (void)wt;
#endif
    if (b) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = b[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, b ? 1.0f : 0.0f,
                out, OC);
}

static void forward_share(void *ctx, int t, int nt) {
    const dense_job *j = ctx;
    int lo, hi;
    nn_share(j->N, t, nt, &lo, &hi);
    if (hi > lo)
        forward_rows(j->out + (size_t)lo * j->OC, j->inp + (size_t)lo * j->C, j->w, j->wt, j->b, hi - lo, j->C,
                     j->OC);
}

static int dense_threads(int N) {
    return N >= DENSE_PAR_ROWS ? nn_threads() : 1;
}

void dense_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    const float *wtp = NULL;
#if defined(OIALR_HOT_CLONES)
    float wt[SG_PACK]; /* wt[c][o] = w[o][c], once for all threads' rows */
    if (use_small(N, C, OC)) {
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) wt[(size_t)c * OC + o] = w[(size_t)o * C + c];
        wtp = wt;
    }
#endif
    int nt = dense_threads(N);
    if (nt <= 1) {
        forward_rows(out, inp, w, wtp, b, N, C, OC);
        return;
    }
    dense_job j = {out, NULL, NULL, NULL, inp, w, b, NULL, wtp, N, C, OC, 0};
    nn_parallel(forward_share, &j, nt);
}

/* db[o] += sum over n < N of d[n*ld + o] for o < M: 16 columns at a time
 * summed in registers, 4 rows apart (added into db row by row, each row's
 * store waited on the previous one: 2.7% of a ViT training run in perf;
 * one register chain: 1.0%) */
OIALR_HOT static void col_sums_add(float *restrict db, const float *restrict d, int N, size_t ld, int M) {
    int o = 0;
    for (; o + 16 <= M; o += 16) {
        v16 a[4] = {{0}, {0}, {0}, {0}};
        int n = 0;
        for (; n + 4 <= N; n += 4)
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) a[u] += ld16(d + (size_t)(n + u) * ld + o);
        for (; n < N; n++) a[0] += ld16(d + (size_t)n * ld + o);
        st16(db + o, ld16(db + o) + ((a[0] + a[1]) + (a[2] + a[3])));
    }
    for (; o < M; o++) {
        float a = db[o];
        for (int n = 0; n < N; n++) a += d[(size_t)n * ld + o];
        db[o] = a;
    }
}

/* dinp rows [n0, n1) and dw, db rows [o0, o1) */
static void backward_part(const dense_job *j, int n0, int n1, int o0, int o1) {
    const int N = j->N, C = j->C, OC = j->OC;
    /* dinp[N,C] += dout[N,OC] @ w[OC,C] */
#if defined(OIALR_HOT_CLONES)
    if (use_small(N, C, OC) && j->dinp && n1 > n0)
        small_gemm(j->dinp + (size_t)n0 * C, (size_t)C, j->dout + (size_t)n0 * OC, (size_t)OC, 1, j->w, (size_t)C,
                   n1 - n0, OC, C, NULL, !j->set);
    else
#endif
    if (j->dinp && n1 > n0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n1 - n0, C, OC, 1.0f, j->dout + (size_t)n0 * OC, OC,
                    j->w, C, j->set ? 0.0f : 1.0f, j->dinp + (size_t)n0 * C, C);
    if (o1 <= o0) return;
    /* dw[OC,C] += dout^T @ inp */
#if defined(OIALR_HOT_CLONES)
    if (use_small(N, C, OC))
        small_gemm(j->dw + (size_t)o0 * C, (size_t)C, j->dout + o0, 1, (size_t)OC, j->inp, (size_t)C, o1 - o0, N, C,
                   NULL, 1);
    else
#endif
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, C, N, 1.0f, j->dout + o0, OC, j->inp, C, 1.0f,
                j->dw + (size_t)o0 * C, C);
    if (j->db) col_sums_add(j->db + o0, j->dout + o0, N, (size_t)OC, o1 - o0);
}

static void backward_share(void *ctx, int t, int nt) {
    const dense_job *j = ctx;
    int n0, n1, o0, o1;
    nn_share(j->N, t, nt, &n0, &n1);
    nn_share(j->OC, t, nt, &o0, &o1);
    backward_part(j, n0, n1, o0, o1);
}

void dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                    const float *w, int N, int C, int OC, int set) {
    dense_job j = {NULL, dinp, dw, db, inp, w, NULL, dout, NULL, N, C, OC, set};
    int nt = dense_threads(N);
    if (nt <= 1)
        backward_part(&j, 0, N, 0, OC);
    else
        nn_parallel(backward_share, &j, nt);
}

void dense_forward_naive(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * w[(size_t)o * C + c];
            out[(size_t)n * OC + o] = (float)s;
        }
}

void dense_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float d = dout[(size_t)n * OC + o];
            if (db) db[o] += d;
            for (int c = 0; c < C; c++) {
                dw[(size_t)o * C + c] += d * inp[(size_t)n * C + c];
                if (dinp) dinp[(size_t)n * C + c] += d * w[(size_t)o * C + c];
            }
        }
}
