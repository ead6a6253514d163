/*
 * report.c — `oialr report RUN.h5 -o DIR` (docs/report.md): one static
 * page that shows a run. It analyses the run if its tables are missing or
 * older than it (`oialr analyze RUN -o DIR/analysis.h5 --csv DIR/tables`),
 * draws every figure of `oialr plot` into DIR/figures/, and writes
 * DIR/index.html: the run's configuration, a per-layer summary table, the
 * figures with a line on how to read each, the training curves, and with
 * --compare the runs side by side (`oialr compare`).
 *
 * The page fetches nothing: inline CSS, no script, no font, images by
 * relative paths beside it. Outputs: the analysis is a step of its own
 * (committed by analyze, reused by the next report); the figures, their
 * data and index.html are one set, checked first and renamed into place
 * together once all are written (a regular file is replaced only with
 * --force; nothing else ever is).
 */
#include "report.h"
#include "analyze.h"
#include "cli.h"
#include "compare.h"
#include "oialr/base.h"
#include "oialr/lowrank.h"
#include "oialr/trajectory.h"
#include "outputs.h"
#include "plot.h"
#include "record/h5util.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void report_usage(FILE *f) {
    fprintf(f,
            "usage: oialr report RUN.h5 -o DIR [options]\n"
            "\n"
            "One static page on a run: DIR/index.html with its configuration, a per-layer\n"
            "summary, every figure and the training curves (docs/report.md). Analyses the\n"
            "run into DIR/analysis.h5 and DIR/tables/ unless they hold its analysis with\n"
            "the same --tau, --beta and --policy, newer than the run.\n"
            "Open DIR/index.html in any browser; it fetches nothing.\n"
            "\n"
            "  -o, --output DIR      where to write (created if missing)\n"
            "      --compare B.h5 .. also compare the run with these runs\n"
            "      --labels A,B,..   names of the run and the compared runs\n"
            "      --format F        png (default) or svg\n"
            "      --policy P        replay a switch policy in the analysis (analyze --policy)\n"
            "      --layers GLOBS    the layers that get spectrum figures (plot --layers)\n"
            "      --steps LIST      the steps of the spectrum figures (plot --steps)\n"
            "      --tau T --beta B  threshold and cutoff (defaults 0.99, 0.15)\n"
            "  -f, --force           replace files of an earlier report (regular files only)\n"
            "  -h, --help            this help\n");
}

typedef struct report_opts {
    const char *run, *dir, *labels, *policy;
    char *compare[CMP_MAX_RUNS];
    int ncompare;
    int force;
    plot_job pj;
} report_opts;

/* --------------------------------------------------------------------------- */
/* HTML */

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void td_num(FILE *f, double v, int prec) {
    fputs("<td class=n>", f);
    if (isfinite(v)) fprintf(f, "%.*f", prec, v);
    else fputs("&ndash;", f);
    fputs("</td>", f);
}

static const char *CSS =
    "body{font-family:sans-serif;max-width:1320px;margin:1em auto;padding:0 1em;color:#222;line-height:1.4}"
    "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:.5em 0;font-size:.9em}"
    "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#eee}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "figure{margin:1em 0 2em 0}figure img{max-width:100%;border:1px solid #ddd}"
    "figcaption{font-size:.9em;color:#444;max-width:1100px}pre{margin:0;font-size:.85em;white-space:pre-wrap}"
    ".note{color:#555;font-size:.9em}nav a{margin-right:1em}";

/* /config of the trajectory: every attribute, by name. */
typedef struct cfg_ctx {
    FILE *f;
    int n;
} cfg_ctx;

static herr_t cfg_one(hid_t loc, const char *name, const H5A_info_t *info, void *op) {
    (void)info;
    cfg_ctx *c = op;
    char *v = NULL;
    if (h5u_attr_get_str(loc, name, &v) != 1) return 0;
    fputs("<tr><th>", c->f);
    esc(c->f, name);
    fputs("</th><td>", c->f);
    if (strchr(v, '\n')) { /* argv: one flag per line, shown as the command line it was */
        for (char *p = v; *p; p++)
            if (*p == '\n') *p = ' ';
        fputs("<code>", c->f);
        esc(c->f, v);
        fputs("</code>", c->f);
    } else {
        esc(c->f, v);
    }
    fputs("</td></tr>\n", c->f);
    free(v);
    c->n++;
    return 0;
}

static void write_config(FILE *f, const char *run) {
    h5u_quiet q = h5u_quiet_begin();
    hid_t file = H5Fopen(run, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) file = H5Fopen(run, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
    cfg_ctx c = {f, 0};
    if (file >= 0) {
        hid_t g = H5Gopen2(file, "/config", H5P_DEFAULT);
        if (g >= 0) {
            fputs("<table>\n", f);
            hsize_t idx = 0;
            H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, cfg_one, &c);
            fputs("</table>\n", f);
            H5Gclose(g);
        }
        H5Fclose(file);
    }
    h5u_quiet_end(q);
    if (!c.n) fputs("<p class=note>The trajectory holds no configuration (/config).</p>\n", f);
}

/* replay.csv of a --policy analysis: the switch step, S and rank per layer */
typedef struct replay_row {
    int64_t step;
    double s;
    int64_t rank;
} replay_row;

static int read_replay(const char *tables, const plot_job *pj, replay_row *out) {
    char p[4200 + 64];
    snprintf(p, sizeof p, "%s/replay.csv", tables);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    char *line = NULL, *fld[32];
    size_t cap = 0;
    int got = 0, cs = -1, cst = -1, cr = -1;
    if (getline(&line, &cap, f) > 0) {
        int n = plot_csv_fields(line, fld, 32);
        for (int i = 0; i < n; i++) {
            if (!strcmp(fld[i], "switch_step")) cs = i;
            if (!strcmp(fld[i], "stability")) cst = i;
            if (!strcmp(fld[i], "rank")) cr = i;
        }
    }
    while (cs >= 0 && getline(&line, &cap, f) > 0) {
        int n = plot_csv_fields(line, fld, 32);
        if (n <= cs) continue;
        for (int i = 0; i < pj->nlayers; i++)
            if (!strcmp(pj->layers[i].name, fld[0])) {
                out[i].step = strtoll(fld[cs], NULL, 10);
                out[i].s = cst >= 0 && cst < n ? strtod(fld[cst], NULL) : NAN;
                out[i].rank = cr >= 0 && cr < n ? strtoll(fld[cr], NULL, 10) : -1;
                got = 1;
            }
    }
    free(line);
    fclose(f);
    return got;
}

static void write_layers(FILE *f, const plot_job *pj, const char *tables, const char *policy) {
    replay_row *rp = calloc((size_t)pj->nlayers, sizeof *rp);
    int replay = rp && policy && read_replay(tables, pj, rp);
    fputs("<table>\n<tr><th>layer</th><th>shape</th><th>snapshots</th><th>final S</th><th>switch step</th>"
          "<th>S at the switch</th><th>final rank / n</th><th>r<sub>&beta;</sub></th><th>trainable share</th>"
          "<th>stored share</th><th>&alpha;</th></tr>\n",
          f);
    for (int i = 0; i < pj->nlayers; i++) {
        const plot_layer *l = &pj->layers[i];
        double fs = NAN, cut = NAN, alpha = NAN, nrank = NAN;
        int64_t nsnap = 0;
        for (int64_t r = 0; r < pj->nrows; r++) {
            const plot_mrow *m = &pj->rows[r];
            if (m->layer != i) continue;
            nsnap++;
            if (!m->valid) continue;
            if (isfinite(m->stability)) fs = m->stability;
            cut = m->cutoff_rank;
            nrank = m->rank;
            if (isfinite(m->alpha)) alpha = m->alpha;
        }
        int64_t rank = l->nstored ? l->stored_rank[l->nstored - 1] : (int64_t)nrank;
        int low = l->switch_step >= 0 || (rank > 0 && rank < l->n);
        double mn = (double)l->m * (double)l->n, r = (double)rank;
        double ts = low ? r * r / mn : 1.0, ss = low ? (double)(l->m + l->n + rank) * r / mn : 1.0;
        fputs("<tr><td>", f);
        esc(f, l->name);
        fprintf(f, "</td><td class=n>%lld&times;%lld</td><td class=n>%lld</td>", (long long)l->rows, (long long)l->cols,
                (long long)nsnap);
        td_num(f, fs, 6); /* S near 1 is the point: 0.9999 and 0.999999 differ */
        if (l->switch_step >= 0) {
            fprintf(f, "<td class=n>%lld</td>", (long long)l->switch_step);
            td_num(f, l->switch_s, 4);
        } else if (replay && rp[i].step >= 0) {
            fprintf(f, "<td class=n>%lld (replay)</td>", (long long)rp[i].step);
            td_num(f, rp[i].s, 4);
        } else {
            fputs("<td>never (full rank)</td><td class=n>&ndash;</td>", f);
        }
        if (rank > 0) fprintf(f, "<td class=n>%lld / %lld</td>", (long long)rank, (long long)l->n);
        else fputs("<td class=n>&ndash;</td>", f);
        td_num(f, cut, 0);
        td_num(f, rank > 0 ? ts : NAN, 3);
        td_num(f, rank > 0 ? ss : NAN, 3);
        td_num(f, alpha, 2);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    fprintf(f, "<p class=note>final S: the last stability of the layer against the previous snapshot. Switch: "
               "when the OIALR run switched the layer to U&Sigma;V<sup>T</sup> and the stability it measured%s. "
               "Rank: as the run stored it at its last snapshot, of n = min(rows, cols); r<sub>&beta;</sub>: "
               "the singular values &ge; &beta;&sigma;<sub>1</sub> at the last snapshot. Trainable share: "
               "r&sup2;/(mn) once low rank (&Sigma; only), else 1; stored share: (m+n+r)r/(mn). &alpha;: the "
               "power-law exponent of the eigenvalue spectrum (WeightWatcher's fit)%s.</p>\n",
            replay ? " (or, marked replay, when the analysis' policy replay would have switched it)" : "",
            pj->has_alpha ? "" : "; not in this analysis' tables");
    free(rp);
}

static void write_fig(FILE *f, const plot_job *pj, const plot_fig *g) {
    fprintf(f, "<figure id=\"%s\"><img src=\"figures/%s.%s\" alt=\"", g->name, g->name, plot_ext(pj));
    esc(f, g->title);
    fputs("\"><figcaption><b>", f);
    esc(f, g->title);
    fputs(".</b> ", f);
    esc(f, g->caption);
    fprintf(f, " <span class=note>(data: figures/%s.csv, script: figures/%s.gp)</span></figcaption></figure>\n", g->name,
            g->name);
}

static int write_html(const report_opts *o, const plot_job *pj, const cmp_job *cj, ana_outputs *outs, int idx) {
    FILE *f = plot_open_tmp(outs, idx);
    if (!f) return OIALR_ERR_IO;
    const char *base = strrchr(o->run, '/');
    base = base ? base + 1 : o->run;
    fputs("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n<title>oialr report: ", f);
    esc(f, base);
    fprintf(f, "</title>\n<style>%s</style></head><body>\n<h1>oialr report: ", CSS);
    esc(f, base);
    fputs("</h1>\n<p class=note>", f);
    esc(f, o->run);
    fputs(" &mdash; how each layer's orthogonal bases moved during training (basis stability S = "
          "tr(Q<sub>a</sub><sup>T</sup>Q<sub>b</sub>)/n of Q = UV<sup>T</sup>), their spectra and ranks, and "
          "the training curves. A layer whose bases have settled (S close to 1) can be trained low rank: OIALR "
          "then freezes U and V and trains only &Sigma;. Written by <code>oialr report</code>; docs/report.md "
          "explains every part.</p>\n",
          f);
    fputs("<nav><a href=\"#summary\">summary</a><a href=\"#layers\">layers</a><a href=\"#figures\">figures</a>"
          "<a href=\"#training\">training</a>",
          f);
    if (cj) fputs("<a href=\"#compare\">compare</a>", f);
    fputs("<a href=\"#config\">configuration</a></nav>\n", f);
    /* summary */
    int64_t st;
    double acc = plot_metric_last(pj, "test_acc", NULL), val = plot_metric_last(pj, "val_acc", NULL);
    double tf = plot_metric_last(pj, "trainable_fraction", NULL), secs = plot_metric_last(pj, "seconds", NULL);
    plot_metric_last(pj, "loss", &st);
    fputs("<h2 id=summary>Summary</h2>\n<table>", f);
    fprintf(f, "<tr><th>layers recorded</th><td class=n>%d</td></tr>", pj->nlayers);
    if (pj->nm) fprintf(f, "<tr><th>steps</th><td class=n>%lld</td></tr>", (long long)pj->mstep[pj->nm - 1]);
    fputs("<tr><th>final test accuracy</th>", f);
    td_num(f, acc, 4);
    fputs("</tr><tr><th>final validation accuracy</th>", f);
    td_num(f, val, 4);
    fputs("</tr><tr><th>trainable fraction at the end</th>", f);
    td_num(f, tf, 4);
    fputs("</tr><tr><th>wall time (s)</th>", f);
    td_num(f, secs, 1);
    fprintf(f, "</tr><tr><th>switches / truncations</th><td class=n>");
    int nsw = 0, ntr = 0;
    for (int64_t i = 0; i < pj->nev; i++) nsw += !strcmp(pj->ev[i].kind, "switch"), ntr += !strcmp(pj->ev[i].kind, "truncate");
    fprintf(f, "%d / %d</td></tr></table>\n", nsw, ntr);
    if (!nsw) fputs("<p class=note>No layer switched to low rank in this run (a full-rank run).</p>\n", f);
    /* layers */
    fputs("<h2 id=layers>Layers</h2>\n", f);
    write_layers(f, pj, pj->csv_dir, o->policy);
    /* figures, the training curves last */
    fputs("<h2 id=figures>Figures</h2>\n", f);
    const plot_fig *train = NULL;
    for (int k = 0; k < pj->nfigs; k++) {
        if (!pj->figs[k].drawn) continue;
        if (pj->figs[k].kind == FIG_TRAINING) train = &pj->figs[k];
        else write_fig(f, pj, &pj->figs[k]);
    }
    fputs("<h2 id=training>Training curves</h2>\n", f);
    if (train) write_fig(f, pj, train);
    else fputs("<p class=note>The trajectory holds no training metrics.</p>\n", f);
    if (cj) {
        fputs("<h2 id=compare>Compared runs</h2>\n<table><tr><th>run</th><th>file</th><th>steps</th>"
              "<th>final test accuracy</th><th>final validation accuracy</th><th>trainable fraction</th>"
              "<th>wall time (s)</th></tr>\n",
              f);
        for (int i = 0; i < cj->nrun; i++) {
            const cmp_run *r = &cj->runs[i];
            fputs("<tr><td>", f);
            esc(f, r->label);
            fputs("</td><td>", f);
            esc(f, r->path);
            fprintf(f, "</td><td class=n>%lld</td>", (long long)r->last_step);
            td_num(f, r->final_test, 4), td_num(f, r->final_val, 4);
            td_num(f, r->final_tf, 4), td_num(f, r->wall, 1);
            fputs("</tr>\n", f);
        }
        fprintf(f, "</table>\n<figure id=compare-figure><img src=\"figures/compare.%s\" alt=\"runs compared\">"
                   "<figcaption><b>Runs compared.</b> The same curves of every run on shared step axes, one colour "
                   "per run: training loss, accuracy, mean basis stability over layers, trainable fraction. "
                   "<span class=note>(data: figures/compare-metrics.csv, figures/compare-stability.csv; table: "
                   "figures/compare.csv)</span></figcaption></figure>\n",
                cj->svg ? "svg" : "png");
    }
    fputs("<h2 id=config>Configuration</h2>\n", f);
    write_config(f, o->run);
    fputs("<p class=note>Redraw a figure: <code>cd figures &amp;&amp; gnuplot NAME.gp</code>. The tables of the "
          "analysis are in tables/ (docs/analyze.md), its results in analysis.h5.</p>\n</body></html>\n",
          f);
    return plot_close(f, outs, idx);
}

/* --------------------------------------------------------------------------- */

/* The analysis in DIR is this run's (its source and creation time), newer
 * than it, and made with this tau, beta and (if one is asked) policy: it
 * is reused. */
static int attr_f64_is(hid_t f, const char *name, double want) {
    double v = NAN;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) return 0;
    int ok = H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0 && v == want;
    H5Aclose(a);
    return ok;
}

static int fresh(const report_opts *o, const char *tables, const char *analysis) {
    char p[8300];
    struct stat a, m, r, ms;
    snprintf(p, sizeof p, "%s/metrics.csv", tables);
    if (stat(p, &m) != 0 || stat(analysis, &a) != 0 || stat(o->run, &r) != 0) return 0;
    snprintf(p, sizeof p, "%s/mean_stability.csv", tables);
    if (stat(p, &ms) != 0 || m.st_mtime < r.st_mtime || a.st_mtime < r.st_mtime) return 0;
    oialr_traj *t = NULL;
    if (oialr_traj_open(&t, o->run, OIALR_TRAJ_READ)) return 0;
    char created[64], pol[96] = "";
    snprintf(created, sizeof created, "%s", oialr_traj_get_info(t)->created);
    oialr_traj_close(t);
    oialr_policy want;
    if (o->policy && oialr_policy_parse(o->policy, &want) == OIALR_OK) oialr_policy_format(&want, pol, sizeof pol);
    h5u_quiet q = h5u_quiet_begin();
    hid_t f = H5Fopen(analysis, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *src = NULL, *src_created = NULL, *src_pol = NULL;
    int same = 0;
    if (f >= 0) {
        same = h5u_attr_get_str(f, "source", &src) == 1 && h5u_attr_get_str(f, "source_created", &src_created) == 1 &&
               !strcmp(src, o->run) && !strcmp(src_created, created) && attr_f64_is(f, "tau", o->pj.tau) &&
               attr_f64_is(f, "beta", o->pj.beta);
        if (same && o->policy) same = h5u_attr_get_str(f, "policy", &src_pol) == 1 && !strcmp(src_pol, pol);
        H5Fclose(f);
    }
    h5u_quiet_end(q);
    free(src), free(src_created), free(src_pol);
    return same;
}

/* The run must hold at least one snapshot: one line otherwise, before any
 * analysis (also the message for a file that is not a trajectory). */
int report_check_run(const char *path) {
    oialr_traj *t = NULL;
    int rc = oialr_traj_open(&t, path, OIALR_TRAJ_READ);
    if (rc) return rc;
    int64_t snaps = 0;
    for (int i = 0; i < oialr_traj_nlayers(t); i++) snaps += oialr_traj_layer_at(t, i)->nsnap;
    if (oialr_traj_nlayers(t) == 0) rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: no layers recorded (an empty trajectory)", path);
    else if (snaps == 0) rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: no snapshots recorded (an empty trajectory)", path);
    oialr_traj_close(t);
    return rc;
}

static int analyse(const report_opts *o, const char *tables, const char *analysis) {
    char tau[32], beta[32];
    snprintf(tau, sizeof tau, "%.17g", o->pj.tau);
    snprintf(beta, sizeof beta, "%.17g", o->pj.beta);
    char *argv[16];
    int n = 0;
    argv[n++] = "analyze";
    argv[n++] = (char *)o->run;
    argv[n++] = "-o";
    argv[n++] = (char *)analysis;
    argv[n++] = "--csv";
    argv[n++] = (char *)tables;
    argv[n++] = "--tau";
    argv[n++] = tau;
    argv[n++] = "--beta";
    argv[n++] = beta;
    argv[n++] = "-q";
    if (o->force) argv[n++] = "--force";
    if (o->policy) {
        argv[n++] = "--policy";
        argv[n++] = (char *)o->policy;
    }
    argv[n] = NULL;
    return oialr_cmd_analyze(n, argv) == 0 ? OIALR_OK : OIALR_ERR_IO;
}

int oialr_cmd_report(int argc, char **argv) {
    report_opts o;
    memset(&o, 0, sizeof o);
    o.pj.tau = 0.99;
    o.pj.beta = 0.15;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            report_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
            o.force = 1;
        } else if (!strcmp(a, "--compare")) {
            int k = 0;
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                if (o.ncompare == CMP_MAX_RUNS - 1) {
                    fprintf(stderr, "oialr report: --compare: at most %d runs\n", CMP_MAX_RUNS - 1);
                    return 2;
                }
                o.compare[o.ncompare++] = argv[++i];
                k++;
            }
            if (!k) {
                fprintf(stderr, "oialr report: --compare needs at least one run\n");
                return 2;
            }
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--labels") || !strcmp(a, "--format") ||
                   !strcmp(a, "--policy") || !strcmp(a, "--layers") || !strcmp(a, "--steps") || !strcmp(a, "--tau") ||
                   !strcmp(a, "--beta")) {
            const char *v = cli_value("report", argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "--labels")) o.labels = v;
            else if (!strcmp(a, "--format")) {
                static const char *const fmts[] = {"png", "svg", NULL};
                if (cli_choice("report", a, v, fmts, &o.pj.svg)) return 2;
            } else if (!strcmp(a, "--policy")) o.policy = v;
            else if (!strcmp(a, "--layers")) o.pj.layers_glob = v;
            else if (!strcmp(a, "--steps")) o.pj.steps = v;
            else if (!strcmp(a, "--tau")) {
                if (cli_float("report", a, v, -1.0, 1.0, &o.pj.tau)) return 2;
            } else if (!strcmp(a, "--beta")) {
                if (cli_float("report", a, v, 0.0, 1.0, &o.pj.beta)) return 2;
            } else o.dir = v;
        } else if (a[0] == '-') {
            fprintf(stderr, "oialr report: unknown option '%s' (try 'oialr report --help')\n", a);
            return 2;
        } else if (!o.run) {
            o.run = a;
        } else {
            fprintf(stderr, "oialr report: one run only (got '%s' and '%s'; compare with --compare)\n", o.run, a);
            return 2;
        }
    }
    if (!o.run || !o.dir) {
        if (o.run) fprintf(stderr, "oialr report: -o DIR is required\n");
        else report_usage(stderr);
        return 2;
    }
    char tables[4096], analysis[4096], figures[4096], index[4096];
    if (strlen(o.dir) > 4000) {
        fprintf(stderr, "oialr report: %s: path too long\n", o.dir);
        return 2;
    }
    snprintf(tables, sizeof tables, "%s/tables", o.dir);
    snprintf(analysis, sizeof analysis, "%s/analysis.h5", o.dir);
    snprintf(figures, sizeof figures, "%s/figures", o.dir);
    snprintf(index, sizeof index, "%s/index.html", o.dir);
    ana_outputs outs;
    ana_outputs_init(&outs, o.force);
    cmp_job cj;
    memset(&cj, 0, sizeof cj);
    int made = 0, html = -1, rc = OIALR_OK;
    plot_signals_catch();
    struct stat st;
    /* the checks a user can fix, before the analysis runs */
    if (access(o.run, R_OK) != 0) rc = oialr_seterr(OIALR_ERR_NOTFOUND, "%s: %s", o.run, strerror(errno));
    if (!rc) rc = plot_have_gnuplot();
    if (!rc) rc = report_check_run(o.run);
    for (int i = 0; !rc && i < o.ncompare; i++) rc = report_check_run(o.compare[i]);
    if (!rc && stat(o.dir, &st) == 0 && !S_ISDIR(st.st_mode))
        rc = oialr_seterr(OIALR_ERR_EXISTS, "%s exists and is not a directory", o.dir);
    if (!rc && (rc = ana_outputs_dir(&outs, figures)) == OIALR_OK) rc = ana_outputs_add(&outs, index, &html);
    if (!rc && o.ncompare) {
        char *paths[CMP_MAX_RUNS];
        paths[0] = (char *)o.run;
        for (int i = 0; i < o.ncompare; i++) paths[i + 1] = o.compare[i];
        rc = cmp_job_init(&cj, o.ncompare + 1, paths, o.labels);
    }
    if (!rc) {
        if (mkdir(o.dir, 0777) == 0) made = 1;
        else if (errno != EEXIST) rc = oialr_seterr(OIALR_ERR_IO, "%s: %s", o.dir, strerror(errno));
    }
    if (!rc && !fresh(&o, tables, analysis)) {
        printf("report: analysing %s\n", o.run);
        fflush(stdout);
        if (analyse(&o, tables, analysis)) rc = oialr_seterr(OIALR_ERR_IO, "the analysis of %s failed (message above)", o.run);
    } else if (!rc) {
        printf("report: %s (the analysis of %s with these settings) reused\n", tables, o.run);
    }
    o.pj.csv_dir = tables;
    o.pj.out_dir = figures;
    o.pj.run = o.run;
    if (!rc) rc = plot_job_plan(&o.pj, &outs);
    if (!rc && o.ncompare) {
        snprintf(cj.runs[0].tables, sizeof cj.runs[0].tables, "%s", tables);
        cj.out_dir = figures;
        cj.cache_dir = o.dir;
        cj.svg = o.pj.svg;
        cj.force = o.force;
        rc = cmp_job_prepare(&cj);
        if (!rc) rc = cmp_job_plan(&cj, &outs);
    }
    if (!rc) rc = ana_outputs_begin(&outs);
    if (!rc) rc = plot_job_draw(&o.pj, &outs);
    if (!rc && o.ncompare) rc = cmp_job_draw(&cj, &outs);
    if (!rc) rc = write_html(&o, &o.pj, o.ncompare ? &cj : NULL, &outs, html);
    if (!rc && plot_interrupted()) rc = oialr_seterr(OIALR_ERR_IO, "interrupted by signal %d", plot_interrupted());
    if (!rc) rc = ana_outputs_commit(&outs);
    ana_outputs_close(&outs);
    if (rc && made) rmdir(o.dir); /* only if this run made it and left it empty */
    int sig = plot_interrupted();
    plot_signals_restore();
    if (rc) {
        fprintf(stderr, "oialr report: %s\n", oialr_errmsg()[0] ? oialr_errmsg() : oialr_strerror(rc));
        plot_job_free(&o.pj);
        cmp_job_free(&cj);
        return sig ? 128 + sig : 1;
    }
    if (o.ncompare) cmp_job_print(&cj, stdout);
    printf("report: open %s/index.html\n", o.dir);
    plot_job_free(&o.pj);
    cmp_job_free(&cj);
    return 0;
}
