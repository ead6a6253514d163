/*
 * check_factors.c — factored snapshots of low-rank layers in the trajectory
 * (format version 2, docs/format.md): what oialr_traj_append_factors writes
 * reads back as U Σ Vᵀ, a basis is stored once for the snapshots sharing
 * it, the rows left unwritten read as NaN in plain HDF5, and the Limits of
 * the writer's arguments and of the reader against damaged files.
 */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oialr/trajectory.h"

#define OK(expr)                                                                                             \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        ck_assert_msg(rc_ == OIALR_OK, "%s -> %d: %s", #expr, rc_, oialr_errmsg());                          \
    } while (0)

#define ROWS 6
#define COLS 5
#define CAP 4

static char path[256];

static void setup(void) { snprintf(path, sizeof path, "/tmp/oialr-check-factors-%d.h5", (int)getpid()); }
static void teardown(void) { unlink(path); }

/* Deterministic factors of a snapshot: u [ROWS, r], s [r, r], v [COLS, r]. */
static void factors(int seed, int r, float *u, float *s, float *v) {
    for (int i = 0; i < ROWS * r; i++) u[i] = (float)sin(1.0 + seed + 0.7 * i);
    for (int i = 0; i < COLS * r; i++) v[i] = (float)cos(2.0 + seed + 0.3 * i);
    for (int i = 0; i < r * r; i++) s[i] = (float)(i % (r + 1) == 0 ? 3.0 - i * 0.1 : 0.05 * (seed + i));
}

/* W = u[:, :r] s v[:, :r]ᵀ, u and v with ld columns. */
static void form(int r, int ld, const float *u, const float *s, const float *v, float *w) {
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++) {
            double acc = 0;
            for (int a = 0; a < r; a++)
                for (int b = 0; b < r; b++) acc += (double)u[i * ld + a] * s[a * r + b] * v[j * ld + b];
            w[i * COLS + j] = (float)acc;
        }
}

static float max_diff(const float *a, const float *b, int n) {
    float d = 0;
    for (int i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

/* A new file at path with layer "fc.weight" (ROWS x COLS) declared as *a. */
static int g_compress; /* deflate level of the files made (test_roundtrip loops over 0, 4) */

static oialr_traj *new_file(int *a) {
    oialr_traj *t = NULL;
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    o.force = 1;
    o.compress = g_compress;
    OK(oialr_traj_create(&t, path, &o));
    OK(oialr_traj_declare_layer(t, "fc.weight", ROWS, COLS, "dense", 0, NULL, a));
    return t;
}

/* Five snapshots: full; a basis of rank 3; Σ only; Σ only at rank 2 (a
 * truncation keeps the leading columns); a new basis of rank 2. The
 * expected W of each into want[5][ROWS*COLS]. */
static void write_file(float want[5][ROWS * COLS]) {
    int a;
    oialr_traj *t = new_file(&a);
    OK(oialr_traj_declare_factors(t, a, CAP));
    float w[ROWS * COLS], u[ROWS * CAP], s[CAP * CAP], v[COLS * CAP], s2[CAP * CAP];
    for (int i = 0; i < ROWS * COLS; i++) w[i] = want[0][i] = (float)(i - 7);
    OK(oialr_traj_append(t, a, 0, w, 0));
    factors(1, 3, u, s, v);
    form(3, 3, u, s, v, want[1]);
    OK(oialr_traj_append_factors(t, a, 10, 3, u, s, v));
    float tu[ROWS * CAP], tv[COLS * CAP];
    factors(2, 3, tu, s2, tv); /* a new Σ on the same basis */
    form(3, 3, u, s2, v, want[2]);
    OK(oialr_traj_append_factors(t, a, 20, 3, NULL, s2, NULL));
    float s3[4] = {2.5f, 0.1f, -0.2f, 1.5f};
    form(2, 3, u, s3, v, want[3]);
    OK(oialr_traj_append_factors(t, a, 30, 2, NULL, s3, NULL));
    float u4[ROWS * 2], v4[COLS * 2], s4[4];
    for (int i = 0; i < ROWS * 2; i++) u4[i] = (float)(0.1 * i - 0.3);
    for (int i = 0; i < COLS * 2; i++) v4[i] = (float)(0.2 * i + 0.1);
    s4[0] = 4, s4[1] = 0, s4[2] = 0, s4[3] = 1;
    form(2, 2, u4, s4, v4, want[4]);
    OK(oialr_traj_append_factors(t, a, 40, 2, u4, s4, v4));
    OK(oialr_traj_close(t));
}

START_TEST(test_roundtrip) {
    float want[5][ROWS * COLS], got[ROWS * COLS];
    g_compress = _i ? 4 : 0; /* with filters, the writer takes its non-raw path */
    write_file(want);
    g_compress = 0;
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, path, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->format_version, 2);
    const oialr_traj_layer *L = oialr_traj_layer_at(t, 0);
    ck_assert_int_eq(L->nsnap, 5);
    ck_assert_int_eq(L->factor_capacity, CAP);
    const int32_t bases[5] = {-1, 0, 0, 0, 1}, ranks[5] = {5, 3, 3, 2, 2};
    for (int k = 0; k < 5; k++) {
        ck_assert_int_eq(L->bases[k], bases[k]);
        ck_assert_int_eq(L->ranks[k], ranks[k]);
        OK(oialr_traj_read(t, 0, k, got, ROWS * COLS));
        ck_assert_msg(max_diff(got, want[k], ROWS * COLS) < 1e-5f, "snapshot %d differs by %g", k,
                      (double)max_diff(got, want[k], ROWS * COLS));
    }
    /* read out of order: the cached basis must not leak between snapshots */
    OK(oialr_traj_read(t, 0, 4, got, ROWS * COLS));
    OK(oialr_traj_read(t, 0, 2, got, ROWS * COLS));
    ck_assert_float_le(max_diff(got, want[2], ROWS * COLS), 1e-5f);
    OK(oialr_traj_close(t));
    /* plain HDF5: two bases stored for four factored snapshots; the weight
     * rows of factored snapshots are NaN, never a plausible 0 */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t du = H5Dopen2(f, "/layers/fc.weight/u", H5P_DEFAULT), dw = H5Dopen2(f, "/layers/fc.weight/weight", H5P_DEFAULT);
    hid_t sp = H5Dget_space(du);
    hsize_t dims[3];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    ck_assert_int_eq((int)dims[0], 2);
    H5Sclose(sp);
    hid_t dcpl = H5Dget_create_plist(du);
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) ck_assert_int_eq(H5Pget_nfilters(dcpl) > 0, _i != 0);
    H5Pclose(dcpl);
    float all[5][ROWS * COLS];
    ck_assert_int_ge(H5Dread(dw, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, all), 0);
    ck_assert_float_eq(all[0][3], want[0][3]);
    for (int k = 1; k < 5; k++) ck_assert_msg(isnan(all[k][0]) && isnan(all[k][ROWS * COLS - 1]), "row %d", k);
    H5Dclose(du);
    H5Dclose(dw);
    H5Fclose(f);
}
END_TEST

/* A file with no factored layer stays version 1, which older readers read. */
START_TEST(test_version1_without_factors) {
    int a;
    oialr_traj *t = new_file(&a);
    float w[ROWS * COLS] = {0};
    OK(oialr_traj_append(t, a, 0, w, 0));
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, path, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_get_info(t)->format_version, 1);
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->factor_capacity, 0);
    ck_assert_ptr_null(oialr_traj_layer_at(t, 0)->bases);
    OK(oialr_traj_close(t));
}
END_TEST

/* The writer's arguments: each bad call fails with OIALR_ERR_ARG and writes
 * nothing; the file stays readable. */
START_TEST(test_writer_limits) {
    int a, b;
    oialr_traj *t = new_file(&a);
    OK(oialr_traj_declare_layer(t, "plain.weight", ROWS, COLS, "dense", 0, NULL, &b));
    ck_assert_int_eq(oialr_traj_declare_factors(t, a, 0), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_traj_declare_factors(t, a, COLS + 1), OIALR_ERR_ARG); /* > min(rows, cols) */
    ck_assert_int_eq(oialr_traj_declare_factors(t, 7, 2), OIALR_ERR_NOTFOUND);
    OK(oialr_traj_declare_factors(t, a, CAP));
    ck_assert_int_eq(oialr_traj_declare_factors(t, a, CAP), OIALR_ERR_ARG); /* twice */
    float u[ROWS * CAP] = {1}, s[CAP * CAP] = {1}, v[COLS * CAP] = {1};
    ck_assert_int_eq(oialr_traj_append_factors(t, b, 0, 2, u, s, v), OIALR_ERR_ARG);    /* not declared */
    ck_assert_int_eq(oialr_traj_append_factors(t, a, 0, CAP + 1, u, s, v), OIALR_ERR_ARG); /* above capacity */
    ck_assert_int_eq(oialr_traj_append_factors(t, a, 0, 2, NULL, s, NULL), OIALR_ERR_ARG); /* no basis yet */
    ck_assert_int_eq(oialr_traj_append_factors(t, a, 0, 2, u, s, NULL), OIALR_ERR_ARG);    /* u without v */
    OK(oialr_traj_append_factors(t, a, 0, 2, u, s, v));
    ck_assert_int_eq(oialr_traj_append_factors(t, a, 10, 3, NULL, s, NULL), OIALR_ERR_ARG); /* basis too small */
    ck_assert_int_eq(oialr_traj_declare_factors(t, b, 2), OIALR_ERR_ARG);                  /* phase 2 */
    OK(oialr_traj_append_factors(t, a, 10, 1, NULL, s, NULL));
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, path, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_layer_at(t, 0)->nsnap, 2);
    OK(oialr_traj_close(t));
}
END_TEST

/* A file reopened for append continues on its newest basis (Σ only, up to
 * the rank the basis was stored with) and reads back the same. */
START_TEST(test_append_after_reopen) {
    float want[5][ROWS * COLS], got[ROWS * COLS];
    write_file(want);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, path, OIALR_TRAJ_APPEND));
    float s5[4] = {1.0f, 0.5f, 0.0f, 2.0f}, s9[9] = {1.0f};
    ck_assert_int_eq(oialr_traj_append_factors(t, 0, 50, 3, NULL, s9, NULL), OIALR_ERR_ARG); /* basis 1 has rank 2 */
    OK(oialr_traj_append_factors(t, 0, 50, 2, NULL, s5, NULL));
    OK(oialr_traj_close(t));
    OK(oialr_traj_open(&t, path, OIALR_TRAJ_READ));
    const oialr_traj_layer *L = oialr_traj_layer_at(t, 0);
    ck_assert_int_eq(L->nsnap, 6);
    ck_assert_int_eq(L->bases[5], 1);
    OK(oialr_traj_read(t, 0, 4, got, ROWS * COLS)); /* same basis as snapshot 4: W scales with Σ */
    float w5[ROWS * COLS];
    OK(oialr_traj_read(t, 0, 5, w5, ROWS * COLS));
    ck_assert_float_le(max_diff(got, want[4], ROWS * COLS), 1e-5f);
    float u4[ROWS * 2], v4[COLS * 2], e5[ROWS * COLS]; /* write_file's basis 1 */
    for (int i = 0; i < ROWS * 2; i++) u4[i] = (float)(0.1 * i - 0.3);
    for (int i = 0; i < COLS * 2; i++) v4[i] = (float)(0.2 * i + 0.1);
    form(2, 2, u4, s5, v4, e5);
    ck_assert_float_le(max_diff(w5, e5, ROWS * COLS), 1e-5f);
    OK(oialr_traj_close(t));
}
END_TEST

/* Damage one integer of a layer's 1-D dataset with plain HDF5. */
static void poke_int(const char *dset, hsize_t at, int value) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, (hsize_t[]){1}, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, (hsize_t[]){1}, NULL);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_INT, ms, fs, H5P_DEFAULT, &value), 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
}

static void expect_open_fails(const char *what, const char *needle) {
    oialr_traj *t = NULL;
    int rc = oialr_traj_open(&t, path, OIALR_TRAJ_READ);
    ck_assert_msg(rc == OIALR_ERR_FORMAT, "%s: open gave %d (%s)", what, rc, rc ? oialr_errmsg() : "opened");
    ck_assert_msg(strstr(oialr_errmsg(), needle), "%s: message '%s' lacks '%s'", what, oialr_errmsg(), needle);
}

START_TEST(test_reader_limits) {
    float want[5][ROWS * COLS], got[ROWS * COLS];
    /* a basis index past the bases written */
    write_file(want);
    poke_int("/layers/fc.weight/basis", 2, 7);
    expect_open_fails("basis index", "basis[2] = 7");
    /* the same in the newest snapshot is a writer caught (or killed) in the
     * middle of it: that snapshot is left out, the rest reads */
    write_file(want);
    poke_int("/layers/fc.weight/basis", 4, 2);
    {
        oialr_traj *t4 = NULL;
        OK(oialr_traj_open(&t4, path, OIALR_TRAJ_READ));
        ck_assert_int_eq(oialr_traj_layer_at(t4, 0)->nsnap, 4);
        OK(oialr_traj_read(t4, 0, 3, got, ROWS * COLS));
        ck_assert_float_le(max_diff(got, want[3], ROWS * COLS), 1e-5f);
        OK(oialr_traj_close(t4));
    }
    /* below -1 */
    write_file(want);
    poke_int("/layers/fc.weight/basis", 1, -2);
    expect_open_fails("negative basis", "basis[1] = -2");
    /* a factored snapshot's rank above the capacity */
    write_file(want);
    poke_int("/layers/fc.weight/rank", 3, CAP + 1);
    expect_open_fails("rank", "rank[3] = 5");
    /* a snapshot said to be factored whose Σ was never written (snapshot
     * 0 is a full one): refused at the read, never NaN or 0 analysed */
    write_file(want);
    poke_int("/layers/fc.weight/basis", 0, 0);
    poke_int("/layers/fc.weight/rank", 0, 2);
    oialr_traj *t = NULL;
    OK(oialr_traj_open(&t, path, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_read(t, 0, 0, got, ROWS * COLS), OIALR_ERR_FORMAT);
    ck_assert_msg(strstr(oialr_errmsg(), "never written"), "%s", oialr_errmsg());
    OK(oialr_traj_read(t, 0, 1, got, ROWS * COLS)); /* the rest stays readable */
    OK(oialr_traj_close(t));
    /* and a full snapshot whose weight row was never written */
    write_file(want);
    poke_int("/layers/fc.weight/basis", 2, -1);
    OK(oialr_traj_open(&t, path, OIALR_TRAJ_READ));
    ck_assert_int_eq(oialr_traj_read(t, 0, 2, got, ROWS * COLS), OIALR_ERR_FORMAT);
    ck_assert_msg(strstr(oialr_errmsg(), "never written"), "%s", oialr_errmsg());
    OK(oialr_traj_close(t));
    /* a factor dataset missing */
    write_file(want);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(H5Ldelete(f, "/layers/fc.weight/v", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_open_fails("no v", "no v");
}
END_TEST

/* tools/oialr_traj.py's read_snapshot (what an h5py user runs) forms the
 * same W as the C reader, for a full, a factored and a truncated snapshot. */
START_TEST(test_python_reads) {
    float want[5][ROWS * COLS];
    write_file(want);
    char root[512], cmd[2048];
    snprintf(root, sizeof root, "%s", __FILE__); /* tests/check_factors.c from the source root */
    char *slash = strrchr(root, '/');
    if (slash) *slash = '\0'; else snprintf(root, sizeof root, "tests");
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import sys; sys.path.insert(0, '%s/../tools'); import h5py, oialr_traj as o; "
             "g = h5py.File('%s', 'r')['layers/fc.weight']; "
             "print(' '.join('%%.7g' %% x for t in (0, 1, 3) for x in o.read_snapshot(g, t).ravel()))\"",
             root, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    const int which[3] = {0, 1, 3};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < ROWS * COLS; i++) {
            float x;
            ck_assert_msg(fscanf(p, "%f", &x) == 1, "python output ended at snapshot %d, element %d", which[k], i);
            ck_assert_msg(fabsf(x - want[which[k]][i]) < 1e-5f, "snapshot %d [%d]: python %g, C %g", which[k], i,
                          (double)x, (double)want[which[k]][i]);
        }
    ck_assert_int_eq(pclose(p), 0);
}
END_TEST

static Suite *factors_suite(void) {
    Suite *s = suite_create("factors");
    TCase *c = tcase_create("Core");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_loop_test(c, test_roundtrip, 0, 2);
    tcase_add_test(c, test_version1_without_factors);
    tcase_add_test(c, test_python_reads);
    suite_add_tcase(s, c);
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_add_test(lim, test_writer_limits);
    tcase_add_test(lim, test_append_after_reopen);
    tcase_add_test(lim, test_reader_limits);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(factors_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
