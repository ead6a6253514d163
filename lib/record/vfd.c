/*
 * vfd.c — the trajectory writer's HDF5 file driver (see vfd.h).
 *
 * A driver is a table of callbacks (H5FD_class_t) registered once per
 * library lifetime; HDF5 calls them on the writer thread only. The struct
 * handed to HDF5 starts with the public H5FD_t. Errors are pushed on the
 * HDF5 error stack in the POSIX driver's form ("..., errno = 28, error
 * message = 'No space left on device'"), from which h5u_err's one-line
 * messages (h5util.c) take the cause.
 */
#include "vfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct oialr_vfd_file {
    H5FD_t pub; /* first: HDF5 casts between the two */
    int fd;     /* page cache: metadata, small and unaligned writes, reads */
    int dfd;    /* O_DIRECT on the same file; -1 when refused */
    int direct; /* use dfd (oialr_vfd_set_direct) */
    int writable;
    haddr_t eoa, eof;
    dev_t dev;
    ino_t ino;
    uint64_t direct_bytes;
};
typedef struct oialr_vfd_file dfile;

static hid_t driver_id = H5I_INVALID_HID;

#define FAIL_ERRNO(maj, min, what)                                                                        \
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, maj, min, "%s, errno = %d, error message = '%s'", \
             what, errno, strerror(errno))

static herr_t d_term(void) {
    driver_id = H5I_INVALID_HID;
    return 0;
}

static H5FD_t *d_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
    (void)fapl;
    (void)maxaddr;
    int o = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & H5F_ACC_TRUNC) o |= O_TRUNC;
    if (flags & H5F_ACC_CREAT) o |= O_CREAT;
    if (flags & H5F_ACC_EXCL) o |= O_EXCL;
    dfile *f = calloc(1, sizeof *f);
    if (!f) {
        FAIL_ERRNO(H5E_VFL, H5E_CANTALLOC, "cannot allocate the file struct");
        return NULL;
    }
    f->dfd = -1;
    f->direct = 1;
    f->writable = (flags & H5F_ACC_RDWR) != 0;
    struct stat st;
    if ((f->fd = open(name, o | O_CLOEXEC, 0666)) < 0) {
        FAIL_ERRNO(H5E_FILE, H5E_CANTOPENFILE, "cannot open the file");
        free(f);
        return NULL;
    }
    if (fstat(f->fd, &st) < 0) {
        FAIL_ERRNO(H5E_FILE, H5E_BADFILE, "cannot stat the file");
        close(f->fd);
        free(f);
        return NULL;
    }
    f->eof = (haddr_t)st.st_size;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    /* the direct descriptor is optional: without it every write is buffered */
    const char *env = getenv("OIALR_DIRECT_IO");
#ifdef O_DIRECT
    if ((flags & H5F_ACC_RDWR) && !(env && !strcmp(env, "0"))) f->dfd = open(name, O_RDWR | O_DIRECT | O_CLOEXEC);
#else
    (void)env; /* no O_DIRECT on this system: buffered only */
#endif
    return &f->pub;
}

static herr_t d_close(H5FD_t *file) {
    dfile *f = (dfile *)file;
    int bad = 0;
    if (f->dfd >= 0) bad |= close(f->dfd) < 0;
    bad |= close(f->fd) < 0;
    if (bad) FAIL_ERRNO(H5E_IO, H5E_CANTCLOSEFILE, "cannot close the file");
    free(f);
    return bad ? -1 : 0;
}

static int d_cmp(const H5FD_t *a, const H5FD_t *b) {
    const dfile *x = (const dfile *)a, *y = (const dfile *)b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return 0;
}

static herr_t d_query(const H5FD_t *file, unsigned long *flags) {
    (void)file;
    /* as the POSIX (sec2) driver: a file any default-driver reader opens */
    if (flags)
        *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
                 H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE | H5FD_FEAT_SUPPORTS_SWMR_IO |
                 H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
    return 0;
}

static haddr_t d_get_eoa(const H5FD_t *file, H5FD_mem_t type) {
    (void)type;
    return ((const dfile *)file)->eoa;
}

/* HDF5 allocates file space by moving the end of the address space (EOA),
 * which the superblock then records. A writable file is extended to it at
 * once (a hole: no disk blocks), so an allocation the file size limit
 * (RLIMIT_FSIZE) refuses fails here, before it is recorded: otherwise the
 * superblock of a file whose write failed there claims more than the file
 * holds, and HDF5 refuses to open it ("truncated file"), losing every
 * snapshot written before. On a full disk the hole costs no block, and the
 * write that needs one fails as before. */
static herr_t d_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr) {
    (void)type;
    dfile *f = (dfile *)file;
    if (f->writable && addr > f->eof) {
        if (ftruncate(f->fd, (off_t)addr) < 0) {
            FAIL_ERRNO(H5E_IO, H5E_SEEKERROR, "cannot extend the file");
            return -1;
        }
        f->eof = addr;
    }
    f->eoa = addr;
    return 0;
}

static haddr_t d_get_eof(const H5FD_t *file, H5FD_mem_t type) {
    (void)type;
    return ((const dfile *)file)->eof;
}

static herr_t d_get_handle(H5FD_t *file, hid_t fapl, void **handle) {
    (void)fapl;
    if (!handle) return -1;
    *handle = &((dfile *)file)->fd;
    return 0;
}

/* 1 if [addr, addr + size) lies within the allocated address space;
 * otherwise pushes an error naming the operation. */
static int in_space(const dfile *f, haddr_t addr, size_t size, const char *op) {
    if (addr != HADDR_UNDEF && addr + size <= f->eoa && addr + size >= addr) return 1;
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_IO, H5E_OVERFLOW,
             "%s of %zu bytes at %llu beyond the end of the file's address space", op, size,
             (unsigned long long)addr);
    return 0;
}

static herr_t d_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf) {
    (void)type;
    (void)dxpl;
    dfile *f = (dfile *)file;
    if (!in_space(f, addr, size, "read")) return -1;
    unsigned char *p = buf;
    while (size > 0) {
        ssize_t n = pread(f->fd, p, size, (off_t)addr);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            FAIL_ERRNO(H5E_IO, H5E_READERROR, "cannot read the file");
            return -1;
        }
        if (n == 0) { /* past the end of the file: zeros, as the POSIX driver */
            memset(p, 0, size);
            break;
        }
        p += n;
        addr += (haddr_t)n;
        size -= (size_t)n;
    }
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t size, haddr_t addr) {
    while (size > 0) {
        ssize_t n = pwrite(fd, p, size, (off_t)addr);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return -1;
        }
        p += n;
        addr += (haddr_t)n;
        size -= (size_t)n;
    }
    return 0;
}

static herr_t d_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf) {
    (void)type;
    (void)dxpl;
    dfile *f = (dfile *)file;
    if (!in_space(f, addr, size, "write")) return -1;
    const unsigned char *p = buf;
    haddr_t end = addr + size;
    size_t whole = size & ~(size_t)(OIALR_VFD_ALIGN - 1);
    if (f->dfd >= 0 && f->direct && size >= OIALR_VFD_MIN_DIRECT && addr % OIALR_VFD_ALIGN == 0 &&
        (uintptr_t)p % OIALR_VFD_ALIGN == 0) {
        if (write_all(f->dfd, p, whole, addr) == 0) {
            f->direct_bytes += whole;
            p += whole;
            addr += whole;
            size -= whole;
        } else if (errno == EINVAL) {
            /* the filesystem takes the flag at open but not the write: buffered from now on */
            close(f->dfd);
            f->dfd = -1;
        } else {
            FAIL_ERRNO(H5E_IO, H5E_WRITEERROR, "cannot write the file");
            return -1;
        }
    }
    if (size > 0 && write_all(f->fd, p, size, addr) < 0) {
        FAIL_ERRNO(H5E_IO, H5E_WRITEERROR, "cannot write the file");
        return -1;
    }
    if (end > f->eof) f->eof = end;
    return 0;
}

static herr_t d_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing) {
    (void)dxpl;
    (void)closing;
    dfile *f = (dfile *)file;
    if (f->eoa == f->eof) return 0;
    if (ftruncate(f->fd, (off_t)f->eoa) < 0) {
        FAIL_ERRNO(H5E_IO, H5E_SEEKERROR, "cannot set the file's size");
        return -1;
    }
    f->eof = f->eoa;
    return 0;
}

static herr_t d_lock(H5FD_t *file, hbool_t rw) {
    if (flock(((dfile *)file)->fd, (rw ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) return 0;
    if (errno == ENOSYS) return 0; /* a filesystem without flock: no lock, as HDF5's best effort */
    FAIL_ERRNO(H5E_FILE, H5E_CANTLOCKFILE, "unable to lock the file");
    return -1;
}

static herr_t d_unlock(H5FD_t *file) {
    if (flock(((dfile *)file)->fd, LOCK_UN) == 0 || errno == ENOSYS) return 0;
    FAIL_ERRNO(H5E_FILE, H5E_CANTUNLOCKFILE, "unable to unlock the file");
    return -1;
}

static const H5FD_class_t driver = {
    .name = "oialr_direct",
    .maxaddr = (haddr_t)INT64_MAX,
    .fc_degree = H5F_CLOSE_WEAK,
    .terminate = d_term,
    .open = d_open,
    .close = d_close,
    .cmp = d_cmp,
    .query = d_query,
    .get_eoa = d_get_eoa,
    .set_eoa = d_set_eoa,
    .get_eof = d_get_eof,
    .get_handle = d_get_handle,
    .read = d_read,
    .write = d_write,
    .truncate = d_truncate,
    .lock = d_lock,
    .unlock = d_unlock,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

herr_t oialr_vfd_set_fapl(hid_t fapl) {
    if (driver_id < 0 || H5Iis_valid(driver_id) <= 0) driver_id = H5FDregister(&driver);
    if (driver_id < 0) return -1;
    if (H5Pset_driver(fapl, driver_id, NULL) < 0) return -1;
    return H5Pset_alignment(fapl, OIALR_VFD_MIN_DIRECT, OIALR_VFD_ALIGN);
}

oialr_vfd_file *oialr_vfd_of(hid_t file) {
    hid_t fapl = H5Fget_access_plist(file);
    if (fapl < 0) return NULL;
    void *h = NULL;
    dfile *f = NULL;
    if (driver_id >= 0 && H5Pget_driver(fapl) == driver_id && H5Fget_vfd_handle(file, fapl, &h) >= 0 && h)
        f = (dfile *)((char *)h - offsetof(dfile, fd)); /* get_handle gives &fd */
    H5Pclose(fapl);
    return f;
}

uint64_t oialr_vfd_direct_bytes(const oialr_vfd_file *f) {
    return f ? f->direct_bytes : 0;
}

void oialr_vfd_set_direct(oialr_vfd_file *f, int on) {
    if (f) f->direct = on;
}
