/*
 * file.c — opening a data file: a regular file, or a one-line reason why not.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a file";
}

int data_open_regular(const char *path, int *fd, int64_t *size) {
    *fd = -1;
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f < 0) {
        if (errno == ENOENT) return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no such file", path);
        return oialr_seterr(OIALR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return oialr_seterr(OIALR_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return oialr_seterr(OIALR_ERR_FORMAT, "%s: not a regular file (%s)", path, kind_of(st.st_mode));
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(f);
        return oialr_seterr(OIALR_ERR_IO, "%s: %s", path, strerror(e));
    }
    *fd = f;
    *size = (int64_t)st.st_size;
    return OIALR_OK;
}
