#!/bin/sh
# run.sh BUILD BIN... — run each Check test binary, print its report, and end
# with one summary line "tests: N passed, N failed (BUILD)", also written to
# BUILD/tests/summary as "N N" (make check sums its passes from these); exit
# non-zero if any failed.
build=$1; shift
export OIALR_BUILD="$build"
passed=0; failed=0; bad=""
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    # Check prints e.g. "100%: Checks: 12, Failures: 0, Errors: 0"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -1)
    f=0; e=0
    if [ -n "$line" ]; then
        n=$(echo "$line" | sed 's/.*Checks: \([0-9]*\).*/\1/')
        f=$(echo "$line" | sed 's/.*Failures: \([0-9]*\).*/\1/')
        e=$(echo "$line" | sed 's/.*Errors: \([0-9]*\).*/\1/')
        passed=$((passed + n - f - e)); failed=$((failed + f + e))
    fi
    if [ $rc -ne 0 ]; then
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
