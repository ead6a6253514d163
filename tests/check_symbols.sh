#!/bin/sh
# check_symbols.sh — liboialr.a and liboialr.so export the public API and
# nothing else (docs/api.md): every defined global symbol starts with oialr_
# and is declared OIALR_API in lib/oialr/*.h, every such declaration is
# exported, and a program that defines every internal name of the library
# links against liboialr.a and runs. Run by tests/run.sh with OIALR_BUILD
# set; prints a Check-style summary line so that run.sh counts its checks.
#   OIALR_BUILD=build tests/check_symbols.sh
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${OIALR_BUILD:-build}" && pwd) || exit 1
NM=${NM:-nm}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
static=$build/liboialr.a
shared=$build/liboialr.so
internal=$build/liboialr-internal.a
tmp=$(mktemp -d "${TMPDIR:-/tmp}/oialr-symbols.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

checks=0
failures=0
fail() {
    failures=$((failures + 1))
    echo "tests/check_symbols.sh: $1" >&2
    if [ -s "$tmp/why" ]; then
        head -40 "$tmp/why" | sed 's/^/    /' >&2
        n=$(wc -l <"$tmp/why")
        [ "$n" -gt 40 ] && echo "    ($((n - 40)) more lines)" >&2
    fi
    return 0
}
begin() { checks=$((checks + 1)); : >"$tmp/why"; }

# defined global symbols, one name a line, sorted ("addr type name" lines;
# nm's "member:" headers and blank lines have fewer fields)
$NM -g --defined-only "$static" >"$tmp/nm.a" || exit 1
$NM -D --defined-only "$shared" >"$tmp/nm.so" || exit 1
awk 'NF == 3 { print $3 }' "$tmp/nm.a" | sort -u >"$tmp/static"
awk 'NF == 3 { print $3 }' "$tmp/nm.so" | sort -u >"$tmp/shared"

# the public API: names declared on lines that start with OIALR_API
# (functions: the name before "(", data: the name before "[" or ";")
grep -h '^OIALR_API' "$root"/lib/oialr/*.h |
    sed -n 's/^OIALR_API[^([;]*[^A-Za-z0-9_([;]\([A-Za-z_][A-Za-z0-9_]*\) *[([;].*/\1/p' | sort -u >"$tmp/api"

# 1, 2: no symbol outside the oialr_ name space (with SANITIZER=address the
# compiler adds __odr_asan.NAME next to each public datum NAME)
for lib in static shared; do
    begin
    grep -v -e '^oialr_' -e '^__odr_asan\.oialr_' "$tmp/$lib" >"$tmp/why"
    [ -s "$tmp/why" ] && fail "$lib library: $(wc -l <"$tmp/why") global symbols without the oialr_ prefix:"
done

# 3: the header parse found the API, and a few names everyone uses are in it
begin
for name in oialr_strerror oialr_errmsg oialr_traj_create oialr_traj_open oialr_traj_close \
    oialr_traj_options_default oialr_opt_names; do
    grep -qx "$name" "$tmp/api" || echo "$name" >>"$tmp/why"
done
[ -s "$tmp/why" ] && fail "not found among the OIALR_API declarations of lib/oialr/*.h:"

# 4, 5: both libraries export exactly the declared API
for lib in static shared; do
    begin
    comm -23 "$tmp/api" "$tmp/$lib" | sed 's/$/ (declared, not exported)/' >"$tmp/why"
    comm -13 "$tmp/api" "$tmp/$lib" | grep '^oialr_' |
        sed 's/$/ (exported, not declared on a line starting with OIALR_API in lib\/oialr\/*.h)/' >>"$tmp/why"
    [ -s "$tmp/why" ] && fail "$lib library: exports differ from the public API:"
done

# 6: a user's program may use any name the library uses inside: define them
# all next to docs/examples/record_example.c, link it against liboialr.a
# alone and run it
begin
$NM -g --defined-only "$internal" | awk 'NF == 3 { print $3 }' | grep -E '^[A-Za-z_][A-Za-z0-9_]*$' |
    sort -u | comm -23 - "$tmp/api" >"$tmp/internal"
if [ "$(wc -l <"$tmp/internal")" -lt 10 ]; then
    echo "$internal: only $(wc -l <"$tmp/internal") internal names" >"$tmp/why"
    fail "too few internal names to test a clash with:"
else
    awk '{ printf "void %s(void);\nvoid %s(void) {}\n", $1, $1 }' "$tmp/internal" >"$tmp/clash.c"
    if ! (cd "$tmp" && $CC -std=c11 -w ${SANITIZER:+-fsanitize=$SANITIZER} -I"$root/lib" \
        "$root/docs/examples/record_example.c" clash.c "$static" \
        $($PKG_CONFIG --libs openblas lapacke hdf5 zlib) -lm -pthread -o example &&
        ./example ex.h5) >"$tmp/why" 2>&1; then
        fail "record_example + $(wc -l <"$tmp/internal") internal names of the library, linked against liboialr.a:"
    fi
fi

passed=$((checks - failures))
echo "$((passed * 100 / checks))%: Checks: $checks, Failures: $failures, Errors: 0"
[ "$failures" -eq 0 ]
