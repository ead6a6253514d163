/*
 * trajectory_rewind.c — back to a step: a resumed run (oialr train
 * --resume) continues its file from its checkpoint, so what the killed run
 * wrote after that step goes — snapshots, bases no kept snapshot uses,
 * metrics rows, events — and the run writes those steps again: no gap and
 * no duplicate step. HDF5 cannot shrink a dataset under SWMR, so the file
 * is opened once without it, cut, closed, and opened again for appending.
 */
#include "trajectory_impl.h"

#include <stdlib.h>
#include <string.h>

/* Shrink the first dimension of d to n rows (never grows). */
static int cut_rows(oialr_traj *t, hid_t d, int64_t n, const char *what) {
    if (d < 0) return OIALR_OK;
    int rc = OIALR_OK;
    hid_t sp = H5I_INVALID_HID;
    hsize_t dims[H5S_MAX_RANK];
    TRY_H5(sp = H5Dget_space(d), OIALR_ERR_HDF5, "%s: cannot read its shape", what);
    int nd = H5Sget_simple_extent_ndims(sp);
    TRY_H5(nd >= 1 && H5Sget_simple_extent_dims(sp, dims, NULL) == nd ? 0 : -1, OIALR_ERR_HDF5,
           "%s: cannot read its shape", what);
    if ((int64_t)dims[0] > n) {
        dims[0] = (hsize_t)n;
        TRY_H5(H5Dset_extent(d, dims), OIALR_ERR_IO, "%s: cannot cut it to %lld rows", what, (long long)n);
    }
done:
    h5u_close(&sp);
    return rc;
}

static int rewind_layer(oialr_traj *t, tlayer *l, int64_t step) {
    int64_t keep = 0;
    while (keep < l->pub.nsnap && l->steps[keep] <= step) keep++;
    int rc;
    char what[OIALR_TRAJ_NAME_MAX + 32];
    snprintf(what, sizeof what, "layer %s", l->pub.name);
    if ((rc = cut_rows(t, l->dw, keep, what)) || (rc = cut_rows(t, l->ds, keep, what)) ||
        (rc = cut_rows(t, l->dr, keep, what)))
        return rc;
    if (l->pub.factor_capacity <= 0) return OIALR_OK;
    int64_t nb = 0; /* the bases the kept snapshots use: they were stored in order */
    for (int64_t i = 0; i < keep; i++)
        if (l->bases[i] >= 0 && l->bases[i] + 1 > nb) nb = l->bases[i] + 1;
    if ((rc = cut_rows(t, l->dbasis, keep, what)) || (rc = cut_rows(t, l->dsigma, keep, what)) ||
        (rc = cut_rows(t, l->du, nb, what)) || (rc = cut_rows(t, l->dv, nb, what)) ||
        (rc = cut_rows(t, l->dbstep, nb, what)))
        return rc;
    return OIALR_OK;
}

static int rewind_metrics(oialr_traj *t, int64_t step) {
    int64_t n = t->info.nmetrics;
    if (t->dmstep < 0 || n <= 0) return OIALR_OK;
    int64_t *s = malloc((size_t)n * sizeof *s);
    if (!s) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    int rc = OIALR_OK;
    TRY_H5(h5u_read_rows(t->dmstep, H5T_NATIVE_INT64, 0, n, s), OIALR_ERR_IO, "cannot read /metrics/step");
    int64_t keep = 0;
    while (keep < n && s[keep] <= step) keep++;
    if ((rc = cut_rows(t, t->dmstep, keep, "/metrics/step"))) goto done;
    for (int k = 0; k < t->ncol && !rc; k++) rc = cut_rows(t, t->dcol[k], keep, "/metrics");
done:
    free(s);
    return rc;
}

static int rewind_events(oialr_traj *t, int64_t step) {
    int64_t n = t->info.nevents;
    if (t->devents < 0 || n <= 0) return OIALR_OK;
    oialr_traj_event *ev = malloc((size_t)n * sizeof *ev);
    if (!ev) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", t->path);
    int64_t got = 0;
    int rc = oialr_traj_read_events(t, ev, n, &got);
    int64_t keep = 0;
    while (!rc && keep < got && ev[keep].step <= step) keep++;
    if (!rc) rc = cut_rows(t, t->devents, keep, "/events");
    free(ev);
    return rc;
}

int oialr_traj_open_rewind(oialr_traj **out, const char *path, int mode, int64_t step) {
    OIALR_ASSERT(out && path);
    *out = NULL;
    if (mode != OIALR_TRAJ_APPEND && mode != OIALR_TRAJ_RECOVER)
        return oialr_seterr(OIALR_ERR_ARG, "%s: rewinding needs the append or recover mode", path);
    if (step < 0) return oialr_seterr(OIALR_ERR_ARG, "%s: cannot rewind to step %lld", path, (long long)step);
    oialr_traj *t = NULL;
    int rc = traj_open_mode(&t, path, mode, 0);
    if (rc) return rc;
    h5u_quiet q = h5u_quiet_begin();
    for (int i = 0; i < t->nlayers && !rc; i++) rc = rewind_layer(t, &t->layers[i], step);
    if (!rc) rc = rewind_metrics(t, step);
    if (!rc) rc = rewind_events(t, step);
    if (!rc && H5Fflush(t->file, H5F_SCOPE_GLOBAL) < 0) rc = h5u_err(path, OIALR_ERR_IO, "cannot write the cut file");
    h5u_quiet_end(q);
    int crc = oialr_traj_close(t);
    if (rc || crc) return rc ? rc : crc;
    return oialr_traj_open(out, path, OIALR_TRAJ_APPEND);
}
