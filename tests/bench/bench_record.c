/*
 * bench_record.c — the recorder's overhead: the MLP (mlp:512,512, batch 128)
 * trained for the same steps without and with recording every 10 steps,
 * rounds interleaved, median training time of each side; target <= 3%.
 * Also the recorder's write rate (MB/s of snapshot data over the time spent
 * inside its callbacks) and the file size.
 *
 *   build/bench/bench_record [steps] [reps]       (make bench runs it)
 *
 * Fashion-MNIST when installed, the synthetic set otherwise. Environment:
 * OIALR_BENCH_REPS (3), OIALR_BENCH_RECORD_STEPS (300).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oialr.h"
#include "oialr/record.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct result {
    double train_s;    /* training wall time (trainer's clock) */
    double rec_s;      /* inside the recorder */
    uint64_t bytes;
    long long file_bytes;
} result;

static int run(const oialr_dataset *ds, int64_t steps, const char *record, result *out) {
    oialr_loader trl, val;
    int rc;
    if ((rc = oialr_loader_split(&trl, &val, ds, 0 < ds->n / 10 ? ds->n / 10 : 1, 1))) return rc;
    oialr_model *m = NULL;
    if ((rc = oialr_model_create(&m, "mlp:512,512", ds->c, ds->h, ds->w, ds->nclass, 128, 1))) return rc;
    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.epochs = 1000;
    cfg.batch = 128;
    cfg.max_steps = steps;
    oialr_trainer t;
    if ((rc = oialr_trainer_init(&t, &cfg, m, &trl, NULL, NULL))) return rc;
    oialr_hook h = {0};
    if (record) {
        oialr_record_options ro;
        oialr_record_options_default(&ro);
        ro.path = record;
        ro.every = 10;
        ro.force = 1;
        ro.checkpoint = 0; /* the checkpoint is per epoch: not part of "every 10 steps" */
        if ((rc = oialr_record_hook_init(&h, &ro))) return rc;
        oialr_trainer_add_hook(&t, &h);
    }
    rc = oialr_train_run(&t);
    out->train_s = t.metrics.seconds;
    out->rec_s = 0;
    out->bytes = 0;
    out->file_bytes = 0;
    if (record) {
        oialr_record_stats(&h, &out->bytes, &out->rec_s, NULL);
        oialr_record_hook_free(&h);
        struct stat st;
        if (stat(record, &st) == 0) out->file_bytes = (long long)st.st_size;
    }
    oialr_trainer_free(&t);
    oialr_model_free(m);
    oialr_loader_free(&trl);
    oialr_loader_free(&val);
    return rc;
}

int main(int argc, char **argv) {
    int64_t steps = getenv("OIALR_BENCH_RECORD_STEPS") ? atoll(getenv("OIALR_BENCH_RECORD_STEPS")) : 300;
    int reps = getenv("OIALR_BENCH_REPS") ? atoi(getenv("OIALR_BENCH_REPS")) : 3;
    if (argc > 1) steps = atoll(argv[1]);
    if (argc > 2) reps = atoi(argv[2]);
    if (reps < 1 || reps > 50 || steps < 10) {
        fprintf(stderr, "usage: bench_record [steps >= 10] [reps 1..50]\n");
        return 2;
    }
    oialr_dataset ds = {0};
    const char *dname = "fashion-mnist";
    if (oialr_dataset_load(&ds, "fashion-mnist", NULL, OIALR_SPLIT_TRAIN)) {
        dname = "synthetic";
        if (oialr_dataset_synthetic(&ds, 20000, 1, 28, 28, 10, 0.25f, 1)) return 1;
    }
    char dir[] = "/tmp/oialr-bench-record-XXXXXX", path[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/r.h5", dir);
    double base[50], rec[50], rate[50], inhook[50];
    result r = {0};
    for (int i = 0; i < reps; i++) {
        result b;
        if (run(&ds, steps, NULL, &b) || run(&ds, steps, path, &r)) {
            fprintf(stderr, "bench_record: %s\n", oialr_errmsg());
            return 1;
        }
        base[i] = b.train_s;
        rec[i] = r.train_s;
        rate[i] = r.rec_s > 0 ? (double)r.bytes / 1e6 / r.rec_s : 0;
        inhook[i] = 100.0 * r.rec_s / b.train_s;
    }
    unlink(path);
    rmdir(dir);
    double mb = median(base, reps), mr = median(rec, reps), rr = median(rate, reps);
    double over = 100.0 * (mr - mb) / mb, ih = median(inhook, reps);
    printf("record: %s, mlp:512,512, batch 128, %lld steps, snapshot every 10 steps, %d interleaved rounds\n", dname,
           (long long)steps, reps);
    printf("| recorder overhead (every 10 steps) | %.2f s without, %.2f s with | %+.1f%% | target <= 3%% |\n", mb, mr,
           over);
    printf("| recorder time inside its hook / training time | | %.1f%% | less noisy than the difference |\n", ih);
    printf("| recorder write rate | %.1f MB snapshots, file %.1f MB | %.0f MB/s | inside the hook |\n", r.bytes / 1e6,
           r.file_bytes / 1e6, rr);
    oialr_dataset_free(&ds);
    return 0;
}
