/*
 * check_data.c — dataset readers on small generated files: IDX plain and
 * gzip, CIFAR-10 batches, the synthetic generator, loaders and splits; and
 * in "Limits" every broken file a user can have: missing, empty, foreign,
 * bad magic, truncated (plain and gzip), corrupt gzip, count mismatch, a
 * FIFO, a gzip whose CRC or length does not match, data after the payload,
 * labels outside the data set's classes.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "oialr.h"

static char dir[256];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/oialr-check-data-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* Write bytes, plain or gzip. */
static void write_file(const char *name, const void *buf, size_t n, int gz) {
    char p[512];
    path_of(p, sizeof p, name);
    if (gz) {
        gzFile f = gzopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, buf, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
        fclose(f);
    }
}

static size_t idx_images(unsigned char *buf, uint32_t n, uint32_t h, uint32_t w) {
    unsigned char hdr[16] = {0, 0, 8, 3, n >> 24, n >> 16, n >> 8, n, h >> 24, h >> 16, h >> 8, h, w >> 24, w >> 16, w >> 8, w};
    memcpy(buf, hdr, 16);
    for (size_t i = 0; i < (size_t)n * h * w; i++) buf[16 + i] = (unsigned char)(i * 7 + 3);
    return 16 + (size_t)n * h * w;
}

static size_t idx_labels(unsigned char *buf, uint32_t n) {
    unsigned char hdr[8] = {0, 0, 8, 1, n >> 24, n >> 16, n >> 8, n};
    memcpy(buf, hdr, 8);
    for (uint32_t i = 0; i < n; i++) buf[8 + i] = (unsigned char)(i % 10);
    return 8 + n;
}

START_TEST(idx_round_trip) {
    int gz = _i;
    unsigned char img[16 + 12 * 5 * 4], lab[8 + 12];
    size_t ni = idx_images(img, 12, 5, 4), nl = idx_labels(lab, 12);
    write_file("train-images-idx3-ubyte", img, ni, gz);
    write_file("train-labels-idx1-ubyte", lab, nl, gz);
    char pi[512], pl[512];
    path_of(pi, sizeof pi, "train-images-idx3-ubyte");
    path_of(pl, sizeof pl, "train-labels-idx1-ubyte");
    oialr_dataset ds;
    ck_assert_int_eq(oialr_idx_load(&ds, pi, pl), OIALR_OK);
    ck_assert_int_eq(ds.n, 12);
    ck_assert_int_eq(ds.c, 1);
    ck_assert_int_eq(ds.h, 5);
    ck_assert_int_eq(ds.w, 4);
    ck_assert_int_eq(ds.nclass, 10);
    ck_assert_mem_eq(ds.x, img + 16, 12 * 5 * 4);
    ck_assert_mem_eq(ds.y, lab + 8, 12);
    oialr_dataset_free(&ds);
}
END_TEST

START_TEST(dataset_by_name) {
    /* mnist layout in a directory: gz train, plain test */
    unsigned char img[16 + 6 * 3 * 3], lab[8 + 6];
    size_t ni = idx_images(img, 6, 3, 3), nl = idx_labels(lab, 6);
    write_file("train-images-idx3-ubyte.gz", img, ni, 1);
    write_file("train-labels-idx1-ubyte.gz", lab, nl, 1);
    write_file("t10k-images-idx3-ubyte", img, ni, 0);
    write_file("t10k-labels-idx1-ubyte", lab, nl, 0);
    oialr_dataset tr, te;
    ck_assert_int_eq(oialr_dataset_load(&tr, "mnist", dir, OIALR_SPLIT_TRAIN), OIALR_OK);
    ck_assert_int_eq(oialr_dataset_load(&te, "mnist", dir, OIALR_SPLIT_TEST), OIALR_OK);
    ck_assert_int_eq(tr.n, 6);
    ck_assert_mem_eq(tr.x, te.x, 6 * 9);
    oialr_dataset_free(&tr);
    oialr_dataset_free(&te);
}
END_TEST

START_TEST(cifar_round_trip) {
    unsigned char *buf = malloc(3 * 3073);
    for (int r = 0; r < 3; r++) {
        buf[r * 3073] = (unsigned char)(r + 4);
        for (int i = 0; i < 3072; i++) buf[r * 3073 + 1 + i] = (unsigned char)(r * 31 + i);
    }
    write_file("data_batch_1.bin", buf, 2 * 3073, 0);
    write_file("data_batch_2.bin", buf + 2 * 3073, 3073, 0);
    write_file("test_batch.bin", buf, 3073, 0);
    oialr_dataset ds;
    ck_assert_int_eq(oialr_dataset_load(&ds, "cifar10", dir, OIALR_SPLIT_TRAIN), OIALR_OK);
    ck_assert_int_eq(ds.n, 3);
    ck_assert_int_eq(ds.c, 3);
    ck_assert_int_eq(ds.h, 32);
    ck_assert_int_eq(ds.y[2], 6);
    ck_assert_mem_eq(ds.x + 2 * 3072, buf + 2 * 3073 + 1, 3072);
    oialr_dataset_free(&ds);
    ck_assert_int_eq(oialr_dataset_load(&ds, "cifar10", dir, OIALR_SPLIT_TEST), OIALR_OK);
    ck_assert_int_eq(ds.n, 1);
    oialr_dataset_free(&ds);
    free(buf);
}
END_TEST

START_TEST(loader_split_and_norm) {
    oialr_dataset ds;
    ck_assert_int_eq(oialr_dataset_synthetic(&ds, 100, 1, 3, 3, 5, 0.2f, 1), OIALR_OK);
    oialr_loader tr, va;
    ck_assert_int_eq(oialr_loader_split(&tr, &va, &ds, 20, 7), OIALR_OK);
    ck_assert_int_eq(tr.n, 80);
    ck_assert_int_eq(va.n, 20);
    /* disjoint and complete */
    int seen[100] = {0};
    for (int64_t i = 0; i < tr.n; i++) seen[tr.idx[i]]++;
    for (int64_t i = 0; i < va.n; i++) seen[va.idx[i]]++;
    for (int i = 0; i < 100; i++) ck_assert_int_eq(seen[i], 1);
    /* normalised batches have the dataset's mean 0 / std 1 */
    float mean[1], std[1];
    oialr_dataset_stats(&ds, mean, std);
    oialr_loader all;
    ck_assert_int_eq(oialr_loader_init(&all, &ds, 0, 0), OIALR_OK);
    oialr_loader_set_norm(&all, mean, std);
    float x[100 * 9];
    uint8_t y[100];
    oialr_loader_reset(&all);
    ck_assert_int_eq(oialr_loader_next(&all, x, y, 100), 100);
    ck_assert_int_eq(oialr_loader_next(&all, x, y, 100), 0);
    double s = 0, s2 = 0;
    for (int i = 0; i < 900; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    ck_assert_double_eq_tol(s / 900, 0.0, 1e-4);
    ck_assert_double_eq_tol(s2 / 900, 1.0, 1e-3);
    /* same seed, same order */
    oialr_loader a, b;
    oialr_loader_init(&a, &ds, 1, 9);
    oialr_loader_init(&b, &ds, 1, 9);
    oialr_loader_reset(&a);
    oialr_loader_reset(&b);
    ck_assert_mem_eq(a.idx, b.idx, 100 * sizeof(int64_t));
    oialr_loader_free(&a);
    oialr_loader_free(&b);
    oialr_loader_free(&all);
    oialr_loader_free(&tr);
    oialr_loader_free(&va);
    /* a tail cut from the same draw */
    oialr_dataset tail;
    ck_assert_int_eq(oialr_dataset_take_tail(&ds, 30, &tail), OIALR_OK);
    ck_assert_int_eq(ds.n, 70);
    ck_assert_int_eq(tail.n, 30);
    ck_assert_mem_eq(tail.x, ds.x + 70 * 9, 30 * 9);
    oialr_dataset none;
    ck_assert_int_eq(oialr_dataset_take_tail(&ds, 70, &none), OIALR_ERR_ARG); /* all of it */
    ck_assert_ptr_null(none.x);
    oialr_dataset_free(&tail);
    oialr_dataset_free(&ds);
}
END_TEST

/* --------------------------------------------------------------------------
 * Limits: each broken input gives its error code and a message naming the
 * file; nothing crashes, nothing is returned half-filled. */

typedef struct {
    const char *what;
    int expect;
    const char *in_msg;
} bad_case;

static const bad_case BAD[] = {
    {"missing", OIALR_ERR_NOTFOUND, "no such file"},
    {"empty", OIALR_ERR_FORMAT, "not an IDX file"},
    {"foreign", OIALR_ERR_FORMAT, "not an IDX file"},
    {"labels as images", OIALR_ERR_FORMAT, "not an IDX file"},
    {"truncated plain", OIALR_ERR_TRUNCATED, "truncated"},
    {"truncated gzip", OIALR_ERR_TRUNCATED, "truncated"},
    {"corrupt gzip", OIALR_ERR_FORMAT, "corrupt"},
    {"count mismatch", OIALR_ERR_MISMATCH, "labels"},
};
#define NBAD ((int)(sizeof BAD / sizeof BAD[0]))

START_TEST(idx_bad_files) {
    const bad_case *c = &BAD[_i];
    unsigned char img[16 + 10 * 8 * 8], lab[8 + 10];
    size_t ni = idx_images(img, 10, 8, 8), nl = idx_labels(lab, 10);
    char pi[512], pl[512];
    path_of(pi, sizeof pi, "img");
    path_of(pl, sizeof pl, "lab");
    write_file("lab", lab, nl, 0);
    switch (_i) {
    case 0: break; /* no image file */
    case 1: write_file("img", img, 0, 0); break;
    case 2: write_file("img", "<html>hello</html>", 18, 0); break;
    case 3: write_file("img", lab, nl, 0); break;
    case 4: write_file("img", img, ni - 100, 0); break;
    case 5: {
        /* a gzip stream of the first half only (ends cleanly: short data) */
        write_file("img", img, ni / 2, 1);
        break;
    }
    case 6: {
        write_file("img", img, ni, 1);
        /* flip bytes inside the deflate stream */
        FILE *f = fopen(pi, "r+b");
        fseek(f, 40, SEEK_SET);
        unsigned char junk[64];
        memset(junk, 0xA5, sizeof junk);
        fwrite(junk, 1, sizeof junk, f);
        fclose(f);
        break;
    }
    case 7: {
        unsigned char lab2[8 + 9];
        write_file("lab", lab2, idx_labels(lab2, 9), 0);
        write_file("img", img, ni, 0);
        break;
    }
    }
    oialr_dataset ds;
    int rc = oialr_idx_load(&ds, pi, pl);
    ck_assert_msg(rc == c->expect, "%s: got %d (%s), expected %d", c->what, rc, oialr_errmsg(), c->expect);
    ck_assert_msg(strstr(oialr_errmsg(), c->in_msg) != NULL, "%s: message '%s' lacks '%s'", c->what, oialr_errmsg(),
                  c->in_msg);
    ck_assert_msg(strstr(oialr_errmsg(), dir) != NULL, "%s: message '%s' does not name the file", c->what,
                  oialr_errmsg());
    ck_assert_ptr_null(ds.x);
    ck_assert_int_eq(ds.n, 0);
}
END_TEST

START_TEST(cifar_bad_files) {
    unsigned char *rec = calloc(2, 3073);
    rec[0] = 3;
    write_file("data_batch_1.bin", rec, 3073 + 100, 0); /* cut inside record 2 */
    oialr_dataset ds;
    ck_assert_int_eq(oialr_dataset_load(&ds, "cifar10", dir, OIALR_SPLIT_TRAIN), OIALR_ERR_TRUNCATED);
    ck_assert_ptr_nonnull(strstr(oialr_errmsg(), "data_batch_1.bin"));
    rec[0] = 42; /* not a CIFAR-10 label */
    write_file("data_batch_1.bin", rec, 3073, 0);
    ck_assert_int_eq(oialr_dataset_load(&ds, "cifar10", dir, OIALR_SPLIT_TRAIN), OIALR_ERR_FORMAT);
    /* a bad label in the second file: the record is counted within that file */
    rec[0] = 3;
    write_file("data_batch_1.bin", rec, 2 * 3073, 0);
    rec[3073] = 10;
    write_file("data_batch_2.bin", rec, 2 * 3073, 0);
    ck_assert_int_eq(oialr_dataset_load(&ds, "cifar10", dir, OIALR_SPLIT_TRAIN), OIALR_ERR_FORMAT);
    ck_assert_msg(strstr(oialr_errmsg(), "data_batch_2.bin: record 1 has label 10"), "%s", oialr_errmsg());
    ck_assert_int_eq(oialr_dataset_load(&ds, "cifar10", dir, OIALR_SPLIT_TEST), OIALR_ERR_NOTFOUND);
    ck_assert_int_eq(oialr_dataset_load(&ds, "cifar10", NULL, OIALR_SPLIT_TEST), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_dataset_load(&ds, "imagenet", dir, OIALR_SPLIT_TRAIN), OIALR_ERR_ARG);
    ck_assert_int_eq(oialr_dataset_load(&ds, "mnist", dir, OIALR_SPLIT_TRAIN), OIALR_ERR_NOTFOUND);
    free(rec);
}
END_TEST

/* Run load() in a child that SIGALRM ends after 2 s, so that a reader which
 * blocks (gzopen on a FIFO waits for a writer) fails the test instead of
 * hanging it, even with CK_FORK=no. Returns load()'s code; msg gets the
 * error message. */
static int run_bounded(int (*load)(void), char *msg, size_t n) {
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        close(fd[0]);
        signal(SIGALRM, SIG_DFL); /* not Check's handler, which kills the whole group */
        alarm(2);
        int rc = load();
        const char *m = oialr_errmsg();
        if (write(fd[1], &rc, sizeof rc) != (ssize_t)sizeof rc || write(fd[1], m, strlen(m)) < 0) _exit(3);
        _exit(0);
    }
    close(fd[1]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(!WIFSIGNALED(st), "the load blocked: killed by signal %d after 2 s", WTERMSIG(st));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the loading child failed (status %d)", st);
    int rc;
    ck_assert_int_eq(read(fd[0], &rc, sizeof rc), (ssize_t)sizeof rc);
    ssize_t got = read(fd[0], msg, n - 1);
    msg[got > 0 ? got : 0] = '\0';
    close(fd[0]);
    return rc;
}

static char fifo_img[512], fifo_lab[512];
static int load_fifo_idx(void) {
    oialr_dataset ds;
    return oialr_idx_load(&ds, fifo_img, fifo_lab);
}
static int load_fifo_cifar(void) {
    oialr_dataset ds;
    return oialr_dataset_load(&ds, "cifar10", dir, OIALR_SPLIT_TRAIN);
}

/* A FIFO (or a directory) where a data file belongs is refused at once,
 * naming the file: as images, as labels, as a CIFAR-10 batch. */
START_TEST(not_regular_files) {
    unsigned char img[16 + 4 * 3 * 3], lab[8 + 4];
    write_file("img", img, idx_images(img, 4, 3, 3), 0);
    write_file("lab", lab, idx_labels(lab, 4), 0);
    char fifo[512], msg[1100];
    path_of(fifo, sizeof fifo, "fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    for (int which = 0; which < 3; which++) {
        path_of(fifo_img, sizeof fifo_img, which == 0 ? "fifo" : "img");
        path_of(fifo_lab, sizeof fifo_lab, which == 1 ? "fifo" : which == 2 ? "." : "lab");
        int rc = run_bounded(load_fifo_idx, msg, sizeof msg);
        ck_assert_msg(rc == OIALR_ERR_FORMAT && strstr(msg, "not a regular file") &&
                          strstr(msg, which ? fifo_lab : fifo_img),
                      "case %d: got %d: %s", which, rc, msg);
        ck_assert_msg(strstr(msg, which == 2 ? "a directory" : "a FIFO"), "case %d: %s", which, msg);
    }
    path_of(fifo, sizeof fifo, "data_batch_1.bin");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    int rc = run_bounded(load_fifo_cifar, msg, sizeof msg);
    ck_assert_msg(rc == OIALR_ERR_FORMAT && strstr(msg, "data_batch_1.bin: not a regular file (a FIFO)"), "got %d: %s",
                  rc, msg);
}
END_TEST

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    ck_assert_int_gt(size, 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)size);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* Every byte of a gzip stream after its 10-byte header (MTIME, XFL and OS
 * are not checked by anyone) matters: flipped, the pair is refused with a
 * one-line message naming the file, never half-loaded. A flip in the CRC-32
 * or length trailer only shows if the reader goes on past the payload the
 * header declares; so do bytes after that payload, gzip or plain. */
START_TEST(idx_gzip_checked_to_the_end) {
    unsigned char img[16 + 10 * 8 * 8], lab[8 + 10];
    size_t ni = idx_images(img, 10, 8, 8), nl = idx_labels(lab, 10);
    char pi[512], pl[512];
    path_of(pi, sizeof pi, "img.gz");
    path_of(pl, sizeof pl, "lab.gz");
    oialr_dataset ds;
    for (int which = 0; which < 2; which++) {
        const char *victim = which == 0 ? pi : pl;
        write_file("img.gz", img, ni, 1);
        write_file("lab.gz", lab, nl, 1);
        ck_assert_int_eq(oialr_idx_load(&ds, pi, pl), OIALR_OK); /* the unflipped pair loads */
        oialr_dataset_free(&ds);
        size_t n;
        unsigned char *gz = slurp(victim, &n);
        for (size_t pos = 10; pos < n; pos++) {
            gz[pos] ^= 0xFF;
            FILE *f = fopen(victim, "wb");
            ck_assert_uint_eq(fwrite(gz, 1, n, f), n);
            fclose(f);
            gz[pos] ^= 0xFF;
            int rc = oialr_idx_load(&ds, pi, pl);
            const char *m = oialr_errmsg();
            ck_assert_msg(rc == OIALR_ERR_FORMAT || rc == OIALR_ERR_TRUNCATED,
                          "%s: byte %zu of %zu flipped: got %d (%s)", victim, pos, n, rc, m);
            ck_assert_msg(strstr(m, victim) && !strchr(m, '\n'), "byte %zu: message '%s'", pos, m);
            if (pos >= n - 8) /* CRC-32, then the length mod 2^32 */
                ck_assert_msg(rc == OIALR_ERR_FORMAT && strstr(m, "corrupt") &&
                                  strstr(m, pos < n - 4 ? "incorrect data check" : "incorrect length check"),
                              "trailer byte %zu: %s", pos, m);
            ck_assert_ptr_null(ds.x);
        }
        free(gz);
    }
    /* a gzip stream cut inside its trailer: the payload is whole, the CRC unread */
    write_file("lab.gz", lab, nl, 1);
    write_file("img.gz", img, ni, 1);
    size_t n;
    free(slurp(pi, &n));
    ck_assert_int_eq(truncate(pi, (off_t)n - 4), 0);
    int rc = oialr_idx_load(&ds, pi, pl);
    ck_assert_msg(rc == OIALR_ERR_TRUNCATED && strstr(oialr_errmsg(), pi) && strstr(oialr_errmsg(), "trailer"),
                  "got %d (%s)", rc, oialr_errmsg());
    ck_assert_ptr_null(ds.x);
    /* bytes after the payload the header declares: gzip, then plain */
    unsigned char more[sizeof img + 5];
    memcpy(more, img, ni);
    memset(more + ni, 0, 5);
    for (int gz = 1; gz >= 0; gz--) {
        write_file("img.gz", more, ni + 5, gz);
        rc = oialr_idx_load(&ds, pi, pl);
        ck_assert_msg(rc == OIALR_ERR_FORMAT && strstr(oialr_errmsg(), pi) && strstr(oialr_errmsg(), "after the"),
                      "gz %d: got %d (%s)", gz, rc, oialr_errmsg());
        ck_assert_ptr_null(ds.x);
    }
}
END_TEST

static char logged[4096];
static int nwarn;
static void capture_log(int level, const char *msg, void *user) {
    (void)user;
    if (level != OIALR_LOG_WARN) return;
    nwarn++;
    snprintf(logged, sizeof logged, "%s", msg);
}

/* Labels and classes. MNIST and Fashion-MNIST have 10 classes: a label of
 * 10 or more is an error naming the labels file and the first bad index. A
 * bare IDX pair (oialr_idx_load, --dataset idx) infers max(10, largest + 1)
 * classes and warns when the largest label leaves classes above 9 without
 * a sample (a stray 57 among 0..9); 100 and above is refused. */
START_TEST(labels_and_classes) {
    unsigned char img[16 + 12 * 3 * 3], lab[8 + 12];
    size_t ni = idx_images(img, 12, 3, 3), nl = idx_labels(lab, 12);
    write_file("train-images-idx3-ubyte", img, ni, 0);
    write_file("t10k-images-idx3-ubyte", img, ni, 0);
    write_file("t10k-labels-idx1-ubyte", lab, nl, 0);
    char pi[512], pl[512];
    path_of(pi, sizeof pi, "train-images-idx3-ubyte");
    path_of(pl, sizeof pl, "train-labels-idx1-ubyte");
    oialr_set_log(capture_log, NULL, OIALR_LOG_INFO);
    oialr_dataset ds;
    for (int bad = 10; bad <= 57; bad += 47) {
        lab[8 + 7] = (unsigned char)bad;
        lab[8 + 9] = (unsigned char)bad;
        write_file("train-labels-idx1-ubyte", lab, nl, 0);
        static const char *const names[] = {"mnist", "fashion-mnist"};
        for (int k = 0; k < 2; k++) {
            int rc = oialr_dataset_load(&ds, names[k], dir, OIALR_SPLIT_TRAIN);
            char want[64];
            snprintf(want, sizeof want, "label %d at index 7", bad);
            ck_assert_msg(rc == OIALR_ERR_FORMAT && strstr(oialr_errmsg(), pl) && strstr(oialr_errmsg(), want),
                          "%s, label %d: got %d (%s)", names[k], bad, rc, oialr_errmsg());
            ck_assert_ptr_null(ds.x);
        }
        /* the test split (labels 0..9) still loads, with 10 classes */
        ck_assert_int_eq(oialr_dataset_load(&ds, "mnist", dir, OIALR_SPLIT_TEST), OIALR_OK);
        ck_assert_int_eq(ds.nclass, 10);
        oialr_dataset_free(&ds);
    }
    /* a bare pair: 58 classes, and a warning naming the file, the label and its index */
    nwarn = 0;
    ck_assert_int_eq(oialr_idx_load(&ds, pi, pl), OIALR_OK);
    ck_assert_int_eq(ds.nclass, 58);
    oialr_dataset_free(&ds);
    ck_assert_msg(nwarn == 1 && strstr(logged, pl) && strstr(logged, "label 57 at index 7"), "%d warnings: %s", nwarn,
                  logged);
    ck_assert_int_eq(oialr_dataset_load(&ds, "idx", dir, OIALR_SPLIT_TRAIN), OIALR_OK);
    ck_assert_int_eq(ds.nclass, 58);
    oialr_dataset_free(&ds);
    ck_assert_int_eq(nwarn, 2);
    /* every class present (26 letters, 0..25): more than 10 classes, no warning */
    unsigned char img2[16 + 26 * 3 * 3], lab2[8 + 26];
    size_t ni2 = idx_images(img2, 26, 3, 3), nl2 = idx_labels(lab2, 26);
    for (int i = 0; i < 26; i++) lab2[8 + i] = (unsigned char)(25 - i);
    write_file("letters-img", img2, ni2, 0);
    write_file("letters-lab", lab2, nl2, 0);
    char li[512], ll[512];
    path_of(li, sizeof li, "letters-img");
    path_of(ll, sizeof ll, "letters-lab");
    nwarn = 0;
    ck_assert_int_eq(oialr_idx_load(&ds, li, ll), OIALR_OK);
    ck_assert_int_eq(ds.nclass, 26);
    oialr_dataset_free(&ds);
    ck_assert_int_eq(nwarn, 0);
    /* 100 and above is no class index; the first bad index is named */
    lab2[8 + 4] = 200;
    lab2[8 + 20] = 250;
    write_file("letters-lab", lab2, nl2, 0);
    ck_assert_int_eq(oialr_idx_load(&ds, li, ll), OIALR_ERR_FORMAT);
    ck_assert_msg(strstr(oialr_errmsg(), ll) && strstr(oialr_errmsg(), "label 200 at index 4"), "%s", oialr_errmsg());
    ck_assert_ptr_null(ds.x);
    oialr_set_log(NULL, NULL, OIALR_LOG_INFO);
}
END_TEST

static Suite *data_suite(void) {
    Suite *s = suite_create("data");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_loop_test(core, idx_round_trip, 0, 2);
    tcase_add_test(core, dataset_by_name);
    tcase_add_test(core, cifar_round_trip);
    tcase_add_test(core, loader_split_and_norm);
    suite_add_tcase(s, core);
    TCase *lim = tcase_create("Limits");
    tcase_add_checked_fixture(lim, setup, teardown);
    tcase_add_loop_test(lim, idx_bad_files, 0, NBAD);
    tcase_add_test(lim, cifar_bad_files);
    tcase_add_test(lim, not_regular_files);
    tcase_add_test(lim, idx_gzip_checked_to_the_end);
    tcase_add_test(lim, labels_and_classes);
    suite_add_tcase(s, lim);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(data_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
