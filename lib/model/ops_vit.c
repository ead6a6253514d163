/*
 * ops_vit.c — transformer layers in the graph: patch embedding, class
 * token, position embedding, layer norm, multi-head self-attention (its
 * Q, K, V and output projections are ordinary dense nodes, so each weight is
 * its own named matrix), token pooling. Token activations are (T, D, 1).
 */
#include "model/graph.h"
#include "nn/attention.h"
#include "nn/embed.h"
#include "nn/norm.h"

#define LN_EPS 1e-5f
#define EMBED_STD 0.02f

/* A node whose output is T tokens of width D; arg.tokens = (T, D). */
static int token_node(oialr_model *m, int op, const char *name, int in, int T, int D) {
    int id = graph_node(m, op, name, in, -1, T, D, 1);
    if (id >= 0) {
        m->nodes[id].tokens = 1;
        m->nodes[id].arg.tokens = (struct tokens_args){.t = T, .d = D};
    }
    return id;
}

/* --- patch embedding: arg.patch, param.affine ----------------------------- */
static void patch_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct patch_args *a = &n->arg.patch;
    int w = n->param.affine.weight, b = n->param.affine.bias;
    patch_embed_forward(node_out(m, n), in_out(m, n, 0), param_data(m, w), param_data(m, b), m->scratch, B, a->c, a->h,
                        a->w, a->p, a->d);
}
static void patch_bwd(oialr_model *m, node *n, int B) {
    const struct patch_args *a = &n->arg.patch;
    int w = n->param.affine.weight, b = n->param.affine.bias;
    patch_embed_backward(in_dout(m, n, 0), param_grad(m, w), param_grad(m, b), node_dout(m, n), in_out(m, n, 0),
                         param_data(m, w), m->scratch, B, a->c, a->h, a->w, a->p, a->d);
}
static size_t patch_scratch(const oialr_model *m, const node *n, int B) {
    (void)m;
    const struct patch_args *a = &n->arg.patch;
    return patch_embed_scratch_size(B, a->c, a->h, a->w, a->p);
}
const op_def op_patch = {"patch", patch_fwd, patch_bwd, patch_scratch};

int graph_patch(oialr_model *m, const char *name, int in, int P, int D) {
    const node *src = &m->nodes[in];
    int C = src->shape[0], H = src->shape[1], W = src->shape[2];
    if (P < 1 || P > H || P > W) return oialr_seterr(OIALR_ERR_SPEC, "vit: patch %d does not fit a %dx%d image", P, H, W);
    int NP = (H / P) * (W / P);
    char pname[OIALR_NAME_MAX];
    int64_t ws[4] = {D, C, P, P}, bs[1] = {D};
    float fan_in = (float)(C * P * P);
    snprintf(pname, sizeof pname, "%s.weight", name);
    int pw = graph_param(m, pname, "patch", OIALR_PARAM_MATRIX, 4, ws, INIT_UNIFORM_FAN_IN, fan_in);
    if (pw < 0) return pw;
    snprintf(pname, sizeof pname, "%s.bias", name);
    int pb = graph_param(m, pname, "patch", OIALR_PARAM_BIAS, 1, bs, INIT_UNIFORM_FAN_IN, fan_in);
    if (pb < 0) return pb;
    int id = graph_node(m, OP_PATCH, name, in, -1, NP, D, 1);
    if (id < 0) return id;
    node *n = &m->nodes[id];
    n->tokens = 1;
    n->param.affine.weight = pw;
    n->param.affine.bias = pb;
    n->arg.patch = (struct patch_args){.c = C, .h = H, .w = W, .p = P, .d = D};
    m->flops += 2.0 * NP * D * (double)(C * P * P);
    return id;
}

/* --- class token: (T, D) -> (T+1, D); arg.tokens (T input), param.embed --- */
static void cls_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct tokens_args *a = &n->arg.tokens;
    cls_token_forward(node_out(m, n), in_out(m, n, 0), param_data(m, n->param.embed.table), B, a->t, a->d);
}
static void cls_bwd(oialr_model *m, node *n, int B) {
    const struct tokens_args *a = &n->arg.tokens;
    float *d = in_dout(m, n, 0);
    float *dcls = param_grad(m, n->param.embed.table);
    if (d) {
        cls_token_backward(d, dcls, node_dout(m, n), B, a->t, a->d);
        return;
    }
    /* input needs no gradient: only the token's */
    const float *g = node_dout(m, n);
    size_t row = (size_t)(a->t + 1) * a->d;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < a->d; k++) dcls[k] += g[(size_t)b * row + k];
}
const op_def op_cls = {"cls", cls_fwd, cls_bwd, NULL};

int graph_cls(oialr_model *m, const char *name, int in) {
    const node *src = &m->nodes[in];
    int T = src->shape[0], D = src->shape[1];
    int64_t s[1] = {D};
    int p = graph_param(m, name, "cls", OIALR_PARAM_EMBED, 1, s, INIT_NORMAL, EMBED_STD);
    if (p < 0) return p;
    int id = token_node(m, OP_CLS, name, in, T + 1, D);
    if (id < 0) return id;
    m->nodes[id].arg.tokens.t = T; /* input tokens */
    m->nodes[id].param.embed.table = p;
    return id;
}

/* --- position embedding: arg.tokens, param.embed -------------------------- */
static void pos_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct tokens_args *a = &n->arg.tokens;
    pos_embed_forward(node_out(m, n), in_out(m, n, 0), param_data(m, n->param.embed.table), B, a->t, a->d);
}
static void pos_bwd(oialr_model *m, node *n, int B) {
    const struct tokens_args *a = &n->arg.tokens;
    pos_embed_backward(in_dout(m, n, 0), param_grad(m, n->param.embed.table), node_dout(m, n), B, a->t, a->d);
}
const op_def op_pos = {"pos", pos_fwd, pos_bwd, NULL};

int graph_pos(oialr_model *m, const char *name, int in) {
    const node *src = &m->nodes[in];
    int T = src->shape[0], D = src->shape[1];
    int64_t s[2] = {T, D};
    /* a table, not a linear map: kind EMBED keeps it out of OIALR */
    int p = graph_param(m, name, "pos", OIALR_PARAM_EMBED, 2, s, INIT_NORMAL, EMBED_STD);
    if (p < 0) return p;
    int id = token_node(m, OP_POS, name, in, T, D);
    if (id >= 0) m->nodes[id].param.embed.table = p;
    return id;
}

/* --- layer norm over D: arg.tokens, param.affine; save = mean, rstd [T] per sample */
static void ln_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct tokens_args *a = &n->arg.tokens;
    int N = B * a->t;
    float *save = node_save(m, n);
    layernorm_forward(node_out(m, n), save, save + (size_t)m->max_batch * a->t, in_out(m, n, 0),
                      param_data(m, n->param.affine.weight), param_data(m, n->param.affine.bias), N, a->d, LN_EPS);
}
static void ln_bwd(oialr_model *m, node *n, int B) {
    const struct tokens_args *a = &n->arg.tokens;
    int N = B * a->t;
    int w = n->param.affine.weight, b = n->param.affine.bias;
    float *save = node_save(m, n);
    layernorm_backward(in_dout(m, n, 0), param_grad(m, w), param_grad(m, b), node_dout(m, n), in_out(m, n, 0), save,
                       save + (size_t)m->max_batch * a->t, param_data(m, w), N, a->d);
}
const op_def op_layernorm = {"layernorm", ln_fwd, ln_bwd, NULL};

int graph_layernorm(oialr_model *m, const char *name, int in) {
    const node *src = &m->nodes[in];
    int T = src->shape[0], D = src->shape[1];
    char pname[OIALR_NAME_MAX];
    int64_t s[1] = {D};
    snprintf(pname, sizeof pname, "%s.weight", name);
    int pw = graph_param(m, pname, "layernorm", OIALR_PARAM_NORM, 1, s, INIT_ONE, 0.0f);
    if (pw < 0) return pw;
    snprintf(pname, sizeof pname, "%s.bias", name);
    int pb = graph_param(m, pname, "layernorm", OIALR_PARAM_NORM, 1, s, INIT_ZERO, 0.0f);
    if (pb < 0) return pb;
    int id = token_node(m, OP_LAYERNORM, name, in, T, D);
    if (id < 0) return id;
    m->nodes[id].param.affine.weight = pw;
    m->nodes[id].param.affine.bias = pb;
    m->nodes[id].save_per_sample = 2 * (size_t)T;
    return id;
}

/* --- attention core: in0 q, in1 k, in2 v; arg.attn; save att -------------- */
static void attn_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct attn_args *a = &n->arg.attn;
    attention_forward(node_out(m, n), node_save(m, n), in_out(m, n, 0), in_out(m, n, 1), in_out(m, n, 2), B, a->t,
                      a->nh, a->hs);
}
static void attn_bwd(oialr_model *m, node *n, int B) {
    const struct attn_args *a = &n->arg.attn;
    const int set = (grad_set_by(m, n, 0) ? ATT_SET_Q : 0) | (grad_set_by(m, n, 1) ? ATT_SET_K : 0) |
                    (grad_set_by(m, n, 2) ? ATT_SET_V : 0);
    attention_backward(in_dout(m, n, 0), in_dout(m, n, 1), in_dout(m, n, 2), m->scratch, node_dout(m, n),
                       in_out(m, n, 0), in_out(m, n, 1), in_out(m, n, 2), node_save(m, n), B, a->t, a->nh, a->hs,
                       set);
}
static size_t attn_scratch(const oialr_model *m, const node *n, int B) {
    (void)m;
    const struct attn_args *a = &n->arg.attn;
    return attention_scratch_size(B, a->t, a->nh, a->hs);
}
const op_def op_attn = {"attention", attn_fwd, attn_bwd, attn_scratch};

/* Multi-head self-attention on tokens: name.q, name.k, name.v projections,
 * the attention core, and the output projection name.o. Returns name.o. */
int graph_attention(oialr_model *m, const char *name, int in, int heads) {
    const node *src = &m->nodes[in];
    int T = src->shape[0], D = src->shape[1];
    if (heads < 1 || D % heads)
        return oialr_seterr(OIALR_ERR_SPEC, "vit: width %d is not divisible by %d heads", D, heads);
    char nm[OIALR_NAME_MAX], kind[16];
    int qkv[3];
    static const char *const which[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        snprintf(nm, sizeof nm, "%s.%s", name, which[i]);
        snprintf(kind, sizeof kind, "attn.%s", which[i]);
        if ((qkv[i] = graph_dense_kind(m, nm, kind, in, D, 1)) < 0) return qkv[i];
    }
    int id = token_node(m, OP_ATTN, name, qkv[0], T, D);
    if (id < 0) return id;
    node *n = &m->nodes[id];
    n->in1 = qkv[1];
    n->in2 = qkv[2];
    n->arg.attn = (struct attn_args){.t = T, .nh = heads, .hs = D / heads};
    n->save_per_sample = (size_t)heads * T * T;
    m->flops += 4.0 * heads * T * T * (double)(D / heads);
    snprintf(nm, sizeof nm, "%s.o", name);
    return graph_dense_kind(m, nm, "attn.o", id, D, 1);
}

/* --- token pooling: (T, D) -> (D); arg.tokens (tokpick: .pick) ------------ */
static void tokmean_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    token_mean_forward(node_out(m, n), in_out(m, n, 0), B, n->arg.tokens.t, n->arg.tokens.d);
}
static void tokmean_bwd(oialr_model *m, node *n, int B) {
    token_mean_backward(in_dout(m, n, 0), node_dout(m, n), B, n->arg.tokens.t, n->arg.tokens.d);
}
const op_def op_tokmean = {"tokmean", tokmean_fwd, tokmean_bwd, NULL};

static void tokpick_fwd(oialr_model *m, node *n, int B, int train) {
    (void)train;
    const struct tokens_args *a = &n->arg.tokens;
    token_pick_forward(node_out(m, n), in_out(m, n, 0), a->pick, B, a->t, a->d);
}
static void tokpick_bwd(oialr_model *m, node *n, int B) {
    const struct tokens_args *a = &n->arg.tokens;
    token_pick_backward(in_dout(m, n, 0), node_dout(m, n), a->pick, B, a->t, a->d);
}
const op_def op_tokpick = {"tokpick", tokpick_fwd, tokpick_bwd, NULL};

int graph_tokens(oialr_model *m, int op, int in) {
    const node *src = &m->nodes[in];
    int T = src->shape[0], D = src->shape[1];
    int id = graph_node(m, op, NULL, in, -1, D, 1, 1);
    if (id < 0) return id;
    m->nodes[id].arg.tokens = (struct tokens_args){.t = T, .d = D, .pick = 0}; /* pick: the class token */
    return id;
}
