/*
 * results.c — results HDF5 file and CSV tables of `oialr analyze`
 * (layout documented in docs/analyze.md; keep the two in step).
 *
 * Every output is checked when the results are opened, before any layer is
 * analysed, and written under a temporary name beside its path (outputs.h);
 * ana_results_commit renames them all into place at the end of a successful
 * run, ana_results_close removes the temporary files of a failed one, so an
 * old results file or table stays as it was until the new one is complete.
 */
#include "results.h"
#include "outputs.h"
#include "record/h5util.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RESULTS_FORMAT "oialr-analysis"
#define RESULTS_VERSION 1

typedef struct step_s { int64_t step; double s; } step_s;

struct ana_results {
    const ana_opts *o;
    hid_t file, layers, group, sigma;   /* current layer group and its sigma dataset */
    int64_t n;                          /* current layer's n */
    int prec;                           /* current layer's working precision */
    long off_metrics, off_spectra;      /* CSV offsets at the layer's start */
    size_t nss_layer;                   /* r->nss at the layer's start */
    char name[128];
    FILE *metrics, *spectra;            /* open on their temporary files */
    ana_outputs outs;                   /* every output file of the run */
    int i_h5, i_metrics, i_spectra, i_mean, i_replay, i_events; /* their indices in outs (-1: none) */
    step_s *ss;                         /* (step, S) of every layer, for the mean */
    size_t nss, capss;
    int64_t *mstep; double *mval; int32_t *mcnt;
    size_t nmean;
};

/* The HDF5 helpers are lib/record/h5util.h's. The results file's strings
 * are variable-length UTF-8, as the trajectory's (h5py reads them as str),
 * and its datasets have the default creation properties (write_1d), not
 * h5u_make_fixed's early allocation. */

/* An HDF5 failure writing what (of name), with HDF5's innermost message. */
static int h5fail(const char *what, const char *name) {
    return h5u_err("results", OIALR_ERR_HDF5, "HDF5 error writing %s%s%s", what, name ? " of " : "", name ? name : "");
}

/* Variable-length UTF-8 string attribute (fixed-length ones came back
 * from h5py as bytes). */
static int attr_str(hid_t obj, const char *key, const char *val) {
    return h5u_attr_put_str(obj, key, val) < 0 ? h5fail("attribute", key) : OIALR_OK;
}

static int attr_i64(hid_t o, const char *k, int64_t v) {
    return h5u_attr_put_num(o, k, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 0) < 0 ? h5fail("attribute", k) : OIALR_OK;
}
static int attr_f64(hid_t o, const char *k, double v) {
    return h5u_attr_put_num(o, k, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 0) < 0 ? h5fail("attribute", k) : OIALR_OK;
}

/* 1-D dataset of n values */
static int write_1d(hid_t g, const char *name, hid_t ftype, hid_t mtype, const void *data, int64_t n) {
    hsize_t d = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = OIALR_OK;
    if (ds < 0 || h5u_write_rows(ds, mtype, 0, n, data, 0) < 0) rc = h5fail("dataset", name);
    h5u_close(&ds);
    h5u_close(&sp);
    return rc;
}

/* Refuse an output path that names the input file (--force or not). */
static int not_input(const ana_opts *o, const char *path, const char *what) {
    struct stat si, so;
    if (stat(o->input, &si) == 0 && stat(path, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
        return oialr_seterr(OIALR_ERR_ARG, "%s: the %s cannot be the input file", path, what);
    return OIALR_OK;
}

/* Check DIR/file as an output of the run (nothing is touched). */
static int add_csv(ana_results *r, const char *file, int *index) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", r->o->csv_dir, file) >= sizeof path)
        return oialr_seterr(OIALR_ERR_ARG, "%s: path too long", r->o->csv_dir);
    int rc = not_input(r->o, path, "table");
    return rc ? rc : ana_outputs_add(&r->outs, path, index);
}

/* Open a table's temporary file for writing; the header first. */
static FILE *open_csv(ana_results *r, int index, const char *header, int *rc) {
    FILE *f = fopen(ana_outputs_tmp(&r->outs, index), "w");
    if (!f) {
        *rc = oialr_seterr(OIALR_ERR_IO, "%s: cannot write it: %s", ana_outputs_path(&r->outs, index),
                           strerror(errno));
        return NULL;
    }
    fputs(header, f);
    return f;
}

/* fclose a table; OIALR_ERR_IO naming it if anything failed to write. */
static int close_csv(ana_results *r, FILE *f, int index) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return oialr_seterr(OIALR_ERR_IO, "%s: write error", ana_outputs_path(&r->outs, index));
    return OIALR_OK;
}

void ana_csv_name(FILE *f, const char *name) {
    if (!strpbrk(name, ",\"\n\r")) { fputs(name, f); return; }
    fputc('"', f);
    for (const char *p = name; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

int ana_results_open(ana_results **out, const ana_opts *o, const char *source_created) {
    ana_results *r = calloc(1, sizeof *r);
    if (!r) return oialr_seterr(OIALR_ERR_NOMEM, "results: out of memory");
    r->o = o;
    r->file = r->layers = r->group = r->sigma = H5I_INVALID_HID;
    r->i_h5 = r->i_metrics = r->i_spectra = r->i_mean = r->i_replay = r->i_events = -1;
    ana_outputs_init(&r->outs, o->force);
    *out = r;
    int rc = OIALR_OK;
    /* every output path first, before anything is written */
    if (o->output && ((rc = not_input(o, o->output, "results file")) ||
                      (rc = ana_outputs_add(&r->outs, o->output, &r->i_h5))))
        return rc;
    if (o->csv_dir && ((rc = ana_outputs_dir(&r->outs, o->csv_dir)) ||
                       (rc = add_csv(r, "metrics.csv", &r->i_metrics)) ||
                       (rc = add_csv(r, "spectra.csv", &r->i_spectra)) ||
                       (rc = add_csv(r, "mean_stability.csv", &r->i_mean)) ||
                       (rc = add_csv(r, "events.csv", &r->i_events)) ||
                       (o->policy.kind && (rc = add_csv(r, "replay.csv", &r->i_replay)))))
        return rc;
    if ((rc = ana_outputs_begin(&r->outs))) return rc;
    if (o->output) {
        /* the empty temporary file is this run's own */
        H5E_BEGIN_TRY {
            r->file = H5Fcreate(ana_outputs_tmp(&r->outs, r->i_h5), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        } H5E_END_TRY;
        if (r->file < 0) return oialr_seterr(OIALR_ERR_IO, "%s: cannot create the results file", o->output);
        char created[40];
        time_t now = time(NULL);
        struct tm tmv;
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
        if ((rc = attr_str(r->file, "format", RESULTS_FORMAT)) || (rc = attr_i64(r->file, "format_version", RESULTS_VERSION)) ||
            (rc = attr_str(r->file, "created", created)) || (rc = attr_str(r->file, "source", o->input)) ||
            (rc = attr_str(r->file, "source_created", source_created ? source_created : "")) ||
            (rc = attr_str(r->file, "library", "oialr " OIALR_VERSION_STRING)) ||
            (rc = attr_i64(r->file, "lag", o->lag_steps > 0 ? 0 : o->lag)) ||
            (rc = attr_i64(r->file, "lag_steps", o->lag_steps)) ||
            (rc = attr_f64(r->file, "beta", o->beta)) ||
            (rc = attr_f64(r->file, "tau", o->tau)) ||
            (rc = attr_str(r->file, "precision",
                           o->auto_prec ? "auto: float64 from the eigen-decomposition of the Gram matrix, float64 gesdd for a snapshot "
                                         "whose condition number exceeds 1e5; factors kept in float32"
                           : o->prec == OIALR_PREC_F64 ? "float64" : "float32")) ||
            (rc = attr_str(r->file, "layers_glob", o->layers ? o->layers : "*")) ||
            (rc = attr_str(r->file, "orientation",
                           "W is the stored rows x cols matrix if rows >= cols, else its transpose: m x n, m >= n")) ||
            (rc = attr_str(r->file, "stability_definition",
                           "S(a,b) = tr(Q_a^T Q_b) / n, Q = U_r V_r^T (polar factor over the r singular values > "
                           "max(m,n)*eps*sigma_1) of the tall-oriented W; b = snapshot j, a = snapshot j - lag")) ||
            (rc = attr_str(r->file, "angles_definition",
                           "principal angles between the top-k left (m-side) and right (n-side) singular subspaces "
                           "of a and b, k = min(cutoff_rank(b), rank(a), rank(b)); small angles from sines")) ||
            (rc = attr_str(r->file, "alpha_definition",
                           "WeightWatcher's power-law exponent of lambda_i = sigma_i^2 of the stored matrix: "
                           "alpha = 1 + t / sum ln(lambda_i / alpha_xmin) over the t lambda_i >= alpha_xmin, "
                           "alpha_xmin among the lambda_i with the smallest KS distance alpha_ks; NaN with fewer "
                           "than 10 nonzero lambda_i")) ||
            (rc = attr_str(r->file, "docs", "docs/analyze.md, docs/metrics.md")))
            return rc;
        r->layers = H5Gcreate2(r->file, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (r->layers < 0) return h5fail("group", "layers");
    }
    if (o->csv_dir) {
        r->metrics = open_csv(r, r->i_metrics,
                              "layer,step,ref_step,rows,cols,valid,stability,sigma1,sigma_min,frobenius,stable_rank,"
                              "effective_rank,rank,cutoff_rank,param_share,trainable_share,condition,angles_k,"
                              "grassmann_left,grassmann_right,max_angle_left,max_angle_right,precision,"
                              "alpha,alpha_xmin,alpha_ks\n",
                              &rc);
        if (rc) return rc;
        r->spectra = open_csv(r, r->i_spectra, "layer,step,index,sigma\n", &rc);
        if (rc) return rc;
    }
    return OIALR_OK;
}

int ana_results_layer_begin(ana_results *r, const char *name, const char *kind, int64_t rows, int64_t cols,
                            int64_t nsnap) {
    snprintf(r->name, sizeof r->name, "%s", name);
    r->nss_layer = r->nss;
    if (r->metrics) {
        r->off_metrics = ftell(r->metrics);
        r->off_spectra = ftell(r->spectra);
    }
    r->n = rows < cols ? rows : cols;
    if (r->file < 0) return OIALR_OK;
    int rc;
    r->group = H5Gcreate2(r->layers, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (r->group < 0) return h5fail("group", name);
    if ((rc = attr_i64(r->group, "rows", rows)) || (rc = attr_i64(r->group, "cols", cols)) ||
        (rc = attr_i64(r->group, "m", rows < cols ? cols : rows)) || (rc = attr_i64(r->group, "n", r->n)) ||
        (rc = attr_i64(r->group, "transposed", rows < cols)) || (rc = attr_str(r->group, "kind", kind ? kind : "")))
        return rc;
    hsize_t d[2] = {(hsize_t)nsnap, (hsize_t)r->n};
    hid_t sp = H5Screate_simple(2, d, NULL);
    r->sigma = H5Dcreate2(r->group, "sigma", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(sp);
    if (r->sigma < 0) return h5fail("dataset sigma", name);
    return OIALR_OK;
}

void ana_results_layer_prec(ana_results *r, int prec) { r->prec = prec; }

static int rewind_csv(FILE *f, long off, const char *dir) {
    if (fflush(f) != 0 || ftruncate(fileno(f), off) != 0 || fseek(f, off, SEEK_SET) != 0)
        return oialr_seterr(OIALR_ERR_IO, "%s: cannot rewind a CSV table: %s", dir, strerror(errno));
    return OIALR_OK;
}

int ana_results_layer_rewind(ana_results *r) {
    int rc;
    r->nss = r->nss_layer;
    if (r->metrics && ((rc = rewind_csv(r->metrics, r->off_metrics, r->o->csv_dir)) ||
                       (rc = rewind_csv(r->spectra, r->off_spectra, r->o->csv_dir))))
        return rc;
    return OIALR_OK; /* the HDF5 rows are rewritten in place */
}

static void csv_num(FILE *f, double v) { fprintf(f, ",%.9g", v); }

int ana_results_row(ana_results *r, int64_t snap, const ana_row *row, const double *sigma, int64_t n) {
    if (!isnan(row->stability)) {
        if (r->nss == r->capss) {
            size_t cap = r->capss ? 2 * r->capss : 256;
            step_s *p = realloc(r->ss, cap * sizeof *p);
            if (!p) return oialr_seterr(OIALR_ERR_NOMEM, "results: out of memory");
            r->ss = p;
            r->capss = cap;
        }
        r->ss[r->nss++] = (step_s){row->step, row->stability};
    }
    if (r->sigma >= 0 && n > 0) {
        OIALR_ASSERT(n == r->n); /* a whole row of sigma */
        herr_t e;
        if (sigma) {
            e = h5u_write_rows(r->sigma, H5T_NATIVE_DOUBLE, snap, 1, sigma, 0);
        } else { /* invalid snapshot: a row of NaN */
            double *nanrow = malloc((size_t)n * sizeof *nanrow);
            if (!nanrow) e = -1;
            else {
                for (int64_t i = 0; i < n; i++) nanrow[i] = NAN;
                e = h5u_write_rows(r->sigma, H5T_NATIVE_DOUBLE, snap, 1, nanrow, 0);
                free(nanrow);
            }
        }
        if (e < 0) return h5fail("sigma", r->name);
    }
    if (r->metrics) {
        FILE *f = r->metrics;
        ana_csv_name(f, r->name);
        const oialr_spectrum *s = &row->sp;
        fprintf(f, ",%lld,%lld,%lld,%lld,%d", (long long)row->step, (long long)row->ref_step, (long long)s->rows,
                (long long)s->cols, row->valid);
        csv_num(f, row->stability);
        csv_num(f, s->sigma1); csv_num(f, s->sigma_min); csv_num(f, s->frobenius); csv_num(f, s->stable_rank);
        csv_num(f, s->effective_rank);
        fprintf(f, ",%lld,%lld", (long long)row->rank, (long long)s->cutoff_rank);
        csv_num(f, s->param_share); csv_num(f, s->trainable_share); csv_num(f, s->condition);
        fprintf(f, ",%lld", (long long)row->angles_k);
        csv_num(f, row->grass_left); csv_num(f, row->grass_right); csv_num(f, row->max_left); csv_num(f, row->max_right);
        fprintf(f, ",%s", r->prec == OIALR_PREC_F64 ? "float64" : "float32");
        csv_num(f, row->pl.alpha); csv_num(f, row->pl.xmin); csv_num(f, row->pl.ks);
        fputc('\n', f);
        if (sigma)
            for (int64_t i = 0; i < n; i++) {
                ana_csv_name(r->spectra, r->name);
                fprintf(r->spectra, ",%lld,%lld,%.9g\n", (long long)row->step, (long long)(i + 1), sigma[i]);
            }
        if (ferror(f) || ferror(r->spectra)) return oialr_seterr(OIALR_ERR_IO, "%s: write error", r->o->csv_dir);
    }
    return OIALR_OK;
}

int ana_results_layer_end(ana_results *r, const ana_row *rows, int64_t nsnap, int64_t stable_step) {
    if (r->file < 0) return OIALR_OK;
    int rc = OIALR_OK;
    size_t n = (size_t)(nsnap > 0 ? nsnap : 1);
    int64_t *iv = malloc(n * sizeof *iv);
    double *dv = malloc(n * sizeof *dv);
    int8_t *bv = malloc(n);
    if (!iv || !dv || !bv) { rc = oialr_seterr(OIALR_ERR_NOMEM, "results: out of memory"); goto out; }
#define I64(NAME, EXPR) do { for (int64_t j = 0; j < nsnap; j++) iv[j] = (EXPR); \
        if ((rc = write_1d(r->group, NAME, H5T_STD_I64LE, H5T_NATIVE_INT64, iv, nsnap))) goto out; } while (0)
#define F64(NAME, EXPR) do { for (int64_t j = 0; j < nsnap; j++) dv[j] = (EXPR); \
        if ((rc = write_1d(r->group, NAME, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, dv, nsnap))) goto out; } while (0)
    I64("step", rows[j].step);
    I64("ref_step", rows[j].ref_step);
    for (int64_t j = 0; j < nsnap; j++) bv[j] = (int8_t)rows[j].valid;
    if ((rc = write_1d(r->group, "valid", H5T_STD_I8LE, H5T_NATIVE_INT8, bv, nsnap))) goto out;
    F64("stability", rows[j].stability);
    F64("sigma1", rows[j].sp.sigma1);
    F64("sigma_min", rows[j].sp.sigma_min);
    F64("frobenius", rows[j].sp.frobenius);
    F64("stable_rank", rows[j].sp.stable_rank);
    F64("effective_rank", rows[j].sp.effective_rank);
    F64("condition", rows[j].sp.condition);
    F64("param_share", rows[j].sp.param_share);
    F64("trainable_share", rows[j].sp.trainable_share);
    I64("rank", rows[j].rank);
    I64("cutoff_rank", rows[j].sp.cutoff_rank);
    I64("angles_k", rows[j].angles_k);
    F64("grassmann_left", rows[j].grass_left);
    F64("grassmann_right", rows[j].grass_right);
    F64("max_angle_left", rows[j].max_left);
    F64("max_angle_right", rows[j].max_right);
    F64("alpha", rows[j].pl.alpha);
    F64("alpha_xmin", rows[j].pl.xmin);
    F64("alpha_ks", rows[j].pl.ks);
    I64("alpha_n_tail", rows[j].pl.n_tail);
#undef I64
#undef F64
    if ((rc = attr_str(r->group, "precision", r->prec == OIALR_PREC_F64 ? "float64" : "float32")) ||
        (rc = attr_i64(r->group, "stable_step", stable_step)))
        goto out;
out:
    free(iv); free(dv); free(bv);
    h5u_close(&r->sigma);
    h5u_close(&r->group);
    return rc;
}

int ana_results_switch(ana_results *r, const char *layer, int64_t switch_step, int64_t switch_rank) {
    if (r->file < 0) return OIALR_OK;
    hid_t g = H5Gopen2(r->layers, layer, H5P_DEFAULT);
    if (g < 0) return h5fail("group", layer);
    int rc = attr_i64(g, "switch_step", switch_step);
    if (!rc) rc = attr_i64(g, "switch_rank", switch_rank);
    H5Gclose(g);
    return rc;
}

static int cmp_step(const void *a, const void *b) {
    const step_s *x = a, *y = b;
    return x->step < y->step ? -1 : x->step > y->step;
}

int ana_results_finish(ana_results *r, double frac) {
    qsort(r->ss, r->nss, sizeof *r->ss, cmp_step);
    size_t cap = r->nss ? r->nss : 1;
    r->mstep = malloc(cap * sizeof *r->mstep);
    r->mval = malloc(cap * sizeof *r->mval);
    r->mcnt = malloc(cap * sizeof *r->mcnt);
    if (!r->mstep || !r->mval || !r->mcnt) return oialr_seterr(OIALR_ERR_NOMEM, "results: out of memory");
    r->nmean = 0;
    for (size_t i = 0; i < r->nss;) {
        size_t j = i;
        double sum = 0;
        while (j < r->nss && r->ss[j].step == r->ss[i].step) sum += r->ss[j++].s;
        r->mstep[r->nmean] = r->ss[i].step;
        r->mval[r->nmean] = sum / (double)(j - i);
        r->mcnt[r->nmean] = (int32_t)(j - i);
        r->nmean++;
        i = j;
    }
    int rc = OIALR_OK;
    if (r->file >= 0) {
        hid_t g = H5Gcreate2(r->file, "mean_stability", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) return h5fail("group", "mean_stability");
        if (!(rc = write_1d(g, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, r->mstep, (int64_t)r->nmean)) &&
            !(rc = write_1d(g, "value", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r->mval, (int64_t)r->nmean)))
            rc = write_1d(g, "layers", H5T_STD_I32LE, H5T_NATIVE_INT32, r->mcnt, (int64_t)r->nmean);
        H5Gclose(g);
        if (rc) return rc;
        if (!isnan(frac)) {
            char pol[96];
            oialr_policy_format(&r->o->policy, pol, sizeof pol);
            if ((rc = attr_str(r->file, "policy", pol)) || (rc = attr_f64(r->file, "trainable_fraction", frac))) return rc;
        }
        if (H5Fflush(r->file, H5F_SCOPE_GLOBAL) < 0) return h5fail("file", r->o->output);
    }
    if (r->o->csv_dir) {
        FILE *f = open_csv(r, r->i_mean, "step,mean_stability,layers\n", &rc);
        if (!f) return rc;
        for (size_t i = 0; i < r->nmean; i++)
            fprintf(f, "%lld,%.9g,%d\n", (long long)r->mstep[i], r->mval[i], (int)r->mcnt[i]);
        if ((rc = close_csv(r, f, r->i_mean))) return rc;
    }
    return OIALR_OK;
}

FILE *ana_results_open_replay(ana_results *r, const char **path, int *rc) {
    OIALR_ASSERT(r->i_replay >= 0);
    *path = ana_outputs_path(&r->outs, r->i_replay);
    return open_csv(r, r->i_replay, "", rc);
}

int ana_results_last_mean(const ana_results *r, int64_t *step, double *value) {
    if (!r || r->nmean == 0) return -1;
    *step = r->mstep[r->nmean - 1];
    *value = r->mval[r->nmean - 1];
    return 0;
}

/* Close the HDF5 file and the tables; the first error, naming the file. */
static int close_files(ana_results *r) {
    int rc = OIALR_OK;
    herr_t e = 0;
    h5u_close(&r->sigma);
    h5u_close(&r->group);
    h5u_close(&r->layers);
    H5E_BEGIN_TRY {
        if (r->file >= 0) e = H5Fclose(r->file);
    } H5E_END_TRY;
    if (e < 0) rc = oialr_seterr(OIALR_ERR_HDF5, "%s: cannot close the results file", r->o->output);
    r->file = H5I_INVALID_HID;
    FILE *f[2] = {r->metrics, r->spectra};
    int idx[2] = {r->i_metrics, r->i_spectra};
    for (int i = 0; i < 2; i++) {
        if (!f[i]) continue;
        int crc = close_csv(r, f[i], idx[i]);
        if (!rc) rc = crc;
    }
    r->metrics = r->spectra = NULL;
    return rc;
}

int ana_results_commit(ana_results *r) {
    int rc = close_files(r);
    return rc ? rc : ana_outputs_commit(&r->outs);
}

void ana_results_close(ana_results *r) {
    if (!r) return;
    close_files(r);
    ana_outputs_close(&r->outs);
    free(r->ss); free(r->mstep); free(r->mval); free(r->mcnt);
    free(r);
}

int ana_results_events(ana_results *r, const oialr_traj_event *ev, int64_t n) {
    if (!r->o->csv_dir) return OIALR_OK;
    int rc = OIALR_OK;
    FILE *f = open_csv(r, r->i_events, "step,layer,kind,stability,rank_before,rank_after\n", &rc);
    if (!f) return rc;
    for (int64_t i = 0; i < n; i++) {
        fprintf(f, "%lld,", (long long)ev[i].step);
        ana_csv_name(f, ev[i].layer);
        fprintf(f, ",%s", oialr_traj_event_kind_name(ev[i].kind));
        csv_num(f, ev[i].stability);
        fprintf(f, ",%d,%d\n", (int)ev[i].rank_before, (int)ev[i].rank_after);
    }
    return close_csv(r, f, r->i_events);
}
