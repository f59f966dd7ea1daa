#!/usr/bin/env bash
# tests/signer/test_interop.sh - zonesign output for algorithms 8, 13, 14
# and 15 (Ed25519, RFC 8080), KSK+ZSK and CSK, NSEC3 with and without opt-out, and NSEC, on the
# sample zone and on zonegen zones, through three HSMs; every output must
# pass dnssec-verify, ldns-verify-zone and kzonecheck, and carry exactly
# the input's data.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util dnssec-verify ldns-verify-zone kzonecheck ldns-read-zone \
    dnssec-dsfromkey zonesign zonehsm zonegen zonegate
zg_tmpdir
zg_softhsm_init "$ZG_TMP/hsm" 3 || { not_ok "softhsm init"; done_testing; }

zonegen --origin tld. --delegations 2000 --ds-fraction 0.1 --glue-fraction 0.1 \
    --seed 3 --extras -o "$ZG_TMP/gen.zone"
check "zonegen made a zone" test -s "$ZG_TMP/gen.zone"
cp "$ZG_SRC/zones/sample/tld.zone" "$ZG_TMP/sample.zone"

run() { # name alg mode zone denial-args...
    local name=$1 alg=$2 mode=$3 zone=$4
    shift 4
    local ks="$ZG_TMP/ks-$alg-$mode" out="$ZG_TMP/$name.signed"
    [ -f "$ks" ] || zs_keys "$ks" 3 "$alg" "$mode" || { not_ok "$name: keygen"; return; }
    if ! zs_sign 3 --keyset "$ks" --quiet "$@" -o "$out" "$ZG_TMP/$zone" 2>"$ZG_TMP/$name.err"; then
        not_ok "$name: zonesign"
        diag "$(cat "$ZG_TMP/$name.err")"
        return
    fi
    ok "$name: zonesign"
    # a CSK carries the KSK flag: tell dnssec-verify not to want a ZSK
    # (and so does an algorithm whose only active key is a KSK)
    if [ "$mode" = csk ] || [ -n "${ZS_BIND_Z:-}" ]; then ZS_BIND_ARGS=-z; else ZS_BIND_ARGS=; fi
    check "$name: dnssec-verify" zs_verify_bind tld. "$out"
    check "$name: ldns-verify-zone" zs_verify_ldns tld. "$out"
    check "$name: kzonecheck" zs_verify_knot tld. "$out"
    check "$name: data equals input" zs_same_data "$ZG_TMP/$zone" "$out"
    # every HSM took part
    check "$name: three HSMs signed" test "$(grep -c 'HSM [123] (token hsm[123]): [1-9]' "$ZG_TMP/$name.err")" -eq 3
}

for alg in 13 14 8; do
    run "sample-$alg-split-nsec3" "$alg" split sample.zone
    run "gen-$alg-split-optout" "$alg" split gen.zone --nsec3 --opt-out
done
run sample-13-csk-nsec 13 csk sample.zone --nsec
run sample-13-salted 13 csk sample.zone --salt AABBCCDD --iterations 5
check "salted: NSEC3PARAM carries salt and iterations" \
    grep -q 'IN NSEC3PARAM 1 0 5 AABBCCDD$' "$ZG_TMP/sample-13-salted.signed"
run gen-13-csk-nsec3 13 csk gen.zone
run gen-14-csk-optout 14 csk gen.zone --opt-out
run gen-8-csk-nsec 8 csk gen.zone --nsec
run sample-15-split-nsec3 15 split sample.zone
run gen-15-split-optout 15 split gen.zone --nsec3 --opt-out
run gen-15-csk-nsec 15 csk gen.zone --nsec
ldns-read-zone "$ZG_TMP/gen-15-split-optout.signed" | awk '$4 == "DNSKEY"' >"$ZG_TMP/dk15"
dnssec-dsfromkey -2 -f "$ZG_TMP/dk15" tld. >"$ZG_TMP/ds15" 2>/dev/null
check "Ed25519: zonegate passes the zone (DS from dnssec-dsfromkey)" sh -c "zonegate --origin tld. --ds '$ZG_TMP/ds15' --unsigned '$ZG_TMP/gen.zone' '$ZG_TMP/gen-15-split-optout.signed' | head -1 | grep -q '^zonegate: PASS tld\\. '"
check "Ed25519: every RRSIG is algorithm 15 with a 64-byte signature" sh -c "ldns-read-zone '$ZG_TMP/gen-15-split-optout.signed' | awk '\$4 == \"RRSIG\" { n++; if (\$6 != 15) bad++; cmd = \"printf %s \" \$13 \" | base64 -d | wc -c\"; cmd | getline len; close(cmd); if (len != 64) bad++ } END { exit !(n > 0 && bad == 0) }'"

# other origins: two labels (with DNAME, many types) and the root
other() { # name origin zone alg denial-args...
    local name=$1 origin=$2 zone=$3 alg=$4
    shift 4
    local ks="$ZG_TMP/ks-$name" out="$ZG_TMP/$name.signed"
    ZS_LABEL=$name- ZS_ORIGIN=$origin zs_keys "$ks" 3 "$alg" csk || { not_ok "$name: keygen"; return; }
    zs_sign 3 --keyset "$ks" --quiet "$@" -o "$out" "$zone" 2>"$ZG_TMP/$name.err" ||
        { not_ok "$name: zonesign"; diag "$(cat "$ZG_TMP/$name.err")"; return; }
    ok "$name: zonesign"
    ZS_BIND_ARGS=-z
    check "$name: dnssec-verify" zs_verify_bind "$origin" "$out"
    check "$name: ldns-verify-zone" zs_verify_ldns "$origin" "$out"
    check "$name: kzonecheck" zs_verify_knot "$origin" "$out"
    check "$name: data equals input" zs_same_data "$zone" "$out"
}
other example-com-nsec3 example.com. "$ZG_SRC/tests/data/signer/example-com.zone" 13
other example-com-nsec example.com. "$ZG_SRC/tests/data/signer/example-com.zone" 13 --nsec
other root-nsec . "$ZG_SRC/tests/data/signer/root.zone" 8 --nsec
check "owner and RDATA names in canonical (lower) case" \
    grep -q '^mail.example.com. 300 IN MX 10 mail.example.com.$' "$ZG_TMP/example-com-nsec.signed"

# two algorithms at once (an algorithm rollover): both sign everything
# (RFC 6840 5.11); algorithm 14 has only a KSK active here, so it signs
# everything itself
cp "$ZG_TMP/ks-8-split" "$ZG_TMP/ks-multi-split"
mapfile -t H < <(zg_hsm_args 3)
zonehsm "${H[@]}" --keyset "$ZG_TMP/ks-multi-split" keygen --zone tld. --label multi-ksk14 \
    --alg 14 --role ksk --state active >/dev/null
ZS_BIND_Z=1 run gen-multi-alg multi split gen.zone --opt-out
out="$ZG_TMP/gen-multi-alg.signed"
n8=$(awk '$4=="RRSIG" && $6==8' "$out" | wc -l)
n14=$(awk '$4=="RRSIG" && $6==14' "$out" | wc -l)
check "algorithms 8 and 14 sign the same RRsets ($n8 = $n14)" test "$n8" -eq "$n14" -a "$n8" -gt 0

# a published (pre-rollover) ZSK is in the DNSKEY RRset but signs nothing;
# a retired one likewise
mapfile -t H < <(zg_hsm_args 3)
zonehsm "${H[@]}" --keyset "$ZG_TMP/ks-13-split" keygen --zone tld. --label zsk13-next \
    --alg 13 --role zsk --state published >/dev/null
next_tag=$(sed -n 's/^key zsk13-next .* tag=\([0-9]*\).*/\1/p' "$ZG_TMP/ks-13-split")
run sample-13-prepublish 13 split sample.zone
out="$ZG_TMP/sample-13-prepublish.signed"
check "three DNSKEYs published" test "$(grep -c ' IN DNSKEY ' "$out")" -eq 3
check "published key $next_tag signs nothing" \
    test -z "$(awk -v t="$next_tag" '$4=="RRSIG" && $11==t' "$out")"
zonehsm --keyset "$ZG_TMP/ks-13-split" state --label zsk13 --set retired >/dev/null
zonehsm --keyset "$ZG_TMP/ks-13-split" state --label zsk13-next --set active >/dev/null
run sample-13-rolled 13 split sample.zone
old_tag=$(sed -n 's/^key zsk13 .* tag=\([0-9]*\).*/\1/p' "$ZG_TMP/ks-13-split")
out="$ZG_TMP/sample-13-rolled.signed"
check "retired key $old_tag still published" test "$(grep -c ' IN DNSKEY ' "$out")" -eq 3
check "retired key signs nothing" test -z "$(awk -v t="$old_tag" '$4=="RRSIG" && $11==t' "$out")"
check "new ZSK $next_tag signs" test -n "$(awk -v t="$next_tag" '$4=="RRSIG" && $11==t' "$out")"

# NSEC3 with opt-out: the flag is set, insecure delegations have no NSEC3
out="$ZG_TMP/gen-13-split-optout.signed"
check "opt-out flag set on NSEC3" grep -q 'IN NSEC3 1 1 0 - ' "$out"
n_plain=$(grep -c ' IN NSEC3 ' "$ZG_TMP/gen-13-csk-nsec3.signed")
n_opt=$(grep -c ' IN NSEC3 ' "$out")
check "opt-out chain shorter ($n_opt < $n_plain)" test "$n_opt" -lt "$n_plain"
check "NSEC3PARAM flags 0, iterations 0, empty salt" grep -q 'IN NSEC3PARAM 1 0 0 -$' "$out"
# RFC 9077: NSEC3 TTL = min(SOA TTL, SOA MINIMUM)
minimum=$(awk '$4=="SOA"{print ($2<$11)?$2:$11; exit}' "$out")
check "NSEC3 TTL is min(SOA TTL, MINIMUM) = $minimum" \
    test -z "$(awk -v m="$minimum" '$4=="NSEC3" && $2!=m' "$out")"
# delegation NS and glue never signed
check "no RRSIG over NS below the apex" \
    test -z "$(awk '$4=="RRSIG" && $5=="NS" && $1!="tld."' "$out")"
check "wildcard RRSIG labels exclude the *" grep -q '^\*\.wild\.tld\. 3600 IN RRSIG A 13 2 ' "$ZG_TMP/sample-13-split-nsec3.signed"
done_testing
