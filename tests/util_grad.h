/*
 * tests/util_grad.h — shared helpers for the layer tests: a seeded RNG,
 * array comparison, and a generic finite-difference gradient checker.
 *
 * Gradient check, in short. A layer is wrapped as a "problem": a forward
 * that fills out[nout] from the current parameter values, and a backward
 * that, given dout, ACCUMULATES the analytic gradients into each param's
 * grad array (nn.h's convention). Inputs count as parameters: list dinp as a
 * param too. The checker fixes a random R[nout] and defines
 *     L(θ) = Σ_i out_i(θ) · R_i          (summed in double)
 * whose gradient is what backward(dout = R) computes. For (a sample of) the
 * entries of each param it then compares the analytic value with the central
 * difference (L(θ+ε) - L(θ-ε)) / 2ε. Grads are pre-filled with a constant
 * before backward and the constant is subtracted afterwards, so a backward
 * that overwrites (=) instead of accumulating (+=) fails the check.
 *
 * Example (dense layer y = x Wᵀ):
 *     static void fwd(void *c) { struct ctx *k = c; dense_forward(k->y, k->x, k->w, NULL, N, C, OC); }
 *     static void bwd(void *c, const float *dy) { struct ctx *k = c;
 *         dense_backward(k->dx, k->dw, NULL, dy, k->x, k->w, N, C, OC, 0); }
 *     tu_param ps[] = {{"x", k.x, k.dx, N*C}, {"w", k.w, k.dw, OC*C}};
 *     tu_grad_problem p = {&k, fwd, bwd, k.y, N*OC, ps, 2};
 *     tu_grad_result r = tu_grad_check(&p, NULL);   // default options
 *     ck_assert_msg(r.ok, "%s", r.msg);
 */
#ifndef OIALR_TESTS_UTIL_GRAD_H
#define OIALR_TESTS_UTIL_GRAD_H

#include <stddef.h>
#include <stdint.h>

/* --- RNG (xorshift64*): tests must not depend on the library's generator -- */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
void tu_rng_seed(tu_rng *r, uint64_t seed);
double tu_rng_uniform(tu_rng *r); /* [0, 1) */
/* x[i] uniform in [lo, hi) */
void tu_fill_uniform(float *x, size_t n, tu_rng *r, float lo, float hi);
/* x = a random permutation of lo, lo+step, ..., (distinct values: no ties
 * or kinks within ±step/2 for max pooling and ReLU-like layers) */
void tu_fill_distinct(float *x, size_t n, tu_rng *r, float lo, float step);
/* calloc that aborts on failure (tests only) */
float *tu_alloc(size_t n);

/* max_i |a_i - b_i| / (atol + rtol*|b_i|) — <= 1 means "close" */
double tu_close_ratio(const float *a, const float *b, size_t n, double atol, double rtol);
/* max |a_i - b_i| */
double tu_max_abs_diff(const float *a, const float *b, size_t n);

/* --- finite-difference gradient checker ------------------------------------ */
typedef struct tu_param {
    const char *name; /* for the failure message */
    float *x;         /* values, perturbed in place (restored afterwards) */
    float *grad;      /* analytic gradient, written by backward (+=); may be NULL: no check */
    size_t n;
} tu_param;

typedef struct tu_grad_problem {
    void *ctx;
    void (*forward)(void *ctx);                      /* out <- f(params); must be deterministic */
    void (*backward)(void *ctx, const float *dout);  /* grads += dL/dparams for L = Σ out·dout */
    float *out;
    size_t nout;
    tu_param *params;
    int nparams;
} tu_grad_problem;

typedef struct tu_grad_opts {
    double eps;         /* perturbation, default 1e-2 (float forward: larger eps, less noise) */
    double atol, rtol;  /* pass if |fd - an| <= atol + rtol*max(|fd|,|an|); defaults 2e-3, 2e-2 */
    int max_per_param;  /* check at most this many entries per param (random), default 64; <= 0: all */
    uint64_t seed;      /* for R and the sample of entries, default 1 */
} tu_grad_opts;

typedef struct tu_grad_result {
    int ok;             /* 1 if every checked entry passed */
    int checked;        /* entries compared */
    int failed;
    double worst;       /* max |fd - an| / (atol + rtol*max(|fd|,|an|)); <= 1 passes */
    char msg[256];      /* the worst entry: "w[17]: analytic 0.1234 vs numeric 0.1301" */
} tu_grad_result;

/* Run the check. opts may be NULL for the defaults. */
tu_grad_result tu_grad_check(const tu_grad_problem *p, const tu_grad_opts *opts);

#endif /* OIALR_TESTS_UTIL_GRAD_H */
