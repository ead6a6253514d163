/*
 * nn/par.c — nn_parallel: fork-join of a kernel's shares over pthreads,
 * OpenBLAS single-threaded inside (see nn/par.h).
 *
 * Threads are created per call: a call costs ~20 µs next to kernels of a
 * millisecond or more at the batch sizes that reach here, and nothing is left
 * running between steps (no spinning workers competing with OpenBLAS's own).
 */
#include "nn/par.h"

#include <cblas.h>
#include <pthread.h>

int nn_threads(void)
{
    int n = openblas_get_num_threads();
    if (n < 1) n = 1;
    if (n > NN_MAX_THREADS) n = NN_MAX_THREADS;
    return n;
}

typedef struct share {
    nn_task fn;
    void *ctx;
    int t, nt;
} share;

static void *run_share(void *p)
{
    share *s = p;
    s->fn(s->ctx, s->t, s->nt);
    return NULL;
}

void nn_parallel(nn_task fn, void *ctx, int nt)
{
    if (nt > NN_MAX_THREADS) nt = NN_MAX_THREADS;
    if (nt <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    const int blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
    pthread_t th[NN_MAX_THREADS];
    share sh[NN_MAX_THREADS];
    int started[NN_MAX_THREADS] = {0};
    for (int t = 1; t < nt; t++) {
        sh[t] = (share){fn, ctx, t, nt};
        started[t] = pthread_create(&th[t], NULL, run_share, &sh[t]) == 0;
    }
    fn(ctx, 0, nt);
    for (int t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            fn(ctx, t, nt);
    }
    openblas_set_num_threads(blas);
}
