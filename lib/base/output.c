/*
 * output.c — output files that never destroy what the run did not create
 * (oialr/base.h, "Output files").
 *
 * The rules, for every file oialr writes (trajectory, analysis results,
 * CSV tables, figures):
 *   - only a regular file, or nothing, may stand at the final path; a
 *     device, FIFO, directory or symbolic link there is refused, --force or
 *     not;
 *   - an existing regular file is replaced only when the caller asked for
 *     it (force), and only once the new file is complete: the new content
 *     goes to a temporary file beside the final path (same directory, so the
 *     same filesystem) and is renamed over it at the end, so a failed or
 *     killed run leaves the old file as it was;
 *   - without force the final rename refuses to replace a file that appeared
 *     in the meantime (renameat2 RENAME_NOREPLACE, or link + unlink where
 *     the filesystem lacks it);
 *   - on failure only the temporary file is removed: it is the one thing the
 *     run created.
 */
#include "oialr/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int oialr_output_check(const char *path, int force) {
    OIALR_ASSERT(path);
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return OIALR_OK;
        return oialr_seterr(OIALR_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (S_ISLNK(st.st_mode))
        return oialr_seterr(OIALR_ERR_EXISTS, "%s is a symbolic link; oialr does not write through links "
                            "(name the file it points to)", path);
    if (!S_ISREG(st.st_mode))
        return oialr_seterr(OIALR_ERR_EXISTS, "%s exists and is not a regular file; oialr never writes over it",
                            path);
    if (!force) return oialr_seterr(OIALR_ERR_EXISTS, "%s exists (use --force to replace it)", path);
    return OIALR_OK;
}

int oialr_output_begin(oialr_output *o, const char *path, int force) {
    OIALR_ASSERT(o && path);
    memset(o, 0, sizeof *o);
    int rc = oialr_output_check(path, force);
    if (rc) return rc;
    size_t n = strlen(path);
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    /* dir/.name.XXXXXX.part: hidden, and named after the file it becomes */
    o->tmp = malloc(n + 16);
    o->path = malloc(n + 1);
    if (!o->tmp || !o->path) {
        free(o->tmp), free(o->path);
        memset(o, 0, sizeof *o);
        return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(o->path, path, n + 1);
    o->force = force;
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t x = (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(oialr_now() * 1e9) ^ (uintptr_t)o;
    for (int attempt = 0; attempt < 100; attempt++) {
        char suf[7];
        for (int i = 0; i < 6; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            suf[i] = abc[(x >> 33) % (sizeof abc - 1)];
        }
        suf[6] = '\0';
        snprintf(o->tmp, n + 16, "%.*s.%s.%s.part", (int)dirlen, path, path + dirlen, suf);
        int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            close(fd);
            return OIALR_OK;
        }
        if (errno != EEXIST) {
            rc = oialr_seterr(OIALR_ERR_IO, "%s: cannot create a file beside it: %s", path, strerror(errno));
            break;
        }
    }
    if (!rc) rc = oialr_seterr(OIALR_ERR_IO, "%s: no free temporary name beside it", path);
    free(o->tmp), free(o->path);
    memset(o, 0, sizeof *o);
    return rc;
}

int oialr_output_commit(oialr_output *o) {
    OIALR_ASSERT(o);
    if (!o->tmp) return OIALR_OK;
    /* the path may have changed since begin: check again right before */
    int rc = oialr_output_check(o->path, o->force);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", oialr_errmsg());
        return oialr_seterr(rc, "%s; the new content is kept in %s", msg, o->tmp);
    }
    int r;
    if (o->force) {
        r = rename(o->tmp, o->path);
    } else {
        r = renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->path, RENAME_NOREPLACE);
        if (r != 0 && (errno == EINVAL || errno == ENOSYS)) {
            /* no RENAME_NOREPLACE on this filesystem: link() never replaces */
            r = link(o->tmp, o->path);
            if (r == 0) unlink(o->tmp);
        }
    }
    if (r != 0) {
        int e = errno;
        return oialr_seterr(e == EEXIST ? OIALR_ERR_EXISTS : OIALR_ERR_IO,
                            "%s: cannot move the new file into place: %s; it is kept in %s", o->path, strerror(e),
                            o->tmp);
    }
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
    return OIALR_OK;
}

void oialr_output_release(oialr_output *o) {
    if (!o) return;
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}

void oialr_output_abort(oialr_output *o) {
    if (o && o->tmp) unlink(o->tmp);
    oialr_output_release(o);
}
