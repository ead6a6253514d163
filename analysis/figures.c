/*
 * figures.c — the figures of `oialr plot` (the driver is plot.c): for each,
 * the data file it draws (NAME.csv, a header then one row per point) and
 * the gnuplot script (NAME.gp) that reads it by a relative name.
 *
 * Per-layer data are long tables whose first column is the layer's index
 * (1..L, its colour; 0 for the mean): a script selects a layer with
 * `($1 == k ? $3 : NaN)`, and a layer's rows are contiguous so its line is
 * drawn in one piece. Legends sit outside the plot area (right, or below
 * when there are many layers); past PLOT_KEY_MAX layers the per-layer lines
 * are coloured from the first layer to the last and named in the heatmap.
 */
#include "plot.h"
#include "oialr/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLOT_KEY_MAX 24     /* layers named in a legend */
#define PLOT_MAX_COLS 400   /* heatmap columns (snapshots kept, evenly) */
#define PLOT_MAX_INDEX 256  /* evolution rows (singular values, evenly) */
#define PLOT_SPEC_STEPS 5   /* default spectrum steps */

/* Colour of layer k (1-based) of nl: gnuplot's line types while they are
 * distinct, else a palette from the first layer to the last. */
static void layer_lc(FILE *f, int k, int nl) {
    if (nl <= 8) fprintf(f, "lc %d", k);
    else fprintf(f, "lc palette frac %.4f", nl > 1 ? (double)(k - 1) / (nl - 1) : 0.0);
}

static void layer_palette(FILE *f, int nl) {
    if (nl > 8)
        fprintf(f, "set palette defined (0 '#3b4cc0', 0.5 '#8db0fe', 0.75 '#f4987a', 1 '#b40426')\n"
                   "set cbrange [1:%d]\nset cblabel 'layer (first to last)'\nset cbtics 1,%d\n",
                nl, nl > 10 ? (nl + 9) / 10 : 1);
}

/* The key: outside right for a few layers, below for more. */
static void key_for(FILE *f, int nl) {
    if (nl <= 12) fprintf(f, "set key outside right top Left reverse samplen 2 spacing 1.1 font ',9'\n");
    else fprintf(f, "set key outside below center horizontal Left reverse samplen 2 maxcols 4 font ',8'\n");
}

static int count_events(const plot_job *j, const char *kind, int layer) {
    int n = 0;
    for (int64_t i = 0; i < j->nev; i++)
        n += j->ev[i].layer >= 0 && !strcmp(j->ev[i].kind, kind) && (layer < 0 || j->ev[i].layer == layer);
    return n;
}

/* The steps of layer li's rows in metrics.csv with a defined stability,
 * at most max of them spread evenly (always the first and the last). */
static int64_t pick_rows(const plot_job *j, int li, int64_t *idx, int64_t max, int need_s) {
    int64_t n = 0;
    for (int64_t r = 0; r < j->nrows; r++)
        if (j->rows[r].layer == li && j->rows[r].valid && (!need_s || isfinite(j->rows[r].stability))) n++;
    int64_t k = 0, seen = 0;
    for (int64_t r = 0; r < j->nrows && k < max; r++) {
        if (j->rows[r].layer != li || !j->rows[r].valid || (need_s && !isfinite(j->rows[r].stability))) continue;
        /* keep row `seen` if it is the next of max evenly spread ones */
        if (n <= max || seen == (int64_t)((double)k * (n - 1) / (max - 1) + 0.5)) idx[k++] = r;
        seen++;
    }
    return k;
}

/* ------------------------------------------------------------------------- */
/* 1. stability per layer, mean, tau, switches */

static int fig_stability(plot_job *j, ana_outputs *o, plot_fig *g) {
    FILE *d = plot_open_tmp(o, g->data[0]);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "layer_index,layer,step,stability\n");
    double lo = 1.0;
    int64_t npts = 0;
    for (int li = 0; li < j->nlayers; li++)
        for (int64_t r = 0; r < j->nrows; r++) {
            const plot_mrow *m = &j->rows[r];
            if (m->layer != li || !m->valid || !isfinite(m->stability)) continue;
            fprintf(d, "%d,", li + 1);
            plot_csv_name(d, j->layers[li].name);
            fprintf(d, ",%lld,%.9g\n", (long long)m->step, m->stability);
            if (m->stability < lo) lo = m->stability;
            npts++;
        }
    for (int64_t i = 0; i < j->nmean; i++)
        if (isfinite(j->mean_s[i])) fprintf(d, "0,mean,%lld,%.9g\n", (long long)j->mean_step[i], j->mean_s[i]);
    int rc = plot_close(d, o, g->data[0]);
    if (rc || npts == 0) return rc; /* a single snapshot per layer: no stability to draw */
    int nl = j->nlayers, nsw = count_events(j, "switch", -1);
    lo = floor((lo - 0.02) * 20.0) / 20.0;
    if (lo > j->tau - 0.05) lo = floor((j->tau - 0.05) * 20.0) / 20.0;
    if (lo < -1.0) lo = -1.0;
    int height = nl <= 12 ? 720 : 720 + 22 * ((nl < PLOT_KEY_MAX ? nl : 4) + 3) / 4;
    FILE *f = plot_open_tmp(o, g->gp);
    if (!f) return OIALR_ERR_IO;
    plot_script_head(f, j, o, g, 1280, height);
    fprintf(f,
            "set title 'Basis stability S = tr(Qa^T Qb)/n of each layer between consecutive snapshots (Q = U V^T; 1 = the bases did not move)'\n"
            "set xlabel 'training step'\nset ylabel 'stability S'\nset yrange [%g:1.02]\n",
            lo);
    key_for(f, nl <= PLOT_KEY_MAX ? nl : 3);
    layer_palette(f, nl);
    fprintf(f, "tau = %g\nplot ", j->tau);
    for (int k = 1; k <= nl; k++) {
        fprintf(f, "data using ($1 == %d ? $3 : NaN):4 skip 1 with lines lw 1.5 ", k);
        layer_lc(f, k, nl);
        if (nl <= PLOT_KEY_MAX) {
            fprintf(f, " title ");
            plot_gp_quote(f, j->layers[k - 1].name);
        } else {
            fprintf(f, " notitle");
        }
        fprintf(f, ", \\\n     ");
    }
    if (j->nmean > 0)
        fprintf(f, "data using ($1 == 0 ? $3 : NaN):4 skip 1 with lines lw 4 lc rgb 'black' title 'mean over layers', \\\n     ");
    fprintf(f, "tau with lines dt 2 lw 2 lc rgb 'red' title sprintf('tau = %%g (stable)', tau)");
    if (nsw)
        fprintf(f,
                ", \\\n     events using (strcol(4) eq 'switch' ? $3 : NaN):5%s skip 1 with points pt 7 ps 1.8 %s "
                "title 'switch to low rank (S the controller saw)'",
                nl <= 8 ? ":1" : "", nl <= 8 ? "lc variable" : "lc rgb 'black'");
    fprintf(f, "\n");
    if ((rc = plot_close(f, o, g->gp)) || (rc = plot_run_gnuplot(j, o, g))) return rc;
    snprintf(g->title, sizeof g->title, "Basis stability of each layer over training");
    snprintf(g->caption, sizeof g->caption,
             "One line per layer: S = 1 means its orthogonal bases (Q = U V^T) did not move since the previous "
             "snapshot. The black line is the mean over layers, the dashed red line tau = %g; %s",
             j->tau,
             nsw ? "a dot marks where the OIALR run switched a layer to low rank, at the stability it measured "
                   "(after a switch S is at most r/n: the drop is the rank, not the bases moving)."
                 : "a full-rank run has no switches.");
    g->drawn = 1;
    return OIALR_OK;
}

/* ------------------------------------------------------------------------- */
/* 2. heatmap of stability, layers x steps */

static int fig_heatmap(plot_job *j, ana_outputs *o, plot_fig *g) {
    FILE *d = plot_open_tmp(o, g->data[0]);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "layer_index,layer,step,step_lo,step_hi,stability\n");
    int64_t *idx = malloc(PLOT_MAX_COLS * sizeof *idx), npts = 0;
    if (!idx) {
        fclose(d);
        return oialr_seterr(OIALR_ERR_NOMEM, "out of memory");
    }
    double lo = 1.0;
    int64_t xmin = INT64_MAX, xmax = INT64_MIN;
    for (int li = 0; li < j->nlayers; li++) {
        int64_t k = pick_rows(j, li, idx, PLOT_MAX_COLS, 1);
        for (int64_t q = 0; q < k; q++) {
            const plot_mrow *m = &j->rows[idx[q]];
            double s = (double)m->step;
            double prev = q > 0 ? (double)j->rows[idx[q - 1]].step : NAN, next = q + 1 < k ? (double)j->rows[idx[q + 1]].step : NAN;
            double half_l = isfinite(prev) ? (s - prev) / 2 : (isfinite(next) ? (next - s) / 2 : 0.5);
            double half_r = isfinite(next) ? (next - s) / 2 : half_l;
            fprintf(d, "%d,", li + 1);
            plot_csv_name(d, j->layers[li].name);
            fprintf(d, ",%lld,%.10g,%.10g,%.9g\n", (long long)m->step, s - half_l, s + half_r, m->stability);
            if (m->stability < lo) lo = m->stability;
            if ((int64_t)(s - half_l) < xmin) xmin = (int64_t)floor(s - half_l);
            if ((int64_t)ceil(s + half_r) > xmax) xmax = (int64_t)ceil(s + half_r);
            npts++;
        }
    }
    free(idx);
    int rc = plot_close(d, o, g->data[0]);
    if (rc || npts == 0) return rc;
    int nl = j->nlayers;
    /* colour: 1 - S on a log scale, so "moving slowly" (0.999) and
     * "settled" (0.99999) differ; yellow at and above tau */
    double umax = 1.0 - lo, umin = 1e-5, utau = 1.0 - j->tau;
    if (umax < 10 * utau) umax = 10 * utau;
    if (umax > 2.0) umax = 2.0;
    double gt = (log10(utau) - log10(umin)) / (log10(umax) - log10(umin)); /* tau's place on the colour bar */
    int row = nl <= 30 ? 24 : nl <= 60 ? 14 : 10, font = nl <= 30 ? 9 : nl <= 60 ? 8 : 7;
    int every = nl * row > 1800 ? (nl * 10 + 1799) / 1800 : 1; /* thin the names past ~180 rows */
    if (nl * row > 1800) row = 1800 / nl > 3 ? 1800 / nl : 3;
    int height = 220 + (nl * row > 360 ? nl * row : 360);
    FILE *f = plot_open_tmp(o, g->gp);
    if (!f) return OIALR_ERR_IO;
    plot_script_head(f, j, o, g, 1280, height);
    int nsw = count_events(j, "switch", -1);
    fprintf(f,
            "set title 'Stability S of every layer (rows) at every snapshot (columns); yellow: S >= tau = %g%s'\n"
            "set xlabel 'training step'\nunset ylabel\nunset grid\n"
            "set xrange [%lld:%lld]\nset yrange [%d.5:0.5]\n"
            "# colour = 1 - S, log scale: the colour bar is labelled in S\n"
            "set logscale cb\nset cbrange [%g:%g]\nset cblabel 'stability S (log scale of 1 - S)'\n"
            "set cbtics ('1 - 1e-5' 1e-5, '0.9999' 1e-4, '0.999' 1e-3, '0.99' 1e-2, '0.9' 0.1, '0' 1, '-1' 2)\n"
            "set palette defined (0 '#fff7bc', %.4f '#fde725', %.4f '#21a585', %.4f '#3b528b', 1 '#30123b')\n"
            "set key off\n",
            j->tau, nsw ? "; red x: switch to low rank" : "", (long long)xmin, (long long)xmax, nl, umin, umax, gt,
            gt + 1e-4, gt + 0.5 * (1 - gt));
    fprintf(f, "set ytics font ',%d' (", font);
    for (int k = 1, c = 0; k <= nl; k++) {
        if ((k - 1) % every) continue;
        fprintf(f, "%s", c++ ? ", " : "");
        plot_gp_quote(f, j->layers[k - 1].name);
        fprintf(f, " %d", k);
    }
    fprintf(f, ")\n");
    fprintf(f, "u(s) = 1 - s < %g ? %g : 1 - s\n"
               "# each cell a little wider than its share, so no seam shows between cells\n"
               "plot data using 3:1:($4 - 0.02*($5-$4)):($5 + 0.02*($5-$4)):($1 - 0.52):($1 + 0.52):(u($6)) skip 1 "
               "with boxxyerror fs solid 1.0 noborder lc palette notitle",
            umin, umin);
    if (nsw)
        fprintf(f, ", \\\n     events using (strcol(4) eq 'switch' ? $3 : NaN):1 skip 1 with points pt 2 ps 2 lw 3 "
                   "lc rgb 'red' notitle");
    fprintf(f, "\n");
    if ((rc = plot_close(f, o, g->gp)) || (rc = plot_run_gnuplot(j, o, g))) return rc;
    snprintf(g->title, sizeof g->title, "Stability heatmap: which layer settled when");
    snprintf(g->caption, sizeof g->caption,
             "Each row is a layer (first at the top), each column a snapshot; the colour is the stability S "
             "against the previous snapshot, on a log scale of 1 - S. Yellow cells have S >= tau = %g (paler: "
             "closer to 1): a row that turns yellow and stays so is a layer whose bases settled%s.",
             j->tau, count_events(j, "switch", -1) ? "; a red cross marks each layer's switch to low rank" : "");
    g->drawn = 1;
    return OIALR_OK;
}

/* ------------------------------------------------------------------------- */
/* 3. singular spectrum of a layer at chosen steps */

static int spec_steps(const plot_job *j, const plot_layer *l, int64_t *pick, int max) {
    int k = 0;
    if (l->nspec == 0) return 0;
    if (j->steps) {
        const char *p = j->steps;
        while (*p && k < max) {
            char *end;
            long long want = strtoll(p, &end, 10);
            if (end == p) break;
            int64_t best = 0;
            for (int64_t s = 1; s < l->nspec; s++)
                if (llabs((long long)(l->spec_step[s] - want)) < llabs((long long)(l->spec_step[best] - want))) best = s;
            if (k == 0 || pick[k - 1] != best) pick[k++] = best;
            p = *end == ',' ? end + 1 : end;
            if (end == p && *p) break;
        }
        return k;
    }
    int n = l->nspec < PLOT_SPEC_STEPS ? (int)l->nspec : PLOT_SPEC_STEPS;
    for (int q = 0; q < n; q++) {
        int64_t s = n > 1 ? (int64_t)((double)q * (l->nspec - 1) / (n - 1) + 0.5) : 0;
        if (k == 0 || pick[k - 1] != s) pick[k++] = s;
    }
    return k;
}

static int fig_spectrum(plot_job *j, ana_outputs *o, plot_fig *g) {
    const plot_layer *l = &j->layers[g->layer];
    int64_t pick[16];
    int k = spec_steps(j, l, pick, 16);
    FILE *d = plot_open_tmp(o, g->data[0]);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "index");
    for (int q = 0; q < k; q++) fprintf(d, ",sigma_at_step_%lld", (long long)l->spec_step[pick[q]]);
    fprintf(d, "\n");
    double top = 0, bottom = INFINITY;
    for (int64_t i = 0; i < l->n && k > 0; i++) {
        fprintf(d, "%lld", (long long)i + 1);
        for (int q = 0; q < k; q++) {
            double s = l->spec[pick[q] * l->n + i];
            fprintf(d, ",%.9g", s);
            if (s > top) top = s;
            if (s > 0 && s < bottom) bottom = s;
        }
        fprintf(d, "\n");
    }
    int rc = plot_close(d, o, g->data[0]);
    if (rc || k == 0 || !(top > 0)) return rc;
    if (bottom < top * 1e-4) bottom = top * 1e-4;
    FILE *f = plot_open_tmp(o, g->gp);
    if (!f) return OIALR_ERR_IO;
    plot_script_head(f, j, o, g, 1100, 700);
    fprintf(f, "set title ");
    char t[300];
    snprintf(t, sizeof t, "Singular values of %s (%lldx%lld) at %d step%s, with the cutoff beta*sigma_1", l->name,
             (long long)l->rows, (long long)l->cols, k, k > 1 ? "s" : "");
    plot_gp_quote(f, t);
    fprintf(f,
            "\nset xlabel 'index i (singular values in decreasing order)'\nset ylabel 'singular value sigma_i (log scale)'\n"
            "set logscale y\nset yrange [%.6g:%.6g]\nset xrange [0:%lld]\n"
            "set key outside right top Left reverse samplen 3 font ',9'\nbeta = %g\n",
            bottom * 0.8, top * 1.5, (long long)l->n + 1, j->beta);
    for (int q = 0; q < k; q++) fprintf(f, "s1_%d = %.9g  # sigma_1 at step %lld\n", q + 1, l->spec[pick[q] * l->n], (long long)l->spec_step[pick[q]]);
    fprintf(f, "plot ");
    for (int q = 0; q < k; q++)
        fprintf(f, "%sdata using 1:%d skip 1 with lines lw 2 lc %d title 'step %lld'", q ? ", \\\n     " : "", q + 2, q + 1,
                (long long)l->spec_step[pick[q]]);
    for (int q = 0; q < k; q++)
        fprintf(f, ", \\\n     beta * s1_%d with lines dt 2 lw 1.5 lc %d %s", q + 1, q + 1,
                q == 0 ? "title sprintf('beta*sigma_1 (beta = %g): kept above', beta)" : "notitle");
    fprintf(f, "\n");
    if ((rc = plot_close(f, o, g->gp)) || (rc = plot_run_gnuplot(j, o, g))) return rc;
    snprintf(g->title, sizeof g->title, "Singular spectrum of %s", l->name);
    snprintf(g->caption, sizeof g->caption,
             "The singular values of %s, largest first, at %d snapshots (one colour each). Each dashed line is "
             "beta*sigma_1 (beta = %g) of the step of its colour: the values above it are the rank r_beta OIALR "
             "keeps. A spectrum that falls faster over training concentrates in fewer directions.",
             l->name, k, j->beta);
    g->drawn = 1;
    return OIALR_OK;
}

/* ------------------------------------------------------------------------- */
/* 4. spectrum evolution, index x step */

static int32_t stored_rank_at(const plot_layer *l, int64_t step) {
    for (int64_t s = 0; s < l->nstored; s++)
        if (l->stored_step[s] == step) return l->stored_rank[s];
    return -1;
}

static int fig_evolution(plot_job *j, ana_outputs *o, plot_fig *g) {
    const plot_layer *l = &j->layers[g->layer];
    FILE *d = plot_open_tmp(o, g->data[0]);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "step,step_lo,step_hi,index,index_lo,index_hi,sigma,log10_sigma\n");
    int64_t ncol = l->nspec < PLOT_MAX_COLS ? l->nspec : PLOT_MAX_COLS;
    int64_t stride = (l->n + PLOT_MAX_INDEX - 1) / PLOT_MAX_INDEX;
    double top = -INFINITY;
    int64_t xmin = 0, xmax = 0;
    for (int64_t q = 0; q < ncol; q++) {
        int64_t s = ncol > 1 ? (int64_t)((double)q * (l->nspec - 1) / (ncol - 1) + 0.5) : 0;
        int64_t sp = q > 0 ? (int64_t)((double)(q - 1) * (l->nspec - 1) / (ncol - 1) + 0.5) : -1;
        int64_t sn = q + 1 < ncol ? (int64_t)((double)(q + 1) * (l->nspec - 1) / (ncol - 1) + 0.5) : -1;
        double x = (double)l->spec_step[s];
        double hl = sp >= 0 ? (x - (double)l->spec_step[sp]) / 2 : sn >= 0 ? ((double)l->spec_step[sn] - x) / 2 : 0.5;
        double hr = sn >= 0 ? ((double)l->spec_step[sn] - x) / 2 : hl;
        if (q == 0) xmin = (int64_t)floor(x - hl);
        xmax = (int64_t)ceil(x + hr);
        for (int64_t i = 0; i < l->n; i += stride) {
            double v = l->spec[s * l->n + i];
            double lv = v > 0 ? log10(v) : NAN;
            if (lv > top) top = lv;
            int64_t hi = i + stride < l->n ? i + stride : l->n;
            fprintf(d, "%lld,%.10g,%.10g,%lld,%.1f,%.1f,%.9g,%.6g\n", (long long)l->spec_step[s], x - hl, x + hr,
                    (long long)i + 1, (double)i + 0.5, (double)hi + 0.5, v, lv);
        }
    }
    int rc = plot_close(d, o, g->data[0]);
    if (rc || ncol == 0 || !isfinite(top)) return rc;
    /* the ranks over it: r_beta from the tables, the stored rank of the run */
    d = plot_open_tmp(o, g->data[1]);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "step,cutoff_rank,stored_rank\n");
    int lowrank = 0;
    for (int64_t r = 0; r < j->nrows; r++) {
        const plot_mrow *m = &j->rows[r];
        if (m->layer != g->layer || !m->valid) continue;
        int32_t sr = stored_rank_at(l, m->step);
        if (sr >= 0 && sr < l->n) lowrank = 1;
        fprintf(d, "%lld,%.9g,", (long long)m->step, m->cutoff_rank);
        if (sr >= 0) fprintf(d, "%d\n", sr);
        else fprintf(d, "nan\n");
    }
    if ((rc = plot_close(d, o, g->data[1]))) return rc;
    int ntrunc = count_events(j, "truncate", g->layer);
    FILE *f = plot_open_tmp(o, g->gp);
    if (!f) return OIALR_ERR_IO;
    plot_script_head(f, j, o, g, 1200, 720);
    char t[300];
    snprintf(t, sizeof t, "Spectrum of %s over training: log10 sigma_i (colour) by index and step", l->name);
    fprintf(f, "set title ");
    plot_gp_quote(f, t);
    fprintf(f,
            "\nset xlabel 'training step'\nset ylabel 'index i (1 = largest singular value)'\nunset grid\n"
            "set xrange [%lld:%lld]\nset yrange [0.5:%lld.5]\nset cbrange [%.4g:%.4g]\n"
            "set cblabel 'log10 sigma_i'\n"
            "set palette defined (0 '#000004', 0.25 '#3b0f70', 0.5 '#8c2981', 0.75 '#de4968', 0.9 '#fe9f6d', 1 '#fcfdbf')\n"
            "set key at screen 0.5, screen 0.02 center bottom horizontal\nset bmargin 6\n",
            (long long)xmin, (long long)xmax, (long long)l->n, top - 4, top);
    fprintf(f, "# each cell a little larger than its share, so no seam shows between cells\n"
               "plot data using 1:4:($2 - 0.02*($3-$2)):($3 + 0.02*($3-$2)):($5):($6 + 0.5*($6-$5)):8 skip 1 "
               "with boxxyerror fs solid 1.0 noborder lc palette notitle, \\\n"
               "     data2 using 1:2 skip 1 with lines lw 2.5 lc rgb '#00e5ff' title 'cutoff rank r_beta'");
    if (lowrank)
        fprintf(f, ", \\\n     data2 using 1:3 skip 1 with steps lw 2.5 dt 2 lc rgb '#39ff14' title 'rank the run kept'");
    if (ntrunc)
        fprintf(f, ", \\\n     events using ($1 == %d && strcol(4) eq 'truncate' ? $3 : NaN):7 skip 1 with points pt 9 ps "
                   "1.6 lc rgb 'red' title 'truncation (rank after)'",
                g->layer + 1);
    fprintf(f, "\n");
    if ((rc = plot_close(f, o, g->gp)) || (rc = plot_run_gnuplot(j, o, g))) return rc;
    snprintf(g->title, sizeof g->title, "Spectrum evolution of %s", l->name);
    snprintf(g->caption, sizeof g->caption,
             "Every column is one snapshot of %s, its singular values from the largest (bottom) up, coloured by "
             "log10 sigma_i (4 decades shown). The cyan line is the cutoff rank r_beta (values >= beta*sigma_1)%s%s.",
             l->name, lowrank ? "; the green dashed line the rank the OIALR run kept (black above it: the values it dropped)" : "",
             ntrunc ? ", red triangles its truncations" : "");
    g->drawn = 1;
    return OIALR_OK;
}

/* ------------------------------------------------------------------------- */
/* 5. rank per layer and the trainable fraction */

static int fig_ranks(plot_job *j, ana_outputs *o, plot_fig *g) {
    int stored = 0;
    for (int li = 0; li < j->nlayers; li++) stored |= j->layers[li].nstored > 0;
    FILE *d = plot_open_tmp(o, g->data[0]);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "layer_index,layer,step,n,%s,cutoff_rank,effective_rank\n", stored ? "stored_rank" : "numerical_rank");
    int64_t npts = 0;
    for (int li = 0; li < j->nlayers; li++) {
        const plot_layer *l = &j->layers[li];
        for (int64_t r = 0; r < j->nrows; r++) {
            const plot_mrow *m = &j->rows[r];
            if (m->layer != li || !m->valid) continue;
            double rank = m->rank;
            if (stored) {
                int32_t sr = stored_rank_at(l, m->step);
                rank = sr >= 0 ? sr : NAN;
            }
            fprintf(d, "%d,", li + 1);
            plot_csv_name(d, l->name);
            fprintf(d, ",%lld,%lld,%.9g,%.9g,%.9g\n", (long long)m->step, (long long)l->n, rank, m->cutoff_rank,
                    m->effective_rank);
            npts++;
        }
    }
    int rc = plot_close(d, o, g->data[0]);
    if (rc || npts == 0) return rc;
    /* the trainable fraction: the run's own column, then the share left if
     * every layer were cut at r_beta at that snapshot */
    d = plot_open_tmp(o, g->data[1]);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "step,trainable_fraction,cutoff_share\n");
    int tf = plot_metric_col(j, "trainable_fraction");
    int have_tf = 0;
    for (int64_t i = 0; tf >= 0 && i < j->nm; i++) {
        double v = j->mval[(size_t)tf * (size_t)j->nm + (size_t)i];
        if (!isfinite(v)) continue;
        fprintf(d, "%lld,%.9g,nan\n", (long long)j->mstep[i], v);
        have_tf = 1;
    }
    /* rows are per layer: walk the first layer's steps, sum every layer at each */
    for (int64_t r = 0; r < j->nrows; r++) {
        const plot_mrow *m0 = &j->rows[r];
        if (m0->layer != 0 || !m0->valid) continue;
        double num = 0, den = 0;
        int found = 0;
        for (int64_t q = 0; q < j->nrows; q++) {
            const plot_mrow *m = &j->rows[q];
            if (m->step != m0->step || !m->valid || !isfinite(m->trainable_share)) continue;
            const plot_layer *l = &j->layers[m->layer];
            num += m->trainable_share * (double)(l->m * l->n);
            den += (double)(l->m * l->n);
            found++;
        }
        if (found == j->nlayers && den > 0) fprintf(d, "%lld,nan,%.9g\n", (long long)m0->step, num / den);
    }
    if ((rc = plot_close(d, o, g->data[1]))) return rc;
    int nl = j->nlayers, ntr = count_events(j, "truncate", -1), nsw = count_events(j, "switch", -1);
    FILE *f = plot_open_tmp(o, g->gp);
    if (!f) return OIALR_ERR_IO;
    plot_script_head(f, j, o, g, 1280, 900);
    fprintf(f, "set multiplot layout 2,1 title 'Ranks and trainable parameters over training'\n"
               "set lmargin at screen 0.07\nset rmargin at screen 0.74\n");
    key_for(f, 1);
    layer_palette(f, nl);
    if (nl > 8) fprintf(f, "unset colorbox\n");
    fprintf(f, "set ylabel '%s rank / n'\nset yrange [0:1.05]\nunset xlabel\nplot ", stored ? "stored (solid)," : "numerical (solid),");
    for (int k = 1; k <= nl; k++) {
        fprintf(f, "data using ($1 == %d ? $3 : NaN):($5/$4) skip 1 with lines lw 2 ", k);
        layer_lc(f, k, nl);
        if (nl <= PLOT_KEY_MAX) {
            fprintf(f, " title ");
            plot_gp_quote(f, j->layers[k - 1].name);
        } else fprintf(f, " notitle");
        fprintf(f, ", \\\n     data using ($1 == %d ? $3 : NaN):($6/$4) skip 1 with lines lw 1.2 dt 2 ", k);
        layer_lc(f, k, nl);
        fprintf(f, " notitle, \\\n     ");
    }
    fprintf(f, "NaN with lines lw 1.2 dt 2 lc rgb 'black' title 'dashed: cutoff rank r_beta / n'");
    if (ntr)
        fprintf(f, ", \\\n     events using (strcol(4) eq 'truncate' ? $3 : NaN):($7/$8)%s skip 1 with points pt 9 ps 1.4 %s "
                   "title 'truncation (rank after)'",
                nl <= 8 ? ":1" : "", nl <= 8 ? "lc variable" : "lc rgb 'black'");
    if (nsw)
        fprintf(f, ", \\\n     events using (strcol(4) eq 'switch' ? $3 : NaN):($7/$8)%s skip 1 with points pt 7 ps 1.6 %s "
                   "title 'switch to low rank'",
                nl <= 8 ? ":1" : "", nl <= 8 ? "lc variable" : "lc rgb 'black'");
    fprintf(f, "\nset xlabel 'training step'\nset ylabel 'fraction of the parameters'\nset yrange [0:1.05]\nplot ");
    if (have_tf)
        fprintf(f, "data2 using 1:2 skip 1 with lines lw 3 lc rgb 'black' title 'trainable fraction (the run)', \\\n     ");
    fprintf(f, "data2 using 1:3 skip 1 with lines lw 2 dt 2 lc rgb '#1f77b4' title 'if every layer were cut to r_beta'\n"
               "unset multiplot\n");
    if ((rc = plot_close(f, o, g->gp)) || (rc = plot_run_gnuplot(j, o, g))) return rc;
    snprintf(g->title, sizeof g->title, "Ranks and trainable fraction");
    snprintf(g->caption, sizeof g->caption,
             "Top: each layer's %s as a fraction of n = min(rows, cols) (solid) and its cutoff rank r_beta / n "
             "(dashed, what OIALR would keep)%s. Bottom: %sthe share of the weight matrices' parameters left if "
             "every layer were cut to r_beta at that step (dashed).",
             stored ? "rank as the run stored it" : "numerical rank", ntr || nsw ? "; markers: switches and truncations" : "",
             have_tf ? "the run's trainable fraction (solid, all parameters) and " : "");
    g->drawn = 1;
    return OIALR_OK;
}

/* ------------------------------------------------------------------------- */
/* 6. training curves: every metric column of the run */

static int is_eval(const char *name) { return !strncmp(name, "val_", 4) || !strncmp(name, "test_", 5); }

static int fig_training(plot_job *j, ana_outputs *o, plot_fig *g) {
    if (j->ncol == 0 || j->nm == 0) return OIALR_OK; /* no metrics recorded: no figure */
    FILE *d = plot_open_tmp(o, g->data[0]);
    if (!d) return OIALR_ERR_IO;
    fprintf(d, "step");
    for (int k = 0; k < j->ncol; k++) {
        fputc(',', d);
        plot_csv_name(d, j->col[k]);
    }
    fputc('\n', d);
    int *finite = calloc((size_t)j->ncol, sizeof *finite), *positive = calloc((size_t)j->ncol, sizeof *positive);
    if (!finite || !positive) {
        free(finite), free(positive), fclose(d);
        return oialr_seterr(OIALR_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < j->ncol; k++) positive[k] = 1;
    for (int64_t i = 0; i < j->nm; i++) {
        fprintf(d, "%lld", (long long)j->mstep[i]);
        for (int k = 0; k < j->ncol; k++) {
            const double *v = j->mval + (size_t)k * (size_t)j->nm;
            double x = v[i];
            /* an evaluation is carried to later rows: keep the row where it appears */
            if (is_eval(j->col[k]) && i > 0 && x == v[i - 1]) x = NAN;
            if (isfinite(x)) finite[k]++, positive[k] &= x > 0;
            fprintf(d, ",%.9g", x);
        }
        fputc('\n', d);
    }
    int rc = plot_close(d, o, g->data[0]);
    /* panels: the losses, the accuracies, then every other column alone */
    enum { P_LOSS, P_ACC, P_OTHER };
    int np = 0, has[2] = {0, 0}, logloss = 1;
    for (int k = 0; k < j->ncol; k++) {
        if (!finite[k]) continue;
        int p = strstr(j->col[k], "loss") ? P_LOSS : strstr(j->col[k], "acc") ? P_ACC : P_OTHER;
        if (p == P_OTHER) np++;
        else has[p] = 1;
        if (p == P_LOSS) logloss &= positive[k];
    }
    np += has[0] + has[1];
    if (rc || np == 0) {
        free(finite), free(positive);
        return rc; /* every column absent: no figure */
    }
    int cols = np == 1 ? 1 : 2, rows = (np + cols - 1) / cols;
    FILE *f = plot_open_tmp(o, g->gp);
    if (!f) {
        free(finite), free(positive);
        return OIALR_ERR_IO;
    }
    plot_script_head(f, j, o, g, 1280, 120 + 380 * rows);
    fprintf(f, "set multiplot layout %d,%d title 'Training curves: every metric the run recorded'\n"
               "set xlabel 'training step'\n"
               "# the keys sit above their panels, off the curves\n"
               "set key outside top center horizontal font ',9' samplen 2\n",
            rows, cols);
    for (int p = 0; p < 2; p++) {
        if (!has[p]) continue;
        fprintf(f, "set ylabel '%s'\n%s\n%s\nplot ", p == P_LOSS ? "loss" : "accuracy",
                p == P_LOSS && logloss ? "set logscale y" : "unset logscale y",
                "set key outside top center horizontal");
        int c = 0;
        for (int k = 0; k < j->ncol; k++) {
            if (!finite[k]) continue;
            int pk = strstr(j->col[k], "loss") ? P_LOSS : strstr(j->col[k], "acc") ? P_ACC : P_OTHER;
            if (pk != p) continue;
            fprintf(f, "%sdata using 1:%d skip 1 with %s lw 2 lc %d title ", c ? ", \\\n     " : "", k + 2,
                    is_eval(j->col[k]) ? "linespoints pt 7 ps 0.9" : "lines", c + 1);
            c++;
            plot_gp_quote(f, j->col[k]);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "unset logscale y\nunset key  # one column a panel: its y label names it\n");
    for (int k = 0; k < j->ncol; k++) {
        if (!finite[k] || strstr(j->col[k], "loss") || strstr(j->col[k], "acc")) continue;
        fprintf(f, "set ylabel ");
        plot_gp_quote(f, j->col[k]);
        fprintf(f, "\nplot data using 1:%d skip 1 with %s lw 2 lc rgb '#444444' title ", k + 2,
                finite[k] < 3 ? "linespoints pt 7" : "lines");
        plot_gp_quote(f, j->col[k]);
        fprintf(f, "\n");
    }
    fprintf(f, "unset multiplot\n");
    char absent[512] = "";
    size_t a = 0;
    for (int k = 0; k < j->ncol && a + 70 < sizeof absent; k++)
        if (!finite[k]) a += (size_t)snprintf(absent + a, sizeof absent - a, "%s%s", a ? ", " : "", j->col[k]);
    if (a) fprintf(f, "# columns without a value in this run (not drawn): %s\n", absent);
    free(finite), free(positive);
    if ((rc = plot_close(f, o, g->gp)) || (rc = plot_run_gnuplot(j, o, g))) return rc;
    snprintf(g->title, sizeof g->title, "Training curves");
    snprintf(g->caption, sizeof g->caption,
             "Every metric column the run recorded against the training step: losses together (log scale), "
             "accuracies together (dots: evaluations on the validation or test set), and each other column "
             "(learning rate, trainable fraction, epoch, wall time) in a panel of its own.%s%s",
             a ? " Not recorded in this run: " : "", absent);
    g->drawn = 1;
    return OIALR_OK;
}

int fig_draw(plot_job *j, ana_outputs *o, plot_fig *g) {
    switch (g->kind) {
    case FIG_STABILITY: return fig_stability(j, o, g);
    case FIG_HEATMAP: return fig_heatmap(j, o, g);
    case FIG_SPECTRUM: return fig_spectrum(j, o, g);
    case FIG_EVOLUTION: return fig_evolution(j, o, g);
    case FIG_RANKS: return fig_ranks(j, o, g);
    case FIG_TRAINING: return fig_training(j, o, g);
    }
    return OIALR_OK;
}
