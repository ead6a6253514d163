/*
 * outputs.c — the output files of one analyze or plot run, committed
 * together (outputs.h; the rules: oialr/base.h, "Output files").
 */
#include "outputs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void ana_outputs_init(ana_outputs *s, int force) {
    memset(s, 0, sizeof *s);
    s->force = force;
}

int ana_outputs_dir(ana_outputs *s, const char *dir) {
    OIALR_ASSERT(s && dir && !s->dir);
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return oialr_seterr(OIALR_ERR_EXISTS, "%s exists and is not a directory", dir);
    } else if (errno != ENOENT) {
        return oialr_seterr(OIALR_ERR_IO, "%s: %s", dir, strerror(errno));
    }
    s->dir = strdup(dir);
    if (!s->dir) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", dir);
    return OIALR_OK;
}

int ana_outputs_add(ana_outputs *s, const char *path, int *index) {
    OIALR_ASSERT(s && path);
    int rc = oialr_output_check(path, s->force);
    if (rc) return rc;
    if (s->n == s->cap) { /* a plot of many layers has many figures */
        int cap = s->cap ? 2 * s->cap : 16;
        char **p = realloc(s->path, (size_t)cap * sizeof *p);
        if (p) s->path = p;
        oialr_output *o = p ? realloc(s->out, (size_t)cap * sizeof *o) : NULL;
        if (!o) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
        s->out = o;
        memset(s->out + s->cap, 0, (size_t)(cap - s->cap) * sizeof *o);
        s->cap = cap;
    }
    if (!(s->path[s->n] = strdup(path))) return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory", path);
    if (index) *index = s->n;
    s->n++;
    return OIALR_OK;
}

int ana_outputs_begin(ana_outputs *s) {
    if (s->dir) {
        if (mkdir(s->dir, 0777) == 0) s->made_dir = 1;
        else if (errno != EEXIST) return oialr_seterr(OIALR_ERR_IO, "%s: %s", s->dir, strerror(errno));
    }
    for (int i = 0; i < s->n; i++) {
        int rc = oialr_output_begin(&s->out[i], s->path[i], s->force);
        if (rc) return rc;
    }
    return OIALR_OK;
}

const char *ana_outputs_tmp(const ana_outputs *s, int i) {
    OIALR_ASSERT(i >= 0 && i < s->n);
    return s->out[i].tmp;
}

const char *ana_outputs_path(const ana_outputs *s, int i) {
    OIALR_ASSERT(i >= 0 && i < s->n);
    return s->path[i];
}

void ana_outputs_drop(ana_outputs *s, int i) {
    OIALR_ASSERT(i >= 0 && i < s->n);
    oialr_output_abort(&s->out[i]);
}

int ana_outputs_commit(ana_outputs *s) {
    int rc;
    /* all or nothing as far as the checks go: refuse before renaming any */
    for (int i = 0; i < s->n; i++)
        if (s->out[i].tmp && (rc = oialr_output_check(s->path[i], s->force))) return rc;
    for (int i = 0; i < s->n; i++) {
        if (!s->out[i].tmp) continue;
        if ((rc = oialr_output_commit(&s->out[i]))) {
            /* its temporary file holds the only copy, and the message names it */
            oialr_output_release(&s->out[i]);
            return rc;
        }
        s->committed++;
    }
    return OIALR_OK;
}

void ana_outputs_close(ana_outputs *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        oialr_output_abort(&s->out[i]); /* the temporary file only; nothing once committed */
        free(s->path[i]);
    }
    /* rmdir removes only an empty directory: one this run made and left empty */
    if (s->made_dir && !s->committed) rmdir(s->dir);
    free(s->dir);
    free(s->path);
    free(s->out);
    memset(s, 0, sizeof *s);
}
