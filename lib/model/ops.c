/*
 * ops.c — the op table: how each node kind calls its kernels in lib/nn/.
 * A node's input gradient is NULL when its input is the model input.
 */
#include "model/graph.h"
#include "nn/nn.h"

#include <string.h>

static void input_fwd(oialr_model *m, node *n, int B, int train) { (void)m, (void)n, (void)B, (void)train; }
static void input_bwd(oialr_model *m, node *n, int B) { (void)m, (void)n, (void)B; }

static void dense_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct dense_args *a = &n->arg.dense;
    int w = n->param.affine.weight, b = n->param.affine.bias;
    dense_forward(node_out(m, n), in_out(m, n, 0), param_data(m, w), param_data(m, b), B * a->rows, a->c, a->oc);
}
static void dense_bwd(oialr_model *m, node *n, int B) {
    const struct dense_args *a = &n->arg.dense;
    int w = n->param.affine.weight, b = n->param.affine.bias;
    dense_backward(in_dout(m, n, 0), param_grad(m, w), param_grad(m, b), node_dout(m, n), in_out(m, n, 0),
                   param_data(m, w), B * a->rows, a->c, a->oc, grad_set_by(m, n, 0));
}

/* after a batch norm or an add that feeds it alone, that node does the
 * ReLU's work (writes_relu, graph.h) */
static void relu_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    if (writes_relu(m, &m->nodes[n->in0])) return;
    relu_forward(node_out(m, n), in_out(m, n, 0), (size_t)B * n->size);
}
static void relu_bwd(oialr_model *m, node *n, int B) {
    float *d = in_dout(m, n, 0);
    if (!d || writes_relu(m, &m->nodes[n->in0])) return;
    if (grad_set_by(m, n, 0)) relu_backward_set(d, node_dout(m, n), in_out(m, n, 0), (size_t)B * n->size);
    else relu_backward(d, node_dout(m, n), in_out(m, n, 0), (size_t)B * n->size);
}
static void gelu_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    gelu_forward(node_out(m, n), in_out(m, n, 0), (size_t)B * n->size);
}
static void gelu_bwd(oialr_model *m, node *n, int B) {
    float *d = in_dout(m, n, 0);
    if (d && grad_set_by(m, n, 0)) gelu_backward_set(d, node_dout(m, n), in_out(m, n, 0), (size_t)B * n->size);
    else if (d) gelu_backward(d, node_dout(m, n), in_out(m, n, 0), (size_t)B * n->size);
}
static void tanh_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    tanh_forward(node_out(m, n), in_out(m, n, 0), (size_t)B * n->size);
}
static void tanh_bwd(oialr_model *m, node *n, int B) {
    float *d = in_dout(m, n, 0);
    if (d) tanh_backward(d, node_dout(m, n), node_out(m, n), (size_t)B * n->size);
}

static void dropout_fwd(oialr_model *m, node *n, int B, int train) {
    size_t count = (size_t)B * n->size;
    float *mask = node_save(m, n);
    float p = n->arg.dropout.p;
    if (train) {
        float keep = 1.0f / (1.0f - p);
        for (size_t i = 0; i < count; i++) mask[i] = oialr_rng_uniform(&m->rng) < p ? 0.0f : keep;
    } else {
        for (size_t i = 0; i < count; i++) mask[i] = 1.0f;
    }
    dropout_forward(node_out(m, n), in_out(m, n, 0), mask, count);
}
static void dropout_bwd(oialr_model *m, node *n, int B) {
    float *d = in_dout(m, n, 0);
    if (d) dropout_backward(d, node_dout(m, n), node_save(m, n), (size_t)B * n->size);
}

static void add_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    if (writes_relu(m, n))
        add_relu_forward(node_out(m, &m->nodes[n->last_consumer]), in_out(m, n, 0), in_out(m, n, 1),
                         (size_t)B * n->size);
    else
        add_forward(node_out(m, n), in_out(m, n, 0), in_out(m, n, 1), (size_t)B * n->size);
}
static void add_bwd(oialr_model *m, node *n, int B) {
    const int set0 = grad_set_by(m, n, 0), set1 = grad_set_by(m, n, 1);
    if (writes_relu(m, n)) {
        const node *relu = &m->nodes[n->last_consumer];
        add_relu_backward(in_dout(m, n, 0), in_dout(m, n, 1), node_dout(m, relu), node_out(m, relu),
                          (size_t)B * n->size, set0, set1);
    } else {
        add_backward(in_dout(m, n, 0), in_dout(m, n, 1), node_dout(m, n), (size_t)B * n->size, set0, set1);
    }
}

int op_sets_input_grad(const node *n, int which) {
    (void)which;
    /* OP_CONV, OP_DENSE: also once they are low-rank (OP_CONV_LR, OP_DENSE_LR
     * zero first, lowrank.c) */
    return n->op == OP_RELU || n->op == OP_BATCHNORM || n->op == OP_ADD || n->op == OP_CONV || n->op == OP_DENSE ||
           n->op == OP_GELU || n->op == OP_ATTN;
}

static const op_def op_input = {"input", input_fwd, input_bwd, NULL};
static const op_def op_dense = {"dense", dense_fwd, dense_bwd, NULL};
static const op_def op_relu = {"relu", relu_fwd, relu_bwd, NULL};
static const op_def op_gelu = {"gelu", gelu_fwd, gelu_bwd, NULL};
static const op_def op_tanh = {"tanh", tanh_fwd, tanh_bwd, NULL};
static const op_def op_dropout = {"dropout", dropout_fwd, dropout_bwd, NULL};
static const op_def op_add = {"add", add_fwd, add_bwd, NULL};

const op_def *const oialr_ops[OP_COUNT] = {
    [OP_INPUT] = &op_input,         [OP_DENSE] = &op_dense,     [OP_RELU] = &op_relu,
    [OP_GELU] = &op_gelu,           [OP_TANH] = &op_tanh,       [OP_DROPOUT] = &op_dropout,
    [OP_ADD] = &op_add,             [OP_CONV] = &op_conv,       [OP_BATCHNORM] = &op_batchnorm,
    [OP_MAXPOOL] = &op_maxpool,     [OP_AVGPOOL] = &op_avgpool, [OP_GAP] = &op_gap,
    [OP_PATCH] = &op_patch,         [OP_CLS] = &op_cls,         [OP_POS] = &op_pos,
    [OP_LAYERNORM] = &op_layernorm, [OP_ATTN] = &op_attn,       [OP_TOKMEAN] = &op_tokmean,
    [OP_TOKPICK] = &op_tokpick,     [OP_DENSE_LR] = &op_dense_lr, [OP_CONV_LR] = &op_conv_lr,
};
