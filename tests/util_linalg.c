/*
 * util_linalg.c — see util_linalg.h.
 */
#include "util_linalg.h"

#include <math.h>
#include <stdlib.h>

#include "oialr/base.h"

void tu_orthonormal(double *q, int m, int n, uint64_t seed) {
    oialr_rng r;
    oialr_rng_seed(&r, seed, 7);
    for (size_t i = 0; i < (size_t)m * n; i++) q[i] = oialr_rng_normal(&r);
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < n; j++) {
            double *x = q + (size_t)j * m;
            for (int p = 0; p < j; p++) {
                const double *y = q + (size_t)p * m;
                double d = 0;
                for (int i = 0; i < m; i++) d += x[i] * y[i];
                for (int i = 0; i < m; i++) x[i] -= d * y[i];
            }
            double nr = 0;
            for (int i = 0; i < m; i++) nr += x[i] * x[i];
            nr = sqrt(nr);
            for (int i = 0; i < m; i++) x[i] /= nr;
        }
}

void tu_rotate_cols(double *x, int d, int i, int j, double t) {
    double c = cos(t), s = sin(t);
    double *a = x + (size_t)i * d, *b = x + (size_t)j * d;
    for (int k = 0; k < d; k++) {
        double ai = a[k], bj = b[k];
        a[k] = c * ai + s * bj;
        b[k] = -s * ai + c * bj;
    }
}

void tu_compose(double *w, int rows, int cols, const double *u, const double *s, const double *v) {
    int m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int k = 0; k < n; k++) acc += u[i + (size_t)k * m] * s[k] * v[j + (size_t)k * n];
            if (rows >= cols) w[(size_t)i * cols + j] = acc; /* stored = W */
            else w[(size_t)j * cols + i] = acc;              /* stored = Wᵀ */
        }
}

void tu_to_float(float *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

double tu_maxdiff(const double *a, const double *b, size_t n) {
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(a[i] - b[i]));
    return mx;
}
