/*
 * check_reader.c — the trajectory reader (oialr/trajectory.h,
 * lib/record/trajectory_read.c) and `oialr plot --run` against hostile
 * files. Every fixture is made here: a valid trajectory from the C writer,
 * then damaged with the HDF5 C API or byte by byte. Each test failed (or
 * crashed, or hung until Check's timeout) before the reader checked what it
 * tests.
 */
#include <check.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analyze.h"
#include "oialr/trajectory.h"
#include "plot.h"

static char dir[256], good[320];

#define OK(expr)                                                                                             \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        ck_assert_msg(rc_ == OIALR_OK, "%s -> %d: %s", #expr, rc_, oialr_errmsg());                          \
    } while (0)

#define NSNAP 4

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* A valid trajectory: fc1.weight 3x5 and fc2.weight 4x2 with NSNAP
 * snapshots at steps 0, 10, 20, ...; NSNAP metrics rows of `columns`
 * (NULL: the default ones); one event; a committed checkpoint with the
 * scalar "step". Layer steps and metric steps may be given (NULL:
 * 0, 10, 20, ...). */
static void write_traj(const char *path, const char *columns, const int64_t *lsteps, const int64_t *msteps) {
    oialr_traj *t = NULL;
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    o.force = 1;
    OK(oialr_traj_create(&t, path, &o));
    int a, b;
    OK(oialr_traj_declare_layer(t, "fc1.weight", 3, 5, "dense", 0, NULL, &a));
    OK(oialr_traj_declare_layer(t, "fc2.weight", 4, 2, "dense", 0, NULL, &b));
    if (columns) OK(oialr_traj_declare_metrics(t, columns));
    OK(oialr_traj_declare_ckpt_scalar(t, "step", 0));
    OK(oialr_traj_begin(t));
    int ncol = oialr_traj_get_info(t)->ncolumns;
    float w[15];
    double row[16];
    for (int s = 0; s < NSNAP; s++) {
        for (int i = 0; i < 15; i++) w[i] = (float)(s * 100 + i);
        int64_t ls = 10 * s, ms = msteps ? msteps[s] : 10 * s;
        OK(oialr_traj_append(t, a, ls, w, 0));
        OK(oialr_traj_append(t, b, ls, w, 0));
        for (int i = 0; i < ncol; i++) row[i] = s + 0.01 * i;
        OK(oialr_traj_append_metrics(t, ms, row, ncol));
    }
    oialr_traj_event ev = {.step = 10, .kind = OIALR_EVENT_SWITCH, .stability = 0.995, .rank_before = 3,
                           .rank_after = 3};
    strcpy(ev.layer, "fc1.weight");
    OK(oialr_traj_append_event(t, &ev));
    OK(oialr_traj_ckpt_start(t));
    OK(oialr_traj_ckpt_put_i64(t, "step", 30));
    OK(oialr_traj_ckpt_commit(t));
    OK(oialr_traj_close(t));
    /* steps the writer refuses (oialr_traj_append checks the rule): written
     * over fc1's, as another writer could */
    if (lsteps) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        ck_assert_int_ge(f, 0);
        hid_t d = H5Dopen2(f, "/layers/fc1.weight/step", H5P_DEFAULT);
        ck_assert_int_ge(d, 0);
        ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, lsteps), 0);
        H5Dclose(d), H5Fclose(f);
    }
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-reader-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    path_of(good, sizeof good, "good.h5");
    oialr_set_log(NULL, NULL, OIALR_LOG_ERROR);
    write_traj(good, NULL, NULL, NULL);
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static void copy_file(const char *from, const char *to) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    ck_assert_int_eq(system(cmd), 0);
}

/* HDF5 opened read-write with the writer's bounds, so objects made here are
 * what a SWMR writer could make. */
static hid_t h5_open_rw(const char *path) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    ck_assert_int_ge(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    ck_assert_msg(f >= 0, "cannot open %s", path);
    return f;
}

/* Replace the dataset obj with one of type ftype and shape dims[rank]
 * (rank 0: scalar), chunked and extendible along dim 0 if chunk0 > 0,
 * filled with zeros or with data (given as mtype). */
static void replace(const char *path, const char *obj, hid_t ftype, int rank, const hsize_t *dims, hsize_t chunk0,
                    hid_t mtype, const void *data) {
    hid_t f = h5_open_rw(path);
    ck_assert_int_ge(H5Ldelete(f, obj, H5P_DEFAULT), 0);
    for (int i = 0; i < rank; i++)
        if (dims[i] == 0) chunk0 = 0; /* a dimension of 0 cannot be chunked */
    hsize_t maxd[3] = {H5S_UNLIMITED, rank > 1 ? dims[1] : 0, rank > 2 ? dims[2] : 0};
    hid_t sp = rank ? H5Screate_simple(rank, dims, chunk0 ? maxd : NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk0) {
        hsize_t ch[3] = {chunk0, rank > 1 ? dims[1] : 1, rank > 2 ? dims[2] : 1};
        ck_assert_int_ge(H5Pset_chunk(dcpl, rank, ch), 0);
    }
    hid_t d = H5Dcreate2(f, obj, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "cannot create %s", obj);
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    void *zeros = NULL;
    if (!data) {
        zeros = calloc(n ? n : 1, H5Tget_size(ftype) > 8 ? H5Tget_size(ftype) : 8);
        data = zeros;
        mtype = ftype;
    }
    if (n) ck_assert_int_ge(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    free(zeros);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp), H5Fclose(f);
}

/* The error message: one line, naming the file (and `word` if given). */
static void assert_msg(const char *path, const char *word) {
    const char *m = oialr_errmsg();
    ck_assert_msg(strstr(m, path) != NULL, "message does not name the file: %s", m);
    ck_assert_msg(strchr(m, '\n') == NULL, "message is not one line: %s", m);
    if (word) ck_assert_msg(strstr(m, word) != NULL, "message lacks '%s': %s", word, m);
}

static void expect_format(const char *path, const char *word) {
    oialr_traj *t = NULL;
    int rc = oialr_traj_open(&t, path, OIALR_TRAJ_READ);
    ck_assert_msg(rc == OIALR_ERR_FORMAT, "open -> %d (%s), expected OIALR_ERR_FORMAT", rc, oialr_errmsg());
    ck_assert_ptr_null(t);
    assert_msg(path, word);
}

// ----------------------------------------------------------------------------
// every dataset checked for rank, shape and type class

enum { I64, I32, F64, F32, EV, EV_STEP_ONLY };

static hid_t file_type(int kind) {
    switch (kind) {
    case I64: return H5Tcopy(H5T_STD_I64LE);
    case I32: return H5Tcopy(H5T_STD_I32LE);
    case F64: return H5Tcopy(H5T_IEEE_F64LE);
    case F32: return H5Tcopy(H5T_IEEE_F32LE);
    default: break;
    }
    hid_t s = H5Tcopy(H5T_C_S1);
    H5Tset_size(s, 64);
    hid_t c = H5Tcreate(H5T_COMPOUND, kind == EV ? 8 + 64 + 1 + 8 + 4 + 4 : 8);
    H5Tinsert(c, "step", 0, H5T_STD_I64LE);
    if (kind == EV) {
        H5Tinsert(c, "layer", 8, s);
        H5Tinsert(c, "kind", 72, H5T_STD_I8LE);
        H5Tinsert(c, "stability", 73, H5T_IEEE_F64LE);
        H5Tinsert(c, "rank_before", 81, H5T_STD_I32LE);
        H5Tinsert(c, "rank_after", 85, H5T_STD_I32LE);
    }
    H5Tclose(s);
    return c;
}

typedef struct shape_case {
    const char *obj;
    int kind, rank;
    hsize_t dims[3];
} shape_case;

/* The second dimensions are large so that reading them into a buffer sized
 * for [n] overruns it by far. */
static const shape_case SHAPES[] = {
    {"/layers/fc1.weight/step", I64, 2, {NSNAP, 4096, 0}},
    {"/layers/fc1.weight/step", I64, 3, {NSNAP, 64, 64}},
    {"/layers/fc1.weight/step", I64, 0, {0, 0, 0}},
    {"/layers/fc1.weight/step", F64, 1, {NSNAP, 0, 0}}, /* non-integer steps */
    {"/layers/fc1.weight/rank", I32, 2, {NSNAP, 4096, 0}},
    {"/layers/fc1.weight/rank", F32, 1, {NSNAP, 0, 0}},
    {"/layers/fc1.weight/weight", F32, 2, {NSNAP, 15, 0}},
    {"/layers/fc1.weight/weight", I32, 3, {NSNAP, 3, 5}},
    {"/layers/fc1.weight/weight", F32, 3, {NSNAP, 3, 0}},
    {"/metrics/step", I64, 2, {NSNAP, 4096, 0}},
    {"/metrics/step", F64, 1, {NSNAP, 0, 0}},
    {"/metrics/loss", F64, 2, {NSNAP, 4096, 0}},
    {"/metrics/loss", I64, 1, {NSNAP, 0, 0}},
    {"/metrics/loss", F64, 0, {0, 0, 0}},
    {"/events", I64, 1, {1, 0, 0}},
    {"/events", EV, 2, {1, 4096, 0}},
    {"/events", EV_STEP_ONLY, 1, {1, 0, 0}},
};
#define NSHAPES ((int)(sizeof SHAPES / sizeof *SHAPES))

START_TEST(test_dataset_shape_and_type) {
    const shape_case *c = &SHAPES[_i];
    char p[512];
    path_of(p, sizeof p, "shape.h5");
    copy_file(good, p);
    hid_t ty = file_type(c->kind);
    hsize_t chunk0 = c->rank >= 1 ? 1 : 0;
    replace(p, c->obj, ty, c->rank, c->dims, chunk0, 0, NULL);
    H5Tclose(ty);
    expect_format(p, c->obj);
}
END_TEST

/* A correct file passes all of the checks above. */
START_TEST(test_good_file_opens) {
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, good, OIALR_TRAJ_READ));
    const oialr_traj_info *in = oialr_traj_get_info(t);
    ck_assert_int_eq(in->nlayers, 2);
    ck_assert_int_eq(in->nmetrics, NSNAP);
    ck_assert_int_eq(in->nevents, 1);
    ck_assert_int_eq(in->has_ckpt, 1);
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, NSNAP);
    int64_t v = 0, st[NSNAP + 2], n = 0;
    OK(oialr_traj_ckpt_get_i64(t, "step", &v));
    ck_assert_int_eq(v, 30);
    OK(oialr_traj_read_metric_steps(t, st, NSNAP + 2, &n));
    ck_assert_int_eq(n, NSNAP);
    oialr_traj_event ev[2];
    OK(oialr_traj_read_events(t, ev, 2, &n));
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(ev[0].layer, "fc1.weight");
    OK(oialr_traj_close(t));
}
END_TEST

// ----------------------------------------------------------------------------
// /checkpoint/slot: one element, checked before every read

/* read into one int64 at open, at refresh and by the checkpoint getters */
static const shape_case SLOTS[] = {
    {"/checkpoint/slot", I64, 1, {4096, 0, 0}},
    {"/checkpoint/slot", I64, 2, {1, 4096, 0}},
    {"/checkpoint/slot", I64, 0, {0, 0, 0}},
    {"/checkpoint/slot", F64, 1, {1, 0, 0}},
};
#define NSLOTS ((int)(sizeof SLOTS / sizeof *SLOTS))

START_TEST(test_slot_shape_and_type) {
    const shape_case *c = &SLOTS[_i];
    char p[512];
    path_of(p, sizeof p, "slot.h5");
    copy_file(good, p);
    hid_t ty = file_type(c->kind);
    replace(p, c->obj, ty, c->rank, c->dims, 0, 0, NULL);
    H5Tclose(ty);
    expect_format(p, c->obj);
}
END_TEST

/* A /checkpoint/slot grown to several elements by a live (SWMR) writer
 * after the reader opened it: refresh and the checkpoint getters read the
 * slot too, and must check its shape as open does. */
START_TEST(test_slot_grown_while_open) {
    char p[512];
    path_of(p, sizeof p, "slot.h5");
    copy_file(good, p);
    hsize_t one = 1;
    int64_t cur = 0;
    replace(p, "/checkpoint/slot", H5T_STD_I64LE, 1, &one, 1, H5T_NATIVE_INT64, &cur);
    int up[2], down[2];
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(up[0]), close(down[1]);
        char c = 'x';
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
        hid_t f = H5Fopen(p, H5F_ACC_RDWR, fapl);
        if (f < 0 || H5Fstart_swmr_write(f) < 0) _exit(2);
        if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1) _exit(3);
        hid_t d = H5Dopen2(f, "/checkpoint/slot", H5P_DEFAULT);
        hsize_t big = 4096;
        int64_t *zeros = calloc(big, sizeof *zeros);
        if (d < 0 || H5Dset_extent(d, &big) < 0 ||
            H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros) < 0 || H5Dflush(d) < 0 ||
            H5Fflush(f, H5F_SCOPE_GLOBAL) < 0)
            _exit(4);
        if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1) _exit(5);
        H5Dclose(d);
        _exit(H5Fclose(f) < 0 ? 6 : 0);
    }
    close(up[1]), close(down[0]);
    char c = 'x';
    ck_assert_int_eq(read(up[0], &c, 1), 1);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->swmr_read, 1);
    int64_t v = 0;
    OK(oialr_traj_ckpt_get_i64(t, "step", &v));
    ck_assert_int_eq(v, 30);
    ck_assert_int_eq(write(down[1], &c, 1), 1);
    ck_assert_int_eq(read(up[0], &c, 1), 1);
    int rc = oialr_traj_refresh(t);
    ck_assert_msg(rc == OIALR_ERR_FORMAT, "refresh -> %d: %s", rc, oialr_errmsg());
    assert_msg(p, "/checkpoint/slot");
    rc = oialr_traj_ckpt_get_i64(t, "step", &v);
    ck_assert_msg(rc == OIALR_ERR_FORMAT, "ckpt_get_i64 -> %d: %s", rc, oialr_errmsg());
    assert_msg(p, "/checkpoint/slot");
    OK(oialr_traj_close(t));
    ck_assert_int_eq(write(down[1], &c, 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status %d", status);
    close(up[0]), close(down[1]);
}
END_TEST

// ----------------------------------------------------------------------------
// rows and cols attributes, each checked on its own

static void set_attr(const char *path, const char *obj, const char *name, hid_t type, const void *v) {
    hid_t f = h5_open_rw(path);
    if (H5Aexists_by_name(f, obj, name, H5P_DEFAULT) > 0)
        ck_assert_int_ge(H5Adelete_by_name(f, obj, name, H5P_DEFAULT), 0);
    if (v) {
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate_by_name(f, obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ck_assert_int_ge(a, 0);
        ck_assert_int_ge(H5Awrite(a, type, v), 0);
        H5Aclose(a), H5Sclose(sp);
    }
    H5Fclose(f);
}

START_TEST(test_rows_cols_attributes) {
    char p[512];
    path_of(p, sizeof p, "rc.h5");
    const char *L = "/layers/fc1.weight";
    int64_t seven = 7;
    double three = 3.0;
    /* rows wrong, cols absent */
    copy_file(good, p);
    set_attr(p, L, "cols", 0, NULL);
    set_attr(p, L, "rows", H5T_NATIVE_INT64, &seven);
    expect_format(p, "rows");
    assert_msg(p, "fc1.weight");
    /* cols wrong, rows absent */
    copy_file(good, p);
    set_attr(p, L, "rows", 0, NULL);
    set_attr(p, L, "cols", H5T_NATIVE_INT64, &seven);
    expect_format(p, "cols");
    assert_msg(p, "fc1.weight");
    /* rows of the right value but not an integer */
    copy_file(good, p);
    set_attr(p, L, "rows", H5T_NATIVE_DOUBLE, &three);
    expect_format(p, "rows");
    /* both absent: the weight's dims are the matrix view */
    copy_file(good, p);
    set_attr(p, L, "rows", 0, NULL);
    set_attr(p, L, "cols", 0, NULL);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->rows, 3);
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->cols, 5);
    OK(oialr_traj_close(t));
}
END_TEST

// ----------------------------------------------------------------------------
// steps: a layer's strictly increase, metrics steps never decrease

typedef struct steps_case {
    int64_t s[NSNAP];
    const char *index; /* the index the message names */
} steps_case;

static const steps_case LAYER_STEPS[] = {
    {{30, 20, 10, 0}, "[1]"},  /* reversed */
    {{0, 10, 10, 30}, "[2]"},  /* duplicated */
    {{-10, 0, 10, 20}, "[0]"}, /* negative */
    {{0, 20, 10, 30}, "[2]"},  /* one out of order */
};
#define NLSTEPS ((int)(sizeof LAYER_STEPS / sizeof *LAYER_STEPS))

START_TEST(test_layer_steps_strictly_increase) {
    char p[512];
    path_of(p, sizeof p, "steps.h5");
    write_traj(p, NULL, LAYER_STEPS[_i].s, NULL);
    expect_format(p, "/layers/fc1.weight/step");
    assert_msg(p, LAYER_STEPS[_i].index);
}
END_TEST

START_TEST(test_metric_steps_do_not_decrease) {
    char p[512];
    path_of(p, sizeof p, "msteps.h5");
    /* two rows may share a step (an evaluation after a snapshot) */
    static const int64_t dup[NSNAP] = {0, 10, 10, 20};
    write_traj(p, NULL, NULL, dup);
    oialr_traj *t = NULL;
    int64_t st[NSNAP], n = 0;
    double col[NSNAP];
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    OK(oialr_traj_read_metric_steps(t, st, NSNAP, &n));
    ck_assert_int_eq(n, NSNAP);
    OK(oialr_traj_read_column(t, "step", col, NSNAP, &n));
    OK(oialr_traj_close(t));
    static const steps_case bad[] = {{{0, 10, 5, 20}, "[2]"}, {{-1, 0, 10, 20}, "[0]"}};
    for (int k = 0; k < 2; k++) {
        write_traj(p, NULL, NULL, bad[k].s);
        OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
        int rc = oialr_traj_read_metric_steps(t, st, NSNAP, &n);
        ck_assert_msg(rc == OIALR_ERR_FORMAT, "read_metric_steps -> %d: %s", rc, oialr_errmsg());
        assert_msg(p, "/metrics/step");
        assert_msg(p, bad[k].index);
        rc = oialr_traj_read_column(t, "step", col, NSNAP, &n);
        ck_assert_msg(rc == OIALR_ERR_FORMAT, "read_column(step) -> %d: %s", rc, oialr_errmsg());
        assert_msg(p, bad[k].index);
        OK(oialr_traj_close(t));
    }
}
END_TEST

// ----------------------------------------------------------------------------
// damaged files fail at once

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_cmd(int (*cmd)(int, char **), const char *name, int n, ...) {
    char *argv[16];
    va_list ap;
    va_start(ap, n);
    argv[0] = (char *)name;
    for (int i = 0; i < n; i++) argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    argv[n + 1] = NULL;
    /* the commands print their result or one-line error: keep the log clean */
    fflush(stdout), fflush(stderr);
    int out = dup(1), err = dup(2), null = open("/dev/null", O_WRONLY);
    ck_assert(out >= 0 && err >= 0 && null >= 0);
    dup2(null, 1), dup2(null, 2), close(null);
    int rc = cmd(n + 1, argv);
    fflush(stdout), fflush(stderr);
    dup2(out, 1), dup2(err, 2), close(out), close(err);
    return rc;
}

/* Open must fail within a few seconds (before the fix: minutes, in HDF5's
 * SWMR retries with exponential back-off), with a one-line message holding
 * `word` if given. */
static void expect_fast_failure(const char *path, const char *what, const char *word) {
    oialr_traj *t = NULL;
    double t0 = now();
    int rc = oialr_traj_open(&t, path, OIALR_TRAJ_READ);
    double dt = now() - t0;
    ck_assert_msg(rc != OIALR_OK, "%s: opened", what);
    ck_assert_ptr_null(t);
    ck_assert_msg(dt < 5.0, "%s: open took %.1f s to fail", what, dt);
    assert_msg(path, word);
}

static size_t read_all(const char *path, unsigned char **buf) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n);
    ck_assert_uint_eq(fread(*buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return (size_t)n;
}

static void write_all(const char *path, const unsigned char *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_corrupt_fails_fast) {
    unsigned char *b;
    size_t n = read_all(good, &b);
    char p[512];
    path_of(p, sizeof p, "corrupt.h5");
    /* the first 16 bytes of a trajectory: the signature and little more */
    write_all(p, b, 16);
    expect_fast_failure(p, "16 bytes", "damaged"); /* not tried again in SWMR-read mode */
    double t0 = now();
    ck_assert_int_eq(run_cmd(oialr_cmd_analyze, "analyze", 2, p, "-q"), 1);
    ck_assert_msg(now() - t0 < 5.0, "analyze took %.1f s to fail", now() - t0);
    /* each byte of the superblock (v3: 48 bytes, checksummed) flipped */
    for (int i = 0; i < 48; i++) {
        b[i] ^= 0xff;
        write_all(p, b, n);
        b[i] ^= 0xff;
        char what[32];
        snprintf(what, sizeof what, "superblock byte %d", i);
        expect_fast_failure(p, what, i < 8 ? "not an HDF5 file" : "damaged");
    }
    free(b);
}
END_TEST

/* A writer that died without closing (the file stays marked "open for
 * write", so the reader goes to SWMR-read mode) and whose file is then
 * damaged: the root group's object header fails its checksum. */
START_TEST(test_corrupt_killed_writer_fails_fast) {
    char p[512];
    path_of(p, sizeof p, "killed.h5");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        oialr_traj *t = NULL;
        oialr_traj_options o;
        oialr_traj_options_default(&o);
        int a;
        if (oialr_traj_create(&t, p, &o) || oialr_traj_declare_layer(t, "fc1.weight", 3, 5, "dense", 0, NULL, &a))
            _exit(2);
        float w[15] = {0};
        for (int s = 0; s < 3; s++)
            if (oialr_traj_append(t, a, s, w, 0)) _exit(3);
        _exit(0); /* no close: like a kill */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* intact, it opens (in SWMR-read mode) */
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->swmr_read, 1);
    OK(oialr_traj_close(t));
    unsigned char *b;
    size_t n = read_all(p, &b);
    uint64_t root = 0; /* superblock v3: root group object header address at byte 36 */
    for (int i = 7; i >= 0; i--) root = root << 8 | b[36 + i];
    ck_assert_msg(root + 16 < n && memcmp(b + root, "OHDR", 4) == 0, "no object header at %llu",
                  (unsigned long long)root);
    b[root + 12] ^= 0xff;
    write_all(p, b, n);
    free(b);
    expect_fast_failure(p, "root object header", "cannot read");
}
END_TEST

// ----------------------------------------------------------------------------
// only rows that have storage count

/* `oialr analyze good.h5 --csv tables`: the tables `oialr plot` needs. */
static void make_tables(char *tables, size_t n) {
    path_of(tables, n, "tables");
    ck_assert_int_eq(run_cmd(oialr_cmd_analyze, "analyze", 4, good, "--csv", tables, "-q"), 0);
}

static long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

/* Extents grown without data (a writer that died between growing and
 * writing, or a hostile file): only rows that have storage count, and rows
 * of an allocated chunk that were never written (fill values: steps of 0)
 * are caught by the step checks instead of being plotted. */
START_TEST(test_unwritten_rows_ignored) {
    char p[512], tables[512], figs[512], csv[600];
    make_tables(tables, sizeof tables);
    path_of(p, sizeof p, "grown.h5");
    static const char *const grow[] = {"/metrics/step", "/metrics/epoch", "/metrics/loss", "/metrics/train_acc",
                                       "/metrics/val_loss", "/metrics/val_acc", "/metrics/test_loss",
                                       "/metrics/test_acc", "/metrics/lr", "/metrics/trainable_fraction",
                                       "/metrics/seconds", "/events", "/layers/fc1.weight/step",
                                       "/layers/fc1.weight/rank", "/layers/fc1.weight/weight"};
    for (int only_step = 1; only_step >= 0; only_step--) {
        copy_file(good, p);
        hid_t f = h5_open_rw(p);
        for (size_t i = 0; i < (only_step ? 1 : sizeof grow / sizeof *grow); i++) {
            hid_t d = H5Dopen2(f, grow[i], H5P_DEFAULT);
            ck_assert_int_ge(d, 0);
            hsize_t dims[3] = {10000000, 3, 5};
            ck_assert_int_ge(H5Dset_extent(d, dims), 0);
            H5Dclose(d);
        }
        H5Fclose(f);
        oialr_traj *t = NULL;
        OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
        const oialr_traj_info *in = oialr_traj_get_info(t);
        ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, NSNAP); /* weights: one chunk per snapshot */
        /* a directory of its own for each plot: plot does not replace figures */
        path_of(figs, sizeof figs, only_step ? "figs-step" : "figs-all");
        snprintf(csv, sizeof csv, "%s/training.csv", figs);
        if (only_step) {
            /* the step column longer than the others: the shortest counts */
            ck_assert_int_eq(in->nmetrics, NSNAP);
            OK(oialr_traj_close(t));
            ck_assert_int_eq(run_cmd(oialr_cmd_plot, "plot", 5, tables, "-o", figs, "--run", p), 0);
            ck_assert_int_eq(count_lines(csv), NSNAP + 1);
        } else {
            /* at most the allocated chunk (256 rows), not 10^7 */
            ck_assert_msg(in->nmetrics >= NSNAP && in->nmetrics <= 256, "nmetrics %lld", (long long)in->nmetrics);
            ck_assert_msg(in->nevents >= 1 && in->nevents <= 64, "nevents %lld", (long long)in->nevents);
            OK(oialr_traj_close(t));
            ck_assert_int_eq(run_cmd(oialr_cmd_plot, "plot", 5, tables, "-o", figs, "--run", p), 1);
            assert_msg(p, "/metrics/step");
            assert_msg(p, "[4]");
            ck_assert_int_ne(access(csv, F_OK), 0);
        }
    }
}
END_TEST

// ----------------------------------------------------------------------------
// plot --run: bounded

/* More metrics rows than plot reads, really stored (compressed):
 * refused with a message naming the file, before allocating for them. */
START_TEST(test_plot_bounds_rows) {
    char p[512];
    path_of(p, sizeof p, "many.h5");
    write_traj(p, "loss,train_acc", NULL, NULL);
    hid_t f = h5_open_rw(p);
    const hsize_t rows = (1u << 21) + 1, chunk = 1u << 20; /* plot reads at most 2^21 rows */
    int64_t *step = malloc(rows * sizeof *step);
    double *val = malloc(rows * sizeof *val);
    ck_assert(step && val);
    static const char *const obj[] = {"/metrics/step", "/metrics/loss", "/metrics/train_acc"};
    for (int k = 0; k < 3; k++) {
        for (hsize_t i = 0; i < rows; i++) step[i] = (int64_t)i, val[i] = 0.1 * (double)(k + i % 8);
        ck_assert_int_ge(H5Ldelete(f, obj[k], H5P_DEFAULT), 0);
        hsize_t maxd = H5S_UNLIMITED;
        hid_t sp = H5Screate_simple(1, &rows, &maxd);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        ck_assert_int_ge(H5Pset_chunk(dcpl, 1, &chunk), 0);
        ck_assert_int_ge(H5Pset_shuffle(dcpl), 0);
        ck_assert_int_ge(H5Pset_deflate(dcpl, 1), 0);
        hid_t d = H5Dcreate2(f, obj[k], k ? H5T_IEEE_F64LE : H5T_STD_I64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        ck_assert_int_ge(d, 0);
        ck_assert_int_ge(H5Dwrite(d, k ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                  k ? (void *)val : (void *)step),
                         0);
        H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp);
    }
    free(step);
    free(val);
    H5Fclose(f);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->nmetrics, (int64_t)rows);
    OK(oialr_traj_close(t));
    char tables[512], figs[512], csv[600];
    make_tables(tables, sizeof tables);
    path_of(figs, sizeof figs, "figs");
    ck_assert_int_eq(run_cmd(oialr_cmd_plot, "plot", 5, tables, "-o", figs, "--run", p), 1);
    assert_msg(p, "rows");
    snprintf(csv, sizeof csv, "%s/training.csv", figs);
    ck_assert_int_ne(access(csv, F_OK), 0);
}
END_TEST

// ----------------------------------------------------------------------------
// plot --run: an unreadable column is an error

/* /metrics/val_acc replaced by a Fletcher32-checksummed column whose one
 * chunk carries a wrong checksum: every read of it fails. (Not the loss: a
 * figure whose only curve is NaN makes gnuplot fail on its own.) */
static void break_val_acc(const char *path) {
    hid_t f = h5_open_rw(path);
    ck_assert_int_ge(H5Ldelete(f, "/metrics/val_acc", H5P_DEFAULT), 0);
    hsize_t dims = NSNAP, maxd = H5S_UNLIMITED, chunk = 256;
    hid_t sp = H5Screate_simple(1, &dims, &maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    ck_assert_int_ge(H5Pset_chunk(dcpl, 1, &chunk), 0);
    ck_assert_int_ge(H5Pset_fletcher32(dcpl), 0);
    hid_t d = H5Dcreate2(f, "/metrics/val_acc", H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    size_t bytes = 256 * 8 + 4; /* the data and its (here: wrong) checksum */
    unsigned char *raw = calloc(1, bytes);
    memset(raw + 256 * 8, 0xab, 4);
    hsize_t off = 0;
    ck_assert_int_ge(H5Dwrite_chunk(d, H5P_DEFAULT, 0, &off, bytes, raw), 0);
    free(raw);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp), H5Fclose(f);
}

START_TEST(test_plot_unreadable_column) {
    char tables[512], figs[512], p[512];
    make_tables(tables, sizeof tables);
    path_of(figs, sizeof figs, "figs-few");
    /* a column the writer did not record is plotted as NaN: not an error */
    path_of(p, sizeof p, "few.h5");
    write_traj(p, "epoch,loss,train_acc,val_acc", NULL, NULL);
    ck_assert_int_eq(run_cmd(oialr_cmd_plot, "plot", 5, tables, "-o", figs, "--run", p), 0);
    /* a column that cannot be read is */
    path_of(p, sizeof p, "badcol.h5");
    copy_file(good, p);
    break_val_acc(p);
    oialr_traj *t = NULL;
    double col[NSNAP];
    OK(oialr_traj_open(&t, p, OIALR_TRAJ_READ));
    ck_assert_int_ne(oialr_traj_read_column(t, "val_acc", col, NSNAP, NULL), OIALR_OK);
    OK(oialr_traj_close(t));
    path_of(figs, sizeof figs, "figs-bad");
    ck_assert_int_eq(run_cmd(oialr_cmd_plot, "plot", 5, tables, "-o", figs, "--run", p), 1);
    assert_msg(p, "/metrics/val_acc");
}
END_TEST

static Suite *reader_suite(void) {
    Suite *s = suite_create("reader");
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_set_timeout(lim, 30);
    tcase_add_test(lim, test_good_file_opens);
    tcase_add_loop_test(lim, test_dataset_shape_and_type, 0, NSHAPES);
    tcase_add_loop_test(lim, test_slot_shape_and_type, 0, NSLOTS);
    tcase_add_test(lim, test_slot_grown_while_open);
    tcase_add_test(lim, test_rows_cols_attributes);
    tcase_add_loop_test(lim, test_layer_steps_strictly_increase, 0, NLSTEPS);
    tcase_add_test(lim, test_metric_steps_do_not_decrease);
    tcase_add_test(lim, test_corrupt_fails_fast);
    tcase_add_test(lim, test_corrupt_killed_writer_fails_fast);
    tcase_add_test(lim, test_unwritten_rows_ignored);
    tcase_add_test(lim, test_plot_bounds_rows);
    tcase_add_test(lim, test_plot_unreadable_column);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(reader_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
