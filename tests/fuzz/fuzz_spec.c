/*
 * fuzz_spec.c — the model-spec parsers (lib/model/spec.c, spec_mlp.c,
 * spec_cnn.c, spec_vit.c) and the graph they build, on any string and any
 * small input shape.
 *
 * Input: byte 0 gives the channels (1 + b % 3), byte 1 the height and
 * byte 2 the width (1 + b % 40 each), byte 3 the classes (2 + b % 19); the
 * rest is the spec, cut at its first NUL.
 *
 * Every spec is parsed and its graph built (the family's spec_build_*,
 * as oialr_model_create does, without allocating the arenas). A model
 * within the harness's budget (2^18 parameters, 2^20 activation floats,
 * 2 MFLOP a sample: the fuzzer's time, not a limit of the library) is then
 * created for real, its normalised spec is checked to parse to itself,
 * and one forward and backward pass run on a batch of two.
 */
#include "fuzz.h"

#include <string.h>

#include "model/graph.h"

#define MAX_PARAMS ((size_t)1 << 18)
#define MAX_ACT ((size_t)1 << 20)
#define MAX_FLOPS 2e6
#define BATCH 2

/* The graph of spec without its arenas (as oialr_model_create up to
 * graph_finalize), then 1 if a real model of it is within budget. */
static int small_enough(const char *spec, int c, int h, int w, int nclass) {
    const char *colon = strchr(spec, ':');
    size_t flen = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *args = colon ? colon + 1 : "";
    int (*build)(oialr_model *, const char *) = NULL;
    if (flen == 3 && !strncmp(spec, "mlp", 3)) build = spec_build_mlp;
    if (flen == 3 && !strncmp(spec, "cnn", 3)) build = spec_build_cnn;
    if (flen == 3 && !strncmp(spec, "vit", 3)) build = spec_build_vit;
    if (!build || strlen(spec) >= sizeof ((oialr_model *)0)->spec) return 1; /* refused before any graph */
    oialr_model *m = calloc(1, sizeof *m);
    if (!m) return 0;
    m->c = c;
    m->h = h;
    m->w = w;
    m->nclass = nclass;
    m->max_batch = BATCH;
    int rc = graph_input(m);
    if (rc >= 0) rc = build(m, args);
    int ok = 1;
    if (rc >= 0) {
        FUZZ_ASSERT(m->nnodes > 1 && strlen(m->spec) < sizeof m->spec);
        size_t params = 0, act = 0;
        for (int i = 0; i < m->params.count; i++) params += m->params.info[i].size;
        for (int i = 0; i < m->nnodes; i++) {
            FUZZ_ASSERT(m->nodes[i].shape[0] > 0 && m->nodes[i].shape[1] > 0 && m->nodes[i].shape[2] > 0);
            act += m->nodes[i].size + m->nodes[i].save_per_sample;
        }
        ok = params <= MAX_PARAMS && act * BATCH <= MAX_ACT && m->flops <= MAX_FLOPS;
    }
    oialr_model_free(m);
    return ok;
}

static void run(oialr_model *m, int c, int h, int w, int nclass, const uint8_t *seed, size_t nseed) {
    size_t per = (size_t)c * h * w;
    float *x = malloc(BATCH * per * sizeof *x);
    uint8_t y[BATCH] = {0, (uint8_t)(nclass - 1)};
    if (!x) return;
    for (size_t i = 0; i < BATCH * per; i++) x[i] = nseed ? (float)seed[i % nseed] / 64.0f - 2.0f : 0.5f;
    float loss = 0.0f;
    int correct = -1;
    if (oialr_model_forward(m, x, y, BATCH, 1, &loss, &correct) == OIALR_OK) {
        FUZZ_ASSERT(correct >= 0 && correct <= BATCH);
        (void)oialr_model_backward(m);
    }
    (void)oialr_model_forward(m, x, NULL, BATCH, 0, NULL, NULL);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    if (size < 4) return 0;
    int c = 1 + data[0] % 3, h = 1 + data[1] % 40, w = 1 + data[2] % 40, nclass = 2 + data[3] % 19;
    data += 4;
    size -= 4;
    char *spec = malloc(size + 1);
    if (!spec) return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    if (small_enough(spec, c, h, w, nclass)) {
        oialr_model *m = NULL;
        int rc = oialr_model_create(&m, spec, c, h, w, nclass, BATCH, 1);
        if (rc) {
            FUZZ_ASSERT(rc < 0 && !m);
        } else {
            /* the normalised spec (what a trajectory records) builds the same model */
            char norm[sizeof m->spec];
            snprintf(norm, sizeof norm, "%s", oialr_model_spec(m));
            oialr_model *m2 = NULL;
            FUZZ_ASSERT(oialr_model_create(&m2, norm, c, h, w, nclass, BATCH, 1) == OIALR_OK);
            FUZZ_ASSERT(strcmp(oialr_model_spec(m2), norm) == 0);
            FUZZ_ASSERT(oialr_model_params(m2)->total == oialr_model_params(m)->total);
            oialr_model_free(m2);
            run(m, c, h, w, nclass, data, size);
            oialr_model_free(m);
        }
    }
    free(spec);
    return 0;
}
