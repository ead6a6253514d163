/*
 * nn/conv.h — 2-D convolution, NCHW, any kernel size, stride and zero padding.
 *
 * Conventions are those of nn/nn.h (outputs first, backward accumulates,
 * NULL dinp = skip, scratch passed in). Letters:
 *     B batch, C input channels, H/W input size, OC output channels,
 *     KH/KW kernel size, OH/OW output size, P = OH*OW output pixels,
 *     K = C*KH*KW the length of one receptive field.
 *
 * Weight [OC, C, KH, KW] (PyTorch layout); its matrix view is OC x K, the
 * matrix the recorder snapshots. Bias [OC] is optional (NULL).
 *
 * The fast path is im2col + one cblas_sgemm per chunk of samples: the chunk's
 * receptive fields are laid out as col[K, nb*P] (column s*P+p is pixel p of
 * sample s), so the forward is a single OC x (nb*P) x K product and the
 * weight gradient a single OC x K x (nb*P) product. nb is chosen by
 * conv2d_chunk() so one chunk's col + product stay near 1 MiB (L2-sized).
 * The batch is split across nn_threads() threads (nn/par.h), each running
 * its chunks with single-threaded sgemm in its own slice of the scratch.
 */
#ifndef OIALR_NN_CONV_H
#define OIALR_NN_CONV_H

#include <stddef.h>

typedef struct conv2d_dims {
    int C, H, W;     /* input channels and size */
    int OC;          /* output channels */
    int KH, KW;      /* kernel size */
    int stride, pad; /* same in both directions */
    int OH, OW;      /* output size, filled in by conv2d_make */
} conv2d_dims;

/* Fill the dims and compute OH = (H + 2*pad - KH)/stride + 1 (floor, as
 * PyTorch). Asserts that every size is positive and OH, OW >= 1. */
conv2d_dims conv2d_make(int C, int H, int W, int OC, int KH, int KW, int stride, int pad);

/* Samples per GEMM chunk for a batch of B (1 <= nb <= B). */
int conv2d_chunk(const conv2d_dims *d, int B);

/* Floats of scratch the fast forward/backward need for a batch of B:
 * NN_MAX_THREADS slices of (K + OC) * nb * P + OC * K + OC floats (rounded
 * up to 64 bytes), nb = conv2d_chunk(d, B). */
size_t conv2d_scratch_size(const conv2d_dims *d, int B);

/* out[B,OC,OH,OW] = conv(inp[B,C,H,W], w[OC,C,KH,KW]) + b[OC] */
void conv2d_forward(float *out, const float *inp, const float *w, const float *b, float *scratch,
                    const conv2d_dims *d, int B);
/* dinp[B,C,H,W] += ..., dw[OC,C,KH,KW] += ..., db[OC] += ... (dinp, dw, db
 * may be NULL: skipped); set: dinp = ... instead of += (an input gradient
 * nobody else writes first: the graph then skips its zeroing pass).
 * Recomputes im2col from inp instead of keeping it; with dw NULL (a frozen
 * weight, as the V of nn/lowrank.h) neither the weight-gradient product nor
 * the im2col is done. */
void conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                     float *scratch, const conv2d_dims *d, int B, int set);

/* References: the textbook six-deep loops, no scratch; the same NULLs. */
void conv2d_forward_naive(float *out, const float *inp, const float *w, const float *b, const conv2d_dims *d,
                          int B);
void conv2d_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const conv2d_dims *d, int B);

/* Which kernel conv2d_forward/backward use for these dims and batch, for
 * benchmarks and docs: a static string. */
const char *conv2d_kernel_name(const conv2d_dims *d, int B);

/* FLOPs of one forward (2*B*OC*P*K); backward is twice that with dinp. */
double conv2d_flops(const conv2d_dims *d, int B);

#endif /* OIALR_NN_CONV_H */
