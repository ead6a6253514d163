/*
 * check_resume.c — a run killed with SIGKILL and resumed from its
 * checkpoint ends bit for bit as the run that was never stopped.
 *
 * The kill test: seeded random moments of a short run, full rank and OIALR
 * (delay policy, so the switch step is known), each killed in a child
 * process — at a step's end, while the writer thread writes a checkpoint,
 * while the controller switches a layer — then: the file opens, `oialr
 * analyze` works on it, and a resumed child finishes the run; its file must
 * equal the uninterrupted run's in every snapshot, metrics row (wall time
 * aside), event and the final checkpoint. Also through the CLI: `oialr
 * train --record`, SIGKILL, `oialr train --resume`, and the refusals of
 * --resume (a contradicting flag, a file with no checkpoint).
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "analyze.h"
#include "oialr.h"
#include "oialr/record.h"
#include "util_cli.h"

#define OK(x) ck_assert_int_eq((x), OIALR_OK)

static char dir[256];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-resume-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    oialr_set_log(NULL, NULL, OIALR_LOG_WARN); /* "opened in SWMR-read mode" of every killed file */
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

// ----------------------------------------------------------------------------
// the run: synthetic 16x16 data, 4 classes, mlp:96,96, AdamW, 3 epochs of
// 71 steps; snapshots every 5 steps, checkpoints every 4; OIALR: delay:60,
// a check every 20 steps (rotations and truncations after the switch)

#define EPOCHS 3
#define EVERY 5
#define CKPT_EVERY 4
#define SWITCH_STEP 60

enum { KILL_NONE, KILL_STEP, KILL_CKPT, KILL_SWITCH, KILL_STOP /* not a kill: stop as Ctrl-C does */ };

typedef struct killer {
    int mode;
    int64_t at;       /* the step */
    unsigned delay_us; /* KILL_CKPT, KILL_SWITCH: after this long in another thread */
} killer;

static void *kill_later(void *arg) {
    killer *k = arg;
    struct timespec ts = {0, (long)k->delay_us * 1000L};
    nanosleep(&ts, NULL);
    raise(SIGKILL);
    return NULL;
}

static void kill_soon(killer *k) {
    if (k->delay_us == 0) raise(SIGKILL);
    pthread_t th;
    pthread_create(&th, NULL, kill_later, k);
}

/* KILL_CKPT: the recorder (an earlier hook) has queued the checkpoint of
 * this step; its writer thread is writing it while the kill comes. */
static int killer_step_begin(oialr_trainer *t, void *user) {
    killer *k = user;
    if (k->mode == KILL_CKPT && t->metrics.step == k->at) kill_soon(k);
    return 0;
}

/* KILL_STEP: right after the step; KILL_SWITCH: this hook runs before the
 * controller, which switches at this step while the kill comes. */
static int killer_step_end(oialr_trainer *t, void *user) {
    killer *k = user;
    if (t->metrics.step == k->at && (k->mode == KILL_STEP || k->mode == KILL_SWITCH)) kill_soon(k);
    if (t->metrics.step == k->at && k->mode == KILL_STOP) t->stop = 1;
    return 0;
}

/* One run into path (resume: continue it); 0 when it ran to its end. */
static int run(const char *path, int lowrank, int resume, killer *k) {
    oialr_set_threads(1);
    oialr_set_log(NULL, NULL, OIALR_LOG_WARN);
    oialr_dataset ds;
    oialr_loader trl, val;
    oialr_model *m = NULL;
    oialr_trainer tr;
    memset(&tr, 0, sizeof tr);
    int rc = oialr_dataset_synthetic(&ds, 3000, 1, 16, 16, 4, 0.3f, 7);
    if (!rc) rc = oialr_loader_split(&trl, &val, &ds, 700, 7);
    if (!rc) rc = oialr_model_create(&m, "mlp:96,96", 1, 16, 16, 4, 32, 7);
    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.epochs = EPOCHS;
    cfg.batch = 32;
    cfg.seed = 7;
    oialr_optim_defaults(&cfg.optim, OIALR_OPT_ADAMW);
    if (!rc) rc = oialr_trainer_init(&tr, &cfg, m, &trl, &val, NULL);
    oialr_hook rec = {0}, lr = {0}, kh = {.name = "killer", .user = k, .step_begin = killer_step_begin,
                                           .step_end = killer_step_end};
    oialr_record_options ro;
    oialr_record_options_default(&ro);
    ro.path = path;
    ro.every = EVERY;
    ro.checkpoint_every = CKPT_EVERY;
    ro.resume = resume;
    if (!rc) rc = oialr_record_hook_init(&rec, &ro);
    if (!rc) rc = oialr_trainer_add_hook(&tr, &rec);
    if (!rc && k) rc = oialr_trainer_add_hook(&tr, &kh);
    if (!rc && lowrank) {
        oialr_lowrank_options lo;
        oialr_lowrank_options_default(&lo);
        lo.policy.kind = OIALR_POLICY_DELAY;
        lo.policy.delay = SWITCH_STEP;
        lo.every = 20;
        lo.beta = 0.3;
        lo.recorder = &rec;
        rc = oialr_lowrank_hook_init(&lr, &lo);
        if (!rc) rc = oialr_trainer_add_hook(&tr, &lr);
    }
    if (!rc && resume) rc = oialr_record_resume(&tr, path);
    if (!rc) rc = oialr_train_run(&tr);
    if (rc && rc != OIALR_ERR_INTERRUPTED && !resume) fprintf(stderr, "run %s: %s\n", path, oialr_errmsg());
    oialr_lowrank_hook_free(&lr);
    oialr_record_hook_free(&rec);
    oialr_trainer_free(&tr);
    oialr_model_free(m);
    oialr_loader_free(&trl);
    oialr_loader_free(&val);
    oialr_dataset_free(&ds);
    return rc;
}

/* run() in a child; its wait status. */
static int run_child(const char *path, int lowrank, int resume, killer *k) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(run(path, lowrank, resume, k) == OIALR_OK ? 0 : 3);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return st;
}

// ----------------------------------------------------------------------------
// two files equal: every snapshot (as the reader forms it), metrics but the
// wall time, events, the committed checkpoint

static void same_file(const char *a, const char *b, const char *what) {
    oialr_traj *x = NULL, *y = NULL;
    OK(oialr_traj_open(&x, a, OIALR_TRAJ_READ));
    OK(oialr_traj_open(&y, b, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_nlayers(x), oialr_traj_nlayers(y));
    for (int i = 0; i < oialr_traj_nlayers(x); i++) {
        const oialr_traj_layer *lx = oialr_traj_layer_at(x, i), *ly = oialr_traj_layer_at(y, i);
        ck_assert_msg(lx->nsnap == ly->nsnap, "%s: %s has %lld snapshots, uninterrupted %lld", what, lx->name,
                      (long long)ly->nsnap, (long long)lx->nsnap);
        size_t n = (size_t)(lx->rows * lx->cols);
        float *wx = malloc(n * sizeof *wx), *wy = malloc(n * sizeof *wy);
        for (int64_t s = 0; s < lx->nsnap; s++) {
            ck_assert_msg(lx->steps[s] == ly->steps[s], "%s: %s snapshot %lld at step %lld, uninterrupted %lld", what,
                          lx->name, (long long)s, (long long)ly->steps[s], (long long)lx->steps[s]);
            OK(oialr_traj_read(x, i, s, wx, n));
            OK(oialr_traj_read(y, i, s, wy, n));
            ck_assert_msg(!memcmp(wx, wy, n * sizeof *wx), "%s: %s differs at step %lld", what, lx->name,
                          (long long)lx->steps[s]);
        }
        free(wx);
        free(wy);
    }
    const oialr_traj_info *ix = oialr_traj_get_info(x), *iy = oialr_traj_get_info(y);
    ck_assert_msg(ix->nmetrics == iy->nmetrics, "%s: %lld metrics rows, uninterrupted %lld", what,
                  (long long)iy->nmetrics, (long long)ix->nmetrics);
    int64_t nr = ix->nmetrics, got;
    double *cx = malloc((size_t)(nr + 1) * sizeof *cx), *cy = malloc((size_t)(nr + 1) * sizeof *cy);
    for (int c = -1; c < ix->ncolumns; c++) {
        const char *name = c < 0 ? "step" : oialr_traj_column_name(x, c);
        if (!strcmp(name, "seconds")) continue;
        OK(oialr_traj_read_column(x, name, cx, nr, &got));
        OK(oialr_traj_read_column(y, name, cy, nr, &got));
        for (int64_t r = 0; r < nr; r++)
            ck_assert_msg(!memcmp(&cx[r], &cy[r], sizeof *cx), "%s: metrics %s row %lld: %g, uninterrupted %g", what,
                          name, (long long)r, cy[r], cx[r]);
    }
    free(cx);
    free(cy);
    ck_assert_int_eq(ix->nevents, iy->nevents);
    if (ix->nevents > 0) {
        oialr_traj_event *ex = calloc((size_t)ix->nevents, sizeof *ex), *ey = calloc((size_t)ix->nevents, sizeof *ey);
        OK(oialr_traj_read_events(x, ex, ix->nevents, &got));
        OK(oialr_traj_read_events(y, ey, ix->nevents, &got));
        for (int64_t e = 0; e < ix->nevents; e++)
            ck_assert_msg(ex[e].step == ey[e].step && ex[e].kind == ey[e].kind && !strcmp(ex[e].layer, ey[e].layer) &&
                              ex[e].rank_after == ey[e].rank_after && ex[e].rank_before == ey[e].rank_before &&
                              !memcmp(&ex[e].stability, &ey[e].stability, sizeof ex[e].stability),
                          "%s: event %lld differs", what, (long long)e);
        free(ex);
        free(ey);
    }
    size_t np = 0, np2 = 0;
    OK(oialr_traj_ckpt_array_size(x, "params", &np));
    OK(oialr_traj_ckpt_array_size(y, "params", &np2));
    ck_assert_uint_eq(np, np2);
    float *px = malloc(np * sizeof *px), *py = malloc(np * sizeof *py);
    OK(oialr_traj_ckpt_get_array(x, "params", px, np));
    OK(oialr_traj_ckpt_get_array(y, "params", py, np));
    ck_assert_msg(!memcmp(px, py, np * sizeof *px), "%s: final parameters differ", what);
    free(px);
    free(py);
    oialr_traj_close(x);
    oialr_traj_close(y);
}

/* `oialr analyze` on a killed file (in-process, as the CLI runs it). */
static int analyze(const char *path, const char *out) {
    char *argv[] = {"analyze", (char *)path, "-o", (char *)out, "--force", "--quiet", "--no-angles", "--threads", "1", NULL};
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(oialr_cmd_analyze(9, argv));
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int g_kills, g_resumed; /* for the summary line */

static void kill_and_resume(int lowrank, const char *ref, killer *k, int i) {
    char path[512], out[512], what[96];
    snprintf(path, sizeof path, "%s/k%d.h5", dir, i);
    snprintf(out, sizeof out, "%s/k%d-analysis.h5", dir, i);
    static const char *const mode[] = {"", "at a step end", "during a checkpoint write", "during a switch"};
    snprintf(what, sizeof what, "%s kill %d (step %lld, %s, +%u us)", lowrank ? "OIALR" : "full-rank", i,
             (long long)k->at, mode[k->mode], k->delay_us);
    int st = run_child(path, lowrank, 0, k);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s: the run was not killed (status %d)", what, st);
    g_kills++;
    oialr_traj *t = NULL;
    ck_assert_msg(oialr_traj_open(&t, path, OIALR_TRAJ_READ) == OIALR_OK, "%s: the file does not open: %s", what,
                  oialr_errmsg());
    int has = oialr_traj_get_info(t)->has_ckpt;
    int64_t most = 0;
    for (int li = 0; li < oialr_traj_nlayers(t); li++)
        if (oialr_traj_layer_at(t, li)->nsnap > most) most = oialr_traj_layer_at(t, li)->nsnap;
    oialr_traj_close(t);
    ck_assert_msg(has, "%s: no checkpoint", what);
    /* a file killed before its second snapshot was written has nothing to
     * compare yet: analyze refuses it in one line ("lag 1 needs more than 1
     * snapshots"), exit 1, never a crash */
    int ast = analyze(path, out);
    ck_assert_msg(most >= 2 ? ast == 0 : ast == 1, "%s: oialr analyze exits %d on the killed file (%lld snapshots)",
                  what, ast, (long long)most);
    st = run_child(path, lowrank, 1, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the resumed run failed (status %d)", what, st);
    same_file(ref, path, what);
    g_resumed++;
    unlink(path);
    unlink(out);
}

/* Kills per kind of run: 12 (24 in all, the issue asks for >= 20); under
 * ASan, whose pass of make check repeats the plain one at 3x the cost, 4
 * of each moment's kind — the same code paths, checked for memory errors. */
#ifndef KILLS
#if defined(__SANITIZE_ADDRESS__)
#define KILLS 4
#else
#define KILLS 12
#endif
#endif

/* KILLS seeded kills of one kind of run: at step ends, during checkpoint
 * writes and (OIALR) during the switch, at random steps and delays. */
static void kill_test(int lowrank, unsigned seed) {
    char ref[512];
    snprintf(ref, sizeof ref, "%s/ref.h5", dir);
    int st = run_child(ref, lowrank, 0, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the uninterrupted run failed");
    oialr_rng r;
    oialr_rng_seed(&r, seed, 1);
    int64_t total = 71 * EPOCHS;
    for (int i = 0; i < KILLS; i++) {
        killer k = {.mode = KILL_STEP};
        switch (i % 4) {
        case 0: case 1: /* a step's end, anywhere after the first checkpoint */
            k.mode = KILL_STEP;
            k.at = 4 * CKPT_EVERY + (int64_t)oialr_rng_below(&r, (uint32_t)(total - 4 * CKPT_EVERY - 1));
            break;
        case 2: /* a checkpoint being written */
            k.mode = KILL_CKPT;
            k.at = CKPT_EVERY * (2 + (int64_t)oialr_rng_below(&r, (uint32_t)(total / CKPT_EVERY - 3)));
            k.delay_us = oialr_rng_below(&r, 3000);
            break;
        case 3: /* the switch (OIALR), else one more checkpoint */
            k.mode = lowrank ? KILL_SWITCH : KILL_CKPT;
            k.at = lowrank ? SWITCH_STEP : CKPT_EVERY * (2 + (int64_t)oialr_rng_below(&r, (uint32_t)(total / CKPT_EVERY - 3)));
            k.delay_us = oialr_rng_below(&r, lowrank ? 4000 : 3000);
            break;
        }
        kill_and_resume(lowrank, ref, &k, i);
    }
}

START_TEST(test_kill_full_rank) {
    g_kills = g_resumed = 0;
    kill_test(0, 2026);
    printf("kill test, full rank: %d killed, %d resumed bit-identical\n", g_kills, g_resumed);
}
END_TEST

START_TEST(test_kill_oialr) {
    g_kills = g_resumed = 0;
    kill_test(1, 1202);
    printf("kill test, OIALR: %d killed, %d resumed bit-identical\n", g_kills, g_resumed);
}
END_TEST

/* A run stopped as Ctrl-C stops it checkpoints at the stop and resumes
 * bit for bit; one killed before its first checkpoint is refused, saying so. */
START_TEST(test_stop_and_resume) {
    char ref[512], path[512];
    snprintf(ref, sizeof ref, "%s/ref.h5", dir);
    snprintf(path, sizeof path, "%s/stopped.h5", dir);
    ck_assert_int_eq(run(ref, 1, 0, NULL), OIALR_OK);
    killer stop = {.mode = KILL_STOP, .at = 51}; /* between two checkpoints and off the snapshot grid */
    ck_assert_int_eq(run(path, 1, 0, &stop), OIALR_ERR_INTERRUPTED);
    oialr_traj *t = NULL;
    int64_t step = -1;
    OK(oialr_traj_open(&t, path, OIALR_TRAJ_READ));
    OK(oialr_traj_ckpt_get_i64(t, "step", &step));
    oialr_traj_close(t);
    ck_assert_int_eq(step, 51);
    OK(run(path, 1, 1, NULL));
    /* the stop's own snapshot (step 51) is the only difference */
    oialr_traj *x = NULL;
    OK(oialr_traj_open(&x, path, OIALR_TRAJ_READ));
    int64_t snap;
    ck_assert_int_eq(oialr_traj_find_step(x, 0, 51, &snap), OIALR_OK);
    oialr_traj_close(x);

    /* killed before its first checkpoint: the file may not be in place
     * yet (it is published with its first data), or has no checkpoint */
    snprintf(path, sizeof path, "%s/early.h5", dir);
    ck_assert_int_eq(run_child(path, 0, 0, &(killer){.mode = KILL_STEP, .at = 2}) & 0x7f, SIGKILL);
    ck_assert_int_eq(run(path, 0, 1, NULL), OIALR_ERR_NOTFOUND);
    ck_assert_msg(strstr(oialr_errmsg(), "no checkpoint yet") || strstr(oialr_errmsg(), "No such file"), "%s",
                  oialr_errmsg());
}
END_TEST

/* Limits: a checkpoint that does not fit the run, or whose controller
 * state is damaged, is refused with a message; nothing of it is used. */
START_TEST(test_resume_limits) {
    char full[512], low[512];
    snprintf(full, sizeof full, "%s/full.h5", dir);
    snprintf(low, sizeof low, "%s/low.h5", dir);
    ck_assert_int_eq(run(full, 0, 0, NULL), OIALR_OK);
    ck_assert_int_eq(run(low, 1, 0, NULL), OIALR_OK);
    /* an OIALR run from a full-rank run's file: no controller state */
    ck_assert_int_ne(run(full, 1, 1, NULL), OIALR_OK);
    ck_assert_msg(strstr(oialr_errmsg(), "state_oialr"), "%s", oialr_errmsg());
    /* the controller state with a rank above the layer's */
    hid_t f = H5Fopen(low, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t d = H5Dopen2(f, "checkpoint/state_oialr", H5P_DEFAULT), ds = H5Dopen2(f, "checkpoint/slot", H5P_DEFAULT);
    int64_t slot = -1;
    ck_assert_int_ge(H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &slot), 0);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    int64_t *row = malloc(dims[1] * sizeof *row);
    hsize_t at[2] = {(hsize_t)slot, 0}, cnt[2] = {1, dims[1]};
    hid_t ms = H5Screate_simple(1, &dims[1], NULL);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, at, NULL, cnt, NULL);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_INT64, ms, sp, H5P_DEFAULT, row), 0);
    row[4 + 2] = 1 << 30; /* layer 0's rank: after the header, its switch step and stability */
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_INT64, ms, sp, H5P_DEFAULT, row), 0);
    free(row);
    H5Sclose(ms);
    H5Sclose(sp);
    H5Dclose(d);
    H5Dclose(ds);
    H5Fclose(f);
    ck_assert_int_eq(run(low, 1, 1, NULL), OIALR_ERR_FORMAT);
    ck_assert_msg(strstr(oialr_errmsg(), "damaged"), "%s", oialr_errmsg());
}
END_TEST

// ----------------------------------------------------------------------------
// the CLI

static char bin[512];

static int sh(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

START_TEST(test_cli_kill_resume) {
    tu_cli_bin(bin, sizeof bin);
    static char out[16384];
    char cmd[2048];
    const char *args = "--dataset synthetic --model mlp:256 --epochs 12 --opt adamw --threads 1 --every 10 "
                       "--checkpoint-every 5 --oialr delay:100 --oialr-every 50 --quiet";
    snprintf(cmd, sizeof cmd, "%s train %s --record %s/ref.h5 2>&1", bin, args, dir);
    ck_assert_msg(sh(cmd, out, sizeof out) == 0, "%s", out);
    oialr_rng r;
    oialr_rng_seed(&r, 42, 3);
    int kills = 0;
    for (int i = 0; i < 3; i++) {
        /* killed at a random moment after the file appears */
        snprintf(cmd, sizeof cmd,
                 "cd %s && rm -f k.h5 && (exec 2>/dev/null; %s train %s --record k.h5 >/dev/null 2>&1 & p=$!; "
                 "while [ ! -s k.h5 ] && kill -0 $p 2>/dev/null; do sleep 0.01; done; sleep %u.%03u; kill -9 $p 2>/dev/null; "
                 "wait $p; echo status $?)",
                 dir, bin, args, oialr_rng_below(&r, 2), oialr_rng_below(&r, 1000));
        sh(cmd, out, sizeof out);
        if (!strstr(out, "status 137")) continue; /* it finished first */
        kills++;
        snprintf(cmd, sizeof cmd, "cd %s && %s train --resume k.h5 --threads 1 2>&1", dir, bin);
        int rc = sh(cmd, out, sizeof out);
        if (rc != 0 && strstr(out, "no checkpoint yet")) continue; /* killed before its first checkpoint */
        ck_assert_msg(rc == 0, "resume failed: %s", out);
        char k[512], ref[512];
        snprintf(k, sizeof k, "%s/k.h5", dir);
        snprintf(ref, sizeof ref, "%s/ref.h5", dir);
        same_file(ref, k, "CLI kill");
    }
    printf("CLI kill test: %d of 3 killed before the end\n", kills);
    /* a flag that would change the run is refused, naming it; --threads is not */
    snprintf(cmd, sizeof cmd, "cd %s && %s train --resume ref.h5 --lr 0.5 2>&1", dir, bin);
    ck_assert_int_eq(sh(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--lr contradicts the run being resumed"), "%s", out);
    /* a finished run resumes to nothing new: its checkpoint is at the end */
    snprintf(cmd, sizeof cmd, "cd %s && %s train --resume ref.h5 --threads 1 --quiet 2>&1", dir, bin);
    ck_assert_msg(sh(cmd, out, sizeof out) == 0, "%s", out);
    /* a second writer: --resume while the run still records is refused,
     * and the run goes on unharmed */
    snprintf(cmd, sizeof cmd,
             "cd %s && rm -f live.h5 && (exec 2>/dev/null; %s train %s --epochs 40 --record live.h5 >/dev/null 2>&1 & "
             "p=$!; while [ ! -s live.h5 ] && kill -0 $p 2>/dev/null; do sleep 0.01; done; sleep 0.3; "
             "%s train --resume live.h5 --threads 1 2>&1; echo \"resume status $?\"; wait $p; echo \"run status $?\")",
             dir, bin, args, bin);
    sh(cmd, out, sizeof out);
    ck_assert_msg(strstr(out, "a writer process is recording this trajectory") && strstr(out, "resume status 1") &&
                      strstr(out, "run status 0"),
                  "%s", out);
    /* a file oialr train did not record (no /config/argv) */
    snprintf(cmd, sizeof cmd, "cd %s && printf 'x' > junk.h5 && %s train --resume junk.h5 2>&1", dir, bin);
    ck_assert_int_eq(sh(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "junk.h5"), "%s", out);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("resume");
    TCase *k = tcase_create("kill");
    tcase_add_checked_fixture(k, setup, teardown);
    tcase_set_timeout(k, 600);
    tcase_add_test(k, test_kill_full_rank);
    tcase_add_test(k, test_kill_oialr);
    tcase_add_test(k, test_stop_and_resume);
    tcase_add_test(k, test_resume_limits);
    tcase_add_test(k, test_cli_kill_resume);
    suite_add_tcase(s, k);
    return s;
}

int main(void) {
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
