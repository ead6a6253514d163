/*
 * fuzz_cli.c — the command-line flag parsers: `oialr train`'s
 * (tools/cmd_train.c), `oialr analyze`'s (analysis/analyze.c, with the
 * policy parser of lib/lowrank/policy.c), `oialr plot`'s (analysis/plot.c),
 * and the helpers of tools/cli.c.
 *
 * Input: lines; the first names the command (train, analyze, plot, or
 * cli for the helpers alone), each further line is one argument (at
 * most 64). The command runs in an empty directory of its own (fuzz_tmpdir),
 * so a parse that succeeds ends at the first file it looks for: analyze
 * and plot find no input there, and train is given `--dataset
 * __fuzz_stop__` after the fuzzed arguments (an unknown data set, or, if
 * the last fuzzed flag takes it as its value, an unknown option), so no
 * run trains, and nothing is written. Checked: a usage error exits 2, and
 * every command returns 0, 1 or 2.
 */
#include "fuzz.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "analyze.h"
#include "cli.h"
#include "oialr/base.h"
#include "plot.h"

#define MAX_ARGS 64

static char dir[160];

static void leave_dir(void) {
    if (dir[0]) rmdir(dir);
}

/* An empty working directory, once per process. */
static int enter_dir(void) {
    if (dir[0]) return 0;
    if (fuzz_tmpdir(dir, sizeof dir, "cli") || chdir(dir) != 0) {
        dir[0] = '\0';
        return -1;
    }
    atexit(leave_dir);
    return 0;
}

static void helpers(int argc, char **argv) {
    static const char *const choices[] = {"sgd", "adamw", "none", NULL};
    for (int i = 1; i < argc; i++) {
        long long v;
        double d;
        int k;
        if (cli_int("fuzz", "--int", argv[i], LLONG_MIN, LLONG_MAX, &v) == 0) (void)v;
        if (cli_float("fuzz", "--float", argv[i], -1e300, 1e300, &d) == 0) FUZZ_ASSERT(d >= -1e300 && d <= 1e300);
        if (cli_choice("fuzz", "--choice", argv[i], choices, &k) == 0) FUZZ_ASSERT(k >= 0 && k < 3);
        int j = i;
        const char *val = cli_value("fuzz", argc, argv, &j);
        FUZZ_ASSERT(val ? j == i + 1 && val == argv[j] : i == argc - 1);
    }
    char *joined = cli_join(argc, argv);
    if (joined) {
        size_t want = 0;
        for (int i = 0; i < argc; i++) want += strlen(argv[i]) + 3;
        FUZZ_ASSERT(strlen(joined) <= want);
        free(joined);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    if (enter_dir()) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[MAX_ARGS + 4];
    int argc = 0;
    for (char *p = buf, *nl; argc < MAX_ARGS; p = nl + 1) {
        nl = strchr(p, '\n');
        argv[argc++] = p;
        if (!nl) break;
        *nl = '\0';
    }
    const char *cmd = argv[0];
    int st = 0;
    if (!strcmp(cmd, "train")) {
        argv[argc++] = "--dataset";
        argv[argc++] = "__fuzz_stop__";
        argv[argc] = NULL;
        st = cmd_train(argc, argv);
    } else if (!strcmp(cmd, "analyze")) {
        argv[argc] = NULL;
        st = oialr_cmd_analyze(argc, argv);
    } else if (!strcmp(cmd, "plot")) {
        argv[argc] = NULL;
        st = oialr_cmd_plot(argc, argv);
    } else if (!strcmp(cmd, "cli")) {
        argv[argc] = NULL;
        helpers(argc, argv);
    }
    FUZZ_ASSERT(st >= 0 && st <= 2);
    oialr_set_log(NULL, NULL, OIALR_LOG_ERROR - 1); /* train --quiet sets its own */
    free(buf);
    return 0;
}
