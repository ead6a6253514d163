/*
 * trajectory_file.c — the life cycle of a trajectory handle, shared by the
 * writer (trajectory_write.c) and the reader (trajectory_read.c):
 * allocation and teardown, the layer table, file/group/dataset access
 * properties, the event compound types, the writer lock, publishing a new
 * file under its path, and flush/close/discard.
 *
 * A writer holds an OFD byte-range lock far beyond the data (Linux OFD
 * locks do not interact with the flock() HDF5 uses), so readers and
 * RECOVER can tell a running writer from a killed one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* F_OFD_SETLK */
#endif
#include "trajectory_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The byte the writer lock covers: far past any data. */
#define LOCK_OFFSET ((off_t)1 << 40)

// ----------------------------------------------------------------------------
// allocation and teardown

oialr_traj *traj_new(const char *path) {
    oialr_traj *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->path = h5u_strdup(path);
    if (!t->path) {
        free(t);
        return NULL;
    }
    t->file = t->gmetrics = t->dmstep = t->devents = t->tev_file = t->tev_mem = H5I_INVALID_HID;
    t->gckpt = t->dslot = H5I_INVALID_HID;
    t->lockfd = -1;
    t->cur_slot = t->target_slot = -1;
    t->info.path = t->path;
    t->info.command_line = "";
    return t;
}

void traj_free(oialr_traj *t) {
    for (int i = 0; i < t->nlayers; i++) {
        tlayer *l = &t->layers[i];
        h5u_close(&l->dw);
        h5u_close(&l->ds);
        h5u_close(&l->dr);
        traj_close_factors(l);
        h5u_close(&l->grp);
        free(l->steps);
        free(l->ranks);
        free(l->bases);
        free(l->fbuf);
    }
    free(t->layers);
    for (int i = 0; i < t->ncol; i++) {
        h5u_close(&t->dcol[i]);
        free(t->colnames[i]);
    }
    free(t->dcol);
    free(t->colnames);
    for (int i = 0; i < t->nck; i++) h5u_close(&t->ck[i].d);
    free(t->ck);
    h5u_close(&t->dmstep);
    h5u_close(&t->gmetrics);
    h5u_close(&t->devents);
    h5u_close(&t->tev_file);
    h5u_close(&t->tev_mem);
    h5u_close(&t->dslot);
    h5u_close(&t->gckpt);
    h5u_close(&t->file);
    if (t->lockfd >= 0) close(t->lockfd);
    /* a temporary file left here holds data that could not be published:
     * its name is in the error message, and it is kept */
    oialr_output_release(&t->out);
    free(t->cmdline);
    free(t->path);
    free(t);
}

/* A fresh, empty layer slot at t->layers[t->nlayers] (not yet counted);
 * NULL when out of memory. */
tlayer *traj_new_layer(oialr_traj *t) {
    if (t->nlayers == t->caplayers) {
        int nc = t->caplayers ? 2 * t->caplayers : 16;
        tlayer *nl = realloc(t->layers, (size_t)nc * sizeof *nl);
        if (!nl) return NULL;
        t->layers = nl;
        t->caplayers = nc;
    }
    tlayer *l = &t->layers[t->nlayers];
    memset(l, 0, sizeof *l);
    l->grp = l->dw = l->ds = l->dr = H5I_INVALID_HID;
    l->dbasis = l->dsigma = l->du = l->dv = l->dbstep = H5I_INVALID_HID;
    l->raw = -1;
    l->fbasis = -1;
    return l;
}

void traj_close_factors(tlayer *l) {
    h5u_close(&l->dbasis);
    h5u_close(&l->dsigma);
    h5u_close(&l->du);
    h5u_close(&l->dv);
    h5u_close(&l->dbstep);
}

int traj_layer_grow(tlayer *l, int64_t n) {
    if (n <= l->cap && (l->pub.factor_capacity <= 0 || l->bases)) return 0;
    int64_t nc = l->cap ? l->cap : 64;
    while (nc < n) nc *= 2;
    int64_t *s = realloc(l->steps, (size_t)nc * sizeof *s);
    if (!s) return -1;
    l->steps = s;
    int32_t *r = realloc(l->ranks, (size_t)nc * sizeof *r);
    if (!r) return -1;
    l->ranks = r;
    if (l->pub.factor_capacity > 0) {
        int32_t *b = realloc(l->bases, (size_t)nc * sizeof *b);
        if (!b) return -1;
        l->bases = b;
        l->pub.bases = b;
    }
    l->cap = nc;
    l->pub.steps = l->steps;
    l->pub.ranks = l->ranks;
    return 0;
}

// ----------------------------------------------------------------------------
// access properties

/* Writers use the direct-I/O driver (vfd.h), readers the default one. */
hid_t traj_file_fapl(int writer) {
    hid_t p = H5Pcreate(H5P_FILE_ACCESS);
    if (p < 0) return p;
    if (H5Pset_libver_bounds(p, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0 ||
        H5Pset_fclose_degree(p, H5F_CLOSE_STRONG) < 0 || (writer && oialr_vfd_set_fapl(p) < 0)) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

hid_t traj_order_gcpl(void) {
    hid_t p = H5Pcreate(H5P_GROUP_CREATE);
    if (p >= 0 && H5Pset_link_creation_order(p, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

/* Chunk cache off for weights: a snapshot is one whole chunk, written or
 * read once, and caching 1 MiB per layer is wasted memory. */
hid_t traj_weight_dapl(void) {
    hid_t p = H5Pcreate(H5P_DATASET_ACCESS);
    if (p >= 0 && H5Pset_chunk_cache(p, H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 0, H5D_CHUNK_CACHE_W0_DEFAULT) < 0) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

// ----------------------------------------------------------------------------
// event compound types

static const char *const event_names[OIALR_EVENT_NKINDS] = {"switch", "rotate", "truncate"};

const char *oialr_traj_event_kind_name(int kind) {
    return kind >= 0 && kind < OIALR_EVENT_NKINDS ? event_names[kind] : "unknown";
}

int traj_check_event(const char *path, const oialr_traj_event *ev) {
    if (ev->kind >= 0 && ev->kind < OIALR_EVENT_NKINDS) return OIALR_OK;
    return oialr_seterr(OIALR_ERR_ARG, "%s: event kind %d is not switch/rotate/truncate", path, (int)ev->kind);
}

static hid_t event_enum(hid_t base) {
    hid_t e = H5Tenum_create(base);
    if (e < 0) return e;
    for (int i = 0; i < OIALR_EVENT_NKINDS; i++) {
        long long v = i;
        /* value in the base type's memory representation */
        int8_t v8 = (int8_t)v;
        int32_t v32 = (int32_t)v;
        const void *pv = H5Tget_size(base) == 1 ? (const void *)&v8 : (const void *)&v32;
        if (H5Tenum_insert(e, event_names[i], pv) < 0) {
            H5Tclose(e);
            return H5I_INVALID_HID;
        }
    }
    return e;
}

/* File: packed, little-endian; memory: struct oialr_traj_event. */
int traj_event_types(oialr_traj *t) {
    hid_t s = H5I_INVALID_HID, en = H5I_INVALID_HID;
    int rc = OIALR_ERR_HDF5;
    if ((s = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(s, OIALR_TRAJ_NAME_MAX) < 0 ||
        H5Tset_strpad(s, H5T_STR_NULLPAD) < 0)
        goto done;
    if ((en = event_enum(H5T_STD_I8LE)) < 0) goto done;
    size_t off = 0;
    if ((t->tev_file = H5Tcreate(H5T_COMPOUND, 8 + OIALR_TRAJ_NAME_MAX + 1 + 8 + 4 + 4)) < 0) goto done;
    if (H5Tinsert(t->tev_file, "step", off, H5T_STD_I64LE) < 0) goto done;
    off += 8;
    if (H5Tinsert(t->tev_file, "layer", off, s) < 0) goto done;
    off += OIALR_TRAJ_NAME_MAX;
    if (H5Tinsert(t->tev_file, "kind", off, en) < 0) goto done;
    off += 1;
    if (H5Tinsert(t->tev_file, "stability", off, H5T_IEEE_F64LE) < 0) goto done;
    off += 8;
    if (H5Tinsert(t->tev_file, "rank_before", off, H5T_STD_I32LE) < 0) goto done;
    off += 4;
    if (H5Tinsert(t->tev_file, "rank_after", off, H5T_STD_I32LE) < 0) goto done;
    h5u_close(&en);
    if ((en = event_enum(H5T_NATIVE_INT32)) < 0) goto done;
    if ((t->tev_mem = H5Tcreate(H5T_COMPOUND, sizeof(oialr_traj_event))) < 0) goto done;
    if (H5Tinsert(t->tev_mem, "step", HOFFSET(oialr_traj_event, step), H5T_NATIVE_INT64) < 0 ||
        H5Tinsert(t->tev_mem, "layer", HOFFSET(oialr_traj_event, layer), s) < 0 ||
        H5Tinsert(t->tev_mem, "kind", HOFFSET(oialr_traj_event, kind), en) < 0 ||
        H5Tinsert(t->tev_mem, "stability", HOFFSET(oialr_traj_event, stability), H5T_NATIVE_DOUBLE) < 0 ||
        H5Tinsert(t->tev_mem, "rank_before", HOFFSET(oialr_traj_event, rank_before), H5T_NATIVE_INT32) < 0 ||
        H5Tinsert(t->tev_mem, "rank_after", HOFFSET(oialr_traj_event, rank_after), H5T_NATIVE_INT32) < 0)
        goto done;
    rc = OIALR_OK;
done:
    if (rc) h5u_err(t->path, rc, "cannot build the event type");
    h5u_close(&en);
    h5u_close(&s);
    return rc;
}

// ----------------------------------------------------------------------------
// the writer lock, publishing, identity

/* fcntl(fd, cmd) on the writer's byte, LOCK_OFFSET, with a lock of `type`;
 * *fl gets the answer of F_OFD_GETLK. */
static int writer_byte(int fd, int cmd, short type, struct flock *fl) {
    memset(fl, 0, sizeof *fl);
    fl->l_type = type;
    fl->l_whence = SEEK_SET;
    fl->l_start = LOCK_OFFSET;
    fl->l_len = 1;
    return fcntl(fd, cmd, fl);
}

/* Writer lock: an OFD write lock on one byte far past the data, on the file
 * at `file` (the temporary name of a new trajectory, else its path). */
int traj_lock_take(oialr_traj *t, const char *file) {
    t->lockfd = open(file, O_RDWR | O_CLOEXEC);
    if (t->lockfd < 0) return oialr_seterr(OIALR_ERR_IO, "%s: cannot open for locking: %s", t->path, strerror(errno));
    struct stat st;
    if (fstat(t->lockfd, &st) == 0) {
        t->dev = st.st_dev;
        t->ino = st.st_ino;
    }
    struct flock fl;
    if (writer_byte(t->lockfd, F_OFD_SETLK, F_WRLCK, &fl) < 0) {
        int e = errno;
        close(t->lockfd);
        t->lockfd = -1;
        if (e == EAGAIN || e == EACCES)
            return oialr_seterr(OIALR_ERR_LOCKED, "%s: another process is writing this trajectory", t->path);
        /* Filesystems without OFD locks: record without the liveness hint. */
    }
    return OIALR_OK;
}

/* 1 if some process holds the writer lock, 0 if not (or unknown). */
int traj_lock_held(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct flock fl;
    int held = writer_byte(fd, F_OFD_GETLK, F_RDLCK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return held;
}

/* Move a new trajectory from its temporary name to its path, once: at the
 * first snapshot or flush, so that a run failing before it leaves whatever
 * stood at the path untouched. The file being replaced (--force) is read-
 * locked on the writer's byte meanwhile: if another writer still records
 * it, nothing is replaced and this run's data stay in the temporary file. */
int traj_publish(oialr_traj *t) {
    if (!t->out.tmp) return OIALR_OK;
    int oldfd = -1, rc = OIALR_OK;
    if (t->out.force && (oldfd = open(t->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) >= 0) {
        struct flock fl;
        if (writer_byte(oldfd, F_OFD_SETLK, F_RDLCK, &fl) < 0 && (errno == EAGAIN || errno == EACCES))
            rc = oialr_seterr(OIALR_ERR_LOCKED,
                              "%s: another process started writing this trajectory during the run; it was left "
                              "alone, and this run's data are in %s",
                              t->path, t->out.tmp);
    }
    if (!rc) rc = oialr_output_commit(&t->out);
    if (oldfd >= 0) close(oldfd);
    if (rc) t->publish_failed = 1;
    return rc;
}

/* OIALR_OK if the path still names the file this writer writes. */
static int check_identity(oialr_traj *t) {
    struct stat st;
    if (t->out.tmp || t->lockfd < 0) return OIALR_OK;
    if (stat(t->path, &st) == 0 && st.st_dev == t->dev && st.st_ino == t->ino) return OIALR_OK;
    return oialr_seterr(OIALR_ERR_IO,
                        "%s: the file was removed or replaced by another process while this run wrote it; what "
                        "this run recorded is not at that path",
                        t->path);
}

// ----------------------------------------------------------------------------
// flush, close, discard

int oialr_traj_flush(oialr_traj *t) {
    OIALR_ASSERT(t);
    if (!t->writable) return OIALR_OK;
    int rc = OIALR_OK;
    h5u_quiet q = h5u_quiet_begin();
    TRY_H5(H5Fflush(t->file, H5F_SCOPE_GLOBAL), OIALR_ERR_IO, "cannot flush");
    rc = traj_publish(t);
done:
    h5u_quiet_end(q);
    return rc;
}

static int close_file(oialr_traj *t, int keep);

int oialr_traj_close(oialr_traj *t) { return close_file(t, 1); }

int oialr_traj_discard(oialr_traj *t) { return close_file(t, 0); }

/* Close; keep: complete and publish a new file (close), or else remove it
 * if it was never published (discard). */
static int close_file(oialr_traj *t, int keep) {
    if (!t) return OIALR_OK;
    int rc = OIALR_OK;
    h5u_quiet q = h5u_quiet_begin();
    if (keep && t->writable && t->file >= 0) {
        /* phase 1 only: still create the rest, so the file is complete */
        if (!t->recording) rc = traj_start(t);
        if (!rc && H5Fflush(t->file, H5F_SCOPE_GLOBAL) < 0) rc = h5u_err(t->path, OIALR_ERR_IO, "cannot flush");
        if (!rc) rc = traj_publish(t);
    }
    hid_t f = t->file;
    t->file = H5I_INVALID_HID;
    /* close the objects, then the file (strong close degree) */
    int closerc = 0;
    if (f >= 0) {
        int lrc = OIALR_OK;
        for (int i = 0; i < t->nlayers; i++) {
            tlayer *l = &t->layers[i];
            h5u_close(&l->dw), h5u_close(&l->ds), h5u_close(&l->dr), h5u_close(&l->grp);
            traj_close_factors(l);
        }
        (void)lrc;
        closerc = H5Fclose(f) < 0;
        if (closerc && !rc) rc = h5u_err(t->path, t->writable ? OIALR_ERR_IO : OIALR_ERR_HDF5, "cannot close");
    }
    if (!rc && t->writable) rc = check_identity(t);
    /* never published: nothing worth keeping, unless publishing failed */
    if (t->out.tmp && !t->publish_failed) oialr_output_abort(&t->out);
    traj_free(t);
    h5u_quiet_end(q);
    return rc;
}
