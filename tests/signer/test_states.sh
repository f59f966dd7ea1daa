#!/usr/bin/env bash
# tests/signer/test_states.sh - key state "signing" (RFC 6781 4.1.4): a key
# that signs the zone's data without being in the DNSKEY RRset.  KSK+ZSK
# and CSK forms; the DNSKEY RRset holds only the published keys and is
# signed only by them; every other signed RRset carries a signature of the
# signing-state key too; zonegate accepts the zone only when told the
# incoming key (--incoming-keys), and refuses it as unknown-key otherwise.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util ldns-read-zone dnssec-dsfromkey zonesign zonehsm zonegen zonegate
zs_setup 2 8 split
zonegen --origin tld. --delegations 300 --ds-fraction 0.2 --seed 9 --extras \
    -o "$T/z.zone"
mapfile -t HSM < <(zg_hsm_args 2)

# RRSIG counts per key tag and covered class: "tag dnskey|data".
sig_counts() {
    ldns-read-zone "$1" | awk '$4 == "RRSIG" { print $11, ($5 == "DNSKEY" ? "dnskey" : "data") }' |
        sort | uniq -c | awk '{ print $2, $3, $1 }'
}
count() { # FILE TAG CLASS
    awk -v t="$2" -v c="$3" '$1 == t && $2 == c { print $3; f = 1 } END { if (!f) print 0 }' "$1"
}
tag() { awk -v l="$2" '$1 == "key" && $2 == l { for (i = 3; i <= NF; i++) if ($i ~ /^tag=/) print substr($i, 5) }' "$1"; }

zonehsm "${HSM[@]}" --keyset "$T/ks" keygen --zone tld. --label ksk13 --alg 13 \
    --role ksk --state signing >"$T/incoming" 2>"$T/err"
check "keygen --state signing (exit $?)" test -s "$T/incoming"
zonehsm "${HSM[@]}" --keyset "$T/ks" keygen --zone tld. --label zsk13 --alg 13 \
    --role zsk --state signing >>"$T/incoming" 2>>"$T/err"
check "the key set records state=signing" test "$(grep -c '^key [kz]sk13 .*state=signing' "$T/ks")" -eq 2
check "keygen printed both DNSKEY RRs" test "$(grep -c 'DNSKEY' "$T/incoming")" -eq 2

zs_sign 2 --keyset "$T/ks" --quiet -o "$T/s.zone" "$T/z.zone" 2>"$T/sign.err"
check "signed with two keys in state signing (exit $?)" test -s "$T/s.zone"
sig_counts "$T/s.zone" >"$T/counts"
diag "$(tr '\n' ';' <"$T/counts")"
ldns-read-zone "$T/s.zone" | awk '$4 == "DNSKEY"' >"$T/dnskeys"
dnssec-dsfromkey -2 -f "$T/dnskeys" tld. >"$T/ds" 2>/dev/null
K8=$(tag "$T/ks" ksk8) Z8=$(tag "$T/ks" zsk8) K13=$(tag "$T/ks" ksk13) Z13=$(tag "$T/ks" zsk13)
check "DNSKEY RRset: the two alg 8 keys only" test "$(ldns-read-zone "$T/s.zone" | awk '$4 == "DNSKEY" { print $7 }' | sort | tr '\n' ' ')" = "8 8 "
check "DNSKEY RRset signed by ksk8 only" test "$(count "$T/counts" "$K8" dnskey)" -eq 1 -a \
    "$(count "$T/counts" "$K13" dnskey)" -eq 0 -a "$(count "$T/counts" "$Z13" dnskey)" -eq 0
n8=$(count "$T/counts" "$Z8" data)
check "zsk13 signs every RRset zsk8 signs ($n8)" test "$n8" -gt 300 -a "$(count "$T/counts" "$Z13" data)" -eq "$n8"
check "ksk13 signs nothing (a ZSK of its algorithm signs)" test "$(count "$T/counts" "$K13" data)" -eq 0
zonegate --origin tld. --ds "$T/ds" --unsigned "$T/z.zone" --incoming-keys "$T/incoming" "$T/s.zone" >"$T/gate.out" 2>&1
rc=$?
check "zonegate --incoming-keys: exit 0, PASS (got $rc)" test "$rc" -eq 0 -a -n "$(grep '^zonegate: PASS tld\. ' "$T/gate.out")"
zonegate --origin tld. --ds "$T/ds" --unsigned "$T/z.zone" "$T/s.zone" >"$T/gate2.out" 2>&1
rc=$?
check "zonegate without --incoming-keys: exit 1, unknown-key (got $rc)" test "$rc" -eq 1 -a -n "$(grep '^problem unknown-key' "$T/gate2.out")"

# CSK form: csk13 in state signing beside the active KSK/ZSK of alg 8 signs
# the data (no ZSK of its algorithm is in that state).
zonehsm --keyset "$T/ks" state --label zsk13 --set removed >/dev/null
zonehsm --keyset "$T/ks" state --label ksk13 --set removed >/dev/null
zonehsm "${HSM[@]}" --keyset "$T/ks" keygen --zone tld. --label csk13 --alg 13 \
    --role csk --state signing >"$T/incoming.csk" 2>>"$T/err"
zs_sign 2 --keyset "$T/ks" --quiet -o "$T/c.zone" "$T/z.zone" 2>"$T/sign.err"
sig_counts "$T/c.zone" >"$T/counts.c"
C13=$(tag "$T/ks" csk13)
check "csk13 (signing) signs every data RRset zsk8 signs" test "$(count "$T/counts.c" "$C13" data)" -eq "$(count "$T/counts.c" "$Z8" data)"
check "csk13 (signing) does not sign the DNSKEY RRset" test "$(count "$T/counts.c" "$C13" dnskey)" -eq 0
check "zsk13 (removed) signs nothing" test "$(count "$T/counts.c" "$Z13" data)" -eq 0
zonegate --origin tld. --ds "$T/ds" --unsigned "$T/z.zone" --incoming-keys "$T/incoming.csk" "$T/c.zone" >"$T/gate3.out" 2>&1
rc=$?
check "CSK form: zonegate --incoming-keys: exit 0, PASS (got $rc)" test "$rc" -eq 0 -a -n "$(grep '^zonegate: PASS tld\. ' "$T/gate3.out")"
zonehsm --keyset "$T/ks" state --label zsk8 --set signing >"$T/state.out" 2>&1
rc=$?
check "zonehsm state --set signing accepted and said so (exit $rc)" test "$rc" -eq 0 -a -n "$(grep 'zsk8 is now signing' "$T/state.out")"
zonehsm --keyset "$T/ks" state --label zsk8 --set bogus >/dev/null 2>"$T/bogus.err"
rc=$?
check "zonehsm state --set bogus: exit 2, the choices named (got $rc)" test "$rc" -eq 2 -a -n "$(grep 'removed or signing' "$T/bogus.err")"
done_testing
