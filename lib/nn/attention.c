/*
 * nn/attention.c — softmax(q kᵀ/sqrt(HS)) v per head, forward and backward
 * (see nn/attention.h).
 *
 * Fast path: one strided cblas_sgemm per (batch, head) for each of the
 * products, reading the heads in place (leading dimension C), so nothing is
 * packed or transposed by hand. Backward, with P = att and G = dout:
 *     dP = G vᵀ;  dS = P ∘ (dP - rowsum(P ∘ dP)) / sqrt(HS)
 *     dq += dS k;  dk += dSᵀ q;  dv += Pᵀ G
 */
#include "nn/attention.h"

#include <cblas.h>
#include <math.h>

#include "nn/par.h"

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

/* The (batch, head) problems are independent: batches are split across
 * nn_threads() (nn/par.h), each running its heads with single-threaded sgemm
 * (OpenBLAS takes its small-matrix path at T x T x HS = 17 x 17 x 16). */
#define ATT_PAR_MIN (1 << 16) /* multiply-adds of one forward */

typedef struct att_job {
    float *out, *att, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *catt;
    int B, T, NH, HS;
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
    for (int b = b0; b < b1; b++)
        for (int h = 0; h < NH; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * HS;
            float *a = j->att + ((size_t)b * NH + h) * T * T;
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

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int T,
                       int NH, int HS)
{
    att_job j = {.out = out, .att = att, .q = q, .k = k, .v = v, .B = B, .T = T, .NH = NH, .HS = HS};
    nn_parallel(forward_share, &j, att_threads(B, T, NH, HS));
}

static void backward_range(const att_job *j, int b0, int b1)
{
    const int T = j->T, NH = j->NH, HS = j->HS, C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int b = b0; b < b1; b++)
        for (int h = 0; h < NH; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * HS;
            const float *a = j->catt + ((size_t)b * NH + h) * T * T;
            float *ds = j->scratch + ((size_t)b * NH + h) * T * T;
            if (j->dv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, a, T, j->dout + off, C, 1.0f,
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
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, ds, T, j->k + off, C, 1.0f,
                            j->dq + off, C);
            if (j->dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, ds, T, j->q + off, C, 1.0f,
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
                        const float *k, const float *v, const float *att, int B, int T, int NH, int HS)
{
    att_job j = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .dout = dout, .q = q, .k = k, .v = v,
                 .catt = att, .B = B, .T = T, .NH = NH, .HS = HS};
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
