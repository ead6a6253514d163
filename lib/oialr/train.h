/*
 * oialr/train.h — the built-in training loop and its hook interface.
 *
 * A hook is a struct of optional callbacks plus a user pointer. The loop
 * calls them in registration order; a callback returning non-zero stops the
 * run and that code is returned by oialr_train_run(). Hooks see the whole
 * trainer state (model, parameters, optimizer, step, metrics) through
 * const-less pointers, so a hook may also act on the run (stop it, change
 * parameters), not only observe it.
 *
 *   run_begin
 *   for each epoch:
 *       epoch_begin
 *       for each batch:  step_begin, forward/backward/update, step_end
 *       evaluation (validation and test sets, each epoch), eval_end
 *       epoch_end
 *   run_end   (also after an error or a stop, with trainer->status set)
 */
#ifndef OIALR_TRAIN_H
#define OIALR_TRAIN_H

#include "oialr/base.h"
#include "oialr/data.h"
#include "oialr/model.h"
#include "oialr/optim.h"
#include "oialr/params.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Data-parallel training (docs/distributed.md): size processes run the same
 * loop on the same data and parameters. Each takes rows [B·rank/size,
 * B·(rank+1)/size) of every global batch of B samples (cfg.batch), weights
 * its gradient by its share of B, and one allreduce per step sums the
 * trainable gradients (packed: only what the optimizer updates), the
 * non-trained buffers (batch-norm statistics, weighted likewise), the loss,
 * the correct count and the stop flag; every process then makes the same
 * update. Evaluation is sharded by batch and reduced too. The library knows
 * no transport: allreduce is the caller's (the CLI fills it with MPI,
 * tools/mpi.c). size 0 or 1: alone, and the loop is the plain one. */
typedef struct oialr_train_dist {
    int rank, size;
    /* Sum x[0..n) over the processes in place, the same bits on every one;
     * non-zero stops the run (it is returned by oialr_train_run). */
    int (*allreduce)(float *x, size_t n, void *user);
    void *user;
} oialr_train_dist;

typedef struct oialr_train_config {
    int epochs;
    int batch;
    int64_t max_steps;        /* stop after this many steps (0: no limit) */
    uint64_t seed;
    float label_smoothing;
    int eval_every;           /* also evaluate every N steps (0: per epoch only) */
    oialr_optim_config optim;
    oialr_schedule schedule;  /* total/base_lr are filled by oialr_train_run if 0 */
    oialr_train_dist dist;    /* data-parallel training (zero: alone) */
} oialr_train_config;

/* The defaults of oialr train (10 epochs, batch 128, SGD ...) in cfg. */
OIALR_API void oialr_train_defaults(oialr_train_config *cfg);

/* Metrics of the current step / last evaluation. NAN when not known yet. */
typedef struct oialr_train_metrics {
    int64_t step;          /* optimizer updates done so far */
    int epoch;             /* 0-based epoch in progress */
    float loss;            /* mean training loss of the last step */
    float train_acc;       /* running accuracy over the epoch so far */
    float val_loss, val_acc;
    float test_loss, test_acc;
    float lr;
    float trainable_fraction;
    double seconds;        /* wall time since run_begin */
    double samples_per_s;  /* training throughput of the epoch so far */
    double allreduce_bytes; /* data-parallel: bytes the last step all-reduced (0 alone) */
} oialr_train_metrics;

typedef struct oialr_trainer oialr_trainer;

typedef struct oialr_hook {
    const char *name;
    void *user;
    int (*run_begin)(oialr_trainer *t, void *user);
    int (*epoch_begin)(oialr_trainer *t, void *user);
    int (*step_begin)(oialr_trainer *t, void *user);
    int (*step_end)(oialr_trainer *t, void *user);
    int (*eval_end)(oialr_trainer *t, void *user);
    int (*epoch_end)(oialr_trainer *t, void *user);
    int (*run_end)(oialr_trainer *t, void *user);
    /* Optional: the hook's own part of a checkpoint, for hooks that keep
     * state the run's result depends on (the OIALR controller). state_size
     * gives the bytes state_save writes, fixed for a run; it may be called
     * before the hook's run_begin (by the recorder, whose run_begin comes
     * first). When a run resumes (oialr_trainer_resume), state_load gets
     * back what state_save wrote, right after the hook's run_begin. */
    size_t (*state_size)(oialr_trainer *t, void *user);
    int (*state_save)(oialr_trainer *t, void *user, void *buf, size_t n);
    int (*state_load)(oialr_trainer *t, void *user, const void *buf, size_t n);
} oialr_hook;

#define OIALR_MAX_HOOKS 16

struct oialr_trainer {
    oialr_train_config cfg;
    oialr_model *model;
    oialr_params *params;
    oialr_optim optim;
    oialr_loader *train, *val, *test;  /* val/test may be NULL */
    oialr_train_metrics metrics;
    int64_t steps_per_epoch;
    int64_t total_steps;
    int status;                        /* OIALR_OK, or why the run stopped */
    int stop;                          /* set to 1 (e.g. from a signal) to stop after this step */
    oialr_hook hooks[OIALR_MAX_HOOKS];
    int nhooks;
    int at_epoch_end;                  /* 1 while the epoch_end hooks run (and after, if one stops the run) */
    int resumed;                       /* 1: this run continues a checkpoint (oialr_trainer_resume) */
    int resume_in_epoch;               /*   it stopped inside its epoch (not at an epoch end) */
    void *hook_state[OIALR_MAX_HOOKS]; /* resumed: each hook's state_save bytes (a copy; NULL: none) */
    size_t hook_state_n[OIALR_MAX_HOOKS];
    float *xbuf;                       /* [batch, c*h*w] */
    uint8_t *ybuf;                     /* [batch] */
    int64_t epoch_seen, epoch_correct;
    double t0, epoch_t0;
    float *dist_buf;                   /* data-parallel: the packed all-reduce buffer */
    size_t dist_cap;                   /*   its floats */
};

/* What a checkpoint holds of a trainer: views into its state (valid until
 * the next step) and the scalars that place a run, so that a checkpoint
 * writer (the recorder) needs nothing of the trainer's internals. A state
 * taken between two steps (step_begin, epoch_end) and given back to
 * oialr_trainer_resume continues the run exactly where it was: with one
 * thread, bit for bit. */
typedef struct oialr_train_state {
    const float *params;            /* [n] the parameter buffer */
    const float *optim_m, *optim_v; /* [n] the optimizer's moments, NULL if it keeps none */
    size_t n;
    int64_t optim_t;                /* the optimizer's update count */
    int64_t step, epochs_done;      /* epochs_done: epoch in progress + 1 at an epoch end, else the epoch in progress */
    int at_epoch_end;               /* 1: taken at an epoch end (its evaluation done) */
    double seconds;                 /* wall time since run_begin */
    const int64_t *loader_order;    /* [loader_n] the training data order of this epoch */
    int64_t loader_n, loader_cursor;
    oialr_rng model_rng, loader_rng; /* model_rng zero if the model has none */
    int64_t epoch_seen, epoch_correct; /* the epoch's running accuracy so far */
    float loss, lr, val_loss, val_acc, test_loss, test_acc; /* the latest metrics */
} oialr_train_state;

/* Fill s from t (t's optimizer must be initialised: from run_begin on). */
OIALR_API void oialr_trainer_get_state(const oialr_trainer *t, oialr_train_state *s);

/* Continue from s (a checkpoint of this same run: same model, data and
 * configuration) at the next oialr_train_run: parameters, moments, step,
 * data order, generators and metrics are copied in now; hook_state[h] (or
 * NULL; copied) goes to hook h's state_load after its run_begin. Hooks see
 * t->resumed = 1 in run_begin. OIALR_ERR_MISMATCH if s does not fit t. */
OIALR_API int oialr_trainer_resume(oialr_trainer *t, const oialr_train_state *s, const void *const *hook_state,
                                   const size_t *hook_state_n);

/* The trainer borrows model and loaders; it owns the optimizer state. */
OIALR_API int oialr_trainer_init(oialr_trainer *t, const oialr_train_config *cfg, oialr_model *model,
                                 oialr_loader *train, oialr_loader *val, oialr_loader *test);
OIALR_API void oialr_trainer_free(oialr_trainer *t);
OIALR_API int oialr_trainer_add_hook(oialr_trainer *t, const oialr_hook *hook);
OIALR_API int oialr_train_run(oialr_trainer *t);
/* Evaluate on a loader: mean loss and accuracy (eval mode). */
OIALR_API int oialr_evaluate(oialr_model *m, oialr_loader *l, float *xbuf, int batch, float *loss, float *acc);

#ifdef __cplusplus
}
#endif
#endif
