/*
 * plot.c — `oialr plot`: gnuplot figures from the tables of `oialr analyze
 * --csv DIR` (and, optionally, the training curves of the trajectory).
 *
 * For each figure it writes the gnuplot script next to the PNG, so a user
 * can edit and re-run it (`gnuplot stability.gp`); the layer list and the
 * first/last snapshot of each layer are read from metrics.csv here, which
 * keeps the scripts free of shell tricks.
 *
 *   stability.png  S(step) per layer, mean stability, threshold tau
 *   ranks.png      effective rank / n and cutoff rank r_beta / n per layer
 *   spectra.png    sigma_i / sigma_1 against i / n, first and last snapshot
 *   training.png   loss and accuracies (with --run RUN.h5)
 *
 * Outputs (docs/analyze.md, "Output files"): every script, figure and
 * training.csv is checked before anything is drawn (a regular file there is
 * replaced only with --force; nothing else ever is), written under a
 * temporary name beside its path, and renamed into place only once every
 * figure is drawn. A script names its figure through a variable with the
 * final name as default, `if (!exists("out")) out = 'stability.png'`, so
 * `gnuplot stability.gp` draws stability.png while this command runs
 * `gnuplot -e "out='<temporary>'"` on the script's temporary file.
 */
#include "plot.h"
#include "cli.h"
#include "oialr/base.h"
#include "oialr/trajectory.h"
#include "outputs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PLOT_MAX_LAYERS 256
/* Metrics rows `plot --run` reads: 2^21 rows are 117 MB of arrays and a
 * 60 MB CSV, far more than a training curve needs; a file claiming more is
 * refused before anything is allocated for it. */
#define PLOT_MAX_ROWS ((int64_t)1 << 21)

typedef struct plot_layer {
    char name[OIALR_TRAJ_NAME_MAX];
    int64_t first, last; /* steps of the first and last valid snapshot */
    int64_t n;           /* min(rows, cols) */
} plot_layer;

enum { FIG_STABILITY, FIG_RANKS, FIG_SPECTRA, FIG_TRAINING, NFIG };
static const char *const FIG_NAME[NFIG] = {"stability", "ranks", "spectra", "training"};

typedef struct plot_ctx {
    const char *csv_dir, *out_dir, *run;
    double tau;
    int force;                         /* replace existing regular files */
    ana_outputs outs;                  /* every file this run writes */
    int gp[NFIG], png[NFIG];           /* their indices in outs (-1: not written) */
    int data;                          /* training.csv (-1: no --run) */
    int drawn[NFIG];                   /* the PNG was drawn */
    plot_layer layers[PLOT_MAX_LAYERS];
    int nlayers;
    int capped; /* a table had more layers than PLOT_MAX_LAYERS (warned once) */
} plot_ctx;

static void plot_usage(FILE *f) {
    fprintf(f,
            "usage: oialr plot CSVDIR [options]\n"
            "\n"
            "Draw gnuplot figures (PNG, with their .gp scripts) from the tables that\n"
            "'oialr analyze RUN.h5 --csv CSVDIR' wrote.\n"
            "\n"
            "  -o, --output DIR   where to write the figures (default: CSVDIR)\n"
            "  -f, --force        replace figures, scripts and training.csv in DIR if they\n"
            "                     are existing regular files (never anything else)\n"
            "      --run RUN.h5   also plot the training curves stored in the trajectory\n"
            "      --tau T        stability threshold line (default 0.99)\n"
            "  -h, --help         this help\n");
}

/* Split one CSV line in place; handles the analyzer's quoted layer names. */
static int csv_fields(char *line, char **f, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        if (*p == '"') {
            char *q = ++p, *w = p;
            while (*q && !(*q == '"' && q[1] != '"')) {
                if (*q == '"') q++; /* "" -> " */
                *w++ = *q++;
            }
            if (*q == '"') q++;
            *w = '\0';
            f[n++] = p;
            p = q;
            if (*p == ',') p++;
            else break;
        } else {
            f[n++] = p;
            char *c = strpbrk(p, ",\n\r");
            if (!c || *c != ',') {
                if (c) *c = '\0';
                break;
            }
            *c = '\0';
            p = c + 1;
        }
    }
    return n;
}

static int read_layers(plot_ctx *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.csv", c->csv_dir);
    FILE *f = fopen(path, "r");
    if (!f) return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: %s (run 'oialr analyze RUN.h5 --csv %s' first)", path,
                                strerror(errno), c->csv_dir);
    char line[8192];
    char *fld[32];
    int rc = OIALR_OK;
    if (!fgets(line, sizeof line, f) || strncmp(line, "layer,step,", 11) != 0) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: not a metrics table of 'oialr analyze'", path);
        goto done;
    }
    while (fgets(line, sizeof line, f)) {
        int nf = csv_fields(line, fld, 32);
        if (nf < 7) continue;
        int64_t step = strtoll(fld[1], NULL, 10);
        int64_t rows = strtoll(fld[3], NULL, 10), cols = strtoll(fld[4], NULL, 10);
        int valid = atoi(fld[5]);
        int i;
        for (i = 0; i < c->nlayers; i++)
            if (strcmp(c->layers[i].name, fld[0]) == 0) break;
        if (i == c->nlayers) {
            if (c->nlayers == PLOT_MAX_LAYERS) {
                if (!c->capped)
                    oialr_log(OIALR_LOG_WARN, "%s: more than %d layers; the figures show the first %d", path,
                              PLOT_MAX_LAYERS, PLOT_MAX_LAYERS);
                c->capped = 1;
                continue;
            }
            plot_layer *l = &c->layers[c->nlayers++];
            snprintf(l->name, sizeof l->name, "%s", fld[0]);
            l->first = -1;
            l->last = -1;
            l->n = rows < cols ? rows : cols;
        }
        if (!valid) continue;
        plot_layer *l = &c->layers[i];
        if (l->first < 0 || step < l->first) l->first = step;
        if (step > l->last) l->last = step;
    }
    if (c->nlayers == 0) rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: no layers in the table", path);
done:
    fclose(f);
    return rc;
}

/* gnuplot string literal of a layer name (single quotes, '' escapes). */
static void gp_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* Open the script of a figure (on its temporary file); *path: the final
 * path, for messages. */
static FILE *open_script(const plot_ctx *c, int fig, const char **path) {
    const char *name = FIG_NAME[fig];
    *path = ana_outputs_path(&c->outs, c->gp[fig]);
    FILE *f = fopen(ana_outputs_tmp(&c->outs, c->gp[fig]), "w");
    if (!f) {
        oialr_seterr(OIALR_ERR_IO, "%s: cannot write it: %s", *path, strerror(errno));
        return NULL;
    }
    fprintf(f,
            "# %s.gp — written by 'oialr plot'; re-run with: gnuplot %s.gp\n"
            "# (gnuplot -e \"out='other.png'\" %s.gp draws into other.png)\n"
            "set terminal pngcairo size 1200,720 noenhanced font ',10'\n"
            "if (!exists(\"out\")) out = '%s.png'\n"
            "set output out\n"
            "set datafile separator ','\n"
            "set datafile missing 'nan'\n"
            "set grid\n"
            "set key outside right top Left reverse samplen 2 spacing 0.9 font ',8'\n",
            name, name, name, name);
    return f;
}

static int close_script(FILE *f, const char *path) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return oialr_seterr(OIALR_ERR_IO, "%s: write error", path);
    return OIALR_OK;
}

/* The layers as a gnuplot array-like word list is fragile with dots; emit
 * one plot clause per layer instead. */
static void plot_per_layer(FILE *f, const plot_ctx *c, const char *file, const char *ycol, const char *extra) {
    for (int i = 0; i < c->nlayers; i++) {
        fprintf(f, "%s '%s' using (strcol(1) eq ", i ? ", \\\n     " : "plot ", file);
        gp_quote(f, c->layers[i].name);
        fprintf(f, " ? $2 : NaN):(%s) with lines lw 1.5 title ", ycol);
        gp_quote(f, c->layers[i].name);
    }
    if (extra) fprintf(f, ", \\\n     %s", extra);
    fputc('\n', f);
}

/* The file name of a path (the temporary files live in out_dir itself). */
static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* dst = src with every `from` replaced by `to` (truncated to n). */
static void replace_all(char *dst, size_t n, const char *src, const char *from, const char *to) {
    size_t lf = strlen(from), k = 0;
    while (*src && k + 1 < n) {
        if (lf && strncmp(src, from, lf) == 0) {
            k += (size_t)snprintf(dst + k, n - k, "%s", to);
            if (k >= n) k = n - 1;
            src += lf;
        } else {
            dst[k++] = *src++;
        }
    }
    dst[k] = '\0';
}

/* Run gnuplot on a figure's temporary script inside the output directory,
 * drawing into the figure's temporary file (and reading the training table
 * from its temporary file). The temporary names are generated ones: letters,
 * digits and dots, safe inside the quotes below. */
static int run_gnuplot(const plot_ctx *c, int fig) {
    const char *script = base_name(ana_outputs_tmp(&c->outs, c->gp[fig]));
    const char *png = base_name(ana_outputs_tmp(&c->outs, c->png[fig]));
    char vars[1024], dir[8192], cmd[16384];
    int n = snprintf(vars, sizeof vars, "out='%s'", png);
    if (fig == FIG_TRAINING)
        snprintf(vars + n, sizeof vars - (size_t)n, "; data='%s'", base_name(ana_outputs_tmp(&c->outs, c->data)));
    replace_all(dir, sizeof dir, c->out_dir, "'", "'\\''"); /* inside '...' for sh */
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot -e \"%s\" '%s' 2>&1", dir, vars, script);
    FILE *p = popen(cmd, "r");
    if (!p) return oialr_seterr(OIALR_ERR_IO, "cannot run gnuplot: %s", strerror(errno));
    char buf[1024], last[1024] = "";
    while (fgets(buf, sizeof buf, p)) {
        size_t l = strcspn(buf, "\r\n");
        buf[l] = '\0';
        if (l && strspn(buf, " ^") != l) snprintf(last, sizeof last, "%s", buf); /* gnuplot's error comes last */
    }
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
            return oialr_seterr(OIALR_ERR_NOTFOUND, "gnuplot not found: install it with 'apt-get install gnuplot-nox'");
        char name[64], msg[1024];
        snprintf(name, sizeof name, "%s.gp", FIG_NAME[fig]);
        replace_all(msg, sizeof msg, last, script, name); /* the message names the script as the user knows it */
        return oialr_seterr(OIALR_ERR_IO, "gnuplot failed on %s: %s", ana_outputs_path(&c->outs, c->gp[fig]), msg);
    }
    return OIALR_OK;
}

static int csv_path(const plot_ctx *c, const char *file, char *out, size_t n) {
    /* scripts run inside out_dir: give them an absolute path to the tables */
    char dir[4096];
    if (!realpath(c->csv_dir, dir)) return oialr_seterr(OIALR_ERR_IO, "%s: %s", c->csv_dir, strerror(errno));
    if ((size_t)snprintf(out, n, "%s/%s", dir, file) >= n)
        return oialr_seterr(OIALR_ERR_ARG, "%s: path too long", c->csv_dir);
    return OIALR_OK;
}

static int fig_stability(plot_ctx *c) {
    char metrics[4096], mean[4096];
    const char *path;
    int rc;
    if ((rc = csv_path(c, "metrics.csv", metrics, sizeof metrics)) || (rc = csv_path(c, "mean_stability.csv", mean, sizeof mean)))
        return rc;
    FILE *f = open_script(c, FIG_STABILITY, &path);
    if (!f) return OIALR_ERR_IO;
    fprintf(f,
            "set title 'Basis stability S = tr(Q_a^T Q_b)/n of each layer (Q = U V^T), threshold %g'\n"
            "set xlabel 'training step'\nset ylabel 'stability S'\n"
            "set yrange [*:1.01]\n",
            c->tau);
    char extra[16384], events[4096];
    int k = snprintf(extra, sizeof extra,
                     "'%s' using 1:2 skip 1 with lines lw 3 dt 1 lc rgb 'black' title 'mean', \\\n     %g with lines lw 1 "
                     "dt 2 lc rgb 'red' title 'tau = %g'",
                     mean, c->tau, c->tau);
    /* where each layer switched to low rank (events.csv from analyze): a
     * point at the stability the controller measured then, named */
    if (!csv_path(c, "events.csv", events, sizeof events) && access(events, R_OK) == 0 && k > 0 &&
        (size_t)k < sizeof extra)
        snprintf(extra + k, sizeof extra - (size_t)k,
                 ", \\\n     '%s' using 1:(strcol(3) eq 'switch' ? $4 : NaN):2 skip 1 with labels point pt 7 ps 1.2 "
                 "lc rgb 'red' offset char 0,0.8 font ',8' tc rgb 'red' title 'switch to low rank (S at the check)'",
                 events);
    plot_per_layer(f, c, metrics, "$7", extra);
    if ((rc = close_script(f, path)) || (rc = run_gnuplot(c, FIG_STABILITY))) return rc;
    c->drawn[FIG_STABILITY] = 1;
    return OIALR_OK;
}

static int fig_ranks(plot_ctx *c) {
    char metrics[4096];
    const char *path;
    int rc;
    if ((rc = csv_path(c, "metrics.csv", metrics, sizeof metrics))) return rc;
    FILE *f = open_script(c, FIG_RANKS, &path);
    if (!f) return OIALR_ERR_IO;
    fprintf(f, "set multiplot layout 2,1 title 'Rank metrics of each layer, as a fraction of n = min(rows, cols)'\n"
               "set ylabel 'effective rank / n'\nset yrange [0:1.02]\nunset xlabel\n");
    plot_per_layer(f, c, metrics, "$12/($4<$5?$4:$5)", NULL);
    fprintf(f, "set ylabel 'cutoff rank r_beta / n'\nset xlabel 'training step'\nset key off\n");
    plot_per_layer(f, c, metrics, "$14/($4<$5?$4:$5)", NULL);
    fprintf(f, "unset multiplot\n");
    if ((rc = close_script(f, path)) || (rc = run_gnuplot(c, FIG_RANKS))) return rc;
    c->drawn[FIG_RANKS] = 1;
    return OIALR_OK;
}

static int fig_spectra(plot_ctx *c) {
    char spectra[4096];
    const char *path;
    int rc;
    if ((rc = csv_path(c, "spectra.csv", spectra, sizeof spectra))) return rc;
    FILE *f = open_script(c, FIG_SPECTRA, &path);
    if (!f) return OIALR_ERR_IO;
    fprintf(f,
            "set title 'Singular values sigma_i / sigma_1 of each layer: first snapshot (dashed), last (solid)'\n"
            "set xlabel 'i / n'\nset ylabel 'sigma_i / sigma_1'\nset logscale y\nset xrange [0:1]\n");
    /* sigma_1 is the first row of each (layer, step) block: keep it in a variable */
    fprintf(f, "s1 = 1.0\n");
    int k = 0;
    for (int i = 0; i < c->nlayers; i++) {
        const plot_layer *l = &c->layers[i];
        if (l->last < 0) continue;
        for (int pass = 0; pass < 2; pass++) {
            int64_t step = pass == 0 ? l->first : l->last;
            fprintf(f, "%s '%s' using (strcol(1) eq ", k++ ? ", \\\n     " : "plot ", spectra);
            gp_quote(f, l->name);
            fprintf(f,
                    " && $2 == %lld ? ($3 == 1 ? (s1 = $4, $3/%lld.0) : $3/%lld.0) : NaN):($4/s1) with lines lw 1.5 "
                    "dt %d lc %d ",
                    (long long)step, (long long)l->n, (long long)l->n, pass == 0 ? 2 : 1, i + 1);
            if (pass == 1) {
                fprintf(f, "title ");
                gp_quote(f, l->name);
            } else {
                fprintf(f, "notitle");
            }
        }
    }
    fputc('\n', f);
    if ((rc = close_script(f, path))) return rc;
    if (k == 0) { /* no valid snapshot at all: no figure, and an old one is left alone */
        ana_outputs_drop(&c->outs, c->png[FIG_SPECTRA]);
        return OIALR_OK;
    }
    if ((rc = run_gnuplot(c, FIG_SPECTRA))) return rc;
    c->drawn[FIG_SPECTRA] = 1;
    return OIALR_OK;
}

/* Training curves: write the trajectory's metrics as a CSV, then plot. */
static int fig_training(plot_ctx *c) {
    oialr_traj *t = NULL;
    int rc = oialr_traj_open(&t, c->run, OIALR_TRAJ_READ);
    if (rc) return rc;
    static const char *const cols[] = {"epoch", "loss", "train_acc", "val_acc", "test_acc", "lr"};
    enum { NC = 6 };
    int64_t n = 0, cap = oialr_traj_get_info(t)->nmetrics;
    if (cap <= 0) {
        oialr_traj_close(t);
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no training metrics recorded", c->run);
    }
    if (cap > PLOT_MAX_ROWS) {
        oialr_traj_close(t);
        return oialr_seterr(OIALR_ERR_OVERFLOW, "%s: %lld metrics rows; plot --run reads at most %lld", c->run,
                            (long long)cap, (long long)PLOT_MAX_ROWS);
    }
    int64_t *steps = malloc((size_t)cap * sizeof *steps);
    double *v = calloc((size_t)cap * NC, sizeof *v);
    if (!steps || !v) {
        rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for %lld metrics rows", c->run, (long long)cap);
        goto done;
    }
    if ((rc = oialr_traj_read_metric_steps(t, steps, cap, &n))) goto done;
    for (int j = 0; j < NC; j++) {
        int64_t got = 0;
        double *col = v + (size_t)j * cap;
        rc = oialr_traj_read_column(t, cols[j], col, cap, &got);
        if (rc == OIALR_ERR_NOTFOUND) { /* not recorded by this writer: plotted as missing */
            for (int64_t i = 0; i < cap; i++) col[i] = NAN;
            rc = OIALR_OK;
        } else if (rc) {
            goto done; /* unreadable: the message names the file and the column */
        }
    }
    const char *path = ana_outputs_path(&c->outs, c->data);
    FILE *f = fopen(ana_outputs_tmp(&c->outs, c->data), "w");
    if (!f) {
        rc = oialr_seterr(OIALR_ERR_IO, "%s: cannot write it: %s", path, strerror(errno));
        goto done;
    }
    fprintf(f, "step,epoch,loss,train_acc,val_acc,test_acc,lr\n");
    for (int64_t i = 0; i < n; i++) {
        fprintf(f, "%lld", (long long)steps[i]);
        for (int j = 0; j < NC; j++) {
            double x = v[(size_t)j * cap + i];
            /* validation/test values are carried between evaluations: keep
             * only the row where a new evaluation appears */
            if ((j == 3 || j == 4) && i > 0 && x == v[(size_t)j * cap + i - 1]) x = NAN;
            fprintf(f, ",%.9g", x);
        }
        fputc('\n', f);
    }
    if ((rc = close_script(f, path))) goto done;
    f = open_script(c, FIG_TRAINING, &path);
    if (!f) {
        rc = OIALR_ERR_IO;
        goto done;
    }
    /* the table by a variable too: this command reads its temporary file */
    fprintf(f,
            "if (!exists(\"data\")) data = 'training.csv'\n"
            "set multiplot layout 1,2 title 'Training curves'\n"
            "set xlabel 'training step'\nset ylabel 'training loss'\nset logscale y\n"
            "plot data using 1:3 skip 1 with lines lw 1.5 title 'loss'\n"
            "unset logscale y\nset ylabel 'accuracy'\nset yrange [*:1]\nset key inside right bottom\n"
            "plot data using 1:4 skip 1 with lines lw 1.5 title 'train (running, epoch)', \\\n"
            "     '' using 1:5 skip 1 with points pt 7 ps 1.2 title 'validation', \\\n"
            "     '' using 1:6 skip 1 with points pt 5 ps 1.2 title 'test'\n"
            "unset multiplot\n");
    if ((rc = close_script(f, path)) || (rc = run_gnuplot(c, FIG_TRAINING))) goto done;
    c->drawn[FIG_TRAINING] = 1;
done:
    free(steps);
    free(v);
    oialr_traj_close(t);
    return rc;
}

static int add_output(plot_ctx *c, const char *name, const char *ext, int *index) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s%s", c->out_dir, name, ext) >= sizeof path)
        return oialr_seterr(OIALR_ERR_ARG, "%s: path too long", c->out_dir);
    return ana_outputs_add(&c->outs, path, index);
}

/* Every output of the run, checked now (nothing is touched): the scripts
 * and figures, and training.csv with --run. */
static int plan_outputs(plot_ctx *c) {
    c->data = -1;
    for (int fig = 0; fig < NFIG; fig++) c->gp[fig] = c->png[fig] = -1;
    int rc = ana_outputs_dir(&c->outs, c->out_dir);
    if (rc) return rc;
    for (int fig = 0; fig < NFIG; fig++) {
        if (fig == FIG_TRAINING && !c->run) continue;
        if ((rc = add_output(c, FIG_NAME[fig], ".gp", &c->gp[fig])) ||
            (rc = add_output(c, FIG_NAME[fig], ".png", &c->png[fig])))
            return rc;
    }
    return c->run ? add_output(c, "training", ".csv", &c->data) : OIALR_OK;
}

int oialr_cmd_plot(int argc, char **argv) {
    plot_ctx c = {.tau = 0.99};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            plot_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
            c.force = 1;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--run") || !strcmp(a, "--tau"))) {
            const char *v = cli_value("plot", argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "--run")) c.run = v;
            else if (!strcmp(a, "--tau")) {
                if (cli_float("plot", a, v, -1.0, 1.0, &c.tau)) return 2;
            } else c.out_dir = v;
        } else if (a[0] == '-') {
            fprintf(stderr, "oialr plot: unknown option '%s' (try 'oialr plot --help')\n", a);
            return 2;
        } else if (!c.csv_dir) {
            c.csv_dir = a;
        } else {
            fprintf(stderr, "oialr plot: one table directory only (got '%s' and '%s')\n", c.csv_dir, a);
            return 2;
        }
    }
    if (!c.csv_dir) {
        plot_usage(stderr);
        return 2;
    }
    if (!c.out_dir) c.out_dir = c.csv_dir;
    ana_outputs_init(&c.outs, c.force);
    int rc = plan_outputs(&c);
    if (!rc) rc = read_layers(&c);
    if (!rc) rc = ana_outputs_begin(&c.outs); /* creates out_dir if missing */
    if (!rc) rc = fig_stability(&c);
    if (!rc) rc = fig_ranks(&c);
    if (!rc) rc = fig_spectra(&c);
    if (!rc && c.run) rc = fig_training(&c);
    /* every figure is drawn: only now replace the old files */
    if (!rc) rc = ana_outputs_commit(&c.outs);
    ana_outputs_close(&c.outs); /* after a failure: removes the temporary files, nothing else */
    if (rc) {
        fprintf(stderr, "oialr plot: %s\n", oialr_errmsg()[0] ? oialr_errmsg() : oialr_strerror(rc));
        return 1;
    }
    printf("figures:");
    for (int fig = 0; fig < NFIG; fig++)
        if (c.drawn[fig]) printf(" %s/%s.png", c.out_dir, FIG_NAME[fig]);
    printf("\n");
    return 0;
}
