/*
 * dense.c — fully connected layer, out[N,OC] = inp[N,C] @ w[OC,C]^T + b.
 * Fast path: three cblas_sgemm calls; naive reference loops below.
 */
#include "nn/nn.h"
#include "nn/par.h"

#include <cblas.h>

/* Token layers (a ViT's N = B*T = 2176 rows of width 64..128) are many rows
 * of a small product, where OpenBLAS's own threads mostly spin; from
 * DENSE_PAR_ROWS rows on, the rows (forward, dinp) and the output features
 * (dw, db) are split across nn_threads() with single-threaded sgemm inside
 * (nn/par.h). Smaller N (an MLP's batch of 128) keeps OpenBLAS threading. */
#define DENSE_PAR_ROWS 512

typedef struct dense_job {
    float *out, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout;
    int N, C, OC;
} dense_job;

static void forward_rows(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
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
        forward_rows(j->out + (size_t)lo * j->OC, j->inp + (size_t)lo * j->C, j->w, j->b, hi - lo, j->C, j->OC);
}

static int dense_threads(int N) {
    return N >= DENSE_PAR_ROWS ? nn_threads() : 1;
}

void dense_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    int nt = dense_threads(N);
    if (nt <= 1) {
        forward_rows(out, inp, w, b, N, C, OC);
        return;
    }
    dense_job j = {out, NULL, NULL, NULL, inp, w, b, NULL, N, C, OC};
    nn_parallel(forward_share, &j, nt);
}

/* dinp rows [n0, n1) and dw, db rows [o0, o1) */
static void backward_part(const dense_job *j, int n0, int n1, int o0, int o1) {
    const int N = j->N, C = j->C, OC = j->OC;
    /* dinp[N,C] += dout[N,OC] @ w[OC,C] */
    if (j->dinp && n1 > n0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n1 - n0, C, OC, 1.0f, j->dout + (size_t)n0 * OC, OC,
                    j->w, C, 1.0f, j->dinp + (size_t)n0 * C, C);
    if (o1 <= o0) return;
    /* dw[OC,C] += dout^T @ inp */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, C, N, 1.0f, j->dout + o0, OC, j->inp, C, 1.0f,
                j->dw + (size_t)o0 * C, C);
    if (j->db) {
        for (int n = 0; n < N; n++) {
            const float *d = j->dout + (size_t)n * OC;
            for (int o = o0; o < o1; o++) j->db[o] += d[o];
        }
    }
}

static void backward_share(void *ctx, int t, int nt) {
    const dense_job *j = ctx;
    int n0, n1, o0, o1;
    nn_share(j->N, t, nt, &n0, &n1);
    nn_share(j->OC, t, nt, &o0, &o1);
    backward_part(j, n0, n1, o0, o1);
}

void dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                    const float *w, int N, int C, int OC) {
    dense_job j = {NULL, dinp, dw, db, inp, w, NULL, dout, N, C, OC};
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
