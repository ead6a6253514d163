#!/bin/sh
# section_analyze.sh — analyzer benchmark (issue 5), a plug-in of tests/bench/run.sh.
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
#              default precision: float32, float64 for ill-conditioned
#              layers -- here fc2, a square random walk with condition ~4e4)
#   oialr-na   oialr analyze --threads 2 --no-angles (what the peer computes)
#   oialr-f    oialr analyze --threads 2 --no-angles --float (float32 everywhere)
#   numpy      tests/bench/peer_analyze.py with numpy's default threads
#              (numpy.linalg computes float32 input in float64: dgesdd)
#   (--double alone: run by hand; numpy's own precision, measured 1.8x faster than numpy)
# and once: the raw LAPACK time (sgesdd of every snapshot, 1 thread; the
# bound is that divided by the cores) and the wall time of the same SVDs on 2
# pthreads (on a shared machine the second core often does not deliver a 2x),
# and the peak RSS at 10 and 200 snapshots of the largest layer alone.
# Takes about 2.5 minutes on a quiet 2-core machine, 4 on a loaded one
# (run.sh allows 300 s per section: OIALR_BENCH_TIMEOUT raises it).
# Environment: OIALR_BENCH_ANALYZE_REPS (2), OIALR_BENCH_PYTHON (/usr/bin/python3).
# numpy runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (its own
# defaults); oialr runs with the environment as it is.
set -u
BUILD=${1:-${OIALR_BENCH_BUILD:-build}}
REPS=${OIALR_BENCH_ANALYZE_REPS:-2}   # 2 keeps the section under run.sh's 300 s on a loaded machine
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

secs() { sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$1" | tail -1; }
best() { sort -g | head -1 | sed 's/^$/nan/'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.2f", a / b}'; }

numpy_ok=1
"$PYTHON" -c 'import numpy, h5py' 2>/dev/null || numpy_ok=0
: >"$TMP/o.s"; : >"$TMP/na.s"; : >"$TMP/f.s"; : >"$TMP/np.s"
for i in $(seq 1 "$REPS"); do
    "$B" analyze "$TRAJ" --threads 2 -q >"$TMP/r.txt" && secs "$TMP/r.txt" >>"$TMP/o.s"
    "$B" analyze "$TRAJ" --threads 2 -q --no-angles >"$TMP/r.txt" && secs "$TMP/r.txt" >>"$TMP/na.s"
    "$B" analyze "$TRAJ" --threads 2 -q --no-angles --float >"$TMP/r.txt" && secs "$TMP/r.txt" >>"$TMP/f.s"
    if [ $numpy_ok = 1 ]; then
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PYTHON" "$PEER" "$TRAJ" >"$TMP/r.txt" && secs "$TMP/r.txt" >>"$TMP/np.s"
    fi
done
O=$(median <"$TMP/o.s"); NA=$(median <"$TMP/na.s"); F=$(median <"$TMP/f.s"); FB=$(best <"$TMP/f.s"); NP=$(median <"$TMP/np.s")
OB=$(best <"$TMP/o.s"); NAB=$(best <"$TMP/na.s"); NPB=$(best <"$TMP/np.s")
BOUND=$(awk -v l="$LAPACK" -v c="$CORES" 'BEGIN {printf "%.3f", l / c}')
all() { tr '\n' ' ' <"$1" | sed 's/ $//'; }

# memory: the largest layer alone, 10 and 200 snapshots
rm -f "$TRAJ"
"$B" make "$TMP/m10.h5" 10 largest >/dev/null && "$B" make "$TMP/m200.h5" 200 largest >/dev/null
rss() { "$B" analyze "$1" --threads 2 -q --no-angles | sed -n 's/.*peak_rss_kib=\([0-9]*\).*/\1/p'; }
R10=$(rss "$TMP/m10.h5"); R200=$(rss "$TMP/m200.h5")
LAYER=$((512 * 784 * 4))
BUDGET=$(awk -v l=$LAYER 'BEGIN {printf "%.1f", (6 * l + 30 * 1048576) / 1048576}')
MB() { awk -v k="$1" 'BEGIN {if (k == "") print "n/a"; else printf "%.1f", k / 1024}'; }

echo "| analyzer run (MLP shapes, 100 snapshots, 3 layers) | seconds (median of $REPS) | all runs |"
echo "|---|---:|---|"
echo "| oialr analyze --threads 2 (all metrics incl. angles) | $O | $(all "$TMP/o.s") |"
echo "| oialr analyze --threads 2 --no-angles | $NA | $(all "$TMP/na.s") |"
echo "| oialr analyze --threads 2 --no-angles --float (float32 everywhere) | $F | $(all "$TMP/f.s") |"
echo "| numpy + h5py peer (default threads; float64 SVD) | $NP | $(all "$TMP/np.s") |"
echo "| raw sgesdd, 1 thread, summed (LAPACK time) | $LAPACK | |"
echo "| raw sgesdd spread over 2 pthreads (wall; what the machine delivers) | $LAPACK2 | |"
echo ""
echo "| target | measured |"
echo "|---|---|"
echo "| ≥ 3× faster than numpy (like for like: --no-angles), medians | $(ratio "$NP" "$NA")× |"
echo "| same, best run of each (least disturbed by other load) | $(ratio "$NPB" "$NAB")× |"
echo "| float32 everywhere (--float --no-angles) vs numpy, medians / best | $(ratio "$NP" "$F")× / $(ratio "$NPB" "$FB")× |"
echo "| (all metrics incl. angles vs numpy's subset) | $(ratio "$NP" "$O")× |"
echo "| ≤ 1.3× the bound (LAPACK sgesdd time / $CORES cores = $BOUND s), --float --no-angles | $(ratio "$F" "$BOUND")× (best $(ratio "$FB" "$BOUND")×) |"
echo "| (default precision, --no-angles) / bound | $(ratio "$NA" "$BOUND")× |"
echo "| (all metrics) / bound | $(ratio "$O" "$BOUND")× |"

echo "| --float --no-angles / measured parallel sgesdd wall time | $(ratio "$F" "$LAPACK2")× |"
echo "| peak RSS ≤ 6 × largest layer + 30 MiB = $BUDGET MiB, 10 snapshots | $(MB "$R10") MiB |"
echo "| same, 200 snapshots | $(MB "$R200") MiB |"
