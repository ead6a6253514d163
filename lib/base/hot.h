/*
 * base/hot.h — OIALR_HOT marks the few elementwise loops that dominate a
 * training step once the GEMMs are in BLAS (activations, optimizer updates,
 * batch gathering). On x86-64 with GCC they are compiled three times
 * (baseline, AVX2 and AVX-512 levels) and the loader picks the best one the
 * CPU has, so the binary stays portable. Elsewhere it expands to nothing.
 *
 * Only on static functions, called from a plain entry point if other files
 * need it: for an extern function GCC (12) makes the ifunc and its
 * .resolver global with default visibility, ignoring -fvisibility=hidden and
 * visibility attributes, so liboialr.so would export them
 * (tests/check_symbols.sh fails on that).
 *
 * OIALR_HOT_CLONES is defined where the clones are made: code that picks a
 * kernel by CPU level itself (nn_simd, nn/vec16.h) may use
 * __builtin_cpu_supports and target("arch=x86-64-v3") functions there, and
 * OIALR_AVX512 for a kernel that only pays, or only builds, with AVX-512.
 */
#ifndef OIALR_HOT_H
#define OIALR_HOT_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__gnu_linux__) && \
    !defined(OIALR_NO_CLONES)
#define OIALR_HOT __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#define OIALR_HOT_CLONES 1
/* a kernel built for AVX-512 alone, no portable clone: called only where
 * nn_simd_avx512() (nn/vec16.h) says so */
#define OIALR_AVX512 __attribute__((target("arch=x86-64-v4")))
#else
#define OIALR_HOT
#define OIALR_AVX512
#endif

#endif
