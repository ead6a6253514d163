#!/bin/sh
# section_mpi.sh — data-parallel training under mpirun (docs/distributed.md),
# a plug-in of tests/bench/run.sh.
#
#   make bench                               (runs every section)
#   sh tests/bench/section_mpi.sh [BUILD]    (this section alone; needs make all)
#
# The MLP 784-512-512-10, batch 128 (global), SGD momentum 0.9, lr 0.05,
# Fashion-MNIST (synthetic data of the same shape when it is not installed):
#   1. bytes all-reduced per step, at step 1 (full rank) and at the last step
#      after the OIALR switch (--oialr delay:D --oialr-every E), against the
#      trainable fraction at that step          target: ratio <= 1.2x
#      (one run: the bytes do not depend on the machine's load)
#   2. samples/s of 2 processes x 1 BLAS thread against 1 process x 2 BLAS
#      threads, full rank, --max-steps S, REPS pairs interleaved, the order
#      alternating, medians                      target: >= 0.9x
#      (and, for scale, 2 x 1 with OMPI_MCA_mpi_yield_when_idle=1)
# samples/s: the trainer's own count of the epoch's training loop (global
# samples over wall time; evaluation not included), from the epoch line.
# Environment: OIALR_BENCH_REPS (3), OIALR_BENCH_MPI_STEPS (430: the whole
# epoch; at 200 the start-up share of the shorter runs weighed on the ratio),
# OIALR_BENCH_MPI_BYTES_STEPS (430), OIALR_BENCH_MPI_DELAY (100),
# OIALR_BENCH_MPI_EVERY (50). mpirun runs with --allow-run-as-root.
# Output: one markdown table (lines starting with "|"), then the details.
set -u
BUILD=${1:-${OIALR_BENCH_BUILD:-build}}
REPS=${OIALR_BENCH_REPS:-3}
STEPS=${OIALR_BENCH_MPI_STEPS:-430}
BSTEPS=${OIALR_BENCH_MPI_BYTES_STEPS:-430}
DELAY=${OIALR_BENCH_MPI_DELAY:-100}
EVERY=${OIALR_BENCH_MPI_EVERY:-50}
OIALR=$BUILD/oialr
[ -x "$OIALR" ] || { echo "skipped: $OIALR not built"; exit 0; }
command -v mpirun >/dev/null 2>&1 || { echo "skipped: mpirun not installed (apt-get install openmpi-bin)"; exit 0; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/oialr-mpi.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --allow-run-as-root --oversubscribe -np 2"

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
all() { tr '\n' ' ' <"$1" | sed 's/ $//'; }
range() { sort -g "$1" | awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR) printf "%s–%s", lo, hi; else print "-"}'; }
T0=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
DATA=""
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || DATA="--dataset synthetic"
ARGS="train --model mlp:512,512 --epochs 1 --batch 128 --opt sgd --lr 0.05 --momentum 0.9 --seed 0 $DATA"

# --- 1. bytes per step ----------------------------------------------------------------
BYTES_CMD="$MPIRUN $OIALR $ARGS --threads 1 --max-steps $BSTEPS --oialr delay:$DELAY --oialr-every $EVERY"
$BYTES_CMD >"$TMP/b.out" 2>"$TMP/b.err"
brc=$?
M=$(grep '^mpi: ' "$TMP/b.err" | tail -1)
# "... per step: F bytes at step 1, L at step S (P%; trainable T%) ..."
FB=$(echo "$M" | sed -n 's/.*per step: \([0-9]*\) bytes at step.*/\1/p')
LB=$(echo "$M" | sed -n 's/.*bytes at step [0-9]*, \([0-9]*\) at step.*/\1/p')
LS=$(echo "$M" | sed -n 's/.*, [0-9]* at step \([0-9]*\) (.*/\1/p')
TR=$(echo "$M" | sed -n 's/.*trainable \([0-9.]*\)%).*/\1/p')

# --- 2. 2 x 1 thread vs 1 x 2 threads -------------------------------------------------------
: >"$TMP/p2.sps"; : >"$TMP/p1.sps"
sps() { awk '/^epoch 1\/1  loss/ {for (i = 2; i <= NF; i++) if ($i == "samples/s") print $(i-1)}' "$1"; }
one() { # p2|y2|p1
    if [ "$1" = p2 ]; then
        $MPIRUN "$OIALR" $ARGS --threads 1 --max-steps "$STEPS" >"$TMP/$1.out" 2>"$TMP/$1.err"
    elif [ "$1" = y2 ]; then
        OMPI_MCA_mpi_yield_when_idle=1 $MPIRUN "$OIALR" $ARGS --threads 1 --max-steps "$STEPS" >"$TMP/$1.out" 2>"$TMP/$1.err"
    else
        "$OIALR" $ARGS --threads 2 --max-steps "$STEPS" >"$TMP/$1.out" 2>"$TMP/$1.err"
    fi || { echo "oialr train ($1) failed: $(tail -2 "$TMP/$1.err")"; return; }
    sps "$TMP/$1.err" >>"$TMP/$1.sps"
    [ "$1" != p1 ] && grep '^mpi: ' "$TMP/$1.err" | sed -n 's/.*; \([0-9.]*\)s in \([0-9]*\) all-reduces (\([0-9.]*\)% of the run).*/\3/p' >>"$TMP/$1.ar"
}
: >"$TMP/p2.ar"; : >"$TMP/y2.ar"; : >"$TMP/y2.sps"
for i in $(seq 1 "$REPS"); do
    if [ $((i % 2)) = 1 ]; then one p2; one p1; one y2; else one y2; one p1; one p2; fi
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table -------------------------------------------------------------------------
echo "| what | oialr value | reference value | ratio | target | verdict |"
echo "|---|---:|---:|---:|---|---|"
if [ -n "$FB" ] && [ -n "$LB" ] && [ -n "$TR" ]; then
    FR=$(awk -v l="$LB" -v f="$FB" 'BEGIN {printf "%.4f", l / f}')
    R=$(awk -v fr="$FR" -v t="$TR" 'BEGIN {printf "%.3f", fr / (t / 100)}')
    V=$(awk -v r="$R" 'BEGIN {print (r + 0 <= 1.2) ? "met" : "NOT met"}')
    echo "| bytes all-reduced per step after the switch (step $LS) vs at full rank (step 1) | $LB B ($(awk -v x="$FR" 'BEGIN {printf "%.2f%%", 100 * x}')) | $FB B | $R × the trainable fraction ($TR%) | ≤ 1.2 | $V |"
else
    echo "| bytes all-reduced per step, after the switch vs full rank | not measured | | | ≤ 1.2 | not measured |"
fi
if [ -s "$TMP/p2.sps" ] && [ -s "$TMP/p1.sps" ]; then
    A=$(median <"$TMP/p2.sps"); B=$(median <"$TMP/p1.sps")
    R=$(awk -v a="$A" -v b="$B" 'BEGIN {printf "%.2f", a / b}')
    V=$(awk -v r="$R" 'BEGIN {print (r + 0 >= 0.9) ? "met" : "NOT met"}')
    echo "| samples/s, 2 processes × 1 BLAS thread vs 1 process × 2 threads (full rank, $STEPS steps) | $A | $B | $R | ≥ 0.9 | $V |"
else
    echo "| samples/s, 2 processes × 1 thread vs 1 process × 2 threads | not measured | | | ≥ 0.9 | not measured |"
fi
if [ -s "$TMP/y2.sps" ] && [ -s "$TMP/p1.sps" ]; then
    A=$(median <"$TMP/y2.sps"); B=$(median <"$TMP/p1.sps")
    echo "| (for scale) the same, OMPI_MCA_mpi_yield_when_idle=1 (waiting processes yield the core) | $A | $B | $(awk -v a="$A" -v b="$B" 'BEGIN {printf "%.2f", a / b}') | - | - |"
fi

# --- details -------------------------------------------------------------------------------
echo ""
echo "mpi: load average $LOAD0 before, $LOAD1 after; $(($(date +%s) - T0)) s"
echo "bytes: \`$BYTES_CMD\` (exit $brc):"
echo "  $M"
grep '^oialr: ' "$TMP/b.err" | sed 's/^/  /'
echo "scaling: \`$MPIRUN $OIALR $ARGS --threads 1 --max-steps $STEPS\` vs \`$OIALR $ARGS --threads 2 --max-steps $STEPS\`,"
echo "  $REPS pairs interleaved; samples/s 2x1: $(all "$TMP/p2.sps") (range $(range "$TMP/p2.sps")); 1x2: $(all "$TMP/p1.sps") (range $(range "$TMP/p1.sps"))"
echo "  yield_when_idle=1 2x1: $(all "$TMP/y2.sps") (range $(range "$TMP/y2.sps"))"
echo "  share of the 2-process runs spent in MPI_Allreduce (waiting included), %: $(all "$TMP/p2.ar"); with yield: $(all "$TMP/y2.ar")"
exit $brc
