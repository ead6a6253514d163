/*
 * nn/embed.h — the token layers of a vision transformer: patch embedding,
 * class token, learned position embedding, and pooling tokens to one vector.
 *
 * Conventions of nn/nn.h. Letters: B batch, C image channels, H/W image
 * size, P patch size, GH = H/P, GW = W/P (floor: trailing pixels dropped, as
 * a stride-P conv does), NP = GH*GW patches, T tokens, D model width,
 * CPP = C*P*P.
 *
 * Patch embedding is a conv with kernel = stride = P, computed as
 * "patchify + dense": out[B,NP,D] = X[B*NP, CPP] @ w[D,CPP]ᵀ + b[D], where row
 * (b, gh*GW+gw) of X is the patch in (c, ph, pw) order. So w has PyTorch's
 * conv layout [D, C, P, P] and its matrix view is D x CPP. Tokens come out in
 * row-major patch order, as PyTorch's conv(...).flatten(2).transpose(1, 2).
 */
#ifndef OIALR_NN_EMBED_H
#define OIALR_NN_EMBED_H

#include <stddef.h>

/* --- patch embedding -------------------------------------------------------- */
/* Floats of scratch for forward and backward: 2*B*NP*CPP (the patchified X
 * and its gradient dX). */
size_t patch_embed_scratch_size(int B, int C, int H, int W, int P);
void patch_embed_forward(float *out, const float *inp, const float *w, const float *b, float *scratch, int B,
                         int C, int H, int W, int P, int D);
/* dinp[B,C,H,W] (may be NULL: usually the first layer), dw[D,CPP], db[D] += */
void patch_embed_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, float *scratch, int B, int C, int H, int W, int P, int D);
void patch_embed_forward_naive(float *out, const float *inp, const float *w, const float *b, int B, int C,
                               int H, int W, int P, int D);
void patch_embed_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                const float *w, int B, int C, int H, int W, int P, int D);

/* --- class token: out[B,T+1,D], row 0 = cls[D], rows 1.. = inp[B,T,D] ------ */
void cls_token_forward(float *out, const float *inp, const float *cls, int B, int T, int D);
/* dinp[B,T,D] += dout rows 1..; dcls[D] += sum over b of dout row 0 */
void cls_token_backward(float *dinp, float *dcls, const float *dout, int B, int T, int D);

/* --- learned position embedding: out[B,T,D] = inp + pos[T,D] (out may be inp) */
void pos_embed_forward(float *out, const float *inp, const float *pos, int B, int T, int D);
/* dinp[B,T,D] += dout (may be NULL); dpos[T,D] += sum over b of dout */
void pos_embed_backward(float *dinp, float *dpos, const float *dout, int B, int T, int D);

/* --- pooling tokens to the classifier input ----------------------------------
 * token_mean: out[B,D] = mean over t of inp[B,T,D];
 * token_pick: out[B,D] = inp[b, t, :] (t = 0 picks the class token). */
void token_mean_forward(float *out, const float *inp, int B, int T, int D);
void token_mean_backward(float *dinp, const float *dout, int B, int T, int D);
void token_pick_forward(float *out, const float *inp, int t, int B, int T, int D);
void token_pick_backward(float *dinp, const float *dout, int t, int B, int T, int D);

#endif /* OIALR_NN_EMBED_H */
