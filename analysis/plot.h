/*
 * plot.h — `oialr plot`: gnuplot figures from the analyzer's tables.
 *
 * The command is a driver (plot.c) over a "plot job" that `oialr report`
 * and `oialr compare` reuse: the job reads the tables of `oialr analyze
 * --csv DIR` (and the trajectory with --run), plans every figure's files in
 * an ana_outputs set (the caller's: a report commits its figures together
 * with its index.html), then writes each figure's data file and script and
 * runs gnuplot on it (figures.c draws the figures).
 */
#ifndef OIALR_PLOT_H
#define OIALR_PLOT_H

#include <stdint.h>
#include <stdio.h>

#include "oialr/trajectory.h"
#include "outputs.h"

/* `oialr plot CSVDIR [-o DIR] [-f] [--run RUN.h5] [--tau T] [--beta B]
 * [--format png|svg] [--layers GLOBS] [--steps LIST]`; argv[0] is the
 * command name. Returns the exit status; never exits. */
int oialr_cmd_plot(int argc, char **argv);

/* --------------------------------------------------------------------------- */
/* Internals shared by plot.c, figures.c, report.c and compare.c (not a
 * stable API). */

/* One weight matrix of the tables. */
typedef struct plot_layer {
    char name[OIALR_TRAJ_NAME_MAX];
    char file[OIALR_TRAJ_NAME_MAX]; /* name with [^A-Za-z0-9._-] as '_', for file names */
    int64_t rows, cols, m, n;      /* matrix view; m >= n the oriented shape */
    int64_t first, last;           /* steps of the first and last valid snapshot (-1: none) */
    int selected;                  /* gets a spectrum and an evolution figure */
    /* from --run: the rank the trajectory stored at each snapshot */
    int64_t nstored;
    int64_t *stored_step;
    int32_t *stored_rank;
    /* the first switch event of the layer (-1: none) */
    int64_t switch_step;
    double switch_s;
    int32_t switch_rank;
    /* the selected layers' singular values from spectra.csv: nspec
     * snapshots of n values, spec_step[k] and spec[k * n + i] */
    int64_t nspec, spec_cap;
    int64_t *spec_step;
    double *spec;
} plot_layer;

/* One row of metrics.csv (the columns the figures use; NaN if absent). */
typedef struct plot_mrow {
    int layer;
    int valid;
    int64_t step;
    double stability, effective_rank, rank, cutoff_rank, trainable_share, param_share, alpha;
} plot_mrow;

typedef struct plot_event {
    int layer; /* index in layers, -1: a layer not in the tables */
    int64_t step;
    char kind[16];
    double stability;
    int32_t rank_before, rank_after;
} plot_event;

enum plot_fig_kind { FIG_STABILITY, FIG_HEATMAP, FIG_SPECTRUM, FIG_EVOLUTION, FIG_RANKS, FIG_TRAINING };

#define PLOT_FIG_DATA 2
typedef struct plot_fig {
    int kind;
    int layer;              /* FIG_SPECTRUM, FIG_EVOLUTION: its layer */
    char name[96];          /* file stem: "stability", "spectrum-fc1.weight" */
    char title[160];        /* one line for a report */
    char caption[400];      /* how to read it */
    int gp, img;            /* indices in the outputs */
    int data[PLOT_FIG_DATA]; /* its data files (-1: none) */
    const char *data_var[PLOT_FIG_DATA]; /* their gnuplot variables */
    int uses_events;        /* reads events.csv of the output directory */
    int drawn;
} plot_fig;

typedef struct plot_job {
    /* options */
    const char *csv_dir, *out_dir, *run;
    const char *layers_glob; /* spectrum/evolution layers (NULL: a default few) */
    const char *steps;       /* spectrum steps, "100,200" (NULL: five spread out) */
    double tau, beta;
    int svg;
    /* the tables */
    plot_layer *layers;
    int nlayers;
    plot_mrow *rows;
    int64_t nrows;
    int has_alpha;           /* metrics.csv has an alpha column */
    int64_t *mean_step;
    double *mean_s;
    int64_t nmean;
    plot_event *ev;
    int64_t nev;
    /* the trajectory's metrics (--run): ncol columns of nm rows */
    int ncol;
    char **col;
    int64_t *mstep;
    double *mval;            /* [ncol * nm], column-major */
    int64_t nm;
    /* the figures */
    plot_fig *figs;
    int nfigs;
    int events_out;          /* events.csv in the output directory (-1: none) */
} plot_job;

/* Reads the tables (metrics, mean stability, events) and the run's metrics
 * and ranks (--run); plot_job_plan calls it. */
int plot_job_read(plot_job *job);
/* Reads the tables (and the run), chooses the figures and adds every file
 * they write to outs (checked, nothing touched). job's options are set by
 * the caller. */
int plot_job_plan(plot_job *job, ana_outputs *outs);
/* After ana_outputs_begin: write every figure (data, script, gnuplot). A
 * figure with nothing to draw is dropped (its old files stay). */
int plot_job_draw(plot_job *job, ana_outputs *outs);
void plot_job_free(plot_job *job);
/* The image extension, "png" or "svg". */
const char *plot_ext(const plot_job *job);

/* A signal (SIGINT, SIGTERM, SIGHUP) arrived while plot_signals_catch was
 * in force: the command stops at the next check and cleans up. */
void plot_signals_catch(void);
void plot_signals_restore(void);
int plot_interrupted(void);

/* Helpers for figures.c and the other commands. */
/* OIALR_OK, or OIALR_ERR_NOTFOUND with a one-line message. */
int plot_have_gnuplot(void);
/* Run gnuplot in job->out_dir on the temporary files of fig. */
int plot_run_gnuplot(const plot_job *job, const ana_outputs *outs, const plot_fig *fig);
/* Open output i's temporary file for writing (message on failure). */
FILE *plot_open_tmp(const ana_outputs *outs, int i);
int plot_close(FILE *f, const ana_outputs *outs, int i);
/* The script's common head: terminal, output variable, data variables. */
void plot_script_head(FILE *f, const plot_job *job, const ana_outputs *outs, const plot_fig *fig, int width,
                      int height);
/* gnuplot string literal (single quotes, '' escapes). */
void plot_gp_quote(FILE *f, const char *s);
/* Add out_dir/name.ext to outs. */
int plot_add_output(const plot_job *job, ana_outputs *outs, const char *name, const char *ext, int *index);
/* A CSV field for a name (quoted when needed). */
void plot_csv_name(FILE *f, const char *name);
/* The last finite value of run metric `name` (NAN if absent); *step its step. */
double plot_metric_last(const plot_job *job, const char *name, int64_t *step);
int plot_metric_col(const plot_job *job, const char *name);

/* Split one CSV line in place (quoted fields handled); the field count. */
int plot_csv_fields(char *line, char **f, int max);

/* figures.c: one function per figure kind, over the planned fig. */
int fig_draw(plot_job *job, ana_outputs *outs, plot_fig *fig);

#endif
