/*
 * train.c — the built-in training loop with hooks (see oialr/train.h).
 *
 *   for epoch: for batch: loader_next, forward, backward, optim_step
 *
 * Deterministic for a seed: data order, dropout and initialisation come
 * from seeded generators; with one BLAS thread the weights are bit-identical
 * between runs.
 */
#include "oialr/train.h"
#include "base/hot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void oialr_train_defaults(oialr_train_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 10;
    cfg->batch = 128;
    cfg->seed = 0;
    oialr_optim_defaults(&cfg->optim, OIALR_OPT_SGD);
    cfg->schedule.kind = OIALR_SCHED_CONSTANT;
    cfg->schedule.gamma = 0.1f;
}

int oialr_trainer_init(oialr_trainer *t, const oialr_train_config *cfg, oialr_model *model, oialr_loader *train,
                       oialr_loader *val, oialr_loader *test) {
    memset(t, 0, sizeof *t);
    if (cfg->batch <= 0 || cfg->epochs <= 0) return oialr_seterr(OIALR_ERR_ARG, "epochs and batch must be > 0");
    const oialr_train_dist *d = &cfg->dist;
    if (d->size > 1 && (!d->allreduce || d->rank < 0 || d->rank >= d->size))
        return oialr_seterr(OIALR_ERR_ARG, "data-parallel: rank %d of %d, or no allreduce", d->rank, d->size);
    if (d->size > cfg->batch)
        return oialr_seterr(OIALR_ERR_ARG, "the global batch (%d) must be at least the number of processes (%d)",
                            cfg->batch, d->size);
    if (!train || train->n == 0) return oialr_seterr(OIALR_ERR_ARG, "empty training set");
    t->cfg = *cfg;
    t->model = model;
    t->params = oialr_model_params(model);
    t->train = train;
    t->val = val && val->n > 0 ? val : NULL;
    t->test = test && test->n > 0 ? test : NULL;
    t->steps_per_epoch = (train->n + cfg->batch - 1) / cfg->batch;
    t->total_steps = t->steps_per_epoch * cfg->epochs;
    if (cfg->max_steps > 0 && cfg->max_steps < t->total_steps) t->total_steps = cfg->max_steps;
    if (t->cfg.schedule.base_lr == 0.0f) t->cfg.schedule.base_lr = cfg->optim.lr;
    if (t->cfg.schedule.total == 0) t->cfg.schedule.total = t->total_steps;
    const oialr_dataset *ds = train->ds;
    size_t per = (size_t)ds->c * ds->h * ds->w;
    t->xbuf = malloc((size_t)cfg->batch * per * sizeof(float));
    t->ybuf = malloc((size_t)cfg->batch);
    if (!t->xbuf || !t->ybuf) {
        oialr_trainer_free(t);
        return OIALR_ERR_NOMEM;
    }
    int rc = oialr_optim_init(&t->optim, &cfg->optim, t->params);
    if (rc) {
        oialr_trainer_free(t);
        return rc;
    }
    oialr_model_set_label_smoothing(model, cfg->label_smoothing);
    t->metrics.val_loss = t->metrics.val_acc = NAN;
    t->metrics.test_loss = t->metrics.test_acc = NAN;
    t->metrics.train_acc = t->metrics.loss = NAN;
    t->metrics.trainable_fraction = 1.0f;
    return OIALR_OK;
}

void oialr_trainer_free(oialr_trainer *t) {
    oialr_optim_free(&t->optim);
    for (int h = 0; h < OIALR_MAX_HOOKS; h++) {
        free(t->hook_state[h]);
        t->hook_state[h] = NULL;
    }
    free(t->xbuf);
    free(t->ybuf);
    free(t->dist_buf);
    t->xbuf = NULL;
    t->ybuf = NULL;
    t->dist_buf = NULL;
}

void oialr_trainer_get_state(const oialr_trainer *t, oialr_train_state *s) {
    memset(s, 0, sizeof *s);
    s->params = t->params->data;
    s->n = t->params->total;
    s->optim_m = t->optim.m;
    s->optim_v = t->optim.v;
    s->optim_t = t->optim.t;
    s->step = t->metrics.step;
    s->at_epoch_end = t->at_epoch_end;
    s->epochs_done = (int64_t)t->metrics.epoch + (t->at_epoch_end ? 1 : 0);
    s->seconds = t->metrics.seconds;
    s->loader_order = t->train->idx;
    s->loader_n = t->train->n;
    s->loader_cursor = t->train->cursor;
    s->loader_rng = t->train->rng;
    const oialr_rng *mr = oialr_model_rng(t->model);
    if (mr) s->model_rng = *mr;
    s->epoch_seen = t->epoch_seen;
    s->epoch_correct = t->epoch_correct;
    const oialr_train_metrics *m = &t->metrics;
    s->loss = m->loss;
    s->lr = m->lr;
    s->val_loss = m->val_loss;
    s->val_acc = m->val_acc;
    s->test_loss = m->test_loss;
    s->test_acc = m->test_acc;
}

int oialr_trainer_resume(oialr_trainer *t, const oialr_train_state *s, const void *const *hook_state,
                         const size_t *hook_state_n) {
    if (s->n != t->params->total)
        return oialr_seterr(OIALR_ERR_MISMATCH, "resume: the checkpoint has %zu parameters, the model %zu", s->n,
                            t->params->total);
    if (s->loader_n != t->train->n)
        return oialr_seterr(OIALR_ERR_MISMATCH, "resume: the checkpoint's data order has %lld samples, the training set %lld",
                            (long long)s->loader_n, (long long)t->train->n);
    if ((s->optim_m != NULL) != (t->optim.m != NULL) || (s->optim_v != NULL) != (t->optim.v != NULL))
        return oialr_seterr(OIALR_ERR_MISMATCH, "resume: the checkpoint's optimizer keeps other moments");
    if (s->step < 0 || s->step > t->total_steps || s->epochs_done < 0 || s->epochs_done > t->cfg.epochs ||
        s->loader_cursor < 0 || s->loader_cursor > s->loader_n)
        return oialr_seterr(OIALR_ERR_MISMATCH, "resume: the checkpoint's step %lld / epoch %lld do not fit this run",
                            (long long)s->step, (long long)s->epochs_done);
    for (int64_t i = 0; i < s->loader_n; i++)
        if (s->loader_order[i] < 0 || s->loader_order[i] >= t->train->ds->n)
            return oialr_seterr(OIALR_ERR_MISMATCH, "resume: the checkpoint's data order names sample %lld of %lld",
                                (long long)s->loader_order[i], (long long)t->train->ds->n);
    memcpy(t->params->data, s->params, s->n * sizeof *s->params);
    if (s->optim_m) memcpy(t->optim.m, s->optim_m, s->n * sizeof *s->optim_m);
    if (s->optim_v) memcpy(t->optim.v, s->optim_v, s->n * sizeof *s->optim_v);
    t->optim.t = s->optim_t;
    memcpy(t->train->idx, s->loader_order, (size_t)s->loader_n * sizeof *s->loader_order);
    t->train->cursor = s->loader_cursor;
    t->train->rng = s->loader_rng;
    oialr_rng *mr = oialr_model_rng(t->model);
    if (mr) *mr = s->model_rng;
    oialr_train_metrics *m = &t->metrics;
    m->step = s->step;
    m->seconds = s->seconds;
    m->loss = s->loss;
    m->lr = s->lr;
    m->val_loss = s->val_loss;
    m->val_acc = s->val_acc;
    m->test_loss = s->test_loss;
    m->test_acc = s->test_acc;
    t->epoch_seen = s->epoch_seen;
    t->epoch_correct = s->epoch_correct;
    m->train_acc = s->epoch_seen ? (float)s->epoch_correct / (float)s->epoch_seen : NAN;
    /* an epoch-end state continues with the next epoch's shuffle */
    t->resume_in_epoch = !s->at_epoch_end;
    m->epoch = (int)s->epochs_done;
    t->resumed = 1;
    for (int h = 0; h < OIALR_MAX_HOOKS; h++) {
        free(t->hook_state[h]);
        t->hook_state[h] = NULL;
        t->hook_state_n[h] = 0;
        if (!hook_state || !hook_state[h] || !hook_state_n) continue;
        if (!(t->hook_state[h] = malloc(hook_state_n[h] ? hook_state_n[h] : 1)))
            return oialr_seterr(OIALR_ERR_NOMEM, "resume: out of memory for the state of hook %d", h);
        memcpy(t->hook_state[h], hook_state[h], hook_state_n[h]);
        t->hook_state_n[h] = hook_state_n[h];
    }
    return OIALR_OK;
}

int oialr_trainer_add_hook(oialr_trainer *t, const oialr_hook *hook) {
    if (t->nhooks == OIALR_MAX_HOOKS) return oialr_seterr(OIALR_ERR_ARG, "too many hooks");
    t->hooks[t->nhooks++] = *hook;
    return OIALR_OK;
}

#define CALL_HOOKS(t, cb)                                                                                    \
    do {                                                                                                     \
        for (int h_ = 0; h_ < (t)->nhooks; h_++) {                                                           \
            if ((t)->hooks[h_].cb) {                                                                         \
                int r_ = (t)->hooks[h_].cb((t), (t)->hooks[h_].user);                                        \
                if (r_) return r_;                                                                           \
            }                                                                                                \
        }                                                                                                    \
    } while (0)

int oialr_evaluate(oialr_model *m, oialr_loader *l, float *xbuf, int batch, float *loss, float *acc) {
    uint8_t ybuf[1024];
    if (batch > 1024) batch = 1024;
    int64_t save_cursor = l->cursor;
    l->cursor = 0;
    double total = 0.0;
    int64_t correct = 0, seen = 0;
    int got, rc = OIALR_OK;
    while ((got = oialr_loader_next(l, xbuf, ybuf, batch)) > 0) {
        float bl;
        int bc;
        rc = oialr_model_forward(m, xbuf, ybuf, got, 0, &bl, &bc);
        if (rc) break;
        total += (double)bl * got;
        correct += bc;
        seen += got;
    }
    l->cursor = save_cursor;
    if (rc) return rc;
    *loss = seen ? (float)(total / seen) : NAN;
    *acc = seen ? (float)correct / (float)seen : NAN;
    return OIALR_OK;
}

static float trainable_fraction(const oialr_trainer *t, size_t full) {
    return full ? (float)oialr_params_trainable(t->params) / (float)full : 1.0f;
}

/* Resuming: each hook with a state gets back what it saved. */
static int load_hook_states(oialr_trainer *t) {
    for (int h = 0; h < t->nhooks; h++) {
        const oialr_hook *k = &t->hooks[h];
        if (!k->state_load || !k->state_size) continue;
        size_t want = k->state_size(t, k->user);
        if (want == 0) continue;
        if (!t->hook_state[h])
            return oialr_seterr(OIALR_ERR_MISMATCH, "resume: the checkpoint holds no state of hook '%s'",
                                k->name ? k->name : "?");
        if (t->hook_state_n[h] != want)
            return oialr_seterr(OIALR_ERR_MISMATCH, "resume: hook '%s' keeps %zu bytes of state, the checkpoint %zu",
                                k->name ? k->name : "?", want, t->hook_state_n[h]);
        int rc = k->state_load(t, k->user, t->hook_state[h], want);
        if (rc) return rc;
    }
    return OIALR_OK;
}

// ----------------------------------------------------------------------------
// divergence: a NaN or Inf in a gradient or a weight stops the run

/* 1 if one of x[0..n) is NaN or Inf (exponent bits all ones). The largest
 * magnitude's bits are an integer max, which gcc vectorises at -O2, where a
 * float sum would need -ffast-math's reassociation; and no finite value
 * can make it overflow into a false alarm. */
OIALR_HOT static int any_nonfinite(const float *x, size_t n) {
    uint32_t most = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        u &= 0x7fffffffu;
        most = u > most ? u : most;
    }
    return most >= 0x7f800000u;
}

/* After the backward (grads: the trainable parameters' gradients) or the
 * update (every parameter's value): OIALR_OK, or OIALR_ERR_DIVERGED naming
 * the step, the epoch and the first parameter holding a NaN or Inf. */
static int check_finite(const oialr_trainer *t, int grads) {
    const oialr_params *p = t->params;
    for (int i = 0; i < p->count; i++) {
        const oialr_param_info *pi = &p->info[i];
        if (grads && (!pi->trainable || pi->kind == OIALR_PARAM_BUFFER)) continue;
        const float *x = (grads ? p->grad : p->data) + pi->offset;
        if (!any_nonfinite(x, pi->size)) continue;
        size_t bad = 0, first = 0;
        for (size_t k = pi->size; k-- > 0;)
            if (!isfinite(x[k])) bad++, first = k;
        return oialr_seterr(OIALR_ERR_DIVERGED,
                            "training diverged at step %lld (epoch %d): %s%s holds %zu NaN/Inf value%s%s "
                            "(%g at index %zu); lower the learning rate",
                            (long long)t->metrics.step, t->metrics.epoch + 1, grads ? "the gradient of " : "",
                            pi->name, bad, bad == 1 ? "" : "s", grads ? "" : " after the update", (double)x[first],
                            first);
    }
    return OIALR_OK;
}

// ----------------------------------------------------------------------------
// data-parallel: shards of each global batch, one packed all-reduce per step

static int dist_on(const oialr_trainer *t) { return t->cfg.dist.size > 1; }

/* The floats of one step's all-reduce: the trainable gradients, the buffers
 * and DIST_TAIL scalars. */
enum { DIST_LOSS, DIST_CORRECT, DIST_STOP, DIST_TAIL };

static size_t dist_count(const oialr_params *p) {
    size_t n = DIST_TAIL;
    for (int i = 0; i < p->count; i++)
        if (p->info[i].trainable || p->info[i].kind == OIALR_PARAM_BUFFER) n += p->info[i].size;
    return n;
}

static int dist_reserve(oialr_trainer *t, size_t n) {
    if (n <= t->dist_cap) return OIALR_OK;
    float *b = realloc(t->dist_buf, n * sizeof *b);
    if (!b) return oialr_seterr(OIALR_ERR_NOMEM, "data-parallel: out of memory for the all-reduce buffer");
    t->dist_buf = b;
    t->dist_cap = n;
    return OIALR_OK;
}

/* Pack (dir 1: buffer <- parameters, times w) or unpack (dir 0) the
 * trainable gradients and the buffers' values, in parameter order; the
 * number of floats. have 0: this process has no gradient (pack zeros). */
static size_t dist_pack(oialr_trainer *t, int dir, int have, float w) {
    oialr_params *p = t->params;
    float *b = t->dist_buf;
    size_t k = 0;
    for (int i = 0; i < p->count; i++) {
        const oialr_param_info *pi = &p->info[i];
        int buffer = pi->kind == OIALR_PARAM_BUFFER;
        if (!pi->trainable && !buffer) continue;
        float *x = (buffer ? p->data : p->grad) + pi->offset;
        if (!dir) memcpy(x, b + k, pi->size * sizeof *x);
        else if (!have && !buffer) memset(b + k, 0, pi->size * sizeof *b);
        else
            for (size_t j = 0; j < pi->size; j++) b[k + j] = w * x[j];
        k += pi->size;
    }
    return k;
}

/* This process's rows [lo, lo + n) of the next global batch of got samples
 * (got: what is left of the epoch, at most the batch) into xbuf/ybuf; the
 * loader moves past the whole global batch. */
static int dist_next(oialr_trainer *t, int *got) {
    oialr_loader *l = t->train;
    int64_t c0 = l->cursor, left = l->n - c0;
    int g = left < t->cfg.batch ? (int)left : t->cfg.batch;
    int64_t r = t->cfg.dist.rank, P = t->cfg.dist.size;
    int64_t lo = g * r / P, hi = g * (r + 1) / P;
    l->cursor = c0 + lo;
    int n = hi > lo ? oialr_loader_next(l, t->xbuf, t->ybuf, (int)(hi - lo)) : 0;
    l->cursor = c0 + g;
    *got = g;
    return n;
}

/* Forward and backward of this process's shard, then the all-reduce: on
 * return every process holds the global batch's mean gradient, the same
 * buffers, mean loss and correct count. */
static int dist_step(oialr_trainer *t, float *loss, int *correct, int *got, int *stop) {
    int n = dist_next(t, got);
    float w = (float)n / (float)*got, l = 0.0f;
    int c = 0, have = 0, rc = OIALR_OK;
    /* dropout: the run's generator (the same on every process, the one a
     * checkpoint keeps) seeds a stream of this process's own for the step */
    oialr_rng *mr = oialr_model_rng(t->model), g = {0, 0};
    if (mr) {
        g = *mr;
        uint64_t seed = (uint64_t)oialr_rng_u32(&g) << 32 | oialr_rng_u32(&g);
        oialr_rng_seed(mr, seed, 1000 + (uint64_t)t->cfg.dist.rank);
    }
    if (n > 0) {
        rc = oialr_model_forward(t->model, t->xbuf, t->ybuf, n, 1, &l, &c);
        if (rc == OIALR_ERR_NUMERIC) l = NAN, rc = OIALR_OK; /* every process learns it from the sum */
        else if (!rc && !(rc = oialr_model_backward(t->model))) have = 1;
    }
    if (mr) *mr = g;
    if (rc) return rc;
    size_t total = dist_count(t->params);
    if ((rc = dist_reserve(t, total))) return rc;
    size_t k = dist_pack(t, 1, have, w);
    float *tail = t->dist_buf + k;
    tail[DIST_LOSS] = n > 0 ? w * l : 0.0f;
    tail[DIST_CORRECT] = (float)c;
    tail[DIST_STOP] = t->stop ? 1.0f : 0.0f;
    if ((rc = t->cfg.dist.allreduce(t->dist_buf, total, t->cfg.dist.user))) return rc;
    t->metrics.allreduce_bytes = (double)total * sizeof(float);
    dist_pack(t, 0, 1, 1.0f);
    *loss = tail[DIST_LOSS];
    *correct = (int)tail[DIST_CORRECT];
    *stop = tail[DIST_STOP] > 0.0f; /* all stop after the same step, whoever asked */
    return OIALR_OK;
}

/* oialr_evaluate with the batches dealt round-robin to the processes and
 * the sums all-reduced: the same numbers on every process. */
static int dist_evaluate(oialr_trainer *t, oialr_loader *l, float *loss, float *acc) {
    int64_t save = l->cursor, B = t->cfg.batch;
    double total = 0.0;
    int64_t correct = 0, seen = 0;
    int rc = OIALR_OK;
    for (int64_t b = t->cfg.dist.rank; b * B < l->n && !rc; b += t->cfg.dist.size) {
        l->cursor = b * B;
        int got = oialr_loader_next(l, t->xbuf, t->ybuf, (int)B);
        float bl;
        int bc;
        if ((rc = oialr_model_forward(t->model, t->xbuf, t->ybuf, got, 0, &bl, &bc))) break;
        total += (double)bl * got;
        correct += bc;
        seen += got;
    }
    l->cursor = save;
    float s[4] = {(float)total, (float)correct, (float)seen, rc ? 1.0f : 0.0f};
    int arc = t->cfg.dist.allreduce(s, 4, t->cfg.dist.user);
    if (rc) return rc;
    if (arc) return arc;
    if (s[3] > 0.0f) return oialr_seterr(OIALR_ERR_NUMERIC, "evaluation failed on another process");
    *loss = s[2] > 0 ? s[0] / s[2] : NAN;
    *acc = s[2] > 0 ? s[1] / s[2] : NAN;
    return OIALR_OK;
}

static int evaluate(oialr_trainer *t, oialr_loader *l, float *loss, float *acc) {
    if (dist_on(t)) return dist_evaluate(t, l, loss, acc);
    return oialr_evaluate(t->model, l, t->xbuf, t->cfg.batch, loss, acc);
}

static int run_epochs(oialr_trainer *t) {
    oialr_train_metrics *mt = &t->metrics;
    size_t full = oialr_params_trainable(t->params);
    CALL_HOOKS(t, run_begin);
    if (t->resumed) {
        int rc = load_hook_states(t);
        if (rc) return rc;
    }
    /* a resumed run inside an epoch goes on with that epoch's order */
    int keep_order = t->resumed && t->resume_in_epoch;
    for (int epoch = mt->epoch; epoch < t->cfg.epochs && mt->step < t->total_steps; epoch++) {
        mt->epoch = epoch;
        if (!keep_order) {
            oialr_loader_reset(t->train);
            t->epoch_seen = t->epoch_correct = 0;
        }
        keep_order = 0;
        t->epoch_t0 = oialr_now();
        CALL_HOOKS(t, epoch_begin);
        /* step_begin comes before the batch is drawn: between two steps the
         * state is whole (a checkpoint there resumes exactly) */
        while (mt->step < t->total_steps && t->train->cursor < t->train->n) {
            CALL_HOOKS(t, step_begin);
            float lr = oialr_schedule_lr(&t->cfg.schedule, mt->step);
            float loss;
            int correct, got, rc, stop = 0;
            if (dist_on(t)) {
                if ((rc = dist_step(t, &loss, &correct, &got, &stop))) return rc;
                if (!isfinite(loss)) rc = OIALR_ERR_NUMERIC;
            } else {
                got = oialr_loader_next(t->train, t->xbuf, t->ybuf, t->cfg.batch);
                rc = oialr_model_forward(t->model, t->xbuf, t->ybuf, got, 1, &loss, &correct);
            }
            if (rc == OIALR_ERR_NUMERIC)
                return oialr_seterr(OIALR_ERR_DIVERGED,
                                    "training diverged at step %lld (epoch %d): loss is %g; lower the learning rate",
                                    (long long)mt->step, epoch + 1, (double)loss);
            if (rc) return rc;
            if (!dist_on(t) && (rc = oialr_model_backward(t->model))) return rc;
            if ((rc = check_finite(t, 1))) return rc;
            oialr_optim_step(&t->optim, t->params, lr);
            if ((rc = check_finite(t, 0))) return rc;
            mt->step++;
            mt->loss = loss;
            mt->lr = lr;
            t->epoch_seen += got;
            t->epoch_correct += correct;
            mt->train_acc = (float)t->epoch_correct / (float)t->epoch_seen;
            double now = oialr_now();
            mt->seconds = now - t->t0;
            mt->samples_per_s = (double)t->epoch_seen / (now - t->epoch_t0 + 1e-12);
            mt->trainable_fraction = trainable_fraction(t, full);
            CALL_HOOKS(t, step_end);
            if (t->cfg.eval_every > 0 && t->val && mt->step % t->cfg.eval_every == 0) {
                if ((rc = evaluate(t, t->val, &mt->val_loss, &mt->val_acc))) return rc;
                CALL_HOOKS(t, eval_end);
            }
            /* data-parallel: a signal seen by one process stops all at the next step */
            if (dist_on(t) ? stop : t->stop) return OIALR_ERR_INTERRUPTED;
        }
        int rc;
        if (t->val && (rc = evaluate(t, t->val, &mt->val_loss, &mt->val_acc))) return rc;
        if (t->test && (rc = evaluate(t, t->test, &mt->test_loss, &mt->test_acc))) return rc;
        mt->seconds = oialr_now() - t->t0;
        CALL_HOOKS(t, eval_end);
        t->at_epoch_end = 1; /* stays 1 if a hook stops the run here: the state is this epoch's end */
        CALL_HOOKS(t, epoch_end);
        t->at_epoch_end = 0;
    }
    return OIALR_OK;
}

int oialr_train_run(oialr_trainer *t) {
    t->t0 = oialr_now() - t->metrics.seconds;
    t->status = run_epochs(t);
    int status = t->status;
    for (int h = 0; h < t->nhooks; h++) {
        if (t->hooks[h].run_end) {
            int r = t->hooks[h].run_end(t, t->hooks[h].user);
            if (r && !status) status = r;
        }
    }
    return status;
}
