/*
 * hook_resume.c — the other half of the recorder's checkpoint: read it back
 * into a trainer (oialr_record_resume, oialr/record.h), so a stopped or
 * killed run goes on where its last checkpoint left it.
 */
#include "oialr/record.h"

#include "internal.h"
#include "recorder.h"

#include <stdlib.h>
#include <string.h>

typedef struct resume_bufs {
    float *f[CKA_N];
    int64_t *order;
    void *state[OIALR_MAX_HOOKS];
    size_t state_n[OIALR_MAX_HOOKS];
} resume_bufs;

static void bufs_free(resume_bufs *b) {
    for (int a = 0; a < CKA_N; a++) free(b->f[a]);
    free(b->order);
    for (int h = 0; h < OIALR_MAX_HOOKS; h++) free(b->state[h]);
}

/* An int64 array item of exactly n elements into a new buffer. */
static int get_i64(oialr_traj *tr, const char *path, const char *name, size_t n, int64_t **out) {
    size_t have = 0;
    int rc = oialr_traj_ckpt_array_size(tr, name, &have);
    if (rc) return oialr_seterr(rc, "%s: the checkpoint has no '%s' (%s)", path, name, oialr_errmsg());
    if (have != n)
        return oialr_seterr(OIALR_ERR_MISMATCH, "%s: checkpoint item '%s' has %zu elements, this run needs %zu", path,
                            name, have, n);
    if (!(*out = malloc(n * sizeof **out))) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
    return oialr_traj_ckpt_get_array_i64(tr, name, *out, n);
}

static int read_state(oialr_trainer *t, oialr_traj *tr, const char *path, resume_bufs *b, oialr_train_state *s) {
    const oialr_traj_info *info = oialr_traj_get_info(tr);
    if (!info->has_ckpt)
        return oialr_seterr(OIALR_ERR_NOTFOUND,
                            "%s: no checkpoint yet (the run stopped before its first one): start it again", path);
    oialr_train_state now;
    oialr_trainer_get_state(t, &now);
    const float *want[CKA_N] = {now.params, now.optim_m, now.optim_v};
    int rc;
    for (int a = 0; a < CKA_N; a++) {
        size_t have = 0;
        int there = oialr_traj_ckpt_array_size(tr, REC_CK_ARRAY[a], &have) == OIALR_OK;
        if (there != (want[a] != NULL))
            return oialr_seterr(OIALR_ERR_MISMATCH, "%s: the checkpoint %s '%s' (another optimizer?)", path,
                                there ? "has an item this run's optimizer does not keep:" : "lacks", REC_CK_ARRAY[a]);
        if (!there) continue;
        if (have != now.n)
            return oialr_seterr(OIALR_ERR_MISMATCH, "%s: checkpoint '%s' has %zu values, this model %zu", path,
                                REC_CK_ARRAY[a], have, now.n);
        if (!(b->f[a] = malloc(now.n * sizeof *b->f[a]))) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
        if ((rc = oialr_traj_ckpt_get_array(tr, REC_CK_ARRAY[a], b->f[a], now.n))) return rc;
    }
    if ((rc = get_i64(tr, path, REC_CK_ORDER, (size_t)now.loader_n, &b->order))) return rc;
    uint64_t v[CKS_N];
    for (int i = 0; i < CKS_N; i++) {
        rc = REC_CK_SCALAR[i].is_unsigned ? oialr_traj_ckpt_get_u64(tr, REC_CK_SCALAR[i].name, &v[i])
                                          : oialr_traj_ckpt_get_i64(tr, REC_CK_SCALAR[i].name, (int64_t *)&v[i]);
        if (rc)
            return oialr_seterr(rc, "%s: the checkpoint has no '%s' (written by an older oialr?)", path,
                                REC_CK_SCALAR[i].name);
    }
    memset(s, 0, sizeof *s);
    s->params = b->f[CKA_PARAMS];
    s->optim_m = b->f[CKA_OPTIM_M];
    s->optim_v = b->f[CKA_OPTIM_V];
    s->n = now.n;
    s->optim_t = (int64_t)v[CKS_OPTIM_T];
    s->step = (int64_t)v[CKS_STEP];
    s->epochs_done = (int64_t)v[CKS_EPOCHS_DONE];
    s->at_epoch_end = v[CKS_AT_EPOCH_END] != 0;
    s->seconds = (double)(int64_t)v[CKS_SECONDS_US] * 1e-6;
    s->loader_order = b->order;
    s->loader_n = now.loader_n;
    s->loader_cursor = (int64_t)v[CKS_LOADER_CURSOR];
    s->model_rng = (oialr_rng){v[CKS_MODEL_RNG_STATE], v[CKS_MODEL_RNG_INC]};
    s->loader_rng = (oialr_rng){v[CKS_LOADER_RNG_STATE], v[CKS_LOADER_RNG_INC]};
    s->epoch_seen = (int64_t)v[CKS_EPOCH_SEEN];
    s->epoch_correct = (int64_t)v[CKS_EPOCH_CORRECT];
    float *fm[] = {&s->loss, &s->lr, &s->val_loss, &s->val_acc, &s->test_loss, &s->test_acc};
    for (int i = 0; i < 6; i++) {
        double d;
        memcpy(&d, &v[CKS_LOSS + i], sizeof d);
        *fm[i] = (float)d;
    }
    /* the hooks' own states, by name */
    for (int k = 0; k < t->nhooks; k++) {
        const oialr_hook *h = &t->hooks[k];
        if (!h->state_size || !h->state_load) continue;
        size_t bytes = h->state_size(t, h->user);
        if (bytes == 0) continue;
        if (bytes == (size_t)-1) return OIALR_ERR_NOMEM;
        char name[OIALR_TRAJ_NAME_MAX];
        snprintf(name, sizeof name, REC_CK_STATE "%s", h->name ? h->name : "hook");
        int64_t *buf = NULL;
        if ((rc = get_i64(tr, path, name, (bytes + 7) / 8, &buf))) {
            free(buf);
            return rc;
        }
        b->state[k] = buf;
        b->state_n[k] = bytes;
    }
    return OIALR_OK;
}

int oialr_record_resume(oialr_trainer *t, const char *path) {
    OIALR_ASSERT(t && path);
    oialr_traj *tr = NULL;
    int rc = oialr_traj_open(&tr, path, OIALR_TRAJ_READ);
    if (rc) return rc;
    resume_bufs b;
    memset(&b, 0, sizeof b);
    oialr_train_state s;
    rc = read_state(t, tr, path, &b, &s);
    if (!rc) rc = oialr_trainer_resume(t, &s, (const void *const *)b.state, b.state_n);
    bufs_free(&b);
    int crc = oialr_traj_close(tr);
    return rc ? rc : crc;
}
