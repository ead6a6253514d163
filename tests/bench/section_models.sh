#!/bin/sh
# section_models.sh — CNN and ViT training speed: oialr against the same architecture in
# PyTorch (tests/bench/peer_models.py), in one run, as ratios (issue 3).
#
#   sh tests/bench/section_models.sh [BUILD]            (BUILD defaults to build)
#
# For each model, REPS rounds of: sgemm ceiling (BUILD/bench/bench_gemm, square,
# THREADS threads), oialr, PyTorch — interleaved, because the machine is shared
# and its load drifts. Both sides train STEPS steps of batch 128 on Fashion-MNIST
# with THREADS threads:
#   oialr: BUILD/oialr train --model cnn|vit --epochs 1 --max-steps STEPS --threads T
#          (vit with --opt adamw); samples/s from its epoch line, which covers the
#          training steps only (the clock stops at the last step; the evaluation
#          that follows is not in it) and includes the first, cold step.
#   torch: PYTHON tests/bench/peer_models.py --model cnn|vit --steps STEPS --threads T
#          (5 untimed warm-up steps first), twice: as it comes, and with
#          OPENBLAS_NUM_THREADS=1 (Debian's torch calls OpenBLAS, whose threads
#          otherwise compete with torch's own OpenMP threads on a small machine;
#          on 2 busy cores this variant is often several times faster).
#          The ratio is given against each and against the faster median.
# Prints the medians, the ratios oialr / PyTorch, training GFLOP/s
# (3 x forward MFLOP/sample as oialr prints it x samples/s) and its fraction of
# the sgemm ceiling (per round: over the ceiling measured just before; then the
# median). Lines starting with "|" are markdown (run.sh copies them to its report).
#
# Environment: OIALR_BENCH_REPS (3), OIALR_BENCH_STEPS (60), OIALR_BENCH_THREADS (2),
# PYTHON or OIALR_BENCH_PYTHON (/usr/bin/python3, Debian's own, with python3-torch),
# OIALR_BENCH_MODELS ("cnn vit").
set -u
BUILD=${1:-${OIALR_BENCH_BUILD:-build}}
REPS=${OIALR_BENCH_REPS:-3}
STEPS=${OIALR_BENCH_STEPS:-60}
TH=${OIALR_BENCH_THREADS:-2}
PYTHON=${PYTHON:-${OIALR_BENCH_PYTHON:-/usr/bin/python3}}
MODELS=${OIALR_BENCH_MODELS:-cnn vit}
OIALR=$BUILD/oialr
GEMM=$BUILD/bench/bench_gemm
PEER=tests/bench/peer_models.py
TMP=$(mktemp -d "${TMPDIR:-/tmp}/oialr-models.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

[ -x "$OIALR" ] || { echo "models.sh: $OIALR not built (make all)"; exit 1; }
torch_ok=0
"$PYTHON" -c 'import torch' >/dev/null 2>&1 && torch_ok=1
[ $torch_ok = 1 ] || echo "models.sh: PyTorch is not importable by $PYTHON: peer columns skipped"

median() { sort -g | awk '{v[NR]=$1} END {if (!NR) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b+0 > 0 && a != "nan") printf "%.2f", a/b; else print "n/a"}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {if (v == "n/a" || v == "nan") print "not measured";
    else if (v+0 >= t+0) print "met"; else print "NOT met"}'; }
all() { tr '\n' ' ' <"$1" | sed 's/ $//'; }

echo "models.sh: $REPS interleaved rounds per model (sgemm, oialr, torch), $STEPS steps of batch 128, $TH threads; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# model -> extra oialr args, target ratio against PyTorch's fastest set-up,
# target fraction of the sgemm ceiling (issue 16's targets)
for model in $MODELS; do
    case $model in
    cnn) extra=""; tr_ratio=1.5; tr_frac=0.60 ;;
    vit) extra="--opt adamw"; tr_ratio=2.5; tr_frac=0.50 ;;
    *) echo "models.sh: unknown model $model"; continue ;;
    esac
    : >"$TMP/$model.o"; : >"$TMP/$model.t"; : >"$TMP/$model.b"; : >"$TMP/$model.g"; : >"$TMP/$model.f"
    mflop=nan
    for i in $(seq 1 "$REPS"); do
        g=nan
        if [ -x "$GEMM" ]; then
            g=$("$GEMM" --threads "$TH" --case square --blocks 2 --min-time 0.15 | sed -n 's/.*gflops=//p' | head -1)
            [ -n "$g" ] || g=nan
            echo "$g" >>"$TMP/$model.g"
        fi
        # --val 0: no validation split (the test-set evaluation after the epoch is not timed anyway)
        "$OIALR" train --model "$model" $extra --epochs 1 --max-steps "$STEPS" --val 0 --threads "$TH" \
            >"$TMP/o.out" 2>"$TMP/o.err" || { echo "oialr train failed:"; tail -3 "$TMP/o.err"; }
        s=$(awk '/^epoch 1\/1  loss/ {for (i = 2; i <= NF; i++) if ($i == "samples/s") print $(i-1)}' "$TMP/o.err")
        mflop=$(sed -n 's/.*forward MFLOP\/sample: \([0-9.]*\).*/\1/p' "$TMP/o.err" | head -1)
        if [ -n "$s" ]; then
            echo "$s" >>"$TMP/$model.o"
            awk -v s="$s" -v f="$mflop" -v g="$g" 'BEGIN {if (g+0 > 0) print 3 * f * 1e-3 * s / g}' >>"$TMP/$model.f"
        fi
        if [ $torch_ok = 1 ]; then
            "$PYTHON" "$PEER" --model "$model" --steps "$STEPS" --threads "$TH" >"$TMP/p.out" 2>"$TMP/p.err" ||
                { echo "peer_models failed:"; tail -3 "$TMP/p.err"; }
            sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p' "$TMP/p.out" >>"$TMP/$model.t"
            OPENBLAS_NUM_THREADS=1 "$PYTHON" "$PEER" --model "$model" --steps "$STEPS" --threads "$TH" >"$TMP/p.out" \
                2>"$TMP/p.err" || { echo "peer_models (OpenBLAS 1) failed:"; tail -3 "$TMP/p.err"; }
            sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p' "$TMP/p.out" >>"$TMP/$model.b"
        fi
        echo "  $model round $i/$REPS: sgemm $g GFLOP/s, oialr ${s:-?} samples/s, torch $(tail -1 "$TMP/$model.t" 2>/dev/null), torch OpenBLAS-1 $(tail -1 "$TMP/$model.b" 2>/dev/null) samples/s"
    done
    O=$(median <"$TMP/$model.o"); T0=$(median <"$TMP/$model.t"); TB=$(median <"$TMP/$model.b")
    G=$(median <"$TMP/$model.g")
    F=$(median <"$TMP/$model.f" | awk '{if ($1 == "nan") print "n/a"; else printf "%.2f", $1}')
    T=$(printf '%s\n%s\n' "$T0" "$TB" | grep -v nan | sort -g | tail -1)
    [ -n "$T" ] || T=nan
    R=$(ratio "$O" "$T")
    gf() { awk -v s="$1" -v f="$mflop" 'BEGIN {if (s == "nan" || f == "nan") print "nan"; else printf "%.1f", 3 * f * 1e-3 * s}'; }
    echo "$model $O $T0 $TB $(ratio "$O" "$T0") $(ratio "$O" "$TB") $R $(gf "$O") $(gf "$T") $G $F $tr_ratio $tr_frac $mflop" >>"$TMP/summary"
    echo "$model|$(all "$TMP/$model.o")|$(all "$TMP/$model.t")|$(all "$TMP/$model.b")|$(all "$TMP/$model.g")" >>"$TMP/runs"
done

echo ""
echo "| model | MFLOP/sample (fwd) | oialr samples/s | PyTorch samples/s | PyTorch, OpenBLAS 1 thread | oialr / PyTorch | oialr / PyTorch (OpenBLAS 1) | oialr / faster PyTorch | oialr GFLOP/s | faster PyTorch GFLOP/s | sgemm ceiling GFLOP/s | fraction of ceiling |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
while read -r m o t tb r rb rbest go gt g f trr trf mf; do
    echo "| $m | $mf | $o | $t | $tb | $r× | $rb× | $rbest× (target ≥ $trr×: $(verdict "$rbest" "$trr")) | $go | $gt | $g | $f (target ≥ $trf: $(verdict "$f" "$trf")) |"
done <"$TMP/summary"
echo ""
echo "Medians of $REPS interleaved rounds, $STEPS steps of batch 128, $TH threads. All runs (samples/s oialr | torch | torch OpenBLAS-1 | sgemm GFLOP/s):"
sed 's/^/  /' "$TMP/runs"
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
