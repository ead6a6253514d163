/*
 * compare.c — `oialr compare A.h5 B.h5 [...] -o DIR` (docs/report.md):
 * several runs on shared axes (training loss, accuracy, mean stability,
 * trainable fraction) in one figure, and a table of each run's final
 * accuracy, trainable fraction and wall time (compare.csv, and printed).
 *
 * The mean stability needs each run's analysis: a run whose tables are not
 * given is analysed quietly (`oialr analyze RUN --csv DIR/runs/LABEL
 * --no-angles -q`) and the tables are kept there as a cache: a later
 * compare reuses them while they are newer than the run. The figure, its
 * data and the table follow the output rules of `oialr plot` (all or
 * nothing, --force for regular files only).
 */
#include "compare.h"
#include "analyze.h"
#include "cli.h"
#include "oialr/base.h"
#include "plot.h"
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void cmp_usage(FILE *f) {
    fprintf(f,
            "usage: oialr compare A.h5 B.h5 [...] -o DIR [options]\n"
            "\n"
            "Several runs side by side on shared axes: training loss, accuracy, mean\n"
            "basis stability and trainable fraction (DIR/compare.png), and a table of the\n"
            "final accuracy, trainable fraction and wall time of each (DIR/compare.csv,\n"
            "also printed). Each run is analysed once into DIR/runs/LABEL/ (docs/report.md).\n"
            "\n"
            "  -o, --output DIR     where to write (created if missing)\n"
            "      --labels A,B,..  the runs' names (default: their file names)\n"
            "      --format F       png (default) or svg\n"
            "  -f, --force          replace the figure, its data and the table if they are\n"
            "                       existing regular files (never anything else)\n"
            "  -h, --help           this help\n");
}

int cmp_job_init(cmp_job *c, int nrun, char **paths, const char *labels) {
    if (nrun < 1 || nrun > CMP_MAX_RUNS)
        return oialr_seterr(OIALR_ERR_ARG, "compare: 1 to %d runs (got %d)", CMP_MAX_RUNS, nrun);
    c->nrun = nrun;
    const char *l = labels;
    for (int i = 0; i < nrun; i++) {
        cmp_run *r = &c->runs[i];
        r->path = paths[i];
        if (l && *l) {
            size_t n = strcspn(l, ",");
            snprintf(r->label, sizeof r->label, "%.*s", (int)(n < sizeof r->label ? n : sizeof r->label - 1), l);
            l += n + (l[n] == ',');
        } else {
            const char *b = strrchr(paths[i], '/');
            snprintf(r->label, sizeof r->label, "%s", b ? b + 1 : paths[i]);
            char *dot = strrchr(r->label, '.');
            if (dot && dot != r->label) *dot = '\0';
        }
        if (!r->label[0]) return oialr_seterr(OIALR_ERR_ARG, "compare: an empty label for %s", paths[i]);
        for (char *p = r->label; *p; p++)
            if (*p == '/' || *p == '\'' || *p == '"' || *p == '\\' || (unsigned char)*p < 32) *p = '_';
        for (int k = 0; k < i; k++)
            if (!strcmp(c->runs[k].label, r->label))
                return oialr_seterr(OIALR_ERR_ARG, "compare: two runs labelled '%s' (give --labels)", r->label);
    }
    if (l && *l) return oialr_seterr(OIALR_ERR_ARG, "compare: --labels has more names than runs");
    return OIALR_OK;
}

/* tables/metrics.csv is newer than the run: the cached analysis holds. */
static int fresh(const char *tables, const char *run) {
    char p[4200 + 64];
    struct stat a, b;
    snprintf(p, sizeof p, "%s/mean_stability.csv", tables);
    if (stat(p, &a) != 0 || stat(run, &b) != 0) return 0;
    snprintf(p, sizeof p, "%s/metrics.csv", tables);
    struct stat m;
    return stat(p, &m) == 0 && a.st_mtime >= b.st_mtime && m.st_mtime >= b.st_mtime;
}

static int mkdir_p1(const char *d) {
    if (mkdir(d, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) return OIALR_OK;
        return oialr_seterr(OIALR_ERR_EXISTS, "%s exists and is not a directory", d);
    }
    return oialr_seterr(OIALR_ERR_IO, "%s: %s", d, strerror(errno));
}

int cmp_job_prepare(cmp_job *c) {
    int rc;
    for (int i = 0; i < c->nrun; i++) {
        cmp_run *r = &c->runs[i];
        if (!r->tables[0]) {
            if ((rc = mkdir_p1(c->out_dir))) return rc;
            char runs[3900];
            if ((size_t)snprintf(runs, sizeof runs, "%s/runs", c->cache_dir ? c->cache_dir : c->out_dir) >= sizeof runs)
                return oialr_seterr(OIALR_ERR_ARG, "%s: path too long", c->out_dir);
            if ((rc = mkdir_p1(runs))) return rc;
            snprintf(r->tables, sizeof r->tables, "%s/%s", runs, r->label);
            if (!fresh(r->tables, r->path)) {
                char *argv[] = {"analyze", (char *)r->path, "--csv", r->tables, "--no-angles", "-q", "--force", NULL};
                oialr_analyze_progress_fn none = NULL;
                oialr_analyze_set_progress(none);
                if (oialr_cmd_analyze(7, argv) != 0)
                    return oialr_seterr(OIALR_ERR_IO, "compare: the analysis of %s failed (message above)", r->path);
            }
        }
        r->pj.csv_dir = r->tables;
        r->pj.run = r->path;
        if ((rc = plot_job_read(&r->pj))) return rc;
        if (r->pj.nm == 0) return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no training metrics recorded", r->path);
        r->final_test = plot_metric_last(&r->pj, "test_acc", NULL);
        r->final_val = plot_metric_last(&r->pj, "val_acc", NULL);
        r->final_tf = plot_metric_last(&r->pj, "trainable_fraction", NULL);
        r->wall = plot_metric_last(&r->pj, "seconds", NULL);
        r->last_step = r->pj.mstep[r->pj.nm - 1];
    }
    return OIALR_OK;
}

int cmp_job_plan(cmp_job *c, ana_outputs *outs) {
    int rc;
    plot_job pj = {.out_dir = c->out_dir, .svg = c->svg};
    char ext[8];
    snprintf(ext, sizeof ext, ".%s", plot_ext(&pj));
    if ((rc = plot_have_gnuplot())) return rc;
    if (!outs->dir && (rc = ana_outputs_dir(outs, c->out_dir))) return rc;
    if ((rc = plot_add_output(&pj, outs, "compare", ".gp", &c->gp)) ||
        (rc = plot_add_output(&pj, outs, "compare", ext, &c->img)) ||
        (rc = plot_add_output(&pj, outs, "compare-metrics", ".csv", &c->data)) ||
        (rc = plot_add_output(&pj, outs, "compare-stability", ".csv", &c->data2)) ||
        (rc = plot_add_output(&pj, outs, "compare", ".csv", &c->table)))
        return rc;
    return OIALR_OK;
}

static void num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.9g", v);
    else fprintf(f, ",nan");
}

int cmp_job_draw(cmp_job *c, ana_outputs *outs) {
    int rc;
    FILE *d = plot_open_tmp(outs, c->data);
    if (!d) return OIALR_ERR_IO;
    static const char *const cols[] = {"loss", "val_acc", "test_acc", "train_acc", "trainable_fraction", "seconds"};
    enum { NC = 6 };
    int have[NC] = {0};
    fprintf(d, "run_index,label,step,loss,val_acc,test_acc,train_acc,trainable_fraction,seconds\n");
    for (int i = 0; i < c->nrun; i++) {
        const plot_job *p = &c->runs[i].pj;
        int k[NC];
        for (int q = 0; q < NC; q++) k[q] = plot_metric_col(p, cols[q]);
        for (int64_t r = 0; r < p->nm; r++) {
            fprintf(d, "%d,", i + 1);
            plot_csv_name(d, c->runs[i].label);
            fprintf(d, ",%lld", (long long)p->mstep[r]);
            for (int q = 0; q < NC; q++) {
                double v = NAN;
                if (k[q] >= 0) {
                    const double *col = p->mval + (size_t)k[q] * (size_t)p->nm;
                    v = col[r];
                    /* evaluations are carried between rows: keep where each appears */
                    if ((q == 1 || q == 2) && r > 0 && v == col[r - 1]) v = NAN;
                }
                if (isfinite(v)) have[q] = 1;
                num(d, v);
            }
            fputc('\n', d);
        }
    }
    if ((rc = plot_close(d, outs, c->data))) return rc;
    d = plot_open_tmp(outs, c->data2);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "run_index,label,step,mean_stability\n");
    int have_s = 0;
    for (int i = 0; i < c->nrun; i++) {
        const plot_job *p = &c->runs[i].pj;
        for (int64_t r = 0; r < p->nmean; r++) {
            if (!isfinite(p->mean_s[r])) continue;
            fprintf(d, "%d,", i + 1);
            plot_csv_name(d, c->runs[i].label);
            fprintf(d, ",%lld,%.9g\n", (long long)p->mean_step[r], p->mean_s[r]);
            have_s = 1;
        }
    }
    if ((rc = plot_close(d, outs, c->data2))) return rc;
    d = plot_open_tmp(outs, c->table);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "label,file,steps,final_test_acc,final_val_acc,trainable_fraction,wall_seconds\n");
    for (int i = 0; i < c->nrun; i++) {
        const cmp_run *r = &c->runs[i];
        plot_csv_name(d, r->label);
        fputc(',', d);
        plot_csv_name(d, r->path);
        fprintf(d, ",%lld", (long long)r->last_step);
        num(d, r->final_test), num(d, r->final_val), num(d, r->final_tf), num(d, r->wall);
        fputc('\n', d);
    }
    if ((rc = plot_close(d, outs, c->table))) return rc;
    /* the figure: four panels on shared step axes */
    plot_job pj = {.out_dir = c->out_dir, .svg = c->svg, .events_out = -1};
    plot_fig g = {.gp = c->gp, .img = c->img, .data = {c->data, c->data2}, .data_var = {"data", "data2"}};
    snprintf(g.name, sizeof g.name, "compare");
    snprintf(g.title, sizeof g.title, "Runs compared");
    FILE *f = plot_open_tmp(outs, c->gp);
    if (!f) return OIALR_ERR_IO;
    plot_script_head(f, &pj, outs, &g, 1280, 900);
    fprintf(f, "set multiplot layout 2,2 title 'Runs compared on shared axes (one colour per run)'\n"
               "set xlabel 'training step'\n"
               "# the keys sit above their panels, off the curves\n"
               "set key outside top center horizontal font ',9' samplen 2\n");
    const char *acc = have[1] ? "validation accuracy" : have[2] ? "test accuracy" : "training accuracy (running)";
    int acc_col = have[1] ? 5 : have[2] ? 6 : 7;
    struct {
        const char *ylabel, *extra;
        int col, ok, data2, points;
    } panel[4] = {
        {"training loss (last batch)", "set logscale y", 4, have[0], 0, 0},
        {acc, "unset logscale y", acc_col, have[1] || have[2] || have[3], 0, have[1] || have[2]},
        {"mean basis stability S", "", 4, have_s, 1, 0},
        {"trainable fraction", "set yrange [0:1.05]", 8, have[4], 0, 0},
    };
    for (int q = 0; q < 4; q++) {
        fprintf(f, "set ylabel '%s'\n%s\n", panel[q].ylabel, panel[q].extra);
        if (!panel[q].ok) {
            fprintf(f, "set label 1 'not recorded' at graph 0.5, graph 0.5 center\nset xrange [0:1]\nset yrange [0:1]\n"
                       "plot NaN notitle\nunset label 1\nset xrange [*:*]\nset yrange [*:*]\n");
            continue;
        }
        fprintf(f, "plot ");
        for (int i = 0; i < c->nrun; i++) {
            fprintf(f, "%s%s using ($1 == %d ? $3 : NaN):%d skip 1 with %s lw 2 lc %d title ", i ? ", \\\n     " : "",
                    panel[q].data2 ? "data2" : "data", i + 1, panel[q].col,
                    panel[q].points ? "linespoints pt 7 ps 0.8" : "lines", i + 1);
            plot_gp_quote(f, c->runs[i].label);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "unset multiplot\n");
    if ((rc = plot_close(f, outs, c->gp)) || (rc = plot_run_gnuplot(&pj, outs, &g))) return rc;
    c->drawn = 1;
    return OIALR_OK;
}

static void cell(FILE *f, double v, int prec) {
    if (isfinite(v)) fprintf(f, "%10.*f", prec, v);
    else fprintf(f, "%10s", "-");
}

void cmp_job_print(const cmp_job *c, FILE *f) {
    fprintf(f, "%-24s %10s %10s %10s %10s %10s\n", "run", "steps", "test_acc", "val_acc", "trainable", "wall s");
    for (int i = 0; i < c->nrun; i++) {
        const cmp_run *r = &c->runs[i];
        fprintf(f, "%-24s %10lld ", r->label, (long long)r->last_step);
        cell(f, r->final_test, 4), fputc(' ', f);
        cell(f, r->final_val, 4), fputc(' ', f);
        cell(f, r->final_tf, 4), fputc(' ', f);
        cell(f, r->wall, 1);
        fputc('\n', f);
    }
}

void cmp_job_free(cmp_job *c) {
    for (int i = 0; i < c->nrun; i++) plot_job_free(&c->runs[i].pj);
}

int oialr_cmd_compare(int argc, char **argv) {
    cmp_job c;
    memset(&c, 0, sizeof c);
    char *paths[CMP_MAX_RUNS + 1];
    int n = 0;
    const char *labels = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cmp_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
            c.force = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--labels") || !strcmp(a, "--format")) {
            const char *v = cli_value("compare", argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "--labels")) labels = v;
            else if (!strcmp(a, "--format")) {
                static const char *const fmts[] = {"png", "svg", NULL};
                if (cli_choice("compare", a, v, fmts, &c.svg)) return 2;
            } else c.out_dir = v;
        } else if (a[0] == '-') {
            fprintf(stderr, "oialr compare: unknown option '%s' (try 'oialr compare --help')\n", a);
            return 2;
        } else if (n == CMP_MAX_RUNS) {
            fprintf(stderr, "oialr compare: at most %d runs\n", CMP_MAX_RUNS);
            return 2;
        } else {
            paths[n++] = argv[i];
        }
    }
    if (n < 1 || !c.out_dir) {
        if (!c.out_dir && n) fprintf(stderr, "oialr compare: -o DIR is required\n");
        else cmp_usage(stderr);
        return 2;
    }
    ana_outputs outs;
    ana_outputs_init(&outs, c.force);
    plot_signals_catch();
    int rc = cmp_job_init(&c, n, paths, labels);
    if (!rc) rc = plot_have_gnuplot();
    for (int i = 0; !rc && i < n; i++) rc = report_check_run(paths[i]);
    if (!rc) rc = cmp_job_prepare(&c);
    if (!rc) rc = cmp_job_plan(&c, &outs);
    if (!rc) rc = ana_outputs_begin(&outs);
    if (!rc) rc = cmp_job_draw(&c, &outs);
    if (!rc && plot_interrupted()) rc = oialr_seterr(OIALR_ERR_IO, "interrupted by signal %d", plot_interrupted());
    if (!rc) rc = ana_outputs_commit(&outs);
    ana_outputs_close(&outs);
    int sig = plot_interrupted();
    plot_signals_restore();
    if (rc) {
        fprintf(stderr, "oialr compare: %s\n", oialr_errmsg()[0] ? oialr_errmsg() : oialr_strerror(rc));
        cmp_job_free(&c);
        return sig ? 128 + sig : 1;
    }
    cmp_job_print(&c, stdout);
    printf("figure: %s/compare.%s  table: %s/compare.csv\n", c.out_dir, c.svg ? "svg" : "png", c.out_dir);
    cmp_job_free(&c);
    return 0;
}
