/*
 * nn/pool.h — 2-D pooling over NCHW activations: max, average, global average.
 *
 * Conventions of nn/nn.h. Letters: B batch, C channels, H/W input size,
 * K window, S stride, pad zero/-inf padding, OH/OW output size
 * (OH = (H + 2*pad - K)/S + 1, floor, as PyTorch with ceil_mode=False).
 * No weights. Pooling acts on every (b, c) plane independently, so a plane
 * count BC = B*C is all the kernels need.
 */
#ifndef OIALR_NN_POOL_H
#define OIALR_NN_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Output size of a window K, stride S, padding pad over n input pixels;
 * asserts that it is >= 1 and that pad <= K/2 (PyTorch's rule). */
int pool_out_size(int n, int K, int S, int pad);

/* Max pool, padding acts as -inf. out[BC,OH,OW]; argmax[BC,OH,OW] saves
 * the index (ih*W + iw) of the winner in its plane for the backward (ties:
 * the first in row-major window order, as PyTorch). */
void maxpool2d_forward(float *out, int32_t *argmax, const float *inp, int BC, int H, int W, int K, int S,
                       int pad);
/* dinp[BC,H,W] += dout routed to the saved argmax */
void maxpool2d_backward(float *dinp, const float *dout, const int32_t *argmax, int BC, int H, int W, int K,
                        int S, int pad);
/* references: recompute the window max from inp (no saved state) */
void maxpool2d_forward_naive(float *out, const float *inp, int BC, int H, int W, int K, int S, int pad);
void maxpool2d_backward_naive(float *dinp, const float *dout, const float *inp, int BC, int H, int W, int K,
                              int S, int pad);

/* Average pool, divisor K*K including padded zeros (PyTorch's default
 * count_include_pad=True). */
void avgpool2d_forward(float *out, const float *inp, int BC, int H, int W, int K, int S, int pad);
void avgpool2d_backward(float *dinp, const float *dout, int BC, int H, int W, int K, int S, int pad);
void avgpool2d_forward_naive(float *out, const float *inp, int BC, int H, int W, int K, int S, int pad);
void avgpool2d_backward_naive(float *dinp, const float *dout, int BC, int H, int W, int K, int S, int pad);

/* Global average pool: out[BC] = mean of each plane inp[BC, HW]. */
void global_avgpool_forward(float *out, const float *inp, int BC, int HW);
void global_avgpool_backward(float *dinp, const float *dout, int BC, int HW);

#endif /* OIALR_NN_POOL_H */
