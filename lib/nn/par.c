/*
 * nn/par.c — nn_parallel: fork-join of a kernel's shares over a persistent
 * pool of worker threads, OpenBLAS single-threaded inside (see nn/par.h).
 *
 * A training step of the small CNN makes ~40 parallel calls; starting fresh
 * pthreads for each cost a clone, a stack mapping and its page faults every
 * time (a few % of the step in perf). The pool's workers are started on the
 * first call that needs them and then wait on a condition variable between
 * calls, so an idle pool takes no CPU from OpenBLAS's own threads. A call
 * publishes the task under the mutex and bumps a generation count; each
 * worker runs share t = its index (1..nt-1), the caller runs share 0, and the
 * last worker to finish wakes the caller. Shares are the same as with fresh
 * threads, so results do not depend on which thread ran them.
 *
 * Waking a sleeping worker through the condition variable and waiting for
 * it cost 11-16 us a call (tests/bench: a 2-thread call of an empty task),
 * and a ViT step makes a few hundred calls. So a worker that finished a
 * share, and a caller waiting for its workers, first poll the generation
 * (or the pending count) for a short while (POOL_SPIN rounds, each a
 * sched_yield, so that a runnable OpenBLAS thread on that core still gets
 * it), and only then sleep; the caller signals only if a worker sleeps.
 *
 * Only one call at a time uses the pool: a call made while it is busy (from
 * another thread, or from inside a share) runs its shares on fresh pthreads
 * as before. The workers are joined at exit (atexit) or by nn_pool_shutdown;
 * a forked child (Check's runner forks per test) starts with no workers and
 * makes its own.
 */
#include "nn/par.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* polls before sleeping: ~0.3 us each when nothing else wants the core */
#define POOL_SPIN 200

int nn_threads(void)
{
    int n = openblas_get_num_threads();
    if (n < 1) n = 1;
    if (n > NN_MAX_THREADS) n = NN_MAX_THREADS;
    return n;
}

// ---------------------------------------------------------------------------
// fresh threads: the fallback when the pool is busy or a worker cannot start

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

static void run_fresh(nn_task fn, void *ctx, int nt)
{
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
}

// ---------------------------------------------------------------------------
// the pool. Every field is written under `mu` (each worker's share runs
// outside it); gen and pending are atomic so that they may be polled
// without it.

static struct {
    pthread_mutex_t mu;
    pthread_cond_t go;   /* workers wait here for a new generation or stop */
    pthread_cond_t done; /* the caller waits here for pending == 0 */
    pthread_t th[NN_MAX_THREADS];
    unsigned long born[NN_MAX_THREADS]; /* gen when worker t was started */
    int nworkers;        /* workers running: indices 1..nworkers */
    int busy;            /* a call owns the pool */
    int stop;
    _Atomic unsigned long gen; /* bumped by every call */
    int sleepers;        /* workers waiting on go */
    nn_task fn;
    void *ctx;
    int nt;              /* shares of the current call */
    _Atomic int pending; /* workers of the current call still running */
    int hooked;          /* atexit and atfork handlers registered */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void *worker(void *arg)
{
    const int t = (int)(size_t)arg;
    pthread_mutex_lock(&pool.mu);
    unsigned long seen = pool.born[t]; /* the call that started it may have bumped gen already */
    for (;;) {
        if (!pool.stop && atomic_load(&pool.gen) == seen) {
            pthread_mutex_unlock(&pool.mu);
            for (int i = 0; i < POOL_SPIN && atomic_load(&pool.gen) == seen; i++) sched_yield();
            pthread_mutex_lock(&pool.mu);
        }
        while (!pool.stop && atomic_load(&pool.gen) == seen) {
            pool.sleepers++;
            pthread_cond_wait(&pool.go, &pool.mu);
            pool.sleepers--;
        }
        if (pool.stop) break;
        seen = atomic_load(&pool.gen);
        if (t >= pool.nt) continue; /* not needed by this call */
        nn_task fn = pool.fn;
        void *ctx = pool.ctx;
        const int nt = pool.nt;
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, t, nt);
        pthread_mutex_lock(&pool.mu);
        if (atomic_fetch_sub(&pool.pending, 1) == 1) pthread_cond_broadcast(&pool.done); /* shared with shutdown's wait */
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

void nn_pool_shutdown(void)
{
    pthread_mutex_lock(&pool.mu);
    while (pool.busy) pthread_cond_wait(&pool.done, &pool.mu);
    pool.stop = 1;
    const int n = pool.nworkers;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    for (int t = 1; t <= n; t++) pthread_join(pool.th[t], NULL);
    pthread_mutex_lock(&pool.mu);
    pool.nworkers = 0;
    pool.stop = 0;
    pthread_mutex_unlock(&pool.mu);
}

/* In a forked child only the forking thread exists: forget the parent's
 * workers (their pthread_t are meaningless here) and start afresh. */
static void pool_after_fork(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.go, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.nworkers = 0;
    pool.busy = 0;
    pool.stop = 0;
    pool.pending = 0;
    pool.sleepers = 0;
}

/* Under pool.mu: make sure workers 1..n run; returns how many do. */
static int pool_grow(int n)
{
    if (!pool.hooked) {
        pool.hooked = 1;
        atexit(nn_pool_shutdown);
        pthread_atfork(NULL, NULL, pool_after_fork);
    }
    while (pool.nworkers < n) {
        const int t = pool.nworkers + 1;
        pool.born[t] = pool.gen;
        if (pthread_create(&pool.th[t], NULL, worker, (void *)(size_t)t) != 0) break;
        pool.nworkers = t;
    }
    return pool.nworkers;
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
    pthread_mutex_lock(&pool.mu);
    if (pool.busy || pool.stop) {
        pthread_mutex_unlock(&pool.mu);
        run_fresh(fn, ctx, nt);
        openblas_set_num_threads(blas);
        return;
    }
    pool.busy = 1;
    const int have = pool_grow(nt - 1);
    const int run = have < nt - 1 ? have + 1 : nt; /* shares 0..run-1 in the pool */
    pool.fn = fn;
    pool.ctx = ctx;
    pool.nt = nt;
    atomic_store(&pool.pending, run - 1);
    atomic_fetch_add(&pool.gen, 1);
    if (pool.sleepers > 0) pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);

    fn(ctx, 0, nt);
    for (int t = run; t < nt; t++) fn(ctx, t, nt); /* workers that could not start */

    for (int i = 0; i < POOL_SPIN && atomic_load(&pool.pending) > 0; i++) sched_yield();
    pthread_mutex_lock(&pool.mu);
    while (atomic_load(&pool.pending) > 0) pthread_cond_wait(&pool.done, &pool.mu);
    pool.busy = 0;
    pthread_cond_broadcast(&pool.done); /* a shutdown may wait for the pool */
    pthread_mutex_unlock(&pool.mu);
    openblas_set_num_threads(blas);
}
