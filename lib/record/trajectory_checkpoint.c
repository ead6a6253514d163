/*
 * trajectory_checkpoint.c — the checkpoint of a trajectory: /checkpoint
 * holds named items (float32 or int64 arrays, int64 or uint64 scalars),
 * each with two slots, and /checkpoint/slot names the last committed one
 * (-1: none). A writer declares the items in phase 1, then writes a whole
 * checkpoint into the other slot (ckpt_start, put..., commit) and flips
 * slot last, so a run killed mid-checkpoint keeps the previous one. The
 * reader finds the items at open and reads the committed slot.
 */
#include "trajectory_impl.h"

#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// writer: the group and its items

int traj_ckpt_group(oialr_traj *t) {
    int rc = OIALR_OK;
    if (t->gckpt >= 0) return rc;
    hsize_t one = 1;
    int64_t none = -1;
    TRY_H5(t->gckpt = H5Gcreate2(t->file, "checkpoint", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), OIALR_ERR_IO,
            "cannot create /checkpoint");
    TRY_H5(t->dslot = h5u_make_fixed(t->gckpt, "slot", H5T_STD_I64LE, 1, &one), OIALR_ERR_IO,
            "cannot create /checkpoint/slot");
    TRY_H5(H5Dwrite(t->dslot, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &none), OIALR_ERR_IO,
            "cannot write /checkpoint/slot");
done:
    return rc;
}

static int declare_ck(oialr_traj *t, const char *name, int type, size_t n) {
    int rc = traj_need_define(t, "cannot declare a checkpoint item");
    if (rc) return rc;
    if ((rc = traj_check_name(t, "checkpoint item", name))) return rc;
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
    h5u_quiet q = h5u_quiet_begin();
    ckitem *c = &t->ck[t->nck];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->type = type;
    c->n = n;
    c->d = H5I_INVALID_HID;
    if ((rc = traj_ckpt_group(t))) goto done;
    if (type == CK_ARRAY || type == CK_AI64) {
        hsize_t dims[2] = {2, n ? n : 1};
        TRY_H5(c->d = h5u_make_fixed(t->gckpt, name, type == CK_ARRAY ? H5T_IEEE_F32LE : H5T_STD_I64LE, 2, dims),
               OIALR_ERR_IO, "cannot create checkpoint array '%s' (%zu elements)", name, n);
    } else {
        hsize_t two = 2;
        TRY_H5(c->d = h5u_make_fixed(t->gckpt, name, type == CK_I64 ? H5T_STD_I64LE : H5T_STD_U64LE, 1, &two),
                OIALR_ERR_IO, "cannot create checkpoint scalar '%s'", name);
    }
    t->nck++;
done:
    h5u_quiet_end(q);
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

// ----------------------------------------------------------------------------
// writer: one checkpoint

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
    int rc = traj_need_record(t, "cannot write a checkpoint");
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
    h5u_quiet q = h5u_quiet_begin();
    TRY_H5(h5u_write_rows(c->d, mtype, t->target_slot, 1, v, 0), OIALR_ERR_IO, "cannot write checkpoint item '%s'",
            name);
done:
    h5u_quiet_end(q);
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
    h5u_quiet q = h5u_quiet_begin();
    for (int i = 0; i < t->nck; i++)
        TRY_H5(H5Dflush(t->ck[i].d), OIALR_ERR_IO, "cannot flush checkpoint item '%s'", t->ck[i].name);
    TRY_H5(H5Dwrite(t->dslot, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &t->target_slot), OIALR_ERR_IO,
            "cannot write /checkpoint/slot");
    TRY_H5(H5Dflush(t->dslot), OIALR_ERR_IO, "cannot flush /checkpoint/slot");
    t->cur_slot = t->target_slot;
    t->info.has_ckpt = 1;
done:
    t->target_slot = -1;
    h5u_quiet_end(q);
    return rc;
}

// ----------------------------------------------------------------------------
// reader

/* /checkpoint/slot, int64 [1]: checked before every read (open, refresh and
 * the getters read it), as a live writer could grow it between two reads. */
int traj_read_slot(oialr_traj *t, int64_t *slot) {
    static const int64_t one[1] = {1};
    int rc = traj_check_dset(t, t->dslot, "/checkpoint/slot", H5T_INTEGER, 1, one, "integer [1]");
    if (rc) return rc;
    TRY_H5(h5u_read_rows(t->dslot, H5T_NATIVE_INT64, 0, 1, slot), OIALR_ERR_IO, "cannot read /checkpoint/slot");
done:
    return rc;
}

int traj_open_ckpt(oialr_traj *t) {
    int rc = OIALR_OK;
    namelist nl = {0};
    hid_t ty = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    htri_t ex = H5Lexists(t->file, "checkpoint", H5P_DEFAULT);
    if (ex <= 0) return ex < 0 ? h5u_err(t->path, OIALR_ERR_HDF5, "cannot look for /checkpoint") : OIALR_OK;
    TRY_H5(t->gckpt = H5Gopen2(t->file, "checkpoint", H5P_DEFAULT), OIALR_ERR_FORMAT, "/checkpoint is not a group");
    TRY_H5(t->dslot = H5Dopen2(t->gckpt, "slot", H5P_DEFAULT), OIALR_ERR_FORMAT, "no /checkpoint/slot");
    if ((rc = traj_read_slot(t, &t->cur_slot))) goto done;
    if (t->cur_slot != 0 && t->cur_slot != 1) t->cur_slot = -1;
    t->info.has_ckpt = t->cur_slot >= 0;
    TRY_H5(traj_list_group(t->gckpt, &nl), OIALR_ERR_HDF5, "cannot list /checkpoint");
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
        hsize_t dims[H5S_MAX_RANK] = {0};
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
        h5u_close(&ty);
        h5u_close(&sp);
    }
done:
    h5u_close(&ty);
    h5u_close(&sp);
    traj_namelist_free(&nl);
    return rc;
}

static int ck_get(oialr_traj *t, const char *name, int type, hid_t mtype, void *v, size_t n) {
    int rc = OIALR_OK;
    ckitem *c = ck_find(t, name, type, &rc);
    if (!c) return rc;
    int64_t slot = -1;
    h5u_quiet q = h5u_quiet_begin();
    if ((rc = traj_read_slot(t, &slot))) goto done;
    if (slot != 0 && slot != 1) {
        rc = oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no checkpoint has been committed", t->path);
        goto done;
    }
    if (n != c->n) {
        rc = oialr_seterr(OIALR_ERR_MISMATCH, "%s: checkpoint array '%s' has %zu elements, buffer %zu", t->path, name,
                          c->n, n);
        goto done;
    }
    TRY_H5(h5u_read_rows(c->d, mtype, slot, 1, v), OIALR_ERR_IO, "cannot read checkpoint item '%s'", name);
done:
    h5u_quiet_end(q);
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
