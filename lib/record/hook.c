/*
 * hook.c — the recorder hook: the built-in trainer's weights, metrics and
 * checkpoint into an HDF5 trajectory (see oialr/record.h for the schedule).
 *
 * Asynchronous: the training thread only copies. init creates the file on
 * the caller's thread; run_begin selects the layers and gathers the
 * configuration without touching HDF5 (so a bad --record-layers fails
 * before training) and starts a writer thread, which then makes every HDF5
 * call (declarations, SWMR start, appends, checkpoints) until run_end joins
 * it (the Debian HDF5 is not thread-safe: never two
 * threads in it at once; pthread_create/pthread_join hand the handle over).
 * The training thread copies a snapshot into one of OIALR_RECORD_POOL
 * buffers (a checkpoint into its own buffer), queues a job and goes on;
 * when no buffer is free it waits for the writer (back-pressure: memory is
 * bounded, no snapshot is ever dropped). A writer error is kept (code and
 * message) and returned by the next callback, which stops the run.
 *
 *   training thread                    writer thread
 *   run_begin: select, gather config,
 *              start writer, queue --> define the file, begin SWMR; then
 *                                      loop: pop job, write, flush,
 *   step_end:  copy -> queue --------> give the buffer back
 *   epoch_end: copy ckpt -> queue ---> ckpt start/put/commit
 *   run_end:   queue final, join ----> drain, exit;  then close the file
 *
 * Should the thread fail to start, the jobs are written synchronously.
 * The writer thread and the queue are in hook_writer.c, the state both
 * sides share in recorder.h; this file is the training thread's side.
 *
 * Cheap for training (docs/format.md, "How the writer writes"): with both
 * cores training, the writer's CPU time stalls OpenBLAS's threads, so it is
 * kept small. The copy streams past the cache and counts NaN/Inf on the way;
 * buffers are page-aligned (huge pages where possible) so the file driver
 * (vfd.c) can write snapshots by direct I/O, falling back to the page cache
 * while the disk lags; metrics rows are written in batches (MBATCH, MLAG).
 */
#include "oialr/lowrank.h"
#include "oialr/record.h"

#include "h5util.h"
#include "internal.h"
#include "recorder.h"
#include "vfd.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif


/* NULL stays NULL (optional strings); otherwise NULL means out of memory. */
static char *dupstr(const char *s) { return s ? h5u_strdup(s) : NULL; }

void oialr_record_options_default(oialr_record_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->every = 50;
    opt->checkpoint = 1;
    opt->checkpoint_every = OIALR_RECORD_CHECKPOINT_EVERY;
}


static void recorder_free(recorder *r) {
    if (!r) return;
    rec_stop_writer(r);
    /* a hook freed before its run recorded anything leaves the path as it was */
    if (r->snapshots == 0) oialr_traj_discard(r->traj);
    else oialr_traj_close(r->traj);
    for (int i = 0; i < r->nconfig; i++) {
        free(r->ckeys[i]);
        free(r->cvals[i]);
    }
    if (r->pool_map) munmap(r->pool_map, r->pool_map_bytes);
    for (int i = 0; i < OIALR_RECORD_POOL; i++) {
        free(r->pool_snap[i]);
        free(r->pool[i]);
    }
    free(r->ck_f);
    free(r->ck_order);
    for (int h = 0; h < r->nhst; h++) free(r->hst[h].buf);
    free(r->form_tmp);
    free(r->fcap);
    free(r->basis_ver);
    free(r->snap_len);
    free(r->ckeys);
    free(r->cvals);
    free(r->index);
    free(r->sel);
    free(r->path);
    free(r->layers);
    pthread_cond_destroy(&r->cv_space);
    pthread_cond_destroy(&r->cv_work);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

// ----------------------------------------------------------------------------
// the training thread: copy into the buffers and queue

/* Copy n floats to dst (16-byte aligned) and count the NaN/Inf among them
 * (exponent bits all ones). The stores bypass the cache: the snapshot is
 * read next by the disk, not by this core, and the training step that
 * follows keeps its operands in cache. The count rides on the copy, which
 * is bound by memory anyway, so the writer need not read the snapshot
 * again to warn about NaN. */
static size_t copy_count(float *restrict dst, const float *restrict src, size_t n) {
    size_t i = 0, bad = 0;
#if defined(__SSE2__)
    const __m128i ex = _mm_set1_epi32(0x7f800000);
    while (n - i >= 16) {
        /* 32-bit lane counters: at most 4 * 2^24 per lane per block */
        size_t blocks = (n - i) / 16 < ((size_t)1 << 24) ? (n - i) / 16 : (size_t)1 << 24;
        __m128i acc = _mm_setzero_si128();
        for (size_t b = 0; b < blocks; b++, i += 16) {
            for (int k = 0; k < 16; k += 4) {
                __m128 v = _mm_loadu_ps(src + i + k);
                _mm_stream_ps(dst + i + k, v);
                acc = _mm_sub_epi32(acc, _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(v), ex), ex));
            }
        }
        uint32_t lane[4];
        _mm_storeu_si128((__m128i *)lane, acc);
        bad += (size_t)lane[0] + lane[1] + lane[2] + lane[3];
    }
    _mm_sfence(); /* the streamed stores are visible before the job is queued */
#endif
    /* the tail (all of it without SSE2): a plain copy, then the writer's count */
    memcpy(dst + i, src + i, (n - i) * sizeof *dst);
    return bad + traj_count_nonfinite(src + i, n - i);
}

/* A low-rank layer's snapshot as its factors into dst (traj_snap kinds,
 * internal.h): Σ alone while the file has the layer's current U and V, or
 * U, V and Σ when they are new and take no more room than W. 0 if neither
 * (then W is formed). */
static int copy_factors(recorder *r, int i, const oialr_params *p, const oialr_param_info *pi, float *dst,
                        traj_snap *sn) {
    size_t k = (size_t)pi->rank, rows = (size_t)pi->rows, cols = (size_t)pi->cols, n = k * k;
    const float *sigma = p->data + pi->offset;
    if (r->fcap[i] <= 0 || pi->rank > r->fcap[i]) return 0;
    if (r->basis_ver[i] == (int64_t)pi->basis_version) {
        sn->kind = TRAJ_SNAP_SIGMA;
    } else if ((rows + cols) * k + n <= rows * cols) {
        /* in dst: Σ, then U, then V */
        sn->kind = TRAJ_SNAP_BASIS;
        sn->u = dst + n;
        sn->v = dst + n + rows * k;
        memcpy(dst + n, pi->u, rows * k * sizeof *dst);
        memcpy(dst + n + rows * k, pi->v, cols * k * sizeof *dst);
        r->basis_ver[i] = (int64_t)pi->basis_version;
    } else {
        return 0;
    }
    memcpy(dst, sigma, n * sizeof *dst);
    sn->nonfinite = traj_count_nonfinite(dst, (sn->kind == TRAJ_SNAP_BASIS ? (rows + cols) * k : 0) + n);
    return 1;
}

static int snapshot(recorder *r, oialr_trainer *t) {
    int64_t step = t->metrics.step;
    if (step == r->last_snap) return OIALR_OK;
    job j = {.kind = JOB_SNAP, .step = step, .slot = rec_take_slot(r)};
    double t0 = oialr_now();
    const oialr_params *p = t->params;
    for (int i = 0; i < r->nsel; i++) {
        const oialr_param_info *pi = &p->info[r->index[i]];
        float *dst = r->pool[j.slot][i];
        traj_snap *sn = &r->pool_snap[j.slot][i];
        *sn = (traj_snap){.w = dst, .rank = (int32_t)pi->rank, .kind = TRAJ_SNAP_FULL}; /* rank 0: full */
        if (pi->rank == 0) {
            sn->nonfinite = copy_count(dst, p->data + pi->offset, r->snap_len[i]);
            continue;
        }
        if (copy_factors(r, i, p, pi, dst, sn)) continue;
        /* a low-rank layer whose new bases would take more room than W:
         * its W = U Σ Vᵀ, so the analysis reads the same matrix */
        if (!r->form_tmp) { /* once, for the largest U Σ of any selected layer */
            size_t most = 1;
            for (int k = 0; k < r->nsel; k++) {
                const oialr_param_info *q = &p->info[r->index[k]];
                size_t f = (size_t)q->rows * (size_t)(q->rows < q->cols ? q->rows : q->cols);
                if (f > most) most = f;
            }
            if (!(r->form_tmp = malloc(most * sizeof(float))))
                return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory forming %s", r->path, pi->name);
        }
        int rc = oialr_params_weight(p, r->index[i], dst, r->form_tmp);
        if (rc) return rc;
        sn->nonfinite = traj_count_nonfinite(dst, r->snap_len[i]);
    }
    r->copy_s += oialr_now() - t0;
    r->last_snap = step;
    return rec_submit(r, &j);
}

static int metrics_row(recorder *r, oialr_trainer *t) {
    const oialr_train_metrics *m = &t->metrics;
    double epoch = t->steps_per_epoch > 0 ? (double)m->step / (double)t->steps_per_epoch : (double)m->epoch;
    job j = {.kind = JOB_METRICS, .step = m->step};
    double *v = j.u.row;
    v[M_epoch] = epoch;
    v[M_loss] = m->loss;
    v[M_train_acc] = m->train_acc;
    v[M_val_loss] = m->val_loss;
    v[M_val_acc] = m->val_acc;
    v[M_test_loss] = m->test_loss;
    v[M_test_acc] = m->test_acc;
    v[M_lr] = m->lr;
    v[M_trainable_fraction] = m->trainable_fraction;
    v[M_seconds] = m->seconds;
    return rec_submit(r, &j);
}

/* The checkpoint buffer back, when no checkpoint job was queued after all. */
static void release_ckpt(recorder *r) {
    if (!r->running) return;
    pthread_mutex_lock(&r->mu);
    r->ck_busy = 0;
    pthread_cond_broadcast(&r->cv_space);
    pthread_mutex_unlock(&r->mu);
}

static int checkpoint(recorder *r, oialr_trainer *t) {
    if (t->metrics.step == r->last_ckpt) return OIALR_OK; /* e.g. a periodic one at an epoch's end */
    if (r->running) {
        pthread_mutex_lock(&r->mu);
        WAIT_UNTIL(r, !r->ck_busy);
        r->ck_busy = 1;
        pthread_mutex_unlock(&r->mu);
    }
    double t0 = oialr_now();
    oialr_train_state s;
    oialr_trainer_get_state(t, &s);
    const float *src[CKA_N] = {s.params, s.optim_m, s.optim_v};
    float *f = r->ck_f;
    for (int a = 0; a < CKA_N; a++) {
        if (!r->has[a]) continue;
        memcpy(f, src[a], r->total * sizeof *f);
        f += r->ck_stride;
    }
    memcpy(r->ck_order, s.loader_order, (size_t)r->loader_n * sizeof *r->ck_order);
    for (int h = 0; h < r->nhst; h++) {
        const oialr_hook *k = &t->hooks[r->hst[h].hook];
        r->hst[h].buf[(r->hst[h].bytes + 7) / 8 - 1] = 0; /* the padding */
        int rc = k->state_save(t, k->user, r->hst[h].buf, r->hst[h].bytes);
        if (rc) {
            release_ckpt(r);
            return rc;
        }
    }
    r->last_ckpt = s.step;
    job j = {.kind = JOB_CKPT, .step = s.step};
    uint64_t *v = j.u.ck.v;
    v[CKS_OPTIM_T] = (uint64_t)s.optim_t;
    v[CKS_STEP] = (uint64_t)s.step;
    v[CKS_EPOCHS_DONE] = (uint64_t)s.epochs_done;
    v[CKS_SECONDS_US] = (uint64_t)llround(s.seconds * 1e6);
    v[CKS_LOADER_CURSOR] = (uint64_t)s.loader_cursor;
    v[CKS_MODEL_RNG_STATE] = s.model_rng.state;
    v[CKS_MODEL_RNG_INC] = s.model_rng.inc;
    v[CKS_LOADER_RNG_STATE] = s.loader_rng.state;
    v[CKS_LOADER_RNG_INC] = s.loader_rng.inc;
    v[CKS_AT_EPOCH_END] = (uint64_t)s.at_epoch_end;
    v[CKS_EPOCH_SEEN] = (uint64_t)s.epoch_seen;
    v[CKS_EPOCH_CORRECT] = (uint64_t)s.epoch_correct;
    const float fm[] = {s.loss, s.lr, s.val_loss, s.val_acc, s.test_loss, s.test_acc};
    for (int i = 0; i < 6; i++) {
        double d = fm[i];
        memcpy(&v[CKS_LOSS + i], &d, sizeof d);
    }
    r->copy_s += oialr_now() - t0;
    return rec_submit(r, &j);
}

#define ALIGN_FLOATS (OIALR_VFD_ALIGN / sizeof(float))

/* n floats rounded up to whole pages; 0 on overflow */
static size_t page_floats(size_t n) {
    return n > SIZE_MAX / sizeof(float) - ALIGN_FLOATS ? 0 : (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

static float *alloc_aligned(size_t floats) {
    void *p = NULL;
    return posix_memalign(&p, OIALR_VFD_ALIGN, floats ? floats * sizeof(float) : 1) ? NULL : p;
}

#define HUGE_PAGE ((size_t)2 << 20)

/* The pool: a fresh mapping, 2 MiB-aligned and on huge pages where the
 * kernel gives them (madvise mode); malloc could hand back memory already
 * touched as 4 KiB pages. Pinning a snapshot for direct I/O then costs the
 * writer about 20% less, and the disk takes it in fewer pieces. */
static float *map_pool(recorder *r, size_t bytes) {
    bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; /* the last buffer on huge pages too */
    size_t len = bytes + HUGE_PAGE;
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    size_t head = (HUGE_PAGE - (uintptr_t)m % HUGE_PAGE) % HUGE_PAGE;
    if (head) munmap(m, head);
    if (len - head > bytes) munmap(m + head + bytes, len - head - bytes);
    r->pool_map = m + head;
    r->pool_map_bytes = bytes;
#ifdef MADV_HUGEPAGE
    madvise(r->pool_map, bytes, MADV_HUGEPAGE); /* a hint: no huge pages is fine */
#endif
    return r->pool_map;
}

/* The snapshot pool, every layer on a page boundary. */
static int alloc_pool(recorder *r, const oialr_params *p) {
    r->snap_len = malloc((size_t)r->nsel * sizeof *r->snap_len);
    size_t *off = malloc(((size_t)r->nsel + 1) * sizeof *off); /* each layer's place in a buffer, floats */
    int rc = OIALR_OK;
    if (!r->snap_len || !off) {
        rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", r->path);
        goto done;
    }
    r->snap_floats = 0;
    size_t buf_floats = 0;
    for (int i = 0; i < r->nsel; i++) {
        r->snap_len[i] = p->info[r->index[i]].capacity; /* rows * cols, also once low-rank */
        size_t padded = page_floats(r->snap_len[i]);
        if ((padded == 0 && r->snap_len[i] > 0) || padded > SIZE_MAX / sizeof(float) - buf_floats) {
            rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: snapshot too large", r->path);
            goto done;
        }
        off[i] = buf_floats;
        buf_floats += padded;
        r->snap_floats += r->snap_len[i];
    }
    size_t sb = buf_floats * sizeof(float);
    if (buf_floats > SIZE_MAX / sizeof(float) / OIALR_RECORD_POOL ||
        !map_pool(r, sb ? OIALR_RECORD_POOL * sb : OIALR_VFD_ALIGN)) {
        rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for %d snapshot buffers of %zu bytes", r->path,
                          OIALR_RECORD_POOL, sb);
        goto done;
    }
    for (int i = 0; i < OIALR_RECORD_POOL; i++) {
        r->pool_snap[i] = calloc((size_t)r->nsel + 1, sizeof(traj_snap));
        r->pool[i] = calloc((size_t)r->nsel + 1, sizeof(float *));
        if (!r->pool_snap[i] || !r->pool[i]) {
            rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", r->path);
            goto done;
        }
        for (int k = 0; k < r->nsel; k++) r->pool[i][k] = (float *)r->pool_map + (size_t)i * buf_floats + off[k];
        r->free_slots[OIALR_RECORD_POOL - 1 - i] = i; /* taken from the end: slot 0 first */
        r->nfree++;
    }
    r->held_bytes = OIALR_RECORD_POOL * sb;
done:
    free(off);
    return rc;
}

/* The buffers, once the selection is known: every layer, every checkpoint
 * array on a page boundary, so the writer can hand them to the disk
 * directly (vfd.h). */
static int alloc_buffers(recorder *r, const oialr_trainer *t) {
    int rc = alloc_pool(r, t->params);
    if (rc) return rc;
    if (r->checkpoint) {
        size_t arrays = (size_t)r->has[CKA_PARAMS] + (size_t)r->has[CKA_OPTIM_M] + (size_t)r->has[CKA_OPTIM_V];
        r->ck_stride = page_floats(r->total);
        if ((r->ck_stride == 0 && r->total > 0) || r->ck_stride > SIZE_MAX / sizeof(float) / arrays)
            return oialr_seterr(OIALR_ERR_NOMEM, "%s: checkpoint too large", r->path);
        size_t fb = arrays * r->ck_stride * sizeof(float), ob = (size_t)r->loader_n * sizeof(int64_t);
        r->ck_f = alloc_aligned(arrays * r->ck_stride);
        r->ck_order = malloc(ob ? ob : 1);
        if (!r->ck_f || !r->ck_order)
            return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for the checkpoint buffer (%zu bytes)", r->path,
                                fb + ob);
        r->held_bytes += fb + ob;
    }
    return OIALR_OK;
}

// ----------------------------------------------------------------------------
// callbacks

/* run_begin, training thread: everything the file will need, gathered
 * without an HDF5 call (the writer declares it: define_file). */
static void config_put(recorder *r, const char *key, const char *fmt, ...) OIALR_PRINTF(3, 4);
static void config_put(recorder *r, const char *key, const char *fmt, ...) {
    OIALR_ASSERT(r->nbase < (int)(sizeof r->base_cfg / sizeof *r->base_cfg));
    r->base_cfg[r->nbase].key = key;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->base_cfg[r->nbase].value, sizeof r->base_cfg[r->nbase].value, fmt, ap);
    va_end(ap);
    r->nbase++;
}

static int gather(recorder *r, oialr_trainer *t) {
    const oialr_params *p = t->params;
    size_t cap = (size_t)(p->count ? p->count : 1);
    r->index = malloc(cap * sizeof *r->index);
    r->sel = malloc(cap * sizeof *r->sel);
    r->fcap = calloc(cap, sizeof *r->fcap);
    r->basis_ver = malloc(cap * sizeof *r->basis_ver);
    if (!r->index || !r->sel || !r->fcap || !r->basis_ver)
        return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", r->path);
    /* with an OIALR controller in the run, the layers it can switch get
     * factored snapshots (docs/format.md) */
    int lowrank = 0;
    for (int k = 0; k < t->nhooks; k++) lowrank |= oialr_lowrank_is_hook(&t->hooks[k]);
    for (int i = 0; i < p->count; i++) {
        const oialr_param_info *pi = &p->info[i];
        if (pi->kind != OIALR_PARAM_MATRIX) continue;
        if (r->layers && r->layers[0] && !oialr_glob_match(r->layers, pi->name)) continue;
        r->sel[r->nsel] = *pi; /* a copy: the writer must not read the trainer */
        if (lowrank && t->model && oialr_model_lowrank_capable(t->model, i))
            r->fcap[r->nsel] = pi->rows < pi->cols ? pi->rows : pi->cols;
        r->basis_ver[r->nsel] = -1;
        r->index[r->nsel++] = i;
    }
    if (r->nsel == 0) {
        char names[256] = "";
        size_t len = 0;
        for (int i = 0; i < p->count && len < sizeof names - 1; i++)
            if (p->info[i].kind == OIALR_PARAM_MATRIX)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", p->info[i].name);
        return oialr_seterr(OIALR_ERR_NOTFOUND, "%s: no weight matrix matches --record-layers '%s' (matrices: %s)",
                            r->path, r->layers ? r->layers : "", names[0] ? names : "none");
    }
    /* configuration */
    const oialr_train_config *c = &t->cfg;
    r->nbase = 0;
    config_put(r, "model", "%s", oialr_model_spec(t->model));
    config_put(r, "epochs", "%d", c->epochs);
    config_put(r, "batch", "%d", c->batch);
    config_put(r, "max_steps", "%lld", (long long)c->max_steps);
    config_put(r, "seed", "%llu", (unsigned long long)c->seed);
    config_put(r, "label_smoothing", "%g", (double)c->label_smoothing);
    config_put(r, "optimizer", "%s", c->optim.kind >= 0 && c->optim.kind < OIALR_OPT_COUNT ? oialr_opt_names[c->optim.kind] : "?");
    config_put(r, "lr", "%g", (double)c->optim.lr);
    config_put(r, "momentum", "%g", (double)c->optim.momentum);
    config_put(r, "nesterov", "%d", c->optim.nesterov);
    config_put(r, "betas", "%g,%g", (double)c->optim.beta1, (double)c->optim.beta2);
    config_put(r, "weight_decay", "%g", (double)c->optim.weight_decay);
    config_put(r, "schedule", "%s", c->schedule.kind >= 0 && c->schedule.kind < OIALR_SCHED_COUNT ? oialr_sched_names[c->schedule.kind] : "?");
    config_put(r, "warmup", "%lld", (long long)c->schedule.warmup);
    config_put(r, "steps_per_epoch", "%lld", (long long)t->steps_per_epoch);
    config_put(r, "total_steps", "%lld", (long long)t->total_steps);
    config_put(r, "record_every", "%lld", (long long)r->every);
    config_put(r, "record_layers", "%s", r->layers ? r->layers : "*");
    /* checkpoint items */
    r->ckpt_declare = r->checkpoint && !r->resume;
    r->nhst = 0;
    if (r->checkpoint) {
        /* the states of the hooks that keep one (the OIALR controller) */
        for (int k = 0; k < t->nhooks; k++) {
            const oialr_hook *h = &t->hooks[k];
            if (h->user == r || !h->state_size || !h->state_save) continue;
            size_t bytes = h->state_size(t, h->user);
            if (bytes == 0) continue;
            if (bytes == (size_t)-1) return OIALR_ERR_NOMEM; /* its message is set */
            if (r->nhst == REC_STATE_MAX)
                return oialr_seterr(OIALR_ERR_ARG, "%s: more than %d hooks keep a state", r->path, REC_STATE_MAX);
            snprintf(r->hst[r->nhst].name, sizeof r->hst[r->nhst].name, REC_CK_STATE "%s", h->name ? h->name : "hook");
            r->hst[r->nhst].hook = k;
            r->hst[r->nhst].bytes = bytes;
            if (!(r->hst[r->nhst].buf = calloc((bytes + 7) / 8, 8)))
                return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for the state of hook %s (%zu bytes)", r->path,
                                    h->name ? h->name : "?", bytes);
            r->held_bytes += (bytes + 7) / 8 * 8;
            r->nhst++;
        }
        oialr_train_state s;
        oialr_trainer_get_state(t, &s);
        r->total = s.n;
        r->has[CKA_PARAMS] = 1;
        r->has[CKA_OPTIM_M] = s.optim_m != NULL;
        r->has[CKA_OPTIM_V] = s.optim_v != NULL;
        r->loader_n = s.loader_n;
        if (r->loader_n <= 0) r->checkpoint = 0;
    }
    return OIALR_OK;
}


/* Time of the training thread inside the recorder (copies and waits too). */
#define TIMED(r, expr)                                                                                       \
    do {                                                                                                     \
        double t0_ = oialr_now();                                                                            \
        int rc_ = (expr);                                                                                    \
        (r)->hook_s += oialr_now() - t0_;                                                                    \
        return rc_;                                                                                          \
    } while (0)

#define FAILED(r) atomic_load_explicit(&(r)->failed, memory_order_acquire)

/* A resumed run: the file back at the checkpoint's step, for appending, and
 * the same layers as this run records. */
static int reopen(recorder *r, oialr_trainer *t) {
    if (!t->resumed)
        return oialr_seterr(OIALR_ERR_ARG, "%s: a resuming recorder needs a resumed trainer (oialr_record_resume)",
                            r->path);
    int64_t step = t->metrics.step;
    int rc = oialr_traj_open_rewind(&r->traj, r->path, OIALR_TRAJ_RECOVER, step);
    if (rc) return rc;
    if (oialr_traj_nlayers(r->traj) != r->nsel)
        return oialr_seterr(OIALR_ERR_MISMATCH, "%s: the file records %d layers, this run %d", r->path,
                            oialr_traj_nlayers(r->traj), r->nsel);
    for (int i = 0; i < r->nsel; i++) {
        const oialr_traj_layer *l = oialr_traj_layer_at(r->traj, i);
        const oialr_param_info *pi = &r->sel[i];
        if (strcmp(l->name, pi->name) || l->rows != pi->rows || l->cols != pi->cols ||
            (l->factor_capacity > 0 ? l->factor_capacity : 0) != r->fcap[i])
            return oialr_seterr(OIALR_ERR_MISMATCH, "%s: layer %d is %s %lldx%lld in the file, %s %lldx%lld in this run",
                                r->path, i, l->name, (long long)l->rows, (long long)l->cols, pi->name,
                                (long long)pi->rows, (long long)pi->cols);
    }
    r->last_snap = step; /* the file has this step's snapshot, if it was due */
    r->last_ckpt = step;
    oialr_log(OIALR_LOG_INFO, "%s: resuming at step %lld", r->path, (long long)step);
    return OIALR_OK;
}

static int do_run_begin(recorder *r, oialr_trainer *t) {
    if ((!r->traj && !r->resume) || r->running || (r->resume && r->traj))
        return oialr_seterr(OIALR_ERR_ARG, "%s: recorder already closed (hook reused?)", r->path);
    int rc = gather(r, t);
    if (!rc && r->resume) rc = reopen(r, t);
    if (!rc) rc = alloc_buffers(r, t);
    if (!rc && rec_start_writer(r)) oialr_log(OIALR_LOG_WARN, "%s; writing synchronously", oialr_errmsg());
    job begin = {.kind = JOB_BEGIN};
    if (!rc) rc = rec_submit(r, &begin);
    if (!rc && !r->resume) rc = snapshot(r, t);
    if (!rc && !r->resume) rc = metrics_row(r, t);
    return rc;
}

static int rec_run_begin(oialr_trainer *t, void *user) { TIMED((recorder *)user, do_run_begin(user, t)); }

static int do_step_end(recorder *r, oialr_trainer *t) {
    int rc = snapshot(r, t);
    if (!rc) rc = metrics_row(r, t);
    return rc;
}

static int rec_step_end(oialr_trainer *t, void *user) {
    recorder *r = user;
    if (FAILED(r)) return rec_writer_error(r); /* stop the run at the first step after a write error */
    if (r->every <= 0 || t->metrics.step % r->every != 0) return OIALR_OK;
    TIMED(r, do_step_end(r, t));
}

/* Between two steps: the periodic checkpoint. */
static int rec_step_begin(oialr_trainer *t, void *user) {
    recorder *r = user;
    if (FAILED(r)) return rec_writer_error(r);
    int64_t step = t->metrics.step;
    if (!r->checkpoint || r->ckpt_every <= 0 || step == 0 || step % r->ckpt_every != 0) return OIALR_OK;
    TIMED(r, checkpoint(r, t));
}

static int rec_eval_end(oialr_trainer *t, void *user) {
    recorder *r = user;
    if (FAILED(r)) return rec_writer_error(r);
    TIMED(r, metrics_row(r, t));
}

static int do_epoch_end(recorder *r, oialr_trainer *t) {
    int rc = OIALR_OK;
    if (r->every_epoch) rc = snapshot(r, t);
    if (!rc && r->checkpoint) rc = checkpoint(r, t);
    return rc;
}

static int rec_epoch_end(oialr_trainer *t, void *user) {
    recorder *r = user;
    if (FAILED(r)) return rec_writer_error(r);
    TIMED(r, do_epoch_end(r, t));
}

/* 1 if the run diverged and a parameter holds NaN/Inf. The trainer checks
 * every update, so the parameters are then those of the update that failed,
 * not the state of any completed step (metrics.step still counts the last
 * good one): they are not recorded. After a divergence in the loss or a
 * gradient they are the finite state the failing step began from. */
static int diverged_params(const oialr_trainer *t) {
    if (t->status != OIALR_ERR_DIVERGED) return 0;
    const oialr_params *p = t->params;
    for (int i = 0; i < p->count; i++)
        if (traj_count_nonfinite(p->data + p->info[i].offset, p->info[i].size)) return 1;
    return 0;
}

static int do_run_end(recorder *r, oialr_trainer *t) {
    if (!r->traj) return OIALR_OK;
    double t0 = oialr_now();
    int rc = OIALR_OK;
    /* the final state, even after a stop or a training error: it is what the
     * run did (not after a write error: the file is failing; nor the NaN of
     * a divergence over the last good snapshot) */
    if (r->nsel > 0 && (r->running || r->nfree > 0) && !FAILED(r) && !diverged_params(t)) rc = snapshot(r, t);
    /* a run stopped between two steps (a signal) can go on from here */
    if (!rc && t->status == OIALR_ERR_INTERRUPTED && r->checkpoint && r->ck_f && !FAILED(r)) rc = checkpoint(r, t);
    rec_stop_writer(r); /* drains the queue */
    if (!rc && r->werr) {
        if (r->reported) {
            rc = r->werr;
        } else if (t->status) {
            /* the run already failed for another reason: keep its message */
            oialr_log(OIALR_LOG_ERROR, "%s", r->wmsg);
            rc = r->werr;
        } else {
            rc = rec_writer_error(r);
        }
    } else if (rc && t->status) {
        oialr_log(OIALR_LOG_ERROR, "%s", oialr_errmsg());
    }
    /* nothing recorded (the run failed before its first snapshot): the file
     * never left its temporary name; discard it, and the path (absent, or
     * the old file --force would have replaced) stays as it was */
    char first[sizeof r->wmsg] = "";
    if (rc) snprintf(first, sizeof first, "%s", oialr_errmsg());
    int crc = r->snapshots == 0 ? oialr_traj_discard(r->traj) : oialr_traj_close(r->traj);
    r->traj = NULL;
    if (crc && !rc && t->status) oialr_log(OIALR_LOG_ERROR, "%s", oialr_errmsg());
    /* the first failure is the one to report: a file whose write failed
     * (disk full, size limit) usually fails to close too */
    if (rc) oialr_seterr(rc, "%s", first);
    r->end_s += oialr_now() - t0;
    return rc ? rc : crc;
}

static int rec_run_end(oialr_trainer *t, void *user) { TIMED((recorder *)user, do_run_end(user, t)); }

// ----------------------------------------------------------------------------
// public

int oialr_record_hook_init(oialr_hook *hook, const oialr_record_options *opt) {
    OIALR_ASSERT(hook && opt);
    memset(hook, 0, sizeof *hook);
    if (!opt->path || !opt->path[0]) return oialr_seterr(OIALR_ERR_ARG, "recorder: no output path");
    if (opt->every < 0)
        return oialr_seterr(OIALR_ERR_ARG, "%s: --every must be >= 0 (got %lld)", opt->path, (long long)opt->every);
    if (opt->nconfig < 0 || (opt->nconfig > 0 && (!opt->config_keys || !opt->config_values)))
        return oialr_seterr(OIALR_ERR_ARG, "%s: bad config key/value lists", opt->path);
    recorder *r = calloc(1, sizeof *r);
    if (!r) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", opt->path);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca; /* the writer's timed waits count on oialr_now()'s clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv_work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&r->cv_space, NULL);
    atomic_init(&r->failed, 0);
    r->path = dupstr(opt->path);
    r->layers = dupstr(opt->layers);
    r->every = opt->every;
    r->every_epoch = opt->every_epoch;
    r->checkpoint = opt->checkpoint;
    r->ckpt_every = opt->checkpoint_every;
    r->resume = opt->resume;
    r->last_snap = -1;
    r->last_ckpt = -1;
    if (!r->path || (opt->layers && !r->layers)) goto oom;
    if (opt->nconfig > 0) {
        r->ckeys = calloc((size_t)opt->nconfig, sizeof *r->ckeys);
        r->cvals = calloc((size_t)opt->nconfig, sizeof *r->cvals);
        if (!r->ckeys || !r->cvals) goto oom;
        for (int i = 0; i < opt->nconfig; i++) {
            r->nconfig = i + 1;
            r->ckeys[i] = dupstr(opt->config_keys[i]);
            r->cvals[i] = dupstr(opt->config_values[i] ? opt->config_values[i] : "");
            if (!r->ckeys[i] || !r->cvals[i]) goto oom;
        }
    }
    if (opt->checkpoint_every < 0) {
        recorder_free(r);
        return oialr_seterr(OIALR_ERR_ARG, "%s: checkpoint interval must be >= 0", opt->path);
    }
    hook->name = "record";
    hook->user = r;
    hook->run_begin = rec_run_begin;
    hook->step_begin = rec_step_begin;
    hook->step_end = rec_step_end;
    hook->eval_end = rec_eval_end;
    hook->epoch_end = rec_epoch_end;
    hook->run_end = rec_run_end;
    if (r->resume) return OIALR_OK; /* the file is reopened at run_begin, at the checkpoint's step */
    oialr_traj_options to;
    oialr_traj_options_default(&to);
    to.force = opt->force;
    to.compress = opt->compress;
    to.seed = opt->seed;
    to.command_line = opt->command_line;
    int rc = oialr_traj_create(&r->traj, opt->path, &to);
    if (rc) {
        recorder_free(r);
        memset(hook, 0, sizeof *hook);
        return rc;
    }
    return OIALR_OK;
oom:
    recorder_free(r);
    return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", opt->path);
}

void oialr_record_hook_free(oialr_hook *hook) {
    if (!hook || hook->run_begin != rec_run_begin) return;
    recorder_free(hook->user);
    memset(hook, 0, sizeof *hook);
}

static recorder *of_hook(const oialr_hook *hook) {
    return hook && hook->run_begin == rec_run_begin ? hook->user : NULL;
}

oialr_traj *oialr_record_trajectory(const oialr_hook *hook) {
    recorder *r = of_hook(hook);
    return r && !r->running ? r->traj : NULL;
}

int oialr_record_event(oialr_hook *hook, const oialr_traj_event *ev) {
    recorder *r = of_hook(hook);
    OIALR_ASSERT(ev);
    if (!r || !r->traj) return oialr_seterr(OIALR_ERR_ARG, "recorder: event on a closed or unknown recorder");
    int crc = traj_check_event(r->path, ev);
    if (crc) return crc;
    if (FAILED(r)) return rec_writer_error(r);
    job j = {.kind = JOB_EVENT, .step = ev->step, .u.ev = *ev};
    double t0 = oialr_now();
    int rc = rec_submit(r, &j);
    r->hook_s += oialr_now() - t0;
    return rc;
}

void oialr_record_get_info(const oialr_hook *hook, oialr_record_info *info) {
    recorder *r = of_hook(hook);
    memset(info, 0, sizeof *info);
    info->pool = OIALR_RECORD_POOL;
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    info->snapshots = r->snapshots;
    info->bytes = r->bytes;
    info->write_seconds = r->write_s;
    info->write_cpu_seconds = r->write_cpu_s;
    info->direct_bytes = r->direct_bytes;
    info->wait_seconds = r->wait_s;
    info->waits = r->waits;
    pthread_mutex_unlock(&r->mu);
    info->hook_seconds = r->hook_s;
    info->copy_seconds = r->copy_s;
    info->end_seconds = r->end_s;
    info->write_mb_s = info->write_seconds > 0 ? (double)info->bytes / 1e6 / info->write_seconds : 0.0;
    info->snapshot_bytes = r->snap_floats * sizeof(float);
    info->held_bytes = r->held_bytes;
}

void oialr_record_stats(const oialr_hook *hook, uint64_t *bytes, double *seconds, int64_t *snapshots) {
    oialr_record_info in;
    oialr_record_get_info(hook, &in);
    if (bytes) *bytes = in.bytes;
    if (seconds) *seconds = in.hook_seconds;
    if (snapshots) *snapshots = in.snapshots;
}
