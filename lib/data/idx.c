/*
 * idx.c — IDX files (MNIST, Fashion-MNIST, EMNIST...): big-endian header
 * 0x0000 TT DD, DD dimensions, then unsigned bytes. Read through zlib, which
 * reads gzip and plain files alike. Every failure names the file.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* zlib's reason for the last error, without the "<fd:N>: " it puts first
 * (the file is opened by descriptor; the messages name the path). */
static const char *gz_reason(gzFile f, int *zerr) {
    const char *msg = gzerror(f, zerr);
    const char *sep = strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ": ") : NULL;
    return sep ? sep + 2 : msg;
}

/* Read exactly n bytes or report why not. */
static int read_exact(gzFile f, void *buf, size_t n, const char *path, const char *what) {
    unsigned char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got < 0) {
            int zerr;
            const char *msg = gz_reason(f, &zerr);
            if (zerr == Z_ERRNO) return oialr_seterr(OIALR_ERR_IO, "%s: cannot read %s: %s", path, what, strerror(errno));
            return oialr_seterr(OIALR_ERR_FORMAT, "%s: corrupt compressed data in the %s (%s)", path, what, msg);
        }
        if (got == 0) {
            int zerr;
            const char *msg = gz_reason(f, &zerr);
            if (zerr != Z_OK && zerr != Z_BUF_ERROR)
                return oialr_seterr(OIALR_ERR_FORMAT, "%s: corrupt compressed data in the %s (%s)", path, what, msg);
            return oialr_seterr(OIALR_ERR_TRUNCATED, "%s: truncated: file ends inside the %s", path, what);
        }
        p += got;
        n -= (size_t)got;
    }
    return OIALR_OK;
}

/* After the payload, read on to the end of the stream: only there does zlib
 * check the gzip trailer (CRC-32 and length), so a corrupt .gz whose header
 * and payload still inflate would otherwise load. Bytes beyond the payload
 * the header declares are refused too (plain or gzip): the header and the
 * data disagree. (Bytes after the end of the gzip stream that are not
 * another gzip member are skipped by zlib, as by gunzip; they are not seen.) */
static int read_to_end(gzFile f, const char *path, uint32_t count, const char *what) {
    unsigned char more[64];
    int got = gzread(f, more, sizeof more);
    if (got > 0)
        return oialr_seterr(OIALR_ERR_FORMAT, "%s: data continues after the %u %s the header declares", path, count,
                            what);
    int zerr;
    const char *msg = gz_reason(f, &zerr);
    if (zerr == Z_OK && got == 0) return OIALR_OK;
    if (zerr == Z_ERRNO) return oialr_seterr(OIALR_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    if (zerr == Z_BUF_ERROR)
        return oialr_seterr(OIALR_ERR_TRUNCATED, "%s: truncated: the gzip stream ends before its CRC trailer", path);
    return oialr_seterr(OIALR_ERR_FORMAT, "%s: corrupt compressed data after the %s (%s)", path, what, msg);
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Open an IDX file of unsigned bytes with ndim dimensions; return dims
 * and the file's size in bytes. */
static int idx_open(gzFile *out, const char *path, int ndim, uint32_t *dims, int64_t *size) {
    int fd;
    int rc = data_open_regular(path, &fd, size);
    if (rc) return rc;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return oialr_seterr(OIALR_ERR_NOMEM, "%s: cannot open: out of memory", path);
    }
    gzbuffer(f, 1 << 17);
    unsigned char hdr[4];
    rc = read_exact(f, hdr, 4, path, "header");
    if (rc) {
        gzclose(f);
        return rc == OIALR_ERR_TRUNCATED ? oialr_seterr(OIALR_ERR_FORMAT, "%s: not an IDX file (too short)", path) : rc;
    }
    if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] != ndim) {
        gzclose(f);
        return oialr_seterr(OIALR_ERR_FORMAT,
                            "%s: not an IDX file of unsigned bytes with %d dimensions (magic %02x%02x%02x%02x, "
                            "expected 000008%02x)",
                            path, ndim, hdr[0], hdr[1], hdr[2], hdr[3], ndim);
    }
    unsigned char db[12];
    if ((rc = read_exact(f, db, (size_t)ndim * 4, path, "header"))) {
        gzclose(f);
        return rc;
    }
    for (int i = 0; i < ndim; i++) dims[i] = be32(db + 4 * i);
    *out = f;
    return OIALR_OK;
}

/* Labels against the classes. A data set with a fixed count (nclass > 0:
 * MNIST, Fashion-MNIST) refuses a label outside it, naming the first. A bare
 * pair (nclass 0) has max(10, largest + 1) classes, labels 0..99, and a
 * warning when the largest label leaves classes above the default 10
 * without a sample: a stray 57 among 0..9 would make 58 outputs silently. */
static int check_labels(const uint8_t *y, uint32_t n, const char *path, int nclass, const char *set, int *out) {
    int limit = nclass > 0 ? nclass : 100, maxl = 0;
    uint32_t at = 0;
    unsigned char seen[100] = {0};
    for (uint32_t i = 0; i < n; i++) {
        if (y[i] >= limit) {
            if (nclass > 0)
                return oialr_seterr(OIALR_ERR_FORMAT,
                                    "%s: label %d at index %u, but %s has %d classes (0..%d); the data set "
                                    "'idx' takes any labels 0..99",
                                    path, y[i], i, set, nclass, nclass - 1);
            return oialr_seterr(OIALR_ERR_FORMAT, "%s: label %d at index %u is not a class index (at most 100 classes)",
                                path, y[i], i);
        }
        seen[y[i]] = 1;
        if (y[i] > maxl) {
            maxl = y[i];
            at = i;
        }
    }
    if (nclass > 0) {
        *out = nclass;
        return OIALR_OK;
    }
    *out = maxl + 1 < 10 ? 10 : maxl + 1;
    int empty = 0;
    for (int k = 0; k <= maxl; k++) empty += !seen[k];
    if (maxl >= 10 && empty > 0)
        oialr_log(OIALR_LOG_WARN,
                  "%s: label %d at index %u makes %d classes, %d of them without a sample; is it a class index?", path,
                  maxl, at, *out, empty);
    return OIALR_OK;
}

int data_idx_load(oialr_dataset *ds, const char *images_path, const char *labels_path, int nclass, const char *set) {
    memset(ds, 0, sizeof *ds);
    gzFile fi = NULL, fl = NULL;
    uint32_t di[3], dl[1];
    int64_t si, sl;
    int rc = idx_open(&fi, images_path, 3, di, &si);
    if (rc) return rc;
    if ((rc = idx_open(&fl, labels_path, 1, dl, &sl))) goto fail;
    if (di[0] != dl[0]) {
        rc = oialr_seterr(OIALR_ERR_MISMATCH, "%s holds %u images but %s holds %u labels", images_path, di[0],
                          labels_path, dl[0]);
        goto fail;
    }
    if (di[0] == 0 || di[1] == 0 || di[2] == 0 || di[1] > 4096 || di[2] > 4096) {
        rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: implausible shape %u x %u x %u", images_path, di[0], di[1], di[2]);
        goto fail;
    }
    size_t per = (size_t)di[1] * di[2], bytes;
    if (oialr_mul_size(per, di[0], &bytes)) {
        rc = OIALR_ERR_OVERFLOW;
        goto fail;
    }
    /* No more than the file can hold is allocated: a plain file holds its
     * payload after the 16-byte header, a gzip stream at most 1032 bytes
     * per byte (deflate's largest ratio). An images file of 16 bytes, a
     * header claiming 200 images of 4096x4096, asked for 3.3 GB. */
    double most = gzdirect(fi) ? (double)si - 16 : 1032.0 * (double)si;
    if ((double)bytes > most) {
        rc = oialr_seterr(OIALR_ERR_TRUNCATED, "%s: truncated: the header declares %u images of %ux%u (%zu bytes), "
                          "more than its %lld bytes can hold", images_path, di[0], di[1], di[2], bytes, (long long)si);
        goto fail;
    }
    ds->x = malloc(bytes);
    ds->y = malloc(di[0]);
    if (!ds->x || !ds->y) {
        rc = oialr_seterr(OIALR_ERR_NOMEM, "%s: cannot allocate %zu bytes", images_path, bytes);
        goto fail;
    }
    if ((rc = read_exact(fi, ds->x, bytes, images_path, "image data")) ||
        (rc = read_to_end(fi, images_path, di[0], "images")))
        goto fail;
    if ((rc = read_exact(fl, ds->y, di[0], labels_path, "label data")) ||
        (rc = read_to_end(fl, labels_path, dl[0], "labels")))
        goto fail;
    int classes = 0;
    if ((rc = check_labels(ds->y, di[0], labels_path, nclass, set, &classes))) goto fail;
    ds->n = di[0];
    ds->c = 1;
    ds->h = (int)di[1];
    ds->w = (int)di[2];
    ds->nclass = classes;
    gzclose(fi);
    gzclose(fl);
    return OIALR_OK;
fail:
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    oialr_dataset_free(ds);
    return rc;
}

int oialr_idx_load(oialr_dataset *ds, const char *images_path, const char *labels_path) {
    return data_idx_load(ds, images_path, labels_path, 0, NULL);
}
