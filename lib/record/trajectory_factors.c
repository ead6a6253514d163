/*
 * trajectory_factors.c — the reader's side of factored snapshots (format
 * version 2, docs/format.md): a low-rank layer's snapshot t is either its
 * weight row (basis[t] = -1) or W = U_k[:, :r] Σ_t V_k[:, :r]ᵀ with
 * k = basis[t], r = rank[t], U_k = u[k], V_k = v[k], Σ_t = sigma[t].
 * The writer's side is in trajectory_write.c (oialr_traj_declare_factors,
 * write_factors).
 *
 * As everywhere in the reader, nothing in the file is trusted: shapes are
 * checked at open, every basis index and rank before a read, and a
 * snapshot whose data were never written fails instead of reading fill
 * values.
 */
#include "trajectory_impl.h"

#include <cblas.h>
#include <stdlib.h>

static int open_dset(oialr_traj *t, tlayer *l, const char *name, hid_t *d) {
    *d = H5Dopen2(l->grp, name, H5P_DEFAULT);
    if (*d < 0)
        return h5u_err(t->path, OIALR_ERR_FORMAT, "layer %s: has a basis dataset but no %s", l->pub.name, name);
    return OIALR_OK;
}

int traj_factors_open(oialr_traj *t, tlayer *l) {
    htri_t ex = H5Lexists(l->grp, "basis", H5P_DEFAULT);
    if (ex < 0) return h5u_err(t->path, OIALR_ERR_FORMAT, "layer %s: cannot look for factors", l->pub.name);
    if (!ex) return OIALR_OK; /* a layer without factored snapshots */
    int rc;
    if ((rc = open_dset(t, l, "basis", &l->dbasis)) || (rc = open_dset(t, l, "sigma", &l->dsigma)) ||
        (rc = open_dset(t, l, "u", &l->du)) || (rc = open_dset(t, l, "v", &l->dv)) ||
        (rc = open_dset(t, l, "basis_step", &l->dbstep)))
        return rc;
    char obj[OIALR_TRAJ_NAME_MAX + 24];
    snprintf(obj, sizeof obj, "/layers/%s/sigma", l->pub.name);
    if ((rc = traj_check_dset(t, l->dsigma, obj, H5T_FLOAT, 3, NULL, "float [T, cap, cap]"))) return rc;
    hid_t sp = H5Dget_space(l->dsigma);
    hsize_t dims[3] = {0, 0, 0};
    if (sp < 0 || H5Sget_simple_extent_dims(sp, dims, NULL) != 3) {
        h5u_close(&sp);
        return h5u_err(t->path, OIALR_ERR_FORMAT, "%s: cannot read its shape", obj);
    }
    h5u_close(&sp);
    int64_t cap = (int64_t)dims[1], kmax = l->pub.rows < l->pub.cols ? l->pub.rows : l->pub.cols;
    if (dims[1] != dims[2] || cap < 1 || cap > kmax)
        return oialr_seterr(OIALR_ERR_FORMAT, "%s: %s: Σ of %llux%llu (the format: square, 1 to %lld)", t->path, obj,
                            (unsigned long long)dims[1], (unsigned long long)dims[2], (long long)kmax);
    const int64_t wu[3] = {-1, l->pub.rows, cap}, wv[3] = {-1, l->pub.cols, cap};
    snprintf(obj, sizeof obj, "/layers/%s/u", l->pub.name);
    if ((rc = traj_check_dset(t, l->du, obj, H5T_FLOAT, 3, wu, "float [K, rows, cap]"))) return rc;
    snprintf(obj, sizeof obj, "/layers/%s/v", l->pub.name);
    if ((rc = traj_check_dset(t, l->dv, obj, H5T_FLOAT, 3, wv, "float [K, cols, cap]"))) return rc;
    snprintf(obj, sizeof obj, "/layers/%s/basis", l->pub.name);
    if ((rc = traj_check_dset(t, l->dbasis, obj, H5T_INTEGER, 1, NULL, "integer [T]"))) return rc;
    snprintf(obj, sizeof obj, "/layers/%s/basis_step", l->pub.name);
    if ((rc = traj_check_dset(t, l->dbstep, obj, H5T_INTEGER, 1, NULL, "integer [K]"))) return rc;
    l->pub.factor_capacity = cap;
    return OIALR_OK;
}

int traj_factors_bound(oialr_traj *t, tlayer *l, int64_t *n) {
    int64_t nb = 0, nu = 0, nv = 0, ns = 0;
    if (traj_rows_written(l->dbasis, &nb) < 0 || traj_rows_written(l->du, &nu) < 0 ||
        traj_rows_written(l->dv, &nv) < 0 || traj_rows_written(l->dbstep, &ns) < 0)
        return h5u_err(t->path, OIALR_ERR_HDF5, "layer %s: cannot read the factors' extents", l->pub.name);
    if (nb < *n) *n = nb;
    /* every snapshot grows the weight, written or not: a reader of a live
     * file can see the steps before the weight's new extent */
    int64_t nw = h5u_extent0(l->dw);
    if (nw < 0) return h5u_err(t->path, OIALR_ERR_HDF5, "layer %s: cannot read the weight's extent", l->pub.name);
    if (nw < *n) *n = nw;
    int64_t k = nu < nv ? nu : nv;
    l->nbasis = ns < k ? ns : k; /* bases complete: u, v and their step */
    return OIALR_OK;
}

/* 1 if row `at` of d (chunks of one row along dim 0) is within its extent
 * and has storage, 0 if not, -1 on an HDF5 error: a row grown but never
 * written would read as NaN. */
static int row_present(hid_t d, int64_t at) {
    int64_t e = h5u_extent0(d);
    return e < 0 ? -1 : e <= at ? 0 : traj_chunk_allocated(d, (hsize_t)at, 1);
}

/* 1 if snapshot i's basis index and rank are valid, else 0 with the
 * message set. */
static int snapshot_ok(oialr_traj *t, tlayer *l, int64_t i) {
    int32_t b = l->bases[i], r = l->ranks[i];
    if (b < -1 || b >= l->nbasis) {
        oialr_seterr(OIALR_ERR_FORMAT, "%s: /layers/%s/basis: basis[%lld] = %d, the file has %lld bases", t->path,
                     l->pub.name, (long long)i, (int)b, (long long)l->nbasis);
        return 0;
    }
    if (b >= 0 && (r < 1 || r > l->pub.factor_capacity)) {
        oialr_seterr(OIALR_ERR_FORMAT, "%s: /layers/%s/rank: rank[%lld] = %d outside 1..%lld (the factors' capacity)",
                     t->path, l->pub.name, (long long)i, (int)r, (long long)l->pub.factor_capacity);
        return 0;
    }
    return 1;
}

int traj_factors_load(oialr_traj *t, tlayer *l, int64_t *n) {
    int rc = OIALR_OK;
    TRY_H5(h5u_read_rows(l->dbasis, H5T_NATIVE_INT32, 0, *n, l->bases), OIALR_ERR_IO,
            "layer %s: cannot read the basis of each snapshot", l->pub.name);
    for (int64_t i = 0; i < *n; i++) {
        int ok = snapshot_ok(t, l, i);
        if (ok && i == *n - 1) { /* the newest: is its data there yet? */
            int a = row_present(l->bases[i] < 0 ? l->dw : l->dsigma, i);
            if (a < 0) return h5u_err(t->path, OIALR_ERR_HDF5, "layer %s: cannot look up snapshot %lld",
                                      l->pub.name, (long long)i);
            ok = a;
        }
        if (ok) continue;
        /* The recorder flushes a snapshot's datasets together, so a reader
         * of a live file (or of one killed while writing) can see the newest
         * snapshot's basis, rank and step before its bases or Σ: that one
         * is not complete yet and is left out. Anywhere else it is damage. */
        if (i == *n - 1) {
            *n = i;
            oialr_clearerr();
            break;
        }
        return OIALR_ERR_FORMAT;
    }
    /* appending after a reopen: Σ-only snapshots may follow on the newest
     * basis, with at most the rank it was stored with */
    l->wbrank = 0;
    for (int64_t i = 0; i < *n && l->nbasis > 0; i++)
        if (l->bases[i] == l->nbasis - 1) {
            l->wbrank = l->ranks[i];
            break;
        }
done:
    return rc;
}

int traj_factors_refresh(oialr_traj *t, tlayer *l) {
    if (l->pub.factor_capacity <= 0) return OIALR_OK;
    int rc = OIALR_OK;
    hid_t d[5] = {l->dbasis, l->dsigma, l->du, l->dv, l->dbstep};
    for (int i = 0; i < 5; i++) TRY_H5(H5Drefresh(d[i]), OIALR_ERR_IO, "layer %s: cannot refresh", l->pub.name);
done:
    return rc;
}

/* OIALR_ERR_FORMAT unless row `at` of d is present (row_present). */
static int need_row(oialr_traj *t, tlayer *l, hid_t d, int64_t at, const char *what) {
    int a = row_present(d, at);
    if (a < 0) return h5u_err(t->path, OIALR_ERR_HDF5, "layer %s: cannot look up %s %lld", l->pub.name, what,
                              (long long)at);
    if (!a)
        return oialr_seterr(OIALR_ERR_FORMAT, "%s: layer %s: %s %lld was never written", t->path, l->pub.name, what,
                            (long long)at);
    return OIALR_OK;
}

int traj_factors_read(oialr_traj *t, tlayer *l, int64_t snap, float *out) {
    int rc = OIALR_OK;
    const int32_t b = l->bases[snap], r = l->ranks[snap];
    const size_t rows = (size_t)l->pub.rows, cols = (size_t)l->pub.cols, cap = (size_t)l->pub.factor_capacity;
    if (b < 0) {
        if ((rc = need_row(t, l, l->dw, snap, "weight snapshot"))) return rc;
        TRY_H5(h5u_read_rows(l->dw, H5T_NATIVE_FLOAT, snap, 1, out), OIALR_ERR_IO,
                "layer %s: cannot read snapshot %lld", l->pub.name, (long long)snap);
        return OIALR_OK;
    }
    if ((rc = need_row(t, l, l->dsigma, snap, "sigma of snapshot"))) return rc;
    if (!l->fbuf && !(l->fbuf = malloc(((2 * rows + cols) * cap + cap * cap) * sizeof *l->fbuf)))
        return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for the factors of %s", t->path, l->pub.name);
    float *u = l->fbuf, *v = u + rows * cap, *s = v + cols * cap, *us = s + cap * cap;
    if (l->fbasis != b || l->frank < r) { /* U and V packed [rows, r], [cols, r] */
        const hsize_t bu[2] = {rows, (hsize_t)r}, bv[2] = {cols, (hsize_t)r};
        l->fbasis = -1;
        TRY_H5(h5u_read_block(l->du, H5T_NATIVE_FLOAT, b, 1, bu, u), OIALR_ERR_IO, "layer %s: cannot read basis %d",
                l->pub.name, (int)b);
        TRY_H5(h5u_read_block(l->dv, H5T_NATIVE_FLOAT, b, 1, bv, v), OIALR_ERR_IO, "layer %s: cannot read basis %d",
                l->pub.name, (int)b);
        l->fbasis = b;
        l->frank = r;
    }
    const hsize_t bs[2] = {(hsize_t)r, (hsize_t)r};
    TRY_H5(h5u_read_block(l->dsigma, H5T_NATIVE_FLOAT, snap, 1, bs, s), OIALR_ERR_IO,
            "layer %s: cannot read Σ of snapshot %lld", l->pub.name, (long long)snap);
    /* W = (U Σ) Vᵀ on the leading r columns of the cached U, V (leading dimension frank) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, r, r, 1.0f, u, l->frank, s, r, 0.0f, us, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, r, 1.0f, us, r, v, l->frank, 0.0f,
                out, (int)cols);
done:
    return rc;
}
