/*
 * model/spec.h — tokenizer for model spec arguments: a comma-separated list
 * of bare values ("512") and key=value options ("act=gelu").
 */
#ifndef OIALR_SPEC_H
#define OIALR_SPEC_H

typedef struct spec_iter {
    char buf[256];
    char *pos;
} spec_iter;

void spec_iter_init(spec_iter *it, const char *args);
/* 1 and (key or NULL, value) for each item, 0 at the end, <0 on error. */
int spec_iter_next(spec_iter *it, const char **key, const char **val);
int spec_parse_int(const char *s, long lo, long hi, long *out);
int spec_parse_float(const char *s, double lo, double hi, double *out);

#endif
