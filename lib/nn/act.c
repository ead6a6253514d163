/*
 * act.c — elementwise layers: ReLU, GELU (tanh approximation, as GPT-2 and
 * PyTorch's approximate='tanh'), tanh, dropout (inverted, mask from caller),
 * residual add. Backward accumulates into dinp; the *_set variants write
 * it instead (the graph uses them when it is this layer's alone and has not
 * been zeroed).
 */
#include "nn/nn.h"
#include "base/hot.h"
#include "nn/par.h"

#include <math.h>
#include <string.h>

OIALR_HOT static void relu_forward_range(float *restrict out, const float *restrict inp, size_t n) {
    /* written so that NaN propagates (NaN < 0 is false), as in PyTorch */
    for (size_t i = 0; i < n; i++) out[i] = inp[i] < 0.0f ? 0.0f : inp[i];
}

OIALR_HOT static void relu_backward_range(float *restrict dinp, const float *restrict dout,
                                          const float *restrict inp, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}
OIALR_HOT static void relu_backward_set_range(float *restrict dinp, const float *restrict dout,
                                              const float *restrict inp, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

/* tanh as a 13/6 rational function on [-7.9053, 7.9053] (the approximation
 * Eigen and XNNPACK use for float; within a few ulp of tanhf, |error| < 3e-7
 * beyond the clamp where tanhf rounds to 1 - 2^-23 .. 1). Unlike a tanhf
 * call it vectorizes: libm's tanhf was half of a ViT step. NaN propagates
 * (both comparisons are false). */
static inline float tanh_rational(float x) {
    const float clamp = 7.90531110763549805f;
    x = x > clamp ? clamp : x;
    x = x < -clamp ? -clamp : x;
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

OIALR_HOT static void gelu_forward_range(float *restrict out, const float *restrict inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + 0.044715f * x * x * x);
        out[i] = 0.5f * x * (1.0f + tanh_rational(u));
    }
}

/* d GELU(x) / dx */
static inline float gelu_grad(float x) {
    float u = GELU_SCALE * (x + 0.044715f * x * x * x);
    float th = tanh_rational(u);
    float sech2 = 1.0f - th * th;
    float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * sech2 * du;
}

/* dinp (+)= dout * gelu'(inp): set writes */
OIALR_HOT static void gelu_backward_range(float *restrict dinp, const float *restrict dout,
                                          const float *restrict inp, size_t n, int set) {
    if (set)
        for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * gelu_grad(inp[i]);
    else
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * gelu_grad(inp[i]);
}

/* From GELU_PAR_MIN values on (a ViT MLP: 128 x 17 x 128) the range is split
 * across nn_threads() (nn/par.h), on 64-byte boundaries. */
#define GELU_PAR_MIN ((size_t)1 << 16)

typedef struct gelu_job {
    float *out;
    const float *inp, *dout;
    size_t n;
    int set; /* backward: = instead of += */
} gelu_job;

static void gelu_share_range(const gelu_job *j, int t, int nt, size_t *lo, size_t *hi) {
    size_t blocks = (j->n + 15) / 16;
    *lo = blocks * (size_t)t / (size_t)nt * 16;
    *hi = blocks * (size_t)(t + 1) / (size_t)nt * 16;
    if (*hi > j->n) *hi = j->n;
    if (*lo > *hi) *lo = *hi;
}

static void gelu_fwd_share(void *ctx, int t, int nt) {
    const gelu_job *j = ctx;
    size_t lo, hi;
    gelu_share_range(j, t, nt, &lo, &hi);
    gelu_forward_range(j->out + lo, j->inp + lo, hi - lo);
}

static void gelu_bwd_share(void *ctx, int t, int nt) {
    const gelu_job *j = ctx;
    size_t lo, hi;
    gelu_share_range(j, t, nt, &lo, &hi);
    gelu_backward_range(j->out + lo, j->dout + lo, j->inp + lo, hi - lo, j->set);
}

void gelu_forward(float *out, const float *inp, size_t n) {
    gelu_job j = {out, inp, NULL, n, 0};
    nn_parallel(gelu_fwd_share, &j, n >= GELU_PAR_MIN ? nn_threads() : 1);
}

void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    gelu_job j = {dinp, inp, dout, n, 0};
    nn_parallel(gelu_bwd_share, &j, n >= GELU_PAR_MIN ? nn_threads() : 1);
}

void gelu_backward_set(float *dinp, const float *dout, const float *inp, size_t n) {
    gelu_job j = {dinp, inp, dout, n, 1};
    nn_parallel(gelu_bwd_share, &j, n >= GELU_PAR_MIN ? nn_threads() : 1);
}

/* The clones are static and the entry points plain functions: GCC gives the
 * ifunc of an extern target_clones function default visibility whatever
 * -fvisibility or a visibility attribute says (base/hot.h). */
OIALR_HOT static void tanh_forward_range(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

OIALR_HOT static void tanh_backward_range(float *dinp, const float *dout, const float *out, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

OIALR_HOT static void dropout_forward_range(float *out, const float *inp, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * mask[i];
}

OIALR_HOT static void dropout_backward_range(float *dinp, const float *dout, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * mask[i];
}

void tanh_forward(float *out, const float *inp, size_t n) { tanh_forward_range(out, inp, n); }

void tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    tanh_backward_range(dinp, dout, out, n);
}

void dropout_forward(float *out, const float *inp, const float *mask, size_t n) {
    dropout_forward_range(out, inp, mask, n);
}

void dropout_backward(float *dinp, const float *dout, const float *mask, size_t n) {
    dropout_backward_range(dinp, dout, mask, n);
}

OIALR_HOT static void add_forward_range(float *restrict out, const float *restrict a, const float *restrict b,
                                        size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

OIALR_HOT static void acc_range(float *restrict out, const float *restrict a, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] += a[i];
}

OIALR_HOT static void add_relu_forward_range(float *restrict out, const float *restrict a, const float *restrict b,
                                             size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float v = a[i] + b[i];
        out[i] = v < 0.0f ? 0.0f : v;
    }
}

/* da, db (+)= (y > 0) * dout, or dout without the ReLU (y NULL): the
 * residual add's backward, one pass for both, each written (set) or
 * accumulated */
static inline __attribute__((always_inline)) void add_bwd2(float *restrict da, float *restrict db,
                                                           const float *restrict dout, const float *restrict y,
                                                           size_t n, const int relu, const int set_a,
                                                           const int set_b) {
    for (size_t i = 0; i < n; i++) {
        const float v = !relu || y[i] > 0.0f ? dout[i] : 0.0f;
        da[i] = set_a ? v : da[i] + v;
        db[i] = set_b ? v : db[i] + v;
    }
}
static inline __attribute__((always_inline)) void add_bwd2_sets(float *restrict da, float *restrict db,
                                                                const float *restrict dout, const float *restrict y,
                                                                size_t n, const int relu, int set_a, int set_b) {
    if (set_a && set_b) add_bwd2(da, db, dout, y, n, relu, 1, 1);
    else if (set_a) add_bwd2(da, db, dout, y, n, relu, 1, 0);
    else if (set_b) add_bwd2(da, db, dout, y, n, relu, 0, 1);
    else add_bwd2(da, db, dout, y, n, relu, 0, 0);
}
OIALR_HOT static void add_backward_range(float *restrict da, float *restrict db, const float *restrict dout,
                                         const float *restrict y, size_t n, int set_a, int set_b) {
    if (y) add_bwd2_sets(da, db, dout, y, n, 1, set_a, set_b);
    else add_bwd2_sets(da, db, dout, NULL, n, 0, set_a, set_b);
}

/* ReLU and the residual add of a CNN stage run over 1.6 M values per batch,
 * a ViT's residual adds over 128 x 17 x 64 = 139 Ki: from ELT_PAR_MIN values
 * on they are split like GELU (the MLP's 128 x 512 stay on one thread). At
 * 256 Ki the ViT's adds ran on one thread: 6.6-7.2% of its step, 5.2-5.7%
 * split (bench_kernels 'model vit', 3 alternating runs, 2026-12-03). */
enum { ELT_RELU_FWD, ELT_RELU_BWD, ELT_RELU_BWD_SET, ELT_ADD, ELT_ACC, ELT_COPY, ELT_ADD_RELU, ELT_ADD_BWD };

typedef struct elt_job {
    int op;
    float *out;
    const float *a, *b;
    size_t n;
    float *out2; /* ELT_ADD_BWD: the second gradient, and whether each is set */
    int set, set2;
} elt_job;

static void elt_share(void *ctx, int t, int nt) {
    const elt_job *j = ctx;
    size_t blocks = (j->n + 15) / 16, lo = blocks * (size_t)t / (size_t)nt * 16,
           hi = blocks * (size_t)(t + 1) / (size_t)nt * 16;
    if (hi > j->n) hi = j->n;
    if (lo >= hi) return;
    switch (j->op) {
    case ELT_RELU_FWD: relu_forward_range(j->out + lo, j->a + lo, hi - lo); break;
    case ELT_RELU_BWD: relu_backward_range(j->out + lo, j->a + lo, j->b + lo, hi - lo); break;
    case ELT_RELU_BWD_SET: relu_backward_set_range(j->out + lo, j->a + lo, j->b + lo, hi - lo); break;
    case ELT_ACC: acc_range(j->out + lo, j->a + lo, hi - lo); break;
    case ELT_COPY: memcpy(j->out + lo, j->a + lo, sizeof(float) * (hi - lo)); break;
    case ELT_ADD_RELU: add_relu_forward_range(j->out + lo, j->a + lo, j->b + lo, hi - lo); break;
    case ELT_ADD_BWD: /* b: the ReLU's output, or NULL */
        add_backward_range(j->out + lo, j->out2 + lo, j->a + lo, j->b ? j->b + lo : NULL, hi - lo, j->set, j->set2);
        break;
    default: add_forward_range(j->out + lo, j->a + lo, j->b + lo, hi - lo); break;
    }
}

#define ELT_PAR_MIN ((size_t)1 << 17)

static void elt_run(int op, float *out, const float *a, const float *b, size_t n) {
    elt_job j = {op, out, a, b, n, NULL, 0, 0};
    nn_parallel(elt_share, &j, n >= ELT_PAR_MIN ? nn_threads() : 1);
}
/* both gradients of a residual add in one pass, y the ReLU's output or NULL */
static void add_bwd_run(float *da, float *db, const float *dout, const float *y, size_t n, int set_a, int set_b) {
    elt_job j = {ELT_ADD_BWD, da, dout, y, n, db, set_a, set_b};
    nn_parallel(elt_share, &j, n >= ELT_PAR_MIN ? nn_threads() : 1);
}

void relu_forward(float *out, const float *inp, size_t n) { elt_run(ELT_RELU_FWD, out, inp, NULL, n); }
void relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    elt_run(ELT_RELU_BWD, dinp, dout, inp, n);
}
void add_forward(float *out, const float *a, const float *b, size_t n) { elt_run(ELT_ADD, out, a, b, n); }
void relu_backward_set(float *dinp, const float *dout, const float *inp, size_t n) {
    elt_run(ELT_RELU_BWD_SET, dinp, dout, inp, n);
}
void add_backward(float *da, float *db, const float *dout, size_t n, int set_a, int set_b) {
    if (da && db && da != db) {
        add_bwd_run(da, db, dout, NULL, n, set_a, set_b);
        return;
    }
    if (da) elt_run(set_a ? ELT_COPY : ELT_ACC, da, dout, NULL, n);
    if (db) elt_run(set_b ? ELT_COPY : ELT_ACC, db, dout, NULL, n);
}
void add_relu_forward(float *out, const float *a, const float *b, size_t n) {
    elt_run(ELT_ADD_RELU, out, a, b, n);
}
void add_relu_backward(float *da, float *db, const float *dout, const float *y, size_t n, int set_a, int set_b) {
    if (!da || !db || da == db) { /* one gradient, or the same twice: pass by pass */
        if (da) elt_run(set_a ? ELT_RELU_BWD_SET : ELT_RELU_BWD, da, dout, y, n);
        if (db) elt_run(set_b && db != da ? ELT_RELU_BWD_SET : ELT_RELU_BWD, db, dout, y, n);
        return;
    }
    add_bwd_run(da, db, dout, y, n, set_a, set_b);
}
