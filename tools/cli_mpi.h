/*
 * cli_mpi.h — tools/mpi.c: `mpirun -np P oialr train ...`: the CLI's MPI layer
 * (docs/distributed.md). The library knows no MPI: it calls the all-reduce
 * callback of oialr_train_dist, which this module fills. Only `oialr train`
 * calls it, and MPI starts only when a launcher started the process
 * (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE in the environment): alone,
 * the binary trains exactly as without this file.
 *
 * The sequence of collective calls is the same on every process:
 *   cli_mpi_start, cli_mpi_agree (arguments), cli_mpi_agree (set-up),
 *   the trainer's all-reduces and the check hook's gathers, cli_mpi_finish.
 * A process that leaves the training loop on its own (a failure only it
 * saw) aborts the job in cli_mpi_finish rather than let the others wait.
 */
#ifndef OIALR_CLI_MPI_H
#define OIALR_CLI_MPI_H

#include "oialr.h"

typedef struct cli_mpi {
    int on;             /* MPI_Init was called */
    int rank, size;     /* 0, 1 alone */
    int local_size;     /* processes on this machine */
    int in_run;         /* set by the caller just before oialr_train_run */
    int run_collective; /* the training loop ended where every process did */
    int check_failed;   /* the parameter check found a difference */
    long long check_every; /* --mpi-check-every (steps; 0: at the end only) */
    int threads;           /* BLAS threads of each process (0: OpenBLAS's choice) */
    double reduce_seconds, reduce_calls;
    double first_bytes, last_bytes; /* all-reduced by the first / the last step */
    long long first_step, last_step;
    unsigned long long checksum; /* of the parameters, at the last check */
    long long checks;
} cli_mpi;

extern cli_mpi g_mpi;

/* MPI_Init if launched by mpirun; on ranks > 0 stdout goes to /dev/null and
 * stderr to a temporary file, shown only if this process's outcome differs
 * from rank 0's. Exits with a message if MPI fails to start. */
void cli_mpi_start(int *argc, char ***argv);
/* The worst status of all processes (max); status itself alone. Marks the
 * set-up agreed (the second call). */
int cli_mpi_agree(int status);
/* End: abort the job if this process left the loop alone (its error shown),
 * else compare the statuses and finalize. Returns the exit status. */
int cli_mpi_finish(int status);

/* oialr_train_dist's allreduce: MPI_Allreduce(MPI_SUM) in place. */
int cli_mpi_allreduce(float *x, size_t n, void *user);
/* A hook (name "mpi") that checks every check_every steps, and at the end,
 * that the parameters (and the U, V of low-rank layers) are the same bits on
 * every process, and counts the bytes all-reduced per step. */
void cli_mpi_hook(oialr_hook *h);
/* 64-bit FNV-1a of every parameter's values and the low-rank factors. */
unsigned long long cli_mpi_checksum(const oialr_params *p);
/* Test mode (OIALR_MPI_DUMP=PREFIX): this process's parameters and factors
 * into PREFIX.rankN.bin. 0 or -1 (errno). */
int cli_mpi_dump(const char *prefix, const oialr_params *p);
/* rank 0's summary line on stderr: processes, threads, bytes per step,
 * time in all-reduces, checks. */
void cli_mpi_report(const oialr_trainer *t);

#endif
