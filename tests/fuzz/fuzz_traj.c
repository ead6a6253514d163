/*
 * fuzz_traj.c — the trajectory reader (lib/record/trajectory_read.c,
 * trajectory_factors.c, trajectory_checkpoint.c) on an HDF5 image in
 * memory: the input is the file, written to /dev/shm (fuzz_file_named) and
 * handed to oialr_traj_open() by its path, so the public open path runs
 * whole (H5Fis_hdf5, the writer-lock probe, the plain and SWMR-read opens)
 * and the reader needs no entry point of its own.
 *
 * After a successful open, everything a reader can ask is asked, as
 * `oialr analyze` would: every layer's snapshots (of at most 2^20 floats,
 * at most 64 per layer: the harness's budget, not a limit of the reader),
 * find_step on each step, every metric column and the steps, the events,
 * config keys, every checkpoint item, a refresh. Checked: what open
 * reports agrees with itself (steps increase, counts in range).
 */
#include "fuzz.h"

#include <string.h>

#include "record/trajectory_impl.h"

#define MAX_FLOATS ((size_t)1 << 20)
#define MAX_SNAPS 64
#define MAX_ROWS ((int64_t)1 << 16)

static void read_layers(oialr_traj *t, float *buf) {
    int nl = oialr_traj_nlayers(t);
    FUZZ_ASSERT(nl >= 0 && nl == oialr_traj_get_info(t)->nlayers);
    FUZZ_ASSERT(oialr_traj_layer_at(t, nl) == NULL && oialr_traj_layer_at(t, -1) == NULL);
    for (int i = 0; i < nl; i++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, i);
        FUZZ_ASSERT(L && L->rows >= 1 && L->cols >= 1 && L->nsnap >= 0);
        FUZZ_ASSERT(L->name[OIALR_TRAJ_NAME_MAX - 1] == '\0' && L->kind[OIALR_TRAJ_KIND_MAX - 1] == '\0');
        int idx = -1;
        FUZZ_ASSERT(oialr_traj_find_layer(t, L->name, &idx) == OIALR_OK && idx >= 0 && idx <= i);
        for (int64_t s = 0; s < L->nsnap; s++) {
            FUZZ_ASSERT(L->steps[s] >= 0 && (s == 0 || L->steps[s] > L->steps[s - 1]));
            if (L->factor_capacity > 0) {
                FUZZ_ASSERT(L->bases && L->bases[s] >= -1);
                FUZZ_ASSERT(L->bases[s] < 0 || (L->ranks[s] >= 1 && L->ranks[s] <= L->factor_capacity));
            }
        }
        size_t n = (size_t)L->rows * (size_t)L->cols;
        if (n > MAX_FLOATS) continue;
        for (int64_t s = 0; s < L->nsnap && s < MAX_SNAPS; s++) {
            int64_t at = -1;
            FUZZ_ASSERT(oialr_traj_find_step(t, i, L->steps[s], &at) == OIALR_OK && at == s);
            (void)oialr_traj_read(t, i, s, buf, MAX_FLOATS);
        }
        FUZZ_ASSERT(oialr_traj_read(t, i, L->nsnap, buf, MAX_FLOATS) == OIALR_ERR_NOTFOUND);
        if (n > 1) FUZZ_ASSERT(oialr_traj_read(t, i, 0, buf, n - 1) != OIALR_OK);
    }
}

static void read_tables(oialr_traj *t) {
    const oialr_traj_info *info = oialr_traj_get_info(t);
    FUZZ_ASSERT(info->nmetrics >= 0 && info->nevents >= 0 && info->ncolumns >= 0);
    int64_t rows = info->nmetrics < MAX_ROWS ? info->nmetrics : MAX_ROWS, got = -1;
    double *col = malloc(((size_t)rows + 1) * sizeof *col);
    int64_t *steps = malloc(((size_t)rows + 1) * sizeof *steps);
    if (col && steps) {
        if (oialr_traj_read_metric_steps(t, steps, rows, &got) == OIALR_OK) FUZZ_ASSERT(got == rows);
        (void)oialr_traj_read_column(t, "step", col, rows, &got);
        for (int c = 0; c < info->ncolumns; c++) {
            const char *name = oialr_traj_column_name(t, c);
            FUZZ_ASSERT(name);
            if (oialr_traj_read_column(t, name, col, rows, &got) == OIALR_OK) FUZZ_ASSERT(got == rows);
        }
        FUZZ_ASSERT(oialr_traj_column_name(t, info->ncolumns) == NULL);
    }
    free(col);
    free(steps);
    int64_t ne = info->nevents < MAX_ROWS ? info->nevents : MAX_ROWS;
    oialr_traj_event *ev = malloc(((size_t)ne + 1) * sizeof *ev);
    if (ev && oialr_traj_read_events(t, ev, ne, &got) == OIALR_OK) {
        FUZZ_ASSERT(got == ne);
        for (int64_t i = 0; i < got; i++) {
            FUZZ_ASSERT(ev[i].layer[OIALR_TRAJ_NAME_MAX - 1] == '\0');
            (void)oialr_traj_event_kind_name(ev[i].kind);
        }
    }
    free(ev);
    char buf[64];
    static const char *const keys[] = {"model", "dataset", "steps_per_epoch", "optimizer", "nonexistent"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (oialr_traj_get_config(t, keys[i], buf, sizeof buf) == OIALR_OK) FUZZ_ASSERT(strlen(buf) < sizeof buf);
}

/* Every checkpoint item, by the names open found (the public API asks
 * by name; the harness reads the names from the handle). */
static void read_ckpt(oialr_traj *t, float *buf) {
    for (int i = 0; i < t->nck; i++) {
        const char *name = t->ck[i].name;
        size_t n = 0;
        int64_t v;
        uint64_t u;
        if (oialr_traj_ckpt_array_size(t, name, &n) == OIALR_OK) {
            if (n > MAX_FLOATS / 2) continue;
            (void)oialr_traj_ckpt_get_array(t, name, buf, n);
            (void)oialr_traj_ckpt_get_array_i64(t, name, (int64_t *)buf, n);
        } else {
            (void)oialr_traj_ckpt_get_i64(t, name, &v);
            (void)oialr_traj_ckpt_get_u64(t, name, &u);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    fuzz_file f;
    if (fuzz_file_named(&f, data, size, "run.h5")) return 0;
    oialr_traj *t = NULL;
    int rc = oialr_traj_open(&t, f.path, OIALR_TRAJ_READ);
    if (rc) {
        FUZZ_ASSERT(rc < 0 && !t);
    } else {
        float *buf = malloc(MAX_FLOATS * sizeof *buf);
        if (buf) {
            read_layers(t, buf);
            read_tables(t);
            read_ckpt(t, buf);
            if (oialr_traj_refresh(t) == OIALR_OK) read_layers(t, buf);
        }
        free(buf);
        (void)oialr_traj_close(t);
    }
    fuzz_file_close(&f);
    return 0;
}
