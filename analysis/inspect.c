/*
 * inspect.c — `oialr inspect RUN.h5`: what a trajectory holds, in the
 * domain's terms (docs/inspect-watch.md): the writer's state (closed, live,
 * killed, with the recovery advice of docs/format.md for a killed one), the
 * layers with their shapes, snapshots, step range and how they are stored
 * (full, or as factors U Σ Vᵀ for an OIALR run, with the ranks), /metrics,
 * /events, the checkpoint and /config. Everything through the public reader
 * (oialr/trajectory.h); HDF5 directly only to say what a file that is not a
 * trajectory is (an analysis results file, a foreign HDF5 file).
 *
 * Plain text by default, `--json` for scripts. Reads only: a live file is
 * read in SWMR mode and never changed, a killed one is not repaired.
 */
#include "inspect.h"
#include "record/h5util.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "oialr/trajectory.h"

/* What inspect reads at most: more events or metrics rows than this are
 * counted but not read (a hostile file cannot make it allocate more). */
#define INSPECT_MAX_ROWS ((int64_t)1 << 21)
/* the "format" attribute of `oialr analyze -o` files (analysis/results.c) */
#define INSPECT_RESULTS_FORMAT "oialr-analysis"

static const char *USAGE =
    "usage: oialr inspect RUN.h5 [--json]\n"
    "\n"
    "What a trajectory holds: the writer's state (closed, live, killed), each\n"
    "layer's shape, snapshots, step range and storage (full or factored, with\n"
    "ranks), the metrics columns, the events, the checkpoint and the run's\n"
    "configuration. Reads only; works on a file a run is still writing.\n"
    "\n"
    "      --json       the same facts as one JSON object\n"
    "  -h, --help       this help\n";

const char *ana_writer_state(const oialr_traj_info *info) {
    if (!info->swmr_read) return "closed";
    return info->writer_alive ? "live" : "killed";
}

// ----------------------------------------------------------------------------
// what is in the file, gathered once for both outputs

typedef struct layer_facts {
    const oialr_traj_layer *L;
    int64_t n;               /* min(rows, cols): the full rank */
    int64_t factored;        /* snapshots stored as factors */
    int64_t first_factored;  /* their first step (-1: none) */
    int nbases;              /* distinct bases they use */
    int32_t rank_min, rank_last;
    int64_t interval;        /* step between snapshots if uniform, 0 if not, -1 if < 2 */
    int64_t switch_step;     /* first switch event of the layer (-1: none) */
    double switch_s;
} layer_facts;

typedef struct facts {
    const char *path;
    const oialr_traj_info *info;
    const char *state;
    long long size, disk;    /* bytes: st_size, and allocated (st_blocks) */
    int nl;
    layer_facts *lf;
    /* metrics */
    int64_t msteps_first, msteps_last;
    int have_last;           /* the last values below were read */
    double last_epoch, last_loss, last_train, last_val, last_test;
    /* events */
    int64_t nev_read;
    int64_t per_kind[OIALR_EVENT_NKINDS + 1]; /* the last: unknown kinds */
    int have_switch;
    oialr_traj_event first_switch;
    /* checkpoint */
    int64_t ckpt_step;       /* -1: not recorded */
    int64_t ckpt_epochs;
} facts;

static double last_finite(const double *v, int64_t n) {
    for (int64_t i = n - 1; i >= 0; i--)
        if (isfinite(v[i])) return v[i];
    return NAN;
}

/* The last finite value of a column (NAN if none, or not recorded). */
static double column_last(oialr_traj *t, const char *name, double *buf, int64_t n) {
    int64_t got = 0;
    if (oialr_traj_read_column(t, name, buf, n, &got) != OIALR_OK) return NAN;
    return last_finite(buf, got);
}

static int gather(oialr_traj *t, facts *f) {
    f->info = oialr_traj_get_info(t);
    f->state = ana_writer_state(f->info);
    struct stat st;
    if (stat(f->path, &st) == 0) {
        f->size = (long long)st.st_size;
        f->disk = (long long)st.st_blocks * 512;
    }
    /* events first: the layers table shows each layer's switch */
    int64_t ne = f->info->nevents;
    oialr_traj_event *ev = NULL;
    if (ne > 0 && ne <= INSPECT_MAX_ROWS) {
        ev = malloc((size_t)ne * sizeof *ev);
        if (!ev) return oialr_seterr(OIALR_ERR_NOMEM, "inspect: out of memory for %lld events", (long long)ne);
        int rc = oialr_traj_read_events(t, ev, ne, &f->nev_read);
        if (rc) { free(ev); return rc; }
    }
    for (int64_t i = 0; i < f->nev_read; i++) {
        int k = ev[i].kind >= 0 && ev[i].kind < OIALR_EVENT_NKINDS ? ev[i].kind : OIALR_EVENT_NKINDS;
        f->per_kind[k]++;
        if (ev[i].kind == OIALR_EVENT_SWITCH && (!f->have_switch || ev[i].step < f->first_switch.step)) {
            f->first_switch = ev[i];
            f->have_switch = 1;
        }
    }
    f->nl = oialr_traj_nlayers(t);
    f->lf = calloc((size_t)(f->nl > 0 ? f->nl : 1), sizeof *f->lf);
    if (!f->lf) { free(ev); return oialr_seterr(OIALR_ERR_NOMEM, "inspect: out of memory"); }
    for (int i = 0; i < f->nl; i++) {
        layer_facts *l = &f->lf[i];
        const oialr_traj_layer *L = oialr_traj_layer_at(t, i);
        l->L = L;
        l->n = L->rows < L->cols ? L->rows : L->cols;
        l->first_factored = -1;
        l->switch_step = -1;
        l->switch_s = NAN;
        l->rank_min = INT32_MAX;
        l->interval = L->nsnap < 2 ? -1 : L->steps[1] - L->steps[0];
        int last_basis = -1;
        for (int64_t j = 0; j < L->nsnap; j++) {
            if (j >= 1 && L->steps[j] - L->steps[j - 1] != l->interval) l->interval = 0;
            if (L->ranks[j] < l->rank_min) l->rank_min = L->ranks[j];
            l->rank_last = L->ranks[j];
            if (L->factor_capacity > 0 && L->bases && L->bases[j] >= 0) {
                if (l->factored++ == 0) l->first_factored = L->steps[j];
                if (L->bases[j] != last_basis) l->nbases++;
                last_basis = L->bases[j];
            }
        }
        if (L->nsnap == 0) l->rank_min = 0;
        for (int64_t k = 0; k < f->nev_read; k++)
            if (ev[k].kind == OIALR_EVENT_SWITCH && !strcmp(ev[k].layer, L->name) &&
                (l->switch_step < 0 || ev[k].step < l->switch_step)) {
                l->switch_step = ev[k].step;
                l->switch_s = ev[k].stability;
            }
    }
    free(ev);
    /* metrics: the step range and the latest values */
    f->msteps_first = f->msteps_last = -1;
    int64_t nm = f->info->nmetrics;
    if (nm > 0 && nm <= INSPECT_MAX_ROWS) {
        double *buf = malloc((size_t)nm * sizeof *buf);
        if (!buf) return oialr_seterr(OIALR_ERR_NOMEM, "inspect: out of memory for %lld rows", (long long)nm);
        int64_t got = 0;
        if (oialr_traj_read_column(t, "step", buf, nm, &got) == OIALR_OK && got > 0) {
            f->msteps_first = (int64_t)buf[0];
            f->msteps_last = (int64_t)buf[got - 1];
        }
        f->last_epoch = column_last(t, "epoch", buf, nm);
        f->last_loss = column_last(t, "loss", buf, nm);
        f->last_train = column_last(t, "train_acc", buf, nm);
        f->last_val = column_last(t, "val_acc", buf, nm);
        f->last_test = column_last(t, "test_acc", buf, nm);
        f->have_last = 1;
        free(buf);
    }
    f->ckpt_step = f->ckpt_epochs = -1;
    if (f->info->has_ckpt) {
        if (oialr_traj_ckpt_get_i64(t, "step", &f->ckpt_step)) f->ckpt_step = -1;
        if (oialr_traj_ckpt_get_i64(t, "epochs_done", &f->ckpt_epochs)) f->ckpt_epochs = -1;
    }
    oialr_clearerr();
    return OIALR_OK;
}

// ----------------------------------------------------------------------------
// plain text

/* The largest rank r whose factors take no more room than W, (rows + cols)
 * r + r^2 <= rows cols: the recorder stores a snapshot as factors only then
 * (docs/format.md, "Factored snapshots"). */
static int64_t pays_off(const oialr_traj_layer *L) {
    double a = (double)(L->rows + L->cols), mn = (double)L->rows * (double)L->cols;
    int64_t r = (int64_t)((-a + sqrt(a * a + 4 * mn)) / 2);
    while (r > 0 && (double)(L->rows + L->cols) * (double)r + (double)r * (double)r > mn) r--;
    while ((double)(L->rows + L->cols) * (double)(r + 1) + (double)(r + 1) * (double)(r + 1) <= mn) r++;
    return r;
}

static void human_bytes(char *buf, size_t n, long long b) {
    if (b >= 1000000000LL) snprintf(buf, n, "%.2f GB", (double)b / 1e9);
    else if (b >= 1000000LL) snprintf(buf, n, "%.1f MB", (double)b / 1e6);
    else if (b >= 1000LL) snprintf(buf, n, "%.1f kB", (double)b / 1e3);
    else snprintf(buf, n, "%lld bytes", b);
}

static void shape_str(char *buf, size_t n, const oialr_traj_layer *L) {
    if (L->ndim <= 0) {
        snprintf(buf, n, "%lldx%lld", (long long)L->rows, (long long)L->cols);
        return;
    }
    size_t k = 0;
    buf[0] = '\0';
    for (int d = 0; d < L->ndim && d < 4 && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? "x" : "", (long long)L->shape[d]);
}

static void steps_str(char *buf, size_t n, const layer_facts *l) {
    const oialr_traj_layer *L = l->L;
    if (L->nsnap == 0) snprintf(buf, n, "-");
    else if (l->interval > 0)
        snprintf(buf, n, "%lld..%lld /%lld", (long long)L->steps[0], (long long)L->steps[L->nsnap - 1],
                 (long long)l->interval);
    else snprintf(buf, n, "%lld..%lld", (long long)L->steps[0], (long long)L->steps[L->nsnap - 1]);
}

/* "key=value" pairs wrapped at width, values with newlines (argv) aside. */
static void print_config(oialr_traj *t) {
    char key[256], val[4096];
    int col = 0, n = 0;
    for (int i = 0; oialr_traj_config_key(t, i, key, sizeof key) == OIALR_OK; i++) {
        if (oialr_traj_get_config(t, key, val, sizeof val) != OIALR_OK || !strcmp(key, "argv")) continue;
        int len = (int)(strlen(key) + strlen(val) + 2);
        if (n++ == 0) { printf("config      "); col = 12; }
        else if (col + len > 100) { printf("\n            "); col = 12; }
        else printf(" ");
        printf("%s=%s", key, val[0] ? val : "''");
        col += len;
    }
    if (n) printf("\n");
    else printf("config      (none recorded)\n");
    /* the flags a resume reads back: shown when they are not the command */
    if (oialr_traj_get_config(t, "argv", val, sizeof val) == OIALR_OK) {
        for (char *c = val; *c; c++)
            if (*c == '\n') *c = ' ';
        const char *cmd = oialr_traj_get_info(t)->command_line;
        if (strncmp(cmd, "train ", 6) || strcmp(cmd + 6, val)) printf("argv        oialr train %s\n", val);
    }
    oialr_clearerr();
}

static void print_text(oialr_traj *t, const facts *f) {
    const oialr_traj_info *in = f->info;
    char size[32], disk[32];
    human_bytes(size, sizeof size, f->size);
    human_bytes(disk, sizeof disk, f->disk);
    printf("%s: oialr trajectory, format version %d, %s on disk", f->path, in->format_version, size);
    /* a sparse file (holes the writer left) or extra blocks: say so */
    if (f->disk < f->size * 0.99 || f->disk > f->size * 1.01 + 65536) printf(" (%s allocated)", disk);
    printf("\n");
    printf("created     %s, seed %llu\n", in->created[0] ? in->created : "(unknown)", (unsigned long long)in->seed);
    if (in->command_line[0]) printf("command     %s\n", in->command_line);
    if (!strcmp(f->state, "closed")) {
        printf("writer      closed: the writer closed the file cleanly\n");
    } else if (!strcmp(f->state, "live")) {
        printf("writer      live: a writer process is recording it now; below is what it has flushed so far\n"
               "            (read in SWMR mode, nothing changed; 'oialr watch %s' follows it)\n",
               f->path);
    } else {
        printf("writer      killed: the file was not closed and no writer holds it (killed, or the machine went\n"
               "            down); every snapshot flushed before that survived and is listed below\n");
        if (in->has_ckpt && f->ckpt_step >= 0)
            printf("            continue the run: oialr train --resume %s (from its checkpoint at step %lld)\n",
                   f->path, (long long)f->ckpt_step);
        else if (in->has_ckpt)
            printf("            continue the run: oialr train --resume %s (from its checkpoint)\n", f->path);
        else
            printf("            no checkpoint was committed: a resume has nothing to start from\n");
        printf("            oialr analyze/plot/watch read it as it is; for h5dump, h5ls and other tools, once\n"
               "            no writer runs: h5clear -s --increment=0 %s (plain h5clear -s loses the\n"
               "            snapshots written since; docs/format.md)\n",
               f->path);
    }
    /* layers */
    int64_t snaps = f->nl ? f->lf[0].L->nsnap : 0;
    int same = 1, anyfac = 0;
    for (int i = 0; i < f->nl; i++) {
        if (f->lf[i].L->nsnap != snaps) same = 0;
        if (f->lf[i].L->factor_capacity > 0) anyfac = 1;
    }
    printf("layers      %d weight matri%s", f->nl, f->nl == 1 ? "x" : "ces");
    if (f->nl && same) printf(", %lld snapshot%s each", (long long)snaps, snaps == 1 ? "" : "s");
    printf("%s\n", anyfac ? "; OIALR layers may be stored as factors U S V^T" : "");
    if (f->nl) {
        if (anyfac)
            printf("  %-22s %-8s %-12s %-10s %5s %-18s %-10s stored\n", "layer", "kind", "shape", "matrix", "snaps",
                   "steps /every", "rank");
        else
            printf("  %-22s %-8s %-12s %-10s %5s %-18s rank\n", "layer", "kind", "shape", "matrix", "snaps",
                   "steps /every");
        for (int i = 0; i < f->nl; i++) {
            const layer_facts *l = &f->lf[i];
            const oialr_traj_layer *L = l->L;
            char shape[64], mat[48], steps[64], rank[48];
            shape_str(shape, sizeof shape, L);
            snprintf(mat, sizeof mat, "%lldx%lld", (long long)L->rows, (long long)L->cols);
            steps_str(steps, sizeof steps, l);
            if (L->nsnap == 0) snprintf(rank, sizeof rank, "-");
            else if (l->rank_last == l->n && l->rank_min == l->n) snprintf(rank, sizeof rank, "full");
            else snprintf(rank, sizeof rank, "%d/%lld", (int)l->rank_last, (long long)l->n);
            int more = anyfac || l->switch_step >= 0; /* columns follow the rank: pad it */
            printf("  %-22s %-8s %-12s %-10s %5lld %-18s %-*s", L->name, L->kind, shape, mat, (long long)L->nsnap,
                   steps, more ? 10 : 0, rank);
            if (L->factor_capacity > 0) {
                if (l->factored) printf(" %lld factored from step %lld (%d bas%s)", (long long)l->factored,
                                        (long long)l->first_factored, l->nbases, l->nbases == 1 ? "is" : "es");
                else if (l->switch_step >= 0) printf(" full W (factored once r <= %lld)", (long long)pays_off(L));
                else printf(" full");
            } else if (anyfac) {
                printf(" full (no factors declared)");
            }
            if (l->switch_step >= 0) printf(", switched at step %lld (S %.4f)", (long long)l->switch_step, l->switch_s);
            printf("\n");
        }
    }
    /* metrics */
    printf("metrics     %lld row%s", (long long)in->nmetrics, in->nmetrics == 1 ? "" : "s");
    if (f->msteps_first >= 0) printf(", steps %lld..%lld", (long long)f->msteps_first, (long long)f->msteps_last);
    printf("; %d column%s + step:", in->ncolumns, in->ncolumns == 1 ? "" : "s");
    for (int i = 0; i < in->ncolumns; i++) printf("%s %s", i ? "," : "", oialr_traj_column_name(t, i));
    printf("\n");
    if (f->have_last) {
        printf("            last:");
        const char *names[] = {"epoch", "loss", "train_acc", "val_acc", "test_acc"};
        double v[] = {f->last_epoch, f->last_loss, f->last_train, f->last_val, f->last_test};
        int k = 0;
        for (int i = 0; i < 5; i++)
            if (isfinite(v[i])) printf("%s %s %.4g", k++ ? "," : "", names[i], v[i]);
        printf("%s\n", k ? "" : " (no value recorded)");
    } else if (in->nmetrics > INSPECT_MAX_ROWS) {
        printf("            (more rows than inspect reads: %lld)\n", (long long)INSPECT_MAX_ROWS);
    }
    /* events */
    printf("events      %lld", (long long)in->nevents);
    if (f->nev_read) {
        printf(":");
        int k = 0;
        for (int i = 0; i <= OIALR_EVENT_NKINDS; i++)
            if (f->per_kind[i])
                printf("%s %lld %s", k++ ? "," : "", (long long)f->per_kind[i],
                       i < OIALR_EVENT_NKINDS ? oialr_traj_event_kind_name(i) : "of unknown kind");
        if (f->have_switch)
            printf("; first switch: %s at step %lld (S %.4f)", f->first_switch.layer, (long long)f->first_switch.step,
                   f->first_switch.stability);
    } else if (in->nevents > 0) {
        printf(" (more than inspect reads: %lld)", (long long)INSPECT_MAX_ROWS);
    } else {
        printf(" (no switch, rotation or truncation: a full-rank run)");
    }
    printf("\n");
    /* checkpoint */
    if (!in->has_ckpt) printf("checkpoint  none committed\n");
    else if (f->ckpt_step >= 0) {
        printf("checkpoint  at step %lld", (long long)f->ckpt_step);
        if (f->ckpt_epochs >= 0)
            printf(" (%lld epoch%s done)", (long long)f->ckpt_epochs, f->ckpt_epochs == 1 ? "" : "s");
        printf("; oialr train --resume continues from it\n");
    } else {
        printf("checkpoint  present (no step recorded in it)\n");
    }
    print_config(t);
}

// ----------------------------------------------------------------------------
// JSON

static void json_str(const char *s) {
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') printf("\\%c", *c);
        else if (*c == '\n') printf("\\n");
        else if (*c < 0x20) printf("\\u%04x", *c);
        else putchar(*c);
    }
    putchar('"');
}

static void json_num(double x) {
    if (isfinite(x)) printf("%.9g", x);
    else printf("null");
}

static void print_json(oialr_traj *t, const facts *f) {
    const oialr_traj_info *in = f->info;
    printf("{\"path\": ");
    json_str(f->path);
    printf(", \"format_version\": %d, \"size\": %lld, \"allocated\": %lld, \"created\": ", in->format_version, f->size,
           f->disk);
    json_str(in->created);
    printf(", \"seed\": %llu, \"command_line\": ", (unsigned long long)in->seed);
    json_str(in->command_line);
    printf(", \"writer\": \"%s\",\n \"layers\": [", f->state);
    for (int i = 0; i < f->nl; i++) {
        const layer_facts *l = &f->lf[i];
        const oialr_traj_layer *L = l->L;
        printf("%s\n  {\"name\": ", i ? "," : "");
        json_str(L->name);
        printf(", \"kind\": ");
        json_str(L->kind);
        printf(", \"shape\": [");
        for (int d = 0; d < L->ndim && d < 4; d++) printf("%s%lld", d ? ", " : "", (long long)L->shape[d]);
        printf("], \"rows\": %lld, \"cols\": %lld, \"snapshots\": %lld", (long long)L->rows, (long long)L->cols,
               (long long)L->nsnap);
        if (L->nsnap > 0)
            printf(", \"first_step\": %lld, \"last_step\": %lld, \"rank_last\": %d, \"rank_min\": %d",
                   (long long)L->steps[0], (long long)L->steps[L->nsnap - 1], (int)l->rank_last, (int)l->rank_min);
        printf(", \"factor_capacity\": %lld, \"factored\": %lld, \"bases\": %d, \"switch_step\": %lld}",
               (long long)L->factor_capacity, (long long)l->factored, l->nbases, (long long)l->switch_step);
    }
    printf("],\n \"metrics\": {\"rows\": %lld, \"columns\": [", (long long)in->nmetrics);
    for (int i = 0; i < in->ncolumns; i++) {
        if (i) printf(", ");
        json_str(oialr_traj_column_name(t, i));
    }
    printf("], \"last\": {\"epoch\": ");
    json_num(f->last_epoch);
    printf(", \"loss\": ");
    json_num(f->last_loss);
    printf(", \"train_acc\": ");
    json_num(f->last_train);
    printf(", \"val_acc\": ");
    json_num(f->last_val);
    printf(", \"test_acc\": ");
    json_num(f->last_test);
    printf("}},\n \"events\": {\"count\": %lld", (long long)in->nevents);
    for (int i = 0; i < OIALR_EVENT_NKINDS; i++)
        printf(", \"%s\": %lld", oialr_traj_event_kind_name(i), (long long)f->per_kind[i]);
    if (f->have_switch) {
        printf(", \"first_switch\": {\"layer\": ");
        json_str(f->first_switch.layer);
        printf(", \"step\": %lld, \"stability\": ", (long long)f->first_switch.step);
        json_num(f->first_switch.stability);
        printf("}");
    }
    printf("},\n \"checkpoint\": {\"present\": %s, \"step\": %lld},\n \"config\": {", in->has_ckpt ? "true" : "false",
           (long long)f->ckpt_step);
    char key[256], val[4096];
    for (int i = 0; oialr_traj_config_key(t, i, key, sizeof key) == OIALR_OK; i++) {
        if (oialr_traj_get_config(t, key, val, sizeof val) != OIALR_OK) continue;
        printf("%s", i ? ", " : "");
        json_str(key);
        printf(": ");
        json_str(val);
    }
    oialr_clearerr();
    printf("}}\n");
}

// ----------------------------------------------------------------------------
// files that are not trajectories

void ana_explain_not_trajectory(const char *path) {
    h5u_quiet q = h5u_quiet_begin();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *fmt = NULL, *src = NULL;
    if (f >= 0 && h5u_attr_get_str(f, "format", &fmt) == 1 && !strcmp(fmt, INSPECT_RESULTS_FORMAT)) {
        if (h5u_attr_get_str(f, "source", &src) == 1 && src[0])
            oialr_seterr(OIALR_ERR_FORMAT,
                         "%s: an oialr analysis results file (written by oialr analyze from %s), not a trajectory: "
                         "give %s instead",
                         path, src, src);
        else
            oialr_seterr(OIALR_ERR_FORMAT, "%s: an oialr analysis results file (written by oialr analyze), not a "
                         "trajectory", path);
    }
    free(fmt);
    free(src);
    h5u_close(&f);
    h5u_quiet_end(q);
}

int oialr_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "oialr inspect: unknown option '%s' (try 'oialr inspect --help')\n", a);
            return 2;
        } else if (path) {
            fprintf(stderr, "oialr inspect: one file only (got '%s' and '%s')\n", path, a);
            return 2;
        } else {
            path = a;
        }
    }
    if (!path) {
        fputs(USAGE, stderr);
        return 2;
    }
    /* the reader's "opened in SWMR-read mode" line: the writer line says it */
    oialr_set_log(NULL, NULL, OIALR_LOG_WARN);
    oialr_traj *t = NULL;
    facts f = {.path = path};
    int rc = oialr_traj_open(&t, path, OIALR_TRAJ_READ);
    if (rc == OIALR_ERR_FORMAT) ana_explain_not_trajectory(path);
    if (!rc) rc = gather(t, &f);
    if (rc) {
        fprintf(stderr, "oialr inspect: %s\n", oialr_errmsg()[0] ? oialr_errmsg() : oialr_strerror(rc));
        free(f.lf);
        oialr_traj_close(t);
        return 1;
    }
    if (json) print_json(t, &f);
    else print_text(t, &f);
    free(f.lf);
    oialr_traj_close(t);
    fflush(stdout);
    return ferror(stdout) ? 1 : 0;
}
