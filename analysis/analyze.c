/*
 * analyze.c — `oialr analyze run.h5 [options]`: options, the layer loop,
 * the stdout summary and the replay of switch policies. The results files
 * are written by results.c; the metrics are computed by engine.c.
 */
#include "analyze.h"
#include "cli.h"
#include "results.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "oialr/params.h"
#include "oialr/trajectory.h"

static const char *USAGE =
    "usage: oialr analyze RUN.h5 [options]\n"
    "\n"
    "Per layer and snapshot: basis stability S = tr(Q_a^T Q_b)/n against the\n"
    "snapshot LAG back, principal angles of the top-r_beta singular subspaces,\n"
    "singular values, rank metrics and WeightWatcher's power-law alpha\n"
    "(docs/metrics.md, docs/analyze.md).\n"
    "\n"
    "  -o, --output FILE    results HDF5 (never the input file)\n"
    "      --force          replace FILE and the tables in DIR if they are existing\n"
    "                       regular files (never anything else)\n"
    "      --csv DIR        write metrics.csv, spectra.csv, mean_stability.csv\n"
    "                       (and replay.csv with --policy) into DIR\n"
    "      --lag K          compare each snapshot with the one K back (default 1)\n"
    "      --lag-steps N    compare each snapshot at step s with the latest valid\n"
    "                       one at step <= s - N (instead of --lag)\n"
    "      --layers GLOBS   comma-separated name patterns (default: all layers)\n"
    "      --beta B         cutoff r_beta = #{sigma_i >= B sigma_1} (default 0.15)\n"
    "      --tau T          stability threshold (default 0.99)\n"
    "      --double         float64 SVD (gesdd) for every layer\n"
    "      --float          float32 SVD for every layer (default: float64 from the\n"
    "                       eigen-decomposition of W^T W, float64 gesdd for a\n"
    "                       snapshot whose condition number exceeds 1e5)\n"
    "      --threads N      analysis threads (default: online cores)\n"
    "      --blas-threads N OpenBLAS threads per analysis thread (default 1)\n"
    "      --no-angles      skip the principal angles (faster; NaN in the tables)\n"
    "      --follow         keep analysing a file a writer is still recording:\n"
    "                       new snapshots every --interval seconds, until the\n"
    "                       writer stops or Ctrl-C; the outputs are written then\n"
    "      --interval S     seconds between two looks at the file (default 2)\n"
    "      --policy P       replay a switch policy of oialr train --oialr: auto,\n"
    "                       stability:TAU[,lag=STEPS], mean-stability:TAU or\n"
    "                       delay:STEPS; one check per snapshot (record at the\n"
    "                       check interval to replay an online run exactly)\n"
    "  -q, --quiet          no progress line on stderr, no summary on stdout\n"
    "  -h, --help           this help\n";

/* --------------------------------------------------------------------------- */
/* option parsing */

static int bad(const char *flag, const char *val, const char *why) {
    fprintf(stderr, "oialr analyze: %s: '%s': %s\n", flag, val ? val : "", why);
    return 2;
}

/* --policy: the library's policies (oialr/lowrank.h), one message line */
static int parse_policy(const char *s, oialr_policy *p) {
    if (oialr_policy_parse(s, p) == OIALR_OK) return 0;
    fprintf(stderr, "oialr analyze: --policy: %s\n", oialr_errmsg());
    return 2;
}

/* Value of "--flag VALUE" or "--flag=VALUE". */
static const char *flag_value(int argc, char **argv, int *i, const char *eq) {
    return eq ? eq + 1 : cli_value("analyze", argc, argv, i);
}

static int parse_args(int argc, char **argv, ana_opts *o, int *help) {
    memset(o, 0, sizeof *o);
    o->lag = 1;
    o->beta = 0.15;
    o->tau = 0.99;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cores > 0 ? (int)cores : 1;
    o->blas_threads = 1;
    o->prec = OIALR_PREC_F32;
    o->auto_prec = 1;
    o->interval = -1;
    int lag_given = 0;
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (o->input) return bad("RUN.h5", a, "only one input file");
            o->input = a;
            continue;
        }
        char name[32];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name) return bad("option", a, "unknown option (try --help)");
        memcpy(name, a, len);
        name[len] = '\0';
        const char *v = NULL;
        long long ll;
#define VALUE() do { if (!(v = flag_value(argc, argv, &i, eq))) return 2; } while (0)
        if (!strcmp(name, "-h") || !strcmp(name, "--help")) { *help = 1; return 0; }
        else if (!strcmp(name, "-o") || !strcmp(name, "--output")) { VALUE(); o->output = v; }
        else if (!strcmp(name, "--csv")) { VALUE(); o->csv_dir = v; }
        else if (!strcmp(name, "--layers")) { VALUE(); o->layers = v; }
        else if (!strcmp(name, "--lag")) {
            VALUE();
            if (cli_int("analyze", name, v, 1, 1000000, &ll)) return 2;
            o->lag = (int)ll;
            lag_given = 1;
        } else if (!strcmp(name, "--lag-steps")) {
            VALUE();
            if (cli_int("analyze", name, v, 1, (long long)1 << 50, &ll)) return 2;
            o->lag_steps = ll;
        } else if (!strcmp(name, "--beta")) { VALUE(); if (cli_float("analyze", name, v, 0.0, 1.0, &o->beta)) return 2; }
        else if (!strcmp(name, "--tau")) { VALUE(); if (cli_float("analyze", name, v, -1.0, 1.0, &o->tau)) return 2; }
        else if (!strcmp(name, "--threads")) {
            VALUE();
            if (cli_int("analyze", name, v, 1, 256, &ll)) return 2;
            o->threads = (int)ll;
        } else if (!strcmp(name, "--blas-threads")) {
            VALUE();
            if (cli_int("analyze", name, v, 1, 256, &ll)) return 2;
            o->blas_threads = (int)ll;
        } else if (!strcmp(name, "--policy")) { VALUE(); if (parse_policy(v, &o->policy)) return 2; }
        else if (!strcmp(name, "--double") && !eq) { o->prec = OIALR_PREC_F64; o->auto_prec = 0; }
        else if (!strcmp(name, "--float") && !eq) { o->prec = OIALR_PREC_F32; o->auto_prec = 0; }
        else if (!strcmp(name, "--force") && !eq) o->force = 1;
        else if (!strcmp(name, "--no-angles") && !eq) o->no_angles = 1;
        else if (!strcmp(name, "--follow") && !eq) o->follow = 1;
        else if (!strcmp(name, "--interval")) {
            VALUE();
            if (cli_float("analyze", name, v, 0.01, 3600.0, &o->interval)) return 2;
        }
        else if ((!strcmp(name, "-q") || !strcmp(name, "--quiet")) && !eq) o->quiet = 1;
        else return bad("option", a, "unknown option (try --help)");
#undef VALUE
    }
    if (!o->input) {
        fprintf(stderr, "oialr analyze: no input file\n%s", USAGE);
        return 2;
    }
    if (o->policy.kind == OIALR_POLICY_STABILITY && o->policy.lag && (lag_given || o->lag_steps))
        return bad("--policy", "lag", "give the lag once: --lag K (snapshots), --lag-steps N or lag=STEPS in the policy");
    if (o->lag_steps && lag_given)
        return bad("--lag-steps", "", "give either --lag K (snapshots) or --lag-steps N (training steps), not both");
    if (o->interval > 0 && !o->follow) return bad("--interval", "", "only with --follow");
    if (o->interval <= 0) o->interval = 2.0;
    if (o->follow && o->policy.kind == OIALR_POLICY_STABILITY && o->policy.lag)
        return bad("--policy", "lag", "with --follow give the lag in steps as --lag-steps N");
    return 0;
}

/* --------------------------------------------------------------------------- */

static int layer_selected(const char *name, const char *globs) { return !globs || oialr_glob_match(globs, name); }

/* --layers: a warning for each pattern that matches no layer (PyTorch names
 * a layer's weight "conv1.weight", not "conv1"). */
static void warn_unmatched(oialr_traj *t, const char *globs, const char *input) {
    int total = oialr_traj_nlayers(t);
    for (const char *g = globs; g; g = strchr(g, ',') ? strchr(g, ',') + 1 : NULL) {
        char one[256];
        size_t len = strcspn(g, ",");
        if (len == 0 || len >= sizeof one) continue;
        memcpy(one, g, len);
        one[len] = '\0';
        int hit = 0, dotw = 0;
        for (int i = 0; i < total && !hit; i++) {
            const char *nm = oialr_traj_layer_at(t, i)->name;
            hit = oialr_glob_match(one, nm);
            dotw |= !strncmp(nm, one, len) && !strcmp(nm + len, ".weight");
        }
        if (!hit)
            fprintf(stderr, "oialr analyze: warning: --layers: '%s' matches no layer of %s%s%s%s\n", one, input,
                    dotw ? " (did you mean '" : "", dotw ? one : "", dotw ? ".weight'?)" : "");
    }
}

/* The layer names "a, b, c" into buf (cut with "..." when long). */
static void layer_names(oialr_traj *t, char *buf, size_t size) {
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < oialr_traj_nlayers(t); i++) {
        const char *nm = oialr_traj_layer_at(t, i)->name;
        if (at + strlen(nm) + 8 >= size) {
            snprintf(buf + at, size - at, "%s...", i ? ", " : "");
            return;
        }
        at += (size_t)snprintf(buf + at, size - at, "%s%s", i ? ", " : "", nm);
    }
}

/* Per-layer summary kept for the table and the replay. */
typedef struct layer_sum {
    char name[OIALR_TRAJ_NAME_MAX];
    int64_t rows, cols, nsnap, skipped;
    double final_s;
    int64_t final_step;
    int64_t stable_step;     /* first step from which S >= tau holds to the end; -1 never */
    int64_t cutoff_rank;     /* at the last valid snapshot */
    double param_share;
    double alpha;            /* power-law α at the last valid snapshot (NaN: undefined) */
    double max_condition;    /* over the valid snapshots */
    int prec;                /* working precision used */
    int64_t gesdd;           /* Gram path: snapshots sent on to float64 gesdd */
    int64_t switch_step;     /* replay: -1 never / not eligible */
    int64_t switch_rank;
    double switch_s;
    int eligible;
    const char *why;         /* not eligible: "aspect", "classifier" */
    /* per snapshot, for the replay after every layer is analysed */
    int64_t *steps, *cutoff;
    double *s;               /* stability, NAN where undefined or invalid */
} layer_sum;

typedef struct run_ctx {
    const ana_opts *o;
    oialr_traj *t;
    int layer;
    const oialr_traj_layer *L;
    ana_row *rows;           /* nsnap rows of the current layer */
    ana_results *res;
    int check_condition;     /* ask for float64 when float32 is not exact */
    int layer_no, nlayers;   /* position among the selected layers, for progress */
} run_ctx;

static oialr_analyze_progress_fn progress_fn;

void oialr_analyze_set_progress(oialr_analyze_progress_fn fn) { progress_fn = fn; }

/* float32 stability is off by up to ~0.15 cond * FLT_EPSILON (measured,
 * docs/metrics.md); above this the layer is redone in float64 */
#define ANA_F32_MAX_COND (1e-3 / FLT_EPSILON)

static int read_cb(void *user, int64_t snap, float *buf, size_t n) {
    run_ctx *c = user;
    return oialr_traj_read(c->t, c->layer, snap, buf, n);
}

static int emit_cb(void *user, int64_t snap, const ana_row *row, const double *sigma, int64_t n) {
    run_ctx *c = user;
    if (c->check_condition && row->valid && row->sp.condition > ANA_F32_MAX_COND) return ANA_RESTART;
    c->rows[snap] = *row;
    int rc = ana_results_row(c->res, snap, row, sigma, n);
    if (!rc && progress_fn && !c->o->quiet) progress_fn(c->L->name, snap + 1, c->L->nsnap, c->layer_no, c->nlayers);
    return rc;
}

static void summarise(const ana_opts *o, const oialr_traj_layer *L, const ana_row *r, int prec, layer_sum *s) {
    memset(s, 0, sizeof *s);
    s->prec = prec;
    snprintf(s->name, sizeof s->name, "%s", L->name);
    s->rows = L->rows;
    s->cols = L->cols;
    s->nsnap = L->nsnap;
    s->final_s = NAN;
    s->final_step = -1;
    s->stable_step = -1;
    s->cutoff_rank = -1;
    s->param_share = NAN;
    s->alpha = NAN;
    s->switch_step = -1;
    s->switch_rank = -1;
    s->switch_s = NAN;
    int64_t last_valid = -1;
    for (int64_t j = 0; j < L->nsnap; j++) {
        if (!r[j].valid) { s->skipped++; continue; }
        last_valid = j;
        if (r[j].sp.condition > s->max_condition) s->max_condition = r[j].sp.condition; /* NaN (W = 0) skipped */
        if (!isnan(r[j].stability)) { s->final_s = r[j].stability; s->final_step = r[j].step; }
    }
    if (last_valid >= 0) {
        s->cutoff_rank = r[last_valid].sp.cutoff_rank;
        s->param_share = r[last_valid].sp.param_share;
        s->alpha = r[last_valid].pl.alpha;
    }
    /* sustained: walk back from the end while S >= tau */
    for (int64_t j = L->nsnap - 1; j >= 0; j--) {
        if (isnan(r[j].stability)) continue; /* undefined pairs neither start nor break a run */
        if (r[j].stability >= o->tau) s->stable_step = r[j].step;
        else break;
    }
    /* eligibility as the controller decides it by default (lib/lowrank):
     * aspect ratio >= 10 kept full rank; the classifier is marked later */
    int64_t n = L->rows < L->cols ? L->rows : L->cols, m = L->rows < L->cols ? L->cols : L->rows;
    s->eligible = (double)m / (double)n < 10.0;
    if (!s->eligible) s->why = "aspect";
}

/* Keep layer L's series for the replay (NULL arrays when out of memory). */
static int keep_series(const oialr_traj_layer *L, const ana_row *r, layer_sum *s) {
    size_t n = (size_t)(L->nsnap > 0 ? L->nsnap : 1);
    s->steps = malloc(n * sizeof *s->steps);
    s->cutoff = malloc(n * sizeof *s->cutoff);
    s->s = malloc(n * sizeof *s->s);
    if (!s->steps || !s->cutoff || !s->s) return oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory");
    for (int64_t j = 0; j < L->nsnap; j++) {
        s->steps[j] = r[j].step;
        s->cutoff[j] = r[j].valid ? r[j].sp.cutoff_rank : -1;
        s->s[j] = r[j].valid ? r[j].stability : NAN;
    }
    return OIALR_OK;
}

/* Replay the policy over the analysed layers, one check per snapshot step,
 * through the library's oialr_policy_check: the same decisions an online run
 * makes from the same stabilities. The rank at the switch is the
 * controller's first truncation (oialr_lowrank_keep_rank) of the cutoff
 * rank r_beta of that snapshot. */
/* The learning rate of the run at each metrics row (auto measures the
 * rotation per unit of it); n = 0 when the file has no lr column. */
typedef struct lr_series {
    int64_t *step;
    double *lr;
    int64_t n;
    int64_t at; /* lr_at's cursor: the replay asks in step order */
} lr_series;

static void lr_series_read(oialr_traj *t, lr_series *ls) {
    memset(ls, 0, sizeof *ls);
    int64_t cap = oialr_traj_get_info(t)->nmetrics, got = 0;
    if (cap <= 0) return;
    ls->step = malloc((size_t)cap * sizeof *ls->step);
    ls->lr = malloc((size_t)cap * sizeof *ls->lr);
    if (ls->step && ls->lr && oialr_traj_read_metric_steps(t, ls->step, cap, &ls->n) == OIALR_OK &&
        oialr_traj_read_column(t, "lr", ls->lr, cap, &got) == OIALR_OK && got == ls->n)
        return;
    ls->n = 0; /* no usable lr column: the rotation is taken as it is */
}

/* The lr of the last row at `step` (NAN if none). Steps are asked in
 * increasing order and the rows' steps never decrease, so one pass over
 * the rows serves the whole replay. */
static double lr_at(lr_series *s, int64_t step) {
    while (s->at < s->n && s->step[s->at] < step) s->at++;
    double v = NAN;
    for (int64_t i = s->at; i < s->n && s->step[i] == step; i++) v = s->lr[i];
    return v;
}

static int replay_policy(const ana_opts *o, layer_sum *ls, int nl, lr_series *lrs) {
    if (nl > 0 && o->policy.kind != OIALR_POLICY_NONE) { /* the classifier: the last weight */
        ls[nl - 1].eligible = 0;
        ls[nl - 1].why = "classifier";
    }
    int ne = 0;
    for (int i = 0; i < nl; i++) ne += ls[i].eligible;
    if (o->policy.kind == OIALR_POLICY_NONE || ne == 0) return OIALR_OK;
    int *map = calloc((size_t)ne, sizeof *map), *done = calloc((size_t)ne, sizeof *done);
    int *go = calloc((size_t)ne, sizeof *go);
    int64_t *at = calloc((size_t)ne, sizeof *at);
    double *sv = calloc((size_t)ne, sizeof *sv);
    oialr_policy_state *st = NULL;
    int rc = !map || !done || !go || !at || !sv ? oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory") : OIALR_OK;
    if (!rc) rc = oialr_policy_state_new(&st, &o->policy, ne);
    for (int i = 0, e = 0; !rc && i < nl; i++)
        if (ls[i].eligible) map[e++] = i;
    /* the checks: the union of the snapshot steps, in order */
    for (;;) {
        if (rc) break;
        int64_t step = INT64_MAX;
        for (int e = 0; e < ne; e++) {
            const layer_sum *l = &ls[map[e]];
            if (at[e] < l->nsnap && l->steps[at[e]] < step) step = l->steps[at[e]];
        }
        if (step == INT64_MAX) break;
        for (int e = 0; e < ne; e++) {
            const layer_sum *l = &ls[map[e]];
            sv[e] = at[e] < l->nsnap && l->steps[at[e]] == step ? l->s[at[e]] : NAN;
        }
        oialr_policy_check(st, step, 0, lr_at(lrs, step), sv, done, go);
        for (int e = 0; e < ne; e++) {
            layer_sum *l = &ls[map[e]];
            int64_t j = at[e] < l->nsnap && l->steps[at[e]] == step ? at[e] : -1;
            if (go[e] && !done[e]) {
                done[e] = 1;
                int64_t n = l->rows < l->cols ? l->rows : l->cols;
                int64_t cut = j >= 0 && l->cutoff[j] >= 0 ? l->cutoff[j] : n;
                l->switch_step = step;
                l->switch_rank = oialr_lowrank_keep_rank((int)cut, (int)n, (int)n);
                l->switch_s = sv[e];
            }
            if (j >= 0) at[e]++;
        }
    }
    oialr_policy_state_free(st);
    free(map), free(done), free(go), free(at), free(sv);
    return rc;
}

/* "lag 1" or "lag 234 steps", for the summary */
static const char *lag_text(const ana_opts *o, char *buf, size_t size) {
    if (o->lag_steps > 0) snprintf(buf, size, "lag %lld steps", (long long)o->lag_steps);
    else snprintf(buf, size, "lag %d", o->lag);
    return buf;
}

static void print_summary(const ana_opts *o, const oialr_traj_info *info, const layer_sum *ls, int nl,
                          const ana_results *res, double secs, const char *note) {
    char lag[48];
    printf("oialr analyze: %s: %d layer%s, %s, beta %g, tau %g, %s, %d thread%s, %.2f s%s\n", o->input, nl,
           nl == 1 ? "" : "s", lag_text(o, lag, sizeof lag), o->beta, o->tau,
           o->auto_prec ? "float64 (Gram eigen-decomposition; gesdd where ill-conditioned)" : o->prec == OIALR_PREC_F64 ? "float64" : "float32",
           o->threads,
           o->threads == 1 ? "" : "s", secs,
           note ? note
           : !info->swmr_read ? ""
           : info->writer_alive ? " (live file: analysed what is there so far)"
                                : " (its writer died: analysed every snapshot it flushed)");
    printf("%-24s %11s %6s %10s %14s %7s %7s %7s\n", "layer", "shape", "snaps", "final S", "stable from", "r_beta",
           "share", "alpha");
    for (int i = 0; i < nl; i++) {
        char shape[32], st[32];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)ls[i].rows, (long long)ls[i].cols);
        if (ls[i].stable_step >= 0) snprintf(st, sizeof st, "step %lld", (long long)ls[i].stable_step);
        else snprintf(st, sizeof st, "never");
        printf("%-24s %11s %6lld %10.6f %14s %7lld %7.3f %7.3f", ls[i].name, shape, (long long)ls[i].nsnap,
               ls[i].final_s, st, (long long)ls[i].cutoff_rank, ls[i].param_share, ls[i].alpha);
        if (o->auto_prec && ls[i].prec == OIALR_PREC_F64)
            printf("  (float64: condition number up to %.3g)", ls[i].max_condition);
        if (ls[i].gesdd)
            printf("  (%lld snapshot%s by gesdd: condition number up to %.3g)", (long long)ls[i].gesdd,
                   ls[i].gesdd == 1 ? "" : "s", ls[i].max_condition);
        if (ls[i].skipped) printf("  (%lld snapshot%s with NaN/Inf skipped)", (long long)ls[i].skipped,
                                  ls[i].skipped == 1 ? "" : "s");
        printf("\n");
    }
    if (o->prec == OIALR_PREC_F32 && !o->auto_prec)
        for (int i = 0; i < nl; i++)
            if (ls[i].max_condition > ANA_F32_MAX_COND)
                printf("note: %s: condition number up to %.3g; float32 stability may be off by ~%.1g there "
                       "(0.15 cond eps, docs/metrics.md): use --double or the default precision\n",
                       ls[i].name, ls[i].max_condition, 0.15 * ls[i].max_condition * FLT_EPSILON);
    int64_t ms_step;
    double ms;
    if (ana_results_last_mean(res, &ms_step, &ms) == 0)
        printf("mean stability at step %lld: %.6f\n", (long long)ms_step, ms);
}

/* Replay table; returns the trainable fraction. */
static double replay(const ana_opts *o, const layer_sum *ls, int nl, FILE *out) {
    double full = 0, kept = 0;
    for (int i = 0; i < nl; i++) {
        double mn = (double)ls[i].rows * (double)ls[i].cols;
        full += mn;
        kept += ls[i].switch_step >= 0 ? (double)ls[i].switch_rank * (double)ls[i].switch_rank : mn;
    }
    double frac = full > 0 ? kept / full : NAN;
    if (!out) return frac;
    char pol[96];
    oialr_policy_format(&o->policy, pol, sizeof pol);
    char lag[48];
    fprintf(out, "replay: policy %s at %s, one check per snapshot (oialr train --oialr %s)\n", pol,
            lag_text(o, lag, sizeof lag), pol);
    fprintf(out, "%-24s %14s %10s %7s %10s\n", "layer", "freezes at", "S", "rank", "trainable");
    for (int i = 0; i < nl; i++) {
        char at[32];
        double mn = (double)ls[i].rows * (double)ls[i].cols;
        if (!ls[i].eligible) {
            char why[32];
            snprintf(why, sizeof why, "(%s)", ls[i].why ? ls[i].why : "-");
            fprintf(out, "%-24s %14s %10s %7s %10.3f\n", ls[i].name, "kept full", why, "-", 1.0);
            continue;
        }
        if (ls[i].switch_step < 0) {
            fprintf(out, "%-24s %14s %10s %7s %10.3f\n", ls[i].name, "never", "-", "-", 1.0);
            continue;
        }
        snprintf(at, sizeof at, "step %lld", (long long)ls[i].switch_step);
        fprintf(out, "%-24s %14s %10.6f %7lld %10.4f\n", ls[i].name, at, ls[i].switch_s, (long long)ls[i].switch_rank,
                (double)ls[i].switch_rank * (double)ls[i].switch_rank / mn);
    }
    fprintf(out, "trainable fraction of the analysed weight matrices: %.4f\n", frac);
    return frac;
}

static int write_replay_csv(const ana_opts *o, const layer_sum *ls, int nl, double frac, ana_results *res) {
    const char *path;
    int rc;
    FILE *f = ana_results_open_replay(res, &path, &rc);
    if (!f) return rc;
    fprintf(f, "layer,rows,cols,eligible,switch_step,stability,rank,trainable_share,policy,trainable_fraction\n");
    for (int i = 0; i < nl; i++) {
        double mn = (double)ls[i].rows * (double)ls[i].cols;
        double share = ls[i].switch_step >= 0 ? (double)ls[i].switch_rank * (double)ls[i].switch_rank / mn : 1.0;
        ana_csv_name(f, ls[i].name);
        fprintf(f, ",%lld,%lld,%d,%lld,%.9g,%lld,%.9g,", (long long)ls[i].rows, (long long)ls[i].cols, ls[i].eligible,
                (long long)ls[i].switch_step, ls[i].switch_s, (long long)ls[i].switch_rank, share);
        char pol[96];
        oialr_policy_format(&o->policy, pol, sizeof pol);
        for (char *c = pol; *c; c++)
            if (*c == ',') *c = ';'; /* one CSV field */
        fprintf(f, "%s,%.9g\n", pol, frac);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return oialr_seterr(OIALR_ERR_IO, "%s: write error", path);
    return OIALR_OK;
}

/* The controller's decisions (/events) into events.csv, for the figures. */
#define ANALYZE_MAX_EVENTS ((int64_t)1 << 21)
static int copy_events(oialr_traj *t, const char *input, ana_results *res) {
    int64_t ne = oialr_traj_get_info(t)->nevents, got = 0;
    if (ne > ANALYZE_MAX_EVENTS)
        return oialr_seterr(OIALR_ERR_OVERFLOW, "%s: %lld events; analyze reads at most %lld", input, (long long)ne,
                            (long long)ANALYZE_MAX_EVENTS);
    oialr_traj_event *ev = ne > 0 ? malloc((size_t)ne * sizeof *ev) : NULL;
    if (ne > 0 && !ev)
        return oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory for %lld events", (long long)ne);
    int rc = ne > 0 ? oialr_traj_read_events(t, ev, ne, &got) : OIALR_OK;
    if (!rc) rc = ana_results_events(res, ev, got);
    free(ev);
    return rc;
}

/* The lag against the file: a policy's lag=STEPS into snapshots (o->lag),
 * and whether any pair exists at all. */
static int check_lag(ana_opts *o, oialr_traj *t, int total, int64_t maxsnap) {
    if (o->policy.kind == OIALR_POLICY_STABILITY && o->policy.lag) {
        /* lag=STEPS, as online: in snapshots of this file */
        int64_t d = 0;
        for (int i = 0; i < total && !d; i++) {
            const oialr_traj_layer *L = oialr_traj_layer_at(t, i);
            if (layer_selected(L->name, o->layers) && L->nsnap >= 2) d = L->steps[1] - L->steps[0];
        }
        if (d <= 0 || o->policy.lag % d)
            return oialr_seterr(OIALR_ERR_ARG, "%s: --policy lag=%lld is not a multiple of the snapshot interval %lld",
                                o->input, (long long)o->policy.lag, (long long)d);
        o->lag = (int)(o->policy.lag / d);
    }
    if (o->lag_steps > 0) {
        int64_t span = 0; /* a pair needs two snapshots N steps apart */
        for (int i = 0; i < total; i++) {
            const oialr_traj_layer *L = oialr_traj_layer_at(t, i);
            if (layer_selected(L->name, o->layers) && L->nsnap >= 2 && L->steps[L->nsnap - 1] - L->steps[0] > span)
                span = L->steps[L->nsnap - 1] - L->steps[0];
        }
        if (span < o->lag_steps)
            return oialr_seterr(OIALR_ERR_ARG, "%s: --lag-steps %lld: no layer has two snapshots that far apart (the "
                                "longest spans %lld steps)", o->input, (long long)o->lag_steps, (long long)span);
    } else if (maxsnap <= o->lag) {
        return oialr_seterr(OIALR_ERR_ARG, "%s: lag %d needs more than %d snapshots; the longest layer has %lld",
                            o->input, o->lag, o->lag, (long long)maxsnap);
    }
    return OIALR_OK;
}

/* --------------------------------------------------------------------------- */
/* --follow: analyse a live file as it grows. Each selected layer keeps its
 * ring of factors between looks (ana_engine_layer_more), so a snapshot is
 * factored once; its row and singular values are kept in memory and the
 * outputs are written at the end by the same calls as a plain run, so the
 * tables are those a plain analyze of the finished file writes. */

typedef struct follow_layer {
    int idx;                  /* layer index in the trajectory */
    ana_layer_state *st;
    int prec;                 /* working precision (float64 once a snapshot needs it) */
    int64_t n, count, cap;    /* σ per snapshot; snapshots analysed; capacity */
    int64_t gesdd;            /* Gram path: snapshots sent on to float64 gesdd */
    ana_row *rows;
    double *sigma;            /* cap × n */
} follow_layer;

typedef struct follow_ctx {
    const ana_opts *o;
    oialr_traj *t;
    follow_layer *fl;
    const oialr_traj_layer *L;
    int check_condition, layer_no, nlayers;
} follow_ctx;

#define ANA_STOP 2 /* emit: Ctrl-C, stop the layer where it is */
static volatile sig_atomic_t follow_stop;
static void follow_on_signal(int sig) {
    (void)sig;
    follow_stop = 1;
}

static int follow_read(void *user, int64_t snap, float *buf, size_t n) {
    follow_ctx *c = user;
    return oialr_traj_read(c->t, c->fl->idx, snap, buf, n);
}

static int follow_emit(void *user, int64_t snap, const ana_row *row, const double *sigma, int64_t n) {
    follow_ctx *c = user;
    follow_layer *f = c->fl;
    if (follow_stop) return ANA_STOP;
    if (c->check_condition && row->valid && row->sp.condition > ANA_F32_MAX_COND) return ANA_RESTART;
    if (snap >= f->cap) {
        int64_t cap = f->cap ? 2 * f->cap : 64;
        while (cap <= snap) cap *= 2;
        ana_row *r = realloc(f->rows, (size_t)cap * sizeof *r);
        if (r) f->rows = r;
        double *sg = r ? realloc(f->sigma, (size_t)cap * (size_t)f->n * sizeof *sg) : NULL;
        if (!sg) return oialr_seterr(OIALR_ERR_NOMEM, "analyze --follow: out of memory for %lld snapshots", (long long)cap);
        f->sigma = sg;
        f->cap = cap;
    }
    f->rows[snap] = *row;
    if (sigma) memcpy(f->sigma + (size_t)snap * (size_t)n, sigma, (size_t)n * sizeof *sigma);
    f->count = snap + 1;
    if (progress_fn) progress_fn(c->L->name, snap + 1, c->L->nsnap, c->layer_no, c->nlayers);
    return OIALR_OK;
}

/* The plain run and --follow factor a layer the same way: whether a
 * float32 factor's condition number is watched (to redo the layer in
 * float64), and the precision the results file names for the layer (the
 * Gram path works in float64). */
static int watch_condition(const ana_opts *o, const ana_engine *e, int prec) {
    return o->auto_prec && prec == OIALR_PREC_F32 && !ana_engine_gram(e);
}
static int layer_prec(const ana_engine *e, int prec) { return ana_engine_gram(e) ? OIALR_PREC_F64 : prec; }

/* The snapshots of one layer appended since the last look. */
static int follow_layer_more(follow_ctx *c, ana_engine *e) {
    const ana_opts *o = c->o;
    follow_layer *f = c->fl;
    const oialr_traj_layer *L = c->L;
    for (;;) {
        int rc = ana_engine_set_prec(e, f->prec);
        if (rc) return rc;
        c->check_condition = watch_condition(o, e, f->prec);
        int64_t ill0 = ana_engine_gram_ill(e);
        rc = ana_engine_layer_more(e, &f->st, L->rows, L->cols, L->nsnap, L->steps, o->lag, o->beta, follow_read,
                                   follow_emit, c);
        f->gesdd += ana_engine_gram_ill(e) - ill0;
        if (rc != ANA_RESTART) return rc;
        oialr_log(OIALR_LOG_DEBUG, "%s: condition number above %.3g: float64", L->name, ANA_F32_MAX_COND);
        f->prec = OIALR_PREC_F64; /* the engine starts the layer again from snapshot 0 */
        f->count = 0;
    }
}

static void follow_sleep(double seconds) {
    for (double left = seconds; left > 0 && !follow_stop; left -= 0.05) {
        struct timespec ts = {0, (long)(1e9 * (left < 0.05 ? left : 0.05))};
        nanosleep(&ts, NULL);
    }
}

/* Analyse, look again every o->interval seconds, until the writer no
 * longer holds the file (what it wrote before is all seen by the last
 * refresh) or SIGINT/SIGTERM. *stopped: by a signal. */
static int follow_run(const ana_opts *o, oialr_traj *t, ana_engine *e, follow_layer *fl, int nfl, int *stopped) {
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = follow_on_signal;
    sigemptyset(&sa.sa_mask);
    follow_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int rc = OIALR_OK, looks = 0;
    for (;;) {
        const oialr_traj_info *info = oialr_traj_get_info(t);
        int live = info->swmr_read && info->writer_alive; /* as of the last refresh, made before its reads */
        for (int k = 0; k < nfl && !rc && !follow_stop; k++) {
            const oialr_traj_layer *L = oialr_traj_layer_at(t, fl[k].idx);
            if (L->nsnap <= fl[k].count) continue;
            follow_ctx c = {.o = o, .t = t, .fl = &fl[k], .L = L, .layer_no = k, .nlayers = nfl};
            rc = follow_layer_more(&c, e);
        }
        if (rc == ANA_STOP) rc = OIALR_OK;
        if (rc || !live || follow_stop) break;
        if (looks++ == 0 && !o->quiet)
            fprintf(stderr, "oialr analyze: %s: following the live file (every %g s) until its writer stops or Ctrl-C\n",
                    o->input, o->interval);
        follow_sleep(o->interval);
        if (follow_stop) break;
        if ((rc = oialr_traj_refresh(t))) break;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    *stopped = follow_stop;
    return rc;
}

static void follow_free(follow_layer *fl, int nfl) {
    for (int k = 0; fl && k < nfl; k++) {
        ana_layer_state_free(fl[k].st);
        free(fl[k].rows);
        free(fl[k].sigma);
    }
    free(fl);
}

/* --follow in oialr_cmd_analyze, once the outputs are checked: the file
 * followed to its end (or Ctrl-C), then the lag checked against it. */
static int follow_start(ana_opts *o, oialr_traj *t, ana_engine *e, int total, int nsel, follow_layer **out, int *nfl,
                        int *stopped) {
    follow_layer *fl = calloc((size_t)nsel, sizeof *fl);
    if (!(*out = fl)) return oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory");
    for (int i = 0; i < total; i++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, i);
        if (!layer_selected(L->name, o->layers)) continue;
        fl[*nfl].idx = i;
        fl[*nfl].prec = o->prec;
        fl[*nfl].n = L->rows < L->cols ? L->rows : L->cols;
        (*nfl)++;
    }
    int rc = follow_run(o, t, e, fl, *nfl, stopped);
    if (rc) return rc;
    int64_t maxsnap = 0;
    for (int k = 0; k < *nfl; k++)
        if (oialr_traj_layer_at(t, fl[k].idx)->nsnap > maxsnap) maxsnap = oialr_traj_layer_at(t, fl[k].idx)->nsnap;
    return check_lag(o, t, total, maxsnap);
}

int oialr_cmd_analyze(int argc, char **argv) {
    ana_opts o;
    int help;
    int st = parse_args(argc, argv, &o, &help);
    if (st) return st;
    if (help) {
        fputs(USAGE, stdout);
        return 0;
    }
    double t0 = oialr_now();
    int rc, status = 1;
    oialr_traj *t = NULL;
    ana_engine *e = NULL;
    ana_results *res = NULL;
    layer_sum *ls = NULL;
    ana_row *rows = NULL;
    int nl = 0;
    int saved_threads = oialr_get_threads();
    follow_layer *fl = NULL;
    int nfl = 0, stopped = 0;

    if ((rc = oialr_traj_open(&t, o.input, OIALR_TRAJ_READ))) goto fail;
    const oialr_traj_info *info = oialr_traj_get_info(t);
    int total = oialr_traj_nlayers(t);
    int nsel = 0;
    int64_t maxsnap = 0;
    for (int i = 0; i < total; i++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, i);
        if (layer_selected(L->name, o.layers)) {
            nsel++;
            if (L->nsnap > maxsnap) maxsnap = L->nsnap;
        }
    }
    if (o.layers) warn_unmatched(t, o.layers, o.input);
    if (nsel == 0) {
        char names[640];
        layer_names(t, names, sizeof names);
        rc = oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer matches '%s' (%d layer%s in the file%s%s)", o.input,
                          o.layers ? o.layers : "*", total, total == 1 ? "" : "s", total ? ": " : "", names);
        goto fail;
    }
    if (o.policy.kind == OIALR_POLICY_AUTO && o.policy.span == 0) {
        /* auto's span, two epochs, as the online controller sets it */
        char buf[32];
        if (oialr_traj_get_config(t, "steps_per_epoch", buf, sizeof buf) == OIALR_OK) o.policy.span = 2 * atoll(buf);
    }
    if (!o.follow && (rc = check_lag(&o, t, total, maxsnap))) goto fail; /* --follow: once it ends */
    ls = calloc((size_t)nsel, sizeof *ls);
    rows = calloc((size_t)(maxsnap > 0 ? maxsnap : 1), sizeof *rows);
    if (!ls || !rows) { rc = oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory"); goto fail; }
    oialr_set_threads(o.blas_threads);
    if ((rc = ana_engine_new(&e, o.threads, o.prec))) goto fail;
    ana_engine_set_angles(e, !o.no_angles);
    ana_engine_set_gram(e, o.auto_prec); /* default precision: float64 by the Gram path (docs/metrics.md) */
    if ((rc = ana_results_open(&res, &o, info->created))) goto fail;
    ana_engine_set_lag_steps(e, o.lag_steps);
    if (o.follow) { /* the outputs are checked; now follow the file, then check the lag on the finished file */
        if ((rc = follow_start(&o, t, e, total, nsel, &fl, &nfl, &stopped))) goto fail;
        info = oialr_traj_get_info(t);
    }
    if (o.csv_dir && (rc = copy_events(t, o.input, res))) goto fail;

    for (int i = 0, k = 0; i < total; i++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, i);
        if (!layer_selected(L->name, o.layers)) continue;
        if (o.follow) { /* rows analysed while following: written as a plain run writes them */
            follow_layer *f = &fl[k++];
            oialr_traj_layer Lc = *L;
            Lc.nsnap = f->count; /* < L->nsnap only after Ctrl-C */
            if ((rc = ana_results_layer_begin(res, L->name, L->kind, L->rows, L->cols, Lc.nsnap))) goto fail;
            ana_results_layer_prec(res, layer_prec(e, f->prec));
            for (int64_t j = 0; j < f->count; j++)
                if ((rc = ana_results_row(res, j, &f->rows[j], f->rows[j].valid ? f->sigma + (size_t)j * (size_t)f->n : NULL,
                                          f->n)))
                    goto fail;
            summarise(&o, &Lc, f->rows, f->prec, &ls[nl]);
            ls[nl].gesdd = f->gesdd;
            nl++;
            if ((rc = keep_series(&Lc, f->rows, &ls[nl - 1]))) goto fail;
            if ((rc = ana_results_layer_end(res, f->rows, Lc.nsnap, ls[nl - 1].stable_step))) goto fail;
            continue;
        }
        run_ctx c = {.o = &o, .t = t, .layer = i, .L = L, .rows = rows, .res = res, .layer_no = nl, .nlayers = nsel};
        if ((rc = ana_results_layer_begin(res, L->name, L->kind, L->rows, L->cols, L->nsnap))) goto fail;
        int prec = o.prec;
        int64_t ill0 = ana_engine_gram_ill(e);
        for (;;) {
            if ((rc = ana_engine_set_prec(e, prec))) goto fail;
            ana_results_layer_prec(res, layer_prec(e, prec));
            c.check_condition = watch_condition(&o, e, prec);
            rc = L->nsnap > 0 ? ana_engine_layer(e, L->rows, L->cols, L->nsnap, L->steps, o.lag, o.beta, read_cb,
                                                 emit_cb, &c)
                              : OIALR_OK;
            if (rc != ANA_RESTART) break;
            if ((rc = ana_results_layer_rewind(res))) goto fail;
            oialr_log(OIALR_LOG_DEBUG, "%s: condition number above %.3g: float64", L->name, ANA_F32_MAX_COND);
            prec = OIALR_PREC_F64;
        }
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", oialr_errmsg()); /* seterr writes the buffer errmsg() returns */
            oialr_seterr(rc, "layer %s: %s", L->name, msg);
            goto fail;
        }
        summarise(&o, L, rows, prec, &ls[nl]);
        ls[nl].gesdd = ana_engine_gram_ill(e) - ill0;
        nl++;
        if ((rc = keep_series(L, rows, &ls[nl - 1]))) goto fail;
        if ((rc = ana_results_layer_end(res, rows, L->nsnap, ls[nl - 1].stable_step))) goto fail;
    }
    lr_series lrs;
    lr_series_read(t, &lrs);
    rc = replay_policy(&o, ls, nl, &lrs);
    free(lrs.step), free(lrs.lr);
    if (rc) goto fail;
    for (int i = 0; i < nl; i++)
        if ((rc = ana_results_switch(res, ls[i].name, ls[i].switch_step, ls[i].switch_rank))) goto fail;
    double frac = o.policy.kind ? replay(&o, ls, nl, NULL) : NAN;
    if ((rc = ana_results_finish(res, frac))) goto fail;
    if (o.policy.kind && o.csv_dir && (rc = write_replay_csv(&o, ls, nl, frac, res))) goto fail;
    /* everything is written: only now replace the old outputs */
    if ((rc = ana_results_commit(res))) goto fail;
    double secs = oialr_now() - t0;
    if (!o.quiet) {
        print_summary(&o, info, ls, nl, res, secs,
                      !o.follow || !info->swmr_read ? NULL
                      : stopped                     ? " (followed until interrupted: every snapshot analysed by then)"
                                                    : " (followed until its writer stopped)");
        if (o.policy.kind) replay(&o, ls, nl, stdout);
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "oialr analyze: %s\n", oialr_errmsg()[0] ? oialr_errmsg() : oialr_strerror(rc));
    status = 1;
done:
    ana_results_close(res); /* after a failure: removes the temporary files, nothing else */
    ana_engine_free(e);
    oialr_traj_close(t);
    for (int i = 0; ls && i < nl; i++) free(ls[i].steps), free(ls[i].cutoff), free(ls[i].s);
    free(ls);
    free(rows);
    follow_free(fl, nfl);
    if (saved_threads > 0) oialr_set_threads(saved_threads);
    return status;
}
