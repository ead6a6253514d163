/*
 * ops_conv.c — convolutional layers in the graph: conv2d, batch norm,
 * max/average pooling, global average pooling (kernels in lib/nn/).
 */
#include "model/graph.h"
#include "nn/conv.h"
#include "nn/norm.h"
#include "nn/pool.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* --- conv2d: arg.conv, param.affine ------------------------------------- */
static conv2d_dims conv_dims(const node *n) {
    const struct conv_args *a = &n->arg.conv;
    return conv2d_make(a->c, a->h, a->w, a->oc, a->k, a->k, a->stride, a->pad);
}
static void conv_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    conv2d_dims d = conv_dims(n);
    int w = n->param.affine.weight, b = n->param.affine.bias;
    conv2d_forward(node_out(m, n), in_out(m, n, 0), param_data(m, w), param_data(m, b), m->scratch, &d, B);
}
static void conv_bwd(oialr_model *m, node *n, int B) {
    conv2d_dims d = conv_dims(n);
    int w = n->param.affine.weight, b = n->param.affine.bias;
    conv2d_backward(in_dout(m, n, 0), param_grad(m, w), param_grad(m, b), node_dout(m, n), in_out(m, n, 0),
                    param_data(m, w), m->scratch, &d, B, grad_set_by(m, n, 0));
}
static size_t conv_scratch(const oialr_model *m, const node *n, int B) {
    (void)m;
    conv2d_dims d = conv_dims(n);
    return conv2d_scratch_size(&d, B);
}
const op_def op_conv = {"conv2d", conv_fwd, conv_bwd, conv_scratch};

int graph_conv(oialr_model *m, const char *name, int in, int OC, int K, int stride, int pad, int bias) {
    const node *src = &m->nodes[in];
    int C = src->shape[0], H = src->shape[1], W = src->shape[2];
    if (H + 2 * pad < K || W + 2 * pad < K)
        return oialr_seterr(OIALR_ERR_SPEC, "%s: a %dx%d kernel does not fit a %dx%d input", name, K, K, H, W);
    conv2d_dims d = conv2d_make(C, H, W, OC, K, K, stride, pad);
    char pname[OIALR_NAME_MAX];
    int64_t ws[4] = {OC, C, K, K};
    snprintf(pname, sizeof pname, "%s.weight", name);
    float fan_in = (float)(C * K * K);
    int pw = graph_param(m, pname, "conv2d", OIALR_PARAM_MATRIX, 4, ws, INIT_UNIFORM_FAN_IN, fan_in);
    if (pw < 0) return pw;
    int pb = -1;
    if (bias) {
        int64_t bs[1] = {OC};
        snprintf(pname, sizeof pname, "%s.bias", name);
        if ((pb = graph_param(m, pname, "conv2d", OIALR_PARAM_BIAS, 1, bs, INIT_UNIFORM_FAN_IN, fan_in)) < 0) return pb;
    }
    int id = graph_node(m, OP_CONV, name, in, -1, OC, d.OH, d.OW);
    if (id < 0) return id;
    node *n = &m->nodes[id];
    n->param.affine.weight = pw;
    n->param.affine.bias = pb;
    n->arg.conv = (struct conv_args){.c = C, .h = H, .w = W, .oc = OC, .k = K, .stride = stride, .pad = pad};
    m->flops += conv2d_flops(&d, 1);
    return id;
}

/* --- batch norm: arg.bn, param.bn; save = mean[C], rstd[C] ---------------- */
static void bn_fwd(oialr_model *m, node *n, int B, int train) {
    float *save = node_save(m, n);
    int C = n->arg.bn.c, HW = n->arg.bn.hw;
    float *weight = param_data(m, n->param.bn.weight), *bias = param_data(m, n->param.bn.bias);
    float *rmean = param_data(m, n->param.bn.running_mean), *rvar = param_data(m, n->param.bn.running_var);
    /* feeding a ReLU alone: write the ReLU's output (graph.h, writes_relu) */
    const int relu = writes_relu(m, n);
    float *out = relu ? node_out(m, &m->nodes[n->last_consumer]) : node_out(m, n);
    if (train)
        batchnorm2d_forward_train_act(out, save, save + C, rmean, rvar, in_out(m, n, 0), weight, bias, B, C, HW, BN_EPS,
                                      BN_MOMENTUM, relu);
    else
        batchnorm2d_forward_eval_act(out, in_out(m, n, 0), weight, bias, rmean, rvar, B, C, HW, BN_EPS, relu);
}
static void bn_bwd(oialr_model *m, node *n, int B) {
    float *save = node_save(m, n);
    int C = n->arg.bn.c, HW = n->arg.bn.hw;
    int w = n->param.bn.weight;
    const node *relu = writes_relu(m, n) ? &m->nodes[n->last_consumer] : NULL;
    batchnorm2d_backward_act(in_dout(m, n, 0), param_grad(m, w), param_grad(m, n->param.bn.bias),
                             relu ? node_dout(m, relu) : node_dout(m, n), in_out(m, n, 0), save, save + C,
                             param_data(m, w), param_data(m, n->param.bn.bias), B, C, HW, relu != NULL,
                             grad_set_by(m, n, 0));
}
const op_def op_batchnorm = {"batchnorm", bn_fwd, bn_bwd, NULL};

int graph_batchnorm(oialr_model *m, const char *name, int in) {
    const node *src = &m->nodes[in];
    int C = src->shape[0], HW = src->shape[1] * src->shape[2];
    char pname[OIALR_NAME_MAX];
    int64_t cs[1] = {C};
    static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    static const int kinds[4] = {OIALR_PARAM_NORM, OIALR_PARAM_NORM, OIALR_PARAM_BUFFER, OIALR_PARAM_BUFFER};
    static const int inits[4] = {INIT_ONE, INIT_ZERO, INIT_ZERO, INIT_ONE};
    int p[4];
    for (int k = 0; k < 4; k++) {
        snprintf(pname, sizeof pname, "%s.%s", name, suffix[k]);
        if ((p[k] = graph_param(m, pname, "batchnorm", kinds[k], 1, cs, inits[k], 0.0f)) < 0) return p[k];
    }
    int id = graph_node(m, OP_BATCHNORM, name, in, -1, src->shape[0], src->shape[1], src->shape[2]);
    if (id < 0) return id;
    node *n = &m->nodes[id];
    n->param.bn.weight = p[0];
    n->param.bn.bias = p[1];
    n->param.bn.running_mean = p[2];
    n->param.bn.running_var = p[3];
    n->arg.bn = (struct bn_args){.c = C, .hw = HW};
    n->save_fixed = 2 * (size_t)C;
    return id;
}

/* --- pooling: arg.pool; max pool saves argmax (int32) --------------------- */
static void maxpool_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct pool_args *a = &n->arg.pool;
    maxpool2d_forward(node_out(m, n), (int32_t *)node_save(m, n), in_out(m, n, 0), B * a->c, a->h, a->w, a->k,
                      a->stride, a->pad);
}
static void maxpool_bwd(oialr_model *m, node *n, int B) {
    const struct pool_args *a = &n->arg.pool;
    float *d = in_dout(m, n, 0);
    if (d)
        maxpool2d_backward(d, node_dout(m, n), (const int32_t *)node_save(m, n), B * a->c, a->h, a->w, a->k,
                           a->stride, a->pad);
}
const op_def op_maxpool = {"maxpool", maxpool_fwd, maxpool_bwd, NULL};

static void avgpool_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct pool_args *a = &n->arg.pool;
    avgpool2d_forward(node_out(m, n), in_out(m, n, 0), B * a->c, a->h, a->w, a->k, a->stride, a->pad);
}
static void avgpool_bwd(oialr_model *m, node *n, int B) {
    const struct pool_args *a = &n->arg.pool;
    float *d = in_dout(m, n, 0);
    if (d) avgpool2d_backward(d, node_dout(m, n), B * a->c, a->h, a->w, a->k, a->stride, a->pad);
}
const op_def op_avgpool = {"avgpool", avgpool_fwd, avgpool_bwd, NULL};

int graph_pool(oialr_model *m, int op, int in, int K, int S, int pad) {
    const node *src = &m->nodes[in];
    int C = src->shape[0], H = src->shape[1], W = src->shape[2];
    if (H + 2 * pad < K || W + 2 * pad < K || pad > K / 2)
        return oialr_seterr(OIALR_ERR_SPEC, "pool %d/%d/%d does not fit a %dx%d input", K, S, pad, H, W);
    int OH = pool_out_size(H, K, S, pad), OW = pool_out_size(W, K, S, pad);
    int id = graph_node(m, op, NULL, in, -1, C, OH, OW);
    if (id < 0) return id;
    node *n = &m->nodes[id];
    n->arg.pool = (struct pool_args){.c = C, .h = H, .w = W, .k = K, .stride = S, .pad = pad};
    if (op == OP_MAXPOOL) n->save_per_sample = n->size; /* argmax, int32 in float slots */
    return id;
}

static void gap_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    global_avgpool_forward(node_out(m, n), in_out(m, n, 0), B * n->arg.gap.c, n->arg.gap.hw);
}
static void gap_bwd(oialr_model *m, node *n, int B) {
    float *d = in_dout(m, n, 0);
    if (d) global_avgpool_backward(d, node_dout(m, n), B * n->arg.gap.c, n->arg.gap.hw);
}
const op_def op_gap = {"gap", gap_fwd, gap_bwd, NULL};

int graph_gap(oialr_model *m, int in) {
    /* the input's shape read first: graph_node may move m->nodes */
    const node *src = &m->nodes[in];
    int C = src->shape[0], HW = src->shape[1] * src->shape[2];
    int id = graph_node(m, OP_GAP, NULL, in, -1, C, 1, 1);
    if (id < 0) return id;
    m->nodes[id].arg.gap = (struct gap_args){.c = C, .hw = HW};
    return id;
}
