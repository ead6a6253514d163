/*
 * nn/embed.c — patch embedding (patchify + one sgemm), class token, position
 * embedding and token pooling (see nn/embed.h).
 */
#include "nn/embed.h"

#include <string.h>

#include "nn/nn.h"

#include "oialr/base.h"

size_t patch_embed_scratch_size(int B, int C, int H, int W, int P)
{
    OIALR_ASSERT(P > 0 && H >= P && W >= P);
    return 2 * (size_t)B * (size_t)(H / P) * (size_t)(W / P) * (size_t)C * P * P; /* X and dX */
}

/* X[(b*NP + gh*GW + gw)][(c*P + ph)*P + pw] = inp[b][c][gh*P+ph][gw*P+pw] */
static void patchify(float *X, const float *inp, int B, int C, int H, int W, int P)
{
    const int GH = H / P, GW = W / P;
    const size_t CPP = (size_t)C * P * P;
    for (int b = 0; b < B; b++)
        for (int gh = 0; gh < GH; gh++)
            for (int gw = 0; gw < GW; gw++) {
                float *x = X + ((size_t)b * GH * GW + (size_t)gh * GW + gw) * CPP;
                for (int c = 0; c < C; c++)
                    for (int ph = 0; ph < P; ph++) {
                        const float *src = inp + (((size_t)b * C + c) * H + (size_t)gh * P + ph) * W + (size_t)gw * P;
                        memcpy(x + ((size_t)c * P + ph) * P, src, sizeof(float) * (size_t)P);
                    }
            }
}

static void unpatchify_add(float *dinp, const float *X, int B, int C, int H, int W, int P)
{
    const int GH = H / P, GW = W / P;
    const size_t CPP = (size_t)C * P * P;
    for (int b = 0; b < B; b++)
        for (int gh = 0; gh < GH; gh++)
            for (int gw = 0; gw < GW; gw++) {
                const float *x = X + ((size_t)b * GH * GW + (size_t)gh * GW + gw) * CPP;
                for (int c = 0; c < C; c++)
                    for (int ph = 0; ph < P; ph++) {
                        float *dst = dinp + (((size_t)b * C + c) * H + (size_t)gh * P + ph) * W + (size_t)gw * P;
                        const float *s = x + ((size_t)c * P + ph) * P;
                        for (int pw = 0; pw < P; pw++) dst[pw] += s[pw];
                    }
            }
}

/* After patchify the embedding is a dense layer over N = B*NP rows of
 * K = C*P*P features, so it takes dense_forward/backward's row split across
 * threads (nn/nn.h, nn/par.h). */
void patch_embed_forward(float *out, const float *inp, const float *w, const float *b, float *scratch, int B,
                         int C, int H, int W, int P, int D)
{
    const int N = B * (H / P) * (W / P), K = C * P * P;
    patchify(scratch, inp, B, C, H, W, P);
    dense_forward(out, scratch, w, b, N, K, D);
}

void patch_embed_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, float *scratch, int B, int C, int H, int W, int P, int D)
{
    const int N = B * (H / P) * (W / P), K = C * P * P;
    float *X = scratch, *dX = dinp ? scratch + (size_t)N * K : NULL;
    patchify(X, inp, B, C, H, W, P);
    if (dX) memset(dX, 0, sizeof(float) * (size_t)N * K);
    /* dw[D,K] += doutᵀ[D,N] @ X[N,K]; dX[N,K] = dout[N,D] @ w[D,K]; db */
    dense_backward(dX, dw, db, dout, X, w, N, K, D, 0);
    if (dX) unpatchify_add(dinp, dX, B, C, H, W, P);
}

void patch_embed_forward_naive(float *out, const float *inp, const float *w, const float *b, int B, int C,
                               int H, int W, int P, int D)
{
    const int GH = H / P, GW = W / P;
    for (int n = 0; n < B; n++)
        for (int gh = 0; gh < GH; gh++)
            for (int gw = 0; gw < GW; gw++)
                for (int d = 0; d < D; d++) {
                    double acc = b ? b[d] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int ph = 0; ph < P; ph++)
                            for (int pw = 0; pw < P; pw++)
                                acc += (double)inp[(((size_t)n * C + c) * H + gh * P + ph) * W + gw * P + pw] *
                                       w[(((size_t)d * C + c) * P + ph) * P + pw];
                    out[(((size_t)n * GH + gh) * GW + gw) * D + d] = (float)acc;
                }
}

void patch_embed_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                const float *w, int B, int C, int H, int W, int P, int D)
{
    const int GH = H / P, GW = W / P;
    for (int n = 0; n < B; n++)
        for (int gh = 0; gh < GH; gh++)
            for (int gw = 0; gw < GW; gw++)
                for (int d = 0; d < D; d++) {
                    float g = dout[(((size_t)n * GH + gh) * GW + gw) * D + d];
                    if (db) db[d] += g;
                    for (int c = 0; c < C; c++)
                        for (int ph = 0; ph < P; ph++)
                            for (int pw = 0; pw < P; pw++) {
                                size_t ii = (((size_t)n * C + c) * H + gh * P + ph) * W + gw * P + pw;
                                size_t wi = (((size_t)d * C + c) * P + ph) * P + pw;
                                dw[wi] += g * inp[ii];
                                if (dinp) dinp[ii] += g * w[wi];
                            }
                }
}

// ---------------------------------------------------------------------------
// class token, position embedding, token pooling

void cls_token_forward(float *out, const float *inp, const float *cls, int B, int T, int D)
{
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * (T + 1) * D;
        memcpy(o, cls, sizeof(float) * (size_t)D);
        memcpy(o + D, inp + (size_t)b * T * D, sizeof(float) * (size_t)T * D);
    }
}

void cls_token_backward(float *dinp, float *dcls, const float *dout, int B, int T, int D)
{
    for (int b = 0; b < B; b++) {
        const float *g = dout + (size_t)b * (T + 1) * D;
        if (dcls)
            for (int j = 0; j < D; j++) dcls[j] += g[j];
        if (dinp) {
            float *dx = dinp + (size_t)b * T * D;
            for (size_t i = 0; i < (size_t)T * D; i++) dx[i] += g[D + i];
        }
    }
}

void pos_embed_forward(float *out, const float *inp, const float *pos, int B, int T, int D)
{
    const size_t n = (size_t)T * D;
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * n;
        float *o = out + (size_t)b * n;
        for (size_t i = 0; i < n; i++) o[i] = x[i] + pos[i];
    }
}

void pos_embed_backward(float *dinp, float *dpos, const float *dout, int B, int T, int D)
{
    const size_t n = (size_t)T * D;
    for (int b = 0; b < B; b++) {
        const float *g = dout + (size_t)b * n;
        if (dpos)
            for (size_t i = 0; i < n; i++) dpos[i] += g[i];
        if (dinp) {
            float *dx = dinp + (size_t)b * n;
            for (size_t i = 0; i < n; i++) dx[i] += g[i];
        }
    }
}

void token_mean_forward(float *out, const float *inp, int B, int T, int D)
{
    const float inv = 1.0f / (float)T;
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * D;
        memset(o, 0, sizeof(float) * (size_t)D);
        for (int t = 0; t < T; t++) {
            const float *x = inp + ((size_t)b * T + t) * D;
            for (int j = 0; j < D; j++) o[j] += x[j];
        }
        for (int j = 0; j < D; j++) o[j] *= inv;
    }
}

void token_mean_backward(float *dinp, const float *dout, int B, int T, int D)
{
    const float inv = 1.0f / (float)T;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *dx = dinp + ((size_t)b * T + t) * D;
            const float *g = dout + (size_t)b * D;
            for (int j = 0; j < D; j++) dx[j] += g[j] * inv;
        }
}

void token_pick_forward(float *out, const float *inp, int t, int B, int T, int D)
{
    OIALR_ASSERT(t >= 0 && t < T);
    for (int b = 0; b < B; b++) memcpy(out + (size_t)b * D, inp + ((size_t)b * T + t) * D, sizeof(float) * (size_t)D);
}

void token_pick_backward(float *dinp, const float *dout, int t, int B, int T, int D)
{
    OIALR_ASSERT(t >= 0 && t < T);
    for (int b = 0; b < B; b++) {
        float *dx = dinp + ((size_t)b * T + t) * D;
        const float *g = dout + (size_t)b * D;
        for (int j = 0; j < D; j++) dx[j] += g[j];
    }
}
