/*
 * check_python.c — PyTorch users first-class (issue 14): the command-line
 * fixes a Python user meets, and the Python module oialr (tools/python/oialr)
 * against the C tools.
 *
 * "cli" (every pass): on a trajectory with PyTorch's layer names written
 * through the C API, `oialr analyze` warns about each --layers pattern
 * that matches nothing and lists the layers when none matches; -q prints
 * nothing at all; the results file's strings are variable-length UTF-8
 * (h5py: str); the policy string of replay.csv pastes back into --policy;
 * a results file given as a trajectory is named as one.
 *
 * "python" (the plain pass only: the sanitizers do not reach into Python,
 * and torch takes seconds to import): tests/python/test_oialr.py runs once
 * with Debian's /usr/bin/python3 (numpy, h5py, torch, pandas), one process
 * for all its cases, and each case's line ("ok NAME" / "FAIL NAME: why")
 * becomes one test here.
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include "oialr.h"
#include "util_cli.h"
#include "oialr/trajectory.h"

#define OK(expr)                                                                                             \
    do {                                                                                                     \
        int rc_ = (expr);                                                                                    \
        ck_assert_msg(rc_ == OIALR_OK, "%s -> %d: %s", #expr, rc_, oialr_errmsg());                          \
    } while (0)

static char dir[256];
static char out[16384];

static void quiet_log(int level, const char *msg, void *user) { (void)level, (void)msg, (void)user; }

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-python-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    oialr_set_log(quiet_log, NULL, OIALR_LOG_DEBUG);
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

// ----------------------------------------------------------------------------
// cli: a trajectory as a PyTorch model names it

#define NSNAP 6
#define EVERY 10

/* DIR/run.h5: conv1.weight (8 x 2x3x3) and fc1.weight (10 x 8), NSNAP
 * snapshots EVERY steps apart, each a small random step from the last. */
static void write_run(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/run.h5", dir);
    oialr_traj *t;
    OK(oialr_traj_create(&t, path, NULL));
    const int64_t cshape[4] = {8, 2, 3, 3};
    int ic, ifc;
    OK(oialr_traj_declare_layer(t, "conv1.weight", 8, 18, "conv2d", 4, cshape, &ic));
    OK(oialr_traj_declare_layer(t, "fc1.weight", 10, 8, "dense", 0, NULL, &ifc));
    OK(oialr_traj_declare_metrics(t, "loss,lr"));
    float wc[8 * 18], wf[10 * 8];
    oialr_rng rng;
    oialr_rng_seed(&rng, 7, 0);
    for (size_t i = 0; i < 8 * 18; i++) wc[i] = oialr_rng_normal(&rng);
    for (size_t i = 0; i < 10 * 8; i++) wf[i] = oialr_rng_normal(&rng);
    for (int s = 0; s < NSNAP; s++) {
        for (size_t i = 0; i < 8 * 18; i++) wc[i] += 0.02f * oialr_rng_normal(&rng);
        for (size_t i = 0; i < 10 * 8; i++) wf[i] += 0.02f * oialr_rng_normal(&rng);
        OK(oialr_traj_append(t, ic, (int64_t)s * EVERY, wc, 0));
        OK(oialr_traj_append(t, ifc, (int64_t)s * EVERY, wf, 0));
        const double row[2] = {1.0 / (s + 1), 0.1};
        OK(oialr_traj_append_metrics(t, (int64_t)s * EVERY, row, 2));
    }
    OK(oialr_traj_close(t));
}

/* exit status of "oialr ARGS" in dir, its stdout and stderr in out */
static int cli(const char *args) { return tu_cli_run(dir, args, out, sizeof out); }

#define HAS(s) ck_assert_msg(strstr(out, (s)) != NULL, "no \"%s\" in:\n%s", (s), out)

/* `--layers 'fc*,conv1'` analysed only fc1.weight, without a word */
START_TEST(test_layers_warn) {
    write_run();
    ck_assert_int_eq(cli("analyze run.h5 -o a.h5 -q --layers 'fc*,conv1'"), 0);
    HAS("warning: --layers: 'conv1' matches no layer of run.h5 (did you mean 'conv1.weight'?)");
    ck_assert_msg(!strstr(out, "'fc*'"), "a pattern that matched was warned about:\n%s", out);
    ck_assert_int_eq(cli("analyze run.h5 -o b.h5 -q --layers 'conv*,zz'"), 0);
    HAS("'zz' matches no layer of run.h5\n"); /* no hint: there is no zz.weight */
    /* nothing matches: the error lists the layers */
    ck_assert_int_eq(cli("analyze run.h5 -o c.h5 -q --layers conv,fc"), 1);
    HAS("no layer matches 'conv,fc' (2 layers in the file: conv1.weight, fc1.weight)");
    ck_assert_int_ne(access("c.h5", F_OK), 0);
}
END_TEST

/* -q: not even the progress line (it printed its first one on stderr) */
START_TEST(test_quiet) {
    write_run();
    ck_assert_int_eq(cli("analyze run.h5 -o a.h5 --csv tab -q --policy delay:20"), 0);
    ck_assert_msg(out[0] == '\0', "analyze -q printed:\n%s", out);
    ck_assert_int_eq(cli("analyze run.h5 -o b.h5"), 0);
    HAS("analyze: layer 1/2 conv1.weight  snapshot 1/6"); /* without -q: the line is there */
}
END_TEST

static herr_t check_str_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    int *nstr = data;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), ty = H5Aget_type(a);
    if (H5Tget_class(ty) == H5T_STRING) {
        (*nstr)++;
        ck_assert_msg(H5Tis_variable_str(ty) > 0, "attribute %s: fixed-length string (h5py: bytes)", name);
        ck_assert_msg(H5Tget_cset(ty) == H5T_CSET_UTF8, "attribute %s: not UTF-8", name);
    }
    H5Tclose(ty);
    H5Aclose(a);
    return 0;
}

/* every string attribute of the results file as the trajectory has them */
START_TEST(test_results_strings) {
    write_run();
    ck_assert_int_eq(cli("analyze run.h5 -o a.h5 -q --policy stability:0.9"), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/a.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    int nstr = 0;
    const char *objs[] = {"/", "/layers/conv1.weight", "/layers/fc1.weight"};
    for (int i = 0; i < 3; i++) {
        hid_t o = H5Oopen(f, objs[i], H5P_DEFAULT);
        hsize_t idx = 0;
        ck_assert_int_ge(H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, check_str_attr, &nstr), 0);
        H5Oclose(o);
    }
    H5Fclose(f);
    ck_assert_int_ge(nstr, 15); /* format, created, source, ..., policy, and each layer's kind, precision */
}
END_TEST

/* replay.csv's policy field, "stability:0.99;lag=20", is a --policy again */
START_TEST(test_replay_policy_pastes_back) {
    write_run();
    ck_assert_int_eq(cli("analyze run.h5 -o a.h5 --csv tab -q --policy stability:0.99,lag=20"), 0);
    char path[300], line[512], field[128] = "";
    snprintf(path, sizeof path, "%s/tab/replay.csv", dir);
    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, fp)); /* header */
    ck_assert_ptr_nonnull(fgets(line, sizeof line, fp));
    fclose(fp);
    char *p = line;
    for (int k = 0; k < 8 && p; k++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL; /* field 9: policy */
    ck_assert_ptr_nonnull(p);
    size_t n = strcspn(p, ",\n");
    ck_assert_uint_lt(n, sizeof field);
    memcpy(field, p, n);
    field[n] = '\0';
    ck_assert_str_eq(field, "stability:0.99;lag=20");
    char args[400];
    snprintf(args, sizeof args, "analyze run.h5 -o b.h5 -q --policy '%s'", field);
    ck_assert_msg(cli(args) == 0, "%s:\n%s", args, out);
    /* the same policy as the comma form: the same lag in snapshots (2) */
    snprintf(path, sizeof path, "%s/b.h5", dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t lag = 0;
    hid_t a = H5Aopen(f, "lag", H5P_DEFAULT);
    ck_assert(H5Aread(a, H5T_NATIVE_INT64, &lag) >= 0);
    H5Aclose(a);
    H5Fclose(f);
    ck_assert_int_eq(lag, 2);
    oialr_policy pol;
    OK(oialr_policy_parse("stability:0.5;lag=30", &pol));
    ck_assert_int_eq(pol.kind, OIALR_POLICY_STABILITY);
    ck_assert_int_eq(pol.lag, 30);
    ck_assert(fabs(pol.tau - 0.5) < 1e-12);
}
END_TEST

/* Limits: a results file given where a trajectory goes; a bad ';' policy */
START_TEST(test_results_as_trajectory) {
    write_run();
    ck_assert_int_eq(cli("analyze run.h5 -o a.h5 -q"), 0);
    ck_assert_int_eq(cli("analyze a.h5 -o b.h5 -q"), 1);
    HAS("a.h5: an analysis results file (format \"oialr-analysis\", written by oialr analyze), not a trajectory: "
        "give the trajectory it was made from (run.h5)");
    ck_assert_msg(!strstr(out, "no 'format' attribute"), "%s", out);
    ck_assert_int_eq(cli("analyze run.h5 -o c.h5 -q --policy 'stability:0.9;lag'"), 2);
    HAS("expected ',lag=STEPS' after the threshold");
    oialr_policy pol;
    ck_assert_int_eq(oialr_policy_parse("stability:0.9;lag=0", &pol), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_policy_parse("delay:5;lag=3", &pol), OIALR_ERR_ARG);
}
END_TEST

// ----------------------------------------------------------------------------
// python: tests/python/test_oialr.py, once; the plain pass only (see the top)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WITH_PYTHON 0
#else
#define WITH_PYTHON 1
#endif

#if WITH_PYTHON

static char *py_out; /* its whole output, read by every test of the case */
static int py_status = -1;
static char py_dir[256];

/* The source root: OIALR_SRCDIR, or the directory above this file's. */
static void src_root(char *buf, size_t n) {
    const char *env = getenv("OIALR_SRCDIR");
    if (env) {
        snprintf(buf, n, "%s", env);
        return;
    }
    snprintf(buf, n, "%s", __FILE__); /* tests/check_python.c from the root */
    char *slash = strrchr(buf, '/');
    if (slash) *slash = '\0';
    slash = strrchr(buf, '/');
    if (slash) *slash = '\0';
    else snprintf(buf, n, ".");
}

static void py_run_once(void) {
    char root[PATH_MAX], rootabs[PATH_MAX], bin[PATH_MAX], cmd[4 * PATH_MAX];
    src_root(root, sizeof root);
    ck_assert_msg(realpath(root, rootabs), "no source tree at %s (set OIALR_SRCDIR)", root);
    tu_cli_bin(bin, sizeof bin);
    snprintf(py_dir, sizeof py_dir, "/tmp/oialr-check-py-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(py_dir));
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tests/python/test_oialr.py' '%s' '%s' "
             "'%s/work' 2>&1",
             rootabs, rootabs, bin, py_dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, n = 0;
    py_out = malloc(cap);
    ck_assert_ptr_nonnull(py_out);
    for (size_t got; (got = fread(py_out + n, 1, cap - n - 1, p)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            ck_assert_ptr_nonnull(py_out = realloc(py_out, cap *= 2));
        }
    }
    py_out[n] = '\0';
    int st = pclose(p);
    py_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (py_status != 0) fprintf(stderr, "check_python: tests/python/test_oialr.py:\n%s", py_out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", py_dir);
    if (system(cmd) != 0) fprintf(stderr, "check_python: could not remove %s\n", py_dir);
}

static void py_free(void) {
    free(py_out);
    py_out = NULL;
}

/* The line of case `name`: "ok name ..." passes; otherwise the FAIL line
 * and its traceback are the message. */
static void py_case(const char *name) {
    ck_assert_msg(py_out, "tests/python/test_oialr.py did not run");
    ck_assert_msg(!strstr(py_out, "ModuleNotFoundError: No module named 'torch'") &&
                      !strstr(py_out, "No module named 'h5py'"),
                  "Debian's python3 lacks a module the tests need (make deps installs python3-torch, "
                  "python3-h5py):\n%s",
                  py_out);
    char ok[128], fail[128];
    snprintf(ok, sizeof ok, "ok %s (", name);
    snprintf(fail, sizeof fail, "FAIL %s:", name);
    const char *f = strstr(py_out, fail);
    ck_assert_msg(!f, "%s", f);
    const char *o = strstr(py_out, ok);
    ck_assert_msg(o && (o == py_out || o[-1] == '\n'), "case %s did not report (exit %d):\n%s", name, py_status,
                  py_out);
    ck_assert_msg(strstr(py_out, "\ncases "), "the Python tests did not finish (exit %d):\n%s", py_status, py_out);
}

#define PY_TEST(name)                                                                                        \
    START_TEST(test_py_##name) { py_case(#name); }                                                           \
    END_TEST

PY_TEST(torch_recorder_stability)
PY_TEST(readme_example)
PY_TEST(live_writer_seen_live)
PY_TEST(killed_writer_recovered)
PY_TEST(info_never_tracebacks)
PY_TEST(duplicate_steps_refused)
PY_TEST(results_reader)
PY_TEST(rank_limits)
PY_TEST(make_install_python)
PY_TEST(version_matches_cli)

/* every case of the script has its test above, and it exited 0 */
START_TEST(test_py_all_cases) {
    ck_assert_msg(py_out && strstr(py_out, "\ncases 10\n"), "tests/python/test_oialr.py ran a number of cases other "
                                                           "than the 10 this file checks:\n%s", py_out ? py_out : "");
    ck_assert_int_eq(py_status, 0);
}
END_TEST
#endif

static Suite *python_suite(void) {
    Suite *s = suite_create("python");
    TCase *c = tcase_create("cli");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_test(c, test_layers_warn);
    tcase_add_test(c, test_quiet);
    tcase_add_test(c, test_results_strings);
    tcase_add_test(c, test_replay_policy_pastes_back);
    suite_add_tcase(s, c);
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_add_test(lim, test_results_as_trajectory);
    suite_add_tcase(s, lim);
#if WITH_PYTHON
    TCase *py = tcase_create("python");
    tcase_add_unchecked_fixture(py, py_run_once, py_free);
    tcase_set_timeout(py, 240);
    tcase_add_test(py, test_py_torch_recorder_stability);
    tcase_add_test(py, test_py_readme_example);
    tcase_add_test(py, test_py_live_writer_seen_live);
    tcase_add_test(py, test_py_killed_writer_recovered);
    tcase_add_test(py, test_py_info_never_tracebacks);
    tcase_add_test(py, test_py_duplicate_steps_refused);
    tcase_add_test(py, test_py_results_reader);
    tcase_add_test(py, test_py_rank_limits);
    tcase_add_test(py, test_py_make_install_python);
    tcase_add_test(py, test_py_version_matches_cli);
    tcase_add_test(py, test_py_all_cases);
    suite_add_tcase(s, py);
#endif
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(python_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
