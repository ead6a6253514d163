/*
 * internal.h — what the recorder hook (hook.c) uses of the trajectory writer
 * (trajectory.c) beyond the public API. Not installed, not exported.
 */
#ifndef OIALR_RECORD_INTERNAL_H
#define OIALR_RECORD_INTERNAL_H

#include "oialr/trajectory.h"

/* oialr_traj_append() for a caller that has counted the NaN/Inf values of
 * w already (the hook does while copying, so the writer thread does not read
 * the snapshot a second time). */
int traj_append_counted(oialr_traj *t, int layer, int64_t step, const float *w, int32_t rank, size_t nonfinite);

/* Bytes the file driver wrote with O_DIRECT and through the page cache. */
void traj_io_counters(const oialr_traj *t, uint64_t *direct_bytes, uint64_t *buffered_bytes);

#endif
