/*
 * oialr/params.h — the parameter layout: one contiguous float buffer with a
 * table of named views into it. Gradients and optimizer moments share the
 * same layout, so zeroing gradients is one memset and a snapshot of a
 * weight is a pointer and a size.
 *
 * Every weight of rank >= 2 has a matrix view rows x cols = out x (in*kh*kw)
 * (PyTorch layout, row-major, stored contiguously). The recorder reads the
 * weights it snapshots through this table (the analyzer reads them back
 * from the trajectory, which stores the same name and matrix view).
 */
#ifndef OIALR_PARAMS_H
#define OIALR_PARAMS_H

#include "oialr/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OIALR_NAME_MAX 64

enum oialr_param_kind {
    OIALR_PARAM_MATRIX = 0, /* dense/conv/attention weight: has a matrix view */
    OIALR_PARAM_BIAS = 1,   /* bias vector */
    OIALR_PARAM_NORM = 2,   /* norm scale/shift */
    OIALR_PARAM_EMBED = 3,  /* position embedding, class token (not a matrix for OIALR) */
    OIALR_PARAM_BUFFER = 4, /* state that is not trained (batch-norm running statistics) */
};

typedef struct oialr_param_info {
    char name[OIALR_NAME_MAX];  /* "fc1.weight", "block0.attn.q.weight" */
    char layer[OIALR_NAME_MAX]; /* layer kind: "dense", "conv2d", "attn.q", "batchnorm", ... */
    int kind;                   /* enum oialr_param_kind */
    int ndim;                   /* rank of the original shape */
    int64_t shape[4];           /* original shape, e.g. [OC, C, KH, KW] */
    int64_t rows, cols;         /* matrix view (1 x n for vectors) */
    size_t offset;              /* in floats, into data/grad/moments */
    size_t size;                /* floats in use: rows * cols, or rank² once low-rank */
    size_t capacity;            /* floats reserved at offset: rows * cols, always */
    int64_t rank;               /* 0: full rank; > 0: the weight is U Σ Vᵀ and
                                 * the slot holds Σ, rank x rank (lowrank.h) */
    const float *u, *v;         /* rank > 0: the frozen U [rows, rank] and
                                 * V [cols, rank], row-major (owned by the model) */
    uint64_t basis_version;     /* changes whenever u, v are set anew (not at
                                 * a truncation, which keeps their leading
                                 * columns): the recorder stores each once */
    int decay;                  /* weight decay applies (matrices: yes) */
    int trainable;              /* 0: frozen (the optimizer skips it) */
} oialr_param_info;

typedef struct oialr_params {
    int count;
    int capacity;
    oialr_param_info *info;
    size_t total; /* floats in data (and in grad) */
    float *data;
    float *grad;
} oialr_params;

/* The rows x cols matrix of parameter i into out (row-major): a copy, or
 * U Σ Vᵀ formed for a low-rank weight (tmp: rows * rank floats of scratch,
 * or NULL to have it allocated). OIALR_ERR_ARG for a parameter that is
 * not a matrix. */
OIALR_API int oialr_params_weight(const oialr_params *p, int i, float *out, float *tmp);

/* Find a parameter by exact name; -1 if absent. */
OIALR_API int oialr_params_find(const oialr_params *p, const char *name);
/* Number of trainable scalars (what "% trainable" counts). */
OIALR_API size_t oialr_params_trainable(const oialr_params *p);
/* 1 if name matches pattern: a comma-separated list of shell-style globs
 * ('*', '?', '[..]'), e.g. "fc*,head". The one layer selection of
 * --record-layers (the recorder) and --layers (the analyzer). */
OIALR_API int oialr_glob_match(const char *pattern, const char *name);

#ifdef __cplusplus
}
#endif
#endif
