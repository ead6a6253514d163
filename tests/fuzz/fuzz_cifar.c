/*
 * fuzz_cifar.c — the CIFAR-10 reader (lib/data/cifar.c) on one to four
 * batch files, as in memory files.
 *
 * Input: byte 0 modulo 4, plus 1, is the number of files k; the rest is cut
 * into k files of equal length (the last takes the remainder).
 * Checked: a load either fails with an error code and leaves nothing
 * allocated, or holds one sample per 3073-byte record, 3x32x32, labels 0..9.
 */
#include "fuzz.h"

#include "oialr/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    if (size < 1) return 0;
    int k = 1 + data[0] % 4;
    data++;
    size--;
    fuzz_file f[4];
    const char *paths[4];
    size_t part = size / (size_t)k, total = 0;
    int n = 0;
    for (; n < k; n++) {
        size_t len = n == k - 1 ? size - part * (size_t)n : part;
        if (fuzz_file_open(&f[n], data + part * (size_t)n, len)) break;
        paths[n] = f[n].path;
        total += len;
    }
    if (n == k) {
        oialr_dataset ds;
        int rc = oialr_cifar10_load(&ds, paths, k);
        if (rc) {
            FUZZ_ASSERT(rc < 0 && !ds.x && !ds.y && ds.n == 0);
        } else {
            FUZZ_ASSERT(ds.c == 3 && ds.h == 32 && ds.w == 32 && ds.nclass == 10);
            FUZZ_ASSERT(ds.n > 0 && (size_t)ds.n * 3073 == total);
            for (int64_t i = 0; i < ds.n; i++) FUZZ_ASSERT(ds.y[i] <= 9);
            oialr_dataset_free(&ds);
        }
    }
    while (n-- > 0) fuzz_file_close(&f[n]);
    return 0;
}
