/*
 * oialr/data.h — datasets: IDX (MNIST, Fashion-MNIST, EMNIST; plain or gzip),
 * CIFAR-10 binary batches, and a synthetic generator for tests.
 * Images are kept as uint8 (C,H,W per sample) and normalised per batch.
 */
#ifndef OIALR_DATA_H
#define OIALR_DATA_H

#include "oialr/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OIALR_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct oialr_dataset {
    int64_t n;        /* samples */
    int c, h, w;      /* image shape */
    int nclass;
    uint8_t *x;       /* [n, c*h*w] */
    uint8_t *y;       /* [n] */
} oialr_dataset;

enum oialr_split { OIALR_SPLIT_TRAIN = 0, OIALR_SPLIT_TEST = 1 };

/* name: "fashion-mnist", "mnist" (IDX files in dir; dir NULL means the
 * Debian package's directory for fashion-mnist; 10 classes, a label >= 10
 * is OIALR_ERR_FORMAT naming the file and its index), "idx" (IDX files
 * named as MNIST's, classes as oialr_idx_load counts them) or "cifar10"
 * (binary batches data_batch_1..5.bin / test_batch.bin in dir). Data files
 * must be regular files (a FIFO is OIALR_ERR_FORMAT, never waited on). */
OIALR_API int oialr_dataset_load(oialr_dataset *ds, const char *name, const char *dir, int split);
/* Read one IDX image file + label file pair (gzip or plain), each to its
 * end: a gzip CRC or length mismatch, or data beyond the payload the header
 * declares, is OIALR_ERR_FORMAT. Classes: max(10, largest label + 1);
 * labels >= 100 are refused, and a warning is logged when the largest label
 * leaves classes above 9 without a sample. */
OIALR_API int oialr_idx_load(oialr_dataset *ds, const char *images_path, const char *labels_path);
/* Read CIFAR-10 binary batch files (each 10000 x (1 + 3072) bytes; a file of
 * more than the 60000 records CIFAR-10 has is OIALR_ERR_FORMAT). */
OIALR_API int oialr_cifar10_load(oialr_dataset *ds, const char *const *paths, int npaths);
/* Synthetic classification data: nclass noisy prototypes, deterministic. */
OIALR_API int oialr_dataset_synthetic(oialr_dataset *ds, int64_t n, int c, int h, int w, int nclass,
                                      float noise, uint64_t seed);
OIALR_API void oialr_dataset_free(oialr_dataset *ds);
/* Move the last n samples of ds into a new dataset tail (copied; ds->n
 * shrinks). Used to cut a test set from one synthetic draw, so both share
 * the same class prototypes. */
OIALR_API int oialr_dataset_take_tail(oialr_dataset *ds, int64_t n, oialr_dataset *tail);
/* Per-channel mean/std of pixel/255 over a dataset (for normalisation). */
OIALR_API void oialr_dataset_stats(const oialr_dataset *ds, float *mean, float *std);

/* A view of a dataset through an index list (train/validation split,
 * shuffled epochs). */
typedef struct oialr_loader {
    const oialr_dataset *ds;
    int64_t *idx;     /* sample indices of this view */
    int64_t n;        /* number of indices */
    int64_t cursor;   /* next position in idx */
    float mean[4], std[4];
    oialr_rng rng;    /* for shuffling */
    int shuffle;
} oialr_loader;

/* Split ds into a training view and a validation view of nval samples
 * taken from a seeded permutation. */
OIALR_API int oialr_loader_split(oialr_loader *train, oialr_loader *val, const oialr_dataset *ds,
                                 int64_t nval, uint64_t seed);
OIALR_API int oialr_loader_init(oialr_loader *l, const oialr_dataset *ds, int shuffle, uint64_t seed);
OIALR_API void oialr_loader_free(oialr_loader *l);
/* Set normalisation (default: mean 0, std 1 on pixel/255). */
OIALR_API void oialr_loader_set_norm(oialr_loader *l, const float *mean, const float *std);
/* Start an epoch (reshuffles if shuffle is on). */
OIALR_API void oialr_loader_reset(oialr_loader *l);
/* Gather up to B samples starting at the cursor into x [B, c*h*w] (float,
 * normalised) and y [B]; returns the number gathered (0 at epoch end). */
OIALR_API int oialr_loader_next(oialr_loader *l, float *x, uint8_t *y, int B);

#ifdef __cplusplus
}
#endif
#endif
