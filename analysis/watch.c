/*
 * watch.c — `oialr watch RUN.h5`: follow a run in the terminal
 * (docs/inspect-watch.md).
 *
 * Every --interval seconds: refresh the trajectory (SWMR reader, nothing
 * written), factor the snapshots that arrived since the last frame (only
 * those: one factor per layer and lag step is kept, the metrics API of
 * lib/oialr/metrics.h computes S = tr(Q_aᵀ Q_b)/n against the snapshot LAG
 * back, as `oialr analyze` does), and redraw one frame: a header line (file,
 * writer state, step, epoch, snapshots, last loss and accuracy, mean
 * stability) over three plots drawn by gnuplot's text terminal (`set
 * terminal dumb W,H`, sized to the terminal): training loss, accuracy,
 * stability. A backlog (a long file, a first frame) is factored for at most
 * one interval per frame, so the screen keeps moving; the header says how
 * far it got.
 *
 * Ends by itself when the writer has closed the file or died (its lock is
 * tested at every refresh): the file is opened again to tell which, the rest
 * is factored, a final frame drawn, exit 0. A file whose writer is not
 * running is drawn once (with the frames of its backlog on a terminal). Ctrl-C
 * or SIGTERM: exit 130, cursor shown again, the frame left as it was.
 *
 * On a terminal a frame is drawn in place (cursor home, every line cleared
 * to its end, the rest of the screen cleared): no flicker, no scrolling.
 * Otherwise (a pipe, a log) the frames follow each other as plain text.
 */
#include "watch.h"
#include "cli.h"
#include "inspect.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oialr/metrics.h"
#include "oialr/trajectory.h"

/* metrics rows read per frame at most (plot.c's bound) */
#define WATCH_MAX_ROWS ((int64_t)1 << 21)
/* above this many layers the stability plot shows mean and minimum only */
#define WATCH_MAX_LINES 4

static const char *USAGE =
    "usage: oialr watch RUN.h5 [options]\n"
    "\n"
    "Follow a run while it trains: training loss, accuracy and the basis\n"
    "stability S = tr(Q_a^T Q_b)/n of the snapshots that arrive, redrawn in the\n"
    "terminal with gnuplot's text terminal until the run ends (its writer closes\n"
    "the file) or Ctrl-C. A file no writer is recording is drawn once.\n"
    "\n"
    "      --interval S  seconds between frames (default 3; 0.2 to 3600)\n"
    "      --lag K       stability against the snapshot K back (default 1)\n"
    "  -h, --help        this help\n"
    "\n"
    "exit status: 0 the run ended or the file was drawn, 1 failure, 2 usage\n"
    "error, 130 interrupted (Ctrl-C; the run itself is not affected)\n";

static volatile sig_atomic_t g_stop, g_resized;

static void on_stop(int sig) { g_stop = sig; }
static void on_winch(int sig) { (void)sig, g_resized = 1; }

// ----------------------------------------------------------------------------
// state

typedef struct wseries {
    int64_t *step;
    double *s;
    int64_t n, cap;
} wseries;

typedef struct wlayer {
    char name[OIALR_TRAJ_NAME_MAX];
    int64_t rows, cols;
    int64_t done;          /* snapshots factored */
    oialr_factor **ring;   /* lag + 1 factors: snapshot j in slot j % (lag + 1) */
    int *ok;               /* the slot holds a valid factor */
    wseries st;            /* stability by step */
} wlayer;

typedef struct watch {
    const char *path;
    double interval;
    int lag;
    int tty;
    oialr_traj *t;
    const char *state;     /* "live", "closed", "killed" */
    int nl;
    wlayer *l;
    oialr_svd_ws *ws;
    int64_t pending;       /* snapshots not factored yet */
    int64_t factored;      /* snapshots factored, all layers */
    int64_t skipped;       /* NaN/Inf snapshots */
    char dir[256];         /* temporary files: data, script, gnuplot's stderr */
    char *frame;           /* the last frame drawn */
    size_t frame_cap;
} watch;

static int grow(void **p, int64_t *cap, int64_t n, size_t esz) {
    if (n <= *cap) return OIALR_OK;
    int64_t c = *cap ? *cap * 2 : 64;
    while (c < n) c *= 2;
    void *q = realloc(*p, (size_t)c * esz);
    if (!q) return oialr_seterr(OIALR_ERR_NOMEM, "watch: out of memory");
    *p = q;
    *cap = c;
    return OIALR_OK;
}

static int series_add(wseries *s, int64_t step, double v) {
    int64_t c1 = s->cap, c2 = s->cap;
    int rc = grow((void **)&s->step, &c1, s->n + 1, sizeof *s->step);
    if (!rc) rc = grow((void **)&s->s, &c2, s->n + 1, sizeof *s->s);
    if (rc) return rc;
    s->cap = c1 < c2 ? c1 : c2;
    s->step[s->n] = step;
    s->s[s->n++] = v;
    return OIALR_OK;
}

static void free_layers(watch *w) {
    for (int i = 0; w->l && i < w->nl; i++) {
        for (int k = 0; w->l[i].ring && k <= w->lag; k++) oialr_factor_free(w->l[i].ring[k]);
        free(w->l[i].ring);
        free(w->l[i].ok);
        free(w->l[i].st.step);
        free(w->l[i].st.s);
    }
    free(w->l);
    w->l = NULL;
}

static int setup_layers(watch *w) {
    w->nl = oialr_traj_nlayers(w->t);
    w->l = calloc((size_t)(w->nl > 0 ? w->nl : 1), sizeof *w->l);
    if (!w->l) return oialr_seterr(OIALR_ERR_NOMEM, "watch: out of memory");
    for (int i = 0; i < w->nl; i++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(w->t, i);
        wlayer *l = &w->l[i];
        snprintf(l->name, sizeof l->name, "%s", L->name);
        l->rows = L->rows;
        l->cols = L->cols;
        l->ring = calloc((size_t)w->lag + 1, sizeof *l->ring);
        l->ok = calloc((size_t)w->lag + 1, sizeof *l->ok);
        if (!l->ring || !l->ok) return oialr_seterr(OIALR_ERR_NOMEM, "watch: out of memory");
    }
    return oialr_svd_ws_new(&w->ws, OIALR_PREC_F32);
}

/* Factor snapshot l->done of layer i and its stability against the one lag
 * back. */
static int factor_one(watch *w, int i) {
    wlayer *l = &w->l[i];
    const oialr_traj_layer *L = oialr_traj_layer_at(w->t, i);
    int64_t j = l->done;
    int slot = (int)(j % (w->lag + 1));
    int rc;
    if (!l->ring[slot] && (rc = oialr_factor_new(&l->ring[slot], l->rows, l->cols, OIALR_PREC_F32))) return rc;
    float *buf = oialr_factor_input_buffer(l->ring[slot]);
    l->ok[slot] = 0;
    if ((rc = oialr_traj_read(w->t, i, j, buf, (size_t)l->rows * (size_t)l->cols))) return rc;
    rc = oialr_factor_compute(l->ring[slot], w->ws, buf);
    if (rc == OIALR_ERR_NUMERIC) { /* NaN/Inf in the weights: no stability at this step */
        w->skipped++;
        rc = OIALR_OK;
    } else if (rc) {
        return rc;
    } else {
        l->ok[slot] = 1;
    }
    l->done++;
    w->factored++;
    w->pending--;
    int ref = (int)((j - w->lag) % (w->lag + 1));
    if (j < w->lag || !l->ok[slot] || !l->ok[ref]) return OIALR_OK;
    double s;
    if ((rc = oialr_stability(l->ring[ref], l->ring[slot], &s))) return rc;
    return series_add(&l->st, L->steps[j], s);
}

static int count_pending(watch *w) {
    w->pending = 0;
    for (int i = 0; i < w->nl; i++) {
        int64_t n = oialr_traj_layer_at(w->t, i)->nsnap;
        if (n < w->l[i].done) /* a resume cut the file back to its checkpoint */
            return oialr_seterr(OIALR_ERR_MISMATCH, "%s: layer %s lost snapshots (%lld, had %lld): rewound by a "
                                "resume? watch it again", w->path, w->l[i].name, (long long)n, (long long)w->l[i].done);
        w->pending += n - w->l[i].done;
    }
    return OIALR_OK;
}

/* Factor the new snapshots in step order across layers until none is left
 * or the deadline (< 0: none) has passed. */
static int factor_new(watch *w, double deadline) {
    int rc0 = count_pending(w);
    if (rc0) return rc0;
    while (w->pending > 0 && !g_stop) {
        int64_t step = INT64_MAX;
        int at = -1;
        for (int i = 0; i < w->nl; i++) {
            const oialr_traj_layer *L = oialr_traj_layer_at(w->t, i);
            if (w->l[i].done < L->nsnap && L->steps[w->l[i].done] < step) step = L->steps[w->l[i].done], at = i;
        }
        if (at < 0) break;
        int rc = factor_one(w, at);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", oialr_errmsg());
            return oialr_seterr(rc, "layer %s: %s", w->l[at].name, msg);
        }
        if (deadline >= 0 && oialr_now() > deadline) break;
    }
    return OIALR_OK;
}

// ----------------------------------------------------------------------------
// the frame

typedef struct wmetrics {
    int64_t n;
    double *step, *epoch, *loss, *train, *val;
    double last_step, last_epoch, last_loss, last_train, last_val;
} wmetrics;

static void metrics_free(wmetrics *m) {
    free(m->step), free(m->epoch), free(m->loss), free(m->train), free(m->val);
    memset(m, 0, sizeof *m);
}

static double last_finite(const double *v, int64_t n) {
    for (int64_t i = n - 1; i >= 0; i--)
        if (isfinite(v[i])) return v[i];
    return NAN;
}

/* A column, NaN where it was not recorded. */
static int read_col(oialr_traj *t, const char *name, double *v, int64_t n) {
    int64_t got = 0;
    int rc = oialr_traj_read_column(t, name, v, n, &got);
    if (rc == OIALR_ERR_NOTFOUND) got = 0, rc = OIALR_OK;
    for (int64_t i = got; i < n; i++) v[i] = NAN;
    return rc;
}

static int metrics_read(watch *w, wmetrics *m) {
    memset(m, 0, sizeof *m);
    m->last_step = m->last_epoch = m->last_loss = m->last_train = m->last_val = NAN;
    int64_t n = oialr_traj_get_info(w->t)->nmetrics;
    if (n <= 0) return OIALR_OK;
    if (n > WATCH_MAX_ROWS) n = WATCH_MAX_ROWS; /* the first rows: a bound, as plot --run has */
    double **cols[] = {&m->step, &m->epoch, &m->loss, &m->train, &m->val};
    static const char *const names[] = {"step", "epoch", "loss", "train_acc", "val_acc"};
    for (int k = 0; k < 5; k++) {
        *cols[k] = malloc((size_t)n * sizeof **cols[k]);
        if (!*cols[k]) return oialr_seterr(OIALR_ERR_NOMEM, "watch: out of memory for %lld rows", (long long)n);
        int rc = read_col(w->t, names[k], *cols[k], n);
        if (rc) return rc;
    }
    m->n = n;
    m->last_step = last_finite(m->step, n);
    m->last_epoch = last_finite(m->epoch, n);
    m->last_loss = last_finite(m->loss, n);
    m->last_train = last_finite(m->train, n);
    m->last_val = last_finite(m->val, n);
    return OIALR_OK;
}

typedef struct pair {
    int64_t step;
    double s;
} pair;

static int cmp_pair(const void *a, const void *b) {
    const pair *x = a, *y = b;
    return (x->step > y->step) - (x->step < y->step);
}

/* The data files of the frame: metrics.dat (step loss train val, a
 * validation value only where a new evaluation appears) and stab.dat
 * (block 0: step mean min over the layers; block 1+i: layer i). Returns
 * how many points each plot has. */
static int write_data(watch *w, const wmetrics *m, int64_t *nloss, int64_t *nacc, int64_t *nstab, double *mean_last,
                      double *smin) {
    char p[320];
    *nloss = *nacc = *nstab = 0;
    *mean_last = NAN;
    *smin = 1;
    snprintf(p, sizeof p, "%s/metrics.dat", w->dir);
    FILE *f = fopen(p, "w");
    if (!f) return oialr_seterr(OIALR_ERR_IO, "%s: %s", p, strerror(errno));
    for (int64_t i = 0; i < m->n; i++) {
        double val = m->val[i];
        if (i > 0 && val == m->val[i - 1]) val = NAN; /* carried between evaluations */
        *nloss += isfinite(m->loss[i]);
        *nacc += isfinite(m->train[i]) || isfinite(val);
        fprintf(f, "%.0f %.9g %.9g %.9g\n", m->step[i], m->loss[i], m->train[i], val);
    }
    int bad = ferror(f) | (fclose(f) != 0);
    snprintf(p, sizeof p, "%s/stab.dat", w->dir);
    if (bad || !(f = fopen(p, "w"))) return oialr_seterr(OIALR_ERR_IO, "%s: cannot write it", p);
    int64_t total = 0;
    for (int i = 0; i < w->nl; i++) total += w->l[i].st.n;
    pair *all = total ? malloc((size_t)total * sizeof *all) : NULL;
    if (total && !all) {
        fclose(f);
        return oialr_seterr(OIALR_ERR_NOMEM, "watch: out of memory");
    }
    int64_t k = 0;
    for (int i = 0; i < w->nl; i++)
        for (int64_t j = 0; j < w->l[i].st.n; j++) all[k++] = (pair){w->l[i].st.step[j], w->l[i].st.s[j]};
    if (total) qsort(all, (size_t)total, sizeof *all, cmp_pair);
    for (int64_t a = 0; a < total;) {
        int64_t b = a;
        double sum = 0, mn = INFINITY;
        for (; b < total && all[b].step == all[a].step; b++) {
            sum += all[b].s;
            if (all[b].s < mn) mn = all[b].s;
        }
        *mean_last = sum / (double)(b - a);
        if (mn < *smin) *smin = mn; /* the lowest curve drawn: the minimum or a layer */
        fprintf(f, "%lld %.9g %.9g\n", (long long)all[a].step, *mean_last, mn);
        a = b;
    }
    *nstab = total;
    free(all);
    /* the layers' own curves, when they are drawn */
    for (int i = 0; i < w->nl && w->nl <= WATCH_MAX_LINES; i++) {
        fprintf(f, "\n\n");
        for (int64_t j = 0; j < w->l[i].st.n; j++)
            fprintf(f, "%lld %.9g\n", (long long)w->l[i].st.step[j], w->l[i].st.s[j]);
        if (w->l[i].st.n == 0) fprintf(f, "0 NaN\n"); /* an empty block would end the file for gnuplot */
    }
    bad = ferror(f) | (fclose(f) != 0);
    if (bad) return oialr_seterr(OIALR_ERR_IO, "%s: write error", p);
    return OIALR_OK;
}

/* gnuplot's string quotes: '...' with ' doubled */
static void gp_name(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static void placeholder(FILE *f, const char *title, const char *why) {
    fprintf(f,
            "set title '%s'\nset xrange [0:1]\nset yrange [0:1]\nunset xtics\nunset ytics\n"
            "set label 1 '%s' at graph 0.5,0.5 center\nplot 2 notitle\nunset label 1\n"
            "set xtics\nset ytics\nset autoscale\n",
            title, why);
}

/* A tic spacing of 1, 2 or 5 times a power of ten giving at most n tics
 * over [0, range]: gnuplot's own choice crowds the text terminal. */
static double nice_step(double range, int n) {
    if (!(range > 0)) return 1;
    if (n < 1) n = 1;
    double raw = range / n, p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* steps are integers */
static double tic_step(double range, int n) {
    double s = nice_step(range, n);
    return s < 1 ? 1 : s;
}

/* The switch events' steps (the first WATCH_MAX_MARKS), for the marks on
 * the stability plot; none if they cannot be read. */
#define WATCH_MAX_MARKS 64
static int switch_steps(watch *w, int64_t *steps) {
    int64_t ne = oialr_traj_get_info(w->t)->nevents, got = 0;
    if (ne <= 0) return 0;
    if (ne > 4096) ne = 4096;
    oialr_traj_event *ev = malloc((size_t)ne * sizeof *ev);
    int n = 0;
    if (ev && oialr_traj_read_events(w->t, ev, ne, &got) == OIALR_OK)
        for (int64_t i = 0; i < got && n < WATCH_MAX_MARKS; i++)
            if (ev[i].kind == OIALR_EVENT_SWITCH) steps[n++] = ev[i].step;
    free(ev);
    oialr_clearerr();
    return n;
}

static int write_script(watch *w, int cols, int rows, double maxstep, int64_t nloss, int64_t nacc, int64_t nstab,
                        double smin) {
    char p[320];
    snprintf(p, sizeof p, "%s/frame.gp", w->dir);
    FILE *f = fopen(p, "w");
    if (!f) return oialr_seterr(OIALR_ERR_IO, "%s: %s", p, strerror(errno));
    fprintf(f,
            "set terminal dumb size %d,%d\n"
            "set datafile missing 'NaN'\n"
            "set tics scale 0.5\nset key top right samplen 1\nset autoscale xfix\nset multiplot\n"
            "set origin 0,0.5\nset size 0.5,0.5\n"
            "set xtics %.0f\nset mxtics 1\n",
            cols, rows, tic_step(maxstep, (cols / 2 - 10) / 8));
    if (nloss) fprintf(f, "set title 'training loss'\nplot 'metrics.dat' using 1:2 with lines title 'loss'\n");
    else placeholder(f, "training loss", "no metrics yet");
    fprintf(f, "set origin 0.5,0.5\n");
    if (nacc)
        fprintf(f, "set title 'accuracy'\nset key bottom right\n"
                   "plot 'metrics.dat' using 1:3 with lines title 'train', '' using 1:4 with points pt 7 title 'val'\n"
                   "set key top right\n");
    else placeholder(f, "accuracy", "no metrics yet");
    fprintf(f, "set origin 0,0\nset size 1,0.5\nset xtics %.0f\n", tic_step(maxstep, (cols - 25) / 8));
    if (nstab) {
        fprintf(f, "set title 'basis stability S = tr(Q_a^T Q_b)/n, lag %d snapshot%s'\nset key outside right top\n",
                w->lag, w->lag == 1 ? "" : "s");
        /* S <= 1: the range ends just above 1, so S near 1 is not drawn on
         * the frame, and holds tau; tics at most every other line */
        double lo = smin < 0.99 ? smin : 0.99, span = 1 - lo;
        if (span < 0.01) span = 0.01;
        double pad = span * 0.08, step = nice_step(span + 2 * pad, (rows / 2 - 4) / 2);
        fprintf(f, "set yrange [%.9g:%.9g]\nset ytics %.9g\n", lo - pad, 1 + pad, step);
        /* a layer switched to low rank: a mark on the step axis */
        int64_t sw[WATCH_MAX_MARKS];
        int nsw = switch_steps(w, sw);
        for (int i = 0; i < nsw; i++)
            fprintf(f, "set label %d '^' at %lld, graph 0 center front offset 0,0.6\n", 10 + i, (long long)sw[i]);
        fprintf(f, "plot 0.99 with lines lt 1 dt 2 title 'tau 0.99'");
        if (nsw) fprintf(f, ", NaN with lines lt -2 title '^ switch'");
        if (w->nl <= WATCH_MAX_LINES) {
            for (int i = 0; i < w->nl; i++) {
                fprintf(f, ", 'stab.dat' index %d using 1:2 with lines lt %d title ", i + 1, i + 2);
                gp_name(f, w->l[i].name);
            }
        } else {
            fprintf(f, ", 'stab.dat' index 0 using 1:3 with lines lt 2 title 'min of %d layers'", w->nl);
        }
        fprintf(f, ", 'stab.dat' index 0 using 1:2 with lines lt %d title 'mean'\n",
                w->nl <= WATCH_MAX_LINES ? w->nl + 2 : 3);
    } else {
        char why[96];
        snprintf(why, sizeof why, "waiting for %d snapshot%s of a layer", w->lag + 1, w->lag ? "s" : "");
        placeholder(f, "basis stability", why);
    }
    fprintf(f, "unset multiplot\n");
    int bad = ferror(f) | (fclose(f) != 0);
    return bad ? oialr_seterr(OIALR_ERR_IO, "%s: write error", p) : OIALR_OK;
}

/* Run gnuplot on frame.gp: its screen into w->frame. 127: not found. */
static int run_gnuplot(watch *w, char *err, size_t errn) {
    char cmd[1024];
    err[0] = '\0';
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot frame.gp </dev/null 2>gp.err", w->dir);
    FILE *p = popen(cmd, "r");
    if (!p) return oialr_seterr(OIALR_ERR_IO, "cannot run gnuplot: %s", strerror(errno));
    size_t n = 0;
    for (;;) {
        if (n + 4096 + 1 > w->frame_cap) {
            size_t c = w->frame_cap ? w->frame_cap * 2 : 65536;
            char *q = realloc(w->frame, c);
            if (!q) { pclose(p); return oialr_seterr(OIALR_ERR_NOMEM, "watch: out of memory"); }
            w->frame = q;
            w->frame_cap = c;
        }
        size_t got = fread(w->frame + n, 1, 4096, p);
        n += got;
        if (got == 0) break;
    }
    w->frame[n] = '\0';
    int st = pclose(p);
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) return OIALR_OK;
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 127)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "gnuplot not found: install it with 'apt-get install gnuplot-nox'");
    /* gnuplot's last words, for the frame */
    char path[320], line[512];
    snprintf(path, sizeof path, "%s/gp.err", w->dir);
    FILE *e = fopen(path, "r");
    while (e && fgets(line, sizeof line, e)) {
        size_t l = strcspn(line, "\r\n");
        line[l] = '\0';
        if (l && strspn(line, " ^") != l) snprintf(err, errn, "%s", line);
    }
    if (e) fclose(e);
    return OIALR_ERR_IO;
}

static void term_size(int *cols, int *rows) {
    struct winsize ws;
    *cols = 80, *rows = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *cols = ws.ws_col, *rows = ws.ws_row;
        return;
    }
    const char *c = getenv("COLUMNS"), *l = getenv("LINES");
    if (c && atoi(c) > 0) *cols = atoi(c);
    if (l && atoi(l) > 0) *rows = atoi(l);
}

/* Print s (one or more lines) on the screen: on a terminal every line is
 * cleared to its end, so a shorter frame leaves nothing of the last. */
static void put_lines(const watch *w, const char *s, int maxlines, int *used) {
    while (*s && *used < maxlines) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        fwrite(s, 1, n, stdout);
        if (w->tty) fputs("\033[K", stdout);
        fputc('\n', stdout);
        (*used)++;
        s += n + (e != NULL);
    }
}

static int draw(watch *w, const char *note) {
    wmetrics m;
    int64_t nloss = 0, nacc = 0, nstab = 0;
    double mean_s = NAN, smin = 1;
    int cols, rows;
    term_size(&cols, &rows);
    if (cols < 40) cols = 40;
    if (rows < 12) rows = 12;
    int rc = metrics_read(w, &m);
    if (!rc) rc = write_data(w, &m, &nloss, &nacc, &nstab, &mean_s, &smin);
    int64_t snaps = 0, maxstep = -1;
    for (int i = 0; i < w->nl; i++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(w->t, i);
        if (L->nsnap > snaps) snaps = L->nsnap;
        if (L->nsnap && L->steps[L->nsnap - 1] > maxstep) maxstep = L->steps[L->nsnap - 1];
    }
    double step = isfinite(m.last_step) && m.last_step > (double)maxstep ? m.last_step : (double)maxstep;
    /* two header lines, the plots, and two lines below them: the cursor
     * rests on the first, so a last message and the shell prompt do not
     * scroll the header away */
    if (!rc) rc = write_script(w, cols, rows - 4, step, nloss, nacc, nstab, smin);
    char gperr[512] = "";
    int gprc = rc ? rc : run_gnuplot(w, gperr, sizeof gperr);
    /* gnuplot failing on this frame's data is shown in the frame; the
     * rest (no gnuplot, no memory, no temporary files) ends the watch */
    if (rc || (gprc && gprc != OIALR_ERR_IO)) {
        metrics_free(&m);
        return rc ? rc : gprc;
    }
    char h1[512], h2[512], num[64];
    int k = snprintf(h1, sizeof h1, "%s  writer %s  step %.0f", w->path, w->state, step < 0 ? 0 : step);
    if (isfinite(m.last_epoch) && k < (int)sizeof h1)
        k += snprintf(h1 + k, sizeof h1 - (size_t)k, "  epoch %.2f", m.last_epoch);
    if (k < (int)sizeof h1)
        k += snprintf(h1 + k, sizeof h1 - (size_t)k, "  snapshots %lld  events %lld", (long long)snaps,
                      (long long)oialr_traj_get_info(w->t)->nevents);
    k = 0;
    h2[0] = '\0';
#define FIELD(label, x, fmt)                                                                     \
    if (isfinite(x) && k < (int)sizeof h2) {                                                     \
        snprintf(num, sizeof num, fmt, x);                                                       \
        k += snprintf(h2 + k, sizeof h2 - (size_t)k, "%s%s %s", k ? "  " : "", label, num);      \
    }
    FIELD("loss", m.last_loss, "%.4f")
    FIELD("acc", m.last_train, "%.4f")
    FIELD("val", m.last_val, "%.4f")
    FIELD("mean S", mean_s, "%.4f")
#undef FIELD
    if (w->skipped && k < (int)sizeof h2)
        k += snprintf(h2 + k, sizeof h2 - (size_t)k, "%s%lld with NaN/Inf", k ? "  " : "", (long long)w->skipped);
    if (k < (int)sizeof h2) {
        if (w->pending > 0)
            k += snprintf(h2 + k, sizeof h2 - (size_t)k, "%s(factoring %lld/%lld)", k ? "  " : "",
                          (long long)w->factored, (long long)(w->factored + w->pending));
        else if (note)
            k += snprintf(h2 + k, sizeof h2 - (size_t)k, "%s(%s)", k ? "  " : "", note);
    }
    if (w->tty) fputs("\033[H", stdout);
    int used = 0;
    h1[cols < (int)sizeof h1 ? cols : (int)sizeof h1 - 1] = '\0'; /* one screen line each */
    h2[cols < (int)sizeof h2 ? cols : (int)sizeof h2 - 1] = '\0';
    put_lines(w, h1, rows - 2, &used);
    put_lines(w, h2, rows - 2, &used);
    if (gprc) {
        char msg[600];
        snprintf(msg, sizeof msg, "gnuplot failed: %s", gperr[0] ? gperr : "(no message)");
        put_lines(w, msg, rows - 2, &used);
    } else {
        const char *s = w->frame;
        while (*s == '\f') s++;
        if (*s == '\n') s++; /* the dumb terminal's first line is empty */
        put_lines(w, s, rows - 2, &used);
    }
    if (w->tty) fputs("\033[J", stdout);
    else fputc('\n', stdout);
    fflush(stdout);
    metrics_free(&m);
    /* the last frame (it has a note) must be drawn: the exit status says so */
    if (gprc && note) return oialr_seterr(OIALR_ERR_IO, "gnuplot failed on the last frame: %s", gperr);
    return OIALR_OK;
}

// ----------------------------------------------------------------------------
// the loop

static int gnuplot_on_path(void) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char buf[4096];
    for (const char *p = path;;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)(n ? n : 1), n ? p : ".");
        if (access(buf, X_OK) == 0) return 1;
        if (!e) return 0;
        p = e + 1;
    }
}

static void remove_dir(watch *w) {
    if (!w->dir[0]) return;
    static const char *const files[] = {"metrics.dat", "stab.dat", "frame.gp", "gp.err"};
    char p[320];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", w->dir, files[i]);
        unlink(p);
    }
    rmdir(w->dir);
}

/* Sleep up to s seconds; returns early on a signal or a resize. */
static void nap(double s) {
    double end = oialr_now() + s;
    while (!g_stop && !g_resized) {
        double left = end - oialr_now();
        if (left <= 0) break;
        if (left > 0.05) left = 0.05;
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* The writer is gone: open the file again (closed cleanly, or killed), with
 * the layers' progress kept. */
static int reopen(watch *w) {
    oialr_traj_close(w->t);
    w->t = NULL;
    int rc = oialr_traj_open(&w->t, w->path, OIALR_TRAJ_READ);
    if (rc) return rc;
    if (oialr_traj_nlayers(w->t) != w->nl)
        return oialr_seterr(OIALR_ERR_MISMATCH, "%s: the file changed under the watch (%d layers, were %d)", w->path,
                            oialr_traj_nlayers(w->t), w->nl);
    w->state = ana_writer_state(oialr_traj_get_info(w->t));
    if (!strcmp(w->state, "live")) w->state = "killed"; /* a new writer already: not ours to follow */
    return OIALR_OK;
}

static int run(watch *w) {
    int rc;
    if ((rc = oialr_traj_open(&w->t, w->path, OIALR_TRAJ_READ))) {
        if (rc == OIALR_ERR_FORMAT) ana_explain_not_trajectory(w->path);
        return rc;
    }
    w->state = ana_writer_state(oialr_traj_get_info(w->t));
    if ((rc = setup_layers(w))) return rc;
    snprintf(w->dir, sizeof w->dir, "%s/oialr-watch-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(w->dir)) {
        w->dir[0] = '\0';
        return oialr_seterr(OIALR_ERR_IO, "cannot create a temporary directory: %s", strerror(errno));
    }
    if (w->tty) fputs("\033[?25l\033[H\033[2J", stdout); /* cursor hidden, screen cleared */
    int live = !strcmp(w->state, "live");
    const char *note = live ? NULL : !strcmp(w->state, "closed") ? "not live: drawn once" : "writer died: drawn once";
    for (;;) {
        double t0 = oialr_now();
        /* a backlog is factored an interval at a time on a terminal (the
         * frame moves), at once otherwise (one frame) */
        int budget = w->tty || live;
        if ((rc = factor_new(w, budget ? t0 + w->interval : -1))) return rc;
        if (g_stop) return OIALR_ERR_INTERRUPTED;
        g_resized = 0;
        int last = !live && w->pending == 0;
        if ((last || w->tty || live) && (rc = draw(w, last ? note : NULL))) return rc;
        if (last) break;
        if (live) {
            nap(w->interval - (oialr_now() - t0));
            if (g_stop) return OIALR_ERR_INTERRUPTED;
            if ((rc = oialr_traj_refresh(w->t))) return rc;
            if (!oialr_traj_get_info(w->t)->writer_alive) {
                /* the writer closed the file or died: finish and say which */
                if ((rc = reopen(w))) return rc;
                live = 0;
                note = !strcmp(w->state, "closed") ? "run ended: writer closed the file"
                                                   : "writer died without closing the file";
            }
        }
    }
    return OIALR_OK;
}

int oialr_cmd_watch(int argc, char **argv) {
    watch w = {.interval = 3.0, .lag = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--interval") || !strcmp(a, "--lag")) {
            const char *v = cli_value("watch", argc, argv, &i);
            if (!v) return 2;
            long long ll;
            if (!strcmp(a, "--lag")) {
                if (cli_int("watch", a, v, 1, 1000, &ll)) return 2;
                w.lag = (int)ll;
            } else if (cli_float("watch", a, v, 0.2, 3600, &w.interval)) {
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "oialr watch: unknown option '%s' (try 'oialr watch --help')\n", a);
            return 2;
        } else if (w.path) {
            fprintf(stderr, "oialr watch: one file only (got '%s' and '%s')\n", w.path, a);
            return 2;
        } else {
            w.path = a;
        }
    }
    if (!w.path) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (!gnuplot_on_path()) {
        fprintf(stderr, "oialr watch: gnuplot not found: install it with 'apt-get install gnuplot-nox'\n");
        return 1;
    }
    w.tty = isatty(STDOUT_FILENO);
    /* the reader's INFO lines would scroll the screen; warnings still show */
    oialr_set_log(NULL, NULL, OIALR_LOG_WARN);
    /* one BLAS thread: the run being watched needs the cores */
    int saved_threads = oialr_get_threads();
    oialr_set_threads(1);
    struct sigaction sa, old_int, old_term, old_winch;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, &old_winch);
    g_stop = g_resized = 0;

    int rc = run(&w);

    if (w.tty) fputs("\033[?25h", stdout); /* the cursor back, below the frame */
    fflush(stdout);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGWINCH, &old_winch, NULL);
    int status = 0;
    if (rc == OIALR_ERR_INTERRUPTED || g_stop) {
        fprintf(stderr, "oialr watch: interrupted%s\n",
                w.state && !strcmp(w.state, "live") ? "; the run goes on, it is not affected" : "");
        status = 130;
    } else if (rc) {
        fprintf(stderr, "oialr watch: %s\n", oialr_errmsg()[0] ? oialr_errmsg() : oialr_strerror(rc));
        status = 1;
    }
    remove_dir(&w);
    free_layers(&w);
    oialr_svd_ws_free(w.ws);
    free(w.frame);
    oialr_traj_close(w.t);
    if (saved_threads > 0) oialr_set_threads(saved_threads);
    return status;
}
