/*
 * nn/vec16.h — 16 floats as one value, for the hand-written kernels
 * (nn/conv.c, nn/attention.c). GCC's vector extension: one zmm register
 * with AVX-512 (the x86-64-v4 clone of OIALR_HOT, base/hot.h), two ymm with
 * AVX2, portable C elsewhere.
 */
#ifndef OIALR_NN_VEC16_H
#define OIALR_NN_VEC16_H

typedef float v16 __attribute__((vector_size(64)));
/* an unaligned view of 16 floats, allowed to alias them */
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define ld16(p) (*(const v16u *)(p))
#define st16(p, v) (*(v16u *)(p) = (v))

static inline float hsum16(const v16 *v)
{
    float s = 0.0f;
    for (int l = 0; l < 16; l++) s += (*v)[l];
    return s;
}

/* 1 if the kernels written with v16 pay on this CPU (AVX-512 and its clone;
 * nn/vec16.c says why and how it was measured), or as forced; the callers
 * take their BLAS paths otherwise */
int nn_vec16_fast(void);
/* tests: force the answer (0 or 1), or back to the CPU's (-1); not
 * thread-safe, call it between kernels */
void nn_vec16_force(int fast);

#endif /* OIALR_NN_VEC16_H */
