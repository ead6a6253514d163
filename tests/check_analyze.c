/*
 * check_analyze.c — `oialr analyze` end to end on synthetic trajectories
 * written with the trajectory writer (oialr/trajectory.h).
 *
 * The synthetic layer "fc1" moves its bases by a known rotation between
 * snapshots: Q_j = U G(φ_j) Vᵀ with G rotating k coordinate planes, so
 * S(j-1, j) = 1 - (2k/n)(1 - cos(φ_j - φ_{j-1})) exactly, and the increments
 * shrink, so S crosses τ = 0.99 at a step known in advance.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analyze.h"
#include "plot.h"
#include "oialr/trajectory.h"
#include "util_linalg.h"

#define NSNAP 12
#define KPLANES 2

static char dir[256], traj[300], out[300], csvdir[300];

/* increments of the rotation angle between snapshots */
static double delta(int j) { return j == 0 ? 0 : 0.6 * pow(0.55, j - 1); }
static double expect_s(int j, int n) { return 1.0 - (2.0 * KPLANES / n) * (1.0 - cos(delta(j))); }

/* rows x cols stored matrix of snapshot j of a layer */
static void layer_matrix(float *w, int rows, int cols, int j, uint64_t seed, double scale) {
    int m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows;
    double *u = malloc(sizeof(double) * m * n), *v = malloc(sizeof(double) * n * n), *s = malloc(sizeof(double) * n);
    double *wd = malloc(sizeof(double) * m * n);
    tu_orthonormal(u, m, n, seed);
    tu_orthonormal(v, n, n, seed + 1);
    double phi = 0;
    for (int i = 1; i <= j; i++) phi += delta(i);
    for (int p = 0; p < KPLANES && 2 * p + 1 < n; p++) tu_rotate_cols(u, m, 2 * p, 2 * p + 1, phi);
    for (int i = 0; i < n; i++) s[i] = scale * (i < 3 ? 4.0 - i : 0.5 * pow(0.8, i));
    tu_compose(wd, rows, cols, u, s, v);
    tu_to_float(w, wd, (size_t)m * n);
    free(u); free(v); free(s); free(wd);
}

typedef struct { const char *name; int rows, cols; } lspec;
static const lspec LAYERS[] = {{"fc1", 40, 24}, {"fc2", 12, 30}, {"head", 3, 40}};
#define NL 3

/* Write the synthetic trajectory: nsnap snapshots (steps 0, 10, ...);
 * fc2 snapshot 5 holds a NaN, head snapshot 0 is all zeros.
 * keep_open: return the open writer instead of closing it. */
static oialr_traj *write_traj(const char *path, int nsnap, int keep_open) {
    oialr_traj *t;
    oialr_traj_options opt;
    oialr_traj_options_default(&opt);
    opt.force = 1;
    ck_assert_int_eq(oialr_traj_create(&t, path, &opt), OIALR_OK);
    int idx[NL];
    for (int l = 0; l < NL; l++)
        ck_assert_int_eq(oialr_traj_declare_layer(t, LAYERS[l].name, LAYERS[l].rows, LAYERS[l].cols, "dense", 0, NULL,
                                                  &idx[l]),
                         OIALR_OK);
    float *w = malloc(sizeof(float) * 40 * 40);
    for (int j = 0; j < nsnap; j++)
        for (int l = 0; l < NL; l++) {
            layer_matrix(w, LAYERS[l].rows, LAYERS[l].cols, j, 100 + 10 * l, 1.0 + 0.01 * j);
            if (l == 1 && j == 5) w[7] = NAN;
            if (l == 2 && j == 0) memset(w, 0, sizeof(float) * 3 * 40);
            ck_assert_int_eq(oialr_traj_append(t, idx[l], 10 * j, w, 0), OIALR_OK);
        }
    free(w);
    if (keep_open) return t;
    ck_assert_int_eq(oialr_traj_close(t), OIALR_OK);
    return NULL;
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr_check_analyze_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(traj, sizeof traj, "%s/run.h5", dir);
    snprintf(out, sizeof out, "%s/res.h5", dir);
    snprintf(csvdir, sizeof csvdir, "%s/csv", dir);
    oialr_set_log(NULL, NULL, OIALR_LOG_ERROR);
}

static void teardown(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static int run(int n, ...) {
    char *argv[32];
    va_list ap;
    va_start(ap, n);
    argv[0] = "analyze";
    for (int i = 0; i < n; i++) argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    argv[n + 1] = NULL;
    return oialr_cmd_analyze(n + 1, argv);
}

static void read_vec(hid_t f, const char *path, hid_t type, void *buf) {
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "no dataset %s", path);
    ck_assert(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(d);
}

static int64_t read_attr_i64(hid_t f, const char *obj, const char *name) {
    int64_t v = -99;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "no attribute %s of %s", name, obj);
    ck_assert(H5Aread(a, H5T_NATIVE_INT64, &v) >= 0);
    H5Aclose(a);
    return v;
}

/* --------------------------------------------------------------------------- */
/* Core */

/* a string attribute of the results file, variable- or fixed-length */
static void read_str_attr(hid_t f, const char *obj, const char *name, char *buf, size_t size) {
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(a >= 0);
    hid_t ty = H5Aget_type(a);
    buf[0] = 0;
    if (H5Tis_variable_str(ty) > 0) {
        char *v = NULL;
        ck_assert(H5Aread(a, ty, &v) >= 0);
        snprintf(buf, size, "%s", v ? v : "");
        H5free_memory(v);
    } else {
        ck_assert(H5Tget_size(ty) < size);
        memset(buf, 0, size);
        ck_assert(H5Aread(a, ty, buf) >= 0);
    }
    H5Tclose(ty), H5Aclose(a);
}

START_TEST(test_known_stability_and_replay) {
    write_traj(traj, NSNAP, 0);
    int threads = _i + 1; /* 1 and 2 threads must agree */
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    ck_assert_int_eq(run(10, traj, "-o", out, "--csv", csvdir, "--threads", th, "--policy", "stability:0.99", "-q"), 0);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    double s[NSNAP], sig[NSNAP * 24];
    int64_t step[NSNAP], cut[NSNAP];
    read_vec(f, "/layers/fc1/stability", H5T_NATIVE_DOUBLE, s);
    read_vec(f, "/layers/fc1/step", H5T_NATIVE_INT64, step);
    read_vec(f, "/layers/fc1/cutoff_rank", H5T_NATIVE_INT64, cut);
    read_vec(f, "/layers/fc1/sigma", H5T_NATIVE_DOUBLE, sig);
    ck_assert(isnan(s[0]));
    int64_t first = -1;
    for (int j = 1; j < NSNAP; j++) {
        ck_assert_msg(fabs(s[j] - expect_s(j, 24)) < 1e-4, "snap %d: S=%.8f expected %.8f", j, s[j], expect_s(j, 24));
        if (first < 0 && expect_s(j, 24) >= 0.99) first = 10 * j;
        ck_assert_int_eq(step[j], 10 * j);
        /* σ = scale·(4, 3, 2, 0.5·0.8^i...) with β = 0.15: σ_i >= 0.6·scale for i < 3 only */
        ck_assert_int_eq(cut[j], 3);
        ck_assert_double_eq_tol(sig[j * 24], 4.0 * (1.0 + 0.01 * j), 1e-4);
    }
    ck_assert_int_gt(first, 10); /* the crossing is inside the run, not at the start */
    ck_assert_int_eq(read_attr_i64(f, "/layers/fc1", "stable_step"), first);
    ck_assert_int_eq(read_attr_i64(f, "/layers/fc1", "switch_step"), first);
    /* the rank right after the switch, as online: r_beta = 3, but the first
     * truncation cuts at most half of 24 (lib/lowrank, oialr_lowrank_keep) */
    ck_assert_int_eq(read_attr_i64(f, "/layers/fc1", "switch_rank"), 12);
    /* head: aspect 40/3 >= 10 is never switched; its zero snapshot 0 is defined */
    ck_assert_int_eq(read_attr_i64(f, "/layers/head", "switch_step"), -1);
    int64_t rank[NSNAP];
    read_vec(f, "/layers/head/rank", H5T_NATIVE_INT64, rank);
    ck_assert_int_eq(rank[0], 0);
    ck_assert_int_eq(rank[1], 3);
    read_vec(f, "/layers/head/stability", H5T_NATIVE_DOUBLE, s);
    ck_assert_double_eq(s[1], 0.0); /* Q of the zero matrix is 0 */
    /* fc2: the NaN snapshot 5 is skipped; pairs touching it are NaN */
    int8_t valid[NSNAP];
    read_vec(f, "/layers/fc2/valid", H5T_NATIVE_INT8, valid);
    read_vec(f, "/layers/fc2/stability", H5T_NATIVE_DOUBLE, s);
    for (int j = 0; j < NSNAP; j++) ck_assert_int_eq(valid[j], j != 5);
    ck_assert(isnan(s[5]) && isnan(s[6]));
    ck_assert(fabs(s[7] - expect_s(7, 12)) < 1e-4);
    /* mean stability over layers */
    int64_t mstep[NSNAP];
    double mval[NSNAP];
    read_vec(f, "/mean_stability/step", H5T_NATIVE_INT64, mstep);
    read_vec(f, "/mean_stability/value", H5T_NATIVE_DOUBLE, mval);
    ck_assert_int_eq(mstep[0], 10);
    H5Fclose(f);
    /* the CSV tables exist and have one line per snapshot and layer */
    char p[400], line[1024];
    snprintf(p, sizeof p, "%s/metrics.csv", csvdir);
    FILE *c = fopen(p, "r");
    ck_assert_ptr_nonnull(c);
    int lines = 0;
    while (fgets(line, sizeof line, c)) lines++;
    fclose(c);
    ck_assert_int_eq(lines, 1 + NL * NSNAP);
    snprintf(p, sizeof p, "%s/replay.csv", csvdir);
    ck_assert_int_eq(access(p, R_OK), 0);
}
END_TEST

START_TEST(test_lag_and_glob) {
    write_traj(traj, NSNAP, 0);
    ck_assert_int_eq(run(8, traj, "-o", out, "--lag", "3", "--layers", "fc1", "-q"), 0);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    double s[NSNAP];
    int64_t ref[NSNAP];
    read_vec(f, "/layers/fc1/stability", H5T_NATIVE_DOUBLE, s);
    read_vec(f, "/layers/fc1/ref_step", H5T_NATIVE_INT64, ref);
    /* lag 3: G(φ_j - φ_{j-3}), the sum of three increments */
    for (int j = 3; j < NSNAP; j++) {
        double d = delta(j) + delta(j - 1) + delta(j - 2);
        ck_assert(fabs(s[j] - (1.0 - (2.0 * KPLANES / 24) * (1.0 - cos(d)))) < 1e-4);
        ck_assert_int_eq(ref[j], 10 * (j - 3));
    }
    ck_assert(isnan(s[2]));
    ck_assert(H5Lexists(f, "/layers/fc2", H5P_DEFAULT) == 0);
    H5Fclose(f);
    /* --double gives the same numbers */
    ck_assert_int_eq(run(8, traj, "-o", out, "--force", "--double", "--layers", "fc*", "-q"), 0);
}
END_TEST

/* An ill-conditioned layer (σ from 1 down to 1e-5, condition 1e5): float32
 * stability is not exact there, so by default the layer is redone in float64
 * and matches the exact rotation answer; --float keeps float32. */
START_TEST(test_ill_conditioned_auto_double) {
    const int n = 30, T = 6;
    oialr_traj *t;
    oialr_traj_options opt;
    oialr_traj_options_default(&opt);
    opt.force = 1;
    ck_assert_int_eq(oialr_traj_create(&t, traj, &opt), OIALR_OK);
    int idx;
    ck_assert_int_eq(oialr_traj_declare_layer(t, "ill", n, n, "dense", 0, NULL, &idx), OIALR_OK);
    double *u = malloc(sizeof(double) * n * n), *v = malloc(sizeof(double) * n * n), *sg = malloc(sizeof(double) * n);
    double *wd = malloc(sizeof(double) * n * n);
    float *w = malloc(sizeof(float) * n * n);
    tu_orthonormal(v, n, n, 5);
    for (int i = 0; i < n; i++) sg[i] = pow(10.0, -5.0 * i / (n - 1));
    for (int j = 0; j < T; j++) {
        tu_orthonormal(u, n, n, 4);
        double phi = 0;
        for (int i = 1; i <= j; i++) phi += delta(i);
        /* rotate the planes of the two smallest singular values too */
        tu_rotate_cols(u, n, 0, 1, phi);
        tu_rotate_cols(u, n, n - 2, n - 1, phi);
        tu_compose(wd, n, n, u, sg, v);
        tu_to_float(w, wd, (size_t)n * n);
        ck_assert_int_eq(oialr_traj_append(t, idx, j, w, 0), OIALR_OK);
    }
    ck_assert_int_eq(oialr_traj_close(t), OIALR_OK);
    free(u); free(v); free(sg); free(wd); free(w);
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 0) ck_assert_int_eq(run(5, traj, "-o", out, "--force", "-q"), 0);
        else ck_assert_int_eq(run(6, traj, "-o", out, "--force", "--float", "-q"), 0);
        hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
        char *prec = NULL;
        hid_t a = H5Aopen_by_name(f, "/layers/ill", "precision", H5P_DEFAULT, H5P_DEFAULT);
        hid_t ty = H5Aget_type(a);
        ck_assert(H5Tis_variable_str(ty) > 0); /* variable-length UTF-8: str in h5py */
        ck_assert(H5Aread(a, ty, &prec) >= 0);
        H5Tclose(ty);
        H5Aclose(a);
        ck_assert_str_eq(prec, mode == 0 ? "float64" : "float32");
        H5free_memory(prec);
        double s[6];
        read_vec(f, "/layers/ill/stability", H5T_NATIVE_DOUBLE, s);
        H5Fclose(f);
        if (mode == 0) /* exact up to the float32 storage of W (measured: 2e-6) */
            for (int j = 1; j < T; j++)
                ck_assert_msg(fabs(s[j] - (1.0 - (4.0 / n) * (1.0 - cos(delta(j))))) < 1e-5, "j=%d S=%.8f", j, s[j]);
    }
}
END_TEST

/* delay policy: every eligible layer freezes at the first step >= 35 (40),
 * at the first truncation of its cutoff rank 3: at most half of its 12 goes,
 * so 6; head (aspect 13, and the classifier) stays full. */
START_TEST(test_replay_delay) {
    write_traj(traj, NSNAP, 0);
    ck_assert_int_eq(run(6, traj, "-o", out, "--policy", "delay:35", "-q"), 0);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_eq(read_attr_i64(f, "/layers/fc1", "switch_step"), 40);
    ck_assert_int_eq(read_attr_i64(f, "/layers/fc2", "switch_step"), 40);
    ck_assert_int_eq(read_attr_i64(f, "/layers/fc2", "switch_rank"), 6);
    ck_assert_int_eq(read_attr_i64(f, "/layers/head", "switch_step"), -1);
    double frac = 0;
    hid_t a = H5Aopen(f, "trainable_fraction", H5P_DEFAULT);
    ck_assert(a >= 0);
    ck_assert(H5Aread(a, H5T_NATIVE_DOUBLE, &frac) >= 0);
    H5Aclose(a);
    ck_assert_double_eq_tol(frac, (144.0 + 36.0 + 120.0) / (960.0 + 360.0 + 120.0), 1e-12);
    H5Fclose(f);
    /* a delay past the last snapshot freezes nothing */
    ck_assert_int_eq(run(7, traj, "-o", out, "--force", "--policy", "delay:1000", "-q"), 0);
    f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_eq(read_attr_i64(f, "/layers/fc1", "switch_step"), -1);
    H5Fclose(f);
}
END_TEST

/* A writer process keeps appending (SWMR) while we analyse the file: at
 * least the 5 snapshots present at the start are analysed, exactly. */
START_TEST(test_live_file) {
    int p2c[2], c2p[2];
    ck_assert_int_eq(pipe(p2c), 0);
    ck_assert_int_eq(pipe(c2p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        oialr_traj *t = write_traj(traj, 5, 1);
        char c = 'r';
        if (write(c2p[1], &c, 1) != 1) _exit(3);
        /* keep appending while the parent analyses */
        float *w = malloc(sizeof(float) * 40 * 40);
        for (int j = 5; j < NSNAP; j++)
            for (int l = 0; l < NL; l++) {
                layer_matrix(w, LAYERS[l].rows, LAYERS[l].cols, j, 100 + 10 * l, 1.0 + 0.01 * j);
                if (oialr_traj_append(t, l, 10 * j, w, 0) != OIALR_OK) _exit(5);
                usleep(2000);
            }
        free(w);
        if (read(p2c[0], &c, 1) != 1) _exit(4);
        oialr_traj_close(t);
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(c2p[0], &c, 1), 1);
    int rc = run(4, traj, "-o", out, "-q");
    c = 'x';
    ck_assert_int_eq(write(p2c[1], &c, 1), 1);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_int_eq(rc, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    double s[NSNAP]; /* at least 5 rows, up to all the writer appended */
    read_vec(f, "/layers/fc1/stability", H5T_NATIVE_DOUBLE, s);
    for (int j = 1; j < 5; j++) ck_assert(fabs(s[j] - expect_s(j, 24)) < 1e-4);
    H5Fclose(f);
}
END_TEST

/* A trajectory written by the Python writer (tools/oialr_traj.py demo):
 * analysed, and its stabilities match an independent float64 computation on
 * the matrices read back through the C reader. */
START_TEST(test_python_writer) {
    char cmd[1024];
    /* __FILE__ is tests/check_analyze.c relative to the source root */
    char root[512];
    snprintf(root, sizeof root, "%s", __FILE__);
    char *slash = strrchr(root, '/');
    if (slash) *slash = '\0'; else snprintf(root, sizeof root, "tests");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/../tools/oialr_traj.py' demo '%s' >/dev/null", root, traj);
    ck_assert_msg(system(cmd) == 0, "the Python writer failed (python3-h5py and python3-numpy are dependencies): %s", cmd);
    ck_assert_int_eq(run(4, traj, "-o", out, "-q"), 0);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    double s[11];
    read_vec(f, "/layers/conv.weight/stability", H5T_NATIVE_DOUBLE, s);
    ck_assert_int_eq(read_attr_i64(f, "/layers/conv.weight", "transposed"), 1); /* 8 x 27 */
    H5Fclose(f);
    oialr_traj *t;
    ck_assert_int_eq(oialr_traj_open(&t, traj, OIALR_TRAJ_READ), OIALR_OK);
    int li;
    ck_assert_int_eq(oialr_traj_find_layer(t, "conv.weight", &li), OIALR_OK);
    const oialr_traj_layer *L = oialr_traj_layer_at(t, li);
    ck_assert_int_eq(L->nsnap, 11);
    ck_assert_int_eq(L->rows * L->cols, 8 * 27);
    float w[216];
    oialr_svd_ws *ws;
    oialr_factor *fa, *fb;
    ck_assert_int_eq(oialr_svd_ws_new(&ws, OIALR_PREC_F64), OIALR_OK);
    ck_assert_int_eq(oialr_factor_new(&fa, L->rows, L->cols, OIALR_PREC_F64), OIALR_OK);
    ck_assert_int_eq(oialr_factor_new(&fb, L->rows, L->cols, OIALR_PREC_F64), OIALR_OK);
    ck_assert(isnan(s[0]));
    for (int j = 1; j < 11; j++) {
        ck_assert_int_eq(oialr_traj_read(t, li, j - 1, w, 216), OIALR_OK);
        ck_assert_int_eq(oialr_factor_compute(fa, ws, w), OIALR_OK);
        ck_assert_int_eq(oialr_traj_read(t, li, j, w, 216), OIALR_OK);
        ck_assert_int_eq(oialr_factor_compute(fb, ws, w), OIALR_OK);
        double ref;
        ck_assert_int_eq(oialr_stability(fa, fb, &ref), OIALR_OK);
        ck_assert_msg(fabs(s[j] - ref) < 1e-4, "snap %d: S=%.8f, float64 %.8f", j, s[j], ref);
        ck_assert(ref > 0.5 && ref <= 1.0);
    }
    oialr_factor_free(fa); oialr_factor_free(fb); oialr_svd_ws_free(ws);
    oialr_traj_close(t);
}
END_TEST

/* --------------------------------------------------------------------------- */
/* Limits */

START_TEST(test_bad_flags) {
    write_traj(traj, 4, 0);
    ck_assert_int_eq(run(0), 2);                                  /* no input */
    ck_assert_int_eq(run(2, traj, "--bogus"), 2);
    ck_assert_int_eq(run(3, traj, "--lag", "0"), 2);
    ck_assert_int_eq(run(3, traj, "--lag", "x1"), 2);
    ck_assert_int_eq(run(3, traj, "--beta", "1.5"), 2);
    ck_assert_int_eq(run(3, traj, "--tau", "nan"), 2);
    ck_assert_int_eq(run(3, traj, "--threads", "0"), 2);
    ck_assert_int_eq(run(3, traj, "--policy", "foo:1"), 2);
    ck_assert_int_eq(run(3, traj, "--policy", "stability"), 2);
    ck_assert_int_eq(run(3, traj, "--policy", "stability:0.9,lagg=2"), 2);
    ck_assert_int_eq(run(3, traj, "--policy", "delay:-5"), 2);
    ck_assert_int_eq(run(5, traj, "--lag", "2", "--policy", "stability:0.9,lag=3"), 2);
    ck_assert_int_eq(run(2, traj, "--csv"), 2);                   /* missing value */
    ck_assert_int_eq(run(2, traj, traj), 2);                      /* two inputs */
    ck_assert_int_eq(run(1, "--help"), 0);
}
END_TEST

START_TEST(test_bad_inputs) {
    write_traj(traj, 4, 0);
    struct stat before, after;
    ck_assert_int_eq(stat(traj, &before), 0);
    char missing[320];
    snprintf(missing, sizeof missing, "%s/none.h5", dir);
    ck_assert_int_eq(run(2, missing, "-q"), 1);
    ck_assert_int_eq(run(4, traj, "--layers", "conv*", "-q"), 1);      /* no layer matches */
    ck_assert_int_eq(run(4, traj, "--lag", "4", "-q"), 1);             /* lag >= snapshots */
    ck_assert_int_eq(run(5, traj, "-o", traj, "--force", "-q"), 1);    /* output = input */
    ck_assert_int_eq(run(4, traj, "-o", out, "-q"), 0);
    ck_assert_int_eq(run(4, traj, "-o", out, "-q"), 1);                /* exists, no --force */
    ck_assert_int_eq(run(5, traj, "-o", out, "--force", "-q"), 0);
    ck_assert_int_eq(stat(traj, &after), 0);
    ck_assert_int_eq(before.st_size, after.st_size);
    ck_assert_int_eq(before.st_mtime, after.st_mtime);
    /* a file that is not a trajectory */
    char junk[320];
    snprintf(junk, sizeof junk, "%s/junk.h5", dir);
    FILE *j = fopen(junk, "w");
    fputs("not hdf5\n", j);
    fclose(j);
    ck_assert_int_eq(run(2, junk, "-q"), 1);
}
END_TEST

/* --------------------------------------------------------------------------- */
/* α columns and --lag-steps */

/* The i-th comma-separated field of a CSV line (no quoted fields here). */
static int csv_field(const char *line, int i, char *field, size_t size) {
    const char *p = line;
    for (int k = 0; k < i; k++) {
        p = strchr(p, ',');
        if (!p) return -1;
        p++;
    }
    size_t len = strcspn(p, ",\n");
    if (len >= size) return -1;
    memcpy(field, p, len);
    field[len] = '\0';
    return 0;
}

static int csv_index(const char *header, const char *name) {
    char f[64];
    for (int i = 0; csv_field(header, i, f, sizeof f) == 0; i++)
        if (!strcmp(f, name)) return i;
    return -1;
}

/* metrics.csv keeps its old columns in place and ends with alpha,
 * alpha_xmin, alpha_ks; the values are the fit of the σ the analyzer wrote
 * (HDF5 and CSV agree); NaN where undefined: head has n = 3 < 10
 * eigenvalues, fc2's snapshot 5 holds a NaN. */
START_TEST(test_alpha_columns) {
    write_traj(traj, NSNAP, 0);
    ck_assert_int_eq(run(6, traj, "-o", out, "--csv", csvdir, "-q"), 0);
    static const char *old =
        "layer,step,ref_step,rows,cols,valid,stability,sigma1,sigma_min,frobenius,stable_rank,effective_rank,rank,"
        "cutoff_rank,param_share,trainable_share,condition,angles_k,grassmann_left,grassmann_right,max_angle_left,"
        "max_angle_right,precision,";
    char p[400], line[2048];
    snprintf(p, sizeof p, "%s/metrics.csv", csvdir);
    FILE *c = fopen(p, "r");
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, c));
    ck_assert_int_eq(strncmp(line, old, strlen(old)), 0); /* readers by position keep working */
    ck_assert_str_eq(line + strlen(old), "alpha,alpha_xmin,alpha_ks\n");
    int ia = csv_index(line, "alpha"), ix = csv_index(line, "alpha_xmin"), ik = csv_index(line, "alpha_ks");
    ck_assert(ia == 23 && ix == 24 && ik == 25);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    int rows_seen[NL] = {0};
    for (int l = 0; l < NL; l++) {
        int n = LAYERS[l].rows < LAYERS[l].cols ? LAYERS[l].rows : LAYERS[l].cols;
        double al[NSNAP], xm[NSNAP], ks[NSNAP], *sig = malloc(sizeof(double) * NSNAP * n);
        int64_t nt[NSNAP];
        char path[128];
#define RD(NAME, TYPE, BUF) snprintf(path, sizeof path, "/layers/%s/" NAME, LAYERS[l].name), read_vec(f, path, TYPE, BUF)
        RD("alpha", H5T_NATIVE_DOUBLE, al);
        RD("alpha_xmin", H5T_NATIVE_DOUBLE, xm);
        RD("alpha_ks", H5T_NATIVE_DOUBLE, ks);
        RD("alpha_n_tail", H5T_NATIVE_INT64, nt);
        RD("sigma", H5T_NATIVE_DOUBLE, sig);
#undef RD
        for (int j = 0; j < NSNAP; j++) {
            oialr_powerlaw pl;
            int rc = oialr_powerlaw_fit(sig + (size_t)j * n, n, &pl);
            if (n < OIALR_POWERLAW_MIN_EVALS || (l == 1 && j == 5)) {
                ck_assert_msg(isnan(al[j]) && isnan(xm[j]) && isnan(ks[j]) && nt[j] == 0, "%s snap %d",
                              LAYERS[l].name, j);
                continue;
            }
            ck_assert_int_eq(rc, OIALR_OK);
            ck_assert_double_eq(al[j], pl.alpha);
            ck_assert_double_eq(xm[j], pl.xmin);
            ck_assert_double_eq(ks[j], pl.ks);
            ck_assert_int_eq(nt[j], pl.n_tail);
            ck_assert(al[j] > 1 && nt[j] >= 2 && ks[j] >= 0 && ks[j] < 1);
        }
        /* the CSV rows of this layer say the same */
        rewind(c);
        ck_assert_ptr_nonnull(fgets(line, sizeof line, c));
        while (fgets(line, sizeof line, c)) {
            char name[64], v[64];
            ck_assert_int_eq(csv_field(line, 0, name, sizeof name), 0);
            if (strcmp(name, LAYERS[l].name)) continue;
            ck_assert_int_eq(csv_field(line, 1, v, sizeof v), 0);
            int j = atoi(v) / 10;
            double got[3];
            for (int k = 0; k < 3; k++) {
                ck_assert_int_eq(csv_field(line, ia + k, v, sizeof v), 0);
                got[k] = strtod(v, NULL);
            }
            double want[3] = {al[j], xm[j], ks[j]};
            for (int k = 0; k < 3; k++)
                if (isnan(want[k])) ck_assert_msg(isnan(got[k]), "%s snap %d col %d: %g", name, j, k, got[k]);
                else ck_assert_double_eq_tol(got[k], want[k], 1e-8 * fabs(want[k]));
            rows_seen[l]++;
        }
        free(sig);
    }
    fclose(c);
    for (int l = 0; l < NL; l++) ck_assert_int_eq(rows_seen[l], NSNAP);
    H5Fclose(f);
}
END_TEST

/* Irregular steps; layer "a"'s snapshot at step 151 holds a NaN. */
static const int64_t IRR_STEPS[] = {0, 10, 15, 40, 41, 42, 100, 150, 151, 300, 301, 302};
#define NIRR 12
#define IRR_BAD 8

static void irregular_matrix(float *w, int l, int j) {
    layer_matrix(w, LAYERS[l].rows, LAYERS[l].cols, 0, 100 + 10 * l, 1.0);
    /* move the bases by an amount that grows with the step: a plane rotation
     * of the stored rows (any orthogonal change of W works: S is computed
     * independently below) */
    int rows = LAYERS[l].rows, cols = LAYERS[l].cols;
    double th = 0.004 * (double)IRR_STEPS[j];
    for (int c = 0; c < cols; c++) {
        double x = w[0 * cols + c], y = w[1 * cols + c];
        w[0 * cols + c] = (float)(cos(th) * x - sin(th) * y);
        w[1 * cols + c] = (float)(sin(th) * x + cos(th) * y);
    }
    (void)rows;
    if (l == 0 && j == IRR_BAD) w[3] = NAN;
}

static void write_irregular(const char *path) {
    oialr_traj *t;
    oialr_traj_options opt;
    oialr_traj_options_default(&opt);
    opt.force = 1;
    ck_assert_int_eq(oialr_traj_create(&t, path, &opt), OIALR_OK);
    for (int l = 0; l < 2; l++)
        ck_assert_int_eq(oialr_traj_declare_layer(t, l ? "b" : "a", LAYERS[l].rows, LAYERS[l].cols, "dense", 0, NULL,
                                                  NULL),
                         OIALR_OK);
    float *w = malloc(sizeof(float) * 40 * 40);
    for (int j = 0; j < NIRR; j++)
        for (int l = 0; l < 2; l++) {
            irregular_matrix(w, l, j);
            ck_assert_int_eq(oialr_traj_append(t, l, IRR_STEPS[j], w, 0), OIALR_OK);
        }
    free(w);
    ck_assert_int_eq(oialr_traj_close(t), OIALR_OK);
}

/* The reference by definition: the latest valid snapshot at step <= s - N. */
static int naive_ref(int l, int j, int64_t lag_steps) {
    for (int a = j - 1; a >= 0; a--)
        if (IRR_STEPS[a] <= IRR_STEPS[j] - lag_steps && !(l == 0 && a == IRR_BAD)) return a;
    return -1;
}

/* S between snapshots a and b of layer l, computed here in float64. */
static double direct_s(int l, int a, int b) {
    int rows = LAYERS[l].rows, cols = LAYERS[l].cols;
    oialr_svd_ws *ws;
    oialr_factor *fa, *fb;
    float *w = malloc(sizeof(float) * rows * cols);
    double *wd = malloc(sizeof(double) * rows * cols);
    ck_assert_int_eq(oialr_svd_ws_new(&ws, OIALR_PREC_F64), OIALR_OK);
    ck_assert_int_eq(oialr_factor_new(&fa, rows, cols, OIALR_PREC_F64), OIALR_OK);
    ck_assert_int_eq(oialr_factor_new(&fb, rows, cols, OIALR_PREC_F64), OIALR_OK);
    irregular_matrix(w, l, a);
    for (int i = 0; i < rows * cols; i++) wd[i] = w[i];
    ck_assert_int_eq(oialr_factor_compute_f64(fa, ws, wd), OIALR_OK);
    irregular_matrix(w, l, b);
    for (int i = 0; i < rows * cols; i++) wd[i] = w[i];
    ck_assert_int_eq(oialr_factor_compute_f64(fb, ws, wd), OIALR_OK);
    double s;
    ck_assert_int_eq(oialr_stability(fa, fb, &s), OIALR_OK);
    oialr_factor_free(fa), oialr_factor_free(fb), oialr_svd_ws_free(ws);
    free(w), free(wd);
    return s;
}

/* --lag-steps on irregular steps, 1 and 2 threads, several N: ref_step is
 * the definition's (falling back over the NaN snapshot) and S is the
 * direct float64 computation's. */
START_TEST(test_lag_steps_irregular) {
    write_irregular(traj);
    static const char *lags[] = {"30", "1", "60", "250"};
    char th[16];
    snprintf(th, sizeof th, "%d", _i + 1);
    for (int k = 0; k < 4; k++) {
        int64_t N = atoll(lags[k]);
        ck_assert_int_eq(run(9, traj, "-o", out, "--force", "--lag-steps", lags[k], "--threads", th, "-q"), 0);
        hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
        ck_assert(f >= 0);
        ck_assert_int_eq(read_attr_i64(f, "/", "lag_steps"), N);
        for (int l = 0; l < 2; l++) {
            double s[NIRR];
            int64_t ref[NIRR];
            read_vec(f, l ? "/layers/b/stability" : "/layers/a/stability", H5T_NATIVE_DOUBLE, s);
            read_vec(f, l ? "/layers/b/ref_step" : "/layers/a/ref_step", H5T_NATIVE_INT64, ref);
            for (int j = 0; j < NIRR; j++) {
                int a = naive_ref(l, j, N);
                ck_assert_msg(ref[j] == (a >= 0 ? IRR_STEPS[a] : -1), "N=%lld layer %d snap %d: ref_step %lld, want %lld",
                              (long long)N, l, j, (long long)ref[j], (long long)(a >= 0 ? IRR_STEPS[a] : -1));
                if (a < 0 || (l == 0 && j == IRR_BAD)) {
                    ck_assert(isnan(s[j]));
                    continue;
                }
                double want = direct_s(l, a, j);
                ck_assert_msg(fabs(s[j] - want) < 1e-4, "N=%lld layer %d snap %d: S %.8f want %.8f", (long long)N, l, j,
                              s[j], want);
            }
        }
        H5Fclose(f);
    }
    /* the case the fallback exists for: N = 100 at step 300 wants step 151 (NaN) and takes 150 */
    ck_assert_int_eq(naive_ref(0, 9, 100), 7);
}
END_TEST

/* Regular steps: --lag-steps 10 is --lag 1, except after the NaN snapshot
 * (fc2, step 50): --lag 1 gives NaN at step 60, --lag-steps 10 takes step 40. */
START_TEST(test_lag_steps_regular) {
    write_traj(traj, NSNAP, 0);
    char out2[320];
    snprintf(out2, sizeof out2, "%s/res2.h5", dir);
    ck_assert_int_eq(run(6, traj, "-o", out, "--lag", "1", "-q"), 0);
    ck_assert_int_eq(run(6, traj, "-o", out2, "--lag-steps", "10", "-q"), 0);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT), g = H5Fopen(out2, H5F_ACC_RDONLY, H5P_DEFAULT);
    double s1[NSNAP], s2[NSNAP];
    int64_t r1[NSNAP], r2[NSNAP];
    for (int l = 0; l < NL; l++) {
        char p[96];
        snprintf(p, sizeof p, "/layers/%s/stability", LAYERS[l].name);
        read_vec(f, p, H5T_NATIVE_DOUBLE, s1);
        read_vec(g, p, H5T_NATIVE_DOUBLE, s2);
        snprintf(p, sizeof p, "/layers/%s/ref_step", LAYERS[l].name);
        read_vec(f, p, H5T_NATIVE_INT64, r1);
        read_vec(g, p, H5T_NATIVE_INT64, r2);
        for (int j = 0; j < NSNAP; j++) {
            if (l == 1 && j == 6) {
                ck_assert(isnan(s1[j]) && !isnan(s2[j]));
                ck_assert_int_eq(r1[j], 50);
                ck_assert_int_eq(r2[j], 40);
                continue;
            }
            ck_assert_int_eq(r1[j], r2[j]);
            if (isnan(s1[j])) ck_assert(isnan(s2[j]));
            else ck_assert_double_eq(s1[j], s2[j]);
        }
    }
    ck_assert_int_eq(read_attr_i64(g, "/", "lag"), 0);
    H5Fclose(f);
    H5Fclose(g);
}
END_TEST

START_TEST(test_lag_steps_bad) {
    write_traj(traj, 4, 0); /* steps 0..30 */
    ck_assert_int_eq(run(3, traj, "--lag-steps", "0"), 2);
    ck_assert_int_eq(run(3, traj, "--lag-steps", "-3"), 2);
    ck_assert_int_eq(run(3, traj, "--lag-steps", "ten"), 2);
    ck_assert_int_eq(run(5, traj, "--lag-steps", "10", "--lag", "2"), 2);
    ck_assert_int_eq(run(5, traj, "--lag-steps", "10", "--policy", "stability:0.9,lag=10"), 2);
    ck_assert_int_eq(run(4, traj, "--lag-steps", "31", "-q"), 1); /* no two snapshots 31 steps apart */
    ck_assert_int_eq(run(4, traj, "--lag-steps", "30", "-q"), 0);
}
END_TEST

/* --------------------------------------------------------------------------- */
/* --follow */

/* from the Outputs section below */
static char *slurp(const char *path, size_t *n);
static int parts_in(const char *dirpath);

/* Snapshots from..nsnap-1 of write_traj's trajectory appended to an open
 * writer, `pause_us` between two appends. */
static void append_rest(oialr_traj *t, int from, int nsnap, int pause_us) {
    float *w = malloc(sizeof(float) * 40 * 40);
    for (int j = from; j < nsnap; j++)
        for (int l = 0; l < NL; l++) {
            layer_matrix(w, LAYERS[l].rows, LAYERS[l].cols, j, 100 + 10 * l, 1.0 + 0.01 * j);
            if (l == 1 && j == 5) w[7] = NAN;
            if (oialr_traj_append(t, l, 10 * j, w, 0) != OIALR_OK) _exit(5);
            usleep((useconds_t)pause_us);
        }
    free(w);
}

/* Byte-identical files. */
static void assert_same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    ck_assert_msg(x && y, "cannot read %s or %s", a, b);
    ck_assert_msg(na == nb && memcmp(x, y, na) == 0, "%s and %s differ", a, b);
    free(x), free(y);
}

/* Every per-snapshot dataset of every layer equal in two results files. */
static void assert_same_results(const char *a, const char *b, int nsnap) {
    static const char *dsets[] = {"step", "ref_step", "stability", "sigma", "alpha", "alpha_xmin", "alpha_ks",
                                  "cutoff_rank", "grassmann_left", "condition"};
    hid_t fa = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(fa >= 0 && fb >= 0);
    double *x = malloc(sizeof(double) * nsnap * 40), *y = malloc(sizeof(double) * nsnap * 40);
    for (int l = 0; l < NL; l++)
        for (int d = 0; d < 10; d++) {
            char p[128];
            snprintf(p, sizeof p, "/layers/%s/%s", LAYERS[l].name, dsets[d]);
            hid_t da = H5Dopen2(fa, p, H5P_DEFAULT), db = H5Dopen2(fb, p, H5P_DEFAULT);
            ck_assert_msg(da >= 0 && db >= 0, "no %s", p);
            hid_t sa = H5Dget_space(da), sb = H5Dget_space(db);
            ck_assert_int_eq(H5Sget_simple_extent_npoints(sa), H5Sget_simple_extent_npoints(sb));
            hssize_t np = H5Sget_simple_extent_npoints(sa);
            ck_assert(np <= nsnap * 40);
            ck_assert(H5Dread(da, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
            ck_assert(H5Dread(db, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0);
            for (hssize_t i = 0; i < np; i++)
                ck_assert_msg((isnan(x[i]) && isnan(y[i])) || x[i] == y[i], "%s[%lld]: %.17g vs %.17g", p,
                              (long long)i, x[i], y[i]);
            H5Sclose(sa), H5Sclose(sb), H5Dclose(da), H5Dclose(db);
        }
    free(x), free(y);
    H5Fclose(fa), H5Fclose(fb);
}

/* A writer process (the C recorder API) appends while `analyze --follow`
 * runs; --follow returns once the writer has closed the file, and its
 * tables and results are those of a plain analyze of the closed file. */
START_TEST(test_follow_live_writer) {
    int c2p[2];
    ck_assert_int_eq(pipe(c2p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        oialr_traj *t = write_traj(traj, 3, 1);
        char c = 'r';
        if (write(c2p[1], &c, 1) != 1) _exit(3);
        append_rest(t, 3, NSNAP, 15000); /* ~0.4 s: several looks at 50 ms */
        _exit(oialr_traj_close(t) == OIALR_OK ? 0 : 6);
    }
    char c;
    ck_assert_int_eq(read(c2p[0], &c, 1), 1);
    char csv2[320], out2[320];
    snprintf(csv2, sizeof csv2, "%s/csv2", dir);
    snprintf(out2, sizeof out2, "%s/res2.h5", dir);
    const char *th = _i ? "2" : "1";
    ck_assert_int_eq(run(10, traj, "--follow", "--interval", "0.05", "-o", out, "--csv", csvdir, "--threads", th, "-q"), 0);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(run(8, traj, "-o", out2, "--csv", csv2, "--threads", th, "-q"), 0);
    static const char *tables[] = {"metrics.csv", "spectra.csv", "mean_stability.csv", "events.csv"};
    for (int k = 0; k < 4; k++) {
        char a[400], b[400];
        snprintf(a, sizeof a, "%s/%s", csvdir, tables[k]);
        snprintf(b, sizeof b, "%s/%s", csv2, tables[k]);
        assert_same_file(a, b);
    }
    assert_same_results(out, out2, NSNAP);
    /* and every snapshot is there */
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t step[NSNAP];
    read_vec(f, "/layers/head/step", H5T_NATIVE_INT64, step);
    ck_assert_int_eq(step[NSNAP - 1], 10 * (NSNAP - 1));
    H5Fclose(f);
}
END_TEST

/* An ill-conditioned layer turns float64 while followed (the layer is
 * redone from its first snapshot, as a plain run redoes it); --lag-steps
 * and --follow together; the results equal a plain run's. */
START_TEST(test_follow_restart_and_lag_steps) {
    const int n = 30, T = 8;
    int c2p[2];
    ck_assert_int_eq(pipe(c2p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        oialr_traj *t;
        oialr_traj_options opt;
        oialr_traj_options_default(&opt);
        opt.force = 1;
        if (oialr_traj_create(&t, traj, &opt) != OIALR_OK) _exit(2);
        int idx;
        if (oialr_traj_declare_layer(t, "ill", n, n, "dense", 0, NULL, &idx) != OIALR_OK) _exit(2);
        double *u = malloc(sizeof(double) * n * n), *v = malloc(sizeof(double) * n * n), *sg = malloc(sizeof(double) * n);
        double *wd = malloc(sizeof(double) * n * n);
        float *w = malloc(sizeof(float) * n * n);
        tu_orthonormal(v, n, n, 5);
        for (int j = 0; j < T; j++) {
            /* well conditioned for 3 snapshots, then condition 1e5 */
            for (int i = 0; i < n; i++) sg[i] = pow(10.0, -(j < 3 ? 1.0 : 5.0) * i / (n - 1));
            tu_orthonormal(u, n, n, 4);
            tu_rotate_cols(u, n, 0, 1, 0.01 * j);
            tu_compose(wd, n, n, u, sg, v);
            tu_to_float(w, wd, (size_t)n * n);
            if (oialr_traj_append(t, idx, 7 * j + (j > 4 ? 20 : 0), w, 0) != OIALR_OK) _exit(5);
            if (j == 1) {
                char c = 'r';
                if (write(c2p[1], &c, 1) != 1) _exit(3);
            }
            usleep(60000);
        }
        free(u), free(v), free(sg), free(wd), free(w);
        _exit(oialr_traj_close(t) == OIALR_OK ? 0 : 6);
    }
    char c;
    ck_assert_int_eq(read(c2p[0], &c, 1), 1);
    char out2[320];
    snprintf(out2, sizeof out2, "%s/res2.h5", dir);
    ck_assert_int_eq(run(9, traj, "--follow", "--interval", "0.03", "--lag-steps", "10", "-o", out, "-q"), 0);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(run(6, traj, "--lag-steps", "10", "-o", out2, "-q"), 0);
    hid_t fa = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(out2, H5F_ACC_RDONLY, H5P_DEFAULT);
    double sa[8], sb[8];
    int64_t ra[8], rb[8];
    read_vec(fa, "/layers/ill/stability", H5T_NATIVE_DOUBLE, sa);
    read_vec(fb, "/layers/ill/stability", H5T_NATIVE_DOUBLE, sb);
    read_vec(fa, "/layers/ill/ref_step", H5T_NATIVE_INT64, ra);
    read_vec(fb, "/layers/ill/ref_step", H5T_NATIVE_INT64, rb);
    for (int j = 0; j < T; j++) {
        ck_assert_int_eq(ra[j], rb[j]);
        ck_assert((isnan(sa[j]) && isnan(sb[j])) || sa[j] == sb[j]);
    }
    ck_assert_int_eq(ra[2], 0);  /* step 14: the latest at <= 4 is step 0 */
    ck_assert_int_eq(ra[5], 28); /* steps 0 7 14 21 28 55 62 69: at 55, the latest at <= 45 is 28 */
    ck_assert_int_eq(ra[7], 55); /* at 69, <= 59: 55 */
    char prec[16];
    read_str_attr(fa, "/layers/ill", "precision", prec, sizeof prec);
    ck_assert_str_eq(prec, "float64");
    H5Fclose(fa), H5Fclose(fb);
}
END_TEST

/* Ctrl-C while following a writer that does not stop: exit 0 and complete
 * outputs up to the snapshots analysed by then, no temporary file left.
 * The SIGINT is raised from the progress callback, at a known snapshot:
 * _i = 0 after the first look (4 snapshots of every layer), _i = 1 in the
 * middle of the first layer (fc1 keeps 2 rows, the others none). */
static int interrupt_layer, interrupt_done;
static void interrupt_at(const char *layer, int64_t done, int64_t total, int layer_no, int nlayers) {
    (void)layer, (void)total, (void)nlayers;
    if (layer_no == interrupt_layer && done == interrupt_done) raise(SIGINT);
}

START_TEST(test_follow_interrupted) {
    int c2p[2], p2c[2];
    ck_assert_int_eq(pipe(c2p), 0);
    ck_assert_int_eq(pipe(p2c), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        oialr_traj *t = write_traj(traj, 4, 1);
        char c = 'r';
        if (write(c2p[1], &c, 1) != 1) _exit(3);
        if (read(p2c[0], &c, 1) != 1) _exit(4); /* keep the file open until told */
        _exit(oialr_traj_close(t) == OIALR_OK ? 0 : 6);
    }
    char c;
    ck_assert_int_eq(read(c2p[0], &c, 1), 1);
    interrupt_layer = _i ? 0 : NL - 1;
    interrupt_done = _i ? 2 : 4;
    oialr_analyze_set_progress(interrupt_at);
    struct sigaction before, after;
    sigaction(SIGINT, NULL, &before);
    int rc = run(8, traj, "--follow", "--interval", "0.05", "-o", out, "--csv", csvdir, "-q");
    oialr_analyze_set_progress(NULL);
    sigaction(SIGINT, NULL, &after);
    c = 'x';
    ck_assert_int_eq(write(p2c[1], &c, 1), 1);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(rc, 0);
    ck_assert(after.sa_handler == before.sa_handler); /* the handler is gone again */
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    for (int l = 0; l < NL; l++) {
        char p[96];
        snprintf(p, sizeof p, "/layers/%s/step", LAYERS[l].name);
        hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
        ck_assert(d >= 0);
        hid_t sp = H5Dget_space(d);
        ck_assert_int_eq(H5Sget_simple_extent_npoints(sp), _i ? (l == 0 ? 2 : 0) : 4);
        H5Sclose(sp), H5Dclose(d);
    }
    double s[4];
    read_vec(f, "/layers/fc1/stability", H5T_NATIVE_DOUBLE, s);
    for (int j = 1; j < (_i ? 2 : 4); j++) ck_assert(fabs(s[j] - expect_s(j, 24)) < 1e-4);
    H5Fclose(f);
    ck_assert_int_eq(parts_in(dir), 0);
    ck_assert_int_eq(parts_in(csvdir), 0);
}
END_TEST

START_TEST(test_follow_bad_flags) {
    write_traj(traj, 4, 0);
    ck_assert_int_eq(run(3, traj, "--interval", "1"), 2);                    /* without --follow */
    ck_assert_int_eq(run(4, traj, "--follow", "--interval", "0"), 2);
    ck_assert_int_eq(run(4, traj, "--follow", "--interval", "x"), 2);
    ck_assert_int_eq(run(4, traj, "--follow", "--policy", "stability:0.9,lag=10"), 2);
    ck_assert_int_eq(run(4, traj, "--follow", "--lag", "4", "-q"), 1);       /* lag >= snapshots, once it ends */
    ck_assert_int_eq(run(3, traj, "--follow", "-q"), 0);                     /* a closed file: one pass */
}
END_TEST

/* --------------------------------------------------------------------------- */
/* Outputs: the results file, the CSV tables and the figures follow the rule
 * of oialr/base.h ("Output files"): nothing but a regular file (or nothing)
 * is ever written over, an existing file only with --force and only once the
 * new one is complete; a failed run leaves every old file as it was and no
 * temporary file (.NAME.XXXXXX.part) behind. */

/* The trajectory of write_traj plus training metrics (for the training
 * figure); compress > 0: deflate, so that a chunk can be corrupted. */
static void outputs_traj(const char *path, int compress) {
    oialr_traj *t;
    oialr_traj_options opt;
    oialr_traj_options_default(&opt);
    opt.force = 1;
    opt.compress = compress;
    ck_assert_int_eq(oialr_traj_create(&t, path, &opt), OIALR_OK);
    int idx[NL];
    for (int l = 0; l < NL; l++)
        ck_assert_int_eq(oialr_traj_declare_layer(t, LAYERS[l].name, LAYERS[l].rows, LAYERS[l].cols, "dense", 0, NULL,
                                                  &idx[l]),
                         OIALR_OK);
    ck_assert_int_eq(oialr_traj_declare_metrics(t, "epoch,loss,train_acc,val_acc,test_acc,lr"), OIALR_OK);
    float *w = malloc(sizeof(float) * 40 * 40);
    for (int j = 0; j < NSNAP; j++) {
        for (int l = 0; l < NL; l++) {
            layer_matrix(w, LAYERS[l].rows, LAYERS[l].cols, j, 100 + 10 * l, 1.0 + 0.01 * j);
            ck_assert_int_eq(oialr_traj_append(t, idx[l], 10 * j, w, 0), OIALR_OK);
        }
        double m[6] = {j / 4, 2.0 / (1 + j), 0.5 + 0.04 * j, 0.5 + 0.03 * (j / 4), 0.5 + 0.03 * (j / 4), 0.1};
        ck_assert_int_eq(oialr_traj_append_metrics(t, 10 * j, m, 6), OIALR_OK);
    }
    free(w);
    ck_assert_int_eq(oialr_traj_close(t), OIALR_OK);
}

/* Overwrite the stored (compressed) chunk of snapshot snap of a layer with
 * 0xFF bytes: not a zlib stream, so reading that snapshot fails. */
static void corrupt_chunk(const char *path, const char *layer, int snap) {
    char dset[128];
    snprintf(dset, sizeof dset, "/layers/%s/weight", layer);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    ck_assert(d >= 0);
    hsize_t off[3] = {(hsize_t)snap, 0, 0}, size = 0;
    haddr_t addr = 0;
    unsigned mask = 0;
    ck_assert(H5Dget_chunk_info_by_coord(d, off, &mask, &addr, &size) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    ck_assert(size > 0 && addr != HADDR_UNDEF);
    unsigned char *junk = malloc(size);
    memset(junk, 0xFF, size);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, junk, size, (off_t)addr), (ssize_t)size);
    close(fd);
    free(junk);
}

/* Whole content of a file (malloc'd, *n bytes); NULL if it cannot be read. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    size_t got;
    while ((got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) b = realloc(b, cap *= 2);
    }
    fclose(f);
    *n = len;
    return b;
}

static void put_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Files whose content must not change: remembered, then compared. */
typedef struct { char path[400]; char *data; size_t n; } kept_file;

static void keep(kept_file *k, const char *dirpath, const char *name) {
    snprintf(k->path, sizeof k->path, "%s/%s", dirpath, name);
    k->data = slurp(k->path, &k->n);
    ck_assert_msg(k->data != NULL, "%s does not exist", k->path);
}

static void check_kept(kept_file *k, int n) {
    for (int i = 0; i < n; i++) {
        size_t len;
        char *now = slurp(k[i].path, &len);
        ck_assert_msg(now != NULL, "%s was removed", k[i].path);
        ck_assert_msg(len == k[i].n && memcmp(now, k[i].data, len) == 0, "%s was changed", k[i].path);
        free(now);
        free(k[i].data);
        k[i].data = NULL;
    }
}

/* Number of temporary files (.NAME.XXXXXX.part) in a directory. */
static int parts_in(const char *dirpath) {
    DIR *d = opendir(dirpath);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".part") == 0) {
            fprintf(stderr, "left behind: %s/%s\n", dirpath, e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static int run_plot(int n, ...) {
    char *argv[32];
    va_list ap;
    va_start(ap, n);
    argv[0] = "plot";
    for (int i = 0; i < n; i++) argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    argv[n + 1] = NULL;
    return oialr_cmd_plot(n + 1, argv);
}

static int is_png_file(const char *path) {
    size_t n;
    char *b = slurp(path, &n);
    int ok = b && n > 5000 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0;
    free(b);
    return ok;
}

/* The trajectory's events reach events.csv, and the stability figure marks
 * each switch at the stability the controller saw (docs/analyze.md). */
START_TEST(test_events_csv_and_switch_marks) {
    oialr_traj *t = write_traj(traj, 8, 1);
    oialr_traj_event ev = {.step = 40, .kind = OIALR_EVENT_SWITCH, .stability = 0.987, .rank_before = 24,
                           .rank_after = 12};
    snprintf(ev.layer, sizeof ev.layer, "fc1");
    ck_assert_int_eq(oialr_traj_append_event(t, &ev), OIALR_OK);
    ev.step = 60, ev.kind = OIALR_EVENT_TRUNCATE, ev.stability = NAN, ev.rank_before = 12, ev.rank_after = 9;
    ck_assert_int_eq(oialr_traj_append_event(t, &ev), OIALR_OK);
    ck_assert_int_eq(oialr_traj_close(t), OIALR_OK);
    ck_assert_int_eq(run(6, traj, "--csv", csvdir, "--threads", "1", "-q"), 0);
    char path[400], line[8192];
    snprintf(path, sizeof path, "%s/events.csv", csvdir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    const char *want[] = {"step,layer,kind,stability,rank_before,rank_after\n", "40,fc1,switch,0.987,24,12\n",
                          "60,fc1,truncate,nan,12,9\n"};
    for (int k = 0; k < 3; k++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        ck_assert_str_eq(line, want[k]);
    }
    ck_assert_ptr_null(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_int_eq(run_plot(1, csvdir), 0);
    snprintf(path, sizeof path, "%s/stability.gp", csvdir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int marks = 0;
    while (fgets(line, sizeof line, f)) marks += strstr(line, "events using") && strstr(line, "'switch'");
    fclose(f);
    ck_assert_int_eq(marks, 1);
    /* the figure's own figure-events.csv: the layer's colour index, the event, n */
    snprintf(path, sizeof path, "%s/figure-events.csv", csvdir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    const char *fig_want[] = {"layer_index,layer,step,kind,stability,rank_before,rank_after,n\n",
                              "1,fc1,40,switch,0.987,24,12,24\n", "1,fc1,60,truncate,nan,12,9,24\n"};
    for (int k = 0; k < 3; k++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        ck_assert_str_eq(line, fig_want[k]);
    }
    fclose(f);
}
END_TEST

/* (a) A device node, a symbolic link or a directory at an output path is
 * refused even with --force, and left as it was. */
START_TEST(test_outputs_special_files) {
    write_traj(traj, 4, 0);
    char node[320], link_[320], target[320], sub[320], p[400];
    snprintf(node, sizeof node, "%s/node.h5", dir);
    snprintf(link_, sizeof link_, "%s/link.h5", dir);
    snprintf(target, sizeof target, "%s/target.h5", dir);
    snprintf(sub, sizeof sub, "%s/sub.h5", dir);
    /* a symbolic link: nothing is written through it */
    put_file(target, "the file the link points to\n");
    ck_assert_int_eq(symlink("target.h5", link_), 0);
    kept_file k[1];
    keep(&k[0], dir, "target.h5");
    ck_assert_int_eq(run(6, traj, "-o", link_, "--force", "--threads", "1"), 1);
    struct stat st;
    ck_assert_int_eq(lstat(link_, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    check_kept(k, 1);
    /* a directory */
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(run(6, traj, "-o", sub, "--force", "--threads", "1"), 1);
    ck_assert_int_eq(lstat(sub, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    /* a device node like /dev/null, as the results file and as a CSV table */
    if (mknod(node, S_IFCHR | 0666, makedev(1, 3)) != 0) {
        fprintf(stderr, "test_outputs_special_files: mknod: %s: device node cases skipped (needs root)\n",
                strerror(errno));
    } else {
        ck_assert_int_eq(run(6, traj, "-o", node, "--force", "--threads", "1"), 1);
        ck_assert_int_eq(lstat(node, &st), 0);
        ck_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
        ck_assert_int_eq(mkdir(csvdir, 0755), 0);
        snprintf(p, sizeof p, "%s/metrics.csv", csvdir);
        ck_assert_int_eq(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
        ck_assert_int_eq(run(8, traj, "-o", out, "--csv", csvdir, "--force", "--threads", "1"), 1);
        ck_assert_int_eq(lstat(p, &st), 0);
        ck_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
        ck_assert_int_eq(access(out, F_OK), -1); /* refused before anything was written */
    }
    ck_assert_int_eq(parts_in(dir), 0);
    ck_assert_int_eq(parts_in(csvdir), 0);
}
END_TEST

/* (b) A run that fails after its outputs were opened (a snapshot of the last
 * layer cannot be read) leaves the old results and tables of an earlier run
 * byte for byte, even with --force, and no temporary file. */
START_TEST(test_outputs_failed_run_keeps_old) {
    outputs_traj(traj, 0);
    ck_assert_int_eq(run(10, traj, "-o", out, "--csv", csvdir, "--policy", "delay:35", "--threads", "1", "-q"), 0);
    char bad_traj[320];
    snprintf(bad_traj, sizeof bad_traj, "%s/broken.h5", dir);
    outputs_traj(bad_traj, 1);
    corrupt_chunk(bad_traj, "head", 3);
    kept_file k[5];
    keep(&k[0], dir, "res.h5");
    keep(&k[1], csvdir, "metrics.csv");
    keep(&k[2], csvdir, "spectra.csv");
    keep(&k[3], csvdir, "mean_stability.csv");
    keep(&k[4], csvdir, "replay.csv");
    ck_assert_int_eq(run(11, bad_traj, "-o", out, "--csv", csvdir, "--policy", "delay:35", "--force", "--threads", "1",
                         "-q"),
                     1);
    check_kept(k, 5);
    ck_assert_int_eq(parts_in(dir), 0);
    ck_assert_int_eq(parts_in(csvdir), 0);
    /* a CSV directory this failing run created itself is not left behind */
    char fresh[320];
    snprintf(fresh, sizeof fresh, "%s/fresh", dir);
    ck_assert_int_eq(run(6, bad_traj, "--csv", fresh, "--threads", "1", "-q"), 1);
    ck_assert_int_eq(access(fresh, F_OK), -1);
}
END_TEST

/* (c) --csv DIR with an existing table and no --force is refused before
 * anything is written; the table is unchanged. */
START_TEST(test_outputs_csv_exists) {
    write_traj(traj, 4, 0);
    char p[400];
    ck_assert_int_eq(mkdir(csvdir, 0755), 0);
    snprintf(p, sizeof p, "%s/metrics.csv", csvdir);
    put_file(p, "someone's table\n");
    kept_file k[1];
    keep(&k[0], csvdir, "metrics.csv");
    ck_assert_int_eq(run(8, traj, "-o", out, "--csv", csvdir, "--threads", "1", "-q"), 1);
    check_kept(k, 1);
    ck_assert_int_eq(access(out, F_OK), -1); /* refused up front: no results file either */
    snprintf(p, sizeof p, "%s/spectra.csv", csvdir);
    ck_assert_int_eq(access(p, F_OK), -1);
    /* replay.csv counts too, with --policy */
    ck_assert_int_eq(unlink(k[0].path), 0);
    snprintf(p, sizeof p, "%s/replay.csv", csvdir);
    put_file(p, "someone's replay\n");
    keep(&k[0], csvdir, "replay.csv");
    ck_assert_int_eq(run(8, traj, "--csv", csvdir, "--policy", "delay:10", "--threads", "1", "-q"), 1);
    check_kept(k, 1);
    snprintf(p, sizeof p, "%s/metrics.csv", csvdir);
    ck_assert_int_eq(access(p, F_OK), -1);
    ck_assert_int_eq(parts_in(csvdir), 0);
    /* --force replaces it */
    ck_assert_int_eq(run(9, traj, "--csv", csvdir, "--policy", "delay:10", "--force", "--threads", "1", "-q"), 0);
    snprintf(p, sizeof p, "%s/replay.csv", csvdir);
    size_t n;
    char *b = slurp(p, &n);
    ck_assert(b && n > 6 && strncmp(b, "layer,", 6) == 0);
    free(b);
}
END_TEST

/* (d) oialr plot: figures in place are refused without --force, replaced with
 * it; a plot that fails (gnuplot on a broken table) leaves the old figures
 * and scripts as they were and no temporary file. */
START_TEST(test_outputs_plot) {
    outputs_traj(traj, 0);
    ck_assert_int_eq(run(6, traj, "--csv", csvdir, "--threads", "1", "-q"), 0);
    char figs[320], p[400];
    snprintf(figs, sizeof figs, "%s/figures", dir);
    ck_assert_int_eq(run_plot(5, csvdir, "-o", figs, "--run", traj), 0);
    static const char *const names[] = {"stability", "heatmap", "ranks", "training", "spectrum-fc1", "evolution-fc2"};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s.png", figs, names[i]);
        ck_assert_msg(is_png_file(p), "%s is not a PNG", p);
    }
    ck_assert_int_eq(parts_in(figs), 0);
    /* again without --force: refused, nothing touched */
    kept_file k[9];
    keep(&k[0], figs, "stability.png");
    keep(&k[1], figs, "stability.gp");
    ck_assert_int_eq(run_plot(5, csvdir, "-o", figs, "--run", traj), 1);
    check_kept(k, 2);
    /* with --force: replaced */
    snprintf(p, sizeof p, "%s/stability.png", figs);
    put_file(p, "old figure\n");
    ck_assert_int_eq(run_plot(6, csvdir, "-o", figs, "--run", traj, "--force"), 0);
    ck_assert(is_png_file(p));
    ck_assert_int_eq(run_plot(6, csvdir, "-o", figs, "--run", traj, "-f"), 0);
    ck_assert(is_png_file(p));
    /* a broken table: refused with the row named (a gnuplot failure on a
     * later figure: tests/check_report.c, test_all_or_nothing) */
    snprintf(p, sizeof p, "%s/spectra.csv", csvdir);
    put_file(p, "layer,step,index,sigma\nfc1,x,y,z\n");
    const char *files[] = {"stability.png", "stability.gp", "ranks.png", "ranks.gp", "heatmap.png",
                           "heatmap.csv", "training.png", "training.gp", "training.csv"};
    for (int i = 0; i < 9; i++) keep(&k[i], figs, files[i]);
    ck_assert_int_eq(run_plot(6, csvdir, "-o", figs, "--run", traj, "--force"), 1);
    check_kept(k, 9);
    ck_assert_int_eq(parts_in(figs), 0);
    ck_assert_int_eq(run_plot(1, "--help"), 0);
}
END_TEST

/* (e) A successful run replaces its outputs by renaming new files into place
 * (a file hard-linked to the old output keeps its content) and leaves no
 * temporary file. */
START_TEST(test_outputs_success_no_temporaries) {
    write_traj(traj, 6, 0);
    char other[320], other_csv[320], p[400];
    snprintf(other, sizeof other, "%s/other.h5", dir);
    snprintf(other_csv, sizeof other_csv, "%s/other.csv", dir);
    put_file(other, "another name of the old results file\n");
    put_file(other_csv, "another name of the old table\n");
    ck_assert_int_eq(link(other, out), 0);
    ck_assert_int_eq(mkdir(csvdir, 0755), 0);
    snprintf(p, sizeof p, "%s/metrics.csv", csvdir);
    ck_assert_int_eq(link(other_csv, p), 0);
    kept_file k[2];
    keep(&k[0], dir, "other.h5");
    keep(&k[1], dir, "other.csv");
    ck_assert_int_eq(run(11, traj, "-o", out, "--csv", csvdir, "--force", "--policy", "delay:20", "--threads", "1",
                         "-q"),
                     0);
    check_kept(k, 2);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    ck_assert_int_eq(read_attr_i64(f, "/", "format_version"), 1);
    H5Fclose(f);
    const char *tables[] = {"metrics.csv", "spectra.csv", "mean_stability.csv", "replay.csv"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", csvdir, tables[i]);
        ck_assert_msg(access(p, R_OK) == 0, "%s missing", p);
    }
    ck_assert_int_eq(parts_in(dir), 0);
    ck_assert_int_eq(parts_in(csvdir), 0);
}
END_TEST

/* The default precision (the Gram path, float64 gesdd for an
 * ill-conditioned snapshot) against --double (float64 gesdd everywhere,
 * the reference): every metric of every snapshot, on a well-conditioned
 * layer, one at κ ≈ 3e4 (Gram, float32 gesdd would be off) and one at
 * κ = 1e7 that the Gram path hands to gesdd. S and the spectrum within the
 * float64 tolerance (1e-5); the angles, computed from the factors kept in
 * float32, within the float32 one (1e-3). */
START_TEST(test_default_matches_double) {
    static const struct { const char *name; int rows, cols; double kappa; } L[] = {
        {"well", 48, 30, 20}, {"mid", 36, 36, 3e4}, {"ill", 24, 40, 1e7}};
    const int T = 5;
    oialr_traj *t;
    oialr_traj_options opt;
    oialr_traj_options_default(&opt);
    opt.force = 1;
    ck_assert_int_eq(oialr_traj_create(&t, traj, &opt), OIALR_OK);
    int idx[3];
    for (int l = 0; l < 3; l++)
        ck_assert_int_eq(oialr_traj_declare_layer(t, L[l].name, L[l].rows, L[l].cols, "dense", 0, NULL, &idx[l]), OIALR_OK);
    double *u = malloc(sizeof(double) * 48 * 48), *v = malloc(sizeof(double) * 48 * 48), *sg = malloc(sizeof(double) * 48);
    double *wd = malloc(sizeof(double) * 48 * 48);
    float *w = malloc(sizeof(float) * 48 * 48);
    for (int j = 0; j < T; j++)
        for (int l = 0; l < 3; l++) {
            int m = L[l].rows >= L[l].cols ? L[l].rows : L[l].cols, n = L[l].rows + L[l].cols - m;
            tu_orthonormal(u, m, n, 40 + l);
            tu_orthonormal(v, n, n, 50 + l);
            for (int i = 0; i < n; i++) sg[i] = pow(L[l].kappa, -(double)i / (n - 1));
            for (int p = 0; p < 3; p++) tu_rotate_cols(u, m, p, n - 1 - p, 0.03 * j * (p + 1));
            tu_rotate_cols(v, n, 0, n / 2, 0.01 * j);
            tu_compose(wd, L[l].rows, L[l].cols, u, sg, v);
            tu_to_float(w, wd, (size_t)m * n);
            ck_assert_int_eq(oialr_traj_append(t, idx[l], 10 * j, w, 0), OIALR_OK);
        }
    ck_assert_int_eq(oialr_traj_close(t), OIALR_OK);
    free(u); free(v); free(sg); free(wd); free(w);
    char ref[320];
    snprintf(ref, sizeof ref, "%s/ref.h5", dir);
    ck_assert_int_eq(run(5, traj, "-o", out, "--beta", "0.3", "-q"), 0);
    ck_assert_int_eq(run(6, traj, "-o", ref, "--beta", "0.3", "--double", "-q"), 0);
    hid_t fa = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT), fr = H5Fopen(ref, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(fa >= 0 && fr >= 0);
    static const char *rel[] = {"sigma1", "sigma_min", "frobenius", "stable_rank", "effective_rank", "condition"};
    static const char *ang[] = {"grassmann_left", "grassmann_right", "max_angle_left", "max_angle_right"};
    static const char *ints[] = {"rank", "cutoff_rank", "angles_k"};
    for (int l = 0; l < 3; l++) {
        char path[128];
        double a[5 * 48], r[5 * 48];
        int64_t ia[5], ir[5];
        int n = L[l].rows < L[l].cols ? L[l].rows : L[l].cols;
        snprintf(path, sizeof path, "/layers/%s/stability", L[l].name);
        read_vec(fa, path, H5T_NATIVE_DOUBLE, a);
        read_vec(fr, path, H5T_NATIVE_DOUBLE, r);
        for (int j = 1; j < T; j++)
            ck_assert_msg(fabs(a[j] - r[j]) <= 1e-5, "%s snap %d: S %.10f, --double %.10f", L[l].name, j, a[j], r[j]);
        snprintf(path, sizeof path, "/layers/%s/sigma", L[l].name);
        read_vec(fa, path, H5T_NATIVE_DOUBLE, a);
        read_vec(fr, path, H5T_NATIVE_DOUBLE, r);
        for (int i = 0; i < T * n; i++)
            ck_assert_msg(fabs(a[i] - r[i]) <= 1e-5 * r[i], "%s σ[%d] %.12g, --double %.12g", L[l].name, i, a[i], r[i]);
        for (size_t k = 0; k < sizeof rel / sizeof *rel; k++) {
            snprintf(path, sizeof path, "/layers/%s/%s", L[l].name, rel[k]);
            read_vec(fa, path, H5T_NATIVE_DOUBLE, a);
            read_vec(fr, path, H5T_NATIVE_DOUBLE, r);
            for (int j = 0; j < T; j++)
                ck_assert_msg(fabs(a[j] - r[j]) <= 1e-5 * fabs(r[j]), "%s %s[%d] %.12g, --double %.12g", L[l].name, rel[k],
                              j, a[j], r[j]);
        }
        for (size_t k = 0; k < sizeof ang / sizeof *ang; k++) {
            snprintf(path, sizeof path, "/layers/%s/%s", L[l].name, ang[k]);
            read_vec(fa, path, H5T_NATIVE_DOUBLE, a);
            read_vec(fr, path, H5T_NATIVE_DOUBLE, r);
            for (int j = 1; j < T; j++)
                ck_assert_msg(fabs(a[j] - r[j]) <= 1e-3, "%s %s[%d] %.10g, --double %.10g", L[l].name, ang[k], j, a[j], r[j]);
        }
        for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) {
            snprintf(path, sizeof path, "/layers/%s/%s", L[l].name, ints[k]);
            read_vec(fa, path, H5T_NATIVE_INT64, ia);
            read_vec(fr, path, H5T_NATIVE_INT64, ir);
            for (int j = 0; j < T; j++)
                ck_assert_msg(ia[j] == ir[j], "%s %s[%d] %lld, --double %lld", L[l].name, ints[k], j, (long long)ia[j],
                              (long long)ir[j]);
        }
        /* the layer's precision: float64 arithmetic on both */
        char prec[16];
        snprintf(path, sizeof path, "/layers/%s", L[l].name);
        read_str_attr(fa, path, "precision", prec, sizeof prec);
        ck_assert_str_eq(prec, "float64");
    }
    H5Fclose(fa);
    H5Fclose(fr);
}
END_TEST

static Suite *analyze_suite(void) {
    Suite *s = suite_create("analyze");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_loop_test(core, test_known_stability_and_replay, 0, 2);
    tcase_add_test(core, test_lag_and_glob);
    tcase_add_test(core, test_replay_delay);
    tcase_add_test(core, test_ill_conditioned_auto_double);
    tcase_add_test(core, test_default_matches_double);
    tcase_add_test(core, test_live_file);
    tcase_add_test(core, test_python_writer);
    tcase_add_test(core, test_events_csv_and_switch_marks);
    tcase_add_test(core, test_alpha_columns);
    tcase_add_loop_test(core, test_lag_steps_irregular, 0, 2);
    tcase_add_test(core, test_lag_steps_regular);
    tcase_add_loop_test(core, test_follow_live_writer, 0, 2);
    tcase_add_test(core, test_follow_restart_and_lag_steps);
    tcase_add_loop_test(core, test_follow_interrupted, 0, 2);
    tcase_set_timeout(core, 30);
    suite_add_tcase(s, core);
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_add_test(lim, test_bad_flags);
    tcase_add_test(lim, test_bad_inputs);
    tcase_add_test(lim, test_lag_steps_bad);
    tcase_add_test(lim, test_follow_bad_flags);
    suite_add_tcase(s, lim);
    TCase *outs = tcase_create("Outputs");
    tcase_add_checked_fixture(outs, setup, teardown);
    tcase_add_test(outs, test_outputs_special_files);
    tcase_add_test(outs, test_outputs_failed_run_keeps_old);
    tcase_add_test(outs, test_outputs_csv_exists);
    tcase_add_test(outs, test_outputs_plot);
    tcase_add_test(outs, test_outputs_success_no_temporaries);
    tcase_set_timeout(outs, 60);
    suite_add_tcase(s, outs);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(analyze_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
