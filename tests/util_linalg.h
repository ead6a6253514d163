/*
 * util_linalg.h — small dense linear algebra for building test matrices with
 * known singular vectors and spectra (double, column-major unless stated).
 * Shared by every test binary; symbols prefixed tu_.
 */
#ifndef TESTS_UTIL_LINALG_H
#define TESTS_UTIL_LINALG_H

#include <stddef.h>
#include <stdint.h>

/* m×n (m >= n) matrix with orthonormal columns, from a seeded Gaussian by
 * modified Gram-Schmidt applied twice. */
void tu_orthonormal(double *q, int m, int n, uint64_t seed);

/* Rotate columns i and j of the d×n matrix X by angle t:
 * x_i <- cos t x_i + sin t x_j,  x_j <- -sin t x_i + cos t x_j. */
void tu_rotate_cols(double *x, int d, int i, int j, double t);

/* Stored (row-major rows×cols) matrix whose tall orientation is
 * U diag(s) Vᵀ, with U m×n, V n×n column-major, m = max, n = min. */
void tu_compose(double *w, int rows, int cols, const double *u, const double *s, const double *v);

/* Convert n doubles to float. */
void tu_to_float(float *dst, const double *src, size_t n);

/* max |a_i - b_i| */
double tu_maxdiff(const double *a, const double *b, size_t n);

#endif
