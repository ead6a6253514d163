/*
 * check_fuzz.c — the fuzz targets' regression test: every file of
 * tests/fuzz/corpus/<target>/ (the seeds) and tests/fuzz/crashes/<target>/
 * (inputs that crashed a target once, kept after the fix) replayed through
 * the target's own source (tests/fuzz/fuzz_<target>.c, compiled by the
 * normal build with its entry point renamed fuzz_replay_<target>). A
 * replay passes when the target returns: a crash, a sanitizer report
 * (SANITIZER=address) or a failed FUZZ_ASSERT fails it. docs/fuzzing.md.
 *
 * "Core" replays each target's corpus, "Limits" its crashes; one loop test
 * per target, every file of it inside, named in the failure message (run
 * by hand: build-fuzz/fuzz/fuzz_<target> FILE, or this test with CK_FORK=no
 * under gdb; OIALR_FUZZ_VERBOSE=1 names each input on stderr and leaves
 * stderr open, for a sanitizer's report). The targets' own messages (usage
 * errors) go to /dev/null otherwise. OIALR_FUZZ_DIR overrides tests/fuzz.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "oialr/trajectory.h"

#define X(t) int fuzz_replay_##t(const uint8_t *data, size_t size);
#define FUZZ_TARGETS(X) X(idx) X(cifar) X(traj) X(spec) X(cli)
FUZZ_TARGETS(X)
#undef X

static const struct {
    const char *name;
    int (*run)(const uint8_t *data, size_t size);
} targets[] = {
#define X(t) {#t, fuzz_replay_##t},
    FUZZ_TARGETS(X)
#undef X
};
#define NTARGETS ((int)(sizeof targets / sizeof *targets))

static char top[PATH_MAX]; /* absolute: fuzz_cli changes directory */

static void find_top(void) {
    const char *d = getenv("OIALR_FUZZ_DIR");
    ck_assert_msg(realpath(d && *d ? d : "tests/fuzz", top) != NULL, "no tests/fuzz directory (run from the top)");
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: cannot open", path);
    uint8_t *buf = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 65536;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        size_t got = fread(buf + *n, 1, cap - *n, f);
        *n += got;
        if (got == 0) break;
    }
    ck_assert_msg(!ferror(f), "%s: read error", path);
    fclose(f);
    return buf;
}

/* Room for 1 GiB more than the process maps now, so a target that
 * allocates what a tiny input's header asks fails (a reader's NOMEM, which
 * its target refuses) instead of passing on an overcommitted malloc. Not
 * under AddressSanitizer, whose shadow memory needs the address space. */
static void limit_memory(void) {
#if !defined(__SANITIZE_ADDRESS__)
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (f && fscanf(f, "%llu", &pages) == 1) {
        struct rlimit rl;
        rlim_t want = (rlim_t)(pages * (unsigned long long)sysconf(_SC_PAGESIZE) + (1ULL << 30));
        if (getrlimit(RLIMIT_AS, &rl) == 0 && (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > want)) {
            rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
            setrlimit(RLIMIT_AS, &rl);
        }
    }
    if (f) fclose(f);
#endif
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replay every regular file of top/kind/<target>/ in name order; the
 * number replayed (a missing directory replays none). */
static int replay(int t, const char *kind) {
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s/%s", top, kind, targets[t].name);
    DIR *d = opendir(dir);
    if (!d) return 0;
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (size_t)(n + 1) * sizeof *names);
        ck_assert_ptr_nonnull(names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, by_name);
    /* the targets' usage messages are not the test's output */
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), err = dup(2), null = open("/dev/null", O_WRONLY);
    ck_assert(out >= 0 && err >= 0 && null >= 0);
    int count = 0, verbose = getenv("OIALR_FUZZ_VERBOSE") != NULL;
    limit_memory();
    for (int i = 0; i < n; i++) {
        char path[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        size_t size;
        uint8_t *data = slurp(path, &size);
        /* a crash is reported as a signal: OIALR_FUZZ_VERBOSE=1 names
         * each input before it runs */
        if (verbose) dprintf(err, "check_fuzz: %s %s/%s\n", targets[t].name, kind, names[i]);
        fuzz_report_fd = err;
        fuzz_input = path;
        dup2(null, 1);
        if (!verbose) dup2(null, 2); /* verbose: a sanitizer's report shows */
        int rc = targets[t].run(data, size);
        fflush(stdout);
        fflush(stderr);
        dup2(out, 1);
        dup2(err, 2);
        fuzz_input = NULL;
        ck_assert_msg(rc == 0, "%s: fuzz_replay_%s returned %d", path, targets[t].name, rc);
        free(data);
        count++;
    }
    close(null);
    close(out);
    close(err);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return count;
}

START_TEST(corpus) {
    find_top();
    int n = replay(_i, "corpus");
    ck_assert_msg(n > 0, "tests/fuzz/corpus/%s/ holds no seed", targets[_i].name);
}
END_TEST

START_TEST(crashes) {
    find_top();
    (void)replay(_i, "crashes");
}
END_TEST

/* The trajectory seeds are whole trajectories, and the reader opens them
 * the way fuzz_traj hands them over: a harness whose inputs never open
 * (HDF5 refused the memfd paths of a first version) fuzzes nothing. */
START_TEST(traj_seeds_open) {
    find_top();
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/corpus/traj", top);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t size;
        uint8_t *data = slurp(path, &size);
        fuzz_file f;
        ck_assert_int_eq(fuzz_file_named(&f, data, size, "seed.h5"), 0);
        oialr_traj *t = NULL;
        int rc = oialr_traj_open(&t, f.path, OIALR_TRAJ_READ);
        ck_assert_msg(rc == OIALR_OK && oialr_traj_nlayers(t) > 0, "%s: %s", path, oialr_errmsg());
        oialr_traj_close(t);
        fuzz_file_close(&f);
        free(data);
        n++;
    }
    closedir(d);
    ck_assert_int_gt(n, 0);
}
END_TEST

/* Every corpus and crashes directory belongs to a target this test knows
 * (a new target is added to FUZZ_TARGETS above), and every target has its
 * source. */
START_TEST(dirs_match_targets) {
    find_top();
    const char *kinds[] = {"corpus", "crashes"};
    for (int k = 0; k < 2; k++) {
        char dir[PATH_MAX + 16];
        snprintf(dir, sizeof dir, "%s/%s", top, kinds[k]);
        DIR *d = opendir(dir);
        if (!d) continue;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            int known = 0;
            for (int t = 0; t < NTARGETS; t++) known |= !strcmp(e->d_name, targets[t].name);
            ck_assert_msg(known, "%s/%s: no fuzz target of that name in check_fuzz.c", dir, e->d_name);
        }
        closedir(d);
    }
    for (int t = 0; t < NTARGETS; t++) {
        char src[PATH_MAX + 32];
        snprintf(src, sizeof src, "%s/fuzz_%s.c", top, targets[t].name);
        ck_assert_msg(access(src, R_OK) == 0, "%s: missing", src);
    }
}
END_TEST

static Suite *fuzz_suite(void) {
    Suite *s = suite_create("fuzz");
    TCase *core = tcase_create("Core");
    tcase_set_timeout(core, 120);
    tcase_add_loop_test(core, corpus, 0, NTARGETS);
    tcase_add_test(core, dirs_match_targets);
    tcase_add_test(core, traj_seeds_open);
    suite_add_tcase(s, core);
    TCase *lim = tcase_create("Limits");
    tcase_set_timeout(lim, 120);
    tcase_add_loop_test(lim, crashes, 0, NTARGETS);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(fuzz_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
