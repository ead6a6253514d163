/*
 * check_record.c — the HDF5 trajectory (lib/record): round trips bit for
 * bit, appending after reopen, a live reader in a second process, a writer
 * killed with SIGKILL, the recorder hook on the built-in trainer (its
 * asynchronous writer: snapshots equal to the parameters at their steps, a
 * stop by signal drained, a SIGKILL mid-write, a write error that stops the
 * run), the Python
 * writer, the example program against the installed library; and in
 * "Limits" every bad input: missing, empty, not HDF5, foreign HDF5, other
 * format, newer version, truncated, missing layer, NaN, full disk, misuse.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oialr.h"
#include "oialr/record.h"
#include "oialr/trajectory.h"
#include "record/internal.h" /* the writer's I/O counters and direct switch */

static char dir[256];

static void quiet_log(int level, const char *msg, void *user) {
    (void)level, (void)msg, (void)user;
}

/* the last warning logged (the NaN/Inf count of a snapshot) */
static char g_warn[512];
static void capture_warn(int level, const char *msg, void *user) {
    (void)user;
    if (level == OIALR_LOG_WARN) snprintf(g_warn, sizeof g_warn, "%s", msg);
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-record-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    oialr_set_log(quiet_log, NULL, OIALR_LOG_DEBUG);
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* Arbitrary bit patterns: every float class (normals, denormals, -0, Inf,
 * NaN with payloads) must come back identical. */
static void fill(float *w, size_t n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        uint32_t b = x;
        if (i % 7 == 3) b &= 0x807fffffu; /* denormal / zero */
        memcpy(&w[i], &b, 4);
    }
}

/* A pattern that is the same whoever computes it (the forked writer and
 * the reader): snapshot s of layer l. */
static void pattern(float *w, size_t n, int l, int64_t s) {
    for (size_t i = 0; i < n; i++) w[i] = (float)(l * 1000 + s) + (float)i * 0.25f;
}

static int check_pattern(const float *w, size_t n, int l, int64_t s) {
    for (size_t i = 0; i < n; i++)
        if (w[i] != (float)(l * 1000 + s) + (float)i * 0.25f) return 0;
    return 1;
}

#define OK(expr)                                                                                             \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        ck_assert_msg(rc_ == OIALR_OK, "%s -> %d: %s", #expr, rc_, oialr_errmsg());                          \
    } while (0)

/* Create a trajectory with two layers (3x5 and 4x2) and the default
 * metrics, begun. */
static oialr_traj *new_traj(const char *path, int *l0, int *l1) {
    oialr_traj *t = NULL;
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    o.force = 1;
    OK(oialr_traj_create(&t, path, &o));
    OK(oialr_traj_declare_layer(t, "fc1.weight", 3, 5, "dense", 0, NULL, l0));
    OK(oialr_traj_declare_layer(t, "fc2.weight", 4, 2, "dense", 0, NULL, l1));
    OK(oialr_traj_begin(t));
    return t;
}

// ----------------------------------------------------------------------------
// a writer in a second process
//
// The tests of a live, killed or failing writer run it in a forked child:
// writer_start() forks, the child runs fn and exits with what fn returns
// (_exit: the parent's stdio buffers and Check's state are not the child's
// to flush; a fn that must run the exit handlers calls exit() itself). Two
// pipes keep the processes in lock step: the child's writer_signal() wakes
// the parent's writer_await(), the parent's writer_resume() the child's
// writer_wait_resume(). The parent ends it with writer_wait_ok() (it must
// exit with 0) or writer_kill() (SIGKILL, at any moment).

typedef struct writer_proc {
    pid_t pid;
    int up[2];   /* child -> parent */
    int down[2]; /* parent -> child */
} writer_proc;

/* Runs in the child; returns its exit status (0: success). */
typedef int (*writer_fn)(writer_proc *w, void *arg);

static void writer_start(writer_proc *w, writer_fn fn, void *arg) {
    ck_assert_int_eq(pipe(w->up), 0);
    ck_assert_int_eq(pipe(w->down), 0);
    w->pid = fork();
    ck_assert_int_ge(w->pid, 0);
    if (w->pid == 0) {
        close(w->up[0]), close(w->down[1]);
        _exit(fn(w, arg));
    }
    close(w->up[1]), close(w->down[0]);
}

/* Child: tell the parent (0), or -1 if it is gone. */
static int writer_signal(writer_proc *w) {
    char c = 'x';
    return write(w->up[1], &c, 1) == 1 ? 0 : -1;
}

/* Child: wait until the parent resumes it (0), or -1 if it is gone. */
static int writer_wait_resume(writer_proc *w) {
    char c;
    return read(w->down[0], &c, 1) == 1 ? 0 : -1;
}

/* Parent: wait for the child's next writer_signal(). */
static void writer_await(writer_proc *w) {
    char c;
    ck_assert_int_eq(read(w->up[0], &c, 1), 1);
}

/* Parent: let the child go on past its writer_wait_resume(). */
static void writer_resume(writer_proc *w) {
    char c = 'x';
    ck_assert_int_eq(write(w->down[1], &c, 1), 1);
}

static void writer_close(writer_proc *w) { close(w->up[0]), close(w->down[1]); }

/* Parent: the child ends by itself, with exit status 0. */
static void writer_wait_ok(writer_proc *w) {
    int status;
    ck_assert_int_eq(waitpid(w->pid, &status, 0), w->pid);
    ck_assert_msg(WIFEXITED(status), "writer died of signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_msg(WEXITSTATUS(status) == 0, "writer exited with status %d", WEXITSTATUS(status));
    writer_close(w);
}

/* Parent: kill the child with SIGKILL now; it must die of it. */
static void writer_kill(writer_proc *w) {
    kill(w->pid, SIGKILL);
    int status;
    ck_assert_int_eq(waitpid(w->pid, &status, 0), w->pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    writer_close(w);
}

// ----------------------------------------------------------------------------
// Core

START_TEST(test_round_trip) {
    char p[512];
    path_of(p, sizeof p, "rt.h5");
    oialr_traj *t = NULL;
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    o.seed = 0xfedcba9876543210ull;
    o.command_line = "oialr train --record rt.h5";
    OK(oialr_traj_create(&t, p, &o));
    OK(oialr_traj_set_config(t, "model", "mlp:512,512"));
    OK(oialr_traj_set_config(t, "model", "mlp:256")); /* replaces */
    int64_t shape[4] = {6, 2, 3, 3};
    int a, b, c;
    OK(oialr_traj_declare_layer(t, "fc1.weight", 17, 33, "dense", 0, NULL, &a));
    OK(oialr_traj_declare_layer(t, "conv1.weight", 6, 18, "conv2d", 4, shape, &b));
    OK(oialr_traj_declare_layer(t, "head.weight", 1, 1, "dense", 0, NULL, &c));
    OK(oialr_traj_declare_metrics(t, "loss,val_acc"));
    OK(oialr_traj_declare_ckpt_array(t, "params", 100));
    OK(oialr_traj_declare_ckpt_array_i64(t, "order", 5));
    OK(oialr_traj_declare_ckpt_scalar(t, "step", 0));
    OK(oialr_traj_declare_ckpt_scalar(t, "rng", 1));
    enum { T = 6 };
    static float w[T][17 * 33], v[T][6 * 18], h[T][1];
    double rows[T][2]; /* rows 3.. go in at once, row-major */
    int64_t steps[T];
    for (int s = 0; s < T; s++) {
        fill(w[s], 17 * 33, (uint32_t)s);
        fill(v[s], 6 * 18, (uint32_t)(100 + s));
        fill(h[s], 1, (uint32_t)(200 + s));
        OK(oialr_traj_append(t, a, s * 50, w[s], 0));
        OK(oialr_traj_append(t, b, s * 50, v[s], 4));
        OK(oialr_traj_append(t, c, s * 50, h[s], 0));
        double row[2] = {1.0 / (s + 1), s == 2 ? NAN : 0.5 + s * 0.01};
        if (s < 3) OK(oialr_traj_append_metrics(t, s * 50, row, 2));
        memcpy(rows[s], row, sizeof row);
        steps[s] = s * 50;
    }
    OK(oialr_traj_append_metrics_rows(t, T - 3, steps + 3, rows[3], 2));
    oialr_traj_event ev = {.step = 150, .kind = OIALR_EVENT_TRUNCATE, .stability = 0.9912, .rank_before = 6,
                           .rank_after = 3};
    strcpy(ev.layer, "conv1.weight");
    OK(oialr_traj_append_event(t, &ev));
    float params[100], back[100];
    fill(params, 100, 9);
    int64_t order[5] = {4, 0, 3, 1, INT64_MAX}, oback[5];
    OK(oialr_traj_ckpt_start(t));
    OK(oialr_traj_ckpt_put_array(t, "params", params, 100));
    OK(oialr_traj_ckpt_put_array_i64(t, "order", order, 5));
    OK(oialr_traj_ckpt_put_i64(t, "step", -7));
    OK(oialr_traj_ckpt_put_u64(t, "rng", UINT64_MAX));
    OK(oialr_traj_ckpt_commit(t));
    OK(oialr_traj_close(t));

    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    const oialr_traj_info *in = oialr_traj_get_info(t);
    ck_assert_int_eq(in->format_version, 1); /* no factored layer (check_factors.c: 2) */
    ck_assert_int_eq(in->swmr_read, 0);
    ck_assert_int_eq(in->writer_alive, 0);
    ck_assert(in->seed == 0xfedcba9876543210ull);
    ck_assert_str_eq(in->command_line, "oialr train --record rt.h5");
    ck_assert_int_eq((int)strlen(in->created), 20);
    ck_assert_int_eq(in->nlayers, 3);
    ck_assert_int_eq(in->ncolumns, 2);
    ck_assert_int_eq(in->nmetrics, T);
    ck_assert_int_eq(in->nevents, 1);
    ck_assert_int_eq(in->has_ckpt, 1);
    const oialr_traj_layer *l = oialr_traj_layer_at(t, 1);
    ck_assert_str_eq(l->name, "conv1.weight"); /* declaration order */
    ck_assert_str_eq(l->kind, "conv2d");
    ck_assert_int_eq(l->rows, 6);
    ck_assert_int_eq(l->cols, 18);
    ck_assert_int_eq(l->ndim, 4);
    ck_assert_int_eq(l->shape[3], 3);
    ck_assert_int_eq(l->nsnap, T);
    ck_assert_int_eq(l->ranks[0], 4);
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->ranks[0], 17);
    ck_assert_ptr_null(oialr_traj_layer_at(t, 3));
    int idx;
    OK(oialr_traj_find_layer(t, "fc1.weight", &idx));
    ck_assert_int_eq(idx, 0);
    static float r[17 * 33];
    for (int s = T - 1; s >= 0; s--) { /* any order: one chunk each */
        int64_t snap;
        OK(oialr_traj_find_step(t, 0, s * 50, &snap));
        ck_assert_int_eq(snap, s);
        OK(oialr_traj_read(t, 0, s, r, 17 * 33));
        ck_assert(memcmp(r, w[s], sizeof w[s]) == 0);
        OK(oialr_traj_read(t, 1, s, r, 6 * 18));
        ck_assert(memcmp(r, v[s], sizeof v[s]) == 0);
        OK(oialr_traj_read(t, 2, s, r, 1));
        ck_assert(memcmp(r, h[s], sizeof h[s]) == 0);
    }
    double col[8];
    int64_t n, st[8];
    ck_assert_str_eq(oialr_traj_column_name(t, 1), "val_acc");
    OK(oialr_traj_read_column(t, "val_acc", col, 8, &n));
    ck_assert_int_eq(n, T);
    ck_assert(isnan(col[2]));
    ck_assert_double_eq(col[3], 0.53);
    OK(oialr_traj_read_metric_steps(t, st, 8, &n));
    ck_assert_int_eq(st[5], 250);
    OK(oialr_traj_read_column(t, "loss", col, 8, &n));
    for (int s = 0; s < T; s++) {
        ck_assert_int_eq(st[s], 50 * s);
        ck_assert_double_eq(col[s], 1.0 / (s + 1));
    }
    oialr_traj_event e[2];
    OK(oialr_traj_read_events(t, e, 2, &n));
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(e[0].layer, "conv1.weight");
    ck_assert_int_eq(e[0].kind, OIALR_EVENT_TRUNCATE);
    ck_assert_str_eq(oialr_traj_event_kind_name(e[0].kind), "truncate");
    ck_assert_double_eq(e[0].stability, 0.9912);
    ck_assert_int_eq(e[0].rank_after, 3);
    OK(oialr_traj_ckpt_get_array(t, "params", back, 100));
    ck_assert(memcmp(back, params, sizeof params) == 0);
    OK(oialr_traj_ckpt_get_array_i64(t, "order", oback, 5));
    ck_assert(memcmp(oback, order, sizeof order) == 0);
    int64_t i64;
    uint64_t u64;
    OK(oialr_traj_ckpt_get_i64(t, "step", &i64));
    ck_assert_int_eq(i64, -7);
    OK(oialr_traj_ckpt_get_u64(t, "rng", &u64));
    ck_assert(u64 == UINT64_MAX);
    char buf[64];
    OK(oialr_traj_get_config(t, "model", buf, sizeof buf));
    ck_assert_str_eq(buf, "mlp:256");
    OK(oialr_traj_close(t));
}
END_TEST

START_TEST(test_compressed_round_trip) {
    char p[512];
    path_of(p, sizeof p, "z.h5");
    oialr_traj *t = NULL;
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    o.compress = 4;
    OK(oialr_traj_create(&t, p, &o));
    int a;
    OK(oialr_traj_declare_layer(t, "w", 64, 64, "dense", 0, NULL, &a));
    static float w[64 * 64], r[64 * 64];
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 64 * 64; i++) w[i] = (float)(i % 17) * 0.5f + (float)s; /* compressible */
        OK(oialr_traj_append(t, a, s, w, 0));
    }
    OK(oialr_traj_close(t));
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_msg(st.st_size < 3 * 64 * 64 * 4, "compressed file is %lld bytes", (long long)st.st_size);
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    OK(oialr_traj_read(t, 0, 2, r, 64 * 64));
    ck_assert(memcmp(r, w, sizeof w) == 0);
    OK(oialr_traj_close(t));
}
END_TEST

START_TEST(test_append_after_reopen) {
    char p[512];
    path_of(p, sizeof p, "re.h5");
    int a, b;
    float w[15], v[8], r[15];
    oialr_traj *t = new_traj(p, &a, &b);
    for (int s = 0; s < 3; s++) {
        pattern(w, 15, 0, s), pattern(v, 8, 1, s);
        OK(oialr_traj_append(t, a, s, w, 0));
        OK(oialr_traj_append(t, b, s, v, 0));
    }
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_APPEND));
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, 3);
    /* nothing new may be declared: SWMR */
    ck_assert_int_eq(oialr_traj_declare_layer(t, "new", 2, 2, "dense", 0, NULL, NULL), OIALR_ERR_ARG);
    for (int s = 3; s < 5; s++) {
        pattern(w, 15, 0, s), pattern(v, 8, 1, s);
        OK(oialr_traj_append(t, a, s, w, 0));
        OK(oialr_traj_append(t, b, s, v, 0));
    }
    double row[10] = {0};
    OK(oialr_traj_append_metrics(t, 4, row, 10));
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    const oialr_traj_layer *l = oialr_traj_layer_at(t, 1);
    ck_assert_int_eq(l->nsnap, 5);
    for (int s = 0; s < 5; s++) {
        ck_assert_int_eq(l->steps[s], s);
        OK(oialr_traj_read(t, 0, s, r, 15));
        ck_assert(check_pattern(r, 15, 0, s));
    }
    ck_assert_int_eq(oialr_traj_get_info(t)->nmetrics, 1);
    OK(oialr_traj_close(t));
}
END_TEST

enum { LIVE_SNAPS = 6 };

/* test_live_reader's writer: a snapshot of both layers and a metrics row
 * at steps 0, 10, ..., each followed by a signal and a wait. */
static int live_writer(writer_proc *w, void *arg) {
    const char *p = arg;
    int a, b;
    oialr_traj *t = new_traj(p, &a, &b);
    float x[15], v[8];
    for (int s = 0; s < LIVE_SNAPS; s++) {
        pattern(x, 15, 0, s), pattern(v, 8, 1, s);
        if (oialr_traj_append(t, a, s * 10, x, 0) || oialr_traj_append(t, b, s * 10, v, 0)) return 2;
        double row[10] = {s, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        if (oialr_traj_append_metrics(t, s * 10, row, 10)) return 3;
        if (writer_signal(w) || writer_wait_resume(w)) return 4;
    }
    return oialr_traj_close(t) ? 5 : 0;
}

/* Parent reads while a forked writer appends, in lock step via pipes. */
START_TEST(test_live_reader) {
    char p[512];
    path_of(p, sizeof p, "live.h5");
    writer_proc w;
    writer_start(&w, live_writer, p);
    oialr_traj *t = NULL;
    float r[15];
    for (int s = 0; s < LIVE_SNAPS; s++) {
        writer_await(&w);
        if (s == 0) {
            OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
            ck_assert_int_eq(oialr_traj_get_info(t)->swmr_read, 1);
            ck_assert_int_eq(oialr_traj_get_info(t)->writer_alive, 1);
        } else {
            OK(oialr_traj_refresh(t));
        }
        const oialr_traj_layer *l = oialr_traj_layer_at(t, 0);
        ck_assert_int_eq(l->nsnap, s + 1);
        ck_assert_int_eq(l->steps[s], s * 10);
        OK(oialr_traj_read(t, 0, s, r, 15));
        ck_assert(check_pattern(r, 15, 0, s));
        ck_assert_int_eq(oialr_traj_layer_at(t, 1)->nsnap, s + 1);
        ck_assert_int_eq(oialr_traj_get_info(t)->nmetrics, s + 1);
        writer_resume(&w);
    }
    writer_wait_ok(&w);
    OK(oialr_traj_close(t));
}
END_TEST

/* test_sigkill's writer: snapshots of both layers at steps 0, 1, ...
 * until killed, a signal after each of the first five. */
static int endless_writer(writer_proc *w, void *arg) {
    const char *p = arg;
    int a, b;
    oialr_traj *t = new_traj(p, &a, &b);
    static float x[15], v[8];
    for (int64_t s = 0;; s++) {
        pattern(x, 15, 0, s), pattern(v, 8, 1, s);
        if (oialr_traj_append(t, a, s, x, 0) || oialr_traj_append(t, b, s, v, 0)) return 2;
        if (s < 5 && writer_signal(w)) return 3;
    }
}

/* A writer appending as fast as it can, killed with SIGKILL at several
 * moments: the file opens and holds every snapshot completed before. */
START_TEST(test_sigkill) {
    static const int delays_us[] = {0, 150, 700, 3000};
    for (size_t k = 0; k < sizeof delays_us / sizeof *delays_us; k++) {
        char p[512], name[32];
        snprintf(name, sizeof name, "kill%zu.h5", k);
        path_of(p, sizeof p, name);
        writer_proc wp;
        writer_start(&wp, endless_writer, p);
        for (int i = 0; i < 5; i++) writer_await(&wp);
        if (delays_us[k]) usleep((useconds_t)delays_us[k]);
        writer_kill(&wp);

        oialr_traj *t = NULL;
        OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
        ck_assert_int_eq(oialr_traj_get_info(t)->swmr_read, 1);
        ck_assert_int_eq(oialr_traj_get_info(t)->writer_alive, 0);
        const oialr_traj_layer *l0 = oialr_traj_layer_at(t, 0);
        const oialr_traj_layer *l1 = oialr_traj_layer_at(t, 1);
        ck_assert_int_ge(l0->nsnap, 5);
        ck_assert_int_ge(l1->nsnap, 4); /* the 5th is reported after both layers */
        float r[15];
        for (int i = 0; i < 2; i++) {
            const oialr_traj_layer *l = i ? l1 : l0;
            for (int64_t s = 0; s < l->nsnap; s++) {
                ck_assert_int_eq(l->steps[s], s);
                OK(oialr_traj_read(t, i, s, r, 15));
                ck_assert_msg(check_pattern(r, (size_t)(l->rows * l->cols), i, s), "layer %d snap %lld", i,
                              (long long)s);
            }
        }
        int64_t nsnap0 = l0->nsnap;
        OK(oialr_traj_close(t));

        if (k == 0) {
            /* appending needs an explicit recovery; then the file is clean */
            ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_APPEND), OIALR_ERR_LOCKED);
            ck_assert_ptr_nonnull(strstr(oialr_errmsg(), p));
            OK(oialr_traj_open(&t, p, OIALR_TRAJ_RECOVER));
            float w[15];
            pattern(w, 15, 0, 999);
            OK(oialr_traj_append(t, 0, 999, w, 0));
            OK(oialr_traj_close(t));
            OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
            ck_assert_int_eq(oialr_traj_get_info(t)->swmr_read, 0);
            ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, nsnap0 + 1);
            OK(oialr_traj_close(t));
        }
    }
}
END_TEST

/* test_recover_refuses_live_writer's writer: begins, signals, waits. */
static int idle_writer(writer_proc *w, void *arg) {
    const char *p = arg;
    int a, b;
    oialr_traj *t = new_traj(p, &a, &b);
    if (writer_signal(w) || writer_wait_resume(w)) return 4;
    return oialr_traj_close(t) ? 5 : 0;
}

/* A live writer must not be "recovered" from under it. */
START_TEST(test_recover_refuses_live_writer) {
    char p[512];
    path_of(p, sizeof p, "busy.h5");
    writer_proc w;
    writer_start(&w, idle_writer, p);
    writer_await(&w);
    oialr_traj *t = NULL;
    ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_RECOVER), OIALR_ERR_LOCKED);
    ck_assert_ptr_nonnull(strstr(oialr_errmsg(), "writer"));
    writer_resume(&w);
    writer_wait_ok(&w);
}
END_TEST

/* The recorder hook on the real trainer: snapshots at 0, every N and the
 * end, metrics at evaluations, a checkpoint equal to the final state. */
START_TEST(test_hook_trainer) {
    char p[512];
    path_of(p, sizeof p, "hook.h5");
    oialr_dataset ds = {0};
    OK(oialr_dataset_synthetic(&ds, 300, 1, 8, 8, 4, 0.25f, 1));
    oialr_loader trl, val;
    OK(oialr_loader_split(&trl, &val, &ds, 60, 1));
    oialr_model *m = NULL;
    OK(oialr_model_create(&m, "mlp:16", 1, 8, 8, 4, 32, 1));
    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.epochs = 2;
    cfg.batch = 32;
    oialr_trainer tr;
    OK(oialr_trainer_init(&tr, &cfg, m, &trl, &val, NULL));
    oialr_record_options ro;
    oialr_record_options_default(&ro);
    ro.path = p;
    ro.every = 3;
    ro.layers = "fc*";
    ro.command_line = "check_record";
    const char *keys[] = {"dataset"}, *vals[] = {"synthetic"};
    ro.nconfig = 1;
    ro.config_keys = keys;
    ro.config_values = vals;
    oialr_hook h;
    OK(oialr_record_hook_init(&h, &ro));
    OK(oialr_trainer_add_hook(&tr, &h));
    OK(oialr_train_run(&tr));
    /* a second recorder on the same path is refused before any training */
    oialr_hook h2;
    ck_assert_int_eq(oialr_record_hook_init(&h2, &ro), OIALR_ERR_EXISTS);
    ck_assert_ptr_null(oialr_record_trajectory(&h));
    uint64_t bytes;
    int64_t nsnaps;
    oialr_record_stats(&h, &bytes, NULL, &nsnaps);
    oialr_record_hook_free(&h);
    oialr_record_hook_free(&h); /* twice is fine */

    int64_t steps = tr.metrics.step; /* 8 per epoch: 240 samples / 32 */
    ck_assert_int_eq(steps, 16);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    int nmat = 0;
    for (int i = 0; i < tr.params->count; i++) nmat += tr.params->info[i].kind == OIALR_PARAM_MATRIX;
    ck_assert_int_eq(oialr_traj_nlayers(t), nmat);
    const oialr_traj_layer *l = oialr_traj_layer_at(t, 0);
    /* 0, 3, 6, 9, 12, 15, then the end (16) */
    ck_assert_int_eq(l->nsnap, 7);
    ck_assert_int_eq(nsnaps, 7);
    ck_assert_int_eq(l->steps[1], 3);
    ck_assert_int_eq(l->steps[6], 16);
    int pi = oialr_params_find(tr.params, l->name);
    ck_assert_int_ge(pi, 0);
    const oialr_param_info *info = &tr.params->info[pi];
    ck_assert_int_eq(l->rows, info->rows);
    ck_assert_int_eq(l->cols, info->cols);
    float *r = malloc(info->size * sizeof *r);
    OK(oialr_traj_read(t, 0, 6, r, info->size));
    ck_assert(memcmp(r, tr.params->data + info->offset, info->size * sizeof *r) == 0);
    free(r);
    /* metrics: a row with each periodic snapshot (0, 3, ..., 15) + 2 evaluations */
    ck_assert_int_eq(oialr_traj_get_info(t)->nmetrics, 8);
    double acc[16];
    int64_t n;
    OK(oialr_traj_read_column(t, "val_acc", acc, 16, &n));
    ck_assert(!isnan(acc[n - 1]));
    /* checkpoint == final state (the last epoch end is the end) */
    size_t np;
    OK(oialr_traj_ckpt_array_size(t, "params", &np));
    ck_assert_uint_eq(np, tr.params->total);
    float *cp = malloc(np * sizeof *cp);
    OK(oialr_traj_ckpt_get_array(t, "params", cp, np));
    ck_assert(memcmp(cp, tr.params->data, np * sizeof *cp) == 0);
    free(cp);
    int64_t st;
    OK(oialr_traj_ckpt_get_i64(t, "step", &st));
    ck_assert_int_eq(st, 16);
    char buf[128];
    OK(oialr_traj_get_config(t, "dataset", buf, sizeof buf));
    ck_assert_str_eq(buf, "synthetic");
    OK(oialr_traj_get_config(t, "model", buf, sizeof buf));
    ck_assert_str_eq(buf, oialr_model_spec(m));
    ck_assert_str_eq(oialr_traj_get_info(t)->command_line, "check_record");
    OK(oialr_traj_close(t));
    uint64_t per_snap = 0;
    for (int i = 0; i < tr.params->count; i++)
        if (tr.params->info[i].kind == OIALR_PARAM_MATRIX) per_snap += tr.params->info[i].size * 4;
    ck_assert_uint_eq(bytes, 7 * per_snap);

    /* a glob that matches nothing: a clear error, and no file left behind */
    char p2[512];
    path_of(p2, sizeof p2, "none.h5");
    ro.path = p2;
    ro.layers = "nomatch*";
    oialr_trainer tr2;
    OK(oialr_trainer_init(&tr2, &cfg, m, &trl, &val, NULL));
    OK(oialr_record_hook_init(&h, &ro));
    OK(oialr_trainer_add_hook(&tr2, &h));
    ck_assert_int_eq(oialr_train_run(&tr2), OIALR_ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(oialr_errmsg(), "nomatch*"));
    oialr_record_hook_free(&h);
    ck_assert_int_ne(access(p2, F_OK), 0);
    oialr_trainer_free(&tr2);

    oialr_trainer_free(&tr);
    oialr_model_free(m);
    oialr_loader_free(&trl);
    oialr_loader_free(&val);
    oialr_dataset_free(&ds);
}
END_TEST

/* A small training set-up for the asynchronous-recorder tests. */
typedef struct rig {
    oialr_dataset ds;
    oialr_loader trl, val;
    oialr_model *m;
    oialr_trainer tr;
} rig;

static void rig_init(rig *g, const char *spec, int hw, int epochs) {
    memset(g, 0, sizeof *g);
    OK(oialr_dataset_synthetic(&g->ds, 300, 1, hw, hw, 4, 0.25f, 1));
    OK(oialr_loader_split(&g->trl, &g->val, &g->ds, 60, 1));
    OK(oialr_model_create(&g->m, spec, 1, hw, hw, 4, 32, 1));
    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.epochs = epochs;
    cfg.batch = 32;
    oialr_optim_defaults(&cfg.optim, OIALR_OPT_ADAMW); /* both moments in the checkpoint */
    OK(oialr_trainer_init(&g->tr, &cfg, g->m, &g->trl, &g->val, NULL));
}

/* A recorder hook on path, a snapshot every step. */
static void record_every_step(oialr_hook *h, const char *path) {
    oialr_record_options ro;
    oialr_record_options_default(&ro);
    ro.path = path;
    ro.every = 1;
    OK(oialr_record_hook_init(h, &ro));
}

static void rig_free(rig *g) {
    oialr_trainer_free(&g->tr);
    oialr_model_free(g->m);
    oialr_loader_free(&g->trl);
    oialr_loader_free(&g->val);
    oialr_dataset_free(&g->ds);
}

/* Copies of the matrix parameters after every step (the reference the
 * recorder's snapshots must equal), and an event queued at step 5. */
typedef struct capture {
    oialr_hook *rec;
    float *data;      /* [cap][total] */
    int64_t cap, n;   /* n: steps captured (index = step) */
} capture;

static int capture_params(oialr_trainer *t, void *user) {
    capture *c = user;
    int64_t s = t->metrics.step;
    if (s < c->cap) {
        memcpy(c->data + (size_t)s * t->params->total, t->params->data, t->params->total * sizeof(float));
        c->n = s + 1;
    }
    if (s == 5 && c->rec) {
        oialr_traj_event ev = {.step = s, .kind = OIALR_EVENT_SWITCH, .stability = 0.5, .rank_before = 8,
                               .rank_after = 4};
        snprintf(ev.layer, sizeof ev.layer, "fc1.weight");
        return oialr_record_event(c->rec, &ev);
    }
    return OIALR_OK;
}

static size_t page_up(size_t bytes) { return (bytes + 4095) / 4096 * 4096; }

/* The asynchronous writer, every step (the queue fills, the training
 * thread waits): every snapshot equals the parameters at its step bit for
 * bit, none is dropped, the event and the checkpoint arrive, the memory
 * held is the documented pool + checkpoint. */
/* 1 if this directory's filesystem takes a direct write of a page */
static int direct_io_works(void) {
    char p[512];
    path_of(p, sizeof p, "probe");
    int fd = open(p, O_CREAT | O_RDWR | O_DIRECT, 0600), ok = 0;
    if (fd >= 0) {
        void *b = NULL;
        if (posix_memalign(&b, 4096, 4096) == 0) {
            memset(b, 0, 4096);
            ok = pwrite(fd, b, 4096, 0) == 4096;
            free(b);
        }
        close(fd);
    }
    unlink(p);
    return ok;
}

/* A new trajectory with one dense layer of rows x cols (index in *a). */
static oialr_traj *one_layer(const char *path, const char *name, int64_t rows, int64_t cols, int *a) {
    oialr_traj *t = NULL;
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    OK(oialr_traj_create(&t, path, &o));
    OK(oialr_traj_declare_layer(t, name, rows, cols, "dense", 0, NULL, a));
    return t;
}

/* The writer's file driver (vfd.c): a page-aligned snapshot of a large
 * layer goes by O_DIRECT where the filesystem takes it, an unaligned one or
 * one with direct I/O switched off by the page cache; all read back bit for
 * bit, from this process and from a fresh open. */
START_TEST(test_direct_io) {
    char p[512];
    path_of(p, sizeof p, "direct.h5");
    enum { R = 256, C = 300, N = R * C }; /* 300 KB: 75 pages */
    int a;
    oialr_traj *t = one_layer(p, "big.weight", R, C, &a);
    float *buf = NULL, *r = malloc(N * sizeof *r);
    ck_assert_int_eq(posix_memalign((void **)&buf, 4096, (N + 1) * sizeof *buf), 0);
    uint64_t d0, d1;
    const int aligned[5] = {1, 1, 0, 1, 1}, on[5] = {1, 1, 1, 0, 1};
    for (int s = 0; s < 5; s++) {
        float *w = aligned[s] ? buf : buf + 1;
        fill(w, N, (uint32_t)(s + 40));
        d0 = traj_direct_bytes(t);
        traj_set_direct(t, on[s]);
        OK(oialr_traj_append(t, a, s, w, 0));
        d1 = traj_direct_bytes(t);
        if (aligned[s] && on[s] && direct_io_works()) ck_assert_uint_eq(d1 - d0, N * sizeof(float));
        else ck_assert_uint_eq(d1, d0);
        OK(oialr_traj_read(t, a, s, r, N));
        ck_assert(memcmp(r, w, N * sizeof *r) == 0);
    }
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    for (int s = 0; s < 5; s++) {
        fill(buf, N, (uint32_t)(s + 40));
        OK(oialr_traj_read(t, 0, s, r, N));
        ck_assert_msg(memcmp(r, buf, N * sizeof *r) == 0, "snapshot %d differs", s);
    }
    OK(oialr_traj_close(t));
    free(buf);
    free(r);
}
END_TEST

/* A file whose weights h5repack re-chunked (4 rows a chunk): appending
 * cannot write a snapshot as one raw chunk, and must still be right. */
START_TEST(test_append_rechunked) {
    char p[512], q[512], cmd[1200];
    path_of(p, sizeof p, "chunked.h5");
    path_of(q, sizeof q, "rechunked.h5");
    enum { R = 8, C = 1024 };
    static float w[4][R * C], r[R * C];
    int a;
    oialr_traj *t = one_layer(p, "wide.weight", R, C, &a);
    for (int s = 0; s < 3; s++) {
        fill(w[s], R * C, (uint32_t)(s + 70));
        OK(oialr_traj_append(t, a, s, w[s], 0));
    }
    OK(oialr_traj_close(t));
    snprintf(cmd, sizeof cmd, "h5repack -l /layers/wide.weight/weight:CHUNK=1x4x1024 '%s' '%s'", p, q);
    ck_assert_msg(system(cmd) == 0, "%s failed (h5repack is in Debian's hdf5-tools)", cmd);
    OK(oialr_traj_open(&t, q, OIALR_TRAJ_APPEND));
    fill(w[3], R * C, 73);
    OK(oialr_traj_append(t, 0, 3, w[3], 0));
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, q, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, 4);
    for (int s = 0; s < 4; s++) {
        OK(oialr_traj_read(t, 0, s, r, R * C));
        ck_assert_msg(memcmp(r, w[s], sizeof r) == 0, "snapshot %d differs", s);
    }
    OK(oialr_traj_close(t));
}
END_TEST

/* The recorder's writer: a training step slow enough that the writer keeps
 * up (snapshots by direct I/O where the filesystem takes it), more metrics
 * rows than one batch (64), and a pause of 1.3 s during which the rows
 * waiting in the writer must reach the file (read live by h5py in SWMR
 * mode). */
static int slow_steps(oialr_trainer *t, void *user) {
    int64_t *live_rows = user;
    struct timespec ms3 = {0, 3000000}, pause = {1, 300000000};
    nanosleep(&ms3, NULL);
    if (t->metrics.step == 20) {
        nanosleep(&pause, NULL);
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import h5py; f = h5py.File('%s/writer.h5', 'r', libver='latest', "
                 "swmr=True); print(len(f['metrics/step']))\" 2>&1",
                 dir);
        FILE *f = popen(cmd, "r");
        if (!f || fscanf(f, "%lld", (long long *)live_rows) != 1) *live_rows = -1;
        if (f) pclose(f);
    }
    return OIALR_OK;
}

START_TEST(test_hook_writer_paths) {
    if (system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "check_record: SKIP writer paths: /usr/bin/python3 lacks h5py "
                        "(apt-get install python3-h5py)\n");
        return;
    }
    char p[512];
    path_of(p, sizeof p, "writer.h5");
    rig g;
    rig_init(&g, "mlp:128,64", 16, 9); /* 9 epochs of 8 steps */
    oialr_hook h;
    record_every_step(&h, p);
    int64_t live_rows = 0;
    oialr_hook slow = {.name = "slow", .user = &live_rows, .step_end = slow_steps};
    OK(oialr_trainer_add_hook(&g.tr, &h));
    OK(oialr_trainer_add_hook(&g.tr, &slow));
    OK(oialr_train_run(&g.tr));
    int64_t steps = g.tr.metrics.step;
    oialr_record_info in;
    oialr_record_get_info(&h, &in);
    oialr_record_hook_free(&h);
    /* rows of steps 0..20 plus 2 evaluations were queued before the pause */
    ck_assert_msg(live_rows >= 21, "a live reader saw %lld metrics rows after the 1.3 s pause",
                  (long long)live_rows);
    if (direct_io_works()) ck_assert_uint_gt(in.direct_bytes, 0);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->nmetrics, steps + 1 + 9); /* > 64: a full batch, then the rest */
    int64_t st[128], n;
    OK(oialr_traj_read_metric_steps(t, st, 128, &n));
    for (int64_t i = 1; i < n; i++) ck_assert_int_ge(st[i], st[i - 1]);
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, steps + 1);
    OK(oialr_traj_close(t));
    rig_free(&g);
}
END_TEST

static void async_identical(int direct) {
    char p[512];
    path_of(p, sizeof p, "async.h5");
    rig g;
    rig_init(&g, "mlp:128,64", 16, 3);
    oialr_hook h;
    record_every_step(&h, p);
    ck_assert_ptr_nonnull(oialr_record_trajectory(&h)); /* not running yet: the caller's */
    size_t total = g.tr.params->total;
    capture c = {.rec = &h, .cap = 64};
    c.data = malloc((size_t)c.cap * total * sizeof(float));
    ck_assert_ptr_nonnull(c.data);
    memcpy(c.data, g.tr.params->data, total * sizeof(float)); /* step 0 */
    oialr_hook ch = {.name = "capture", .user = &c, .step_end = capture_params};
    OK(oialr_trainer_add_hook(&g.tr, &h));
    OK(oialr_trainer_add_hook(&g.tr, &ch));
    OK(oialr_train_run(&g.tr));
    int64_t steps = g.tr.metrics.step;
    ck_assert_int_eq(steps, 24); /* 3 epochs of 240 / 32 */
    ck_assert_int_eq(c.n, steps + 1);
    oialr_record_info in;
    oialr_record_get_info(&h, &in);
    ck_assert_int_eq(in.snapshots, steps + 1);
    ck_assert_int_eq(in.pool, OIALR_RECORD_POOL);
    size_t snap = 0, padded = 0;
    for (int i = 0; i < g.tr.params->count; i++)
        if (g.tr.params->info[i].kind == OIALR_PARAM_MATRIX) {
            snap += g.tr.params->info[i].size * sizeof(float);
            padded += page_up(g.tr.params->info[i].size * sizeof(float));
        }
    ck_assert_uint_eq(in.snapshot_bytes, snap);
    ck_assert_uint_eq(in.bytes, (uint64_t)(steps + 1) * snap);
    /* every layer and checkpoint array starts on a 4 KiB page (direct I/O) */
    ck_assert_uint_eq(in.held_bytes, OIALR_RECORD_POOL * padded + 3 * page_up(total * sizeof(float)) +
                                         (size_t)g.trl.n * sizeof(int64_t));
    ck_assert(in.write_seconds > 0 && in.hook_seconds > 0);
    ck_assert(in.write_cpu_seconds > 0 && in.write_cpu_seconds <= in.write_seconds + 0.01);
    /* (a snapshot every step keeps the writer behind, so it goes by the page
     * cache mostly: test_direct_io has the direct path) */
    if (!direct) ck_assert_uint_eq(in.direct_bytes, 0);
    ck_assert(in.copy_seconds + in.wait_seconds + in.end_seconds <= in.hook_seconds + 1e-9);
    oialr_record_hook_free(&h);

    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->swmr_read, 0); /* closed cleanly */
    float *r = malloc(total * sizeof *r);
    for (int l = 0; l < oialr_traj_nlayers(t); l++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, l);
        const oialr_param_info *info = &g.tr.params->info[oialr_params_find(g.tr.params, L->name)];
        ck_assert_int_eq(L->nsnap, steps + 1);
        for (int64_t s = 0; s <= steps; s++) {
            ck_assert_int_eq(L->steps[s], s);
            OK(oialr_traj_read(t, l, s, r, total));
            ck_assert_msg(memcmp(r, c.data + (size_t)s * total + info->offset, info->size * sizeof *r) == 0,
                          "%s at step %lld differs from the parameters at that step", L->name, (long long)s);
        }
    }
    /* metrics: a row per step + 3 epoch evaluations; the event; the checkpoint */
    ck_assert_int_eq(oialr_traj_get_info(t)->nmetrics, steps + 1 + 3);
    oialr_traj_event e;
    int64_t ne;
    OK(oialr_traj_read_events(t, &e, 1, &ne));
    ck_assert_int_eq(ne, 1);
    ck_assert_int_eq(e.step, 5);
    ck_assert_str_eq(e.layer, "fc1.weight");
    OK(oialr_traj_ckpt_get_array(t, "params", r, total));
    ck_assert(memcmp(r, g.tr.params->data, total * sizeof *r) == 0);
    OK(oialr_traj_ckpt_get_array(t, "optim_v", r, total));
    ck_assert(memcmp(r, g.tr.optim.v, total * sizeof *r) == 0);
    int64_t v;
    OK(oialr_traj_ckpt_get_i64(t, "step", &v));
    ck_assert_int_eq(v, steps);
    OK(oialr_traj_ckpt_get_i64(t, "optim_t", &v));
    ck_assert_int_eq(v, g.tr.optim.t);
    OK(oialr_traj_close(t));
    free(r);
    free(c.data);
    rig_free(&g);
}

START_TEST(test_hook_async_identical) {
    async_identical(1);
}
END_TEST

/* The same through the page cache only (OIALR_DIRECT_IO=0: what a
 * filesystem without O_DIRECT gets). */
START_TEST(test_hook_async_buffered) {
    setenv("OIALR_DIRECT_IO", "0", 1);
    async_identical(0);
    unsetenv("OIALR_DIRECT_IO"); /* CK_FORK=no runs the next tests in this process */
}
END_TEST

/* The recorder counts NaN/Inf while it copies a snapshot (vectors of 16
 * and the scalar tail): put some in at the last step before it copies and
 * take them out after, so the run itself stays finite. */
typedef struct poison {
    int layer;       /* parameter index */
    size_t at[5];    /* offsets in that matrix */
    float saved[5];
    int on;
} poison;

static int poison_in(oialr_trainer *t, void *user) {
    poison *q = user;
    if (t->metrics.step != t->total_steps) return OIALR_OK;
    float *w = t->params->data + t->params->info[q->layer].offset;
    const float bad[5] = {NAN, INFINITY, -INFINITY, -NAN, INFINITY};
    for (int i = 0; i < 5; i++) q->saved[i] = w[q->at[i]], w[q->at[i]] = bad[i];
    q->on = 1;
    return OIALR_OK;
}

static int poison_out(oialr_trainer *t, void *user) {
    poison *q = user;
    if (!q->on) return OIALR_OK;
    float *w = t->params->data + t->params->info[q->layer].offset;
    for (int i = 0; i < 5; i++) w[q->at[i]] = q->saved[i];
    q->on = 0;
    return OIALR_OK;
}

START_TEST(test_hook_counts_nonfinite) {
    char p[512];
    path_of(p, sizeof p, "poison.h5");
    rig g;
    rig_init(&g, "mlp:37,19", 16, 1); /* 37x19 = 703 floats: 43 vectors of 16 and a tail of 15 */
    int layer = -1;
    for (int i = 0; i < g.tr.params->count; i++)
        if (g.tr.params->info[i].kind == OIALR_PARAM_MATRIX && g.tr.params->info[i].size == 37 * 19) layer = i;
    ck_assert_int_ge(layer, 0);
    poison q = {.layer = layer, .at = {0, 5, 10, 15, 702}}; /* each of the 4 lanes, and the tail */
    oialr_hook in = {.name = "poison", .user = &q, .step_end = poison_in};
    oialr_hook out = {.name = "unpoison", .user = &q, .step_end = poison_out};
    oialr_hook h;
    record_every_step(&h, p);
    OK(oialr_trainer_add_hook(&g.tr, &in));
    OK(oialr_trainer_add_hook(&g.tr, &h));
    OK(oialr_trainer_add_hook(&g.tr, &out));
    g_warn[0] = 0;
    oialr_set_log(capture_warn, NULL, OIALR_LOG_WARN);
    OK(oialr_train_run(&g.tr));
    oialr_record_hook_free(&h); /* the writer has logged by now */
    oialr_set_log(quiet_log, NULL, OIALR_LOG_DEBUG);
    ck_assert_msg(strstr(g_warn, "has 5 NaN/Inf values"), "warning: '%s'", g_warn);
    ck_assert_msg(strstr(g_warn, g.tr.params->info[layer].name), "warning: '%s'", g_warn);

    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    int l = -1;
    OK(oialr_traj_find_layer(t, g.tr.params->info[layer].name, &l));
    const oialr_traj_layer *L = oialr_traj_layer_at(t, l);
    float w[37 * 19];
    OK(oialr_traj_read(t, l, L->nsnap - 1, w, 37 * 19));
    ck_assert(isnan(w[0]) && w[5] == INFINITY && w[10] == -INFINITY && isnan(w[15]) && w[702] == INFINITY);
    OK(oialr_traj_read(t, l, L->nsnap - 2, w, 37 * 19));
    for (int i = 0; i < 37 * 19; i++) ck_assert(isfinite(w[i]));
    OK(oialr_traj_close(t));
    rig_free(&g);
}
END_TEST

/* A signal during the run (oialr train's SIGINT handler sets stop): the
 * run stops with OIALR_ERR_INTERRUPTED, run_end drains the queue and closes,
 * the final state at the stop step is the last snapshot. */
static oialr_trainer *g_sig_trainer;
static void on_sigint(int sig) {
    (void)sig;
    if (g_sig_trainer) g_sig_trainer->stop = 1;
}

static int raise_at_7(oialr_trainer *t, void *user) {
    (void)user;
    if (t->metrics.step == 7) raise(SIGINT);
    return OIALR_OK;
}

START_TEST(test_hook_interrupted) {
    char p[512];
    path_of(p, sizeof p, "int.h5");
    rig g;
    rig_init(&g, "mlp:64", 16, 5);
    oialr_record_options ro;
    oialr_record_options_default(&ro);
    ro.path = p;
    ro.every = 2;
    oialr_hook h;
    OK(oialr_record_hook_init(&h, &ro));
    oialr_hook sh = {.name = "sigint", .step_end = raise_at_7};
    OK(oialr_trainer_add_hook(&g.tr, &h));
    OK(oialr_trainer_add_hook(&g.tr, &sh));
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGINT, &sa, &old), 0);
    g_sig_trainer = &g.tr;
    ck_assert_int_eq(oialr_train_run(&g.tr), OIALR_ERR_INTERRUPTED);
    g_sig_trainer = NULL;
    sigaction(SIGINT, &old, NULL);
    ck_assert_int_eq(g.tr.metrics.step, 7);
    oialr_record_hook_free(&h);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->swmr_read, 0);
    const oialr_traj_layer *L = oialr_traj_layer_at(t, 0);
    ck_assert_int_eq(L->nsnap, 5); /* 0 2 4 6, then the stop at 7 */
    ck_assert_int_eq(L->steps[4], 7);
    const oialr_param_info *info = &g.tr.params->info[oialr_params_find(g.tr.params, L->name)];
    float *r = malloc(info->size * sizeof *r);
    OK(oialr_traj_read(t, 0, 4, r, info->size));
    ck_assert(memcmp(r, g.tr.params->data + info->offset, info->size * sizeof *r) == 0);
    free(r);
    OK(oialr_traj_close(t));
    rig_free(&g);
}
END_TEST

/* Killed with SIGKILL while the writer thread is busy: the file opens (in
 * SWMR-read mode) and holds consecutive complete snapshots from step 0,
 * the first equal to the initial parameters. */
static int report_progress(oialr_trainer *t, void *user) {
    int fd = *(int *)user;
    char c = 'x';
    if (t->metrics.step >= 5 && t->metrics.step < 10 && write(fd, &c, 1) != 1) return OIALR_ERR_IO;
    return OIALR_OK;
}

/* test_hook_sigkill's writer: a long run recording every step, a signal
 * at steps 5 to 9 (report_progress). */
static int recording_run(writer_proc *w, void *arg) {
    const char *p = arg;
    rig g;
    rig_init(&g, "mlp:128,64", 16, 1000);
    oialr_record_options ro;
    oialr_record_options_default(&ro);
    ro.path = p;
    ro.every = 1;
    oialr_hook h, ph = {.name = "progress", .user = &w->up[1], .step_end = report_progress};
    if (oialr_record_hook_init(&h, &ro)) return 2;
    oialr_trainer_add_hook(&g.tr, &h);
    oialr_trainer_add_hook(&g.tr, &ph);
    oialr_train_run(&g.tr);
    return 3;
}

START_TEST(test_hook_sigkill) {
    char p[512];
    path_of(p, sizeof p, "hkill.h5");
    writer_proc w;
    writer_start(&w, recording_run, p);
    for (int i = 0; i < 5; i++) writer_await(&w);
    usleep(20000);
    writer_kill(&w);

    rig g; /* the same model from the same seed: the initial parameters */
    rig_init(&g, "mlp:128,64", 16, 1);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->swmr_read, 1);
    float *r = malloc(g.tr.params->total * sizeof *r);
    for (int l = 0; l < oialr_traj_nlayers(t); l++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, l);
        const oialr_param_info *info = &g.tr.params->info[oialr_params_find(g.tr.params, L->name)];
        ck_assert_int_ge(L->nsnap, 1);
        for (int64_t s = 0; s < L->nsnap; s++) {
            ck_assert_int_eq(L->steps[s], s);
            OK(oialr_traj_read(t, l, s, r, info->size));
            size_t bad = info->size;
            for (size_t k = 0; k < info->size && bad == info->size; k++)
                if (!isfinite(r[k])) bad = k;
            ck_assert_msg(bad == info->size, "snapshot %lld: element %zu not finite", (long long)s, bad);
        }
        OK(oialr_traj_read(t, l, 0, r, info->size));
        ck_assert(memcmp(r, g.tr.params->data + info->offset, info->size * sizeof *r) == 0);
    }
    free(r);
    OK(oialr_traj_close(t));
    rig_free(&g);
}
END_TEST

/* The repository root, from build/tests/check_record. */
static int repo_root(char *out, size_t n) {
    const char *env = getenv("OIALR_SRCDIR");
    if (env) {
        snprintf(out, n, "%s", env);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) return -1;
    exe[k] = '\0';
    for (int i = 0; i < 3; i++) {
        char *s = strrchr(exe, '/');
        if (!s) return -1;
        *s = '\0';
    }
    snprintf(out, n, "%s", exe);
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/lib/oialr/trajectory.h", out);
    return access(probe, R_OK);
}

START_TEST(test_python_writer) {
    if (system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "check_record: SKIP python writer round trip: /usr/bin/python3 lacks h5py/numpy "
                        "(apt-get install python3-h5py python3-numpy)\n");
        return;
    }
    char root[PATH_MAX], p[512], bin[512], script[512], cmd[4 * PATH_MAX];
    ck_assert_msg(repo_root(root, sizeof root) == 0, "cannot find the source tree (set OIALR_SRCDIR)");
    path_of(p, sizeof p, "py.h5");
    path_of(bin, sizeof bin, "py.bin");
    path_of(script, sizeof script, "w.py");
    FILE *f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "import sys, numpy as np\n"
            "sys.path.insert(0, sys.argv[1] + '/tools')\n"
            "from oialr_traj import TrajectoryWriter\n"
            "rng = np.random.default_rng(5)\n"
            "lay = {'fc1.weight': (7, 5), 'conv.weight': (4, 2, 3, 3)}\n"
            "ws = []\n"
            "with TrajectoryWriter(sys.argv[2], lay, seed=11, command_line='torch run', force=True,\n"
            "                      config={'model': 'resnet?'}) as tw:\n"
            "    for s in range(4):\n"
            "        for n, sh in lay.items():\n"
            "            w = rng.standard_normal(sh).astype(np.float32)\n"
            "            tw.append(n, s * 100, w)\n"
            "            ws.append(w.ravel())\n"
            "        tw.append_metrics(s * 100, loss=0.5 ** s, lr=0.1)\n"
            "    tw.append_event(200, 'conv.weight', 'switch', 0.993, 4, 4)\n"
            "np.concatenate(ws).astype('<f4').tofile(sys.argv[3])\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s' '%s'", script, root, p, bin);
    ck_assert_int_eq(system(cmd), 0);

    float expect[4 * (35 + 72)];
    f = fopen(bin, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(expect, sizeof(float), 4 * (35 + 72), f), 4 * (35 + 72));
    fclose(f);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    const oialr_traj_info *in = oialr_traj_get_info(t);
    ck_assert_int_eq(in->nlayers, 2);
    ck_assert(in->seed == 11);
    ck_assert_str_eq(in->command_line, "torch run");
    const oialr_traj_layer *c = oialr_traj_layer_at(t, 1);
    ck_assert_str_eq(c->name, "conv.weight");
    ck_assert_str_eq(c->kind, "conv2d");
    ck_assert_int_eq(c->rows, 4);
    ck_assert_int_eq(c->cols, 18);
    ck_assert_int_eq(c->ndim, 4);
    ck_assert_int_eq(c->nsnap, 4);
    float r[72];
    size_t off = 0;
    for (int s = 0; s < 4; s++) {
        OK(oialr_traj_read(t, 0, s, r, 35));
        ck_assert(memcmp(r, expect + off, 35 * 4) == 0);
        off += 35;
        OK(oialr_traj_read(t, 1, s, r, 72));
        ck_assert(memcmp(r, expect + off, 72 * 4) == 0);
        off += 72;
    }
    double loss[4];
    int64_t n;
    OK(oialr_traj_read_column(t, "loss", loss, 4, &n));
    ck_assert_int_eq(n, 4);
    ck_assert_double_eq(loss[3], 0.125);
    OK(oialr_traj_read_column(t, "val_acc", loss, 4, &n));
    ck_assert(isnan(loss[0]));
    oialr_traj_event e;
    OK(oialr_traj_read_events(t, &e, 1, &n));
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(e.layer, "conv.weight");
    ck_assert_int_eq(e.kind, OIALR_EVENT_SWITCH);
    ck_assert_int_eq(e.rank_before, 4);
    ck_assert_int_eq(oialr_traj_get_info(t)->has_ckpt, 0);
    OK(oialr_traj_close(t));
    /* and the Python side reads what the C writer wrote */
    char cp[512];
    path_of(cp, sizeof cp, "c.h5");
    int a, b;
    float w[15];
    t = new_traj(cp, &a, &b);
    pattern(w, 15, 0, 3);
    OK(oialr_traj_append(t, a, 3, w, 0));
    OK(oialr_traj_close(t));
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import h5py, numpy as np; f = h5py.File('%s', 'r'); "
             "w = f['layers/fc1.weight/weight']; assert w.dtype == np.dtype('<f4') and w.shape == (1, 3, 5); "
             "assert w[0, 0, 1] == 3.25 and f.attrs['format'] == 'oialr-trajectory'\"",
             cp);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* docs/examples/record_example.c built against the installed library
 * with pkg-config, and run. In a sanitizer build (make SANITIZER=... _check
 * exports SANITIZER, and the install inherits it) the example is built with
 * the same sanitizer, as the library it links needs its runtime first. */
START_TEST(test_installed_example) {
    char root[PATH_MAX], cmd[8 * PATH_MAX], inst[512], log[512];
    ck_assert_msg(repo_root(root, sizeof root) == 0, "cannot find the source tree (set OIALR_SRCDIR)");
    path_of(inst, sizeof inst, "inst");
    path_of(log, sizeof log, "install.log");
    snprintf(cmd, sizeof cmd,
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C '%s' install DESTDIR='%s' PREFIX=/usr/local "
             ">'%s' 2>&1",
             root, inst, log);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "tail -20 '%s' >&2", log);
        ck_assert_int_eq(system(cmd), 0);
    }
    ck_assert_msg(rc == 0, "make install failed");
    /* pkg-config relocates prefix= to the DESTDIR tree with --define-prefix */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && PKG_CONFIG_PATH='%s/usr/local/lib/pkgconfig' pkg-config --define-prefix --cflags --libs "
             "oialr > flags && grep -q '%s/usr/local/include' flags && "
             "cc -std=c11 -Wall -Wextra -Werror ${SANITIZER:+-fsanitize=$SANITIZER} "
             "'%s/docs/examples/record_example.c' $(cat flags) "
             "-lm -Wl,-rpath,'%s/usr/local/lib' -o record_example >>'%s' 2>&1 && ./record_example ex.h5 >>'%s' 2>&1",
             dir, inst, inst, root, inst, log, log);
    rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "tail -20 '%s' >&2", log);
        ck_assert_int_eq(system(cmd), 0);
    }
    ck_assert_msg(rc == 0, "example against the installed library failed (see above)");
    oialr_traj *t = NULL;
    char p[512];
    path_of(p, sizeof p, "ex.h5");
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, 11);
    OK(oialr_traj_close(t));
}
END_TEST

// ----------------------------------------------------------------------------
// Limits

static void write_bytes(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* The error message: one line, naming the file. */
static void assert_msg(const char *path, const char *word) {
    const char *m = oialr_errmsg();
    ck_assert_msg(strstr(m, path) != NULL, "message does not name the file: %s", m);
    ck_assert_msg(strchr(m, '\n') == NULL, "message is not one line: %s", m);
    if (word) ck_assert_msg(strstr(m, word) != NULL, "message lacks '%s': %s", word, m);
}

START_TEST(test_bad_files) {
    char p[512];
    oialr_traj *t = (oialr_traj *)0x1;
    path_of(p, sizeof p, "missing.h5");
    ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_READ), OIALR_ERR_NOTFOUND);
    ck_assert_ptr_null(t);
    assert_msg(p, NULL);
    path_of(p, sizeof p, "empty.h5");
    write_bytes(p, "", 0);
    ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_READ), OIALR_ERR_FORMAT);
    assert_msg(p, "not an HDF5 file");
    path_of(p, sizeof p, "text.h5");
    const char *txt = "step,loss\n0,2.3\n1,2.2\n";
    write_bytes(p, txt, strlen(txt));
    ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_READ), OIALR_ERR_FORMAT);
    assert_msg(p, "not an HDF5 file");
    ck_assert_int_eq(oialr_traj_open(&t, dir, OIALR_TRAJ_READ), OIALR_ERR_FORMAT);

    /* HDF5, but another layout (no format attribute) */
    path_of(p, sizeof p, "foreign.h5");
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hsize_t d = 4;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, "data", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(ds, 0);
    H5Dclose(ds), H5Sclose(sp), H5Fclose(f);
    ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_READ), OIALR_ERR_FORMAT);
    assert_msg(p, "not an oialr trajectory");
    ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_APPEND), OIALR_ERR_FORMAT);

    /* our layout with the format attribute changed, and a newer version */
    int a, b;
    path_of(p, sizeof p, "other.h5");
    OK(oialr_traj_close(new_traj(p, &a, &b)));
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    H5Adelete(f, "format");
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 8);
    sp = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(f, "format", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(at, 0);
    H5Awrite(at, st, "netcdf4\0");
    H5Aclose(at), H5Sclose(sp), H5Tclose(st), H5Fclose(f);
    ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_READ), OIALR_ERR_FORMAT);
    assert_msg(p, "not an oialr trajectory");

    path_of(p, sizeof p, "newer.h5");
    OK(oialr_traj_close(new_traj(p, &a, &b)));
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    at = H5Aopen(f, "format_version", H5P_DEFAULT);
    int v = OIALR_TRAJ_FORMAT_VERSION + 1;
    H5Awrite(at, H5T_NATIVE_INT, &v);
    H5Aclose(at), H5Fclose(f);
    ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_READ), OIALR_ERR_VERSION);
    char want[32];
    snprintf(want, sizeof want, "format_version %d", v);
    assert_msg(p, want);

    /* truncated: a complete file cut short */
    path_of(p, sizeof p, "cut.h5");
    t = new_traj(p, &a, &b);
    float w[15];
    for (int s = 0; s < 20; s++) {
        pattern(w, 15, 0, s);
        OK(oialr_traj_append(t, a, s, w, 0));
    }
    OK(oialr_traj_close(t));
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_int_eq(truncate(p, sb.st_size / 2), 0);
    int rc = oialr_traj_open(&t, p, OIALR_TRAJ_READ);
    ck_assert_msg(rc == OIALR_ERR_TRUNCATED, "rc %d: %s", rc, oialr_errmsg());
    assert_msg(p, "truncated");
    ck_assert_int_eq(oialr_traj_open(&t, p, OIALR_TRAJ_APPEND), OIALR_ERR_TRUNCATED);
    ck_assert_int_eq(truncate(p, 100), 0);
    rc = oialr_traj_open(&t, p, OIALR_TRAJ_READ);
    ck_assert_msg(rc == OIALR_ERR_TRUNCATED || rc == OIALR_ERR_FORMAT, "rc %d: %s", rc, oialr_errmsg());
    assert_msg(p, NULL);
}
END_TEST

START_TEST(test_missing_layer_and_ranges) {
    char p[512];
    path_of(p, sizeof p, "m.h5");
    int a, b;
    float w[15];
    oialr_traj *t = new_traj(p, &a, &b);
    pattern(w, 15, 0, 0);
    OK(oialr_traj_append(t, a, 0, w, 0));
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    int idx = -5;
    ck_assert_int_eq(oialr_traj_find_layer(t, "fc9.weight", &idx), OIALR_ERR_NOTFOUND);
    ck_assert_int_eq(idx, -5);
    assert_msg(p, "fc9.weight");
    ck_assert_int_eq(oialr_traj_read(t, 7, 0, w, 15), OIALR_ERR_NOTFOUND);
    ck_assert_int_eq(oialr_traj_read(t, 0, 1, w, 15), OIALR_ERR_NOTFOUND);
    ck_assert_int_eq(oialr_traj_read(t, 1, 0, w, 8), OIALR_ERR_NOTFOUND); /* fc2 has no snapshot */
    ck_assert_int_eq(oialr_traj_read(t, 0, 0, w, 14), OIALR_ERR_MISMATCH);
    int64_t snap;
    ck_assert_int_eq(oialr_traj_find_step(t, 0, 5, &snap), OIALR_ERR_NOTFOUND);
    double col[2];
    ck_assert_int_eq(oialr_traj_read_column(t, "nope", col, 2, NULL), OIALR_ERR_NOTFOUND);
    char buf[8];
    ck_assert_int_eq(oialr_traj_get_config(t, "nope", buf, sizeof buf), OIALR_ERR_NOTFOUND);
    int64_t i64;
    ck_assert_int_eq(oialr_traj_ckpt_get_i64(t, "step", &i64), OIALR_ERR_NOTFOUND);
    /* read-only handle refuses writes */
    ck_assert_int_eq(oialr_traj_append(t, 0, 1, w, 0), OIALR_ERR_ARG);
    OK(oialr_traj_close(t));
}
END_TEST

START_TEST(test_nan_recorded_as_is) {
    char p[512];
    path_of(p, sizeof p, "nan.h5");
    int a, b;
    float w[15], r[15];
    oialr_traj *t = new_traj(p, &a, &b);
    pattern(w, 15, 0, 0);
    w[3] = NAN;
    w[4] = -INFINITY;
    uint32_t payload = 0x7fc12345u;
    memcpy(&w[5], &payload, 4);
    g_warn[0] = 0;
    oialr_set_log(capture_warn, NULL, OIALR_LOG_WARN);
    OK(oialr_traj_append(t, a, 0, w, 0)); /* data, not an error */
    oialr_set_log(quiet_log, NULL, OIALR_LOG_DEBUG);
    ck_assert_msg(strstr(g_warn, "has 3 NaN/Inf values"), "warning: '%s'", g_warn);
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    OK(oialr_traj_read(t, 0, 0, r, 15));
    ck_assert(memcmp(r, w, sizeof w) == 0);
    OK(oialr_traj_close(t));
}
END_TEST

/* The log callback is process-wide and called from the writer thread too:
 * threads log while this one swaps the callback. Each callback counts
 * without a lock of its own (oialr_set_log's contract: calls come one at a
 * time), and every message reaches one of them. Under TSan (make check) an
 * unsynchronised swap or call is a reported race. */
static long g_log_count[2];
static void count_log_0(int level, const char *msg, void *user) {
    (void)level, (void)msg, (void)user;
    g_log_count[0]++;
}
static void count_log_1(int level, const char *msg, void *user) {
    (void)level, (void)msg, (void)user;
    g_log_count[1]++;
}
enum { LOG_THREADS = 2, LOG_EACH = 2000 };
static void *log_many(void *arg) {
    (void)arg;
    for (int i = 0; i < LOG_EACH; i++) oialr_log(OIALR_LOG_WARN, "message %d", i);
    return NULL;
}

START_TEST(test_log_from_threads) {
    g_log_count[0] = g_log_count[1] = 0;
    oialr_set_log(count_log_0, NULL, OIALR_LOG_WARN);
    pthread_t th[LOG_THREADS];
    for (int i = 0; i < LOG_THREADS; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, log_many, NULL), 0);
    for (int k = 0; k < 200; k++) oialr_set_log(k % 2 ? count_log_0 : count_log_1, NULL, OIALR_LOG_WARN);
    for (int i = 0; i < LOG_THREADS; i++) ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    oialr_set_log(quiet_log, NULL, OIALR_LOG_DEBUG);
    ck_assert_int_eq(g_log_count[0] + g_log_count[1], LOG_THREADS * LOG_EACH);
}
END_TEST

/* A layer's steps strictly increase, as the reader requires: the writer
 * refuses a duplicate, a decreasing or a negative step before writing, and
 * the file reads back with the snapshots taken before. */
START_TEST(test_steps_must_increase) {
    char p[512];
    path_of(p, sizeof p, "steps.h5");
    int a, b;
    oialr_traj *t = new_traj(p, &a, &b);
    float w[15] = {1, 2, 3};
    OK(oialr_traj_append(t, a, 0, w, 0));
    OK(oialr_traj_append(t, a, 10, w, 0));
    ck_assert_int_eq(oialr_traj_append(t, a, 10, w, 0), OIALR_ERR_ARG);
    assert_msg(p, "strictly increase");
    ck_assert_int_eq(oialr_traj_append(t, a, 5, w, 0), OIALR_ERR_ARG);
    assert_msg(p, "strictly increase");
    ck_assert_int_eq(oialr_traj_append(t, b, -1, w, 0), OIALR_ERR_ARG);
    assert_msg(p, "negative");
    OK(oialr_traj_append(t, b, 10, w, 0)); /* another layer has its own steps */
    OK(oialr_traj_append(t, a, 20, w, 0));
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    const oialr_traj_layer *L = oialr_traj_layer_at(t, a);
    ck_assert_int_eq(L->nsnap, 3);
    ck_assert_int_eq(L->steps[0], 0);
    ck_assert_int_eq(L->steps[1], 10);
    ck_assert_int_eq(L->steps[2], 20);
    ck_assert_int_eq(oialr_traj_layer_at(t, b)->nsnap, 1);
    OK(oialr_traj_close(t));
}
END_TEST

START_TEST(test_misuse) {
    char p[512];
    path_of(p, sizeof p, "x.h5");
    int a, b;
    oialr_traj *t = new_traj(p, &a, &b);
    OK(oialr_traj_close(t));
    /* exists, no force */
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    ck_assert_int_eq(oialr_traj_create(&t, p, &o), OIALR_ERR_EXISTS);
    assert_msg(p, "exists");
    char bad[512];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.h5", dir);
    ck_assert_int_eq(oialr_traj_create(&t, bad, &o), OIALR_ERR_IO);
    assert_msg(bad, NULL);
    o.compress = 12;
    ck_assert_int_eq(oialr_traj_create(&t, bad, &o), OIALR_ERR_ARG);

    path_of(p, sizeof p, "y.h5");
    o.compress = 0;
    OK(oialr_traj_create(&t, p, &o));
    ck_assert_int_eq(oialr_traj_declare_layer(t, "a/b", 2, 2, "dense", 0, NULL, NULL), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_traj_declare_layer(t, "", 2, 2, "dense", 0, NULL, NULL), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_traj_declare_layer(t, "..", 2, 2, "dense", 0, NULL, NULL), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_traj_declare_layer(t, "z", 0, 2, "dense", 0, NULL, NULL), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_traj_declare_layer(t, "z", 1 << 20, 1 << 20, "dense", 0, NULL, NULL),
                     OIALR_ERR_OVERFLOW);
    OK(oialr_traj_declare_layer(t, "z", 2, 2, "dense", 0, NULL, &a));
    ck_assert_int_eq(oialr_traj_declare_layer(t, "z", 2, 2, "dense", 0, NULL, NULL), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_traj_declare_metrics(t, "loss,,acc"), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_traj_declare_metrics(t, "loss,step"), OIALR_ERR_ARG);
    OK(oialr_traj_declare_metrics(t, "loss,acc"));
    OK(oialr_traj_declare_ckpt_scalar(t, "s", 0));
    ck_assert_int_eq(oialr_traj_ckpt_put_i64(t, "s", 1), OIALR_ERR_ARG); /* outside start/commit */
    float w[4] = {1, 2, 3, 4};
    OK(oialr_traj_append(t, a, 0, w, 0)); /* begins by itself */
    ck_assert_int_eq(oialr_traj_declare_layer(t, "late", 2, 2, "dense", 0, NULL, NULL), OIALR_ERR_ARG);
    assert_msg(p, "SWMR");
    ck_assert_int_eq(oialr_traj_append(t, 5, 0, w, 0), OIALR_ERR_NOTFOUND);
    double row[3] = {1, 2, 3};
    ck_assert_int_eq(oialr_traj_append_metrics(t, 0, row, 3), OIALR_ERR_MISMATCH);
    oialr_traj_event ev = {.kind = 9};
    ck_assert_int_eq(oialr_traj_append_event(t, &ev), OIALR_ERR_ARG);
    OK(oialr_traj_ckpt_start(t));
    ck_assert_int_eq(oialr_traj_ckpt_put_u64(t, "s", 1), OIALR_ERR_MISMATCH);
    ck_assert_int_eq(oialr_traj_ckpt_put_i64(t, "nope", 1), OIALR_ERR_NOTFOUND);
    OK(oialr_traj_ckpt_put_i64(t, "s", 1));
    OK(oialr_traj_ckpt_commit(t));
    OK(oialr_traj_close(t));
    OK(oialr_traj_close(NULL));
}
END_TEST

/* test_disk_full's writer, under a 200 KiB file size limit. */
static int full_disk_writer(writer_proc *wp, void *arg) {
    (void)wp;
    const char *p = arg;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {200 * 1024, 200 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &rl)) return 10;
    oialr_traj *t = NULL;
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    if (oialr_traj_create(&t, p, &o)) return 11;
    int a;
    if (oialr_traj_declare_layer(t, "big", 128, 128, "dense", 0, NULL, &a)) return 12;
    static float w[128 * 128];
    int rc = OIALR_OK, s;
    for (s = 0; s < 50 && rc == OIALR_OK; s++) rc = oialr_traj_append(t, a, s, w, 0);
    if (rc != OIALR_ERR_IO) return 13;
    if (!strstr(oialr_errmsg(), p) || strchr(oialr_errmsg(), '\n')) return 14;
    /* HDF5's error records went into the message and are gone: on the
     * recorder's writer thread, which then exits, HDF5 would leak them */
    if (H5Eget_num(H5E_DEFAULT) != 0) return 16;
    /* later calls keep failing cleanly; close frees everything */
    oialr_traj_append(t, a, 99, w, 0);
    oialr_traj_close(t);
    exit(s > 1 ? 0 : 15); /* exit(), not _exit(): HDF5's exit handlers must not crash either */
}

/* Disk full (here: the file size limit): every append returns
 * OIALR_ERR_IO with a message, nothing crashes. */
START_TEST(test_disk_full) {
    char p[512];
    path_of(p, sizeof p, "full.h5");
    writer_proc w;
    writer_start(&w, full_disk_writer, p);
    writer_wait_ok(&w);
}
END_TEST

/* A write error in the writer thread (the file size limit, like a full
 * disk) stops the training run at the next step with OIALR_ERR_IO and the
 * writer's one-line message; run_end returns it too; nothing hangs. */
/* test_hook_write_error's run, under a 4 MiB file size limit. */
static int full_disk_run(writer_proc *w, void *arg) {
    (void)w;
    const char *p = arg;
    signal(SIGXFSZ, SIG_IGN);
    /* the definitions take ~1.7 MB (two checkpoint slots), a snapshot 265 KB */
    struct rlimit rl = {4 << 20, 4 << 20};
    if (setrlimit(RLIMIT_FSIZE, &rl)) return 10;
    rig g;
    rig_init(&g, "mlp:256", 16, 1000);
    oialr_record_options ro;
    oialr_record_options_default(&ro);
    ro.path = p;
    ro.every = 1;
    oialr_hook h;
    if (oialr_record_hook_init(&h, &ro)) return 11;
    oialr_trainer_add_hook(&g.tr, &h);
    int rc = oialr_train_run(&g.tr);
    if (rc != OIALR_ERR_IO) return 12;
    if (!strstr(oialr_errmsg(), p) || strchr(oialr_errmsg(), '\n')) return 13;
    oialr_record_info in;
    oialr_record_get_info(&h, &in);
    if (in.snapshots < 1 || in.snapshots > 15) return 14; /* failed mid-run, not at the start */
    /* stopped at the step after the failure: at most the queue's worth later */
    if (g.tr.metrics.step > in.snapshots + OIALR_RECORD_POOL + 2) return 15;
    if (g.tr.status != OIALR_ERR_IO) return 16;
    oialr_record_hook_free(&h);
    rig_free(&g);
    exit(0);
}

START_TEST(test_hook_write_error) {
    char p[512];
    path_of(p, sizeof p, "hfull.h5");
    writer_proc w;
    writer_start(&w, full_disk_run, p);
    writer_wait_ok(&w);
}
END_TEST

static Suite *record_suite(void) {
    Suite *s = suite_create("record");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_set_timeout(core, 120);
    tcase_add_test(core, test_round_trip);
    tcase_add_test(core, test_compressed_round_trip);
    tcase_add_test(core, test_append_after_reopen);
    tcase_add_test(core, test_live_reader);
    tcase_add_test(core, test_sigkill);
    tcase_add_test(core, test_recover_refuses_live_writer);
    tcase_add_test(core, test_hook_trainer);
    tcase_add_test(core, test_hook_async_identical);
    tcase_add_test(core, test_hook_async_buffered);
    tcase_add_test(core, test_direct_io);
    tcase_add_test(core, test_append_rechunked);
    tcase_add_test(core, test_hook_writer_paths);
    tcase_add_test(core, test_hook_interrupted);
    tcase_add_test(core, test_hook_sigkill);
    tcase_add_test(core, test_python_writer);
    tcase_add_test(core, test_installed_example);
    suite_add_tcase(s, core);
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_set_timeout(lim, 30);
    tcase_add_test(lim, test_bad_files);
    tcase_add_test(lim, test_missing_layer_and_ranges);
    tcase_add_test(lim, test_nan_recorded_as_is);
    tcase_add_test(lim, test_hook_counts_nonfinite);
    tcase_add_test(lim, test_misuse);
    tcase_add_test(lim, test_steps_must_increase);
    tcase_add_test(lim, test_log_from_threads);
    tcase_add_test(lim, test_disk_full);
    tcase_add_test(lim, test_hook_write_error);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(record_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
