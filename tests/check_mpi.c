/*
 * check_mpi.c — data-parallel `oialr train` under `mpirun -np 2`
 * (docs/distributed.md), against the one-process run with the same global
 * batch, on synthetic data and a tiny MLP (the machine has 2 cores: the two
 * processes are oversubscribed, one BLAS thread each).
 *
 *   Core:   full rank and OIALR (delay policy: the switch step is known):
 *           the loss curve of 2 processes within LOSS_TOL of 1 process, the
 *           final weights within WEIGHT_TOL, the OIALR events the same, both
 *           processes' final parameters and factors the same bytes
 *           (OIALR_MPI_DUMP), the trajectory readable and `oialr analyze`
 *           working on it; a run stopped (SIGTERM to both processes) and resumed
 *           with 2 processes ends with the same bytes as the run never
 *           stopped, and resumed with 1 process it finishes too.
 *   Limits: a global batch not divisible by 2 (uneven shards, weighted,
 *           and a last batch of 1 sample: still the 1-process curve); a batch smaller than the process
 *           count (refused, exit 2); a process that drifts (test mode
 *           OIALR_MPI_TEST_PERTURB): the parameter check stops the run; a
 *           process killed with SIGKILL: mpirun ends the others, with its
 *           message, within KILL_LIMIT seconds; the disk full on process 0
 *           alone: its message, and the job aborted (not left waiting).
 *
 * mpirun is run as root with --allow-run-as-root, as OpenMPI requires on
 * these machines. Plain pass of make check only: OpenMPI under ASan/TSan
 * reports its own allocations and races (the Makefile leaves it out there).
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oialr.h"
#include "util_cli.h"

/* Loss of one step, 2 processes vs 1: the sum of two half-batch gradients
 * rounds differently from one full-batch gradient (~1e-7 relative per step),
 * and the difference grows over the steps; measured: see docs/distributed.md */
#define LOSS_TOL 1e-3
#define WEIGHT_TOL 1e-3
#define KILL_LIMIT 20

static char dir[256];
static char out[1 << 16];
static char out2[1 << 16]; /* the 2-process run's output in one_vs_two */

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-mpi-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    oialr_set_log(NULL, NULL, OIALR_LOG_WARN);
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The run: 2000 synthetic images (200 for validation), mlp:128,64, batch 64,
 * 2 epochs of 29 steps, a snapshot every step; not --quiet: process 0's
 * "mpi:" summary is read. */
#define RUN "train --dataset synthetic --limit 2000 --val 200 --model mlp:128,64 --epochs 2 --lr 0.01 --seed 5 " \
            "--threads 1 --every 1"
#define LOWRANK "--oialr delay:20 --oialr-every 10"

/* "oialr ARGS" under mpirun -np np (np 0: without mpirun) in dir, with env
 * (NAME=VALUE or ""), output into out, bounded by 120 s; the exit status. */
static int run(int np, const char *env, const char *args) {
    char bin[PATH_MAX], cmd[8192], mpi[256] = "";
    tu_cli_bin(bin, sizeof bin);
    if (np > 0) {
        /* -x: the variable reaches the processes on any node */
        char x[64] = "";
        if (env[0]) snprintf(x, sizeof x, "-x %.*s", (int)strcspn(env, "="), env);
        snprintf(mpi, sizeof mpi, "mpirun --allow-run-as-root --oversubscribe -np %d %s", np, x);
    }
    snprintf(cmd, sizeof cmd, "cd '%s' && %s timeout 120 %s '%s' %s 2>&1", dir, env, mpi, bin, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The whole of a file (NULL if absent), NUL-terminated; *n its bytes. */
static char *slurp(const char *name, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *b = malloc(len > 0 ? (size_t)len + 1 : 1);
    ck_assert_ptr_nonnull(b);
    *n = fread(b, 1, len > 0 ? (size_t)len : 0, f);
    b[*n] = '\0'; /* text files are read as strings */
    fclose(f);
    return b;
}

/* The two processes' OIALR_MPI_DUMP files of prefix hold the same bytes. */
static void same_dumps(const char *prefix) {
    char a[128], b[128];
    snprintf(a, sizeof a, "%s.rank0.bin", prefix);
    snprintf(b, sizeof b, "%s.rank1.bin", prefix);
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    ck_assert_msg(x && y, "no dump %s / %s", a, b);
    ck_assert_msg(na == nb && na > 0 && !memcmp(x, y, na), "processes 0 and 1 end with different parameters (%zu, %zu bytes)",
                  na, nb);
    free(x);
    free(y);
}

static void same_files(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    ck_assert_msg(x && y, "no file %s / %s", a, b);
    ck_assert_msg(na == nb && !memcmp(x, y, na), "%s and %s differ", a, b);
    free(x);
    free(y);
}

static oialr_traj *open_traj(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    oialr_traj *t = NULL;
    ck_assert_msg(oialr_traj_open(&t, path, OIALR_TRAJ_READ) == OIALR_OK, "%s: %s", path, oialr_errmsg());
    return t;
}

/* The loss curves of two trajectories (every step) within tol; returns the
 * largest difference. */
static double compare_loss(const char *a, const char *b, int64_t want_rows, double tol) {
    oialr_traj *ta = open_traj(a), *tb = open_traj(b);
    static double la[4096], lb[4096];
    int64_t na = 0, nb = 0;
    ck_assert_int_eq(oialr_traj_read_column(ta, "loss", la, 4096, &na), OIALR_OK);
    ck_assert_int_eq(oialr_traj_read_column(tb, "loss", lb, 4096, &nb), OIALR_OK);
    ck_assert_int_eq(na, nb);
    ck_assert_int_ge(na, want_rows);
    double worst = 0;
    int64_t finite = 0;
    for (int64_t i = 0; i < na; i++) {
        if (isnan(la[i]) && isnan(lb[i])) continue; /* the row before the first step */
        finite++;
        double d = fabs(la[i] - lb[i]);
        ck_assert_msg(d <= tol, "row %lld: loss %.9g with 1 process, %.9g with 2 (tolerance %g)", (long long)i, la[i],
                      lb[i], tol);
        if (d > worst) worst = d;
    }
    ck_assert_int_ge(finite, want_rows - 1);
    oialr_traj_close(ta);
    oialr_traj_close(tb);
    return worst;
}

/* The last snapshot of every layer within tol (U Σ Vᵀ for a factored one);
 * they must be of the same step (a stopped run has one snapshot more, at
 * its stop). */
static void compare_weights(const char *a, const char *b, double tol) {
    oialr_traj *ta = open_traj(a), *tb = open_traj(b);
    ck_assert_int_eq(oialr_traj_nlayers(ta), oialr_traj_nlayers(tb));
    for (int i = 0; i < oialr_traj_nlayers(ta); i++) {
        const oialr_traj_layer *la = oialr_traj_layer_at(ta, i), *lb = oialr_traj_layer_at(tb, i);
        ck_assert_str_eq(la->name, lb->name);
        ck_assert_int_eq(la->steps[la->nsnap - 1], lb->steps[lb->nsnap - 1]);
        size_t n = (size_t)(la->rows * la->cols);
        float *wa = malloc(n * sizeof *wa), *wb = malloc(n * sizeof *wb);
        ck_assert_int_eq(oialr_traj_read(ta, i, la->nsnap - 1, wa, n), OIALR_OK);
        ck_assert_int_eq(oialr_traj_read(tb, i, lb->nsnap - 1, wb, n), OIALR_OK);
        double worst = 0;
        for (size_t k = 0; k < n; k++) worst = fmax(worst, fabs((double)wa[k] - wb[k]));
        ck_assert_msg(worst <= tol, "%s: final weights differ by %g (tolerance %g)", la->name, worst, tol);
        free(wa);
        free(wb);
    }
    oialr_traj_close(ta);
    oialr_traj_close(tb);
}

/* The same OIALR events (step, layer, kind, ranks) in both files; their count. */
static int64_t compare_events(const char *a, const char *b) {
    oialr_traj *ta = open_traj(a), *tb = open_traj(b);
    static oialr_traj_event ea[256], eb[256];
    int64_t na = 0, nb = 0;
    ck_assert_int_eq(oialr_traj_read_events(ta, ea, 256, &na), OIALR_OK);
    ck_assert_int_eq(oialr_traj_read_events(tb, eb, 256, &nb), OIALR_OK);
    ck_assert_int_eq(na, nb);
    for (int64_t i = 0; i < na; i++) {
        ck_assert_int_eq(ea[i].step, eb[i].step);
        ck_assert_str_eq(ea[i].layer, eb[i].layer);
        ck_assert_int_eq(ea[i].kind, eb[i].kind);
        ck_assert_int_eq(ea[i].rank_before, eb[i].rank_before);
        ck_assert_int_eq(ea[i].rank_after, eb[i].rank_after);
    }
    oialr_traj_close(ta);
    oialr_traj_close(tb);
    return na;
}

static void analyzable(const char *name) {
    char args[512];
    snprintf(args, sizeof args, "analyze %s -o %s.out --quiet --no-angles --threads 1", name, name);
    int st = tu_cli_run(dir, args, out, sizeof out);
    ck_assert_msg(st == 0, "oialr analyze %s: exit %d: %s", name, st, out);
}

/* 1 process and 2 with the same flags: curves, weights, both processes'
 * bytes, the trajectory. */
static void one_vs_two(const char *extra, const char *tag, int64_t steps) {
    char a1[1024], a2[1024], env[512], f1[64], f2[64];
    snprintf(f1, sizeof f1, "%s-1.h5", tag);
    snprintf(f2, sizeof f2, "%s-2.h5", tag);
    snprintf(a1, sizeof a1, RUN " %s --record %s", extra, f1);
    snprintf(a2, sizeof a2, RUN " %s --record %s --mpi-check-every 1", extra, f2);
    snprintf(env, sizeof env, "OIALR_MPI_DUMP=%s/%s", dir, tag);
    int st = run(0, "", a1);
    ck_assert_msg(st == 0, "1 process: exit %d: %s", st, out);
    ck_assert_ptr_null(strstr(out, "mpi:")); /* alone: no MPI */
    st = run(2, env, a2);
    ck_assert_msg(st == 0, "2 processes: exit %d: %s", st, out);
    /* one process speaks: one final line, rank 0's summary */
    char *f = strstr(out, "final:");
    ck_assert_msg(f && !strstr(f + 1, "final:"), "want one final line: %s", out);
    ck_assert_msg(strstr(out, "mpi: 2 processes"), "no mpi summary: %s", out);
    memcpy(out2, out, sizeof out2);
    same_dumps(tag);
    double d = compare_loss(f1, f2, steps, LOSS_TOL);
    fprintf(stderr, "check_mpi: %s: largest loss difference 1 vs 2 processes %.3g (at least %lld metrics rows)\n", tag,
            d, (long long)steps);
    compare_weights(f1, f2, WEIGHT_TOL);
    analyzable(f2);
}

START_TEST(test_full_rank) { one_vs_two("--batch 64", "full", 58); }
END_TEST

START_TEST(test_oialr) {
    one_vs_two("--batch 64 " LOWRANK, "lowrank", 58);
    int64_t n = compare_events("lowrank-1.h5", "lowrank-2.h5");
    ck_assert_int_ge(n, 4); /* 2 switches at step 20, then rotations */
    /* the bytes all-reduced fall with the trainable share */
    const char *m = strstr(out2, "mpi: 2 processes");
    ck_assert_ptr_nonnull(m);
    double first = 0, last = 0, pct = 0, tr = 0;
    ck_assert_int_eq(sscanf(strstr(m, "per step: "), "per step: %lf bytes at step %*d, %lf at step %*d (%lf%%; trainable %lf%%)",
                            &first, &last, &pct, &tr),
                     4);
    ck_assert_msg(last < 0.5 * first && pct <= 1.2 * tr + 0.01, "all-reduce %g -> %g bytes (%g%%), trainable %g%%", first,
                  last, pct, tr);
}
END_TEST

/* stopped by SIGTERM to both processes once training has begun, then resumed */
START_TEST(test_stop_resume) {
    const char *args = "train --dataset synthetic --limit 2000 --val 200 --model mlp:128,64 --epochs 8 --batch 64 "
                       "--lr 0.01 --seed 5 --threads 1 --quiet --every 50 --checkpoint-every 5 " LOWRANK;
    char a[1024], env[512];
    /* the run never stopped */
    snprintf(a, sizeof a, "%s --record whole.h5", args);
    snprintf(env, sizeof env, "OIALR_MPI_DUMP=%s/whole", dir);
    int st = run(2, env, a);
    ck_assert_msg(st == 0, "exit %d: %s", st, out);
    /* the run stopped: in the background, mpirun's pid in a file */
    char bin[PATH_MAX], cmd[8192], path[512];
    tu_cli_bin(bin, sizeof bin);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { mpirun --allow-run-as-root --oversubscribe -np 2 '%s' %s --record part.h5 >part.log 2>&1 & "
             "echo $! >mpirun.pid; }",
             dir, bin, args);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/mpirun.pid", dir);
    FILE *pf = fopen(path, "r");
    ck_assert_ptr_nonnull(pf);
    int pid = 0;
    ck_assert_int_eq(fscanf(pf, "%d", &pid), 1);
    fclose(pf);
    /* once process 0 has created the file, training has begun and every
     * process has its handler. Then, until the file holds the first OIALR
     * event (the switch at step 20): freeze the processes (mpirun's
     * children, SIGSTOP), look, thaw them. Frozen after the switch, they are
     * sent SIGTERM and thawed: the stop request is there when they run
     * again, however loaded the machine, and they stop together at a step
     * after the switch and checkpoint there */
    snprintf(path, sizeof path, "%s/part.h5", dir);
    for (int i = 0; i < 3000 && access(path, F_OK) != 0; i++) usleep(10000);
    ck_assert_msg(access(path, F_OK) == 0, "part.h5 not created after 30 s");
    int kids[2], nk = 0;
    snprintf(cmd, sizeof cmd, "pgrep -P %d", pid);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    while (nk < 2 && fscanf(p, "%d", &kids[nk]) == 1) nk++;
    pclose(p);
    ck_assert_int_eq(nk, 2);
    int64_t events = 0;
    for (int i = 0; i < 1500 && events == 0; i++) {
        for (int k = 0; k < nk; k++) ck_assert_int_eq(kill(kids[k], SIGSTOP), 0);
        oialr_traj *t = NULL;
        if (oialr_traj_open(&t, path, OIALR_TRAJ_READ) == OIALR_OK) {
            events = oialr_traj_get_info(t)->nevents;
            oialr_traj_close(t);
        }
        if (events) break;
        for (int k = 0; k < nk; k++) ck_assert_int_eq(kill(kids[k], SIGCONT), 0);
        usleep(20000);
    }
    ck_assert_msg(events > 0, "no OIALR event in part.h5 after 30 s");
    for (int k = 0; k < nk; k++) ck_assert_int_eq(kill(kids[k], SIGTERM), 0);
    for (int k = 0; k < nk; k++) ck_assert_int_eq(kill(kids[k], SIGCONT), 0);
    for (int i = 0; i < 400 && kill(pid, 0) == 0; i++) usleep(50000);
    size_t n = 0;
    char *log = slurp("part.log", &n);
    ck_assert_ptr_nonnull(log);
    const char *at = strstr(log, "interrupted at step");
    ck_assert_msg(at, "not interrupted: %s", log);
    fprintf(stderr, "check_mpi: stop/resume: %.*s of 232\n", (int)strcspn(at, "\n"), at);
    ck_assert_int_ge(atoi(at + strlen("interrupted at step")), 20); /* after the switch */
    free(log);
    char cp[1024];
    snprintf(cp, sizeof cp, "cp '%s/part.h5' '%s/part1.h5'", dir, dir);
    ck_assert_int_eq(system(cp), 0);
    /* resumed with 2 processes: the same bytes as the run never stopped */
    snprintf(env, sizeof env, "OIALR_MPI_DUMP=%s/part", dir);
    st = run(2, env, "train --resume part.h5 --quiet");
    ck_assert_msg(st == 0, "resume: exit %d: %s", st, out);
    same_files("part.rank0.bin", "whole.rank0.bin");
    same_files("part.rank1.bin", "whole.rank1.bin");
    compare_events("part.h5", "whole.h5");
    analyzable("part.h5");
    /* the copy resumed by 1 process: it finishes, near the 2-process run */
    st = run(0, "", "train --resume part1.h5 --quiet");
    ck_assert_msg(st == 0, "resume with 1 process: exit %d: %s", st, out);
    compare_weights("part1.h5", "whole.h5", WEIGHT_TOL);
    compare_events("part1.h5", "whole.h5");
}
END_TEST

/* 1800 training samples in batches of 7: shards of 3 and 4, and the last
 * batch of the epoch has 1 sample, so process 0 has none that step */
START_TEST(test_uneven_batch) { one_vs_two("--batch 7 --epochs 1 --every 10", "odd", 26); }
END_TEST

START_TEST(test_batch_too_small) {
    int st = run(2, "", RUN " --batch 1");
    ck_assert_int_eq(st, 2);
    ck_assert_msg(strstr(out, "--batch 1 is smaller than the 2 processes"), "%s", out);
    /* said once, by process 0 */
    char *m = strstr(out, "is smaller than");
    ck_assert_ptr_null(strstr(m + 1, "is smaller than"));
}
END_TEST

START_TEST(test_drift_detected) {
    int st = run(2, "OIALR_MPI_TEST_PERTURB=7", RUN " --batch 64 --epochs 1 --mpi-check-every 5");
    ck_assert_int_eq(st, 1);
    ck_assert_msg(strstr(out, "the parameters differ across processes after step 10"), "%s", out);
}
END_TEST

/* The disk fills on process 0 alone (a 2 MB tmpfs, mounted in a mount
 * namespace of the test's own, where the machine lets it: root or
 * CAP_SYS_ADMIN): it fails alone, says why, and aborts the job instead of
 * leaving process 1 in an all-reduce. */
START_TEST(test_disk_full_alone) {
    char cmd[8192], bin[PATH_MAX];
    tu_cli_bin(bin, sizeof bin);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/small' && unshare -m sh -c \"mount -t tmpfs -o size=2m tmpfs '%s/small'\" 2>/dev/null",
             dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "check_mpi: disk full: skipped (cannot mount a tmpfs in a mount namespace here)\n");
        return;
    }
    snprintf(cmd, sizeof cmd,
             "cd '%s' && timeout 120 unshare -m sh -c \"mount -t tmpfs -o size=2m tmpfs '%s/small' && "
             "mpirun --allow-run-as-root --oversubscribe -np 2 '%s' train --dataset synthetic --model mlp:128,64 "
             "--epochs 5 --batch 64 --threads 1 --quiet --every 1 --record small/full.h5\" 2>&1",
             dir, dir, bin);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 124, "exit %d: %s", st, out);
    ck_assert_msg(strstr(out, "No space left on device"), "no reason given: %s", out);
    ck_assert_msg(strstr(out, "stopping every process"), "no abort: %s", out);
}
END_TEST

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* SIGKILL to one process mid-run: mpirun stops the other, and says so */
START_TEST(test_killed_process) {
    char bin[PATH_MAX], cmd[8192], path[512];
    tu_cli_bin(bin, sizeof bin);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 '%s' train --dataset synthetic "
             "--model mlp:128,64 --epochs 200 --batch 64 --seed 5 --threads 1 --every 20 --record killed.h5 "
             ">killed.log 2>&1 & echo $! >timeout.pid; wait $!; echo $? >killed.rc; } & ",
             dir, bin);
    ck_assert_int_eq(system(cmd), 0);
    /* the processes: the children of mpirun, the child of timeout; once
     * process 0 has written two snapshots, the last of them is killed */
    snprintf(path, sizeof path, "%s/killed.h5", dir);
    int victim = 0;
    for (int i = 0; i < 600 && !victim; i++) {
        oialr_traj *t = NULL;
        if (access(path, F_OK) == 0 && oialr_traj_open(&t, path, OIALR_TRAJ_READ) == OIALR_OK) {
            int ok = oialr_traj_nlayers(t) > 0 && oialr_traj_layer_at(t, 0)->nsnap >= 2;
            oialr_traj_close(t);
            if (ok) {
                char pg[600];
                snprintf(pg, sizeof pg, "pgrep -P \"$(pgrep -P \"$(cat '%s/timeout.pid')\")\" | tail -1", dir);
                FILE *p = popen(pg, "r");
                ck_assert_ptr_nonnull(p);
                if (fscanf(p, "%d", &victim) != 1) victim = 0;
                pclose(p);
            }
        }
        if (!victim) usleep(50000);
    }
    ck_assert_msg(victim > 0, "the run did not start");
    double t0 = now();
    ck_assert_int_eq(kill(victim, SIGKILL), 0);
    snprintf(path, sizeof path, "%s/killed.rc", dir);
    while (access(path, F_OK) != 0 && now() - t0 < 60) usleep(50000);
    double took = now() - t0;
    usleep(100000);
    size_t n = 0;
    char *rc = slurp("killed.rc", &n), *log = slurp("killed.log", &n);
    ck_assert_ptr_nonnull(rc);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(took < KILL_LIMIT, "mpirun took %.1f s to stop after the kill", took);
    ck_assert_msg(atoi(rc) != 0 && atoi(rc) != 124, "mpirun exit %s after the kill", rc);
    ck_assert_msg(strstr(log, "exited on signal 9"), "no message naming the killed process: %s", log);
    fprintf(stderr, "check_mpi: killed one process: mpirun stopped in %.2f s (exit %d)\n", took, atoi(rc));
    /* what process 0 recorded is readable */
    oialr_traj *t = open_traj("killed.h5");
    ck_assert_int_ge(oialr_traj_layer_at(t, 0)->nsnap, 2);
    oialr_traj_close(t);
    free(rc);
    free(log);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mpi");
    TCase *c = tcase_create("Core");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_set_timeout(c, 300);
    tcase_add_test(c, test_full_rank);
    tcase_add_test(c, test_oialr);
    tcase_add_test(c, test_stop_resume);
    suite_add_tcase(s, c);
    TCase *l = tcase_create("Limits");
    tcase_add_checked_fixture(l, setup, teardown);
    tcase_set_timeout(l, 300);
    tcase_add_test(l, test_uneven_batch);
    tcase_add_test(l, test_batch_too_small);
    tcase_add_test(l, test_drift_detected);
    tcase_add_test(l, test_killed_process);
    tcase_add_test(l, test_disk_full_alone);
    suite_add_tcase(s, l);
    return s;
}

int main(void) {
    /* OpenMPI's own variables for running as root (the flag is given too) */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    /* 2 processes on 2 shared cores: waiting in a collective yields the core
     * instead of spinning (the tests only; the CLI keeps OpenMPI's default) */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
