/*
 * fuzz_idx.c — the IDX reader (lib/data/idx.c) on an image file and a
 * labels file, plain or gzip, as in memory files.
 *
 * Input: byte 0 chooses the class count (bit 0: 10, as MNIST and
 * Fashion-MNIST, else 0, counted from the labels as the 'idx' data set);
 * bytes 1-2 (little endian) are the length L of the labels file, which
 * follows; the rest is the images file.
 * Checked: a load either fails with an error code and leaves nothing
 * allocated, or returns a data set whose shape the files declared, with
 * every label below its class count; and it never runs out of memory: no
 * header makes the reader allocate more than its file can hold (libFuzzer
 * stops any allocation above 2 GB, check_fuzz limits its address space).
 */
#include "fuzz.h"

#include <string.h>

#include "data/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    if (size < 3) return 0;
    int nclass = data[0] & 1 ? 10 : 0;
    size_t nl = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (nl > size) nl = size;
    fuzz_file img, lab;
    if (fuzz_file_open(&lab, data, nl)) return 0;
    if (fuzz_file_open(&img, data + nl, size - nl)) {
        fuzz_file_close(&lab);
        return 0;
    }
    oialr_dataset ds;
    int rc = data_idx_load(&ds, img.path, lab.path, nclass, "MNIST");
    if (rc) {
        FUZZ_ASSERT(rc < 0 && !ds.x && !ds.y && ds.n == 0);
        FUZZ_ASSERT(rc != OIALR_ERR_NOMEM);
    } else {
        FUZZ_ASSERT(ds.n > 0 && ds.c == 1 && ds.h > 0 && ds.w > 0 && ds.x && ds.y);
        FUZZ_ASSERT(nclass == 0 ? ds.nclass >= 10 && ds.nclass <= 100 : ds.nclass == nclass);
        for (int64_t i = 0; i < ds.n; i++) FUZZ_ASSERT(ds.y[i] < ds.nclass);
        /* the pixels are all there: touch the last one */
        volatile uint8_t last = ds.x[(size_t)ds.n * (size_t)ds.h * (size_t)ds.w - 1];
        (void)last;
        oialr_dataset_free(&ds);
    }
    fuzz_file_close(&img);
    fuzz_file_close(&lab);
    return 0;
}
