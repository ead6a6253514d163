/*
 * cifar.c — CIFAR-10 binary batches: records of 1 label byte + 3072 pixel
 * bytes (1024 red, 1024 green, 1024 blue, row-major 32x32), i.e. CHW.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define CIFAR_REC 3073
/* CIFAR-10 has 60000 images in all (5 training batches and a test batch of
 * 10000): a file of more records is not CIFAR-10, and allocating for it is
 * what a sparse file of 200 GB would ask. */
#define CIFAR_MAX_RECORDS 60000

int oialr_cifar10_load(oialr_dataset *ds, const char *const *paths, int npaths) {
    memset(ds, 0, sizeof *ds);
    int64_t total = 0;
    for (int i = 0; i < npaths; i++) {
        int fd;
        int64_t size;
        int rc = data_open_regular(paths[i], &fd, &size);
        if (rc) return rc;
        close(fd);
        if (size == 0 || size % CIFAR_REC != 0)
            return oialr_seterr(size > CIFAR_REC ? OIALR_ERR_TRUNCATED : OIALR_ERR_FORMAT,
                                "%s: size %lld is not a whole number of CIFAR-10 records (%d bytes each)",
                                paths[i], (long long)size, CIFAR_REC);
        if (size / CIFAR_REC > CIFAR_MAX_RECORDS)
            return oialr_seterr(OIALR_ERR_FORMAT, "%s: %lld records, more than CIFAR-10 has (%d)", paths[i],
                                (long long)(size / CIFAR_REC), CIFAR_MAX_RECORDS);
        total += size / CIFAR_REC;
    }
    if (total == 0) return oialr_seterr(OIALR_ERR_NOTFOUND, "cifar10: no batch files given");
    ds->x = malloc((size_t)total * 3072);
    ds->y = malloc((size_t)total);
    if (!ds->x || !ds->y) {
        oialr_dataset_free(ds);
        return OIALR_ERR_NOMEM;
    }
    int64_t k = 0;
    unsigned char *rec = malloc(CIFAR_REC);
    if (!rec) {
        oialr_dataset_free(ds);
        return OIALR_ERR_NOMEM;
    }
    int rc = OIALR_OK;
    for (int i = 0; i < npaths && !rc; i++) {
        int fd;
        int64_t size;
        if ((rc = data_open_regular(paths[i], &fd, &size))) break;
        FILE *f = fdopen(fd, "rb");
        if (!f) {
            rc = oialr_seterr(OIALR_ERR_IO, "%s: %s", paths[i], strerror(errno));
            close(fd);
            break;
        }
        for (int64_t r = 0; fread(rec, 1, CIFAR_REC, f) == CIFAR_REC && k < total; r++) {
            if (rec[0] > 9) { /* r counts within this file, which the message names */
                rc = oialr_seterr(OIALR_ERR_FORMAT, "%s: record %lld has label %d (CIFAR-10 labels are 0..9)",
                                  paths[i], (long long)r, rec[0]);
                break;
            }
            ds->y[k] = rec[0];
            memcpy(ds->x + (size_t)k * 3072, rec + 1, 3072);
            k++;
        }
        if (!rc && ferror(f)) rc = oialr_seterr(OIALR_ERR_IO, "%s: read error", paths[i]);
        fclose(f);
    }
    free(rec);
    if (!rc && k != total) rc = oialr_seterr(OIALR_ERR_TRUNCATED, "cifar10: read %lld of %lld records", (long long)k, (long long)total);
    if (rc) {
        oialr_dataset_free(ds);
        return rc;
    }
    ds->n = total;
    ds->c = 3;
    ds->h = 32;
    ds->w = 32;
    ds->nclass = 10;
    return OIALR_OK;
}
