/*
 * check_diverge.c — a run that diverges stops at once and says where: one
 * test per kind of NaN/Inf (the loss, a gradient, a weight), each induced
 * deterministically at a known step, each checking the code
 * (OIALR_ERR_DIVERGED), the message (step, epoch, parameter, kind) and the
 * trajectory the recorder leaves (the last checkpoint from before the
 * divergence, every snapshot finite, none of the failed update); and the
 * command line's exit status 3 for a divergence.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oialr.h"
#include "util_cli.h"
#include "oialr/record.h"
#include "oialr/trajectory.h"

#define OK(expr)                                                                                             \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        ck_assert_msg(rc_ == OIALR_OK, "%s -> %d: %s", #expr, rc_, oialr_errmsg());                          \
    } while (0)

static char dir[256];

static void quiet_log(int level, const char *msg, void *user) {
    (void)level, (void)msg, (void)user;
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-diverge-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    oialr_set_log(quiet_log, NULL, OIALR_LOG_DEBUG);
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

// ----------------------------------------------------------------------------
// the library: one run per kind
//
// mlp:16 on 8x8 synthetic images, 240 training samples in batches of 32,
// so 8 steps an epoch; SGD with momentum, a snapshot every 3 steps. The trouble is set
// up at the start of step 12 or 13 (the 5th or 6th step of epoch 2), after
// the checkpoint of epoch 1 (step 8), and the run must stop at step 13.

enum { KIND_LOSS, KIND_GRADIENT, KIND_WEIGHT };
#define DIVERGE_STEP 13
#define STEPS_PER_EPOCH 8

typedef struct trouble {
    int kind;
    float *at_epoch_end; /* the parameters at the last epoch end */
    int64_t epoch_end_step;
} trouble;

static float *param(oialr_trainer *t, const char *name) {
    int i = oialr_params_find(t->params, name);
    ck_assert_msg(i >= 0, "no parameter %s", name);
    return t->params->data + t->params->info[i].offset;
}

/* step_begin: the trouble of each kind, made so that nothing else goes
 * wrong first */
static int make_trouble(oialr_trainer *t, void *user) {
    trouble *q = user;
    int64_t s = t->metrics.step;
    if (q->kind == KIND_LOSS && s == DIVERGE_STEP - 1) {
        /* a learning rate of 1e30: step 12's update leaves weights of
         * ~1e29, still finite; the logits of step 13 overflow */
        t->cfg.schedule.base_lr = 1e30f;
    } else if (q->kind == KIND_GRADIENT && s == DIVERGE_STEP) {
        /* hidden unit 3 outputs 1e-30 into a head column of +-FLT_MAX
         * (+ for class 0): logits of +-3.4e8, p(class 0) = 1, a finite loss
         * (log-sum-exp); but dloss/dh3 = FLT_MAX (dloss/dlogit0 - the
         * others) / 32 is FLT_MAX/16 for each of the ~24 samples not of
         * class 0, and their sum, fc1.bias[3]'s gradient, overflows (so may
         * fc1.weight's row 3, which comes first) */
        float *w1 = param(t, "fc1.weight"), *w2 = param(t, "fc2.weight"); /* [16, 64], [4, 16] */
        for (int i = 0; i < 64; i++) w1[3 * 64 + i] = 0.0f;
        param(t, "fc1.bias")[3] = 1e-30f;
        for (int k = 0; k < 4; k++) w2[k * 16 + 3] = k == 0 ? FLT_MAX : -FLT_MAX;
    } else if (q->kind == KIND_WEIGHT && s == DIVERGE_STEP) {
        /* a NaN in the momentum: loss and gradients are finite, the update
         * writes the NaN into fc1.weight */
        int i = oialr_params_find(t->params, "fc1.weight");
        t->optim.m[t->params->info[i].offset + 5] = NAN;
    }
    return OIALR_OK;
}

static int keep_epoch_end(oialr_trainer *t, void *user) {
    trouble *q = user;
    memcpy(q->at_epoch_end, t->params->data, t->params->total * sizeof(float));
    q->epoch_end_step = t->metrics.step;
    return OIALR_OK;
}

static void diverge(int kind, const char *says) {
    char path[512];
    snprintf(path, sizeof path, "%s/run.h5", dir);
    oialr_dataset ds;
    OK(oialr_dataset_synthetic(&ds, 300, 1, 8, 8, 4, 0.25f, 1));
    oialr_loader trl, val;
    OK(oialr_loader_split(&trl, &val, &ds, 60, 1));
    oialr_model *m;
    OK(oialr_model_create(&m, "mlp:16", 1, 8, 8, 4, 32, 1));
    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.epochs = 5;
    cfg.batch = 32;
    oialr_trainer t;
    OK(oialr_trainer_init(&t, &cfg, m, &trl, &val, NULL));
    ck_assert_int_eq(t.steps_per_epoch, STEPS_PER_EPOCH);
    trouble q = {.kind = kind, .epoch_end_step = -1};
    q.at_epoch_end = malloc(t.params->total * sizeof(float));
    oialr_record_options ro;
    oialr_record_options_default(&ro);
    ro.path = path;
    ro.every = 3;
    oialr_hook rec, hq = {.name = "trouble", .user = &q, .step_begin = make_trouble, .epoch_end = keep_epoch_end};
    OK(oialr_record_hook_init(&rec, &ro));
    OK(oialr_trainer_add_hook(&t, &hq));
    OK(oialr_trainer_add_hook(&t, &rec));

    int rc = oialr_train_run(&t);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", oialr_errmsg());
    ck_assert_msg(rc == OIALR_ERR_DIVERGED, "rc %d (%s): %s", rc, oialr_strerror(rc), msg);
    ck_assert_int_eq(t.status, OIALR_ERR_DIVERGED);
    ck_assert_msg(t.metrics.step == DIVERGE_STEP, "step %lld: %s", (long long)t.metrics.step, msg);
    ck_assert_msg(strstr(msg, "diverged at step 13 (epoch 2)") && strstr(msg, says) && !strchr(msg, '\n'),
                  "message: '%s' (wanted '%s')", msg, says);
    oialr_record_hook_free(&rec);

    /* the file: the checkpoint of epoch 1, every snapshot finite and from
     * a completed step; the final one (the state in memory) only while it
     * is finite: after a loss or gradient divergence, not after a weight's */
    oialr_traj *tj = NULL;
    OK(oialr_traj_open(&tj, path, OIALR_TRAJ_READ));
    int64_t ck_step;
    OK(oialr_traj_ckpt_get_i64(tj, "step", &ck_step));
    ck_assert_int_eq(q.epoch_end_step, STEPS_PER_EPOCH);
    ck_assert_int_eq(ck_step, STEPS_PER_EPOCH);
    float *ck = malloc(t.params->total * sizeof(float));
    OK(oialr_traj_ckpt_get_array(tj, "params", ck, t.params->total));
    ck_assert(memcmp(ck, q.at_epoch_end, t.params->total * sizeof(float)) == 0);
    int64_t last = kind == KIND_WEIGHT ? 12 : DIVERGE_STEP;
    for (int l = 0; l < oialr_traj_nlayers(tj); l++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(tj, l);
        ck_assert_int_eq(L->steps[L->nsnap - 1], last);
        size_t n = (size_t)(L->rows * L->cols);
        float *w = malloc(n * sizeof *w);
        for (int64_t s = 0; s < L->nsnap; s++) {
            OK(oialr_traj_read(tj, l, s, w, n));
            for (size_t k = 0; k < n; k++)
                ck_assert_msg(isfinite(w[k]), "%s: snapshot at step %lld: w[%zu] = %g", L->name,
                              (long long)L->steps[s], k, (double)w[k]);
        }
        if (kind != KIND_WEIGHT) { /* the last snapshot is the state the failing step began from */
            OK(oialr_traj_read(tj, l, L->nsnap - 1, w, n));
            ck_assert(memcmp(w, param(&t, L->name), n * sizeof *w) == 0);
        }
        free(w);
    }
    OK(oialr_traj_close(tj));
    free(ck);
    free(q.at_epoch_end);
    oialr_trainer_free(&t);
    oialr_model_free(m);
    oialr_loader_free(&trl);
    oialr_loader_free(&val);
    oialr_dataset_free(&ds);
}

START_TEST(diverge_loss) {
    diverge(KIND_LOSS, "loss is ");
}
END_TEST

START_TEST(diverge_gradient) {
    diverge(KIND_GRADIENT, "the gradient of fc1.");
}
END_TEST

START_TEST(diverge_weight) {
    diverge(KIND_WEIGHT, "): fc1.weight holds 1 NaN/Inf value after the update (nan at index 5)");
}
END_TEST

// ----------------------------------------------------------------------------
// the command line

static char out[65536];

/* Run "oialr ARGS" in the temp dir; its output in out; the exit status. */
static int run(const char *args) { return tu_cli_run(dir, args, out, sizeof out); }

/* A learning rate of 100 diverges within the first epoch: exit status 3,
 * one line that names the step; the trajectory opens and analyses. */
START_TEST(cli_diverged_exit_status) {
    int st = run("train --dataset synthetic --limit 2000 --val 200 --model mlp:32 --lr 100 --epochs 2 --quiet "
                 "--record run.h5 --every 2");
    ck_assert_msg(st == 3, "exit %d:\n%s", st, out);
    const char *line = strstr(out, "oialr train: training diverged at step ");
    ck_assert_msg(line != NULL, "%s", out);
    ck_assert_msg(strstr(line, "lower the learning rate\n"), "%s", out);
    ck_assert_msg(run("analyze run.h5 -o an.h5 -q") == 0, "%s", out);
    ck_assert_msg(run("--help") == 0 && strstr(out, "3 training diverged"), "%s", out);
}
END_TEST

static Suite *diverge_suite(void) {
    Suite *s = suite_create("diverge");
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_set_timeout(lim, 60);
    tcase_add_test(lim, diverge_loss);
    tcase_add_test(lim, diverge_gradient);
    tcase_add_test(lim, diverge_weight);
    tcase_add_test(lim, cli_diverged_exit_status);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(diverge_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
