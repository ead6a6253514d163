/*
 * nn/norm.h — batch norm over NCHW channels, layer norm over the last dim.
 *
 * Conventions of nn/nn.h. Letters: B batch, C channels, HW pixels per plane
 * (H*W; 1 after a dense layer, i.e. BatchNorm1d), N rows, D row width.
 * weight (gamma) and bias (beta) are 1-D: not matrices, never recorded as
 * such, trained as usual under OIALR.
 */
#ifndef OIALR_NN_NORM_H
#define OIALR_NN_NORM_H

#include <stddef.h>

/* --- batch norm 2d ----------------------------------------------------------
 * Train: per channel c, mean and biased variance over B*HW values;
 *     out = (x - mean) * rstd * weight[c] + bias[c],  rstd = 1/sqrt(var + eps)
 * saves mean[C] and rstd[C] for the backward, and (if running_mean and
 * running_var are not NULL) updates them as PyTorch does:
 *     running_mean = (1-momentum)*running_mean + momentum*mean
 *     running_var  = (1-momentum)*running_var  + momentum*var*n/(n-1)
 * (unbiased, n = B*HW; with n == 1 the unbiased var is taken as var). PyTorch's
 * defaults are eps = 1e-5, momentum = 0.1, running_mean = 0, running_var = 1.
 * Eval: out = (x - running_mean) / sqrt(running_var + eps) * weight + bias. */
void batchnorm2d_forward_train(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                               const float *inp, const float *weight, const float *bias, int B, int C, int HW,
                               float eps, float momentum);
void batchnorm2d_forward_eval(float *out, const float *inp, const float *weight, const float *bias,
                              const float *running_mean, const float *running_var, int B, int C, int HW,
                              float eps);
/* Backward of the train-mode forward (batch statistics depend on x):
 * dinp[B,C,HW] += ..., dweight[C] += ..., dbias[C] += ... (dinp may be NULL). */
void batchnorm2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *mean, const float *rstd, const float *weight, int B, int C, int HW);
/* Batch norm and a ReLU after it in one pass (the ReLU's output,
 * max(0, bn(x)); the norm's own output is not written): relu = 1. relu = 0
 * is the plain norm. */
void batchnorm2d_forward_train_act(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                                   const float *inp, const float *weight, const float *bias, int B, int C, int HW,
                                   float eps, float momentum, int relu);
void batchnorm2d_forward_eval_act(float *out, const float *inp, const float *weight, const float *bias,
                                  const float *running_mean, const float *running_var, int B, int C, int HW,
                                  float eps, int relu);
/* The backward of either: with relu = 1 dout is the fused ReLU's gradient,
 * masked where the ReLU gave 0 (recomputed from inp, mean, rstd, weight and
 * bias exactly as the forward computed it); relu = 0: the plain norm (bias
 * unused, may be NULL). set: dinp = ... instead of += (an input gradient
 * nobody else writes, not zeroed). */
void batchnorm2d_backward_act(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *mean, const float *rstd, const float *weight, const float *bias, int B,
                              int C, int HW, int relu, int set);
/* References in double precision, same signatures. */
void batchnorm2d_forward_train_naive(float *out, float *mean, float *rstd, float *running_mean,
                                     float *running_var, const float *inp, const float *weight, const float *bias,
                                     int B, int C, int HW, float eps, float momentum);
void batchnorm2d_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *mean, const float *rstd, const float *weight, int B, int C, int HW);

/* --- layer norm over the last dim --------------------------------------------
 * out[N,D] = (x - mean_row) * rstd_row * weight[D] + bias[D], biased variance,
 * saves mean[N], rstd[N]. PyTorch's default eps = 1e-5. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int D, float eps);
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *mean, const float *rstd, const float *weight, int N, int D);
void layernorm_forward_naive(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                             const float *bias, int N, int D, float eps);
void layernorm_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *mean, const float *rstd, const float *weight, int N, int D);

#endif /* OIALR_NN_NORM_H */
