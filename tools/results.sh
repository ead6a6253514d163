#!/bin/sh
# results.sh BUILD — the long accuracy runs behind docs/results.md (run by
# `make results`): each default model on Fashion-MNIST with the settings of
# the issues' targets. Writes results/results.md and the logs beside it.
#   OIALR_RESULTS="mlp cnn vit"  choose runs;  OIALR_RESULTS_OUT=DIR (results/)
set -eu
build=${1:-build}
oialr="$build/oialr"
out=${OIALR_RESULTS_OUT:-results}
runs=${OIALR_RESULTS:-mlp cnn vit}
threads=$(nproc 2>/dev/null || echo 2)
mkdir -p "$out"
table="$out/results.md"
{
    echo "| model | spec | epochs | optimizer | val acc | test acc | target | time |"
    echo "|---|---|---|---|---|---|---|---|"
} > "$table"

run() { # name target args...
    name=$1; target=$2; shift 2
    log="$out/$name.log"
    echo "== $name: oialr train $*"
    start=$(date +%s)
    "$oialr" train "$@" --threads "$threads" 2>&1 | tee "$log" | grep -E '^(epoch [0-9]+/[0-9]+  loss|final:)' || true
    end=$(date +%s)
    final=$(grep '^final:' "$log" | tail -1)
    if [ -z "$final" ]; then
        echo "$name: failed, see $log" >&2
        echo "| $name | failed | | | | | $target | |" >> "$table"
        return 0
    fi
    val=$(echo "$final" | sed 's/.*val_acc \([0-9.]*\).*/\1/')
    test=$(echo "$final" | sed 's/.*test_acc \([0-9.]*\).*/\1/')
    spec=$(grep '^model:' "$log" | head -1 | sed 's/^model: //')
    epochs=$(echo "$final" | sed 's/.*epochs \([0-9]*\).*/\1/')
    opt=$(echo "$*" | sed -n 's/.*--opt \([a-z]*\).*/\1/p')
    awk -v n="$name" -v s="$spec" -v e="$epochs" -v o="${opt:-sgd}" -v v="$val" -v t="$test" -v g="$target" \
        -v d="$((end - start))" 'BEGIN { printf "| %s | `%s` | %s | %s | %.2f%% | %.2f%% | %s | %ss |\n", n, s, e, o, 100 * v, 100 * t, g, d }' >> "$table"
}

for r in $runs; do
    case $r in
    mlp) run mlp ">= 89%" --model mlp:512,512 --epochs 10 --batch 128 --opt sgd --lr 0.05 --momentum 0.9 \
             --sched cosine --seed 0 ;;
    cnn) run cnn ">= 92%" --model cnn --epochs 15 --batch 128 --opt sgd --lr 0.05 --momentum 0.9 --wd 5e-4 \
             --sched cosine --warmup 200 --seed 0 ;;
    vit) run vit ">= 87%" --model vit --epochs 30 --batch 128 --opt adamw --lr 2e-3 --wd 0.05 \
             --sched cosine --warmup 500 --seed 0 ;;
    *) echo "results.sh: unknown run '$r' (mlp, cnn, vit)" >&2; exit 2 ;;
    esac
done
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(date -u +%Y-%m-%d)"
cat "$table"
echo "written: $table (logs: $out/*.log)"
