/*
 * graph.c — building a model graph, allocating its arenas once, and running
 * forward and backward over the node list. The layers themselves are in
 * lib/nn/, wired in by the op table in ops.c.
 */
#include "model/graph.h"
#include "nn/nn.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * building */

int graph_param(oialr_model *m, const char *name, const char *layer, int kind, int ndim, const int64_t *shape,
                int init, float a) {
    int i = params_add(&m->params, name, layer, kind, ndim, shape);
    if (i < 0) return i;
    int *ni = realloc(m->init, (size_t)m->params.capacity * sizeof *ni);
    if (!ni) return OIALR_ERR_NOMEM;
    m->init = ni;
    float *na = realloc(m->init_a, (size_t)m->params.capacity * sizeof *na);
    if (!na) return OIALR_ERR_NOMEM;
    m->init_a = na;
    m->init[i] = init;
    m->init_a[i] = a;
    return i;
}

int graph_node(oialr_model *m, int op, const char *name, int in0, int in1, int d0, int d1, int d2) {
    if (m->nnodes == m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        node *n = realloc(m->nodes, (size_t)cap * sizeof *n);
        if (!n) return OIALR_ERR_NOMEM;
        m->nodes = n;
        m->cap = cap;
    }
    node *n = &m->nodes[m->nnodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->name, sizeof n->name, "%s", name ? name : oialr_ops[op]->name);
    n->in0 = in0;
    n->in1 = in1;
    n->in2 = -1;
    n->shape[0] = d0;
    n->shape[1] = d1;
    n->shape[2] = d2;
    n->size = (size_t)d0 * (size_t)d1 * (size_t)d2;
    for (int i = 0; i < NODE_PARAMS; i++) n->param.slot[i] = -1;
    return m->nnodes++;
}

int graph_input(oialr_model *m) { return graph_node(m, OP_INPUT, "input", -1, -1, m->c, m->h, m->w); }

/* A dense layer applied to every token of a token-shaped input (T, D, 1),
 * or to the flattened input otherwise. */
int graph_dense_kind(oialr_model *m, const char *name, const char *layer, int in, int OC, int bias) {
    const node *src = &m->nodes[in];
    int tokens = src->tokens;
    int T = tokens ? src->shape[0] : 1;
    int C = tokens ? src->shape[1] : (int)src->size;
    char pname[OIALR_NAME_MAX];
    int64_t wshape[2] = {OC, C};
    snprintf(pname, sizeof pname, "%s.weight", name);
    int pw = graph_param(m, pname, layer, OIALR_PARAM_MATRIX, 2, wshape, INIT_UNIFORM_FAN_IN, (float)C);
    if (pw < 0) return pw;
    int pb = -1;
    if (bias) {
        int64_t bshape[1] = {OC};
        snprintf(pname, sizeof pname, "%s.bias", name);
        pb = graph_param(m, pname, layer, OIALR_PARAM_BIAS, 1, bshape, INIT_UNIFORM_FAN_IN, (float)C);
        if (pb < 0) return pb;
    }
    int id = tokens ? graph_node(m, OP_DENSE, name, in, -1, T, OC, 1) : graph_node(m, OP_DENSE, name, in, -1, OC, 1, 1);
    if (id < 0) return id;
    node *n = &m->nodes[id];
    n->tokens = tokens;
    n->param.affine.weight = pw;
    n->param.affine.bias = pb;
    n->arg.dense = (struct dense_args){.c = C, .oc = OC, .rows = T};
    m->flops += 2.0 * C * OC * T;
    return id;
}

int graph_dense(oialr_model *m, const char *name, int in, int OC, int bias) {
    return graph_dense_kind(m, name, "dense", in, OC, bias);
}

/* A node of the same shape as its input (activations, dropout, add). */
static int graph_same(oialr_model *m, int op, int in0, int in1) {
    const node *src = &m->nodes[in0];
    int id = graph_node(m, op, NULL, in0, in1, src->shape[0], src->shape[1], src->shape[2]);
    if (id >= 0) m->nodes[id].tokens = m->nodes[in0].tokens;
    return id;
}

int graph_act(oialr_model *m, int op, int in) { return graph_same(m, op, in, -1); }

int graph_dropout(oialr_model *m, int in, float p) {
    if (p <= 0.0f) return in;
    int id = graph_same(m, OP_DROPOUT, in, -1);
    if (id < 0) return id;
    m->nodes[id].arg.dropout.p = p;
    m->nodes[id].save_per_sample = m->nodes[id].size; /* the mask */
    return id;
}

int graph_add(oialr_model *m, int a, int b) {
    if (m->nodes[a].size != m->nodes[b].size) return oialr_seterr(OIALR_ERR_SPEC, "residual add of unequal sizes");
    return graph_same(m, OP_ADD, a, b);
}

static float *alloc_floats(size_t n) {
    size_t bytes;
    if (oialr_mul_size(n ? n : 1, sizeof(float), &bytes)) return NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static void init_params(oialr_model *m, uint64_t seed) {
    oialr_rng r;
    oialr_rng_seed(&r, seed, 1);
    for (int i = 0; i < m->params.count; i++) {
        float *d = m->params.data + m->params.info[i].offset;
        size_t n = m->params.info[i].size;
        float a = m->init_a[i];
        switch (m->init[i]) {
        case INIT_ZERO: memset(d, 0, n * sizeof *d); break;
        case INIT_ONE:
            for (size_t k = 0; k < n; k++) d[k] = 1.0f;
            break;
        case INIT_UNIFORM_FAN_IN: {
            float bound = 1.0f / sqrtf(a);
            for (size_t k = 0; k < n; k++) d[k] = (2.0f * oialr_rng_uniform(&r) - 1.0f) * bound;
            break;
        }
        case INIT_NORMAL:
            for (size_t k = 0; k < n; k++) d[k] = a * oialr_rng_normal(&r);
            break;
        default: OIALR_ASSERT(0 && "unknown init");
        }
    }
}

int graph_finalize(oialr_model *m, uint64_t seed) {
    int rc = params_alloc(&m->params);
    if (rc) return rc;
    size_t act = 0, save = 0, scratch = 0;
    for (int i = 1; i < m->nnodes; i++) {
        node *n = &m->nodes[i];
        n->off = act;
        size_t a;
        if (oialr_mul_size(n->size, (size_t)m->max_batch, &a)) return OIALR_ERR_OVERFLOW;
        act += (a + 15) & ~(size_t)15;
        n->save_off = save;
        save += ((n->save_per_sample * (size_t)m->max_batch + n->save_fixed) + 15) & ~(size_t)15;
    }
    m->act_total = act;
    m->save_total = save;
    /* the backward walks the nodes in reverse, so a node's gradient is first
     * written by its last consumer: zero it there, while it is about to be hot */
    for (int i = 1; i < m->nnodes; i++) {
        const node *n = &m->nodes[i];
        int ins[3] = {n->in0, n->in1, n->in2};
        for (int k = 0; k < 3; k++) {
            if (ins[k] >= 0 && m->nodes[ins[k]].last_consumer < i) m->nodes[ins[k]].last_consumer = i;
            if (ins[k] >= 0) m->nodes[ins[k]].consumers++;
        }
    }
    /* a gradient written (=) by its last consumer needs no zeroing pass: the
     * backward walks the nodes in reverse, so that one runs first and the
     * others add (not when the consumer reads the input in two slots, x + x) */
    for (int i = 1; i < m->nnodes; i++) {
        const node *n = &m->nodes[i];
        int ins[3] = {n->in0, n->in1, n->in2};
        for (int k = 0; k < 3; k++) {
            int twice = 0;
            for (int j = 0; j < 3; j++) twice |= j != k && ins[j] == ins[k];
            if (ins[k] > 0 && m->nodes[ins[k]].last_consumer == i && !twice && op_sets_input_grad(n, k))
                m->nodes[ins[k]].grad_set = 1;
        }
    }
    for (int i = 1; i < m->nnodes; i++) {
        const op_def *od = oialr_ops[m->nodes[i].op];
        if (od->scratch) {
            size_t s = od->scratch(m, &m->nodes[i], m->max_batch);
            if (s > scratch) scratch = s;
        }
    }
    m->scratch_total = scratch;
    m->act = alloc_floats(act);
    m->dact = alloc_floats(act);
    m->save = alloc_floats(save);
    m->scratch = alloc_floats(scratch);
    m->targets = calloc((size_t)m->max_batch, 1);
    m->probs = alloc_floats((size_t)m->max_batch * (size_t)m->nclass);
    if (!m->act || !m->dact || !m->save || !m->scratch || !m->targets || !m->probs) return OIALR_ERR_NOMEM;
    init_params(m, seed);
    oialr_rng_seed(&m->rng, seed, 2);
    return OIALR_OK;
}

/* ---------------------------------------------------------------------------
 * public API */

static const struct {
    const char *family;
    int (*build)(oialr_model *m, const char *args);
} families[] = {
    {"mlp", spec_build_mlp},
    {"cnn", spec_build_cnn},
    {"vit", spec_build_vit},
};

int oialr_model_create(oialr_model **out, const char *spec, int c, int h, int w, int nclass, int max_batch,
                       uint64_t seed) {
    *out = NULL;
    if (!spec || c <= 0 || h <= 0 || w <= 0 || nclass <= 1 || max_batch <= 0)
        return oialr_seterr(OIALR_ERR_ARG, "model: bad input shape, class count or batch size");
    size_t slen = strlen(spec);
    if (slen >= sizeof ((oialr_model *)0)->spec) /* the tokenizer and the recorded spec hold 255 */
        return oialr_seterr(OIALR_ERR_SPEC, "model spec is %zu characters long; at most %zu", slen,
                            sizeof ((oialr_model *)0)->spec - 1);
    oialr_model *m = calloc(1, sizeof *m);
    if (!m) return OIALR_ERR_NOMEM;
    m->c = c;
    m->h = h;
    m->w = w;
    m->nclass = nclass;
    m->max_batch = max_batch;
    const char *colon = strchr(spec, ':');
    size_t flen = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *args = colon ? colon + 1 : "";
    int rc = OIALR_ERR_SPEC;
    int found = 0;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        if (strlen(families[i].family) == flen && strncmp(spec, families[i].family, flen) == 0) {
            found = 1;
            rc = graph_input(m);
            if (rc >= 0) rc = families[i].build(m, args);
            break;
        }
    }
    if (!found) {
        rc = oialr_seterr(OIALR_ERR_SPEC, "unknown model family in '%s' (known: mlp, cnn, vit)", spec);
    }
    if (rc >= 0 && m->nodes[m->nnodes - 1].size != (size_t)nclass)
        rc = oialr_seterr(OIALR_ERR_SPEC, "model '%s' does not end in %d outputs", spec, nclass);
    if (rc >= 0) rc = graph_finalize(m, seed);
    if (rc < 0) {
        oialr_model_free(m);
        return rc;
    }
    if (!m->spec[0]) snprintf(m->spec, sizeof m->spec, "%s", spec);
    *out = m;
    return OIALR_OK;
}

void oialr_model_free(oialr_model *m) {
    if (!m) return;
    for (int i = 0; i < m->nnodes; i++) lowrank_free(m->nodes[i].lr);
    params_free(&m->params);
    free(m->init);
    free(m->init_a);
    free(m->nodes);
    free(m->act);
    free(m->dact);
    free(m->save);
    free(m->scratch);
    free(m->targets);
    free(m->probs);
    free(m);
}

oialr_params *oialr_model_params(oialr_model *m) { return &m->params; }
const char *oialr_model_spec(const oialr_model *m) { return m->spec; }
double oialr_model_flops(const oialr_model *m) { return m->flops; }
const float *oialr_model_logits(const oialr_model *m) { return m->act + m->nodes[m->nnodes - 1].off; }
void oialr_model_set_label_smoothing(oialr_model *m, float s) { m->smoothing = s; }
oialr_rng *oialr_model_rng(oialr_model *m) { return &m->rng; }

void oialr_model_describe(const oialr_model *m, FILE *f) {
    for (int i = 0; i < m->nnodes; i++) {
        const node *n = &m->nodes[i];
        fprintf(f, "  %-20s %-10s out=(%d,%d,%d)", n->name, oialr_ops[n->op]->name, n->shape[0], n->shape[1],
                n->shape[2]);
        for (int k = 0; k < NODE_PARAMS; k++) {
            if (n->param.slot[k] < 0) continue;
            const oialr_param_info *pi = &m->params.info[n->param.slot[k]];
            fprintf(f, "  %s[%lldx%lld]", pi->name, (long long)pi->rows, (long long)pi->cols);
        }
        fputc('\n', f);
    }
    size_t total = 0;
    for (int i = 0; i < m->params.count; i++)
        if (m->params.info[i].kind != OIALR_PARAM_BUFFER) total += m->params.info[i].size;
    fprintf(f, "  parameters: %zu, forward MFLOP/sample: %.2f\n", total, m->flops / 1e6);
}

int oialr_model_forward(oialr_model *m, const float *x, const uint8_t *y, int B, int train, float *loss,
                        int *correct) {
    if (B <= 0 || B > m->max_batch)
        return oialr_seterr(OIALR_ERR_ARG, "batch %d outside 1..%d", B, m->max_batch);
    m->x_in = x;
    m->B = B;
    m->last_train = train;
    for (int i = 1; i < m->nnodes; i++) oialr_ops[m->nodes[i].op]->forward(m, &m->nodes[i], B, train);
    m->have_targets = y != NULL;
    if (y) {
        for (int b = 0; b < B; b++)
            if (y[b] >= m->nclass) return oialr_seterr(OIALR_ERR_ARG, "label %d >= %d classes", y[b], m->nclass);
        memcpy(m->targets, y, (size_t)B);
        float l = softmax_xent_forward(m->probs, correct, oialr_model_logits(m), m->targets, B, m->nclass,
                                       m->smoothing);
        if (loss) *loss = l;
        if (!isfinite(l)) return oialr_seterr(OIALR_ERR_NUMERIC, "loss is %f", (double)l);
    }
    return OIALR_OK;
}

int oialr_model_backward(oialr_model *m) {
    if (!m->have_targets || !m->last_train)
        return oialr_seterr(OIALR_ERR_ARG, "backward needs a training forward pass with labels");
    int B = m->B;
    /* the floats in use only: a low-rank weight's slot is mostly idle */
    for (int i = 0; i < m->params.count; i++) {
        const oialr_param_info *pi = &m->params.info[i];
        memset(m->params.grad + pi->offset, 0, pi->size * sizeof(float));
    }
    node *last = &m->nodes[m->nnodes - 1];
    memset(node_dout(m, last), 0, (size_t)B * last->size * sizeof(float));
    softmax_xent_backward(node_dout(m, last), m->probs, m->targets, B, m->nclass, m->smoothing);
    for (int i = m->nnodes - 1; i >= 1; i--) {
        node *n = &m->nodes[i];
        int ins[3] = {n->in0, n->in1, n->in2};
        for (int k = 0; k < 3; k++) {
            node *src = ins[k] > 0 ? &m->nodes[ins[k]] : NULL; /* node 0, the input, has no gradient */
            if (src && src->last_consumer == i && !src->grad_set)
                memset(node_dout(m, src), 0, (size_t)B * src->size * sizeof(float));
        }
        oialr_ops[n->op]->backward(m, n, B);
    }
    return OIALR_OK;
}
