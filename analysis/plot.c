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
 */
#include "plot.h"
#include "oialr/base.h"
#include "oialr/trajectory.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

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

typedef struct plot_ctx {
    const char *csv_dir, *out_dir, *run;
    double tau;
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

static FILE *open_script(const plot_ctx *c, const char *name, char *path, size_t n) {
    snprintf(path, n, "%s/%s.gp", c->out_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        oialr_seterr(OIALR_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    fprintf(f,
            "# %s.gp — written by 'oialr plot'; re-run with: gnuplot %s.gp\n"
            "set terminal pngcairo size 1200,720 noenhanced font ',10'\n"
            "set output '%s.png'\n"
            "set datafile separator ','\n"
            "set datafile missing 'nan'\n"
            "set grid\n"
            "set key outside right top Left reverse samplen 2 spacing 0.9 font ',8'\n",
            name, name, name);
    return f;
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

/* Run gnuplot on a script inside the output directory. */
static int run_gnuplot(const plot_ctx *c, const char *script) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot '%s' 2>&1", c->out_dir, script);
    FILE *p = popen(cmd, "r");
    if (!p) return oialr_seterr(OIALR_ERR_IO, "cannot run gnuplot: %s", strerror(errno));
    char buf[1024], first[1024] = "";
    while (fgets(buf, sizeof buf, p))
        if (!first[0]) snprintf(first, sizeof first, "%s", buf);
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
            return oialr_seterr(OIALR_ERR_NOTFOUND, "gnuplot not found: install it with 'apt-get install gnuplot-nox'");
        size_t l = strlen(first);
        if (l && first[l - 1] == '\n') first[l - 1] = '\0';
        return oialr_seterr(OIALR_ERR_IO, "gnuplot failed on %s/%s: %s", c->out_dir, script, first);
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

static int fig_stability(const plot_ctx *c) {
    char path[4096], metrics[4096], mean[4096];
    int rc;
    if ((rc = csv_path(c, "metrics.csv", metrics, sizeof metrics)) || (rc = csv_path(c, "mean_stability.csv", mean, sizeof mean)))
        return rc;
    FILE *f = open_script(c, "stability", path, sizeof path);
    if (!f) return OIALR_ERR_IO;
    fprintf(f,
            "set title 'Basis stability S = tr(Q_a^T Q_b)/n of each layer (Q = U V^T), threshold %g'\n"
            "set xlabel 'training step'\nset ylabel 'stability S'\n"
            "set yrange [*:1.01]\n",
            c->tau);
    char extra[8192];
    snprintf(extra, sizeof extra,
             "'%s' using 1:2 skip 1 with lines lw 3 dt 1 lc rgb 'black' title 'mean', \\\n     %g with lines lw 1 dt 2 "
             "lc rgb 'red' title 'tau = %g'",
             mean, c->tau, c->tau);
    plot_per_layer(f, c, metrics, "$7", extra);
    if (fclose(f) != 0) return oialr_seterr(OIALR_ERR_IO, "%s: write error", path);
    return run_gnuplot(c, "stability.gp");
}

static int fig_ranks(const plot_ctx *c) {
    char path[4096], metrics[4096];
    int rc;
    if ((rc = csv_path(c, "metrics.csv", metrics, sizeof metrics))) return rc;
    FILE *f = open_script(c, "ranks", path, sizeof path);
    if (!f) return OIALR_ERR_IO;
    fprintf(f, "set multiplot layout 2,1 title 'Rank metrics of each layer, as a fraction of n = min(rows, cols)'\n"
               "set ylabel 'effective rank / n'\nset yrange [0:1.02]\nunset xlabel\n");
    plot_per_layer(f, c, metrics, "$12/($4<$5?$4:$5)", NULL);
    fprintf(f, "set ylabel 'cutoff rank r_beta / n'\nset xlabel 'training step'\nset key off\n");
    plot_per_layer(f, c, metrics, "$14/($4<$5?$4:$5)", NULL);
    fprintf(f, "unset multiplot\n");
    if (fclose(f) != 0) return oialr_seterr(OIALR_ERR_IO, "%s: write error", path);
    return run_gnuplot(c, "ranks.gp");
}

static int fig_spectra(const plot_ctx *c) {
    char path[4096], spectra[4096];
    int rc;
    if ((rc = csv_path(c, "spectra.csv", spectra, sizeof spectra))) return rc;
    FILE *f = open_script(c, "spectra", path, sizeof path);
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
    if (fclose(f) != 0) return oialr_seterr(OIALR_ERR_IO, "%s: write error", path);
    if (k == 0) return OIALR_OK;
    return run_gnuplot(c, "spectra.gp");
}

/* Training curves: write the trajectory's metrics as a CSV, then plot. */
static int fig_training(const plot_ctx *c) {
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
    char path[4096];
    snprintf(path, sizeof path, "%s/training.csv", c->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        rc = oialr_seterr(OIALR_ERR_IO, "%s: %s", path, strerror(errno));
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
    if (fclose(f) != 0) {
        rc = oialr_seterr(OIALR_ERR_IO, "%s: write error", path);
        goto done;
    }
    f = open_script(c, "training", path, sizeof path);
    if (!f) {
        rc = OIALR_ERR_IO;
        goto done;
    }
    fprintf(f,
            "set multiplot layout 1,2 title 'Training curves'\n"
            "set xlabel 'training step'\nset ylabel 'training loss'\nset logscale y\n"
            "plot 'training.csv' using 1:3 skip 1 with lines lw 1.5 title 'loss'\n"
            "unset logscale y\nset ylabel 'accuracy'\nset yrange [*:1]\nset key inside right bottom\n"
            "plot 'training.csv' using 1:4 skip 1 with lines lw 1.5 title 'train (running, epoch)', \\\n"
            "     '' using 1:5 skip 1 with points pt 7 ps 1.2 title 'validation', \\\n"
            "     '' using 1:6 skip 1 with points pt 5 ps 1.2 title 'test'\n"
            "unset multiplot\n");
    if (fclose(f) != 0) {
        rc = oialr_seterr(OIALR_ERR_IO, "%s: write error", path);
        goto done;
    }
    rc = run_gnuplot(c, "training.gp");
done:
    free(steps);
    free(v);
    oialr_traj_close(t);
    return rc;
}

int oialr_cmd_plot(int argc, char **argv) {
    plot_ctx c = {.tau = 0.99};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            plot_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--run") || !strcmp(a, "--tau"))) {
            if (i + 1 >= argc) {
                fprintf(stderr, "oialr plot: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--run")) c.run = v;
            else if (!strcmp(a, "--tau")) {
                char *end;
                c.tau = strtod(v, &end);
                if (*end || end == v || !(c.tau >= -1.0 && c.tau <= 1.0)) {
                    fprintf(stderr, "oialr plot: --tau: expected a number in [-1, 1], got '%s'\n", v);
                    return 2;
                }
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
    if (mkdir(c.out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "oialr plot: %s: %s\n", c.out_dir, strerror(errno));
        return 1;
    }
    int rc = read_layers(&c);
    if (!rc) rc = fig_stability(&c);
    if (!rc) rc = fig_ranks(&c);
    if (!rc) rc = fig_spectra(&c);
    if (!rc && c.run) rc = fig_training(&c);
    if (rc) {
        fprintf(stderr, "oialr plot: %s\n", oialr_errmsg()[0] ? oialr_errmsg() : oialr_strerror(rc));
        return 1;
    }
    printf("figures: %s/stability.png %s/ranks.png %s/spectra.png%s%s%s\n", c.out_dir, c.out_dir, c.out_dir,
           c.run ? " " : "", c.run ? c.out_dir : "", c.run ? "/training.png" : "");
    return 0;
}
