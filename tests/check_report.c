/*
 * check_report.c — `oialr plot`, `oialr report` and `oialr compare` end to
 * end through the built CLI, on two small runs trained here on synthetic
 * data (a full-rank MLP and the same with OIALR, ~0.3 s each):
 *
 *   - every figure exists as a valid PNG (or SVG), and the data file beside
 *     it holds the numbers of the tables and the trajectory it came from;
 *   - plot --run draws every metric column a writer recorded, custom names
 *     included (issue 14), and a plot that fails or is interrupted leaves
 *     no file behind (all or nothing);
 *   - the report's index.html references only files that exist, and loads
 *     in headless Chromium with every image found and no request leaving
 *     the machine (plain build only: Chromium is slow and not instrumented);
 *   - Limits: a layer pattern that matches nothing, an empty trajectory, no
 *     gnuplot on PATH: one clear line, exit 1, nothing written.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oialr/trajectory.h"
#include "util_cli.h"

static char dir[256];
static char out[1 << 16];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return tu_cli_run(dir, args, out, sizeof out);
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static char *slurp(const char *rel, size_t *n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    size_t got = fread(b, 1, (size_t)sz, f);
    b[got] = '\0';
    fclose(f);
    if (n) *n = got;
    return b;
}

static int exists(const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

/* A PNG: the signature, an IHDR chunk first, IEND last. */
static int is_png(const char *rel) {
    size_t n;
    char *b = slurp(rel, &n);
    int ok = b && n > 2000 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4) &&
             !memcmp(b + n - 8, "IEND", 4);
    free(b);
    return ok;
}

static int is_svg(const char *rel) {
    size_t n;
    char *b = slurp(rel, &n);
    int ok = b && n > 1000 && !strncmp(b, "<?xml", 5) && strstr(b, "<svg") && strstr(b, "</svg>");
    free(b);
    return ok;
}

/* Temporary files (.NAME.XXXXXX.part) under a directory of dir. */
static int parts_in(const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    DIR *d = opendir(p);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        n += l > 5 && !strcmp(e->d_name + l - 5, ".part");
    }
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------- */
/* a small CSV reader: names here hold no comma */

typedef struct table {
    int nrow, ncol;
    char **head;
    char ***cell;
} table;

static void table_read(table *t, const char *rel) {
    size_t n;
    char *b = slurp(rel, &n);
    ck_assert_msg(b != NULL, "%s missing", rel);
    memset(t, 0, sizeof *t);
    char *save = NULL;
    for (char *line = strtok_r(b, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int nc = 1;
        for (char *p = line; *p; p++) nc += *p == ',';
        char **f = malloc(sizeof *f * (size_t)nc);
        char *s2 = NULL;
        int k = 0;
        for (char *c = strtok_r(line, ",", &s2); c && k < nc; c = strtok_r(NULL, ",", &s2)) f[k++] = strdup(c);
        if (!t->head) {
            t->head = f;
            t->ncol = k;
        } else {
            ck_assert_msg(k == t->ncol, "%s: row %d has %d fields, the header %d", rel, t->nrow + 2, k, t->ncol);
            t->cell = realloc(t->cell, sizeof *t->cell * (size_t)(t->nrow + 1));
            t->cell[t->nrow++] = f;
        }
    }
    free(b);
}

static int table_col(const table *t, const char *name) {
    for (int i = 0; i < t->ncol; i++)
        if (!strcmp(t->head[i], name)) return i;
    ck_abort_msg("no column %s", name);
    return -1;
}

static double num(const table *t, int r, int c) { return strtod(t->cell[r][c], NULL); }

static void table_free(table *t) {
    for (int r = 0; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++) free(t->cell[r][c]);
        free(t->cell[r]);
    }
    for (int c = 0; c < t->ncol; c++) free(t->head[c]);
    free(t->head);
    free(t->cell);
}

static int close_enough(double a, double b) {
    if (isnan(a) && isnan(b)) return 1;
    return fabs(a - b) <= 1e-7 * (1 + fabs(b));
}

/* ------------------------------------------------------------------------- */
/* fixtures: two runs, trained and analysed once for both test cases (an
 * unchecked fixture runs in the runner's process: the directory is kept
 * from Core to Limits and removed when the program exits) */

static void remove_runs(void);
static pid_t runs_owner; /* Check's forked tests exit too: only the runner removes */

static void make_runs(void) {
    if (dir[0]) return;
    runs_owner = getpid();
    atexit(remove_runs);
    snprintf(dir, sizeof dir, "/tmp/oialr-check-report-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *common = "--dataset synthetic --model mlp:128,64 --epochs 3 --batch 64 --val 500 --threads 1 "
                         "--every 10 --quiet --seed 1";
    ck_assert_msg(run("train %s --record full.h5", common) == 0, "%s", out);
    ck_assert_msg(run("train %s --record lr.h5 --oialr delay:40 --oialr-every 20", common) == 0, "%s", out);
    ck_assert_msg(run("analyze full.h5 --csv full-tables -q --threads 1") == 0, "%s", out);
    ck_assert_msg(run("analyze lr.h5 --csv lr-tables -q --threads 1") == 0, "%s", out);
}

static void remove_runs(void) {
    if (getpid() != runs_owner) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* ------------------------------------------------------------------------- */
/* Core */

static const char *const LAYER[] = {"fc1.weight", "fc2.weight", "fc3.weight"};

/* Every figure of an OIALR run, and the numbers in the data beside each. */
START_TEST(test_figures_and_their_data) {
    ck_assert_msg(run("plot lr-tables -o figs --run lr.h5") == 0, "%s", out);
    char p[256];
    const char *fixed[] = {"stability", "heatmap", "ranks", "training"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "figs/%s.png", fixed[i]);
        ck_assert_msg(is_png(p), "%s is not a PNG", p);
        snprintf(p, sizeof p, "figs/%s.gp", fixed[i]);
        ck_assert_msg(exists(p), "%s missing", p);
    }
    for (int l = 0; l < 3; l++) {
        snprintf(p, sizeof p, "figs/spectrum-%s.png", LAYER[l]);
        ck_assert_msg(is_png(p), "%s is not a PNG", p);
        snprintf(p, sizeof p, "figs/evolution-%s.png", LAYER[l]);
        ck_assert_msg(is_png(p), "%s is not a PNG", p);
    }
    ck_assert_int_eq(parts_in("figs"), 0);

    /* stability.csv: every defined S of metrics.csv, and the mean */
    table m, s, ms;
    table_read(&m, "lr-tables/metrics.csv");
    table_read(&s, "figs/stability.csv");
    table_read(&ms, "lr-tables/mean_stability.csv");
    int ml = table_col(&m, "layer"), mst = table_col(&m, "step"), mS = table_col(&m, "stability");
    int defined = 0, mean_rows = 0;
    for (int r = 0; r < m.nrow; r++) {
        if (isnan(num(&m, r, mS))) continue;
        defined++;
        int found = 0;
        for (int q = 0; q < s.nrow && !found; q++)
            found = !strcmp(s.cell[q][1], m.cell[r][ml]) && !strcmp(s.cell[q][2], m.cell[r][mst]) &&
                    close_enough(num(&s, q, 3), num(&m, r, mS));
        ck_assert_msg(found, "stability.csv lacks %s at step %s", m.cell[r][ml], m.cell[r][mst]);
    }
    for (int q = 0; q < s.nrow; q++) mean_rows += !strcmp(s.cell[q][0], "0");
    ck_assert_int_eq(s.nrow, defined + mean_rows);
    ck_assert_int_eq(mean_rows, ms.nrow);
    for (int q = 0, k = 0; q < s.nrow; q++) {
        if (strcmp(s.cell[q][0], "0")) continue;
        ck_assert_str_eq(s.cell[q][2], ms.cell[k][0]);
        ck_assert(close_enough(num(&s, q, 3), num(&ms, k, 1)));
        k++;
    }
    /* heatmap.csv: the same numbers as colours */
    table h;
    table_read(&h, "figs/heatmap.csv");
    ck_assert_int_eq(h.nrow, defined);
    for (int q = 0; q < h.nrow; q++) {
        ck_assert(num(&h, q, 3) <= num(&h, q, 2) && num(&h, q, 2) <= num(&h, q, 4)); /* the cell holds its step */
        int found = 0;
        for (int r = 0; r < m.nrow && !found; r++)
            found = !strcmp(h.cell[q][1], m.cell[r][ml]) && !strcmp(h.cell[q][2], m.cell[r][mst]) &&
                    close_enough(num(&h, q, 5), num(&m, r, mS));
        ck_assert_msg(found, "heatmap.csv row %d is not in metrics.csv", q + 2);
    }
    table_free(&h);
    table_free(&ms);
    table_free(&s);

    /* spectrum: each column is spectra.csv's sigma of that step */
    table sp, f;
    table_read(&sp, "lr-tables/spectra.csv");
    table_read(&f, "figs/spectrum-fc2.weight.csv");
    ck_assert_int_eq(f.nrow, 64);
    ck_assert_int_ge(f.ncol, 3);
    for (int c = 1; c < f.ncol; c++) {
        const char *step = f.head[c] + strlen("sigma_at_step_");
        ck_assert(!strncmp(f.head[c], "sigma_at_step_", 14));
        int seen = 0;
        for (int r = 0; r < sp.nrow; r++) {
            if (strcmp(sp.cell[r][0], "fc2.weight") || strcmp(sp.cell[r][1], step)) continue;
            int i = atoi(sp.cell[r][2]);
            ck_assert(close_enough(num(&f, i - 1, c), num(&sp, r, 3)));
            seen++;
        }
        ck_assert_int_eq(seen, 64);
    }
    table_free(&f);
    table_free(&sp);

    /* ranks.csv: the ranks the trajectory stored; OIALR cut fc2 below n */
    oialr_traj *t;
    char path[512];
    snprintf(path, sizeof path, "%s/lr.h5", dir);
    ck_assert_int_eq(oialr_traj_open(&t, path, OIALR_TRAJ_READ), OIALR_OK);
    table rk;
    table_read(&rk, "figs/ranks.csv");
    int cs = table_col(&rk, "stored_rank"), below = 0, checked = 0;
    for (int q = 0; q < rk.nrow; q++) {
        int li;
        ck_assert_int_eq(oialr_traj_find_layer(t, rk.cell[q][1], &li), OIALR_OK);
        const oialr_traj_layer *L = oialr_traj_layer_at(t, li);
        int64_t snap;
        ck_assert_int_eq(oialr_traj_find_step(t, li, atoll(rk.cell[q][2]), &snap), OIALR_OK);
        ck_assert_int_eq(atoi(rk.cell[q][cs]), L->ranks[snap]);
        below += L->ranks[snap] < atoi(rk.cell[q][3]);
        checked++;
    }
    ck_assert_int_gt(checked, 0);
    ck_assert_int_gt(below, 0);
    table_free(&rk);

    /* training.csv: step and every column of /metrics, in file order */
    table tr;
    table_read(&tr, "figs/training.csv");
    const oialr_traj_info *info = oialr_traj_get_info(t);
    ck_assert_int_eq(tr.ncol, 1 + info->ncolumns);
    ck_assert_int_eq(tr.nrow, (int)info->nmetrics);
    double *loss = malloc(sizeof(double) * (size_t)info->nmetrics);
    ck_assert_int_eq(oialr_traj_read_column(t, "loss", loss, info->nmetrics, NULL), OIALR_OK);
    for (int k = 0; k < info->ncolumns; k++) ck_assert_str_eq(tr.head[k + 1], oialr_traj_column_name(t, k));
    int cl = table_col(&tr, "loss");
    for (int q = 0; q < tr.nrow; q++) ck_assert(close_enough(num(&tr, q, cl), loss[q]));
    free(loss);
    table_free(&tr);
    /* the trainable fraction drawn is the run's */
    table tf;
    table_read(&tf, "figs/ranks-trainable.csv");
    double last = NAN;
    for (int q = 0; q < tf.nrow; q++)
        if (!isnan(num(&tf, q, 1))) last = num(&tf, q, 1);
    double *col = malloc(sizeof(double) * (size_t)info->nmetrics);
    ck_assert_int_eq(oialr_traj_read_column(t, "trainable_fraction", col, info->nmetrics, NULL), OIALR_OK);
    ck_assert(close_enough(last, col[info->nmetrics - 1]));
    ck_assert(last < 0.9); /* fc1 and fc2 went low rank */
    free(col);
    table_free(&tf);
    /* figure-events.csv: the table's events, with the layer's colour index and n */
    table e1, e2;
    table_read(&e1, "lr-tables/events.csv");
    table_read(&e2, "figs/figure-events.csv");
    ck_assert_int_gt(e1.nrow, 0);
    ck_assert_int_eq(e1.nrow, e2.nrow);
    for (int q = 0; q < e1.nrow; q++) {
        ck_assert_str_eq(e2.cell[q][2], e1.cell[q][0]);
        ck_assert_str_eq(e2.cell[q][1], e1.cell[q][1]);
        ck_assert_str_eq(e2.cell[q][3], e1.cell[q][2]);
        ck_assert_str_eq(e2.cell[q][6], e1.cell[q][5]);
    }
    table_free(&e1);
    table_free(&e2);
    /* the stability script marks the switches */
    char *gp = slurp("figs/stability.gp", NULL);
    ck_assert_ptr_nonnull(strstr(gp, "strcol(4) eq 'switch'"));
    ck_assert_ptr_nonnull(strstr(gp, "if (!exists(\"data\")) data = 'stability.csv'"));
    free(gp);
    table_free(&m);
    oialr_traj_close(t);
    /* a script runs on its own, where it lies */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cd '%s/figs' && gnuplot -e \"out='again.png'\" heatmap.gp 2>&1", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert(is_png("figs/again.png"));
}
END_TEST

START_TEST(test_svg_and_chosen_layers) {
    ck_assert_msg(run("plot lr-tables -o svg --run lr.h5 --format svg --layers 'fc2*' --steps 0,100,250") == 0, "%s",
                  out);
    ck_assert(is_svg("svg/stability.svg"));
    ck_assert(is_svg("svg/heatmap.svg"));
    ck_assert(is_svg("svg/spectrum-fc2.weight.svg"));
    ck_assert(is_svg("svg/evolution-fc2.weight.svg"));
    ck_assert(!exists("svg/spectrum-fc1.weight.svg"));
    ck_assert(!exists("svg/stability.png"));
    table f;
    table_read(&f, "svg/spectrum-fc2.weight.csv");
    ck_assert_int_eq(f.ncol, 4);
    ck_assert_str_eq(f.head[1], "sigma_at_step_0");
    ck_assert_str_eq(f.head[2], "sigma_at_step_100");
    ck_assert_str_eq(f.head[3], "sigma_at_step_250");
    table_free(&f);
}
END_TEST

/* A writer with its own metric names (the Python writer's users): every
 * column is drawn, the one without values is named as absent. Before:
 * exit 1, "x range is invalid". */
START_TEST(test_training_custom_metrics) {
    char path[512];
    snprintf(path, sizeof path, "%s/custom.h5", dir);
    oialr_traj *t;
    ck_assert_int_eq(oialr_traj_create(&t, path, NULL), OIALR_OK);
    int li;
    ck_assert_int_eq(oialr_traj_declare_layer(t, "fc1", 8, 6, "dense", 0, NULL, &li), OIALR_OK);
    ck_assert_int_eq(oialr_traj_declare_metrics(t, "my_loss,top5,test_loss,never"), OIALR_OK);
    float w[48];
    for (int s = 0; s < 8; s++) {
        for (int i = 0; i < 48; i++) w[i] = (float)sin(1.0 + i * 0.7 + s * 0.01 * i);
        ck_assert_int_eq(oialr_traj_append(t, li, 10 * s, w, 0), OIALR_OK);
        double v[4] = {1.0 / (1 + s), 0.1 * s, s % 2 ? 0.5 / (1 + s) : NAN, NAN};
        ck_assert_int_eq(oialr_traj_append_metrics(t, 10 * s, v, 4), OIALR_OK);
    }
    ck_assert_int_eq(oialr_traj_close(t), OIALR_OK);
    ck_assert_msg(run("analyze custom.h5 --csv ctab -q --threads 1") == 0, "%s", out);
    ck_assert_msg(run("plot ctab -o cfig --run custom.h5") == 0, "%s", out);
    ck_assert(is_png("cfig/training.png"));
    table tr;
    table_read(&tr, "cfig/training.csv");
    ck_assert_int_eq(tr.ncol, 5);
    ck_assert_str_eq(tr.head[1], "my_loss");
    ck_assert_str_eq(tr.head[4], "never");
    ck_assert(close_enough(num(&tr, 3, 1), 0.25));
    ck_assert(close_enough(num(&tr, 7, 2), 0.7));
    table_free(&tr);
    char *gp = slurp("cfig/training.gp", NULL);
    ck_assert_ptr_nonnull(strstr(gp, "title 'my_loss'"));
    ck_assert_ptr_nonnull(strstr(gp, "title 'test_loss'"));
    ck_assert_ptr_nonnull(strstr(gp, "title 'top5'"));
    ck_assert_ptr_null(strstr(gp, "title 'never'"));
    ck_assert_ptr_nonnull(strstr(gp, "not drawn): never"));
    free(gp);
}
END_TEST

/* A plot stopped by a signal, or by gnuplot failing on a later figure,
 * leaves no file: no temporary, no figure, the old files as they were.
 * Before: the signal killed the command and its .part files stayed. */
START_TEST(test_all_or_nothing) {
    char bin[512];
    tu_cli_bin(bin, sizeof bin);
    for (int pass = 0; pass < 2; pass++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            setpgid(0, 0);
            if (chdir(dir) != 0) _exit(126);
            freopen("/dev/null", "w", stdout);
            freopen("/dev/null", "w", stderr);
            execl(bin, "oialr", "plot", "lr-tables", "-o", "stopped", "--run", "lr.h5", (char *)NULL);
            _exit(127);
        }
        /* wait until its temporary files exist, then stop it */
        for (int i = 0; i < 2000 && parts_in("stopped") == 0; i++) usleep(5000);
        ck_assert_int_gt(parts_in("stopped"), 0);
        usleep(100000);
        if (pass == 0) kill(pid, SIGTERM);       /* the command alone */
        else kill(-pid, SIGINT);                  /* Ctrl-C: gnuplot too */
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st), "killed by signal %d: not cleaned up", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        ck_assert_int_eq(WEXITSTATUS(st), pass == 0 ? 128 + SIGTERM : 128 + SIGINT);
        ck_assert_int_eq(parts_in("stopped"), 0);
        ck_assert_msg(!exists("stopped"), "the directory it made is left behind");
    }
    /* gnuplot failing on the third figure: the old figures stay */
    ck_assert_msg(run("plot lr-tables -o old --run lr.h5") == 0, "%s", out);
    size_t n0, n1;
    char *before = slurp("old/stability.png", &n0), *gp_before = slurp("old/heatmap.gp", NULL);
    char fake[512], real[512] = "/usr/bin/gnuplot";
    FILE *w = popen("command -v gnuplot", "r");
    if (w && fgets(real, sizeof real, w)) real[strcspn(real, "\n")] = '\0';
    if (w) pclose(w);
    snprintf(fake, sizeof fake, "%s/fakebin", dir);
    ck_assert_int_eq(mkdir(fake, 0755), 0);
    char script[2048], sp[600];
    snprintf(sp, sizeof sp, "%s/gnuplot", fake);
    snprintf(script, sizeof script,
             "#!/bin/sh\nn=$(cat '%s/count' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '%s/count'\n"
             "[ $n -ge 3 ] && { echo 'fake gnuplot: line 1: no such thing' >&2; exit 1; }\nexec '%s' \"$@\"\n",
             fake, fake, real);
    FILE *f = fopen(sp, "w");
    fputs(script, f);
    fclose(f);
    chmod(sp, 0755);
    const char *old_path = getenv("PATH");
    char path[4096];
    snprintf(path, sizeof path, "%s:%s", fake, old_path ? old_path : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    int rc = run("plot lr-tables -o old --run lr.h5 --force");
    setenv("PATH", old_path ? old_path : "/usr/bin:/bin", 1);
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "gnuplot failed on old/") && strstr(out, "no such thing"),
                  "%s", out);
    char *after = slurp("old/stability.png", &n1), *gp_after = slurp("old/heatmap.gp", NULL);
    ck_assert(n0 == n1 && !memcmp(before, after, n0));
    ck_assert_str_eq(gp_before, gp_after);
    ck_assert_int_eq(parts_in("old"), 0);
    free(before), free(after), free(gp_before), free(gp_after);
}
END_TEST

/* index.html: the figures it shows exist, it points nowhere outside, it
 * holds the per-layer table and the configuration; compare's table holds
 * the runs' final numbers. */
START_TEST(test_report_and_compare) {
    ck_assert_msg(run("report full.h5 -o rep --compare lr.h5 --labels full,oialr --policy stability:0.99") == 0,
                  "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "rep/index.html"));
    char *html = slurp("rep/index.html", NULL);
    ck_assert_ptr_nonnull(html);
    int imgs = 0;
    for (char *p = strstr(html, "<img src=\""); p; p = strstr(p + 1, "<img src=\"")) {
        char rel[300], src[256];
        const char *s = p + 10;
        size_t l = strcspn(s, "\"");
        snprintf(src, sizeof src, "%.*s", (int)l, s);
        ck_assert_msg(!strstr(src, "//") && src[0] != '/', "not a relative path: %s", src);
        snprintf(rel, sizeof rel, "rep/%s", src);
        ck_assert_msg(is_png(rel), "%s: not a PNG", rel);
        imgs++;
    }
    ck_assert_int_eq(imgs, 2 + 3 + 3 + 1 + 1 + 1); /* stability, heatmap, 3 spectra, 3 evolutions, ranks, training, compare */
    ck_assert_ptr_null(strstr(html, "http:"));
    ck_assert_ptr_null(strstr(html, "https:"));
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "<link"));
    for (int l = 0; l < 3; l++) ck_assert_ptr_nonnull(strstr(html, LAYER[l]));
    ck_assert_ptr_nonnull(strstr(html, "<th>argv</th>"));
    ck_assert_ptr_nonnull(strstr(html, "(replay)"));
    ck_assert_ptr_nonnull(strstr(html, "128&times;784"));
    free(html);
    ck_assert(exists("rep/analysis.h5") && exists("rep/tables/metrics.csv"));
    /* compare.csv: the final test accuracy, trainable fraction and time */
    table c;
    table_read(&c, "rep/figures/compare.csv");
    ck_assert_int_eq(c.nrow, 2);
    ck_assert_str_eq(c.cell[1][0], "oialr");
    char path[512];
    snprintf(path, sizeof path, "%s/lr.h5", dir);
    oialr_traj *t;
    ck_assert_int_eq(oialr_traj_open(&t, path, OIALR_TRAJ_READ), OIALR_OK);
    int64_t nm = oialr_traj_get_info(t)->nmetrics;
    double *v = malloc(sizeof(double) * (size_t)nm);
    const char *cols[] = {"test_acc", "trainable_fraction", "seconds"};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(oialr_traj_read_column(t, cols[k], v, nm, NULL), OIALR_OK);
        double last = NAN;
        for (int64_t i = 0; i < nm; i++)
            if (isfinite(v[i])) last = v[i];
        ck_assert_msg(close_enough(num(&c, 1, table_col(&c, k == 0 ? "final_test_acc" : k == 1 ? "trainable_fraction" : "wall_seconds")), last),
                      "%s", cols[k]);
    }
    free(v);
    oialr_traj_close(t);
    table_free(&c);
    /* again: the analysis is reused, the figures exist: refused, untouched */
    size_t n0, n1;
    char *before = slurp("rep/index.html", &n0);
    ck_assert_int_eq(run("report full.h5 -o rep"), 1);
    ck_assert_msg(lines(out) == 1 && strstr(out, "rep/index.html exists (use --force"), "%s", out);
    char *after = slurp("rep/index.html", &n1);
    ck_assert(n0 == n1 && !memcmp(before, after, n0));
    free(before), free(after);
    /* the figures gone, the analysis stays: it is reused */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -r '%s/rep/figures' '%s/rep/index.html'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(run("report full.h5 -o rep --format svg") == 0, "%s", out);
    ck_assert_msg(strstr(out, "reused"), "%s", out);
    ck_assert(is_svg("rep/figures/heatmap.svg"));
    ck_assert_msg(run("report full.h5 -o rep --force --policy stability:0.99") == 0, "%s", out);
    ck_assert_msg(strstr(out, "reused") && !strstr(out, "analysing"), "%s", out);
    ck_assert_msg(run("report full.h5 -o rep --force --tau 0.95") == 0, "%s", out); /* another tau: analysed again */
    ck_assert_msg(strstr(out, "analysing"), "%s", out);
    /* compare on its own */
    ck_assert_msg(run("compare full.h5 lr.h5 -o cmp") == 0, "%s", out);
    ck_assert(is_png("cmp/compare.png"));
    ck_assert(strstr(out, "full") && strstr(out, "lr") && strstr(out, "trainable"));
    ck_assert(exists("cmp/runs/full/mean_stability.csv"));
}
END_TEST

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/* The report in headless Chromium: a copy of index.html beside it with a
 * script that counts the images that failed to load; the net log must hold
 * no request the page made that is not a local file. A control page with
 * one image on http:// must be caught by both checks. */
static const char *NETCHECK =
    "import json,sys\n"
    "d=json.load(open(sys.argv[1]))\n"
    "t={v:k for k,v in d['constants']['logEventTypes'].items()}\n"
    "n=0\n"
    "for e in d['events']:\n"
    "  p=e.get('params',{})\n"
    "  u=p.get('url')\n"
    "  if u and t.get(e['type'])=='URL_REQUEST_START_JOB' and not u.startswith(('file:','data:','about:','chrome')) "
    "and p.get('initiator')!='not an origin':\n"
    "    n+=1; print('page request:',u)\n"
    "print('requests',n)\n";

/* Load rep2/page (and take a screenshot of it into shot, if not NULL). */
static void chromium_load(const char *page, const char *shot, int *imgs, int *broken, int *requests) {
    char cmd[4096], log[600], prof[600], shot_flag[700] = "";
    if (shot) snprintf(shot_flag, sizeof shot_flag, "--window-size=1400,3000 --screenshot='%s'", shot);
    snprintf(log, sizeof log, "%s/net-%s.json", dir, page);
    snprintf(prof, sizeof prof, "%s/chromium-profile", dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s/rep2' && DBUS_SESSION_BUS_ADDRESS=disabled: timeout 120 chromium --headless --no-sandbox --disable-gpu "
             "--disable-background-networking --disable-component-update --no-first-run --disable-sync "
             "--disable-extensions --user-data-dir='%s' --log-net-log='%s' %s --dump-dom 'file://%s/rep2/%s' 2>/dev/null",
             dir, prof, log, shot_flag, dir, page);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    static char dom[1 << 20];
    size_t n = fread(dom, 1, sizeof dom - 1, p);
    dom[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    const char *m = strstr(dom, "data-images=\"");
    ck_assert_msg(m && sscanf(m, "data-images=\"%d %d\"", imgs, broken) == 2, "no image count in the DOM");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"$(cat <<'EOF'\n%sEOF\n)\" '%s'", NETCHECK, log);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[1024];
    *requests = -1;
    while (fgets(line, sizeof line, p)) {
        if (!strncmp(line, "requests ", 9)) *requests = atoi(line + 9);
        else fprintf(stderr, "%s", line);
    }
    ck_assert_int_eq(pclose(p), 0);
}

START_TEST(test_report_in_chromium) {
    ck_assert_msg(system("command -v chromium >/dev/null 2>&1") == 0,
                  "chromium not found: make check installs it (tools/deps.sh, OIALR_DEPS_EXTRA=chromium)");
    ck_assert_msg(run("report lr.h5 -o rep2 --compare full.h5") == 0, "%s", out);
    size_t n;
    char *html = slurp("rep2/index.html", &n);
    int want = 0;
    for (char *p = strstr(html, "<img "); p; p = strstr(p + 1, "<img ")) want++;
    const char *probe =
        "<script>window.addEventListener('load',function(){var m=document.images,b=0;"
        "for(var i=0;i<m.length;i++)if(!m[i].complete||m[i].naturalWidth===0)b++;"
        "document.body.setAttribute('data-images',m.length+' '+b);});</script>";
    for (int pass = 0; pass < 2; pass++) {
        char name[64], p[600];
        snprintf(name, sizeof name, pass ? "control.html" : "probe.html");
        snprintf(p, sizeof p, "%s/rep2/%s", dir, name);
        FILE *f = fopen(p, "w");
        char *end = strstr(html, "</body>");
        fwrite(html, 1, (size_t)(end - html), f);
        if (pass) fputs("<img src=\"http://127.0.0.1:9/away.png\">", f);
        fprintf(f, "%s</body></html>\n", probe);
        fclose(f);
        int imgs, broken, req;
        snprintf(p, sizeof p, "%s/rep2/screenshot.png", dir);
        chromium_load(name, pass ? NULL : p, &imgs, &broken, &req);
        ck_assert_int_eq(imgs, want + pass);
        ck_assert_int_eq(broken, pass);
        ck_assert_int_eq(req, pass);
    }
    free(html);
    /* the screenshot of the page as loaded, as a user sees its top */
    ck_assert(is_png("rep2/screenshot.png"));
}
END_TEST
#endif

/* ------------------------------------------------------------------------- */
/* Limits */

START_TEST(test_missing_layer) {
    int rc = run("plot lr-tables -o nl --layers 'conv*'");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "--layers 'conv*' matches no layer") &&
                      strstr(out, "fc1.weight, fc2.weight, fc3.weight"),
                  "%s", out);
    ck_assert(!exists("nl"));
    rc = run("report lr.h5 -o nlr --layers nosuch");
    ck_assert_msg(rc == 1 && strstr(out, "matches no layer"), "%s", out);
    ck_assert(!exists("nlr/index.html") && !exists("nlr/figures"));
}
END_TEST

START_TEST(test_empty_trajectory) {
    char path[512];
    snprintf(path, sizeof path, "%s/empty.h5", dir);
    oialr_traj *t;
    ck_assert_int_eq(oialr_traj_create(&t, path, NULL), OIALR_OK);
    ck_assert_int_eq(oialr_traj_declare_layer(t, "fc1", 8, 6, "dense", 0, NULL, NULL), OIALR_OK);
    ck_assert_int_eq(oialr_traj_begin(t), OIALR_OK);
    ck_assert_int_eq(oialr_traj_close(t), OIALR_OK);
    int rc = run("report empty.h5 -o er");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "empty.h5: no snapshots recorded"), "%s", out);
    ck_assert(!exists("er"));
    rc = run("compare lr.h5 empty.h5 -o ec");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "empty.h5: no snapshots recorded"), "%s", out);
    ck_assert(!exists("ec"));
    /* tables with a header only */
    ck_assert_int_eq(mkdir(strcat(strcpy(path, dir), "/et"), 0755), 0);
    FILE *f = fopen(strcat(path, "/metrics.csv"), "w");
    fputs("layer,step,ref_step,rows,cols,valid,stability\n", f);
    fclose(f);
    rc = run("plot et -o etf");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "no layers in the table"), "%s", out);
    ck_assert(!exists("etf"));
    rc = run("report not-there.h5 -o nt");
    ck_assert_msg(rc == 1 && lines(out) == 1 && strstr(out, "not-there.h5"), "%s", out);
}
END_TEST

START_TEST(test_no_gnuplot) {
    const char *old = getenv("PATH");
    char saved[4096];
    snprintf(saved, sizeof saved, "%s", old ? old : "/usr/bin:/bin");
    setenv("PATH", "/nonexistent", 1);
    int rc1 = run("plot lr-tables -o ng");
    char o1[1024];
    snprintf(o1, sizeof o1, "%.1000s", out);
    int rc2 = run("report lr.h5 -o ngr");
    char o2[1024];
    snprintf(o2, sizeof o2, "%.1000s", out);
    int rc3 = run("compare lr.h5 full.h5 -o ngc");
    setenv("PATH", saved, 1);
    ck_assert_msg(rc1 == 1 && lines(o1) == 1 && strstr(o1, "gnuplot not found on PATH"), "%s", o1);
    ck_assert_msg(rc2 == 1 && lines(o2) == 1 && strstr(o2, "gnuplot not found on PATH"), "%s", o2);
    ck_assert_msg(rc3 == 1 && lines(out) == 1 && strstr(out, "gnuplot not found on PATH"), "%s", out);
    ck_assert(!exists("ng") && !exists("ngr") && !exists("ngc"));
}
END_TEST

START_TEST(test_bad_arguments) {
    ck_assert_int_eq(run("report lr.h5"), 2);
    ck_assert_ptr_nonnull(strstr(out, "-o DIR is required"));
    ck_assert_int_eq(run("report lr.h5 -o x --compare"), 2);
    ck_assert_int_eq(run("plot lr-tables --format gif"), 2);
    ck_assert_ptr_nonnull(strstr(out, "'gif' is not one of"));
    ck_assert_int_eq(run("compare lr.h5 full.h5 -o c2 --labels a,a"), 1);
    ck_assert_ptr_nonnull(strstr(out, "two runs labelled 'a'"));
    ck_assert(!exists("c2"));
    /* a regular file where the report directory should be */
    FILE *f = fopen(strcat(strcpy((char[512]){0}, dir), "/afile"), "w");
    fputs("mine\n", f);
    fclose(f);
    ck_assert_int_eq(run("report lr.h5 -o afile"), 1);
    ck_assert_ptr_nonnull(strstr(out, "afile exists and is not a directory"));
    char *b = slurp("afile", NULL);
    ck_assert_str_eq(b, "mine\n");
    free(b);
    ck_assert_int_eq(run("report --help"), 0);
    ck_assert_int_eq(run("compare --help"), 0);
}
END_TEST

static Suite *report_suite(void) {
    Suite *s = suite_create("report");
    TCase *core = tcase_create("Core");
    tcase_add_unchecked_fixture(core, make_runs, NULL);
    tcase_add_test(core, test_figures_and_their_data);
    tcase_add_test(core, test_svg_and_chosen_layers);
    tcase_add_test(core, test_training_custom_metrics);
    tcase_add_test(core, test_all_or_nothing);
    tcase_add_test(core, test_report_and_compare);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    tcase_add_test(core, test_report_in_chromium);
#endif
    tcase_set_timeout(core, 300);
    suite_add_tcase(s, core);
    TCase *lim = tcase_create("Limits");
    tcase_add_unchecked_fixture(lim, make_runs, NULL);
    tcase_add_test(lim, test_missing_layer);
    tcase_add_test(lim, test_empty_trajectory);
    tcase_add_test(lim, test_no_gnuplot);
    tcase_add_test(lim, test_bad_arguments);
    tcase_set_timeout(lim, 120);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(report_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
