/*
 * oialr/base.h — error codes, assertions, the random number generator and
 * logging shared by every part of liboialr.
 *
 * Conventions of the whole library:
 *   - every public function that can fail returns an int error code
 *     (OIALR_OK == 0, the others negative) and oialr_strerror(code) names it;
 *   - a longer message for the last failure of this thread is kept by
 *     oialr_errmsg() (e.g. "train-images-idx3-ubyte.gz: truncated: ...");
 *   - OIALR_ASSERT is for programmer errors only and aborts with file:line;
 *   - nothing in lib/ calls exit().
 */
#ifndef OIALR_BASE_H
#define OIALR_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define OIALR_API __attribute__((visibility("default")))
#define OIALR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define OIALR_API
#define OIALR_PRINTF(a, b)
#endif

#define OIALR_VERSION_MAJOR 0
#define OIALR_VERSION_MINOR 1
#define OIALR_VERSION_PATCH 0
#define OIALR_VERSION_STRING "0.1.0"

/* Error codes. Keep oialr_strerror() in lib/base/error.c in step. */
enum oialr_status {
    OIALR_OK = 0,
    OIALR_ERR_NOMEM = -1,      /* out of memory */
    OIALR_ERR_IO = -2,         /* read/write failure (disk full, permission) */
    OIALR_ERR_NOTFOUND = -3,   /* file, layer or name not found */
    OIALR_ERR_FORMAT = -4,     /* not the expected file format (bad magic, foreign file) */
    OIALR_ERR_TRUNCATED = -5,  /* file shorter than its header says */
    OIALR_ERR_MISMATCH = -6,   /* shapes or counts disagree */
    OIALR_ERR_ARG = -7,        /* invalid argument or option value */
    OIALR_ERR_SPEC = -8,       /* model spec string cannot be parsed */
    OIALR_ERR_NUMERIC = -9,    /* NaN/Inf, or LAPACK did not converge */
    OIALR_ERR_VERSION = -10,   /* file written by a newer format version */
    OIALR_ERR_EXISTS = -11,    /* output exists and overwriting was not asked */
    OIALR_ERR_HDF5 = -12,      /* HDF5 library call failed */
    OIALR_ERR_LOCKED = -13,    /* file is open by a writer (or was, and the writer died) */
    OIALR_ERR_INTERRUPTED = -14, /* stopped by a signal or a hook */
    OIALR_ERR_OVERFLOW = -15,  /* size arithmetic would overflow */
    OIALR_ERR_DIVERGED = -16,  /* training diverged: NaN/Inf in the loss, a gradient or a weight */
};

/* Short, fixed description of an error code ("truncated file"). */
OIALR_API const char *oialr_strerror(int code);

/* Detailed message of the last error set in this thread ("" if none). */
OIALR_API const char *oialr_errmsg(void);

/* Record a detailed message and return code, so callers can write
 *     return oialr_seterr(OIALR_ERR_FORMAT, "%s: bad magic 0x%08x", path, m); */
OIALR_API int oialr_seterr(int code, const char *fmt, ...) OIALR_PRINTF(2, 3);
OIALR_API void oialr_clearerr(void);

/* Programmer errors: always on, abort with file and line. */
#define OIALR_ASSERT(x)                                                        \
    do {                                                                       \
        if (!(x)) {                                                            \
            fprintf(stderr, "OIALR_ASSERT: %s:%d: %s\n", __FILE__, __LINE__,   \
                    #x);                                                       \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Checked size arithmetic: returns OIALR_ERR_OVERFLOW if a*b overflows. */
OIALR_API int oialr_mul_size(size_t a, size_t b, size_t *out);

/* ---------------------------------------------------------------------------
 * Random numbers: a small, portable, seedable generator (PCG32 with a
 * SplitMix64 seeder) whose whole state is two uint64 words, so it can be
 * checkpointed and restored bit for bit. */
typedef struct oialr_rng {
    uint64_t state;
    uint64_t inc;
} oialr_rng;

/* Seed r: the same (seed, stream) gives the same sequence on every machine;
 * different streams of one seed are independent sequences. */
OIALR_API void oialr_rng_seed(oialr_rng *r, uint64_t seed, uint64_t stream);
/* The next 32 random bits; the other draws below are built on it. */
OIALR_API uint32_t oialr_rng_u32(oialr_rng *r);
OIALR_API float oialr_rng_uniform(oialr_rng *r);          /* [0, 1) */
OIALR_API float oialr_rng_normal(oialr_rng *r);           /* N(0, 1) */
OIALR_API uint32_t oialr_rng_below(oialr_rng *r, uint32_t n); /* [0, n) unbiased */

/* ---------------------------------------------------------------------------
 * Logging. The library prints nothing by itself except through this
 * callback; the default writes to stderr at level <= OIALR_LOG_INFO. */
enum oialr_log_level { OIALR_LOG_ERROR = 0, OIALR_LOG_WARN = 1, OIALR_LOG_INFO = 2, OIALR_LOG_DEBUG = 3 };
typedef void (*oialr_log_fn)(int level, const char *msg, void *user);
/* Send every message of level <= max_level to fn (NULL: back to the stderr
 * default); process-wide, and called from the recorder's writer thread too.
 * Calls of fn come one at a time, whatever thread logs; once this returns,
 * no thread is inside the previous fn. */
OIALR_API void oialr_set_log(oialr_log_fn fn, void *user, int max_level);
/* Format one line (no newline needed) and pass it to the log callback. */
OIALR_API void oialr_log(int level, const char *fmt, ...) OIALR_PRINTF(2, 3);

/* ---------------------------------------------------------------------------
 * Output files (lib/base/output.c). Every file oialr writes follows these
 * rules: only a regular file or nothing may stand at the final path (a
 * device, FIFO, directory or symbolic link is refused even with force); an
 * existing file is replaced only with force, and only once the new one is
 * complete, because the content is written to a temporary file beside the
 * final path (`.NAME.XXXXXX.part`, same directory) and renamed into place;
 * a failure removes the temporary file and nothing else.
 *
 *     oialr_output o;
 *     if ((rc = oialr_output_begin(&o, path, force))) return rc;
 *     ... write o.tmp ...
 *     rc = ok ? oialr_output_commit(&o) : (oialr_output_abort(&o), rc);
 */
typedef struct oialr_output {
    char *path; /* the final path */
    char *tmp;  /* where to write; NULL once committed or aborted */
    int force;  /* replace a regular file at path */
} oialr_output;

/* OIALR_OK if path is absent, or a regular file and force is set;
 * OIALR_ERR_EXISTS (with a message saying why) otherwise. Touches nothing. */
OIALR_API int oialr_output_check(const char *path, int force);

/* oialr_output_check, then create an empty temporary file o->tmp beside
 * path (O_EXCL, mode 0666 less the umask). */
OIALR_API int oialr_output_begin(oialr_output *o, const char *path, int force);

/* Rename o->tmp to o->path, checking the path again first; without force a
 * file that appeared at path meanwhile is never replaced. On failure the
 * message names o->tmp, which is kept (its content may be the only copy)
 * and stays the caller's to commit again or abort. */
OIALR_API int oialr_output_commit(oialr_output *o);

/* Remove o->tmp (if not committed) and release o. Safe on a zeroed o. */
OIALR_API void oialr_output_abort(oialr_output *o);

/* Release o but keep o->tmp on disk (a commit that failed: its content may
 * be the only copy, and the message named it). Safe on a zeroed o. */
OIALR_API void oialr_output_release(oialr_output *o);

/* Monotonic wall clock in seconds. */
OIALR_API double oialr_now(void);

/* Number of BLAS threads (0: leave OpenBLAS's default). */
OIALR_API void oialr_set_threads(int n);
OIALR_API int oialr_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif /* OIALR_BASE_H */
