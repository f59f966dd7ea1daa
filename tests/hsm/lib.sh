# tests/hsm/lib.sh - the common start of the zonehsm shell tests (sourced).
#
#   zh_setup TOKENS HSMS TOOL...   skips if a TOOL is missing; makes the
#       test's temporary directory and TOKENS SoftHSM tokens in it; sets
#       H=(--hsm URI ...) for the first HSMS tokens and M to the module
#   zh ARGS...                     zonehsm with its output kept out of the
#       TAP stream, in $ZG_TMP/zh.out and $ZG_TMP/zh.err
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"

zh() { zonehsm "$@" >"$ZG_TMP/zh.out" 2>"$ZG_TMP/zh.err"; }

zh_setup() {
    local tokens=$1 hsms=$2 tool
    shift 2
    for tool in softhsm2-util "$@"; do
        command -v "$tool" >/dev/null || skip_all "$tool missing"
    done
    zg_tmpdir
    zg_softhsm_init "$ZG_TMP" "$tokens" || { not_ok "tokens made"; done_testing; }
    mapfile -t H < <(zg_hsm_args "$hsms")
    M=$ZG_SOFTHSM_MODULE
}
