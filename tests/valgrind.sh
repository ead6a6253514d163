#!/bin/sh
# valgrind.sh BUILD — `make valgrind`: a short train + record + analyze on
# Fashion-MNIST under valgrind's memcheck, every error (invalid access,
# uninitialised value, leak) fatal. Third-party suppressions only, in
# tests/valgrind.supp (docs/sanitizers.md says why each is there).
#   OIALR_VALGRIND_OUT=DIR  keep the run's files there (default: a temp dir)
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
oialr=$(cd "$build" && pwd)/oialr
if [ -n "${OIALR_VALGRIND_OUT:-}" ]; then
    out=$OIALR_VALGRIND_OUT
    mkdir -p "$out"
else
    out=$(mktemp -d /tmp/oialr-valgrind-XXXXXX)
    trap 'rm -rf "$out"' EXIT
fi

# --errors-for-leak-kinds: definite and possible leaks are errors (the
# default); --show-leak-kinds adds nothing to the exit status
vg() {
    echo "== valgrind oialr $*"
    valgrind -q --error-exitcode=1 --leak-check=full --track-origins=yes \
        --suppressions="$here/valgrind.supp" --num-callers=30 "$oialr" "$@"
}

# one BLAS thread: under valgrind's one-thread-at-a-time scheduler OpenBLAS's
# spinning workers make a step 1.5x slower; the recorder's writer thread
# still runs. --limit/--val keep it short; the test set is evaluated whole.
vg train --model mlp:64,64 --dataset fashion-mnist --epochs 1 --max-steps 30 --batch 64 --threads 1 \
    --limit 2000 --val 500 --seed 0 --oialr delay:10 --oialr-every 10 --record "$out/run.h5" --every 10 --force
vg analyze "$out/run.h5" -o "$out/analysis.h5" --csv "$out/tables" --policy stability:0.99 --force
echo "valgrind: clean"
