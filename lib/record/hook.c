/*
 * hook.c — the recorder hook: the built-in trainer's weights, metrics and
 * checkpoint into an HDF5 trajectory (see oialr/record.h for the schedule).
 */
#include "oialr/record.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct recorder {
    oialr_traj *traj;
    char *path, *layers;
    int64_t every;
    int every_epoch, checkpoint;
    int *index;      /* trajectory layer -> parameter index */
    int nsel;
    int64_t last_snap; /* step of the last snapshot (-1: none) */
    int has_m, has_v;
    size_t total;
    int64_t loader_n;
    char **ckeys, **cvals;
    int nconfig;
    uint64_t bytes;
    double seconds;
    int64_t snapshots;
} recorder;

static char *dupstr(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void oialr_record_options_default(oialr_record_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->every = 50;
    opt->checkpoint = 1;
}

static void recorder_free(recorder *r) {
    if (!r) return;
    oialr_traj_close(r->traj);
    for (int i = 0; i < r->nconfig; i++) {
        free(r->ckeys[i]);
        free(r->cvals[i]);
    }
    free(r->ckeys);
    free(r->cvals);
    free(r->index);
    free(r->path);
    free(r->layers);
    free(r);
}

// ----------------------------------------------------------------------------
// what one snapshot / metrics row / checkpoint writes

static int snapshot(recorder *r, oialr_trainer *t) {
    int64_t step = t->metrics.step;
    if (step == r->last_snap) return OIALR_OK;
    const oialr_params *p = t->params;
    for (int i = 0; i < r->nsel; i++) {
        const oialr_param_info *pi = &p->info[r->index[i]];
        int rc = oialr_traj_append(r->traj, i, step, p->data + pi->offset, 0);
        if (rc) return rc;
        r->bytes += (uint64_t)pi->size * sizeof(float);
    }
    r->last_snap = step;
    r->snapshots++;
    return OIALR_OK;
}

static int metrics_row(recorder *r, oialr_trainer *t) {
    const oialr_train_metrics *m = &t->metrics;
    double epoch = t->steps_per_epoch > 0 ? (double)m->step / (double)t->steps_per_epoch : (double)m->epoch;
    /* OIALR_TRAJ_METRICS_DEFAULT order */
    double v[10] = {epoch,          (double)m->loss,     (double)m->train_acc, (double)m->val_loss,
                    (double)m->val_acc, (double)m->test_loss, (double)m->test_acc,  (double)m->lr,
                    (double)m->trainable_fraction, m->seconds};
    return oialr_traj_append_metrics(r->traj, m->step, v, 10);
}

static int write_checkpoint(recorder *r, oialr_trainer *t) {
    oialr_traj *tr = r->traj;
    int rc;
    oialr_rng *mr = oialr_model_rng(t->model);
    if ((rc = oialr_traj_ckpt_start(tr))) return rc;
    if ((rc = oialr_traj_ckpt_put_array(tr, "params", t->params->data, r->total))) return rc;
    if (r->has_m && (rc = oialr_traj_ckpt_put_array(tr, "optim_m", t->optim.m, r->total))) return rc;
    if (r->has_v && (rc = oialr_traj_ckpt_put_array(tr, "optim_v", t->optim.v, r->total))) return rc;
    if ((rc = oialr_traj_ckpt_put_i64(tr, "optim_t", t->optim.t))) return rc;
    if ((rc = oialr_traj_ckpt_put_i64(tr, "step", t->metrics.step))) return rc;
    if ((rc = oialr_traj_ckpt_put_i64(tr, "epochs_done", (int64_t)t->metrics.epoch + 1))) return rc;
    if ((rc = oialr_traj_ckpt_put_i64(tr, "seconds_us", (int64_t)llround(t->metrics.seconds * 1e6)))) return rc;
    if ((rc = oialr_traj_ckpt_put_u64(tr, "model_rng_state", mr ? mr->state : 0))) return rc;
    if ((rc = oialr_traj_ckpt_put_u64(tr, "model_rng_inc", mr ? mr->inc : 0))) return rc;
    if ((rc = oialr_traj_ckpt_put_u64(tr, "loader_rng_state", t->train->rng.state))) return rc;
    if ((rc = oialr_traj_ckpt_put_u64(tr, "loader_rng_inc", t->train->rng.inc))) return rc;
    if ((rc = oialr_traj_ckpt_put_i64(tr, "loader_cursor", t->train->cursor))) return rc;
    if ((rc = oialr_traj_ckpt_put_array_i64(tr, "loader_order", t->train->idx, (size_t)r->loader_n))) return rc;
    return oialr_traj_ckpt_commit(tr);
}

// ----------------------------------------------------------------------------
// callbacks

static int config_put(recorder *r, const char *key, const char *fmt, ...) OIALR_PRINTF(3, 4);
static int config_put(recorder *r, const char *key, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return oialr_traj_set_config(r->traj, key, buf);
}

static int declare_all(recorder *r, oialr_trainer *t) {
    const oialr_params *p = t->params;
    int rc;
    r->index = malloc((size_t)(p->count ? p->count : 1) * sizeof *r->index);
    if (!r->index) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", r->path);
    for (int i = 0; i < p->count; i++) {
        const oialr_param_info *pi = &p->info[i];
        if (pi->kind != OIALR_PARAM_MATRIX) continue;
        if (r->layers && r->layers[0] && !oialr_glob_match(r->layers, pi->name)) continue;
        int idx;
        rc = oialr_traj_declare_layer(r->traj, pi->name, pi->rows, pi->cols, pi->layer, pi->ndim, pi->shape, &idx);
        if (rc) return rc;
        r->index[idx] = i;
        r->nsel = idx + 1;
    }
    if (r->nsel == 0) {
        char names[256] = "";
        size_t len = 0;
        for (int i = 0; i < p->count && len < sizeof names - 1; i++)
            if (p->info[i].kind == OIALR_PARAM_MATRIX)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", p->info[i].name);
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no weight matrix matches --record-layers '%s' (matrices: %s)",
                            r->path, r->layers ? r->layers : "", names[0] ? names : "none");
    }
    /* configuration */
    const oialr_train_config *c = &t->cfg;
    static const char *const opt_names[] = {"sgd", "adamw"};
    static const char *const sched_names[] = {"constant", "step", "cosine"};
    if ((rc = config_put(r, "model", "%s", oialr_model_spec(t->model)))) return rc;
    if ((rc = config_put(r, "epochs", "%d", c->epochs))) return rc;
    if ((rc = config_put(r, "batch", "%d", c->batch))) return rc;
    if ((rc = config_put(r, "max_steps", "%lld", (long long)c->max_steps))) return rc;
    if ((rc = config_put(r, "seed", "%llu", (unsigned long long)c->seed))) return rc;
    if ((rc = config_put(r, "label_smoothing", "%g", (double)c->label_smoothing))) return rc;
    if ((rc = config_put(r, "optimizer", "%s", c->optim.kind >= 0 && c->optim.kind < 2 ? opt_names[c->optim.kind] : "?")))
        return rc;
    if ((rc = config_put(r, "lr", "%g", (double)c->optim.lr))) return rc;
    if ((rc = config_put(r, "momentum", "%g", (double)c->optim.momentum))) return rc;
    if ((rc = config_put(r, "nesterov", "%d", c->optim.nesterov))) return rc;
    if ((rc = config_put(r, "betas", "%g,%g", (double)c->optim.beta1, (double)c->optim.beta2))) return rc;
    if ((rc = config_put(r, "weight_decay", "%g", (double)c->optim.weight_decay))) return rc;
    if ((rc = config_put(r, "schedule", "%s",
                         c->schedule.kind >= 0 && c->schedule.kind < 3 ? sched_names[c->schedule.kind] : "?")))
        return rc;
    if ((rc = config_put(r, "warmup", "%lld", (long long)c->schedule.warmup))) return rc;
    if ((rc = config_put(r, "steps_per_epoch", "%lld", (long long)t->steps_per_epoch))) return rc;
    if ((rc = config_put(r, "total_steps", "%lld", (long long)t->total_steps))) return rc;
    if ((rc = config_put(r, "record_every", "%lld", (long long)r->every))) return rc;
    if ((rc = config_put(r, "record_layers", "%s", r->layers ? r->layers : "*"))) return rc;
    for (int i = 0; i < r->nconfig; i++)
        if ((rc = oialr_traj_set_config(r->traj, r->ckeys[i], r->cvals[i]))) return rc;
    if ((rc = oialr_traj_declare_metrics(r->traj, OIALR_TRAJ_METRICS_DEFAULT))) return rc;
    /* checkpoint items */
    if (r->checkpoint) {
        oialr_traj *tr = r->traj;
        r->total = p->total;
        r->has_m = t->optim.m != NULL;
        r->has_v = t->optim.v != NULL;
        r->loader_n = t->train->n;
        if ((rc = oialr_traj_declare_ckpt_array(tr, "params", r->total))) return rc;
        if (r->has_m && (rc = oialr_traj_declare_ckpt_array(tr, "optim_m", r->total))) return rc;
        if (r->has_v && (rc = oialr_traj_declare_ckpt_array(tr, "optim_v", r->total))) return rc;
        static const char *const i64s[] = {"optim_t", "step", "epochs_done", "seconds_us", "loader_cursor"};
        static const char *const u64s[] = {"model_rng_state", "model_rng_inc", "loader_rng_state", "loader_rng_inc"};
        for (size_t i = 0; i < sizeof i64s / sizeof *i64s; i++)
            if ((rc = oialr_traj_declare_ckpt_scalar(tr, i64s[i], 0))) return rc;
        for (size_t i = 0; i < sizeof u64s / sizeof *u64s; i++)
            if ((rc = oialr_traj_declare_ckpt_scalar(tr, u64s[i], 1))) return rc;
        if (r->loader_n > 0 && (rc = oialr_traj_declare_ckpt_array_i64(tr, "loader_order", (size_t)r->loader_n)))
            return rc;
        if (r->loader_n <= 0) r->checkpoint = 0;
    }
    return oialr_traj_begin(r->traj);
}

#define TIMED(r, expr)                                                                                       \
    do {                                                                                                     \
        double t0_ = oialr_now();                                                                            \
        int rc_ = (expr);                                                                                    \
        (r)->seconds += oialr_now() - t0_;                                                                   \
        return rc_;                                                                                          \
    } while (0)

static int do_run_begin(recorder *r, oialr_trainer *t) {
    if (!r->traj) return oialr_seterr(OIALR_ERR_ARG, "%s: recorder already closed (hook reused?)", r->path);
    int rc = declare_all(r, t);
    if (!rc) rc = snapshot(r, t);
    if (!rc) rc = metrics_row(r, t);
    return rc;
}

static int rec_run_begin(oialr_trainer *t, void *user) { TIMED((recorder *)user, do_run_begin(user, t)); }

static int do_step_end(recorder *r, oialr_trainer *t) {
    if (r->every <= 0 || t->metrics.step % r->every != 0) return OIALR_OK;
    int rc = snapshot(r, t);
    if (!rc) rc = metrics_row(r, t);
    return rc;
}

static int rec_step_end(oialr_trainer *t, void *user) {
    recorder *r = user;
    if (r->every <= 0 || t->metrics.step % r->every != 0) return OIALR_OK;
    TIMED(r, do_step_end(r, t));
}

static int rec_eval_end(oialr_trainer *t, void *user) { TIMED((recorder *)user, metrics_row(user, t)); }

static int do_epoch_end(recorder *r, oialr_trainer *t) {
    int rc = OIALR_OK;
    if (r->every_epoch) rc = snapshot(r, t);
    if (!rc && r->checkpoint) rc = write_checkpoint(r, t);
    return rc;
}

static int rec_epoch_end(oialr_trainer *t, void *user) { TIMED((recorder *)user, do_epoch_end(user, t)); }

static int do_run_end(recorder *r, oialr_trainer *t) {
    if (!r->traj) return OIALR_OK;
    int rc = OIALR_OK;
    /* the final state, even after an error or a stop: it is what the run did */
    if (r->nsel > 0) rc = snapshot(r, t);
    if (rc) oialr_log(OIALR_LOG_ERROR, "%s", oialr_errmsg());
    int crc = oialr_traj_close(r->traj);
    r->traj = NULL;
    /* nothing recorded (the run failed before its first snapshot): leave no
     * half-made file behind that a rerun would need --force for */
    if (r->snapshots == 0) unlink(r->path);
    return rc ? rc : crc;
}

static int rec_run_end(oialr_trainer *t, void *user) { TIMED((recorder *)user, do_run_end(user, t)); }

// ----------------------------------------------------------------------------
// public

int oialr_record_hook_init(oialr_hook *hook, const oialr_record_options *opt) {
    OIALR_ASSERT(hook && opt);
    memset(hook, 0, sizeof *hook);
    if (!opt->path || !opt->path[0]) return oialr_seterr(OIALR_ERR_ARG, "recorder: no output path");
    if (opt->every < 0)
        return oialr_seterr(OIALR_ERR_ARG, "%s: --every must be >= 0 (got %lld)", opt->path, (long long)opt->every);
    if (opt->nconfig < 0 || (opt->nconfig > 0 && (!opt->config_keys || !opt->config_values)))
        return oialr_seterr(OIALR_ERR_ARG, "%s: bad config key/value lists", opt->path);
    recorder *r = calloc(1, sizeof *r);
    if (!r) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", opt->path);
    r->path = dupstr(opt->path);
    r->layers = dupstr(opt->layers);
    r->every = opt->every;
    r->every_epoch = opt->every_epoch;
    r->checkpoint = opt->checkpoint;
    r->last_snap = -1;
    if (!r->path || (opt->layers && !r->layers)) goto oom;
    if (opt->nconfig > 0) {
        r->ckeys = calloc((size_t)opt->nconfig, sizeof *r->ckeys);
        r->cvals = calloc((size_t)opt->nconfig, sizeof *r->cvals);
        if (!r->ckeys || !r->cvals) goto oom;
        for (int i = 0; i < opt->nconfig; i++) {
            r->nconfig = i + 1;
            r->ckeys[i] = dupstr(opt->config_keys[i]);
            r->cvals[i] = dupstr(opt->config_values[i] ? opt->config_values[i] : "");
            if (!r->ckeys[i] || !r->cvals[i]) goto oom;
        }
    }
    oialr_traj_options to;
    oialr_traj_options_default(&to);
    to.force = opt->force;
    to.compress = opt->compress;
    to.seed = opt->seed;
    to.command_line = opt->command_line;
    int rc = oialr_traj_create(&r->traj, opt->path, &to);
    if (rc) {
        recorder_free(r);
        return rc;
    }
    hook->name = "record";
    hook->user = r;
    hook->run_begin = rec_run_begin;
    hook->step_end = rec_step_end;
    hook->eval_end = rec_eval_end;
    hook->epoch_end = rec_epoch_end;
    hook->run_end = rec_run_end;
    return OIALR_OK;
oom:
    recorder_free(r);
    return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", opt->path);
}

void oialr_record_hook_free(oialr_hook *hook) {
    if (!hook || hook->run_begin != rec_run_begin) return;
    recorder_free(hook->user);
    memset(hook, 0, sizeof *hook);
}

oialr_traj *oialr_record_trajectory(const oialr_hook *hook) {
    if (!hook || hook->run_begin != rec_run_begin || !hook->user) return NULL;
    return ((recorder *)hook->user)->traj;
}

void oialr_record_stats(const oialr_hook *hook, uint64_t *bytes, double *seconds, int64_t *snapshots) {
    const recorder *r = hook && hook->run_begin == rec_run_begin ? hook->user : NULL;
    if (bytes) *bytes = r ? r->bytes : 0;
    if (seconds) *seconds = r ? r->seconds : 0.0;
    if (snapshots) *snapshots = r ? r->snapshots : 0;
}
