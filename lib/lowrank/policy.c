/*
 * policy.c — switch policies (oialr/lowrank.h): when a layer leaves full
 * rank. One implementation for the online controller and for the replay of
 * `oialr analyze --policy`, fed the same stabilities in the same order.
 *
 * auto (docs/lowrank.md has the measurements behind it). The stability S of
 * a layer at a fixed lag depends on the lag and on the model, so no fixed
 * threshold works everywhere: at a half-epoch lag an MLP's first layer
 * levels off near 0.98 and its second near 0.955 (AdamW, Fashion-MNIST).
 * Its *shape* over training is common: the rotation per check, 1 - S, is
 * highest at the start and falls while the bases settle, then stays at the
 * level the optimizer's noise keeps it at. That level scales with the
 * learning rate (a step moves W by lr times a gradient), so under a
 * decaying schedule the raw rotation keeps falling with the rate; auto
 * therefore watches the rotation per unit of learning rate, (1 - S) / lr.
 * A layer switches at the first check where
 *   - that rotation has stopped falling: it fell by less than AUTO_FALL
 *     (a fraction) against the check `span` steps before (or more), and
 *   - S >= AUTO_FLOOR, so a layer whose bases still turn wholesale at a
 *     steady rate never switches.
 * The span is in steps, so the decision does not move with the check
 * interval: the controller sets it to two epochs (docs/results-oialr.md:
 * on the MLP a span of two checks fired at the end of the initial
 * transient, step 860, while the spectrum kept concentrating until ~1700;
 * a two-epoch span fires at 1290-1505 at two check intervals). With no
 * span given (0) the rule compares with the check AUTO_SPAN checks before.
 */
#include "lowrank/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTO_FALL 0.25
#define AUTO_SPAN 2 /* checks, when no span in steps is given */
#define AUTO_HIST 64 /* checks of history kept per layer */
#define AUTO_FLOOR 0.9

struct oialr_policy_state {
    oialr_policy p;
    int n;
    double (*rot)[AUTO_HIST];  /* [n] the last rotations (1 - S) / lr, newest first (auto) */
    int64_t (*at)[AUTO_HIST];  /* [n] their steps */
    int *seen;                 /* [n] checks with a stability (auto) */
};

static int bad(const char *s, const char *why) {
    return oialr_seterr(OIALR_ERR_ARG, "policy '%s': %s (expected auto, stability:TAU[,lag=STEPS], "
                        "mean-stability:TAU or delay:STEPS)", s, why);
}

static int parse_num(const char *s, const char *txt, double lo, double hi, double *out) {
    char *end;
    double v = strtod(txt, &end);
    if (end == txt || *end || !isfinite(v) || v < lo || v > hi) {
        char why[96];
        snprintf(why, sizeof why, "'%s' is not a number in [%g, %g]", txt, lo, hi);
        return bad(s, why);
    }
    *out = v;
    return OIALR_OK;
}

static int parse_steps(const char *s, const char *txt, int64_t *out) {
    char *end;
    long long v = strtoll(txt, &end, 10);
    if (end == txt || *end || v < 0 || v > (1LL << 40)) {
        char why[96];
        snprintf(why, sizeof why, "'%s' is not a step count in [0, 2^40]", txt);
        return bad(s, why);
    }
    *out = v;
    return OIALR_OK;
}

int oialr_policy_parse(const char *s, oialr_policy *p) {
    memset(p, 0, sizeof *p);
    if (!s || !s[0]) return bad(s ? s : "", "empty");
    if (!strcmp(s, "auto")) {
        p->kind = OIALR_POLICY_AUTO;
        return OIALR_OK;
    }
    char buf[128];
    if (strlen(s) >= sizeof buf) return bad(s, "too long");
    strcpy(buf, s);
    char *arg = strchr(buf, ':');
    if (!arg) return bad(s, "no ':'");
    *arg++ = '\0';
    if (!strcmp(buf, "stability")) {
        p->kind = OIALR_POLICY_STABILITY;
        /* ';' too: replay.csv writes the policy so (one CSV field), and
         * what it says must paste back into --policy */
        char *comma = strpbrk(arg, ",;");
        if (comma) {
            *comma++ = '\0';
            if (strncmp(comma, "lag=", 4)) return bad(s, "expected ',lag=STEPS' after the threshold");
            int rc = parse_steps(s, comma + 4, &p->lag);
            if (rc) return rc;
            if (p->lag == 0) return bad(s, "lag must be at least 1 step");
        }
        return parse_num(s, arg, -1.0, 1.0, &p->tau);
    }
    if (!strcmp(buf, "mean-stability")) {
        p->kind = OIALR_POLICY_MEAN_STABILITY;
        return parse_num(s, arg, -1.0, 1.0, &p->tau);
    }
    if (!strcmp(buf, "delay")) {
        p->kind = OIALR_POLICY_DELAY;
        return parse_steps(s, arg, &p->delay);
    }
    return bad(s, "unknown policy");
}

void oialr_policy_format(const oialr_policy *p, char *buf, size_t size) {
    switch (p->kind) {
    case OIALR_POLICY_AUTO: snprintf(buf, size, "auto"); break;
    case OIALR_POLICY_STABILITY:
        if (p->lag) snprintf(buf, size, "stability:%g,lag=%lld", p->tau, (long long)p->lag);
        else snprintf(buf, size, "stability:%g", p->tau);
        break;
    case OIALR_POLICY_MEAN_STABILITY: snprintf(buf, size, "mean-stability:%g", p->tau); break;
    case OIALR_POLICY_DELAY: snprintf(buf, size, "delay:%lld", (long long)p->delay); break;
    default: snprintf(buf, size, "none"); break;
    }
}

int oialr_policy_state_new(oialr_policy_state **out, const oialr_policy *p, int nlayers) {
    *out = NULL;
    oialr_policy_state *st = calloc(1, sizeof *st);
    if (!st) return oialr_seterr(OIALR_ERR_NOMEM, "policy: out of memory");
    st->p = *p;
    st->n = nlayers;
    size_t n = nlayers > 0 ? (size_t)nlayers : 1;
    st->rot = calloc(n, sizeof *st->rot);
    st->at = calloc(n, sizeof *st->at);
    st->seen = calloc(n, sizeof *st->seen);
    if (!st->rot || !st->at || !st->seen) {
        oialr_policy_state_free(st);
        return oialr_seterr(OIALR_ERR_NOMEM, "policy: out of memory");
    }
    *out = st;
    return OIALR_OK;
}

void oialr_policy_state_free(oialr_policy_state *st) {
    if (!st) return;
    free(st->rot);
    free(st->at);
    free(st->seen);
    free(st);
}

/* auto, one layer: record this check's rotation, then decide */
static int auto_decide(oialr_policy_state *st, int i, int64_t step, double s, double lr) {
    double rot = 1.0 - s;
    if (rot < 0) rot = 0;
    if (lr > 0) rot /= lr; /* per unit of learning rate */
    double *r = st->rot[i];
    int64_t *at = st->at[i];
    memmove(r + 1, r, (AUTO_HIST - 1) * sizeof *r);
    memmove(at + 1, at, (AUTO_HIST - 1) * sizeof *at);
    r[0] = rot;
    at[0] = step;
    int kept = ++st->seen[i] < AUTO_HIST ? st->seen[i] : AUTO_HIST;
    /* the check to compare with: AUTO_SPAN back, or the newest one at least
     * span steps back */
    int k = -1;
    if (st->p.span <= 0) {
        if (kept > AUTO_SPAN) k = AUTO_SPAN;
    } else {
        for (int j = 1; j < kept && k < 0; j++)
            if (step - at[j] >= st->p.span) k = j;
    }
    if (k < 0) return 0; /* no history that far back yet */
    return s >= AUTO_FLOOR && rot >= (1.0 - AUTO_FALL) * r[k];
}

int oialr_policy_check(oialr_policy_state *st, int64_t step, int64_t min_steps, double lr, const double *s,
                       const int *done, int *go) {
    const oialr_policy *p = &st->p;
    int n = st->n, count = 0;
    for (int i = 0; i < n; i++) go[i] = 0;
    int early = step < min_steps;
    switch (p->kind) {
    case OIALR_POLICY_DELAY:
        if (early || step < p->delay) return 0;
        for (int i = 0; i < n; i++) count += go[i] = !done[i];
        return count;
    case OIALR_POLICY_MEAN_STABILITY: {
        double sum = 0;
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!done[i]) {
                if (isnan(s[i])) return 0; /* a layer without a stability yet: not all are known */
                sum += s[i], k++;
            }
        if (early || k == 0 || sum / k < p->tau) return 0;
        for (int i = 0; i < n; i++) count += go[i] = !done[i];
        return count;
    }
    case OIALR_POLICY_STABILITY:
        for (int i = 0; i < n; i++) count += go[i] = !early && !done[i] && !isnan(s[i]) && s[i] >= p->tau;
        return count;
    case OIALR_POLICY_AUTO:
        /* the history is kept through the warm-up, so a layer may switch
         * at the first check after min_steps */
        for (int i = 0; i < n; i++) {
            if (done[i] || isnan(s[i])) continue;
            int ok = auto_decide(st, i, step, s[i], lr);
            count += go[i] = ok && !early;
        }
        return count;
    default: return 0;
    }
}

// ----------------------------------------------------------------------------
// the state as bytes, for a checkpoint (lowrank/internal.h)

size_t policy_state_bytes(const oialr_policy_state *st) {
    size_t n = st->n > 0 ? (size_t)st->n : 1;
    return n * (sizeof *st->rot + sizeof *st->at + sizeof *st->seen);
}

void policy_state_save(const oialr_policy_state *st, unsigned char *buf) {
    size_t n = st->n > 0 ? (size_t)st->n : 1;
    memcpy(buf, st->rot, n * sizeof *st->rot);
    buf += n * sizeof *st->rot;
    memcpy(buf, st->at, n * sizeof *st->at);
    buf += n * sizeof *st->at;
    memcpy(buf, st->seen, n * sizeof *st->seen);
}

void policy_state_load(oialr_policy_state *st, const unsigned char *buf) {
    size_t n = st->n > 0 ? (size_t)st->n : 1;
    memcpy(st->rot, buf, n * sizeof *st->rot);
    buf += n * sizeof *st->rot;
    memcpy(st->at, buf, n * sizeof *st->at);
    buf += n * sizeof *st->at;
    memcpy(st->seen, buf, n * sizeof *st->seen);
    for (size_t i = 0; i < n; i++)
        if (st->seen[i] < 0 || st->seen[i] > AUTO_HIST) /* only min(seen, AUTO_HIST) counts */
            st->seen[i] = st->seen[i] < 0 ? 0 : AUTO_HIST; /* a damaged checkpoint: never a bad index */
}
