/*
 * nn/attention_lanes.h — the lane kernel of nn/attention.c: HEAD_VW
 * (batch, head) problems side by side, one per lane of a vector, written
 * once for a vector of HEAD_VW floats and included once per width, as
 * nn/attention_head.h.
 *
 * In the per-head kernels a 17 x 17 x 16 head is too small for its vectors:
 * a row of 17 scores fills 17 of 32 lanes, and every row waits on its own
 * chains (a max over 17 scalars, a sum of exponentials). Here lane l holds
 * problem p0 + l, so X[t][e] (a token's element) is one vector across the
 * problems and every step of softmax(q kᵀ/√HS) v and of its backward is
 * the scalar algorithm run HEAD_VW times at once: no padding, no horizontal
 * sums, and as many independent chains as the loops have iterations. The
 * price is the transposes in and out of that layout: HEAD_VW rows of
 * HEAD_VW floats, one from each problem, become HEAD_VW vectors of one
 * element each by log2(HEAD_VW) stages of two-vector shuffles
 * (__builtin_shuffle: vpermt2ps with AVX-512).
 *
 * The problems of a group are lanes 0 .. nl-1; the caller points the unused
 * lanes of the last group at a real problem (reads stay in bounds) and only
 * lanes < nl are written. off[l] is lane l's offset of its head in q, k, v
 * (b*T*C + h*HS), and att + aoff[l] its T x T attention.
 *
 * Before including: HEAD_VEC, HEAD_VECU, HEAD_VW, HEAD_ATTR, HEAD_NAME(x)
 * as for nn/attention_head.h, and HEAD_VI (an int vector of HEAD_VW lanes).
 * All of them are undefined at the end.
 */
#define HLD(p) (*(const HEAD_VECU *)(p))
#define HST(p, v) (*(HEAD_VECU *)(p) = (v))

/* stage d of the transpose: lane p of the low half comes from a (index < VW)
 * or b (index - VW) of blocks of d floats interleaved; the high half is d
 * further on */
#define TRM(d, p) ((p) % (2 * (d)) < (d) ? (p) / (2 * (d)) * 2 * (d) + (p) % (2 * (d)) \
                                         : HEAD_VW + (p) / (2 * (d)) * 2 * (d) + (p) % (2 * (d)) - (d))
#if HEAD_VW == 16
#define TRMASK(d) {TRM(d, 0),  TRM(d, 1),  TRM(d, 2),  TRM(d, 3),  TRM(d, 4),  TRM(d, 5),  TRM(d, 6),  TRM(d, 7), \
                   TRM(d, 8),  TRM(d, 9),  TRM(d, 10), TRM(d, 11), TRM(d, 12), TRM(d, 13), TRM(d, 14), TRM(d, 15)}
#else
#define TRMASK(d) {TRM(d, 0), TRM(d, 1), TRM(d, 2), TRM(d, 3), TRM(d, 4), TRM(d, 5), TRM(d, 6), TRM(d, 7)}
#endif

static inline __attribute__((always_inline)) void HEAD_NAME(tr_stage)(HEAD_VEC *r, int d, const HEAD_VI *mask)
{
    const HEAD_VI lo = *mask, hi = lo + d;
#pragma GCC unroll 16
    for (int i = 0; i < HEAD_VW; i++)
        if (!(i & d)) {
            const HEAD_VEC a = r[i], b = r[i + d];
            r[i] = __builtin_shuffle(a, b, lo);
            r[i + d] = __builtin_shuffle(a, b, hi);
        }
}

/* r[i][j] <-> r[j][i], HEAD_VW x HEAD_VW */
static inline __attribute__((always_inline)) void HEAD_NAME(transpose)(HEAD_VEC *r)
{
#if HEAD_VW == 16
    HEAD_NAME(tr_stage)(r, 8, &(HEAD_VI)TRMASK(8));
#endif
    HEAD_NAME(tr_stage)(r, 4, &(HEAD_VI)TRMASK(4));
    HEAD_NAME(tr_stage)(r, 2, &(HEAD_VI)TRMASK(2));
    HEAD_NAME(tr_stage)(r, 1, &(HEAD_VI)TRMASK(1));
}

/* X[c] (a vector over the lanes) = base[off[l] + c] for c < HEAD_VW: one
 * block of HEAD_VW floats from each lane, transposed */
static inline __attribute__((always_inline)) void HEAD_NAME(block_in)(HEAD_VEC *restrict X, const float *base,
                                                                      const size_t *off)
{
    HEAD_VEC r[HEAD_VW];
#pragma GCC unroll 16
    for (int l = 0; l < HEAD_VW; l++) r[l] = HLD(base + off[l]);
    HEAD_NAME(transpose)(r);
#pragma GCC unroll 16
    for (int c = 0; c < HEAD_VW; c++) X[c] = r[c];
}

/* base[off[l] + c] (+)= X[c][l] for c < HEAD_VW and the lanes l < nl */
static inline __attribute__((always_inline)) void HEAD_NAME(block_out)(float *base, const size_t *off, int nl,
                                                                       const HEAD_VEC *restrict X, int add)
{
    HEAD_VEC r[HEAD_VW];
#pragma GCC unroll 16
    for (int c = 0; c < HEAD_VW; c++) r[c] = X[c];
    HEAD_NAME(transpose)(r);
    for (int l = 0; l < nl; l++) {
        float *d = base + off[l];
        HEAD_VEC x = r[l];
        if (add) x += HLD(d);
        HST(d, x);
    }
}

/* X[t*HS + e] (vectors over the lanes) = base[off[l] + (t0 + t)*C + e] for
 * t < nt, e < HS (a multiple of HEAD_VW) */
static inline __attribute__((always_inline)) void HEAD_NAME(gather)(HEAD_VEC *restrict X, const float *base,
                                                                    const size_t *off, int t0, int nt, int HS, int C)
{
    for (int t = 0; t < nt; t++)
        for (int e0 = 0; e0 < HS; e0 += HEAD_VW)
            HEAD_NAME(block_in)(X + t * HS + e0, base + (size_t)(t0 + t) * C + e0, off);
}

/* base[off[l] + (t0 + t)*C + e] (+)= X[t*HS + e] for the lanes l < nl */
static inline __attribute__((always_inline)) void HEAD_NAME(scatter)(float *base, const size_t *off, int nl,
                                                                     const HEAD_VEC *restrict X, int t0, int nt,
                                                                     int HS, int C, int add)
{
    for (int t = 0; t < nt; t++)
        for (int e0 = 0; e0 < HS; e0 += HEAD_VW)
            HEAD_NAME(block_out)(base + (size_t)(t0 + t) * C + e0, off, nl, X + t * HS + e0, add);
}

/* P[j] = att[aoff[l] + i*T + j], j < T: row i of each lane's attention (T
 * need not be a multiple of HEAD_VW: the rest one float at a time) */
static inline __attribute__((always_inline)) void HEAD_NAME(att_row_in)(HEAD_VEC *restrict P, const float *att,
                                                                        const size_t *aoff, int i, int T)
{
    int j0 = 0;
    for (; j0 + HEAD_VW <= T; j0 += HEAD_VW) HEAD_NAME(block_in)(P + j0, att + (size_t)i * T + j0, aoff);
    for (int j = j0; j < T; j++)
#pragma GCC unroll 16
        for (int l = 0; l < HEAD_VW; l++) P[j][l] = att[aoff[l] + (size_t)i * T + j];
}

static inline __attribute__((always_inline)) void HEAD_NAME(att_row_out)(float *att, const size_t *aoff, int nl,
                                                                         const HEAD_VEC *restrict P, int i, int T)
{
    int j0 = 0;
    for (; j0 + HEAD_VW <= T; j0 += HEAD_VW) HEAD_NAME(block_out)(att + (size_t)i * T + j0, aoff, nl, P + j0, 0);
    for (int j = j0; j < T; j++)
        for (int l = 0; l < nl; l++) att[aoff[l] + (size_t)i * T + j] = P[j][l];
}

/* S[j] = sum_e A[e] B[j*HS + e], j < T: 8 rows j at a time, 8 chains */
static inline __attribute__((always_inline)) void HEAD_NAME(dots)(HEAD_VEC *restrict S, const HEAD_VEC *restrict A,
                                                                  const HEAD_VEC *restrict Bm, int T, int HS)
{
    int j = 0;
    for (; j + 8 <= T; j += 8) {
        HEAD_VEC s[8] = {0};
        for (int e = 0; e < HS; e++)
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++) s[u] += A[e] * Bm[(j + u) * HS + e];
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++) S[j + u] = s[u];
    }
    for (; j < T; j++) {
        HEAD_VEC s = {0}, s2 = {0};
        for (int e = 0; e < HS; e += 2) { /* HS is even */
            s += A[e] * Bm[j * HS + e];
            s2 += A[e + 1] * Bm[j * HS + e + 1];
        }
        S[j] = s + s2;
    }
}

/* O[e] = sum_j W[j*ws] Bm[j*HS + e], e < HS: HEAD_VW columns e at a time,
 * their sums in registers */
static inline __attribute__((always_inline)) void HEAD_NAME(combine)(HEAD_VEC *restrict O, const HEAD_VEC *restrict W,
                                                                     int ws, const HEAD_VEC *restrict Bm, int T,
                                                                     int HS)
{
    for (int e0 = 0; e0 < HS; e0 += HEAD_VW) {
        HEAD_VEC o[HEAD_VW] = {0};
        for (int j = 0; j < T; j++)
#pragma GCC unroll 16
            for (int e = 0; e < HEAD_VW; e++) o[e] += W[j * ws] * Bm[j * HS + e0 + e];
#pragma GCC unroll 16
        for (int e = 0; e < HEAD_VW; e++) O[e0 + e] = o[e];
    }
}

/* *px = exp_neg (nn/attention.c) of each lane */
static inline __attribute__((always_inline)) void HEAD_NAME(vexp_neg)(HEAD_VEC *px)
{
    HEAD_VEC x = *px;
    const HEAD_VEC lo = (HEAD_VEC){0} - 87.0f;
    const HEAD_VI below = (HEAD_VI)(x < lo); /* false for a NaN, which stays NaN */
    x = (HEAD_VEC)(((HEAD_VI)x & ~below) | ((HEAD_VI)lo & below));
    const float magic = 12582912.0f;
    const HEAD_VEC t = x * 1.44269504f + magic;
    const HEAD_VEC n = t - magic;
    HEAD_VEC r = x - n * 0.693145752f;
    r = r - n * 1.42860677e-06f;
    HEAD_VEC p = r * (1.0f / 720.0f) + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const HEAD_VI bits = ((HEAD_VI)t - 0x4B400000 + 127) << 23;
    *px = p * (HEAD_VEC)bits;
}

/* *m = max(*m, b) in each lane */
static inline __attribute__((always_inline)) void HEAD_NAME(vmax)(HEAD_VEC *m, const HEAD_VEC *b)
{
    const HEAD_VI gt = (HEAD_VI)(*b > *m);
    *m = (HEAD_VEC)(((HEAD_VI)*b & gt) | ((HEAD_VI)*m & ~gt));
}

#define LANE_MAXT 32
#define LANE_MAXHS 32

HEAD_ATTR static void HEAD_NAME(lanes_forward)(float *o, float *att, const float *q, const float *k, const float *v,
                                               const size_t *off, const size_t *aoff, int nl, int T, int HS, int C,
                                               float scale)
{
    /* K, V (T x HS each) packed one after the other, so that only what this
     * head needs is touched (arrays sized for the largest head lie 64 KB
     * apart) */
    HEAD_VEC buf[2 * LANE_MAXT * LANE_MAXHS], Q[LANE_MAXHS], O[LANE_MAXHS], P[LANE_MAXT];
    HEAD_VEC *K = buf, *V = buf + T * HS;
    HEAD_NAME(gather)(K, k, off, 0, T, HS, C);
    HEAD_NAME(gather)(V, v, off, 0, T, HS, C);
    for (int i = 0; i < T; i++) {
        HEAD_NAME(gather)(Q, q, off, i, 1, HS, C);
        HEAD_NAME(dots)(P, Q, K, T, HS);
        HEAD_VEC m = P[0];
        for (int j = 1; j < T; j++) HEAD_NAME(vmax)(&m, &P[j]);
        HEAD_VEC sum = {0};
        for (int j = 0; j < T; j++) {
            P[j] = (P[j] - m) * scale;
            HEAD_NAME(vexp_neg)(&P[j]);
            sum += P[j];
        }
        const HEAD_VEC inv = 1.0f / sum;
        for (int j = 0; j < T; j++) P[j] *= inv;
        HEAD_NAME(att_row_out)(att, aoff, nl, P, i, T);
        HEAD_NAME(combine)(O, P, 1, V, T, HS);
        HEAD_NAME(scatter)(o, off, nl, O, i, 1, HS, C, 0);
    }
}

/* The backward in two passes, so that no T x HS sum is read and written
 * back per row (as rank-1 updates, those loads and stores took 28% of the
 * time): row by row, dS_i and dq_i; then dv_j = sum_i P[i][j] g_i and
 * dk_j = sum_i dS[i][j] q_i, each a sum held in registers. */
HEAD_ATTR static void HEAD_NAME(lanes_backward)(float *dq, float *dk, float *dv, const float *g, const float *q,
                                                const float *k, const float *v, const float *att, const size_t *off,
                                                const size_t *aoff, int nl, int T, int HS, int C, float scale,
                                                int set)
{
    /* each lane's rows of dq, dk, dv are its own: stored, or added (set: ATT_SET_*) */
    const int addq = !(set & ATT_SET_Q), addk = !(set & ATT_SET_K), addv = !(set & ATT_SET_V);
    HEAD_VEC buf[4 * LANE_MAXT * LANE_MAXHS + 2 * LANE_MAXT * LANE_MAXT], D[LANE_MAXHS];
    const int n = T * HS;
    /* packed (as in the forward): K, V, G, Q [T][HS], P, dS [T][T] */
    HEAD_VEC *K = buf, *V = K + n, *G = V + n, *Q = G + n, *P = Q + n, *dS = P + T * T;
    if (dq) HEAD_NAME(gather)(K, k, off, 0, T, HS, C);
    if (dq || dk) HEAD_NAME(gather)(V, v, off, 0, T, HS, C);
    if (dk) HEAD_NAME(gather)(Q, q, off, 0, T, HS, C);
    HEAD_NAME(gather)(G, g, off, 0, T, HS, C);
    for (int i = 0; i < T; i++) {
        HEAD_VEC *Pi = P + i * T, *dSi = dS + i * T;
        HEAD_NAME(att_row_in)(Pi, att, aoff, i, T);
        if (!dq && !dk) continue;
        HEAD_NAME(dots)(dSi, G + i * HS, V, T, HS); /* dP_i = g_i vᵀ */
        HEAD_VEC dot = {0}, dot2 = {0};
        int j = 0;
        for (; j + 1 < T; j += 2) dot += Pi[j] * dSi[j], dot2 += Pi[j + 1] * dSi[j + 1];
        if (j < T) dot += Pi[j] * dSi[j];
        dot += dot2;
        for (j = 0; j < T; j++) dSi[j] = Pi[j] * (dSi[j] - dot) * scale;
        if (dq) {
            HEAD_NAME(combine)(D, dSi, 1, K, T, HS); /* dq_i = dS_i k */
            HEAD_NAME(scatter)(dq, off, nl, D, i, 1, HS, C, addq);
        }
    }
    for (int j = 0; j < T; j++) {
        if (dv) {
            HEAD_NAME(combine)(D, P + j, T, G, T, HS); /* dv_j = sum_i P[i][j] g_i */
            HEAD_NAME(scatter)(dv, off, nl, D, j, 1, HS, C, addv);
        }
        if (dk) {
            HEAD_NAME(combine)(D, dS + j, T, Q, T, HS); /* dk_j = sum_i dS[i][j] q_i */
            HEAD_NAME(scatter)(dk, off, nl, D, j, 1, HS, C, addk);
        }
    }
}

#undef LANE_MAXT
#undef LANE_MAXHS
#undef TRM
#undef TRMASK
#undef HLD
#undef HST
#undef HEAD_VEC
#undef HEAD_VECU
#undef HEAD_VI
#undef HEAD_VW
#undef HEAD_ATTR
#undef HEAD_NAME
