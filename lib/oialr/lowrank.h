/*
 * oialr/lowrank.h — OIALR: train full rank until a layer's orthogonal bases
 * have settled, then freeze U and V and train only a small r x r Σ,
 * re-rotating the bases and dropping small singular values as training
 * goes on (docs/lowrank.md).
 *
 * Three parts:
 *   - the model side: a weight held as W = U Σ Vᵀ, U and V frozen, Σ in the
 *     weight's own slot of the parameter buffer (lib/model/lowrank.c);
 *   - switch policies, shared by the online controller and by
 *     `oialr analyze --policy` replaying a recorded run (lib/lowrank/policy.c);
 *   - the controller, a training hook: every `every` steps it measures each
 *     full-rank layer's stability with lib/metrics, asks the policy, and
 *     switches, rotates and truncates (lib/lowrank/controller.c).
 */
#ifndef OIALR_LOWRANK_H
#define OIALR_LOWRANK_H

#include "oialr/base.h"
#include "oialr/model.h"
#include "oialr/optim.h"
#include "oialr/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Model side */

/* 1 if parameter `param` is a weight the model can hold low-rank: the weight
 * of a dense layer (a ViT's attention projections and MLP blocks are dense
 * layers) or of a conv (through its OC x C*KH*KW matrix view). */
OIALR_API int oialr_model_lowrank_capable(const oialr_model *m, int param);

/* Hold `param` as W = u s vᵀ from now on: u [rows, rank], s [rank, rank],
 * v [cols, rank], row-major, copied. The first call sizes the layer for
 * `rank`, which it may then never exceed. */
OIALR_API int oialr_model_lowrank_set(oialr_model *m, int param, const float *u, const float *s, const float *v,
                                      int rank);

/* The frozen factors of a low-rank weight (pointers into the model, valid
 * until the next set or truncate; a rotation may overwrite them through
 * oialr_model_lowrank_set). */
OIALR_API int oialr_model_lowrank_factors(oialr_model *m, int param, float **u, float **v, int *rank);

/* Keep the first `rank` singular directions: the first columns of U and V,
 * the leading block of Σ and of the optimizer's moments (o may be NULL). */
OIALR_API int oialr_model_lowrank_truncate(oialr_model *m, oialr_optim *o, int param, int rank);

/* ---------------------------------------------------------------------------
 * Truncation rule: keep σ_i >= beta·σ_1, cut at most half of the current
 * rank in one update, keep at least max(1, ⌊0.01·n⌋) (n = min(rows, cols)),
 * never grow. sigma: `cur` values, descending. */
OIALR_API int oialr_lowrank_keep(const float *sigma, int cur, int n, double beta);
/* The same rule given the number of values that pass the beta test. */
OIALR_API int oialr_lowrank_keep_rank(int passing, int cur, int n);

/* ---------------------------------------------------------------------------
 * Switch policies: when does a layer leave full rank? */

enum oialr_policy_kind {
    OIALR_POLICY_NONE = 0,
    OIALR_POLICY_AUTO,           /* "auto": no per-model tuning (docs/lowrank.md) */
    OIALR_POLICY_STABILITY,      /* "stability:TAU[,lag=STEPS]": per layer, S >= TAU */
    OIALR_POLICY_MEAN_STABILITY, /* "mean-stability:TAU": all layers at once, on the mean S */
    OIALR_POLICY_DELAY,          /* "delay:STEPS": all layers at that step (the published method) */
};

typedef struct oialr_policy {
    int kind;
    double tau;        /* STABILITY, MEAN_STABILITY */
    int64_t lag;       /* STABILITY: steps between the two snapshots compared (0: one check) */
    int64_t delay;     /* DELAY */
    int64_t span;      /* AUTO: steps over which the rotation must have stopped
                        * falling (0: two checks; the controller and the replay
                        * set two epochs) */
} oialr_policy;

/* Parse "auto", "stability:0.99[,lag=500]", "mean-stability:0.99" or
 * "delay:1000"; OIALR_ERR_ARG with a message naming what is wrong. */
OIALR_API int oialr_policy_parse(const char *s, oialr_policy *p);

/* The policy as the string that parses back to it. */
OIALR_API void oialr_policy_format(const oialr_policy *p, char *buf, size_t size);

/* What the policy keeps between checks, for nlayers layers. */
typedef struct oialr_policy_state oialr_policy_state;
OIALR_API int oialr_policy_state_new(oialr_policy_state **st, const oialr_policy *p, int nlayers);
OIALR_API void oialr_policy_state_free(oialr_policy_state *st);

/* One check at `step`. lr: the learning rate at this step (auto measures
 * the rotation per unit of it; <= 0 or NAN: unknown, the rotation is taken
 * as it is). s[i]: layer i's stability against the check `lag` steps before
 * (NAN when there is none yet, or the layer has switched); done[i]: layer i
 * has switched already. Sets go[i] = 1 for each layer that switches now
 * (the others 0); steps before min_steps never switch. Returns the number of
 * layers that switch. The same calls, with the same stabilities and rates,
 * give the same decisions online and in a replay. */
OIALR_API int oialr_policy_check(oialr_policy_state *st, int64_t step, int64_t min_steps, double lr,
                                 const double *s, const int *done, int *go);

/* ---------------------------------------------------------------------------
 * The controller hook */

typedef struct oialr_lowrank_options {
    oialr_policy policy;
    int64_t every;       /* steps between checks (0: the default, docs/lowrank.md) */
    int64_t min_steps;   /* no switch before this step */
    double beta;         /* truncation: drop σ_i < beta·σ_1 (0.15) */
    int keep_first;      /* the first eligible layer stays full rank */
    int keep_last;       /* the classifier stays full rank (1; 0 makes it eligible) */
    double max_aspect;   /* skip a layer whose max(rows,cols)/min(rows,cols) >= this (10) */
    int moments;         /* enum oialr_moment_rule */
    oialr_hook *recorder; /* where the events go (a recorder hook, or NULL) */
} oialr_lowrank_options;

/* What happens to the optimizer's moments of W at the switch, and of Σ at
 * a rotation. The first moment is linear in the gradients, so both rules
 * carry it over exactly (M_Σ = Uᵀ M_W V, M ← U_σᵀ M V_σ); they differ in the
 * second (AdamW's v). */
enum oialr_moment_rule {
    OIALR_MOMENTS_PROJECT = 0, /* m carried exactly, v by the squared bases, (U∘U)ᵀ v (V∘V) */
    OIALR_MOMENTS_RESET = 1,   /* both moments start from zero (the reference; the default) */
};

OIALR_API void oialr_lowrank_options_default(oialr_lowrank_options *o);

/* A controller hook for `model` (add it to the trainer after the recorder,
 * so the snapshot at a step precedes that step's switch). */
OIALR_API int oialr_lowrank_hook_init(oialr_hook *hook, const oialr_lowrank_options *opt);
OIALR_API void oialr_lowrank_hook_free(oialr_hook *hook);

/* Per-layer outcome, for the final table. */
typedef struct oialr_lowrank_layer {
    char name[64];
    int64_t rows, cols;
    int eligible;        /* 0: kept full rank (classifier, first layer, aspect) */
    const char *why;     /* when not eligible: "classifier", "first layer", "aspect ratio" */
    int64_t switch_step; /* -1: never switched */
    double switch_stability; /* the stability that triggered it (NAN for delay) */
    int rank;            /* current rank (min(rows, cols) while full rank) */
} oialr_lowrank_layer;

/* Number of weight layers the controller looks at, and layer i. */
OIALR_API int oialr_lowrank_nlayers(const oialr_hook *hook);
OIALR_API const oialr_lowrank_layer *oialr_lowrank_layer_at(const oialr_hook *hook, int i);
/* Seconds of the training thread spent in checks, switches and rotations. */
OIALR_API double oialr_lowrank_seconds(const oialr_hook *hook);
/* 1 if hook is an OIALR controller (the recorder then declares factored
 * snapshots for the layers the model can hold low-rank). */
OIALR_API int oialr_lowrank_is_hook(const oialr_hook *hook);

#ifdef __cplusplus
}
#endif
#endif
