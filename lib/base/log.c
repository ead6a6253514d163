/*
 * log.c — the library's only voice: a log callback, a monotonic clock and
 * the BLAS thread count.
 */
#include "oialr/base.h"

#include <cblas.h>
#include <stdarg.h>
#include <time.h>

static void log_stderr(int level, const char *msg, void *user) {
    (void)user;
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "oialr: %s%s%s\n", level <= OIALR_LOG_WARN ? names[level] : "",
            level <= OIALR_LOG_WARN ? ": " : "", msg);
}

static oialr_log_fn log_fn = log_stderr;
static void *log_user = NULL;
static int log_max = OIALR_LOG_INFO;

void oialr_set_log(oialr_log_fn fn, void *user, int max_level) {
    log_fn = fn ? fn : log_stderr;
    log_user = user;
    log_max = max_level;
}

void oialr_log(int level, const char *fmt, ...) {
    if (level > log_max) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
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
