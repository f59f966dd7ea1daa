#!/usr/bin/env bash
# tests/signer/test_faults.sh - HSM faults while signing, through the
# fault-injecting module tests/shim/libzgshim.so over SoftHSM:
#  - one HSM fails mid-run: the pool takes it out, the others finish, the
#    zone validates and the summary names the HSM taken out;
#  - one HSM signs wrongly (flipped bit) with --verify-every 1: caught,
#    taken out, the zone still validates;
#  - every HSM fails: exit 2, nothing written, a previous OUT untouched;
#  - session copies of the key: an HSM that refuses the copy signs with
#    its token object (logged); an HSM whose copy is another key stops the
#    run before anything is signed (exit 1, HSM named, nothing written),
#    and --hsm-token-keys makes no copy at all.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util ldns-verify-zone kzonecheck zonesign zonehsm zonegen
shim="$ZG_BUILD/tests/shim/libzgshim.so"
[ -f "$shim" ] || { echo "Bail out! no $shim"; exit 1; }
zs_setup 3 13 split
zonegen --origin tld. --delegations 3000 --ds-fraction 0.2 --seed 4 --extras \
    -o "$ZG_TMP/z.zone"
export ZG_MODULE=$shim

fault_run() { # name conf-line... ; signs to $ZG_TMP/name.signed
    local name=$1
    shift
    printf '%s\n' "$@" >"$ZG_TMP/$name.conf"
    ZG_SHIM_CONF="$ZG_TMP/$name.conf" zs_sign 3 --keyset "$ZG_TMP/ks" --quiet \
        ${ZS_EXTRA:-} -o "$ZG_TMP/$name.signed" "$ZG_TMP/z.zone" 2>"$ZG_TMP/$name.err"
}

fault_run deverror "token=hsm2 fault=deverror after=100"
check "hsm2 device error after 100: signed (exit $?)" test -s "$ZG_TMP/deverror.signed"
diag "$(grep -E 'HSM|taken' "$ZG_TMP/deverror.err")"
check "summary: HSM 2 taken out" grep -q "HSM 2 (token hsm2): .*taken out" "$ZG_TMP/deverror.err"
check "deverror: ldns-verify-zone" zs_verify_ldns tld. "$ZG_TMP/deverror.signed"
check "deverror: kzonecheck" zs_verify_knot tld. "$ZG_TMP/deverror.signed"

ZS_EXTRA="--verify-every 1" fault_run flipbit "token=hsm3 fault=flipbit after=50"
check "hsm3 flipped bits, verify every: signed" test -s "$ZG_TMP/flipbit.signed"
diag "$(grep -E 'HSM|taken' "$ZG_TMP/flipbit.err")"
check "summary: HSM 3 taken out" grep -q "HSM 3 (token hsm3): .*taken out" "$ZG_TMP/flipbit.err"
check "flipbit: ldns-verify-zone" zs_verify_ldns tld. "$ZG_TMP/flipbit.signed"
check "flipbit: kzonecheck" zs_verify_knot tld. "$ZG_TMP/flipbit.signed"

echo "previous content" >"$ZG_TMP/all.signed"
fault_run all "token=hsm1 fault=deverror after=30" \
    "token=hsm2 fault=deverror after=30" "token=hsm3 fault=deverror after=30"
rc=$?
diag "$(tail -2 "$ZG_TMP/all.err")"
check "every HSM failing: exit 2 (got $rc)" test "$rc" -eq 2
check "every HSM failing: previous OUT untouched" grep -qx "previous content" "$ZG_TMP/all.signed"
check "every HSM failing: no temporary file left" test -z "$(ls "$ZG_TMP" | grep '\.tmp\.')"
check "every HSM failing: one error line names the cause" grep -q "^zonesign: .*HSM" "$ZG_TMP/all.err"

ZS_EXTRA="--verify-every 1" fault_run nocopy "token=hsm2 fault=nocopy"
check "hsm2 refuses session copies: signed (exit $?)" test -s "$ZG_TMP/nocopy.signed"
diag "$(grep -E 'copy|HSM' "$ZG_TMP/nocopy.err" | head -3)"
check "nocopy: one line names HSM 2 and the token objects" test "$(grep -c '^zonesign: HSM 2 (token hsm2): no session copy of key [kz]sk13 (CKR_ACTION_PROHIBITED); signing with the token objects$' "$ZG_TMP/nocopy.err")" -eq 1
check "nocopy: no other HSM complains" test "$(grep -c 'no session copy' "$ZG_TMP/nocopy.err")" -eq 1
check "nocopy: HSM 2 still signed (summary)" grep -Eq "HSM 2 \(token hsm2\): [1-9][0-9]* signatures" "$ZG_TMP/nocopy.err"
check "nocopy: ldns-verify-zone" zs_verify_ldns tld. "$ZG_TMP/nocopy.signed"
check "nocopy: kzonecheck" zs_verify_knot tld. "$ZG_TMP/nocopy.signed"

if pkcs11-tool --module "$ZG_SOFTHSM_MODULE" --token-label hsm3 --login --pin "$ZG_PIN" \
    --keypairgen --key-type EC:prime256v1 --id ee --label evil --usage-sign >/dev/null 2>&1; then
    echo "previous content" >"$ZG_TMP/badcopy.signed"
    fault_run badcopy "token=hsm3 fault=badcopy label=evil"
    rc=$?
    diag "$(head -3 "$ZG_TMP/badcopy.err")"
    check "hsm3 session copy is another key: exit 1 (got $rc)" test "$rc" -eq 1
    check "badcopy: HSM 3 named with the session copy's probe" grep -q "^zonesign: HSM 3 (token hsm3): key .*session copy of the key: probe signature does not verify" "$ZG_TMP/badcopy.err"
    check "badcopy: previous OUT untouched" grep -qx "previous content" "$ZG_TMP/badcopy.signed"
    check "badcopy: no cache written" test ! -e "$ZG_TMP/badcopy.signed.zsc"
    ZS_EXTRA="--hsm-token-keys" fault_run badcopy2 "token=hsm3 fault=badcopy label=evil"
    check "badcopy with --hsm-token-keys: no copy made, signed (exit $?)" test -s "$ZG_TMP/badcopy2.signed"
    check "badcopy with --hsm-token-keys: kzonecheck" zs_verify_knot tld. "$ZG_TMP/badcopy2.signed"
else
    not_ok "evil key made on hsm3"
fi
done_testing
