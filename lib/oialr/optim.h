/*
 * oialr/optim.h — SGD (momentum, Nesterov) and AdamW with decoupled weight
 * decay over the flat parameter buffer; learning-rate schedules.
 */
#ifndef OIALR_OPTIM_H
#define OIALR_OPTIM_H

#include "oialr/base.h"
#include "oialr/params.h"

#ifdef __cplusplus
extern "C" {
#endif

enum oialr_opt_kind { OIALR_OPT_SGD = 0, OIALR_OPT_ADAMW = 1, OIALR_OPT_COUNT };
enum oialr_sched_kind { OIALR_SCHED_CONSTANT = 0, OIALR_SCHED_STEP = 1, OIALR_SCHED_COSINE = 2, OIALR_SCHED_COUNT };

/* The kinds' names by enum value, NULL after the last ("sgd", "adamw";
 * "constant", "step", "cosine"): the CLI's choices and /config's values. */
OIALR_API extern const char *const oialr_opt_names[OIALR_OPT_COUNT + 1];
OIALR_API extern const char *const oialr_sched_names[OIALR_SCHED_COUNT + 1];

typedef struct oialr_optim_config {
    int kind;            /* enum oialr_opt_kind */
    float lr;
    float momentum;      /* SGD */
    int nesterov;        /* SGD */
    float beta1, beta2, eps; /* AdamW */
    float weight_decay;  /* decoupled: w -= lr * wd * w (SGD: PyTorch's L2 form) */
} oialr_optim_config;

typedef struct oialr_optim {
    oialr_optim_config cfg;
    size_t total;
    float *m;            /* momentum buffer / Adam first moment */
    float *v;            /* Adam second moment (NULL for SGD) */
    int64_t t;           /* update count */
} oialr_optim;

/* The defaults of optimizer kind (enum oialr_optim_kind) in cfg. */
OIALR_API void oialr_optim_defaults(oialr_optim_config *cfg, int kind);
/* Allocate the moments for the parameters p (zeroed); o owns them. */
OIALR_API int oialr_optim_init(oialr_optim *o, const oialr_optim_config *cfg, const oialr_params *p);
OIALR_API void oialr_optim_free(oialr_optim *o);
/* One update of every trainable parameter with learning rate lr. */
OIALR_API void oialr_optim_step(oialr_optim *o, oialr_params *p, float lr);
/* Zero the moments of one parameter (e.g. for a hook that replaces it). */
OIALR_API void oialr_optim_reset_param(oialr_optim *o, const oialr_params *p, int index);

typedef struct oialr_schedule {
    int kind;            /* enum oialr_sched_kind */
    float base_lr;
    int64_t warmup;      /* linear warm-up steps (all kinds) */
    int64_t total;       /* total steps (cosine) */
    int64_t step_size;   /* STEP: multiply by gamma every step_size steps */
    float gamma;
    float min_lr;        /* cosine floor */
} oialr_schedule;

/* The learning rate at step (0-based): warm-up, then the schedule's kind. */
OIALR_API float oialr_schedule_lr(const oialr_schedule *s, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
