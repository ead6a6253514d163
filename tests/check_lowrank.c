/*
 * check_lowrank.c — the low-rank layers of OIALR (nn/lowrank.h): the fast
 * kernels against references that form W = U Σ Vᵀ, and finite-difference
 * gradient checks of the input, Σ and the bias, over a table of shapes
 * (tall, wide, rank 1, full rank, a batch of one).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nn/lowrank.h"
#include "util_grad.h"

#define ATOL 1e-4
#define RTOL 1e-3

static const struct {
    int N, C, OC, R, bias;
} cases[] = {
    {4, 7, 5, 3, 1}, {1, 6, 9, 2, 1}, {8, 12, 4, 4, 0}, {3, 5, 5, 5, 1}, {6, 16, 10, 1, 1}, {130, 33, 21, 8, 1},
};
#define NCASE ((int)(sizeof cases / sizeof cases[0]))

typedef struct lr_ctx {
    int N, C, OC, R;
    float *x, *u, *s, *v, *b, *y, *mid, *scratch, *dx, *ds, *db;
} lr_ctx;

static void lr_alloc(lr_ctx *k, int i, uint64_t seed) {
    k->N = cases[i].N, k->C = cases[i].C, k->OC = cases[i].OC, k->R = cases[i].R;
    size_t N = (size_t)k->N, C = (size_t)k->C, OC = (size_t)k->OC, R = (size_t)k->R;
    k->x = tu_alloc(N * C), k->u = tu_alloc(OC * R), k->s = tu_alloc(R * R), k->v = tu_alloc(C * R);
    k->b = cases[i].bias ? tu_alloc(OC) : NULL;
    k->y = tu_alloc(N * OC), k->mid = tu_alloc(N * R), k->scratch = tu_alloc(lowrank_scratch(k->N, k->R));
    k->dx = tu_alloc(N * C), k->ds = tu_alloc(R * R), k->db = tu_alloc(OC);
    tu_rng r;
    tu_rng_seed(&r, seed);
    tu_fill_uniform(k->x, N * C, &r, -1, 1);
    tu_fill_uniform(k->u, OC * R, &r, -1, 1);
    tu_fill_uniform(k->s, R * R, &r, -1, 1);
    tu_fill_uniform(k->v, C * R, &r, -1, 1);
    if (k->b) tu_fill_uniform(k->b, OC, &r, -1, 1);
}

static void lr_free(lr_ctx *k) {
    free(k->x), free(k->u), free(k->s), free(k->v), free(k->b), free(k->y), free(k->mid), free(k->scratch);
    free(k->dx), free(k->ds), free(k->db);
}

static void lr_fwd(void *c) {
    lr_ctx *k = c;
    lowrank_forward(k->y, k->mid, k->scratch, k->x, k->u, k->s, k->v, k->b, k->N, k->C, k->OC, k->R);
}

static void lr_bwd(void *c, const float *dy) {
    lr_ctx *k = c;
    lowrank_backward(k->dx, k->ds, k->b ? k->db : NULL, k->scratch, dy, k->mid, k->u, k->s, k->v, k->N, k->C,
                     k->OC, k->R);
}

/* fast == naive, forward and backward, into pre-filled gradients */
START_TEST(test_lowrank_fast_vs_naive) {
    lr_ctx k;
    lr_alloc(&k, _i, 11 + (uint64_t)_i);
    size_t N = (size_t)k.N, C = (size_t)k.C, OC = (size_t)k.OC, R = (size_t)k.R;
    float *y2 = tu_alloc(N * OC), *dy = tu_alloc(N * OC), *dx2 = tu_alloc(N * C), *ds2 = tu_alloc(R * R);
    float *db2 = tu_alloc(OC);
    tu_rng r;
    tu_rng_seed(&r, 5);
    tu_fill_uniform(dy, N * OC, &r, -1, 1);
    tu_fill_uniform(k.dx, N * C, &r, -1, 1), memcpy(dx2, k.dx, N * C * sizeof *dx2);
    tu_fill_uniform(k.ds, R * R, &r, -1, 1), memcpy(ds2, k.ds, R * R * sizeof *ds2);
    tu_fill_uniform(k.db, OC, &r, -1, 1), memcpy(db2, k.db, OC * sizeof *db2);
    lr_fwd(&k);
    lowrank_forward_naive(y2, k.x, k.u, k.s, k.v, k.b, k.N, k.C, k.OC, k.R);
    ck_assert_msg(tu_close_ratio(k.y, y2, N * OC, ATOL, RTOL) <= 1, "forward, case %d", _i);
    for (int with_dinp = 0; with_dinp < 2; with_dinp++) {
        lowrank_backward(with_dinp ? k.dx : NULL, k.ds, k.db, k.scratch, dy, k.mid, k.u, k.s, k.v, k.N, k.C, k.OC,
                         k.R);
        lowrank_backward_naive(with_dinp ? dx2 : NULL, ds2, db2, dy, k.x, k.u, k.s, k.v, k.N, k.C, k.OC, k.R);
        ck_assert_msg(tu_close_ratio(k.dx, dx2, N * C, ATOL, RTOL) <= 1, "dinp, case %d", _i);
        ck_assert_msg(tu_close_ratio(k.ds, ds2, R * R, ATOL, RTOL) <= 1, "ds, case %d", _i);
        ck_assert_msg(tu_close_ratio(k.db, db2, OC, ATOL, RTOL) <= 1, "db, case %d", _i);
    }
    free(y2), free(dy), free(dx2), free(ds2), free(db2);
    lr_free(&k);
}
END_TEST

START_TEST(test_lowrank_gradcheck) {
    lr_ctx k;
    lr_alloc(&k, _i, 3 + (uint64_t)_i);
    size_t N = (size_t)k.N, C = (size_t)k.C, OC = (size_t)k.OC, R = (size_t)k.R;
    tu_param ps[3] = {{"x", k.x, k.dx, N * C}, {"s", k.s, k.ds, R * R}, {"b", k.b, k.b ? k.db : NULL, OC}};
    tu_grad_problem p = {&k, lr_fwd, lr_bwd, k.y, N * OC, ps, k.b ? 3 : 2};
    tu_grad_result res = tu_grad_check(&p, NULL);
    ck_assert_msg(res.ok, "low-rank dense grad, case %d: %s", _i, res.msg);
    lr_free(&k);
}
END_TEST

static Suite *lowrank_suite(void) {
    Suite *s = suite_create("lowrank");
    TCase *core = tcase_create("Core");
    tcase_add_loop_test(core, test_lowrank_fast_vs_naive, 0, NCASE);
    tcase_add_loop_test(core, test_lowrank_gradcheck, 0, NCASE);
    suite_add_tcase(s, core);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(lowrank_suite());
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
