/*
 * cli.h — shared helpers of the oialr command line: checked number parsing
 * with one-line messages, and the progress line.
 */
#ifndef OIALR_CLI_H
#define OIALR_CLI_H

#include <stdint.h>

/* Each returns 0, or prints "oialr CMD: --flag: ..." and returns 2 (the
 * usage-error exit status). */
int cli_int(const char *cmd, const char *flag, const char *s, long long lo, long long hi, long long *out);
int cli_float(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out);
int cli_choice(const char *cmd, const char *flag, const char *s, const char *const *choices, int *out);
/* Value of a flag that takes one: argv[*i + 1], advancing *i; NULL after an error message. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);
/* The whole command line as one string (for the trajectory's metadata). */
char *cli_join(int argc, char **argv);

/* Progress: a single redrawn line on a terminal, plain lines otherwise. */
typedef struct cli_progress {
    int tty;
    double last;
} cli_progress;
void cli_progress_init(cli_progress *p);
void cli_progress_line(cli_progress *p, int force, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cli_progress_done(cli_progress *p);

int cmd_train(int argc, char **argv);
/* Draws `oialr analyze`'s progress (set with oialr_analyze_set_progress). */
void cli_analyze_progress(const char *layer, int64_t done, int64_t total, int layer_no, int nlayers);

#endif
