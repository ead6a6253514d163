/*
 * tests/util_grad.c — see util_grad.h.
 */
#include "util_grad.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tu_rng_seed(tu_rng *r, uint64_t seed)
{
    /* splitmix64 of the seed, never 0 */
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    r->s = (z ^ (z >> 31)) | 1u;
}

static uint64_t tu_rng_u64(tu_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

double tu_rng_uniform(tu_rng *r)
{
    return (double)(tu_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

void tu_fill_uniform(float *x, size_t n, tu_rng *r, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)tu_rng_uniform(r);
}

void tu_fill_distinct(float *x, size_t n, tu_rng *r, float lo, float step)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + step * (float)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(tu_rng_uniform(r) * (double)i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

float *tu_alloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "tu_alloc: out of memory (%zu floats)\n", n);
        abort();
    }
    return p;
}

double tu_close_ratio(const float *a, const float *b, size_t n, double atol, double rtol)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]), t = atol + rtol * fabs((double)b[i]);
        double q = d / t;
        if (q > worst || q != q) worst = q != q ? INFINITY : q;
    }
    return worst;
}

double tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

static double loss(const tu_grad_problem *p, const float *R)
{
    p->forward(p->ctx);
    double s = 0.0;
    for (size_t i = 0; i < p->nout; i++) s += (double)p->out[i] * R[i];
    return s;
}

tu_grad_result tu_grad_check(const tu_grad_problem *p, const tu_grad_opts *opts)
{
    tu_grad_opts o = {1e-2, 2e-3, 2e-2, 64, 1};
    if (opts) {
        o = *opts;
        if (o.eps <= 0) o.eps = 1e-2;
        if (o.atol <= 0) o.atol = 2e-3;
        if (o.rtol <= 0) o.rtol = 2e-2;
    }
    tu_grad_result res = {1, 0, 0, 0.0, ""};
    tu_rng rng;
    tu_rng_seed(&rng, o.seed);

    float *R = tu_alloc(p->nout);
    tu_fill_uniform(R, p->nout, &rng, -1.0f, 1.0f);

    /* analytic: grads pre-filled with FILL, backward must add to them */
    const float FILL = 0.5f;
    for (int k = 0; k < p->nparams; k++)
        if (p->params[k].grad)
            for (size_t i = 0; i < p->params[k].n; i++) p->params[k].grad[i] = FILL;
    p->forward(p->ctx);
    p->backward(p->ctx, R);

    for (int k = 0; k < p->nparams; k++) {
        const tu_param *q = &p->params[k];
        if (!q->grad || q->n == 0) continue;
        size_t m = (o.max_per_param <= 0 || (size_t)o.max_per_param >= q->n) ? q->n : (size_t)o.max_per_param;
        for (size_t s = 0; s < m; s++) {
            size_t i = m == q->n ? s : (size_t)(tu_rng_uniform(&rng) * (double)q->n);
            const float x0 = q->x[i];
            q->x[i] = (float)(x0 + o.eps);
            double lp = loss(p, R);
            q->x[i] = (float)(x0 - o.eps);
            double lm = loss(p, R);
            q->x[i] = x0;
            double fd = (lp - lm) / (2.0 * o.eps);
            double an = (double)q->grad[i] - FILL;
            double tol = o.atol + o.rtol * fmax(fabs(fd), fabs(an));
            double ratio = fabs(fd - an) / tol;
            if (ratio != ratio) ratio = INFINITY;
            res.checked++;
            if (ratio > 1.0) {
                res.failed++;
                res.ok = 0;
            }
            if (ratio > res.worst || res.checked == 1) {
                res.worst = ratio;
                snprintf(res.msg, sizeof res.msg, "%s[%zu]: analytic %.6g vs numeric %.6g (ratio %.3g)", q->name,
                         i, an, fd, ratio);
            }
        }
    }
    free(R);
    return res;
}
