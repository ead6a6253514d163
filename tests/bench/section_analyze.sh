#!/bin/sh
# section_analyze.sh — analyzer benchmark (issues 5 and 16), a plug-in of tests/bench/run.sh.
#
#   make bench                                   (runs every section)
#   sh tests/bench/section_analyze.sh [BUILD]    (this section alone; needs
#                                                 make all build/bench/bench_analyze)
#
# One synthetic trajectory with the layer shapes of the default MLP
# (mlp:512,512: fc1 512x784, fc2 512x512, fc3 10x512), 100 snapshots of a
# random walk, written by BUILD/bench/bench_analyze. Then, interleaved REPS
# times, in the same run:
#   oialr      oialr analyze --threads 2 (all metrics, principal angles too;
#              default precision: the Gram path, float64-accurate, float64
#              gesdd for a snapshot with condition > 1e5 -- none here: fc2,
#              a square random walk, reaches ~4e4)
#   oialr-na   oialr analyze --threads 2 --no-angles (what the peer computes:
#              the like-for-like ratio)
#   oialr-f    oialr analyze --threads 2 --no-angles --float (float32 gesdd
#              everywhere, not exact on fc2)
#   numpy      tests/bench/peer_analyze.py with numpy's default threads
#              (numpy.linalg computes float32 input in float64: dgesdd)
#   (--double alone: run by hand)
# and once: the raw LAPACK times (sgesdd('S') and the values-only sgesdd('N')
# of every snapshot, 1 thread, summed; issue 16's bound is the values-only
# time divided by the cores) and the wall time of the sgesdd('S') on 2
# pthreads; the factorisation paths side by side on the MLP/CNN/ViT shapes
# (bench_analyze paths: thread CPU time, so other load does not enter); and
# the peak RSS at 10 and 200 snapshots of the largest layer alone.
# Takes about 2.5 minutes on a quiet 2-core machine, much longer on a loaded
# one (numpy's threaded LAPACK suffers most): run.sh allows 300 s per
# section, OIALR_BENCH_TIMEOUT raises it.
# Environment: OIALR_BENCH_ANALYZE_REPS (3), OIALR_BENCH_PYTHON (/usr/bin/python3).
# numpy runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (its own
# defaults); oialr runs with the environment as it is.
set -u
BUILD=${1:-${OIALR_BENCH_BUILD:-build}}
REPS=${OIALR_BENCH_ANALYZE_REPS:-3}
PYTHON=${OIALR_BENCH_PYTHON:-/usr/bin/python3}
B=$BUILD/bench/bench_analyze
PEER=tests/bench/peer_analyze.py
[ -x "$B" ] || { echo "skipped: $B not built"; exit 0; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/oialr-ana.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
CORES=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
TRAJ=$TMP/mlp100.h5

"$B" make "$TRAJ" 100 >/dev/null || { echo "bench_analyze make failed"; exit 1; }
"$B" lapack "$TRAJ" 2 >"$TMP/lapack.txt" || { echo "bench_analyze lapack failed"; exit 1; }
LAPACK=$(sed -n 's/^lapack_seconds=\([0-9.]*\).*/\1/p' "$TMP/lapack.txt")
LAPACK2=$(sed -n 's/.*lapack_parallel_seconds=\([0-9.]*\).*/\1/p' "$TMP/lapack.txt")
VALUES=$(sed -n 's/.*lapack_values_seconds=\([0-9.]*\).*/\1/p' "$TMP/lapack.txt")
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

secs() { sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$1" | tail -1; }
best() { sort -g | head -1 | sed 's/^$/nan/'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.2f", a / b}'; }

numpy_ok=1
"$PYTHON" -c 'import numpy, h5py' 2>/dev/null || numpy_ok=0
: >"$TMP/o.s"; : >"$TMP/na.s"; : >"$TMP/f.s"; : >"$TMP/np.s"
run_numpy() {
    if [ $numpy_ok = 1 ]; then
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PYTHON" "$PEER" "$TRAJ" >"$TMP/r.txt" && secs "$TMP/r.txt" >>"$TMP/np.s"
    fi
}
# interleaved, the peer first in every other round (load that comes and
# goes then falls on both sides)
for i in $(seq 1 "$REPS"); do
    [ $((i % 2)) = 0 ] && run_numpy
    "$B" analyze "$TRAJ" --threads 2 -q >"$TMP/r.txt" && secs "$TMP/r.txt" >>"$TMP/o.s"
    "$B" analyze "$TRAJ" --threads 2 -q --no-angles >"$TMP/r.txt" && secs "$TMP/r.txt" >>"$TMP/na.s"
    "$B" analyze "$TRAJ" --threads 2 -q --no-angles --float >"$TMP/r.txt" && secs "$TMP/r.txt" >>"$TMP/f.s"
    [ $((i % 2)) = 1 ] && run_numpy
done
O=$(median <"$TMP/o.s"); NA=$(median <"$TMP/na.s"); F=$(median <"$TMP/f.s"); FB=$(best <"$TMP/f.s"); NP=$(median <"$TMP/np.s")
OB=$(best <"$TMP/o.s"); NAB=$(best <"$TMP/na.s"); NPB=$(best <"$TMP/np.s")
BOUND=$(awk -v l="$LAPACK" -v c="$CORES" 'BEGIN {printf "%.3f", l / c}')
VBOUND=$(awk -v l="$VALUES" -v c="$CORES" 'BEGIN {printf "%.3f", l / c}')
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
# spread: (max - min) / median of one side's runs
spread() { sort -g "$1" | awk '{a[NR]=$1} END {if (NR < 2) print "n/a"; else {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.0f%%", 100 * (a[NR]-a[1]) / m}}'; }
all() { tr '\n' ' ' <"$1" | sed 's/ $//'; }

# memory: the largest layer alone, 10 and 200 snapshots
rm -f "$TRAJ"
"$B" make "$TMP/m10.h5" 10 largest >/dev/null && "$B" make "$TMP/m200.h5" 200 largest >/dev/null
rss() { "$B" analyze "$1" --threads 2 -q --no-angles | sed -n 's/.*peak_rss_kib=\([0-9]*\).*/\1/p'; }
R10=$(rss "$TMP/m10.h5"); R200=$(rss "$TMP/m200.h5")
LAYER=$((512 * 784 * 4))
BUDGET=$(awk -v l=$LAYER 'BEGIN {printf "%.1f", (6 * l + 30 * 1048576) / 1048576}')
MB() { awk -v k="$1" 'BEGIN {if (k == "") print "n/a"; else printf "%.1f", k / 1024}'; }

echo "| analyzer run (MLP shapes, 100 snapshots, 3 layers) | seconds (median of $REPS) | spread | all runs |"
echo "|---|---:|---:|---|"
echo "| oialr analyze --threads 2 (default precision, all metrics incl. angles) | $O | $(spread "$TMP/o.s") | $(all "$TMP/o.s") |"
echo "| oialr analyze --threads 2 --no-angles (default precision) | $NA | $(spread "$TMP/na.s") | $(all "$TMP/na.s") |"
echo "| oialr analyze --threads 2 --no-angles --float (float32 gesdd everywhere) | $F | $(spread "$TMP/f.s") | $(all "$TMP/f.s") |"
echo "| numpy + h5py peer (default threads; float64 SVD) | $NP | $(spread "$TMP/np.s") | $(all "$TMP/np.s") |"
echo "| raw sgesdd('S'), 1 thread, summed (LAPACK time) | $LAPACK | | |"
echo "| raw sgesdd('N') values only, 1 thread, summed | $VALUES | | |"
echo "| raw sgesdd('S') spread over 2 pthreads (wall; what the machine delivers) | $LAPACK2 | | |"
echo ""
echo "| target | measured |"
echo "|---|---|"
echo "| ≥ 4× numpy, default precision, like for like (--no-angles), medians | $(ratio "$NP" "$NA")× |"
echo "| same, best run of each (least disturbed by other load) | $(ratio "$NPB" "$NAB")× |"
echo "| default precision with all metrics (angles too) vs numpy's subset, medians / best | $(ratio "$NP" "$O")× / $(ratio "$NPB" "$OB")× |"
echo "| float32 everywhere (--float --no-angles) vs numpy, medians / best | $(ratio "$NP" "$F")× / $(ratio "$NPB" "$FB")× |"
echo "| default precision (--no-angles) / bound (values-only sgesdd time / $CORES cores = $VBOUND s) | $(ratio "$NA" "$VBOUND")× (best $(ratio "$NAB" "$VBOUND")×) |"
echo "| (all metrics) / same bound | $(ratio "$O" "$VBOUND")× |"
echo "| ≤ 1.3× issue 5's bound (sgesdd('S') time / $CORES cores = $BOUND s), --float --no-angles | $(ratio "$F" "$BOUND")× (best $(ratio "$FB" "$BOUND")×) |"
echo "| (default precision, --no-angles) / issue 5's bound | $(ratio "$NA" "$BOUND")× |"
echo "| --float --no-angles / measured parallel sgesdd wall time | $(ratio "$F" "$LAPACK2")× |"
echo "| peak RSS ≤ 6 × largest layer + 30 MiB = $BUDGET MiB, 10 snapshots | $(MB "$R10") MiB |"
echo "| same, 200 snapshots | $(MB "$R200") MiB |"
echo ""
echo "Load average before / after the interleaved runs: $LOAD0 / $LOAD1."
echo ""
"$B" paths 5
