/*
 * util.c — the fuzz targets' helpers (fuzz.h): a quiet log and in-memory
 * files with a path.
 */
#include "fuzz.h"

#include <fcntl.h>
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

static int write_all(int fd, const uint8_t *data, size_t size) {
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    return 0;
}

int fuzz_file_open(fuzz_file *f, const uint8_t *data, size_t size) {
    f->named = 0;
    f->fd = memfd_create("oialr-fuzz", MFD_CLOEXEC);
    if (f->fd < 0) return -1;
    if (write_all(f->fd, data, size)) {
        close(f->fd);
        f->fd = -1;
        return -1;
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    return 0;
}

int fuzz_tmpdir(char *out, size_t n, const char *what) {
    const char *base = getenv("OIALR_FUZZ_TMPDIR");
    const char *bases[] = {base && *base ? base : "/dev/shm", "/tmp"};
    for (int i = 0; i < 2; i++) {
        if ((size_t)snprintf(out, n, "%s/oialr-fuzz-%s.XXXXXX", bases[i], what) < n && mkdtemp(out)) return 0;
    }
    out[0] = '\0';
    return -1;
}

static char dir[160];

static void remove_dir(void) {
    if (dir[0]) rmdir(dir);
}

int fuzz_file_named(fuzz_file *f, const uint8_t *data, size_t size, const char *name) {
    f->fd = -1;
    f->named = 0;
    if (!dir[0]) {
        if (fuzz_tmpdir(dir, sizeof dir, "file")) return -1;
        atexit(remove_dir);
    }
    if ((size_t)snprintf(f->path, sizeof f->path, "%s/%s", dir, name) >= sizeof f->path) return -1;
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    int bad = write_all(fd, data, size);
    if (close(fd) != 0 || bad) {
        unlink(f->path);
        return -1;
    }
    f->named = 1;
    return 0;
}

void fuzz_file_close(fuzz_file *f) {
    if (f->fd >= 0) close(f->fd);
    if (f->named) unlink(f->path);
    f->fd = -1;
    f->named = 0;
}
