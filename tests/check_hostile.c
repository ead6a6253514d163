/*
 * check_hostile.c — a corpus of broken inputs for every reader (issue 12,
 * docs/hostile-files.md): IDX files plain and gzip (lib/data/idx.c),
 * CIFAR-10 batches (lib/data/cifar.c), trajectories (oialr_traj_open and
 * every read after it, `oialr analyze` in process) and the tables `oialr
 * plot` reads back.
 *
 * main() builds one small valid file of each kind; each case derives one
 * broken file from it (cut at an offset, bits flipped with a seed, wrong
 * types and ranks, huge declared sizes, a foreign HDF5 file, datasets that
 * disagree in length, a gzip stream broken inside) and runs the reader on it
 * in a forked child of its own (16 files to a Check test), under an
 * address-space limit, an alarm and an allocation-size check (below). A case ends in success, where the damage
 * leaves a valid file, or in an error code with a one-line message naming
 * the broken file; never in a crash, a hang, or an allocation sized by what
 * the file declares rather than what it holds. The existing Limits tests
 * (check_data, check_reader, check_record, check_outputs) test one named
 * defect each; this is the sweep.
 */
#include <check.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "analyze.h"
#include "oialr.h"
#include "oialr/trajectory.h"
#include "plot.h"

// ----------------------------------------------------------------------------
// the guards: address space, allocation size, time

#if defined(__SANITIZE_ADDRESS__)
#define HOSTILE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOSTILE_ASAN 1
#endif
#endif

/* No reader needs more than this for one of these small files: a request
 * above it was sized by a declared shape, not by data. */
#define HOSTILE_MAX_ALLOC ((size_t)256 << 20)

#ifdef HOSTILE_ASAN
/* ASan reserves terabytes of shadow memory, so no RLIMIT_AS; its allocator
 * aborts (a report, the case fails) on a request above the limit instead. */
/* visible to the runtime's lookup: the build hides symbols by default */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "max_allocation_size_mb=256:allocator_may_return_null=0"; }
/* and undefined behaviour (the ASan build is address,undefined) fails
 * the case instead of printing a line and going on */
__attribute__((visibility("default"))) const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) { return "halt_on_error=1:print_stacktrace=1"; }
#define HOSTILE_ALARM 90
#else
/* The same check without ASan: glibc's allocator behind a size test (a
 * request that would fail under RLIMIT_AS is still an attempt). */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
static void huge_request(size_t n) {
    char m[96];
    int k = snprintf(m, sizeof m, "check_hostile: allocation of %zu bytes\n", n);
    if (write(2, m, (size_t)k) < 0) abort();
    abort();
}
/* default visibility: HDF5 and zlib allocate through these too */
#define HOSTILE_VISIBLE __attribute__((visibility("default")))
HOSTILE_VISIBLE void *malloc(size_t n);
HOSTILE_VISIBLE void *calloc(size_t n, size_t size);
HOSTILE_VISIBLE void *realloc(void *p, size_t n);
void *malloc(size_t n) {
    if (n > HOSTILE_MAX_ALLOC) huge_request(n);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
    if (size && n > HOSTILE_MAX_ALLOC / size) huge_request(n * size);
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
    if (n > HOSTILE_MAX_ALLOC) huge_request(n);
    return __libc_realloc(p, n);
}
#define HOSTILE_ALARM 20
#endif
#define HOSTILE_AS ((rlim_t)2 << 30)

/* Outside a test (main builds the valid files), Check's asserts cannot
 * report: a failure there aborts with the line. */
#define NEED(x)                                                                                              \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                         \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)
#define NEED_OK(x)                                                                                           \
    do {                                                                                                     \
        int rc_ = (x);                                                                                       \
        if (rc_) {                                                                                           \
            fprintf(stderr, "%s:%d: %s -> %d: %s\n", __FILE__, __LINE__, #x, rc_, oialr_errmsg());          \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)


// ----------------------------------------------------------------------------
// the corpus

enum { R_IDX, R_CIFAR, R_TRAJ, R_TABLES, NREADERS };
static const char *const READER_NAME[NREADERS] = {"IDX", "CIFAR-10", "trajectory", "plot tables"};

/* What a case may end in: only an error, or success or an error. */
enum { MUST_FAIL, MAY_LOAD };

typedef struct hcase {
    int reader, kind, expect;
    uint32_t arg;
    const char *what; /* for structural cases */
} hcase;

#define MAXCASES 2048
static hcase cases[MAXCASES];
static int ncases, first[NREADERS + 1];

static char root[256];

typedef struct blob {
    unsigned char *p;
    size_t n;
} blob;

/* The valid files, made by main() before any fork. */
static blob idx_img, idx_lab, idx_img_gz, idx_img_gz0, idx_lab_gz, cifar, traj, metrics_csv;
static char good_traj[600], good_tables[600];

#define IMG_N 10
#define IMG_H 7
#define IMG_W 5
#define CIFAR_REC 3073
#define CIFAR_N 3

static void add(int reader, int kind, int expect, uint32_t arg, const char *what) {
    NEED(ncases < MAXCASES);
    cases[ncases++] = (hcase){reader, kind, expect, arg, what};
}

// ----------------------------------------------------------------------------
// files

/* snprintf into an array, which must hold the result. */
#define PATH(buf, ...) pathf(buf, sizeof buf, __VA_ARGS__)
static void pathf(char *out, size_t n, const char *fmt, ...) OIALR_PRINTF(3, 4);
static void pathf(char *out, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    NEED(k >= 0 && (size_t)k < n);
}


static blob bl_copy(blob b) {
    blob c = {malloc(b.n ? b.n : 1), b.n};
    ck_assert_ptr_nonnull(c.p);
    memcpy(c.p, b.p, b.n);
    return c;
}

static void write_blob(const char *path, const unsigned char *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static blob read_blob(const char *path) {
    FILE *f = fopen(path, "rb");
    NEED(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    blob b = {malloc((size_t)n + 1), (size_t)n};
    NEED((b.p) != NULL);
    NEED((fread(b.p, 1, b.n, f)) == (b.n));
    b.p[b.n] = 0; /* a string for strchr/strstr, not counted in n */
    fclose(f);
    return b;
}

/* gzip of p[n] at a deflate level (0: stored blocks). */
static blob gzip_of(const unsigned char *p, size_t n, int level) {
    z_stream z;
    memset(&z, 0, sizeof z);
    NEED((deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)) == Z_OK);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    blob b = {malloc(cap), 0};
    z.next_in = (unsigned char *)p;
    z.avail_in = (uInt)n;
    z.next_out = b.p;
    z.avail_out = (uInt)cap;
    NEED((deflate(&z, Z_FINISH)) == Z_STREAM_END);
    b.n = cap - z.avail_out;
    deflateEnd(&z);
    return b;
}

static void be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16), b[2] = (unsigned char)(v >> 8),
    b[3] = (unsigned char)v;
}

static blob idx_file(int ndim, const uint32_t *dims, size_t payload, unsigned seed) {
    blob b = {malloc(4 + 4 * (size_t)ndim + payload), 4 + 4 * (size_t)ndim + payload};
    NEED(b.p != NULL);
    b.p[0] = 0, b.p[1] = 0, b.p[2] = 8, b.p[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) be32(b.p + 4 + 4 * i, dims[i]);
    for (size_t i = 0; i < payload; i++) b.p[4 + 4 * ndim + i] = (unsigned char)(seed ? i % 10 : i * 7 + 3);
    return b;
}

/* Flip `bits` seeded bits of b in [lo, hi). */
static void flip_bits(blob *b, uint32_t seed, int bits, size_t lo, size_t hi) {
    oialr_rng r;
    oialr_rng_seed(&r, seed, 12);
    if (hi > b->n) hi = b->n;
    for (int i = 0; i < bits && hi > lo; i++) {
        size_t at = lo + oialr_rng_below(&r, (uint32_t)(hi - lo));
        b->p[at] ^= (unsigned char)(1u << oialr_rng_below(&r, 8));
    }
}

static int cur; /* the case running in this child */
static char cur_what[160];

/* The case's own directory (made here). */
static void case_dir(char *out, size_t n) {
    snprintf(out, n, "%s/c%04d", root, cur);
    mkdir(out, 0755);
}

// ----------------------------------------------------------------------------
// what every failure must look like

static void expect_message(int rc, const char *file) {
    const char *m = oialr_errmsg();
    ck_assert_msg(rc < 0 && strcmp(oialr_strerror(rc), "unknown error") != 0, "case %d (%s): rc %d", cur, cur_what,
                  rc);
    ck_assert_msg(rc != OIALR_ERR_NOMEM, "case %d (%s): out of memory on a small file: %s", cur, cur_what, m);
    ck_assert_msg(m[0] != '\0', "case %d (%s): rc %d (%s) without a message", cur, cur_what, rc, oialr_strerror(rc));
    ck_assert_msg(strchr(m, '\n') == NULL, "case %d (%s): message of several lines: %s", cur, cur_what, m);
    ck_assert_msg(strstr(m, file) != NULL, "case %d (%s): message does not name %s: %s", cur, cur_what, file, m);
}

static void end_case(int rc, const char *file, int expect) {
    if (getenv("HOSTILE_VERBOSE")) /* every outcome, for docs/hostile-files.md */
        printf("case %d (%s): %s\n", cur, cur_what, rc ? oialr_errmsg() : "loaded");
    if (rc == OIALR_OK)
        ck_assert_msg(expect == MAY_LOAD, "case %d (%s): a broken file loaded", cur, cur_what);
    else
        expect_message(rc, file);
}

// ----------------------------------------------------------------------------
// IDX

enum {
    I_CUT_IMG,    /* plain images cut at arg */
    I_CUT_LAB,    /* plain labels cut at arg */
    I_CUT_GZ,     /* gzip images cut at arg */
    I_CUT_GZ0,    /* gzip (stored blocks) images cut at arg */
    I_FLIP_IMG,   /* plain images, one seeded bit flipped */
    I_FLIP_LAB,   /* plain labels, one seeded bit flipped */
    I_FLIP_GZ,    /* gzip images, seeded bits flipped in the deflate stream */
    I_FLIP_GZHDR, /* gzip images, a bit of the gzip header or trailer flipped */
    I_MAGIC,      /* images with header byte arg>>8 set to arg&255 */
    I_DIMS,       /* images (plain) with declared dims from DIMS[arg] */
    I_DIMS_GZ,    /* the same, gzip */
    I_GZSPECIAL,  /* gzip streams broken in a named way */
};

static const uint32_t DIMS[][4] = {
    /* n, h, w, label count */
    {0, IMG_H, IMG_W, 0},
    {IMG_N + 1, IMG_H, IMG_W, IMG_N + 1},
    {IMG_N - 1, IMG_H, IMG_W, IMG_N - 1},
    {IMG_N, IMG_H, 0, IMG_N},
    {IMG_N, 0xFFFFFFFFu, IMG_W, IMG_N},
    {IMG_N, 4097, IMG_W, IMG_N},
    {0x7FFFFFFFu, IMG_H, IMG_W, 0x7FFFFFFFu},
    {0xFFFFFFFFu, IMG_H, IMG_W, 0xFFFFFFFFu},
    {0xFFFFFFFFu, 4096, 4096, 0xFFFFFFFFu}, /* 2^56 bytes */
    {64, 4096, 4096, 64},                   /* 1 GiB from a header */
    {16, 4096, 4096, 16},                   /* 256 MiB */
    {IMG_N, 4096, 4096, IMG_N},
    {1u << 20, 64, 64, 1u << 20},           /* 4 GiB */
    {IMG_N, IMG_H, IMG_W, 0xFFFFFFFFu},     /* the labels' count huge */
};
#define NDIMS ((int)(sizeof DIMS / sizeof *DIMS))

static const char *const GZSPECIAL[] = {
    "CRC-32 trailer wrong",
    "ISIZE trailer wrong",
    "no trailer",
    "gzip header only",
    "FEXTRA flag with a huge XLEN",
    "FNAME flag, no terminating NUL",
    "compression method 7",
    "stored block LEN/NLEN disagree",
    "a second member, corrupt",
    "the gzip of the images cut inside the header",
    "the gzip of the images and 64 bytes more",
    "raw deflate without the gzip wrapper",
    "zlib wrapper instead of gzip",
};
#define NGZSPECIAL ((int)(sizeof GZSPECIAL / sizeof *GZSPECIAL))

static void make_idx(const hcase *c, char *img, char *lab, size_t n, const char **broken) {
    char d[512];
    case_dir(d, sizeof d);
    snprintf(img, n, "%s/images", d);
    snprintf(lab, n, "%s/labels", d);
    write_blob(lab, idx_lab.p, idx_lab.n);
    *broken = img;
    blob b = {NULL, 0};
    switch (c->kind) {
    case I_CUT_IMG: b = bl_copy(idx_img), b.n = c->arg; break;
    case I_CUT_LAB:
        b = bl_copy(idx_img);
        write_blob(lab, idx_lab.p, c->arg);
        *broken = lab;
        break;
    case I_CUT_GZ: b = bl_copy(idx_img_gz), b.n = c->arg; break;
    case I_CUT_GZ0: b = bl_copy(idx_img_gz0), b.n = c->arg; break;
    case I_FLIP_IMG: b = bl_copy(idx_img), flip_bits(&b, c->arg, 1, 0, b.n); break;
    case I_FLIP_LAB: {
        blob l = bl_copy(idx_lab);
        flip_bits(&l, c->arg, 1, 0, l.n);
        write_blob(lab, l.p, l.n);
        free(l.p);
        b = bl_copy(idx_img);
        *broken = lab;
        break;
    }
    case I_FLIP_GZ: b = bl_copy(idx_img_gz), flip_bits(&b, c->arg, 1 + c->arg % 4, 10, b.n - 8); break;
    case I_FLIP_GZHDR:
        b = bl_copy(idx_img_gz);
        b.p[c->arg < 80 ? c->arg / 8 : b.n - 8 + (c->arg - 80) / 8] ^= (unsigned char)(1u << (c->arg % 8));
        break;
    case I_MAGIC: b = bl_copy(idx_img), b.p[c->arg >> 8] = (unsigned char)c->arg; break;
    case I_DIMS:
    case I_DIMS_GZ: {
        const uint32_t *dm = DIMS[c->arg];
        b = bl_copy(idx_img);
        be32(b.p + 4, dm[0]), be32(b.p + 8, dm[1]), be32(b.p + 12, dm[2]);
        blob l = bl_copy(idx_lab);
        be32(l.p + 4, dm[3]);
        if (c->kind == I_DIMS_GZ) {
            blob g = gzip_of(b.p, b.n, 6), gl = gzip_of(l.p, l.n, 6);
            free(b.p), free(l.p);
            b = g, l = gl;
        }
        write_blob(lab, l.p, l.n);
        free(l.p);
        break;
    }
    case I_GZSPECIAL: {
        b = bl_copy(idx_img_gz);
        switch (c->arg) {
        case 0: b.p[b.n - 8] ^= 0x5a; break;
        case 1: b.p[b.n - 1] ^= 0x01; break;
        case 2: b.n -= 8; break;
        case 3: b.n = 10; break;
        case 4: b.p[3] |= 4, b.p[10] = 0xff, b.p[11] = 0xff; break;
        case 5: {
            blob h = {malloc(10 + 300), 10 + 300};
            memcpy(h.p, idx_img_gz.p, 10);
            h.p[3] |= 8;
            memset(h.p + 10, 'a', 300);
            free(b.p);
            b = h;
            break;
        }
        case 6: b.p[2] = 7; break;
        case 7: {
            free(b.p);
            b = bl_copy(idx_img_gz0);
            b.p[10 + 3] ^= 0x10; /* a stored block: BTYPE byte, LEN, NLEN */
            break;
        }
        case 8: {
            blob two = {malloc(2 * idx_img_gz.n), 2 * idx_img_gz.n};
            memcpy(two.p, idx_img_gz.p, idx_img_gz.n);
            memcpy(two.p + idx_img_gz.n, idx_img_gz.p, idx_img_gz.n);
            two.p[idx_img_gz.n + 20] ^= 0xff;
            free(b.p);
            b = two;
            break;
        }
        case 9: b.n = 6; break;
        case 10: {
            blob more = {malloc(idx_img.n + 64), idx_img.n + 64};
            memcpy(more.p, idx_img.p, idx_img.n);
            memset(more.p + idx_img.n, 1, 64);
            free(b.p);
            b = gzip_of(more.p, more.n, 6);
            free(more.p);
            break;
        }
        case 11: memmove(b.p, b.p + 10, b.n - 18), b.n -= 18; break;
        case 12: {
            free(b.p);
            uLongf cap = compressBound((uLong)idx_img.n);
            b.p = malloc(cap);
            ck_assert_int_eq(compress2(b.p, &cap, idx_img.p, (uLong)idx_img.n, 6), Z_OK);
            b.n = cap;
            break;
        }
        }
        break;
    }
    }
    write_blob(img, b.p, b.n);
    free(b.p);
}

static void run_idx(const hcase *c) {
    char img[1024], lab[1024];
    const char *broken;
    make_idx(c, img, lab, sizeof img, &broken);
    oialr_dataset ds;
    int rc = oialr_idx_load(&ds, img, lab);
    if (rc == OIALR_OK) {
        ck_assert_msg(ds.n > 0 && ds.x && ds.y && ds.h > 0 && ds.w > 0, "case %d: loaded an empty data set", cur);
        oialr_dataset_free(&ds);
    } else {
        ck_assert_ptr_null(ds.x);
        /* a count mismatch names both files */
        expect_message(rc, broken);
    }
    end_case(rc, broken, c->expect);
}

// ----------------------------------------------------------------------------
// CIFAR-10

enum {
    C_CUT,      /* cut at arg */
    C_FLIP,     /* one seeded bit flipped */
    C_LABEL,    /* record arg>>8 labelled arg&255 */
    C_EXTRA,    /* arg bytes appended */
    C_SPARSE,   /* a sparse file of arg * 2^16 records */
    C_SECOND,   /* a good first file, a second one cut at arg */
};

static void run_cifar(const hcase *c) {
    char d[512], p1[1024], p2[1024];
    case_dir(d, sizeof d);
    PATH(p1, "%s/data_batch_1.bin", d);
    PATH(p2, "%s/data_batch_2.bin", d);
    const char *paths[2] = {p1, p2}, *broken = p1;
    int np = 1;
    blob b = bl_copy(cifar);
    switch (c->kind) {
    case C_CUT: b.n = c->arg; break;
    case C_FLIP: flip_bits(&b, c->arg, 1, 0, b.n); break;
    case C_LABEL: b.p[(size_t)(c->arg >> 8) * CIFAR_REC] = (unsigned char)c->arg; break;
    case C_EXTRA: {
        unsigned char *q = realloc(b.p, b.n + c->arg);
        ck_assert_ptr_nonnull(q);
        memset(q + b.n, 3, c->arg);
        b.p = q;
        b.n += c->arg;
        break;
    }
    case C_SPARSE: break;
    case C_SECOND:
        write_blob(p2, b.p, c->arg);
        np = 2;
        broken = p2;
        break;
    }
    write_blob(p1, b.p, b.n);
    free(b.p);
    if (c->kind == C_SPARSE) ck_assert_int_eq(truncate(p1, (off_t)CIFAR_REC * ((off_t)c->arg << 16)), 0);
    oialr_dataset ds;
    int rc = oialr_cifar10_load(&ds, paths, np);
    if (rc == OIALR_OK) {
        ck_assert_msg(ds.n > 0 && ds.x && ds.y, "case %d: loaded an empty data set", cur);
        int64_t bad = -1;
        for (int64_t i = 0; i < ds.n && bad < 0; i++)
            if (ds.y[i] >= 10) bad = i;
        ck_assert_msg(bad < 0, "case %d: label %lld out of range", cur, (long long)bad);
        oialr_dataset_free(&ds);
    } else {
        ck_assert_ptr_null(ds.x);
    }
    end_case(rc, broken, c->expect);
}

// ----------------------------------------------------------------------------
// trajectories

#define NSNAP 5
#define L0_ROWS 6
#define L0_COLS 4
#define L1_ROWS 8
#define L1_COLS 6
#define L1_CAP 3
#define NPARAMS 24
#define NORDER 10

static void make_traj(const char *path) {
    oialr_traj *t = NULL;
    oialr_traj_options o;
    oialr_traj_options_default(&o);
    o.force = 1;
    o.seed = 7;
    o.command_line = "check_hostile";
    NEED_OK(oialr_traj_create(&t, path, &o));
    int a, b;
    NEED_OK(oialr_traj_set_config(t, "model", "mlp:8"));
    NEED_OK(oialr_traj_set_config(t, "steps_per_epoch", "10"));
    NEED_OK(oialr_traj_declare_layer(t, "fc1.weight", L0_ROWS, L0_COLS, "dense", 0, NULL, &a));
    NEED_OK(oialr_traj_declare_layer(t, "lr.weight", L1_ROWS, L1_COLS, "dense", 0, NULL, &b));
    NEED_OK(oialr_traj_declare_factors(t, b, L1_CAP));
    NEED_OK(oialr_traj_declare_ckpt_array(t, "params", NPARAMS));
    NEED_OK(oialr_traj_declare_ckpt_array_i64(t, "order", NORDER));
    NEED_OK(oialr_traj_declare_ckpt_scalar(t, "step", 0));
    NEED_OK(oialr_traj_declare_ckpt_scalar(t, "rng", 1));
    NEED_OK(oialr_traj_begin(t));
    int ncol = oialr_traj_get_info(t)->ncolumns;
    float w[L1_ROWS * L1_COLS], u[L1_ROWS * L1_CAP], s[L1_CAP * L1_CAP], v[L1_COLS * L1_CAP];
    oialr_rng r;
    oialr_rng_seed(&r, 3, 1);
    for (int k = 0; k < NSNAP; k++) {
        int64_t step = 10 * k;
        for (int i = 0; i < L1_ROWS * L1_COLS; i++) w[i] = oialr_rng_normal(&r);
        for (int i = 0; i < L1_ROWS * L1_CAP; i++) u[i] = oialr_rng_normal(&r);
        for (int i = 0; i < L1_COLS * L1_CAP; i++) v[i] = oialr_rng_normal(&r);
        for (int i = 0; i < L1_CAP * L1_CAP; i++) s[i] = i % (L1_CAP + 1) == 0 ? 3.0f - (float)i / 4 : 0.01f;
        NEED_OK(oialr_traj_append(t, a, step, w, 0));
        /* lr.weight: full, a basis of rank 3, Σ only, Σ only at rank 2, a new basis */
        int rc = k == 0   ? oialr_traj_append(t, b, step, w, 0)
                 : k == 1 ? oialr_traj_append_factors(t, b, step, 3, u, s, v)
                 : k == 2 ? oialr_traj_append_factors(t, b, step, 3, NULL, s, NULL)
                 : k == 3 ? oialr_traj_append_factors(t, b, step, 2, NULL, s, NULL)
                          : oialr_traj_append_factors(t, b, step, 2, u, s, v);
        NEED_OK(rc);
        double row[32];
        for (int i = 0; i < ncol; i++) row[i] = i == 7 ? 0.1 : 1.0 / (k + 1 + i);
        NEED_OK(oialr_traj_append_metrics(t, step, row, ncol));
    }
    oialr_traj_event ev = {.step = 10, .kind = OIALR_EVENT_SWITCH, .stability = 0.995, .rank_before = 6,
                           .rank_after = 3};
    strcpy(ev.layer, "lr.weight");
    NEED_OK(oialr_traj_append_event(t, &ev));
    ev.step = 30, ev.kind = OIALR_EVENT_TRUNCATE, ev.rank_before = 3, ev.rank_after = 2;
    NEED_OK(oialr_traj_append_event(t, &ev));
    float params[NPARAMS];
    int64_t order[NORDER];
    for (int i = 0; i < NPARAMS; i++) params[i] = (float)i;
    for (int i = 0; i < NORDER; i++) order[i] = NORDER - 1 - i;
    NEED_OK(oialr_traj_ckpt_start(t));
    NEED_OK(oialr_traj_ckpt_put_array(t, "params", params, NPARAMS));
    NEED_OK(oialr_traj_ckpt_put_array_i64(t, "order", order, NORDER));
    NEED_OK(oialr_traj_ckpt_put_i64(t, "step", 40));
    NEED_OK(oialr_traj_ckpt_put_u64(t, "rng", 0xdeadbeefcafeULL));
    NEED_OK(oialr_traj_ckpt_commit(t));
    NEED_OK(oialr_traj_close(t));
}

static int open_rc; /* walk_traj's oialr_traj_open */

/* A getter's result: OK, or an error naming the file (NOTFOUND of a getter
 * is an answer, not a failure). Returns 1 to stop the walk. */
static int getter(int rc, const char *path, int *first_rc) {
    if (rc == OIALR_OK) return 0;
    expect_message(rc, path);
    if (rc == OIALR_ERR_NOTFOUND) return 0;
    if (!*first_rc) *first_rc = rc;
    return 1;
}

/* Open, then every read the API offers; the first error (its message
 * checked) or OIALR_OK. counts: layer 0's snapshots, layer 1's and
 * metrics rows, when it opened. */
static int walk_traj(const char *path, int64_t *counts) {
    oialr_traj *t = NULL;
    int rc = oialr_traj_open(&t, path, OIALR_TRAJ_READ), bad = 0;
    open_rc = rc;
    if (rc) {
        ck_assert_ptr_null(t);
        expect_message(rc, path);
        return rc;
    }
    const oialr_traj_info *in = oialr_traj_get_info(t);
    ck_assert_int_ge(in->nmetrics, 0);
    ck_assert_int_ge(in->nevents, 0);
    counts[0] = counts[1] = -1;
    counts[2] = in->nmetrics;
    for (int i = 0; i < oialr_traj_nlayers(t) && !bad; i++) {
        const oialr_traj_layer *L = oialr_traj_layer_at(t, i);
        ck_assert_ptr_nonnull(L);
        ck_assert_msg(L->rows > 0 && L->cols > 0 && L->nsnap >= 0, "layer %s: %lldx%lld, %lld snapshots", L->name,
                      (long long)L->rows, (long long)L->cols, (long long)L->nsnap);
        if (i < 2) counts[i] = L->nsnap;
        int idx = -1;
        bad = getter(oialr_traj_find_layer(t, L->name, &idx), path, &rc);
        if (L->nsnap > 0) {
            int64_t snap = -1;
            bad = bad || getter(oialr_traj_find_step(t, i, L->steps[L->nsnap - 1], &snap), path, &rc);
        }
        size_t n = (size_t)L->rows * (size_t)L->cols;
        if (n > ((size_t)1 << 22)) continue; /* the format allows 4 GiB snapshots; not read here */
        float *w = malloc(n * sizeof *w);
        ck_assert_ptr_nonnull(w);
        for (int64_t s = 0; s < L->nsnap && s < 64 && !bad; s++) bad = getter(oialr_traj_read(t, i, s, w, n), path, &rc);
        free(w);
    }
    int64_t k = in->nmetrics < 4096 ? in->nmetrics : 4096, got = 0;
    double *col = malloc((size_t)(k + 1) * sizeof *col);
    int64_t *st = malloc((size_t)(k + 1) * sizeof *st);
    ck_assert(col && st);
    if (!bad) bad = getter(oialr_traj_read_metric_steps(t, st, k, &got), path, &rc);
    if (!bad) bad = getter(oialr_traj_read_column(t, "step", col, k, &got), path, &rc);
    for (int i = 0; i < in->ncolumns && !bad; i++) {
        const char *name = oialr_traj_column_name(t, i);
        ck_assert_ptr_nonnull(name);
        bad = getter(oialr_traj_read_column(t, name, col, k, &got), path, &rc);
    }
    free(col), free(st);
    int64_t ne = in->nevents < 256 ? in->nevents : 256;
    oialr_traj_event *ev = malloc((size_t)(ne + 1) * sizeof *ev);
    ck_assert_ptr_nonnull(ev);
    if (!bad) bad = getter(oialr_traj_read_events(t, ev, ne, &got), path, &rc);
    for (int64_t i = 0; !bad && i < got; i++) ck_assert_ptr_nonnull(memchr(ev[i].layer, 0, sizeof ev[i].layer));
    free(ev);
    char buf[64];
    if (!bad) bad = getter(oialr_traj_get_config(t, "model", buf, sizeof buf), path, &rc);
    static const char *const arrays[] = {"params", "order"};
    for (int a = 0; a < 2 && !bad; a++) {
        size_t n = 0;
        bad = getter(oialr_traj_ckpt_array_size(t, arrays[a], &n), path, &rc);
        if (bad || n == 0 || n > ((size_t)1 << 20)) continue;
        void *x = malloc(n * 8);
        ck_assert_ptr_nonnull(x);
        bad = getter(a ? oialr_traj_ckpt_get_array_i64(t, arrays[a], x, n)
                       : oialr_traj_ckpt_get_array(t, arrays[a], x, n),
                     path, &rc);
        free(x);
    }
    int64_t i64;
    uint64_t u64;
    if (!bad) bad = getter(oialr_traj_ckpt_get_i64(t, "step", &i64), path, &rc);
    if (!bad) bad = getter(oialr_traj_ckpt_get_u64(t, "rng", &u64), path, &rc);
    if (!bad) bad = getter(oialr_traj_refresh(t), path, &rc);
    int crc = oialr_traj_close(t);
    if (crc && !rc) {
        expect_message(crc, path);
        rc = crc;
    }
    return rc;
}

/* `oialr analyze PATH -o DIR/r.h5 --csv DIR/t -q` in this process, its
 * output silenced; the exit status. */
static int run_cmd(int (*cmd)(int, char **), char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout), fflush(stderr);
    int out = dup(1), err = dup(2), null = open("/dev/null", O_WRONLY);
    NEED(out >= 0 && err >= 0 && null >= 0);
    dup2(null, 1), dup2(null, 2), close(null);
    int st = cmd(argc, argv);
    fflush(stdout), fflush(stderr);
    dup2(out, 1), dup2(err, 2), close(out), close(err);
    return st;
}

static void analyze_in_process(const char *path, const char *d) {
    char res[1024], csv[1024];
    PATH(res, "%s/results.h5", d);
    PATH(csv, "%s/tables", d);
    char *argv[] = {"analyze", (char *)path, "-o", res, "--csv", csv, "--threads", "1", "-q", "--policy", "auto", NULL};
    oialr_clearerr();
    int st = run_cmd(oialr_cmd_analyze, argv);
    if (st != 0) {
        ck_assert_int_eq(st, 1);
        const char *m = oialr_errmsg();
        ck_assert_msg(strstr(m, path) && !strchr(m, '\n'), "case %d (%s): analyze: %s", cur, cur_what, m);
    } else {
        ck_assert_msg(open_rc == OIALR_OK, "case %d (%s): analyze read a file the reader refuses", cur, cur_what);
    }
}

enum {
    T_CUT,      /* cut at arg */
    T_FLIP,     /* one seeded bit flipped */
    T_FLIPS,    /* 16 seeded bits flipped inside 64 bytes */
    T_ZERO,     /* 256 bytes zeroed at a seeded offset */
    T_STRUCT,   /* STRUCT[arg], made with the HDF5 API */
};

// ---- the structural cases -------------------------------------------------

static hid_t h5_open_rw(const char *path) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    ck_assert_int_ge(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    ck_assert_msg(f >= 0, "cannot open %s", path);
    return f;
}

enum { LAY_CHUNK = 1, LAY_LATE = 2, LAY_DEFLATE = 4, LAY_FLETCHER = 8 };

/* Replace obj (if any) by a dataset of ftype and dims[rank]; layout flags
 * as above; chunk (NULL: one row) when chunked; written from data (as
 * mtype) unless data is NULL. */
static hid_t mkdset(hid_t f, const char *obj, hid_t ftype, int rank, const hsize_t *dims, int flags,
                    const hsize_t *chunk, hid_t mtype, const void *data) {
    if (H5Lexists(f, obj, H5P_DEFAULT) > 0) ck_assert_int_ge(H5Ldelete(f, obj, H5P_DEFAULT), 0);
    hsize_t maxd[3] = {H5S_UNLIMITED, rank > 1 ? dims[1] : 1, rank > 2 ? dims[2] : 1};
    hid_t sp = rank ? H5Screate_simple(rank, dims, flags & LAY_CHUNK ? maxd : NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (flags & LAY_CHUNK) {
        hsize_t ch[3] = {1, rank > 1 ? dims[1] : 1, rank > 2 ? dims[2] : 1};
        ck_assert_int_ge(H5Pset_chunk(dcpl, rank, chunk ? chunk : ch), 0);
    }
    if (flags & LAY_LATE) ck_assert_int_ge(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE), 0);
    if (flags & LAY_DEFLATE) ck_assert_int_ge(H5Pset_deflate(dcpl, 4), 0);
    if (flags & LAY_FLETCHER) ck_assert_int_ge(H5Pset_fletcher32(dcpl), 0);
    hid_t d = H5Dcreate2(f, obj, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "cannot create %s", obj);
    if (data) ck_assert_int_ge(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Pclose(dcpl), H5Sclose(sp);
    return d;
}

static void set_extent0(hid_t f, const char *obj, hsize_t n) {
    hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[3];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    dims[0] = n;
    ck_assert_int_ge(H5Dset_extent(d, dims), 0);
    H5Sclose(sp), H5Dclose(d);
}

/* Element at of the 1-D integer dataset obj = v. */
static void put_int(hid_t f, const char *obj, hsize_t at, int64_t v) {
    hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    hid_t fs = H5Dget_space(d);
    hsize_t one = 1;
    hid_t ms = H5Screate_simple(1, &one, NULL);
    ck_assert_int_ge(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &one, NULL), 0);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, &v), 0);
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d);
}

static void attr_replace(hid_t loc, const char *name, hid_t ftype, int n, hid_t mtype, const void *v) {
    if (H5Aexists(loc, name) > 0) ck_assert_int_ge(H5Adelete(loc, name), 0);
    hsize_t dn = (hsize_t)n;
    hid_t sp = n ? H5Screate_simple(1, &dn, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(H5Awrite(a, mtype, v), 0);
    H5Aclose(a), H5Sclose(sp);
}

static void attr_str(hid_t loc, const char *name, const char *s) {
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, strlen(s) + 1);
    attr_replace(loc, name, ty, 0, ty, s);
    H5Tclose(ty);
}

/* Store raw bytes as chunk 0 of d (HDF5 does not look at them). */
static void raw_chunk(hid_t d, const void *p, size_t n) {
    hsize_t off[3] = {0, 0, 0};
    ck_assert_int_ge(H5Dwrite_chunk(d, H5P_DEFAULT, 0, off, n, p), 0);
}

typedef struct scase {
    const char *what;
    int expect;
    int64_t want[3]; /* nsnap of layer 0, of layer 1, metrics rows; -1: any */
} scase;

#define ANY3 {-1, -1, -1}
static const scase STRUCT[] = {
    /* foreign files and our root attributes wrong */
    {"foreign: /data and /layers, no format attribute", MUST_FAIL, ANY3},
    {"format attribute an integer", MUST_FAIL, ANY3},
    {"format attribute \"oialr-trajectoryX\"", MUST_FAIL, ANY3},
    {"format attribute two strings", MUST_FAIL, ANY3},
    {"format_version a string", MUST_FAIL, ANY3},
    {"format_version a float", MUST_FAIL, ANY3},
    {"format_version 0", MUST_FAIL, ANY3},
    {"format_version 2^40 (int64)", MUST_FAIL, ANY3},
    {"format_version three integers", MUST_FAIL, ANY3},
    /* objects of the wrong kind */
    {"/layers a dataset", MUST_FAIL, ANY3},
    {"/layers/fc1.weight a dataset", MUST_FAIL, ANY3},
    {"/layers/fc1.weight a dangling soft link", MUST_FAIL, ANY3},
    {"/layers/zz an external link to a missing file", MUST_FAIL, ANY3},
    {"/layers/zz a hard link to /layers (a cycle)", MUST_FAIL, ANY3},
    {"/metrics a dataset", MUST_FAIL, ANY3},
    {"/metrics/step strings", MUST_FAIL, ANY3},
    {"/events a group", MUST_FAIL, ANY3},
    {"/checkpoint a dataset", MUST_FAIL, ANY3},
    {"/checkpoint/params float [2, 6, 4]", MUST_FAIL, ANY3},
    {"/checkpoint/params float [2, 2^40], never written", MAY_LOAD, ANY3},
    {"/checkpoint/params a string [2, 24]", MUST_FAIL, ANY3},
    {"/config a dataset", MAY_LOAD, ANY3},
    {"/config model an integer", MAY_LOAD, ANY3},
    {"layer attribute rows a string", MUST_FAIL, ANY3},
    {"layer attribute cols 2^40", MUST_FAIL, ANY3},
    {"layer attribute shape of 9 integers", MAY_LOAD, ANY3},
    {"layer attribute kind of 100 kB", MAY_LOAD, ANY3},
    {"metrics columns naming a missing column", MUST_FAIL, ANY3},
    {"metrics columns 'loss' 20000 times", MAY_LOAD, ANY3},
    {"metrics columns ',,,,'", MAY_LOAD, ANY3},
    {"a layer name of 200 characters", MUST_FAIL, ANY3},
    {"events: field layer an integer", MAY_LOAD, ANY3},
    {"events: field layer a variable-length string", MAY_LOAD, ANY3},
    {"events: field kind a float", MAY_LOAD, ANY3},
    /* factored layer: types, ranks, shapes */
    {"sigma integers", MUST_FAIL, ANY3},
    {"sigma [T, 3, 2]", MUST_FAIL, ANY3},
    {"sigma [T, 7, 7] (capacity above min(rows, cols))", MUST_FAIL, ANY3},
    {"u [K, rows, cap + 1]", MUST_FAIL, ANY3},
    {"v [K, cols]", MUST_FAIL, ANY3},
    {"basis floats", MUST_FAIL, ANY3},
    {"basis_step [K, 2]", MUST_FAIL, ANY3},
    {"no u", MUST_FAIL, ANY3},
    {"weight a bitfield", MUST_FAIL, ANY3},
    {"weight a compound", MUST_FAIL, ANY3},
    {"step int8", MAY_LOAD, ANY3},
    {"step uint64 with 2^63 + 1", MUST_FAIL, ANY3},
    {"rank int64 with 2^40", MAY_LOAD, ANY3},
    /* huge declared sizes */
    {"weight [5, 2^40, 1], chunked, never written", MUST_FAIL, ANY3},
    {"weight [5, 2^20, 2^20]", MUST_FAIL, ANY3},
    {"weight [5, 32768, 32767], never written", MAY_LOAD, {0, -1, -1}},
    {"step [2^40] chunked, first chunk written", MAY_LOAD, {NSNAP, -1, -1}},
    {"step [2^40] contiguous, never written", MAY_LOAD, ANY3},
    {"metrics [2^37] contiguous, never written", MAY_LOAD, ANY3},
    {"events [2^37] contiguous, never written", MAY_LOAD, ANY3},
    {"sigma [2^40, 3, 3] chunked, never written", MAY_LOAD, ANY3},
    /* datasets that disagree in length */
    {"weight 3 snapshots, step and rank 5", MAY_LOAD, {3, -1, -1}},
    {"rank 2 snapshots", MAY_LOAD, {2, -1, -1}},
    {"step 2 snapshots, weight and rank 5", MAY_LOAD, {2, -1, -1}},
    {"metrics loss 2 rows, step 5", MAY_LOAD, {-1, -1, 2}},
    {"metrics step 2 rows, columns 5", MAY_LOAD, {-1, -1, 2}},
    {"factored: basis 2 rows, step 5", MAY_LOAD, {-1, 2, -1}},
    {"factored: u 0 rows", MUST_FAIL, ANY3},
    {"factored: basis_step 0 rows", MUST_FAIL, ANY3},
    {"factored: basis[2] = 7", MUST_FAIL, ANY3},
    {"factored: basis[2] = -5", MUST_FAIL, ANY3},
    {"factored: rank[2] = 0", MUST_FAIL, ANY3},
    {"factored: rank[2] = 2^31 - 1", MUST_FAIL, ANY3},
    {"factored: sigma 2 rows, basis 5", MAY_LOAD, ANY3},
    {"factored: step 5, weight 1 row", MAY_LOAD, ANY3},
    /* data that do not decode */
    {"weight chunk of deflate garbage", MAY_LOAD, ANY3},
    {"weight chunk with a wrong Fletcher-32", MAY_LOAD, ANY3},
    {"weight chunk of 4 bytes (unfiltered)", MAY_LOAD, ANY3},
    {"metrics loss chunk of deflate garbage", MAY_LOAD, ANY3},
    {"sigma chunk of deflate garbage", MAY_LOAD, ANY3},
    {"checkpoint slot 7", MAY_LOAD, ANY3},
};
#define NSTRUCT ((int)(sizeof STRUCT / sizeof *STRUCT))

static void struct_case(int k, const char *p) {
    const char *L0 = "/layers/fc1.weight", *L1 = "/layers/lr.weight";
    char obj[256];
    hsize_t d1[3], ch[3];
    hid_t f, d, ty;
    if (k == 0) { /* a foreign file: made from scratch */
        f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        ck_assert_int_ge(f, 0);
        d1[0] = 4;
        float x[4] = {1, 2, 3, 4};
        H5Dclose(mkdset(f, "data", H5T_IEEE_F32LE, 1, d1, 0, NULL, H5T_NATIVE_FLOAT, x));
        H5Gclose(H5Gcreate2(f, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        H5Fclose(f);
        return;
    }
    f = h5_open_rw(p);
    switch (k) {
    case 1: {
        int v = 1;
        attr_replace(f, "format", H5T_STD_I32LE, 0, H5T_NATIVE_INT, &v);
        break;
    }
    case 2: attr_str(f, "format", "oialr-trajectoryX"); break;
    case 3: {
        ty = H5Tcopy(H5T_C_S1);
        H5Tset_size(ty, 17);
        char two[34] = "oialr-trajectory\0oialr-trajectory";
        attr_replace(f, "format", ty, 2, ty, two);
        H5Tclose(ty);
        break;
    }
    case 4: attr_str(f, "format_version", "1"); break;
    case 5: {
        double v = 1.0;
        attr_replace(f, "format_version", H5T_IEEE_F64LE, 0, H5T_NATIVE_DOUBLE, &v);
        break;
    }
    case 6:
    case 7: {
        int64_t v = k == 6 ? 0 : (int64_t)1 << 40;
        attr_replace(f, "format_version", H5T_STD_I64LE, 0, H5T_NATIVE_INT64, &v);
        break;
    }
    case 8: {
        int v[3] = {1, 1, 1};
        attr_replace(f, "format_version", H5T_STD_I32LE, 3, H5T_NATIVE_INT, v);
        break;
    }
    case 9:
        H5Ldelete(f, "layers", H5P_DEFAULT);
        d1[0] = 3;
        H5Dclose(mkdset(f, "layers", H5T_STD_I32LE, 1, d1, 0, NULL, 0, NULL));
        break;
    case 10:
        H5Ldelete(f, L0, H5P_DEFAULT);
        d1[0] = 3;
        H5Dclose(mkdset(f, L0, H5T_STD_I32LE, 1, d1, 0, NULL, 0, NULL));
        break;
    case 11:
        H5Ldelete(f, L0, H5P_DEFAULT);
        ck_assert_int_ge(H5Lcreate_soft("/nowhere/at/all", f, L0, H5P_DEFAULT, H5P_DEFAULT), 0);
        break;
    case 12: ck_assert_int_ge(H5Lcreate_external("/nonexistent/file.h5", "/x", f, "/layers/zz", H5P_DEFAULT, H5P_DEFAULT), 0); break;
    case 13: ck_assert_int_ge(H5Lcreate_hard(f, "/layers", f, "/layers/zz", H5P_DEFAULT, H5P_DEFAULT), 0); break;
    case 14:
        H5Ldelete(f, "metrics", H5P_DEFAULT);
        d1[0] = 5;
        H5Dclose(mkdset(f, "metrics", H5T_IEEE_F64LE, 1, d1, 0, NULL, 0, NULL));
        break;
    case 15: {
        ty = H5Tcopy(H5T_C_S1);
        H5Tset_size(ty, 8);
        d1[0] = NSNAP;
        char s[NSNAP][8] = {"0", "10", "20", "30", "40"};
        H5Dclose(mkdset(f, "/metrics/step", ty, 1, d1, LAY_CHUNK, NULL, ty, s));
        H5Tclose(ty);
        break;
    }
    case 16:
        H5Ldelete(f, "events", H5P_DEFAULT);
        H5Gclose(H5Gcreate2(f, "events", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        break;
    case 17:
        H5Ldelete(f, "checkpoint", H5P_DEFAULT);
        d1[0] = 2;
        H5Dclose(mkdset(f, "checkpoint", H5T_STD_I64LE, 1, d1, 0, NULL, 0, NULL));
        break;
    case 18:
        d1[0] = 2, d1[1] = 6, d1[2] = 4;
        H5Dclose(mkdset(f, "/checkpoint/params", H5T_IEEE_F32LE, 3, d1, 0, NULL, 0, NULL));
        break;
    case 19:
        d1[0] = 2, d1[1] = (hsize_t)1 << 40, ch[0] = 1, ch[1] = 1024;
        H5Dclose(mkdset(f, "/checkpoint/params", H5T_IEEE_F32LE, 2, d1, LAY_CHUNK, ch, 0, NULL));
        break;
    case 20: {
        ty = H5Tcopy(H5T_C_S1);
        H5Tset_size(ty, 4);
        d1[0] = 2, d1[1] = NPARAMS;
        char s[2 * NPARAMS][4];
        memset(s, 'x', sizeof s);
        H5Dclose(mkdset(f, "/checkpoint/params", ty, 2, d1, 0, NULL, ty, s));
        H5Tclose(ty);
        break;
    }
    case 21:
        H5Ldelete(f, "config", H5P_DEFAULT);
        d1[0] = 1;
        H5Dclose(mkdset(f, "config", H5T_STD_I32LE, 1, d1, 0, NULL, 0, NULL));
        break;
    case 22: {
        hid_t g = H5Gopen2(f, "config", H5P_DEFAULT);
        int v = 8;
        attr_replace(g, "model", H5T_STD_I32LE, 0, H5T_NATIVE_INT, &v);
        H5Gclose(g);
        break;
    }
    case 23:
    case 24:
    case 25:
    case 26: {
        hid_t g = H5Gopen2(f, L0, H5P_DEFAULT);
        if (k == 23) attr_str(g, "rows", "6");
        if (k == 24) {
            int64_t v = (int64_t)1 << 40;
            attr_replace(g, "cols", H5T_STD_I64LE, 0, H5T_NATIVE_INT64, &v);
        }
        if (k == 25) {
            int64_t v[9] = {6, 4, 1, 1, 1, 1, 1, 1, 1};
            attr_replace(g, "shape", H5T_STD_I64LE, 9, H5T_NATIVE_INT64, v);
        }
        if (k == 26) {
            char *s = malloc(100000);
            memset(s, 'k', 99999);
            s[99999] = '\0';
            attr_str(g, "kind", s);
            free(s);
        }
        H5Gclose(g);
        break;
    }
    case 27:
    case 28:
    case 29: {
        hid_t g = H5Gopen2(f, "metrics", H5P_DEFAULT);
        if (k == 27) attr_str(g, "columns", "loss,no_such_column");
        if (k == 28) {
            size_t n = 20000 * 5;
            char *s = malloc(n + 1);
            for (size_t i = 0; i < 20000; i++) memcpy(s + 5 * i, "loss,", 5);
            s[n - 1] = '\0';
            attr_str(g, "columns", s);
            free(s);
        }
        if (k == 29) attr_str(g, "columns", ",,,,");
        H5Gclose(g);
        break;
    }
    case 30: {
        char name[220];
        memset(name, 'n', 200);
        strcpy(name + 200, ".weight");
        PATH(obj, "/layers/%s", name);
        ck_assert_int_ge(H5Lcreate_hard(f, L0, f, obj, H5P_DEFAULT, H5P_DEFAULT), 0);
        break;
    }
    case 31:
    case 32:
    case 33: {
        /* /events with one field of another type */
        hid_t s64 = H5Tcopy(H5T_C_S1), vl = H5Tcopy(H5T_C_S1);
        H5Tset_size(s64, 64);
        H5Tset_size(vl, H5T_VARIABLE);
        hid_t lt = k == 31 ? H5T_STD_I64LE : k == 32 ? vl : s64;
        size_t ls = H5Tget_size(lt);
        size_t sz = 8 + ls + 8 + 8 + 4 + 4;
        ty = H5Tcreate(H5T_COMPOUND, sz);
        H5Tinsert(ty, "step", 0, H5T_STD_I64LE);
        H5Tinsert(ty, "layer", 8, lt);
        H5Tinsert(ty, "kind", 8 + ls, k == 33 ? H5T_IEEE_F64LE : H5T_STD_I64LE);
        H5Tinsert(ty, "stability", 16 + ls, H5T_IEEE_F64LE);
        H5Tinsert(ty, "rank_before", 24 + ls, H5T_STD_I32LE);
        H5Tinsert(ty, "rank_after", 28 + ls, H5T_STD_I32LE);
        d1[0] = 2;
        d = mkdset(f, "events", ty, 1, d1, LAY_CHUNK, NULL, 0, NULL);
        if (k != 32) { /* zeros; a variable-length string stays unwritten */
            void *z = calloc(2, sz);
            ck_assert_int_ge(H5Dwrite(d, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, z), 0);
            free(z);
        }
        H5Dclose(d), H5Tclose(ty), H5Tclose(s64), H5Tclose(vl);
        break;
    }
    case 34:
        d1[0] = NSNAP, d1[1] = d1[2] = L1_CAP;
        PATH(obj, "%s/sigma", L1);
        H5Dclose(mkdset(f, obj, H5T_STD_I32LE, 3, d1, LAY_CHUNK, NULL, 0, NULL));
        break;
    case 35:
    case 36:
        d1[0] = NSNAP, d1[1] = k == 35 ? 3 : 7, d1[2] = k == 35 ? 2 : 7;
        PATH(obj, "%s/sigma", L1);
        H5Dclose(mkdset(f, obj, H5T_IEEE_F32LE, 3, d1, LAY_CHUNK, NULL, 0, NULL));
        break;
    case 37:
        d1[0] = 2, d1[1] = L1_ROWS, d1[2] = L1_CAP + 1;
        PATH(obj, "%s/u", L1);
        H5Dclose(mkdset(f, obj, H5T_IEEE_F32LE, 3, d1, LAY_CHUNK, NULL, 0, NULL));
        break;
    case 38:
        d1[0] = 2, d1[1] = L1_COLS;
        PATH(obj, "%s/v", L1);
        H5Dclose(mkdset(f, obj, H5T_IEEE_F32LE, 2, d1, LAY_CHUNK, NULL, 0, NULL));
        break;
    case 39: {
        float b[NSNAP] = {-1, 0, 0, 0, 1};
        d1[0] = NSNAP;
        PATH(obj, "%s/basis", L1);
        H5Dclose(mkdset(f, obj, H5T_IEEE_F32LE, 1, d1, LAY_CHUNK, NULL, H5T_NATIVE_FLOAT, b));
        break;
    }
    case 40:
        d1[0] = 2, d1[1] = 2;
        PATH(obj, "%s/basis_step", L1);
        H5Dclose(mkdset(f, obj, H5T_STD_I64LE, 2, d1, LAY_CHUNK, NULL, 0, NULL));
        break;
    case 41:
        PATH(obj, "%s/u", L1);
        ck_assert_int_ge(H5Ldelete(f, obj, H5P_DEFAULT), 0);
        break;
    case 42:
    case 43: {
        d1[0] = NSNAP, d1[1] = L0_ROWS, d1[2] = L0_COLS;
        PATH(obj, "%s/weight", L0);
        if (k == 42) {
            ty = H5Tcopy(H5T_STD_B32LE);
        } else {
            ty = H5Tcreate(H5T_COMPOUND, 4);
            H5Tinsert(ty, "x", 0, H5T_IEEE_F32LE);
        }
        H5Dclose(mkdset(f, obj, ty, 3, d1, LAY_CHUNK, NULL, 0, NULL));
        H5Tclose(ty);
        break;
    }
    case 44:
    case 45: {
        int64_t s[NSNAP] = {0, 10, 20, 30, 40};
        if (k == 45) s[3] = INT64_MIN + 1; /* as uint64: 2^63 + 1 */
        d1[0] = NSNAP;
        PATH(obj, "%s/step", L0);
        H5Dclose(mkdset(f, obj, k == 44 ? H5T_STD_I8LE : H5T_STD_U64LE, 1, d1, LAY_CHUNK, NULL,
                        k == 44 ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64, s));
        break;
    }
    case 46: {
        int64_t r[NSNAP] = {4, 4, (int64_t)1 << 40, 4, 4};
        d1[0] = NSNAP;
        PATH(obj, "%s/rank", L0);
        H5Dclose(mkdset(f, obj, H5T_STD_I64LE, 1, d1, LAY_CHUNK, NULL, H5T_NATIVE_INT64, r));
        break;
    }
    case 47:
        d1[0] = NSNAP, d1[1] = (hsize_t)1 << 40, d1[2] = 1, ch[0] = 1, ch[1] = 1024, ch[2] = 1;
        PATH(obj, "%s/weight", L0);
        H5Dclose(mkdset(f, obj, H5T_IEEE_F32LE, 3, d1, LAY_CHUNK, ch, 0, NULL));
        break;
    case 48:
    case 49:
        d1[0] = NSNAP, d1[1] = k == 48 ? 1u << 20 : 32768, d1[2] = k == 48 ? 1u << 20 : 32767;
        ch[0] = 1, ch[1] = 64, ch[2] = 64;
        PATH(obj, "%s/weight", L0);
        H5Dclose(mkdset(f, obj, H5T_IEEE_F32LE, 3, d1, LAY_CHUNK, ch, 0, NULL));
        if (k == 49) { /* the layer's attributes agree: a valid, huge, empty layer */
            hid_t g = H5Gopen2(f, L0, H5P_DEFAULT);
            int64_t rows = 32768, cols = 32767;
            attr_replace(g, "rows", H5T_STD_I64LE, 0, H5T_NATIVE_INT64, &rows);
            attr_replace(g, "cols", H5T_STD_I64LE, 0, H5T_NATIVE_INT64, &cols);
            H5Gclose(g);
        }
        break;
    case 50: {
        d1[0] = (hsize_t)1 << 40, ch[0] = 4096;
        int64_t *s = calloc(4096, sizeof *s);
        for (int i = 0; i < 4096; i++) s[i] = 10 * i;
        PATH(obj, "%s/step", L0);
        d = mkdset(f, obj, H5T_STD_I64LE, 1, d1, LAY_CHUNK, ch, 0, NULL);
        hid_t fs = H5Dget_space(d);
        hsize_t z = 0, n = 4096;
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &z, NULL, &n, NULL);
        hid_t ms = H5Screate_simple(1, &n, NULL);
        ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, s), 0);
        H5Sclose(ms), H5Sclose(fs), H5Dclose(d);
        free(s);
        break;
    }
    case 51:
        d1[0] = (hsize_t)1 << 40;
        PATH(obj, "%s/step", L0);
        H5Dclose(mkdset(f, obj, H5T_STD_I64LE, 1, d1, LAY_LATE, NULL, 0, NULL));
        break;
    case 52: {
        static const char *const m[] = {"step", "epoch", "loss", "train_acc", "val_loss", "val_acc",
                                        "test_loss", "test_acc", "lr", "trainable_fraction", "seconds"};
        d1[0] = (hsize_t)1 << 37;
        for (int i = 0; i < 11; i++) {
            PATH(obj, "/metrics/%s", m[i]);
            H5Dclose(mkdset(f, obj, i ? H5T_IEEE_F64LE : H5T_STD_I64LE, 1, d1, LAY_LATE, NULL, 0, NULL));
        }
        break;
    }
    case 53: {
        d = H5Dopen2(f, "events", H5P_DEFAULT);
        ty = H5Dget_type(d);
        H5Dclose(d);
        d1[0] = (hsize_t)1 << 37;
        H5Dclose(mkdset(f, "events", ty, 1, d1, LAY_LATE, NULL, 0, NULL));
        H5Tclose(ty);
        break;
    }
    case 54:
        d1[0] = (hsize_t)1 << 40, d1[1] = d1[2] = L1_CAP;
        PATH(obj, "%s/sigma", L1);
        H5Dclose(mkdset(f, obj, H5T_IEEE_F32LE, 3, d1, LAY_CHUNK, NULL, 0, NULL));
        break;
    case 55: PATH(obj, "%s/weight", L0), set_extent0(f, obj, 3); break;
    case 56: PATH(obj, "%s/rank", L0), set_extent0(f, obj, 2); break;
    case 57: PATH(obj, "%s/step", L0), set_extent0(f, obj, 2); break;
    case 58: set_extent0(f, "/metrics/loss", 2); break;
    case 59: set_extent0(f, "/metrics/step", 2); break;
    case 60: PATH(obj, "%s/basis", L1), set_extent0(f, obj, 2); break;
    case 61: PATH(obj, "%s/u", L1), set_extent0(f, obj, 0); break;
    case 62: PATH(obj, "%s/basis_step", L1), set_extent0(f, obj, 0); break;
    case 63:
    case 64: PATH(obj, "%s/basis", L1), put_int(f, obj, 2, k == 63 ? 7 : -5); break;
    case 65:
    case 66: PATH(obj, "%s/rank", L1), put_int(f, obj, 2, k == 65 ? 0 : INT32_MAX); break;
    case 67: PATH(obj, "%s/sigma", L1), set_extent0(f, obj, 2); break;
    case 68: PATH(obj, "%s/weight", L1), set_extent0(f, obj, 1); break;
    case 69:
    case 70:
    case 71:
    case 72:
    case 73: {
        /* a chunk whose bytes do not decode */
        int sig = k == 73;
        const char *o = k == 72 ? "/metrics/loss" : NULL;
        if (!o) PATH(obj, "%s/%s", sig ? L1 : L0, sig ? "sigma" : "weight"), o = obj;
        int rank = k == 72 ? 1 : 3;
        d1[0] = NSNAP, d1[1] = sig ? L1_CAP : L0_ROWS, d1[2] = sig ? L1_CAP : L0_COLS;
        int flags = LAY_CHUNK | (k == 70 ? LAY_FLETCHER : k == 71 ? 0 : LAY_DEFLATE);
        d = mkdset(f, o, k == 72 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, rank, d1, flags, NULL, 0, NULL);
        unsigned char junk[200];
        oialr_rng r;
        oialr_rng_seed(&r, (uint64_t)k, 3);
        for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)oialr_rng_u32(&r);
        raw_chunk(d, junk, k == 71 ? 4 : k == 70 ? L0_ROWS * L0_COLS * 4 + 4 : sizeof junk);
        H5Dclose(d);
        break;
    }
    case 74: put_int(f, "/checkpoint/slot", 0, 7); break;
    default: ck_abort_msg("no structural case %d", k);
    }
    ck_assert_int_ge(H5Fclose(f), 0);
}

static void run_traj(const hcase *c) {
    char d[512], p[1024];
    case_dir(d, sizeof d);
    PATH(p, "%s/run.h5", d);
    blob b = bl_copy(traj);
    oialr_rng r;
    oialr_rng_seed(&r, c->arg, 5);
    switch (c->kind) {
    case T_CUT: b.n = c->arg; break;
    case T_FLIP: flip_bits(&b, c->arg, 1, 0, b.n); break;
    case T_FLIPS: {
        size_t at = oialr_rng_below(&r, (uint32_t)(b.n - 64));
        flip_bits(&b, c->arg, 16, at, at + 64);
        break;
    }
    case T_ZERO: {
        size_t at = oialr_rng_below(&r, (uint32_t)(b.n - 256));
        memset(b.p + at, 0, 256);
        break;
    }
    default: break;
    }
    write_blob(p, b.p, b.n);
    free(b.p);
    int64_t counts[3] = {-1, -1, -1};
    if (c->kind == T_STRUCT) {
        H5E_BEGIN_TRY { struct_case((int)c->arg, p); }
        H5E_END_TRY;
    }
    int rc = walk_traj(p, counts);
    end_case(rc, p, c->expect);
    if (c->kind == T_STRUCT) {
        const scase *s = &STRUCT[c->arg];
        for (int i = 0; i < 3; i++)
            if (s->want[i] >= 0)
                ck_assert_msg(rc == OIALR_OK && counts[i] == s->want[i], "case %d (%s): count %d is %lld, want %lld: %s",
                              cur, cur_what, i, (long long)counts[i], (long long)s->want[i], oialr_errmsg());
        analyze_in_process(p, d);
    }
}

// ----------------------------------------------------------------------------
// the tables `oialr plot` reads (analyze --csv)

static const char *const TABLES[] = {
    "metrics.csv empty",
    "metrics.csv header only",
    "metrics.csv header 'layer,stop,...'",
    "metrics.csv 4 kB of binary",
    "metrics.csv one line of 64 kB",
    "metrics.csv an unterminated quote",
    "metrics.csv 300 layers",
    "metrics.csv NUL bytes",
    "metrics.csv steps of 2^70 and -1",
    "metrics.csv rows and cols of -5 and 0",
    "metrics.csv a layer name with quotes and backquotes",
    "metrics.csv a directory",
    "spectra.csv cut mid-line",
    "mean_stability.csv binary",
    "events.csv binary",
    "metrics.csv missing",
};
#define NTABLES ((int)(sizeof TABLES / sizeof *TABLES))
enum { TB_CUT = 0, TB_FLIP = 1, TB_NAMED = 2 };

static void copy_tables(const char *to) {
    char cmd[1000];
    PATH(cmd, "cp -r '%s' '%s'", good_tables, to);
    ck_assert_int_eq(system(cmd), 0);
}

static void run_tables(const hcase *c) {
    char d[512], t[1024], out[1024], m[1100], broken[1100], pwned[1100];
    case_dir(d, sizeof d);
    PATH(t, "%s/tables", d);
    PATH(out, "%s/figs", d);
    PATH(m, "%s/metrics.csv", t);
    PATH(pwned, "%s/PWNED", out);
    copy_tables(t);
    PATH(broken, "%s", m);
    blob b = bl_copy(metrics_csv);
    if (c->kind == TB_CUT) b.n = c->arg;
    if (c->kind == TB_FLIP) flip_bits(&b, c->arg, 8, 0, b.n);
    if (c->kind == TB_NAMED) {
        switch (c->arg) {
        case 0: b.n = 0; break;
        case 1: b.n = (size_t)((unsigned char *)memchr(b.p, '\n', b.n) - b.p + 1); break;
        case 2: memcpy(b.p, "layer,stop,", 11); break;
        case 3: b.n = 4096 > b.n ? b.n : 4096, flip_bits(&b, 1, 4096, 0, b.n); break;
        case 7: b.p[b.n / 2] = 0, b.p[b.n / 3] = 0; break;
        case 11: unlink(m), mkdir(m, 0755); b.n = 0; break;
        case 12:
        case 13:
        case 14: {
            static const char *const which[] = {"spectra.csv", "mean_stability.csv", "events.csv"};
            PATH(broken, "%s/%s", t, which[c->arg - 12]);
            blob o = read_blob(broken);
            if (c->arg == 12) o.n = o.n / 2 + 3;
            else flip_bits(&o, c->arg, (int)o.n * 4, 0, o.n);
            write_blob(broken, o.p, o.n);
            free(o.p);
            break;
        }
        case 15: unlink(m); b.n = 0; break;
        default: {
            char *s = malloc(70000);
            size_t k = (size_t)((unsigned char *)memchr(b.p, '\n', b.n) - b.p + 1);
            memcpy(s, b.p, k);
            if (c->arg == 4) memset(s + k, 'x', 65536), k += 65536;
            if (c->arg == 5) k += (size_t)sprintf(s + k, "\"fc1.weight,0,dense,6,4,1,0.5\n");
            if (c->arg == 6)
                for (int i = 0; i < 300; i++) k += (size_t)sprintf(s + k, "l%d,0,dense,6,4,1,0.5\n", i);
            if (c->arg == 8)
                k += (size_t)sprintf(s + k, "fc1.weight,1180591620717411303424,dense,6,4,1,0.5\nfc1.weight,-1,dense,6,4,1,0.5\n");
            if (c->arg == 9) k += (size_t)sprintf(s + k, "fc1.weight,0,dense,-5,0,1,0.5\n");
            if (c->arg == 10)
                k += (size_t)sprintf(s + k, "\"a'b\"\"`touch PWNED`$(touch PWNED)\",10,dense,6,4,1,0.5\n");
            free(b.p);
            b.p = (unsigned char *)s;
            b.n = k;
            break;
        }
        }
    }
    if (!(c->kind == TB_NAMED && (c->arg == 11 || c->arg == 15 || (c->arg >= 12 && c->arg <= 14))))
        write_blob(m, b.p, b.n);
    free(b.p);
    char *argv[] = {"plot", t, "-o", out, NULL};
    oialr_clearerr();
    int st = run_cmd(oialr_cmd_plot, argv);
    ck_assert_msg(access(pwned, F_OK) != 0, "case %d (%s): a layer name ran a command", cur, cur_what);
    if (st == 0) {
        ck_assert_msg(c->expect == MAY_LOAD, "case %d (%s): plotted a broken table", cur, cur_what);
        return;
    }
    ck_assert_int_eq(st, 1);
    const char *msg = oialr_errmsg();
    /* a table the reader refuses names it; one gnuplot refuses names the
     * figure's script, where the user sees what gnuplot said */
    ck_assert_msg(msg[0] && !strchr(msg, '\n') && (strstr(msg, broken) || strstr(msg, out)),
                  "case %d (%s): plot: %s", cur, cur_what, msg);
}

// ----------------------------------------------------------------------------
// the corpus, built before any fork, and one test for all

static void build_corpus(void) {
    /* IDX */
    first[R_IDX] = ncases;
    for (uint32_t at = 0; at < idx_img.n; at += at < 24 ? 1 : 37) add(R_IDX, I_CUT_IMG, MUST_FAIL, at, NULL);
    add(R_IDX, I_CUT_IMG, MUST_FAIL, (uint32_t)idx_img.n - 1, NULL);
    for (uint32_t at = 0; at < idx_lab.n; at++) add(R_IDX, I_CUT_LAB, MUST_FAIL, at, NULL);
    for (uint32_t at = 0; at < idx_img_gz.n; at += at < 24 || at > idx_img_gz.n - 12 ? 1 : 11)
        add(R_IDX, I_CUT_GZ, MUST_FAIL, at, NULL);
    for (uint32_t at = 0; at < idx_img_gz0.n; at += 29) add(R_IDX, I_CUT_GZ0, MUST_FAIL, at, NULL);
    for (uint32_t s = 1; s <= 24; s++) add(R_IDX, I_FLIP_IMG, MAY_LOAD, s, NULL);
    for (uint32_t s = 1; s <= 12; s++) add(R_IDX, I_FLIP_LAB, MAY_LOAD, s, NULL);
    for (uint32_t s = 1; s <= 40; s++) add(R_IDX, I_FLIP_GZ, MUST_FAIL, s, NULL);
    /* header bits: ID1 ID2 CM FLG fail; MTIME, XFL, OS do not matter */
    for (uint32_t bit = 0; bit < 80; bit += 3) /* FTEXT (bit 24) is a hint */
        add(R_IDX, I_FLIP_GZHDR, bit < 32 && bit != 24 ? MUST_FAIL : MAY_LOAD, bit, NULL);
    for (uint32_t bit = 80; bit < 144; bit += 5) add(R_IDX, I_FLIP_GZHDR, MUST_FAIL, bit, NULL);
    static const uint16_t magic[] = {0x0001, 0x0101, 0x0209, 0x020b, 0x020c, 0x020d, 0x020e,
                                     0x0200, 0x02ff, 0x0300, 0x0301, 0x0302, 0x0304, 0x03ff};
    for (size_t i = 0; i < sizeof magic / sizeof *magic; i++) add(R_IDX, I_MAGIC, MUST_FAIL, magic[i], NULL);
    for (int i = 0; i < NDIMS; i++) add(R_IDX, I_DIMS, MUST_FAIL, (uint32_t)i, NULL);
    for (int i = 0; i < NDIMS; i++) add(R_IDX, I_DIMS_GZ, MUST_FAIL, (uint32_t)i, NULL);
    for (int i = 0; i < NGZSPECIAL; i++) add(R_IDX, I_GZSPECIAL, MUST_FAIL, (uint32_t)i, GZSPECIAL[i]);
    /* CIFAR-10 */
    first[R_CIFAR] = ncases;
    for (uint32_t at = 0; at < cifar.n; at += at < 8 ? 1 : 311)
        add(R_CIFAR, C_CUT, at && at % CIFAR_REC == 0 ? MAY_LOAD : MUST_FAIL, at, NULL);
    static const uint32_t cuts[] = {CIFAR_REC - 1, CIFAR_REC, CIFAR_REC + 1, 2 * CIFAR_REC, 3 * CIFAR_REC - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        add(R_CIFAR, C_CUT, cuts[i] % CIFAR_REC ? MUST_FAIL : MAY_LOAD, cuts[i], NULL);
    for (uint32_t s = 1; s <= 30; s++) add(R_CIFAR, C_FLIP, MAY_LOAD, s, NULL);
    static const uint32_t labels[] = {0x000a, 0x00ff, 0x0180, 0x020b};
    for (size_t i = 0; i < sizeof labels / sizeof *labels; i++) add(R_CIFAR, C_LABEL, MUST_FAIL, labels[i], NULL);
    static const uint32_t extra[] = {1, 100, 3072, 3074};
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++) add(R_CIFAR, C_EXTRA, MUST_FAIL, extra[i], NULL);
    /* sparse: 2^16 records (192 MiB) is more than CIFAR-10 has; 2^26 (192 GiB) */
    add(R_CIFAR, C_SPARSE, MUST_FAIL, 1, NULL);
    add(R_CIFAR, C_SPARSE, MUST_FAIL, 1024, NULL);
    for (uint32_t at = 0; at < cifar.n; at += 1999) add(R_CIFAR, C_SECOND, at % CIFAR_REC ? MUST_FAIL : MAY_LOAD, at, NULL);
    /* trajectories */
    first[R_TRAJ] = ncases;
    for (uint32_t at = 0; at < 512; at += 24) add(R_TRAJ, T_CUT, MUST_FAIL, at, NULL);
    for (int i = 1; i < 24; i++) add(R_TRAJ, T_CUT, MUST_FAIL, (uint32_t)(traj.n * (size_t)i / 24), NULL);
    static const uint32_t tail[] = {1, 2, 8, 64, 511};
    for (size_t i = 0; i < sizeof tail / sizeof *tail; i++) add(R_TRAJ, T_CUT, MUST_FAIL, (uint32_t)traj.n - tail[i], NULL);
    for (uint32_t s = 1; s <= 100; s++) add(R_TRAJ, T_FLIP, MAY_LOAD, s, NULL);
    for (uint32_t s = 1; s <= 40; s++) add(R_TRAJ, T_FLIPS, MAY_LOAD, s, NULL);
    for (uint32_t s = 1; s <= 20; s++) add(R_TRAJ, T_ZERO, MAY_LOAD, s, NULL);
    for (int i = 0; i < NSTRUCT; i++) add(R_TRAJ, T_STRUCT, STRUCT[i].expect, (uint32_t)i, STRUCT[i].what);
    /* tables */
    first[R_TABLES] = ncases;
    static const uint32_t tcut[] = {1, 5, 11, 40};
    for (size_t i = 0; i < sizeof tcut / sizeof *tcut; i++) add(R_TABLES, TB_CUT, MUST_FAIL, tcut[i], NULL);
    add(R_TABLES, TB_CUT, MAY_LOAD, (uint32_t)metrics_csv.n / 2, NULL);
    for (uint32_t s = 1; s <= 2; s++) add(R_TABLES, TB_FLIP, MAY_LOAD, s, NULL);
    static const int tb_must[NTABLES] = {[0] = 1, [1] = 1, [2] = 1, [3] = 1, [11] = 1, [15] = 1};
    for (int i = 0; i < NTABLES; i++) add(R_TABLES, TB_NAMED, tb_must[i] ? MUST_FAIL : MAY_LOAD, (uint32_t)i, TABLES[i]);
    first[NREADERS] = ncases;
}

/* In the child that reads one file: the address-space limit and the
 * alarm. */
static void guard(void) {
#ifndef HOSTILE_ASAN
    struct rlimit rl = {HOSTILE_AS, HOSTILE_AS};
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
    alarm(HOSTILE_ALARM); /* SIGALRM ends the child: a hang fails its case */
}

static void run_case(int i) {
    const hcase *c = &cases[i];
    cur = i;
    if (c->what) PATH(cur_what, "%s", c->what);
    else PATH(cur_what, "%s kind %d arg %u", READER_NAME[c->reader], c->kind, c->arg);
    oialr_clearerr();
    switch (c->reader) {
    case R_IDX: run_idx(c); break;
    case R_CIFAR: run_cifar(c); break;
    case R_TRAJ: run_traj(c); break;
    case R_TABLES: run_tables(c); break;
    }
}

/* Cases of one Check test: a group of GROUP files, each read in a child
 * of its own (fork, then _exit: the exit handlers of HDF5, OpenSSL and
 * OpenBLAS cost 30 ms a process). A failed check in that child reports
 * through Check itself; a crash, an abort or the alarm is reported here. */
#define GROUP 16

static int groups[MAXCASES / 2][2], ngroups, gfirst[NREADERS + 1];

/* Groups of at most GROUP cases, none spanning two readers. */
static void make_groups(void) {
    for (int r = 0; r < NREADERS; r++) {
        gfirst[r] = ngroups;
        for (int lo = first[r]; lo < first[r + 1]; lo += GROUP) {
            groups[ngroups][0] = lo;
            groups[ngroups][1] = lo + GROUP < first[r + 1] ? lo + GROUP : first[r + 1];
            ngroups++;
        }
    }
    gfirst[NREADERS] = ngroups;
}

START_TEST(hostile_group) {
    int lo = groups[_i][0], hi = groups[_i][1], nfail = 0;
    char firstfail[400] = "";
    for (int i = lo; i < hi; i++) {
        fflush(stdout), fflush(stderr);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            guard();
            run_case(i);
            fflush(stdout);
            _exit(0);
        }
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) continue;
        /* the rest of the group still runs; the first failure is the report */
        const hcase *c = &cases[i];
        char m[400];
        PATH(m, "case %d (%s kind %d arg %u%s%s): %s %d", i, READER_NAME[c->reader], c->kind, c->arg,
             c->what ? ": " : "", c->what ? c->what : "", WIFSIGNALED(st) ? "killed by signal" : "exit status",
             WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        fprintf(stderr, "check_hostile: %s\n", m);
        if (!nfail++) PATH(firstfail, "%s", m);
    }
    ck_assert_msg(nfail == 0, "%d of %d cases failed, the first: %s", nfail, hi - lo, firstfail);
}
END_TEST

/* The guard itself: an allocation above HOSTILE_MAX_ALLOC ends the child
 * (glibc build: abort; ASan: its report and exit status 1). */
START_TEST(guard_catches_huge_allocation) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2); /* the report is expected */
        guard();
        volatile size_t n = HOSTILE_MAX_ALLOC + 1;
        void *volatile p = malloc(n);
        free(p);
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "an allocation of %zu bytes went through",
                  HOSTILE_MAX_ALLOC + 1);
}
END_TEST

/* The valid files read whole: what the corpus breaks is a working file. */
START_TEST(valid_files_read) {
    char d[512], p[1024], q[1024];
    cur = -1;
    PATH(cur_what, "the valid files");
    case_dir(d, sizeof d);
    int64_t counts[3];
    ck_assert_int_eq(walk_traj(good_traj, counts), OIALR_OK);
    ck_assert(counts[0] == NSNAP && counts[1] == NSNAP && counts[2] == NSNAP);
    for (int gz = 0; gz < 2; gz++) {
        PATH(p, "%s/img%d", d, gz), PATH(q, "%s/lab%d", d, gz);
        write_blob(p, gz ? idx_img_gz.p : idx_img.p, gz ? idx_img_gz.n : idx_img.n);
        write_blob(q, gz ? idx_lab_gz.p : idx_lab.p, gz ? idx_lab_gz.n : idx_lab.n);
        oialr_dataset ds;
        ck_assert_int_eq(oialr_idx_load(&ds, p, q), OIALR_OK);
        ck_assert_int_eq(ds.n, IMG_N);
        oialr_dataset_free(&ds);
    }
    PATH(p, "%s/batch", d);
    write_blob(p, cifar.p, cifar.n);
    const char *pp[1] = {p};
    oialr_dataset ds;
    ck_assert_int_eq(oialr_cifar10_load(&ds, pp, 1), OIALR_OK);
    ck_assert_int_eq(ds.n, CIFAR_N);
    oialr_dataset_free(&ds);
    PATH(p, "%s/figs", d);
    char *argv[] = {"plot", good_tables, "-o", p, "--run", good_traj, NULL};
    ck_assert_msg(run_cmd(oialr_cmd_plot, argv) == 0, "plot: %s", oialr_errmsg());
}
END_TEST

// ----------------------------------------------------------------------------
// the command line, once for a few of them

static char bin[512];
static int ncli;

/* Run `oialr ARGS`; its stdout+stderr in out; the exit status. */
static int run_bin(const char *args, char *out, size_t n) {
    char cmd[2048];
    PATH(cmd, "'%s' %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t k = fread(out, 1, n - 1, p);
    out[k] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void expect_cli(const char *args, const char *file) {
    char out[8192];
    int st = run_bin(args, out, sizeof out);
    ck_assert_msg(st == 1, "oialr %s: exit %d:\n%s", args, st, out);
    size_t len = strlen(out);
    ck_assert_msg(len > 0 && out[len - 1] == '\n' && strchr(out, '\n') == out + len - 1,
                  "oialr %s: not one line:\n%s", args, out);
    ck_assert_msg(strstr(out, file) != NULL, "oialr %s: does not name %s: %s", args, file, out);
    if (getenv("HOSTILE_VERBOSE")) printf("  %s", out);
    ncli++;
}

START_TEST(cli_reports_one_line) {
    char d[512], p[1024], q[1024], args[1400];
    cur = 9999;
    case_dir(d, sizeof d);
    /* a trajectory cut in half, one with a flipped bit in its metadata, a
     * foreign one, one declaring 2^37 metrics rows, a CIFAR batch */
    PATH(p, "%s/cut.h5", d);
    write_blob(p, traj.p, traj.n / 2);
    PATH(args, "analyze '%s' -o '%s/r.h5' -q", p, d);
    expect_cli(args, p);
    PATH(args, "plot '%s' -o '%s/figs' --run '%s'", good_tables, d, p);
    expect_cli(args, p);
    PATH(p, "%s/foreign.h5", d);
    write_blob(p, traj.p, traj.n);
    H5E_BEGIN_TRY { struct_case(0, p); }
    H5E_END_TRY;
    PATH(args, "analyze '%s' -o '%s/r.h5' -q", p, d);
    expect_cli(args, p);
    PATH(p, "%s/cifar.bin", d);
    write_blob(p, cifar.p, cifar.n);
    PATH(args, "analyze '%s' -o '%s/r.h5' -q", p, d);
    expect_cli(args, p);
    PATH(p, "%s/sigma.h5", d);
    write_blob(p, traj.p, traj.n);
    H5E_BEGIN_TRY { struct_case(63, p); } /* basis[2] = 7 */
    H5E_END_TRY;
    PATH(args, "analyze '%s' -o '%s/r.h5' --csv '%s/t' -q", p, d, d);
    expect_cli(args, p);
    /* training on IDX files whose gzip stream is broken inside, and on a
     * CIFAR-10 batch cut short */
    PATH(q, "%s/idx", d);
    mkdir(q, 0755);
    PATH(p, "%s/train-labels-idx1-ubyte", q);
    write_blob(p, idx_lab.p, idx_lab.n);
    blob g = bl_copy(idx_img_gz);
    g.p[g.n / 2] ^= 0x40;
    PATH(p, "%s/train-images-idx3-ubyte.gz", q);
    write_blob(p, g.p, g.n);
    free(g.p);
    PATH(args, "train --dataset idx --data '%s' --epochs 1", q);
    expect_cli(args, p);
    PATH(q, "%s/cifar", d);
    mkdir(q, 0755);
    PATH(p, "%s/data_batch_1.bin", q);
    write_blob(p, cifar.p, cifar.n - 100);
    PATH(args, "train --dataset cifar10 --data '%s' --epochs 1", q);
    expect_cli(args, p);
    printf("hostile: %d command lines, each one line naming the file\n", ncli);
}
END_TEST

// ----------------------------------------------------------------------------

static void make_bases(void) {
    char b[1024];
    PATH(b, "%s/base", root);
    NEED((mkdir(b, 0755)) == 0);
    const uint32_t di[3] = {IMG_N, IMG_H, IMG_W}, dl[1] = {IMG_N};
    idx_img = idx_file(3, di, IMG_N * IMG_H * IMG_W, 0);
    idx_lab = idx_file(1, dl, IMG_N, 1);
    idx_img_gz = gzip_of(idx_img.p, idx_img.n, 6);
    idx_img_gz0 = gzip_of(idx_img.p, idx_img.n, 0);
    idx_lab_gz = gzip_of(idx_lab.p, idx_lab.n, 6);
    cifar.n = (size_t)CIFAR_N * CIFAR_REC;
    cifar.p = malloc(cifar.n);
    for (size_t i = 0; i < cifar.n; i++) cifar.p[i] = (unsigned char)(i % CIFAR_REC == 0 ? i / CIFAR_REC % 10 : i * 13);
    PATH(good_traj, "%s/good.h5", b);
    make_traj(good_traj);
    traj = read_blob(good_traj);
    /* the tables of `oialr analyze --csv`, and the trajectory read whole */
    PATH(good_tables, "%s/tables", b);
    char res[1024];
    PATH(res, "%s/results.h5", b);
    char *argv[] = {"analyze", good_traj, "-o", res, "--csv", good_tables, "-q", NULL};
    NEED((run_cmd(oialr_cmd_analyze, argv)) == 0);
    char m[1100];
    PATH(m, "%s/metrics.csv", good_tables);
    metrics_csv = read_blob(m);
}

int main(void) {
    const char *bd = getenv("OIALR_BUILD");
    PATH(bin, "%s/oialr", bd ? bd : "build");
    PATH(root, "/tmp/oialr-check-hostile-XXXXXX");
    if (!mkdtemp(root)) return EXIT_FAILURE;
    oialr_set_log(NULL, NULL, OIALR_LOG_ERROR);
    oialr_set_threads(1);
    make_bases();
    build_corpus();
    make_groups();
    printf("hostile:");
    for (int r = 0; r < NREADERS; r++)
        printf("%s %d %s files", r ? "," : "", first[r + 1] - first[r], READER_NAME[r]);
    printf(" (%d in all)\n", ncases);
    fflush(stdout);

    Suite *s = suite_create("hostile");
    TCase *core = tcase_create("Core");
    tcase_set_timeout(core, 60);
    tcase_add_test(core, guard_catches_huge_allocation);
    tcase_add_test(core, valid_files_read);
    suite_add_tcase(s, core);
    for (int r = 0; r < NREADERS; r++) {
        TCase *tc = tcase_create(READER_NAME[r]);
        tcase_set_timeout(tc, GROUP * HOSTILE_ALARM + 10);
        tcase_add_loop_test(tc, hostile_group, gfirst[r], gfirst[r + 1]);
        suite_add_tcase(s, tc);
    }
    TCase *cli = tcase_create("CLI");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, cli_reports_one_line);
    suite_add_tcase(s, cli);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[512];
    PATH(cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", root);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
