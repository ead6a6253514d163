/*
 * internal.h — what the recorder hook (hook.c) and the tests use of the
 * trajectory writer (trajectory_write.c, trajectory_file.c) beyond the
 * public API. Not installed, not exported. What the trajectory files share
 * among themselves is in trajectory_impl.h.
 */
#ifndef OIALR_RECORD_INTERNAL_H
#define OIALR_RECORD_INTERNAL_H

#include "oialr/trajectory.h"

/* oialr_traj_begin() without moving a new file into place: the recorder
 * starts phase 2 before its first snapshot, and a run failing in between
 * must leave the path as it was (the first snapshot publishes). */
int traj_start(oialr_traj *t);

/* One layer's part of a snapshot. FULL: w holds rows*cols floats (rank <= 0:
 * full); for a layer declared with factors, SIGMA: w holds Σ (rank x rank)
 * on the layer's previous basis; BASIS: w holds Σ on a new basis u [rows x
 * rank], v [cols x rank]. nonfinite: the NaN/Inf the caller counted while
 * copying, so the writer does not read the data again. */
enum { TRAJ_SNAP_FULL = 0, TRAJ_SNAP_SIGMA = 1, TRAJ_SNAP_BASIS = 2 };
typedef struct traj_snap {
    const float *w;
    const float *u, *v; /* BASIS only */
    int32_t rank;
    int kind;
    size_t nonfinite;
} traj_snap;

/* A snapshot of layers 0..n-1 at one step (s[i]), with one flush of the
 * file instead of three per layer: HDF5 writes raw data before the
 * metadata that makes it visible, and readers take the smallest of a
 * layer's extents, so a live or killed file still never shows a step
 * whose data is missing. */
int traj_append_snapshot(oialr_traj *t, int64_t step, int n, const traj_snap *s);

/* NaN and Inf among w[0, n) (exponent bits all ones): the one count, used
 * by the writer and for the tail of the hook's counting copy. */
size_t traj_count_nonfinite(const float *w, size_t n);

/* OIALR_OK if ev's kind is one of enum oialr_traj_event_kind, else
 * OIALR_ERR_ARG naming path (the writer's check, made early by the hook). */
int traj_check_event(const char *path, const oialr_traj_event *ev);

/* Bytes the file driver wrote with O_DIRECT, past the page cache. */
uint64_t traj_direct_bytes(const oialr_traj *t);

/* Direct I/O on (1) or off (0) for the next writes (vfd.h). */
void traj_set_direct(oialr_traj *t, int on);

#endif
