/*
 * util.c — the fuzz targets' helpers (fuzz.h): a quiet log and in-memory
 * files with a path.
 */
#include "fuzz.h"

#include <sys/mman.h>
#include <unistd.h>

#include "oialr/base.h"

int fuzz_report_fd = 2;
const char *fuzz_input;

void fuzz_fail(const char *file, int line, const char *expr) {
    dprintf(fuzz_report_fd, "%s:%d: fuzz property failed: %s%s%s\n", file, line, expr, fuzz_input ? " on " : "",
            fuzz_input ? fuzz_input : "");
    abort();
}

void fuzz_quiet(void) {
    static int done;
    if (done) return;
    done = 1;
    oialr_set_log(NULL, NULL, OIALR_LOG_ERROR - 1);
}

int fuzz_file_open(fuzz_file *f, const uint8_t *data, size_t size) {
    f->fd = memfd_create("oialr-fuzz", MFD_CLOEXEC);
    if (f->fd < 0) return -1;
    for (size_t off = 0; off < size;) {
        ssize_t w = write(f->fd, data + off, size - off);
        if (w <= 0) {
            close(f->fd);
            f->fd = -1;
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    return 0;
}

void fuzz_file_close(fuzz_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
}
