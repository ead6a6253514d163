/*
 * fuzz.h — what the libFuzzer targets (tests/fuzz/fuzz_<target>.c) share.
 *
 * Each target defines LLVMFuzzerTestOneInput. `make fuzz` builds it with
 * clang -fsanitize=fuzzer,address,undefined (build-fuzz/fuzz/fuzz_<target>);
 * the Check test tests/check_fuzz.c links the same source compiled by gcc
 * with -DLLVMFuzzerTestOneInput=fuzz_replay_<target>, a plain function, and
 * replays tests/fuzz/corpus/<target>/ and tests/fuzz/crashes/<target>/
 * through it (docs/fuzzing.md).
 *
 * A target returns 0 for every input: a reader refusing bad input with an
 * error code is the expected outcome. A crash, a sanitizer report or a
 * failed FUZZ_ASSERT (a property the target checks) is a finding.
 */
#ifndef OIALR_FUZZ_H
#define OIALR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the code under test; abort() (a crash to libFuzzer, a
 * failing test to Check) with file and line when it does not hold. */
#define FUZZ_ASSERT(x)                                                                             \
    do {                                                                                           \
        if (!(x)) fuzz_fail(__FILE__, __LINE__, #x);                                               \
    } while (0)

/* Print "file:line: fuzz property failed: expr" (and fuzz_input, if set)
 * on fuzz_report_fd (stderr unless changed), then abort(). check_fuzz
 * points both at its own stderr and the input under way, as it sends the
 * targets' output to /dev/null. */
extern int fuzz_report_fd;
extern const char *fuzz_input;
void fuzz_fail(const char *file, int line, const char *expr) __attribute__((noreturn));

/* The library's log silenced (once per process): a reader refusing input
 * is not news, and printing it costs more than reading it. */
void fuzz_quiet(void);

/* An in-memory file holding data[0, size) (memfd_create): *fd and a path
 * naming it, "/proc/self/fd/N", for readers that take a path. The file is
 * regular and seekable, as on disk, and nothing touches the disk. Returns 0,
 * or -1 (nothing to close). Close with fuzz_file_close.
 *
 * fuzz_file_named: the same as a file with a real name, path/NAME in a
 * directory of the process's own (fuzz_tmpdir), for HDF5, which resolves
 * the real path of a file it opens and refuses a memfd's ("can't retrieve
 * real path"). fuzz_file_close removes it. */
typedef struct fuzz_file {
    int fd;
    int named;
    char path[256];
} fuzz_file;

int fuzz_file_open(fuzz_file *f, const uint8_t *data, size_t size);
int fuzz_file_named(fuzz_file *f, const uint8_t *data, size_t size, const char *name);
void fuzz_file_close(fuzz_file *f);

/* A new directory out[n] = BASE/oialr-fuzz-WHAT.XXXXXX, BASE being
 * $OIALR_FUZZ_TMPDIR (run.sh sets one per run and removes it after, with
 * whatever a crashed target left in it), else /dev/shm, else /tmp. 0 or -1. */
int fuzz_tmpdir(char *out, size_t n, const char *what);

#endif
