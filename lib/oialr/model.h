/*
 * oialr/model.h — models built from a spec string, run as a graph of layer
 * nodes over one parameter buffer (oialr/params.h) and one activation arena
 * sized once for the largest batch: nothing is allocated in a step.
 *
 * Spec grammar (docs/models.md has the layer names and defaults):
 *   mlp:H1,H2,...[,act=relu|gelu|tanh][,dropout=P]     e.g. mlp:512,512
 *   cnn:W1,W2,...[,blocks=N][,act=relu|gelu|tanh]       a small ResNet; "cnn"
 *                                                      = cnn:16,32,64,blocks=1
 *   vit:patch=P,dim=D,depth=L,heads=H,mlp=M[,pool=cls|mean]   "vit" =
 *       vit:patch=7,dim=64,depth=4,heads=4,mlp=128,pool=cls
 */
#ifndef OIALR_MODEL_H
#define OIALR_MODEL_H

#include "oialr/base.h"
#include "oialr/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct oialr_model oialr_model;

/* Build a model for inputs of shape c x h x w and nclass outputs; weights
 * initialised as PyTorch does by default (Kaiming-uniform a=sqrt(5) weights,
 * uniform(+-1/sqrt(fan_in)) biases) from seed. max_batch sizes the arena. */
OIALR_API int oialr_model_create(oialr_model **out, const char *spec, int c, int h, int w, int nclass,
                                 int max_batch, uint64_t seed);
OIALR_API void oialr_model_free(oialr_model *m);

/* The model's parameter table and buffer (owned by the model). */
OIALR_API oialr_params *oialr_model_params(oialr_model *m);
/* The spec it was built from, normalised (all defaults spelled out). */
OIALR_API const char *oialr_model_spec(const oialr_model *m);
/* One line per node, for --verbose and docs. */
OIALR_API void oialr_model_describe(const oialr_model *m, FILE *f);
/* Floating-point operations of a forward pass for one sample. */
OIALR_API double oialr_model_flops(const oialr_model *m);
/* Which layer kernels this CPU runs, one line: "avx512: ...", "avx2: ..." or
 * "blas: ..." (chosen at load time by the CPU's vector level, or by
 * OIALR_KERNELS=blas|avx2|avx512; docs/layers.md). */
OIALR_API const char *oialr_kernels_name(void);
/* OIALR_ERR_ARG (with oialr_errmsg) if OIALR_KERNELS holds another value
 * than those; the library itself then takes the CPU's choice. OIALR_OK
 * otherwise (also when unset). */
OIALR_API int oialr_kernels_env_check(void);

/* Forward pass on x [B, c*h*w]; if y != NULL compute the mean loss and the
 * number of correct predictions. train=1 uses dropout / batch statistics. */
OIALR_API int oialr_model_forward(oialr_model *m, const float *x, const uint8_t *y, int B, int train,
                                  float *loss, int *correct);
/* Backward of the last forward (which must have had train=1 and y):
 * gradients are zeroed, then accumulated. */
OIALR_API int oialr_model_backward(oialr_model *m);
/* Logits of the last forward, [B, nclass]. */
OIALR_API const float *oialr_model_logits(const oialr_model *m);

/* Label smoothing of the training loss, 0 (none) to < 1. */
OIALR_API void oialr_model_set_label_smoothing(oialr_model *m, float s);
/* Dropout RNG state (part of a checkpoint). */
OIALR_API oialr_rng *oialr_model_rng(oialr_model *m);

#ifdef __cplusplus
}
#endif
#endif
