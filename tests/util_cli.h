/*
 * util_cli.h — running the built `oialr` command from a test: the path of
 * the binary (OIALR_BUILD, set by tests/run.sh, or "build") and one command
 * line run in a directory with its output captured. Shared by every test
 * binary; symbols prefixed tu_.
 */
#ifndef TESTS_UTIL_CLI_H
#define TESTS_UTIL_CLI_H

#include <stddef.h>

/* The absolute path of the built oialr into bin (fails the test if it is
 * not built). */
void tu_cli_bin(char *bin, size_t size);

/* Run "oialr ARGS" in dir, stdout and stderr into out (NUL-terminated, cut
 * at size - 1); the exit status (128 if it did not exit). */
int tu_cli_run(const char *dir, const char *args, char *out, size_t size);

#endif
