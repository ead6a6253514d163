/*
 * dense.c — fully connected layer, out[N,OC] = inp[N,C] @ w[OC,C]^T + b.
 * Fast path: three cblas_sgemm calls; naive reference loops below.
 */
#include "nn/nn.h"

#include <cblas.h>

void dense_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    if (b) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = b[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, b ? 1.0f : 0.0f,
                out, OC);
}

void dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                    const float *w, int N, int C, int OC) {
    /* dinp[N,C] += dout[N,OC] @ w[OC,C] */
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp,
                    C);
    /* dw[OC,C] += dout^T @ inp */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (db) {
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC;
            for (int o = 0; o < OC; o++) db[o] += d[o];
        }
    }
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
