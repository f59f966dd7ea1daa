# tests/lib/tap.sh - TAP output for shell tests (sourced).
#
#   . "$ZG_SRC/tests/lib/tap.sh"
#   ok "description"            # passes
#   not_ok "description"        # fails
#   check "description" CMD...  # passes if CMD exits 0
#   check_exit N "desc" CMD...  # passes if CMD exits with N
#   skip_all "reason"           # exits 77
#   done_testing                # prints the plan, exits 0 or 1
#
# ZG_SRC and ZG_BUILD are set by tests/meson.build; run by hand they
# default to the source tree and its build/ directory.
: "${ZG_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ZG_BUILD:=$ZG_SRC/build}"
export ZG_SRC ZG_BUILD
export PATH="$ZG_BUILD/hsm:$ZG_BUILD/signer:$ZG_BUILD/gate:$ZG_BUILD/zones:$PATH"

_tap_n=0
_tap_failed=0

ok() {
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n - $*"
}

not_ok() {
    _tap_n=$((_tap_n + 1))
    _tap_failed=$((_tap_failed + 1))
    echo "not ok $_tap_n - $*"
}

diag() {
    local line
    while IFS= read -r line; do echo "# $line"; done <<<"$*"
}

check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

check_exit() {
    local want=$1 desc=$2 got
    shift 2
    "$@"
    got=$?
    if [ "$got" -eq "$want" ]; then
        ok "$desc"
    else
        not_ok "$desc (exit $got, wanted $want)"
    fi
}

skip_all() {
    echo "1..0 # SKIP $*"
    exit 77
}

done_testing() {
    echo "1..$_tap_n"
    [ "$_tap_failed" -eq 0 ] && [ "$_tap_n" -gt 0 ]
    exit $?
}

# A temporary directory removed when the test ends.
zg_tmpdir() {
    ZG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/zonegate-test.XXXXXX")
    trap 'zg_cleanup' EXIT
    export ZG_TMP
}

_zg_cleanup_hooks=()
zg_on_exit() { _zg_cleanup_hooks+=("$*"); }
zg_cleanup() {
    local h
    for h in "${_zg_cleanup_hooks[@]}"; do eval "$h" || true; done
    [ -n "${ZG_TMP:-}" ] && rm -rf "$ZG_TMP"
}

# A fingerprint of a directory: names, sizes, modes, times and contents of
# everything in it (the directory's own entry included, its parent not).
zg_dir_state() {
    (cd "$1" && find . -printf '%p %s %m %T@\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 -r sha256sum) | sha256sum
}
