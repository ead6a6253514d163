/*
 * spectrum.c — rank and norm metrics of one matrix from its singular values
 * (formulas and the conventions for zero matrices: docs/metrics.md).
 */
#include "oialr/metrics.h"

#include <math.h>

int oialr_spectrum_metrics(const double *sigma, int64_t rows, int64_t cols, double beta, oialr_spectrum *out) {
    if (!sigma || !out || rows <= 0 || cols <= 0)
        return oialr_seterr(OIALR_ERR_ARG, "oialr_spectrum_metrics: bad argument");
    if (!(beta >= 0.0 && beta <= 1.0))
        return oialr_seterr(OIALR_ERR_ARG, "oialr_spectrum_metrics: beta %g not in [0, 1]", beta);
    int64_t n = rows < cols ? rows : cols;
    double m = (double)(rows < cols ? cols : rows);
    for (int64_t i = 0; i < n; i++) {
        if (!(sigma[i] >= 0.0) || !isfinite(sigma[i]) || (i > 0 && sigma[i] > sigma[i - 1]))
            return oialr_seterr(OIALR_ERR_ARG, "oialr_spectrum_metrics: sigma[%lld]=%g is not finite, >= 0 and descending",
                                (long long)i, sigma[i]);
    }
    oialr_spectrum r = {0};
    r.rows = rows;
    r.cols = cols;
    r.n = n;
    r.beta = beta;
    r.sigma1 = sigma[0];
    r.sigma_min = sigma[n - 1];
    /* scaled sums: σ/σ₁ keeps σ² from overflowing for huge entries */
    double s1 = sigma[0], sum = 0, sumsq = 0;
    if (s1 > 0) {
        for (int64_t i = 0; i < n; i++) {
            double x = sigma[i] / s1;
            sum += x;
            sumsq += x * x;
        }
        r.frobenius = s1 * sqrt(sumsq);
        r.stable_rank = sumsq;
        double h = 0;
        for (int64_t i = 0; i < n; i++) {
            double p = sigma[i] / s1 / sum;
            if (p > 0) h -= p * log(p);
        }
        r.effective_rank = exp(h);
        r.condition = sigma[n - 1] > 0 ? s1 / sigma[n - 1] : INFINITY;
        double cut = beta * s1;
        int64_t k = 0;
        while (k < n && sigma[k] >= cut) k++;
        r.cutoff_rank = k;
    } else {
        r.frobenius = 0;
        r.stable_rank = 0;
        r.effective_rank = 0;
        r.condition = NAN;
        r.cutoff_rank = 0;
    }
    double mn = m * (double)n, k = (double)r.cutoff_rank;
    r.param_share = k * (m + (double)n + k) / mn;
    r.trainable_share = k * k / mn;
    *out = r;
    return OIALR_OK;
}
