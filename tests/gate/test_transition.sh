#!/usr/bin/env bash
# tests/gate/test_transition.sh - the transition rules (gate/transition.c)
# on zones signed by dnssec-signzone, each with a too-early and an on-time
# variant: --previous with --previous-time, and --release DIR with its
# history (release times set with --now).  TTLs 3600, propagation delay 1h.
# (Algorithm rollovers with zonesign: tests/rollover.)
. "$ZG_SRC/tests/lib/tap.sh"
for t in zonegate dnssec-keygen dnssec-signzone dnssec-dsfromkey; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
D=$ZG_TMP
now=$(date +%s)
kg() { mkdir -p "$D/k/$1"; dnssec-keygen -q -K "$D/k/$1" -a ECDSAP256SHA256 ${2:+-f KSK} tld. >"$D/k/$1/name"; }
key() { echo "$D/k/$1/$(cat "$D/k/$1/name")"; }
kg K ksk; kg K2 ksk; kg Z1; kg Z2
mkdir "$D/empty"
zone() { # NAME SERIAL "PUBLISHED KEYS" "SIGNING KEYS"
    local name=$1 serial=$2 k
    sed "s/ 2026050501 / $serial /" "$ZG_SRC/tests/data/gate/tld.zone" >"$D/$name.unsigned"
    for k in $3; do grep -v '^;' "$(key "$k").key" >>"$D/$name.unsigned"; done
    local args=()
    for k in $4; do args+=("$(key "$k")"); done
    (cd "$D/empty" && dnssec-signzone -q -K "$D/empty" -o tld. -3 - -H 0 \
        -s $((now - 12 * 3600)) -e $((now + 30 * 86400)) \
        -f "$D/$name.zone" "$D/$name.unsigned" "${args[@]}" >/dev/null 2>&1) ||
        not_ok "dnssec-signzone $name"
}
dnssec-dsfromkey -2 "$(key K).key" >"$D/ds.K"
dnssec-dsfromkey -2 "$(key K2).key" >"$D/ds.K2"
zg() { # expected exit, description, zonegate args...
    local want=$1 desc=$2
    shift 2
    zonegate --origin tld. --now "$now" "$@" >"$D/out" 2>&1
    local rc=$?
    if [ $rc -eq "$want" ]; then ok "$desc"; else not_ok "$desc (exit $rc, wanted $want)"; diag "$(head -12 "$D/out")"; fi
}
unsafe() { grep -q "^  unsafe-transition: .*$1" "$D/out"; }

zone v1 1 "K Z1" "K Z1"           # zsk1 signs
zone v2 2 "K Z1 Z2" "K Z1"        # zsk2 published
zone v3 3 "K Z1 Z2" "K Z2"        # zsk2 signs, zsk1 retired
zone v3same 2 "K Z1 Z2" "K Z2"    # same serial as v2
zone v3direct 3 "K Z1 Z2" "K Z2"  # (from v1: zsk2 never published before)
zone v4 4 "K Z2" "K Z2"           # zsk1 removed
zone v4dbl 3 "K Z1 Z2" "K Z1 Z2"  # double signature: zsk2 signs with zsk1

# serial (RFC 1982)
zg 1 "serial: same serial as --previous is refused" --ds "$D/ds.K" --previous "$D/v2.zone" --previous-time now-5h "$D/v3same.zone"
check "... says the serial does not increase" unsafe 'SOA serial 2 does not increase over serial 2'
zg 0 "serial: a higher serial passes" --ds "$D/ds.K" --previous "$D/v2.zone" --previous-time now-5h "$D/v3.zone"

# a) a key that newly signs
zg 1 "a) zsk2 signs, never published before: refused" --ds "$D/ds.K" --previous "$D/v1.zone" --previous-time now-5h "$D/v3direct.zone"
zg 1 "a) zsk2 signs 30 min after publication: refused" --ds "$D/ds.K" --previous "$D/v2.zone" --previous-time now-30m "$D/v3.zone"
tag2=$(sed 's/.*+013+0*//' "$D/k/Z2/name")
check "... names key $tag2 alg 13, when it was published and the earliest safe time" \
    unsafe "key $tag2 alg 13 signs, but was first published at .* UTC; earliest safe time .* UTC"
zg 0 "a) zsk2 signs 2h01m after publication (TTL 1h + delay 1h): passes" --ds "$D/ds.K" --previous "$D/v2.zone" --previous-time now-7260 "$D/v3.zone"
zg 1 "a) ... but 1h59m after: refused" --ds "$D/ds.K" --previous "$D/v2.zone" --previous-time now-7140 "$D/v3.zone"
zg 0 "a) --propagation-delay 10m: 1h11m suffices" --ds "$D/ds.K" --propagation-delay 10m --previous "$D/v2.zone" --previous-time now-4260 "$D/v3.zone"
zg 0 "a) zsk2 at once next to zsk1 (double signature): passes" --ds "$D/ds.K" --previous "$D/v1.zone" --previous-time now "$D/v4dbl.zone"

# b) a key whose signatures may be cached stays published
zg 1 "b) zsk1 removed while its signatures of --previous are cached: refused" --ds "$D/ds.K" --previous "$D/v2.zone" --previous-time now-5h "$D/v4.zone"
check "... says until when" unsafe "is removed, but its signatures in the release of .* may be cached until .*; earliest safe time"
mkdir "$D/rb" "$D/rb2"
zg 0 "b) history: v2 released at -5h" --ds "$D/ds.K" --release "$D/rb" --now $((now - 5 * 3600)) "$D/v2.zone"
zg 0 "b) history: v3 (zsk1 retired) at -2h01m" --ds "$D/ds.K" --release "$D/rb" --now $((now - 7260)) "$D/v3.zone"
zg 0 "b) zsk1 removed 2h01m after it stopped signing: passes" --ds "$D/ds.K" --release "$D/rb" "$D/v4.zone"
zg 0 "b) history: v2 released at -5h" --ds "$D/ds.K" --release "$D/rb2" --now $((now - 5 * 3600)) "$D/v2.zone"
zg 0 "b) history: v3 at -30m" --ds "$D/ds.K" --release "$D/rb2" --now $((now - 1800)) "$D/v3.zone"
before=$(zg_dir_state "$D/rb2")
zg 1 "b) zsk1 removed 30 min after it stopped signing: refused" --ds "$D/ds.K" --release "$D/rb2" "$D/v4.zone"
check "... the release dir is unchanged" [ "$(zg_dir_state "$D/rb2")" = "$before" ]

# c) DS changes
zone k1 1 "K Z1" "K Z1"
zone k2 2 "K K2 Z1" "K K2 Z1"     # ksk2 published and signing
zone k3 3 "K K2 Z1" "K K2 Z1"     # (DS -> ksk2 at the parent)
zone k4 4 "K2 Z1" "K2 Z1"         # ksk1 removed
zone k4b 4 "K K2 Z1" "K2 Z1"      # ksk1 published but not signing DNSKEY
mkdir "$D/rc" "$D/rc2" "$D/rc3"
zg 0 "c) history: k1 at -10h (DS ksk1)" --ds "$D/ds.K" --ds-ttl 1h --release "$D/rc" --now $((now - 36000)) "$D/k1.zone"
zg 0 "c) history: k2 at -5h (DS ksk1)" --ds "$D/ds.K" --ds-ttl 1h --release "$D/rc" --now $((now - 18000)) "$D/k2.zone"
zg 0 "c) DS -> ksk2, published 5h ago: passes" --ds "$D/ds.K2" --ds-ttl 1h --release "$D/rc" --now $((now - 7260)) "$D/k3.zone"
zg 0 "c) ksk1 removed 2h01m after the DS changed (DS TTL 1h + 1h): passes" --ds "$D/ds.K2" --ds-ttl 1h --release "$D/rc" "$D/k4.zone"
zg 0 "c) history: k1 at -10h" --ds "$D/ds.K" --release "$D/rc2" --now $((now - 36000)) "$D/k1.zone"
zg 0 "c) history: k2 at -30m" --ds "$D/ds.K" --release "$D/rc2" --now $((now - 1800)) "$D/k2.zone"
zg 1 "c) DS -> ksk2 30 min after ksk2 was published: refused" --ds "$D/ds.K2" --release "$D/rc2" "$D/k3.zone"
check "... says the DS names a key published too recently" unsafe "the parent's DS set now names key .* earliest safe time"
zg 1 "c) the same with --ds read from a pipe (read once)" --ds <(cat "$D/ds.K2") --release "$D/rc2" "$D/k3.zone"
check "... the same finding" unsafe "the parent's DS set now names key .* earliest safe time"
zg 0 "c) history: k1 at -10h" --ds "$D/ds.K" --ds-ttl 1h --release "$D/rc3" --now $((now - 36000)) "$D/k1.zone"
zg 0 "c) history: k2 at -5h" --ds "$D/ds.K" --ds-ttl 1h --release "$D/rc3" --now $((now - 18000)) "$D/k2.zone"
zg 0 "c) DS -> ksk2 at -30m" --ds "$D/ds.K2" --ds-ttl 1h --release "$D/rc3" --now $((now - 1800)) "$D/k3.zone"
zg 1 "c) ksk1 removed 30 min after the DS changed: refused" --ds "$D/ds.K2" --ds-ttl 1h --release "$D/rc3" "$D/k4.zone"
check "... says the KSK must stay until DS TTL + delay" unsafe "was named by the parent's DS until .* earliest safe time"
zg 1 "c) ksk1 kept but no longer signing DNSKEY 30 min after: refused" --ds "$D/ds.K2" --ds-ttl 1h --release "$D/rc3" "$D/k4b.zone"
zg 0 "c) with delay 0: 61 min after the change (the old set's DS TTL 1h) suffices" --ds "$D/ds.K2" --ds-ttl 1h --propagation-delay 0 --release "$D/rc3" --now $((now + 1860)) "$D/k4.zone"
zg 1 "c) a DS naming a key that is not published: refused" --ds "$D/ds.K2" --previous "$D/k1.zone" --previous-time now-10h "$D/v2.zone"
check "... says the DS has no published DNSKEY" unsafe "the parent's DS for key .* has no published DNSKEY"
# c) double-DS KSK rollover (RFC 7583 3.3.2): the new key's DS is added at
# the parent first, then the KSK is swapped, then the old DS goes
zone d1 1 "K Z1" "K Z1"
zone d2 2 "K Z1" "K Z1"           # (DS ksk1 + ksk2 at the parent)
zone d3 3 "K2 Z1" "K2 Z1"         # ksk1 replaced by ksk2
zone d4 4 "K2 Z1" "K2 Z1"         # (DS ksk2 only)
cat "$D/ds.K" "$D/ds.K2" >"$D/ds.KK2"
mkdir "$D/rd" "$D/rd2" "$D/rd3"
zg 0 "c) double-DS: d1 at -10h (DS ksk1)" --ds "$D/ds.K" --ds-ttl 1h --release "$D/rd" --now $((now - 36000)) "$D/d1.zone"
zg 0 "c) double-DS: a DS for ksk2, not yet published, beside ksk1's: passes" --ds "$D/ds.KK2" --ds-ttl 1h --release "$D/rd" --now $((now - 28800)) "$D/d2.zone"
zg 0 "c) double-DS: ksk1 -> ksk2 4h after the DS was added: passes" --ds "$D/ds.KK2" --ds-ttl 1h --release "$D/rd" --now $((now - 14400)) "$D/d3.zone"
zg 0 "c) double-DS: ksk1's DS removed 4h after the swap: passes" --ds "$D/ds.K2" --ds-ttl 1h --release "$D/rd" "$D/d4.zone"
zg 0 "c) double-DS too early: d1 at -10h" --ds "$D/ds.K" --ds-ttl 1h --release "$D/rd2" --now $((now - 36000)) "$D/d1.zone"
zg 0 "c) double-DS too early: DS ksk2 added at -30m" --ds "$D/ds.KK2" --ds-ttl 1h --release "$D/rd2" --now $((now - 1800)) "$D/d2.zone"
zg 1 "c) double-DS: ksk1 -> ksk2 30 min after the DS was added: refused" --ds "$D/ds.KK2" --ds-ttl 1h --release "$D/rd2" "$D/d3.zone"
check "... says the old DS set may be cached and names no signing KSK" unsafe "the parent's DS set before .* names no KSK that signs this DNSKEY RRset; earliest safe time"
zg 0 "c) double-DS too early: d1 at -10h" --ds "$D/ds.K" --ds-ttl 1h --release "$D/rd3" --now $((now - 36000)) "$D/d1.zone"
zg 0 "c) double-DS too early: DS ksk2 added at -8h" --ds "$D/ds.KK2" --ds-ttl 1h --release "$D/rd3" --now $((now - 28800)) "$D/d2.zone"
zg 0 "c) double-DS too early: swap at -30m" --ds "$D/ds.KK2" --ds-ttl 1h --release "$D/rd3" --now $((now - 1800)) "$D/d3.zone"
zg 1 "c) double-DS: ksk1's DS removed 30 min after the swap: refused" --ds "$D/ds.K2" --ds-ttl 1h --release "$D/rd3" "$D/d4.zone"
check "... says the DS set no longer validates a cached DNSKEY RRset" unsafe "the parent's DS set no longer validates the DNSKEY RRset released at .* earliest safe time"
{ cat "$D/ds.K"; sed 's/ 13 2 / 8 2 /' "$D/ds.K2"; } >"$D/ds.K8"
zg 1 "c) a DS of an algorithm no published KSK signs with: refused" --ds "$D/ds.K8" --previous "$D/d1.zone" --previous-time now-10h "$D/d2.zone"
check "... says the DS has no published DNSKEY" unsafe "the parent's DS for key .* alg 8 has no published DNSKEY"
# errors stay errors
printf 'not json\n' >"$D/rc/history.jsonl"
zg 2 "a broken history line: exit 2" --ds "$D/ds.K" --release "$D/rc" "$D/k4.zone"
check "... naming history.jsonl:1" grep -q 'history.jsonl:1: ' "$D/out"
zg 2 "--propagation-delay 1w: exit 2" --ds "$D/ds.K" --propagation-delay 1w "$D/v1.zone"
zg 2 "--incoming-keys missing file: exit 2" --ds "$D/ds.K" --incoming-keys "$D/nope" "$D/v1.zone"
done_testing
