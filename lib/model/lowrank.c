/*
 * lowrank.c — a model's weights held low-rank (oialr/lowrank.h, "Model
 * side"): the ops of a dense and a conv node after the switch, attaching
 * the frozen factors, truncating them in place, and freeing them.
 *
 * Where things live. Σ (rank x rank, compact) takes the first rank² floats
 * of the weight's own slot in the parameter buffer, so no offset moves and
 * the gradient, the optimizer moments and the checkpoint keep their layout;
 * the slot's `size` shrinks, its `capacity` stays rows x cols. U [rows, cap]
 * and V [cols, cap] are frozen: they get no gradient and no optimizer state,
 * so they live beside the node (node_lowrank), with the saved product
 * inp @ V that the backward needs and the kernel's scratch.
 */
#include "model/graph.h"
#include "nn/conv.h"
#include "nn/lowrank.h"
#include "oialr/lowrank.h"

#include <string.h>

// ----------------------------------------------------------------------------
// the op

static void dense_lr_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct dense_args *a = &n->arg.dense;
    const node_lowrank *lr = n->lr;
    lowrank_forward(node_out(m, n), lr->mid, lr->scratch, in_out(m, n, 0), lr->u, param_data(m, n->param.affine.weight),
                    lr->v, param_data(m, n->param.affine.bias), B * a->rows, a->c, a->oc, lr->rank);
}

static void dense_lr_bwd(oialr_model *m, node *n, int B) {
    const struct dense_args *a = &n->arg.dense;
    const node_lowrank *lr = n->lr;
    int w = n->param.affine.weight;
    float *dinp = in_dout(m, n, 0);
    /* not zeroed if this node (OP_DENSE when the graph was built) writes it; the low-rank backward adds */
    if (dinp && grad_set_by(m, n, 0)) memset(dinp, 0, sizeof(float) * (size_t)B * a->rows * a->c);
    lowrank_backward(dinp, param_grad(m, w), param_grad(m, n->param.affine.bias), lr->scratch,
                     node_dout(m, n), lr->mid, lr->u, param_data(m, w), lr->v, B * a->rows, a->c, a->oc, lr->rank);
}

const op_def op_dense_lr = {"dense_lr", dense_lr_fwd, dense_lr_bwd, NULL};

static conv2d_dims conv_dims(const node *n) {
    const struct conv_args *a = &n->arg.conv;
    return conv2d_make(a->c, a->h, a->w, a->oc, a->k, a->k, a->stride, a->pad);
}

static void conv_lr_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    conv2d_dims d = conv_dims(n);
    const node_lowrank *lr = n->lr;
    lowrank_conv_forward(node_out(m, n), lr->mid, lr->scratch, in_out(m, n, 0), lr->u,
                         param_data(m, n->param.affine.weight), lr->vt, param_data(m, n->param.affine.bias), &d, B,
                         lr->rank);
}

static void conv_lr_bwd(oialr_model *m, node *n, int B) {
    conv2d_dims d = conv_dims(n);
    const node_lowrank *lr = n->lr;
    int w = n->param.affine.weight;
    float *dinp = in_dout(m, n, 0);
    /* the input gradient was not zeroed if this node (OP_CONV when the graph
     * was built) writes it; the low-rank backward adds */
    if (dinp && grad_set_by(m, n, 0)) memset(dinp, 0, sizeof(float) * (size_t)B * d.C * d.H * d.W);
    lowrank_conv_backward(dinp, param_grad(m, w), param_grad(m, n->param.affine.bias), lr->scratch,
                          node_dout(m, n), lr->mid, in_out(m, n, 0), lr->u, param_data(m, w), lr->vt, &d, B,
                          lr->rank);
}

const op_def op_conv_lr = {"conv2d_lr", conv_lr_fwd, conv_lr_bwd, NULL};

static int is_conv(const node *n) { return n->op == OP_CONV || n->op == OP_CONV_LR; }

/* vt = vᵀ for a conv node, after v changed */
static void refresh_vt(node *n, int cols) {
    node_lowrank *lr = n->lr;
    if (!lr->vt) return;
    for (int c = 0; c < cols; c++)
        for (int j = 0; j < lr->rank; j++) lr->vt[(size_t)j * cols + c] = lr->v[(size_t)c * lr->rank + j];
}

// ----------------------------------------------------------------------------
// attaching, truncating, freeing

static node *node_of(oialr_model *m, int param) {
    for (int i = 1; i < m->nnodes; i++) {
        node *n = &m->nodes[i];
        if ((n->op == OP_DENSE || n->op == OP_DENSE_LR || is_conv(n)) && n->param.affine.weight == param) return n;
    }
    return NULL;
}

int oialr_model_lowrank_capable(const oialr_model *m, int param) {
    return param >= 0 && param < m->params.count && node_of((oialr_model *)m, param) != NULL;
}

void lowrank_free(node_lowrank *lr) {
    if (!lr) return;
    free(lr->u);
    free(lr->v);
    free(lr->vt);
    free(lr->mid);
    free(lr->scratch);
    free(lr);
}

int oialr_model_lowrank_set(oialr_model *m, int param, const float *u, const float *s, const float *v, int rank) {
    node *n = node_of(m, param);
    if (!n) return oialr_seterr(OIALR_ERR_ARG, "parameter %d is not the weight of a dense or conv layer", param);
    oialr_param_info *pi = &m->params.info[param];
    int rows = (int)pi->rows, cols = (int)pi->cols, kmax = rows < cols ? rows : cols;
    if (rank < 1 || rank > kmax)
        return oialr_seterr(OIALR_ERR_ARG, "%s: rank %d outside 1..%d", pi->name, rank, kmax);
    if (n->lr && rank > n->lr->cap)
        return oialr_seterr(OIALR_ERR_ARG, "%s: rank %d above the %d it was sized for", pi->name, rank, n->lr->cap);
    node_lowrank *lr = n->lr;
    if (!lr) {
        int conv = is_conv(n);
        conv2d_dims d;
        size_t mid, scratch;
        if (conv) {
            d = conv_dims(n);
            mid = (size_t)m->max_batch * rank * d.OH * d.OW;
            scratch = lowrank_conv_scratch(&d, m->max_batch, rank);
        } else {
            size_t N = (size_t)m->max_batch * (size_t)n->arg.dense.rows;
            mid = N * rank;
            scratch = lowrank_scratch((int)N, rank);
        }
        lr = calloc(1, sizeof *lr);
        if (lr) {
            lr->cap = rank;
            lr->u = malloc((size_t)rows * rank * sizeof *lr->u);
            lr->v = malloc((size_t)cols * rank * sizeof *lr->v);
            lr->vt = conv ? malloc((size_t)cols * rank * sizeof *lr->vt) : NULL;
            lr->mid = malloc(mid * sizeof *lr->mid);
            lr->scratch = malloc(scratch * sizeof *lr->scratch);
        }
        if (!lr || !lr->u || !lr->v || (is_conv(n) && !lr->vt) || !lr->mid || !lr->scratch) {
            lowrank_free(lr);
            return oialr_seterr(OIALR_ERR_NOMEM, "%s: out of memory for the low-rank factors", pi->name);
        }
        n->lr = lr;
    }
    lr->rank = rank;
    memmove(lr->u, u, (size_t)rows * rank * sizeof *u); /* u, v may be lr's own (a rotation) */
    memmove(lr->v, v, (size_t)cols * rank * sizeof *v);
    memmove(m->params.data + pi->offset, s, (size_t)rank * rank * sizeof *s);
    pi->rank = rank;
    pi->size = (size_t)rank * rank;
    pi->u = lr->u;
    pi->v = lr->v;
    pi->basis_version++;
    refresh_vt(n, cols);
    n->op = is_conv(n) ? OP_CONV_LR : OP_DENSE_LR;
    return OIALR_OK;
}

int oialr_model_lowrank_factors(oialr_model *m, int param, float **u, float **v, int *rank) {
    node *n = node_of(m, param);
    if (!n || !n->lr) return oialr_seterr(OIALR_ERR_ARG, "parameter %d is not a low-rank weight", param);
    if (u) *u = n->lr->u;
    if (v) *v = n->lr->v;
    if (rank) *rank = n->lr->rank;
    return OIALR_OK;
}

/* The leading k x k block of a compact r x r matrix, compact, in place. */
static void keep_block(float *a, int r, int k) {
    for (int i = 1; i < k; i++) memmove(a + (size_t)i * k, a + (size_t)i * r, (size_t)k * sizeof *a);
}

/* The first k columns of a compact rows x r matrix, compact, in place. */
static void keep_columns(float *a, int rows, int r, int k) {
    for (int i = 1; i < rows; i++) memmove(a + (size_t)i * k, a + (size_t)i * r, (size_t)k * sizeof *a);
}

int oialr_model_lowrank_truncate(oialr_model *m, oialr_optim *o, int param, int rank) {
    node *n = node_of(m, param);
    if (!n || !n->lr) return oialr_seterr(OIALR_ERR_ARG, "parameter %d is not a low-rank weight", param);
    oialr_param_info *pi = &m->params.info[param];
    int r = n->lr->rank;
    if (rank < 1 || rank > r) return oialr_seterr(OIALR_ERR_ARG, "%s: rank %d outside 1..%d", pi->name, rank, r);
    if (rank == r) return OIALR_OK;
    keep_columns(n->lr->u, (int)pi->rows, r, rank);
    keep_columns(n->lr->v, (int)pi->cols, r, rank);
    keep_block(m->params.data + pi->offset, r, rank);
    if (o && o->m) keep_block(o->m + pi->offset, r, rank);
    if (o && o->v) keep_block(o->v + pi->offset, r, rank);
    n->lr->rank = rank;
    pi->rank = rank;
    pi->size = (size_t)rank * rank;
    refresh_vt(n, (int)pi->cols);
    return OIALR_OK;
}
