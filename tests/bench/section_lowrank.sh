#!/bin/sh
# section_lowrank.sh — OIALR low-rank training, a plug-in of tests/bench/run.sh.
#
#   make bench                                   (runs every section)
#   sh tests/bench/section_lowrank.sh [BUILD]    (this section alone; needs
#                                                 make all BUILD/bench/bench_lowrank)
#
# The MLP 784-512-512-10, batch 128, SGD momentum 0.9, 2 BLAS threads,
# Fashion-MNIST (synthetic data of the same shape when it is not installed):
#   1. time per training step, full rank vs fc1 and fc2 switched to U Σ Vᵀ
#      (the classifier stays full rank), at ranks 80/80 (2.83% trainable,
#      the main row), 64/64 and 148/232             target <= 0.6x full rank
#   2. each low-rank layer's forward + backward against its FLOP count at the
#      sgemm rate (OIALR_BENCH_GEMM_PEAK from run.sh when set, else the dense
#      layer's own product measured alongside)  target <= 1.3x the prediction
#   3. the controller's stability checks every half epoch (215 steps), with a
#      policy that never switches, as a share of training      target <= 5%
#   4. peak RSS of `oialr train --max-steps N` with `--oialr delay:100
#      --oialr-every 100` against the same run at full rank   target <= 1.3x
# 1-3: BUILD/bench/bench_lowrank all (tests/bench/bench_lowrank.c: rounds
# interleaved inside one process); 4: REPS pairs of processes interleaved,
# the order alternating, /usr/bin/time -f %M, medians.
# Every comparison is a ratio of two things measured side by side: the
# machine is shared and its speed drifts 2x.
# Environment: OIALR_BENCH_REPS (3), OIALR_BENCH_GEMM_PEAK, the
# OIALR_BENCH_LR_* knobs of bench_lowrank.c, OIALR_BENCH_LR_RSS_STEPS (300).
# Output: one markdown table (lines starting with "|"), then the details.
set -u
BUILD=${1:-${OIALR_BENCH_BUILD:-build}}
REPS=${OIALR_BENCH_REPS:-3}
STEPS=${OIALR_BENCH_LR_RSS_STEPS:-300}
B=$BUILD/bench/bench_lowrank
OIALR=$BUILD/oialr
[ -x "$B" ] || { echo "skipped: $B not built"; exit 0; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/oialr-lowrank.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
all() { tr '\n' ' ' <"$1" | sed 's/ $//'; }
T0=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1-3 -------------------------------------------------------------------------
OIALR_BENCH_REPS=$REPS "$B" all >"$TMP/b.out" 2>"$TMP/b.err"
brc=$?

# --- 4. peak RSS -------------------------------------------------------------------
ARGS="train --model mlp:512,512 --epochs 1 --batch 128 --opt sgd --lr 0.05 --momentum 0.9 --seed 0 --threads 2 --max-steps $STEPS"
LR="--oialr delay:100 --oialr-every 100"
: >"$TMP/full.rss"; : >"$TMP/lr.rss"; : >"$TMP/hook.s"
rss_ok=1
if [ ! -x "$OIALR" ]; then
    rss_ok=0; why="$OIALR not built"
elif ! { [ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1; }; then
    rss_ok=0; why="/usr/bin/time missing (apt-get install time)"
fi
one() { # full|lr
    extra=""
    [ "$1" = lr ] && extra=$LR
    /usr/bin/time -f %M -o "$TMP/rss.tmp" "$OIALR" $ARGS $extra >"$TMP/$1.out" 2>"$TMP/$1.err" ||
        { echo "oialr train ($1) failed: $(tail -2 "$TMP/$1.err")"; rss_ok=0; return; }
    tail -1 "$TMP/rss.tmp" >>"$TMP/$1.rss"
    [ "$1" = lr ] && sed -n 's/.*(\([0-9.]*\)s in checks and switches).*/\1/p' "$TMP/lr.err" >>"$TMP/hook.s"
}
if [ $rss_ok = 1 ]; then
    for i in $(seq 1 "$REPS"); do
        if [ $((i % 2)) = 1 ]; then one full; one lr; else one lr; one full; fi
        [ $rss_ok = 1 ] || break
    done
fi
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table -----------------------------------------------------------------------
echo "| what | oialr value | reference value | ratio | target | verdict |"
echo "|---|---:|---:|---:|---|---|"
grep '^|' "$TMP/b.out"
if [ $rss_ok = 1 ] && [ -s "$TMP/lr.rss" ]; then
    F=$(median <"$TMP/full.rss"); L=$(median <"$TMP/lr.rss")
    R=$(awk -v a="$L" -v b="$F" 'BEGIN {printf "%.2f", a / b}')
    V=$(awk -v r="$R" 'BEGIN {print (r + 0 <= 1.3) ? "met" : "NOT met"}')
    mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
    echo "| peak RSS, \`oialr train --max-steps $STEPS\` with \`$LR\` vs full rank | $(mib "$L") | $(mib "$F") | $R | ≤ 1.3 | $V |"
else
    echo "| peak RSS, OIALR run vs full rank | not measured | | | ≤ 1.3 | not measured |"
fi

# --- details -----------------------------------------------------------------------
echo ""
echo "lowrank: load average $LOAD0 before, $LOAD1 after; $(($(date +%s) - T0)) s"
grep -v '^|' "$TMP/b.out"
[ $brc = 0 ] || { echo "bench_lowrank failed (exit $brc):"; tail -5 "$TMP/b.err"; }
if [ $rss_ok = 1 ] && [ -s "$TMP/lr.rss" ]; then
    echo "rss: \`$OIALR $ARGS [$LR]\`, $REPS pairs interleaved, /usr/bin/time -f %M (KiB): full rank $(all "$TMP/full.rss"); OIALR $(all "$TMP/lr.rss")"
    echo "rss: the OIALR run's own report (last run):"
    grep '^oialr: ' "$TMP/lr.err" | sed 's/^/  /'
    echo "  (time in checks and switches per run, s: $(all "$TMP/hook.s"))"
else
    echo "rss: not measured: ${why:-see above}"
fi
exit $brc
