/*
 * bench_analyze.c — helper of the analyzer benchmark (tests/bench/section_analyze.sh,
 * which `make bench` runs; see the top of that script for how to run it by hand).
 *
 *   bench_analyze make TRAJ [SNAPSHOTS [largest]]
 *       write a synthetic trajectory with the layer shapes of the default MLP
 *       (mlp:512,512 on 28x28 inputs: fc1 512x784, fc2 512x512, fc3 10x512),
 *       SNAPSHOTS snapshots (default 100) of a random walk W_j = W_{j-1} + noise
 *       ("largest": fc1 only, for the memory check);
 *   bench_analyze lapack TRAJ [THREADS]
 *       the raw LAPACK time: sgesdd('S') of every snapshot of every layer with
 *       one OpenBLAS thread, nothing else, summed ("lapack_seconds", issue
 *       5's bound is this divided by the cores), and the wall time of the
 *       same SVDs on THREADS (2) pthreads ("lapack_parallel_seconds": what
 *       the machine delivers in parallel), and the values-only sgesdd('N')
 *       of every snapshot, 1 thread, summed ("lapack_values_seconds": the
 *       bound of issue 16 is this divided by the cores);
 *   bench_analyze paths [REPS]
 *       the factorisation paths side by side on the real layer shapes (the
 *       MLP's, the default CNN's and ViT's largest): float32 and float64
 *       gesdd, the Gram path with a float32 and a float64 factor, and the
 *       values-only gesdd('N') in both precisions; thread CPU time per
 *       factor, median of REPS (9): CPU time, not wall time, so that other
 *       load on the machine does not enter;
 *   bench_analyze analyze TRAJ [oialr analyze options...]
 *       run oialr_cmd_analyze in-process and print "seconds=... peak_rss_kib=...
 *       svd_bytes=...".
 */
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "analyze.h"
#include "metrics/internal.h"
#include "oialr/trajectory.h"

#include <time.h>

static int make(const char *path, int nsnap, int nlayers) {
    static const struct { const char *name; int rows, cols; } L[] = {{"fc1", 512, 784}, {"fc2", 512, 512}, {"fc3", 10, 512}};
    oialr_traj *t;
    oialr_traj_options opt;
    oialr_traj_options_default(&opt);
    opt.force = 1;
    int rc = oialr_traj_create(&t, path, &opt);
    if (rc) return rc;
    int idx[3];
    float *w[3];
    oialr_rng r;
    oialr_rng_seed(&r, 1, 1);
    for (int l = 0; l < nlayers; l++) {
        if ((rc = oialr_traj_declare_layer(t, L[l].name, L[l].rows, L[l].cols, "dense", 0, NULL, &idx[l]))) return rc;
        size_t n = (size_t)L[l].rows * L[l].cols;
        w[l] = malloc(n * sizeof(float));
        if (!w[l]) return OIALR_ERR_NOMEM;
        float sc = 1.0f / sqrtf((float)L[l].cols);
        for (size_t i = 0; i < n; i++) w[l][i] = sc * oialr_rng_normal(&r);
    }
    for (int j = 0; j < nsnap; j++)
        for (int l = 0; l < nlayers; l++) {
            size_t n = (size_t)L[l].rows * L[l].cols;
            float sc = 0.05f / sqrtf((float)L[l].cols) / (1.0f + 0.1f * (float)j);
            if (j > 0)
                for (size_t i = 0; i < n; i++) w[l][i] += sc * oialr_rng_normal(&r);
            if ((rc = oialr_traj_append(t, idx[l], 50 * j, w[l], 0))) return rc;
        }
    for (int l = 0; l < nlayers; l++) free(w[l]);
    return oialr_traj_close(t);
}

/* sgesdd('S') of snapshots i0, i0+step, ... of one layer held in memory */
typedef struct {
    const float *all;
    int rows, cols, nsnap, i0, step;
    double secs;
    int rc;
} svd_job;

static void *svd_run(void *arg) {
    svd_job *j = arg;
    int m = j->rows >= j->cols ? j->rows : j->cols, n = j->rows >= j->cols ? j->cols : j->rows;
    size_t mn = (size_t)m * n;
    float *w = malloc(mn * sizeof(float)), *u = malloc(mn * sizeof(float)), *vt = malloc((size_t)n * n * sizeof(float));
    float *s = malloc((size_t)n * sizeof(float));
    j->rc = !w || !u || !vt || !s;
    for (int i = j->i0; i < j->nsnap && !j->rc; i += j->step) {
        memcpy(w, j->all + (size_t)i * mn, mn * sizeof(float));
        /* the row-major rows x cols buffer is the column-major cols x rows
         * matrix: SVD it as it lies (same singular values) */
        double t0 = oialr_now();
        int info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'S', j->cols, j->rows, w, j->cols, s, u, j->cols, vt, n);
        j->secs += oialr_now() - t0;
        if (info) j->rc = 1;
    }
    free(w); free(u); free(vt); free(s);
    return NULL;
}

/* Serial sum of the sgesdd times (1 thread), then the wall time of the same
 * SVDs spread over `threads` pthreads (1 OpenBLAS thread each): the second
 * is what this machine can actually deliver in parallel. */
static int lapack(const char *path, int threads) {
    oialr_set_threads(1);
    oialr_traj *t;
    int rc = oialr_traj_open(&t, path, OIALR_TRAJ_READ);
    if (rc) return rc;
    double total = 0, wall = 0, values = 0;
    for (int l = 0; l < oialr_traj_nlayers(t); l++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, l);
        size_t mn = (size_t)L->rows * L->cols;
        float *all = malloc(mn * (size_t)L->nsnap * sizeof(float));
        if (!all) return OIALR_ERR_NOMEM;
        for (int64_t j = 0; j < L->nsnap; j++)
            if ((rc = oialr_traj_read(t, l, j, all + (size_t)j * mn, mn))) return rc;
        svd_job one = {all, (int)L->rows, (int)L->cols, (int)L->nsnap, 0, 1, 0, 0};
        svd_run(&one);
        /* values only: sgesdd('N'), the bound */
        {
            int m = L->rows >= L->cols ? (int)L->rows : (int)L->cols, n = (int)(L->rows + L->cols) - m;
            float *w = malloc(mn * sizeof(float)), *s = malloc((size_t)n * sizeof(float)), d = 0;
            if (!w || !s) return OIALR_ERR_NOMEM;
            for (int64_t j = 0; j < L->nsnap; j++) {
                memcpy(w, all + (size_t)j * mn, mn * sizeof(float));
                double t0 = oialr_now();
                if (LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'N', (int)L->cols, (int)L->rows, w, (int)L->cols, s, &d, 1, &d, 1))
                    one.rc = 1;
                values += oialr_now() - t0;
            }
            free(w); free(s);
        }
        svd_job jobs[16];
        pthread_t tid[16];
        double t0 = oialr_now();
        for (int i = 0; i < threads; i++) {
            jobs[i] = (svd_job){all, (int)L->rows, (int)L->cols, (int)L->nsnap, i, threads, 0, 0};
            pthread_create(&tid[i], NULL, svd_run, &jobs[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
        double w = oialr_now() - t0;
        for (int i = 0; i < threads; i++) one.rc |= jobs[i].rc;
        free(all);
        if (one.rc) return OIALR_ERR_NUMERIC;
        printf("layer %s %lldx%lld: %lld snapshots, sgesdd %.3f s serial, %.3f s wall on %d threads\n", L->name,
               (long long)L->rows, (long long)L->cols, (long long)L->nsnap, one.secs, w, threads);
        total += one.secs;
        wall += w;
    }
    printf("lapack_seconds=%.4f lapack_parallel_seconds=%.4f threads=%d lapack_values_seconds=%.4f\n", total, wall,
           threads, values);
    return oialr_traj_close(t);
}


static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median thread CPU seconds of one factor by path `p` (0 gesdd f32, 1 gesdd
 * f64, 2 Gram f32, 3 Gram f64, 4 sgesdd('N'), 5 dgesdd('N')). */
static double time_path(int p, const float *w, int rows, int cols, int reps) {
    int m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows;
    double t[64];
    if (reps > 64) reps = 64;
    if (p >= 4) {
        size_t mn = (size_t)m * n;
        void *a = malloc(mn * 8), *s = malloc((size_t)n * 8);
        for (int r = 0; r < reps; r++) {
            if (p == 4) memcpy(a, w, mn * 4);
            else for (size_t i = 0; i < mn; i++) ((double *)a)[i] = w[i];
            double t0 = cpu_now(), d = 0;
            float f = 0;
            if (p == 4) LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'N', cols, rows, a, cols, s, &f, 1, &f, 1);
            else LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', cols, rows, a, cols, s, &d, 1, &d, 1);
            t[r] = cpu_now() - t0;
        }
        free(a); free(s);
    } else {
        int prec = p == 1 || p == 3 ? OIALR_PREC_F64 : OIALR_PREC_F32;
        oialr_svd_ws *ws;
        oialr_factor *f;
        if (oialr_svd_ws_new(&ws, prec) || oialr_factor_new(&f, rows, cols, prec)) return NAN;
        svd_ws_set_gram(ws, p >= 2);
        oialr_factor_compute(f, ws, w); /* sizes the workspace */
        for (int r = 0; r < reps; r++) {
            double t0 = cpu_now();
            int rc = oialr_factor_compute(f, ws, w);
            t[r] = rc ? NAN : cpu_now() - t0;
        }
        int64_t g, ill;
        svd_ws_gram_counts(ws, &g, &ill);
        if (ill) printf("(%dx%d: %lld of the Gram factors went to gesdd)\n", rows, cols, (long long)ill);
        oialr_factor_free(f);
        oialr_svd_ws_free(ws);
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_dbl);
    return t[reps / 2];
}

static int paths(int reps) {
    static const struct { const char *what; int rows, cols; } S[] = {
        {"MLP fc1", 512, 784}, {"MLP fc2", 512, 512}, {"MLP fc3", 10, 512},
        {"CNN s2.b0.2.conv", 64, 576}, {"CNN s2.b0.1.conv", 64, 288}, {"CNN s1.b0.2.conv", 32, 288},
        {"ViT mlp.fc1", 128, 64}, {"ViT attn.q", 64, 64}};
    oialr_set_threads(1);
    oialr_rng r;
    oialr_rng_seed(&r, 7, 1);
    printf("| layer | shape | κ | gesdd f32 | gesdd f64 | Gram, f32 factor | Gram, f64 factor | sgesdd N | dgesdd N | Gram f32 / gesdd f32 |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < sizeof S / sizeof *S; i++) {
        size_t mn = (size_t)S[i].rows * S[i].cols;
        float *w = malloc(mn * sizeof *w);
        if (!w) return OIALR_ERR_NOMEM;
        float sc = 1.0f / sqrtf((float)S[i].cols);
        for (size_t j = 0; j < mn; j++) w[j] = sc * oialr_rng_normal(&r);
        double kappa = NAN;
        {
            oialr_svd_ws *ws;
            oialr_factor *f;
            if (!oialr_svd_ws_new(&ws, OIALR_PREC_F64) && !oialr_factor_new(&f, S[i].rows, S[i].cols, OIALR_PREC_F64)) {
                if (!oialr_factor_compute(f, ws, w)) {
                    const double *sg = oialr_factor_sigma(f);
                    int64_t n = oialr_factor_n(f);
                    kappa = sg[0] / sg[n - 1];
                }
                oialr_factor_free(f);
                oialr_svd_ws_free(ws);
            }
        }
        double t[6];
        for (int p = 0; p < 6; p++) t[p] = 1e3 * time_path(p, w, S[i].rows, S[i].cols, reps);
        printf("| %s | %dx%d | %.3g | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f |\n", S[i].what, S[i].rows, S[i].cols,
               kappa, t[0], t[1], t[2], t[3], t[4], t[5], t[2] / t[0]);
        free(w);
    }
    printf("(milliseconds of thread CPU time per factor, median of %d; 1 OpenBLAS thread)\n", reps);
    return OIALR_OK;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "paths")) {
        int rc = paths(argc > 2 ? atoi(argv[2]) : 9);
        return rc ? 1 : 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: bench_analyze make TRAJ [SNAPSHOTS [largest]] | lapack TRAJ [THREADS] | paths [REPS] | "
                        "analyze TRAJ [options]\n");
        return 2;
    }
    int rc;
    if (!strcmp(argv[1], "make")) {
        rc = make(argv[2], argc > 3 ? atoi(argv[3]) : 100, argc > 4 && !strcmp(argv[4], "largest") ? 1 : 3);
    } else if (!strcmp(argv[1], "lapack")) {
        rc = lapack(argv[2], argc > 3 ? atoi(argv[3]) : 2);
    } else if (!strcmp(argv[1], "analyze")) {
        double t0 = oialr_now();
        argv[1] = "analyze";
        int st = oialr_cmd_analyze(argc - 1, argv + 1);
        double secs = oialr_now() - t0;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("seconds=%.4f peak_rss_kib=%ld\n", secs, ru.ru_maxrss);
        return st;
    } else {
        fprintf(stderr, "bench_analyze: unknown mode %s\n", argv[1]);
        return 2;
    }
    if (rc) fprintf(stderr, "bench_analyze: %s: %s\n", oialr_strerror(rc), oialr_errmsg());
    return rc ? 1 : 0;
}
