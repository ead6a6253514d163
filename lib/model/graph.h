/*
 * model/graph.h — the model as a list of nodes in topological order (private).
 *
 * Node 0 is the input; each later node reads one or two earlier nodes and
 * writes its own output region of the activation arena. The arena, the
 * gradient arena, the per-node saved state and one shared scratch buffer
 * are allocated once, for max_batch, when the model is finalised.
 *
 * A node says what it is by name: n->op selects its member of n->arg (sizes
 * and settings, e.g. n->arg.conv.stride) and of n->param (indices into the
 * parameter table, e.g. n->param.bn.running_var).
 *
 * Adding a layer kind:
 *   1. an OP_* value below, its comment naming its members of arg and param;
 *   2. a struct of its sizes and settings in union node_args, named by the
 *      kind (kinds of one family share one, as the pools and the token ops
 *      do; a variant of a kind may embed its struct);
 *   3. if it has parameters, a struct naming them in union node_params, in
 *      the order `describe` lists them; raise NODE_PARAMS if one needs more;
 *   4. forward, backward and scratch size in an op_def (ops.c, ops_conv.c or
 *      ops_vit.c), entered in the op table in ops.c;
 *   5. a builder graph_<kind>() declared below: graph_param() for each
 *      parameter, graph_node() for the node, then fill n->arg.<kind>,
 *      n->param.<kind>, save_per_sample / save_fixed and m->flops.
 * For example, a low-rank dense y = ((x V) Sigma^T) U^T + b (an attention
 * projection is a dense node) adds OP_DENSE_LR, the args
 * `struct dense_lr_args { struct dense_args dense; int rank; } dense_lr;`
 * and the params `struct { int u, sigma, v, bias; } lowrank;`, which a
 * low-rank conv (args embedding struct conv_args) uses too.
 */
#ifndef OIALR_GRAPH_H
#define OIALR_GRAPH_H

#include "oialr/model.h"
#include "oialr/params.h"

/* The member of node_args (and node_params) each kind uses is in brackets. */
enum op_kind {
    OP_INPUT = 0,
    OP_DENSE,    /* [dense] [affine] */
    OP_RELU,
    OP_GELU,
    OP_TANH,
    OP_DROPOUT,  /* [dropout] */
    OP_ADD,      /* residual: in0 + in1 */
    /* ops_conv.c */
    OP_CONV,     /* [conv] [affine] */
    OP_BATCHNORM,/* [bn] [bn] */
    OP_MAXPOOL,  /* [pool] */
    OP_AVGPOOL,  /* [pool] */
    OP_GAP,      /* global average pool [gap] */
    /* ops_vit.c */
    OP_PATCH,    /* patch embedding [patch] [affine] */
    OP_CLS,      /* prepend class token [tokens] [embed] */
    OP_POS,      /* add position embedding [tokens] [embed] */
    OP_LAYERNORM,/* over the last dim [tokens] [affine] */
    OP_ATTN,     /* softmax(q k^T/sqrt(HS)) v: in0 q, in1 k, in2 v [attn] */
    OP_TOKMEAN,  /* mean over tokens [tokens] */
    OP_TOKPICK,  /* one token, tokens.pick (0: class token) [tokens] */
    /* lowrank.c: a dense or conv node after OIALR's switch, W = U Sigma V^T;
     * the weight's slot holds Sigma, node.lr the frozen U and V */
    OP_DENSE_LR, /* [dense] [affine] */
    OP_CONV_LR,  /* [conv] [affine] */
    OP_COUNT
};

/* Sizes and settings of a node, one struct per kind (the tag is node.op).
 * Fields are the letters of docs/layers.md in lower case: c channels, h/w
 * height/width, oc output channels, k kernel, t tokens, d width, nh heads,
 * hs head size. */
typedef union node_args {
    struct dense_args { int c, oc, rows; } dense;   /* rows per sample: T for tokens, 1 else */
    struct dropout_args { float p; } dropout;       /* probability of dropping */
    struct conv_args { int c, h, w, oc, k, stride, pad; } conv; /* square k x k kernel */
    struct bn_args { int c, hw; } bn;               /* channels, pixels per channel */
    struct pool_args { int c, h, w, k, stride, pad; } pool;
    struct gap_args { int c, hw; } gap;
    struct patch_args { int c, h, w, p, d; } patch; /* p x p patches, width d */
    /* (T, D) token ops; cls: t counts the input tokens (it outputs t + 1);
     * tokpick: pick is the token taken */
    struct tokens_args { int t, d, pick; } tokens;
    struct attn_args { int t, nh, hs; } attn;       /* heads, head size */
} node_args;

/* The parameters of a node by name: indices into m->params, -1 when absent
 * (a conv without bias). `slot` is the same storage in order, for code that
 * walks every parameter of any node. */
#define NODE_PARAMS 4
typedef union node_params {
    int slot[NODE_PARAMS];
    struct { int weight, bias; } affine;            /* dense, conv, patch, layernorm */
    struct { int weight, bias, running_mean, running_var; } bn;
    struct { int table; } embed;                    /* cls: the token [D]; pos: the table [T, D] */
} node_params;
_Static_assert(sizeof(node_params) == NODE_PARAMS * sizeof(int), "a node_params member exceeds NODE_PARAMS");

/* Init rules for parameters. */
enum init_kind {
    INIT_ZERO = 0,
    INIT_ONE,
    INIT_UNIFORM_FAN_IN, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for weights and biases */
    INIT_NORMAL,         /* N(0, a^2) */
};

/* The frozen factors of a low-rank node (lowrank.c): W = U Σ Vᵀ, compact
 * row-major with leading dimension rank; Σ (rank x rank) is the weight's
 * slot in the parameter buffer. Sized for cap at the switch (the rank never
 * grows), shrunk in place by truncations. */
typedef struct node_lowrank {
    int rank, cap;
    float *u;       /* [rows, rank], rows = the weight's rows (OC) */
    float *v;       /* [cols, rank] */
    float *vt;      /* conv: Vᵀ [rank, cols], the weight of the conv with rank outputs */
    float *mid;     /* dense: inp @ v [max_batch * rows per sample, cap];
                     * conv: conv(inp, vt) [max_batch, cap, OH, OW]; saved by forward */
    float *scratch; /* the kernel's (nn/lowrank.h) for max_batch and cap */
} node_lowrank;

typedef struct node {
    int op;
    char name[48];
    int in0, in1, in2;   /* input nodes (-1 none) */
    int shape[3];        /* output per sample: (C,H,W) or (T,D,1) or (n,1,1) */
    size_t size;         /* floats per sample of the output */
    node_args arg;       /* member arg.<kind>, see enum op_kind */
    node_params param;   /* member param.<kind>, all slots -1 until set */
    size_t off;          /* output region in act/dact (max_batch * size floats) */
    size_t save_off;     /* saved state region in save */
    size_t save_per_sample, save_fixed;
    int tokens;          /* output is T tokens of width D: shape (T, D, 1) */
    int last_consumer;   /* highest node index reading this one (its gradient is zeroed just before) */
    int consumers;       /* how many input slots of later nodes read this one */
    int grad_set;        /* its last consumer's backward, the first to run, writes (=) its gradient: never zeroed */
    node_lowrank *lr;    /* OP_DENSE_LR: the frozen factors (NULL otherwise) */
} node;

typedef struct op_def {
    const char *name;
    void (*forward)(oialr_model *m, node *n, int B, int train);
    void (*backward)(oialr_model *m, node *n, int B);
    size_t (*scratch)(const oialr_model *m, const node *n, int B); /* floats; may be NULL */
} op_def;

struct oialr_model {
    char spec[256];
    int c, h, w, nclass;
    int max_batch;
    oialr_params params;
    int *init;           /* enum init_kind per parameter */
    float *init_a;       /* fan_in or std per parameter */
    node *nodes;
    int nnodes, cap;
    float *act, *dact, *save, *scratch;
    size_t act_total, save_total, scratch_total;
    const float *x_in;   /* input of the current forward */
    uint8_t *targets;    /* [max_batch] copy of y */
    float *probs;        /* [max_batch, nclass] */
    int B;               /* batch of the last forward */
    int last_train, have_targets;
    float smoothing;
    oialr_rng rng;
    double flops;        /* forward flops per sample */
};

extern const op_def *const oialr_ops[OP_COUNT];
extern const op_def op_conv, op_batchnorm, op_maxpool, op_avgpool, op_gap;
extern const op_def op_patch, op_cls, op_pos, op_layernorm, op_attn, op_tokmean, op_tokpick;
extern const op_def op_dense_lr, op_conv_lr;

/* outputs and gradients of a node for the current batch */
static inline float *node_out(oialr_model *m, const node *n) {
    return n->op == OP_INPUT ? (float *)m->x_in : m->act + n->off;
}
static inline float *node_dout(oialr_model *m, const node *n) {
    return n->op == OP_INPUT ? NULL : m->dact + n->off;
}
static inline float *param_data(oialr_model *m, int i) {
    return i < 0 ? NULL : m->params.data + m->params.info[i].offset;
}
static inline float *param_grad(oialr_model *m, int i) {
    return i < 0 ? NULL : m->params.grad + m->params.info[i].offset;
}
static inline float *in_out(oialr_model *m, const node *n, int which) {
    return node_out(m, &m->nodes[which == 0 ? n->in0 : which == 1 ? n->in1 : n->in2]);
}
static inline float *in_dout(oialr_model *m, const node *n, int which) {
    return node_dout(m, &m->nodes[which == 0 ? n->in0 : which == 1 ? n->in1 : n->in2]);
}
static inline float *node_save(oialr_model *m, const node *n) { return m->save + n->save_off; }

/* ops.c: whether n's backward writes (=) the whole gradient of its input
 * `which` when told to (node.grad_set of that input, which graph_finalize
 * sets when n is the input's last consumer, whose backward runs first, and
 * reads it in that one slot only). */
int op_sets_input_grad(const node *n, int which);
/* whether n's backward is to write (=) the gradient of its input `which`
 * rather than add to it; the other consumers of that input add */
static inline int grad_set_by(const oialr_model *m, const node *n, int which) {
    const node *src = &m->nodes[which == 0 ? n->in0 : which == 1 ? n->in1 : n->in2];
    return src->grad_set && &m->nodes[src->last_consumer] == n;
}
/* A batch norm or a residual add whose only consumer is a ReLU writes the
 * ReLU's output itself (max(0, bn(x)), max(0, a + b)) and takes the ReLU's
 * gradient in its backward; the ReLU node then does nothing. One pass over
 * the activation less each way: these tensors stream from memory. */
static inline int writes_relu(const oialr_model *m, const node *n) {
    return (n->op == OP_BATCHNORM || n->op == OP_ADD) && n->consumers == 1 &&
           m->nodes[n->last_consumer].op == OP_RELU;
}

/* lowrank.c */
void lowrank_free(node_lowrank *lr);

/* params.c */
int params_add(oialr_params *p, const char *name, const char *layer, int kind, int ndim, const int64_t *shape);
int params_alloc(oialr_params *p);
void params_free(oialr_params *p);

/* graph.c: building */
int graph_param(oialr_model *m, const char *name, const char *layer, int kind, int ndim, const int64_t *shape,
                int init, float a);
int graph_node(oialr_model *m, int op, const char *name, int in0, int in1, int d0, int d1, int d2);
int graph_input(oialr_model *m);
int graph_dense(oialr_model *m, const char *name, int in, int OC, int bias);
/* the same, with the layer kind recorded for its parameters ("attn.q", ...) */
int graph_dense_kind(oialr_model *m, const char *name, const char *layer, int in, int OC, int bias);
int graph_act(oialr_model *m, int op, int in);
int graph_dropout(oialr_model *m, int in, float p);
int graph_add(oialr_model *m, int a, int b);
/* ops_conv.c */
int graph_conv(oialr_model *m, const char *name, int in, int OC, int K, int stride, int pad, int bias);
int graph_batchnorm(oialr_model *m, const char *name, int in);
int graph_pool(oialr_model *m, int op, int in, int K, int S, int pad);
int graph_gap(oialr_model *m, int in);
/* ops_vit.c */
int graph_patch(oialr_model *m, const char *name, int in, int P, int D);
int graph_cls(oialr_model *m, const char *name, int in);
int graph_pos(oialr_model *m, const char *name, int in);
int graph_layernorm(oialr_model *m, const char *name, int in);
int graph_attention(oialr_model *m, const char *name, int in, int heads);
int graph_tokens(oialr_model *m, int op, int in);
int graph_finalize(oialr_model *m, uint64_t seed);

/* spec parsers: one per model family (spec_mlp.c, ...) */
int spec_build_mlp(oialr_model *m, const char *args);
int spec_build_cnn(oialr_model *m, const char *args);
int spec_build_vit(oialr_model *m, const char *args);

#endif
