/*
 * oialr/trajectory.h — the HDF5 trajectory: write and read how every weight
 * matrix moves during training. Standalone: needs only base.h, so any C
 * training loop can record without the rest of liboialr.
 *
 * File layout (docs/format.md is the reference):
 *
 *   /                     attrs format="oialr-trajectory", format_version,
 *                         created, seed, command_line, library
 *   /config               attrs: key = value strings (model, optimizer, ...)
 *   /layers/<name>/       attrs kind, shape (original), rows, cols
 *   /layers/<name>/weight float32 LE [T, rows, cols], chunk (1, rows, cols)
 *   /layers/<name>/step   int64 LE [T]
 *   /layers/<name>/rank   int32 LE [T]
 *   /layers/<name>/basis, sigma, u, v, basis_step
 *                         a low-rank layer's snapshots as factors U Σ Vᵀ
 *                         (declared with oialr_traj_declare_factors)
 *   /metrics/step         int64 LE [R];  /metrics/<column> float64 LE [R]
 *   /events               compound [E] (step, layer, kind, stability,
 *                         rank_before, rank_after)
 *   /checkpoint/...       the latest training state, two slots, see below
 *
 * Writer life cycle. HDF5 single-writer/multiple-reader (SWMR) mode forbids
 * creating objects once SWMR writing has started, so a writer has two phases:
 *
 *   oialr_traj_create()                      phase 1: define
 *     oialr_traj_set_config(), oialr_traj_declare_layer(),
 *     oialr_traj_declare_metrics(), oialr_traj_declare_ckpt_*()
 *   oialr_traj_begin()                       phase 2: record (SWMR on)
 *     oialr_traj_append(), oialr_traj_append_metrics(),
 *     oialr_traj_append_event(), oialr_traj_ckpt_*()
 *   oialr_traj_close()
 *
 * The first append calls oialr_traj_begin() by itself; declaring after it
 * returns OIALR_ERR_ARG. Every append is flushed before it returns, so a
 * process killed at any moment leaves a file holding every completed
 * snapshot. Snapshot i of a layer counts as complete once its step entry is
 * written (the step is written last).
 *
 * Where a new file lives (the output rules of oialr/base.h): it is created
 * under a temporary name beside its path (`.NAME.XXXXXX.part`) and renamed
 * to the path by oialr_traj_begin() (phase 2 is when readers may follow
 * it) or, when the first append begins phase 2 by itself, by that append.
 * A writer failing before that, or closed with oialr_traj_discard(), leaves
 * whatever stood at the path untouched. Nothing but a regular file is ever
 * replaced, only with force, and never one another process is writing
 * (OIALR_ERR_LOCKED, at create, or at that rename if the other writer
 * started meanwhile: this run's data then stay in the temporary file, whose
 * name the message gives). oialr_traj_close() fails with OIALR_ERR_IO when
 * the path no longer names the file written (removed or replaced meanwhile).
 *
 * Reader. oialr_traj_open(..., OIALR_TRAJ_READ) opens a closed file plainly.
 * A file whose writer is still running or was killed is marked "open for
 * write" in its superblock and HDF5 refuses a plain open; the reader then
 * opens it in SWMR-read mode, says so in oialr_traj_info.swmr_read and logs
 * one INFO line. oialr_traj_refresh() picks up snapshots appended since.
 *
 * Errors: every function returns OIALR_OK or an OIALR_ERR_* code and leaves a
 * one-line message naming the file in oialr_errmsg(). The library never
 * prints the HDF5 error stack.
 */
#ifndef OIALR_TRAJECTORY_H
#define OIALR_TRAJECTORY_H

#include "oialr/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OIALR_TRAJ_FORMAT "oialr-trajectory"
/* Version 2 adds factored snapshots of low-rank layers; a file without
 * factored layers is written as version 1, which every reader reads. */
#define OIALR_TRAJ_FORMAT_VERSION 2
#define OIALR_TRAJ_NAME_MAX 64 /* names incl. the terminating NUL */
#define OIALR_TRAJ_KIND_MAX 32

typedef struct oialr_traj oialr_traj; /* opaque */

/* ---------------------------------------------------------------------------
 * Opening */

enum oialr_traj_mode {
    OIALR_TRAJ_READ = 0,    /* read only; falls back to SWMR-read (see above) */
    OIALR_TRAJ_APPEND = 1,  /* reopen a closed trajectory to append more */
    OIALR_TRAJ_RECOVER = 2, /* APPEND, also to a file whose writer was killed
                             * (clears the "open for write" mark like
                             * `h5clear -s`); refused with OIALR_ERR_LOCKED
                             * while a writer process still holds the file */
};

typedef struct oialr_traj_options {
    int force;                /* replace an existing regular file (else
                               * OIALR_ERR_EXISTS; never anything else) */
    int compress;             /* 0: none; 1-9: shuffle + deflate at this level
                               * (silently none if the filters are unavailable) */
    uint64_t seed;            /* stored as the root attribute "seed" */
    const char *command_line; /* stored as "command_line" (may be NULL) */
} oialr_traj_options;

/* Zero options: no force, no compression, seed 0, no command line. */
OIALR_API void oialr_traj_options_default(oialr_traj_options *opt);

/* Create a new trajectory (phase 1). opt may be NULL (defaults). */
OIALR_API int oialr_traj_create(oialr_traj **out, const char *path, const oialr_traj_options *opt);

/* Open an existing trajectory (mode: enum oialr_traj_mode). Checks the
 * format attribute (OIALR_ERR_FORMAT) and format_version (OIALR_ERR_VERSION
 * if newer than this library). An APPEND-mode handle is in phase 2. */
OIALR_API int oialr_traj_open(oialr_traj **out, const char *path, int mode);

/* Open for appending (mode APPEND or RECOVER) after dropping everything
 * recorded after `step`: snapshots (and the bases only they use), metrics
 * rows and events. A run resumed from its checkpoint at `step` then writes
 * the later steps again, with no gap and no duplicate. The file is closed
 * once in between (another writer could take it then). */
OIALR_API int oialr_traj_open_rewind(oialr_traj **out, const char *path, int mode, int64_t step);

/* Flush and close; frees t even when it returns an error (e.g. disk full).
 * A new file still under its temporary name is completed and renamed into
 * place first. t may be NULL. */
OIALR_API int oialr_traj_close(oialr_traj *t);

/* Close without keeping a new file that was never renamed into place (no
 * begin, append or flush yet): it is removed, and the path stays as it was. A file
 * already in place, or opened for append, is closed as by
 * oialr_traj_close(). t may be NULL. */
OIALR_API int oialr_traj_discard(oialr_traj *t);

/* ---------------------------------------------------------------------------
 * Writing, phase 1: define */

/* A /config attribute (string); a second call with the same key replaces. */
OIALR_API int oialr_traj_set_config(oialr_traj *t, const char *key, const char *value);

/* Declare a weight matrix recorded as rows x cols (row-major, the PyTorch
 * out x in*kh*kw view; not re-oriented). kind is free text ("dense",
 * "conv2d"); shape/ndim the original shape (ndim 0..4; NULL: {rows, cols}).
 * name: 1..63 characters, no '/', not "." or "..". *index (may be NULL)
 * receives the layer's index for oialr_traj_append(). */
OIALR_API int oialr_traj_declare_layer(oialr_traj *t, const char *name, int64_t rows, int64_t cols,
                                       const char *kind, int ndim, const int64_t *shape, int *index);

/* Let a declared layer's snapshots also be stored as factors W = U Σ Vᵀ of
 * rank <= capacity (<= min(rows, cols)): a low-rank layer (OIALR) then costs
 * (rows + cols)·r disk only when its bases change and r² a snapshot
 * otherwise (docs/format.md). Makes the file format version 2. */
OIALR_API int oialr_traj_declare_factors(oialr_traj *t, int layer, int64_t capacity);

/* The default metric columns (the recorder hook's), used when none are
 * declared before begin: one X(name) per column, in file order, the single
 * source of the comma list OIALR_TRAJ_METRICS_DEFAULT ("epoch,loss,...,
 * seconds") and of its count OIALR_TRAJ_METRICS_DEFAULT_N. */
#define OIALR_TRAJ_METRICS_LIST(X)                                                                 \
    X(epoch) X(loss) X(train_acc) X(val_loss) X(val_acc) X(test_loss) X(test_acc) X(lr)            \
    X(trainable_fraction) X(seconds)
#define OIALR_TRAJ_METRIC_COMMA_NAME_(name) "," #name
#define OIALR_TRAJ_METRIC_ONE_(name) +1
#define OIALR_TRAJ_METRICS_DEFAULT (OIALR_TRAJ_METRICS_LIST(OIALR_TRAJ_METRIC_COMMA_NAME_) + 1)
#define OIALR_TRAJ_METRICS_DEFAULT_N (0 OIALR_TRAJ_METRICS_LIST(OIALR_TRAJ_METRIC_ONE_))

/* Declare the metric columns (besides "step", always present) as a comma
 * separated list, e.g. "epoch,loss,val_acc". Once per file. */
OIALR_API int oialr_traj_declare_metrics(oialr_traj *t, const char *columns);

/* Checkpoint items: float32 arrays of n elements, int64 arrays (e.g. a
 * data order), and 64-bit scalars. */
OIALR_API int oialr_traj_declare_ckpt_array(oialr_traj *t, const char *name, size_t n);
OIALR_API int oialr_traj_declare_ckpt_array_i64(oialr_traj *t, const char *name, size_t n);
OIALR_API int oialr_traj_declare_ckpt_scalar(oialr_traj *t, const char *name, int is_unsigned);

/* End phase 1: create what is still missing (metrics, events, checkpoint),
 * flush, start SWMR writing. Idempotent. */
OIALR_API int oialr_traj_begin(oialr_traj *t);

/* ---------------------------------------------------------------------------
 * Writing, phase 2: record */

/* Append one snapshot of a layer: rows*cols floats (NaN/Inf are stored as
 * they are, with one warning per layer in the log). rank <= 0 means full
 * (min(rows, cols)). Flushed before returning. */
OIALR_API int oialr_traj_append(oialr_traj *t, int layer, int64_t step, const float *w, int32_t rank);

/* Append a snapshot of a layer declared with oialr_traj_declare_factors as
 * its factors, row-major: u [rows, rank], sigma [rank, rank], v [cols,
 * rank], W = u sigma vᵀ. u and v NULL: the bases of the layer's previous
 * factored snapshot (which must exist, with at least `rank` columns), so
 * only sigma is written. rank 1..capacity. Flushed before returning. */
OIALR_API int oialr_traj_append_factors(oialr_traj *t, int layer, int64_t step, int32_t rank, const float *u,
                                        const float *sigma, const float *v);

/* Append one metrics row: values[i] goes to the i-th declared column
 * (n must equal the number of columns; NAN for "not known"). */
OIALR_API int oialr_traj_append_metrics(oialr_traj *t, int64_t step, const double *values, int n);

/* Append nrows metrics rows at once: steps[k] and values[k * ncol + i]
 * (row-major). One write and one flush per column instead of per row. */
OIALR_API int oialr_traj_append_metrics_rows(oialr_traj *t, int64_t nrows, const int64_t *steps,
                                             const double *values, int ncol);

enum oialr_traj_event_kind {
    OIALR_EVENT_SWITCH = 0,   /* layer switched to U Sigma V^T training */
    OIALR_EVENT_ROTATE = 1,   /* Sigma re-diagonalised into U, V */
    OIALR_EVENT_TRUNCATE = 2, /* rank cut */
    OIALR_EVENT_NKINDS
};

typedef struct oialr_traj_event {
    int64_t step;
    char layer[OIALR_TRAJ_NAME_MAX];
    int32_t kind;      /* enum oialr_traj_event_kind */
    double stability;  /* the stability that caused it (NAN if none) */
    int32_t rank_before;
    int32_t rank_after;
} oialr_traj_event;

/* Append one event to /events (phase 2; flushed before it returns). */
OIALR_API int oialr_traj_append_event(oialr_traj *t, const oialr_traj_event *ev);
/* "switch", "rotate", "truncate", or "unknown" for another value. */
OIALR_API const char *oialr_traj_event_kind_name(int kind);

/* Checkpoint: double-buffered, so a kill while writing keeps the previous
 * one. ckpt_start picks the spare slot, put_* fill it (each item declared
 * in phase 1; every item should be put), ckpt_commit flushes and makes it
 * the current one. */
OIALR_API int oialr_traj_ckpt_start(oialr_traj *t);
OIALR_API int oialr_traj_ckpt_put_array(oialr_traj *t, const char *name, const float *x, size_t n);
OIALR_API int oialr_traj_ckpt_put_array_i64(oialr_traj *t, const char *name, const int64_t *x, size_t n);
OIALR_API int oialr_traj_ckpt_put_i64(oialr_traj *t, const char *name, int64_t v);
OIALR_API int oialr_traj_ckpt_put_u64(oialr_traj *t, const char *name, uint64_t v);
OIALR_API int oialr_traj_ckpt_commit(oialr_traj *t);

/* Flush everything written so far to disk. */
OIALR_API int oialr_traj_flush(oialr_traj *t);

/* ---------------------------------------------------------------------------
 * Reading (also valid on a writer's handle) */

typedef struct oialr_traj_info {
    int format_version;
    char created[40];          /* ISO 8601 UTC, e.g. "2025-05-01T12:00:00Z" */
    uint64_t seed;
    const char *command_line;  /* "" if none; owned by the handle */
    const char *path;          /* owned by the handle */
    int swmr_read;             /* opened in SWMR-read mode: a writer has the
                                * file open, or was killed (h5clear -s) */
    int writer_alive;          /* an oialr writer process holds the file now
                                * (as of the open or the last refresh) */
    int nlayers;
    int ncolumns;              /* metric columns, "step" not counted */
    int64_t nmetrics;          /* complete metrics rows */
    int64_t nevents;
    int has_ckpt;              /* a committed checkpoint exists */
} oialr_traj_info;

/* Valid until the next refresh/append/close on t. */
OIALR_API const oialr_traj_info *oialr_traj_get_info(const oialr_traj *t);

typedef struct oialr_traj_layer {
    char name[OIALR_TRAJ_NAME_MAX];
    char kind[OIALR_TRAJ_KIND_MAX];
    int64_t rows, cols;          /* matrix view of one snapshot */
    int ndim;
    int64_t shape[4];            /* original shape */
    int64_t nsnap;               /* complete snapshots */
    const int64_t *steps;        /* [nsnap] step of each snapshot */
    const int32_t *ranks;        /* [nsnap] rank at each snapshot */
    int64_t factor_capacity;     /* > 0: snapshots may be factored (format 2) */
    const int32_t *bases;        /* [nsnap] when factor_capacity > 0: -1 for a
                                  * full snapshot, else its basis (NULL otherwise) */
} oialr_traj_layer;

/* Number of layers in the file (declared, for a writer). */
OIALR_API int oialr_traj_nlayers(const oialr_traj *t);
/* Layer i in file order (NULL if out of range). Pointers stay valid until
 * the next refresh/append/close on t. */
OIALR_API const oialr_traj_layer *oialr_traj_layer_at(const oialr_traj *t, int i);
/* Index of a layer by exact name; OIALR_ERR_NOTFOUND (with a message
 * naming file and layer) if absent. */
OIALR_API int oialr_traj_find_layer(const oialr_traj *t, const char *name, int *index);
/* Snapshot index whose step is `step`; OIALR_ERR_NOTFOUND if none. */
OIALR_API int oialr_traj_find_step(const oialr_traj *t, int layer, int64_t step, int64_t *snap);

/* Read snapshot `snap` (0..nsnap-1) of a layer into out[rows*cols]: exactly
 * one chunk is read, or, for a factored snapshot, W = U Σ Vᵀ is formed
 * (its bases read once for all the snapshots that share them). n is the
 * capacity of out in floats (checked). */
OIALR_API int oialr_traj_read(oialr_traj *t, int layer, int64_t snap, float *out, size_t n);

/* Metric columns (not counting "step"), in file order. */
OIALR_API const char *oialr_traj_column_name(const oialr_traj *t, int i);
/* Read min(cap, nmetrics) values of a column ("step" is also accepted and
 * read as double); *n (may be NULL) receives how many were read. Metrics
 * steps that decrease or are negative: OIALR_ERR_FORMAT naming the index. */
OIALR_API int oialr_traj_read_column(oialr_traj *t, const char *name, double *out, int64_t cap, int64_t *n);
OIALR_API int oialr_traj_read_metric_steps(oialr_traj *t, int64_t *out, int64_t cap, int64_t *n);

/* Read min(cap, nevents) events. */
OIALR_API int oialr_traj_read_events(oialr_traj *t, oialr_traj_event *out, int64_t cap, int64_t *n);

/* A /config attribute; OIALR_ERR_NOTFOUND if absent. Copies at most
 * size-1 bytes and NUL-terminates. */
OIALR_API int oialr_traj_get_config(oialr_traj *t, const char *key, char *buf, size_t size);
/* The name of the i-th /config attribute (0-based, in name order) into buf
 * (cut at size-1 bytes); OIALR_ERR_NOTFOUND once i is past the last, so
 * `for (i = 0; !oialr_traj_config_key(t, i, k, sizeof k); i++)` lists them. */
OIALR_API int oialr_traj_config_key(oialr_traj *t, int i, char *buf, size_t size);

/* Checkpoint reading (the current slot). OIALR_ERR_NOTFOUND if no checkpoint
 * was committed or the item was not declared. */
/* Elements of a float32 or int64 checkpoint array. */
OIALR_API int oialr_traj_ckpt_array_size(oialr_traj *t, const char *name, size_t *n);
OIALR_API int oialr_traj_ckpt_get_array(oialr_traj *t, const char *name, float *x, size_t n);
OIALR_API int oialr_traj_ckpt_get_array_i64(oialr_traj *t, const char *name, int64_t *x, size_t n);
OIALR_API int oialr_traj_ckpt_get_i64(oialr_traj *t, const char *name, int64_t *v);
OIALR_API int oialr_traj_ckpt_get_u64(oialr_traj *t, const char *name, uint64_t *v);

/* Follow a live file: pick up snapshots, rows and events appended since
 * open or the last refresh, and update oialr_traj_info.writer_alive (0 once
 * the writer has closed the file or died: open it again to tell which). */
OIALR_API int oialr_traj_refresh(oialr_traj *t);

#ifdef __cplusplus
}
#endif
#endif /* OIALR_TRAJECTORY_H */
