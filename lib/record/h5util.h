/*
 * h5util.h — small HDF5 helpers shared by the trajectory writer and reader
 * (trajectory_*.c) and the results file of `oialr analyze` (analysis/):
 * silencing HDF5's error printing, turning its error stack into one line,
 * closing any handle, string and numeric attributes, extendible and fixed
 * datasets, and whole-row reads and writes. Not installed, not exported.
 *
 * HDF5 conventions kept by every helper: handles start as H5I_INVALID_HID
 * and h5u_close() sets them back; on disk explicit little-endian types
 * (H5T_IEEE_F32LE ...), in memory native types; herr_t results are < 0 on
 * failure, with HDF5's error stack left for h5u_err() to read.
 */
#ifndef OIALR_RECORD_H5UTIL_H
#define OIALR_RECORD_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

#include "oialr/base.h"

// ----------------------------------------------------------------------------
// errors: silence, capture the innermost message, classify

/* HDF5's automatic error printing, saved by h5u_quiet_begin() (which turns
 * it off) and put back by h5u_quiet_end(): public functions run quiet and
 * report one line through oialr_seterr instead. */
typedef struct h5u_quiet {
    H5E_auto2_t fn;
    void *data;
} h5u_quiet;

h5u_quiet h5u_quiet_begin(void);
void h5u_quiet_end(h5u_quiet q);

/* What the error stack said: its innermost message (a system error reduced
 * to the system's words, "File too large"), and flags for the messages a
 * caller tells apart. */
typedef struct h5u_stack {
    char last[240];
    int truncated, openwrite, locked, signature;
} h5u_stack;

/* Read and clear the current error stack. Must be called right after the
 * failing HDF5 call (the next call clears the stack). */
h5u_stack h5u_stack_get(void);

/* oialr_seterr(code, "path: what (HDF5: innermost message)"), what from fmt;
 * returns code. Reads the error stack: call it right after the failure. */
int h5u_err(const char *path, int code, const char *fmt, ...) OIALR_PRINTF(3, 4);

/* Close any HDF5 handle (file, group, dataset, type, space, attribute,
 * property list) quietly, if valid, and set *id to H5I_INVALID_HID. */
void h5u_close(hid_t *id);

// ----------------------------------------------------------------------------
// strings and attributes

/* A malloc'd copy of s (NULL when out of memory). */
char *h5u_strdup(const char *s);

/* The variable-length UTF-8 string type (close it with h5u_close). */
hid_t h5u_str_type(void);

/* Variable-length UTF-8 string attribute (h5py reads it as str); an
 * existing attribute of that name is replaced. */
herr_t h5u_attr_put_str(hid_t loc, const char *name, const char *val);

/* Numeric attribute of file type ftype from v in memory type mtype: a
 * scalar if n == 0, else n elements. Fails if it exists. */
herr_t h5u_attr_put_num(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *v, hsize_t n);

/* Read a string attribute (variable or fixed length) into a malloc'd
 * string. Returns 1 if found, 0 if absent, -1 on error. */
int h5u_attr_get_str(hid_t loc, const char *name, char **out);

/* Read an integer attribute of 1..maxn elements as mtype into v (*got: how
 * many, if got). Returns 1 found, 0 absent, -1 error / wrong size. */
int h5u_attr_get_ints(hid_t loc, const char *name, hid_t mtype, void *v, hssize_t maxn, hssize_t *got);

// ----------------------------------------------------------------------------
// datasets

/* An extendible dataset [0, d1, d2][:rank] (fixed: d1, d2), chunk
 * (chunk0, d1, d2); no fill value for chunks of one whole row, else NaN for
 * floats; shuffle + deflate at level compress (> 0) when both filters are
 * available; dapl its access properties (H5P_DEFAULT). */
hid_t h5u_make_ext(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *fixed, hsize_t chunk0,
                   int compress, hid_t dapl);

/* The same with any chunk shape chunk[rank]; sparse: rows may stay
 * unwritten, so a fill value (NaN for floats) is kept even for chunks of
 * one whole row. */
hid_t h5u_make_ext_chunk(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *fixed,
                         const hsize_t *chunk, int compress, int sparse, hid_t dapl);

/* Fixed-size dataset, space allocated at creation (no file-space allocation
 * once SWMR writing runs), no fill value. */
hid_t h5u_make_fixed(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims);

/* Current first dimension of a dataset, -1 on error. */
int64_t h5u_extent0(hid_t d);

/* Write rows [at, at+n) of a dataset of rank 1..3 from buf (memory type
 * mtype), extending the dataset first if grow (else rows past its extent
 * fail). n == 0 writes nothing. */
herr_t h5u_write_rows(hid_t d, hid_t mtype, int64_t at, int64_t n, const void *buf, int grow);

/* Read rows [at, at+n) of a dataset of rank 1..3 into buf. */
herr_t h5u_read_rows(hid_t d, hid_t mtype, int64_t at, int64_t n, void *buf);

/* The same for the leading block[0] (x block[1]) elements of each row, buf
 * holding them packed: e.g. the r x r corner of a [T, cap, cap] dataset. */
herr_t h5u_write_block(hid_t d, hid_t mtype, int64_t at, int64_t n, const hsize_t *block, const void *buf,
                       int grow);
herr_t h5u_read_block(hid_t d, hid_t mtype, int64_t at, int64_t n, const hsize_t *block, void *buf);

#endif
