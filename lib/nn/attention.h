/*
 * nn/attention.h — the core of multi-head self-attention (no projections).
 *
 * Conventions of nn/nn.h. Letters: B batch, T tokens, NH heads, HS head
 * size, C = NH*HS. The Q, K, V and output projections are ordinary dense
 * layers (nn.h), each with its own [C, D] weight, so that each is its own
 * named matrix for the recorder and for OIALR. This kernel takes their
 * outputs q, k, v [B,T,C] (head h occupies columns h*HS .. h*HS+HS-1, as
 * PyTorch's view(B,T,NH,HS)) and computes, per batch and head,
 *     att = softmax(q kᵀ / sqrt(HS))  [T,T]   (no mask: a ViT attends everywhere)
 *     out = att v                     [T,HS]
 * writing out[B,T,C] in the same head-interleaved layout, ready for the
 * output projection. att[B,NH,T,T] is saved for the backward.
 */
#ifndef OIALR_NN_ATTENTION_H
#define OIALR_NN_ATTENTION_H

#include <stddef.h>

/* Floats of scratch attention_backward needs: B*NH*T*T. */
size_t attention_scratch_size(int B, int T, int NH, int HS);

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int T,
                       int NH, int HS);
/* dq, dk, dv [B,T,C] += ... (any may be NULL), from dout [B,T,C] and the
 * saved att; set (bits ATT_SET_Q, _K, _V): that gradient = ... instead of
 * += (one nobody else writes first: the graph skips its zeroing pass).
 * scratch: attention_scratch_size(...) floats. */
enum { ATT_SET_Q = 1, ATT_SET_K = 2, ATT_SET_V = 4 };
void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q,
                        const float *k, const float *v, const float *att, int B, int T, int NH, int HS, int set);

/* References: direct loops in double, no scratch. */
void attention_forward_naive(float *out, float *att, const float *q, const float *k, const float *v, int B,
                             int T, int NH, int HS);
void attention_backward_naive(float *dq, float *dk, float *dv, const float *dout, const float *q,
                              const float *k, const float *v, const float *att, int B, int T, int NH, int HS);

/* The kernel attention_forward/backward use for heads of T x HS (a static
 * string, for benchmarks): "fused per head (16-float)", "fused per head (8-float)" or "sgemm per head". */
const char *attention_kernel_name(int T, int HS);

/* FLOPs of one forward: 4*B*NH*T*T*HS (two T x T x HS products). */
double attention_flops(int B, int T, int NH, int HS);

#endif /* OIALR_NN_ATTENTION_H */
