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
 *              glob is declared (with factored snapshots, docs/format.md,
 *              for those the model can hold low-rank when an OIALR
 *              controller hook is in the run), /config is filled (model spec, optimizer,
 *              schedule, options' key/values), SWMR starts, snapshot at the
 *              current step (0 for a fresh run) and a metrics row;
 *   step_end   snapshot + metrics row every `every` steps;
 *   eval_end   metrics row (validation/test columns filled);
 *   epoch_end  snapshot if every_epoch, then the checkpoint (parameters,
 *              optimizer moments and count, step, epoch, RNG states, data
 *              order) if checkpoint is set;
 *   run_end    snapshot of the final state unless already taken (not after
 *              a write error, nor after a divergence that left NaN/Inf in
 *              the parameters: OIALR_ERR_DIVERGED in trainer->status), wait
 *              until everything queued is written, close. An error stops
 *              the run before its epoch_end, so the checkpoint stays the
 *              last epoch end's.
 *
 * Asynchronous writing. The training thread only copies: each snapshot goes
 * into one of OIALR_RECORD_POOL buffers (the checkpoint into one buffer of
 * its own) and onto a queue; a writer thread started at the end of
 * run_begin makes every HDF5 call until run_end joins it. When all buffers
 * are queued the training thread waits for the writer (back-pressure): no
 * snapshot is ever dropped, and the memory held is bounded by
 *   OIALR_RECORD_POOL x snapshot bytes  +  checkpoint bytes (parameters,
 *   optimizer moments, data order)     +  a 64-job queue (~8 KB),
 * e.g. for mlp:512,512 on Fashion-MNIST 3 x 2.67 MB + 5.8 MB (SGD with
 * momentum; 8.5 MB with AdamW; each layer and checkpoint array padded to a
 * 4 KiB page). The writer thread runs as SCHED_BATCH on Linux, so waking it
 * does not preempt the training thread. It writes snapshots by direct I/O
 * where the filesystem allows (OIALR_DIRECT_IO=0 turns it off) and through
 * the page cache when the disk falls behind; metrics rows go to the file in
 * batches, at most ~1 s after they were queued (docs/format.md, "How the
 * writer writes").
 * A write error (disk full: OIALR_ERR_IO) is returned, with the writer's
 * message, by the recorder's next callback (so the run stops at the next
 * step) and again by run_end. A process killed with SIGKILL keeps every
 * snapshot written before the kill; the up to OIALR_RECORD_POOL still
 * queued are lost. SIGINT/SIGTERM are blocked in the writer thread, so
 * they reach the training thread's handler (oialr train sets trainer->stop
 * and run_end still drains the queue).
 *
 * Because the Debian HDF5 is not built thread-safe, a process running a
 * recorder must make no other HDF5 call (another trajectory, h5 files of its
 * own) between run_begin and run_end. The log callback (oialr_set_log) may
 * be called from the writer thread (e.g. NaN warnings).
 */
#ifndef OIALR_RECORD_H
#define OIALR_RECORD_H

#include "oialr/train.h"
#include "oialr/trajectory.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Snapshot buffers between the training thread and the writer thread. */
#define OIALR_RECORD_POOL 3

typedef struct oialr_record_options {
    const char *path;          /* required */
    int64_t every;             /* snapshot every N steps (0: only begin/end/epochs) */
    int every_epoch;           /* also snapshot at each epoch end */
    const char *layers;        /* glob on parameter names; NULL or "": all matrices */
    int force;                 /* overwrite an existing file */
    int compress;              /* 0: none, 1..9: shuffle + deflate level */
    int checkpoint;            /* write the checkpoint at epoch ends (default 1) */
    int64_t checkpoint_every;  /* and every N steps, between two steps (default
                                * OIALR_RECORD_CHECKPOINT_EVERY; 0: epoch ends only) */
    int resume;                /* continue the trajectory at path: the trainer resumes
                                * from its checkpoint (oialr_record_resume); at
                                * run_begin the file is reopened and what was
                                * recorded after the checkpoint's step is dropped */
    uint64_t seed;             /* root attribute "seed" */
    const char *command_line;  /* root attribute "command_line" */
    int nconfig;               /* extra /config attributes */
    const char *const *config_keys;
    const char *const *config_values;
} oialr_record_options;

#define OIALR_RECORD_CHECKPOINT_EVERY 1000

/* every = 50, checkpoint = 1, checkpoint_every = 1000, the rest 0/NULL. */
OIALR_API void oialr_record_options_default(oialr_record_options *opt);

/* Fill *hook and create the trajectory file now (so "file exists" or a bad
 * directory is reported before training). The options' strings are copied. */
OIALR_API int oialr_record_hook_init(oialr_hook *hook, const oialr_record_options *opt);

/* Continue a stopped or killed run: read the checkpoint of the trajectory
 * at path into t (oialr_trainer_resume), the hooks' states included. Call
 * it after every hook is added and before oialr_train_run; t must be built
 * as the run was (model, data, configuration, the same hooks in the same
 * order); a recorder hook among them should have been made with resume = 1
 * and the same path. OIALR_ERR_NOTFOUND if the file has no checkpoint,
 * OIALR_ERR_MISMATCH (naming the item) if it does not fit t. */
OIALR_API int oialr_record_resume(oialr_trainer *t, const char *path);

/* Close the file if still open and free the hook's state. Safe to call
 * twice, and on a hook whose init failed. */
OIALR_API void oialr_record_hook_free(oialr_hook *hook);

/* The trajectory, for the caller's own HDF5 calls, only while no writer
 * thread owns it: after init and before run_begin. NULL during the run
 * (from run_begin to run_end) and once closed. */
OIALR_API oialr_traj *oialr_record_trajectory(const oialr_hook *hook);

/* Queue an event (a switch/rotate/truncate decision of the OIALR
 * controller, oialr/lowrank.h, or of a hook of yours) to be appended in
 * order with the snapshots; from the training thread, during
 * the run. OIALR_ERR_ARG for a bad kind; a write error comes back like any
 * other (here or at the next step). */
OIALR_API int oialr_record_event(oialr_hook *hook, const oialr_traj_event *ev);

typedef struct oialr_record_info {
    int64_t snapshots;      /* snapshots written (every layer flushed) */
    uint64_t bytes;         /* snapshot data written, uncompressed */
    /* training thread */
    double hook_seconds;    /* inside the recorder's callbacks, all of it: */
    double copy_seconds;    /*   copying weights / checkpoint into buffers */
    double wait_seconds;    /*   waiting for a free buffer (back-pressure) */
    int64_t waits;          /*   how many times it had to wait */
    double end_seconds;     /*   run_end: draining the queue and closing */
    /* writer thread */
    double write_seconds;   /* busy in HDF5 (appends, flushes, checkpoints), wall */
    double write_cpu_seconds; /* of which on a CPU (the rest waits for the disk):
                             * what the writer can take from training */
    double write_mb_s;      /* bytes / write_seconds, MB/s */
    uint64_t direct_bytes;  /* file bytes written with O_DIRECT, past the page cache */
    /* memory */
    int pool;               /* OIALR_RECORD_POOL */
    size_t snapshot_bytes;  /* one snapshot of the selected layers */
    size_t held_bytes;      /* pool + checkpoint buffer */
} oialr_record_info;

/* Counters so far (safe while the run goes) or of the finished run. */
OIALR_API void oialr_record_get_info(const oialr_hook *hook, oialr_record_info *info);

/* Shorthand: bytes and snapshots written, and the training thread's
 * seconds inside the recorder's callbacks (hook_seconds; the writer's time
 * is in oialr_record_get_info). */
OIALR_API void oialr_record_stats(const oialr_hook *hook, uint64_t *bytes, double *seconds, int64_t *snapshots);

#ifdef __cplusplus
}
#endif
#endif /* OIALR_RECORD_H */
