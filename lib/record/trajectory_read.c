/*
 * trajectory_read.c — the trajectory reader (oialr/trajectory.h): open in
 * read, append or recover mode, the format checks, refresh of a file a
 * writer is still recording (SWMR read), and the getters and reads.
 *
 * A reader trusts nothing in the file: every dataset's type class, rank and
 * shape is checked against docs/format.md before anything is read into a
 * buffer sized from it, and steps are checked to increase ("What a reader
 * checks" there). Row counts come from traj_rows_written(), never from an extent
 * alone.
 */
#include "trajectory_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// ----------------------------------------------------------------------------
// format checks

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
int traj_check_dset(oialr_traj *t, hid_t d, const char *obj, H5T_class_t cls, int rank, const int64_t *want,
                    const char *expect) {
    hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
    int rc = OIALR_OK;
    if (ty < 0 || sp < 0) {
        rc = h5u_err(t->path, OIALR_ERR_HDF5, "%s: cannot read its type and shape", obj);
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
    h5u_close(&ty);
    h5u_close(&sp);
    return rc;
}

/* 1 if chunk k (along dim 0) of a chunked dataset has storage, 0 if not,
 * -1 on error. */
int traj_chunk_allocated(hid_t d, hsize_t k, hsize_t chunk0) {
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
herr_t traj_rows_written(hid_t d, int64_t *n) {
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
        /* a contiguous dataset never written has no storage at all: 2^37
         * "rows" of fill values in a file of kilobytes */
        H5D_space_status_t status;
        if (layout == H5D_CONTIGUOUS && dims[0] > 0) {
            if (H5Dget_space_status(d, &status) < 0) goto done;
            if (status == H5D_SPACE_STATUS_NOT_ALLOCATED) *n = 0;
        }
        r = 0;
        goto done;
    }
    if (H5Pget_chunk(dcpl, rank, chunk) != rank || chunk[0] == 0) goto done;
    hsize_t lo = 0, hi = (dims[0] - 1) / chunk[0];
    int a = traj_chunk_allocated(d, hi, chunk[0]);
    if (a < 0) goto done;
    if (!a) {
        /* chunks [0, lo) have storage, chunk hi has none */
        while (lo < hi) {
            hsize_t mid = lo + (hi - lo) / 2;
            if ((a = traj_chunk_allocated(d, mid, chunk[0])) < 0) goto done;
            if (a) lo = mid + 1;
            else hi = mid;
        }
        *n = (int64_t)(lo * chunk[0]);
    }
    r = 0;
done:
    h5u_close(&dcpl);
    h5u_close(&sp);
    return r;
}

// ----------------------------------------------------------------------------
// layers, metrics, events

static int load_layer_steps(oialr_traj *t, tlayer *l) {
    int rc = OIALR_OK;
    int64_t nw = 0, ns = 0, nr = 0;
    if (traj_rows_written(l->dw, &nw) < 0 || traj_rows_written(l->ds, &ns) < 0 || traj_rows_written(l->dr, &nr) < 0)
        return h5u_err(t->path, OIALR_ERR_HDF5, "layer %s: cannot read extents", l->pub.name);
    /* a factored layer's weight rows stop at its switch: its basis bounds */
    int64_t n = l->pub.factor_capacity > 0 ? ns : (nw < ns ? nw : ns);
    if (nr < n) n = nr;
    if (l->pub.factor_capacity > 0 && (rc = traj_factors_bound(t, l, &n))) return rc;
    if (n > READ_MAX_SNAPSHOTS)
        return oialr_seterr(OIALR_ERR_OVERFLOW, "%s: layer %s: %lld snapshots, more than a reader accepts (%lld)",
                            t->path, l->pub.name, (long long)n, (long long)READ_MAX_SNAPSHOTS);
    /* the weight's shape is fixed at open: a file that changes it under a
     * live reader would overrun every snapshot buffer */
    char obj[OIALR_TRAJ_NAME_MAX + 16];
    snprintf(obj, sizeof obj, "/layers/%s/weight", l->pub.name);
    const int64_t want[3] = {-1, l->pub.rows, l->pub.cols};
    if ((rc = traj_check_dset(t, l->dw, obj, H5T_FLOAT, 3, want,
                              "float [T, rows, cols] with the layer's rows and cols")))
        return rc;
    if (traj_layer_grow(l, n ? n : 1)) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    TRY_H5(h5u_read_rows(l->ds, H5T_NATIVE_INT64, 0, n, l->steps), OIALR_ERR_IO, "layer %s: cannot read steps",
            l->pub.name);
    TRY_H5(h5u_read_rows(l->dr, H5T_NATIVE_INT32, 0, n, l->ranks), OIALR_ERR_IO, "layer %s: cannot read ranks",
            l->pub.name);
    if (l->pub.factor_capacity > 0 && (rc = traj_factors_load(t, l, &n))) return rc;
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
    int got = h5u_attr_get_ints(l->grp, attr, H5T_NATIVE_INT64, &v, 1, NULL);
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
    tlayer *l = traj_new_layer(t);
    if (!l) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    t->nlayers++;
    t->info.nlayers = t->nlayers;
    snprintf(l->pub.name, sizeof l->pub.name, "%s", name);
    hid_t dapl = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    char *kind = NULL;
    char obj[OIALR_TRAJ_NAME_MAX + 16];
    TRY_H5(l->grp = H5Gopen2(lay, name, H5P_DEFAULT), OIALR_ERR_FORMAT, "layer %s: not a group", name);
    TRY_H5(dapl = traj_weight_dapl(), OIALR_ERR_HDF5, "cannot set up dataset access");
    TRY_H5(l->dw = H5Dopen2(l->grp, "weight", dapl), OIALR_ERR_FORMAT, "layer %s: no weight dataset", name);
    TRY_H5(l->ds = H5Dopen2(l->grp, "step", H5P_DEFAULT), OIALR_ERR_FORMAT, "layer %s: no step dataset", name);
    TRY_H5(l->dr = H5Dopen2(l->grp, "rank", H5P_DEFAULT), OIALR_ERR_FORMAT, "layer %s: no rank dataset", name);
    snprintf(obj, sizeof obj, "/layers/%s/weight", name);
    if ((rc = traj_check_dset(t, l->dw, obj, H5T_FLOAT, 3, NULL, "float [T, rows, cols]"))) goto done;
    snprintf(obj, sizeof obj, "/layers/%s/step", name);
    if ((rc = traj_check_dset(t, l->ds, obj, H5T_INTEGER, 1, NULL, "integer [T]"))) goto done;
    snprintf(obj, sizeof obj, "/layers/%s/rank", name);
    if ((rc = traj_check_dset(t, l->dr, obj, H5T_INTEGER, 1, NULL, "integer [T]"))) goto done;
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
    if (h5u_attr_get_str(l->grp, "kind", &kind) == 1) snprintf(l->pub.kind, sizeof l->pub.kind, "%s", kind);
    hssize_t nd = 0;
    if (h5u_attr_get_ints(l->grp, "shape", H5T_NATIVE_INT64, l->pub.shape, 4, &nd) == 1) {
        l->pub.ndim = (int)nd;
    } else {
        l->pub.ndim = 2;
        l->pub.shape[0] = l->pub.rows;
        l->pub.shape[1] = l->pub.cols;
    }
    if ((rc = traj_factors_open(t, l))) goto done;
    rc = load_layer_steps(t, l);
done:
    free(kind);
    h5u_close(&sp);
    h5u_close(&dapl);
    return rc;
}

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
    if (!(nl->v[nl->n] = h5u_strdup(name))) {
        nl->oom = 1;
        return -1;
    }
    nl->n++;
    return 0;
}

void traj_namelist_free(namelist *nl) {
    for (int i = 0; i < nl->n; i++) free(nl->v[i]);
    free(nl->v);
    memset(nl, 0, sizeof *nl);
}

/* Names of the links of a group, in creation order if tracked. */
int traj_list_group(hid_t g, namelist *nl) {
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, list_cb, nl) >= 0) return 0;
    traj_namelist_free(nl);
    if (nl->oom) return -1;
    idx = 0;
    return H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, list_cb, nl) < 0 ? -1 : 0;
}

static int open_metrics(oialr_traj *t) {
    int rc = OIALR_OK;
    namelist nl = {0};
    char *cols = NULL;
    htri_t ex = H5Lexists(t->file, "metrics", H5P_DEFAULT);
    if (ex <= 0) return ex < 0 ? h5u_err(t->path, OIALR_ERR_HDF5, "cannot look for /metrics") : OIALR_OK;
    TRY_H5(t->gmetrics = H5Gopen2(t->file, "metrics", H5P_DEFAULT), OIALR_ERR_FORMAT, "/metrics is not a group");
    TRY_H5(t->dmstep = H5Dopen2(t->gmetrics, "step", H5P_DEFAULT), OIALR_ERR_FORMAT, "no /metrics/step");
    if ((rc = traj_check_dset(t, t->dmstep, "/metrics/step", H5T_INTEGER, 1, NULL, "integer [R]"))) goto done;
    if (h5u_attr_get_str(t->gmetrics, "columns", &cols) == 1 && cols[0]) {
        char *save = NULL;
        for (char *tok = strtok_r(cols, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (list_cb(t->gmetrics, tok, NULL, &nl) < 0) {
                rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
                goto done;
            }
        }
    } else {
        TRY_H5(traj_list_group(t->gmetrics, &nl), OIALR_ERR_HDF5, "cannot list /metrics");
    }
    t->colnames = calloc((size_t)nl.n + 1, sizeof *t->colnames);
    t->dcol = malloc(((size_t)nl.n + 1) * sizeof *t->dcol);
    if (!t->colnames || !t->dcol) {
        rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
        goto done;
    }
    int64_t rows = 0, r = 0;
    TRY_H5(traj_rows_written(t->dmstep, &rows), OIALR_ERR_HDF5, "cannot read the extent of /metrics/step");
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
        if ((rc = traj_check_dset(t, t->dcol[k], obj, H5T_FLOAT, 1, NULL, "float [R]"))) goto done;
        TRY_H5(traj_rows_written(t->dcol[k], &r), OIALR_ERR_HDF5, "cannot read the extent of %s", obj);
        if (r < rows) rows = r;
    }
    t->info.ncolumns = t->ncol;
    t->info.nmetrics = rows;
done:
    free(cols);
    traj_namelist_free(&nl);
    return rc;
}

/* /events: a compound [E] with every field of the format's table (HDF5
 * converts field by field, by name; a missing one would stay garbage). */
static int check_events(oialr_traj *t) {
    static const char *const fields[] = {"step", "layer", "kind", "stability", "rank_before", "rank_after"};
    int rc = traj_check_dset(t, t->devents, "/events", H5T_COMPOUND, 1, NULL, "compound [E]");
    if (rc) return rc;
    hid_t ty = H5Dget_type(t->devents);
    if (ty < 0) return h5u_err(t->path, OIALR_ERR_HDF5, "/events: cannot read its type");
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
    int got = h5u_attr_get_str(t->file, "format", &fmt);
    if (got < 0) { /* there but unreadable: damage, not another layout */
        rc = h5u_err(t->path, OIALR_ERR_FORMAT, "cannot read the 'format' attribute of the root group");
        goto done;
    }
    if (got == 1 && !strcmp(fmt, "oialr-analysis")) { /* a common mix-up: name the file's kind and source */
        char *src = NULL;
        int has = h5u_attr_get_str(t->file, "source", &src) == 1 && src[0];
        rc = oialr_seterr(OIALR_ERR_FORMAT,
                          "%s: an analysis results file (format \"oialr-analysis\", written by oialr analyze), "
                          "not a trajectory: give the trajectory it was made from%s%s%s",
                          t->path, has ? " (" : "", has ? src : "", has ? ")" : "");
        free(src);
        goto done;
    }
    if (got != 1 || strcmp(fmt, OIALR_TRAJ_FORMAT) != 0) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: HDF5 file but not an oialr trajectory (%s%.64s%s)", t->path,
                          got != 1 ? "no 'format' attribute" : "its format attribute is \"", got == 1 ? fmt : "",
                          got == 1 ? "\", not \"" OIALR_TRAJ_FORMAT "\"" : "");
        goto done;
    }
    int32_t ver = 0;
    if (h5u_attr_get_ints(t->file, "format_version", H5T_NATIVE_INT32, &ver, 1, NULL) != 1) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: no integer 'format_version' attribute", t->path);
        goto done;
    }
    if (ver > OIALR_TRAJ_FORMAT_VERSION || ver < 1) {
        rc = oialr_seterr(OIALR_ERR_VERSION, "%s: format_version %d; this liboialr %s reads versions 1..%d", t->path,
                          (int)ver, OIALR_VERSION_STRING, OIALR_TRAJ_FORMAT_VERSION);
        goto done;
    }
    t->info.format_version = ver;
    if (h5u_attr_get_str(t->file, "created", &s) == 1) snprintf(t->info.created, sizeof t->info.created, "%s", s);
    free(s);
    s = NULL;
    if (h5u_attr_get_str(t->file, "command_line", &t->cmdline) == 1) t->info.command_line = t->cmdline;
    uint64_t seed = 0;
    if (h5u_attr_get_ints(t->file, "seed", H5T_NATIVE_UINT64, &seed, 1, NULL) == 1) t->info.seed = seed;
    if ((rc = traj_event_types(t))) goto done;
    /* layers */
    htri_t ex = H5Lexists(t->file, "layers", H5P_DEFAULT);
    if (ex <= 0) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: no /layers group", t->path);
        goto done;
    }
    TRY_H5(lay = H5Gopen2(t->file, "layers", H5P_DEFAULT), OIALR_ERR_FORMAT, "/layers is not a group");
    TRY_H5(traj_list_group(lay, &nl), OIALR_ERR_HDF5, "cannot list /layers");
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
        TRY_H5(traj_rows_written(t->devents, &e), OIALR_ERR_HDF5, "cannot read the extent of /events");
        t->info.nevents = e;
    }
    rc = traj_open_ckpt(t);
done:
    traj_namelist_free(&nl);
    h5u_close(&lay);
    free(fmt);
    free(s);
    return rc;
}

// ----------------------------------------------------------------------------
// open

int oialr_traj_open(oialr_traj **out, const char *path, int mode) { return traj_open_mode(out, path, mode, 1); }

int traj_open_mode(oialr_traj **out, const char *path, int mode, int swmr) {
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
    h5u_quiet q = h5u_quiet_begin();
    int rc = OIALR_OK;
    hid_t fapl = H5I_INVALID_HID;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: not an HDF5 file%s", path, st.st_size == 0 ? " (empty)" : "");
        goto done;
    }
    t->info.writer_alive = traj_lock_held(path);
    TRY_H5(fapl = traj_file_fapl(mode != OIALR_TRAJ_READ), OIALR_ERR_HDF5, "cannot set up file access");
    if (mode == OIALR_TRAJ_READ) {
        /* plain open with default bounds so files of any libver open */
        TRY_H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST), OIALR_ERR_HDF5, "fapl");
        t->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
        if (t->file < 0) {
            h5u_stack s = h5u_stack_get();
            int locked = s.locked; /* HDF5's "unable to lock": another process holds the file */
            /* a live writer's file may end short of the space HDF5 has
             * reserved in it for a moment: SWMR-read does not check that */
            if (s.truncated && !t->info.writer_alive) {
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
                h5u_stack s2 = h5u_stack_get();
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
            h5u_stack s = h5u_stack_get();
            /* the writer first: a live writer's file may end short of the
             * space HDF5 reserved in it for a moment ("truncated file"),
             * and a second writer was then told the file was damaged */
            if (t->info.writer_alive) {
                rc = oialr_seterr(OIALR_ERR_LOCKED, "%s: a writer process is recording this trajectory", path);
                goto done;
            }
            if (s.truncated) {
                rc = oialr_seterr(OIALR_ERR_TRUNCATED, "%s: truncated file (%s)", path, s.last);
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
            if (!ok) rc = h5u_err(path, OIALR_ERR_HDF5, "cannot recover the file");
            if (rf >= 0 && H5Fclose(rf) < 0 && ok) rc = h5u_err(path, OIALR_ERR_IO, "cannot recover the file");
            h5u_close(&rfapl);
            if (rc) goto done;
            t->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
            if (t->file < 0) {
                rc = h5u_err(path, OIALR_ERR_HDF5, "cannot reopen the recovered file");
                goto done;
            }
            oialr_log(OIALR_LOG_INFO, "%s: recovered a trajectory whose writer was killed", path);
        }
        t->writable = 1;
        t->vfd = oialr_vfd_of(t->file);
    }
    if ((rc = open_structure(t))) goto done;
    if (t->writable) {
        if ((rc = traj_lock_take(t, path))) goto done;
        t->info.writer_alive = 0;
        if (t->gmetrics < 0 || t->devents < 0 || t->gckpt < 0) {
            rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: incomplete trajectory (no /metrics, /events or /checkpoint)",
                              path);
            goto done;
        }
        t->compress = 0;
        if (!swmr) {
            /* a rewind (trajectory_rewind.c): shrinking needs the plain mode */
        } else if (H5Fstart_swmr_write(t->file) < 0) {
            h5u_stack s = h5u_stack_get();
            oialr_log(OIALR_LOG_WARN, "%s: appending without SWMR (%s)", path, s.last);
        } else if ((rc = traj_reopen_weights(t))) {
            goto done;
        }
        t->recording = 1;
    }
done:
    h5u_close(&fapl);
    if (rc)
        traj_free(t);
    else
        *out = t;
    h5u_quiet_end(q);
    return rc;
}

// ----------------------------------------------------------------------------
// getters, reads, refresh

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
    h5u_quiet q = h5u_quiet_begin();
    if (l->pub.factor_capacity > 0) {
        rc = traj_factors_read(t, l, snap, out);
        goto done;
    }
    TRY_H5(h5u_read_rows(l->dw, H5T_NATIVE_FLOAT, snap, 1, out), OIALR_ERR_IO, "layer %s: cannot read snapshot %lld",
            l->pub.name, (long long)snap);
done:
    h5u_quiet_end(q);
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
    h5u_quiet q = h5u_quiet_begin();
    TRY_H5(h5u_read_rows(d, H5T_NATIVE_DOUBLE, 0, k, out), OIALR_ERR_IO, "cannot read /metrics/%s", name);
    if (d == t->dmstep && (rc = check_metric_steps(t, NULL, out, k))) goto done;
    if (n) *n = k;
done:
    h5u_quiet_end(q);
    return rc;
}

int oialr_traj_read_metric_steps(oialr_traj *t, int64_t *out, int64_t cap, int64_t *n) {
    OIALR_ASSERT(t && (out || cap == 0));
    if (t->dmstep < 0) return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no /metrics", t->path);
    int64_t k = cap < t->info.nmetrics ? cap : t->info.nmetrics;
    if (k < 0) k = 0;
    int rc = OIALR_OK;
    h5u_quiet q = h5u_quiet_begin();
    TRY_H5(h5u_read_rows(t->dmstep, H5T_NATIVE_INT64, 0, k, out), OIALR_ERR_IO, "cannot read /metrics/step");
    if ((rc = check_metric_steps(t, out, NULL, k))) goto done;
    if (n) *n = k;
done:
    h5u_quiet_end(q);
    return rc;
}

int oialr_traj_read_events(oialr_traj *t, oialr_traj_event *out, int64_t cap, int64_t *n) {
    OIALR_ASSERT(t && (out || cap == 0));
    int64_t k = cap < t->info.nevents ? cap : t->info.nevents;
    if (k < 0) k = 0;
    if (n) *n = 0;
    if (k == 0) return OIALR_OK;
    int rc = OIALR_OK;
    h5u_quiet q = h5u_quiet_begin();
    TRY_H5(h5u_read_rows(t->devents, t->tev_mem, 0, k, out), OIALR_ERR_IO, "cannot read /events");
    for (int64_t i = 0; i < k; i++) out[i].layer[OIALR_TRAJ_NAME_MAX - 1] = '\0';
    if (n) *n = k;
done:
    h5u_quiet_end(q);
    return rc;
}

int oialr_traj_get_config(oialr_traj *t, const char *key, char *buf, size_t size) {
    OIALR_ASSERT(t && key && buf && size > 0);
    int rc = OIALR_OK;
    hid_t g = H5I_INVALID_HID;
    char *s = NULL;
    h5u_quiet q = h5u_quiet_begin();
    TRY_H5(g = H5Gopen2(t->file, "config", H5P_DEFAULT), OIALR_ERR_NOTFOUND, "no /config group");
    int got = h5u_attr_get_str(g, key, &s);
    if (got != 1) {
        rc = got == 0 ? oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no config attribute '%s'", t->path, key)
                      : oialr_seterr(OIALR_ERR_FORMAT, "%s: config attribute '%s' is not a string", t->path, key);
        goto done;
    }
    snprintf(buf, size, "%s", s);
done:
    free(s);
    h5u_close(&g);
    h5u_quiet_end(q);
    return rc;
}

int oialr_traj_config_key(oialr_traj *t, int i, char *buf, size_t size) {
    OIALR_ASSERT(t && buf && size > 0);
    int rc = OIALR_OK;
    hid_t g = H5I_INVALID_HID;
    H5O_info_t oi;
    buf[0] = '\0';
    h5u_quiet q = h5u_quiet_begin();
    TRY_H5(g = H5Gopen2(t->file, "config", H5P_DEFAULT), OIALR_ERR_NOTFOUND, "no /config group");
    TRY_H5(H5Oget_info2(g, &oi, H5O_INFO_NUM_ATTRS), OIALR_ERR_HDF5, "cannot read /config");
    if (i < 0 || (hsize_t)i >= oi.num_attrs) {
        rc = oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no config attribute number %d (%llu in /config)", t->path, i,
                          (unsigned long long)oi.num_attrs);
        goto done;
    }
    /* by name: /config does not track the order its attributes were made in */
    TRY_H5(H5Aget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)i, buf, size, H5P_DEFAULT),
           OIALR_ERR_HDF5, "cannot read the name of config attribute %d", i);
done:
    h5u_close(&g);
    h5u_quiet_end(q);
    return rc;
}

int oialr_traj_refresh(oialr_traj *t) {
    OIALR_ASSERT(t);
    if (t->writable || !t->info.swmr_read) return OIALR_OK; /* nothing can change under us */
    t->info.writer_alive = traj_lock_held(t->path); /* before the refresh: 0 means all it wrote is seen below */
    int rc = OIALR_OK;
    h5u_quiet q = h5u_quiet_begin();
    for (int i = 0; i < t->nlayers; i++) {
        tlayer *l = &t->layers[i];
        TRY_H5(H5Drefresh(l->dw), OIALR_ERR_IO, "layer %s: cannot refresh", l->pub.name);
        TRY_H5(H5Drefresh(l->dr), OIALR_ERR_IO, "layer %s: cannot refresh", l->pub.name);
        TRY_H5(H5Drefresh(l->ds), OIALR_ERR_IO, "layer %s: cannot refresh", l->pub.name);
        if ((rc = traj_factors_refresh(t, l)) || (rc = load_layer_steps(t, l))) goto done;
    }
    if (t->dmstep >= 0) {
        TRY_H5(H5Drefresh(t->dmstep), OIALR_ERR_IO, "cannot refresh /metrics/step");
        int64_t rows = 0, r = 0;
        TRY_H5(traj_rows_written(t->dmstep, &rows), OIALR_ERR_HDF5, "cannot read the extent of /metrics/step");
        for (int i = 0; i < t->ncol; i++) {
            TRY_H5(H5Drefresh(t->dcol[i]), OIALR_ERR_IO, "cannot refresh /metrics/%s", t->colnames[i]);
            TRY_H5(traj_rows_written(t->dcol[i], &r), OIALR_ERR_HDF5, "cannot read the extent of /metrics/%s",
                    t->colnames[i]);
            if (r < rows) rows = r;
        }
        t->info.nmetrics = rows;
    }
    if (t->devents >= 0) {
        TRY_H5(H5Drefresh(t->devents), OIALR_ERR_IO, "cannot refresh /events");
        int64_t e = 0;
        TRY_H5(traj_rows_written(t->devents, &e), OIALR_ERR_HDF5, "cannot read the extent of /events");
        t->info.nevents = e;
    }
    if (t->dslot >= 0) {
        int64_t slot = -1;
        TRY_H5(H5Drefresh(t->dslot), OIALR_ERR_IO, "cannot refresh /checkpoint/slot");
        if ((rc = traj_read_slot(t, &slot))) goto done;
        t->cur_slot = slot == 0 || slot == 1 ? slot : -1;
        t->info.has_ckpt = t->cur_slot >= 0;
    }
done:
    h5u_quiet_end(q);
    return rc;
}
