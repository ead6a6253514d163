/*
 * lowrank/internal.h — the controller's numerical steps (switch.c), used by
 * controller.c and the tests. Not installed.
 */
#ifndef OIALR_LOWRANK_INTERNAL_H
#define OIALR_LOWRANK_INTERNAL_H

#include "oialr/lowrank.h"

/* Workspace of the steps below, grown as needed. */
typedef struct lr_work {
    float *a, *b, *c, *d, *e;
    size_t na, nb, nc, nd, ne;
} lr_work;
void lr_work_free(lr_work *w);

/* Switch param to low rank: thin SVD W = U S Vᵀ, Σ = diag(S), then the
 * first truncation (oialr_lowrank_keep with beta); the optimizer's moments
 * of W become Σ's by `moments` (enum oialr_moment_rule). *rank_after gets
 * the rank kept. */
int lr_switch(oialr_model *m, oialr_optim *o, int param, double beta, int moments, lr_work *w, int *rank_after);

/* Rotate a low-rank param: SVD Σ = U_σ S V_σᵀ, U <- U U_σ, V <- V V_σ,
 * Σ <- diag(S), moments rotated likewise; then truncate by the rule.
 * *rank_before / *rank_after: the rank before and after the truncation. */
int lr_rotate(oialr_model *m, oialr_optim *o, int param, double beta, int moments, lr_work *w, int *rank_before,
              int *rank_after);

/* The policy's state as bytes (a checkpoint of the controller, controller.c):
 * policy_state_bytes of them, loaded into a state made for the same policy
 * and layer count. */
size_t policy_state_bytes(const oialr_policy_state *st);
void policy_state_save(const oialr_policy_state *st, unsigned char *buf);
void policy_state_load(oialr_policy_state *st, const unsigned char *buf);

#endif
