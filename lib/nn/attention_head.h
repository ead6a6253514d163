/*
 * nn/attention_head.h — the fused per-head kernels (nn/attention.c), written
 * once for a vector of HEAD_VW floats and included by attention.c once per
 * width: 16 (AVX-512; the OIALR_HOT clones) and 8 (AVX2; nn_simd). A row of
 * ATT_TP = 32 scores is ATT_TP / HEAD_VW vectors, a row of q, k, v, out is
 * HS / HEAD_VW of them.
 *
 * Before including: HEAD_VEC (the vector type), HEAD_VECU (its unaligned,
 * aliasing view), HEAD_VW, HEAD_ATTR (the functions' attributes) and
 * HEAD_NAME(x) (x with the width's suffix). All are undefined at the end.
 */
#define HEAD_NV (ATT_TP / HEAD_VW)
#define HLD(p) (*(const HEAD_VECU *)(p))
#define HST(p, v) (*(HEAD_VECU *)(p) = (v))

static inline float HEAD_NAME(hsum)(HEAD_VEC v)
{
    float s = 0.0f;
    for (int l = 0; l < HEAD_VW; l++) s += v[l];
    return s;
}

/* *acc += sum over j < T of w[j] * x[j*C .. j*C + HEAD_VW), the even and odd
 * j in two chains of adds (one chain was bound by the add latency); inlined
 * into each build (no vector passes by value) */
static inline __attribute__((always_inline)) void HEAD_NAME(row_axpy)(float *restrict acc, const float *restrict w,
                                                                      const float *restrict x, int T, int C)
{
    HEAD_VEC a = HLD(acc), a2 = {0};
    int j = 0;
    for (; j + 1 < T; j += 2) {
        a += w[j] * HLD(x + (size_t)j * C);
        a2 += w[j + 1] * HLD(x + (size_t)(j + 1) * C);
    }
    if (j < T) a += w[j] * HLD(x + (size_t)j * C);
    HST(acc, a + a2);
}

/* One head: q, k, v, o rows of HS floats C apart; a [T, T]. */
HEAD_ATTR static void HEAD_NAME(head_forward)(float *restrict o, float *restrict a, const float *restrict q,
                                              const float *restrict k, const float *restrict v, int T, int HS,
                                              int C, float scale)
{
    float kt[ATT_MAXHS * ATT_TP], r[ATT_TP];
    pack_t(kt, k, T, HS, C);
    for (int i = 0; i < T; i++) {
        const float *qi = q + (size_t)i * C;
        HEAD_VEC s[HEAD_NV], s2[HEAD_NV]; /* even and odd e: two chains of adds */
#pragma GCC unroll 4
        for (int n = 0; n < HEAD_NV; n++) s[n] = (HEAD_VEC){0}, s2[n] = (HEAD_VEC){0};
        for (int e = 0; e < HS; e += 2) { /* HS is a multiple of 16 */
            const float qe = qi[e] * scale, qf = qi[e + 1] * scale;
#pragma GCC unroll 4
            for (int n = 0; n < HEAD_NV; n++) {
                s[n] += qe * HLD(kt + e * ATT_TP + n * HEAD_VW);
                s2[n] += qf * HLD(kt + (e + 1) * ATT_TP + n * HEAD_VW);
            }
        }
#pragma GCC unroll 4
        for (int n = 0; n < HEAD_NV; n++) HST(r + n * HEAD_VW, s[n] + s2[n]);
        float m = r[0];
        for (int j = 1; j < T; j++) m = r[j] > m ? r[j] : m;
        for (int j = 0; j < ATT_TP; j++) r[j] = j < T ? exp_neg(r[j] - m) : 0.0f;
        HEAD_VEC rs = HLD(r);
#pragma GCC unroll 4
        for (int n = 1; n < HEAD_NV; n++) rs += HLD(r + n * HEAD_VW);
        const float inv = 1.0f / HEAD_NAME(hsum)(rs);
#pragma GCC unroll 4
        for (int n = 0; n < HEAD_NV; n++) HST(r + n * HEAD_VW, HLD(r + n * HEAD_VW) * inv);
        memcpy(a + (size_t)i * T, r, sizeof(float) * (size_t)T);
        for (int e0 = 0; e0 < HS; e0 += HEAD_VW) {
            float *oi = o + (size_t)i * C + e0;
            HST(oi, (HEAD_VEC){0});
            HEAD_NAME(row_axpy)(oi, r, v + e0, T, C);
        }
    }
}

HEAD_ATTR static void HEAD_NAME(head_backward)(float *restrict dq, float *restrict dk, float *restrict dv,
                                               const float *restrict g, const float *restrict q,
                                               const float *restrict k, const float *restrict v,
                                               const float *restrict a, int T, int HS, int C, float scale)
{
    float vt[ATT_MAXHS * ATT_TP], dkl[ATT_TP * ATT_MAXHS], dvl[ATT_TP * ATT_MAXHS], p[ATT_TP], ds[ATT_TP];
    const int n = T * HS;
    for (int x = 0; x < n; x++) dkl[x] = 0.0f, dvl[x] = 0.0f;
    if (dq || dk) pack_t(vt, v, T, HS, C);
    for (int i = 0; i < T; i++) {
        const float *ai = a + (size_t)i * T, *gi = g + (size_t)i * C, *qi = q + (size_t)i * C;
        memcpy(p, ai, sizeof(float) * (size_t)T);
        memset(p + T, 0, sizeof(float) * (size_t)(ATT_TP - T));
        if (dv)
            for (int j = 0; j < T; j++)
                for (int e0 = 0; e0 < HS; e0 += HEAD_VW) {
                    float *d = dvl + j * HS + e0;
                    HST(d, HLD(d) + p[j] * HLD(gi + e0));
                }
        if (!dq && !dk) continue;
        HEAD_VEC dp[HEAD_NV]; /* dP_i = g_i vᵀ */
#pragma GCC unroll 4
        for (int b = 0; b < HEAD_NV; b++) dp[b] = (HEAD_VEC){0};
        HEAD_VEC dp2[HEAD_NV];
#pragma GCC unroll 4
        for (int b = 0; b < HEAD_NV; b++) dp2[b] = (HEAD_VEC){0};
        for (int e = 0; e < HS; e += 2) {
            const float ge = gi[e], gf = gi[e + 1];
#pragma GCC unroll 4
            for (int b = 0; b < HEAD_NV; b++) {
                dp[b] += ge * HLD(vt + e * ATT_TP + b * HEAD_VW);
                dp2[b] += gf * HLD(vt + (e + 1) * ATT_TP + b * HEAD_VW);
            }
        }
#pragma GCC unroll 4
        for (int b = 0; b < HEAD_NV; b++) dp[b] += dp2[b];
        HEAD_VEC pd = HLD(p) * dp[0];
#pragma GCC unroll 4
        for (int b = 1; b < HEAD_NV; b++) pd += HLD(p + b * HEAD_VW) * dp[b];
        const float dot = HEAD_NAME(hsum)(pd);
#pragma GCC unroll 4
        for (int b = 0; b < HEAD_NV; b++) HST(ds + b * HEAD_VW, HLD(p + b * HEAD_VW) * (dp[b] - dot) * scale);
        if (dq)
            for (int e0 = 0; e0 < HS; e0 += HEAD_VW) HEAD_NAME(row_axpy)(dq + (size_t)i * C + e0, ds, k + e0, T, C);
        if (dk)
            for (int j = 0; j < T; j++)
                for (int e0 = 0; e0 < HS; e0 += HEAD_VW) {
                    float *d = dkl + j * HS + e0;
                    HST(d, HLD(d) + ds[j] * HLD(qi + e0));
                }
    }
    for (int j = 0; j < T; j++)
        for (int e0 = 0; e0 < HS; e0 += HEAD_VW) {
            if (dk) HST(dk + (size_t)j * C + e0, HLD(dk + (size_t)j * C + e0) + HLD(dkl + j * HS + e0));
            if (dv) HST(dv + (size_t)j * C + e0, HLD(dv + (size_t)j * C + e0) + HLD(dvl + j * HS + e0));
        }
}

#undef HLD
#undef HST
#undef HEAD_NV
#undef HEAD_VEC
#undef HEAD_VECU
#undef HEAD_VW
#undef HEAD_ATTR
#undef HEAD_NAME
