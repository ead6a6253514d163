/*
 * oialr/record.h — the recorder hook for the built-in trainer: snapshots
 * every selected weight matrix into an HDF5 trajectory (oialr/trajectory.h)
 * while oialr_train_run() goes.
 *
 *   oialr_record_options ro;
 *   oialr_record_options_default(&ro);
 *   ro.path = "run.h5"; ro.every = 50;
 *   oialr_hook h;
 *   if ((rc = oialr_record_hook_init(&h, &ro))) ...   // creates the file now
 *   oialr_trainer_add_hook(&trainer, &h);
 *   rc = oialr_train_run(&trainer);                    // run_end closes it
 *   oialr_record_hook_free(&h);
 *
 * What is written when:
 *   run_begin  every OIALR_PARAM_MATRIX parameter whose name matches the
 *              glob is declared, /config is filled (model spec, optimizer,
 *              schedule, options' key/values), SWMR starts, snapshot at the
 *              current step (0 for a fresh run) and a metrics row;
 *   step_end   snapshot + metrics row every `every` steps;
 *   eval_end   metrics row (validation/test columns filled);
 *   epoch_end  snapshot if every_epoch, then the checkpoint (parameters,
 *              optimizer moments and count, step, epoch, RNG states, data
 *              order) if checkpoint is set;
 *   run_end    snapshot of the final state unless already taken, close.
 */
#ifndef OIALR_RECORD_H
#define OIALR_RECORD_H

#include "oialr/train.h"
#include "oialr/trajectory.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct oialr_record_options {
    const char *path;          /* required */
    int64_t every;             /* snapshot every N steps (0: only begin/end/epochs) */
    int every_epoch;           /* also snapshot at each epoch end */
    const char *layers;        /* glob on parameter names; NULL or "": all matrices */
    int force;                 /* overwrite an existing file */
    int compress;              /* 0: none, 1..9: shuffle + deflate level */
    int checkpoint;            /* write the checkpoint at epoch ends (default 1) */
    uint64_t seed;             /* root attribute "seed" */
    const char *command_line;  /* root attribute "command_line" */
    int nconfig;               /* extra /config attributes */
    const char *const *config_keys;
    const char *const *config_values;
} oialr_record_options;

/* every = 50, checkpoint = 1, the rest 0/NULL. */
OIALR_API void oialr_record_options_default(oialr_record_options *opt);

/* Fill *hook and create the trajectory file now (so "file exists" or a bad
 * directory is reported before training). The options' strings are copied. */
OIALR_API int oialr_record_hook_init(oialr_hook *hook, const oialr_record_options *opt);

/* Close the file if still open and free the hook's state. Safe to call
 * twice, and on a hook whose init failed. */
OIALR_API void oialr_record_hook_free(oialr_hook *hook);

/* The trajectory being written (NULL once closed), e.g. for the OIALR
 * controller's events. */
OIALR_API oialr_traj *oialr_record_trajectory(const oialr_hook *hook);

/* Bytes of snapshot data appended so far (uncompressed), and seconds spent
 * inside the recorder's callbacks: for overhead reports. */
OIALR_API void oialr_record_stats(const oialr_hook *hook, uint64_t *bytes, double *seconds, int64_t *snapshots);

#ifdef __cplusplus
}
#endif
#endif /* OIALR_RECORD_H */
