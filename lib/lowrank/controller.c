/*
 * controller.c — the OIALR controller, a training hook (oialr/lowrank.h).
 *
 * At run_begin it lists the weights the model can hold low-rank and decides
 * which are eligible (not the classifier unless asked, not the first layer
 * with keep_first, not one whose aspect ratio is >= max_aspect). Every
 * `every` steps (step_end) it
 *   1. rotates and truncates each layer already low-rank (lr_rotate);
 *   2. factors each full-rank eligible layer with lib/metrics (the code
 *      and the Gram path `oialr analyze` uses by default) and takes its
 *      stability against the factor of `lag` steps before;
 *   3. asks the policy, and switches the layers it names (lr_switch).
 * Each switch, rotation and truncation goes to the recorder as an event.
 */
#include "lowrank/internal.h"
#include "metrics/internal.h"
#include "nn/par.h"
#include "oialr/metrics.h"
#include "oialr/params.h"
#include "oialr/record.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctl {
    oialr_lowrank_options o;
    int64_t every;
    int nlayers;
    oialr_lowrank_layer *layers; /* [nlayers] every capable weight, in graph order */
    int *param;                  /* [nlayers] its parameter index */
    int nelig;
    int *el;                     /* [nelig] eligible -> layer */
    int nlag;                    /* factors kept per layer: stability at lag nlag checks */
    oialr_factor **ring;         /* [nelig * (nlag + 1)] */
    int *filled;                 /* [nelig] checks factored so far */
    oialr_svd_ws *ws[NN_MAX_THREADS]; /* one per thread of a check (measure) */
    oialr_policy_state *ps;
    double *s;
    int *done, *go;
    lr_work w;
    double seconds;
    int planned; /* begin() done (by run_begin, or by state_size before it) */
    int began;
} ctl;

void oialr_lowrank_options_default(oialr_lowrank_options *o) {
    memset(o, 0, sizeof *o);
    o->policy.kind = OIALR_POLICY_AUTO;
    o->beta = 0.15;
    o->keep_last = 1;
    o->max_aspect = 10.0;
    o->moments = OIALR_MOMENTS_RESET; /* measured: docs/results-oialr.md */
}

static void free_ws(ctl *c) {
    for (int t = 0; t < NN_MAX_THREADS; t++) {
        oialr_svd_ws_free(c->ws[t]);
        c->ws[t] = NULL;
    }
}

static void ctl_free(ctl *c) {
    if (!c) return;
    for (int i = 0; c->ring && i < c->nelig * (c->nlag + 1); i++) oialr_factor_free(c->ring[i]);
    free(c->ring);
    free(c->filled);
    free(c->layers);
    free(c->param);
    free(c->el);
    free(c->s);
    free(c->done);
    free(c->go);
    free_ws(c);
    oialr_policy_state_free(c->ps);
    lr_work_free(&c->w);
    free(c);
}

static int record_event(ctl *c, int64_t step, const oialr_lowrank_layer *l, int kind, double s, int before,
                        int after) {
    if (!c->o.recorder) return OIALR_OK;
    oialr_traj_event ev;
    memset(&ev, 0, sizeof ev);
    ev.step = step;
    snprintf(ev.layer, sizeof ev.layer, "%s", l->name);
    ev.kind = kind;
    ev.stability = s;
    ev.rank_before = before;
    ev.rank_after = after;
    return oialr_record_event(c->o.recorder, &ev);
}

static int begin(ctl *c, oialr_trainer *t) {
    oialr_params *p = t->params;
    c->every = c->o.every > 0 ? c->o.every : (t->steps_per_epoch + 1) / 2;
    if (c->every < 1) c->every = 1;
    c->layers = calloc((size_t)p->count + 1, sizeof *c->layers);
    c->param = calloc((size_t)p->count + 1, sizeof *c->param);
    c->el = calloc((size_t)p->count + 1, sizeof *c->el);
    if (!c->layers || !c->param || !c->el) return oialr_seterr(OIALR_ERR_NOMEM, "OIALR: out of memory");
    for (int i = 0; i < p->count; i++) {
        const oialr_param_info *pi = &p->info[i];
        if (pi->kind != OIALR_PARAM_MATRIX || !oialr_model_lowrank_capable(t->model, i)) continue;
        oialr_lowrank_layer *l = &c->layers[c->nlayers];
        snprintf(l->name, sizeof l->name, "%s", pi->name);
        l->rows = pi->rows;
        l->cols = pi->cols;
        l->rank = (int)(pi->rows < pi->cols ? pi->rows : pi->cols);
        l->switch_step = -1;
        l->switch_stability = NAN;
        l->eligible = 1;
        c->param[c->nlayers++] = i;
    }
    if (c->nlayers == 0) return oialr_seterr(OIALR_ERR_ARG, "OIALR: the model has no dense or conv weight to train low-rank");
    /* the classifier is the last weight: its output is the logits */
    if (c->o.keep_last) c->layers[c->nlayers - 1].eligible = 0, c->layers[c->nlayers - 1].why = "classifier";
    int first = 1;
    for (int i = 0; i < c->nlayers; i++) {
        oialr_lowrank_layer *l = &c->layers[i];
        if (!l->eligible) continue;
        double lo = (double)(l->rows < l->cols ? l->rows : l->cols), hi = (double)(l->rows < l->cols ? l->cols : l->rows);
        if (first && c->o.keep_first) l->eligible = 0, l->why = "first layer";
        else if (hi / lo >= c->o.max_aspect) l->eligible = 0, l->why = "aspect ratio";
        else if (lo < 2) l->eligible = 0, l->why = "too small";
        first = 0;
        if (l->eligible) c->el[c->nelig++] = i;
    }
    if (c->nelig == 0) {
        char why[512] = "";
        size_t at = 0;
        for (int i = 0; i < c->nlayers && at < sizeof why; i++)
            at += (size_t)snprintf(why + at, sizeof why - at, "%s%s: %s", i ? ", " : "", c->layers[i].name,
                                   c->layers[i].why);
        return oialr_seterr(OIALR_ERR_ARG, "OIALR: no layer of this model is eligible (%s)", why);
    }
    oialr_policy *pol = &c->o.policy;
    if (pol->kind == OIALR_POLICY_AUTO && pol->span == 0) pol->span = 2 * t->steps_per_epoch;
    c->nlag = 1;
    if (pol->kind == OIALR_POLICY_STABILITY && pol->lag > 0) {
        if (pol->lag % c->every)
            return oialr_seterr(OIALR_ERR_ARG, "OIALR: lag=%lld is not a multiple of the check interval %lld",
                                (long long)pol->lag, (long long)c->every);
        c->nlag = (int)(pol->lag / c->every);
    }
    int nf = c->nelig * (c->nlag + 1);
    c->ring = calloc((size_t)nf, sizeof *c->ring);
    c->filled = calloc((size_t)c->nelig, sizeof *c->filled);
    c->s = calloc((size_t)c->nelig, sizeof *c->s);
    c->done = calloc((size_t)c->nelig, sizeof *c->done);
    c->go = calloc((size_t)c->nelig, sizeof *c->go);
    if (!c->ring || !c->filled || !c->s || !c->done || !c->go) return oialr_seterr(OIALR_ERR_NOMEM, "OIALR: out of memory");
    int rc = oialr_policy_state_new(&c->ps, pol, c->nelig);
    for (int e = 0; e < c->nelig && !rc; e++) {
        const oialr_lowrank_layer *l = &c->layers[c->el[e]];
        for (int k = 0; k <= c->nlag && !rc; k++)
            rc = oialr_factor_new(&c->ring[e * (c->nlag + 1) + k], l->rows, l->cols, OIALR_PREC_F32);
    }
    return rc;
}

static int measure(ctl *c, oialr_trainer *t);

static int plan(ctl *c, oialr_trainer *t) {
    if (c->planned) return OIALR_OK;
    c->planned = 1;
    return begin(c, t);
}

static int rc_begin(oialr_trainer *t, void *user) {
    ctl *c = user;
    if (c->began) return oialr_seterr(OIALR_ERR_ARG, "OIALR: controller reused for a second run");
    c->began = 1;
    double t0 = oialr_now();
    int rc = plan(c, t);
    /* the factors at the start, so the first check has a stability (the
     * recorder's snapshot 0 gives a replay the same); a resumed run gets
     * its factors back from the checkpoint (rc_state_load) */
    if (!rc && !t->resumed) rc = measure(c, t);
    c->seconds += oialr_now() - t0;
    return rc;
}

// ----------------------------------------------------------------------------
// the controller's part of a checkpoint (train.h: state_size/save/load)
//
//   header   int64 [4]: magic, nlayers, nelig, nlag
//   layers   per layer: switch_step int64, switch_stability double, rank int64
//   eligible per eligible layer: done, filled (int64), then a region of
//            region_bytes(): while full rank the factors of its last checks,
//            once low-rank its U [rows, rank] and V [cols, rank]
//   policy   policy_state_bytes()
// Σ and the optimizer's moments are in the trainer's own checkpoint.

#define STATE_MAGIC 0x4f49414c52435431LL /* "OIALRCT1" */

static size_t region_bytes(const ctl *c, int e) {
    const oialr_lowrank_layer *l = &c->layers[c->el[e]];
    size_t k = (size_t)(l->rows < l->cols ? l->rows : l->cols);
    size_t uv = (size_t)(l->rows + l->cols) * k * sizeof(float);
    size_t ring = (size_t)(c->nlag + 1) * factor_state_bytes_shape(l->rows, l->cols, OIALR_PREC_F32);
    return uv > ring ? uv : ring;
}

static size_t rc_state_size(oialr_trainer *t, void *user) {
    ctl *c = user;
    if (plan(c, t)) return (size_t)-1;
    size_t n = 4 * sizeof(int64_t) + (size_t)c->nlayers * 3 * sizeof(int64_t);
    for (int e = 0; e < c->nelig; e++) n += 2 * sizeof(int64_t) + region_bytes(c, e);
    return n + policy_state_bytes(c->ps);
}

static unsigned char *put64(unsigned char *p, const void *v) {
    memcpy(p, v, 8);
    return p + 8;
}

static int rc_state_save(oialr_trainer *t, void *user, void *buf, size_t n) {
    ctl *c = user;
    (void)n;
    unsigned char *p = buf;
    int64_t h[4] = {STATE_MAGIC, c->nlayers, c->nelig, c->nlag};
    for (int i = 0; i < 4; i++) p = put64(p, &h[i]);
    for (int i = 0; i < c->nlayers; i++) {
        const oialr_lowrank_layer *l = &c->layers[i];
        int64_t rank = l->rank;
        p = put64(p, &l->switch_step);
        p = put64(p, &l->switch_stability);
        p = put64(p, &rank);
    }
    for (int e = 0; e < c->nelig; e++) {
        int64_t done = c->done[e], filled = c->filled[e];
        p = put64(p, &done);
        p = put64(p, &filled);
        size_t region = region_bytes(c, e);
        unsigned char *q = p;
        if (c->done[e]) {
            const oialr_param_info *pi = &t->params->info[c->param[c->el[e]]];
            memcpy(q, pi->u, (size_t)pi->rows * (size_t)pi->rank * sizeof(float));
            q += (size_t)pi->rows * (size_t)pi->rank * sizeof(float);
            memcpy(q, pi->v, (size_t)pi->cols * (size_t)pi->rank * sizeof(float));
        } else {
            for (int k = 0; k <= c->nlag; k++) {
                factor_state_save(c->ring[e * (c->nlag + 1) + k], q);
                q += factor_state_bytes(c->ring[e * (c->nlag + 1) + k]);
            }
        }
        p += region;
    }
    policy_state_save(c->ps, p);
    return OIALR_OK;
}

static const unsigned char *get64(const unsigned char *p, void *v) {
    memcpy(v, p, 8);
    return p + 8;
}

static int rc_state_load(oialr_trainer *t, void *user, const void *buf, size_t n) {
    ctl *c = user;
    (void)n;
    const unsigned char *p = buf;
    int64_t h[4];
    for (int i = 0; i < 4; i++) p = get64(p, &h[i]);
    if (h[0] != STATE_MAGIC || h[1] != c->nlayers || h[2] != c->nelig || h[3] != c->nlag)
        return oialr_seterr(OIALR_ERR_MISMATCH, "OIALR: the checkpoint's controller state is of another run "
                            "(%lld layers, %lld eligible, lag %lld; this run %d, %d, %d)", (long long)h[1],
                            (long long)h[2], (long long)h[3], c->nlayers, c->nelig, c->nlag);
    /* a damaged or foreign checkpoint is refused before anything changes */
    const unsigned char *chk = p;
    for (int i = 0; i < c->nlayers; i++) {
        const oialr_lowrank_layer *l = &c->layers[i];
        int64_t sw, rank, kmax = l->rows < l->cols ? l->rows : l->cols;
        double st;
        chk = get64(chk, &sw);
        chk = get64(chk, &st);
        chk = get64(chk, &rank);
        if (rank < 1 || rank > kmax || sw < -1 || sw > t->total_steps)
            return oialr_seterr(OIALR_ERR_FORMAT, "OIALR: the checkpoint's controller state is damaged (layer %s: "
                                "rank %lld of %lld, switch step %lld)", l->name, (long long)rank, (long long)kmax,
                                (long long)sw);
    }
    for (int e = 0; e < c->nelig; e++) {
        int64_t done, filled;
        chk = get64(chk, &done);
        chk = get64(chk, &filled);
        if ((done != 0 && done != 1) || filled < 0 || filled > t->total_steps + 1)
            return oialr_seterr(OIALR_ERR_FORMAT, "OIALR: the checkpoint's controller state is damaged (layer %s)",
                                c->layers[c->el[e]].name);
        chk += region_bytes(c, e);
    }
    for (int i = 0; i < c->nlayers; i++) {
        oialr_lowrank_layer *l = &c->layers[i];
        int64_t rank;
        p = get64(p, &l->switch_step);
        p = get64(p, &l->switch_stability);
        p = get64(p, &rank);
        l->rank = (int)rank;
    }
    for (int e = 0; e < c->nelig; e++) {
        int64_t done, filled;
        p = get64(p, &done);
        p = get64(p, &filled);
        c->done[e] = (int)done;
        c->filled[e] = (int)filled;
        const unsigned char *q = p;
        int per = c->nlag + 1;
        if (done) {
            /* low-rank since its switch: U and V here, Σ in the parameters */
            const oialr_lowrank_layer *l = &c->layers[c->el[e]];
            int param = c->param[c->el[e]];
            for (int k = 0; k < per; k++) {
                oialr_factor_free(c->ring[e * per + k]);
                c->ring[e * per + k] = NULL;
            }
            /* every field and region before is a whole number of floats from
             * the 8-aligned start, and oialr_model_lowrank_set copies them */
            const float *u = (const float *)(const void *)q;
            const float *v = u + (size_t)l->rows * (size_t)l->rank;
            const float *sigma = t->params->data + t->params->info[param].offset;
            int rc = oialr_model_lowrank_set(t->model, param, u, sigma, v, l->rank);
            if (rc) return rc;
        } else {
            for (int k = 0; k < per; k++) {
                factor_state_load(c->ring[e * per + k], q);
                q += factor_state_bytes(c->ring[e * per + k]);
            }
        }
        p += region_bytes(c, e);
    }
    policy_state_load(c->ps, p);
    return OIALR_OK;
}

/* Step 1: rotate and truncate every layer that is low-rank. */
static int rotate_all(ctl *c, oialr_trainer *t, int64_t step) {
    for (int e = 0; e < c->nelig; e++) {
        if (!c->done[e]) continue;
        oialr_lowrank_layer *l = &c->layers[c->el[e]];
        int before, after;
        int rc = lr_rotate(t->model, &t->optim, c->param[c->el[e]], c->o.beta, c->o.moments, &c->w, &before, &after);
        if (!rc) rc = record_event(c, step, l, OIALR_EVENT_ROTATE, NAN, before, before);
        if (!rc && after < before) rc = record_event(c, step, l, OIALR_EVENT_TRUNCATE, NAN, before, after);
        if (rc) return rc;
        l->rank = after;
    }
    return OIALR_OK;
}

/* Step 2: the stability of every full-rank eligible layer. The layers are
 * factored side by side, one per thread with single-threaded LAPACK
 * (nn_parallel), as the analyzer does: gesdd on these sizes is bound by
 * its matrix-vector half and gains little from a second BLAS thread, while
 * two layers at once use both cores (docs/lowrank.md, "Cost of a check"). */
typedef struct measure_job {
    ctl *c;
    const oialr_params *p;
    int rc[NN_MAX_THREADS];
    char msg[NN_MAX_THREADS][1024]; /* oialr_errmsg()'s size */
} measure_job;

static void measure_task(void *ctx, int t, int nt) {
    measure_job *j = ctx;
    ctl *c = j->c;
    int rc = OIALR_OK;
    /* the k-th layer still full rank goes to thread k % nt: the layers are
     * in graph order, so neighbours of similar size land on different threads */
    for (int e = 0, k = 0; e < c->nelig && !rc; e++) {
        if (c->done[e] || k++ % nt != t) continue;
        int per = c->nlag + 1;
        if (!c->ws[t]) {
            if ((rc = oialr_svd_ws_new(&c->ws[t], OIALR_PREC_F32))) break;
            /* float64-accurate at about float32 gesdd's cost, as the
             * analyzer's default (docs/metrics.md "Precision"); the factors
             * stay float32, so the checkpoint's layout does not change */
            svd_ws_set_gram(c->ws[t], 1);
        }
        oialr_factor *cur = c->ring[e * per + c->filled[e] % per];
        rc = oialr_factor_compute(cur, c->ws[t], j->p->data + j->p->info[c->param[c->el[e]]].offset);
        if (!rc && c->filled[e] >= c->nlag) {
            const oialr_factor *old = c->ring[e * per + (c->filled[e] - c->nlag) % per];
            rc = oialr_stability(old, cur, &c->s[e]);
        }
        if (!rc) c->filled[e]++;
    }
    j->rc[t] = rc;
    if (rc) snprintf(j->msg[t], sizeof j->msg[t], "%s", oialr_errmsg()); /* messages are per thread */
}

static int measure(ctl *c, oialr_trainer *t) {
    measure_job j = {.c = c, .p = t->params};
    int left = 0;
    for (int e = 0; e < c->nelig; e++) {
        c->s[e] = NAN;
        left += !c->done[e];
    }
    int nt = nn_threads() < left ? nn_threads() : left;
    if (nt > 0) nn_parallel(measure_task, &j, nt);
    for (int k = 0; k < nt; k++)
        if (j.rc[k]) return oialr_seterr(j.rc[k], "%s", j.msg[k]);
    return OIALR_OK;
}

/* Step 3: switch the layers the policy names. */
static int switch_named(ctl *c, oialr_trainer *t, int64_t step) {
    if (oialr_policy_check(c->ps, step, c->o.min_steps, t->metrics.lr, c->s, c->done, c->go) == 0) return OIALR_OK;
    /* the SVD workspace is for full-size W and the switch brings its own:
     * release it first (measure() makes it again if layers remain) */
    free_ws(c);
    for (int e = 0; e < c->nelig; e++) {
        if (!c->go[e]) continue;
        oialr_lowrank_layer *l = &c->layers[c->el[e]];
        /* its factors are not needed any more: free them before the switch
         * allocates, so the two never add up (peak RSS) */
        int per = c->nlag + 1;
        for (int k = 0; k < per; k++) {
            oialr_factor_free(c->ring[e * per + k]);
            c->ring[e * per + k] = NULL;
        }
        int full = l->rank, r;
        int rc = lr_switch(t->model, &t->optim, c->param[c->el[e]], c->o.beta, c->o.moments, &c->w, &r);
        if (!rc) rc = record_event(c, step, l, OIALR_EVENT_SWITCH, c->s[e], full, r);
        if (rc) return rc;
        c->done[e] = 1;
        l->rank = r;
        l->switch_step = step;
        l->switch_stability = c->s[e];
        if (isnan(c->s[e]))
            oialr_log(OIALR_LOG_INFO, "step %lld: %s switched to low rank %d of %d", (long long)step, l->name, r,
                      full);
        else
            oialr_log(OIALR_LOG_INFO, "step %lld: %s switched to low rank %d of %d (stability %.4f)",
                      (long long)step, l->name, r, full, c->s[e]);
    }
    /* the switch's workspace is sized for a full W; rotations need r x r */
    lr_work_free(&c->w);
    return OIALR_OK;
}

static int rc_step_end(oialr_trainer *t, void *user) {
    ctl *c = user;
    int64_t step = t->metrics.step;
    if (step % c->every != 0) return OIALR_OK;
    double t0 = oialr_now();
    int rc = rotate_all(c, t, step);
    if (!rc) rc = measure(c, t);
    if (!rc) rc = switch_named(c, t, step);
    c->seconds += oialr_now() - t0;
    return rc;
}

int oialr_lowrank_hook_init(oialr_hook *hook, const oialr_lowrank_options *opt) {
    OIALR_ASSERT(hook && opt);
    memset(hook, 0, sizeof *hook);
    if (opt->policy.kind == OIALR_POLICY_NONE) return oialr_seterr(OIALR_ERR_ARG, "OIALR: no switch policy");
    if (!(opt->beta >= 0.0 && opt->beta < 1.0))
        return oialr_seterr(OIALR_ERR_ARG, "OIALR: --beta %g is not in [0, 1)", opt->beta);
    if (opt->every < 0 || opt->min_steps < 0)
        return oialr_seterr(OIALR_ERR_ARG, "OIALR: negative check interval or warm-up");
    if (!(opt->max_aspect > 1.0)) return oialr_seterr(OIALR_ERR_ARG, "OIALR: max aspect ratio must be > 1");
    ctl *c = calloc(1, sizeof *c);
    if (!c) return oialr_seterr(OIALR_ERR_NOMEM, "OIALR: out of memory");
    c->o = *opt;
    hook->name = "oialr";
    hook->user = c;
    hook->run_begin = rc_begin;
    hook->step_end = rc_step_end;
    hook->state_size = rc_state_size;
    hook->state_save = rc_state_save;
    hook->state_load = rc_state_load;
    return OIALR_OK;
}

static ctl *of_hook(const oialr_hook *hook) {
    return hook && hook->run_begin == rc_begin ? hook->user : NULL;
}

void oialr_lowrank_hook_free(oialr_hook *hook) {
    ctl *c = of_hook(hook);
    if (!c) return;
    ctl_free(c);
    memset(hook, 0, sizeof *hook);
}

int oialr_lowrank_nlayers(const oialr_hook *hook) {
    ctl *c = of_hook(hook);
    return c ? c->nlayers : 0;
}

const oialr_lowrank_layer *oialr_lowrank_layer_at(const oialr_hook *hook, int i) {
    ctl *c = of_hook(hook);
    return c && i >= 0 && i < c->nlayers ? &c->layers[i] : NULL;
}

double oialr_lowrank_seconds(const oialr_hook *hook) {
    ctl *c = of_hook(hook);
    return c ? c->seconds : 0.0;
}

int oialr_lowrank_is_hook(const oialr_hook *hook) { return of_hook(hook) != NULL; }
