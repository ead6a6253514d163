#!/bin/sh
# run.sh BUILD SECONDS TARGET... — run each libFuzzer target (BUILD/fuzz/
# fuzz_TARGET) for SECONDS, one after the other, single process, on
# BUILD/fuzz-corpus/TARGET (the seeds of tests/fuzz/corpus/TARGET copied in,
# plus what earlier runs found) and, read only, tests/fuzz/crashes/TARGET.
# New inputs go to BUILD/fuzz-corpus/, crash files to BUILD/fuzz-crashes/
# TARGET/, the log to BUILD/fuzz-logs/TARGET.log; nothing under tests/ is
# written. One line per target (executions, seconds, corpus, result); exit
# non-zero if any target crashed, leaked, timed out or ran out of memory.
#   FUZZ_FLAGS  extra libFuzzer flags (e.g. -jobs is not used: one process)
set -u
build=$1; secs=$2; shift 2
# absolute paths: fuzz_cli works in a directory of its own
case "$build" in /*) ;; *) build="$(pwd)/$build" ;; esac
top=$(pwd)
bad=""
for t in "$@"; do
    bin="$build/fuzz/fuzz_$t"
    corpus="$build/fuzz-corpus/$t"
    crashes="$build/fuzz-crashes/$t"
    log="$build/fuzz-logs/$t.log"
    mkdir -p "$corpus" "$crashes" "$build/fuzz-logs"
    cp -p tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
    extra=""
    [ -d tests/fuzz/crashes/"$t" ] && extra="$top/tests/fuzz/crashes/$t"
    dict=""
    [ -f tests/fuzz/"$t".dict ] && dict="-dict=$top/tests/fuzz/$t.dict"
    # -close_fd_mask=3: the targets' own stdout/stderr (usage errors) off;
    # libFuzzer and the sanitizers still report on a copy of stderr
    "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -close_fd_mask=3 \
        -print_final_stats=1 -artifact_prefix="$crashes/" $dict ${FUZZ_FLAGS:-} \
        "$corpus" $extra >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    took=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    n=$(ls "$corpus" | wc -l)
    if [ $rc -eq 0 ]; then
        echo "fuzz $t: ok, ${execs:-?} executions in ${secs}s (${took:-?}/s), corpus $n files"
    else
        echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; see $log" >&2
        ls "$crashes" | sed "s|^|    $crashes/|" >&2
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*fuzz property failed|.*runtime error)' "$log" | head -5 | sed 's/^/    /' >&2
        bad="$bad $t"
    fi
done
if [ -n "$bad" ]; then
    echo "fuzz: failing targets:$bad (reproduce: $build/fuzz/fuzz_TARGET FILE)" >&2
    exit 1
fi
exit 0
