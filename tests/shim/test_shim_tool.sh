#!/usr/bin/env bash
# tests/shim/test_shim_tool.sh - libzgshim.so as pkcs11-tool sees it: one
# signature per process (counted faults with after=N>0 are exercised by
# test_shim_counted.sh).  Signatures are checked with openssl.
#
#   test_shim_tool.sh SHIM SHIMSIGN     (run by meson with ZG_SRC set)
set -u
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/shim/shim_lib.sh"
shim_setup "$1" "$2" 3

check "EC key zsk on hsm1" shim_keygen hsm1 zsk 01 EC:prime256v1
check "EC key zsk on hsm2" shim_keygen hsm2 zsk 01 EC:prime256v1
check "EC key evil on hsm2" shim_keygen hsm2 evil 02 EC:prime256v1
check "EC key zsk on hsm3" shim_keygen hsm3 zsk 01 EC:prime256v1

# sign TOKEN OUT: one ECDSA signature (DER) by key zsk through the shim.
sign() {
    rm -f "$2"
    shim_tool --token-label "$1" --login --pin env:ZG_TEST_PIN --sign \
        -m ECDSA -f openssl --label zsk -i "$ZG_TMP/digest" -o "$2" \
        >"$ZG_TMP/out" 2>"$ZG_TMP/err"
}
not_verify() { ! shim_verify "$@"; }
not() { ! "$@"; }

# --- pass-through -------------------------------------------------------
unset ZG_SHIM_CONF
shim_tool -L >"$ZG_TMP/list" 2>&1
check "slot list through the shim shows hsm1..hsm3" \
    test "$(grep -c 'token label *: hsm[123]$' "$ZG_TMP/list")" -eq 3
check "no config: signing works" sign hsm1 "$ZG_TMP/pass.sig"
check "no config: signature verifies with hsm1 zsk" \
    shim_verify "$ZG_TMP/hsm1-zsk.pem" "$ZG_TMP/pass.sig"
check "verification tells keys apart (hsm2 evil rejects it)" \
    not_verify "$ZG_TMP/hsm2-evil.pem" "$ZG_TMP/pass.sig"
check "no config: shim prints nothing" not grep -q zgshim "$ZG_TMP/err"

shim_conf 'token=hsm2 fault=flipbit' 'token=hsm3 fault=deverror'
check "faults are per token: hsm1 signs" sign hsm1 "$ZG_TMP/other.sig"
check "faults are per token: hsm1 signature verifies" \
    shim_verify "$ZG_TMP/hsm1-zsk.pem" "$ZG_TMP/other.sig"

shim_conf '# comment line' '' \
    '  token=hsm1   fault=delay ms=0 after=0  # trailing comment' \
    'token=hsm1 fault=flipbit after=5' 'token=hsm1 fault=swapkey label=x after=9'
check "comments, blank lines, several faults for one token: accepted" \
    sign hsm1 "$ZG_TMP/many.sig"
check "faults not yet due (after=5, after=9): signature verifies" \
    shim_verify "$ZG_TMP/hsm1-zsk.pem" "$ZG_TMP/many.sig"

# --- each fault from the first signature on -----------------------------
shim_conf 'token=hsm1 fault=flipbit after=0'
check "flipbit: pkcs11-tool still succeeds" sign hsm1 "$ZG_TMP/flip.sig"
check "flipbit: signature does not verify" \
    not_verify "$ZG_TMP/hsm1-zsk.pem" "$ZG_TMP/flip.sig"

shim_conf 'token=hsm3 fault=deverror after=0'
check_exit 1 "deverror: pkcs11-tool fails" sign hsm3 "$ZG_TMP/dev.sig"
check "deverror: reported as CKR_DEVICE_ERROR" \
    grep -q CKR_DEVICE_ERROR "$ZG_TMP/err"

shim_conf 'token=hsm2 fault=swapkey after=0 label=evil'
check "swapkey: pkcs11-tool succeeds" sign hsm2 "$ZG_TMP/swap.sig"
check "swapkey: signature verifies with the evil key" \
    shim_verify "$ZG_TMP/hsm2-evil.pem" "$ZG_TMP/swap.sig"
check "swapkey: signature does not verify with zsk" \
    not_verify "$ZG_TMP/hsm2-zsk.pem" "$ZG_TMP/swap.sig"

shim_conf 'token=hsm2 fault=swapkey after=0 label=nosuchkey'
check_exit 1 "swapkey to a missing key: signing fails" \
    sign hsm2 "$ZG_TMP/nokey.sig"
check "swapkey to a missing key: one line says so" \
    test "$(grep -c '^zgshim: token hsm2: no private key labelled "nosuchkey"$' \
        "$ZG_TMP/err")" -eq 1

shim_conf 'token=hsm1 fault=losesession after=0'
check_exit 1 "losesession: pkcs11-tool fails" sign hsm1 "$ZG_TMP/lose.sig"
check "losesession: reported as CKR_SESSION_HANDLE_INVALID" \
    grep -q CKR_SESSION_HANDLE_INVALID "$ZG_TMP/err"

# --- delay: a lower bound only -----------------------------------------
unset ZG_SHIM_CONF
t0=$(now_ms); sign hsm1 "$ZG_TMP/fast.sig"; t1=$(now_ms)
diag "one signature without delay: $((t1 - t0)) ms"
shim_conf 'token=hsm1 fault=delay ms=1500'
t0=$(now_ms); sign hsm1 "$ZG_TMP/slow.sig"; rc=$?; t1=$(now_ms)
diag "one signature with ms=1500: $((t1 - t0)) ms"
check "delay: signing still succeeds" test "$rc" -eq 0
check "delay: signature verifies" \
    shim_verify "$ZG_TMP/hsm1-zsk.pem" "$ZG_TMP/slow.sig"
check "delay: the call took at least 1500 ms" test $((t1 - t0)) -ge 1500

# --- malformed configuration: one line, C_Initialize fails -------------
# bad_conf LINENO 'LINE'...: the module refuses to initialise, says so in
# exactly one line naming the file and line, and no signature is written.
bad_conf() {
    local want=$1 desc
    shift
    desc=$(printf '%s|' "$@" | cut -c1-60)
    shim_conf "$@"
    sign hsm1 "$ZG_TMP/bad.sig"
    local rc=$?
    local n
    n=$(grep -c "^zgshim: $ZG_SHIM_CONF:$want: " "$ZG_TMP/err")
    if [ "$rc" -ne 0 ] && [ "$n" -eq 1 ] &&
        [ "$(grep -c '^zgshim:' "$ZG_TMP/err")" -eq 1 ] &&
        grep -q 'C_Initialize.*CKR_GENERAL_ERROR' "$ZG_TMP/err" &&
        [ ! -s "$ZG_TMP/bad.sig" ]; then
        ok "malformed config refused: $desc"
    else
        not_ok "malformed config refused: $desc (exit $rc)"
        diag "$(cat "$ZG_TMP/err")"
    fi
}
bad_conf 1 'token=hsm1 fault=explode'
bad_conf 1 'fault=flipbit'
bad_conf 1 'token=hsm1'
bad_conf 1 'token=hsm1 fault=flipbit after=-1'
bad_conf 1 'token=hsm1 fault=flipbit after=12x'
bad_conf 1 'token=hsm1 fault=flipbit after=99999999999999999999999'
bad_conf 1 'token=hsm1 fault=flipbit after='
bad_conf 1 'token=hsm1 fault=flipbit colour=red'
bad_conf 1 'token=hsm1 fault=flipbit stray'
bad_conf 1 'token=hsm1 fault=flipbit fault=delay'
bad_conf 1 'token=hsm1 fault=swapkey'
bad_conf 1 'token=hsm1 fault=flipbit label=evil'
bad_conf 1 'token=hsm1 fault=delay'
bad_conf 1 'token=hsm1 fault=delay ms=700000'
bad_conf 1 'token=hsm1 fault=flipbit ms=5'
bad_conf 1 'token=abcdefghijklmnopqrstuvwxyz0123456 fault=flipbit'
bad_conf 3 '# ok so far' 'token=hsm1 fault=flipbit' 'token=hsm1 fault=flipbit'
bad_conf 2 'token=hsm1 fault=flipbit' 'token=hsm2 =x'
bad_conf 1 "token=hsm1 fault=flipbit after=1 $(printf 'x%.0s' {1..1100})"

export ZG_SHIM_CONF=$ZG_TMP/does-not-exist.conf
sign hsm1 "$ZG_TMP/nofile.sig"
rc=$?
check "a config path that does not exist is refused" test "$rc" -ne 0
check "... with one line naming it" test "$(grep -c \
    "^zgshim: $ZG_SHIM_CONF: No such file or directory$" "$ZG_TMP/err")" -eq 1

unset ZG_SHIM_CONF
export ZG_SHIM_MODULE=$ZG_TMP/no-such-module.so
sign hsm1 "$ZG_TMP/nomod.sig"
rc=$?
check "a real module that does not load is refused" test "$rc" -ne 0
check "... with one line naming it" \
    test "$(grep -c "^zgshim: cannot load $ZG_SHIM_MODULE" "$ZG_TMP/err")" -eq 1
unset ZG_SHIM_MODULE

done_testing
