/*
 * engine.c — the parallel per-layer computation of `oialr analyze`.
 *
 * A batch is up to T snapshots (T = threads). Per batch:
 *   main:  read the T snapshots into per-thread input buffers (HDF5 stays on
 *          the main thread);
 *   all:   [barrier] thread t factors snapshot j0+t into ring slot
 *          (j0+t) mod R, R = lag + T;
 *   all:   [barrier] thread t computes stability and principal angles of
 *          j0+t against j0+t-lag (finished in this or an earlier batch) and
 *          the spectrum metrics;
 *   main:  [barrier] emit the rows in order.
 * The slots written by a batch held snapshots older than j0 - lag, which no
 * pair of this batch needs, so the ring is never read after being reused.
 */
#include "analyze.h"
#include "metrics/internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct ana_thread {
    struct ana_engine *e;
    int id;
    pthread_t tid;
    oialr_svd_ws *ws;
    const float *in;      /* this batch's input: the ring slot's input buffer */
    double *theta;        /* n angles */
    size_t theta_cap;
    double svd_seconds;
    int rc;               /* status of this thread's last job */
    char err[256];
} ana_thread;

struct ana_engine {
    int threads, prec;
    ana_thread *th;
    pthread_barrier_t start, mid, done;
    int quit;
    int no_angles;
    int gram;             /* workspaces on the Gram path */
    int64_t gram_ill;     /* of workspaces freed by set_prec */
    /* the current layer */
    int64_t rows, cols, nsnap, j0, nbatch;
    const int64_t *steps;
    int lag;
    double beta;
    oialr_factor **ring;
    int nring;
    int *ring_ok;         /* slot holds a valid factor */
    ana_row *rows_out;    /* T rows of the batch */
    size_t peak;
};

static int grow_buf(void **p, size_t *cap, size_t n, size_t esz) {
    if (n <= *cap) return OIALR_OK;
    void *q = realloc(*p, n * esz);
    if (!q) return oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory (%zu bytes)", n * esz);
    *p = q;
    *cap = n;
    return OIALR_OK;
}

/* Phase 1: factor snapshot j0 + id. */
static void job_factor(ana_engine *e, ana_thread *t) {
    int64_t j = e->j0 + t->id;
    int slot = (int)(j % e->nring);
    double t0 = oialr_now();
    int rc = oialr_factor_compute(e->ring[slot], t->ws, t->in);
    t->svd_seconds += oialr_now() - t0;
    e->ring_ok[slot] = rc == OIALR_OK;
    ana_row *r = &e->rows_out[t->id];
    memset(r, 0, sizeof *r);
    r->step = e->steps[j];
    r->valid = rc == OIALR_OK;
    /* OIALR_ERR_NUMERIC (NaN/Inf, or no convergence): the row is skipped and
     * reported; anything else (out of memory) stops the analysis */
    t->rc = rc == OIALR_OK || rc == OIALR_ERR_NUMERIC ? OIALR_OK : rc;
    if (rc != OIALR_OK) snprintf(t->err, sizeof t->err, "%s", oialr_errmsg());
}

/* Phase 2: metrics of snapshot j0 + id. */
static void job_pair(ana_engine *e, ana_thread *t) {
    int64_t j = e->j0 + t->id;
    ana_row *r = &e->rows_out[t->id];
    const double nan = NAN;
    r->stability = r->grass_left = r->grass_right = r->max_left = r->max_right = nan;
    r->ref_step = j >= e->lag ? e->steps[j - e->lag] : -1;
    if (!r->valid) {
        r->sp.sigma1 = r->sp.frobenius = r->sp.stable_rank = r->sp.effective_rank = nan;
        r->sp.condition = r->sp.param_share = r->sp.trainable_share = r->sp.sigma_min = nan;
        r->sp.cutoff_rank = -1;
        r->rank = -1;
        return;
    }
    oialr_factor *b = e->ring[j % e->nring];
    r->rank = oialr_factor_rank(b);
    int rc = oialr_spectrum_metrics(oialr_factor_sigma(b), e->rows, e->cols, e->beta, &r->sp);
    if (rc) { t->rc = rc; snprintf(t->err, sizeof t->err, "%s", oialr_errmsg()); return; }
    if (j < e->lag) return;
    int sa = (int)((j - e->lag) % e->nring);
    if (!e->ring_ok[sa]) return;
    oialr_factor *a = e->ring[sa];
    if ((rc = oialr_stability(a, b, &r->stability))) goto fail;
    if (e->no_angles) return;
    int64_t k = r->sp.cutoff_rank, ku = 0;
    if ((rc = oialr_principal_angles(t->ws, a, b, OIALR_SIDE_LEFT, k, t->theta, &ku))) goto fail;
    r->angles_k = ku;
    if (ku > 0) {
        r->grass_left = oialr_grassmann(t->theta, ku);
        r->max_left = t->theta[ku - 1];
    }
    if ((rc = oialr_principal_angles(t->ws, a, b, OIALR_SIDE_RIGHT, k, t->theta, &ku))) goto fail;
    if (ku > 0) {
        r->grass_right = oialr_grassmann(t->theta, ku);
        r->max_right = t->theta[ku - 1];
    }
    return;
fail:
    t->rc = rc;
    snprintf(t->err, sizeof t->err, "%s", oialr_errmsg());
}

static void *worker(void *arg) {
    ana_thread *t = arg;
    ana_engine *e = t->e;
    for (;;) {
        pthread_barrier_wait(&e->start);
        if (e->quit) break;
        if (t->id < e->nbatch) job_factor(e, t);
        pthread_barrier_wait(&e->mid);
        if (t->id < e->nbatch) job_pair(e, t);
        pthread_barrier_wait(&e->done);
    }
    return NULL;
}

int ana_engine_new(ana_engine **out, int threads, int prec) {
    if (threads < 1) threads = 1;
    ana_engine *e = calloc(1, sizeof *e);
    if (!e) return oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory");
    e->threads = threads;
    e->prec = prec;
    e->th = calloc((size_t)threads, sizeof *e->th);
    e->rows_out = calloc((size_t)threads, sizeof *e->rows_out);
    if (!e->th || !e->rows_out) {
        free(e->th); free(e->rows_out); free(e);
        return oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory");
    }
    for (int i = 0; i < threads; i++) {
        e->th[i].e = e;
        e->th[i].id = i;
        int rc = oialr_svd_ws_new(&e->th[i].ws, prec);
        if (rc) { e->threads = i; ana_engine_free(e); return rc; }
    }
    pthread_barrier_init(&e->start, NULL, (unsigned)threads);
    pthread_barrier_init(&e->mid, NULL, (unsigned)threads);
    pthread_barrier_init(&e->done, NULL, (unsigned)threads);
    for (int i = 1; i < threads; i++)
        if (pthread_create(&e->th[i].tid, NULL, worker, &e->th[i]) != 0)
            /* The threads already started wait on a barrier sized for all of
             * them and cannot be stopped cleanly: the engine is leaked, which
             * only ever happens just before the command exits. */
            return oialr_seterr(OIALR_ERR_NOMEM, "analyze: cannot start thread %d of %d", i + 1, threads);
    *out = e;
    return OIALR_OK;
}

static void free_ring(ana_engine *e) {
    for (int i = 0; i < e->nring; i++) oialr_factor_free(e->ring[i]);
    free(e->ring);
    free(e->ring_ok);
    e->ring = NULL;
    e->ring_ok = NULL;
    e->nring = 0;
}

void ana_engine_free(ana_engine *e) {
    if (!e) return;
    if (e->threads > 1 && e->th[1].tid) {
        e->quit = 1;
        pthread_barrier_wait(&e->start);
        for (int i = 1; i < e->threads; i++) pthread_join(e->th[i].tid, NULL);
    }
    if (e->threads >= 1) {
        pthread_barrier_destroy(&e->start);
        pthread_barrier_destroy(&e->mid);
        pthread_barrier_destroy(&e->done);
    }
    for (int i = 0; i < e->threads; i++) {
        oialr_svd_ws_free(e->th[i].ws);
        free(e->th[i].theta);
    }
    free_ring(e);
    free(e->th);
    free(e->rows_out);
    free(e);
}

void ana_engine_set_angles(ana_engine *e, int on) { e->no_angles = !on; }

void ana_engine_set_gram(ana_engine *e, int on) {
    e->gram = on != 0;
    for (int i = 0; i < e->threads; i++) svd_ws_set_gram(e->th[i].ws, e->gram);
}

int ana_engine_gram(const ana_engine *e) { return e->gram; }

int64_t ana_engine_gram_ill(const ana_engine *e) {
    int64_t total = e->gram_ill, g, ill;
    for (int i = 0; i < e->threads; i++) {
        svd_ws_gram_counts(e->th[i].ws, &g, &ill);
        total += ill;
    }
    return total;
}

int ana_engine_set_prec(ana_engine *e, int prec) {
    if (prec == e->prec) return OIALR_OK;
    free_ring(e); /* factors of the other precision */
    for (int i = 0; i < e->threads; i++) {
        int64_t g, ill;
        svd_ws_gram_counts(e->th[i].ws, &g, &ill);
        e->gram_ill += ill;
        oialr_svd_ws_free(e->th[i].ws);
        e->th[i].ws = NULL;
        int rc = oialr_svd_ws_new(&e->th[i].ws, prec);
        if (rc) return rc;
        svd_ws_set_gram(e->th[i].ws, e->gram);
    }
    e->prec = prec;
    return OIALR_OK;
}

int ana_engine_prec(const ana_engine *e) { return e->prec; }

double ana_engine_svd_seconds(const ana_engine *e) {
    double s = 0;
    for (int i = 0; i < e->threads; i++) s += e->th[i].svd_seconds;
    return s;
}

size_t ana_engine_peak_bytes(const ana_engine *e) { return e->peak; }

int ana_engine_layer(ana_engine *e, int64_t rows, int64_t cols, int64_t nsnap, const int64_t *steps, int lag,
                     double beta, ana_read_fn read, ana_emit_fn emit, void *user) {
    if (lag < 1 || nsnap < 0 || rows <= 0 || cols <= 0)
        return oialr_seterr(OIALR_ERR_ARG, "analyze: bad layer parameters");
    int rc = OIALR_OK;
    int T = e->threads;
    int64_t n = rows < cols ? rows : cols;
    size_t mn = (size_t)rows * (size_t)cols;
    free_ring(e);
    e->nring = lag + T;
    e->ring = calloc((size_t)e->nring, sizeof *e->ring);
    e->ring_ok = calloc((size_t)e->nring, sizeof *e->ring_ok);
    if (!e->ring || !e->ring_ok) return oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory");
    /* Slot i holds snapshots i, i+R, ...: slots >= nsnap are never used, so
     * a short layer with a big lag costs nothing. */
    for (int i = 0; i < e->nring && i < nsnap; i++)
        if ((rc = oialr_factor_new(&e->ring[i], rows, cols, e->prec))) return rc;
    size_t bytes = 0;
    for (int i = 0; i < e->nring; i++) bytes += oialr_factor_bytes(e->ring[i]);
    for (int t = 0; t < T; t++) {
        ana_thread *th = &e->th[t];
        if ((rc = grow_buf((void **)&th->theta, &th->theta_cap, (size_t)n, sizeof(double))) ||
            (rc = oialr_svd_ws_reserve(th->ws, rows, cols)))
            return rc;
        bytes += oialr_svd_ws_bytes(th->ws);
    }
    if (bytes > e->peak) e->peak = bytes;
    e->rows = rows;
    e->cols = cols;
    e->nsnap = nsnap;
    e->steps = steps;
    e->lag = lag;
    e->beta = beta;
    for (int64_t j0 = 0; j0 < nsnap; j0 += T) {
        int b = (int)(nsnap - j0 < T ? nsnap - j0 : T);
        /* read straight into the slots' own buffers: the factors they held are
         * older than j0 - lag, which no pair of this batch needs */
        for (int t = 0; t < b; t++) {
            float *buf = oialr_factor_input_buffer(e->ring[(j0 + t) % e->nring]);
            e->ring_ok[(j0 + t) % e->nring] = 0;
            e->th[t].in = buf;
            if ((rc = read(user, j0 + t, buf, mn))) return rc;
        }
        e->j0 = j0;
        e->nbatch = b;
        for (int t = 0; t < T; t++) { e->th[t].rc = OIALR_OK; e->th[t].err[0] = '\0'; }
        if (T > 1) pthread_barrier_wait(&e->start);
        if (0 < b) job_factor(e, &e->th[0]);
        if (T > 1) pthread_barrier_wait(&e->mid);
        if (0 < b) job_pair(e, &e->th[0]);
        if (T > 1) pthread_barrier_wait(&e->done);
        for (int t = 0; t < b; t++) {
            if (e->th[t].rc) return oialr_seterr(e->th[t].rc, "%s", e->th[t].err);
            if (!e->rows_out[t].valid)
                oialr_log(OIALR_LOG_WARN, "step %lld skipped: %s", (long long)e->rows_out[t].step, e->th[t].err);
            int64_t j = j0 + t;
            const oialr_factor *f = e->ring[j % e->nring];
            if ((rc = emit(user, j, &e->rows_out[t], oialr_factor_sigma(f), n))) return rc;
        }
    }
    return OIALR_OK;
}
