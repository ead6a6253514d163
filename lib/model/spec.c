/*
 * spec.c — model spec tokenizer shared by every model family.
 */
#include "model/spec.h"
#include "oialr/base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void spec_iter_init(spec_iter *it, const char *args) {
    snprintf(it->buf, sizeof it->buf, "%s", args ? args : "");
    it->pos = it->buf;
}

int spec_iter_next(spec_iter *it, const char **key, const char **val) {
    while (*it->pos == ',') it->pos++;
    if (!*it->pos) return 0;
    char *item = it->pos;
    char *comma = strchr(item, ',');
    if (comma) {
        *comma = '\0';
        it->pos = comma + 1;
    } else {
        it->pos = item + strlen(item);
    }
    char *eq = strchr(item, '=');
    if (eq) {
        *eq = '\0';
        if (!*item || !eq[1]) return oialr_seterr(OIALR_ERR_SPEC, "empty key or value in model spec");
        *key = item;
        *val = eq + 1;
    } else {
        *key = NULL;
        *val = item;
    }
    return 1;
}

int spec_parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int spec_parse_float(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}
