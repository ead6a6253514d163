/*
 * check_watch.c — `oialr inspect` and `oialr watch` through the built CLI,
 * on trajectories written here with the public writer API, whose contents
 * (and so the printed facts) are known:
 *
 *   fc1.weight   4x4 dense, snapshot t = a rotation by t·60° in the (0, 1)
 *                plane: Q = W, so S between snapshots k apart is
 *                (2 cos(k·60°) + 2) / 4: 0.75 at lag 1, 0.25 at lag 2;
 *   conv1.weight 4x18 (shape 4x2x3x3), the same full-rank matrix every
 *                time: S = 1; the mean of the two is 0.875 (lag 1);
 *   metrics      step 10k, epoch k/2, loss 0.5 - k/10... (row k);
 *
 * and an OIALR file with factored snapshots and switch/rotate/truncate
 * events. Suite "inspect": a closed full-rank file, the OIALR file (text
 * and --json, parsed by python3), a live file (a forked writer holding it
 * open), a killed one (SIGKILL). Suite "watch": one frame of a file no
 * writer records (the known stabilities in its header), a killed file, and
 * under tmux (its own server socket, in the test's directory) a live writer that adds snapshots on
 * the test's command: the captured screen shows the header's step advance
 * and the plot frames, watch exits 0 by itself once the writer closes, and
 * Ctrl-C gives 130 with the cursor shown again. "Limits" of each: results
 * file, foreign HDF5, not HDF5, empty, missing, usage, no gnuplot on PATH.
 * The tmux waits poll the screen with generous timeouts, never sleep a
 * guessed time.
 */
#include <check.h>
#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oialr.h"
#include "oialr/trajectory.h"
#include "util_cli.h"

static char dir[256];
static char out[1 << 16];

#define OK(expr)                                                                                             \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        ck_assert_msg(rc_ == OIALR_OK, "%s -> %d: %s", #expr, rc_, oialr_errmsg());                          \
    } while (0)

#define HAS(s) ck_assert_msg(strstr(out, (s)) != NULL, "no '%s' in:\n%s", (s), out)
#define HASNT(s) ck_assert_msg(strstr(out, (s)) == NULL, "'%s' in:\n%s", (s), out)

static void quiet_log(int level, const char *msg, void *user) { (void)level, (void)msg, (void)user; }

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-watch-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    oialr_set_log(quiet_log, NULL, OIALR_LOG_DEBUG);
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void path_of(char *p, size_t n, const char *name) { snprintf(p, n, "%s/%s", dir, name); }

/* Run a shell command line in dir; output (stdout and stderr) into out;
 * the exit status (128 + signal if killed). */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[8192], line[7900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && { %s ; } 2>&1", dir, line);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* "oialr ARGS" in dir */
static int cli(const char *args) { return tu_cli_run(dir, args, out, sizeof out); }

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

// ----------------------------------------------------------------------------
// the trajectories

enum { NSNAP = 5 };

/* snapshot k of fc1: rotation by k·60° in the (0, 1) plane, identity else */
static void rotation(float *w, int k) {
    double a = k * M_PI / 3;
    memset(w, 0, 16 * sizeof *w);
    w[0] = (float)cos(a), w[1] = (float)-sin(a), w[4] = (float)sin(a), w[5] = (float)cos(a);
    w[10] = w[15] = 1;
}

/* conv1: rows orthogonal, rank 4 */
static void fixed(float *w) {
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 18; j++) w[i * 18 + j] = j % 4 == i ? 1.0f : 0.0f;
}

typedef struct run {
    oialr_traj *t;
    int l0, l1;
    int k;      /* snapshots written */
    int nan_at; /* this snapshot of fc1 holds a NaN (0: none) */
} run;

static int run_create(run *r, const char *path) {
    memset(r, 0, sizeof *r);
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    o.force = 1;
    o.seed = 7;
    o.command_line = "train --model mlp:8 --record run.h5";
    int64_t shape[4] = {4, 2, 3, 3};
    int rc;
    if ((rc = oialr_traj_create(&r->t, path, &o)) || (rc = oialr_traj_set_config(r->t, "model", "mlp:8")) ||
        (rc = oialr_traj_set_config(r->t, "steps_per_epoch", "20")) ||
        (rc = oialr_traj_set_config(r->t, "argv", "--model\nmlp:8\n--record\nrun.h5")) ||
        (rc = oialr_traj_declare_layer(r->t, "fc1.weight", 4, 4, "dense", 0, NULL, &r->l0)) ||
        (rc = oialr_traj_declare_layer(r->t, "conv1.weight", 4, 18, "conv2d", 4, shape, &r->l1)) ||
        (rc = oialr_traj_declare_metrics(r->t, "epoch,loss,train_acc,val_acc")) ||
        (rc = oialr_traj_declare_ckpt_scalar(r->t, "step", 0)) || (rc = oialr_traj_begin(r->t)))
        return rc;
    return OIALR_OK;
}

/* Snapshot r->k of both layers at step 10k, its metrics row and a
 * checkpoint at that step. */
static int run_snap(run *r) {
    float w[16], c[72];
    rotation(w, r->k);
    if (r->nan_at && r->k == r->nan_at) w[5] = NAN;
    fixed(c);
    int64_t step = 10 * r->k;
    double row[4] = {r->k / 2.0, 0.5 - r->k / 10.0, 0.5 + r->k / 10.0, 0.85};
    int rc;
    if ((rc = oialr_traj_append(r->t, r->l0, step, w, 0)) || (rc = oialr_traj_append(r->t, r->l1, step, c, 0)) ||
        (rc = oialr_traj_append_metrics(r->t, step, row, 4)) || (rc = oialr_traj_ckpt_start(r->t)) ||
        (rc = oialr_traj_ckpt_put_i64(r->t, "step", step)) || (rc = oialr_traj_ckpt_commit(r->t)))
        return rc;
    r->k++;
    return OIALR_OK;
}

static void write_closed(const char *name) {
    char p[512];
    path_of(p, sizeof p, name);
    run r;
    OK(run_create(&r, p));
    for (int k = 0; k < NSNAP; k++) OK(run_snap(&r));
    OK(oialr_traj_close(r.t));
}

/* An OIALR run: fc1.weight (6x6) full at steps 0, 10; switched at 20 to
 * rank 3 (basis 0), rotated at 30 (basis 1), truncated to rank 2 at 40
 * (basis 1 again); head.weight (2x6) full throughout. */
static void write_oialr(const char *name) {
    char p[512];
    path_of(p, sizeof p, name);
    oialr_traj *t = NULL;
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    o.force = 1;
    int a, b;
    OK(oialr_traj_create(&t, p, &o));
    OK(oialr_traj_declare_layer(t, "fc1.weight", 6, 6, "dense", 0, NULL, &a));
    OK(oialr_traj_declare_factors(t, a, 6));
    OK(oialr_traj_declare_layer(t, "head.weight", 2, 6, "dense", 0, NULL, &b));
    OK(oialr_traj_begin(t));
    float w[36], h[12], u[18], s[9], v[18];
    for (int i = 0; i < 36; i++) w[i] = (float)(i % 7) - 3.0f + (i % 6 == i / 6 ? 5.0f : 0.0f);
    for (int i = 0; i < 12; i++) h[i] = (float)i;
    for (int i = 0; i < 18; i++) u[i] = v[i] = i / 3 == i % 3 ? 1.0f : 0.0f;
    for (int i = 0; i < 9; i++) s[i] = i % 4 == 0 ? 3.0f - (float)(i / 4) : 0.0f;
    for (int k = 0; k < 5; k++) {
        int64_t step = 10 * k;
        if (k < 2) OK(oialr_traj_append(t, a, step, w, 0));
        else if (k == 2 || k == 3) OK(oialr_traj_append_factors(t, a, step, 3, u, s, v));
        else OK(oialr_traj_append_factors(t, a, step, 2, NULL, s, NULL));
        OK(oialr_traj_append(t, b, step, h, 0));
        if (k == 2) {
            oialr_traj_event ev = {.step = 20, .kind = OIALR_EVENT_SWITCH, .stability = 0.995, .rank_before = 6,
                                   .rank_after = 3};
            strcpy(ev.layer, "fc1.weight");
            OK(oialr_traj_append_event(t, &ev));
        } else if (k >= 3) {
            oialr_traj_event ev = {.step = step, .kind = k == 3 ? OIALR_EVENT_ROTATE : OIALR_EVENT_TRUNCATE,
                                   .stability = NAN, .rank_before = 3, .rank_after = k == 3 ? 3 : 2};
            strcpy(ev.layer, "fc1.weight");
            OK(oialr_traj_append_event(t, &ev));
        }
        double row[OIALR_TRAJ_METRICS_DEFAULT_N];
        for (int c = 0; c < OIALR_TRAJ_METRICS_DEFAULT_N; c++) row[c] = NAN;
        row[1] = 1.0 / (k + 1);
        OK(oialr_traj_append_metrics(t, step, row, OIALR_TRAJ_METRICS_DEFAULT_N));
    }
    OK(oialr_traj_close(t));
}

// ----------------------------------------------------------------------------
// a writer in a child process, driven through two pipes: the child writes
// `first` snapshots, then says so ('r' up the pipe) and obeys one command
// at a time: 'n' one more snapshot (then 'r' again), 'c' close and exit 0.
// The parent can also SIGKILL it.

typedef struct child {
    pid_t pid;
    int up, down;
} child;

static int child_main(const char *path, int first, int up, int down) {
    run r;
    if (run_create(&r, path)) return 2;
    for (int k = 0; k < first; k++)
        if (run_snap(&r)) return 3;
    for (;;) {
        char c = 'r';
        if (write(up, &c, 1) != 1 || read(down, &c, 1) != 1) return 4;
        if (c == 'c') return oialr_traj_close(r.t) ? 5 : 0;
        if (run_snap(&r)) return 6;
    }
}

static void child_start(child *c, const char *name, int first) {
    char p[512];
    path_of(p, sizeof p, name);
    int up[2], down[2];
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    fflush(NULL);
    c->pid = fork();
    ck_assert_int_ge(c->pid, 0);
    if (c->pid == 0) {
        close(up[0]), close(down[1]);
        _exit(child_main(p, first, up[1], down[0]));
    }
    close(up[1]), close(down[0]);
    c->up = up[0], c->down = down[1];
}

/* wait for the child's 'r' */
static void child_ready(child *c) {
    char x;
    ck_assert_int_eq(read(c->up, &x, 1), 1);
    ck_assert_int_eq(x, 'r');
}

static void child_cmd(child *c, char cmd) { ck_assert_int_eq(write(c->down, &cmd, 1), 1); }

static void child_close(child *c) {
    child_cmd(c, 'c');
    int st;
    ck_assert_int_eq(waitpid(c->pid, &st, 0), c->pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer ended with status %d", st);
    close(c->up), close(c->down);
}

static void child_kill(child *c) {
    kill(c->pid, SIGKILL);
    int st;
    ck_assert_int_eq(waitpid(c->pid, &st, 0), c->pid);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    close(c->up), close(c->down);
}

// ----------------------------------------------------------------------------
// inspect

START_TEST(inspect_closed) {
    write_closed("run.h5");
    int rc = cli("inspect run.h5");
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("run.h5: oialr trajectory, format version 1");
    HAS("writer      closed");
    HAS("2 weight matrices, 5 snapshots each");
    /* name, kind, original shape, matrix view, snapshots, steps */
    ck_assert_msg(strstr(out, "fc1.weight") && strstr(out, "dense") && strstr(out, "4x4"), "%s", out);
    HAS("conv1.weight");
    HAS("conv2d");
    HAS("4x2x3x3");
    HAS("4x18");
    HAS("0..40 /10");
    HAS("full");
    HAS("metrics     5 rows, steps 0..40; 4 columns + step: epoch, loss, train_acc, val_acc");
    HAS("last: epoch 2, loss 0.1, train_acc 0.9, val_acc 0.85");
    HAS("events      0 (no switch, rotation or truncation: a full-rank run)");
    HAS("checkpoint  at step 40");
    HAS("created     ");
    HAS("seed 7");
    HAS("command     train --model mlp:8 --record run.h5");
    HAS("config      model=mlp:8 steps_per_epoch=20");
    HASNT("argv"); /* the same flags as the command line */
    HASNT("killed");
}
END_TEST

START_TEST(inspect_oialr) {
    write_oialr("lr.h5");
    int rc = cli("inspect lr.h5");
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("format version 2");
    HAS("OIALR layers may be stored as factors");
    HAS("stored");
    /* fc1: 3 of 5 snapshots factored, 2 bases, rank 2 of 6 at the end */
    HAS("3 factored from step 20 (2 bases), switched at step 20 (S 0.9950)");
    HAS("2/6");
    HAS("full (no factors declared)"); /* head.weight */
    HAS("events      3: 1 switch, 1 rotate, 1 truncate; first switch: fc1.weight at step 20 (S 0.9950)");
    HAS("checkpoint  none committed");
    HAS("config      (none recorded)");
    /* --json: valid JSON holding the same facts */
    char bin[PATH_MAX];
    tu_cli_bin(bin, sizeof bin);
    rc = sh("'%s' inspect --json lr.h5 > lr.json && /usr/bin/python3 -c \"import json; d = json.load(open('lr.json')); "
            "l = d['layers'][0]; print(d['writer'], len(d['layers']), l['name'], l['factored'], l['bases'], "
            "l['rank_last'], l['switch_step'], d['events']['switch'], d['events']['first_switch']['step'])\"",
            bin);
    ck_assert_msg(rc == 0, "json: exit %d:\n%s", rc, out);
    HAS("closed 2 fc1.weight 3 2 2 20 1 20");
}
END_TEST

START_TEST(inspect_live_and_killed) {
    child c;
    child_start(&c, "live.h5", 3);
    child_ready(&c);
    int rc = cli("inspect live.h5");
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("writer      live: a writer process is recording it now");
    HAS("oialr watch live.h5");
    HAS("3 snapshots each");
    HAS("0..20 /10");
    HAS("checkpoint  at step 20");
    /* one more snapshot: a second look sees it; the file was not changed */
    child_cmd(&c, 'n');
    child_ready(&c);
    rc = cli("inspect live.h5");
    ck_assert_msg(rc == 0 && strstr(out, "4 snapshots each"), "exit %d:\n%s", rc, out);
    child_close(&c);
    rc = cli("inspect live.h5");
    ck_assert_msg(rc == 0 && strstr(out, "writer      closed"), "exit %d:\n%s", rc, out);

    child_start(&c, "killed.h5", 3);
    child_ready(&c);
    child_kill(&c);
    rc = cli("inspect killed.h5");
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("writer      killed: the file was not closed and no writer holds it");
    HAS("every snapshot flushed before that survived");
    HAS("continue the run: oialr train --resume killed.h5 (from its checkpoint at step 20)");
    HAS("h5clear -s --increment=0 killed.h5");
    HAS("3 snapshots each");
    HAS("metrics     3 rows");
    /* reading it did not repair it: still killed */
    rc = cli("inspect killed.h5");
    ck_assert_msg(rc == 0 && strstr(out, "writer      killed"), "%s", out);
}
END_TEST

START_TEST(inspect_limits) {
    write_closed("run.h5");
    /* a results file given by mistake */
    int rc = cli("analyze run.h5 -o res.h5 --quiet --threads 1");
    ck_assert_msg(rc == 0, "analyze: exit %d:\n%s", rc, out);
    rc = cli("inspect res.h5");
    ck_assert_msg(rc == 1 && lines(out) == 1, "exit %d:\n%s", rc, out);
    HAS("oialr inspect: res.h5: an oialr analysis results file (written by oialr analyze from run.h5), not a "
        "trajectory: give run.h5 instead");
    /* a foreign HDF5 file */
    char p[512];
    path_of(p, sizeof p, "foreign.h5");
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t g = H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(g, 0);
    H5Gclose(g);
    H5Fclose(f);
    rc = cli("inspect foreign.h5");
    ck_assert_msg(rc == 1 && lines(out) == 1, "exit %d:\n%s", rc, out);
    HAS("foreign.h5: HDF5 file but not an oialr trajectory");
    /* not HDF5, empty, missing */
    rc = sh("echo 'not a trajectory' > text.h5 && : > empty.h5");
    ck_assert_int_eq(rc, 0);
    rc = cli("inspect text.h5");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "text.h5: not an HDF5 file"), "exit %d:\n%s", rc, out);
    rc = cli("inspect empty.h5");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "not an HDF5 file (empty)"), "exit %d:\n%s", rc, out);
    rc = cli("inspect nosuch.h5");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "nosuch.h5"), "exit %d:\n%s", rc, out);
    rc = cli("inspect .");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "not a regular file"), "exit %d:\n%s", rc, out);
    /* usage */
    ck_assert_int_eq(cli("inspect"), 2);
    ck_assert_int_eq(cli("inspect run.h5 --bogus"), 2);
    ck_assert_int_eq(cli("inspect run.h5 run.h5"), 2);
    ck_assert_int_eq(cli("inspect --help"), 0);
    HAS("usage: oialr inspect RUN.h5");
    /* nothing was written beside the inputs */
    rc = sh("ls -A | sort | tr '\\n' ' '");
    ck_assert_str_eq(out, "empty.h5 foreign.h5 res.h5 run.h5 text.h5 ");
}
END_TEST

// ----------------------------------------------------------------------------
// the two reader functions inspect and watch added (lib/record)

/* oialr_traj_config_key lists /config in name order, then NOTFOUND */
START_TEST(reader_config_keys) {
    write_closed("run.h5");
    char p[512], key[64], small[4];
    path_of(p, sizeof p, "run.h5");
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    static const char *const want[] = {"argv", "model", "steps_per_epoch"};
    for (int i = 0; i < 3; i++) {
        OK(oialr_traj_config_key(t, i, key, sizeof key));
        ck_assert_str_eq(key, want[i]);
    }
    ck_assert_int_eq(oialr_traj_config_key(t, 3, key, sizeof key), OIALR_ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(oialr_errmsg(), "run.h5"));
    ck_assert_str_eq(key, "");
    ck_assert_int_eq(oialr_traj_config_key(t, -1, key, sizeof key), OIALR_ERR_NOTFOUND);
    OK(oialr_traj_config_key(t, 2, small, sizeof small)); /* cut, terminated */
    ck_assert_str_eq(small, "ste");
    OK(oialr_traj_close(t));
    /* a file with no /config at all (another writer's) */
    path_of(p, sizeof p, "bare.h5");
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(ty, H5T_VARIABLE);
    const char *fmt = OIALR_TRAJ_FORMAT;
    hid_t a = H5Acreate2(f, "format", ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, ty, &fmt), 0);
    H5Aclose(a);
    int32_t ver = 1;
    a = H5Acreate2(f, "format_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_INT32, &ver), 0);
    H5Aclose(a);
    H5Tclose(ty), H5Sclose(sp);
    H5Gclose(H5Gcreate2(f, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(f);
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_config_key(t, 0, key, sizeof key), OIALR_ERR_NOTFOUND);
    OK(oialr_traj_close(t));
    int rc = cli("inspect bare.h5");
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("layers      0 weight matrices");
    HAS("config      (none recorded)");
    HAS("checkpoint  none committed");
}
END_TEST

/* oialr_traj_refresh updates writer_alive: 1 while the writer runs, 0 once
 * it has closed the file */
START_TEST(reader_refresh_writer_alive) {
    child c;
    child_start(&c, "live.h5", 2);
    child_ready(&c);
    char p[512];
    path_of(p, sizeof p, "live.h5");
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->writer_alive, 1);
    child_cmd(&c, 'n');
    child_ready(&c);
    OK(oialr_traj_refresh(t));
    ck_assert_int_eq(oialr_traj_get_info(t)->writer_alive, 1);
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, 3);
    child_close(&c);
    OK(oialr_traj_refresh(t));
    ck_assert_int_eq(oialr_traj_get_info(t)->writer_alive, 0);
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, 3);
    OK(oialr_traj_close(t));
}
END_TEST

// ----------------------------------------------------------------------------
// watch: one frame (stdout is not a terminal here)

START_TEST(watch_once) {
    write_closed("run.h5");
    char bin[PATH_MAX];
    tu_cli_bin(bin, sizeof bin);
    int rc = sh("COLUMNS=100 LINES=40 '%s' watch run.h5", bin);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("run.h5  writer closed  step 40  epoch 2.00  snapshots 5  events 0");
    /* the known stabilities: 0.75 and 1 at lag 1; the last metrics */
    HAS("loss 0.1000  acc 0.9000  val 0.8500  mean S 0.8750  (not live: drawn once)");
    HAS("training loss");
    HAS("accuracy");
    HAS("basis stability");
    HAS("fc1.weight");
    HAS("conv1.weight");
    HAS("+-----"); /* a plot frame */
    ck_assert_msg(strstr(out, "\033") == NULL, "escape codes on a pipe:\n%s", out);
    int n = lines(out);
    ck_assert_msg(n <= 40, "%d lines for a 40-line screen", n);
    /* lag 2: S(W_0, W_2) = (2 cos 120° + 2)/4 = 0.25, and 1 */
    rc = sh("COLUMNS=100 LINES=40 '%s' watch run.h5 --lag 2", bin);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("mean S 0.6250");
    HAS("lag 2 snapshots");
    /* a narrow default screen: no COLUMNS/LINES, 80x24 */
    rc = sh("unset COLUMNS LINES; '%s' watch run.h5", bin);
    ck_assert_msg(rc == 0 && lines(out) <= 24, "exit %d, %d lines:\n%s", rc, lines(out), out);
    /* an OIALR file: factored snapshots are read as W = U S V^T */
    write_oialr("lr.h5");
    rc = sh("COLUMNS=100 LINES=40 '%s' watch lr.h5", bin);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("lr.h5  writer closed  step 40");
    HAS("events 3");
    /* its switch (step 20) marked on the stability plot's step axis */
    HAS("^ switch");
    HAS("-^-");
    /* one snapshot only: the plots wait */
    run r;
    char p[512];
    path_of(p, sizeof p, "one.h5");
    OK(run_create(&r, p));
    OK(run_snap(&r));
    OK(oialr_traj_close(r.t));
    rc = sh("COLUMNS=100 LINES=40 '%s' watch one.h5", bin);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("waiting for 2 snapshots of a layer");
    /* a snapshot with a NaN is counted and skipped: no S with it on either
     * side, the others as before */
    path_of(p, sizeof p, "nan.h5");
    OK(run_create(&r, p));
    r.nan_at = 2;
    for (int k = 0; k < NSNAP; k++) OK(run_snap(&r));
    OK(oialr_traj_close(r.t));
    rc = sh("COLUMNS=100 LINES=40 '%s' watch nan.h5", bin);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("mean S 0.8750  1 with NaN/Inf");
}
END_TEST

START_TEST(watch_killed) {
    child c;
    child_start(&c, "killed.h5", 3);
    child_ready(&c);
    child_kill(&c);
    char bin[PATH_MAX];
    tu_cli_bin(bin, sizeof bin);
    int rc = sh("COLUMNS=100 LINES=40 '%s' watch killed.h5", bin);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    HAS("killed.h5  writer killed  step 20");
    HAS("(writer died: drawn once)");
    HAS("mean S 0.8750");
}
END_TEST

// ----------------------------------------------------------------------------
// watch under tmux, against a live writer

static char tmux_sock[320];

/* tmux on its own server socket (-S), so nobody else's sessions are seen */
static int tmux(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int tmux(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return sh("tmux -S '%s' %s", tmux_sock, args);
}

static void capture(void) { ck_assert_int_eq(tmux("capture-pane -p -t w"), 0); }

/* Poll the screen until it holds every one of the NULL-terminated strings
 * (20 s at most; the case fails with the last screen). */
static void await_screen(const char *s1, ...) {
    for (int tries = 0; tries < 400; tries++) {
        capture();
        int all = strstr(out, s1) != NULL;
        va_list ap;
        va_start(ap, s1);
        for (const char *s; all && (s = va_arg(ap, const char *));) all = strstr(out, s) != NULL;
        va_end(ap);
        if (all) return;
        usleep(50000);
    }
    static char last[sizeof out];
    memcpy(last, out, sizeof out);
    tmux("kill-server"); /* no session left behind */
    ck_abort_msg("the screen never showed '%s' (and the rest):\n%s", s1, last);
}

/* Poll for the file watch's exit status is written to (20 s at most). */
static int await_status(const char *name) {
    char p[512];
    path_of(p, sizeof p, name);
    for (int tries = 0; tries < 400; tries++) {
        FILE *f = fopen(p, "r");
        int st = -1;
        if (f) {
            int got = fscanf(f, "%d", &st);
            fclose(f);
            if (got == 1) return st;
        }
        usleep(50000);
    }
    tmux("kill-server");
    ck_abort_msg("watch did not exit");
    return -1;
}

static void tmux_start(const char *args) {
    char bin[PATH_MAX];
    tu_cli_bin(bin, sizeof bin);
    /* the server's socket in the test's directory: teardown removes it */
    snprintf(tmux_sock, sizeof tmux_sock, "%s/tmux.sock", dir);
    /* the pane stays after watch exits, to be looked at */
    int rc = tmux("-f /dev/null new-session -d -s w -x 100 -y 40 \"cd '%s' && '%s' %s; echo \\$? > status; "
                  "sleep 60\"",
                  dir, bin, args);
    ck_assert_msg(rc == 0, "tmux: exit %d:\n%s", rc, out);
}

/* kill the server; out is kept (it holds the last screen) */
static void tmux_stop(void) {
    static char keep[sizeof out];
    memcpy(keep, out, sizeof out);
    tmux("kill-server");
    memcpy(out, keep, sizeof out);
}

START_TEST(watch_live_tmux) {
    child c;
    child_start(&c, "live.h5", 2);
    child_ready(&c);
    tmux_start("watch live.h5 --interval 0.2");
    await_screen("live.h5  writer live  step 10", "snapshots 2", "basis stability", "+-----", NULL);
    /* the header follows the writer */
    for (int k = 2; k < 4; k++) {
        child_cmd(&c, 'n');
        child_ready(&c);
        char want[64], snaps[32];
        snprintf(want, sizeof want, "writer live  step %d", 10 * k);
        snprintf(snaps, sizeof snaps, "snapshots %d", k + 1);
        await_screen(want, snaps, "training loss", "accuracy", NULL);
    }
    await_screen("mean S 0.8750", NULL);
    /* the writer closes: watch draws a last frame and exits 0 by itself */
    child_close(&c);
    int st = await_status("status");
    capture();
    tmux_stop();
    ck_assert_msg(st == 0, "watch exited with %d:\n%s", st, out);
    ck_assert_msg(!strncmp(out, "live.h5  writer closed  step 30", 31), "not the header on top:\n%s", out);
    HAS("(run ended: writer closed the file)");
    HAS("basis stability");
}
END_TEST

START_TEST(watch_ctrl_c_tmux) {
    child c;
    child_start(&c, "live.h5", 2);
    child_ready(&c);
    tmux_start("watch live.h5 --interval 0.2");
    await_screen("writer live  step 10", "basis stability", NULL);
    /* hidden while it draws */
    ck_assert_int_eq(tmux("display-message -p -t w '#{cursor_flag}'"), 0);
    ck_assert_msg(out[0] == '0', "cursor shown while drawing: %s", out);
    ck_assert_int_eq(tmux("send-keys -t w C-c"), 0);
    int st = await_status("status");
    ck_assert_int_eq(tmux("display-message -p -t w '#{cursor_flag}'"), 0);
    char cursor = out[0];
    capture();
    tmux_stop();
    ck_assert_msg(st == 130, "watch exited with %d:\n%s", st, out);
    ck_assert_msg(cursor == '1', "cursor left hidden");
    HAS("oialr watch: interrupted; the run goes on, it is not affected");
    /* the last frame stays, its header on the first line: the message did not scroll it away */
    ck_assert_msg(!strncmp(out, "live.h5  writer live  step 10", 29), "header scrolled away:\n%s", out);
    /* the writer did not notice */
    child_cmd(&c, 'n');
    child_ready(&c);
    child_close(&c);
    ck_assert_int_eq(cli("inspect live.h5"), 0);
    HAS("3 snapshots each");
}
END_TEST

START_TEST(watch_limits) {
    write_closed("run.h5");
    char bin[PATH_MAX];
    tu_cli_bin(bin, sizeof bin);
    /* no gnuplot on PATH */
    int rc = sh("PATH=/nonexistent '%s' watch run.h5", bin);
    ck_assert_msg(rc == 1 && lines(out) == 1, "exit %d:\n%s", rc, out);
    HAS("oialr watch: gnuplot not found: install it with 'apt-get install gnuplot-nox'");
    /* a gnuplot that fails: its last words, exit 1 (the frame was not drawn) */
    rc = sh("mkdir fake && printf '#!/bin/sh\\necho \"frame.gp line 3: no such option\" >&2\\nexit 1\\n' > fake/gnuplot && "
            "chmod +x fake/gnuplot && PATH=\"$PWD/fake:$PATH\" '%s' watch run.h5 2>&1 >/dev/null; s=$?; rm -r fake; exit $s",
            bin);
    ck_assert_msg(rc == 1 && lines(out) == 1, "exit %d:\n%s", rc, out);
    HAS("oialr watch: gnuplot failed on the last frame: frame.gp line 3: no such option");
    /* files that are not trajectories */
    rc = sh("echo 'text' > text.h5");
    rc = cli("watch text.h5");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "not an HDF5 file"), "exit %d:\n%s", rc, out);
    rc = cli("watch nosuch.h5");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "nosuch.h5"), "exit %d:\n%s", rc, out);
    rc = cli("analyze run.h5 -o res.h5 --quiet --threads 1");
    ck_assert_int_eq(rc, 0);
    rc = cli("watch res.h5");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "an oialr analysis results file"), "exit %d:\n%s", rc,
                  out);
    /* usage */
    ck_assert_int_eq(cli("watch"), 2);
    ck_assert_int_eq(cli("watch run.h5 --interval 0"), 2);
    HAS("--interval");
    ck_assert_int_eq(cli("watch run.h5 --lag 0"), 2);
    ck_assert_int_eq(cli("watch run.h5 --bogus"), 2);
    ck_assert_int_eq(cli("watch --help"), 0);
    HAS("usage: oialr watch RUN.h5");
    /* its temporary files are gone */
    rc = sh("ls -d ${TMPDIR:-/tmp}/oialr-watch-* 2>/dev/null | wc -l");
    (void)rc; /* other watches may run on this machine: only ours are checked below */
    rc = sh("TMPDIR='%s' COLUMNS=100 LINES=40 '%s' watch run.h5 >/dev/null && ls -A | sort | tr '\\n' ' '", dir, bin);
    ck_assert_str_eq(out, "res.h5 run.h5 text.h5 ");
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("watch");
    TCase *ins = tcase_create("inspect");
    tcase_add_checked_fixture(ins, setup, teardown);
    tcase_add_test(ins, inspect_closed);
    tcase_add_test(ins, inspect_oialr);
    tcase_add_test(ins, inspect_live_and_killed);
    tcase_add_test(ins, reader_refresh_writer_alive);
    tcase_set_timeout(ins, 60);
    suite_add_tcase(s, ins);
    TCase *w = tcase_create("watch");
    tcase_add_checked_fixture(w, setup, teardown);
    tcase_add_test(w, watch_once);
    tcase_add_test(w, watch_killed);
    tcase_add_test(w, watch_live_tmux);
    tcase_add_test(w, watch_ctrl_c_tmux);
    tcase_set_timeout(w, 90);
    suite_add_tcase(s, w);
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_add_test(lim, inspect_limits);
    tcase_add_test(lim, reader_config_keys);
    tcase_add_test(lim, watch_limits);
    tcase_set_timeout(lim, 60);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
