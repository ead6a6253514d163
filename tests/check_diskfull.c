/*
 * check_diskfull.c — `oialr train --record` onto a disk that fills up
 * mid-run, on the command line as a user meets it: a real size-limited
 * filesystem (a small tmpfs mounted by the test, in a mount namespace of its
 * own, where the machine lets it mount: root or CAP_SYS_ADMIN; skipped with
 * a message otherwise), and the file size limit (RLIMIT_FSIZE, anywhere).
 * Each run must exit non-zero with one line naming the file and the
 * system's reason, and leave a trajectory that opens and reads up to its
 * last complete snapshot, and that `oialr analyze` takes.
 *
 * The library-level cases (every append failing cleanly, the writer
 * thread's error stopping the run) are in check_record.c.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oialr.h"
#include "util_cli.h"
#include "oialr/trajectory.h"

#define OK(expr)                                                                                             \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        ck_assert_msg(rc_ == OIALR_OK, "%s -> %d: %s", #expr, rc_, oialr_errmsg());                          \
    } while (0)

static char dir[256]; /* the test's directory; the tmpfs is mounted on dir/disk */
static char disk[300];
static int mounted;
static char out[1 << 17];

/* Unmount (if mounted) and remove the directory. A failed assertion in a
 * forked test _exits without its teardown: the mount is in the test
 * process's own namespace and goes with the process (the directory stays,
 * as in the other suites); with CK_FORK=no the teardown runs. */
static void cleanup(void) {
    if (mounted && umount2(disk, 0) != 0 && umount2(disk, MNT_DETACH) != 0) /* busy: detach it */
        fprintf(stderr, "check_diskfull: cannot unmount %s: %s\n", disk, strerror(errno));
    mounted = 0;
    if (dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "check_diskfull: cannot remove %s\n", dir);
        dir[0] = '\0';
    }
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-diskfull-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(disk, sizeof disk, "%s/disk", dir);
}

static void teardown(void) { cleanup(); }

/* Run "oialr ARGS" in dir; its output in out; the exit status. */
static int run(const char *args) { return tu_cli_run(dir, args, out, sizeof out); }

/* The line of out that holds needle (case-insensitive), copied into line;
 * 0 if none. */
static int line_with(const char *needle, char *line, size_t cap) {
    size_t k = strlen(needle);
    for (const char *s = out; *s;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        for (size_t i = 0; i + k <= len; i++)
            if (strncasecmp(s + i, needle, k) == 0) {
                snprintf(line, cap, "%.*s", (int)len, s);
                return 1;
            }
        s += len + (e != NULL);
    }
    return 0;
}

/* The recording that fills the disk: a snapshot of fc1 (64 x 784, 200 KB)
 * every step, 43 steps an epoch (5400 training images), 87 snapshots and
 * ~17 MB over the run; the definitions and two checkpoint slots take
 * ~0.9 MB of the 1.5 MB. */
#define FULL_RUN_SNAPSHOTS 87
#define TRAIN_ARGS "train --dataset synthetic --model mlp:64 --epochs 2 --every 1 --quiet"

/* After a run that failed for want of room, the message and the file:
 * one line naming the file and why, the file opening and reading (every
 * snapshot from step 0 on, consecutive, finite), oialr analyze taking it. */
static void check_full_run(int st, const char *file, const char *why) {
    ck_assert_msg(st != 0, "exit 0 on a full disk:\n%s", out);
    char line[1024];
    ck_assert_msg(line_with(why, line, sizeof line), "no line says '%s':\n%s", why, out);
    ck_assert_msg(strstr(line, "run.h5") && strncmp(line, "oialr train: ", 13) == 0, "the line: '%s'", line);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, file, OIALR_TRAJ_READ));
    ck_assert_int_ge(oialr_traj_nlayers(t), 2);
    int64_t most = 0;
    for (int l = 0; l < oialr_traj_nlayers(t); l++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, l);
        ck_assert_msg(L->nsnap >= 2, "%s: %lld snapshots", L->name, (long long)L->nsnap);
        size_t n = (size_t)(L->rows * L->cols);
        float *w = malloc(n * sizeof *w);
        for (int64_t s = 0; s < L->nsnap; s++) {
            ck_assert_int_eq(L->steps[s], s);
            OK(oialr_traj_read(t, l, s, w, n));
            size_t bad = n;
            for (size_t k = 0; k < n && bad == n; k++)
                if (!isfinite(w[k])) bad = k;
            ck_assert_msg(bad == n, "snapshot %lld: element %zu not finite", (long long)s, bad);
        }
        free(w);
        if (L->nsnap > most) most = L->nsnap;
    }
    ck_assert_msg(most < FULL_RUN_SNAPSHOTS, "%lld snapshots: the disk did not fill up mid-run", (long long)most);
    OK(oialr_traj_close(t));
    char args[700];
    snprintf(args, sizeof args, "analyze '%s' -o '%s/analysis.h5' -q", file, dir);
    ck_assert_msg(run(args) == 0, "oialr %s:\n%s", args, out);
}

/* A 1.5 MB tmpfs: "No space left on device" after a few snapshots. */
START_TEST(tmpfs_fills_up) {
    /* a mount namespace of this test process's own: the mount is invisible
     * to the rest of the machine and cannot outlive the test */
    if (unshare(CLONE_NEWNS) != 0) {
        fprintf(stderr, "check_diskfull: tmpfs_fills_up skipped: cannot make a mount namespace (%s): needs root "
                        "or CAP_SYS_ADMIN; the RLIMIT_FSIZE case still runs\n", strerror(errno));
        return;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        fprintf(stderr, "check_diskfull: tmpfs_fills_up skipped: cannot make the mounts private (%s)\n",
                strerror(errno));
        return;
    }
    ck_assert_int_eq(mkdir(disk, 0700), 0);
    if (mount("oialr-check", disk, "tmpfs", MS_NOSUID | MS_NODEV, "size=1536k,mode=0700") != 0) {
        fprintf(stderr, "check_diskfull: tmpfs_fills_up skipped: cannot mount a tmpfs on %s (%s)\n", disk,
                strerror(errno));
        return;
    }
    mounted = 1;
    int st = run(TRAIN_ARGS " --record disk/run.h5");
    char file[400];
    snprintf(file, sizeof file, "%s/run.h5", disk);
    check_full_run(st, file, "no space left on device");
}
END_TEST

/* The file size limit (ulimit -f 1536 KiB): "File too large". */
START_TEST(fsize_limit) {
    struct rlimit old, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    rl = old;
    rl.rlim_cur = 1536 * 1024; /* the soft limit only: raised back below */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    int st = run(TRAIN_ARGS " --record run.h5");
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    char file[400];
    snprintf(file, sizeof file, "%s/run.h5", dir);
    check_full_run(st, file, "file too large");
}
END_TEST

static Suite *diskfull_suite(void) {
    Suite *s = suite_create("diskfull");
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_set_timeout(lim, 120);
    tcase_add_test(lim, tmpfs_fills_up);
    tcase_add_test(lim, fsize_limit);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(diskfull_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
