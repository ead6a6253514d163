#!/bin/sh
# run.sh BUILD BIN... — run the Check test binaries, OIALR_TEST_JOBS at a time
# (default: the number of cores, at most 4; 1 runs them one by one), print
# each one's report as it ends, and end with one summary line
# "tests: N passed, N failed (BUILD)", also written to BUILD/tests/summary as
# "N N" (make check sums its passes from these); exit non-zero if any failed.
#
# The programs are independent (each works in its own mkdtemp directory), and
# most of their time is spent in one thread (HDF5, forks of build/oialr), so
# two at a time on two cores cut the wall time without changing a result; no
# test times itself (speed lives in make bench).
build=$1; shift
export OIALR_BUILD="$build"
jobs=${OIALR_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
[ "$jobs" -gt 4 ] && jobs=4
out=$(mktemp -d "${TMPDIR:-/tmp}/oialr-run.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# one program: its report and exit status into $out, then the report shown
# whole (reports of parallel programs do not interleave)
i=0
for t in "$@"; do
    i=$((i + 1))
    printf '%s %s\n' "$i" "$t"
done | xargs -P "$jobs" -L 1 sh -c '
    d=$1; n=$2; t=$3
    "$t" >"$d/$n.log" 2>&1; echo $? >"$d/$n.rc"
    cat "$d/$n.log"' run1 "$out"

passed=0; failed=0; bad=""
i=0
for t in "$@"; do
    i=$((i + 1))
    rc=$(cat "$out/$i.rc" 2>/dev/null || echo 1)
    # Check prints e.g. "100%: Checks: 12, Failures: 0, Errors: 0"
    line=$(grep -E '^[0-9]+%: Checks: ' "$out/$i.log" 2>/dev/null | tail -1)
    f=0; e=0
    if [ -n "$line" ]; then
        n=$(echo "$line" | sed 's/.*Checks: \([0-9]*\).*/\1/')
        f=$(echo "$line" | sed 's/.*Failures: \([0-9]*\).*/\1/')
        e=$(echo "$line" | sed 's/.*Errors: \([0-9]*\).*/\1/')
        passed=$((passed + n - f - e)); failed=$((failed + f + e))
    fi
    if [ "$rc" -ne 0 ]; then
        bad="$bad $(basename "$t")"
        # no report, or one that passed while the program failed after it
        # (a sanitizer's report at exit): the program counts as one failure
        if [ -z "$line" ] || [ $((f + e)) -eq 0 ]; then failed=$((failed + 1)); fi
    fi
done
echo "tests: $passed passed, $failed failed ($build)"
mkdir -p "$build/tests" && echo "$passed $failed" >"$build/tests/summary"
if [ -n "$bad" ]; then echo "failing test programs:$bad" >&2; exit 1; fi
[ $passed -gt 0 ] || { echo "no test ran" >&2; exit 1; }
exit 0
