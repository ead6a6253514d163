/*
 * nn/par.h — run a kernel's independent pieces on the engine's threads.
 *
 * On a small machine OpenBLAS threading pays off only for big products; a
 * training step of a small CNN or ViT is many small GEMMs and memory-bound
 * loops. Kernels that can split their work (by samples, by channels, by
 * (batch, head)) hand it to nn_parallel instead: nt threads each run a share,
 * with OpenBLAS set to one thread for the duration (every sgemm inside runs
 * single-threaded in its caller), then OpenBLAS's own count is restored.
 *
 * The thread count is OpenBLAS's (oialr_set_threads / --threads), capped at
 * NN_MAX_THREADS; kernels size per-thread scratch with NN_MAX_THREADS.
 */
#ifndef OIALR_NN_PAR_H
#define OIALR_NN_PAR_H

#define NN_MAX_THREADS 8

/* Threads a kernel may use now: OpenBLAS's count, 1..NN_MAX_THREADS. */
int nn_threads(void);

/* fn(ctx, t, nt) for t = 0..nt-1, share 0 on the calling thread, the others
 * on the pool's workers (started on first use, then kept waiting); returns
 * when all are done. nt <= 1 calls fn(ctx, 0, 1). A call made while the pool
 * is in use (another thread, or a share calling nn_parallel) runs on fresh
 * pthreads; if a thread cannot be started its share runs on the caller. The
 * same shares run either way, so results do not depend on the path. */
typedef void (*nn_task)(void *ctx, int t, int nt);
void nn_parallel(nn_task fn, void *ctx, int nt);

/* Join the pool's workers (waits for a call in progress). Registered with
 * atexit on first use; a later nn_parallel starts new workers. */
void nn_pool_shutdown(void);

/* [lo, hi) of t's share of n items split evenly across nt. */
static inline void nn_share(int n, int t, int nt, int *lo, int *hi)
{
    *lo = (int)((long long)n * t / nt);
    *hi = (int)((long long)n * (t + 1) / nt);
}

#endif /* OIALR_NN_PAR_H */
