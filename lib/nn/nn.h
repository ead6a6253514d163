/*
 * nn/nn.h — the layer kernels of the training engine (private to liboialr).
 *
 * Conventions (after llm.c):
 *   - a layer is a pair of free functions, <layer>_forward / <layer>_backward;
 *     arguments are outputs first, then inputs, then sizes;
 *   - every activation is row-major with the batch first; shapes are given in
 *     the comment of each function with these letters:
 *         B batch, N rows of a matmul (B, or B*T for token layers),
 *         C input features, OC output features, T tokens, D model width,
 *         H/W height/width, K kernel size, NH heads, HS head size
 *   - weights use PyTorch's layout: a dense weight is [OC, C] (its matrix
 *     view is OC x C), a conv weight is [OC, C, KH, KW] (view OC x C*KH*KW);
 *   - backward ACCUMULATES (+=) into every gradient it writes, parameters and
 *     inputs alike, so residual branches need no special case; the engine
 *     zeroes all gradients once per step. A NULL input-gradient pointer means
 *     "not needed" (the first layer) and is skipped;
 *   - kernels never allocate; scratch memory is passed in;
 *   - every fast kernel has a *_naive reference next to it for the tests.
 */
#ifndef OIALR_NN_H
#define OIALR_NN_H

#include <stddef.h>

/* --- dense: out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC] (b may be NULL) ------ */
void dense_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC);
/* dinp += dout @ w (set: =, an input gradient nobody else writes first),
 * dw += doutᵀ @ inp, db += column sums (dinp, db may be NULL) */
void dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                    const float *w, int N, int C, int OC, int set);
void dense_forward_naive(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC);
void dense_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, int N, int C, int OC);

/* --- elementwise activations over n values ------------------------------ */
void relu_forward(float *out, const float *inp, size_t n);
void relu_backward(float *dinp, const float *dout, const float *inp, size_t n);
/* dinp = (inp > 0) * dout: for an input gradient nobody else writes, not zeroed */
void relu_backward_set(float *dinp, const float *dout, const float *inp, size_t n);
void gelu_forward(float *out, const float *inp, size_t n);   /* tanh approximation */
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
void gelu_backward_set(float *dinp, const float *dout, const float *inp, size_t n); /* = instead of += */
void tanh_forward(float *out, const float *inp, size_t n);
void tanh_backward(float *dinp, const float *dout, const float *out, size_t n);
/* dropout: mask[n] holds 0 or 1/(1-p), drawn by the caller's RNG */
void dropout_forward(float *out, const float *inp, const float *mask, size_t n);
void dropout_backward(float *dinp, const float *dout, const float *mask, size_t n);

/* --- residual add: out = a + b over n values ------------------------------ */
void add_forward(float *out, const float *a, const float *b, size_t n);
/* da += dout, db += dout (either may be NULL); set_a / set_b: = instead of += */
void add_backward(float *da, float *db, const float *dout, size_t n, int set_a, int set_b);
/* the add followed by a ReLU: out = max(0, a + b) (NaN propagates, as
 * relu_forward); backward with the ReLU's output y as mask, da, db (+)=
 * (y > 0) * dout in one pass (da == db allowed) */
void add_relu_forward(float *out, const float *a, const float *b, size_t n);
void add_relu_backward(float *da, float *db, const float *dout, const float *y, size_t n, int set_a, int set_b);

/* --- softmax cross-entropy over logits[N,NC] with integer targets.
 * Returns the mean loss; writes probs[N,NC]; counts correct argmax into
 * *correct if not NULL. smoothing in [0,1): label smoothing as PyTorch does
 * (target = (1-s)*onehot + s/NC). */
float softmax_xent_forward(float *probs, int *correct, const float *logits, const unsigned char *targets,
                           int N, int NC, float smoothing);
/* dlogits += (probs - target)/N */
void softmax_xent_backward(float *dlogits, const float *probs, const unsigned char *targets, int N, int NC,
                           float smoothing);

#endif /* OIALR_NN_H */
