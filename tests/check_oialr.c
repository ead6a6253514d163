/*
 * check_oialr.c — the OIALR trainer (oialr/lowrank.h, lib/lowrank/): the
 * truncation rule at its edges; a switch that keeps W and carries the first
 * moment; a rotation that leaves U Σ Vᵀ and the W-space first moment
 * unchanged; a truncation's shapes; each policy's trigger on a synthetic
 * stability series; short runs on synthetic data with SGD and AdamW that
 * switch, rotate, truncate, keep learning and record their events; and in
 * "Limits" bad policy strings and models with nothing to switch.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "analyze.h"
#include "lowrank/internal.h"
#include "oialr.h"
#include "util_grad.h"

static void quiet_log(int level, const char *msg, void *user) { (void)level, (void)msg, (void)user; }

#define OK(expr)                                                                                             \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        ck_assert_msg(rc_ == OIALR_OK, "%s -> %d: %s", #expr, rc_, oialr_errmsg());                          \
    } while (0)

// ----------------------------------------------------------------------------
// truncation rule

START_TEST(test_keep_rule) {
    float s[10] = {10, 9, 8, 2, 1.6f, 1.4f, 1, 0.5f, 0.1f, 0};
    /* beta 0.15: 1.5 is the cut -> 5 kept (10 9 8 2 1.6) */
    ck_assert_int_eq(oialr_lowrank_keep(s, 10, 10, 0.15), 5);
    /* beta 0.5: 3 pass, but at most half of 10 may go -> 5 */
    ck_assert_int_eq(oialr_lowrank_keep(s, 10, 10, 0.5), 5);
    /* from a rank of 4: all pass at 0.15 (2 >= 1.5); at 0.5 three do */
    ck_assert_int_eq(oialr_lowrank_keep(s, 4, 10, 0.15), 4);
    ck_assert_int_eq(oialr_lowrank_keep(s, 4, 10, 0.5), 3);
    /* beta 0: everything is kept (no growth past cur) */
    ck_assert_int_eq(oialr_lowrank_keep(s, 10, 10, 0.0), 10);
    ck_assert_int_eq(oialr_lowrank_keep(s, 7, 10, 0.0), 7);
    /* the floor: 1% of n = 3 for n = 300, so a rank of 4 with one big
     * value keeps 3; and never below 1 */
    float t[4] = {1, 0.01f, 0.01f, 0.01f};
    ck_assert_int_eq(oialr_lowrank_keep(t, 4, 300, 0.5), 3);
    ck_assert_int_eq(oialr_lowrank_keep(t, 1, 10, 0.5), 1);
    ck_assert_int_eq(oialr_lowrank_keep(t, 2, 10, 0.5), 1);
}
END_TEST

// ----------------------------------------------------------------------------
// switch and rotation on a real model

/* an mlp whose hidden layer fc2 is square (16x16) */
static oialr_model *small_model(void) {
    oialr_model *m = NULL;
    OK(oialr_model_create(&m, "mlp:16,16", 1, 4, 4, 3, 8, 7));
    return m;
}

static int find(oialr_model *m, const char *name) {
    int i = oialr_params_find(oialr_model_params(m), name);
    ck_assert_int_ge(i, 0);
    return i;
}

static float *weight_of(oialr_model *m, int i) {
    const oialr_param_info *pi = &oialr_model_params(m)->info[i];
    float *w = tu_alloc((size_t)(pi->rows * pi->cols));
    OK(oialr_params_weight(oialr_model_params(m), i, w, NULL));
    return w;
}

/* A switch at beta 0 keeps W (to float precision); the first moment
 * carried to Σ maps back to the original (U is square here, so U Uᵀ = I). */
START_TEST(test_switch_keeps_w_and_moment) {
    oialr_model *m = small_model();
    oialr_params *p = oialr_model_params(m);
    oialr_optim o;
    oialr_optim_config oc;
    oialr_optim_defaults(&oc, OIALR_OPT_ADAMW);
    OK(oialr_optim_init(&o, &oc, p));
    int i = find(m, "fc2.weight");
    const oialr_param_info *pi = &p->info[i];
    tu_rng r;
    tu_rng_seed(&r, 3);
    tu_fill_uniform(o.m + pi->offset, pi->size, &r, -1, 1);
    tu_fill_uniform(o.v + pi->offset, pi->size, &r, 0.01f, 1);
    float *m0 = tu_alloc(pi->size);
    memcpy(m0, o.m + pi->offset, pi->size * sizeof *m0);
    float *w0 = weight_of(m, i);
    lr_work w = {0};
    int rank;
    OK(lr_switch(m, &o, i, 0.0, OIALR_MOMENTS_PROJECT, &w, &rank));
    ck_assert_int_eq(rank, 16);
    ck_assert_int_eq(pi->rank, 16);
    ck_assert_uint_eq(pi->size, 256);
    float *w1 = weight_of(m, i);
    ck_assert_msg(tu_close_ratio(w1, w0, 256, 1e-5, 1e-4) <= 1, "W changed at the switch");
    /* U M_Σ Vᵀ == M_W */
    float *u, *v;
    OK(oialr_model_lowrank_factors(m, i, &u, &v, &rank));
    float back[256], tmp[256];
    for (int a = 0; a < 16; a++)
        for (int b = 0; b < 16; b++) {
            double s = 0;
            for (int k = 0; k < 16; k++) s += (double)u[a * 16 + k] * o.m[pi->offset + k * 16 + b];
            tmp[a * 16 + b] = (float)s;
        }
    for (int a = 0; a < 16; a++)
        for (int b = 0; b < 16; b++) {
            double s = 0;
            for (int k = 0; k < 16; k++) s += (double)tmp[a * 16 + k] * v[b * 16 + k];
            back[a * 16 + b] = (float)s;
        }
    ck_assert_msg(tu_close_ratio(back, m0, 256, 1e-5, 1e-4) <= 1, "first moment not carried exactly");
    for (int k = 0; k < 256; k++) ck_assert(o.v[pi->offset + k] >= 0);
    lr_work_free(&w);
    free(m0), free(w0), free(w1);
    oialr_optim_free(&o);
    oialr_model_free(m);
}
END_TEST

/* A rotation with nothing to cut leaves U Σ Vᵀ and U M Vᵀ unchanged and
 * makes Σ diagonal; a truncation keeps the leading block. */
START_TEST(test_rotation_and_truncation) {
    oialr_model *m = small_model();
    oialr_params *p = oialr_model_params(m);
    oialr_optim o;
    oialr_optim_config oc;
    oialr_optim_defaults(&oc, OIALR_OPT_SGD);
    oc.momentum = 0.9f;
    OK(oialr_optim_init(&o, &oc, p));
    int i = find(m, "fc1.weight"); /* 16 x 16 (4x4 input) */
    const oialr_param_info *pi = &p->info[i];
    lr_work w = {0};
    int rank, before, after;
    OK(lr_switch(m, &o, i, 0.0, OIALR_MOMENTS_PROJECT, &w, &rank));
    /* Σ is dense after some training: make it so, with a moment */
    tu_rng r;
    tu_rng_seed(&r, 9);
    float *s = p->data + pi->offset;
    for (int k = 0; k < rank * rank; k++) s[k] += 0.3f * (float)(tu_rng_uniform(&r) - 0.5);
    tu_fill_uniform(o.m + pi->offset, (size_t)rank * rank, &r, -1, 1);
    float *w0 = weight_of(m, i);
    float *u, *v;
    OK(oialr_model_lowrank_factors(m, i, &u, &v, &rank));
    /* the moment in W space, U M Vᵀ, before */
    float *mw0 = tu_alloc(256), *mw1 = tu_alloc(256);
    oialr_param_info save = *pi;
    for (int pass = 0; pass < 2; pass++) {
        float *mw = pass ? mw1 : mw0;
        OK(oialr_model_lowrank_factors(m, i, &u, &v, &rank));
        for (int a = 0; a < 16; a++)
            for (int b = 0; b < 16; b++) {
                double acc = 0;
                for (int x = 0; x < rank; x++)
                    for (int y = 0; y < rank; y++)
                        acc += (double)u[a * rank + x] * o.m[pi->offset + x * rank + y] * v[b * rank + y];
                mw[a * 16 + b] = (float)acc;
            }
        if (!pass) OK(lr_rotate(m, &o, i, 0.0, OIALR_MOMENTS_PROJECT, &w, &before, &after));
    }
    (void)save;
    ck_assert_int_eq(before, 16);
    ck_assert_int_eq(after, 16);
    float *w1 = weight_of(m, i);
    ck_assert_msg(tu_close_ratio(w1, w0, 256, 1e-5, 1e-4) <= 1, "the rotation changed U Sigma V^T");
    ck_assert_msg(tu_close_ratio(mw1, mw0, 256, 1e-5, 1e-4) <= 1, "the rotation changed the moment in W space");
    for (int a = 0; a < rank; a++)
        for (int b = 0; b < rank; b++)
            if (a != b) ck_assert_msg(fabsf(s[a * rank + b]) < 1e-6f, "Sigma not diagonal after the rotation");
    /* truncation: shapes and the leading block */
    float keep[4] = {s[0], s[1], s[rank], s[rank + 1]};
    float mkeep[4] = {o.m[pi->offset], o.m[pi->offset + 1], o.m[pi->offset + rank], o.m[pi->offset + rank + 1]};
    OK(oialr_model_lowrank_truncate(m, &o, i, 2));
    ck_assert_int_eq(pi->rank, 2);
    ck_assert_uint_eq(pi->size, 4);
    for (int k = 0; k < 4; k++) {
        ck_assert(s[k] == keep[k]);
        ck_assert(o.m[pi->offset + k] == mkeep[k]);
    }
    ck_assert_int_eq(oialr_model_lowrank_truncate(m, &o, i, 3), OIALR_ERR_ARG); /* no growth */
    lr_work_free(&w);
    free(w0), free(w1), free(mw0), free(mw1);
    oialr_optim_free(&o);
    oialr_model_free(m);
}
END_TEST

// ----------------------------------------------------------------------------
// policies

/* Feed n checks of one layer's stability; return the check index at which
 * it switched (-1: never). */
static int first_switch_lr(const char *policy, const double *series, const double *lr, int n, int64_t every,
                           int64_t min_steps) {
    oialr_policy p;
    OK(oialr_policy_parse(policy, &p));
    oialr_policy_state *st;
    OK(oialr_policy_state_new(&st, &p, 1));
    int done = 0, go = 0, at = -1;
    for (int k = 0; k < n && at < 0; k++) {
        oialr_policy_check(st, (k + 1) * every, min_steps, lr ? lr[k] : NAN, &series[k], &done, &go);
        if (go) at = k;
    }
    oialr_policy_state_free(st);
    return at;
}

static int first_switch(const char *policy, const double *series, int n, int64_t every, int64_t min_steps) {
    return first_switch_lr(policy, series, NULL, n, every, min_steps);
}

START_TEST(test_policy_triggers) {
    const double rising[] = {NAN, 0.9, 0.95, 0.98, 0.991, 0.995, 0.996};
    ck_assert_int_eq(first_switch("stability:0.99", rising, 7, 100, 0), 4);
    ck_assert_int_eq(first_switch("stability:0.95", rising, 7, 100, 0), 2);
    ck_assert_int_eq(first_switch("stability:0.95", rising, 7, 100, 500), 4); /* warm-up: not before step 500 */
    ck_assert_int_eq(first_switch("stability:0.999", rising, 7, 100, 0), -1);
    ck_assert_int_eq(first_switch("delay:300", rising, 7, 100, 0), 2);
    ck_assert_int_eq(first_switch("mean-stability:0.98", rising, 7, 100, 0), 3);
    /* auto: the rotation 1 - S goes 0.1, 0.05, 0.02, 0.015, 0.014, 0.014: it
     * has fallen by less than 25% over two checks at the second 0.014
     * (0.014 vs 0.015), not at the first (0.014 vs 0.02 is 30%) */
    const double settle[] = {NAN, 0.9, 0.95, 0.98, 0.985, 0.986, 0.986, 0.986};
    ck_assert_int_eq(first_switch("auto", settle, 8, 100, 0), 6);
    /* a layer that keeps turning at a steady, large rate never switches */
    const double steady[] = {NAN, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    ck_assert_int_eq(first_switch("auto", steady, 7, 100, 0), -1);
    /* auto keeps its history through the warm-up: the first check past it */
    ck_assert_int_eq(first_switch("auto", settle, 8, 100, 750), 7);
    /* a steady rotation at a high stability is settled */
    const double high[] = {NAN, 0.97, 0.97, 0.97, 0.97};
    ck_assert_int_eq(first_switch("auto", high, 5, 100, 0), 3);
    /* a rotation that falls only because the learning rate does (a decaying
     * schedule) has settled: per unit of lr it is flat from the start */
    const double decay[] = {NAN, 0.96, 0.98, 0.99, 0.995, 0.9975};
    const double lr[] = {0.8, 0.4, 0.2, 0.1, 0.05, 0.025};
    ck_assert_int_eq(first_switch("auto", decay, 6, 100, 0), -1);
    ck_assert_int_eq(first_switch_lr("auto", decay, lr, 6, 100, 0), 3);
}
END_TEST

/* auto's span in steps: a rotation still falling slowly is not settled
 * until it stopped falling over the whole span, whatever the interval. */
START_TEST(test_policy_auto_span) {
    const double slow[] = {NAN, 0.9, 0.92, 0.935, 0.945, 0.95, 0.952, 0.953, 0.953, 0.953};
    ck_assert_int_eq(first_switch("auto", slow, 10, 100, 0), 5); /* two checks: fires at 0.05 vs 0.065 */
    for (int every = 50; every <= 100; every += 50) {
        oialr_policy p;
        OK(oialr_policy_parse("auto", &p));
        p.span = 400;
        oialr_policy_state *st;
        OK(oialr_policy_state_new(&st, &p, 1));
        int done = 0, go = 0, at = -1;
        /* the same series at a finer interval: each value held for 100 steps */
        for (int k = 0; k < 10 && at < 0; k++)
            for (int64_t sub = 0; sub < 100 && at < 0; sub += every) {
                int64_t step = (k + 1) * 100 + sub;
                oialr_policy_check(st, step, 0, NAN, &slow[k], &done, &go);
                if (go) at = (int)step;
            }
        oialr_policy_state_free(st);
        /* 0.047 (step 900) against 0.055 (step 500, 400 before): fell < 25% */
        ck_assert_msg(at == 900, "every %d: switched at %d", every, at);
    }
}
END_TEST

/* mean-stability: all layers at once, on the mean; a layer without a
 * value yet holds the others back. */
START_TEST(test_policy_mean) {
    oialr_policy p;
    OK(oialr_policy_parse("mean-stability:0.95", &p));
    oialr_policy_state *st;
    OK(oialr_policy_state_new(&st, &p, 2));
    int done[2] = {0, 0}, go[2];
    double s1[2] = {0.99, NAN}, s2[2] = {0.99, 0.90}, s3[2] = {0.99, 0.92};
    ck_assert_int_eq(oialr_policy_check(st, 100, 0, NAN, s1, done, go), 0);
    ck_assert_int_eq(oialr_policy_check(st, 200, 0, NAN, s2, done, go), 0);
    ck_assert_int_eq(oialr_policy_check(st, 300, 0, NAN, s3, done, go), 2);
    ck_assert(go[0] && go[1]);
    oialr_policy_state_free(st);
}
END_TEST

START_TEST(test_policy_strings) {
    static const char *const good[] = {"auto", "stability:0.99", "stability:0.9,lag=500", "mean-stability:0.98",
                                       "delay:1000"};
    for (size_t k = 0; k < sizeof good / sizeof *good; k++) {
        oialr_policy p;
        char back[64];
        OK(oialr_policy_parse(good[k], &p));
        oialr_policy_format(&p, back, sizeof back);
        ck_assert_str_eq(back, good[k]);
    }
    static const char *const bad[] = {"", "stability", "stability:", "stability:1.5", "stability:x",
                                      "stability:0.9,lag=0", "stability:0.9,lag=-3", "stability:0.9,tag=5",
                                      "delay:-1", "delay:1e3", "mean-stability:", "magic:1", "auto:1"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        oialr_policy p;
        ck_assert_msg(oialr_policy_parse(bad[k], &p) == OIALR_ERR_ARG, "'%s' accepted", bad[k]);
        ck_assert_msg(strstr(oialr_errmsg(), "policy '") && !strchr(oialr_errmsg(), '\n'), "%s", oialr_errmsg());
    }
}
END_TEST

// ----------------------------------------------------------------------------
// short runs

typedef struct run_out {
    float first_loss, last_loss, acc;
    int switched, rank_fc1, nevents, rotations, truncations;
    float trainable;
    float w_fc1[48 * 64]; /* fc1's W at the end (U Σ Vᵀ once low-rank) */
} run_out;

/* A training set-up on synthetic 8x8 data with 4 classes: n samples, a
 * fifth held out for validation, model `spec`, batch 32, SGD (lr 0.05,
 * momentum 0.9) or AdamW's defaults. */
typedef struct run_env {
    oialr_dataset ds;
    oialr_loader trl, val;
    oialr_model *m;
    oialr_trainer tr;
} run_env;

static void env_init(run_env *e, const char *spec, int n, int epochs, int opt_kind) {
    memset(e, 0, sizeof *e);
    OK(oialr_dataset_synthetic(&e->ds, n, 1, 8, 8, 4, 0.25f, 1));
    OK(oialr_loader_split(&e->trl, &e->val, &e->ds, n / 6, 1));
    OK(oialr_model_create(&e->m, spec, 1, 8, 8, 4, 32, 1));
    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.epochs = epochs;
    cfg.batch = 32;
    oialr_optim_defaults(&cfg.optim, opt_kind);
    if (opt_kind == OIALR_OPT_SGD) cfg.optim.lr = 0.05f, cfg.optim.momentum = 0.9f;
    OK(oialr_trainer_init(&e->tr, &cfg, e->m, &e->trl, &e->val, NULL));
}

static void env_free(run_env *e) {
    oialr_trainer_free(&e->tr);
    oialr_model_free(e->m);
    oialr_loader_free(&e->trl);
    oialr_loader_free(&e->val);
    oialr_dataset_free(&e->ds);
}

/* An OIALR controller with policy, every, beta, added to e's trainer. */
static void env_lowrank(run_env *e, oialr_hook *h, const char *policy, int64_t every, double beta,
                        oialr_hook *recorder) {
    oialr_lowrank_options lo;
    oialr_lowrank_options_default(&lo);
    OK(oialr_policy_parse(policy, &lo.policy));
    lo.every = every;
    lo.beta = beta;
    lo.recorder = recorder;
    OK(oialr_lowrank_hook_init(h, &lo));
    OK(oialr_trainer_add_hook(&e->tr, h));
}

/* A recorder into path, every steps, added to e's trainer. */
static void env_record(run_env *e, oialr_hook *h, const char *path, int64_t every) {
    oialr_record_options ro;
    oialr_record_options_default(&ro);
    ro.path = path;
    ro.every = every;
    ro.force = 1;
    OK(oialr_record_hook_init(h, &ro));
    OK(oialr_trainer_add_hook(&e->tr, h));
}

static int on_step(oialr_trainer *t, void *user) {
    run_out *o = user;
    if (t->metrics.step == 1) o->first_loss = t->metrics.loss;
    return 0;
}

static void short_run(int opt_kind, const char *policy, const char *record, run_out *out) {
    memset(out, 0, sizeof *out);
    run_env e;
    env_init(&e, "mlp:48,48", 1200, 6, opt_kind);
    oialr_hook probe = {.name = "probe", .user = out, .step_end = on_step};
    OK(oialr_trainer_add_hook(&e.tr, &probe));
    oialr_hook rec = {0}, lr = {0};
    if (record) env_record(&e, &rec, record, 10);
    env_lowrank(&e, &lr, policy, 20, 0.3, record ? &rec : NULL);
    OK(oialr_train_run(&e.tr));
    out->last_loss = e.tr.metrics.loss;
    out->acc = e.tr.metrics.val_acc;
    out->trainable = e.tr.metrics.trainable_fraction;
    for (int k = 0; k < oialr_lowrank_nlayers(&lr); k++) {
        const oialr_lowrank_layer *l = oialr_lowrank_layer_at(&lr, k);
        out->switched += l->switch_step >= 0;
        if (!strcmp(l->name, "fc1.weight")) out->rank_fc1 = l->rank;
    }
    int p1 = oialr_params_find(e.tr.params, "fc1.weight");
    ck_assert_int_ge(p1, 0);
    OK(oialr_params_weight(e.tr.params, p1, out->w_fc1, NULL));
    oialr_lowrank_hook_free(&lr);
    if (record) oialr_record_hook_free(&rec);
    env_free(&e);
    if (record) {
        oialr_traj *t = NULL;
        OK(oialr_traj_open(&t, record, OIALR_TRAJ_READ));
        oialr_traj_event ev[256];
        int64_t n = 0;
        OK(oialr_traj_read_events(t, ev, 256, &n));
        out->nevents = (int)n;
        for (int64_t k = 0; k < n; k++) {
            out->rotations += ev[k].kind == OIALR_EVENT_ROTATE;
            out->truncations += ev[k].kind == OIALR_EVENT_TRUNCATE;
            if (ev[k].kind == OIALR_EVENT_TRUNCATE) ck_assert_int_lt(ev[k].rank_after, ev[k].rank_before);
        }
        /* the last snapshot of fc1 reads as the model's final U Σ Vᵀ, with
         * its rank; after the switch snapshots are factored, and a basis is
         * stored once for the snapshots that share it */
        int li;
        OK(oialr_traj_find_layer(t, "fc1.weight", &li));
        const oialr_traj_layer *L = oialr_traj_layer_at(t, li);
        ck_assert_int_eq(L->ranks[L->nsnap - 1], out->rank_fc1);
        ck_assert_int_eq(L->ranks[0], 48);
        ck_assert_int_eq(L->factor_capacity, 48);
        ck_assert_int_eq(L->bases[0], -1);
        int factored = 0, nbases = 0;
        for (int64_t k = 0; k < L->nsnap; k++) {
            factored += L->bases[k] >= 0;
            if (L->bases[k] > nbases - 1) nbases = L->bases[k] + 1;
        }
        ck_assert_int_ge(factored, 3);
        ck_assert_int_ge(nbases, 1);
        ck_assert_int_lt(nbases, factored);
        ck_assert_int_ge(L->bases[L->nsnap - 1], 0);
        float *w = malloc(sizeof out->w_fc1);
        ck_assert_ptr_nonnull(w);
        OK(oialr_traj_read(t, li, L->nsnap - 1, w, 48 * 64));
        double err = 0, norm = 0;
        for (int k = 0; k < 48 * 64; k++) {
            err = fmax(err, fabs((double)w[k] - out->w_fc1[k]));
            norm = fmax(norm, fabs((double)out->w_fc1[k]));
        }
        ck_assert_msg(err <= 1e-5 * norm, "read-back W differs by %g (max |W| %g)", err, norm);
        free(w);
        ck_assert_int_eq(oialr_traj_get_info(t)->format_version, 2);
        OK(oialr_traj_close(t));
    }
}

START_TEST(test_run_switches_and_learns) {
    static const int opts[] = {OIALR_OPT_SGD, OIALR_OPT_ADAMW};
    char path[256];
    snprintf(path, sizeof path, "/tmp/oialr-check-oialr-%d.h5", (int)getpid());
    run_out o;
    short_run(opts[_i], "delay:40", path, &o);
    unlink(path);
    ck_assert_int_eq(o.switched, 2); /* fc1, fc2; fc3 is the classifier */
    ck_assert_msg(o.rank_fc1 < 48 && o.rank_fc1 >= 1, "fc1 rank %d", o.rank_fc1);
    ck_assert_msg(o.trainable < 0.5f, "trainable %.3f", (double)o.trainable);
    ck_assert_msg(o.last_loss < 0.5f * o.first_loss, "loss %g -> %g", (double)o.first_loss, (double)o.last_loss);
    ck_assert_msg(o.acc > 0.6f, "val acc %.3f", (double)o.acc);
    /* 2 switches, then a rotation of each every 20 steps, and some cuts */
    ck_assert_int_ge(o.rotations, 2);
    ck_assert_int_ge(o.truncations, 1);
    ck_assert_int_ge(o.nevents, 2 + o.rotations + o.truncations);
}
END_TEST

/* The small ResNet: every conv switches (through its OC x C*K*K view) and
 * the run still learns; the head (classifier) stays full rank. */
START_TEST(test_run_cnn) {
    run_env e;
    env_init(&e, "cnn:8,16,blocks=1", 400, 4, OIALR_OPT_SGD);
    oialr_hook h;
    env_lowrank(&e, &h, "delay:10", 10, 0.15, NULL);
    OK(oialr_train_run(&e.tr));
    int convs = 0, switched = 0;
    for (int k = 0; k < oialr_lowrank_nlayers(&h); k++) {
        const oialr_lowrank_layer *l = oialr_lowrank_layer_at(&h, k);
        if (strstr(l->name, "conv")) convs++, switched += l->switch_step == 10;
        if (!strcmp(l->name, "head.weight")) ck_assert_int_eq(l->switch_step, -1);
    }
    ck_assert_int_ge(convs, 5);
    ck_assert_int_eq(switched, convs);
    ck_assert_msg(e.tr.metrics.val_acc > 0.6f, "val acc %.3f", (double)e.tr.metrics.val_acc);
    ck_assert_msg(e.tr.metrics.trainable_fraction < 0.6f, "trainable %.3f", (double)e.tr.metrics.trainable_fraction);
    oialr_lowrank_hook_free(&h);
    env_free(&e);
}
END_TEST

/* Replay and online agree: a full-rank run recorded at the check interval,
 * replayed by `oialr analyze --policy P`, names the first switch step the
 * online run with the same seed takes (the runs are identical up to it). */
static int64_t online_first(const char *policy, int64_t every) {
    run_env e;
    env_init(&e, "mlp:48,48", 1200, 6, OIALR_OPT_SGD);
    oialr_hook h;
    env_lowrank(&e, &h, policy, every, 0.15, NULL);
    OK(oialr_train_run(&e.tr));
    int64_t first = -1;
    for (int k = 0; k < oialr_lowrank_nlayers(&h); k++) {
        int64_t s = oialr_lowrank_layer_at(&h, k)->switch_step;
        if (s >= 0 && (first < 0 || s < first)) first = s;
    }
    oialr_lowrank_hook_free(&h);
    env_free(&e);
    return first;
}

static void record_full(const char *path, int64_t every) {
    run_env e;
    env_init(&e, "mlp:48,48", 1200, 6, OIALR_OPT_SGD);
    oialr_hook rec;
    env_record(&e, &rec, path, every);
    OK(oialr_train_run(&e.tr));
    oialr_record_hook_free(&rec);
    env_free(&e);
}

static int64_t replay_first(const char *traj, const char *policy) {
    char out[300];
    snprintf(out, sizeof out, "%.280s.res.h5", traj);
    char *argv[] = {"analyze", (char *)traj, "-o", out, "--force", "--policy", (char *)policy, "-q", "--no-angles", NULL};
    ck_assert_int_eq(oialr_cmd_analyze(9, argv), 0);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    int64_t first = -1;
    static const char *const names[] = {"/layers/fc1.weight", "/layers/fc2.weight"};
    for (int k = 0; k < 2; k++) {
        int64_t v = -1;
        hid_t a = H5Aopen_by_name(f, names[k], "switch_step", H5P_DEFAULT, H5P_DEFAULT);
        ck_assert(a >= 0);
        ck_assert(H5Aread(a, H5T_NATIVE_INT64, &v) >= 0);
        H5Aclose(a);
        if (v >= 0 && (first < 0 || v < first)) first = v;
    }
    H5Fclose(f);
    unlink(out);
    return first;
}

START_TEST(test_replay_agrees_with_online) {
    char traj[256];
    snprintf(traj, sizeof traj, "/tmp/oialr-check-replay-%d.h5", (int)getpid());
    record_full(traj, 20);
    static const char *const policies[] = {"auto", "stability:0.97", "mean-stability:0.97", "delay:100"};
    int switched = 0;
    for (size_t k = 0; k < sizeof policies / sizeof *policies; k++) {
        int64_t a = replay_first(traj, policies[k]), b = online_first(policies[k], 20);
        ck_assert_msg(a == b, "%s: replay says step %lld, the online run switched at %lld", policies[k],
                      (long long)a, (long long)b);
        switched += a >= 0;
    }
    ck_assert_msg(switched >= 3, "only %d of the policies switched: the test shows little", switched);
    unlink(traj);
}
END_TEST

// ----------------------------------------------------------------------------
// Limits

START_TEST(test_nothing_to_switch) {
    /* a 2x64 layer (aspect ratio 32) and the classifier; the first layer kept
     * and the classifier */
    static const char *const specs[] = {"mlp:2", "mlp:48"};
    for (int k = 0; k < 2; k++) {
        run_env e;
        env_init(&e, specs[k], 240, 1, OIALR_OPT_SGD);
        oialr_lowrank_options lo;
        oialr_lowrank_options_default(&lo);
        lo.keep_first = k == 1;
        oialr_hook h;
        OK(oialr_lowrank_hook_init(&h, &lo));
        OK(oialr_trainer_add_hook(&e.tr, &h));
        ck_assert_int_eq(oialr_train_run(&e.tr), OIALR_ERR_ARG);
        ck_assert_msg(strstr(oialr_errmsg(), "eligible"), "%s", oialr_errmsg());
        oialr_lowrank_hook_free(&h);
        env_free(&e);
    }
}
END_TEST

START_TEST(test_bad_options) {
    oialr_lowrank_options lo;
    oialr_hook h;
    oialr_lowrank_options_default(&lo);
    lo.beta = 1.0;
    ck_assert_int_eq(oialr_lowrank_hook_init(&h, &lo), OIALR_ERR_ARG);
    oialr_lowrank_options_default(&lo);
    lo.policy.kind = OIALR_POLICY_NONE;
    ck_assert_int_eq(oialr_lowrank_hook_init(&h, &lo), OIALR_ERR_ARG);
    oialr_lowrank_options_default(&lo);
    lo.max_aspect = 1.0;
    ck_assert_int_eq(oialr_lowrank_hook_init(&h, &lo), OIALR_ERR_ARG);
    /* a low-rank call on a weight that is not low-rank, or not a weight */
    oialr_model *m = small_model();
    ck_assert_int_eq(oialr_model_lowrank_truncate(m, NULL, find(m, "fc1.weight"), 1), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_model_lowrank_capable(m, find(m, "fc1.bias")), 0);
    ck_assert_int_eq(oialr_model_lowrank_capable(m, find(m, "fc1.weight")), 1);
    oialr_model_free(m);
}
END_TEST

static Suite *oialr_suite(void) {
    Suite *s = suite_create("oialr");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, test_keep_rule);
    tcase_add_test(core, test_switch_keeps_w_and_moment);
    tcase_add_test(core, test_rotation_and_truncation);
    tcase_add_test(core, test_policy_triggers);
    tcase_add_test(core, test_policy_mean);
    tcase_add_test(core, test_policy_auto_span);
    tcase_add_loop_test(core, test_run_switches_and_learns, 0, 2);
    tcase_add_test(core, test_run_cnn);
    tcase_add_test(core, test_replay_agrees_with_online);
    tcase_set_timeout(core, 60);
    suite_add_tcase(s, core);
    TCase *lim = tcase_create("Limits");
    tcase_add_test(lim, test_policy_strings);
    tcase_add_test(lim, test_nothing_to_switch);
    tcase_add_test(lim, test_bad_options);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    oialr_set_log(quiet_log, NULL, OIALR_LOG_DEBUG);
    SRunner *sr = srunner_create(oialr_suite());
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
