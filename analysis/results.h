/*
 * results.h — the outputs of `oialr analyze`: the results HDF5 file and the
 * tidy CSV tables (layout: docs/analyze.md). Main thread only.
 */
#ifndef OIALR_ANALYSIS_RESULTS_H
#define OIALR_ANALYSIS_RESULTS_H

#include <stdio.h>

#include "analyze.h"
#include "oialr/trajectory.h"

typedef struct ana_results ana_results;

/* Checks every output first: o->output and, in o->csv_dir, metrics.csv,
 * spectra.csv, mean_stability.csv and (with a policy) replay.csv; each must
 * be absent, or a regular file with o->force, and none the input file.
 * Then creates o->csv_dir if missing and opens every output under its
 * temporary name (docs/analyze.md, "Output files"). source_created may be
 * NULL. Either output may be absent. */
int ana_results_open(ana_results **r, const ana_opts *o, const char *source_created);
int ana_results_layer_begin(ana_results *r, const char *name, const char *kind, int64_t rows, int64_t cols,
                            int64_t nsnap);
/* Working precision of the current layer's rows (CSV column, attribute). */
void ana_results_layer_prec(ana_results *r, int prec);
/* Forget the current layer's rows (CSV truncated back, HDF5 rows will be
 * overwritten): it is being analysed again in another precision. */
int ana_results_layer_rewind(ana_results *r);
/* One snapshot, in order; sigma has n values (NULL for an invalid snapshot). */
int ana_results_row(ana_results *r, int64_t snap, const ana_row *row, const double *sigma, int64_t n);
/* The per-snapshot scalars of the layer, and its summary attributes. */
int ana_results_layer_end(ana_results *r, const ana_row *rows, int64_t nsnap, int64_t stable_step);
/* The replay's outcome for a layer already written: switch_step (-1:
 * never) and switch_rank as attributes of /layers/<layer>. */
int ana_results_switch(ana_results *r, const char *layer, int64_t switch_step, int64_t switch_rank);
/* events.csv (--csv): the trajectory's switch/rotate/truncate events, for
 * the figures. */
int ana_results_events(ana_results *r, const oialr_traj_event *ev, int64_t n);
/* Mean stability over layers per step; root attributes. frac: trainable
 * fraction of a replayed policy (NaN: none). */
int ana_results_finish(ana_results *r, double frac);
/* Last step with a mean stability (after finish); -1 if none. */
int ana_results_last_mean(const ana_results *r, int64_t *step, double *value);
/* replay.csv (--csv with a policy), open for writing on its temporary file;
 * the caller writes it and closes it. *path: its final path, for messages. */
FILE *ana_results_open_replay(ana_results *r, const char **path, int *rc);
/* The run succeeded: close the files and rename every output into place. */
int ana_results_commit(ana_results *r);
/* Free; the temporary files of outputs not committed are removed (nothing
 * else is: an old file at an output path stays as it was). */
void ana_results_close(ana_results *r);

/* Write a layer name as a CSV field (quoted when needed). */
void ana_csv_name(FILE *f, const char *name);

#endif
