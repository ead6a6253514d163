/*
 * log.c — the library's only voice: a log callback (thread-safe), a
 * monotonic clock and the BLAS thread count.
 */
#include "oialr/base.h"

#include <cblas.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>

static void log_stderr(int level, const char *msg, void *user) {
    (void)user;
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "oialr: %s%s%s\n", level <= OIALR_LOG_WARN ? names[level] : "",
            level <= OIALR_LOG_WARN ? ": " : "", msg);
}

/* The callback is called from any thread that logs (the recorder's writer,
 * the OIALR checks' workers): log_mu orders oialr_set_log() with the calls
 * and keeps them one at a time, so a callback needs no lock of its own, and
 * once oialr_set_log() returns no thread is still inside the old callback
 * (its user data may be freed). Recursive: a callback may log. log_max is
 * also read without the lock, to drop a message before formatting it. */
static pthread_mutex_t log_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static oialr_log_fn log_fn = log_stderr;
static void *log_user = NULL;
static atomic_int log_max = OIALR_LOG_INFO;

void oialr_set_log(oialr_log_fn fn, void *user, int max_level) {
    pthread_mutex_lock(&log_mu);
    log_fn = fn ? fn : log_stderr;
    log_user = user;
    atomic_store_explicit(&log_max, max_level, memory_order_relaxed);
    pthread_mutex_unlock(&log_mu);
}

void oialr_log(int level, const char *fmt, ...) {
    if (level > atomic_load_explicit(&log_max, memory_order_relaxed)) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_mu);
    /* the level again: oialr_set_log() may have lowered it meanwhile */
    if (level <= atomic_load_explicit(&log_max, memory_order_relaxed)) log_fn(level, buf, log_user);
    pthread_mutex_unlock(&log_mu);
}

double oialr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void oialr_set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}

int oialr_get_threads(void) { return openblas_get_num_threads(); }
