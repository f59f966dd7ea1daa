#!/usr/bin/env bash
# tests/hsm/test_zonehsm.sh - zonehsm on three SoftHSM tokens: keygen of a
# KSK (13) and a ZSK (8) by wrap, then check passes and list shows the same
# key tag on all three; 10 and 14 likewise; the import ceremony; key tags
# agree with dnssec-dsfromkey; state changes; refusals (duplicate label,
# Ed25519).
. "$ZG_SRC/tests/hsm/lib.sh"
zh_setup 3 3 dnssec-dsfromkey pkcs11-tool
KS=$ZG_TMP/example.keys

keygen() { zonehsm "${H[@]}" --keyset "$KS" keygen "$@" >>"$ZG_TMP/dnskeys" 2>"$ZG_TMP/err"; }
tag_in_ks() { awk -v l="$1" '$1=="key" && $2==l {for(i=3;i<=NF;i++) if ($i ~ /^tag=/) print substr($i,5)}' "$KS"; }
# key tags of LABEL per HSM in `zonehsm list`, one per line
list_tags() { zonehsm "${H[@]}" --keyset "$KS" list | awk -F'\t' -v l="$1" '$3==l {print $1":"$6}'; }

check_exit 0 "keygen KSK alg 13 (wrap)" keygen --zone example. --label ksk1 --alg 13 --role ksk
check_exit 0 "keygen ZSK alg 8 (wrap)" keygen --label zsk1 --alg RSASHA256 --role zsk
check "DNSKEY RRs printed" test "$(grep -c ' IN DNSKEY ' "$ZG_TMP/dnskeys")" -eq 2
check "KSK has flags 257, ZSK 256" grep -q 'IN DNSKEY 257 3 13 .*ksk1' "$ZG_TMP/dnskeys"
check "ZSK has flags 256" grep -q 'IN DNSKEY 256 3 8 .*zsk1' "$ZG_TMP/dnskeys"
out=$(zonehsm "${H[@]}" --keyset "$KS" check 2>&1); rc=$?
check "check passes on three tokens (exit 0)" test "$rc" -eq 0
check "check prints a one-line summary" test "$(printf '%s\n' "$out" | wc -l)" -eq 1 -a -n "$(printf '%s' "$out" | grep 'passed: 2 keys on 3 HSMs')"
for l in ksk1 zsk1; do
    t=$(tag_in_ks $l)
    got=$(list_tags $l | tr '\n' ' ')
    check "list: $l has key tag $t on HSMs 1, 2 and 3 ($got)" test "$got" = "1:$t 2:$t 3:$t "
done

# Key tags agree with BIND's dnssec-dsfromkey.
for l in ksk1 zsk1; do
    grep " ; $l key tag" "$ZG_TMP/dnskeys" | sed 's/ ;.*//; s/^example\. /example. 3600 /' >"$ZG_TMP/$l.key"
    ds=$(dnssec-dsfromkey -A -2 -f "$ZG_TMP/$l.key" example. 2>&1 | awk '{print $4}')
    check "dnssec-dsfromkey agrees on $l's key tag ($ds)" test "$ds" = "$(tag_in_ks $l)"
done

check_exit 0 "keygen alg 10 (wrap)" keygen --label zsk10 --alg 10 --bits 1024
check_exit 0 "keygen alg 14 (wrap)" keygen --label ksk14 --alg ECDSAP384SHA384 --role ksk
check_exit 0 "keygen alg 13 (import)" keygen --label imp13 --alg 13 --replicate import
check_exit 0 "keygen alg 8 (import, 3072 bits)" keygen --label imp8 --alg 8 --bits 3072 --replicate import
check_exit 0 "keygen alg 10 (import)" keygen --label imp10 --alg 10 --replicate import
check_exit 0 "keygen alg 14 (import)" keygen --label imp14 --alg 14 --replicate import
check_exit 0 "check passes with 8 keys of 4 algorithms" zh "${H[@]}" --keyset "$KS" check
for l in zsk10 ksk14 imp13 imp8 imp10 imp14; do
    t=$(tag_in_ks $l)
    check "list: $l has key tag $t on all three" test "$(list_tags $l | tr '\n' ' ')" = "1:$t 2:$t 3:$t "
done
check "RSA 3072 key: 384-byte modulus" test "$(awk '$2=="imp8"' "$KS" | grep -o 'pubkey=[^ ]*' | cut -c8- | base64 -d | wc -c)" -eq 388

# Private keys are sensitive and not extractable on every token (the wrap
# source too, after replication); the KEK is there once per token.
for i in 1 2 3; do
    objs=$(pkcs11-tool --module "$M" --token-label hsm$i --login --pin "$ZG_PIN" -O 2>/dev/null)
    nsens=$(printf '%s\n' "$objs" | grep -A4 '^Private Key Object' | grep -c 'Access:.*sensitive')
    check "hsm$i: all 8 private keys sensitive" test "$nsens" -eq 8
    check "hsm$i: no private key extractable" test "$(printf '%s\n' "$objs" | grep -A4 '^Private Key Object' | grep -c extractable)" -eq 0
    check "hsm$i: one key-encryption key" test "$(printf '%s\n' "$objs" | grep -c 'label: *zonegate-kek')" -eq 1
done

# Refusals.
check_exit 2 "duplicate label refused" keygen --label ksk1 --alg 13
check "duplicate label: one line naming the label" test "$(wc -l <"$ZG_TMP/err")" -eq 1 -a -n "$(grep 'label ksk1 is already' "$ZG_TMP/err")"
check_exit 2 "Ed25519 by wrap refused: SoftHSM 2.6.1 cannot wrap EdDSA keys (exit 2)" keygen --label ed --alg 15
check "Ed25519 by wrap: one line pointing to --replicate import" test "$(wc -l <"$ZG_TMP/err")" -eq 1 -a -n "$(grep '^zonehsm: HSM 1 (token hsm1): C_WrapKey: CKR_KEY_NOT_WRAPPABLE .*use --replicate import' "$ZG_TMP/err")"
check_exit 2 "Ed448 refused (exit 2)" keygen --label ed --alg 16
check_exit 2 "RSA 512 bits refused" keygen --label small --alg 8 --bits 512
check_exit 2 "RSA 8192 bits refused" keygen --label big --alg 8 --bits 8192
check_exit 2 "--zone of another zone refused" keygen --zone other. --label x --alg 13
check "refusals left the key set at 8 keys" test "$(grep -c '^key ' "$KS")" -eq 8
check "refusals left no object behind" test "$(pkcs11-tool --module "$M" --token-label hsm2 --login --pin "$ZG_PIN" -O 2>/dev/null | grep -c 'label: *\(small\|big\|ed\|x\)$')" -eq 0

# A label already on a token (but not in the key set) is refused too.
pkcs11-tool --module "$M" --token-label hsm3 --login --pin "$ZG_PIN" --keypairgen --key-type EC:prime256v1 --id 99 --label stray >/dev/null 2>&1
check_exit 2 "label present on token 3 refused" keygen --label stray --alg 13
check "message names HSM 3" grep -q 'HSM 3 (token hsm3).*already holds' "$ZG_TMP/err"

# state
before=$(awk '$2=="zsk1"' "$KS" | grep -o 'since=[0-9]*')
sleep 1
check_exit 0 "state zsk1 -> retired" zh --keyset "$KS" state --label zsk1 --set retired
check "state recorded" grep -q '^key zsk1 .*state=retired' "$KS"
check "time of change recorded" test "$(awk '$2=="zsk1"' "$KS" | grep -o 'since=[0-9]*')" != "$before"
check_exit 2 "state of an unknown label refused" zh --keyset "$KS" state --label nope --set active
check_exit 2 "unknown state refused" zh --keyset "$KS" state --label zsk1 --set gone
check_exit 0 "state zsk1 -> removed" zh --keyset "$KS" state --label zsk1 --set removed
check "no temporary files next to the key set" test "$(ls "$ZG_TMP" | grep -c '\.tmp\.')" -eq 0
# A removed key is not part of the proof: delete it from token 2, still pass.
pkcs11-tool --module "$M" --token-label hsm2 --login --pin "$ZG_PIN" --delete-object --type privkey --label zsk1 >/dev/null 2>&1
check_exit 0 "removed key missing on a token: check still passes" zh "${H[@]}" --keyset "$KS" check
check_exit 2 "kek-init refused when a KEK exists" zh "${H[@]}" kek-init

# --hsm-list and pin-source=file:
{ echo "# three HSMs"; for i in 1 2 3; do zg_uri_pinfile $i; done; } >"$ZG_TMP/hsms"
check_exit 0 "check via --hsm-list with pin-source=file:" zh --hsm-list "$ZG_TMP/hsms" --keyset "$KS" check
# Concurrent keygens on one key set: the lock keeps every key.
KS2=$ZG_TMP/concurrent.keys
for i in 1 2 3 4; do
    zonehsm "${H[@]}" --keyset "$KS2" keygen --zone c.example. --label c$i --alg 13 >/dev/null 2>&1 &
done
wait
check "4 concurrent keygens: 4 keys in the key set" test "$(grep -c '^key ' "$KS2")" -eq 4
check_exit 0 "and they check" zh "${H[@]}" --keyset "$KS2" check
# Ed25519 (RFC 8080) by import: one key pair on all three tokens, proven.
KS3=$ZG_TMP/ed.keys
zonehsm "${H[@]}" --keyset "$KS3" keygen --zone ed.example. --label ed1 --alg 15 \
    --role csk --replicate import >"$ZG_TMP/ed.out" 2>"$ZG_TMP/err"
check "Ed25519 by import: DNSKEY printed (alg 15, 32-byte key)" \
    grep -Eq '^ed\.example\. IN DNSKEY 257 3 15 [A-Za-z0-9+/]{43}= ; ed1 key tag [0-9]+$' "$ZG_TMP/ed.out"
check_exit 0 "Ed25519: check passes (3 probe signatures)" zh "${H[@]}" --keyset "$KS3" check
sed 's/ IN DNSKEY / 3600 IN DNSKEY /' "$ZG_TMP/ed.out" >"$ZG_TMP/ed.key"
check "Ed25519: dnssec-dsfromkey computes the same key tag" test "$(dnssec-dsfromkey -2 -f "$ZG_TMP/ed.key" ed.example. 2>/dev/null | awk '{print $4}')" = "$(awk '$2=="ed1"' "$KS3" | grep -o 'tag=[0-9]*' | cut -d= -f2)"
for i in 1 2 3; do
    # the private key objects labelled ed1, one block each
    pkcs11-tool --module "$M" --token-label hsm$i --login --pin "$ZG_PIN" -O --type privkey 2>/dev/null |
        awk '/^Private Key Object/ { if (b ~ /label: *ed1\n/) print b; b = "" } { b = b $0 "\n" }
             END { if (b ~ /label: *ed1\n/) print b }' >"$ZG_TMP/ed.obj"
    check "Ed25519 on hsm$i: one private key, sensitive, not extractable" \
        test "$(grep -c '^Private Key Object; EC_EDWARDS' "$ZG_TMP/ed.obj")" -eq 1 -a \
        -n "$(grep 'Access:.*sensitive' "$ZG_TMP/ed.obj")" -a -z "$(grep 'extractable' "$ZG_TMP/ed.obj")"
done
check "--help lists every command" sh -c 'zonehsm --help | grep -q keygen && zonehsm --help | grep -q check && zonehsm --help | grep -q list && zonehsm --help | grep -q state && zonehsm --help | grep -q kek-init && zonehsm --help | grep -q -- --replicate'
done_testing
