#!/bin/sh
# run.sh BUILD SECONDS TARGET... — run each libFuzzer target (BUILD/fuzz/
# fuzz_TARGET) for SECONDS, one after the other, single process, on
# BUILD/fuzz-corpus/TARGET (the seeds of tests/fuzz/corpus/TARGET copied in,
# plus what earlier runs found) and, read only, tests/fuzz/crashes/TARGET.
# New inputs go to BUILD/fuzz-corpus/, crash files to BUILD/fuzz-crashes/
# TARGET/, the logs to BUILD/fuzz-logs/TARGET.N.log; nothing under tests/
# is written. One line per target (executions, seconds, corpus, result);
# exit non-zero if any target crashed, leaked, timed out or ran out of
# memory in oialr's code.
#
# HDF5 1.10's own bugs on damaged files (crashes inside libhdf5 on memory
# oialr did not allocate, docs/fuzzing.md) do not fail the run: the input
# is moved to BUILD/fuzz-crashes/TARGET/hdf5/, counted, and the target
# restarts on its corpus for the time left. Leaks inside libhdf5 are
# suppressed (tests/fuzz/lsan.supp).
#   FUZZ_FLAGS  extra libFuzzer flags
set -u
build=$1; secs=$2; shift 2
# absolute paths: fuzz_cli works in a directory of its own
case "$build" in /*) ;; *) build="$(pwd)/$build" ;; esac
top=$(pwd)
export LSAN_OPTIONS="suppressions=$top/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# the targets' scratch files (fuzz.h: fuzz_tmpdir), removed at the end even
# when a crash left some behind
OIALR_FUZZ_TMPDIR=$(mktemp -d /dev/shm/oialr-fuzz-run.XXXXXX 2>/dev/null || mktemp -d /tmp/oialr-fuzz-run.XXXXXX) || exit 1
export OIALR_FUZZ_TMPDIR
trap 'rm -rf "$OIALR_FUZZ_TMPDIR"' EXIT

# 0 if the report in log $1 is HDF5's: the first frame of the failing stack
# past the sanitizer's and libFuzzer's own is in libhdf5, and no frame of
# an "allocated by" stack is in oialr's lib/ (an overflow of a buffer the
# reader sized is oialr's bug even when HDF5 writes it).
hdf5_fault() {
    awk -v top="$top/lib/" '
        /ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error/ { seen = 1 }
        seen && !decided && /^ *#[0-9]+ / {
            if ($0 ~ /in (__interceptor_|__asan|__sanitizer|__lsan|__ubsan|fuzzer::|__libc_start)/ ||
                $0 ~ /in (malloc|calloc|realloc|free|main|_start) / || $0 ~ /libclang_rt|compiler-rt|libc\.so/) next
            decided = 1; hdf5 = ($0 ~ /libhdf5/)
        }
        /allocated by/ { alloc = 1 }
        alloc && index($0, top) { ours = 1 }
        END { exit !(decided && hdf5 && !ours) }' "$1"
}

bad=""
for t in "$@"; do
    bin="$build/fuzz/fuzz_$t"
    corpus="$build/fuzz-corpus/$t"
    crashes="$build/fuzz-crashes/$t"
    mkdir -p "$corpus" "$crashes" "$build/fuzz-logs"
    cp -p tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
    extra=""
    [ -d tests/fuzz/crashes/"$t" ] && extra="$top/tests/fuzz/crashes/$t"
    dict=""
    [ -f tests/fuzz/"$t".dict ] && dict="-dict=$top/tests/fuzz/$t.dict"
    end=$(($(date +%s) + secs))
    left=$secs; run=0; execs=0; hdf5=0; rc=0
    while :; do
        run=$((run + 1))
        log="$build/fuzz-logs/$t.$run.log"
        # -close_fd_mask=3: the targets' own stdout/stderr (usage errors)
        # off; libFuzzer and the sanitizers still report on a copy of stderr
        "$bin" -max_total_time="$left" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=3 \
            -print_final_stats=1 -artifact_prefix="$crashes/" $dict ${FUZZ_FLAGS:-} \
            "$corpus" $extra >"$log" 2>&1
        rc=$?
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        execs=$((execs + ${n:-0}))
        [ $rc -eq 0 ] && break
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [ -n "$art" ] && [ -f "$art" ] && hdf5_fault "$log"; then
            mkdir -p "$crashes/hdf5"
            mv "$art" "$crashes/hdf5/"
            hdf5=$((hdf5 + 1))
            rc=0
            left=$((end - $(date +%s)))
            [ $left -ge 5 ] && continue
        fi
        break
    done
    n=$(ls "$corpus" | wc -l)
    note=""
    [ $hdf5 -gt 0 ] && note=", $hdf5 inputs crashing HDF5 itself kept in $crashes/hdf5/"
    if [ $rc -eq 0 ]; then
        echo "fuzz $t: ok, $execs executions in ${secs}s, corpus $n files$note"
    else
        echo "fuzz $t: FAILED (exit $rc) after $execs executions; see $log$note" >&2
        [ -n "${art:-}" ] && echo "    $art" >&2
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*fuzz property failed|.*runtime error)' "$log" | head -5 | sed 's/^/    /' >&2
        bad="$bad $t"
    fi
done
if [ -n "$bad" ]; then
    echo "fuzz: failing targets:$bad (reproduce: $build/fuzz/fuzz_TARGET FILE)" >&2
    exit 1
fi
exit 0
