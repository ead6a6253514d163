/*
 * powerlaw.c — WeightWatcher's power-law exponent α of one matrix's
 * eigenvalue spectrum λᵢ = σᵢ² (definition, choices and the differences
 * from WeightWatcher: docs/metrics.md, "Power-law exponent α").
 *
 * The fit, for every candidate x_min among the eigenvalues (ascending
 * λ_0 <= ... <= λ_{p-1}, candidate i, tail λ_i..λ_{p-1} of t = p - i):
 *
 *   α_i = 1 + t / Σ_{a>=i} ln(λ_a / λ_i)            (continuous MLE)
 *   D_i = max_{k<t} |1 - (λ_{i+k}/λ_i)^(1-α_i) - k/t|  (KS distance, the
 *         fitted CDF against the empirical one, as WeightWatcher's WWFit)
 *
 * and x_min = λ_i of the smallest D_i (the first such i on a tie). α_i is
 * O(1) per candidate from suffix sums of ln λ. D_i is a max over the tail,
 * so a full scan is O(p²); it is cut short as soon as the running max
 * exceeds the best D found so far (it can only grow), which changes
 * nothing in the result: a candidate whose D would tie or beat the best is
 * always computed to the end. A coarse pass over a few evenly spaced
 * candidates first makes the best D small early, so that most candidates
 * stop after a few terms (measured in docs/metrics.md).
 */
#include "oialr/metrics.h"

#include <math.h>
#include <stdlib.h>

/* eigenvalues below this fraction of λ_1 count as zero (ln 0 = -Inf) */
#define POWERLAW_REL_FLOOR 1e-12
/* candidates of the coarse first pass */
#define POWERLAW_COARSE 32

/* One KS term: |F(λ_{i+k}) - k/t|, F the fitted CDF. */
static inline double ks_term(const double *l, int64_t i, int64_t k, double e, double inv_t) {
    return fabs(1.0 - exp(e * (l[i + k] - l[i])) - (double)k * inv_t);
}

/* D_i, or a value > best as soon as a partial max shows D_i > best (then
 * candidate i cannot be the argmin). l: ascending ln λ. Every KS_PROBE-th
 * term is looked at first: neighbouring terms differ little, so this finds
 * a value near the max (and usually rules the candidate out) in a few
 * steps. */
#define KS_PROBE 64
static double ks_distance(const double *l, int64_t p, int64_t i, double alpha, double best) {
    int64_t t = p - i;
    double e = 1.0 - alpha, inv_t = 1.0 / (double)t, d = 0;
    if (t > 4 * KS_PROBE)
        for (int64_t k = KS_PROBE; k < t; k += KS_PROBE) {
            double dev = ks_term(l, i, k, e, inv_t);
            if (dev > d && (d = dev) > best) return d;
        }
    for (int64_t k = 1; k < t; k++) { /* k = 0: F(x_min) = 0 = 0/t */
        double dev = ks_term(l, i, k, e, inv_t);
        if (dev > d && (d = dev) > best) return d;
    }
    return d;
}

int oialr_powerlaw_fit(const double *sigma, int64_t n, oialr_powerlaw *out) {
    if (!sigma || !out || n < 0) return oialr_seterr(OIALR_ERR_ARG, "oialr_powerlaw_fit: bad argument");
    for (int64_t i = 0; i < n; i++)
        if (!(sigma[i] >= 0.0) || !isfinite(sigma[i]) || (i > 0 && sigma[i] > sigma[i - 1]))
            return oialr_seterr(OIALR_ERR_ARG, "oialr_powerlaw_fit: sigma[%lld]=%g is not finite, >= 0 and descending",
                                (long long)i, sigma[i]);
    oialr_powerlaw r = {NAN, NAN, NAN, 0, 0};
    *out = r;
    /* ln λ = 2 ln σ: no overflow or underflow of σ² */
    double floor = n > 0 && sigma[0] > 0 ? 2.0 * log(sigma[0]) + log(POWERLAW_REL_FLOOR) : INFINITY;
    int64_t p = 0;
    while (p < n && sigma[p] > 0 && 2.0 * log(sigma[p]) > floor) p++;
    r.n_used = p;
    out->n_used = p;
    if (p < OIALR_POWERLAW_MIN_EVALS)
        return oialr_seterr(OIALR_ERR_NUMERIC, "oialr_powerlaw_fit: %lld nonzero eigenvalues, fewer than %d",
                            (long long)p, OIALR_POWERLAW_MIN_EVALS);
    double *l = malloc(2 * (size_t)p * sizeof *l);
    if (!l) return oialr_seterr(OIALR_ERR_NOMEM, "oialr_powerlaw_fit: out of memory (%lld values)", (long long)p);
    double *suf = l + p; /* suf[i] = Σ_{a>=i} (l[a] - l[0]) */
    for (int64_t a = 0; a < p; a++) l[a] = 2.0 * log(sigma[p - 1 - a]);
    double acc = 0;
    for (int64_t a = p - 1; a >= 0; a--) {
        acc += l[a] - l[0];
        suf[a] = acc;
    }
    double best = INFINITY, best_alpha = NAN;
    int64_t best_i = -1;
    /* pass 0: every stride-th candidate; pass 1: the others */
    int64_t stride = (p - 1) / POWERLAW_COARSE > 1 ? (p - 1) / POWERLAW_COARSE : 1;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = 0; i < p - 1; i++) {
            int coarse = i % stride == 0;
            if (pass == 0 ? !coarse : coarse) continue;
            if (i > 0 && l[i] == l[i - 1]) continue; /* same x_min as i-1, whose tail holds all λ >= x_min */
            double t = (double)(p - i);
            double denom = suf[i] - t * (l[i] - l[0]); /* Σ_{a>=i} ln(λ_a/λ_i) */
            if (!(denom > 0)) continue;                /* all tail values equal: α infinite */
            double alpha = 1.0 + t / denom;
            double d = ks_distance(l, p, i, alpha, best);
            if (d < best || (d == best && i < best_i)) {
                best = d;
                best_i = i;
                best_alpha = alpha;
            }
        }
    }
    if (best_i >= 0) {
        r.alpha = best_alpha;
        r.xmin = exp(l[best_i]);
        r.ks = best;
        r.n_tail = p - best_i;
    }
    free(l);
    *out = r;
    if (best_i < 0)
        return oialr_seterr(OIALR_ERR_NUMERIC, "oialr_powerlaw_fit: all %lld nonzero eigenvalues are equal",
                            (long long)p);
    return OIALR_OK;
}
