#!/bin/sh
# results.sh BUILD — the long accuracy runs behind docs/results.md (run by
# `make results`): each default model on Fashion-MNIST with the settings of
# the issues' targets, then the OIALR comparisons (docs/lowrank.md): full
# rank against --oialr auto, stability:0.99 and three fixed delays, same
# seed. Writes results/results.md and the logs beside it.
#   OIALR_RESULTS="mlp cnn vit oialr-mlp oialr-cnn oialr-vit"  choose runs
#   OIALR_POLICIES="full auto stability:0.99 delay:430 delay:860 delay:1720"
#                  the policies of the oialr-* runs
#   OIALR_RESULTS_OUT=DIR (results/)
set -eu
build=${1:-build}
oialr="$build/oialr"
out=${OIALR_RESULTS_OUT:-results}
runs=${OIALR_RESULTS:-mlp cnn vit oialr-mlp oialr-cnn oialr-vit}
policies=${OIALR_POLICIES:-full auto stability:0.99 delay:430 delay:860 delay:1720}
threads=$(nproc 2>/dev/null || echo 2)
mkdir -p "$out"
table="$out/results.md"
{
    echo "| model | spec | epochs | optimizer | val acc | test acc | target | time |"
    echo "|---|---|---|---|---|---|---|---|"
} > "$table"
lowtable="$out/results-oialr.md"
{
    echo "| run | policy | test acc | trainable | per-layer switch step (final rank) | s/epoch before / after the last switch |"
    echo "|---|---|---|---|---|---|"
} > "$lowtable"

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

# lowrun NAME POLICY ARGS...: one OIALR (or, with POLICY "full", full-rank)
# run, a row of results-oialr.md from its log: the final line, the per-layer
# table (switch step, rank) and the epoch lines' cumulative seconds.
lowrun() {
    name=$1; policy=$2; shift 2
    log="$out/$name.log"
    if [ "$policy" = full ]; then set -- "$@"; else set -- "$@" --oialr "$policy"; fi
    echo "== $name: oialr train $*"
    "$oialr" train "$@" --threads "$threads" > "$log" 2>&1 || true
    final=$(grep '^final:' "$log" | tail -1)
    if [ -z "$final" ]; then
        echo "| $name | $policy | failed, see $log | | | |" >> "$lowtable"
        return 0
    fi
    test=$(echo "$final" | sed 's/.*test_acc \([0-9.]*\).*/\1/')
    share=$(sed -n 's/^oialr: trainable \([0-9.]*\)%.*/\1/p' "$log" | tail -1)
    layers=$(awk '$1 == "oialr:" && $2 ~ /weight$/ && $3 ~ /^[0-9]+$/ {printf "%s%s %s (%s)", sep, $2, $3, $5; sep = ", "}' "$log")
    # the epoch in which the last switch happened, and the cumulative seconds
    last=$(awk '$1 == "oialr:" && $2 ~ /weight$/ && $3 ~ /^[0-9]+$/ && $3 > m {m = $3} END {print m + 0}' "$log")
    spe=$(grep -c '^epoch [0-9]*/[0-9]*  loss' "$log")
    times=$(awk -v last="$last" -v spe="$(echo "$final" | sed 's/.*steps \([0-9]*\).*/\1/')" -v ne="$spe" '
        /^epoch [0-9]+\/[0-9]+  loss/ { n++; sub(/s$/, "", $NF); t[n] = $NF }
        END { if (!n) { print "-"; exit }
              k = last > 0 ? int((last - 1) / (spe / ne)) + 1 : 0;   # the epoch holding the last switch
              if (k <= 0 || k >= n) { printf "%.1f / -", t[n] / n; exit }
              printf "%.1f / %.1f", t[k] / k, (t[n] - t[k]) / (n - k) }' "$log")
    echo "| $name | \`$policy\` | $(awk -v t="$test" 'BEGIN {printf "%.2f%%", 100 * t}') | ${share:-100}% | ${layers:--} | $times |" >> "$lowtable"
}

mlp_args="--model mlp:512,512 --epochs 10 --batch 128 --opt adamw --lr 1e-3 --wd 0.01 --seed 0"
cnn_args="--model cnn --epochs 15 --batch 128 --opt sgd --lr 0.05 --momentum 0.9 --wd 5e-4 --sched cosine --warmup 200 --seed 0"
vit_args="--model vit --epochs 30 --batch 128 --opt adamw --lr 2e-3 --wd 0.05 --sched cosine --warmup 500 --seed 0"

for r in $runs; do
    case $r in
    mlp) run mlp ">= 89%" --model mlp:512,512 --epochs 10 --batch 128 --opt sgd --lr 0.05 --momentum 0.9 \
             --sched cosine --seed 0 ;;
    cnn) run cnn ">= 92%" --model cnn --epochs 15 --batch 128 --opt sgd --lr 0.05 --momentum 0.9 --wd 5e-4 \
             --sched cosine --warmup 200 --seed 0 ;;
    vit) run vit ">= 87%" --model vit --epochs 30 --batch 128 --opt adamw --lr 2e-3 --wd 0.05 \
             --sched cosine --warmup 500 --seed 0 ;;
    oialr-mlp) # the reference's setting; 430 steps per epoch
        # shellcheck disable=SC2086
        for p in $policies; do
            lowrun "oialr-mlp-$(echo "$p" | tr ':' '-')" "$p" $mlp_args
        done
        lowrun oialr-mlp-auto-moments-reset auto $mlp_args --oialr-moments reset ;;
    oialr-cnn)
        # shellcheck disable=SC2086
        for p in $policies; do
            lowrun "oialr-cnn-$(echo "$p" | tr ':' '-')" "$p" $cnn_args
        done ;;
    oialr-vit)
        # shellcheck disable=SC2086
        for p in $policies; do
            lowrun "oialr-vit-$(echo "$p" | tr ':' '-')" "$p" $vit_args
        done ;;
    *) echo "results.sh: unknown run '$r' (mlp, cnn, vit, oialr-mlp, oialr-cnn, oialr-vit)" >&2; exit 2 ;;
    esac
done
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(date -u +%Y-%m-%d)"
cat "$table"
cat "$lowtable"
echo "written: $table, $lowtable (logs: $out/*.log)"
