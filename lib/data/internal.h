/*
 * internal.h — what the data readers (idx.c, cifar.c, dataset.c) share
 * beyond the public API. Not installed, not exported.
 */
#ifndef OIALR_DATA_INTERNAL_H
#define OIALR_DATA_INTERNAL_H

#include "oialr/data.h"

/* Open path for reading, refusing what is not a regular file with a message
 * naming it (OIALR_ERR_FORMAT): open() on a FIFO waits for a writer (gzopen
 * on one blocked forever), a directory or a device is no data set. The file
 * is opened with O_NONBLOCK and checked with fstat on the descriptor itself,
 * so nothing blocks and nothing swapped in after a stat() slips through.
 * *fd: the descriptor, blocking again; *size: its size in bytes. */
int data_open_regular(const char *path, int *fd, int64_t *size);

/* oialr_idx_load with the class count of a named data set: nclass > 0 (set
 * names it, e.g. "MNIST") refuses a label >= nclass, naming the labels file
 * and the first bad index; nclass 0 infers max(10, largest label + 1). */
int data_idx_load(oialr_dataset *ds, const char *images_path, const char *labels_path, int nclass, const char *set);

#endif
