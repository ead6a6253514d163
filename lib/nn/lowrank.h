/*
 * nn/lowrank.h — a dense weight held as W = U Σ Vᵀ with U and V frozen and
 * only the small r×r Σ (and the bias) trained: OIALR's layer after the
 * switch. W is never formed: a step costs (C + OC)·R + R² multiply-adds
 * per row instead of C·OC.
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

#endif
