/*
 * bench_powerlaw.c — the power-law fit's KS scan (oialr_powerlaw_fit,
 * lib/metrics/powerlaw.c) against the naive scan it replaces: every
 * candidate x_min, every KS term (O(p²), WeightWatcher's WWFit loop), on
 * the same spectra, interleaved, median of REPS runs each.
 *
 *   build/bench/bench_powerlaw [REPS]
 *
 * Spectra: the singular values of a 4096×4096 and a 512×512 random Gaussian
 * matrix would need an SVD; their eigenvalue laws are known (Marchenko–
 * Pastur, square: λ = 4 cos²(πu/2)-like bulk), so a bulk of quantiles of
 * MP plus a Pareto tail (α = 3, 10% of the values) stands in, and a pure
 * Pareto (α = 2.5). Prints markdown rows for make bench's report.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "oialr/metrics.h"

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The definition, naively (as tests/check_powerlaw.c's reference). */
static double naive_alpha(const double *sigma, int64_t p, double *l) {
    for (int64_t a = 0; a < p; a++) l[a] = 2.0 * log(sigma[p - 1 - a]);
    double best = INFINITY, best_alpha = NAN;
    for (int64_t i = 0; i + 1 < p; i++) {
        double t = (double)(p - i), s = 0, d = 0;
        for (int64_t a = i; a < p; a++) s += l[a] - l[i];
        if (!(s > 0)) continue;
        double alpha = 1.0 + t / s;
        for (int64_t k = 0; k < p - i; k++) {
            double dev = fabs(1.0 - exp((1.0 - alpha) * (l[i + k] - l[i])) - (double)k / t);
            if (dev > d) d = dev;
        }
        if (d < best) best = d, best_alpha = alpha;
    }
    return best_alpha;
}

/* kind 0: MP-like bulk + Pareto tail; 1: pure Pareto. */
static void make_spectrum(double *s, int64_t n, int kind, uint64_t seed) {
    oialr_rng r;
    oialr_rng_seed(&r, seed, 1);
    for (int64_t i = 0; i < n; i++) {
        double u = ((double)(oialr_rng_u32(&r) >> 8) + 0.5) / 16777216.0;
        if (kind == 1 || i < n / 10) s[i] = pow(u, -1.0 / 1.5) * (kind == 1 ? 1.0 : 4.0);
        else {
            double c = cos(M_PI * u / 2);
            s[i] = 4.0 * c * c + 1e-3;
        }
    }
    qsort(s, (size_t)n, sizeof *s, cmp_desc);
    for (int64_t i = 0; i < n; i++) s[i] = sqrt(s[i]);
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_d);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 100) reps = 5;
    static const int64_t sizes[] = {512, 4096};
    static const char *kinds[] = {"bulk + Pareto tail", "pure Pareto a=2.5"};
    printf("| power-law fit, n eigenvalues | spectrum | oialr_powerlaw_fit ms | naive O(n^2) scan ms | ratio | alpha (fast / naive) |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int si = 0; si < 2; si++)
        for (int kind = 0; kind < 2; kind++) {
            int64_t n = sizes[si];
            double *s = malloc((size_t)n * sizeof *s), *l = malloc((size_t)n * sizeof *l);
            double tf[100], tn[100], af = NAN, an = NAN;
            make_spectrum(s, n, kind, 11 + (uint64_t)kind);
            for (int r = 0; r < reps; r++) {
                oialr_powerlaw f;
                double t0 = oialr_now();
                if (oialr_powerlaw_fit(s, n, &f) != OIALR_OK) { fprintf(stderr, "fit failed: %s\n", oialr_errmsg()); return 1; }
                tf[r] = oialr_now() - t0;
                af = f.alpha;
                t0 = oialr_now();
                an = naive_alpha(s, n, l);
                tn[r] = oialr_now() - t0;
            }
            double mf = median(tf, reps), mn = median(tn, reps);
            printf("| %lld | %s | %.3f | %.2f | %.0fx faster | %.6f / %.6f |\n", (long long)n, kinds[kind], 1e3 * mf,
                   1e3 * mn, mn / mf, af, an);
            free(s), free(l);
        }
    return 0;
}
