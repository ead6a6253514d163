/*
 * util_cli.c — see util_cli.h.
 */
#include "util_cli.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void tu_cli_bin(char *bin, size_t size) {
    const char *b = getenv("OIALR_BUILD");
    char rel[PATH_MAX], abs[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/oialr", b ? b : "build");
    /* commands run in a test's own directory: the absolute path */
    ck_assert_msg(access(rel, X_OK) == 0 && realpath(rel, abs), "%s not built", rel);
    snprintf(bin, size, "%s", abs);
}

int tu_cli_run(const char *dir, const char *args, char *out, size_t size) {
    char bin[PATH_MAX], cmd[8192];
    tu_cli_bin(bin, sizeof bin);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", dir, bin, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}
