/*
 * nn/vec16.c — whether the 16-float kernels pay on this CPU (nn/vec16.h).
 *
 * The direct conv kernels and the fused attention keep up to 32 accumulators
 * of 16 floats in registers: one zmm each with AVX-512 (the x86-64-v4 clone
 * of OIALR_HOT). On an AVX2-only CPU GCC splits every 16-float value into two
 * ymm of only 16 registers, spills most of them and stores results a float
 * at a time: measured on an AVX2 EPYC (Zen 2), 2026-12-02, the direct 16->16
 * conv ran at 18% of sgemm and the fused attention at 2%, against 60-70% and
 * 28% for the im2col + sgemm and sgemm-per-head paths (docs/bench.md). So
 * the kernels are used where the CPU has AVX-512 and the build has its clone,
 * and the BLAS paths elsewhere.
 *
 * OIALR_KERNELS=direct|blas in the environment overrides the choice (read
 * once), for A/B measurements on one build; tests choose per case with
 * nn_vec16_force.
 */
#include "nn/vec16.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/hot.h"

static int forced = -1; /* nn_vec16_force: -1 none, else the answer */
static int chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int cpu_has_v4(void)
{
#if defined(OIALR_HOT_CLONES)
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v4") ? 1 : 0;
#else
    return 0;
#endif
}

static void choose(void)
{
    const char *e = getenv("OIALR_KERNELS");
    if (e && strcmp(e, "direct") == 0)
        chosen = 1;
    else if (e && strcmp(e, "blas") == 0)
        chosen = 0;
    else
        chosen = cpu_has_v4();
}

int nn_vec16_fast(void)
{
    if (forced >= 0) return forced;
    pthread_once(&once, choose);
    return chosen;
}

void nn_vec16_force(int fast) { forced = fast < 0 ? -1 : fast != 0; }
