/*
 * act.c — elementwise layers: ReLU, GELU (tanh approximation, as GPT-2 and
 * PyTorch's approximate='tanh'), tanh, dropout (inverted, mask from caller),
 * residual add. Backward accumulates into dinp.
 */
#include "nn/nn.h"
#include "base/hot.h"

#include <math.h>

OIALR_HOT void relu_forward(float *out, const float *inp, size_t n) {
    /* written so that NaN propagates (NaN < 0 is false), as in PyTorch */
    for (size_t i = 0; i < n; i++) out[i] = inp[i] < 0.0f ? 0.0f : inp[i];
}

OIALR_HOT void relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

OIALR_HOT void gelu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + 0.044715f * x * x * x);
        out[i] = 0.5f * x * (1.0f + tanhf(u));
    }
}

OIALR_HOT void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + 0.044715f * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * x * sech2 * du);
    }
}

OIALR_HOT void tanh_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

OIALR_HOT void tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

OIALR_HOT void dropout_forward(float *out, const float *inp, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * mask[i];
}

OIALR_HOT void dropout_backward(float *dinp, const float *dout, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * mask[i];
}

OIALR_HOT void add_forward(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
