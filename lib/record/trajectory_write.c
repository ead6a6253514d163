/*
 * trajectory_write.c — the trajectory writer (oialr/trajectory.h), in two
 * phases. Phase 1 creates the file under a temporary name with libver
 * bounds (latest, latest), superblock v3 as SWMR needs, and every object:
 * root attributes, /config, the layers, /metrics (trajectory_checkpoint.c
 * declares the checkpoint items); begin adds what is still missing
 * (default metrics, /events, /checkpoint) and starts H5Fstart_swmr_write,
 * after which SWMR allows no new objects. Phase 2 appends snapshots,
 * metrics rows and events, each flushed so that a live reader never sees a
 * row half written. On disk explicit little-endian types, in memory native
 * ones; extendible chunked datasets, chunk = one snapshot.
 */
#include "trajectory_impl.h"

#include "base/hot.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

// ----------------------------------------------------------------------------
// phase 1: create, config, declare

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
    if (traj_lock_held(path))
        return oialr_seterr(OIALR_ERR_LOCKED, "%s: another process is writing this trajectory; nothing was changed",
                            path);
    oialr_traj *t = traj_new(path);
    if (!t) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
    h5u_quiet q = h5u_quiet_begin();
    hid_t fapl = H5I_INVALID_HID, gcpl = H5I_INVALID_HID, g = H5I_INVALID_HID;
    t->writable = 1;
    t->compress = opt->compress;
    t->cmdline = h5u_strdup(opt->command_line ? opt->command_line : "");
    if (!t->cmdline) {
        rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    t->info.command_line = t->cmdline;
    t->info.format_version = 1; /* 2 once a layer is declared factored */
    t->info.seed = opt->seed;
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(t->info.created, sizeof t->info.created, "%Y-%m-%dT%H:%M:%SZ", &tmv);

    TRY_H5(fapl = traj_file_fapl(1), OIALR_ERR_HDF5, "cannot set up file access");
    if ((rc = oialr_output_begin(&t->out, path, opt->force))) goto done;
    /* the empty temporary file is this run's own */
    t->file = H5Fcreate(t->out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (t->file < 0) {
        h5u_stack s = h5u_stack_get();
        rc = oialr_seterr(s.locked ? OIALR_ERR_LOCKED : OIALR_ERR_IO, "%s: cannot create the file: %s", path,
                          s.last[0] ? s.last : "unknown HDF5 error");
        goto done;
    }
    if ((rc = traj_lock_take(t, t->out.tmp))) goto done;
    t->vfd = oialr_vfd_of(t->file);
    int32_t ver = 1;
    TRY_H5(h5u_attr_put_str(t->file, "format", OIALR_TRAJ_FORMAT), OIALR_ERR_IO, "cannot write root attributes");
    TRY_H5(h5u_attr_put_num(t->file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &ver, 0), OIALR_ERR_IO,
            "cannot write root attributes");
    TRY_H5(h5u_attr_put_str(t->file, "created", t->info.created), OIALR_ERR_IO, "cannot write root attributes");
    TRY_H5(h5u_attr_put_num(t->file, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &opt->seed, 0), OIALR_ERR_IO,
            "cannot write root attributes");
    TRY_H5(h5u_attr_put_str(t->file, "command_line", t->cmdline), OIALR_ERR_IO, "cannot write root attributes");
    TRY_H5(h5u_attr_put_str(t->file, "library", "liboialr " OIALR_VERSION_STRING), OIALR_ERR_IO,
            "cannot write root attributes");
    TRY_H5(g = H5Gcreate2(t->file, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /config");
    h5u_close(&g);
    TRY_H5(gcpl = traj_order_gcpl(), OIALR_ERR_HDF5, "cannot set up /layers");
    TRY_H5(g = H5Gcreate2(t->file, "layers", H5P_DEFAULT, gcpl, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /layers");
    h5u_close(&g);
    if ((rc = traj_event_types(t))) goto done;
done:
    h5u_close(&g);
    h5u_close(&gcpl);
    h5u_close(&fapl);
    if (rc) {
        oialr_output o = t->out; /* the temporary file: the one thing made here */
        memset(&t->out, 0, sizeof t->out);
        traj_free(t);
        oialr_output_abort(&o);
    } else {
        *out = t;
    }
    h5u_quiet_end(q);
    return rc;
}

int traj_need_define(oialr_traj *t, const char *what) {
    if (!t->writable) return oialr_seterr(OIALR_ERR_ARG, "%s: %s: the trajectory is open read-only", t->path, what);
    if (t->recording)
        return oialr_seterr(OIALR_ERR_ARG, "%s: %s after recording started (SWMR allows no new objects)",
                            t->path, what);
    return OIALR_OK;
}

int traj_check_name(const oialr_traj *t, const char *what, const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= OIALR_TRAJ_NAME_MAX)
        return oialr_seterr(OIALR_ERR_ARG, "%s: %s name must have 1..%d characters", t->path, what,
                            OIALR_TRAJ_NAME_MAX - 1);
    if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return oialr_seterr(OIALR_ERR_ARG, "%s: %s name '%s' may not contain '/' or be '.'/'..'", t->path,
                            what, name);
    return OIALR_OK;
}

int oialr_traj_set_config(oialr_traj *t, const char *key, const char *value) {
    OIALR_ASSERT(t && key && value);
    int rc = traj_need_define(t, "cannot set a config attribute");
    if (rc) return rc;
    if (!key[0]) return oialr_seterr(OIALR_ERR_ARG, "%s: empty config key", t->path);
    h5u_quiet q = h5u_quiet_begin();
    hid_t g = H5I_INVALID_HID;
    TRY_H5(g = H5Gopen2(t->file, "config", H5P_DEFAULT), OIALR_ERR_HDF5, "cannot open /config");
    TRY_H5(h5u_attr_put_str(g, key, value), OIALR_ERR_IO, "cannot write config attribute '%s'", key);
done:
    h5u_close(&g);
    h5u_quiet_end(q);
    return rc;
}

int oialr_traj_declare_layer(oialr_traj *t, const char *name, int64_t rows, int64_t cols, const char *kind,
                             int ndim, const int64_t *shape, int *index) {
    OIALR_ASSERT(t);
    int rc = traj_need_define(t, "cannot declare a layer");
    if (rc) return rc;
    if ((rc = traj_check_name(t, "layer", name))) return rc;
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
    tlayer *l = traj_new_layer(t);
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
    h5u_quiet q = h5u_quiet_begin();
    hid_t lay = H5I_INVALID_HID, dapl = H5I_INVALID_HID;
    hsize_t fixed[2] = {(hsize_t)rows, (hsize_t)cols};
    TRY_H5(lay = H5Gopen2(t->file, "layers", H5P_DEFAULT), OIALR_ERR_HDF5, "cannot open /layers");
    TRY_H5(l->grp = H5Gcreate2(lay, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create layer '%s'", name);
    TRY_H5(h5u_attr_put_str(l->grp, "kind", l->pub.kind), OIALR_ERR_IO, "layer '%s': cannot write attributes", name);
    TRY_H5(h5u_attr_put_num(l->grp, "shape", H5T_STD_I64LE, H5T_NATIVE_INT64, l->pub.shape, (hsize_t)l->pub.ndim),
            OIALR_ERR_IO, "layer '%s': cannot write attributes", name);
    TRY_H5(h5u_attr_put_num(l->grp, "rows", H5T_STD_I64LE, H5T_NATIVE_INT64, &rows, 0), OIALR_ERR_IO,
            "layer '%s': cannot write attributes", name);
    TRY_H5(h5u_attr_put_num(l->grp, "cols", H5T_STD_I64LE, H5T_NATIVE_INT64, &cols, 0), OIALR_ERR_IO,
            "layer '%s': cannot write attributes", name);
    TRY_H5(dapl = traj_weight_dapl(), OIALR_ERR_HDF5, "cannot set up dataset access");
    TRY_H5(l->dw = h5u_make_ext(l->grp, "weight", H5T_IEEE_F32LE, 3, fixed, 1, t->compress, dapl), OIALR_ERR_IO,
            "layer '%s': cannot create the weight dataset", name);
    TRY_H5(l->ds = h5u_make_ext(l->grp, "step", H5T_STD_I64LE, 1, NULL, 256, 0, H5P_DEFAULT), OIALR_ERR_IO,
            "layer '%s': cannot create the step dataset", name);
    TRY_H5(l->dr = h5u_make_ext(l->grp, "rank", H5T_STD_I32LE, 1, NULL, 256, 0, H5P_DEFAULT), OIALR_ERR_IO,
            "layer '%s': cannot create the rank dataset", name);
    l->pub.steps = NULL;
    l->pub.ranks = NULL;
    if (index) *index = t->nlayers;
    t->nlayers++;
    t->info.nlayers = t->nlayers;
done:
    if (rc) {
        h5u_close(&l->dw);
        h5u_close(&l->ds);
        h5u_close(&l->dr);
        h5u_close(&l->grp);
    }
    h5u_close(&dapl);
    h5u_close(&lay);
    h5u_quiet_end(q);
    return rc;
}

/* Chunks of the factor datasets: CHUNK_R columns of U and V, CHUNK_R x
 * CHUNK_R of Σ, so a snapshot of rank r allocates about r columns, not
 * the capacity's. */
#define CHUNK_R 32

int oialr_traj_declare_factors(oialr_traj *t, int layer, int64_t capacity) {
    OIALR_ASSERT(t);
    int rc = traj_need_define(t, "cannot declare factors");
    if (rc) return rc;
    if (layer < 0 || layer >= t->nlayers)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer with index %d", t->path, layer);
    tlayer *l = &t->layers[layer];
    int64_t kmax = l->pub.rows < l->pub.cols ? l->pub.rows : l->pub.cols;
    if (capacity < 1 || capacity > kmax)
        return oialr_seterr(OIALR_ERR_ARG, "%s: layer %s: factor capacity %lld outside 1..%lld", t->path,
                            l->pub.name, (long long)capacity, (long long)kmax);
    if (l->pub.factor_capacity > 0)
        return oialr_seterr(OIALR_ERR_ARG, "%s: layer %s: factors declared twice", t->path, l->pub.name);
    h5u_quiet q = h5u_quiet_begin();
    hsize_t c = (hsize_t)(capacity < CHUNK_R ? capacity : CHUNK_R), cap = (hsize_t)capacity;
    hsize_t fs[2] = {cap, cap}, cs[3] = {1, c, c};
    hsize_t fu[2] = {(hsize_t)l->pub.rows, cap}, cu[3] = {1, (hsize_t)l->pub.rows, c};
    hsize_t fv[2] = {(hsize_t)l->pub.cols, cap}, cv[3] = {1, (hsize_t)l->pub.cols, c};
    hsize_t fw[2] = {(hsize_t)l->pub.rows, (hsize_t)l->pub.cols}, cw[3] = {1, fw[0], fw[1]};
    hid_t dapl = H5I_INVALID_HID;
    int32_t ver = 2;
    const char *name = l->pub.name;
    if (t->info.format_version < 2) {
        TRY_H5(H5Adelete(t->file, "format_version"), OIALR_ERR_IO, "cannot rewrite format_version");
        TRY_H5(h5u_attr_put_num(t->file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &ver, 0), OIALR_ERR_IO,
                "cannot write root attributes");
        t->info.format_version = 2;
    }
    /* the weight again, sparse: the rows of factored snapshots stay
     * unwritten and must read as NaN, not as a plausible 0 (nothing is
     * written in phase 1, so nothing is lost) */
    h5u_close(&l->dw);
    TRY_H5(H5Ldelete(l->grp, "weight", H5P_DEFAULT), OIALR_ERR_IO, "layer '%s': cannot redefine the weight", name);
    TRY_H5(dapl = traj_weight_dapl(), OIALR_ERR_HDF5, "cannot set up dataset access");
    TRY_H5(l->dw = h5u_make_ext_chunk(l->grp, "weight", H5T_IEEE_F32LE, 3, fw, cw, t->compress, 1, dapl),
            OIALR_ERR_IO, "layer '%s': cannot create the weight dataset", name);
    TRY_H5(l->dbasis = h5u_make_ext(l->grp, "basis", H5T_STD_I32LE, 1, NULL, 256, 0, H5P_DEFAULT), OIALR_ERR_IO,
            "layer '%s': cannot create the basis dataset", name);
    TRY_H5(l->dsigma = h5u_make_ext_chunk(l->grp, "sigma", H5T_IEEE_F32LE, 3, fs, cs, t->compress, 1, H5P_DEFAULT),
            OIALR_ERR_IO, "layer '%s': cannot create the sigma dataset", name);
    TRY_H5(l->du = h5u_make_ext_chunk(l->grp, "u", H5T_IEEE_F32LE, 3, fu, cu, t->compress, 1, H5P_DEFAULT),
            OIALR_ERR_IO, "layer '%s': cannot create the u dataset", name);
    TRY_H5(l->dv = h5u_make_ext_chunk(l->grp, "v", H5T_IEEE_F32LE, 3, fv, cv, t->compress, 1, H5P_DEFAULT),
            OIALR_ERR_IO, "layer '%s': cannot create the v dataset", name);
    TRY_H5(l->dbstep = h5u_make_ext(l->grp, "basis_step", H5T_STD_I64LE, 1, NULL, 64, 0, H5P_DEFAULT),
            OIALR_ERR_IO, "layer '%s': cannot create the basis_step dataset", name);
    l->pub.factor_capacity = capacity;
    if (traj_layer_grow(l, 1)) rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
done:
    if (rc) {
        traj_close_factors(l);
        l->pub.factor_capacity = 0;
    }
    h5u_close(&dapl);
    h5u_quiet_end(q);
    return rc;
}

int oialr_traj_declare_metrics(oialr_traj *t, const char *columns) {
    OIALR_ASSERT(t && columns);
    int rc = traj_need_define(t, "cannot declare metrics");
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
    h5u_quiet q = h5u_quiet_begin();
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
        if ((rc = traj_check_name(t, "metric", nm))) goto done;
        if (!strcmp(nm, "step")) {
            rc = oialr_seterr(OIALR_ERR_ARG, "%s: 'step' is always a metric column; do not declare it", t->path);
            goto done;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(names[j], nm)) {
                rc = oialr_seterr(OIALR_ERR_ARG, "%s: metric column '%s' declared twice", t->path, nm);
                goto done;
            }
        if (!(names[i] = h5u_strdup(nm))) {
            rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
            goto done;
        }
        p = e ? e + 1 : p + len;
    }
    TRY_H5(gcpl = traj_order_gcpl(), OIALR_ERR_HDF5, "cannot set up /metrics");
    TRY_H5(t->gmetrics = H5Gcreate2(t->file, "metrics", H5P_DEFAULT, gcpl, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /metrics");
    TRY_H5(h5u_attr_put_str(t->gmetrics, "columns", columns), OIALR_ERR_IO, "cannot write /metrics attributes");
    TRY_H5(t->dmstep = h5u_make_ext(t->gmetrics, "step", H5T_STD_I64LE, 1, NULL, 256, 0, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /metrics/step");
    for (int i = 0; i < n; i++)
        TRY_H5(d[i] = h5u_make_ext(t->gmetrics, names[i], H5T_IEEE_F64LE, 1, NULL, 256, 0, H5P_DEFAULT),
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
        for (int i = 0; i < n; i++) h5u_close(&d[i]);
    free(names);
    free(d);
    if (rc && t->dcol == NULL) {
        h5u_close(&t->dmstep);
        h5u_close(&t->gmetrics);
        H5E_BEGIN_TRY { H5Ldelete(t->file, "metrics", H5P_DEFAULT); }
        H5E_END_TRY;
    }
    h5u_close(&gcpl);
    h5u_quiet_end(q);
    return rc;
}

/* H5Fstart_swmr_write reopens every open object with default access
 * properties, a 1 MiB chunk cache: a 512x512 snapshot would then be
 * allocated, filled, copied into the cache and evicted at each write. This
 * gives the weights their cache-less access back. */
int traj_reopen_weights(oialr_traj *t) {
    int rc = OIALR_OK;
    hid_t dapl = H5I_INVALID_HID;
    TRY_H5(dapl = traj_weight_dapl(), OIALR_ERR_HDF5, "cannot set up dataset access");
    for (int i = 0; i < t->nlayers; i++) {
        tlayer *l = &t->layers[i];
        h5u_close(&l->dw);
        TRY_H5(l->dw = H5Dopen2(l->grp, "weight", dapl), OIALR_ERR_HDF5, "layer %s: cannot reopen the weight",
                l->pub.name);
    }
done:
    h5u_close(&dapl);
    return rc;
}

int oialr_traj_begin(oialr_traj *t) {
    int rc = traj_start(t);
    return rc ? rc : traj_publish(t);
}

int traj_start(oialr_traj *t) {
    OIALR_ASSERT(t);
    if (t->recording) return OIALR_OK;
    if (!t->writable) return oialr_seterr(OIALR_ERR_ARG, "%s: the trajectory is open read-only", t->path);
    int rc;
    if (t->gmetrics < 0 && (rc = oialr_traj_declare_metrics(t, OIALR_TRAJ_METRICS_DEFAULT))) return rc;
    h5u_quiet q = h5u_quiet_begin();
    if (t->devents < 0) {
        TRY_H5(t->devents = h5u_make_ext(t->file, "events", t->tev_file, 1, NULL, 64, 0, H5P_DEFAULT), OIALR_ERR_IO,
                "cannot create /events");
    }
    if ((rc = traj_ckpt_group(t))) goto done;
    TRY_H5(H5Fflush(t->file, H5F_SCOPE_GLOBAL), OIALR_ERR_IO, "cannot flush");
    TRY_H5(H5Fstart_swmr_write(t->file), OIALR_ERR_HDF5, "cannot start SWMR writing");
    if ((rc = traj_reopen_weights(t))) goto done;
    t->recording = 1;
done:
    h5u_quiet_end(q);
    return rc;
}

// ----------------------------------------------------------------------------
// phase 2: snapshots, metrics, events

int traj_need_record(oialr_traj *t, const char *what) {
    if (!t->writable) return oialr_seterr(OIALR_ERR_ARG, "%s: %s: the trajectory is open read-only", t->path, what);
    if (!t->recording) return traj_start(t);
    return OIALR_OK;
}

/* NaN and Inf in w[0, n): exponent bits all ones. Integer lanes so the
 * loop vectorizes (isfinite() stays scalar): a 784x512 layer in cache in
 * 0.020 ms instead of 0.056 ms (measured on the bench machine). Static,
 * with a plain entry point below: see base/hot.h. */
OIALR_HOT static size_t count_nonfinite(const float *w, size_t n) {
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

size_t traj_count_nonfinite(const float *w, size_t n) { return count_nonfinite(w, n); }

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
    h5u_close(&ft);
    h5u_close(&dcpl);
    return ok;
}

/* Snapshot n of a layer. A whole-chunk write when the bytes need no
 * conversion: HDF5 then skips the selection machinery (a quarter of the
 * writer's time in HDF5 for a 512x512 layer) and hands w to the driver. */
/* The weight's extent grown to hold snapshot n (never shrunk). */
static herr_t grow_weight(tlayer *l, int64_t n) {
    int64_t e = h5u_extent0(l->dw);
    hsize_t dims[3] = {(hsize_t)n + 1, (hsize_t)l->pub.rows, (hsize_t)l->pub.cols};
    return e < 0 || (e < n + 1 && H5Dset_extent(l->dw, dims) < 0) ? -1 : 0;
}

static herr_t write_snapshot(tlayer *l, int64_t n, const float *w) {
    if (l->raw < 0) l->raw = raw_chunk_ok(l);
    if (!l->raw) return h5u_write_rows(l->dw, H5T_NATIVE_FLOAT, n, 1, w, 1);
    hsize_t off[3] = {(hsize_t)n, 0, 0};
    if (grow_weight(l, n) < 0) return -1;
    return H5Dwrite_chunk(l->dw, H5P_DEFAULT, 0, off, (size_t)l->pub.rows * (size_t)l->pub.cols * sizeof(float), w);
}

/* A factored snapshot's data: a new basis (u[k], v[k], basis_step[k]) when
 * s brings one, then Σ, and the weight's extent grown over the row that
 * stays unwritten (it reads as NaN). */
static int write_factors(oialr_traj *t, tlayer *l, int64_t n, int64_t step, const traj_snap *s, int flush) {
    int rc = OIALR_OK;
    const int64_t r = s->rank;
    if (s->kind == TRAJ_SNAP_BASIS) {
        const int64_t k = l->nbasis;
        const hsize_t bu[2] = {(hsize_t)l->pub.rows, (hsize_t)r}, bv[2] = {(hsize_t)l->pub.cols, (hsize_t)r};
        TRY_H5(h5u_write_block(l->du, H5T_NATIVE_FLOAT, k, 1, bu, s->u, 1), OIALR_ERR_IO,
                "layer %s: cannot write basis %lld (u)", l->pub.name, (long long)k);
        TRY_H5(h5u_write_block(l->dv, H5T_NATIVE_FLOAT, k, 1, bv, s->v, 1), OIALR_ERR_IO,
                "layer %s: cannot write basis %lld (v)", l->pub.name, (long long)k);
        TRY_H5(h5u_write_rows(l->dbstep, H5T_NATIVE_INT64, k, 1, &step, 1), OIALR_ERR_IO,
                "layer %s: cannot write basis_step", l->pub.name);
        if (flush)
            TRY_H5(H5Dflush(l->du) < 0 || H5Dflush(l->dv) < 0 ? -1 : H5Dflush(l->dbstep), OIALR_ERR_IO,
                    "layer %s: cannot flush basis %lld", l->pub.name, (long long)k);
        l->nbasis = k + 1;
        l->wbrank = (int32_t)r;
    }
    const hsize_t bs[2] = {(hsize_t)r, (hsize_t)r};
    TRY_H5(h5u_write_block(l->dsigma, H5T_NATIVE_FLOAT, n, 1, bs, s->w, 1), OIALR_ERR_IO,
            "layer %s: cannot write snapshot %lld (sigma)", l->pub.name, (long long)n);
    if (flush)
        TRY_H5(H5Dflush(l->dsigma), OIALR_ERR_IO, "layer %s: cannot flush snapshot %lld", l->pub.name, (long long)n);
    TRY_H5(grow_weight(l, n), OIALR_ERR_IO, "layer %s: cannot grow the weight", l->pub.name);
done:
    return rc;
}

/* OIALR_OK if a factored snapshot of `kind` at `rank` fits layer l: declared
 * with factors, rank within the capacity, and for Σ alone an earlier basis
 * with at least `rank` columns. */
static int check_factored(const oialr_traj *t, const tlayer *l, int kind, int32_t rank) {
    if (l->pub.factor_capacity <= 0)
        return oialr_seterr(OIALR_ERR_ARG, "%s: layer %s was not declared with factors", t->path, l->pub.name);
    if (rank < 1 || rank > l->pub.factor_capacity)
        return oialr_seterr(OIALR_ERR_ARG, "%s: layer %s: rank %d outside 1..%lld (its factor capacity)", t->path,
                            l->pub.name, (int)rank, (long long)l->pub.factor_capacity);
    if (kind == TRAJ_SNAP_SIGMA && (l->nbasis == 0 || rank > l->wbrank))
        return oialr_seterr(OIALR_ERR_ARG, "%s: layer %s: no earlier basis of rank >= %d to reuse", t->path,
                            l->pub.name, (int)rank);
    return OIALR_OK;
}

/* OIALR_OK if a snapshot of layer l may be taken at `step`: steps are >= 0
 * and strictly increase per layer, as the reader requires (a file the writer
 * let through would be refused when read back). */
static int check_step(const oialr_traj *t, const tlayer *l, int64_t step) {
    int64_t n = l->pub.nsnap;
    if (step < 0)
        return oialr_seterr(OIALR_ERR_ARG, "%s: layer %s: step %lld is negative", t->path, l->pub.name,
                            (long long)step);
    if (n > 0 && step <= l->steps[n - 1])
        return oialr_seterr(OIALR_ERR_ARG,
                            "%s: layer %s: step %lld after step %lld; a layer's steps must strictly increase",
                            t->path, l->pub.name, (long long)step, (long long)l->steps[n - 1]);
    return OIALR_OK;
}

/* One layer's snapshot: its data (weight, or factors), then basis, rank,
 * step, each flushed when flush is set (a reader of a live file then never
 * sees a step whose data is missing). */
static int append_layer(oialr_traj *t, int layer, int64_t step, const traj_snap *s, int flush) {
    if (layer < 0 || layer >= t->nlayers)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer with index %d", t->path, layer);
    tlayer *l = &t->layers[layer];
    int64_t n = l->pub.nsnap;
    int rc = check_step(t, l, step);
    if (rc) return rc;
    int32_t rank = s->rank, basis = -1;
    if (s->kind != TRAJ_SNAP_FULL) {
        if ((rc = check_factored(t, l, s->kind, rank))) return rc;
        basis = (int32_t)(s->kind == TRAJ_SNAP_BASIS ? l->nbasis : l->nbasis - 1);
    }
    if (s->nonfinite && !l->warned_nonfinite) {
        l->warned_nonfinite = 1;
        oialr_log(OIALR_LOG_WARN, "%s: layer %s at step %lld has %zu NaN/Inf values; recorded as they are",
                  t->path, l->pub.name, (long long)step, s->nonfinite);
    }
    if (rank <= 0) rank = (int32_t)(l->pub.rows < l->pub.cols ? l->pub.rows : l->pub.cols);
    if (traj_layer_grow(l, n + 1)) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    h5u_quiet q = h5u_quiet_begin();
    if (s->kind == TRAJ_SNAP_FULL) {
        TRY_H5(write_snapshot(l, n, s->w), OIALR_ERR_IO, "layer %s: cannot write snapshot %lld", l->pub.name,
                (long long)n);
        if (flush)
            TRY_H5(H5Dflush(l->dw), OIALR_ERR_IO, "layer %s: cannot flush snapshot %lld", l->pub.name,
                    (long long)n);
    } else if ((rc = write_factors(t, l, n, step, s, flush))) {
        goto done;
    }
    if (l->pub.factor_capacity > 0) {
        TRY_H5(h5u_write_rows(l->dbasis, H5T_NATIVE_INT32, n, 1, &basis, 1), OIALR_ERR_IO,
                "layer %s: cannot write basis", l->pub.name);
        if (flush) TRY_H5(H5Dflush(l->dbasis), OIALR_ERR_IO, "layer %s: cannot flush basis", l->pub.name);
        l->bases[n] = basis;
    }
    TRY_H5(h5u_write_rows(l->dr, H5T_NATIVE_INT32, n, 1, &rank, 1), OIALR_ERR_IO, "layer %s: cannot write rank",
            l->pub.name);
    if (flush) TRY_H5(H5Dflush(l->dr), OIALR_ERR_IO, "layer %s: cannot flush rank", l->pub.name);
    TRY_H5(h5u_write_rows(l->ds, H5T_NATIVE_INT64, n, 1, &step, 1), OIALR_ERR_IO, "layer %s: cannot write step",
            l->pub.name);
    if (flush) TRY_H5(H5Dflush(l->ds), OIALR_ERR_IO, "layer %s: cannot flush step", l->pub.name);
    l->steps[n] = step;
    l->ranks[n] = rank;
    l->pub.nsnap = n + 1;
done:
    h5u_quiet_end(q);
    return rc;
}

int oialr_traj_append(oialr_traj *t, int layer, int64_t step, const float *w, int32_t rank) {
    OIALR_ASSERT(t && w);
    if (layer < 0 || layer >= t->nlayers)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer with index %d", t->path, layer);
    const tlayer *l = &t->layers[layer];
    traj_snap s = {.w = w, .rank = rank, .kind = TRAJ_SNAP_FULL,
                   .nonfinite = traj_count_nonfinite(w, (size_t)l->pub.rows * (size_t)l->pub.cols)};
    int rc = traj_need_record(t, "cannot append");
    if (!rc) rc = append_layer(t, layer, step, &s, 1);
    return rc ? rc : traj_publish(t);
}

int oialr_traj_append_factors(oialr_traj *t, int layer, int64_t step, int32_t rank, const float *u,
                              const float *sigma, const float *v) {
    OIALR_ASSERT(t && sigma);
    if (layer < 0 || layer >= t->nlayers)
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no layer with index %d", t->path, layer);
    const tlayer *l = &t->layers[layer];
    if (!u != !v) return oialr_seterr(OIALR_ERR_ARG, "%s: layer %s: u and v go together", t->path, l->pub.name);
    traj_snap s = {.w = sigma, .u = u, .v = v, .rank = rank, .kind = u ? TRAJ_SNAP_BASIS : TRAJ_SNAP_SIGMA};
    /* before reading the caller's rank-sized buffers */
    int rc = check_factored(t, l, s.kind, rank);
    if (rc) return rc;
    size_t r = (size_t)rank;
    s.nonfinite = traj_count_nonfinite(sigma, r * r);
    if (u)
        s.nonfinite += traj_count_nonfinite(u, (size_t)l->pub.rows * r) +
                       traj_count_nonfinite(v, (size_t)l->pub.cols * r);
    rc = traj_need_record(t, "cannot append");
    if (!rc) rc = append_layer(t, layer, step, &s, 1);
    return rc ? rc : traj_publish(t);
}

int traj_append_snapshot(oialr_traj *t, int64_t step, int n, const traj_snap *s) {
    OIALR_ASSERT(t && s);
    int rc = traj_need_record(t, "cannot append");
    /* every layer's step first: a snapshot is written whole or not at all */
    for (int i = 0; i < n && i < t->nlayers && !rc; i++) rc = check_step(t, &t->layers[i], step);
    for (int i = 0; i < n && !rc; i++) rc = append_layer(t, i, step, &s[i], 0);
    if (rc) return rc;
    h5u_quiet q = h5u_quiet_begin();
    if (H5Fflush(t->file, H5F_SCOPE_LOCAL) < 0)
        rc = h5u_err(t->path, OIALR_ERR_IO, "cannot flush the snapshot at step %lld", (long long)step);
    h5u_quiet_end(q);
    return rc ? rc : traj_publish(t);
}

int oialr_traj_append_metrics(oialr_traj *t, int64_t step, const double *values, int n) {
    return oialr_traj_append_metrics_rows(t, 1, &step, values, n);
}

int oialr_traj_append_metrics_rows(oialr_traj *t, int64_t nrows, const int64_t *steps, const double *values,
                                   int ncol) {
    OIALR_ASSERT(t && (nrows == 0 || (steps && (values || ncol == 0))));
    int rc = traj_need_record(t, "cannot append metrics");
    if (rc) return rc;
    if (ncol != t->ncol)
        return oialr_seterr(OIALR_ERR_MISMATCH, "%s: metrics row has %d values, %d columns declared", t->path, ncol,
                            t->ncol);
    if (nrows < 0) return oialr_seterr(OIALR_ERR_ARG, "%s: %lld metrics rows", t->path, (long long)nrows);
    if (nrows == 0) return OIALR_OK;
    int64_t at = t->info.nmetrics;
    double one, *col = nrows == 1 ? &one : malloc((size_t)nrows * sizeof *col);
    if (!col) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    h5u_quiet q = h5u_quiet_begin();
    /* every column, then the step column: a row exists once its step does */
    for (int i = 0; i < ncol; i++) {
        for (int64_t k = 0; k < nrows; k++) col[k] = values[k * ncol + i];
        TRY_H5(h5u_write_rows(t->dcol[i], H5T_NATIVE_DOUBLE, at, nrows, col, 1), OIALR_ERR_IO,
                "cannot write /metrics/%s", t->colnames[i]);
        TRY_H5(H5Dflush(t->dcol[i]), OIALR_ERR_IO, "cannot flush /metrics/%s", t->colnames[i]);
    }
    TRY_H5(h5u_write_rows(t->dmstep, H5T_NATIVE_INT64, at, nrows, steps, 1), OIALR_ERR_IO,
            "cannot write /metrics/step");
    TRY_H5(H5Dflush(t->dmstep), OIALR_ERR_IO, "cannot flush /metrics/step");
    t->info.nmetrics = at + nrows;
done:
    if (col != &one) free(col);
    h5u_quiet_end(q);
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
    int rc = traj_need_record(t, "cannot append an event");
    if (rc) return rc;
    if ((rc = traj_check_event(t->path, ev))) return rc;
    oialr_traj_event e = *ev;
    e.layer[OIALR_TRAJ_NAME_MAX - 1] = '\0';
    size_t len = strlen(e.layer);
    memset(e.layer + len, 0, OIALR_TRAJ_NAME_MAX - len);
    int64_t at = t->info.nevents;
    h5u_quiet q = h5u_quiet_begin();
    TRY_H5(h5u_write_rows(t->devents, t->tev_mem, at, 1, &e, 1), OIALR_ERR_IO, "cannot write /events");
    TRY_H5(H5Dflush(t->devents), OIALR_ERR_IO, "cannot flush /events");
    t->info.nevents = at + 1;
done:
    h5u_quiet_end(q);
    return rc;
}
