/*
 * metrics/internal.h — what the library's other parts need of a factor
 * beyond the public API: its whole state as bytes, for a checkpoint (the
 * OIALR controller keeps the factors of its last checks). Not installed.
 */
#ifndef OIALR_METRICS_INTERNAL_H
#define OIALR_METRICS_INTERNAL_H

#include "oialr/metrics.h"

#include <stddef.h>

/* Bytes factor_state_save writes for f (fixed by its shape and precision). */
size_t factor_state_bytes(const oialr_factor *f);
/* The same for a factor oialr_factor_new(rows, cols, prec) would make. */
size_t factor_state_bytes_shape(int64_t rows, int64_t cols, int prec);
void factor_state_save(const oialr_factor *f, unsigned char *buf);
/* Back from factor_state_save of a factor of the same shape and precision. */
void factor_state_load(oialr_factor *f, const unsigned char *buf);

/* The Gram path (svd.c, docs/metrics.md "Precision"): factors computed from
 * the eigen-decomposition of the float64 Gram matrix WᵀW, float64 gesdd for a
 * matrix whose condition number exceeds 1e5; the factors keep the
 * workspace's precision (a float32 factor holds Q and Vᵀ rounded from
 * float64, σ in float64). Off by default (plain gesdd). */
void svd_ws_set_gram(oialr_svd_ws *ws, int on);
int svd_ws_gram(const oialr_svd_ws *ws);
/* Factors made by the Gram path, and those sent on to gesdd. */
void svd_ws_gram_counts(const oialr_svd_ws *ws, int64_t *gram, int64_t *ill);
/* Testing: every matrix takes the ill-conditioned route. */
void svd_ws_force_ill(oialr_svd_ws *ws, int force);

#endif
