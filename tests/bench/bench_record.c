/*
 * bench_record.c — the recorder's overhead: the MLP (mlp:512,512, batch 128,
 * OpenBLAS's default threads) trained for the same steps without and with
 * recording every 10 steps (snapshots through the asynchronous writer;
 * no checkpoint: it is per epoch); target <= 3%.
 *
 *   build/bench/bench_record [steps] [reps]      rounds interleaved in one
 *                                                process, medians, by hand
 *   build/bench/bench_record once base|record [steps]
 *                                                one run, one key=value line
 *                                                (tests/bench/section_record.sh
 *                                                interleaves these processes)
 *
 * Reported: training time (the trainer's clock: run_begin to the last step,
 * so run_end's final drain is not in it), the training thread's time inside
 * the recorder while training (copies + waits for a free buffer), the
 * writer thread's time in HDF5 (wall and CPU) and its MB/s, the bytes that
 * went by direct I/O, snapshot and file sizes.
 *
 * And, from the same run, the cost per cycle of 10 steps: a timer hook
 * stamps every step; the median duration of each step position in the
 * cycle (step % 10) is compared with the median of the positions 5..9, which
 * recording leaves alone (its cost lands on the one or two steps after a
 * snapshot). cycle_excess_ms is the sum over the 10 positions of the excess,
 * cycle_over the excess over 10 quiet steps. Being measured inside one run,
 * it does not see the machine's speed drift between runs, which on this
 * shared machine is larger than the 3% to resolve.
 * Fashion-MNIST when installed, the synthetic set otherwise. Environment:
 * OIALR_BENCH_REPS (3), OIALR_BENCH_RECORD_STEPS (300),
 * OIALR_BENCH_RECORD_MODEL (mlp:512,512; e.g. cnn or vit, by hand).
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
    double train_s;      /* training wall time (trainer's clock) */
    oialr_record_info info;
    long long file_bytes;
} result;

/* step_end timestamps of the current run */
static double *g_stamp;
static int64_t g_nstamp, g_capstamp;

static int stamp(oialr_trainer *t, void *user) {
    (void)t, (void)user;
    if (g_nstamp < g_capstamp) g_stamp[g_nstamp++] = oialr_now();
    return OIALR_OK;
}

/* Median duration (ms) of each position in the cycle of `every` steps,
 * after a warm-up of 2 cycles; *quiet: median of positions every/2.. ;
 * returns the summed excess over quiet (ms per cycle). */
static double cycle(int every, double *pos, double *quiet) {
    int64_t per = g_nstamp / every + 1;
    double *v = malloc((size_t)per * sizeof *v), q[64];
    for (int p = 0; p < every; p++) {
        int64_t n = 0;
        for (int64_t i = 2 * every + p; i < g_nstamp; i += every) v[n++] = g_stamp[i] - g_stamp[i - 1];
        pos[p] = n ? 1e3 * median(v, (int)n) : 0;
    }
    free(v);
    int nq = 0;
    for (int p = every / 2; p < every; p++) q[nq++] = pos[p];
    *quiet = median(q, nq);
    double excess = 0;
    for (int p = 0; p < every; p++) excess += pos[p] - *quiet;
    return excess;
}

/* OIALR_BENCH_RECORD_MODEL overrides the MLP (e.g. cnn, vit), by hand */
static const char *model_spec(void) {
    const char *s = getenv("OIALR_BENCH_RECORD_MODEL");
    return s && *s ? s : "mlp:512,512";
}

static int run(const oialr_dataset *ds, int64_t steps, const char *record, result *out) {
    oialr_loader trl, val;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = oialr_loader_split(&trl, &val, ds, 0 < ds->n / 10 ? ds->n / 10 : 1, 1))) return rc;
    oialr_model *m = NULL;
    if ((rc = oialr_model_create(&m, model_spec(), ds->c, ds->h, ds->w, ds->nclass, 128, 1))) return rc;
    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.epochs = 1000;
    cfg.batch = 128;
    cfg.max_steps = steps;
    oialr_trainer t;
    if ((rc = oialr_trainer_init(&t, &cfg, m, &trl, NULL, NULL))) return rc;
    oialr_hook h = {0}, timer = {.name = "timer", .step_end = stamp};
    free(g_stamp);
    g_capstamp = steps + 1;
    g_nstamp = 0;
    if (!(g_stamp = malloc((size_t)g_capstamp * sizeof *g_stamp))) return OIALR_ERR_NOMEM;
    if ((rc = oialr_trainer_add_hook(&t, &timer))) return rc; /* first: stamps before the recorder copies */
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
    if (record) {
        oialr_record_get_info(&h, &out->info);
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

/* training thread inside the recorder while training (run_end is after) */
static double in_hook(const result *r) { return r->info.hook_seconds - r->info.end_seconds; }

int main(int argc, char **argv) {
    int64_t steps = getenv("OIALR_BENCH_RECORD_STEPS") ? atoll(getenv("OIALR_BENCH_RECORD_STEPS")) : 300;
    int reps = getenv("OIALR_BENCH_REPS") ? atoi(getenv("OIALR_BENCH_REPS")) : 3;
    int once = argc > 1 && !strcmp(argv[1], "once"), rec_once = 0;
    if (once) {
        if (argc < 3 || (strcmp(argv[2], "base") && strcmp(argv[2], "record"))) {
            fprintf(stderr, "usage: bench_record once base|record [steps]\n");
            return 2;
        }
        rec_once = !strcmp(argv[2], "record");
        if (argc > 3) steps = atoll(argv[3]);
        reps = 1;
    } else {
        if (argc > 1) steps = atoll(argv[1]);
        if (argc > 2) reps = atoi(argv[2]);
    }
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
    int status = 0;
    if (once) {
        result r;
        if (run(&ds, steps, rec_once ? path : NULL, &r)) {
            fprintf(stderr, "bench_record: %s\n", oialr_errmsg());
            status = 1;
        } else {
            const oialr_record_info *in = &r.info;
            printf("mode=%s data=%s steps=%lld threads=%d train_s=%.4f in_hook_s=%.4f copy_s=%.4f wait_s=%.4f "
                   "waits=%lld end_s=%.4f write_s=%.4f write_cpu_s=%.4f write_mb_s=%.0f direct_bytes=%llu bytes=%llu "
                   "snapshots=%lld snapshot_bytes=%zu held_bytes=%zu file_bytes=%lld",
                   rec_once ? "record" : "base", dname, (long long)steps, oialr_get_threads(), r.train_s,
                   in_hook(&r), in->copy_seconds, in->wait_seconds, (long long)in->waits, in->end_seconds,
                   in->write_seconds, in->write_cpu_seconds, in->write_mb_s, (unsigned long long)in->direct_bytes,
                   (unsigned long long)in->bytes, (long long)in->snapshots, in->snapshot_bytes, in->held_bytes,
                   r.file_bytes);
            double pos[10], quiet, excess = cycle(10, pos, &quiet);
            printf(" step_ms=%.4f cycle_excess_ms=%.4f cycle_over=%.4f cycle_ms=", quiet, excess,
                   excess / (10 * quiet));
            for (int p = 0; p < 10; p++) printf("%s%.3f", p ? "," : "", pos[p]);
            printf("\n");
        }
    } else {
        double base[50], rec[50], rate[50], inhook[50];
        result r = {0};
        for (int i = 0; i < reps && !status; i++) {
            result b;
            /* alternate the order: base first in even rounds, record first in odd ones */
            int e1 = i % 2 ? run(&ds, steps, path, &r) : run(&ds, steps, NULL, &b);
            int e2 = e1 ? e1 : i % 2 ? run(&ds, steps, NULL, &b) : run(&ds, steps, path, &r);
            if (e2) {
                fprintf(stderr, "bench_record: %s\n", oialr_errmsg());
                status = 1;
                break;
            }
            base[i] = b.train_s;
            rec[i] = r.train_s;
            rate[i] = r.info.write_mb_s;
            inhook[i] = 100.0 * in_hook(&r) / b.train_s;
        }
        if (!status) {
            double mb = median(base, reps), mr = median(rec, reps), rr = median(rate, reps);
            double over = 100.0 * (mr - mb) / mb, ih = median(inhook, reps);
            printf("record: %s, %s, batch 128, %d BLAS threads, %lld steps, snapshot every 10 steps, %d "
                   "interleaved rounds\n",
                   dname, model_spec(), oialr_get_threads(), (long long)steps, reps);
            printf("| recorder overhead (every 10 steps) | %.2f s without, %.2f s with | %+.1f%% | target <= 3%% |\n",
                   mb, mr, over);
            printf("| training thread inside the recorder / training time | copies + waits | %.1f%% | |\n", ih);
            printf("| writer thread write rate | %.1f MB snapshots, file %.1f MB | %.0f MB/s | in HDF5 |\n",
                   r.info.bytes / 1e6, r.file_bytes / 1e6, rr);
        }
    }
    unlink(path);
    rmdir(dir);
    oialr_dataset_free(&ds);
    return status;
}
