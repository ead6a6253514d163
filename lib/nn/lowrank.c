/*
 * lowrank.c — the low-rank dense layer of nn/lowrank.h: three skinny sgemm
 * calls forward, three (or two without dinp) backward; naive references
 * that form W below.
 */
#include "nn/lowrank.h"

#include <cblas.h>
#include <stdlib.h>

size_t lowrank_scratch(int N, int R) { return 2 * (size_t)N * (size_t)R; }

void lowrank_forward(float *out, float *mid, float *scratch, const float *inp, const float *u, const float *s,
                     const float *v, const float *b, int N, int C, int OC, int R) {
    float *t2 = scratch; /* [N,R] */
    /* mid = inp @ v */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, R, C, 1.0f, inp, C, v, R, 0.0f, mid, R);
    /* t2 = mid @ sᵀ */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, R, R, 1.0f, mid, R, s, R, 0.0f, t2, R);
    /* out = t2 @ uᵀ + b */
    if (b) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = b[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, R, 1.0f, t2, R, u, R, b ? 1.0f : 0.0f, out, OC);
}

void lowrank_backward(float *dinp, float *ds, float *db, float *scratch, const float *dout, const float *mid,
                      const float *u, const float *s, const float *v, int N, int C, int OC, int R) {
    float *dt2 = scratch, *dmid = scratch + (size_t)N * R; /* [N,R] each */
    /* dt2 = dout @ u */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, R, OC, 1.0f, dout, OC, u, R, 0.0f, dt2, R);
    /* ds += dt2ᵀ @ mid   (t2 = mid sᵀ: dt2[n,i] mid[n,j] -> ds[i,j]) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, R, N, 1.0f, dt2, R, mid, R, 1.0f, ds, R);
    if (db) {
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC;
            for (int o = 0; o < OC; o++) db[o] += d[o];
        }
    }
    if (!dinp) return;
    /* dmid = dt2 @ s; dinp += dmid @ vᵀ */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, R, R, 1.0f, dt2, R, s, R, 0.0f, dmid, R);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, C, R, 1.0f, dmid, R, v, R, 1.0f, dinp, C);
}

// ---------------------------------------------------------------------------
// naive references. v's entry (c, j) is v[c*vr + j*vc]: (vr, vc) = (R, 1)
// for the dense v [C,R], (1, C) for the conv's vt [R,C] (C there is K).

/* W[OC,C] = u s vᵀ in double */
static double *form_w(const float *u, const float *s, const float *v, size_t vr, size_t vc, int C, int OC, int R) {
    double *w = calloc((size_t)OC * C, sizeof *w), *us = calloc((size_t)OC * R, sizeof *us);
    if (!w || !us) abort(); /* references are for the tests only */
    for (int o = 0; o < OC; o++)
        for (int j = 0; j < R; j++) {
            double a = 0;
            for (int i = 0; i < R; i++) a += (double)u[(size_t)o * R + i] * s[(size_t)i * R + j];
            us[(size_t)o * R + j] = a;
        }
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) {
            double a = 0;
            for (int j = 0; j < R; j++) a += us[(size_t)o * R + j] * v[(size_t)c * vr + (size_t)j * vc];
            w[(size_t)o * C + c] = a;
        }
    free(us);
    return w;
}

/* ds[R,R] += uᵀ dw v for dw[OC,C]: W = u s vᵀ is linear in s */
static void add_ut_dw_v(float *ds, const float *u, const double *dw, const float *v, size_t vr, size_t vc, int C,
                        int OC, int R) {
    double *t = calloc((size_t)OC * R, sizeof *t);
    if (!t) abort();
    for (int o = 0; o < OC; o++)
        for (int j = 0; j < R; j++) {
            double a = 0;
            for (int c = 0; c < C; c++) a += dw[(size_t)o * C + c] * v[(size_t)c * vr + (size_t)j * vc];
            t[(size_t)o * R + j] = a;
        }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++) {
            double a = 0;
            for (int o = 0; o < OC; o++) a += (double)u[(size_t)o * R + i] * t[(size_t)o * R + j];
            ds[(size_t)i * R + j] += (float)a;
        }
    free(t);
}

void lowrank_forward_naive(float *out, const float *inp, const float *u, const float *s, const float *v,
                           const float *b, int N, int C, int OC, int R) {
    double *w = form_w(u, s, v, (size_t)R, 1, C, OC, R);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double a = b ? b[o] : 0.0;
            for (int c = 0; c < C; c++) a += (double)inp[(size_t)n * C + c] * w[(size_t)o * C + c];
            out[(size_t)n * OC + o] = (float)a;
        }
    free(w);
}

void lowrank_backward_naive(float *dinp, float *ds, float *db, const float *dout, const float *inp, const float *u,
                            const float *s, const float *v, int N, int C, int OC, int R) {
    double *w = form_w(u, s, v, (size_t)R, 1, C, OC, R);
    double *dw = calloc((size_t)OC * C, sizeof *dw);
    if (!dw) abort();
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double d = dout[(size_t)n * OC + o];
            if (db) db[o] += (float)d;
            for (int c = 0; c < C; c++) {
                dw[(size_t)o * C + c] += d * inp[(size_t)n * C + c];
                if (dinp) dinp[(size_t)n * C + c] += (float)(d * w[(size_t)o * C + c]);
            }
        }
    add_ut_dw_v(ds, u, dw, v, (size_t)R, 1, C, OC, R);
    free(dw), free(w);
}
