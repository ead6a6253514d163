/*
 * outputs.h — the output files of one `oialr analyze` or `oialr plot` run,
 * kept together: checked up front, written under temporary names, renamed
 * into place only when the whole command succeeded, removed (the temporary
 * files only) when it failed. Built on oialr/base.h ("Output files").
 *
 *     ana_outputs s;
 *     ana_outputs_init(&s, force);
 *     ana_outputs_dir(&s, dir);                     refuses a non-directory
 *     ana_outputs_add(&s, path, &i);                checks, touches nothing
 *     ... the rest of the argument checks ...
 *     ana_outputs_begin(&s);                        mkdir, temporary files
 *     ... write ana_outputs_tmp(&s, i) ...
 *     rc = ok ? ana_outputs_commit(&s) : rc;
 *     ana_outputs_close(&s);                        removes what is left
 */
#ifndef OIALR_ANALYSIS_OUTPUTS_H
#define OIALR_ANALYSIS_OUTPUTS_H

#include "oialr/base.h"

typedef struct ana_outputs {
    int force;                           /* replace existing regular files */
    int n, cap;                          /* files added; room in the arrays */
    char **path;                         /* [n] final paths */
    oialr_output *out;                   /* [n] their temporary files once begun */
    char *dir;                           /* a directory to create at begin (NULL: none) */
    int made_dir;                        /* begin created it */
    int committed;                       /* files already renamed into place */
} ana_outputs;

void ana_outputs_init(ana_outputs *s, int force);

/* The outputs live in dir: it must be a directory (a link to one is fine) or
 * absent; then ana_outputs_begin creates it. Touches nothing. */
int ana_outputs_dir(ana_outputs *s, const char *dir);

/* Add an output file: oialr_output_check(path, force) now (refuses a device,
 * FIFO, directory or link at path, and an existing file without force);
 * *index (may be NULL) is its handle for ana_outputs_tmp. Touches nothing. */
int ana_outputs_add(ana_outputs *s, const char *path, int *index);

/* Create the directory if it is missing, then an empty temporary file beside
 * every output (the files are checked again). */
int ana_outputs_begin(ana_outputs *s);

/* Where to write output i (NULL before begin or once committed). */
const char *ana_outputs_tmp(const ana_outputs *s, int i);
const char *ana_outputs_path(const ana_outputs *s, int i);

/* Output i will not be written after all: its temporary file is removed and
 * whatever is at its path stays as it is. */
void ana_outputs_drop(ana_outputs *s, int i);

/* Rename every temporary file into place. Every path is checked again first:
 * if one is refused, nothing is renamed. If a rename fails, the temporary
 * file it names in the message is kept (as oialr_output_commit says) and the
 * outputs not renamed yet are removed by ana_outputs_close. */
int ana_outputs_commit(ana_outputs *s);

/* Remove the temporary files not renamed into place, and the directory
 * begin created if nothing was put in it; release s. Safe after init. */
void ana_outputs_close(ana_outputs *s);

#endif
