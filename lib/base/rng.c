/*
 * rng.c — PCG32 (O'Neill, pcg-random.org, "XSH RR" output) seeded through
 * SplitMix64. The state is two uint64 words so a checkpoint restores it
 * exactly; normals use Box-Muller without caching so the state stays small.
 */
#include "oialr/base.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void oialr_rng_seed(oialr_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t s = seed;
    r->state = 0;
    r->inc = (splitmix64(&s) ^ (stream * 0x9E3779B97F4A7C15ull)) << 1 | 1u;
    oialr_rng_u32(r);
    r->state += splitmix64(&s);
    oialr_rng_u32(r);
}

uint32_t oialr_rng_u32(oialr_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ull + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float oialr_rng_uniform(oialr_rng *r) {
    return (float)(oialr_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

float oialr_rng_normal(oialr_rng *r) {
    double u1 = ((double)oialr_rng_u32(r) + 1.0) / 4294967297.0; /* (0,1) */
    double u2 = (double)oialr_rng_u32(r) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint32_t oialr_rng_below(oialr_rng *r, uint32_t n) {
    OIALR_ASSERT(n > 0);
    uint32_t threshold = (-n) % n;
    for (;;) {
        uint32_t x = oialr_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}
