#!/usr/bin/env bash
# tests/hsm/test_fault_may2026.sh - the May 2026 fault: tokens 2 and 3
# each hold their own key pair under the key's label and CKA_ID.  `check`
# must exit 1 and name tokens 2 and 3 with the expected key tag and the
# tag each of them really holds; token 1 is fine and must not be named.
. "$ZG_SRC/tests/hsm/lib.sh"
zh_setup 3 3 pkcs11-tool
KS=$ZG_TMP/ks

# The key set gets the key of token 1 only...
check_exit 0 "keygen on HSM 1 alone" zh --hsm "$(zg_uri 1)" --keyset "$KS" keygen --zone de. --label ksk1 --alg 13 --role ksk
id=$(awk '$2=="ksk1"' "$KS" | grep -o 'id=[0-9a-f]*' | cut -c4-)
want=$(awk '$2=="ksk1"' "$KS" | grep -o 'tag=[0-9]*' | cut -c5-)
# ...and tokens 2 and 3 generate their own pairs under the same label/ID.
for i in 2 3; do
    pkcs11-tool --module "$M" --token-label hsm$i --login --pin "$ZG_PIN" \
        --keypairgen --key-type EC:prime256v1 --id "$id" --label ksk1 --usage-sign >/dev/null 2>&1
    check "planted an own key pair on token $i" test $? -eq 0
done
zonehsm "${H[@]}" --keyset "$KS" list >"$ZG_TMP/list"
t2=$(awk -F'\t' '$1==2 && $3=="ksk1" {print $6}' "$ZG_TMP/list")
t3=$(awk -F'\t' '$1==3 && $3=="ksk1" {print $6}' "$ZG_TMP/list")
check "list shows three different key tags ($want $t2 $t3)" test -n "$t2" -a -n "$t3" -a "$t2" != "$want" -a "$t3" != "$want" -a "$t2" != "$t3"

zonehsm "${H[@]}" --keyset "$KS" check >"$ZG_TMP/out" 2>"$ZG_TMP/err"
rc=$?
diag "$(cat "$ZG_TMP/err")"
check "check exits 1" test "$rc" -eq 1
check "HSM 2 named with both key tags" grep -qx "zonehsm: HSM 2 (token hsm2): key ksk1: expected key tag $want, found $t2: public key differs from DNSKEY" "$ZG_TMP/err"
check "HSM 3 named with both key tags" grep -qx "zonehsm: HSM 3 (token hsm3): key ksk1: expected key tag $want, found $t3: public key differs from DNSKEY" "$ZG_TMP/err"
check "HSM 1 not named" test "$(grep -c 'HSM 1 ' "$ZG_TMP/err")" -eq 0
check "one line per mismatch and a summary" test "$(wc -l <"$ZG_TMP/err")" -eq 3
check "nothing on stdout" test ! -s "$ZG_TMP/out"
check_exit 0 "HSM 1 alone is consistent" zh --hsm "$(zg_uri 1)" --keyset "$KS" check
check_exit 1 "HSMs 1 and 3 fail" zh --hsm "$(zg_uri 1)" --hsm "$(zg_uri 3)" --keyset "$KS" check

# The same fault with RSA: the tag found is computed from the token's key.
check_exit 0 "keygen RSA ZSK on HSM 1 alone" zh --hsm "$(zg_uri 1)" --keyset "$KS" keygen --label zsk1 --alg 8 --bits 1024
id=$(awk '$2=="zsk1"' "$KS" | grep -o 'id=[0-9a-f]*' | cut -c4-)
pkcs11-tool --module "$M" --token-label hsm2 --login --pin "$ZG_PIN" \
    --keypairgen --key-type rsa:1024 --id "$id" --label zsk1 --usage-sign >/dev/null 2>&1
zonehsm --hsm "$(zg_uri 1)" --hsm "$(zg_uri 2)" --keyset "$KS" check 2>"$ZG_TMP/err"
check "RSA: check exits 1" test $? -eq 1
check "RSA: HSM 2 named for zsk1" grep -q '^zonehsm: HSM 2 (token hsm2): key zsk1: expected key tag [0-9]*, found [0-9]*: public key differs from DNSKEY$' "$ZG_TMP/err"
# A token missing the key altogether.
zonehsm --hsm "$(zg_uri 1)" --hsm "$(zg_uri 3)" --keyset "$KS" check 2>"$ZG_TMP/err"
check "missing key: check exits 1" test $? -eq 1
check "missing key: HSM 2 (token hsm3) named, found none" grep -q '^zonehsm: HSM 2 (token hsm3): key zsk1: expected key tag [0-9]*, found none: no private key' "$ZG_TMP/err"
done_testing
