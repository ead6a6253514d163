/*
 * nn/vec16.h — 16 (and 8) floats as one value, for the hand-written kernels
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
/* 8 floats (one ymm), for the AVX2 builds of the kernels (nn_simd) */
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

/* the sum of a vector's 16 lanes as a tree (halves, quarters, ...): 4
 * dependent adds, where the lane-by-lane sum was 16 (dw_tile reduces 27 of
 * these per tile and group; the chain was a sixth of its time in perf) */
static inline float hsum16(const v16 *p)
{
    typedef int v16i __attribute__((vector_size(64)));
    v16 v = *p;
    v += __builtin_shuffle(v, (v16i){8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7});
    v += __builtin_shuffle(v, (v16i){4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3});
    v += __builtin_shuffle(v, (v16i){2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1});
    return v[0] + v[1];
}

/* Which hand-written kernels to use (nn/vec16.c says why and how it was
 * measured): the 16-float ones (AVX-512 and its clone), the 8-float builds
 * (AVX2), or none (the BLAS paths); as the CPU has it, OIALR_KERNELS says,
 * or as forced. */
enum { NN_SIMD_BLAS = 0, NN_SIMD_V8 = 1, NN_SIMD_V16 = 2 };
int nn_simd(void);
/* the CPU's own level, whatever OIALR_KERNELS or nn_simd_force say (kernels
 * built for AVX-512 alone, without a portable clone, ask it) */
int nn_simd_cpu(void);
/* the 16-float level in force and a CPU that runs it natively: where the
 * kernels built for AVX-512 alone (OIALR_AVX512, base/hot.h) may run */
int nn_simd_avx512(void);
/* tests: force a level (NN_SIMD_V8 only on an AVX2 CPU, else BLAS), or back
 * to the CPU's (-1); returns the level now in force. Not thread-safe: call
 * it between kernels. */
int nn_simd_force(int level);

#endif /* OIALR_NN_VEC16_H */
