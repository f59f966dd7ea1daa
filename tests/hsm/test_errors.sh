#!/usr/bin/env bash
# tests/hsm/test_errors.sh - zonehsm on bad input: wrong PIN, missing
# token, missing module, malformed URI, missing or bad key set, bad flags.
# Each: exit 2, exactly one line on stderr starting "zonehsm: ", no crash,
# and the PIN never appears in the output.
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
command -v softhsm2-util >/dev/null || skip_all "softhsm2-util missing"
zg_tmpdir
# zonehsm with its output kept out of the TAP stream
zh() { zonehsm "$@" >"$ZG_TMP/zh.out" 2>"$ZG_TMP/zh.err"; }
zg_softhsm_init "$ZG_TMP" 2 || { not_ok "tokens made"; done_testing; }
M=$ZG_SOFTHSM_MODULE
KS=$ZG_TMP/ks
SECRET=7391a8Zq
zonehsm --hsm "$(zg_uri 1)" --hsm "$(zg_uri 2)" --keyset "$KS" keygen --zone example. --label k1 --alg 13 >/dev/null 2>&1 ||
    not_ok "keygen for the error tests"
printf '%s\n' "$SECRET" >"$ZG_TMP/wrongpin"

# expect_error DESC PATTERN ARGS...: exit 2, one stderr line, pattern found
expect_error() {
    local desc=$1 pat=$2 rc lines
    shift 2
    zonehsm "$@" >"$ZG_TMP/out" 2>"$ZG_TMP/err"
    rc=$?
    lines=$(wc -l <"$ZG_TMP/err")
    if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && grep -q '^zonehsm: ' "$ZG_TMP/err" &&
        grep -q -- "$pat" "$ZG_TMP/err" && [ ! -s "$ZG_TMP/out" ]; then
        ok "$desc"
    else
        not_ok "$desc (exit $rc, $lines lines)"
        diag "$(cat "$ZG_TMP/err")"
    fi
    if grep -q -e "$SECRET" -e "pin-value=" "$ZG_TMP/err" "$ZG_TMP/out"; then
        not_ok "$desc: PIN printed"
    else
        ok "$desc: PIN not printed"
    fi
}

expect_error "wrong PIN (pin-value)" "HSM 1 (token hsm1): login refused" \
    --hsm "pkcs11:token=hsm1?module-path=$M&pin-value=$SECRET" --keyset "$KS" check
expect_error "wrong PIN (pin-source)" "HSM 2 (token hsm2): login refused" \
    --hsm "$(zg_uri 1)" --hsm "pkcs11:token=hsm2?module-path=$M&pin-source=file:$ZG_TMP/wrongpin" --keyset "$KS" check
expect_error "missing token" 'HSM 2: no token matches "hsm9"' \
    --hsm "$(zg_uri 1)" --hsm "pkcs11:token=hsm9?module-path=$M&pin-value=$SECRET" --keyset "$KS" check
expect_error "missing serial" 'no token matches "0000"' \
    --hsm "pkcs11:serial=0000?module-path=$M&pin-value=$SECRET" --keyset "$KS" check
expect_error "missing module" "cannot load PKCS#11 module /nonexistent/libp11mod.so" \
    --hsm "pkcs11:token=hsm1?module-path=/nonexistent/libp11mod.so&pin-value=$SECRET" --keyset "$KS" check
expect_error "module that is not a PKCS#11 module" "C_GetFunctionList" \
    --hsm "pkcs11:token=hsm1?module-path=$(ldd "$(command -v bash)" | awk '/libc\.so/ {print $3}')&pin-value=$SECRET" --keyset "$KS" check
expect_error "malformed URI: scheme" "does not start with pkcs11:" \
    --hsm "pkcs12:token=hsm1?module-path=$M&pin-value=$SECRET" --keyset "$KS" check
expect_error "malformed URI: percent-encoding" "bad percent-encoding" \
    --hsm "pkcs11:token=hsm%G1?module-path=$M&pin-value=$SECRET" --keyset "$KS" check
expect_error "malformed URI: slot-id" "slot-id" \
    --hsm "pkcs11:slot-id=1?module-path=$M&pin-value=$SECRET" --keyset "$KS" check
expect_error "malformed URI: no module-path" "no module-path" \
    --hsm "pkcs11:token=hsm1?pin-value=$SECRET" --keyset "$KS" check
expect_error "no PIN" "no PIN" \
    --hsm "pkcs11:token=hsm1?module-path=$M" --keyset "$KS" check
expect_error "unreadable PIN file" "cannot read PIN file" \
    --hsm "pkcs11:token=hsm1?module-path=$M&pin-source=file:$ZG_TMP/nope" --keyset "$KS" check
expect_error "same token twice" "same token" \
    --hsm "$(zg_uri 1)" --hsm "$(zg_uri 1)" --keyset "$KS" check
ln -s "$M" "$ZG_TMP/module-link.so"
expect_error "same token through another path to the module" "same token" \
    --hsm "$(zg_uri 1)" --hsm "pkcs11:token=hsm1?module-path=$ZG_TMP/module-link.so&pin-value=$SECRET" --keyset "$KS" check
expect_error "missing key set" "$ZG_TMP/none: No such file" \
    --hsm "$(zg_uri 1)" --keyset "$ZG_TMP/none" check
printf 'zone example.\nkey k1 id=01 role=ksk alg=13\n' >"$ZG_TMP/bad"
expect_error "bad key set: FILE:LINE: reason" "$ZG_TMP/bad:2: missing field" \
    --hsm "$(zg_uri 1)" --keyset "$ZG_TMP/bad" check
expect_error "bad key set in list" "$ZG_TMP/bad:2:" --hsm "$(zg_uri 1)" --keyset "$ZG_TMP/bad" list
expect_error "bad key set in keygen" "$ZG_TMP/bad:2:" --hsm "$(zg_uri 1)" --keyset "$ZG_TMP/bad" keygen --label x --alg 13
expect_error "no HSM" "no HSM given" --keyset "$KS" check
expect_error "no command" "no command" --keyset "$KS"
expect_error "unknown command" "unknown command" --keyset "$KS" frobnicate
expect_error "unknown option" "unknown option --pin" --pin 1234 --keyset "$KS" check
expect_error "option without value" "needs a value" --keyset
expect_error "unknown algorithm" "unknown algorithm" --hsm "$(zg_uri 1)" --keyset "$KS" keygen --label x --alg 3
expect_error "missing --hsm-list" "nonexistent-list" --hsm-list "$ZG_TMP/nonexistent-list" --keyset "$KS" check
expect_error "keygen without --zone on a new key set" "give --zone" --hsm "$(zg_uri 1)" --keyset "$ZG_TMP/new" keygen --label x --alg 13
check "no key set file made by failed keygens" test ! -e "$ZG_TMP/new"
check_exit 0 "the good key set still checks" zh --hsm "$(zg_uri 1)" --hsm "$(zg_uri 2)" --keyset "$KS" check
done_testing
