/*
 * analyze.h — `oialr analyze`: the offline driver of the metrics in
 * lib/metrics over a stored trajectory (docs/analyze.md).
 *
 * The driver streams each layer's snapshots in batches of `threads`
 * snapshots: the main thread reads the batch (all HDF5 calls stay on the
 * main thread), every thread factors one snapshot (one OpenBLAS thread
 * each), then every thread computes the pair metrics of its snapshot against
 * the one `lag` back, kept in a ring of lag + threads factors. Memory does
 * not grow with the number of snapshots (only a few scalars per snapshot).
 */
#ifndef OIALR_ANALYZE_H
#define OIALR_ANALYZE_H

#include <stdint.h>

#include "oialr/lowrank.h"
#include "oialr/metrics.h"

/* `oialr analyze ...`; argv[0] is the command name. Returns the exit status:
 * 0 success, 1 failure (message on stderr), 2 usage error. Never exits. */
int oialr_cmd_analyze(int argc, char **argv);

/* Progress for a front end to draw (the CLI's progress line): called on the
 * main thread after each snapshot of the layer_no-th of nlayers selected
 * layers; done == total ends that layer. NULL (the default): silent. */
typedef void (*oialr_analyze_progress_fn)(const char *layer, int64_t done, int64_t total, int layer_no,
                                          int nlayers);
void oialr_analyze_set_progress(oialr_analyze_progress_fn fn);

/* --------------------------------------------------------------------------- */
/* Internals shared by the analysis sources (not a stable API). */

typedef struct ana_opts {
    const char *input;
    const char *output;   /* results HDF5 (NULL: none) */
    const char *csv_dir;  /* directory for the CSV tables (NULL: none) */
    const char *layers;   /* comma-separated globs (NULL: all) */
    int lag;
    int64_t lag_steps;    /* > 0: --lag-steps N, the reference is the latest
                           * valid snapshot at step <= step - N (lag unused) */
    double beta, tau;
    int threads;          /* analysis threads */
    int blas_threads;     /* OpenBLAS threads per analysis thread */
    int prec;             /* OIALR_PREC_F32 / F64: the starting precision */
    int auto_prec;        /* float32, but a layer whose condition number makes
                           * float32 doubtful is redone in float64 */
    int force;            /* overwrite the output */
    int quiet;            /* no summary on stdout */
    int no_angles;        /* skip the principal angles (NaN in the outputs) */
    int follow;           /* --follow: analyse a live file as it grows */
    double interval;      /* --interval: seconds between refreshes */
    oialr_policy policy;  /* --policy (kind NONE: no replay) */
} ana_opts;

/* One snapshot's results. NaN where undefined (see docs/metrics.md). */
typedef struct ana_row {
    int64_t step;
    int64_t ref_step;     /* step of the snapshot `lag` back; -1 if none */
    int valid;            /* 0: the snapshot holds NaN/Inf (skipped) */
    double stability;     /* NaN without a valid reference */
    int64_t rank;         /* numerical rank */
    int64_t angles_k;     /* k of the principal angles (0: none) */
    double grass_left, grass_right;   /* Grassmann distances */
    double max_left, max_right;       /* largest principal angle */
    oialr_spectrum sp;
    oialr_powerlaw pl;    /* WeightWatcher's α of σ² (NaN fields if undefined) */
} ana_row;

/* Per-thread state and the computation of one layer (engine.c). */
typedef struct ana_engine ana_engine;

/* Called on the main thread for each finished snapshot in order: the row,
 * and the n singular values (NULL if the snapshot was invalid). A non-zero
 * return stops the layer and is returned by ana_engine_layer (ANA_RESTART:
 * the caller wants the layer again, in float64). */
#define ANA_RESTART 1
typedef int (*ana_emit_fn)(void *user, int64_t snap, const ana_row *row, const double *sigma, int64_t n);
/* Reads snapshot `snap` into buf (rows*cols floats); main thread only. */
typedef int (*ana_read_fn)(void *user, int64_t snap, float *buf, size_t n);

int ana_engine_new(ana_engine **e, int threads, int prec);
void ana_engine_free(ana_engine *e);
/* Working precision for the next layers (frees the workspaces of the other). */
int ana_engine_set_prec(ana_engine *e, int prec);
int ana_engine_prec(const ana_engine *e);
/* lag_steps > 0: the next layers pair snapshot j with the latest valid
 * snapshot at step <= steps[j] - lag_steps (the `lag` argument of
 * ana_engine_layer is then ignored); 0: j with j - lag (the default). */
void ana_engine_set_lag_steps(ana_engine *e, int64_t lag_steps);
/* Principal angles on (default) or off. */
void ana_engine_set_angles(ana_engine *e, int on);
/* The Gram path of lib/metrics (metrics/internal.h, docs/metrics.md
 * "Precision") on or off (default off: gesdd in the working precision). */
void ana_engine_set_gram(ana_engine *e, int on);
int ana_engine_gram(const ana_engine *e);
/* Snapshots the Gram path handed on to float64 gesdd (ill-conditioned), so far. */
int64_t ana_engine_gram_ill(const ana_engine *e);
/* Analyse one layer of nsnap snapshots with the given steps. */
int ana_engine_layer(ana_engine *e, int64_t rows, int64_t cols, int64_t nsnap, const int64_t *steps, int lag,
                     double beta, ana_read_fn read, ana_emit_fn emit, void *user);
/* Follow mode: analyse the snapshots of a layer appended since the last
 * call for it (all of them at the first call, *st NULL), keeping the layer's
 * ring of factors in *st between calls, so that no old snapshot is factored
 * again. A call in another precision than the last, a failure, ANA_RESTART,
 * or a --lag-steps reference now more snapshots back than the ring holds
 * start the layer again from its first snapshot (emitted again). */
typedef struct ana_layer_state ana_layer_state;
int ana_engine_layer_more(ana_engine *e, ana_layer_state **st, int64_t rows, int64_t cols, int64_t nsnap,
                          const int64_t *steps, int lag, double beta, ana_read_fn read, ana_emit_fn emit, void *user);
void ana_layer_state_free(ana_layer_state *st);
/* Seconds spent inside the factorisations, summed over threads (for the
 * benchmark's LAPACK bound), and bytes held at the peak. */
double ana_engine_svd_seconds(const ana_engine *e);
size_t ana_engine_peak_bytes(const ana_engine *e);

#endif
