/*
 * engine.c — the parallel per-layer computation of `oialr analyze`.
 *
 * A batch is up to T snapshots (T = threads). Per batch:
 *   main:  read the T snapshots into per-thread input buffers (HDF5 stays on
 *          the main thread);
 *   all:   [barrier] thread t factors snapshot j0+t into ring slot
 *          (j0+t) mod R, R = lag + T;
 *   all:   [barrier] thread t computes stability and principal angles of
 *          j0+t against j0+t-lag (finished in this or an earlier batch), the
 *          spectrum metrics and the power-law α;
 *   main:  [barrier] emit the rows in order.
 * The slots written by a batch held snapshots older than j0 - lag, which no
 * pair of this batch needs, so the ring is never read after being reused.
 */
#include "analyze.h"
#include "metrics/internal.h"

#include <limits.h>
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
    int64_t lag_steps;    /* > 0: the reference of j is ref[j] (lag_steps_refs) */
    int64_t *ref;
    size_t ref_cap;
    oialr_factor *pin;    /* by steps: the latest valid factor pushed out of the ring */
    int64_t pin_index;    /* its snapshot (-1: none) */
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

/* --lag-steps: ref[j] = the latest snapshot at step <= steps[j] - lag_steps
 * (-1: none); *gap = the largest j - ref[j] (at least 1), which sizes the ring. */
static int lag_steps_refs(ana_engine *e, int64_t nsnap, const int64_t *steps, int *gap) {
    int rc = grow_buf((void **)&e->ref, &e->ref_cap, (size_t)(nsnap > 0 ? nsnap : 1), sizeof *e->ref);
    if (rc) return rc;
    int64_t g = 1;
    for (int64_t j = 0, a = -1; j < nsnap; j++) { /* steps strictly increase (the reader checks) */
        while (a + 1 < j && steps[a + 1] <= steps[j] - e->lag_steps) a++;
        e->ref[j] = a;
        if (a >= 0 && j - a > g) g = j - a;
    }
    if (g > INT_MAX / 2 - e->threads)
        return oialr_seterr(OIALR_ERR_OVERFLOW, "analyze: --lag-steps %lld spans %lld snapshots",
                            (long long)e->lag_steps, (long long)g);
    *gap = (int)g;
    return OIALR_OK;
}

/* The snapshot j is compared with: its index in *a (-1: none) and its
 * factor (NULL: none, or not valid). By lag: j - lag, valid or not (an
 * invalid one gives NaN). By steps: ref[j] or, if that one is invalid, the
 * latest valid snapshot before it: in the ring (which holds the snapshots
 * from j0 + nbatch - nring on), or else the pinned one. */
static const oialr_factor *pair_ref(const ana_engine *e, int64_t j, int64_t *a) {
    if (e->lag_steps <= 0) {
        *a = j >= e->lag ? j - e->lag : -1;
        return *a >= 0 && e->ring_ok[*a % e->nring] ? e->ring[*a % e->nring] : NULL;
    }
    int64_t lo = e->j0 + e->nbatch - e->nring, k = e->ref[j];
    while (k >= 0 && k >= lo && !e->ring_ok[k % e->nring]) k--;
    if (k >= 0 && k >= lo) {
        *a = k;
        return e->ring[k % e->nring];
    }
    *a = e->ref[j] >= 0 ? e->pin_index : -1; /* pin_index < lo <= ref[j] */
    return *a >= 0 ? e->pin : NULL;
}

/* Phase 2: metrics of snapshot j0 + id. */
static void job_pair(ana_engine *e, ana_thread *t) {
    int64_t j = e->j0 + t->id;
    ana_row *r = &e->rows_out[t->id];
    const double nan = NAN;
    r->stability = r->grass_left = r->grass_right = r->max_left = r->max_right = nan;
    int64_t ra;
    const oialr_factor *a = pair_ref(e, j, &ra);
    r->ref_step = ra >= 0 ? e->steps[ra] : -1;
    r->pl = (oialr_powerlaw){nan, nan, nan, 0, 0};
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
    /* α: OIALR_ERR_NUMERIC (too few nonzero eigenvalues) leaves NaN */
    if (!rc && (rc = oialr_powerlaw_fit(oialr_factor_sigma(b), r->sp.n, &r->pl)) == OIALR_ERR_NUMERIC) rc = OIALR_OK;
    if (rc) { t->rc = rc; snprintf(t->err, sizeof t->err, "%s", oialr_errmsg()); return; }
    if (!a) return;
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
    oialr_factor_free(e->pin);
    e->pin = NULL;
    e->pin_index = -1;
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
    free(e->ref);
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

void ana_engine_set_lag_steps(ana_engine *e, int64_t lag_steps) { e->lag_steps = lag_steps > 0 ? lag_steps : 0; }

double ana_engine_svd_seconds(const ana_engine *e) {
    double s = 0;
    for (int i = 0; i < e->threads; i++) s += e->th[i].svd_seconds;
    return s;
}

size_t ana_engine_peak_bytes(const ana_engine *e) { return e->peak; }

/* Snapshots from..nsnap-1 of a layer. from > 0 (follow mode): the ring
 * holds the layer's snapshots before `from` (ana_engine_layer_more put it
 * back); if --lag-steps now spans more snapshots than it was sized for,
 * the layer starts again from 0. */
static int engine_layer(ana_engine *e, int64_t from, int64_t rows, int64_t cols, int64_t nsnap, const int64_t *steps,
                        int lag, double beta, ana_read_fn read, ana_emit_fn emit, void *user) {
    if (lag < 1 || nsnap < 0 || rows <= 0 || cols <= 0)
        return oialr_seterr(OIALR_ERR_ARG, "analyze: bad layer parameters");
    int rc = OIALR_OK;
    int T = e->threads;
    int64_t n = rows < cols ? rows : cols;
    size_t mn = (size_t)rows * (size_t)cols;
    if (e->lag_steps > 0 && (rc = lag_steps_refs(e, nsnap, steps, &lag))) return rc;
    if (from > 0 && lag + T > e->nring) from = 0;
    if (from == 0) {
        free_ring(e);
        e->nring = lag + T;
        e->ring = calloc((size_t)e->nring, sizeof *e->ring);
        e->ring_ok = calloc((size_t)e->nring, sizeof *e->ring_ok);
        if (!e->ring || !e->ring_ok) return oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory");
    }
    lag = e->nring - T; /* a ring kept from an earlier call may be larger than needed */
    /* Slot i holds snapshots i, i+R, ...: slots >= nsnap are never used, so
     * a short layer with a big lag costs nothing. */
    for (int i = 0; i < e->nring && i < nsnap; i++)
        if (!e->ring[i] && (rc = oialr_factor_new(&e->ring[i], rows, cols, e->prec))) return rc;
    if (e->lag_steps > 0 && nsnap > e->nring && !e->pin && (rc = oialr_factor_new(&e->pin, rows, cols, e->prec)))
        return rc;
    size_t bytes = e->pin ? oialr_factor_bytes(e->pin) : 0;
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
    for (int64_t j0 = from; j0 < nsnap; j0 += T) {
        int b = (int)(nsnap - j0 < T ? nsnap - j0 : T);
        /* read straight into the slots' own buffers: the factors they held are
         * older than j0 - lag, which no pair of this batch needs */
        for (int t = 0; t < b; t++) {
            int slot = (int)((j0 + t) % e->nring);
            if (e->pin && j0 + t >= e->nring && e->ring_ok[slot]) { /* keep the valid factor it pushes out */
                oialr_factor *f = e->pin;
                e->pin = e->ring[slot];
                e->ring[slot] = f;
                e->pin_index = j0 + t - e->nring;
            }
            float *buf = oialr_factor_input_buffer(e->ring[slot]);
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

int ana_engine_layer(ana_engine *e, int64_t rows, int64_t cols, int64_t nsnap, const int64_t *steps, int lag,
                     double beta, ana_read_fn read, ana_emit_fn emit, void *user) {
    return engine_layer(e, 0, rows, cols, nsnap, steps, lag, beta, read, emit, user);
}

/* ---------------------------------------------------------------------------
 * Follow mode: a layer's ring, kept between the calls of one layer. */

struct ana_layer_state {
    oialr_factor **ring, *pin;
    int *ring_ok;
    int nring, prec;
    int64_t pin_index;
    int64_t next;         /* snapshots analysed so far */
};

/* Move the ring out of e into s (e is left with none). */
static void ring_detach(ana_engine *e, ana_layer_state *s) {
    s->ring = e->ring, s->ring_ok = e->ring_ok, s->nring = e->nring, s->pin = e->pin, s->pin_index = e->pin_index;
    s->prec = e->prec;
    e->ring = NULL, e->ring_ok = NULL, e->nring = 0, e->pin = NULL, e->pin_index = -1;
}

static void state_drop_ring(ana_layer_state *s) {
    for (int i = 0; i < s->nring; i++) oialr_factor_free(s->ring[i]);
    oialr_factor_free(s->pin);
    free(s->ring);
    free(s->ring_ok);
    s->ring = NULL, s->ring_ok = NULL, s->nring = 0, s->pin = NULL, s->pin_index = -1, s->next = 0;
}

void ana_layer_state_free(ana_layer_state *s) {
    if (!s) return;
    state_drop_ring(s);
    free(s);
}

int ana_engine_layer_more(ana_engine *e, ana_layer_state **st, int64_t rows, int64_t cols, int64_t nsnap,
                          const int64_t *steps, int lag, double beta, ana_read_fn read, ana_emit_fn emit, void *user) {
    if (!*st && !(*st = calloc(1, sizeof **st))) return oialr_seterr(OIALR_ERR_NOMEM, "analyze: out of memory");
    ana_layer_state *s = *st;
    int64_t from = 0;
    free_ring(e);
    if (s->ring && s->prec == e->prec) { /* put the layer's ring back */
        e->ring = s->ring, e->ring_ok = s->ring_ok, e->nring = s->nring, e->pin = s->pin, e->pin_index = s->pin_index;
        s->ring = NULL, s->ring_ok = NULL, s->nring = 0, s->pin = NULL;
        from = s->next;
    } else {
        state_drop_ring(s); /* none yet, or of the other precision */
    }
    int rc = engine_layer(e, from, rows, cols, nsnap, steps, lag, beta, read, emit, user);
    ring_detach(e, s);
    s->next = nsnap;
    if (rc) state_drop_ring(s); /* a failed or restarted layer starts again from 0 */
    return rc;
}
