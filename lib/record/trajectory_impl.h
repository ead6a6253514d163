/*
 * trajectory_impl.h — what the files of the HDF5 trajectory module
 * (oialr/trajectory.h) share: struct oialr_traj and its layer and
 * checkpoint tables, TRY_H5, and the functions one file calls in another.
 * Private to lib/record; the recorder hook uses internal.h.
 *
 *   trajectory_file.c        the handle's allocation and teardown, file
 *                            access, the writer lock, publishing a new
 *                            file, the event types, flush/close/discard
 *   trajectory_write.c       the writer: phase 1 (create, config, declare
 *                            layers and metrics) and phase 2 (begin, append
 *                            snapshots, metrics rows and events)
 *   trajectory_read.c        the reader: open (every format check), refresh,
 *                            the getters and reads
 *   trajectory_factors.c     the reader's side of factored snapshots (a
 *                            low-rank layer's U Σ Vᵀ): checks, forming W
 *   trajectory_checkpoint.c  the checkpoint: /checkpoint, its items, the
 *                            two slots written and read
 *   h5util.c                 the generic HDF5 helpers (also analysis/)
 *
 * HDF5 usage in one place:
 *   - files are created with libver bounds (latest, latest): superblock v3,
 *     needed for SWMR; every object is created in phase 1, then
 *     H5Fstart_swmr_write;
 *   - on disk explicit little-endian types (H5T_IEEE_F32LE ...), in memory
 *     native types; extendible chunked datasets, chunk = one snapshot;
 *   - every HDF5 call is checked; the automatic error printing is switched
 *     off while inside a public function and restored on the way out, and a
 *     failure becomes an OIALR_ERR_* code plus one line naming the file, the
 *     object and the innermost HDF5 message;
 *   - a writer holds an OFD byte-range lock far beyond the data (Linux OFD
 *     locks do not interact with the flock() HDF5 uses), so readers and
 *     RECOVER can tell a running writer from a killed one.
 */
#ifndef OIALR_RECORD_TRAJECTORY_IMPL_H
#define OIALR_RECORD_TRAJECTORY_IMPL_H

#include <hdf5.h>
#include <sys/types.h>

#include "h5util.h"
#include "internal.h"
#include "oialr/trajectory.h"
#include "vfd.h"

// ----------------------------------------------------------------------------
// state

/* A checkpoint item's type: float32 array, int64, uint64, int64 array. */
enum { CK_ARRAY = 0, CK_I64 = 1, CK_U64 = 2, CK_AI64 = 3 };

typedef struct tlayer {
    oialr_traj_layer pub;
    hid_t grp, dw, ds, dr; /* group, weight, step, rank */
    int64_t *steps;
    int32_t *ranks;
    int32_t *bases;        /* factored layers: basis of each snapshot, -1 full */
    int64_t cap;
    /* factored layers (pub.factor_capacity > 0; docs/format.md): */
    hid_t dbasis, dsigma, du, dv, dbstep; /* basis [T], sigma, u, v, basis_step [K] */
    int64_t nbasis;        /* K: bases written (writer) / complete (reader) */
    float *fbuf;           /* reader: u, v, sigma, U·Σ of one snapshot */
    int32_t fbasis, frank; /* reader: the basis and rank held in fbuf (-1: none) */
    int32_t wbrank;        /* writer: rank of the last basis written */
    int warned_nonfinite;
    int raw; /* snapshots go in as raw chunks (-1: not known yet) */
} tlayer;

typedef struct ckitem {
    char name[OIALR_TRAJ_NAME_MAX];
    int type;
    size_t n; /* floats per slot (arrays) */
    hid_t d;
} ckitem;

struct oialr_traj {
    char *path;
    char *cmdline;
    hid_t file;
    oialr_vfd_file *vfd; /* the writer's driver state (NULL for readers) */
    int writable;  /* created or opened for append */
    int recording; /* phase 2 (SWMR writing, or plain when unavailable) */
    int compress;
    int lockfd;
    dev_t dev; /* the file's identity, to notice it being removed or replaced */
    ino_t ino;
    oialr_output out; /* a new file under its temporary name until published */
    int publish_failed; /* out.tmp then holds data that must not be removed */
    oialr_traj_info info;

    tlayer *layers;
    int nlayers, caplayers;

    hid_t gmetrics, dmstep;
    hid_t *dcol;
    char **colnames;
    int ncol;

    hid_t devents, tev_file, tev_mem;

    hid_t gckpt, dslot;
    ckitem *ck;
    int nck, capck;
    int64_t cur_slot;    /* -1: none committed */
    int64_t target_slot; /* -1: no checkpoint being written */
};

/* Inside a function with `oialr_traj *t`, `int rc` and a `done:` label: if
 * expr < 0, rc = the HDF5 error as code with the message, goto done. */
#define TRY_H5(expr, code, ...)                                                                    \
    do {                                                                                           \
        if ((expr) < 0) {                                                                          \
            rc = h5u_err(t->path, code, __VA_ARGS__);                                              \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

// ----------------------------------------------------------------------------
// trajectory_file.c

/* A handle for path with every HDF5 id invalid (NULL: out of memory), and
 * its teardown: every handle closed, the lock released, memory freed. */
oialr_traj *traj_new(const char *path);
void traj_free(oialr_traj *t);
/* A fresh layer slot at t->layers[t->nlayers], not yet counted (NULL: out
 * of memory); room for n steps and ranks in a layer (0, or -1: no memory). */
tlayer *traj_new_layer(oialr_traj *t);
int traj_layer_grow(tlayer *l, int64_t n);
/* Close a layer's factor datasets (any of them open). */
void traj_close_factors(tlayer *l);
/* Property lists: file access (writer: the direct-I/O driver), groups that
 * track creation order, weights without a chunk cache. */
hid_t traj_file_fapl(int writer);
hid_t traj_order_gcpl(void);
hid_t traj_weight_dapl(void);
/* t->tev_file and t->tev_mem, the event compound types. */
int traj_event_types(oialr_traj *t);
/* Take the writer lock on file / ask whether anyone holds it on path. */
int traj_lock_take(oialr_traj *t, const char *file);
int traj_lock_held(const char *path);
/* Move a new file from its temporary name to its path (once). */
int traj_publish(oialr_traj *t);

// ----------------------------------------------------------------------------
// trajectory_write.c

/* OIALR_ERR_ARG unless name is a valid object name (what: "layer" ...). */
int traj_check_name(const oialr_traj *t, const char *what, const char *name);
/* OIALR_OK if objects may still be created (writable, phase 1). */
int traj_need_define(oialr_traj *t, const char *what);
/* OIALR_OK if rows may be appended (writable; starts phase 2 if needed). */
int traj_need_record(oialr_traj *t, const char *what);
/* Reopen the weights without a chunk cache after H5Fstart_swmr_write. */
int traj_reopen_weights(oialr_traj *t);

// ----------------------------------------------------------------------------
// trajectory_read.c

/* Link names of a group (malloc'd), in creation order if tracked. */
typedef struct namelist {
    char **v;
    int n, cap;
    int oom;
} namelist;

int traj_list_group(hid_t g, namelist *nl);
void traj_namelist_free(namelist *nl);
/* OIALR_ERR_FORMAT unless dataset d (named obj) has type class cls, rank
 * rank and the dims want[i] >= 0; expect: the format's description. */
int traj_check_dset(oialr_traj *t, hid_t d, const char *obj, H5T_class_t cls, int rank, const int64_t *want,
                    const char *expect);
/* 1 if chunk k (along dim 0) has storage, 0 if not, -1 on error; rows
 * [0, *n) that can hold written data (the extent cut to the last allocated
 * chunk). */
int traj_chunk_allocated(hid_t d, hsize_t k, hsize_t chunk0);
herr_t traj_rows_written(hid_t d, int64_t *n);
/* oialr_traj_open, with SWMR writing started (swmr = 1) or not (a rewind). */
int traj_open_mode(oialr_traj **out, const char *path, int mode, int swmr);
// ----------------------------------------------------------------------------
// trajectory_factors.c: the reader's side of factored snapshots
/* Open and check a layer's factor datasets if it has them (pub.factor_capacity). */
int traj_factors_open(oialr_traj *t, tlayer *l);
/* Cut *n to the snapshots whose basis entry is written and that the
 * weight's extent covers; count the complete bases. */
int traj_factors_bound(oialr_traj *t, tlayer *l, int64_t *n);
/* Read and check bases[0, *n) (ranks already read); *n loses the newest
 * snapshot if its data are not complete yet (a live or killed writer). */
int traj_factors_load(oialr_traj *t, tlayer *l, int64_t *n);
/* Snapshot snap into out[rows * cols]: the weight row, or U Σ Vᵀ formed. */
int traj_factors_read(oialr_traj *t, tlayer *l, int64_t snap, float *out);
/* H5Drefresh of the factor datasets (SWMR read). */
int traj_factors_refresh(oialr_traj *t, tlayer *l);

// ----------------------------------------------------------------------------
// trajectory_checkpoint.c

/* Writer: create /checkpoint and its slot (-1) if not done yet. */
int traj_ckpt_group(oialr_traj *t);
/* Reader: the committed slot, after checking /checkpoint/slot's shape. */
int traj_read_slot(oialr_traj *t, int64_t *slot);
/* Reader: open /checkpoint and find its items (absent: nothing to do). */
int traj_open_ckpt(oialr_traj *t);

#endif
