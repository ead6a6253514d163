#!/bin/sh
# demo.sh BUILD — the main job on the built-in default (run by `make demo`):
# train the MLP on Fashion-MNIST while recording every weight matrix,
# analyse the trajectory, draw the figures, then train the same model with
# OIALR (low rank once the bases settle) beside it, and say where all is.
#   OIALR_DEMO_EPOCHS=N  (default 10)   OIALR_DEMO_OUT=DIR (default results/demo)
set -eu
build=${1:-build}
oialr="$build/oialr"
out=${OIALR_DEMO_OUT:-results/demo}
epochs=${OIALR_DEMO_EPOCHS:-10}
threads=$(nproc 2>/dev/null || echo 2)

mkdir -p "$out"
echo "== 1/5 train: MLP 784-512-512-10 on Fashion-MNIST, $epochs epochs, recording every 50 steps"
"$oialr" train --model mlp:512,512 --dataset fashion-mnist --epochs "$epochs" --batch 128 \
    --opt sgd --lr 0.05 --momentum 0.9 --sched cosine --seed 0 --threads "$threads" \
    --record "$out/run.h5" --every 50 --force
echo
echo "== 2/5 analyse: basis stability, spectra and ranks of every layer"
"$oialr" analyze "$out/run.h5" -o "$out/analysis.h5" --csv "$out/tables" --force \
    --policy stability:0.99
echo
echo "== 3/5 plot"
"$oialr" plot "$out/tables" -o "$out/figures" --run "$out/run.h5" --force
echo
echo "== 4/5 the same training with OIALR: each layer switches to U Sigma V^T once its bases settle"
"$oialr" train --model mlp:512,512 --dataset fashion-mnist --epochs "$epochs" --batch 128 \
    --opt sgd --lr 0.05 --momentum 0.9 --sched cosine --seed 0 --threads "$threads" \
    --oialr auto --record "$out/oialr.h5" --every 215 --force
echo
echo "== 5/5 analyse and plot the OIALR run: the dots on stability.png mark each layer's switch"
"$oialr" analyze "$out/oialr.h5" --csv "$out/oialr-tables" --force -q
"$oialr" plot "$out/oialr-tables" -o "$out/oialr-figures" --run "$out/oialr.h5" --force
echo
echo "results are in $out/:"
echo "  run.h5          the trajectory (h5dump -H $out/run.h5; docs/format.md)"
echo "  analysis.h5     per-layer metrics (docs/analyze.md)"
echo "  tables/         metrics.csv, spectra.csv, mean_stability.csv, events.csv, replay.csv"
echo "  figures/        stability, heatmap, spectrum-*, evolution-*, ranks, training .png (+ .gp scripts, .csv data)"
echo "  oialr.h5        the OIALR run: its switches, rotations and cuts in /events (docs/lowrank.md);"
echo "                  low-rank layers stored as factors (docs/format.md)"
echo "  oialr-figures/  its figures: stability.png marks where each layer switched"
echo
echo "== report: one page on the run, the OIALR run beside it"
# it reuses the analysis of step 2 (same run, tau, beta and policy) and
# redraws figures/ with the trajectory's ranks and curves
"$oialr" report "$out/run.h5" -o "$out" --compare "$out/oialr.h5" --labels full-rank,oialr-auto \
    --policy stability:0.99 --force
echo
echo "open this page in a browser (it fetches nothing; images beside it):"
echo "  $out/index.html"
