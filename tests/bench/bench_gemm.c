/*
 * bench_gemm.c — the OpenBLAS sgemm ceiling, measured in the same run as the
 * training benchmarks so that "fraction of the ceiling" compares like with like.
 *
 * Shapes are those of one training step of the MLP 784-512-512-10 at batch 128,
 * with the transposes lib/nn/dense.c uses (row-major):
 *   forward  out[B,OC]  = inp[B,C] @ w[OC,C]^T       NT  M=B  N=OC K=C
 *   dinp     dinp[B,C] += dout[B,OC] @ w[OC,C]        NN  M=B  N=C  K=OC
 *   dw       dw[OC,C]  += dout[B,OC]^T @ inp[B,C]     TN  M=OC N=C  K=B
 * plus "mlp-step" (the 8 GEMMs of one step run back to back, the achievable
 * ceiling for this workload) and a large square NN product (the machine's
 * sgemm peak). Each case is timed in blocks of at least --min-time seconds;
 * the best block is reported (a ceiling: noise only ever slows it down).
 *
 * Output, one line per case and thread count, for tests/bench/run.sh:
 *   sgemm threads=T case=NAME op=XX M=.. N=.. K=.. gflops=G
 *
 * usage: bench_gemm [--threads 1,2] [--min-time 0.2] [--blocks 3] [--square 2048] [--case NAME]
 * (--case: only the case(s) whose name starts with NAME, e.g. square, mlp-step)
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// ----------------------------------------------------------------------------
// cases

typedef struct {
    const char *name;
    char ta, tb; /* 'N' or 'T', row-major, as passed to cblas_sgemm */
    int M, N, K;
    float beta;
} gemm_case;

#define B 128
static const gemm_case mlp_step[] = {
    {"fc1-fwd", 'N', 'T', B, 512, 784, 1.0f},  {"fc2-fwd", 'N', 'T', B, 512, 512, 1.0f},
    {"fc3-fwd", 'N', 'T', B, 10, 512, 1.0f},   {"fc3-dinp", 'N', 'N', B, 512, 10, 1.0f},
    {"fc3-dw", 'T', 'N', 10, 512, B, 1.0f},    {"fc2-dinp", 'N', 'N', B, 512, 512, 1.0f},
    {"fc2-dw", 'T', 'N', 512, 512, B, 1.0f},   {"fc1-dw", 'T', 'N', 512, 784, B, 1.0f},
};
#define NSTEP (int)(sizeof mlp_step / sizeof mlp_step[0])

// ----------------------------------------------------------------------------
// timing

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *buf_a, *buf_b, *buf_c;

static void run_case(const gemm_case *g) {
    /* leading dimensions of the stored (row-major) matrices */
    int lda = g->ta == 'N' ? g->K : g->M;
    int ldb = g->tb == 'N' ? g->N : g->K;
    cblas_sgemm(CblasRowMajor, g->ta == 'N' ? CblasNoTrans : CblasTrans, g->tb == 'N' ? CblasNoTrans : CblasTrans,
                g->M, g->N, g->K, 1.0f, buf_a, lda, buf_b, ldb, g->beta, buf_c, g->N);
}

static double case_flops(const gemm_case *g, int n) {
    double f = 0;
    for (int i = 0; i < n; i++) f += 2.0 * g[i].M * g[i].N * g[i].K;
    return f;
}

/* best GFLOP/s over `blocks` blocks of >= min_time seconds each */
static double time_cases(const gemm_case *g, int n, double min_time, int blocks) {
    double flops = case_flops(g, n), best = 0;
    for (int i = 0; i < n; i++) run_case(&g[i]); /* warm-up: threads, caches, pages */
    for (int b = 0; b < blocks; b++) {
        long reps = 0;
        double t0 = now(), t;
        do {
            for (int i = 0; i < n; i++) run_case(&g[i]);
            reps++;
            t = now() - t0;
        } while (t < min_time);
        double gf = flops * (double)reps / t * 1e-9;
        if (gf > best) best = gf;
    }
    return best;
}

static void print_case(int threads, const char *name, const gemm_case *g, double gf) {
    if (g)
        printf("sgemm threads=%d case=%s op=%c%c M=%d N=%d K=%d gflops=%.2f\n", threads, name, g->ta, g->tb, g->M,
               g->N, g->K, gf);
    else
        printf("sgemm threads=%d case=%s op=-- M=0 N=0 K=0 gflops=%.2f\n", threads, name, gf);
    fflush(stdout);
}

// ----------------------------------------------------------------------------
// main

static void usage(void) {
    fprintf(stderr, "usage: bench_gemm [--threads 1,2] [--min-time S] [--blocks N] [--square N] [--case NAME]\n");
}

int main(int argc, char **argv) {
    const char *threads = "1,2", *only = "";
    double min_time = 0.2;
    int blocks = 3, square = 2048;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = argv[++i];
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
            min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--blocks") && i + 1 < argc)
            blocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--case") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--square") && i + 1 < argc)
            square = atoi(argv[++i]);
        else {
            usage();
            return 2;
        }
    }
    if (min_time <= 0 || blocks < 1 || square < 16 || square > 16384) {
        usage();
        return 2;
    }

    /* one set of buffers big enough for every case */
    size_t big = (size_t)square * (size_t)square;
    if (big < 784 * 512) big = 784 * 512;
    buf_a = malloc(big * sizeof(float));
    buf_b = malloc(big * sizeof(float));
    buf_c = malloc(big * sizeof(float));
    if (!buf_a || !buf_b || !buf_c) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        return 1;
    }
    unsigned s = 12345;
    for (size_t i = 0; i < big; i++) {
        s = s * 1103515245u + 12345u;
        buf_a[i] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f;
        buf_b[i] = buf_a[i] * 0.5f + 0.01f;
        buf_c[i] = 0.0f;
    }

    gemm_case sq = {"square", 'N', 'N', square, square, square, 0.0f};
    char sqname[32];
    snprintf(sqname, sizeof sqname, "square%d", square);

    for (const char *p = threads; *p;) {
        int t = atoi(p);
        if (t < 1) {
            usage();
            return 2;
        }
        openblas_set_num_threads(t);
        size_t lo = strlen(only);
        for (int i = 0; i < NSTEP; i++)
            if (!strncmp(mlp_step[i].name, only, lo))
                print_case(t, mlp_step[i].name, &mlp_step[i], time_cases(&mlp_step[i], 1, min_time, blocks));
        if (!strncmp("mlp-step", only, lo)) print_case(t, "mlp-step", NULL, time_cases(mlp_step, NSTEP, min_time, blocks));
        if (!strncmp(sqname, only, lo)) print_case(t, sqname, &sq, time_cases(&sq, 1, min_time, blocks));
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
    }
    free(buf_a);
    free(buf_b);
    free(buf_c);
    return 0;
}
