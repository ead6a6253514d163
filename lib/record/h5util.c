/*
 * h5util.c — the small HDF5 helpers of h5util.h: error silencing and the
 * one-line error message, closing any handle, attributes, dataset creation
 * and whole-row reads and writes.
 */
#include "h5util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// errors

h5u_quiet h5u_quiet_begin(void) {
    static int once;
    if (!once) {
        /* HDF5 1.10 crashes in its atexit handler when a file whose writes
         * failed (disk full) is still open; without the handler a process
         * exits cleanly. Only effective before HDF5's first call. */
        once = 1;
        H5dont_atexit();
    }
    h5u_quiet q = {NULL, NULL};
    H5Eget_auto2(H5E_DEFAULT, &q.fn, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}

void h5u_quiet_end(h5u_quiet q) { H5Eset_auto2(H5E_DEFAULT, q.fn, q.data); }

static herr_t stack_cb(unsigned n, const H5E_error2_t *e, void *ud) {
    (void)n;
    h5u_stack *s = ud;
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
    /* HDF5's own file locking ("unable to lock file"); not "superblock" */
    if (strstr(e->desc, "unable to lock")) s->locked = 1;
    if (strstr(e->desc, "signature")) s->signature = 1;
    return 0;
}

h5u_stack h5u_stack_get(void) {
    h5u_stack s;
    memset(&s, 0, sizeof s);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, stack_cb, &s);
    /* read: drop the records. A thread-safe HDF5 frees a thread's stack at
     * its exit but not the records on it (the recorder's writer thread). */
    H5Eclear2(H5E_DEFAULT);
    return s;
}

int h5u_err(const char *path, int code, const char *fmt, ...) {
    h5u_stack s = h5u_stack_get();
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (s.last[0])
        return oialr_seterr(code, "%s: %s (HDF5: %s)", path, what, s.last);
    return oialr_seterr(code, "%s: %s", path, what);
}

void h5u_close(hid_t *id) {
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
// strings and attributes

char *h5u_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

hid_t h5u_str_type(void) {
    hid_t ty = H5Tcopy(H5T_C_S1);
    if (ty < 0) return ty;
    if (H5Tset_size(ty, H5T_VARIABLE) < 0 || H5Tset_cset(ty, H5T_CSET_UTF8) < 0) {
        H5Tclose(ty);
        return H5I_INVALID_HID;
    }
    return ty;
}

herr_t h5u_attr_put_str(hid_t loc, const char *name, const char *val) {
    hid_t ty = H5I_INVALID_HID, sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    herr_t r = -1;
    if (H5Aexists(loc, name) > 0 && H5Adelete(loc, name) < 0) goto done;
    if ((ty = h5u_str_type()) < 0) goto done;
    if ((sp = H5Screate(H5S_SCALAR)) < 0) goto done;
    if ((a = H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (H5Awrite(a, ty, &val) < 0) goto done;
    r = 0;
done:
    h5u_close(&a);
    h5u_close(&sp);
    h5u_close(&ty);
    return r;
}

herr_t h5u_attr_put_num(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *v, hsize_t n) {
    hid_t sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    herr_t r = -1;
    if ((sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR)) < 0) goto done;
    if ((a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (H5Awrite(a, mtype, v) < 0) goto done;
    r = 0;
done:
    h5u_close(&a);
    h5u_close(&sp);
    return r;
}

int h5u_attr_get_str(hid_t loc, const char *name, char **out) {
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
        /* in the file's character set too: an ASCII one (C writers, h5py given bytes) does not read as UTF-8 */
        if ((mt = h5u_str_type()) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0) goto done;
        if (H5Aread(a, mt, &s) < 0) goto done;
        *out = h5u_strdup(s ? s : "");
        H5free_memory(s);
    } else {
        size_t sz = H5Tget_size(ft);
        /* the file's character set: HDF5 converts none into another (a
         * fixed-length UTF-8 string, as oialr analyze wrote until
         * 2026-12-02, did not read as ASCII) */
        if ((mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(mt, sz + 1) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0)
            goto done;
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
    h5u_close(&sp);
    h5u_close(&mt);
    h5u_close(&ft);
    h5u_close(&a);
    return r;
}

int h5u_attr_get_ints(hid_t loc, const char *name, hid_t mtype, void *v, hssize_t maxn, hssize_t *got) {
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
    h5u_close(&ft);
    h5u_close(&sp);
    h5u_close(&a);
    return r;
}

// ----------------------------------------------------------------------------
// datasets

/* Close a and b; after a failure (failed) without losing the error stack
 * that h5u_err() reads: every HDF5 API call, a close too, clears it first,
 * which left "cannot create checkpoint array" without its cause ("File too
 * large"). */
static void close_two(hid_t *a, hid_t *b, int failed) {
    hid_t es = failed ? H5Eget_current_stack() : H5I_INVALID_HID;
    h5u_close(a);
    h5u_close(b);
    if (es >= 0) H5Eset_current_stack(es);
}

hid_t h5u_make_ext(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *fixed, hsize_t chunk0,
                   int compress, hid_t dapl) {
    hsize_t chunk[3] = {chunk0, 0, 0};
    for (int i = 1; i < rank; i++) chunk[i] = fixed[i - 1];
    return h5u_make_ext_chunk(loc, name, ftype, rank, fixed, chunk, compress, 0, dapl);
}

hid_t h5u_make_ext_chunk(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *fixed,
                         const hsize_t *chunk, int compress, int sparse, hid_t dapl) {
    hsize_t dims[3] = {0, 0, 0}, maxd[3] = {H5S_UNLIMITED, 0, 0};
    hid_t sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
    int whole = 1; /* a chunk is one whole row of the dataset */
    for (int i = 1; i < rank; i++) {
        dims[i] = maxd[i] = fixed[i - 1];
        whole &= chunk[i] == fixed[i - 1];
    }
    if ((sp = H5Screate_simple(rank, dims, maxd)) < 0) goto done;
    if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0) goto done;
    if (H5Pset_chunk(dcpl, rank, chunk) < 0) goto done;
    /* A chunk of one row is always written whole: with a fill value to
     * honour, HDF5 would allocate it, fill it, copy the row in and free it
     * for every snapshot (a third of the writer's time); without, it writes
     * the caller's buffer directly. Rows are only read once their step is
     * published, so no unwritten row is ever seen. */
    if (chunk[0] == 1 && whole && !sparse && H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0) goto done;
    /* What an unwritten float element reads as, in h5py too (a low-rank
     * snapshot's weight row, docs/format.md): NaN, never a plausible 0. */
    if (H5Tget_class(ftype) == H5T_FLOAT) {
        double nan = NAN;
        if (H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &nan) < 0) goto done;
    }
    if (compress > 0 && H5Zfilter_avail(H5Z_FILTER_SHUFFLE) > 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        if (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, (unsigned)compress) < 0) goto done;
    }
    d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, dapl);
done:
    close_two(&dcpl, &sp, d < 0);
    return d;
}

hid_t h5u_make_fixed(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims) {
    hid_t sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
    if ((sp = H5Screate_simple(rank, dims, NULL)) < 0) goto done;
    if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0) goto done;
    if (H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0) goto done;
    if (H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0) goto done;
    d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
done:
    close_two(&dcpl, &sp, d < 0);
    return d;
}

int64_t h5u_extent0(hid_t d) {
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
 * slower). block (NULL: whole rows) limits the dims after the first to their
 * leading block[0] (x block[1]) elements. *empty is set when the selection
 * has no element. */
static herr_t select_rows(hid_t d, int64_t at, int64_t n, const hsize_t *block, int grow, hid_t *fs, hid_t *ms,
                          int *empty) {
    hsize_t dims[3], start[3] = {(hsize_t)at, 0, 0}, count[3];
    *empty = 0;
    if ((*fs = H5Dget_space(d)) < 0) return -1;
    int rank = H5Sget_simple_extent_dims(*fs, dims, NULL);
    if (rank < 1 || rank > 3) return -1;
    if (dims[0] < (hsize_t)(at + n)) {
        if (!grow) return -1;
        dims[0] = (hsize_t)(at + n);
        h5u_close(fs);
        if (H5Dset_extent(d, dims) < 0) return -1;
        if ((*fs = H5Dget_space(d)) < 0) return -1;
    }
    hsize_t total = 1;
    count[0] = (hsize_t)n;
    for (int i = 1; i < rank; i++) {
        count[i] = dims[i];
        if (block) {
            if (block[i - 1] > dims[i]) return -1;
            count[i] = block[i - 1];
        }
    }
    for (int i = 0; i < rank; i++) total *= count[i];
    if (total == 0) {
        *empty = 1;
        return 0;
    }
    if (H5Sselect_hyperslab(*fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) return -1;
    if ((*ms = H5Screate_simple(rank, count, NULL)) < 0) return -1;
    return 0;
}

herr_t h5u_write_rows(hid_t d, hid_t mtype, int64_t at, int64_t n, const void *buf, int grow) {
    return h5u_write_block(d, mtype, at, n, NULL, buf, grow);
}

herr_t h5u_write_block(hid_t d, hid_t mtype, int64_t at, int64_t n, const hsize_t *block, const void *buf,
                       int grow) {
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    int empty;
    herr_t r = select_rows(d, at, n, block, grow, &fs, &ms, &empty);
    if (r == 0 && !empty) r = H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    close_two(&ms, &fs, r < 0);
    return r;
}

herr_t h5u_read_rows(hid_t d, hid_t mtype, int64_t at, int64_t n, void *buf) {
    return h5u_read_block(d, mtype, at, n, NULL, buf);
}

herr_t h5u_read_block(hid_t d, hid_t mtype, int64_t at, int64_t n, const hsize_t *block, void *buf) {
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    int empty;
    herr_t r = select_rows(d, at, n, block, 0, &fs, &ms, &empty);
    if (r == 0 && !empty) r = H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    h5u_close(&ms);
    h5u_close(&fs);
    return r;
}
