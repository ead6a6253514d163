/*
 * ops.c — the op table: how each node kind calls its kernels in lib/nn/.
 * A node's input gradient is NULL when its input is the model input.
 */
#include "model/graph.h"
#include "nn/nn.h"

#include <string.h>

static inline float *in_dout(oialr_model *m, int in) { return node_dout(m, &m->nodes[in]); }

static void input_fwd(oialr_model *m, node *n, int B, int train) { (void)m, (void)n, (void)B, (void)train; }
static void input_bwd(oialr_model *m, node *n, int B) { (void)m, (void)n, (void)B; }

static void dense_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    dense_forward(node_out(m, n), node_out(m, &m->nodes[n->in0]), param_data(m, n->p[0]), param_data(m, n->p[1]),
                  B * n->ia[2], n->ia[0], n->ia[1]);
}
static void dense_bwd(oialr_model *m, node *n, int B) {
    dense_backward(in_dout(m, n->in0), param_grad(m, n->p[0]), param_grad(m, n->p[1]), node_dout(m, n),
                   node_out(m, &m->nodes[n->in0]), param_data(m, n->p[0]), B * n->ia[2], n->ia[0], n->ia[1]);
}

static void relu_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    relu_forward(node_out(m, n), node_out(m, &m->nodes[n->in0]), (size_t)B * n->size);
}
static void relu_bwd(oialr_model *m, node *n, int B) {
    float *d = in_dout(m, n->in0);
    if (d) relu_backward(d, node_dout(m, n), node_out(m, &m->nodes[n->in0]), (size_t)B * n->size);
}
static void gelu_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    gelu_forward(node_out(m, n), node_out(m, &m->nodes[n->in0]), (size_t)B * n->size);
}
static void gelu_bwd(oialr_model *m, node *n, int B) {
    float *d = in_dout(m, n->in0);
    if (d) gelu_backward(d, node_dout(m, n), node_out(m, &m->nodes[n->in0]), (size_t)B * n->size);
}
static void tanh_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    tanh_forward(node_out(m, n), node_out(m, &m->nodes[n->in0]), (size_t)B * n->size);
}
static void tanh_bwd(oialr_model *m, node *n, int B) {
    float *d = in_dout(m, n->in0);
    if (d) tanh_backward(d, node_dout(m, n), node_out(m, n), (size_t)B * n->size);
}

static void dropout_fwd(oialr_model *m, node *n, int B, int train) {
    size_t count = (size_t)B * n->size;
    float *mask = m->save + n->save_off;
    float p = n->fa[0];
    if (train) {
        float keep = 1.0f / (1.0f - p);
        for (size_t i = 0; i < count; i++) mask[i] = oialr_rng_uniform(&m->rng) < p ? 0.0f : keep;
    } else {
        for (size_t i = 0; i < count; i++) mask[i] = 1.0f;
    }
    dropout_forward(node_out(m, n), node_out(m, &m->nodes[n->in0]), mask, count);
}
static void dropout_bwd(oialr_model *m, node *n, int B) {
    float *d = in_dout(m, n->in0);
    if (d) dropout_backward(d, node_dout(m, n), m->save + n->save_off, (size_t)B * n->size);
}

static void add_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    add_forward(node_out(m, n), node_out(m, &m->nodes[n->in0]), node_out(m, &m->nodes[n->in1]),
                (size_t)B * n->size);
}
static void add_bwd(oialr_model *m, node *n, int B) {
    size_t count = (size_t)B * n->size;
    const float *g = node_dout(m, n);
    for (int k = 0; k < 2; k++) {
        float *d = in_dout(m, k == 0 ? n->in0 : n->in1);
        if (d)
            for (size_t i = 0; i < count; i++) d[i] += g[i];
    }
}

const op_def oialr_ops[] = {
    [OP_INPUT] = {"input", input_fwd, input_bwd, NULL},
    [OP_DENSE] = {"dense", dense_fwd, dense_bwd, NULL},
    [OP_RELU] = {"relu", relu_fwd, relu_bwd, NULL},
    [OP_GELU] = {"gelu", gelu_fwd, gelu_bwd, NULL},
    [OP_TANH] = {"tanh", tanh_fwd, tanh_bwd, NULL},
    [OP_DROPOUT] = {"dropout", dropout_fwd, dropout_bwd, NULL},
    [OP_ADD] = {"add", add_fwd, add_bwd, NULL},
};

int ops_count(void) { return (int)(sizeof oialr_ops / sizeof oialr_ops[0]); }
