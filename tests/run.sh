#!/bin/sh
# run.sh BUILD BIN... — run each Check test binary, print its report, and end
# with one summary line "N passed, N failed"; exit non-zero if any failed.
build=$1; shift
export OIALR_BUILD="$build"
passed=0; failed=0; bad=""
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    # Check prints e.g. "100%: Checks: 12, Failures: 0, Errors: 0"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -1)
    if [ -n "$line" ]; then
        n=$(echo "$line" | sed 's/.*Checks: \([0-9]*\).*/\1/')
        f=$(echo "$line" | sed 's/.*Failures: \([0-9]*\).*/\1/')
        e=$(echo "$line" | sed 's/.*Errors: \([0-9]*\).*/\1/')
        passed=$((passed + n - f - e)); failed=$((failed + f + e))
    fi
    if [ $rc -ne 0 ]; then
        bad="$bad $(basename "$t")"
        [ -z "$line" ] && failed=$((failed + 1))
    fi
done
echo "tests: $passed passed, $failed failed"
if [ -n "$bad" ]; then echo "failing test programs:$bad" >&2; exit 1; fi
[ $passed -gt 0 ] || { echo "no test ran" >&2; exit 1; }
exit 0
