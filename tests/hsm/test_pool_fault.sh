#!/usr/bin/env bash
# tests/hsm/test_pool_fault.sh - the signing pool against tokens that sign
# wrongly or fail, through the fault-injecting PKCS#11 module (tests/shim):
# flipped bits (every signature verified, and sampled), a swapped key, and
# device errors.  test_pool_fault.c prints the TAP of each mode.
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
command -v softhsm2-util >/dev/null || skip_all "softhsm2-util missing"
SHIM=$ZG_BUILD/tests/shim/libzgshim.so
[ -f "$SHIM" ] || { not_ok "fault-injection module $SHIM built"; done_testing; }
zg_tmpdir
zg_softhsm_init "$ZG_TMP" 3 || { not_ok "tokens made"; done_testing; }
mapfile -t H < <(zg_hsm_args 3)
KS=$ZG_TMP/ks
if ! zonehsm "${H[@]}" --keyset "$KS" keygen --zone example. --label ksk1 --alg 13 --role ksk >/dev/null ||
    ! pkcs11-tool --module "$ZG_SOFTHSM_MODULE" --token-label hsm3 --login --pin "$ZG_PIN" \
        --keypairgen --key-type EC:prime256v1 --id ee --label evil --usage-sign >/dev/null 2>&1; then
    not_ok "keys for the fault test"
    done_testing
fi
export ZG_SHIM_MODULE=$ZG_SOFTHSM_MODULE
ZG_MODULE=$SHIM
run() {
    local mode=$1 fault=$2
    printf '%s\n' "$fault" >"$ZG_TMP/faults"
    ZG_SHIM_CONF=$ZG_TMP/faults "$ZG_BUILD/tests/hsm/test_pool_fault" "$mode" "$KS" \
        "$(zg_uri 1)" "$(zg_uri 2)" "$(zg_uri 3)" >"$ZG_TMP/tap" 2>"$ZG_TMP/err"
    local rc=$? line
    while IFS= read -r line; do
        case "$line" in
        ok*) ok "${line#ok * - }" ;;
        "not ok"*) not_ok "${line#not ok * - }" ;;
        esac
    done <"$ZG_TMP/tap"
    check "$mode: program exit 0 (rc $rc)" test "$rc" -eq 0
    [ -s "$ZG_TMP/err" ] && diag "$(cat "$ZG_TMP/err")"
}
run verify-all "token=hsm2 fault=flipbit after=100"
run verify-sampled "token=hsm2 fault=flipbit after=100"
run swapkey "token=hsm3 fault=swapkey after=100 label=evil"
run deverror "token=hsm3 fault=deverror after=150"
# The same through signing helpers (the pool's workers each drive one).
run helpers-verify-all "token=hsm2 fault=flipbit after=100"
run helpers-verify-sampled "token=hsm2 fault=flipbit after=100"
run helpers-swapkey "token=hsm3 fault=swapkey after=100 label=evil"
run helpers-deverror "token=hsm3 fault=deverror after=150"
# The consistency proof itself, through zonehsm, catches a bad token.
printf 'token=hsm2 fault=flipbit\n' >"$ZG_TMP/faults"
ZG_SHIM_CONF=$ZG_TMP/faults zonehsm $(for i in 1 2 3; do printf -- '--hsm %s ' "$(zg_uri $i)"; done) --keyset "$KS" check 2>"$ZG_TMP/err" >/dev/null
check "check through the shim: token 2 flipping bits gives exit 1" test $? -eq 1
check "check names HSM 2 (token hsm2): probe signature" grep -q '^zonehsm: HSM 2 (token hsm2): key ksk1: .*probe signature does not verify' "$ZG_TMP/err"
done_testing
