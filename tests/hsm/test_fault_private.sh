#!/usr/bin/env bash
# tests/hsm/test_fault_private.sh - a token holds the right public key
# object but a different private key (same label and CKA_ID).  Comparing
# public keys passes; only the probe signature catches it: check exits 1
# naming that token.
. "$ZG_SRC/tests/hsm/lib.sh"
zh_setup 3 3 pkcs11-tool openssl
KS=$ZG_TMP/ks
p11() { pkcs11-tool --module "$M" --token-label "$1" --login --pin "$ZG_PIN" "${@:2}" >/dev/null 2>&1; }

# swap_private TOKEN LABEL KEYTYPE: a new private key under the key's
# label and CKA_ID replaces the old one; the public key object stays.
swap_private() {
    local tok=$1 label=$2 type=$3 id
    id=$(awk -v l="$label" '$2==l' "$KS" | grep -o 'id=[0-9a-f]*' | cut -c4-)
    p11 "$tok" --delete-object --type privkey --id "$id" &&
        p11 "$tok" --keypairgen --key-type "$type" --id ffee --label "$label" --usage-sign &&
        p11 "$tok" --delete-object --type pubkey --id ffee &&
        p11 "$tok" --type privkey --id ffee --set-id "$id"
}

check_exit 0 "keygen ECDSA KSK on three tokens" zh "${H[@]}" --keyset "$KS" keygen --zone example. --label ksk1 --alg 13 --role ksk
check_exit 0 "keygen RSA ZSK on three tokens" zh "${H[@]}" --keyset "$KS" keygen --label zsk1 --alg 8 --bits 1024 --replicate import
check_exit 0 "check passes before the swap" zh "${H[@]}" --keyset "$KS" check

check "swapped the private key of ksk1 on token 2" swap_private hsm2 ksk1 EC:prime256v1
check "swapped the private key of zsk1 on token 3" swap_private hsm3 zsk1 rsa:1024
zonehsm "${H[@]}" --keyset "$KS" list >"$ZG_TMP/list"
want=$(awk '$2=="ksk1"' "$KS" | grep -o 'tag=[0-9]*' | cut -c5-)
check "list (public objects) still shows the right key tag on token 2" \
    test "$(awk -F'\t' '$1==2 && $6=='"$want"'' "$ZG_TMP/list" | wc -l)" -eq 1

zonehsm "${H[@]}" --keyset "$KS" check >"$ZG_TMP/out" 2>"$ZG_TMP/err"
rc=$?
diag "$(cat "$ZG_TMP/err")"
check "check exits 1" test "$rc" -eq 1
check "the probe names HSM 2 for ksk1" grep -q "^zonehsm: HSM 2 (token hsm2): key ksk1: expected key tag $want, found unknown: probe signature does not verify against DNSKEY\$" "$ZG_TMP/err"
check "the probe names HSM 3 for zsk1" grep -q "^zonehsm: HSM 3 (token hsm3): key zsk1: expected key tag [0-9]*, found [0-9]*: probe signature does not verify against DNSKEY\$" "$ZG_TMP/err"
check "HSM 1 is not named" test "$(grep -c 'HSM 1 ' "$ZG_TMP/err")" -eq 0
check "no other mismatch" test "$(grep -c '^zonehsm: HSM' "$ZG_TMP/err")" -eq 2
done_testing
