/*
 * record_example.c — record a trajectory from your own training loop with
 * liboialr's public C API, then read it back. Only <oialr/trajectory.h> is
 * needed; no part of oialr's trainer is used.
 *
 *   cc record_example.c $(pkg-config --cflags --libs oialr) -lm -o record_example
 *   ./record_example run.h5
 *   h5ls -r run.h5
 */
#include <oialr/trajectory.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define ROWS 64
#define COLS 32

static int die(const char *what, int rc) {
    fprintf(stderr, "record_example: %s: %s\n", what, oialr_errmsg()[0] ? oialr_errmsg() : oialr_strerror(rc));
    return 1;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "record_example.h5";
    static float w[ROWS * COLS], back[ROWS * COLS];
    int rc, layer;
    oialr_traj *t = NULL;

    /* 1. create (refuses to overwrite unless force), declare, begin */
    oialr_traj_options opt;
    oialr_traj_options_default(&opt);
    opt.force = 1;
    opt.seed = 7;
    opt.command_line = "record_example";
    if ((rc = oialr_traj_create(&t, path, &opt))) return die("create", rc);
    oialr_traj_set_config(t, "model", "one 64x32 dense layer, toy updates");
    if ((rc = oialr_traj_declare_layer(t, "fc.weight", ROWS, COLS, "dense", 0, NULL, &layer))) return die("declare", rc);
    if ((rc = oialr_traj_declare_metrics(t, "loss,lr"))) return die("metrics", rc);
    if ((rc = oialr_traj_begin(t))) return die("begin", rc); /* SWMR writing starts here */

    /* 2. your training loop: append a snapshot every 10 steps */
    for (int i = 0; i < ROWS * COLS; i++) w[i] = sinf((float)i);
    for (int64_t step = 0; step <= 100; step++) {
        for (int i = 0; i < ROWS * COLS; i++) w[i] *= 0.999f; /* "training" */
        if (step % 10 == 0) {
            double row[2] = {1.0 / (1.0 + (double)step), 0.01};
            if ((rc = oialr_traj_append(t, layer, step, w, 0))) return die("append", rc);
            if ((rc = oialr_traj_append_metrics(t, step, row, 2))) return die("append metrics", rc);
        }
    }
    if ((rc = oialr_traj_close(t))) return die("close", rc);

    /* 3. read it back: list layers, read the last snapshot only */
    if ((rc = oialr_traj_open(&t, path, OIALR_TRAJ_READ))) return die("open", rc);
    const oialr_traj_layer *l = oialr_traj_layer_at(t, 0);
    printf("%s: %s %lldx%lld, %lld snapshots, steps %lld..%lld\n", path, l->name, (long long)l->rows,
           (long long)l->cols, (long long)l->nsnap, (long long)l->steps[0], (long long)l->steps[l->nsnap - 1]);
    if ((rc = oialr_traj_read(t, 0, l->nsnap - 1, back, ROWS * COLS))) return die("read", rc);
    int same = 1;
    for (int i = 0; i < ROWS * COLS; i++) same &= back[i] == w[i];
    double loss[16];
    int64_t n;
    if ((rc = oialr_traj_read_column(t, "loss", loss, 16, &n))) return die("read loss", rc);
    printf("metrics rows %lld, last loss %.4f, last snapshot %s\n", (long long)n, loss[n - 1],
           same ? "matches" : "DIFFERS");
    oialr_traj_close(t);
    return same ? 0 : 1;
}
