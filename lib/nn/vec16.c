/*
 * nn/vec16.c — which hand-written kernels pay on this CPU (nn_simd,
 * nn/vec16.h).
 *
 * The direct conv kernels and the fused attention keep up to 32 accumulators
 * of 16 floats in registers: one zmm each with AVX-512 (the x86-64-v4 clone
 * of OIALR_HOT). On an AVX2-only CPU GCC splits every 16-float value into two
 * ymm of only 16 registers, spills most of them and stores results a float
 * at a time: measured on an AVX2 EPYC (Zen 2), 2026-12-02, the direct 16->16
 * conv ran at 11% of sgemm and the fused attention at 2%, against 45-57% and
 * 6-11% for the im2col + sgemm and sgemm-per-head paths (docs/bench.md). So
 * the 16-float kernels are used where the CPU has AVX-512 and the build has
 * its clone (NN_SIMD_V16); on AVX2 (NN_SIMD_V8) the attention and the input
 * gradient of the stride-1 3x3 convs have 8-float builds, the rest of the
 * convs take their BLAS paths.
 *
 * OIALR_KERNELS=blas|avx2|avx512 in the environment overrides the choice
 * (read once), for A/B measurements on one build; avx2 needs an AVX2 CPU
 * (the 8-float kernels are built for it alone), the 16-float kernels run
 * anywhere (slowly without AVX-512). Tests choose per case with
 * nn_simd_force.
 */
#include "nn/vec16.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/hot.h"
#include "oialr/base.h"
#include "oialr/model.h"

static int forced = -1; /* nn_simd_force: -1 none, else the level */
static int chosen, cpu;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int cpu_level(void)
{
#if defined(OIALR_HOT_CLONES)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return NN_SIMD_V16;
    if (__builtin_cpu_supports("x86-64-v3")) return NN_SIMD_V8;
#endif
    return NN_SIMD_BLAS;
}

/* the 8-float kernels only where the CPU runs them */
static int cap(int level) { return level == NN_SIMD_V8 && cpu < NN_SIMD_V8 ? NN_SIMD_BLAS : level; }

/* the values of OIALR_KERNELS, by level */
static const char *const env_names[] = {"blas", "avx2", "avx512"};

/* OIALR_KERNELS's level, or -1 (unset or empty), or -2 (another value) */
static int env_level(void)
{
    const char *e = getenv("OIALR_KERNELS");
    if (!e || !*e) return -1;
    for (int l = 0; l < (int)(sizeof env_names / sizeof env_names[0]); l++)
        if (strcmp(e, env_names[l]) == 0) return l;
    return -2;
}

static void choose(void)
{
    cpu = cpu_level();
    const int l = env_level();
    chosen = l >= 0 ? cap(l) : cpu;
}

int oialr_kernels_env_check(void)
{
    if (env_level() != -2) return OIALR_OK;
    return oialr_seterr(OIALR_ERR_ARG, "OIALR_KERNELS=%s: expected %s, %s or %s", getenv("OIALR_KERNELS"),
                        env_names[0], env_names[1], env_names[2]);
}

int nn_simd(void)
{
    pthread_once(&once, choose);
    return forced >= 0 ? forced : chosen;
}

int nn_simd_cpu(void)
{
    pthread_once(&once, choose);
    return cpu;
}

int nn_simd_avx512(void) { return nn_simd() == NN_SIMD_V16 && nn_simd_cpu() == NN_SIMD_V16; }

int nn_simd_force(int level)
{
    pthread_once(&once, choose);
    forced = level < 0 ? -1 : cap(level);
    return nn_simd();
}

const char *oialr_kernels_name(void)
{
    switch (nn_simd()) {
    case NN_SIMD_V16: return "avx512: direct 3x3 convs, fused attention (16-float vectors)";
    case NN_SIMD_V8:
        return "avx2: direct input gradient of stride-1 3x3 convs, fused attention (8-float vectors); "
               "other convs im2col + sgemm";
    default: return "blas: convs im2col + sgemm, attention sgemm per head";
    }
}
