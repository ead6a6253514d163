/*
 * trajectory.c — the HDF5 trajectory writer and reader (oialr/trajectory.h).
 *
 * HDF5 usage in one place:
 *   - files are created with libver bounds (latest, latest): superblock v3,
 *     needed for SWMR; every object is created in phase 1, then
 *     H5Fstart_swmr_write;
 *   - on disk explicit little-endian types (H5T_IEEE_F32LE ...), in memory
 *     native types; extendible chunked datasets, chunk = one snapshot;
 *   - every HDF5 call is checked; the automatic error printing is switched
 *     off while inside a public function and restored on the way out, and a
 *     failure becomes an OIALR_ERR_* code plus one line naming the file, the
 *     object and the innermost HDF5 message;
 *   - a writer holds an OFD byte-range lock far beyond the data (Linux OFD
 *     locks do not interact with the flock() HDF5 uses), so readers and
 *     RECOVER can tell a running writer from a killed one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* F_OFD_SETLK */
#endif
#include "oialr/trajectory.h"

#include <hdf5.h>

#include "base/hot.h"
#include "internal.h"
#include "vfd.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// state

enum { CK_ARRAY = 0, CK_I64 = 1, CK_U64 = 2, CK_AI64 = 3 };

typedef struct tlayer {
    oialr_traj_layer pub;
    hid_t grp, dw, ds, dr; /* group, weight, step, rank */
    int64_t *steps;
    int32_t *ranks;
    int64_t cap;
    int warned_nonfinite;
    int raw; /* snapshots go in as raw chunks (-1: not known yet) */
} tlayer;

typedef struct ckitem {
    char name[OIALR_TRAJ_NAME_MAX];
    int type;
    size_t n; /* floats per slot (arrays) */
    hid_t d;
} ckitem;

struct oialr_traj {
    char *path;
    char *cmdline;
    hid_t file;
    oialr_vfd_file *vfd; /* the writer's driver state (NULL for readers) */
    int writable;  /* created or opened for append */
    int recording; /* phase 2 (SWMR writing, or plain when unavailable) */
    int compress;
    int lockfd;
    dev_t dev; /* the file's identity, to notice it being removed or replaced */
    ino_t ino;
    oialr_output out; /* a new file under its temporary name until published */
    int publish_failed; /* out.tmp then holds data that must not be removed */
    oialr_traj_info info;

    tlayer *layers;
    int nlayers, caplayers;

    hid_t gmetrics, dmstep;
    hid_t *dcol;
    char **colnames;
    int ncol;

    hid_t devents, tev_file, tev_mem;

    hid_t gckpt, dslot;
    ckitem *ck;
    int nck, capck;
    int64_t cur_slot;    /* -1: none committed */
    int64_t target_slot; /* -1: no checkpoint being written */
};

#define LOCK_OFFSET ((off_t)1 << 40)

// ----------------------------------------------------------------------------
// HDF5 errors: silence, capture the innermost message, classify

typedef struct h5quiet {
    H5E_auto2_t fn;
    void *data;
} h5quiet;

static h5quiet quiet_begin(void) {
    static int once;
    if (!once) {
        /* HDF5 1.10 crashes in its atexit handler when a file whose writes
         * failed (disk full) is still open; without the handler a process
         * exits cleanly. Only effective before HDF5's first call. */
        once = 1;
        H5dont_atexit();
    }
    h5quiet q = {NULL, NULL};
    H5Eget_auto2(H5E_DEFAULT, &q.fn, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}

static void quiet_end(h5quiet q) { H5Eset_auto2(H5E_DEFAULT, q.fn, q.data); }

typedef struct h5stack {
    char last[240];
    int truncated, openwrite, locked, signature;
} h5stack;

static herr_t stack_cb(unsigned n, const H5E_error2_t *e, void *ud) {
    (void)n;
    h5stack *s = ud;
    if (!e->desc) return 0;
    /* system errors: keep only the system's message ("File too large") */
    const char *em = strstr(e->desc, "error message = '");
    if (em) {
        em += strlen("error message = '");
        const char *end = strchr(em, '\'');
        int len = end ? (int)(end - em) : (int)strlen(em);
        snprintf(s->last, sizeof s->last, "%.*s", len, em);
    } else {
        snprintf(s->last, sizeof s->last, "%s", e->desc);
    }
    for (char *c = s->last; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    if (strstr(e->desc, "truncated")) s->truncated = 1;
    if (strstr(e->desc, "already open for write") || strstr(e->desc, "h5clear")) s->openwrite = 1;
    if (strstr(e->desc, "lock")) s->locked = 1;
    if (strstr(e->desc, "signature")) s->signature = 1;
    return 0;
}

/* Must be called right after the failing HDF5 call (the next call clears
 * the stack). */
static h5stack stack_get(void) {
    h5stack s;
    memset(&s, 0, sizeof s);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, stack_cb, &s);
    /* read: drop the records. A thread-safe HDF5 frees a thread's stack at
     * its exit but not the records on it (the recorder's writer thread). */
    H5Eclear2(H5E_DEFAULT);
    return s;
}

static int h5err(const char *path, int code, const char *fmt, ...) OIALR_PRINTF(3, 4);
static int h5err(const char *path, int code, const char *fmt, ...) {
    h5stack s = stack_get();
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (s.last[0])
        return oialr_seterr(code, "%s: %s (HDF5: %s)", path, what, s.last);
    return oialr_seterr(code, "%s: %s", path, what);
}

#define TRY_H5(expr, code, ...)                                                                   \
    do {                                                                                           \
        if ((expr) < 0) {                                                                          \
            rc = h5err(t->path, code, __VA_ARGS__);                                                \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static void hclose(hid_t *id) {
    if (*id < 0) return;
    H5E_BEGIN_TRY {
        switch (H5Iget_type(*id)) {
        case H5I_FILE: H5Fclose(*id); break;
        case H5I_GROUP: H5Gclose(*id); break;
        case H5I_DATASET: H5Dclose(*id); break;
        case H5I_DATATYPE: H5Tclose(*id); break;
        case H5I_DATASPACE: H5Sclose(*id); break;
        case H5I_ATTR: H5Aclose(*id); break;
        case H5I_GENPROP_LST: H5Pclose(*id); break;
        default: break;
        }
    }
    H5E_END_TRY;
    *id = H5I_INVALID_HID;
}

// ----------------------------------------------------------------------------
// small helpers: names, attributes, datasets

char *traj_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static int check_name(const oialr_traj *t, const char *what, const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= OIALR_TRAJ_NAME_MAX)
        return oialr_seterr(OIALR_ERR_ARG, "%s: %s name must have 1..%d characters", t->path, what,
                            OIALR_TRAJ_NAME_MAX - 1);
    if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return oialr_seterr(OIALR_ERR_ARG, "%s: %s name '%s' may not contain '/' or be '.'/'..'", t->path,
                            what, name);
    return OIALR_OK;
}

static hid_t str_type(void) {
    hid_t ty = H5Tcopy(H5T_C_S1);
    if (ty < 0) return ty;
    if (H5Tset_size(ty, H5T_VARIABLE) < 0 || H5Tset_cset(ty, H5T_CSET_UTF8) < 0) {
        H5Tclose(ty);
        return H5I_INVALID_HID;
    }
    return ty;
}

/* Variable-length UTF-8 string attribute (h5py reads it as str). */
static herr_t attr_put_str(hid_t loc, const char *name, const char *val) {
    hid_t ty = H5I_INVALID_HID, sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    herr_t r = -1;
    if (H5Aexists(loc, name) > 0 && H5Adelete(loc, name) < 0) goto done;
    if ((ty = str_type()) < 0) goto done;
    if ((sp = H5Screate(H5S_SCALAR)) < 0) goto done;
    if ((a = H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (H5Awrite(a, ty, &val) < 0) goto done;
    r = 0;
done:
    hclose(&a);
    hclose(&sp);
    hclose(&ty);
    return r;
}

static herr_t attr_put_int(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *v, hsize_t n) {
    hid_t sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    herr_t r = -1;
    if ((sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR)) < 0) goto done;
    if ((a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (H5Awrite(a, mtype, v) < 0) goto done;
    r = 0;
done:
    hclose(&a);
    hclose(&sp);
    return r;
}

/* Read a string attribute (variable or fixed length) into a malloc'd
 * string. Returns 1 if found, 0 if absent, -1 on error. */
static int attr_get_str(hid_t loc, const char *name, char **out) {
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    int r = -1;
    *out = NULL;
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) return -1;
    if (ex == 0) return 0;
    if ((a = H5Aopen(loc, name, H5P_DEFAULT)) < 0) goto done;
    if ((ft = H5Aget_type(a)) < 0) goto done;
    if (H5Tget_class(ft) != H5T_STRING) goto done;
    if ((sp = H5Aget_space(a)) < 0 || H5Sget_simple_extent_npoints(sp) != 1) goto done;
    htri_t vl = H5Tis_variable_str(ft);
    if (vl < 0) goto done;
    if (vl) {
        char *s = NULL;
        if ((mt = str_type()) < 0) goto done;
        if (H5Aread(a, mt, &s) < 0) goto done;
        *out = traj_strdup(s ? s : "");
        H5free_memory(s);
    } else {
        size_t sz = H5Tget_size(ft);
        if ((mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(mt, sz + 1) < 0) goto done;
        char *s = calloc(1, sz + 1);
        if (!s) goto done;
        if (H5Aread(a, mt, s) < 0) {
            free(s);
            goto done;
        }
        *out = s;
    }
    r = *out ? 1 : -1;
done:
    hclose(&sp);
    hclose(&mt);
    hclose(&ft);
    hclose(&a);
    return r;
}

/* Read an integer attribute of n elements (0: scalar, read 1) as mtype.
 * Returns 1 found, 0 absent, -1 error / wrong size. */
static int attr_get_ints(hid_t loc, const char *name, hid_t mtype, void *v, hssize_t maxn, hssize_t *got) {
    hid_t a = H5I_INVALID_HID, sp = H5I_INVALID_HID, ft = H5I_INVALID_HID;
    int r = -1;
    htri_t ex = H5Aexists(loc, name);
    if (ex <= 0) return ex < 0 ? -1 : 0;
    if ((a = H5Aopen(loc, name, H5P_DEFAULT)) < 0) goto done;
    if ((ft = H5Aget_type(a)) < 0 || H5Tget_class(ft) != H5T_INTEGER) goto done;
    if ((sp = H5Aget_space(a)) < 0) goto done;
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (np < 1 || np > maxn) goto done;
    if (H5Aread(a, mtype, v) < 0) goto done;
    if (got) *got = np;
    r = 1;
done:
    hclose(&ft);
    hclose(&sp);
    hclose(&a);
    return r;
}

/* An extendible dataset [0, d1, d2][:rank], chunk (1|c0, d1, d2); no fill
 * value for chunks of one row. */
static hid_t make_ext(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *fixed, hsize_t chunk0,
                      int compress, hid_t dapl) {
    hsize_t dims[3] = {0, 0, 0}, maxd[3] = {H5S_UNLIMITED, 0, 0}, chunk[3] = {chunk0, 0, 0};
    hid_t sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
    for (int i = 1; i < rank; i++) dims[i] = maxd[i] = chunk[i] = fixed[i - 1];
    if ((sp = H5Screate_simple(rank, dims, maxd)) < 0) goto done;
    if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0) goto done;
    if (H5Pset_chunk(dcpl, rank, chunk) < 0) goto done;
    /* A chunk of one row is always written whole: with a fill value to
     * honour, HDF5 would allocate it, fill it, copy the row in and free it
     * for every snapshot (a third of the writer's time); without, it writes
     * the caller's buffer directly. Rows are only read once their step is
     * published, so no unwritten row is ever seen. */
    if (chunk0 == 1 && H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0) goto done;
    if (compress > 0 && H5Zfilter_avail(H5Z_FILTER_SHUFFLE) > 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        if (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, (unsigned)compress) < 0) goto done;
    }
    d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, dapl);
done:
    hclose(&dcpl);
    hclose(&sp);
    return d;
}

/* Fixed-size dataset, space allocated at creation (no file-space allocation
 * once SWMR writing runs). */
static hid_t make_fixed(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims) {
    hid_t sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
    if ((sp = H5Screate_simple(rank, dims, NULL)) < 0) goto done;
    if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0) goto done;
    if (H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0) goto done;
    if (H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0) goto done;
    d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
done:
    hclose(&dcpl);
    hclose(&sp);
    return d;
}

/* Current first dimension of a dataset, -1 on error. */
static int64_t extent0(hid_t d) {
    hid_t sp = H5Dget_space(d);
    if (sp < 0) return -1;
    hsize_t dims[H5S_MAX_RANK];
    int r = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    return r >= 1 ? (int64_t)dims[0] : -1;
}

/* Select rows [at, at+n) of a dataset of rank 1..3 (the dims after the
 * first taken from the dataset), extending it first if grow: *fs is the file
 * space with the selection, *ms a memory space of the selection's own shape
 * (with another rank HDF5 maps every element to its chunk one by one, 20x
 * slower). *empty is set when the selection has no element. */
static herr_t select_rows(hid_t d, int64_t at, int64_t n, int grow, hid_t *fs, hid_t *ms, int *empty) {
    hsize_t dims[3], start[3] = {(hsize_t)at, 0, 0}, count[3];
    *empty = 0;
    if ((*fs = H5Dget_space(d)) < 0) return -1;
    int rank = H5Sget_simple_extent_dims(*fs, dims, NULL);
    if (rank < 1 || rank > 3) return -1;
    if (dims[0] < (hsize_t)(at + n)) {
        if (!grow) return -1;
        dims[0] = (hsize_t)(at + n);
        hclose(fs);
        if (H5Dset_extent(d, dims) < 0) return -1;
        if ((*fs = H5Dget_space(d)) < 0) return -1;
    }
    hsize_t total = 1;
    count[0] = (hsize_t)n;
    for (int i = 1; i < rank; i++) count[i] = dims[i];
    for (int i = 0; i < rank; i++) total *= count[i];
    if (total == 0) {
        *empty = 1;
        return 0;
    }
    if (H5Sselect_hyperslab(*fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) return -1;
    if ((*ms = H5Screate_simple(rank, count, NULL)) < 0) return -1;
    return 0;
}

/* Write rows [at, at+n), extending the dataset first if grow. */
static herr_t write_rows(hid_t d, hid_t mtype, int64_t at, int64_t n, const void *buf, int grow) {
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    int empty;
    herr_t r = select_rows(d, at, n, grow, &fs, &ms, &empty);
    if (r == 0 && !empty) r = H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    hclose(&ms);
    hclose(&fs);
    return r;
}

static herr_t read_rows(hid_t d, hid_t mtype, int64_t at, int64_t n, void *buf) {
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    int empty;
    herr_t r = select_rows(d, at, n, 0, &fs, &ms, &empty);
    if (r == 0 && !empty) r = H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    hclose(&ms);
    hclose(&fs);
    return r;
}

/* Chunk cache off for weights: a snapshot is one whole chunk, written or
 * read once, and caching 1 MiB per layer is wasted memory. */
static hid_t weight_dapl(void) {
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
static int event_types(oialr_traj *t) {
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
    hclose(&en);
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
    if (rc) h5err(t->path, rc, "cannot build the event type");
    hclose(&en);
    hclose(&s);
    return rc;
}

// ----------------------------------------------------------------------------
// allocation and teardown

static oialr_traj *traj_new(const char *path) {
    oialr_traj *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->path = traj_strdup(path);
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

static void traj_free(oialr_traj *t) {
    for (int i = 0; i < t->nlayers; i++) {
        tlayer *l = &t->layers[i];
        hclose(&l->dw);
        hclose(&l->ds);
        hclose(&l->dr);
        hclose(&l->grp);
        free(l->steps);
        free(l->ranks);
    }
    free(t->layers);
    for (int i = 0; i < t->ncol; i++) {
        hclose(&t->dcol[i]);
        free(t->colnames[i]);
    }
    free(t->dcol);
    free(t->colnames);
    for (int i = 0; i < t->nck; i++) hclose(&t->ck[i].d);
    free(t->ck);
    hclose(&t->dmstep);
    hclose(&t->gmetrics);
    hclose(&t->devents);
    hclose(&t->tev_file);
    hclose(&t->tev_mem);
    hclose(&t->dslot);
    hclose(&t->gckpt);
    hclose(&t->file);
    if (t->lockfd >= 0) close(t->lockfd);
    /* a temporary file left here holds data that could not be published:
     * its name is in the error message, and it is kept */
    oialr_output_release(&t->out);
    free(t->cmdline);
    free(t->path);
    free(t);
}

/* Writers use the direct-I/O driver (vfd.h), readers the default one. */
static hid_t file_fapl(int writer) {
    hid_t p = H5Pcreate(H5P_FILE_ACCESS);
    if (p < 0) return p;
    if (H5Pset_libver_bounds(p, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0 ||
        H5Pset_fclose_degree(p, H5F_CLOSE_STRONG) < 0 || (writer && oialr_vfd_set_fapl(p) < 0)) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

static hid_t order_gcpl(void) {
    hid_t p = H5Pcreate(H5P_GROUP_CREATE);
    if (p >= 0 && H5Pset_link_creation_order(p, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

/* Writer lock: an OFD write lock on one byte far past the data, on the file
 * at `file` (the temporary name of a new trajectory, else its path). */
static int lock_take(oialr_traj *t, const char *file) {
    t->lockfd = open(file, O_RDWR | O_CLOEXEC);
    if (t->lockfd < 0) return oialr_seterr(OIALR_ERR_IO, "%s: cannot open for locking: %s", t->path, strerror(errno));
    struct stat st;
    if (fstat(t->lockfd, &st) == 0) {
        t->dev = st.st_dev;
        t->ino = st.st_ino;
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = LOCK_OFFSET;
    fl.l_len = 1;
    if (fcntl(t->lockfd, F_OFD_SETLK, &fl) < 0) {
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
static int lock_held(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = LOCK_OFFSET;
    fl.l_len = 1;
    int held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return held;
}

/* Move a new trajectory from its temporary name to its path, once: at the
 * first snapshot or flush, so that a run failing before it leaves whatever
 * stood at the path untouched. The file being replaced (--force) is read-
 * locked on the writer's byte meanwhile: if another writer still records
 * it, nothing is replaced and this run's data stay in the temporary file. */
static int publish(oialr_traj *t) {
    if (!t->out.tmp) return OIALR_OK;
    int oldfd = -1, rc = OIALR_OK;
    if (t->out.force && (oldfd = open(t->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) >= 0) {
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_RDLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = LOCK_OFFSET;
        fl.l_len = 1;
        if (fcntl(oldfd, F_OFD_SETLK, &fl) < 0 && (errno == EAGAIN || errno == EACCES))
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
// writer, phase 1

void oialr_traj_options_default(oialr_traj_options *opt) {
    memset(opt, 0, sizeof *opt);
}

int oialr_traj_create(oialr_traj **out, const char *path, const oialr_traj_options *opt) {
    OIALR_ASSERT(out && path);
    oialr_traj_options def;
    if (!opt) {
        oialr_traj_options_default(&def);
        opt = &def;
    }
    *out = NULL;
    if (opt->compress < 0 || opt->compress > 9)
        return oialr_seterr(OIALR_ERR_ARG, "%s: compression level %d is not in 0..9", path, opt->compress);
    /* refuse before touching anything: a path that is not a regular file,
     * one that exists without force, one another writer is recording */
    int rc = oialr_output_check(path, opt->force);
    if (rc) return rc;
    if (lock_held(path))
        return oialr_seterr(OIALR_ERR_LOCKED, "%s: another process is writing this trajectory; nothing was changed",
                            path);
    oialr_traj *t = traj_new(path);
    if (!t) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
    h5quiet q = quiet_begin();
    hid_t fapl = H5I_INVALID_HID, gcpl = H5I_INVALID_HID, g = H5I_INVALID_HID;
    t->writable = 1;
    t->compress = opt->compress;
    t->cmdline = traj_strdup(opt->command_line ? opt->command_line : "");
    if (!t->cmdline) {
        rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    t->info.command_line = t->cmdline;
    t->info.format_version = OIALR_TRAJ_FORMAT_VERSION;
    t->info.seed = opt->seed;
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(t->info.created, sizeof t->info.created, "%Y-%m-%dT%H:%M:%SZ", &tmv);

    TRY_H5(fapl = file_fapl(1), OIALR_ERR_HDF5, "cannot set up file access");
    if ((rc = oialr_output_begin(&t->out, path, opt->force))) goto done;
    /* the empty temporary file is this run's own */
    t->file = H5Fcreate(t->out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (t->file < 0) {
        h5stack s = stack_get();
        rc = oialr_seterr(s.locked ? OIALR_ERR_LOCKED : OIALR_ERR_IO, "%s: cannot create the file: %s", path,
                          s.last[0] ? s.last : "unknown HDF5 error");
        goto done;
    }
    if ((rc = lock_take(t, t->out.tmp))) goto done;
    t->vfd = oialr_vfd_of(t->file);
    int32_t ver = OIALR_TRAJ_FORMAT_VERSION;
    TRY_H5(attr_put_str(t->file, "format", OIALR_TRAJ_FORMAT), OIALR_ERR_IO, "cannot write root attributes");
    TRY_H5(attr_put_int(t->file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &ver, 0), OIALR_ERR_IO,
            "cannot write root attributes");
    TRY_H5(attr_put_str(t->file, "created", t->info.created), OIALR_ERR_IO, "cannot write root attributes");
    TRY_H5(attr_put_int(t->file, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &opt->seed, 0), OIALR_ERR_IO,
            "cannot write root attributes");
    TRY_H5(attr_put_str(t->file, "command_line", t->cmdline), OIALR_ERR_IO, "cannot write root attributes");
    TRY_H5(attr_put_str(t->file, "library", "liboialr " OIALR_VERSION_STRING), OIALR_ERR_IO,
            "cannot write root attributes");
    TRY_H5(g = H5Gcreate2(t->file, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /config");
    hclose(&g);
    TRY_H5(gcpl = order_gcpl(), OIALR_ERR_HDF5, "cannot set up /layers");
    TRY_H5(g = H5Gcreate2(t->file, "layers", H5P_DEFAULT, gcpl, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /layers");
    hclose(&g);
    if ((rc = event_types(t))) goto done;
done:
    hclose(&g);
    hclose(&gcpl);
    hclose(&fapl);
    if (rc) {
        oialr_output o = t->out; /* the temporary file: the one thing made here */
        memset(&t->out, 0, sizeof t->out);
        traj_free(t);
        oialr_output_abort(&o);
    } else {
        *out = t;
    }
    quiet_end(q);
    return rc;
}

static int need_define(oialr_traj *t, const char *what) {
    if (!t->writable) return oialr_seterr(OIALR_ERR_ARG, "%s: %s: the trajectory is open read-only", t->path, what);
    if (t->recording)
        return oialr_seterr(OIALR_ERR_ARG, "%s: %s after recording started (SWMR allows no new objects)",
                            t->path, what);
    return OIALR_OK;
}

int oialr_traj_set_config(oialr_traj *t, const char *key, const char *value) {
    OIALR_ASSERT(t && key && value);
    int rc = need_define(t, "cannot set a config attribute");
    if (rc) return rc;
    if (!key[0]) return oialr_seterr(OIALR_ERR_ARG, "%s: empty config key", t->path);
    h5quiet q = quiet_begin();
    hid_t g = H5I_INVALID_HID;
    TRY_H5(g = H5Gopen2(t->file, "config", H5P_DEFAULT), OIALR_ERR_HDF5, "cannot open /config");
    TRY_H5(attr_put_str(g, key, value), OIALR_ERR_IO, "cannot write config attribute '%s'", key);
done:
    hclose(&g);
    quiet_end(q);
    return rc;
}

/* A fresh, empty layer slot at t->layers[t->nlayers] (not yet counted);
 * NULL when out of memory. */
static tlayer *new_layer(oialr_traj *t) {
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
    l->raw = -1;
    return l;
}

int oialr_traj_declare_layer(oialr_traj *t, const char *name, int64_t rows, int64_t cols, const char *kind,
                             int ndim, const int64_t *shape, int *index) {
    OIALR_ASSERT(t);
    int rc = need_define(t, "cannot declare a layer");
    if (rc) return rc;
    if ((rc = check_name(t, "layer", name))) return rc;
    if (rows < 1 || cols < 1)
        return oialr_seterr(OIALR_ERR_ARG, "%s: layer '%s': bad shape %lldx%lld", t->path, name, (long long)rows,
                            (long long)cols);
    size_t bytes;
    if (oialr_mul_size((size_t)rows, (size_t)cols, &bytes) || oialr_mul_size(bytes, 4, &bytes) ||
        bytes >= ((size_t)1 << 32))
        return oialr_seterr(OIALR_ERR_OVERFLOW, "%s: layer '%s': %lldx%lld floats exceed one 4 GiB HDF5 chunk",
                            t->path, name, (long long)rows, (long long)cols);
    if (ndim < 0 || ndim > 4 || (ndim > 0 && !shape))
        return oialr_seterr(OIALR_ERR_ARG, "%s: layer '%s': bad original shape (ndim %d)", t->path, name, ndim);
    for (int i = 0; i < t->nlayers; i++)
        if (!strcmp(t->layers[i].pub.name, name))
            return oialr_seterr(OIALR_ERR_ARG, "%s: layer '%s' declared twice", t->path, name);
    tlayer *l = new_layer(t);
    if (!l) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    snprintf(l->pub.name, sizeof l->pub.name, "%s", name);
    snprintf(l->pub.kind, sizeof l->pub.kind, "%s", kind ? kind : "");
    l->pub.rows = rows;
    l->pub.cols = cols;
    if (ndim == 0 || !shape) {
        l->pub.ndim = 2;
        l->pub.shape[0] = rows;
        l->pub.shape[1] = cols;
    } else {
        l->pub.ndim = ndim;
        for (int i = 0; i < ndim; i++) l->pub.shape[i] = shape[i];
    }
    h5quiet q = quiet_begin();
    hid_t lay = H5I_INVALID_HID, dapl = H5I_INVALID_HID;
    hsize_t fixed[2] = {(hsize_t)rows, (hsize_t)cols};
    TRY_H5(lay = H5Gopen2(t->file, "layers", H5P_DEFAULT), OIALR_ERR_HDF5, "cannot open /layers");
    TRY_H5(l->grp = H5Gcreate2(lay, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create layer '%s'", name);
    TRY_H5(attr_put_str(l->grp, "kind", l->pub.kind), OIALR_ERR_IO, "layer '%s': cannot write attributes", name);
    TRY_H5(attr_put_int(l->grp, "shape", H5T_STD_I64LE, H5T_NATIVE_INT64, l->pub.shape, (hsize_t)l->pub.ndim),
            OIALR_ERR_IO, "layer '%s': cannot write attributes", name);
    TRY_H5(attr_put_int(l->grp, "rows", H5T_STD_I64LE, H5T_NATIVE_INT64, &rows, 0), OIALR_ERR_IO,
            "layer '%s': cannot write attributes", name);
    TRY_H5(attr_put_int(l->grp, "cols", H5T_STD_I64LE, H5T_NATIVE_INT64, &cols, 0), OIALR_ERR_IO,
            "layer '%s': cannot write attributes", name);
    TRY_H5(dapl = weight_dapl(), OIALR_ERR_HDF5, "cannot set up dataset access");
    TRY_H5(l->dw = make_ext(l->grp, "weight", H5T_IEEE_F32LE, 3, fixed, 1, t->compress, dapl), OIALR_ERR_IO,
            "layer '%s': cannot create the weight dataset", name);
    TRY_H5(l->ds = make_ext(l->grp, "step", H5T_STD_I64LE, 1, NULL, 256, 0, H5P_DEFAULT), OIALR_ERR_IO,
            "layer '%s': cannot create the step dataset", name);
    TRY_H5(l->dr = make_ext(l->grp, "rank", H5T_STD_I32LE, 1, NULL, 256, 0, H5P_DEFAULT), OIALR_ERR_IO,
            "layer '%s': cannot create the rank dataset", name);
    l->pub.steps = NULL;
    l->pub.ranks = NULL;
    if (index) *index = t->nlayers;
    t->nlayers++;
    t->info.nlayers = t->nlayers;
done:
    if (rc) {
        hclose(&l->dw);
        hclose(&l->ds);
        hclose(&l->dr);
        hclose(&l->grp);
    }
    hclose(&dapl);
    hclose(&lay);
    quiet_end(q);
    return rc;
}

int oialr_traj_declare_metrics(oialr_traj *t, const char *columns) {
    OIALR_ASSERT(t && columns);
    int rc = need_define(t, "cannot declare metrics");
    if (rc) return rc;
    if (t->gmetrics >= 0) return oialr_seterr(OIALR_ERR_ARG, "%s: metrics declared twice", t->path);
    /* split and validate first */
    int n = 1;
    for (const char *p = columns; *p; p++) n += *p == ',';
    char **names = calloc((size_t)n, sizeof *names);
    hid_t *d = malloc((size_t)n * sizeof *d);
    if (!names || !d) {
        free(names);
        free(d);
        return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    }
    for (int i = 0; i < n; i++) d[i] = H5I_INVALID_HID;
    h5quiet q = quiet_begin();
    hid_t gcpl = H5I_INVALID_HID;
    const char *p = columns;
    for (int i = 0; i < n; i++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char nm[OIALR_TRAJ_NAME_MAX];
        if (len == 0 || len >= sizeof nm) {
            rc = oialr_seterr(OIALR_ERR_ARG, "%s: bad metric column list '%s'", t->path, columns);
            goto done;
        }
        memcpy(nm, p, len);
        nm[len] = '\0';
        if ((rc = check_name(t, "metric", nm))) goto done;
        if (!strcmp(nm, "step")) {
            rc = oialr_seterr(OIALR_ERR_ARG, "%s: 'step' is always a metric column; do not declare it", t->path);
            goto done;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(names[j], nm)) {
                rc = oialr_seterr(OIALR_ERR_ARG, "%s: metric column '%s' declared twice", t->path, nm);
                goto done;
            }
        if (!(names[i] = traj_strdup(nm))) {
            rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
            goto done;
        }
        p = e ? e + 1 : p + len;
    }
    TRY_H5(gcpl = order_gcpl(), OIALR_ERR_HDF5, "cannot set up /metrics");
    TRY_H5(t->gmetrics = H5Gcreate2(t->file, "metrics", H5P_DEFAULT, gcpl, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /metrics");
    TRY_H5(attr_put_str(t->gmetrics, "columns", columns), OIALR_ERR_IO, "cannot write /metrics attributes");
    TRY_H5(t->dmstep = make_ext(t->gmetrics, "step", H5T_STD_I64LE, 1, NULL, 256, 0, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /metrics/step");
    for (int i = 0; i < n; i++)
        TRY_H5(d[i] = make_ext(t->gmetrics, names[i], H5T_IEEE_F64LE, 1, NULL, 256, 0, H5P_DEFAULT),
                OIALR_ERR_IO, "cannot create /metrics/%s", names[i]);
    t->colnames = names;
    t->dcol = d;
    t->ncol = n;
    t->info.ncolumns = n;
    names = NULL;
    d = NULL;
done:
    if (names)
        for (int i = 0; i < n; i++) free(names[i]);
    if (d)
        for (int i = 0; i < n; i++) hclose(&d[i]);
    free(names);
    free(d);
    if (rc && t->dcol == NULL) {
        hclose(&t->dmstep);
        hclose(&t->gmetrics);
        H5E_BEGIN_TRY { H5Ldelete(t->file, "metrics", H5P_DEFAULT); }
        H5E_END_TRY;
    }
    hclose(&gcpl);
    quiet_end(q);
    return rc;
}

static int ckpt_group(oialr_traj *t) {
    int rc = OIALR_OK;
    if (t->gckpt >= 0) return rc;
    hsize_t one = 1;
    int64_t none = -1;
    TRY_H5(t->gckpt = H5Gcreate2(t->file, "checkpoint", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /checkpoint");
    TRY_H5(t->dslot = make_fixed(t->gckpt, "slot", H5T_STD_I64LE, 1, &one), OIALR_ERR_IO,
            "cannot create /checkpoint/slot");
    TRY_H5(H5Dwrite(t->dslot, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &none), OIALR_ERR_IO,
            "cannot write /checkpoint/slot");
done:
    return rc;
}

static int declare_ck(oialr_traj *t, const char *name, int type, size_t n) {
    int rc = need_define(t, "cannot declare a checkpoint item");
    if (rc) return rc;
    if ((rc = check_name(t, "checkpoint item", name))) return rc;
    if (!strcmp(name, "slot")) return oialr_seterr(OIALR_ERR_ARG, "%s: 'slot' is a reserved checkpoint name", t->path);
    for (int i = 0; i < t->nck; i++)
        if (!strcmp(t->ck[i].name, name))
            return oialr_seterr(OIALR_ERR_ARG, "%s: checkpoint item '%s' declared twice", t->path, name);
    if (t->nck == t->capck) {
        int nc = t->capck ? 2 * t->capck : 8;
        ckitem *c = realloc(t->ck, (size_t)nc * sizeof *c);
        if (!c) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
        t->ck = c;
        t->capck = nc;
    }
    h5quiet q = quiet_begin();
    ckitem *c = &t->ck[t->nck];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->type = type;
    c->n = n;
    c->d = H5I_INVALID_HID;
    if ((rc = ckpt_group(t))) goto done;
    if (type == CK_ARRAY || type == CK_AI64) {
        hsize_t dims[2] = {2, n ? n : 1};
        TRY_H5(c->d = make_fixed(t->gckpt, name, type == CK_ARRAY ? H5T_IEEE_F32LE : H5T_STD_I64LE, 2, dims),
               OIALR_ERR_IO, "cannot create checkpoint array '%s' (%zu elements)", name, n);
    } else {
        hsize_t two = 2;
        TRY_H5(c->d = make_fixed(t->gckpt, name, type == CK_I64 ? H5T_STD_I64LE : H5T_STD_U64LE, 1, &two),
                OIALR_ERR_IO, "cannot create checkpoint scalar '%s'", name);
    }
    t->nck++;
done:
    quiet_end(q);
    return rc;
}

int oialr_traj_declare_ckpt_array(oialr_traj *t, const char *name, size_t n) {
    OIALR_ASSERT(t);
    if (n == 0) return oialr_seterr(OIALR_ERR_ARG, "%s: checkpoint array '%s' has no elements", t->path, name);
    return declare_ck(t, name, CK_ARRAY, n);
}

int oialr_traj_declare_ckpt_array_i64(oialr_traj *t, const char *name, size_t n) {
    OIALR_ASSERT(t);
    if (n == 0) return oialr_seterr(OIALR_ERR_ARG, "%s: checkpoint array '%s' has no elements", t->path, name);
    return declare_ck(t, name, CK_AI64, n);
}

int oialr_traj_declare_ckpt_scalar(oialr_traj *t, const char *name, int is_unsigned) {
    OIALR_ASSERT(t);
    return declare_ck(t, name, is_unsigned ? CK_U64 : CK_I64, 1);
}

/* H5Fstart_swmr_write reopens every open object with default access
 * properties, a 1 MiB chunk cache: a 512x512 snapshot would then be
 * allocated, filled, copied into the cache and evicted at each write. This
 * gives the weights their cache-less access back. */
static int reopen_weights(oialr_traj *t) {
    int rc = OIALR_OK;
    hid_t dapl = H5I_INVALID_HID;
    TRY_H5(dapl = weight_dapl(), OIALR_ERR_HDF5, "cannot set up dataset access");
    for (int i = 0; i < t->nlayers; i++) {
        tlayer *l = &t->layers[i];
        hclose(&l->dw);
        TRY_H5(l->dw = H5Dopen2(l->grp, "weight", dapl), OIALR_ERR_HDF5, "layer %s: cannot reopen the weight",
                l->pub.name);
    }
done:
    hclose(&dapl);
    return rc;
}

int oialr_traj_begin(oialr_traj *t) {
    int rc = traj_start(t);
    return rc ? rc : publish(t);
}

int traj_start(oialr_traj *t) {
    OIALR_ASSERT(t);
    if (t->recording) return OIALR_OK;
    if (!t->writable) return oialr_seterr(OIALR_ERR_ARG, "%s: the trajectory is open read-only", t->path);
    int rc;
    if (t->gmetrics < 0 && (rc = oialr_traj_declare_metrics(t, OIALR_TRAJ_METRICS_DEFAULT))) return rc;
    h5quiet q = quiet_begin();
    if (t->devents < 0) {
        TRY_H5(t->devents = make_ext(t->file, "events", t->tev_file, 1, NULL, 64, 0, H5P_DEFAULT), OIALR_ERR_IO,
                "cannot create /events");
    }
    if ((rc = ckpt_group(t))) goto done;
    TRY_H5(H5Fflush(t->file, H5F_SCOPE_GLOBAL), OIALR_ERR_IO, "cannot flush");
    TRY_H5(H5Fstart_swmr_write(t->file), OIALR_ERR_HDF5, "cannot start SWMR writing");
    if ((rc = reopen_weights(t))) goto done;
    t->recording = 1;
done:
    quiet_end(q);
    return rc;
}

// ----------------------------------------------------------------------------
// writer, phase 2

static int need_record(oialr_traj *t, const char *what) {
    if (!t->writable) return oialr_seterr(OIALR_ERR_ARG, "%s: %s: the trajectory is open read-only", t->path, what);
    if (!t->recording) return traj_start(t);
    return OIALR_OK;
}

static int layer_grow(tlayer *l, int64_t n) {
    if (n <= l->cap) return 0;
    int64_t nc = l->cap ? l->cap : 64;
    while (nc < n) nc *= 2;
    int64_t *s = realloc(l->steps, (size_t)nc * sizeof *s);
    if (!s) return -1;
    l->steps = s;
    int32_t *r = realloc(l->ranks, (size_t)nc * sizeof *r);
    if (!r) return -1;
    l->ranks = r;
    l->cap = nc;
    l->pub.steps = l->steps;
    l->pub.ranks = l->ranks;
    return 0;
}

/* NaN and Inf in w[0, n): exponent bits all ones. Integer lanes so the
 * loop vectorizes (isfinite() stays scalar): a 784x512 layer in cache in
 * 0.020 ms instead of 0.056 ms (measured on the bench machine). */
OIALR_HOT size_t traj_count_nonfinite(const float *w, size_t n) {
    size_t bad = 0;
    for (size_t i0 = 0; i0 < n; i0 += 1u << 20) {
        size_t i1 = n - i0 < (1u << 20) ? n : i0 + (1u << 20);
        uint32_t part = 0; /* 32-bit lanes: at most 2^20 per block */
        for (size_t i = i0; i < i1; i++) {
            uint32_t u;
            memcpy(&u, w + i, sizeof u);
            part += (u & 0x7f800000u) == 0x7f800000u;
        }
        bad += part;
    }
    return bad;
}

/* 1 if a snapshot's bytes in memory are its chunk's bytes on disk: chunks
 * of exactly one snapshot (h5repack may have changed that in a file opened
 * for append), no filter, file type little-endian float32 = native float. */
static int raw_chunk_ok(const tlayer *l) {
    hid_t d = l->dw, dcpl = H5Dget_create_plist(d), ft = H5Dget_type(d);
    hsize_t ch[3] = {0, 0, 0};
    int ok = dcpl >= 0 && ft >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 3, ch) == 3 &&
             ch[0] == 1 && ch[1] == (hsize_t)l->pub.rows && ch[2] == (hsize_t)l->pub.cols &&
             H5Pget_nfilters(dcpl) == 0 && H5Tequal(ft, H5T_IEEE_F32LE) > 0 &&
             H5Tequal(H5T_NATIVE_FLOAT, H5T_IEEE_F32LE) > 0;
    hclose(&ft);
    hclose(&dcpl);
    return ok;
}

/* Snapshot n of a layer. A whole-chunk write when the bytes need no
 * conversion: HDF5 then skips the selection machinery (a quarter of the
 * writer's time in HDF5 for a 512x512 layer) and hands w to the driver. */
static herr_t write_snapshot(tlayer *l, int64_t n, const float *w) {
    if (l->raw < 0) l->raw = raw_chunk_ok(l);
    if (!l->raw) return write_rows(l->dw, H5T_NATIVE_FLOAT, n, 1, w, 1);
    int64_t e = extent0(l->dw);
    hsize_t dims[3] = {(hsize_t)n + 1, (hsize_t)l->pub.rows, (hsize_t)l->pub.cols}, off[3] = {(hsize_t)n, 0, 0};
    if (e < 0 || (e < n + 1 && H5Dset_extent(l->dw, dims) < 0)) return -1;
    return H5Dwrite_chunk(l->dw, H5P_DEFAULT, 0, off, (size_t)l->pub.rows * (size_t)l->pub.cols * sizeof(float), w);
}

/* One layer's snapshot: weight, then rank, then step, each flushed when
 * flush is set (a reader of a live file then never sees a step whose weight
 * is missing). */
static int append_layer(oialr_traj *t, int layer, int64_t step, const float *w, int32_t rank, size_t bad, int flush) {
    if (layer < 0 || layer >= t->nlayers)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer with index %d", t->path, layer);
    tlayer *l = &t->layers[layer];
    int64_t n = l->pub.nsnap;
    int rc = OIALR_OK;
    if (bad && !l->warned_nonfinite) {
        l->warned_nonfinite = 1;
        oialr_log(OIALR_LOG_WARN, "%s: layer %s at step %lld has %zu NaN/Inf values; recorded as they are",
                  t->path, l->pub.name, (long long)step, bad);
    }
    if (rank <= 0) rank = (int32_t)(l->pub.rows < l->pub.cols ? l->pub.rows : l->pub.cols);
    if (layer_grow(l, n + 1)) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    h5quiet q = quiet_begin();
    TRY_H5(write_snapshot(l, n, w), OIALR_ERR_IO, "layer %s: cannot write snapshot %lld", l->pub.name, (long long)n);
    if (flush)
        TRY_H5(H5Dflush(l->dw), OIALR_ERR_IO, "layer %s: cannot flush snapshot %lld", l->pub.name, (long long)n);
    TRY_H5(write_rows(l->dr, H5T_NATIVE_INT32, n, 1, &rank, 1), OIALR_ERR_IO, "layer %s: cannot write rank",
            l->pub.name);
    if (flush) TRY_H5(H5Dflush(l->dr), OIALR_ERR_IO, "layer %s: cannot flush rank", l->pub.name);
    TRY_H5(write_rows(l->ds, H5T_NATIVE_INT64, n, 1, &step, 1), OIALR_ERR_IO, "layer %s: cannot write step",
            l->pub.name);
    if (flush) TRY_H5(H5Dflush(l->ds), OIALR_ERR_IO, "layer %s: cannot flush step", l->pub.name);
    l->steps[n] = step;
    l->ranks[n] = rank;
    l->pub.nsnap = n + 1;
done:
    quiet_end(q);
    return rc;
}

int oialr_traj_append(oialr_traj *t, int layer, int64_t step, const float *w, int32_t rank) {
    OIALR_ASSERT(t && w);
    if (layer < 0 || layer >= t->nlayers)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer with index %d", t->path, layer);
    const tlayer *l = &t->layers[layer];
    size_t bad = traj_count_nonfinite(w, (size_t)l->pub.rows * (size_t)l->pub.cols);
    int rc = need_record(t, "cannot append");
    if (!rc) rc = append_layer(t, layer, step, w, rank, bad, 1);
    return rc ? rc : publish(t);
}

int traj_append_snapshot(oialr_traj *t, int64_t step, int n, const float *const *w, const size_t *bad,
                         const int32_t *ranks) {
    OIALR_ASSERT(t && w && bad);
    int rc = need_record(t, "cannot append");
    for (int i = 0; i < n && !rc; i++) rc = append_layer(t, i, step, w[i], ranks ? ranks[i] : 0, bad[i], 0);
    if (rc) return rc;
    h5quiet q = quiet_begin();
    if (H5Fflush(t->file, H5F_SCOPE_LOCAL) < 0)
        rc = h5err(t->path, OIALR_ERR_IO, "cannot flush the snapshot at step %lld", (long long)step);
    quiet_end(q);
    return rc ? rc : publish(t);
}

int oialr_traj_append_metrics(oialr_traj *t, int64_t step, const double *values, int n) {
    return oialr_traj_append_metrics_rows(t, 1, &step, values, n);
}

int oialr_traj_append_metrics_rows(oialr_traj *t, int64_t nrows, const int64_t *steps, const double *values,
                                   int ncol) {
    OIALR_ASSERT(t && (nrows == 0 || (steps && (values || ncol == 0))));
    int rc = need_record(t, "cannot append metrics");
    if (rc) return rc;
    if (ncol != t->ncol)
        return oialr_seterr(OIALR_ERR_MISMATCH, "%s: metrics row has %d values, %d columns declared", t->path, ncol,
                            t->ncol);
    if (nrows < 0) return oialr_seterr(OIALR_ERR_ARG, "%s: %lld metrics rows", t->path, (long long)nrows);
    if (nrows == 0) return OIALR_OK;
    int64_t at = t->info.nmetrics;
    double one, *col = nrows == 1 ? &one : malloc((size_t)nrows * sizeof *col);
    if (!col) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    h5quiet q = quiet_begin();
    /* every column, then the step column: a row exists once its step does */
    for (int i = 0; i < ncol; i++) {
        for (int64_t k = 0; k < nrows; k++) col[k] = values[k * ncol + i];
        TRY_H5(write_rows(t->dcol[i], H5T_NATIVE_DOUBLE, at, nrows, col, 1), OIALR_ERR_IO,
                "cannot write /metrics/%s", t->colnames[i]);
        TRY_H5(H5Dflush(t->dcol[i]), OIALR_ERR_IO, "cannot flush /metrics/%s", t->colnames[i]);
    }
    TRY_H5(write_rows(t->dmstep, H5T_NATIVE_INT64, at, nrows, steps, 1), OIALR_ERR_IO,
            "cannot write /metrics/step");
    TRY_H5(H5Dflush(t->dmstep), OIALR_ERR_IO, "cannot flush /metrics/step");
    t->info.nmetrics = at + nrows;
done:
    if (col != &one) free(col);
    quiet_end(q);
    return rc;
}

uint64_t traj_direct_bytes(const oialr_traj *t) {
    return oialr_vfd_direct_bytes(t->vfd);
}

void traj_set_direct(oialr_traj *t, int on) {
    oialr_vfd_set_direct(t->vfd, on);
}

int oialr_traj_append_event(oialr_traj *t, const oialr_traj_event *ev) {
    OIALR_ASSERT(t && ev);
    int rc = need_record(t, "cannot append an event");
    if (rc) return rc;
    if ((rc = traj_check_event(t->path, ev))) return rc;
    oialr_traj_event e = *ev;
    e.layer[OIALR_TRAJ_NAME_MAX - 1] = '\0';
    size_t len = strlen(e.layer);
    memset(e.layer + len, 0, OIALR_TRAJ_NAME_MAX - len);
    int64_t at = t->info.nevents;
    h5quiet q = quiet_begin();
    TRY_H5(write_rows(t->devents, t->tev_mem, at, 1, &e, 1), OIALR_ERR_IO, "cannot write /events");
    TRY_H5(H5Dflush(t->devents), OIALR_ERR_IO, "cannot flush /events");
    t->info.nevents = at + 1;
done:
    quiet_end(q);
    return rc;
}

static ckitem *ck_find(oialr_traj *t, const char *name, int type, int *rc) {
    for (int i = 0; i < t->nck; i++)
        if (!strcmp(t->ck[i].name, name)) {
            if (type >= 0 && t->ck[i].type != type) {
                *rc = oialr_seterr(OIALR_ERR_MISMATCH, "%s: checkpoint item '%s' has another type", t->path, name);
                return NULL;
            }
            return &t->ck[i];
        }
    *rc = oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no checkpoint item '%s'", t->path, name);
    return NULL;
}

int oialr_traj_ckpt_start(oialr_traj *t) {
    OIALR_ASSERT(t);
    int rc = need_record(t, "cannot write a checkpoint");
    if (rc) return rc;
    t->target_slot = t->cur_slot == 0 ? 1 : 0;
    return OIALR_OK;
}

static int ck_put(oialr_traj *t, const char *name, int type, hid_t mtype, const void *v, size_t n) {
    if (t->target_slot < 0)
        return oialr_seterr(OIALR_ERR_ARG, "%s: checkpoint item '%s' put outside ckpt_start/commit", t->path, name);
    int rc = OIALR_OK;
    ckitem *c = ck_find(t, name, type, &rc);
    if (!c) return rc;
    if (n != c->n)
        return oialr_seterr(OIALR_ERR_MISMATCH, "%s: checkpoint array '%s' has %zu elements, got %zu", t->path,
                            name, c->n, n);
    h5quiet q = quiet_begin();
    TRY_H5(write_rows(c->d, mtype, t->target_slot, 1, v, 0), OIALR_ERR_IO, "cannot write checkpoint item '%s'",
            name);
done:
    quiet_end(q);
    return rc;
}

int oialr_traj_ckpt_put_array(oialr_traj *t, const char *name, const float *x, size_t n) {
    OIALR_ASSERT(t && name && x);
    return ck_put(t, name, CK_ARRAY, H5T_NATIVE_FLOAT, x, n);
}

int oialr_traj_ckpt_put_array_i64(oialr_traj *t, const char *name, const int64_t *x, size_t n) {
    OIALR_ASSERT(t && name && x);
    return ck_put(t, name, CK_AI64, H5T_NATIVE_INT64, x, n);
}

int oialr_traj_ckpt_put_i64(oialr_traj *t, const char *name, int64_t v) {
    OIALR_ASSERT(t && name);
    return ck_put(t, name, CK_I64, H5T_NATIVE_INT64, &v, 1);
}

int oialr_traj_ckpt_put_u64(oialr_traj *t, const char *name, uint64_t v) {
    OIALR_ASSERT(t && name);
    return ck_put(t, name, CK_U64, H5T_NATIVE_UINT64, &v, 1);
}

int oialr_traj_ckpt_commit(oialr_traj *t) {
    OIALR_ASSERT(t);
    if (t->target_slot < 0) return oialr_seterr(OIALR_ERR_ARG, "%s: ckpt_commit without ckpt_start", t->path);
    int rc = OIALR_OK;
    h5quiet q = quiet_begin();
    for (int i = 0; i < t->nck; i++)
        TRY_H5(H5Dflush(t->ck[i].d), OIALR_ERR_IO, "cannot flush checkpoint item '%s'", t->ck[i].name);
    TRY_H5(H5Dwrite(t->dslot, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &t->target_slot), OIALR_ERR_IO,
            "cannot write /checkpoint/slot");
    TRY_H5(H5Dflush(t->dslot), OIALR_ERR_IO, "cannot flush /checkpoint/slot");
    t->cur_slot = t->target_slot;
    t->info.has_ckpt = 1;
done:
    t->target_slot = -1;
    quiet_end(q);
    return rc;
}

int oialr_traj_flush(oialr_traj *t) {
    OIALR_ASSERT(t);
    if (!t->writable) return OIALR_OK;
    int rc = OIALR_OK;
    h5quiet q = quiet_begin();
    TRY_H5(H5Fflush(t->file, H5F_SCOPE_GLOBAL), OIALR_ERR_IO, "cannot flush");
    rc = publish(t);
done:
    quiet_end(q);
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
    h5quiet q = quiet_begin();
    if (keep && t->writable && t->file >= 0) {
        /* phase 1 only: still create the rest, so the file is complete */
        if (!t->recording) rc = traj_start(t);
        if (!rc && H5Fflush(t->file, H5F_SCOPE_GLOBAL) < 0) rc = h5err(t->path, OIALR_ERR_IO, "cannot flush");
        if (!rc) rc = publish(t);
    }
    hid_t f = t->file;
    t->file = H5I_INVALID_HID;
    /* close the objects, then the file (strong close degree) */
    int closerc = 0;
    if (f >= 0) {
        int lrc = OIALR_OK;
        for (int i = 0; i < t->nlayers; i++) {
            tlayer *l = &t->layers[i];
            hclose(&l->dw), hclose(&l->ds), hclose(&l->dr), hclose(&l->grp);
        }
        (void)lrc;
        closerc = H5Fclose(f) < 0;
        if (closerc && !rc) rc = h5err(t->path, t->writable ? OIALR_ERR_IO : OIALR_ERR_HDF5, "cannot close");
    }
    if (!rc && t->writable) rc = check_identity(t);
    /* never published: nothing worth keeping, unless publishing failed */
    if (t->out.tmp && !t->publish_failed) oialr_output_abort(&t->out);
    traj_free(t);
    quiet_end(q);
    return rc;
}

// ----------------------------------------------------------------------------
// reader
//
// A reader trusts nothing in the file: every dataset's type class, rank and
// shape is checked against docs/format.md before anything is read into a
// buffer sized from it, and steps are checked to increase ("What a reader
// checks" there). Row counts come from rows_written(), never from an extent
// alone.

/* HDF5 retries a metadata read whose checksum fails, in SWMR-read mode only,
 * with a back-off that doubles from 1 ns each time: the default 100 tries
 * take hours on a checksum that will never match (a damaged file). 24 tries
 * back off 17 ms in all, far longer than a live writer needs to finish the
 * write a reader caught half-done. */
#define SWMR_READ_ATTEMPTS 24

/* More snapshots of one layer than any run records (steps and ranks of
 * 2^24 snapshots take 200 MB): a file claiming more is refused before the
 * reader allocates for it. */
#define READ_MAX_SNAPSHOTS ((int64_t)1 << 24)

static const char *class_name(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    default: return "another type";
    }
}

/* Check a dataset against the format: type class cls, rank `rank` and, where
 * want[i] >= 0, dims[i] == want[i] (want may be NULL). obj names it in the
 * message, expect is the format's description ("integer [T]"). */
static int check_dset(oialr_traj *t, hid_t d, const char *obj, H5T_class_t cls, int rank, const int64_t *want,
                      const char *expect) {
    hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
    int rc = OIALR_OK;
    if (ty < 0 || sp < 0) {
        rc = h5err(t->path, OIALR_ERR_HDF5, "%s: cannot read its type and shape", obj);
        goto done;
    }
    hsize_t dims[H5S_MAX_RANK];
    H5T_class_t c = H5Tget_class(ty);
    int r = H5Sget_simple_extent_dims(sp, dims, NULL);
    int ok = c == cls && r == rank;
    for (int i = 0; ok && want && i < rank; i++)
        if (want[i] >= 0 && dims[i] != (hsize_t)want[i]) ok = 0;
    if (!ok) {
        char shape[96] = "scalar";
        if (r > 0) {
            size_t k = 0;
            for (int i = 0; i < r && k < sizeof shape - 24; i++)
                k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%llu", i ? ", " : "[",
                                      (unsigned long long)dims[i]);
            snprintf(shape + k, sizeof shape - k, "]");
        } else if (r < 0) {
            snprintf(shape, sizeof shape, "of unknown shape");
        }
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: %s is %s %s; the format has %s", t->path, obj, class_name(c),
                          shape, expect);
    }
done:
    hclose(&ty);
    hclose(&sp);
    return rc;
}

/* 1 if chunk k (along dim 0) of a chunked dataset has storage, 0 if not,
 * -1 on error. */
static int chunk_allocated(hid_t d, hsize_t k, hsize_t chunk0) {
    hsize_t off[H5S_MAX_RANK] = {0}, size = 0;
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    off[0] = k * chunk0;
    if (H5Dget_chunk_info_by_coord(d, off, &mask, &addr, &size) < 0) return -1;
    return addr != HADDR_UNDEF;
}

/* Rows [0, *n) of a dataset that can hold written data: its first extent,
 * cut to the end of its last allocated chunk (writers fill chunks in
 * order). An extent grown without writing (a writer killed in between, a
 * damaged file) would otherwise read as fill values nobody wrote, and size
 * the reader's buffers: 10^7 "rows" from a file of four. */
static herr_t rows_written(hid_t d, int64_t *n) {
    hid_t sp = H5Dget_space(d), dcpl = H5I_INVALID_HID;
    hsize_t dims[H5S_MAX_RANK], chunk[H5S_MAX_RANK];
    herr_t r = -1;
    if (sp < 0) return -1;
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    if (rank < 1 || dims[0] > (hsize_t)INT64_MAX) goto done;
    *n = (int64_t)dims[0];
    if ((dcpl = H5Dget_create_plist(d)) < 0) goto done;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout < 0) goto done;
    if (dims[0] == 0 || layout != H5D_CHUNKED) {
        r = 0;
        goto done;
    }
    if (H5Pget_chunk(dcpl, rank, chunk) != rank || chunk[0] == 0) goto done;
    hsize_t lo = 0, hi = (dims[0] - 1) / chunk[0];
    int a = chunk_allocated(d, hi, chunk[0]);
    if (a < 0) goto done;
    if (!a) {
        /* chunks [0, lo) have storage, chunk hi has none */
        while (lo < hi) {
            hsize_t mid = lo + (hi - lo) / 2;
            if ((a = chunk_allocated(d, mid, chunk[0])) < 0) goto done;
            if (a) lo = mid + 1;
            else hi = mid;
        }
        *n = (int64_t)(lo * chunk[0]);
    }
    r = 0;
done:
    hclose(&dcpl);
    hclose(&sp);
    return r;
}

static int load_layer_steps(oialr_traj *t, tlayer *l) {
    int rc = OIALR_OK;
    int64_t nw = 0, ns = 0, nr = 0;
    if (rows_written(l->dw, &nw) < 0 || rows_written(l->ds, &ns) < 0 || rows_written(l->dr, &nr) < 0)
        return h5err(t->path, OIALR_ERR_HDF5, "layer %s: cannot read extents", l->pub.name);
    int64_t n = nw < ns ? nw : ns;
    if (nr < n) n = nr;
    if (n > READ_MAX_SNAPSHOTS)
        return oialr_seterr(OIALR_ERR_OVERFLOW, "%s: layer %s: %lld snapshots, more than a reader accepts (%lld)",
                            t->path, l->pub.name, (long long)n, (long long)READ_MAX_SNAPSHOTS);
    /* the weight's shape is fixed at open: a file that changes it under a
     * live reader would overrun every snapshot buffer */
    char obj[OIALR_TRAJ_NAME_MAX + 16];
    snprintf(obj, sizeof obj, "/layers/%s/weight", l->pub.name);
    const int64_t want[3] = {-1, l->pub.rows, l->pub.cols};
    if ((rc = check_dset(t, l->dw, obj, H5T_FLOAT, 3, want, "float [T, rows, cols] with the layer's rows and cols")))
        return rc;
    if (layer_grow(l, n ? n : 1)) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    TRY_H5(read_rows(l->ds, H5T_NATIVE_INT64, 0, n, l->steps), OIALR_ERR_IO, "layer %s: cannot read steps",
            l->pub.name);
    TRY_H5(read_rows(l->dr, H5T_NATIVE_INT32, 0, n, l->ranks), OIALR_ERR_IO, "layer %s: cannot read ranks",
            l->pub.name);
    for (int64_t i = 0; i < n; i++) {
        if (l->steps[i] < 0)
            return oialr_seterr(OIALR_ERR_FORMAT, "%s: /layers/%s/step: step[%lld] = %lld is negative", t->path,
                                l->pub.name, (long long)i, (long long)l->steps[i]);
        if (i > 0 && l->steps[i] <= l->steps[i - 1])
            return oialr_seterr(OIALR_ERR_FORMAT,
                                "%s: /layers/%s/step: step[%lld] = %lld after step[%lld] = %lld; a layer's steps "
                                "must strictly increase",
                                t->path, l->pub.name, (long long)i, (long long)l->steps[i], (long long)(i - 1),
                                (long long)l->steps[i - 1]);
    }
    l->pub.nsnap = n;
done:
    return rc;
}

/* One of the layer's integer attributes rows, cols: absent (0), or equal to
 * the weight's dimension. */
static int check_dim_attr(oialr_traj *t, const tlayer *l, const char *attr, int64_t dim) {
    int64_t v = 0;
    int got = attr_get_ints(l->grp, attr, H5T_NATIVE_INT64, &v, 1, NULL);
    if (got < 0)
        return oialr_seterr(OIALR_ERR_FORMAT, "%s: layer %s: attribute %s is not one integer", t->path, l->pub.name,
                            attr);
    if (got == 1 && v != dim)
        return oialr_seterr(OIALR_ERR_FORMAT, "%s: layer %s: attribute %s = %lld disagrees with the weight's %lld",
                            t->path, l->pub.name, attr, (long long)v, (long long)dim);
    return OIALR_OK;
}

static int open_layer(oialr_traj *t, hid_t lay, const char *name) {
    int rc = OIALR_OK;
    tlayer *l = new_layer(t);
    if (!l) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    t->nlayers++;
    t->info.nlayers = t->nlayers;
    snprintf(l->pub.name, sizeof l->pub.name, "%s", name);
    hid_t dapl = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    char *kind = NULL;
    char obj[OIALR_TRAJ_NAME_MAX + 16];
    TRY_H5(l->grp = H5Gopen2(lay, name, H5P_DEFAULT), OIALR_ERR_FORMAT, "layer %s: not a group", name);
    TRY_H5(dapl = weight_dapl(), OIALR_ERR_HDF5, "cannot set up dataset access");
    TRY_H5(l->dw = H5Dopen2(l->grp, "weight", dapl), OIALR_ERR_FORMAT, "layer %s: no weight dataset", name);
    TRY_H5(l->ds = H5Dopen2(l->grp, "step", H5P_DEFAULT), OIALR_ERR_FORMAT, "layer %s: no step dataset", name);
    TRY_H5(l->dr = H5Dopen2(l->grp, "rank", H5P_DEFAULT), OIALR_ERR_FORMAT, "layer %s: no rank dataset", name);
    snprintf(obj, sizeof obj, "/layers/%s/weight", name);
    if ((rc = check_dset(t, l->dw, obj, H5T_FLOAT, 3, NULL, "float [T, rows, cols]"))) goto done;
    snprintf(obj, sizeof obj, "/layers/%s/step", name);
    if ((rc = check_dset(t, l->ds, obj, H5T_INTEGER, 1, NULL, "integer [T]"))) goto done;
    snprintf(obj, sizeof obj, "/layers/%s/rank", name);
    if ((rc = check_dset(t, l->dr, obj, H5T_INTEGER, 1, NULL, "integer [T]"))) goto done;
    hsize_t dims[3];
    TRY_H5(sp = H5Dget_space(l->dw), OIALR_ERR_HDF5, "layer %s: cannot read the weight shape", name);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t bytes;
    if (dims[1] < 1 || dims[2] < 1 || oialr_mul_size((size_t)dims[1], (size_t)dims[2], &bytes) ||
        oialr_mul_size(bytes, 4, &bytes) || bytes >= ((size_t)1 << 32)) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: /layers/%s/weight: snapshots of %llux%llu floats (the format: 1 to "
                          "4 GiB)", t->path, name, (unsigned long long)dims[1], (unsigned long long)dims[2]);
        goto done;
    }
    l->pub.rows = (int64_t)dims[1];
    l->pub.cols = (int64_t)dims[2];
    if ((rc = check_dim_attr(t, l, "rows", l->pub.rows)) || (rc = check_dim_attr(t, l, "cols", l->pub.cols)))
        goto done;
    if (attr_get_str(l->grp, "kind", &kind) == 1) snprintf(l->pub.kind, sizeof l->pub.kind, "%s", kind);
    hssize_t nd = 0;
    if (attr_get_ints(l->grp, "shape", H5T_NATIVE_INT64, l->pub.shape, 4, &nd) == 1) {
        l->pub.ndim = (int)nd;
    } else {
        l->pub.ndim = 2;
        l->pub.shape[0] = l->pub.rows;
        l->pub.shape[1] = l->pub.cols;
    }
    rc = load_layer_steps(t, l);
done:
    free(kind);
    hclose(&sp);
    hclose(&dapl);
    return rc;
}

typedef struct namelist {
    char **v;
    int n, cap;
    int oom;
} namelist;

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *ud) {
    (void)g;
    (void)info;
    namelist *nl = ud;
    if (nl->n == nl->cap) {
        int nc = nl->cap ? 2 * nl->cap : 16;
        char **v = realloc(nl->v, (size_t)nc * sizeof *v);
        if (!v) {
            nl->oom = 1;
            return -1;
        }
        nl->v = v;
        nl->cap = nc;
    }
    if (!(nl->v[nl->n] = traj_strdup(name))) {
        nl->oom = 1;
        return -1;
    }
    nl->n++;
    return 0;
}

static void namelist_free(namelist *nl) {
    for (int i = 0; i < nl->n; i++) free(nl->v[i]);
    free(nl->v);
    memset(nl, 0, sizeof *nl);
}

/* Names of the links of a group, in creation order if tracked. */
static int list_group(hid_t g, namelist *nl) {
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, list_cb, nl) >= 0) return 0;
    namelist_free(nl);
    if (nl->oom) return -1;
    idx = 0;
    return H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, list_cb, nl) < 0 ? -1 : 0;
}

static int open_metrics(oialr_traj *t) {
    int rc = OIALR_OK;
    namelist nl = {0};
    char *cols = NULL;
    htri_t ex = H5Lexists(t->file, "metrics", H5P_DEFAULT);
    if (ex <= 0) return ex < 0 ? h5err(t->path, OIALR_ERR_HDF5, "cannot look for /metrics") : OIALR_OK;
    TRY_H5(t->gmetrics = H5Gopen2(t->file, "metrics", H5P_DEFAULT), OIALR_ERR_FORMAT, "/metrics is not a group");
    TRY_H5(t->dmstep = H5Dopen2(t->gmetrics, "step", H5P_DEFAULT), OIALR_ERR_FORMAT, "no /metrics/step");
    if ((rc = check_dset(t, t->dmstep, "/metrics/step", H5T_INTEGER, 1, NULL, "integer [R]"))) goto done;
    if (attr_get_str(t->gmetrics, "columns", &cols) == 1 && cols[0]) {
        char *save = NULL;
        for (char *tok = strtok_r(cols, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (list_cb(t->gmetrics, tok, NULL, &nl) < 0) {
                rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
                goto done;
            }
        }
    } else {
        TRY_H5(list_group(t->gmetrics, &nl), OIALR_ERR_HDF5, "cannot list /metrics");
    }
    t->colnames = calloc((size_t)nl.n + 1, sizeof *t->colnames);
    t->dcol = malloc(((size_t)nl.n + 1) * sizeof *t->dcol);
    if (!t->colnames || !t->dcol) {
        rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
        goto done;
    }
    int64_t rows = 0, r = 0;
    TRY_H5(rows_written(t->dmstep, &rows), OIALR_ERR_HDF5, "cannot read the extent of /metrics/step");
    for (int i = 0; i < nl.n; i++) {
        if (!strcmp(nl.v[i], "step")) continue;
        int k = t->ncol;
        t->dcol[k] = H5I_INVALID_HID;
        t->colnames[k] = nl.v[i];
        nl.v[i] = NULL;
        t->ncol++;
        TRY_H5(t->dcol[k] = H5Dopen2(t->gmetrics, t->colnames[k], H5P_DEFAULT), OIALR_ERR_FORMAT,
                "no /metrics/%s", t->colnames[k]);
        char obj[OIALR_TRAJ_NAME_MAX + 16];
        snprintf(obj, sizeof obj, "/metrics/%s", t->colnames[k]);
        if ((rc = check_dset(t, t->dcol[k], obj, H5T_FLOAT, 1, NULL, "float [R]"))) goto done;
        TRY_H5(rows_written(t->dcol[k], &r), OIALR_ERR_HDF5, "cannot read the extent of %s", obj);
        if (r < rows) rows = r;
    }
    t->info.ncolumns = t->ncol;
    t->info.nmetrics = rows;
done:
    free(cols);
    namelist_free(&nl);
    return rc;
}

/* /checkpoint/slot, int64 [1]: checked before every read (open, refresh and
 * the getters read it), as a live writer could grow it between two reads. */
static int read_slot(oialr_traj *t, int64_t *slot) {
    static const int64_t one[1] = {1};
    int rc = check_dset(t, t->dslot, "/checkpoint/slot", H5T_INTEGER, 1, one, "integer [1]");
    if (rc) return rc;
    TRY_H5(read_rows(t->dslot, H5T_NATIVE_INT64, 0, 1, slot), OIALR_ERR_IO, "cannot read /checkpoint/slot");
done:
    return rc;
}

static int open_ckpt(oialr_traj *t) {
    int rc = OIALR_OK;
    namelist nl = {0};
    hid_t ty = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    htri_t ex = H5Lexists(t->file, "checkpoint", H5P_DEFAULT);
    if (ex <= 0) return ex < 0 ? h5err(t->path, OIALR_ERR_HDF5, "cannot look for /checkpoint") : OIALR_OK;
    TRY_H5(t->gckpt = H5Gopen2(t->file, "checkpoint", H5P_DEFAULT), OIALR_ERR_FORMAT, "/checkpoint is not a group");
    TRY_H5(t->dslot = H5Dopen2(t->gckpt, "slot", H5P_DEFAULT), OIALR_ERR_FORMAT, "no /checkpoint/slot");
    if ((rc = read_slot(t, &t->cur_slot))) goto done;
    if (t->cur_slot != 0 && t->cur_slot != 1) t->cur_slot = -1;
    t->info.has_ckpt = t->cur_slot >= 0;
    TRY_H5(list_group(t->gckpt, &nl), OIALR_ERR_HDF5, "cannot list /checkpoint");
    t->ck = calloc((size_t)nl.n + 1, sizeof *t->ck);
    if (!t->ck) {
        rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
        goto done;
    }
    t->capck = nl.n + 1;
    for (int i = 0; i < nl.n; i++) {
        if (!strcmp(nl.v[i], "slot") || strlen(nl.v[i]) >= OIALR_TRAJ_NAME_MAX) continue;
        ckitem *c = &t->ck[t->nck];
        snprintf(c->name, sizeof c->name, "%s", nl.v[i]);
        c->d = H5I_INVALID_HID;
        t->nck++;
        TRY_H5(c->d = H5Dopen2(t->gckpt, nl.v[i], H5P_DEFAULT), OIALR_ERR_FORMAT, "checkpoint item %s", nl.v[i]);
        TRY_H5(ty = H5Dget_type(c->d), OIALR_ERR_HDF5, "checkpoint item %s", nl.v[i]);
        TRY_H5(sp = H5Dget_space(c->d), OIALR_ERR_HDF5, "checkpoint item %s", nl.v[i]);
        hsize_t dims[2] = {0, 0};
        int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
        if (H5Tget_class(ty) == H5T_FLOAT && nd == 2 && dims[0] == 2) {
            c->type = CK_ARRAY;
            c->n = (size_t)dims[1];
        } else if (H5Tget_class(ty) == H5T_INTEGER && nd == 2 && dims[0] == 2) {
            c->type = CK_AI64;
            c->n = (size_t)dims[1];
        } else if (H5Tget_class(ty) == H5T_INTEGER && nd == 1 && dims[0] == 2) {
            c->type = H5Tget_sign(ty) == H5T_SGN_NONE ? CK_U64 : CK_I64;
            c->n = 1;
        } else {
            rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: checkpoint item %s has an unexpected type or shape", t->path,
                              nl.v[i]);
            goto done;
        }
        hclose(&ty);
        hclose(&sp);
    }
done:
    hclose(&ty);
    hclose(&sp);
    namelist_free(&nl);
    return rc;
}

/* /events: a compound [E] with every field of the format's table (HDF5
 * converts field by field, by name; a missing one would stay garbage). */
static int check_events(oialr_traj *t) {
    static const char *const fields[] = {"step", "layer", "kind", "stability", "rank_before", "rank_after"};
    int rc = check_dset(t, t->devents, "/events", H5T_COMPOUND, 1, NULL, "compound [E]");
    if (rc) return rc;
    hid_t ty = H5Dget_type(t->devents);
    if (ty < 0) return h5err(t->path, OIALR_ERR_HDF5, "/events: cannot read its type");
    for (size_t i = 0; i < sizeof fields / sizeof *fields && !rc; i++)
        if (H5Tget_member_index(ty, fields[i]) < 0)
            rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: /events has no field '%s'", t->path, fields[i]);
    H5Tclose(ty);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

static int open_structure(oialr_traj *t) {
    int rc = OIALR_OK;
    char *fmt = NULL, *s = NULL;
    hid_t lay = H5I_INVALID_HID;
    namelist nl = {0};
    int got = attr_get_str(t->file, "format", &fmt);
    if (got < 0) { /* there but unreadable: damage, not another layout */
        rc = h5err(t->path, OIALR_ERR_FORMAT, "cannot read the 'format' attribute of the root group");
        goto done;
    }
    if (got != 1 || strcmp(fmt, OIALR_TRAJ_FORMAT) != 0) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: HDF5 file but not an oialr trajectory (%s)", t->path,
                          got != 1 ? "no 'format' attribute" : "format attribute is not \"" OIALR_TRAJ_FORMAT "\"");
        goto done;
    }
    int32_t ver = 0;
    if (attr_get_ints(t->file, "format_version", H5T_NATIVE_INT32, &ver, 1, NULL) != 1) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: no integer 'format_version' attribute", t->path);
        goto done;
    }
    if (ver > OIALR_TRAJ_FORMAT_VERSION || ver < 1) {
        rc = oialr_seterr(OIALR_ERR_VERSION, "%s: format_version %d; this liboialr %s reads versions 1..%d", t->path,
                          (int)ver, OIALR_VERSION_STRING, OIALR_TRAJ_FORMAT_VERSION);
        goto done;
    }
    t->info.format_version = ver;
    if (attr_get_str(t->file, "created", &s) == 1) snprintf(t->info.created, sizeof t->info.created, "%s", s);
    free(s);
    s = NULL;
    if (attr_get_str(t->file, "command_line", &t->cmdline) == 1) t->info.command_line = t->cmdline;
    uint64_t seed = 0;
    if (attr_get_ints(t->file, "seed", H5T_NATIVE_UINT64, &seed, 1, NULL) == 1) t->info.seed = seed;
    if ((rc = event_types(t))) goto done;
    /* layers */
    htri_t ex = H5Lexists(t->file, "layers", H5P_DEFAULT);
    if (ex <= 0) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: no /layers group", t->path);
        goto done;
    }
    TRY_H5(lay = H5Gopen2(t->file, "layers", H5P_DEFAULT), OIALR_ERR_FORMAT, "/layers is not a group");
    TRY_H5(list_group(lay, &nl), OIALR_ERR_HDF5, "cannot list /layers");
    for (int i = 0; i < nl.n; i++) {
        if (strlen(nl.v[i]) >= OIALR_TRAJ_NAME_MAX) {
            rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: layer name '%.40s...' is too long", t->path, nl.v[i]);
            goto done;
        }
        if ((rc = open_layer(t, lay, nl.v[i]))) goto done;
    }
    if ((rc = open_metrics(t))) goto done;
    ex = H5Lexists(t->file, "events", H5P_DEFAULT);
    if (ex > 0) {
        TRY_H5(t->devents = H5Dopen2(t->file, "events", H5P_DEFAULT), OIALR_ERR_FORMAT, "/events is not a dataset");
        if ((rc = check_events(t))) goto done;
        int64_t e = 0;
        TRY_H5(rows_written(t->devents, &e), OIALR_ERR_HDF5, "cannot read the extent of /events");
        t->info.nevents = e;
    }
    rc = open_ckpt(t);
done:
    namelist_free(&nl);
    hclose(&lay);
    free(fmt);
    free(s);
    return rc;
}

/* HDF5's error stack holds its "unable to lock" (another process holds the
 * file's lock). Exact words: h5stack.locked also matches "superblock". */
static herr_t lock_cb(unsigned n, const H5E_error2_t *e, void *ud) {
    (void)n;
    if (e->desc && strstr(e->desc, "unable to lock")) *(int *)ud = 1;
    return 0;
}

int oialr_traj_open(oialr_traj **out, const char *path, int mode) {
    OIALR_ASSERT(out && path);
    *out = NULL;
    if (mode < OIALR_TRAJ_READ || mode > OIALR_TRAJ_RECOVER)
        return oialr_seterr(OIALR_ERR_ARG, "%s: bad open mode %d", path, mode);
    struct stat st;
    if (stat(path, &st) != 0)
        return oialr_seterr(errno == ENOENT ? OIALR_ERR_NOTFOUND : OIALR_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return oialr_seterr(OIALR_ERR_FORMAT, "%s: not a regular file", path);
    oialr_traj *t = traj_new(path);
    if (!t) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
    h5quiet q = quiet_begin();
    int rc = OIALR_OK;
    hid_t fapl = H5I_INVALID_HID;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: not an HDF5 file%s", path, st.st_size == 0 ? " (empty)" : "");
        goto done;
    }
    t->info.writer_alive = lock_held(path);
    TRY_H5(fapl = file_fapl(mode != OIALR_TRAJ_READ), OIALR_ERR_HDF5, "cannot set up file access");
    if (mode == OIALR_TRAJ_READ) {
        /* plain open with default bounds so files of any libver open */
        TRY_H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST), OIALR_ERR_HDF5, "fapl");
        t->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
        if (t->file < 0) {
            int locked = 0;
            H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, lock_cb, &locked);
            h5stack s = stack_get();
            if (s.truncated) {
                rc = oialr_seterr(OIALR_ERR_TRUNCATED, "%s: truncated file (%s)", path, s.last);
                goto done;
            }
            /* SWMR-read only for a file a writer holds or held: a damaged
             * one would spend minutes in HDF5's SWMR checksum retries. */
            if (!s.openwrite && !locked && !t->info.writer_alive) {
                rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: cannot open: %s (a damaged or incomplete HDF5 file)", path,
                                  s.last[0] ? s.last : "unknown HDF5 error");
                goto done;
            }
            TRY_H5(H5Pset_metadata_read_attempts(fapl, SWMR_READ_ATTEMPTS), OIALR_ERR_HDF5, "fapl");
            t->file = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
            if (t->file < 0) {
                h5stack s2 = stack_get();
                rc = oialr_seterr(s2.truncated ? OIALR_ERR_TRUNCATED : locked ? OIALR_ERR_LOCKED : OIALR_ERR_FORMAT,
                                  "%s: cannot open: %s", path, s.last[0] ? s.last : s2.last);
                goto done;
            }
            t->info.swmr_read = 1;
            oialr_log(OIALR_LOG_INFO, "%s: %s; opened in SWMR-read mode", path,
                      t->info.writer_alive ? "a writer is recording it"
                                           : "its writer did not close it (killed?); `h5clear -s --increment=0` clears it for other tools");
        }
    } else {
        t->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
        if (t->file < 0) {
            h5stack s = stack_get();
            if (s.truncated) {
                rc = oialr_seterr(OIALR_ERR_TRUNCATED, "%s: truncated file (%s)", path, s.last);
                goto done;
            }
            if (t->info.writer_alive) {
                rc = oialr_seterr(OIALR_ERR_LOCKED, "%s: a writer process is recording this trajectory", path);
                goto done;
            }
            if (mode != OIALR_TRAJ_RECOVER || !(s.openwrite || s.locked)) {
                rc = oialr_seterr(s.openwrite || s.locked ? OIALR_ERR_LOCKED : OIALR_ERR_FORMAT,
                                  "%s: cannot open for writing: %s%s", path, s.last,
                                  s.openwrite ? " (its writer was killed? open it in recover mode, or run `h5clear -s --increment=0`)" : "");
                goto done;
            }
            /* What `h5clear -s --increment=0` does: clear the "open for
             * write" mark, and move the end-of-allocation recorded in the
             * superblock (stale after a kill) to the end of the file, or
             * the next close would truncate the snapshots written since. */
            hid_t rfapl = H5I_INVALID_HID, rf = H5I_INVALID_HID;
            hbool_t clear = 1;
            int ok = (rfapl = H5Pcopy(fapl)) >= 0 && H5Pset(rfapl, "clear_status_flags", &clear) >= 0 &&
                     (rf = H5Fopen(path, H5F_ACC_RDWR, rfapl)) >= 0 && H5Fincrement_filesize(rf, 0) >= 0;
            if (!ok) rc = h5err(path, OIALR_ERR_HDF5, "cannot recover the file");
            if (rf >= 0 && H5Fclose(rf) < 0 && ok) rc = h5err(path, OIALR_ERR_IO, "cannot recover the file");
            hclose(&rfapl);
            if (rc) goto done;
            t->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
            if (t->file < 0) {
                rc = h5err(path, OIALR_ERR_HDF5, "cannot reopen the recovered file");
                goto done;
            }
            oialr_log(OIALR_LOG_INFO, "%s: recovered a trajectory whose writer was killed", path);
        }
        t->writable = 1;
        t->vfd = oialr_vfd_of(t->file);
    }
    if ((rc = open_structure(t))) goto done;
    if (t->writable) {
        if ((rc = lock_take(t, path))) goto done;
        t->info.writer_alive = 0;
        if (t->gmetrics < 0 || t->devents < 0 || t->gckpt < 0) {
            rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: incomplete trajectory (no /metrics, /events or /checkpoint)",
                              path);
            goto done;
        }
        t->compress = 0;
        if (H5Fstart_swmr_write(t->file) < 0) {
            h5stack s = stack_get();
            oialr_log(OIALR_LOG_WARN, "%s: appending without SWMR (%s)", path, s.last);
        } else if ((rc = reopen_weights(t))) {
            goto done;
        }
        t->recording = 1;
    }
done:
    hclose(&fapl);
    if (rc)
        traj_free(t);
    else
        *out = t;
    quiet_end(q);
    return rc;
}

const oialr_traj_info *oialr_traj_get_info(const oialr_traj *t) {
    OIALR_ASSERT(t);
    return &t->info;
}

int oialr_traj_nlayers(const oialr_traj *t) {
    OIALR_ASSERT(t);
    return t->nlayers;
}

const oialr_traj_layer *oialr_traj_layer_at(const oialr_traj *t, int i) {
    OIALR_ASSERT(t);
    return i >= 0 && i < t->nlayers ? &t->layers[i].pub : NULL;
}

int oialr_traj_find_layer(const oialr_traj *t, const char *name, int *index) {
    OIALR_ASSERT(t && name);
    for (int i = 0; i < t->nlayers; i++)
        if (!strcmp(t->layers[i].pub.name, name)) {
            if (index) *index = i;
            return OIALR_OK;
        }
    return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer '%s' in this trajectory", t->path, name);
}

int oialr_traj_find_step(const oialr_traj *t, int layer, int64_t step, int64_t *snap) {
    OIALR_ASSERT(t && snap);
    if (layer < 0 || layer >= t->nlayers)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer with index %d", t->path, layer);
    const tlayer *l = &t->layers[layer];
    for (int64_t i = 0; i < l->pub.nsnap; i++)
        if (l->steps[i] == step) {
            *snap = i;
            return OIALR_OK;
        }
    return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: layer %s has no snapshot at step %lld", t->path, l->pub.name,
                        (long long)step);
}

int oialr_traj_read(oialr_traj *t, int layer, int64_t snap, float *out, size_t n) {
    OIALR_ASSERT(t && out);
    if (layer < 0 || layer >= t->nlayers)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer with index %d", t->path, layer);
    tlayer *l = &t->layers[layer];
    if (snap < 0 || snap >= l->pub.nsnap)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: layer %s has %lld snapshots, no index %lld", t->path,
                            l->pub.name, (long long)l->pub.nsnap, (long long)snap);
    if (n < (size_t)l->pub.rows * (size_t)l->pub.cols)
        return oialr_seterr(OIALR_ERR_MISMATCH, "%s: layer %s needs %lld floats, buffer holds %zu", t->path,
                            l->pub.name, (long long)(l->pub.rows * l->pub.cols), n);
    int rc = OIALR_OK;
    h5quiet q = quiet_begin();
    TRY_H5(read_rows(l->dw, H5T_NATIVE_FLOAT, snap, 1, out), OIALR_ERR_IO, "layer %s: cannot read snapshot %lld",
            l->pub.name, (long long)snap);
done:
    quiet_end(q);
    return rc;
}

const char *oialr_traj_column_name(const oialr_traj *t, int i) {
    OIALR_ASSERT(t);
    return i >= 0 && i < t->ncol ? t->colnames[i] : NULL;
}

/* Metrics steps are >= 0 and never decrease (two rows may share a step: a
 * snapshot's row and an evaluation's), read as int64 (i64) or as double. */
static int check_metric_steps(const oialr_traj *t, const int64_t *i64, const double *f64, int64_t k) {
    for (int64_t i = 0; i < k; i++) {
        double x = i64 ? (double)i64[i] : f64[i], prev = i == 0 ? 0 : i64 ? (double)i64[i - 1] : f64[i - 1];
        if (x < 0)
            return oialr_seterr(OIALR_ERR_FORMAT, "%s: /metrics/step: step[%lld] = %.0f is negative", t->path,
                                (long long)i, x);
        if (i > 0 && x < prev)
            return oialr_seterr(OIALR_ERR_FORMAT,
                                "%s: /metrics/step: step[%lld] = %.0f after step[%lld] = %.0f; metrics steps must "
                                "not decrease",
                                t->path, (long long)i, x, (long long)(i - 1), prev);
    }
    return OIALR_OK;
}

int oialr_traj_read_column(oialr_traj *t, const char *name, double *out, int64_t cap, int64_t *n) {
    OIALR_ASSERT(t && name && (out || cap == 0));
    hid_t d = H5I_INVALID_HID;
    if (!strcmp(name, "step")) d = t->dmstep;
    for (int i = 0; i < t->ncol && d < 0; i++)
        if (!strcmp(t->colnames[i], name)) d = t->dcol[i];
    if (d < 0) return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no metric column '%s'", t->path, name);
    int64_t k = cap < t->info.nmetrics ? cap : t->info.nmetrics;
    if (k < 0) k = 0;
    int rc = OIALR_OK;
    h5quiet q = quiet_begin();
    TRY_H5(read_rows(d, H5T_NATIVE_DOUBLE, 0, k, out), OIALR_ERR_IO, "cannot read /metrics/%s", name);
    if (d == t->dmstep && (rc = check_metric_steps(t, NULL, out, k))) goto done;
    if (n) *n = k;
done:
    quiet_end(q);
    return rc;
}

int oialr_traj_read_metric_steps(oialr_traj *t, int64_t *out, int64_t cap, int64_t *n) {
    OIALR_ASSERT(t && (out || cap == 0));
    if (t->dmstep < 0) return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no /metrics", t->path);
    int64_t k = cap < t->info.nmetrics ? cap : t->info.nmetrics;
    if (k < 0) k = 0;
    int rc = OIALR_OK;
    h5quiet q = quiet_begin();
    TRY_H5(read_rows(t->dmstep, H5T_NATIVE_INT64, 0, k, out), OIALR_ERR_IO, "cannot read /metrics/step");
    if ((rc = check_metric_steps(t, out, NULL, k))) goto done;
    if (n) *n = k;
done:
    quiet_end(q);
    return rc;
}

int oialr_traj_read_events(oialr_traj *t, oialr_traj_event *out, int64_t cap, int64_t *n) {
    OIALR_ASSERT(t && (out || cap == 0));
    int64_t k = cap < t->info.nevents ? cap : t->info.nevents;
    if (k < 0) k = 0;
    if (n) *n = 0;
    if (k == 0) return OIALR_OK;
    int rc = OIALR_OK;
    h5quiet q = quiet_begin();
    TRY_H5(read_rows(t->devents, t->tev_mem, 0, k, out), OIALR_ERR_IO, "cannot read /events");
    for (int64_t i = 0; i < k; i++) out[i].layer[OIALR_TRAJ_NAME_MAX - 1] = '\0';
    if (n) *n = k;
done:
    quiet_end(q);
    return rc;
}

int oialr_traj_get_config(oialr_traj *t, const char *key, char *buf, size_t size) {
    OIALR_ASSERT(t && key && buf && size > 0);
    int rc = OIALR_OK;
    hid_t g = H5I_INVALID_HID;
    char *s = NULL;
    h5quiet q = quiet_begin();
    TRY_H5(g = H5Gopen2(t->file, "config", H5P_DEFAULT), OIALR_ERR_NOTFOUND, "no /config group");
    int got = attr_get_str(g, key, &s);
    if (got != 1) {
        rc = got == 0 ? oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no config attribute '%s'", t->path, key)
                      : oialr_seterr(OIALR_ERR_FORMAT, "%s: config attribute '%s' is not a string", t->path, key);
        goto done;
    }
    snprintf(buf, size, "%s", s);
done:
    free(s);
    hclose(&g);
    quiet_end(q);
    return rc;
}

static int ck_get(oialr_traj *t, const char *name, int type, hid_t mtype, void *v, size_t n) {
    int rc = OIALR_OK;
    ckitem *c = ck_find(t, name, type, &rc);
    if (!c) return rc;
    int64_t slot = -1;
    h5quiet q = quiet_begin();
    if ((rc = read_slot(t, &slot))) goto done;
    if (slot != 0 && slot != 1) {
        rc = oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no checkpoint has been committed", t->path);
        goto done;
    }
    if (n != c->n) {
        rc = oialr_seterr(OIALR_ERR_MISMATCH, "%s: checkpoint array '%s' has %zu elements, buffer %zu", t->path, name,
                          c->n, n);
        goto done;
    }
    TRY_H5(read_rows(c->d, mtype, slot, 1, v), OIALR_ERR_IO, "cannot read checkpoint item '%s'", name);
done:
    quiet_end(q);
    return rc;
}

int oialr_traj_ckpt_array_size(oialr_traj *t, const char *name, size_t *n) {
    OIALR_ASSERT(t && name && n);
    int rc = OIALR_OK;
    ckitem *c = ck_find(t, name, -1, &rc);
    if (!c) return rc;
    if (c->type != CK_ARRAY && c->type != CK_AI64)
        return oialr_seterr(OIALR_ERR_MISMATCH, "%s: checkpoint item '%s' is a scalar", t->path, name);
    *n = c->n;
    return OIALR_OK;
}

int oialr_traj_ckpt_get_array(oialr_traj *t, const char *name, float *x, size_t n) {
    OIALR_ASSERT(t && name && x);
    return ck_get(t, name, CK_ARRAY, H5T_NATIVE_FLOAT, x, n);
}

int oialr_traj_ckpt_get_array_i64(oialr_traj *t, const char *name, int64_t *x, size_t n) {
    OIALR_ASSERT(t && name && x);
    return ck_get(t, name, CK_AI64, H5T_NATIVE_INT64, x, n);
}

int oialr_traj_ckpt_get_i64(oialr_traj *t, const char *name, int64_t *v) {
    OIALR_ASSERT(t && name && v);
    return ck_get(t, name, CK_I64, H5T_NATIVE_INT64, v, 1);
}

int oialr_traj_ckpt_get_u64(oialr_traj *t, const char *name, uint64_t *v) {
    OIALR_ASSERT(t && name && v);
    return ck_get(t, name, CK_U64, H5T_NATIVE_UINT64, v, 1);
}

int oialr_traj_refresh(oialr_traj *t) {
    OIALR_ASSERT(t);
    if (t->writable || !t->info.swmr_read) return OIALR_OK; /* nothing can change under us */
    int rc = OIALR_OK;
    h5quiet q = quiet_begin();
    for (int i = 0; i < t->nlayers; i++) {
        tlayer *l = &t->layers[i];
        TRY_H5(H5Drefresh(l->dw), OIALR_ERR_IO, "layer %s: cannot refresh", l->pub.name);
        TRY_H5(H5Drefresh(l->dr), OIALR_ERR_IO, "layer %s: cannot refresh", l->pub.name);
        TRY_H5(H5Drefresh(l->ds), OIALR_ERR_IO, "layer %s: cannot refresh", l->pub.name);
        if ((rc = load_layer_steps(t, l))) goto done;
    }
    if (t->dmstep >= 0) {
        TRY_H5(H5Drefresh(t->dmstep), OIALR_ERR_IO, "cannot refresh /metrics/step");
        int64_t rows = 0, r = 0;
        TRY_H5(rows_written(t->dmstep, &rows), OIALR_ERR_HDF5, "cannot read the extent of /metrics/step");
        for (int i = 0; i < t->ncol; i++) {
            TRY_H5(H5Drefresh(t->dcol[i]), OIALR_ERR_IO, "cannot refresh /metrics/%s", t->colnames[i]);
            TRY_H5(rows_written(t->dcol[i], &r), OIALR_ERR_HDF5, "cannot read the extent of /metrics/%s",
                    t->colnames[i]);
            if (r < rows) rows = r;
        }
        t->info.nmetrics = rows;
    }
    if (t->devents >= 0) {
        TRY_H5(H5Drefresh(t->devents), OIALR_ERR_IO, "cannot refresh /events");
        int64_t e = 0;
        TRY_H5(rows_written(t->devents, &e), OIALR_ERR_HDF5, "cannot read the extent of /events");
        t->info.nevents = e;
    }
    if (t->dslot >= 0) {
        int64_t slot = -1;
        TRY_H5(H5Drefresh(t->dslot), OIALR_ERR_IO, "cannot refresh /checkpoint/slot");
        if ((rc = read_slot(t, &slot))) goto done;
        t->cur_slot = slot == 0 || slot == 1 ? slot : -1;
        t->info.has_ckpt = t->cur_slot >= 0;
    }
done:
    quiet_end(q);
    return rc;
}
