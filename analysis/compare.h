/*
 * compare.h — `oialr compare A.h5 B.h5 [...] -o DIR`: the training curves,
 * mean stability and trainable fraction of several runs on shared axes,
 * and a table of their final accuracy, trainable fraction and wall time.
 * Also a section of `oialr report --compare`.
 */
#ifndef OIALR_COMPARE_H
#define OIALR_COMPARE_H

#include <stdint.h>
#include <stdio.h>

#include "outputs.h"
#include "plot.h"

/* argv[0] is the command name. Returns the exit status; never exits. */
int oialr_cmd_compare(int argc, char **argv);

/* --------------------------------------------------------------------------- */
/* Internals shared with report.c (not a stable API). */

#define CMP_MAX_RUNS 16

typedef struct cmp_run {
    const char *path;
    char label[64];
    char tables[4096];     /* its analysis tables (mean_stability.csv) */
    plot_job pj;           /* its tables and metrics, read */
    /* the table */
    int64_t last_step;
    double final_test, final_val, final_tf, wall;
} cmp_run;

typedef struct cmp_job {
    const char *out_dir;   /* figures and tables */
    const char *cache_dir; /* the runs' analyses: cache_dir/<label>/ */
    int svg, force;
    int nrun;
    cmp_run runs[CMP_MAX_RUNS];
    int gp, img, data, data2, table; /* indices in the outputs */
    int drawn;
} cmp_job;

/* Labels: from `labels` (comma-separated, may be NULL) or the file names. */
int cmp_job_init(cmp_job *c, int nrun, char **paths, const char *labels);
/* Analyse each run whose tables are not given (run i's tables may be set
 * beforehand, e.g. by the report), quietly, into cache_dir/<label>/, and
 * read the metrics and mean stability. */
int cmp_job_prepare(cmp_job *c);
int cmp_job_plan(cmp_job *c, ana_outputs *outs);
int cmp_job_draw(cmp_job *c, ana_outputs *outs);
void cmp_job_print(const cmp_job *c, FILE *f);
void cmp_job_free(cmp_job *c);

#endif
