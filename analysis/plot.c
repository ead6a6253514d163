/*
 * plot.c — `oialr plot`: gnuplot figures from the tables of `oialr analyze
 * --csv DIR` (and, with --run RUN.h5, the trajectory's own training curves
 * and stored ranks). This file is the driver: options, reading the tables,
 * choosing the figures, the output files and running gnuplot. The figures
 * themselves (their data files and scripts) are drawn by figures.c.
 *
 *   stability      S(step) per layer, the mean in bold, tau, each switch
 *   heatmap        S as colour, layers x steps
 *   spectrum-L     sigma_i of layer L at a few steps, log scale, beta*sigma_1
 *   evolution-L    log10 sigma_i of layer L as colour, index x step
 *   ranks          rank / n per layer, truncations, trainable fraction
 *   training       every metric column of the run (with --run)
 *
 * Every figure keeps the data it draws beside it (NAME.csv, with a header),
 * and its script reads that file by a relative name, so a figures directory
 * can be moved, edited and redrawn with `gnuplot NAME.gp` on its own.
 *
 * Outputs (docs/analyze.md, "Output files"): every script, figure and data
 * file is checked before anything is drawn (a regular file there is replaced
 * only with --force; nothing else ever is), written under a temporary name
 * beside its path, and renamed into place only once every figure is drawn.
 * A script names its figure and data through variables with the final names
 * as defaults, `if (!exists("out")) out = 'stability.png'`, so `gnuplot
 * stability.gp` draws stability.png while this command runs `gnuplot -e
 * "out='<temporary>'; data='<temporary>'"` on the script's temporary file.
 * A signal (Ctrl-C, SIGTERM) stops the command at the next figure and the
 * temporary files are removed: a plot is all or nothing.
 */
#include "plot.h"
#include "cli.h"
#include "oialr/base.h"
#include "oialr/params.h"
#include "oialr/trajectory.h"
#include "outputs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PLOT_MAX_LAYERS 1024
/* Metrics rows `plot --run` reads: 2^21 rows are far more than a training
 * curve needs; a file claiming more is refused before anything is
 * allocated for it. */
#define PLOT_MAX_ROWS ((int64_t)1 << 21)
/* The default spectrum/evolution layers: every layer up to this many, else
 * this many spread from the first to the last. */
#define PLOT_DEFAULT_LAYERS 4

static void plot_usage(FILE *f) {
    fprintf(f,
            "usage: oialr plot CSVDIR [options]\n"
            "\n"
            "Draw gnuplot figures (with their .gp scripts and the data each draws) from\n"
            "the tables that 'oialr analyze RUN.h5 --csv CSVDIR' wrote (docs/report.md).\n"
            "\n"
            "  -o, --output DIR   where to write the figures (default: CSVDIR)\n"
            "  -f, --force        replace figures, scripts and data files in DIR if they\n"
            "                     are existing regular files (never anything else)\n"
            "      --run RUN.h5   also the training curves and the ranks stored in the\n"
            "                     trajectory\n"
            "      --format F     png (default) or svg\n"
            "      --layers GLOBS the layers that get a spectrum and an evolution figure\n"
            "                     (default: all up to 4 layers, else 4 spread out)\n"
            "      --steps LIST   the steps of the spectrum figures, e.g. 0,500,4300\n"
            "                     (default: five spread over the run)\n"
            "      --tau T        stability threshold line (default 0.99)\n"
            "      --beta B       the cutoff beta*sigma_1 drawn on the spectra (default 0.15)\n"
            "  -h, --help         this help\n");
}

/* --------------------------------------------------------------------------- */
/* signals: a plot interrupted is cleaned up, not left half written */

static volatile sig_atomic_t plot_sig;
static struct sigaction plot_old[3];
static const int PLOT_SIGS[3] = {SIGINT, SIGTERM, SIGHUP};
static int plot_caught;

static void plot_on_signal(int sig) { plot_sig = sig; }

void plot_signals_catch(void) {
    if (plot_caught++) return;
    plot_sig = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = plot_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < 3; i++) sigaction(PLOT_SIGS[i], &sa, &plot_old[i]);
}

void plot_signals_restore(void) {
    if (!plot_caught || --plot_caught) return;
    for (int i = 0; i < 3; i++) sigaction(PLOT_SIGS[i], &plot_old[i], NULL);
}

int plot_interrupted(void) { return plot_sig; }

/* --------------------------------------------------------------------------- */
/* CSV reading */

int plot_csv_fields(char *line, char **f, int max) {
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

void plot_csv_name(FILE *f, const char *name) {
    if (!strpbrk(name, ",\"\n\r")) {
        fputs(name, f);
        return;
    }
    fputc('"', f);
    for (const char *p = name; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

#define CSV_MAXF 64
typedef struct csv_file {
    FILE *f;
    char path[4200];
    char *line;
    size_t cap;
    char *fld[CSV_MAXF];
    int nf;
    char *head[CSV_MAXF]; /* the header's names (owned) */
    int nhead;
} csv_file;

static int csv_open(csv_file *c, const char *dir, const char *name, int must) {
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s/%s", dir, name);
    c->f = fopen(c->path, "r");
    if (!c->f) {
        if (!must && errno == ENOENT) return OIALR_ERR_NOTFOUND;
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: %s (run 'oialr analyze RUN.h5 --csv %s' first)", c->path,
                            strerror(errno), dir);
    }
    if (getline(&c->line, &c->cap, c->f) < 0)
        return oialr_seterr(OIALR_ERR_FORMAT, "%s: empty (not a table of 'oialr analyze')", c->path);
    int n = plot_csv_fields(c->line, c->fld, CSV_MAXF);
    for (int i = 0; i < n; i++)
        if (!(c->head[c->nhead++] = strdup(c->fld[i]))) return oialr_seterr(OIALR_ERR_NOMEM, "out of memory");
    return OIALR_OK;
}

static int csv_col(const csv_file *c, const char *name) {
    for (int i = 0; i < c->nhead; i++)
        if (!strcmp(c->head[i], name)) return i;
    return -1;
}

/* Next row (1) or the end (0). */
static int csv_next(csv_file *c) {
    while (getline(&c->line, &c->cap, c->f) >= 0) {
        c->nf = plot_csv_fields(c->line, c->fld, CSV_MAXF);
        if (c->nf >= 2 || (c->nf == 1 && c->fld[0][0])) return 1;
    }
    return 0;
}

static double csv_num(const csv_file *c, int col) {
    if (col < 0 || col >= c->nf) return NAN;
    char *end;
    double v = strtod(c->fld[col], &end);
    return end == c->fld[col] ? NAN : v;
}

/* An integer field that must be one (a step, an index): else a message
 * naming the file and the row. */
static int csv_int(const csv_file *c, int col, int64_t row, int64_t *out) {
    char *end;
    const char *s = col >= 0 && col < c->nf ? c->fld[col] : "";
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno)
        return oialr_seterr(OIALR_ERR_FORMAT, "%s: row %lld: '%s' is not an integer (column %d)", c->path,
                            (long long)row, s, col + 1);
    *out = v;
    return OIALR_OK;
}

static void csv_close(csv_file *c) {
    if (c->f) fclose(c->f);
    free(c->line);
    for (int i = 0; i < c->nhead; i++) free(c->head[i]);
    memset(c, 0, sizeof *c);
}

/* --------------------------------------------------------------------------- */
/* the tables */

static int find_layer(const plot_job *j, const char *name) {
    for (int i = 0; i < j->nlayers; i++)
        if (!strcmp(j->layers[i].name, name)) return i;
    return -1;
}

static int grow(void **p, int64_t *cap, int64_t need, size_t size) {
    if (need <= *cap) return OIALR_OK;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * size);
    if (!q) return oialr_seterr(OIALR_ERR_NOMEM, "plot: out of memory");
    *p = q;
    *cap = c;
    return OIALR_OK;
}

static int read_metrics(plot_job *j) {
    csv_file c;
    int rc = csv_open(&c, j->csv_dir, "metrics.csv", 1);
    int cl = csv_col(&c, "layer"), cs = csv_col(&c, "step"), cr = csv_col(&c, "rows"), cc = csv_col(&c, "cols");
    if (!rc && (cl != 0 || cs < 0 || cr < 0 || cc < 0))
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: not a metrics table of 'oialr analyze'", c.path);
    int cv = csv_col(&c, "valid"), cst = csv_col(&c, "stability"), ce = csv_col(&c, "effective_rank");
    int crk = csv_col(&c, "rank"), ccut = csv_col(&c, "cutoff_rank"), ct = csv_col(&c, "trainable_share");
    int cp = csv_col(&c, "param_share"), ca = csv_col(&c, "alpha");
    j->has_alpha = ca >= 0;
    int64_t cap = 0, lcap = 0, row = 1, step = 0;
    int capped = 0;
    while (!rc && csv_next(&c)) {
        row++;
        if (c.nf <= cc) {
            rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: row %lld: %d fields, expected at least %d", c.path, (long long)row,
                              c.nf, cc + 1);
            break;
        }
        if ((rc = csv_int(&c, cs, row, &step))) break;
        int li = find_layer(j, c.fld[0]);
        if (li < 0) {
            if (j->nlayers == PLOT_MAX_LAYERS) {
                if (!capped)
                    oialr_log(OIALR_LOG_WARN, "%s: more than %d layers; the figures show the first %d", c.path,
                              PLOT_MAX_LAYERS, PLOT_MAX_LAYERS);
                capped = 1;
                continue;
            }
            if ((rc = grow((void **)&j->layers, &lcap, j->nlayers + 1, sizeof *j->layers))) break;
            plot_layer *l = &j->layers[j->nlayers];
            memset(l, 0, sizeof *l);
            snprintf(l->name, sizeof l->name, "%s", c.fld[0]);
            snprintf(l->file, sizeof l->file, "%s", c.fld[0]);
            for (char *p = l->file; *p; p++)
                if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_')) *p = '_';
            if (l->file[0] == '.') l->file[0] = '_';
            if ((rc = csv_int(&c, cr, row, &l->rows)) || (rc = csv_int(&c, cc, row, &l->cols))) break;
            if (l->rows < 1 || l->cols < 1 || l->rows > INT32_MAX || l->cols > INT32_MAX) {
                rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: row %lld: layer '%s' of shape %lld x %lld", c.path,
                                  (long long)row, l->name, (long long)l->rows, (long long)l->cols);
                break;
            }
            l->n = l->rows < l->cols ? l->rows : l->cols;
            l->m = l->rows < l->cols ? l->cols : l->rows;
            l->first = l->last = -1;
            l->switch_step = -1;
            l->switch_s = NAN;
            li = j->nlayers++;
        }
        if ((rc = grow((void **)&j->rows, &cap, j->nrows + 1, sizeof *j->rows))) break;
        plot_mrow *r = &j->rows[j->nrows++];
        r->layer = li;
        r->step = step;
        r->valid = cv < 0 || csv_num(&c, cv) != 0;
        r->stability = csv_num(&c, cst);
        r->effective_rank = csv_num(&c, ce);
        r->rank = csv_num(&c, crk);
        r->cutoff_rank = csv_num(&c, ccut);
        r->trainable_share = csv_num(&c, ct);
        r->param_share = csv_num(&c, cp);
        r->alpha = csv_num(&c, ca);
        plot_layer *l = &j->layers[li];
        if (r->valid) {
            if (l->first < 0 || r->step < l->first) l->first = r->step;
            if (r->step > l->last) l->last = r->step;
        }
    }
    if (!rc && j->nlayers == 0) rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: no layers in the table (an empty trajectory?)", c.path);
    csv_close(&c);
    return rc;
}

static int read_mean(plot_job *j) {
    csv_file c;
    int rc = csv_open(&c, j->csv_dir, "mean_stability.csv", 0);
    if (rc == OIALR_ERR_NOTFOUND && !c.f) {
        csv_close(&c);
        oialr_clearerr();
        return OIALR_OK;
    }
    int64_t cap = 0, cap2 = 0;
    while (!rc && csv_next(&c)) {
        if ((rc = grow((void **)&j->mean_step, &cap, j->nmean + 1, sizeof *j->mean_step)) ||
            (rc = grow((void **)&j->mean_s, &cap2, j->nmean + 1, sizeof *j->mean_s)))
            break;
        j->mean_step[j->nmean] = (int64_t)csv_num(&c, 0);
        j->mean_s[j->nmean++] = csv_num(&c, 1);
    }
    csv_close(&c);
    return rc;
}

static int read_events(plot_job *j) {
    csv_file c;
    int rc = csv_open(&c, j->csv_dir, "events.csv", 0);
    if (rc == OIALR_ERR_NOTFOUND && !c.f) {
        csv_close(&c);
        oialr_clearerr();
        return OIALR_OK;
    }
    int64_t cap = 0;
    while (!rc && csv_next(&c)) {
        if (c.nf < 6) continue;
        if ((rc = grow((void **)&j->ev, &cap, j->nev + 1, sizeof *j->ev))) break;
        plot_event *e = &j->ev[j->nev++];
        e->step = (int64_t)csv_num(&c, 0);
        e->layer = find_layer(j, c.fld[1]);
        snprintf(e->kind, sizeof e->kind, "%s", c.fld[2]);
        e->stability = csv_num(&c, 3);
        e->rank_before = (int32_t)csv_num(&c, 4);
        e->rank_after = (int32_t)csv_num(&c, 5);
        if (e->layer >= 0 && !strcmp(e->kind, "switch") && j->layers[e->layer].switch_step < 0) {
            j->layers[e->layer].switch_step = e->step;
            j->layers[e->layer].switch_s = e->stability;
            j->layers[e->layer].switch_rank = e->rank_after;
        }
    }
    csv_close(&c);
    return rc;
}

/* The singular values of the selected layers. */
static int read_spectra(plot_job *j) {
    int any = 0;
    for (int i = 0; i < j->nlayers; i++) any |= j->layers[i].selected;
    if (!any) return OIALR_OK;
    csv_file c;
    int rc = csv_open(&c, j->csv_dir, "spectra.csv", 1);
    int cur = -1;
    int64_t row = 1;
    char curname[OIALR_TRAJ_NAME_MAX] = "";
    while (!rc && csv_next(&c)) {
        row++;
        if (c.nf < 4) {
            rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: row %lld: %d fields, expected 4", c.path, (long long)row, c.nf);
            break;
        }
        if (strcmp(c.fld[0], curname)) {
            snprintf(curname, sizeof curname, "%s", c.fld[0]);
            cur = find_layer(j, curname);
        }
        if (cur < 0 || !j->layers[cur].selected) continue;
        plot_layer *l = &j->layers[cur];
        int64_t step, idx;
        if ((rc = csv_int(&c, 1, row, &step)) || (rc = csv_int(&c, 2, row, &idx))) break;
        if (idx < 1 || idx > l->n) {
            rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: row %lld: index %lld outside 1..%lld", c.path, (long long)row,
                              (long long)idx, (long long)l->n);
            break;
        }
        if (l->nspec == 0 || l->spec_step[l->nspec - 1] != step) {
            int64_t cap = l->spec_cap;
            if ((rc = grow((void **)&l->spec_step, &cap, l->nspec + 1, sizeof *l->spec_step))) break;
            int64_t cap2 = l->spec_cap;
            if ((rc = grow((void **)&l->spec, &cap2, l->nspec + 1, (size_t)l->n * sizeof *l->spec))) break;
            l->spec_cap = cap < cap2 ? cap : cap2;
            for (int64_t k = 0; k < l->n; k++) l->spec[l->nspec * l->n + k] = NAN;
            l->spec_step[l->nspec++] = step;
        }
        l->spec[(l->nspec - 1) * l->n + idx - 1] = csv_num(&c, 3);
    }
    csv_close(&c);
    return rc;
}

/* The run's metrics (every column) and each layer's stored ranks. */
static int read_run(plot_job *j) {
    oialr_traj *t = NULL;
    int rc = oialr_traj_open(&t, j->run, OIALR_TRAJ_READ);
    if (rc) return rc;
    const oialr_traj_info *info = oialr_traj_get_info(t);
    int64_t cap = info->nmetrics;
    if (cap > PLOT_MAX_ROWS) {
        oialr_traj_close(t);
        return oialr_seterr(OIALR_ERR_OVERFLOW, "%s: %lld metrics rows; plot --run reads at most %lld", j->run,
                            (long long)cap, (long long)PLOT_MAX_ROWS);
    }
    if (cap > 0 && info->ncolumns > 0) {
        j->ncol = info->ncolumns;
        j->col = calloc((size_t)j->ncol, sizeof *j->col);
        j->mstep = malloc((size_t)cap * sizeof *j->mstep);
        j->mval = malloc((size_t)cap * (size_t)j->ncol * sizeof *j->mval);
        if (!j->col || !j->mstep || !j->mval) {
            rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for %lld metrics rows", j->run, (long long)cap);
            goto done;
        }
        if ((rc = oialr_traj_read_metric_steps(t, j->mstep, cap, &j->nm))) goto done;
        for (int k = 0; k < j->ncol; k++) {
            const char *name = oialr_traj_column_name(t, k);
            if (!(j->col[k] = strdup(name ? name : "?"))) {
                rc = oialr_seterr(OIALR_ERR_NOMEM, "out of memory");
                goto done;
            }
            int64_t got = 0;
            double *v = j->mval + (size_t)k * (size_t)cap;
            rc = oialr_traj_read_column(t, j->col[k], v, cap, &got);
            if (rc == OIALR_ERR_NOTFOUND) rc = OIALR_OK, got = 0; /* absent: drawn as absent */
            if (rc) goto done;
            for (int64_t i = got; i < cap; i++) v[i] = NAN;
        }
        /* the rows of every column are cap apart: compact to nm */
        if (j->nm < cap)
            for (int k = 1; k < j->ncol; k++)
                memmove(j->mval + (size_t)k * (size_t)j->nm, j->mval + (size_t)k * (size_t)cap,
                        (size_t)j->nm * sizeof *j->mval);
    }
    for (int i = 0; i < oialr_traj_nlayers(t); i++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, i);
        int li = L ? find_layer(j, L->name) : -1;
        if (li < 0 || L->nsnap <= 0) continue;
        plot_layer *l = &j->layers[li];
        l->stored_step = malloc((size_t)L->nsnap * sizeof *l->stored_step);
        l->stored_rank = malloc((size_t)L->nsnap * sizeof *l->stored_rank);
        if (!l->stored_step || !l->stored_rank) {
            rc = oialr_seterr(OIALR_ERR_NOMEM, "out of memory");
            goto done;
        }
        memcpy(l->stored_step, L->steps, (size_t)L->nsnap * sizeof *l->stored_step);
        memcpy(l->stored_rank, L->ranks, (size_t)L->nsnap * sizeof *l->stored_rank);
        l->nstored = L->nsnap;
    }
done:
    oialr_traj_close(t);
    return rc;
}

int plot_metric_col(const plot_job *j, const char *name) {
    for (int k = 0; k < j->ncol; k++)
        if (!strcmp(j->col[k], name)) return k;
    return -1;
}

double plot_metric_last(const plot_job *j, const char *name, int64_t *step) {
    int k = plot_metric_col(j, name);
    if (step) *step = -1;
    if (k < 0) return NAN;
    for (int64_t i = j->nm - 1; i >= 0; i--) {
        double v = j->mval[(size_t)k * (size_t)j->nm + (size_t)i];
        if (isfinite(v)) {
            if (step) *step = j->mstep[i];
            return v;
        }
    }
    return NAN;
}

/* --------------------------------------------------------------------------- */
/* outputs and gnuplot */

const char *plot_ext(const plot_job *j) { return j->svg ? "svg" : "png"; }

int plot_add_output(const plot_job *j, ana_outputs *outs, const char *name, const char *ext, int *index) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s%s", j->out_dir, name, ext) >= sizeof path)
        return oialr_seterr(OIALR_ERR_ARG, "%s: path too long", j->out_dir);
    return ana_outputs_add(outs, path, index);
}

FILE *plot_open_tmp(const ana_outputs *outs, int i) {
    FILE *f = fopen(ana_outputs_tmp(outs, i), "w");
    if (!f) oialr_seterr(OIALR_ERR_IO, "%s: cannot write it: %s", ana_outputs_path(outs, i), strerror(errno));
    return f;
}

int plot_close(FILE *f, const ana_outputs *outs, int i) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return oialr_seterr(OIALR_ERR_IO, "%s: write error", ana_outputs_path(outs, i));
    return OIALR_OK;
}

void plot_gp_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* The file name of a path (the temporary files live in out_dir itself). */
static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

void plot_script_head(FILE *f, const plot_job *j, const ana_outputs *outs, const plot_fig *fig, int width, int height) {
    fprintf(f, "# %s.gp — written by 'oialr plot' (docs/report.md); re-run with: gnuplot %s.gp\n", fig->name,
            fig->name);
    fprintf(f, "# (gnuplot -e \"out='other.%s'\" %s.gp draws into other.%s)\n", plot_ext(j), fig->name, plot_ext(j));
    fprintf(f, "# %s\n", fig->title);
    if (j->svg)
        fprintf(f, "set terminal svg size %d,%d noenhanced font 'sans,10' background rgb 'white'\n", width, height);
    else
        fprintf(f, "set terminal pngcairo size %d,%d noenhanced font 'sans,10'\n", width, height);
    fprintf(f, "if (!exists(\"out\")) out = '%s.%s'\nset output out\n", fig->name, plot_ext(j));
    for (int d = 0; d < PLOT_FIG_DATA; d++)
        if (fig->data[d] >= 0)
            fprintf(f, "if (!exists(\"%s\")) %s = '%s'\n", fig->data_var[d], fig->data_var[d],
                    base_name(ana_outputs_path(outs, fig->data[d])));
    if (fig->uses_events) fprintf(f, "if (!exists(\"events\")) events = 'figure-events.csv'\n");
    fprintf(f, "set datafile separator ','\nset datafile missing 'nan'\nset grid\n");
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
 * drawing into the figure's temporary file and reading its data from their
 * temporary files. The temporary names are generated ones: letters,
 * digits and dots, safe inside the quotes below. */
/* gnuplot's error comes last; its warnings (and the " ^" marker lines) are
 * not errors: keep line (len l) as the last message unless it is one */
static void gnuplot_line(char *last, size_t n, const char *line, size_t l) {
    if (l && strspn(line, " ^") != l && !strstr(line, "warning:")) snprintf(last, n, "%s", line);
}

int plot_run_gnuplot(const plot_job *j, const ana_outputs *outs, const plot_fig *fig) {
    if (plot_interrupted()) return oialr_seterr(OIALR_ERR_IO, "interrupted by signal %d", plot_interrupted());
    const char *script = base_name(ana_outputs_tmp(outs, fig->gp));
    char vars[2048];
    int n = snprintf(vars, sizeof vars, "out='%s'", base_name(ana_outputs_tmp(outs, fig->img)));
    for (int d = 0; d < PLOT_FIG_DATA; d++)
        if (fig->data[d] >= 0 && ana_outputs_tmp(outs, fig->data[d]))
            n += snprintf(vars + n, sizeof vars - (size_t)n, "; %s='%s'", fig->data_var[d],
                          base_name(ana_outputs_tmp(outs, fig->data[d])));
    if (fig->uses_events && j->events_out >= 0)
        snprintf(vars + n, sizeof vars - (size_t)n, "; events='%s'", base_name(ana_outputs_tmp(outs, j->events_out)));
    /* gnuplot runs in its own process group, reading nothing, its stdout and
     * stderr into a pipe: a Ctrl-C reaches this command only, which kills
     * gnuplot (its drawing goes to a temporary file that is removed). A
     * gnuplot that got SIGINT itself could hang in its handler (futex wait,
     * seen under load), and this command hung with it. */
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return oialr_seterr(OIALR_ERR_IO, "cannot run gnuplot: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return oialr_seterr(OIALR_ERR_IO, "cannot run gnuplot: %s", strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0);
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0 || chdir(j->out_dir) != 0)
            _exit(126);
        execlp("gnuplot", "gnuplot", "-e", vars, script, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[1024], last[1024] = "", chunk[512];
    size_t bl = 0;
    int killed = 0;
    for (;;) {
        if (plot_interrupted() && !killed) {
            kill(pid, SIGKILL);
            killed = 1;
        }
        struct pollfd pf = {fds[0], POLLIN, 0};
        int r = poll(&pf, 1, 100);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) continue;
        ssize_t got = r < 0 ? -1 : read(fds[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (ssize_t k = 0; k < got; k++) {
            if (chunk[k] != '\n' && chunk[k] != '\r') {
                if (bl + 1 < sizeof buf) buf[bl++] = chunk[k];
                continue;
            }
            buf[bl] = '\0';
            gnuplot_line(last, sizeof last, buf, bl);
            bl = 0;
        }
    }
    close(fds[0]);
    buf[bl] = '\0'; /* a last line without a newline */
    gnuplot_line(last, sizeof last, buf, bl);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            st = -1;
            break;
        }
    if (plot_interrupted()) return oialr_seterr(OIALR_ERR_IO, "interrupted by signal %d", plot_interrupted());
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 127)
            return oialr_seterr(OIALR_ERR_NOTFOUND, "gnuplot not found: install it with 'apt-get install gnuplot-nox'");
        char name[128], msg[1024];
        snprintf(name, sizeof name, "%s.gp", fig->name);
        replace_all(msg, sizeof msg, last, script, name); /* the message names the script as the user knows it */
        return oialr_seterr(OIALR_ERR_IO, "gnuplot failed on %s: %s", ana_outputs_path(outs, fig->gp), msg);
    }
    return OIALR_OK;
}

/* gnuplot on PATH, checked before anything is written: one clear line. */
static int have_gnuplot(void) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char buf[4096];
    for (const char *p = path; *p;) {
        size_t l = strcspn(p, ":");
        if ((size_t)snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)(l ? l : 1), l ? p : ".") < sizeof buf &&
            access(buf, X_OK) == 0)
            return 1;
        p += l;
        if (*p == ':') p++;
    }
    return 0;
}

/* --------------------------------------------------------------------------- */
/* the plan */

static int add_fig(plot_job *j, int kind, int layer, const char *name) {
    plot_fig *f = realloc(j->figs, (size_t)(j->nfigs + 1) * sizeof *f);
    if (!f) return oialr_seterr(OIALR_ERR_NOMEM, "out of memory");
    j->figs = f;
    plot_fig *g = &j->figs[j->nfigs++];
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->layer = layer;
    snprintf(g->name, sizeof g->name, "%s", name);
    g->gp = g->img = -1;
    for (int d = 0; d < PLOT_FIG_DATA; d++) g->data[d] = -1;
    return OIALR_OK;
}

static void select_layers(plot_job *j) {
    if (j->layers_glob) {
        for (int i = 0; i < j->nlayers; i++) j->layers[i].selected = oialr_glob_match(j->layers_glob, j->layers[i].name);
        return;
    }
    if (j->nlayers <= PLOT_DEFAULT_LAYERS) {
        for (int i = 0; i < j->nlayers; i++) j->layers[i].selected = 1;
        return;
    }
    for (int k = 0; k < PLOT_DEFAULT_LAYERS; k++)
        j->layers[(int)((double)k * (j->nlayers - 1) / (PLOT_DEFAULT_LAYERS - 1) + 0.5)].selected = 1;
}

int plot_job_read(plot_job *j) {
    int rc;
    if ((rc = read_metrics(j)) || (rc = read_mean(j)) || (rc = read_events(j))) return rc;
    return j->run ? read_run(j) : OIALR_OK;
}

int plot_have_gnuplot(void) {
    if (have_gnuplot()) return OIALR_OK;
    return oialr_seterr(OIALR_ERR_NOTFOUND, "gnuplot not found on PATH: install it with 'apt-get install gnuplot-nox'");
}

int plot_job_plan(plot_job *j, ana_outputs *outs) {
    int rc;
    j->events_out = -1;
    if ((rc = plot_have_gnuplot())) return rc;
    if (!outs->dir && (rc = ana_outputs_dir(outs, j->out_dir))) return rc; /* a report set its own */
    if ((rc = plot_job_read(j))) return rc;
    select_layers(j);
    int nsel = 0;
    for (int i = 0; i < j->nlayers; i++) nsel += j->layers[i].selected;
    if (j->layers_glob && nsel == 0) {
        char names[1024] = "";
        size_t k = 0;
        for (int i = 0; i < j->nlayers && k + 80 < sizeof names; i++)
            k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", j->layers[i].name);
        return oialr_seterr(OIALR_ERR_NOTFOUND, "--layers '%s' matches no layer of %s/metrics.csv (layers: %s)",
                            j->layers_glob, j->csv_dir, names);
    }
    if ((rc = read_spectra(j))) return rc;
    char name[160];
    if ((rc = add_fig(j, FIG_STABILITY, -1, "stability")) || (rc = add_fig(j, FIG_HEATMAP, -1, "heatmap"))) return rc;
    for (int i = 0; i < j->nlayers; i++) {
        if (!j->layers[i].selected) continue;
        snprintf(name, sizeof name, "spectrum-%s", j->layers[i].file);
        if ((rc = add_fig(j, FIG_SPECTRUM, i, name))) return rc;
    }
    for (int i = 0; i < j->nlayers; i++) {
        if (!j->layers[i].selected) continue;
        snprintf(name, sizeof name, "evolution-%s", j->layers[i].file);
        if ((rc = add_fig(j, FIG_EVOLUTION, i, name))) return rc;
    }
    if ((rc = add_fig(j, FIG_RANKS, -1, "ranks"))) return rc;
    if (j->run && (rc = add_fig(j, FIG_TRAINING, -1, "training"))) return rc;
    char ext[8];
    snprintf(ext, sizeof ext, ".%s", plot_ext(j));
    for (int f = 0; f < j->nfigs; f++) {
        plot_fig *g = &j->figs[f];
        g->data_var[0] = "data";
        g->data_var[1] = "data2";
        g->uses_events = g->kind == FIG_STABILITY || g->kind == FIG_HEATMAP || g->kind == FIG_RANKS ||
                         g->kind == FIG_EVOLUTION;
        if ((rc = plot_add_output(j, outs, g->name, ".gp", &g->gp)) ||
            (rc = plot_add_output(j, outs, g->name, ext, &g->img)) ||
            (rc = plot_add_output(j, outs, g->name, ".csv", &g->data[0])))
            return rc;
        if (g->kind == FIG_EVOLUTION || g->kind == FIG_RANKS) {
            snprintf(name, sizeof name, "%s-%s", g->name, g->kind == FIG_RANKS ? "trainable" : "ranks");
            if ((rc = plot_add_output(j, outs, name, ".csv", &g->data[1]))) return rc;
        }
    }
    return plot_add_output(j, outs, "figure-events", ".csv", &j->events_out);
}

/* figure-events.csv (not events.csv: plot may write into the tables'
 * directory): the trajectory's events with the layer's index (its colour
 * in the figures) and n (to draw ranks as r / n). */
static int write_events(plot_job *j, ana_outputs *outs) {
    FILE *f = plot_open_tmp(outs, j->events_out);
    if (!f) return OIALR_ERR_IO;
    fprintf(f, "layer_index,layer,step,kind,stability,rank_before,rank_after,n\n");
    for (int64_t i = 0; i < j->nev; i++) {
        const plot_event *e = &j->ev[i];
        if (e->layer < 0) continue;
        fprintf(f, "%d,", e->layer + 1);
        plot_csv_name(f, j->layers[e->layer].name);
        fprintf(f, ",%lld,%s,%.9g,%d,%d,%lld\n", (long long)e->step, e->kind, e->stability, e->rank_before,
                e->rank_after, (long long)j->layers[e->layer].n);
    }
    return plot_close(f, outs, j->events_out);
}

int plot_job_draw(plot_job *j, ana_outputs *outs) {
    int rc = write_events(j, outs);
    for (int f = 0; !rc && f < j->nfigs; f++) {
        if (plot_interrupted()) return oialr_seterr(OIALR_ERR_IO, "interrupted by signal %d", plot_interrupted());
        rc = fig_draw(j, outs, &j->figs[f]);
        if (!rc && !j->figs[f].drawn) { /* nothing to draw: no figure, and an old one is left alone */
            ana_outputs_drop(outs, j->figs[f].img);
            ana_outputs_drop(outs, j->figs[f].gp);
            for (int d = 0; d < PLOT_FIG_DATA; d++)
                if (j->figs[f].data[d] >= 0) ana_outputs_drop(outs, j->figs[f].data[d]);
        }
    }
    return rc;
}

void plot_job_free(plot_job *j) {
    for (int i = 0; i < j->nlayers; i++) {
        plot_layer *l = &j->layers[i];
        free(l->stored_step), free(l->stored_rank), free(l->spec_step), free(l->spec);
    }
    free(j->layers), free(j->rows), free(j->mean_step), free(j->mean_s), free(j->ev);
    for (int k = 0; k < j->ncol; k++) free(j->col[k]);
    free(j->col), free(j->mstep), free(j->mval), free(j->figs);
    j->layers = NULL, j->rows = NULL, j->mean_step = NULL, j->mean_s = NULL, j->ev = NULL, j->col = NULL;
    j->mstep = NULL, j->mval = NULL, j->figs = NULL;
    j->nlayers = j->nfigs = j->ncol = 0;
}

/* --------------------------------------------------------------------------- */
/* the command */

int oialr_cmd_plot(int argc, char **argv) {
    plot_job j = {.tau = 0.99, .beta = 0.15};
    int force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            plot_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--run") || !strcmp(a, "--tau") ||
                   !strcmp(a, "--beta") || !strcmp(a, "--format") || !strcmp(a, "--layers") || !strcmp(a, "--steps")) {
            const char *v = cli_value("plot", argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "--run")) j.run = v;
            else if (!strcmp(a, "--tau")) {
                if (cli_float("plot", a, v, -1.0, 1.0, &j.tau)) return 2;
            } else if (!strcmp(a, "--beta")) {
                if (cli_float("plot", a, v, 0.0, 1.0, &j.beta)) return 2;
            } else if (!strcmp(a, "--format")) {
                static const char *const fmts[] = {"png", "svg", NULL};
                if (cli_choice("plot", a, v, fmts, &j.svg)) return 2;
            } else if (!strcmp(a, "--layers")) j.layers_glob = v;
            else if (!strcmp(a, "--steps")) j.steps = v;
            else j.out_dir = v;
        } else if (a[0] == '-') {
            fprintf(stderr, "oialr plot: unknown option '%s' (try 'oialr plot --help')\n", a);
            return 2;
        } else if (!j.csv_dir) {
            j.csv_dir = a;
        } else {
            fprintf(stderr, "oialr plot: one table directory only (got '%s' and '%s')\n", j.csv_dir, a);
            return 2;
        }
    }
    if (!j.csv_dir) {
        plot_usage(stderr);
        return 2;
    }
    if (!j.out_dir) j.out_dir = j.csv_dir;
    ana_outputs outs;
    ana_outputs_init(&outs, force);
    plot_signals_catch();
    int rc = plot_job_plan(&j, &outs);
    if (!rc) rc = ana_outputs_begin(&outs); /* creates out_dir if missing */
    if (!rc) rc = plot_job_draw(&j, &outs);
    /* every figure is drawn: only now replace the old files */
    if (!rc && plot_interrupted()) rc = oialr_seterr(OIALR_ERR_IO, "interrupted by signal %d", plot_interrupted());
    if (!rc) rc = ana_outputs_commit(&outs);
    ana_outputs_close(&outs); /* after a failure: removes the temporary files, nothing else */
    int sig = plot_interrupted();
    plot_signals_restore();
    if (rc) {
        fprintf(stderr, "oialr plot: %s\n", oialr_errmsg()[0] ? oialr_errmsg() : oialr_strerror(rc));
        plot_job_free(&j);
        return sig ? 128 + sig : 1;
    }
    printf("figures in %s:", j.out_dir);
    for (int f = 0; f < j.nfigs; f++)
        if (j.figs[f].drawn) printf(" %s.%s", j.figs[f].name, plot_ext(&j));
    printf("\n");
    plot_job_free(&j);
    return 0;
}
