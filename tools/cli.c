/*
 * cli.c — argument parsing helpers and the progress line.
 */
#include "cli.h"
#include "oialr/base.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_int(const char *cmd, const char *flag, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "oialr %s: %s: expected an integer in [%lld, %lld], got '%s'\n", cmd, flag, lo, hi, s);
        return 2;
    }
    *out = v;
    return 0;
}

int cli_float(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "oialr %s: %s: expected a number in [%g, %g], got '%s'\n", cmd, flag, lo, hi, s);
        return 2;
    }
    *out = v;
    return 0;
}

int cli_choice(const char *cmd, const char *flag, const char *s, const char *const *choices, int *out) {
    for (int i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    fprintf(stderr, "oialr %s: %s: '%s' is not one of:", cmd, flag, s);
    for (int i = 0; choices[i]; i++) fprintf(stderr, " %s", choices[i]);
    fputc('\n', stderr);
    return 2;
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "oialr %s: %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

char *cli_join(int argc, char **argv) {
    size_t n = 1;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 3;
    char *s = malloc(n);
    if (!s) return NULL;
    s[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i) strcat(s, " ");
        int quote = strpbrk(argv[i], " \t*?'\"") != NULL;
        if (quote) strcat(s, "'");
        strcat(s, argv[i]);
        if (quote) strcat(s, "'");
    }
    return s;
}

void cli_progress_init(cli_progress *p) {
    p->tty = isatty(STDERR_FILENO);
    p->last = 0.0;
}

void cli_progress_line(cli_progress *p, int force, const char *fmt, ...) {
    double now = oialr_now();
    /* a terminal redraws 10 times a second; a log gets a line every 10 s */
    if (!force && now - p->last < (p->tty ? 0.1 : 10.0)) return;
    p->last = now;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (p->tty)
        fprintf(stderr, "\r\033[K%s", buf);
    else
        fprintf(stderr, "%s\n", buf);
    fflush(stderr);
}

void cli_progress_done(cli_progress *p) {
    if (p->tty) fputc('\n', stderr);
}

void cli_analyze_progress(const char *layer, int64_t done, int64_t total, int layer_no, int nlayers) {
    static cli_progress prog;
    static int started;
    if (!started) {
        cli_progress_init(&prog);
        started = 1;
    }
    int last = layer_no == nlayers - 1 && done == total;
    cli_progress_line(&prog, 0, "analyze: layer %d/%d %s  snapshot %lld/%lld", layer_no + 1, nlayers, layer,
                      (long long)done, (long long)total);
    if (last && prog.tty) {
        fputs("\r\033[K", stderr); /* the summary follows on a clean line */
        fflush(stderr);
    }
}
