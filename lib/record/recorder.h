/*
 * recorder.h — the recorder's state, shared by the hook callbacks on the
 * training thread (hook.c) and the writer thread with its queue
 * (hook_writer.c). Private to lib/record.
 */
#ifndef OIALR_RECORD_RECORDER_H
#define OIALR_RECORD_RECORDER_H

#include "oialr/record.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define QCAP 64 /* queued jobs (a snapshot, a metrics row, a checkpoint, an event) */
#define MBATCH 64     /* metrics rows the writer keeps before writing them at once */
#define MLAG 1.0      /* seconds a metrics row may wait in the writer's memory */

enum { JOB_BEGIN, JOB_SNAP, JOB_METRICS, JOB_CKPT, JOB_EVENT };

/* The checkpoint's items, each named once here: the float arrays (those
 * the optimizer keeps, laid out in recorder.ck_f in this order), the data
 * order, and the 64-bit scalars, whose values travel in ckpt_meta. */
enum { CKA_PARAMS, CKA_OPTIM_M, CKA_OPTIM_V, CKA_N };
enum {
    CKS_OPTIM_T, CKS_STEP, CKS_EPOCHS_DONE, CKS_SECONDS_US, CKS_LOADER_CURSOR,
    CKS_MODEL_RNG_STATE, CKS_MODEL_RNG_INC, CKS_LOADER_RNG_STATE, CKS_LOADER_RNG_INC,
    CKS_AT_EPOCH_END, CKS_EPOCH_SEEN, CKS_EPOCH_CORRECT,
    /* the latest metrics, as the bits of a double */
    CKS_LOSS, CKS_LR, CKS_VAL_LOSS, CKS_VAL_ACC, CKS_TEST_LOSS, CKS_TEST_ACC, CKS_N
};
/* Their names in /checkpoint (hook_writer.c), and those of the arrays. */
typedef struct rec_ck_scalar {
    const char *name;
    int is_unsigned;
} rec_ck_scalar;
extern const rec_ck_scalar REC_CK_SCALAR[CKS_N];
extern const char *const REC_CK_ARRAY[CKA_N];
#define REC_CK_ORDER "loader_order"
#define REC_CK_STATE "state_" /* + a hook's name: its state_save bytes, as int64 */
#define REC_STATE_MAX 8       /* hooks with a state in one run */

typedef struct ckpt_meta {
    uint64_t v[CKS_N]; /* signed items as their two's complement */
} ckpt_meta;

/* The metrics row, one column per OIALR_TRAJ_METRICS_LIST entry (M_epoch ...). */
#define METRIC_INDEX(name) M_##name,
enum { OIALR_TRAJ_METRICS_LIST(METRIC_INDEX) NMETRICS };
#undef METRIC_INDEX

typedef struct job {
    int kind;
    int64_t step;
    int slot;   /* JOB_SNAP: the pool buffer holding the selected matrices */
    union {
        double row[NMETRICS]; /* JOB_METRICS */
        ckpt_meta ck;        /* JOB_CKPT (arrays in recorder.ck_*) */
        oialr_traj_event ev; /* JOB_EVENT */
    } u;
} job;

typedef struct recorder {
    oialr_traj *traj;
    char *path, *layers;
    int64_t every;
    int every_epoch, checkpoint;
    int *index;      /* trajectory layer -> parameter index */
    oialr_param_info *sel; /* [nsel] the selected matrices (copies) */
    int nsel;
    struct {
        const char *key;
        char value[512];
    } base_cfg[24];  /* /config from the trainer, gathered at run_begin */
    int nbase;
    int ckpt_declare; /* declare the checkpoint items */
    int resume;       /* append to the file of the run being resumed (opened at run_begin) */
    int64_t ckpt_every, last_ckpt; /* checkpoint every N steps too (0: epoch ends); step of the last (-1) */
    struct {
        int hook;     /* trainer hook index */
        char name[OIALR_TRAJ_NAME_MAX];
        size_t bytes;
        int64_t *buf; /* [ceil(bytes / 8)], part of the checkpoint buffer */
    } hst[REC_STATE_MAX];
    int nhst;
    int64_t last_snap; /* step of the last snapshot queued (-1: none) */
    int has[CKA_N];  /* the checkpoint arrays this optimizer has */
    size_t total;
    int64_t loader_n;
    char **ckeys, **cvals;
    int nconfig;

    /* buffers: sizes fixed at run_begin */
    size_t *snap_len;          /* [nsel] floats of each selected layer */
    size_t snap_floats;        /* floats of one snapshot (all selected layers) */
    void *pool_map;            /* one mapping for the pool, huge pages if it can */
    size_t pool_map_bytes;
    float **pool[OIALR_RECORD_POOL]; /* [nsel] each layer in buffer i, page-aligned */
    traj_snap *pool_snap[OIALR_RECORD_POOL]; /* [nsel] what buffer i holds of each layer:
                               * full or factors, rank, NaN/Inf counted while copying */
    int64_t *fcap;             /* [nsel] factor capacity declared (0: always full) */
    int64_t *basis_ver;        /* [nsel] basis_version whose U, V the file has (-1: none) */
    float *form_tmp;           /* U Σ of a low-rank layer while its W is formed */
    float *ck_f;               /* as is each checkpoint array (direct I/O, vfd.h); */
    size_t ck_stride;          /* ck_f: the arrays of has[], this apart */
    int64_t *ck_order;         /* loader_order */
    size_t held_bytes;

    /* writer thread; everything below under mu */
    pthread_t thread;
    int running;               /* the writer owns traj (between start and join) */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;    /* writer: a job is queued, or closing */
    pthread_cond_t cv_space;   /* training: a buffer / slot came free */
    job ring[QCAP];
    int head, count;
    int free_slots[OIALR_RECORD_POOL];
    int nfree;
    int ck_busy;               /* the checkpoint buffer is queued or being written */
    int closing;
    int werr;                  /* the writer's first error (OIALR_OK: none) */
    char wmsg[1024];
    atomic_int failed;         /* werr != 0, read by the training thread without mu */
    int reported;              /* werr was returned by a callback already */

    /* metrics rows waiting in the writer (writer thread only) */
    int64_t msteps[MBATCH];
    double mrows[MBATCH][NMETRICS];
    int mpend;
    double mfirst;             /* when the oldest waiting row was queued */

    /* statistics: writer side under mu, training side training thread only */
    uint64_t bytes, direct_bytes;
    int64_t snapshots;
    double write_s, write_cpu_s;
    double hook_s, copy_s, wait_s, end_s;
    int64_t waits;
} recorder;

/* hook_writer.c: the writer thread and the queue */
int rec_start_writer(recorder *r);    /* 0: running; else jobs are written synchronously */
void rec_stop_writer(recorder *r);    /* drain the queue, join */
int rec_submit(recorder *r, const job *j); /* queue a job, or write it now while no writer runs */
int rec_take_slot(recorder *r);       /* a free snapshot buffer (waits for one) */
int rec_writer_error(recorder *r);    /* the writer's error as this thread's error */

/* Wait (mu held) until cond holds; counted as back-pressure. */
#define WAIT_UNTIL(r, cond)                                                                                  \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            double w0_ = oialr_now();                                                                        \
            while (!(cond)) pthread_cond_wait(&(r)->cv_space, &(r)->mu);                                     \
            (r)->wait_s += oialr_now() - w0_;                                                                \
            (r)->waits++;                                                                                    \
        }                                                                                                    \
    } while (0)

#endif
