/*
 * nn/lowrank.h — a dense or conv weight held as W = U Σ Vᵀ with U and V
 * frozen and only the small r×r Σ (and the bias) trained: OIALR's layers
 * after the switch. W is never formed.
 *
 * --- dense: a step costs (C + OC)·R + R² multiply-adds per row instead of
 * C·OC.
 *
 *   out[N,OC] = ((inp[N,C] @ v[C,R]) @ s[R,R]ᵀ) @ u[OC,R]ᵀ + b[OC]
 *
 * so that W = u @ s @ vᵀ is the [OC, C] weight of dense_forward (nn.h).
 * All matrices are row-major and compact (leading dimension R). Forward
 * saves mid[N,R] = inp @ v for backward; scratch holds lowrank_scratch(N, R)
 * floats. Backward accumulates (+=) into ds, db and dinp (NULL: skipped);
 * u and v get no gradient.
 */
#ifndef OIALR_NN_LOWRANK_H
#define OIALR_NN_LOWRANK_H

#include <stddef.h>

#include "nn/conv.h"

size_t lowrank_scratch(int N, int R);

void lowrank_forward(float *out, float *mid, float *scratch, const float *inp, const float *u, const float *s,
                     const float *v, const float *b, int N, int C, int OC, int R);
void lowrank_backward(float *dinp, float *ds, float *db, float *scratch, const float *dout, const float *mid,
                      const float *u, const float *s, const float *v, int N, int C, int OC, int R);

/* References: form W = u s vᵀ in double and run the dense layer on it;
 * ds = uᵀ dW v from the full dW = doutᵀ inp (W is linear in s). */
void lowrank_forward_naive(float *out, const float *inp, const float *u, const float *s, const float *v,
                           const float *b, int N, int C, int OC, int R);
void lowrank_backward_naive(float *dinp, float *ds, float *db, const float *dout, const float *inp, const float *u,
                            const float *s, const float *v, int N, int C, int OC, int R);

/* --- conv: a conv weight [OC, C, KH, KW], matrix view W [OC, K] with
 * K = C*KH*KW (nn/conv.h), held as u[OC,R] s[R,R] vt[R,C,KH,KW], where
 * vt = vᵀ (v [K,R]) is stored as the weight of a conv with R output
 * channels. d holds the dims of the FULL conv (d->OC the real output
 * channels); the Vᵀ conv has the same dims with OC = R. P = OH*OW.
 *
 *   mid[B,R,OH,OW] = conv(inp[B,C,H,W], vt)            (conv2d, OC = R)
 *   out[b]         = (u @ s) @ mid[b] + b              [OC,R] x [R,P] per sample
 *
 * so that W = u @ s @ vᵀ is the weight of conv2d_forward. A forward costs
 * R·(K + OC)·P multiply-adds per sample instead of OC·K·P, a backward with
 * dinp as much again plus 2·R²·P. Forward saves mid for backward; scratch holds
 * lowrank_conv_scratch(d, B, R) floats, the Vᵀ conv's own scratch included.
 * Backward accumulates (+=) into ds, db and dinp (NULL: skipped); u and vt
 * get no gradient (the Vᵀ conv runs conv2d_backward with dw NULL). The
 * per-sample products are split across nn_threads() threads (nn/par.h). */
size_t lowrank_conv_scratch(const conv2d_dims *d, int B, int R);

/* out[B,OC,OH,OW], mid[B,R,OH,OW] from inp[B,C,H,W]; b[OC] may be NULL */
void lowrank_conv_forward(float *out, float *mid, float *scratch, const float *inp, const float *u, const float *s,
                          const float *vt, const float *b, const conv2d_dims *d, int B, int R);
/* dinp[B,C,H,W] += ..., ds[R,R] += ..., db[OC] += ... (dinp, db may be
 * NULL) from dout[B,OC,OH,OW] and the forward's mid. inp is the forward's
 * input, as conv2d_backward takes it; with vt frozen the fast path needs
 * only mid and does not read it (the reference does). */
void lowrank_conv_backward(float *dinp, float *ds, float *db, float *scratch, const float *dout, const float *mid,
                           const float *inp, const float *u, const float *s, const float *vt, const conv2d_dims *d,
                           int B, int R);

/* References: form W = u s vᵀ (in double, rounded to float) and run
 * conv2d_forward_naive / conv2d_backward_naive on it; ds = uᵀ dW v. */
void lowrank_conv_forward_naive(float *out, const float *inp, const float *u, const float *s, const float *vt,
                                const float *b, const conv2d_dims *d, int B, int R);
void lowrank_conv_backward_naive(float *dinp, float *ds, float *db, const float *dout, const float *inp,
                                 const float *u, const float *s, const float *vt, const conv2d_dims *d, int B,
                                 int R);

#endif
