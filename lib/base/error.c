/*
 * error.c — error codes, the per-thread detailed error message, checked size
 * arithmetic.
 */
#include "oialr/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char errmsg[1024];

const char *oialr_strerror(int code) {
    switch (code) {
    case OIALR_OK: return "success";
    case OIALR_ERR_NOMEM: return "out of memory";
    case OIALR_ERR_IO: return "input/output error";
    case OIALR_ERR_NOTFOUND: return "not found";
    case OIALR_ERR_FORMAT: return "unrecognised file format";
    case OIALR_ERR_TRUNCATED: return "truncated file";
    case OIALR_ERR_MISMATCH: return "shape or count mismatch";
    case OIALR_ERR_ARG: return "invalid argument";
    case OIALR_ERR_SPEC: return "invalid model spec";
    case OIALR_ERR_NUMERIC: return "numerical failure (NaN/Inf or no convergence)";
    case OIALR_ERR_VERSION: return "unsupported format version";
    case OIALR_ERR_EXISTS: return "output already exists";
    case OIALR_ERR_HDF5: return "HDF5 error";
    case OIALR_ERR_LOCKED: return "file is locked by a writer";
    case OIALR_ERR_INTERRUPTED: return "interrupted";
    case OIALR_ERR_OVERFLOW: return "size overflow";
    case OIALR_ERR_DIVERGED: return "training diverged (NaN/Inf)";
    default: return "unknown error";
    }
}

const char *oialr_errmsg(void) { return errmsg; }

void oialr_clearerr(void) { errmsg[0] = '\0'; }

int oialr_seterr(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return code;
}

int oialr_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return OIALR_ERR_OVERFLOW;
    *out = a * b;
    return OIALR_OK;
}
