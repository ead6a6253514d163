#!/bin/sh
# run.sh — `make bench`: oialr side by side with its peers, in one run, as ratios.
#
#   sh tests/bench/run.sh [BUILD]        (make bench calls it with BUILD=build)
#
# The machine is small, shared and noisy, so every comparison is run REPS times
# interleaved (oialr, peer, oialr, peer, ...) and reported as the median of each
# side and the ratio of the medians. Prints a table and writes docs-ready
# markdown to BUILD/bench/report.md (paste it into docs/bench.md).
#
# Sections:
#   1. sgemm ceiling              BUILD/bench/bench_gemm
#   2. MLP training vs PyTorch    oialr train  vs  tests/bench/peer_mlp.py
#   3+ plug-ins, each run only if present (a missing one is skipped with a note):
#      models    tests/bench/section_models.sh (CNN/ViT training vs PyTorch)
#      kernels   tests/bench/section_kernels.sh, else BUILD/bench/bench_kernels*
#      analyze   tests/bench/section_analyze.sh, else BUILD/bench/bench_analyze*
#                (a section script is the place to run peer_analyze.py)
#      record    tests/bench/section_record.sh,  else BUILD/bench/bench_record*
#      mpi       tests/bench/section_mpi.sh (mpirun -np 2: bytes per step, 2x1 vs 1x2 threads)
#   A section script gets BUILD as $1, a binary no arguments; both have
#   OIALR_BENCH_BUILD, OIALR_BENCH_REPS, OIALR_BENCH_PYTHON and OIALR_BENCH_GEMM_PEAK (sgemm
#   GFLOP/s, 2 threads, measured in section 1) in the environment. Output lines
#   starting with "|" go to report.md as markdown, all others in a text block.
#
# Environment: OIALR_BENCH_REPS (3), PYTHON (/usr/bin/python3, Debian's own),
# OIALR_BENCH_TIMEOUT (seconds per peer run, 150; a plug-in gets its own limit,
# see the plugin calls at the end, scaled by OIALR_BENCH_TIMEOUT/150). OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE are left as they are, for oialr and the peers alike, and
# recorded in the report.
set -u
BUILD=${1:-build}
REPS=${OIALR_BENCH_REPS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}
TIMEOUT=${OIALR_BENCH_TIMEOUT:-150}
OUT=$BUILD/bench
REPORT=$OUT/report.md
TMP=$(mktemp -d "${TMPDIR:-/tmp}/oialr-bench.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir -p "$OUT"
export OIALR_BENCH_BUILD=$BUILD OIALR_BENCH_REPS=$REPS OIALR_BENCH_PYTHON=$PYTHON

# The peers: python3-torch and /usr/bin/time (package time) are installed by
# deps.sh when possible; without them the peer or the RSS column is skipped.
OIALR_DEPS_EXTRA="${OIALR_DEPS_EXTRA:-} python3-torch time" sh tools/deps.sh ||
    echo "bench: some peers are missing (see above); their columns are skipped"

T0=$(date +%s)
say() { printf '%s\n' "$*"; }
md() { printf '%s\n' "$*" >>"$REPORT"; }
median() { sort -g | awk '{v[NR]=$1} END {if (!NR) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b+0 > 0 && a != "nan") printf "%.2f", a/b; else print "n/a"}'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {if (v == "n/a" || v == "nan") print "not measured";
    else if ((op == ">=" && v+0 >= t+0) || (op == "<=" && v+0 <= t+0)) print "met"; else print "NOT met"}'; }
have_time() { [ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1; }
have_torch() { [ -x "$PYTHON" ] && "$PYTHON" -c 'import torch' >/dev/null 2>&1; }

# --- header -------------------------------------------------------------------
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
blasver=$(dpkg-query -W -f '${Version}' libopenblas0-pthread 2>/dev/null || echo "?")
torchver=$(have_torch && "$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "absent")
: >"$REPORT"
md "<!-- written by tests/bench/run.sh; paste into docs/bench.md -->"
md "Measured by \`make bench\` (tests/bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'), $(hostname)."
md ""
md "- machine: ${cpu:-?}, $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
md "- oialr $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($(git status --porcelain 2>/dev/null | grep -qv '^??' && echo 'with local changes' || echo 'clean')), $(cc --version | head -1)"
md "- OpenBLAS (libopenblas0-pthread) $blasver; PyTorch $torchver ($PYTHON); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset} (the same for oialr and the peers)"
md "- every comparison: $REPS runs interleaved, median of each side, ratio of the medians"
md ""
say "== oialr bench: $REPS interleaved runs per comparison; report: $REPORT"

# --- 1. sgemm ceiling -------------------------------------------------------------
say ""
say "== 1. OpenBLAS sgemm ceiling (GFLOP/s, best of 3 blocks)"
md "## sgemm ceiling"
md ""
PEAK2=nan
STEP2=nan
if [ -x "$OUT/bench_gemm" ]; then
    "$OUT/bench_gemm" --threads 1,2 >"$TMP/gemm.txt" || say "bench_gemm failed"
    g() { awk -v t="$1" -v c="$2" '$2 == "threads="t && $3 == "case="c {sub("gflops=", "", $8); print $8}' "$TMP/gemm.txt"; }
    md "Shapes of one training step of the MLP at batch 128 (op as row-major cblas_sgemm transposes), the"
    md "8 of them back to back (mlp-step), and a large square product (the machine's peak)."
    md ""
    md "| case | op | M×N×K | 1 thread | 2 threads | 2 / 1 |"
    md "|---|---|---|---:|---:|---:|"
    printf '%-11s %-3s %-15s %9s %9s %6s\n' case op MxNxK 1thr 2thr 2/1
    for c in $(awk '$2 == "threads=1" {sub("case=", "", $3); print $3}' "$TMP/gemm.txt"); do
        line=$(awk -v c="$c" '$3 == "case="c {print; exit}' "$TMP/gemm.txt")
        op=$(echo "$line" | sed 's/.*op=\([^ ]*\).*/\1/')
        mnk=$(echo "$line" | sed 's/.*M=\([0-9]*\) N=\([0-9]*\) K=\([0-9]*\).*/\1×\2×\3/')
        [ "$op" = "--" ] && mnk="(8 GEMMs)"
        a=$(g 1 "$c")
        b=$(g 2 "$c")
        printf '%-11s %-3s %-15s %9s %9s %6s\n' "$c" "$op" "$mnk" "$a" "$b" "$(ratio "$b" "$a")"
        md "| $c | $op | $mnk | $a | $b | $(ratio "$b" "$a") |"
    done
    PEAK2=$(awk '$2 == "threads=2" && $3 ~ /^case=square/ {sub("gflops=", "", $8); print $8}' "$TMP/gemm.txt")
    STEP2=$(g 2 mlp-step)
    PEAK1=$(awk '$2 == "threads=1" && $3 ~ /^case=square/ {sub("gflops=", "", $8); print $8}' "$TMP/gemm.txt")
else
    say "skipped: $OUT/bench_gemm not built"
    md "skipped: bench_gemm not built"
    PEAK1=nan
fi
export OIALR_BENCH_GEMM_PEAK=$PEAK2
md ""

# --- 2. MLP training vs PyTorch ---------------------------------------------------
say ""
say "== 2. MLP 784-512-512-10, Fashion-MNIST, 1 epoch (55000 samples), batch 128, SGD momentum 0.9, lr 0.05"
md "## MLP training: oialr vs PyTorch"
md ""
OIALR=$BUILD/oialr
TRAIN_ARGS="train --model mlp:512,512 --epochs 1 --batch 128 --opt sgd --lr 0.05 --momentum 0.9 --seed 0"
PEER="tests/bench/peer_mlp.py"
torch_ok=0
have_torch && torch_ok=1
[ $torch_ok = 1 ] || say "PyTorch is not importable by $PYTHON (apt-get install python3-torch): peer columns skipped"
time_ok=0
have_time && time_ok=1

# run_oialr THREADS TAG: appends samples/s to $TMP/TAG.sps, peak RSS (KiB) to $TMP/TAG.rss
run_oialr() {
    if [ $time_ok = 1 ]; then
        /usr/bin/time -f %M -o "$TMP/rss.tmp" "$OIALR" $TRAIN_ARGS --threads "$1" >"$TMP/o.out" 2>"$TMP/o.err"
        rc=$?
        tail -1 "$TMP/rss.tmp" >>"$TMP/$2.rss"
    else
        "$OIALR" $TRAIN_ARGS --threads "$1" >"$TMP/o.out" 2>"$TMP/o.err"
        rc=$?
    fi
    [ $rc = 0 ] || { say "oialr train failed:"; tail -3 "$TMP/o.err"; return; }
    awk '/^epoch 1\/1  loss/ {for (i = 2; i <= NF; i++) if ($i == "samples/s") print $(i-1)}' "$TMP/o.err" >>"$TMP/$2.sps"
    sed -n 's/.*parameters: \([0-9]*\).*/\1/p' "$TMP/o.err" | head -1 >"$TMP/params"
    sed -n 's/.*forward MFLOP\/sample: \([0-9.]*\).*/\1/p' "$TMP/o.err" | head -1 >"$TMP/mflop"
    grep '^final:' "$TMP/o.out" >"$TMP/$2.final"
}
# run_peer TAG THREADS [ENV...]: appends samples/s to $TMP/TAG.sps
run_peer() {
    tag=$1
    th=$2
    shift 2
    [ $torch_ok = 1 ] || return
    # PyTorch's default 2-thread set-up oversubscribes 2 cores (OpenMP + OpenBLAS threads) and can
    # take minutes on a loaded machine: bounded, so that make bench stays under ~15 minutes
    timeout "$TIMEOUT" env "$@" "$PYTHON" "$PEER" --threads "$th" >"$TMP/p.out" 2>"$TMP/p.err" ||
        { say " [peer_mlp failed or timed out after ${TIMEOUT}s]"; tail -3 "$TMP/p.err"; return; }
    sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p' "$TMP/p.out" >>"$TMP/$tag.sps"
}
: >"$TMP/o2.sps"; : >"$TMP/o1.sps"; : >"$TMP/td.sps"; : >"$TMP/tt.sps"; : >"$TMP/t1.sps"
: >"$TMP/sq.rep"; : >"$TMP/step.rep"
# the ceiling again next to each oialr run: the load of a shared machine drifts
ceil_rep() {
    [ -x "$OUT/bench_gemm" ] || return
    for c in square mlp-step; do
        "$OUT/bench_gemm" --threads 2 --case $c --blocks 2 --min-time 0.15 | sed -n 's/.*gflops=//p'
    done | tr '\n' ' ' | { read -r sq st; echo "$sq" >>"$TMP/sq.rep"; echo "$st" >>"$TMP/step.rep"; }
}
for i in $(seq 1 "$REPS"); do
    printf '  run %s/%s: sgemm t2' "$i" "$REPS"
    ceil_rep
    printf ', oialr t2'
    run_oialr 2 o2
    printf ', torch t2'
    run_peer td 2
    printf ', oialr t1'
    run_oialr 1 o1
    printf ', torch t2 (OpenBLAS 1)'
    run_peer tt 2 OPENBLAS_NUM_THREADS=1
    printf ', torch t1\n'
    run_peer t1 1
done
O2=$(median <"$TMP/o2.sps"); O1=$(median <"$TMP/o1.sps")
TD=$(median <"$TMP/td.sps"); TT=$(median <"$TMP/tt.sps"); T1=$(median <"$TMP/t1.sps")
MFLOP=$(cat "$TMP/mflop" 2>/dev/null); [ -n "$MFLOP" ] || MFLOP=1.34
PARAMS=$(cat "$TMP/params" 2>/dev/null); [ -n "$PARAMS" ] || PARAMS=669706
gf() { awk -v s="$1" -v f="$MFLOP" 'BEGIN {if (s == "nan") print "nan"; else printf "%.1f", 3 * f * 1e6 * s * 1e-9}'; }
G2=$(gf "$O2"); G1=$(gf "$O1")
all() { tr '\n' ' ' <"$1" | sed 's/ $//'; }

printf '%-44s %10s %8s %s\n' "run" "samples/s" "GFLOP/s" "runs"
row() { printf '%-44s %10s %8s %s\n' "$1" "$2" "$(gf "$2")" "$3"; md "| $1 | $2 | $(gf "$2") | $3 |"; }
md "Training GFLOP/s = 3 × $MFLOP MFLOP/sample (forward, as \`oialr train\` prints it) × samples/s."
md "(The issue's convention. The products actually run are fewer: the first layer has no input gradient, so"
md "one step is 3F − 2·784·512 per sample = 3.20 MFLOP for this MLP, 0.80 of 3F; fractions of the ceiling"
md "computed with the exact count are 0.80 × those below.)"
md "oialr: \`$OIALR $TRAIN_ARGS --threads T\`, samples/s from its epoch line (the training loop of the"
md "epoch; evaluation not included). PyTorch: \`$PYTHON $PEER --threads T\` (same model, init, optimizer,"
md "batch; data pre-normalised as float32 before timing; the same loop is timed)."
md ""
md "| run | samples/s (median) | GFLOP/s | all runs |"
md "|---|---:|---:|---|"
row "oialr, --threads 2" "$O2" "$(all "$TMP/o2.sps")"
row "oialr, --threads 1" "$O1" "$(all "$TMP/o1.sps")"
if [ $torch_ok = 1 ]; then
    row "PyTorch, set_num_threads(2) (default BLAS)" "$TD" "$(all "$TMP/td.sps")"
    row "PyTorch, set_num_threads(2), OPENBLAS_NUM_THREADS=1" "$TT" "$(all "$TMP/tt.sps")"
    row "PyTorch, set_num_threads(1)" "$T1" "$(all "$TMP/t1.sps")"
fi
md ""
say "  $(cat "$TMP/o2.final" 2>/dev/null)"

# --- targets (issue 2) ---
RD=$(ratio "$O2" "$TD"); RT=$(ratio "$O2" "$TT")
best_peer=$(printf '%s\n%s\n%s\n' "$TD" "$TT" "$T1" | grep -v nan | sort -g | tail -1)
RB=$(ratio "$O2" "${best_peer:-nan}")
# fraction of the ceiling: per run (training GFLOP/s over the sgemm measured just
# before it), then the median; the section-1 ceiling is for scale
perrun() { paste -d' ' "$TMP/o2.sps" "$1" | awk -v f="$MFLOP" 'NF == 2 && $2 > 0 {print 3 * f * 1e-3 * $1 / $2}' | median | awk '{if ($1 == "nan") print "n/a"; else printf "%.2f", $1}'; }
FP=$(perrun "$TMP/sq.rep"); FS=$(perrun "$TMP/step.rep")
SQM=$(median <"$TMP/sq.rep"); STM=$(median <"$TMP/step.rep")
R21=$(ratio "$O2" "$O1")
RSS=nan
[ -s "$TMP/o2.rss" ] && RSS=$(median <"$TMP/o2.rss")
# dataset: uint8 images + labels of train (60000) and test (10000) held in memory
DSB=$((70000 * 785))
BUDGET=$(awk -v d=$DSB -v p="$PARAMS" 'BEGIN {printf "%.1f", (1.5 * (d + 4 * 4 * p) + 50 * 1048576) / 1048576}')
RSSM=$(awk -v r="$RSS" 'BEGIN {if (r == "nan") print "n/a"; else printf "%.1f", r / 1024}')

say ""
say "== targets (issue 2)"
md "### Targets (issue 2)"
md ""
md "| target | measured | |"
md "|---|---|---|"
target() { printf '  %-58s %-28s %s\n' "$1" "$2" "$3"; md "| $1 | $2 | $3 |"; }
target "samples/s ≥ 2.5× PyTorch (2 threads, default BLAS threads)" "$RD×" "$(verdict "$RD" 2.5 ">=")"
target "samples/s ≥ 2.5× PyTorch (2 threads, OpenBLAS 1 thread)" "$RT×" "$(verdict "$RT" 2.5 ">=")"
target "samples/s ≥ 2.5× the fastest PyTorch configuration" "$RB×" "$(verdict "$RB" 2.5 ">=")"
target "training ≥ 50% of the sgemm peak (square, 2 threads)" "$FP (median $G2 / $SQM GFLOP/s)" "$(verdict "$FP" 0.5 ">=")"
target "(for scale) fraction of the mlp-step sgemm ceiling" "$FS (median $G2 / $STM GFLOP/s)" "-"
target "peak RSS ≤ 1.5 × (dataset + 4 × params) + 50 MiB" "$RSSM MiB (budget $BUDGET MiB)" "$(verdict "$RSSM" "$BUDGET" "<=")"
target "(threading) oialr 2 threads / 1 thread" "$R21×" "-"
target "(threading) sgemm peak 2 threads / 1 thread" "$(ratio "$PEAK2" "$PEAK1")×" "-"
md ""
md "Dataset bytes: 70000 × 785 (uint8 images + labels, train + test); parameters: $PARAMS × 4 bytes."
md "Fraction of the ceiling: per interleaved run, training GFLOP/s over the sgemm GFLOP/s measured just before"
md "it (2 threads; runs: square $(all "$TMP/sq.rep"), mlp-step $(all "$TMP/step.rep")), then the median."
md "Peak RSS: \`/usr/bin/time -f %M\`, median of the 2-thread oialr runs (all: $(all "$TMP/o2.rss" 2>/dev/null) KiB)."
md ""

# --- 3+. plug-ins -----------------------------------------------------------------------
# plugin NAME TITLE LIMIT: a section script, else every matching binary, else a
# note; each command is stopped after LIMIT seconds (scaled by OIALR_BENCH_TIMEOUT)
plugin() {
    name=$1
    title=$2
    limit=$(( $3 * TIMEOUT / 150 ))
    say ""
    say "== $title"
    md "## $title"
    md ""
    cmds=""
    if [ -f "tests/bench/section_$name.sh" ]; then
        cmds="sh tests/bench/section_$name.sh"
    else
        for b in "$OUT"/bench_"$name"*; do
            [ -x "$b" ] && cmds="$cmds $b"
        done
    fi
    if [ -z "$cmds" ]; then
        say "skipped: no tests/bench/section_$name.sh and no $OUT/bench_$name* (not written yet)"
        md "skipped: not present in this tree."
        md ""
        return
    fi
    if [ "$cmds" = "sh tests/bench/section_$name.sh" ]; then set -- "$cmds $BUILD"; else set -- $cmds; fi
    for c in "$@"; do
        say "-- $c"
        timeout "$limit" $c >"$TMP/plug.out" 2>"$TMP/plug.err"
        rc=$?
        cat "$TMP/plug.out"
        [ $rc = 0 ] || { say "   (exit $rc$( [ $rc = 124 ] && echo ", timed out after ${limit}s"))"; tail -5 "$TMP/plug.err"; }
        grep '^|' "$TMP/plug.out" >>"$REPORT"
        if grep -qv '^|' "$TMP/plug.out"; then
            md ""
            md '```text'
            md "\$ $c"
            grep -v '^|' "$TMP/plug.out" >>"$REPORT"
            md '```'
        fi
        [ $rc = 0 ] || md "exit status $rc"
        md ""
    done
}
plugin models "CNN and ViT training vs PyTorch (issue 3)" 900
plugin kernels "CNN / ViT kernels (issue 3)" 150
plugin analyze "Analyzer vs h5py + numpy (issue 5)" 450
plugin record "Recording overhead (issue 4)" 450
plugin lowrank "OIALR low-rank training" 300
plugin powerlaw "Power-law fit (alpha): pruned KS scan vs the naive scan (issue 13)" 60
plugin mpi "Data-parallel training under MPI (issue 15)" 600

say ""
say "== done in $(($(date +%s) - T0)) s; markdown report: $REPORT"
md "Total time of the benchmark run: $(($(date +%s) - T0)) s."
