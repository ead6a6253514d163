/*
 * hook_writer.c — the recorder's writer thread (see hook.c for the whole
 * picture): it makes every HDF5 call of a recording run, from the jobs the
 * training thread queues — the file's definition (the first job), the
 * snapshots, metrics rows in batches (MBATCH, MLAG), checkpoints and
 * events — and keeps the first write error for the training thread.
 */
#include "h5util.h"
#include "internal.h"
#include "recorder.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The checkpoint items' names (their order: recorder.h's CKA_ and CKS_). */
const char *const REC_CK_ARRAY[CKA_N] = {"params", "optim_m", "optim_v"};
const rec_ck_scalar REC_CK_SCALAR[CKS_N] = {
    [CKS_OPTIM_T] = {"optim_t", 0},
    [CKS_STEP] = {"step", 0},
    [CKS_EPOCHS_DONE] = {"epochs_done", 0},
    [CKS_SECONDS_US] = {"seconds_us", 0},
    [CKS_LOADER_CURSOR] = {"loader_cursor", 0},
    [CKS_MODEL_RNG_STATE] = {"model_rng_state", 1},
    [CKS_MODEL_RNG_INC] = {"model_rng_inc", 1},
    [CKS_LOADER_RNG_STATE] = {"loader_rng_state", 1},
    [CKS_LOADER_RNG_INC] = {"loader_rng_inc", 1},
    [CKS_AT_EPOCH_END] = {"at_epoch_end", 0},
    [CKS_EPOCH_SEEN] = {"epoch_seen", 0},
    [CKS_EPOCH_CORRECT] = {"epoch_correct", 0},
    [CKS_LOSS] = {"loss_bits", 1},
    [CKS_LR] = {"lr_bits", 1},
    [CKS_VAL_LOSS] = {"val_loss_bits", 1},
    [CKS_VAL_ACC] = {"val_acc_bits", 1},
    [CKS_TEST_LOSS] = {"test_loss_bits", 1},
    [CKS_TEST_ACC] = {"test_acc_bits", 1},
};


static int define_file(recorder *r);

// ----------------------------------------------------------------------------
// the writer: one job's HDF5 calls (on the writer thread, or on the training
// thread while no writer runs)


static int job_write(recorder *r, const job *j) {
    oialr_traj *tr = r->traj;
    int rc = OIALR_OK;
    switch (j->kind) {
    case JOB_BEGIN:
        rc = define_file(r);
        break;
    case JOB_SNAP: {
        rc = traj_append_snapshot(tr, j->step, r->nsel, r->pool_snap[j->slot]);
        break;
    }
    case JOB_METRICS:
        rc = oialr_traj_append_metrics(tr, j->step, j->u.row, NMETRICS);
        break;
    case JOB_EVENT:
        rc = oialr_traj_append_event(tr, &j->u.ev);
        break;
    case JOB_CKPT: {
        const ckpt_meta *c = &j->u.ck;
        const float *f = r->ck_f;
        if ((rc = oialr_traj_ckpt_start(tr))) return rc;
        for (int a = 0; a < CKA_N; a++) {
            if (!r->has[a]) continue;
            if ((rc = oialr_traj_ckpt_put_array(tr, REC_CK_ARRAY[a], f, r->total))) return rc;
            f += r->ck_stride;
        }
        for (int i = 0; i < CKS_N; i++) {
            rc = REC_CK_SCALAR[i].is_unsigned ? oialr_traj_ckpt_put_u64(tr, REC_CK_SCALAR[i].name, c->v[i])
                                          : oialr_traj_ckpt_put_i64(tr, REC_CK_SCALAR[i].name, (int64_t)c->v[i]);
            if (rc) return rc;
        }
        if ((rc = oialr_traj_ckpt_put_array_i64(tr, REC_CK_ORDER, r->ck_order, (size_t)r->loader_n))) return rc;
        for (int h = 0; h < r->nhst; h++)
            if ((rc = oialr_traj_ckpt_put_array_i64(tr, r->hst[h].name, r->hst[h].buf, (r->hst[h].bytes + 7) / 8)))
                return rc;
        rc = oialr_traj_ckpt_commit(tr);
        break;
    }
    }
    return rc;
}

static double cpu_now(void) {
    struct timespec c;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
    return (double)c.tv_sec + 1e-9 * (double)c.tv_nsec;
}

/* Write the metrics rows waiting in the writer's memory (writer thread). */
static int flush_metrics(recorder *r) {
    if (r->mpend == 0) return OIALR_OK;
    int rc = oialr_traj_append_metrics_rows(r->traj, r->mpend, r->msteps, &r->mrows[0][0], NMETRICS);
    r->mpend = 0;
    return rc;
}

/* One job on the writer thread. Metrics rows are gathered and written
 * MBATCH at a time, or once the oldest has waited MLAG seconds, and always
 * before a checkpoint or an event (so a checkpoint never precedes the rows
 * of its steps): eleven small datasets written and flushed per row cost
 * the writer a quarter of a snapshot's time. */
static int writer_job(recorder *r, const job *j) {
    if (j->kind == JOB_METRICS) {
        if (r->mpend == 0) r->mfirst = oialr_now();
        r->msteps[r->mpend] = j->step;
        memcpy(r->mrows[r->mpend], j->u.row, sizeof j->u.row);
        r->mpend++;
        return r->mpend == MBATCH || oialr_now() - r->mfirst >= MLAG ? flush_metrics(r) : OIALR_OK;
    }
    int rc = j->kind == JOB_CKPT || j->kind == JOB_EVENT ? flush_metrics(r) : OIALR_OK;
    return rc ? rc : job_write(r, j);
}

/* Keep the writer's first error (mu held). */
static void keep_error(recorder *r, int rc, const char *msg) {
    if (rc && r->werr == OIALR_OK) {
        r->werr = rc;
        snprintf(r->wmsg, sizeof r->wmsg, "%s", msg);
        atomic_store(&r->failed, 1);
    }
}

/* Until woken, or (rows waiting) until the oldest is MLAG old: 1 if that
 * deadline passed. mu held. */
static int wait_work(recorder *r) {
    if (r->mpend == 0) return pthread_cond_wait(&r->cv_work, &r->mu), 0;
    double at = r->mfirst + MLAG;
    struct timespec dl = {.tv_sec = (time_t)at, .tv_nsec = (long)((at - (double)(time_t)at) * 1e9)};
    return pthread_cond_timedwait(&r->cv_work, &r->mu, &dl) == ETIMEDOUT;
}

static void *writer_main(void *arg) {
    recorder *r = arg;
#ifdef __linux__
    pthread_setname_np(pthread_self(), "oialr-writer"); /* as top and perf show it */
#endif
#ifdef SCHED_BATCH
    /* Linux: a batch thread does not preempt the training thread when the
     * queue wakes it; it runs when a core is free or at the next tick */
    struct sched_param sp = {0};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
#endif
    pthread_mutex_lock(&r->mu);
    for (;;) {
        int late = 0;
        while (r->count == 0 && !r->closing && !late) late = wait_work(r);
        job j = {.kind = -1};
        if (r->count > 0) {
            j = r->ring[r->head];
            r->head = (r->head + 1) % QCAP;
            r->count--;
        } else if (!late && r->mpend == 0) {
            break; /* closing and drained */
        }
        int failed = r->werr != OIALR_OK;
        /* A direct write costs the least CPU but waits for the disk; once
         * another snapshot waits behind this one the disk is the
         * bottleneck, and the page cache takes this one at once so that
         * training does not wait for a free buffer. */
        int behind = OIALR_RECORD_POOL - r->nfree > 1;
        pthread_mutex_unlock(&r->mu);
        if (j.kind == JOB_SNAP && !failed) traj_set_direct(r->traj, !behind);

        /* after an error, later jobs are only given back: the run is stopping */
        double t0 = oialr_now(), c0 = cpu_now();
        if (failed) r->mpend = 0; /* the run is stopping: rows are dropped with the jobs */
        int rc = failed ? OIALR_OK : j.kind < 0 ? flush_metrics(r) : writer_job(r, &j);
        uint64_t direct = traj_direct_bytes(r->traj);
        double dt = oialr_now() - t0, dc = cpu_now() - c0;
        char msg[sizeof r->wmsg];
        if (rc) snprintf(msg, sizeof msg, "%s", oialr_errmsg()); /* errmsg is per thread */

        pthread_mutex_lock(&r->mu);
        r->write_s += dt;
        r->write_cpu_s += dc;
        r->direct_bytes = direct;
        keep_error(r, rc, msg);
        if (j.kind == JOB_SNAP) {
            if (!rc && !failed) {
                r->snapshots++;
                r->bytes += (uint64_t)r->snap_floats * sizeof(float);
            }
            r->free_slots[r->nfree++] = j.slot;
        } else if (j.kind == JOB_CKPT) {
            r->ck_busy = 0;
        }
        pthread_cond_signal(&r->cv_space);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Start the writer; the training thread makes no HDF5 call until
 * rec_stop_writer(). The asynchronous signals a run reacts to (SIGINT, SIGTERM)
 * are blocked in the writer so they reach the training thread's handler and
 * never interrupt a write. */
int rec_start_writer(recorder *r) {
    sigset_t block, old;
    sigemptyset(&block);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGUSR1, SIGUSR2, SIGCHLD, SIGWINCH};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaddset(&block, sigs[i]);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int e = pthread_create(&r->thread, NULL, writer_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) return oialr_seterr(OIALR_ERR_NOMEM, "%s: cannot start the writer thread: %s", r->path, strerror(e));
    r->running = 1;
    return OIALR_OK;
}

/* Drain the queue and join: afterwards the training thread owns traj again. */
void rec_stop_writer(recorder *r) {
    if (!r->running) return;
    pthread_mutex_lock(&r->mu);
    r->closing = 1;
    pthread_cond_signal(&r->cv_work);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    r->running = 0;
}

// ----------------------------------------------------------------------------
// the training thread: copy and queue

/* The writer's error as this thread's error. */
int rec_writer_error(recorder *r) {
    pthread_mutex_lock(&r->mu);
    int rc = r->werr;
    char msg[sizeof r->wmsg];
    memcpy(msg, r->wmsg, sizeof msg);
    pthread_mutex_unlock(&r->mu);
    r->reported = 1;
    return oialr_seterr(rc, "%s", msg);
}


/* Queue a job, or write it now while no writer runs. */
int rec_submit(recorder *r, const job *j) {
    if (!r->running) {
        int rc = job_write(r, j);
        if (j->kind == JOB_SNAP) {
            r->free_slots[r->nfree++] = j->slot;
            if (!rc) {
                r->snapshots++;
                r->bytes += (uint64_t)r->snap_floats * sizeof(float);
            }
        }
        return rc;
    }
    pthread_mutex_lock(&r->mu);
    WAIT_UNTIL(r, r->count < QCAP);
    r->ring[(r->head + r->count) % QCAP] = *j;
    r->count++;
    pthread_cond_signal(&r->cv_work);
    pthread_mutex_unlock(&r->mu);
    return OIALR_OK;
}

int rec_take_slot(recorder *r) {
    if (!r->running) return r->free_slots[--r->nfree]; /* synchronous: always one free */
    pthread_mutex_lock(&r->mu);
    WAIT_UNTIL(r, r->nfree > 0);
    int b = r->free_slots[--r->nfree];
    pthread_mutex_unlock(&r->mu);
    return b;
}

/* The writer's first job (JOB_BEGIN): declare what gather() found, start SWMR. */
static int define_file(recorder *r) {
    oialr_traj *tr = r->traj;
    int rc;
    if (r->resume) return OIALR_OK; /* reopened for appending at run_begin (hook.c) */
    for (int i = 0; i < r->nsel; i++) {
        const oialr_param_info *pi = &r->sel[i];
        int index;
        if ((rc = oialr_traj_declare_layer(tr, pi->name, pi->rows, pi->cols, pi->layer, pi->ndim, pi->shape,
                                           &index)) ||
            (r->fcap[i] > 0 && (rc = oialr_traj_declare_factors(tr, index, r->fcap[i]))))
            return rc;
    }
    for (int i = 0; i < r->nbase; i++)
        if ((rc = oialr_traj_set_config(tr, r->base_cfg[i].key, r->base_cfg[i].value))) return rc;
    for (int i = 0; i < r->nconfig; i++)
        if ((rc = oialr_traj_set_config(tr, r->ckeys[i], r->cvals[i]))) return rc;
    if ((rc = oialr_traj_declare_metrics(tr, OIALR_TRAJ_METRICS_DEFAULT))) return rc;
    if (r->ckpt_declare) {
        for (int a = 0; a < CKA_N; a++)
            if (r->has[a] && (rc = oialr_traj_declare_ckpt_array(tr, REC_CK_ARRAY[a], r->total))) return rc;
        for (int i = 0; i < CKS_N; i++)
            if ((rc = oialr_traj_declare_ckpt_scalar(tr, REC_CK_SCALAR[i].name, REC_CK_SCALAR[i].is_unsigned))) return rc;
        if (r->loader_n > 0 && (rc = oialr_traj_declare_ckpt_array_i64(tr, REC_CK_ORDER, (size_t)r->loader_n)))
            return rc;
        for (int h = 0; h < r->nhst; h++)
            if ((rc = oialr_traj_declare_ckpt_array_i64(tr, r->hst[h].name, (r->hst[h].bytes + 7) / 8))) return rc;
    }
    return traj_start(tr);
}
