/*
 * mpi.c — the CLI's MPI layer for data-parallel `oialr train` (see cli_mpi.h and
 * docs/distributed.md): start-up only under a launcher, one process's output,
 * the all-reduce the trainer calls, the cross-process parameter check, and an
 * orderly end (or an abort that stops every process, never a hang).
 *
 * Compiled into the CLI only, with `pkg-config ompi-c`; liboialr has no MPI.
 */
#include "cli_mpi.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

cli_mpi g_mpi = {.rank = 0, .size = 1, .local_size = 1};

static int g_err_fd = -1;   /* ranks > 0: the real stderr */
static FILE *g_capture;     /* ranks > 0: what they wrote to stderr */
static int g_agrees;        /* cli_mpi_agree calls so far */
static int g_show;          /* this process failed where others did not: show its output */

static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

void cli_mpi_start(int *argc, char ***argv) {
    if (!launched()) return;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "oialr train: MPI_Init failed\n");
        exit(1);
    }
    g_mpi.on = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_mpi.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_mpi.size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_size(local, &g_mpi.local_size);
        MPI_Comm_free(&local);
    }
    if (g_mpi.rank == 0) return;
    /* one process speaks: the others' stdout is dropped, their stderr kept
     * aside for the case where they fail alone */
    fflush(stdout);
    fflush(stderr);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        close(null);
    }
    g_err_fd = dup(STDERR_FILENO);
    g_capture = tmpfile();
    if (g_err_fd >= 0 && g_capture) dup2(fileno(g_capture), STDERR_FILENO);
}

int cli_mpi_agree(int status) {
    g_agrees++;
    if (!g_mpi.on) return status;
    int mine[2] = {status, -status}, all[2];
    MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int worst = all[0], best = -all[1];
    if (status && best == 0) g_show = 1;
    if (!status && worst && g_mpi.rank == 0)
        fprintf(stderr, "oialr train: another process failed before training (its message follows)\n");
    return worst;
}

/* A process > 0's captured stderr to the real one, each line prefixed. */
static void show_capture(void) {
    if (g_mpi.rank == 0 || !g_capture || g_err_fd < 0) return;
    fflush(stderr);
    rewind(g_capture);
    FILE *err = fdopen(g_err_fd, "w");
    if (!err) return;
    char line[4096];
    while (fgets(line, sizeof line, g_capture)) fprintf(err, "[rank %d] %s", g_mpi.rank, line);
    fflush(err);
    g_err_fd = -1; /* owned by err now; left open until exit */
}

int cli_mpi_finish(int status) {
    if (!g_mpi.on) return status;
    while (g_agrees < 2) {
        int worst = cli_mpi_agree(status);
        if (!status) status = worst;
    }
    if (g_mpi.in_run && !g_mpi.run_collective) {
        /* this process left the loop on its own: the others wait in a
         * collective call that will not come, so the job ends here */
        show_capture();
        if (g_mpi.rank == 0)
            fprintf(stderr, "oialr train: stopping every process (status %d): only this one saw the failure\n",
                    status ? status : 1);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
    }
    int *all = calloc((size_t)g_mpi.size, sizeof *all);
    if (all) {
        MPI_Allgather(&status, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
        if (g_mpi.rank > 0 && (g_show || all[g_mpi.rank] != all[0])) show_capture();
        if (g_mpi.rank == 0)
            for (int r = 1; r < g_mpi.size; r++)
                if (all[r] != all[0]) {
                    fprintf(stderr, "oialr train: process %d ended with status %d, this one with %d\n", r, all[r],
                            all[0]);
                    break;
                }
        free(all);
    }
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    return status;
}

int cli_mpi_allreduce(float *x, size_t n, void *user) {
    (void)user;
    double t0 = MPI_Wtime();
    /* MPI counts are int: a buffer over 2^31 floats goes in pieces */
    for (size_t at = 0; at < n;) {
        size_t k = n - at < (size_t)(1 << 30) ? n - at : (size_t)(1 << 30);
        int rc = MPI_Allreduce(MPI_IN_PLACE, x + at, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return oialr_seterr(OIALR_ERR_IO, "MPI_Allreduce failed (code %d)", rc);
        at += k;
    }
    g_mpi.reduce_seconds += MPI_Wtime() - t0;
    g_mpi.reduce_calls++;
    return OIALR_OK;
}

// ----------------------------------------------------------------------------
// the parameter check

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

unsigned long long cli_mpi_checksum(const oialr_params *p) {
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < p->count; i++) {
        const oialr_param_info *pi = &p->info[i];
        h = fnv(h, p->data + pi->offset, pi->size * sizeof(float));
        h = fnv(h, &pi->rank, sizeof pi->rank);
        if (pi->rank > 0 && pi->u && pi->v) {
            h = fnv(h, pi->u, (size_t)pi->rows * (size_t)pi->rank * sizeof(float));
            h = fnv(h, pi->v, (size_t)pi->cols * (size_t)pi->rank * sizeof(float));
        }
    }
    return h;
}

/* Test mode (docs/distributed.md): OIALR_MPI_TEST_PERTURB=STEP makes the last
 * process nudge one weight after step STEP, so that the check must fail. */
static void test_perturb(oialr_trainer *t) {
    const char *s = getenv("OIALR_MPI_TEST_PERTURB");
    if (!s || g_mpi.rank != g_mpi.size - 1 || atoll(s) != t->metrics.step || t->params->total == 0) return;
    t->params->data[t->params->info[0].offset] += 1e-3f;
}

/* Every process's checksum; OIALR_ERR_MISMATCH (the same on all) if one differs. */
static int check(oialr_trainer *t) {
    if (!g_mpi.on || g_mpi.size < 2) return OIALR_OK;
    unsigned long long mine = cli_mpi_checksum(t->params);
    unsigned long long *all = malloc((size_t)g_mpi.size * sizeof *all);
    if (!all) return OIALR_ERR_NOMEM; /* then this process aborts the job */
    MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
    g_mpi.checks++;
    g_mpi.checksum = all[0];
    int bad = -1;
    for (int r = 1; r < g_mpi.size && bad < 0; r++)
        if (all[r] != all[0]) bad = r;
    int rc = OIALR_OK;
    if (bad >= 0) {
        g_mpi.check_failed = 1;
        rc = oialr_seterr(OIALR_ERR_MISMATCH,
                          "the parameters differ across processes after step %lld (checksum %016llx on process 0, "
                          "%016llx on process %d): the data-parallel run diverged",
                          (long long)t->metrics.step, all[0], all[bad], bad);
    }
    free(all);
    return rc;
}

static int hook_step_end(oialr_trainer *t, void *user) {
    (void)user;
    const oialr_train_metrics *m = &t->metrics;
    if (g_mpi.first_step == 0) {
        g_mpi.first_step = m->step;
        g_mpi.first_bytes = m->allreduce_bytes;
    }
    g_mpi.last_step = m->step;
    g_mpi.last_bytes = m->allreduce_bytes;
    test_perturb(t);
    if (g_mpi.check_every > 0 && m->step % g_mpi.check_every == 0) return check(t);
    return OIALR_OK;
}

static int collective_status(int st) {
    return st == OIALR_OK || st == OIALR_ERR_DIVERGED || st == OIALR_ERR_INTERRUPTED ||
           (st == OIALR_ERR_MISMATCH && g_mpi.check_failed);
}

static int hook_run_end(oialr_trainer *t, void *user) {
    (void)user;
    g_mpi.run_collective = collective_status(t->status);
    /* a last check where every process stopped together */
    if (g_mpi.run_collective && !g_mpi.check_failed) {
        return check(t);
    }
    return OIALR_OK;
}

void cli_mpi_hook(oialr_hook *h) {
    memset(h, 0, sizeof *h);
    h->name = "mpi";
    h->step_end = hook_step_end;
    h->run_end = hook_run_end;
}

int cli_mpi_dump(const char *prefix, const oialr_params *p) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s.rank%d.bin", prefix, g_mpi.rank);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (int i = 0; i < p->count; i++) {
        const oialr_param_info *pi = &p->info[i];
        fwrite(p->data + pi->offset, sizeof(float), pi->size, f);
        fwrite(&pi->rank, sizeof pi->rank, 1, f);
        if (pi->rank > 0 && pi->u && pi->v) {
            fwrite(pi->u, sizeof(float), (size_t)pi->rows * (size_t)pi->rank, f);
            fwrite(pi->v, sizeof(float), (size_t)pi->cols * (size_t)pi->rank, f);
        }
    }
    return fclose(f) ? -1 : 0;
}

void cli_mpi_report(const oialr_trainer *t) {
    if (!g_mpi.on || g_mpi.rank != 0) return;
    double full = g_mpi.first_bytes, last = g_mpi.last_bytes;
    fprintf(stderr,
            "mpi: %d processes (%d on this machine, %d BLAS threads each); all-reduced per step: %.0f bytes at step %lld, %.0f at step %lld "
            "(%.2f%%; trainable %.2f%%); %.2fs in %.0f all-reduces (%.1f%% of the run); %lld parameter checks, "
            "last %016llx\n",
            g_mpi.size, g_mpi.local_size, g_mpi.threads, full, g_mpi.first_step, last, g_mpi.last_step,
            full > 0 ? 100.0 * last / full : 0.0, 100.0 * t->metrics.trainable_fraction, g_mpi.reduce_seconds,
            g_mpi.reduce_calls, t->metrics.seconds > 0 ? 100.0 * g_mpi.reduce_seconds / t->metrics.seconds : 0.0,
            g_mpi.checks, g_mpi.checksum);
}
