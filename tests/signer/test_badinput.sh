#!/usr/bin/env bash
# tests/signer/test_badinput.sh - malformed input: exit 2, one line
# "zonesign: FILE:LINE: reason" with the true line, no output file, and an
# existing OUT left untouched.  Fixtures: tests/data/signer/bad-*.zone, each
# with its expected line in a "; expect-line: N" header (0: no line).
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util zonesign zonehsm
zs_setup 1 13 csk

for f in "$ZG_SRC"/tests/data/signer/bad-*.zone; do
    name=$(basename "$f")
    want=$(sed -n 's/^; expect-line: *\([0-9]*\).*/\1/p' "$f" | head -1)
    wfile=$(sed -n 's/^; expect-file: *\([^ ]*\).*/\1/p' "$f" | head -1)
    where=$f
    [ -n "$wfile" ] && where="$(dirname "$f")/$wfile"
    out="$ZG_TMP/out-$name"
    zs_sign 1 --keyset "$ZG_TMP/ks" -o "$out" "$f" 2>"$ZG_TMP/err"
    rc=$?
    check "$name: exit 2 (got $rc)" test "$rc" -eq 2
    check "$name: no output file" test ! -e "$out"
    check "$name: one error line" test "$(grep -c '^zonesign: ' "$ZG_TMP/err" | head -1)" -ge 1
    if [ "${want:-0}" -gt 0 ]; then
        check "$name: error names $(basename "$where"):$want" grep -q "^zonesign: $where:$want: " "$ZG_TMP/err"
    fi
    diag "$(head -1 "$ZG_TMP/err")"
done

# a missing input file
zs_sign 1 --keyset "$ZG_TMP/ks" -o "$ZG_TMP/x" "$ZG_TMP/nonexistent.zone" 2>"$ZG_TMP/err"
check "missing file: exit 2" test $? -eq 2
check "missing file: named" grep -q "nonexistent.zone" "$ZG_TMP/err"
check "missing file: no output" test ! -e "$ZG_TMP/x"

# an existing OUT stays untouched when the input is bad
echo "previous content" >"$ZG_TMP/keep.zone"
zs_sign 1 --keyset "$ZG_TMP/ks" -o "$ZG_TMP/keep.zone" \
    "$ZG_SRC/tests/data/signer/bad-syntax.zone" 2>/dev/null
check "previous OUT untouched" grep -qx "previous content" "$ZG_TMP/keep.zone"
check "no temporary files left" test -z "$(ls "$ZG_TMP" | grep '\.tmp\.')"

# warnings, not errors: duplicates, TTL disagreement, DNSSEC records in input
f="$ZG_SRC/tests/data/signer/warn-policy.zone"
zs_sign 1 --keyset "$ZG_TMP/ks" -o "$ZG_TMP/w.signed" "$f" 2>"$ZG_TMP/err"
check "warn-policy.zone: signed (exit 0)" test $? -eq 0
check "duplicate warned with file:line" grep -q "$f:7: duplicate A record dropped" "$ZG_TMP/err"
check "TTL disagreement warned with file:line" grep -q "$f:9: TTL 600 of A record set to 300" "$ZG_TMP/err"
check "input DNSKEY warned with file:line" grep -q "$f:10: DNSKEY record in the input dropped" "$ZG_TMP/err"
check "one copy of the duplicate kept" test "$(grep -c '^dup.tld. .* A 192.0.2.1$' "$ZG_TMP/w.signed")" -eq 1
check "RRset TTL is the smallest" test "$(awk '$1=="ttl.tld." && $4=="A" {print $2}' "$ZG_TMP/w.signed" | sort -u)" = 300

# $INCLUDE, multi-line records and relative names: signs and validates
f="$ZG_SRC/tests/data/signer/good-include.zone"
zs_sign 1 --keyset "$ZG_TMP/ks" -o "$ZG_TMP/inc.signed" "$f" 2>"$ZG_TMP/err"
check "good-include.zone: signed" test $? -eq 0
check "included records present" grep -q '^www.tld. 3600 IN TXT "included"$' "$ZG_TMP/inc.signed"
check "included DS signed" grep -q '^secure.tld. 3600 IN RRSIG DS ' "$ZG_TMP/inc.signed"
check "glue not signed" test -z "$(grep '^ns.sub.tld. .* RRSIG' "$ZG_TMP/inc.signed")"
if command -v ldns-verify-zone >/dev/null; then
    check "good-include.zone: ldns-verify-zone" zs_verify_ldns tld. "$ZG_TMP/inc.signed"
else
    not_ok "ldns-verify-zone missing"
fi

# an output directory that does not exist: exit 2, one line
zs_sign 1 --keyset "$ZG_TMP/ks" -o "$ZG_TMP/no/such/dir/out.zone" "$f" 2>"$ZG_TMP/err"
check "unwritable OUT: exit 2" test $? -eq 2
check "unwritable OUT: named" grep -q "^zonesign: $ZG_TMP/no/such/dir/out.zone: " "$ZG_TMP/err"

# HSMs that cannot be used: exit 2, one line naming the HSM and why, no
# output, an existing OUT untouched, and the PIN in no message
hsm_fails() { # NAME WANT URI: zonesign through URI fails as WANT says
    local name=$1 want=$2 uri=$3
    echo "previous content" >"$ZG_TMP/hk.zone"
    zonesign --hsm "$uri" --keyset "$ZG_TMP/ks" -o "$ZG_TMP/hk.zone" "$f" \
        2>"$ZG_TMP/herr"
    local rc=$?
    check "$name: exit 2 (got $rc)" test "$rc" -eq 2
    check "$name: one line: $want" \
        bash -c "test \"\$(wc -l <'$ZG_TMP/herr')\" -eq 1 && grep -q '^zonesign: .*$want' '$ZG_TMP/herr'"
    check "$name: previous OUT untouched, no temporary file" \
        bash -c "grep -qx 'previous content' '$ZG_TMP/hk.zone' && test -z \"\$(ls '$ZG_TMP' | grep '\.tmp\.')\""
    check "$name: the PIN is in no message" bash -c "! grep -q 9999 '$ZG_TMP/herr'"
    diag "$(head -1 "$ZG_TMP/herr")"
}
mod=${ZG_MODULE:-$ZG_SOFTHSM_MODULE}
hsm_fails "wrong PIN" "login refused" \
    "pkcs11:token=hsm1?module-path=$mod&pin-value=9999"
hsm_fails "no such token" 'no token matches "hsm9"' \
    "pkcs11:token=hsm9?module-path=$mod&pin-value=9999"
hsm_fails "no such module" "cannot load PKCS#11 module" \
    "pkcs11:token=hsm1?module-path=$ZG_TMP/nonexistent.so&pin-value=9999"
hsm_fails "unreadable pin-source" "cannot read PIN file" \
    "pkcs11:token=hsm1?module-path=$mod&pin-source=file:$ZG_TMP/no-pin-file"

# bad options: exit 2
check_exit 2 "bad --serial" zs_sign 1 --keyset "$ZG_TMP/ks" --serial bogus -o "$ZG_TMP/y" "$f" 2>/dev/null
check_exit 2 "bad --expiration" zs_sign 1 --keyset "$ZG_TMP/ks" --expiration tomorrow -o "$ZG_TMP/y" "$f" 2>/dev/null
check_exit 2 "expiration before inception" zs_sign 1 --keyset "$ZG_TMP/ks" --inception now --expiration now-1d -o "$ZG_TMP/y" "$f" 2>/dev/null
check "no output after bad options" test ! -e "$ZG_TMP/y"
done_testing
