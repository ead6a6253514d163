/*
 * lowrank.c — the low-rank layers of nn/lowrank.h. Dense: three skinny sgemm
 * calls forward, three (or two without dinp) backward. Conv: the Vᵀ conv
 * (nn/conv.c, OC = R) then one sgemm per sample forward; three per sample and
 * the Vᵀ conv's input gradient backward. Naive references that form W below.
 */
#include "nn/lowrank.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "nn/par.h"

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
// conv. Scratch, each part rounded up to 64 bytes:
//   conv[conv2d_scratch_size(Vᵀ conv, B)]  the Vᵀ conv's own
//   m[OC,R]                                u @ s, formed once per call
//   dt1[B,R,P]                             backward: the Vᵀ conv's dout
//   NN_MAX_THREADS slices of dt2[R,P], ds[R,R], db[OC]: one sample's
//   uᵀ dout, and the private ds, db of threads > 0 (summed after the join)

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* The Vᵀ conv: d with OC = R (conv2d_make asserts R >= 1). */
static conv2d_dims vt_dims(const conv2d_dims *d, int R) {
    return conv2d_make(d->C, d->H, d->W, R, d->KH, d->KW, d->stride, d->pad);
}

static size_t conv_slice(const conv2d_dims *d, int R) {
    return round16((size_t)R * d->OH * d->OW + (size_t)R * R + (size_t)d->OC);
}

typedef struct lrc_job {
    float *out, *dinp, *ds, *db;
    const float *mid, *dout, *u, *s, *b;
    float *m, *dt1, *thr; /* scratch parts */
    const conv2d_dims *d;
    int B, R;
} lrc_job;

/* Offsets of m, dt1 and the thread slices in the scratch. */
static void lrc_offsets(size_t off[3], const conv2d_dims *d, int B, int R) {
    conv2d_dims dv = vt_dims(d, R);
    off[0] = round16(conv2d_scratch_size(&dv, B));
    off[1] = off[0] + round16((size_t)d->OC * R);
    off[2] = off[1] + round16((size_t)B * R * d->OH * d->OW);
}

static lrc_job lrc_layout(float *scratch, const conv2d_dims *d, int B, int R) {
    size_t off[3];
    lrc_offsets(off, d, B, R);
    lrc_job j = {0};
    j.m = scratch + off[0], j.dt1 = scratch + off[1], j.thr = scratch + off[2];
    j.d = d, j.B = B, j.R = R;
    return j;
}

size_t lowrank_conv_scratch(const conv2d_dims *d, int B, int R) {
    size_t off[3];
    lrc_offsets(off, d, B, R);
    return off[2] + (size_t)NN_MAX_THREADS * conv_slice(d, R);
}

static int lrc_threads(int B) {
    int nt = nn_threads();
    return nt < B ? nt : B;
}

/* out[n] = m @ mid[n] (+ b) for t's share of the samples */
static void lrc_forward_share(void *ctx, int t, int nt) {
    const lrc_job *j = ctx;
    const int OC = j->d->OC, R = j->R, P = j->d->OH * j->d->OW;
    int lo, hi;
    nn_share(j->B, t, nt, &lo, &hi);
    for (int n = lo; n < hi; n++) {
        float *o = j->out + (size_t)n * OC * P;
        if (j->b)
            for (int oc = 0; oc < OC; oc++)
                for (int p = 0; p < P; p++) o[(size_t)oc * P + p] = j->b[oc];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, P, R, 1.0f, j->m, R, j->mid + (size_t)n * R * P,
                    P, j->b ? 1.0f : 0.0f, o, P);
    }
}

void lowrank_conv_forward(float *out, float *mid, float *scratch, const float *inp, const float *u, const float *s,
                          const float *vt, const float *b, const conv2d_dims *d, int B, int R) {
    conv2d_dims dv = vt_dims(d, R);
    lrc_job j = lrc_layout(scratch, d, B, R);
    j.out = out, j.mid = mid, j.b = b;
    /* mid = conv(inp, vt) */
    conv2d_forward(mid, inp, vt, NULL, scratch, &dv, B);
    /* m = u @ s */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->OC, R, R, 1.0f, u, R, s, R, 0.0f, j.m, R);
    nn_parallel(lrc_forward_share, &j, lrc_threads(B));
}

/* for t's share of the samples: dt2 = uᵀ dout[n]; ds += dt2 @ mid[n]ᵀ;
 * db += row sums of dout[n]; dt1[n] = sᵀ @ dt2 */
static void lrc_backward_share(void *ctx, int t, int nt) {
    const lrc_job *j = ctx;
    const int OC = j->d->OC, R = j->R, P = j->d->OH * j->d->OW;
    float *dt2 = j->thr + (size_t)t * conv_slice(j->d, R);
    /* thread 0 accumulates into ds, db; the others into their own, summed after */
    float *ds = j->ds, *db = j->db;
    if (t > 0) {
        ds = dt2 + (size_t)R * P;
        db = j->db ? ds + (size_t)R * R : NULL;
        memset(ds, 0, sizeof(float) * ((size_t)R * R + (size_t)OC));
    }
    int lo, hi;
    nn_share(j->B, t, nt, &lo, &hi);
    for (int n = lo; n < hi; n++) {
        const float *g = j->dout + (size_t)n * OC * P, *t1 = j->mid + (size_t)n * R * P;
        /* dt2[R,P] = uᵀ g */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, P, OC, 1.0f, j->u, R, g, P, 0.0f, dt2, P);
        /* ds += dt2 @ t1ᵀ   (out = u (s t1): dt2[i,p] t1[j,p] -> ds[i,j]) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, R, P, 1.0f, dt2, P, t1, P, 1.0f, ds, R);
        if (db)
            for (int oc = 0; oc < OC; oc++) {
                const float *gg = g + (size_t)oc * P;
                float acc = 0.0f;
                for (int p = 0; p < P; p++) acc += gg[p];
                db[oc] += acc;
            }
        if (j->dinp) /* dt1[n] = sᵀ dt2, the Vᵀ conv's dout */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, P, R, 1.0f, j->s, R, dt2, P, 0.0f,
                        j->dt1 + (size_t)n * R * P, P);
    }
}

void lowrank_conv_backward(float *dinp, float *ds, float *db, float *scratch, const float *dout, const float *mid,
                           const float *inp, const float *u, const float *s, const float *vt, const conv2d_dims *d,
                           int B, int R) {
    conv2d_dims dv = vt_dims(d, R);
    lrc_job j = lrc_layout(scratch, d, B, R);
    j.dinp = dinp, j.ds = ds, j.db = db, j.mid = mid, j.dout = dout, j.u = u, j.s = s;
    const int nt = lrc_threads(B);
    nn_parallel(lrc_backward_share, &j, nt);
    const size_t RP = (size_t)R * d->OH * d->OW, RR = (size_t)R * R;
    for (int t = 1; t < nt; t++) {
        const float *pds = j.thr + (size_t)t * conv_slice(d, R) + RP, *pdb = pds + RR;
        for (size_t i = 0; i < RR; i++) ds[i] += pds[i];
        if (db)
            for (int oc = 0; oc < d->OC; oc++) db[oc] += pdb[oc];
    }
    /* dinp += the Vᵀ conv's input gradient; vt is frozen (dw NULL) */
    if (dinp) conv2d_backward(dinp, NULL, NULL, j.dt1, inp, vt, scratch, &dv, B, 0);
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

/* The full conv weight W[OC,K] = u s vᵀ (v = vtᵀ), rounded to float as conv2d_*_naive take it. */
static float *form_w_conv(const float *u, const float *s, const float *vt, int K, int OC, int R) {
    double *w = form_w(u, s, vt, 1, (size_t)K, K, OC, R);
    float *wf = malloc((size_t)OC * K * sizeof *wf);
    if (!wf) abort();
    for (size_t i = 0; i < (size_t)OC * K; i++) wf[i] = (float)w[i];
    free(w);
    return wf;
}

void lowrank_conv_forward_naive(float *out, const float *inp, const float *u, const float *s, const float *vt,
                                const float *b, const conv2d_dims *d, int B, int R) {
    const int K = d->C * d->KH * d->KW;
    float *w = form_w_conv(u, s, vt, K, d->OC, R);
    conv2d_forward_naive(out, inp, w, b, d, B);
    free(w);
}

void lowrank_conv_backward_naive(float *dinp, float *ds, float *db, const float *dout, const float *inp,
                                 const float *u, const float *s, const float *vt, const conv2d_dims *d, int B,
                                 int R) {
    const int K = d->C * d->KH * d->KW, OC = d->OC;
    float *w = form_w_conv(u, s, vt, K, OC, R), *dw = calloc((size_t)OC * K, sizeof *dw);
    double *dwd = malloc((size_t)OC * K * sizeof *dwd);
    if (!dw || !dwd) abort();
    conv2d_backward_naive(dinp, dw, db, dout, inp, w, d, B);
    for (size_t i = 0; i < (size_t)OC * K; i++) dwd[i] = dw[i];
    add_ut_dw_v(ds, u, dwd, vt, 1, (size_t)K, K, OC, R);
    free(dwd), free(dw), free(w);
}
