/*
 * cmd_train.c — `oialr train`: load a dataset, build a model from its spec,
 * train with progress, report validation and test accuracy per epoch.
 */
#include "cli.h"
#include "cli_mpi.h"
#include "oialr.h"
#include "oialr/record.h"

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --threads is bounded by 4 x the online cores: more buys nothing, and
 * OpenBLAS asked for 1024 threads under a memory limit could not start them,
 * then hung at exit joining them. */
static long long max_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return 4LL * (n > 0 ? n : 1);
}

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: oialr train [options]\n"
            "\n"
            "Train a model and report validation/test accuracy after every epoch.\n"
            "\n"
            "model and data:\n"
            "  --model SPEC          mlp:512,512 (default), see docs/models.md\n"
            "  --dataset NAME        fashion-mnist (default), mnist, cifar10, synthetic,\n"
            "                        idx (IDX files named as MNIST's, any class count)\n"
            "  --data DIR            directory of the dataset files (IDX, plain or .gz;\n"
            "                        CIFAR-10 data_batch_*.bin); default for fashion-mnist:\n"
            "                        " OIALR_FASHION_MNIST_DIR "\n"
            "  --val N               validation samples taken from the training set\n"
            "                        (default: 5000, or a tenth of a smaller set)\n"
            "  --limit N             use only the first N training samples (0: all)\n"
            "\n"
            "optimisation:\n"
            "  --epochs N            10          --batch N     128\n"
            "  --opt sgd|adamw       sgd         --lr X        0.05 (sgd), 0.001 (adamw)\n"
            "  --momentum X          0.9         --nesterov    Nesterov momentum (sgd)\n"
            "  --wd X                weight decay (0 for sgd, 0.01 for adamw)\n"
            "  --beta1 X --beta2 X   AdamW moments (0.9, 0.999)\n"
            "  --sched constant|step|cosine      learning-rate schedule (constant)\n"
            "  --warmup N            linear warm-up steps (0)\n"
            "  --step-size N --gamma X           step schedule: lr *= gamma every N steps\n"
            "  --label-smoothing X   0\n"
            "  --max-steps N         stop after N steps (0: no limit)\n"
            "  --eval-every N        also evaluate on the validation set every N steps\n"
            "\n"
            "recording (docs/format.md):\n"
            "  --record FILE         write an HDF5 trajectory: weight matrices, metrics,\n"
            "                        configuration and a checkpoint at every epoch end\n"
            "  --every N             snapshot every N steps (50; 0: only start/end)\n"
            "  --every-epoch         also snapshot at every epoch end\n"
            "  --record-layers GLOBS only the weights whose name matches one of these\n"
            "                        comma-separated patterns, e.g. 'fc*,head'\n"
            "  --force               replace FILE if it is an existing regular file\n"
            "  --compress            shuffle + deflate the snapshots (smaller, slower)\n"
            "  --checkpoint-every N  also checkpoint every N steps (1000; 0: epoch ends only)\n"
            "  --resume FILE         continue the run recorded in FILE from its last\n"
            "                        checkpoint (after a kill or Ctrl-C), with its own\n"
            "                        flags; only --threads and --quiet may be given too\n"
            "\n"
            "low-rank training (OIALR, docs/lowrank.md):\n"
            "  --oialr POLICY        switch each eligible layer to U Sigma V^T once its\n"
            "                        bases settle, then train Sigma only. POLICY: auto\n"
            "                        (recommended), stability:TAU[,lag=STEPS],\n"
            "                        mean-stability:TAU, delay:STEPS\n"
            "  --oialr-every N       steps between checks (default: half an epoch)\n"
            "  --oialr-min-steps N   no switch before step N (0)\n"
            "  --beta X              drop singular values below X * sigma_1 (0.15)\n"
            "  --oialr-keep-first    keep the first layer full rank\n"
            "  --oialr-classifier    let the classifier switch too (default: full rank)\n"
            "  --oialr-moments reset|project   the optimizer's moments at a switch or\n"
            "                        rotation: zeroed (default) or carried by the bases\n"
            "\n"
            "run:\n"
            "  --seed N              seed of initialisation, split, order, dropout (0)\n"
            "  --threads N           BLAS threads, 1..4 x the online cores (here 1..%lld;\n"
            "                        default: OpenBLAS's choice)\n"
            "  --quiet               only the final line\n"
            "  --mpi-check-every N   under mpirun (docs/distributed.md): compare the\n"
            "                        processes' parameters every N steps (100; 0: at\n"
            "                        the end only); under mpirun, --threads defaults\n"
            "                        to a machine's cores shared by its processes\n"
            "  -h, --help            this help\n"
            "\n"
            "environment: OIALR_KERNELS=blas|avx2|avx512 overrides the layer kernels\n"
            "chosen for this CPU (the 'kernels:' line names them; docs/layers.md)\n"
            "\n"
            "exit status: 0 done, 1 failure, 2 usage error, 3 training diverged (NaN/Inf),\n"
            "130 stopped by a signal (the run checkpoints: continue it with --resume)\n",
            max_threads());
}

static oialr_trainer *g_trainer;
static void on_signal(int sig) {
    (void)sig;
    if (g_trainer) g_trainer->stop = 1;
}

typedef struct train_ui {
    cli_progress prog;
    int quiet;
    int lowrank; /* show the trainable share */
} train_ui;

static int ui_step_end(oialr_trainer *t, void *user) {
    train_ui *ui = user;
    if (ui->quiet) return 0;
    const oialr_train_metrics *m = &t->metrics;
    int64_t in_epoch = m->step - (int64_t)m->epoch * t->steps_per_epoch;
    double eta = m->samples_per_s > 0
                     ? (double)(t->total_steps - m->step) * t->cfg.batch / m->samples_per_s
                     : 0.0;
    char share[32] = "";
    if (ui->lowrank) snprintf(share, sizeof share, "  trainable %.1f%%", 100.0 * m->trainable_fraction);
    cli_progress_line(&ui->prog, 0, "epoch %d/%d  step %lld/%lld  loss %.4f  acc %.2f%%%s  %.0f samples/s  ETA %.0fs",
                      m->epoch + 1, t->cfg.epochs, (long long)in_epoch, (long long)t->steps_per_epoch, (double)m->loss,
                      100.0 * m->train_acc, share, m->samples_per_s, eta);
    return 0;
}

static int ui_epoch_end(oialr_trainer *t, void *user) {
    train_ui *ui = user;
    const oialr_train_metrics *m = &t->metrics;
    if (!ui->quiet) {
        if (ui->prog.tty) fprintf(stderr, "\r\033[K");
        char share[32] = "";
        if (ui->lowrank) snprintf(share, sizeof share, "  trainable %.1f%%", 100.0 * m->trainable_fraction);
        char val[32] = "-"; /* --val 0: no validation set (val_acc NaN) */
        if (m->val_acc == m->val_acc) snprintf(val, sizeof val, "%.2f%%", 100.0 * m->val_acc);
        fprintf(stderr, "epoch %d/%d  loss %.4f  train %.2f%%  val %s  test %.2f%%%s  %.0f samples/s  %.1fs\n",
                m->epoch + 1, t->cfg.epochs, (double)m->loss, 100.0 * m->train_acc, val, 100.0 * m->test_acc, share,
                m->samples_per_s, m->seconds);
    }
    return 0;
}

static int fail(const char *what, int rc) {
    const char *msg = oialr_errmsg();
    fprintf(stderr, "oialr train: %s: %s\n", what, msg[0] ? msg : oialr_strerror(rc));
    return 1;
}

/* 1 if the directory that would hold path exists and is writable (errno
 * set otherwise): a bad --record path is refused before the data loads. */
static int writable_dir_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    return access(dir, W_OK | X_OK) == 0;
}

/* The per-layer table at the end of an OIALR run. */
static void print_lowrank(const oialr_hook *h, const oialr_params *p, double train_seconds) {
    size_t full = 0;
    for (int i = 0; i < p->count; i++)
        if (p->info[i].trainable) full += p->info[i].capacity;
    double hs = oialr_lowrank_seconds(h);
    fprintf(stderr, "oialr: %-22s %11s %12s %9s %10s %10s  (%.1fs in checks and switches) %.1f%% of the run\n",
            "layer", "switch step", "stability", "rank", "trainable", "stored", hs,
            train_seconds > 0 ? 100.0 * hs / train_seconds : 0.0);
    for (int i = 0; i < oialr_lowrank_nlayers(h); i++) {
        const oialr_lowrank_layer *l = oialr_lowrank_layer_at(h, i);
        double mn = (double)l->rows * (double)l->cols, r = l->rank;
        int low = l->switch_step >= 0;
        char step[32], stab[32];
        snprintf(step, sizeof step, low ? "%lld" : "-", (long long)l->switch_step);
        snprintf(stab, sizeof stab, low && !isnan(l->switch_stability) ? "%.4f" : "-", l->switch_stability);
        fprintf(stderr, "oialr: %-22s %11s %12s %4d/%-4lld %9.2f%% %9.2f%%%s%s\n", l->name, step, stab, l->rank,
                (long long)(l->rows < l->cols ? l->rows : l->cols), 100.0 * (low ? r * r : mn) / mn,
                100.0 * (low ? r * (l->rows + l->cols + r) : mn) / mn, l->eligible ? "" : "  full rank: ",
                l->eligible ? "" : l->why);
    }
    size_t now = oialr_params_trainable(p);
    fprintf(stderr, "oialr: trainable %.2f%% of the full-rank model's parameters\n", full ? 100.0 * now / full : 100.0);
}

/* Everything the flags set. The numbers come first and are compared as
 * bytes (a resume refuses a flag that changes one), the strings after. */
typedef struct train_args {
    struct {
        long long val_n, limit, threads, seed;
        int quiet, opt_kind;
        double lr, momentum, wd, beta1, beta2, ls, gamma;
        long long epochs, batch, warmup, step_size, max_steps, eval_every;
        int sched, nesterov;
        long long record_every, ckpt_every;
        int record_epoch, record_force, record_compress;
        oialr_lowrank_options lo;
        long long lo_every, lo_min;
        long long mpi_check_every;
    } n;
    const char *spec, *dataset, *data_dir, *record, *record_layers, *lowrank, *resume;
} train_args;

static const char *const moment_names[] = {"project", "reset", NULL};

static void args_default(train_args *a) {
    memset(a, 0, sizeof *a);
    a->spec = "mlp:512,512";
    a->dataset = "fashion-mnist";
    a->n.val_n = -1;
    a->n.opt_kind = OIALR_OPT_SGD;
    a->n.lr = -1;
    a->n.momentum = 0.9;
    a->n.wd = -1;
    a->n.beta1 = 0.9;
    a->n.beta2 = 0.999;
    a->n.gamma = 0.1;
    a->n.epochs = 10;
    a->n.batch = 128;
    a->n.sched = OIALR_SCHED_CONSTANT;
    a->n.record_every = 50;
    a->n.ckpt_every = OIALR_RECORD_CHECKPOINT_EVERY;
    oialr_lowrank_options_default(&a->n.lo);
    a->n.mpi_check_every = 100;
}

/* Flag i (and its value) of argv into a. Returns 0, 2 for a usage error
 * (printed), or -1 for --help (printed). */
static int parse_flag(train_args *a, int argc, char **argv, int *ip) {
    const char *C = "train";
    int i = *ip, rc = 0;
    const char *x = argv[i], *v = NULL;
#define VALUE() do { if (!(v = cli_value(C, argc, argv, &i))) return 2; } while (0)
    if (!strcmp(x, "-h") || !strcmp(x, "--help")) { train_usage(stdout); return -1; }
    else if (!strcmp(x, "--model")) { VALUE(); a->spec = v; }
    else if (!strcmp(x, "--dataset")) { VALUE(); a->dataset = v; }
    else if (!strcmp(x, "--data")) { VALUE(); a->data_dir = v; }
    else if (!strcmp(x, "--val")) { VALUE(); rc = cli_int(C, x, v, 0, 1000000000, &a->n.val_n); }
    else if (!strcmp(x, "--limit")) { VALUE(); rc = cli_int(C, x, v, 0, 1000000000, &a->n.limit); }
    else if (!strcmp(x, "--epochs")) { VALUE(); rc = cli_int(C, x, v, 1, 100000, &a->n.epochs); }
    else if (!strcmp(x, "--batch")) { VALUE(); rc = cli_int(C, x, v, 1, 65536, &a->n.batch); }
    else if (!strcmp(x, "--opt")) { VALUE(); rc = cli_choice(C, x, v, oialr_opt_names, &a->n.opt_kind); }
    else if (!strcmp(x, "--lr")) { VALUE(); rc = cli_float(C, x, v, 0, 100, &a->n.lr); }
    else if (!strcmp(x, "--momentum")) { VALUE(); rc = cli_float(C, x, v, 0, 0.9999, &a->n.momentum); }
    else if (!strcmp(x, "--nesterov")) a->n.nesterov = 1;
    else if (!strcmp(x, "--wd")) { VALUE(); rc = cli_float(C, x, v, 0, 10, &a->n.wd); }
    else if (!strcmp(x, "--beta1")) { VALUE(); rc = cli_float(C, x, v, 0, 0.9999999, &a->n.beta1); }
    else if (!strcmp(x, "--beta2")) { VALUE(); rc = cli_float(C, x, v, 0, 0.9999999, &a->n.beta2); }
    else if (!strcmp(x, "--sched")) { VALUE(); rc = cli_choice(C, x, v, oialr_sched_names, &a->n.sched); }
    else if (!strcmp(x, "--warmup")) { VALUE(); rc = cli_int(C, x, v, 0, 1LL << 40, &a->n.warmup); }
    else if (!strcmp(x, "--step-size")) { VALUE(); rc = cli_int(C, x, v, 1, 1LL << 40, &a->n.step_size); }
    else if (!strcmp(x, "--gamma")) { VALUE(); rc = cli_float(C, x, v, 0, 1, &a->n.gamma); }
    else if (!strcmp(x, "--label-smoothing")) { VALUE(); rc = cli_float(C, x, v, 0, 0.99, &a->n.ls); }
    else if (!strcmp(x, "--max-steps")) { VALUE(); rc = cli_int(C, x, v, 0, 1LL << 40, &a->n.max_steps); }
    else if (!strcmp(x, "--eval-every")) { VALUE(); rc = cli_int(C, x, v, 0, INT_MAX, &a->n.eval_every); }
    else if (!strcmp(x, "--seed")) { VALUE(); rc = cli_int(C, x, v, 0, (1LL << 62), &a->n.seed); }
    else if (!strcmp(x, "--threads")) { VALUE(); rc = cli_int(C, x, v, 1, max_threads(), &a->n.threads); }
    else if (!strcmp(x, "--quiet")) a->n.quiet = 1;
    else if (!strcmp(x, "--mpi-check-every")) { VALUE(); rc = cli_int(C, x, v, 0, 1LL << 40, &a->n.mpi_check_every); }
    else if (!strcmp(x, "--record")) { VALUE(); a->record = v; }
    else if (!strcmp(x, "--every")) { VALUE(); rc = cli_int(C, x, v, 0, 1LL << 40, &a->n.record_every); }
    else if (!strcmp(x, "--every-epoch")) a->n.record_epoch = 1;
    else if (!strcmp(x, "--record-layers")) { VALUE(); a->record_layers = v; }
    else if (!strcmp(x, "--force")) a->n.record_force = 1;
    else if (!strcmp(x, "--compress")) a->n.record_compress = 1;
    else if (!strcmp(x, "--checkpoint-every")) { VALUE(); rc = cli_int(C, x, v, 0, 1LL << 40, &a->n.ckpt_every); }
    else if (!strcmp(x, "--resume")) { VALUE(); a->resume = v; }
    else if (!strcmp(x, "--oialr")) {
        VALUE();
        a->lowrank = v;
        if (oialr_policy_parse(v, &a->n.lo.policy)) {
            fprintf(stderr, "oialr train: --oialr: %s\n", oialr_errmsg());
            return 2;
        }
    }
    else if (!strcmp(x, "--oialr-every")) { VALUE(); rc = cli_int(C, x, v, 1, 1LL << 40, &a->n.lo_every); }
    else if (!strcmp(x, "--oialr-min-steps")) { VALUE(); rc = cli_int(C, x, v, 0, 1LL << 40, &a->n.lo_min); }
    else if (!strcmp(x, "--beta")) { VALUE(); rc = cli_float(C, x, v, 0, 0.999, &a->n.lo.beta); }
    else if (!strcmp(x, "--oialr-keep-first")) a->n.lo.keep_first = 1;
    else if (!strcmp(x, "--oialr-classifier")) a->n.lo.keep_last = 0;
    else if (!strcmp(x, "--oialr-moments")) { VALUE(); rc = cli_choice(C, x, v, moment_names, &a->n.lo.moments); }
    else {
        fprintf(stderr, "oialr train: unknown option '%s' (try 'oialr train --help')\n", x);
        return 2;
    }
#undef VALUE
    *ip = i;
    return rc;
}

static int parse_args(train_args *a, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        int rc = parse_flag(a, argc, argv, &i);
        if (rc) return rc;
    }
    return 0;
}

static int same_str(const char *x, const char *y) { return (!x && !y) || (x && y && !strcmp(x, y)); }

static int args_same(const train_args *x, const train_args *y) {
    return !memcmp(&x->n, &y->n, sizeof x->n) && same_str(x->spec, y->spec) && same_str(x->dataset, y->dataset) &&
           same_str(x->data_dir, y->data_dir) && same_str(x->record, y->record) &&
           same_str(x->record_layers, y->record_layers) && same_str(x->lowrank, y->lowrank);
}

static int train_main(train_args *A, int argc, char **argv);

/* The arguments of the recorded run, kept in /config/argv (one per line). */
#define ARGV_KEY "argv"

/* --resume FILE: the run's own flags from FILE, then the ones given now,
 * each of which may not change what the run was (--threads and --quiet may
 * differ: they change neither the result nor the file). */
static int resume_args(train_args *a, int argc, char **argv, char **saved, char ***sargv) {
    const char *file = a->resume;
    oialr_traj *t = NULL;
    /* a killed run's file opens in SWMR-read mode: no need to say so here */
    oialr_set_log(NULL, NULL, OIALR_LOG_WARN);
    int rc = oialr_traj_open(&t, file, OIALR_TRAJ_READ);
    oialr_set_log(NULL, NULL, OIALR_LOG_INFO);
    char *buf = NULL;
    if (!rc) {
        size_t cap = 1 << 16;
        buf = malloc(cap);
        rc = buf ? oialr_traj_get_config(t, ARGV_KEY, buf, cap) : OIALR_ERR_NOMEM;
        if (rc == OIALR_ERR_NOTFOUND)
            oialr_seterr(rc, "%s: no /config/argv (recorded by an older oialr, or not by oialr train): cannot resume",
                         file);
    }
    char cmdline[1024] = "";
    if (t && oialr_traj_get_info(t)->command_line)
        snprintf(cmdline, sizeof cmdline, "%s", oialr_traj_get_info(t)->command_line);
    if (t) oialr_traj_close(t);
    if (rc) {
        fprintf(stderr, "oialr train: --resume: %s\n", oialr_errmsg());
        free(buf);
        return 1;
    }
    int n = 1;
    for (char *p = buf; *p; p++) n += *p == '\n';
    char **v = calloc((size_t)n + 2, sizeof *v);
    if (!v) {
        free(buf);
        return 1;
    }
    int k = 0;
    v[k++] = argv[0];
    for (char *p = strtok(buf, "\n"); p; p = strtok(NULL, "\n")) v[k++] = p;
    *saved = buf;
    *sargv = v;
    train_args run;
    args_default(&run);
    if ((rc = parse_args(&run, k, v))) {
        fprintf(stderr, "oialr train: --resume: %s: its stored arguments do not parse\n", file);
        return rc < 0 ? 1 : rc;
    }
    if (!run.record || strcmp(run.record, file)) {
        /* the file may have been moved: it is the one to append to */
        run.record = file;
    }
    /* each flag given now, on top of the run's */
    for (int i = 1; i < argc; i++) {
        train_args x = run;
        memcpy(&x.n, &run.n, sizeof x.n); /* bytes, padding included */
        const char *flag = argv[i];
        if ((rc = parse_flag(&x, argc, argv, &i))) return rc < 0 ? 0 : rc;
        if (!strcmp(flag, "--resume") || !strcmp(flag, "--quiet") || !strcmp(flag, "--threads") ||
            !strcmp(flag, "--mpi-check-every")) {
            run.n.quiet = x.n.quiet;
            run.n.threads = x.n.threads;
            run.n.mpi_check_every = x.n.mpi_check_every;
            continue;
        }
        if (!strcmp(flag, "--record") && same_str(x.record, file)) continue;
        if (!args_same(&x, &run)) {
            fprintf(stderr,
                    "oialr train: --resume: %s contradicts the run being resumed (%s was recorded with: %s); "
                    "leave it out to continue the run as it was\n",
                    flag, file, cmdline);
            return 2;
        }
    }
    run.resume = file;
    *a = run;
    memcpy(&a->n, &run.n, sizeof a->n);
    return 0;
}

static int train_cmd(int argc, char **argv);

/* Under mpirun every process runs this with the same arguments; MPI starts
 * and ends here (tools/mpi.c), and nowhere else in the CLI. */
int cmd_train(int argc, char **argv) {
    cli_mpi_start(&argc, &argv);
    return cli_mpi_finish(train_cmd(argc, argv));
}

static int train_cmd(int argc, char **argv) {
    train_args A;
    args_default(&A);
    char *saved = NULL, **sargv = NULL;
    int rc = parse_args(&A, argc, argv);
    if (rc) return rc < 0 ? 0 : rc;
    if (A.resume) {
        int rrc = resume_args(&A, argc, argv, &saved, &sargv);
        if (rrc || !A.resume) {
            free(saved);
            free(sargv);
            return rrc;
        }
    }
    /* a --resume file one process could not read stops all */
    int status = cli_mpi_agree(0);
    if (!status) status = train_main(&A, argc, argv);
    free(saved);
    free(sargv);
    return status;
}

static int train_main(train_args *A, int argc, char **argv) {
    const char *spec = A->spec, *dataset = A->dataset, *data_dir = A->data_dir;
    long long val_n = A->n.val_n, limit = A->n.limit, threads = A->n.threads, seed = A->n.seed;
    int quiet = A->n.quiet, opt_kind = A->n.opt_kind;
    double lr = A->n.lr, momentum = A->n.momentum, wd = A->n.wd, beta1 = A->n.beta1, beta2 = A->n.beta2,
           ls = A->n.ls, gamma = A->n.gamma;
    long long epochs = A->n.epochs, batch = A->n.batch, warmup = A->n.warmup, step_size = A->n.step_size,
              max_steps = A->n.max_steps, eval_every = A->n.eval_every;
    int sched = A->n.sched, nesterov = A->n.nesterov;
    const char *record = A->record, *record_layers = A->record_layers;
    long long record_every = A->n.record_every;
    int record_epoch = A->n.record_epoch, record_force = A->n.record_force, record_compress = A->n.record_compress;
    const char *lowrank = A->lowrank;
    oialr_lowrank_options lo = A->n.lo;
    long long lo_every = A->n.lo_every, lo_min = A->n.lo_min;
    int rc = 0;
    /* data-parallel (docs/distributed.md): only process 0 speaks and writes */
    const char *resume = A->resume ? record : NULL;
    int dist = g_mpi.size > 1;
    if (g_mpi.rank > 0) {
        quiet = 1;
        record = NULL;
    }
    g_mpi.check_every = A->n.mpi_check_every;
    if (dist && batch < g_mpi.size) {
        fprintf(stderr, "oialr train: --batch %lld is smaller than the %d processes: each needs a share of the batch\n",
                batch, g_mpi.size);
        return 2;
    }
    if (dist && !threads) {
        /* the cores of this machine shared by its processes */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 && cores / g_mpi.local_size > 1 ? cores / g_mpi.local_size : 1;
    }
    if (sched == OIALR_SCHED_STEP && step_size == 0) {
        fprintf(stderr, "oialr train: --sched step needs --step-size N\n");
        return 2;
    }
    if (oialr_kernels_env_check()) { /* the library ignores other values; a typo should not */
        fprintf(stderr, "oialr train: %s\n", oialr_errmsg());
        return 2;
    }
    if (!lowrank && (lo_every || lo_min || lo.keep_first || !lo.keep_last)) {
        fprintf(stderr, "oialr train: the --oialr-* flags need --oialr POLICY\n");
        return 2;
    }
    lo.every = lo_every;
    lo.min_steps = lo_min;
    g_mpi.threads = (int)threads;
    if (quiet) oialr_set_log(NULL, NULL, OIALR_LOG_WARN); /* no notices (switches, ...): the final line */
    if (threads) oialr_set_threads((int)threads);
    if (record && !A->resume && oialr_output_check(record, record_force)) {
        fprintf(stderr, "oialr train: %s\n", oialr_errmsg());
        return 1;
    }
    if (record && !writable_dir_of(record)) {
        fprintf(stderr, "oialr train: cannot write %s: %s\n", record, strerror(errno));
        return 1;
    }

    /* --- data --- */
    /* everything below is freed at 'out', on success and failure alike */
    oialr_dataset train_ds = {0}, test_ds = {0};
    oialr_loader trl = {0}, val = {0}, tel = {0};
    oialr_model *model = NULL;
    oialr_trainer trainer;
    memset(&trainer, 0, sizeof trainer);
    oialr_hook rec_hook = {0}, lr_hook = {0}, mpi_hook = {0};
    int status = 0;
    double t0 = oialr_now();
    if (!strcmp(dataset, "synthetic")) {
        /* one draw, so training and test share the class prototypes */
        if ((rc = oialr_dataset_synthetic(&train_ds, 7000, 1, 28, 28, 10, 0.25f, 1)) ||
            (rc = oialr_dataset_take_tail(&train_ds, 1000, &test_ds))) {
            status = fail("synthetic data", rc);
            goto out;
        }
    } else {
        if ((rc = oialr_dataset_load(&train_ds, dataset, data_dir, OIALR_SPLIT_TRAIN))) {
            status = fail("training data", rc);
            goto out;
        }
        if ((rc = oialr_dataset_load(&test_ds, dataset, data_dir, OIALR_SPLIT_TEST))) {
            status = fail("test data", rc);
            goto out;
        }
    }
    if (limit > 0 && limit < train_ds.n) train_ds.n = limit;
    if (val_n < 0) val_n = train_ds.n / 10 < 5000 ? train_ds.n / 10 : 5000;
    if (val_n >= train_ds.n) {
        fprintf(stderr, "oialr train: --val %lld leaves no training samples (the training set has %lld)\n", val_n,
                (long long)train_ds.n);
        status = 2;
        goto out;
    }
    if (test_ds.c != train_ds.c || test_ds.h != train_ds.h || test_ds.w != train_ds.w) {
        fprintf(stderr, "oialr train: training and test images differ in shape\n");
        status = 1;
        goto out;
    }
    /* the model scores every class of either split: a test label above the
     * training labels is then a wrong answer, not an error after an epoch */
    if (test_ds.nclass > train_ds.nclass) train_ds.nclass = test_ds.nclass;
    float mean[4], std[4];
    oialr_dataset_stats(&train_ds, mean, std);
    if ((rc = oialr_loader_split(&trl, &val, &train_ds, val_n, (uint64_t)seed))) {
        status = fail("split", rc);
        goto out;
    }
    if ((rc = oialr_loader_init(&tel, &test_ds, 0, (uint64_t)seed))) {
        status = fail("test loader", rc);
        goto out;
    }
    oialr_loader_set_norm(&trl, mean, std);
    oialr_loader_set_norm(&val, mean, std);
    oialr_loader_set_norm(&tel, mean, std);
    if (!quiet)
        fprintf(stderr, "data: %s, %lld train / %lld validation / %lld test images of %dx%dx%d, %d classes (%.1fs)\n",
                dataset, (long long)trl.n, (long long)val.n, (long long)tel.n, train_ds.c, train_ds.h, train_ds.w,
                train_ds.nclass, oialr_now() - t0);

    /* --- model --- */
    if ((rc = oialr_model_create(&model, spec, train_ds.c, train_ds.h, train_ds.w, train_ds.nclass, (int)batch,
                                 (uint64_t)seed))) {
        status = fail("model", rc);
        goto out;
    }
    if (!quiet) {
        fprintf(stderr, "model: %s\n", oialr_model_spec(model));
        fprintf(stderr, "kernels: %s\n", oialr_kernels_name());
        oialr_model_describe(model, stderr);
    }

    oialr_train_config cfg;
    oialr_train_defaults(&cfg);
    cfg.epochs = (int)epochs;
    cfg.batch = (int)batch;
    cfg.seed = (uint64_t)seed;
    cfg.max_steps = max_steps;
    cfg.eval_every = (int)eval_every;
    cfg.label_smoothing = (float)ls;
    oialr_optim_defaults(&cfg.optim, opt_kind);
    if (lr >= 0) cfg.optim.lr = (float)lr;
    if (wd >= 0) cfg.optim.weight_decay = (float)wd;
    cfg.optim.momentum = (float)momentum;
    cfg.optim.nesterov = nesterov;
    cfg.optim.beta1 = (float)beta1;
    cfg.optim.beta2 = (float)beta2;
    cfg.schedule.kind = sched;
    cfg.schedule.warmup = warmup;
    cfg.schedule.step_size = step_size;
    cfg.schedule.gamma = (float)gamma;
    if (dist) {
        cfg.dist.rank = g_mpi.rank;
        cfg.dist.size = g_mpi.size;
        cfg.dist.allreduce = cli_mpi_allreduce;
    }

    if ((rc = oialr_trainer_init(&trainer, &cfg, model, &trl, &val, &tel))) {
        status = fail("trainer", rc);
        goto out;
    }
    train_ui ui = {.quiet = quiet, .lowrank = lowrank != NULL};
    cli_progress_init(&ui.prog);
    oialr_hook ui_hook = {.name = "progress", .user = &ui, .step_end = ui_step_end, .epoch_end = ui_epoch_end};
    oialr_trainer_add_hook(&trainer, &ui_hook);
    if (record) {
        char *cmdline = cli_join(argc, argv);
        if (dist && cmdline) {
            /* the trajectory says how the run was launched */
            size_t cn = strlen(cmdline) + 32;
            char *c2 = malloc(cn);
            if (c2) snprintf(c2, cn, "mpirun -np %d %s", g_mpi.size, cmdline);
            free(cmdline);
            cmdline = c2;
        }
        /* the flags as given, one per line, for --resume */
        size_t an = 1;
        for (int i = 1; i < argc; i++) an += strlen(argv[i]) + 1;
        char *args = malloc(an);
        if (args) {
            args[0] = '\0';
            for (int i = 1; i < argc; i++) {
                if (strchr(argv[i], '\n')) {
                    oialr_log(OIALR_LOG_WARN, "an argument holds a newline: this run cannot be resumed");
                    args[0] = '\0';
                    break;
                }
                strcat(args, argv[i]);
                if (i + 1 < argc) strcat(args, "\n");
            }
        }
        const char *keys[] = {ARGV_KEY, "dataset", "data_dir", "val", "limit", "oialr", "oialr_every", "oialr_min_steps",
                              "oialr_beta", "oialr_keep_first", "oialr_classifier", "oialr_moments"};
        char val_s[32], limit_s[32], pol_s[64] = "none", every_s[32], min_s[32], beta_s[32];
        snprintf(val_s, sizeof val_s, "%lld", val_n);
        snprintf(limit_s, sizeof limit_s, "%lld", limit);
        if (lowrank) oialr_policy_format(&lo.policy, pol_s, sizeof pol_s);
        snprintf(every_s, sizeof every_s, "%lld", lo_every ? lo_every : (long long)((trainer.steps_per_epoch + 1) / 2));
        snprintf(min_s, sizeof min_s, "%lld", lo_min);
        snprintf(beta_s, sizeof beta_s, "%g", lo.beta);
        const char *vals[] = {args ? args : "", dataset, data_dir ? data_dir : "", val_s, limit_s, pol_s, every_s, min_s, beta_s,
                              lo.keep_first ? "1" : "0", lo.keep_last ? "0" : "1", moment_names[lo.moments]};
        oialr_record_options ro;
        oialr_record_options_default(&ro);
        ro.path = record;
        ro.every = record_every;
        ro.every_epoch = record_epoch;
        ro.layers = record_layers;
        ro.force = record_force;
        ro.compress = record_compress ? 4 : 0;
        ro.seed = (uint64_t)seed;
        ro.command_line = cmdline;
        ro.nconfig = lowrank ? 12 : 5;
        ro.config_keys = keys;
        ro.config_values = vals;
        ro.checkpoint_every = A->n.ckpt_every;
        ro.resume = A->resume != NULL;
        rc = oialr_record_hook_init(&rec_hook, &ro);
        free(cmdline);
        free(args);
        if (rc) {
            status = fail("record", rc);
            goto out;
        }
        oialr_trainer_add_hook(&trainer, &rec_hook);
    }
    if (lowrank) {
        /* after the recorder: a step's snapshot is taken before its switch */
        lo.recorder = record ? &rec_hook : NULL;
        if ((rc = oialr_lowrank_hook_init(&lr_hook, &lo))) {
            status = fail("oialr", rc);
            goto out;
        }
        oialr_trainer_add_hook(&trainer, &lr_hook);
    }
    if (dist) {
        cli_mpi_hook(&mpi_hook);
        oialr_trainer_add_hook(&trainer, &mpi_hook);
    }
    if (resume) {
        /* every process reads the checkpoint (before process 0 opens the
         * file to append: the agreement below comes first) */
        if ((rc = oialr_record_resume(&trainer, resume))) {
            status = fail("--resume", rc);
            goto out;
        }
        if (!quiet)
            fprintf(stderr, "resume: %s: from its checkpoint at step %lld of %lld (epoch %d)\n", resume,
                    (long long)trainer.metrics.step, (long long)trainer.total_steps,
                    trainer.metrics.epoch + (trainer.resume_in_epoch ? 1 : 0));
    }

    /* every process is set up (or all stop here) */
    if ((status = cli_mpi_agree(0))) goto out;
    g_mpi.in_run = 1;
    g_trainer = &trainer;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rc = oialr_train_run(&trainer);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    g_trainer = NULL;

    if (rc == OIALR_ERR_INTERRUPTED) {
        fprintf(stderr, "\noialr train: interrupted at step %lld\n", (long long)trainer.metrics.step);
        if (record) fprintf(stderr, "oialr train: continue it with: oialr train --resume %s\n", record);
        status = 130;
    } else if (rc == OIALR_ERR_DIVERGED) {
        /* a status of its own (docs/engine.md): a sweep can tell a learning
         * rate that diverged from a run that broke */
        fprintf(stderr, "%soialr train: %s\n", ui.prog.tty && !quiet ? "\n" : "", oialr_errmsg());
        status = 3;
    } else if (rc) {
        status = fail("training", rc);
    } else {
        const oialr_train_metrics *m = &trainer.metrics;
        printf("final: epochs %d  steps %lld  val_acc %.4f  test_acc %.4f  loss %.4f  %.1fs\n", m->epoch + 1,
               (long long)m->step, (double)m->val_acc, (double)m->test_acc, (double)m->loss, m->seconds);
    }
    if (lowrank && !quiet) print_lowrank(&lr_hook, trainer.params, trainer.metrics.seconds);
    if (dist) {
        if (!quiet) cli_mpi_report(&trainer);
        /* test mode: each process's final parameters, to compare bytes */
        const char *dump = getenv("OIALR_MPI_DUMP");
        if (dump && cli_mpi_dump(dump, trainer.params))
            fprintf(stderr, "oialr train: OIALR_MPI_DUMP: %s: %s\n", dump, strerror(errno));
    }
    if (record) {
        oialr_record_info ri;
        oialr_record_get_info(&rec_hook, &ri);
        if (!quiet)
            fprintf(stderr,
                    "record: %s: %lld snapshots, %.1f MB; training thread %.2fs in the recorder (%.2fs waiting), "
                    "writer %.2fs, %.2fs of it on a CPU (%.0f MB/s%s)\n",
                    record, (long long)ri.snapshots, ri.bytes / 1e6, ri.hook_seconds, ri.wait_seconds,
                    ri.write_seconds, ri.write_cpu_seconds, ri.write_mb_s,
                    ri.direct_bytes ? ", direct I/O" : "");
    }
out:
    oialr_lowrank_hook_free(&lr_hook);
    oialr_record_hook_free(&rec_hook);
    oialr_trainer_free(&trainer);
    oialr_model_free(model);
    oialr_loader_free(&trl);
    oialr_loader_free(&val);
    oialr_loader_free(&tel);
    oialr_dataset_free(&train_ds);
    oialr_dataset_free(&test_ds);
    return status;
}
