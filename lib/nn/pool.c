/*
 * nn/pool.c — max / average / global average pooling (see nn/pool.h).
 *
 * The fast kernels clamp each window to the image once per output pixel;
 * the naive ones test every tap. Pooling is memory-bound and a small part
 * of a step, so there is nothing to gain from BLAS here.
 */
#include "nn/pool.h"

#include <float.h>

#include "oialr/base.h"

int pool_out_size(int n, int K, int S, int pad)
{
    OIALR_ASSERT(n > 0 && K > 0 && S > 0 && pad >= 0 && 2 * pad <= K);
    int o = (n + 2 * pad - K) / S + 1;
    OIALR_ASSERT(n + 2 * pad >= K && o >= 1);
    return o;
}

// ---------------------------------------------------------------------------
// max pool

/* Input range [*lo, *hi) of output position o's window, clipped to the
 * n input pixels (padding contributes nothing to max or sum). */
static inline void pool_window(int o, int K, int S, int pad, int n, int *lo, int *hi)
{
    *lo = o * S - pad;
    *hi = *lo + K;
    if (*lo < 0) *lo = 0;
    if (*hi > n) *hi = n;
}

void maxpool2d_forward(float *out, int32_t *argmax, const float *inp, int BC, int H, int W, int K, int S,
                       int pad)
{
    const int OH = pool_out_size(H, K, S, pad), OW = pool_out_size(W, K, S, pad);
    for (int bc = 0; bc < BC; bc++) {
        const float *x = inp + (size_t)bc * H * W;
        float *o = out + (size_t)bc * OH * OW;
        int32_t *a = argmax + (size_t)bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int h0, h1;
            pool_window(oh, K, S, pad, H, &h0, &h1);
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                pool_window(ow, K, S, pad, W, &w0, &w1);
                float m = -FLT_MAX;
                int32_t mi = h0 * W + w0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        float v = x[ih * W + iw];
                        /* v != v: a NaN wins, as in PyTorch, so it propagates */
                        if (v > m || v != v) {
                            m = v;
                            mi = ih * W + iw;
                            if (v != v) goto done;
                        }
                    }
            done:
                o[oh * OW + ow] = m;
                a[oh * OW + ow] = mi;
            }
        }
    }
}

void maxpool2d_backward(float *dinp, const float *dout, const int32_t *argmax, int BC, int H, int W, int K,
                        int S, int pad)
{
    const size_t n = (size_t)pool_out_size(H, K, S, pad) * pool_out_size(W, K, S, pad);
    for (int bc = 0; bc < BC; bc++) {
        float *dx = dinp + (size_t)bc * H * W;
        const float *g = dout + (size_t)bc * n;
        const int32_t *a = argmax + (size_t)bc * n;
        for (size_t i = 0; i < n; i++) dx[a[i]] += g[i];
    }
}

/* index of the window max, or -1 if the window is all padding */
static int naive_argmax(const float *x, int H, int W, int K, int S, int pad, int oh, int ow)
{
    int best = -1;
    for (int kh = 0; kh < K; kh++)
        for (int kw = 0; kw < K; kw++) {
            int ih = oh * S - pad + kh, iw = ow * S - pad + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            if (best < 0 || x[ih * W + iw] > x[best]) best = ih * W + iw;
        }
    return best;
}

void maxpool2d_forward_naive(float *out, const float *inp, int BC, int H, int W, int K, int S, int pad)
{
    const int OH = pool_out_size(H, K, S, pad), OW = pool_out_size(W, K, S, pad);
    for (int bc = 0; bc < BC; bc++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *x = inp + (size_t)bc * H * W;
                int i = naive_argmax(x, H, W, K, S, pad, oh, ow);
                out[((size_t)bc * OH + oh) * OW + ow] = x[i];
            }
}

void maxpool2d_backward_naive(float *dinp, const float *dout, const float *inp, int BC, int H, int W, int K,
                              int S, int pad)
{
    const int OH = pool_out_size(H, K, S, pad), OW = pool_out_size(W, K, S, pad);
    for (int bc = 0; bc < BC; bc++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int i = naive_argmax(inp + (size_t)bc * H * W, H, W, K, S, pad, oh, ow);
                dinp[(size_t)bc * H * W + i] += dout[((size_t)bc * OH + oh) * OW + ow];
            }
}

// ---------------------------------------------------------------------------
// average pool

void avgpool2d_forward(float *out, const float *inp, int BC, int H, int W, int K, int S, int pad)
{
    const int OH = pool_out_size(H, K, S, pad), OW = pool_out_size(W, K, S, pad);
    const float inv = 1.0f / (float)(K * K);
    for (int bc = 0; bc < BC; bc++) {
        const float *x = inp + (size_t)bc * H * W;
        float *o = out + (size_t)bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int h0, h1;
            pool_window(oh, K, S, pad, H, &h0, &h1);
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                pool_window(ow, K, S, pad, W, &w0, &w1);
                float acc = 0.0f;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) acc += x[ih * W + iw];
                o[oh * OW + ow] = acc * inv;
            }
        }
    }
}

void avgpool2d_backward(float *dinp, const float *dout, int BC, int H, int W, int K, int S, int pad)
{
    const int OH = pool_out_size(H, K, S, pad), OW = pool_out_size(W, K, S, pad);
    const float inv = 1.0f / (float)(K * K);
    for (int bc = 0; bc < BC; bc++) {
        float *dx = dinp + (size_t)bc * H * W;
        const float *g = dout + (size_t)bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int h0, h1;
            pool_window(oh, K, S, pad, H, &h0, &h1);
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                pool_window(ow, K, S, pad, W, &w0, &w1);
                float gg = g[oh * OW + ow] * inv;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) dx[ih * W + iw] += gg;
            }
        }
    }
}

void avgpool2d_forward_naive(float *out, const float *inp, int BC, int H, int W, int K, int S, int pad)
{
    const int OH = pool_out_size(H, K, S, pad), OW = pool_out_size(W, K, S, pad);
    for (int bc = 0; bc < BC; bc++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double acc = 0.0;
                for (int kh = 0; kh < K; kh++)
                    for (int kw = 0; kw < K; kw++) {
                        int ih = oh * S - pad + kh, iw = ow * S - pad + kw;
                        if (ih >= 0 && ih < H && iw >= 0 && iw < W) acc += inp[((size_t)bc * H + ih) * W + iw];
                    }
                out[((size_t)bc * OH + oh) * OW + ow] = (float)(acc / (K * K));
            }
}

void avgpool2d_backward_naive(float *dinp, const float *dout, int BC, int H, int W, int K, int S, int pad)
{
    const int OH = pool_out_size(H, K, S, pad), OW = pool_out_size(W, K, S, pad);
    for (int bc = 0; bc < BC; bc++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int kh = 0; kh < K; kh++)
                    for (int kw = 0; kw < K; kw++) {
                        int ih = oh * S - pad + kh, iw = ow * S - pad + kw;
                        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                            dinp[((size_t)bc * H + ih) * W + iw] +=
                                dout[((size_t)bc * OH + oh) * OW + ow] / (float)(K * K);
                    }
}

// ---------------------------------------------------------------------------
// global average pool

void global_avgpool_forward(float *out, const float *inp, int BC, int HW)
{
    const float inv = 1.0f / (float)HW;
    for (int bc = 0; bc < BC; bc++) {
        const float *x = inp + (size_t)bc * HW;
        float acc = 0.0f;
        for (int i = 0; i < HW; i++) acc += x[i];
        out[bc] = acc * inv;
    }
}

void global_avgpool_backward(float *dinp, const float *dout, int BC, int HW)
{
    const float inv = 1.0f / (float)HW;
    for (int bc = 0; bc < BC; bc++) {
        float *dx = dinp + (size_t)bc * HW;
        const float g = dout[bc] * inv;
        for (int i = 0; i < HW; i++) dx[i] += g;
    }
}
