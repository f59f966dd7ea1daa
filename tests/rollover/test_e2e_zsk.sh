#!/usr/bin/env bash
# tests/rollover/test_e2e_zsk.sh - a ZSK pre-publish rollover in real time
# with short TTLs (5 s, propagation delay 2 s): every version is signed by
# zonesign through three SoftHSM tokens, released by zonegate --release
# (--now = the clock), served by nsd (reloaded after each release) and
# validated by unbound, while a querier asks for a set of names without
# pause.  The correct schedule never yields a SERVFAIL; a too-early step
# tried on the way is refused and leaves the release directory unchanged.
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/lib/servers.sh"
for t in zonehsm zonesign zonegate zonegen nsd unbound dig softhsm2-util dnssec-dsfromkey; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
W=$ZG_TMP
TTL=5
DELAY=2
export ZG_UNBOUND_CACHE_MAX=30
mkdir -p "$W/release"
zg_softhsm_init "$W/tokens" 3 || { not_ok "tokens"; done_testing; }
HSMS=()
for i in 1 2 3; do HSMS+=(--hsm "$(zg_uri_pinfile "$i")"); done
KS=$W/keyset
kg() { zonehsm "${HSMS[@]}" --keyset "$KS" keygen --zone tld. --label "$1" \
    --alg 13 --role "$2" --state "$3" >/dev/null; }
st() { zonehsm --keyset "$KS" state --label "$1" --set "$2" >/dev/null; }
serial=1
sign() {
    zonegen --origin tld. --delegations 40 --ds-fraction 0.3 --seed 5 \
        --serial "$serial" |
        sed -e "s/^\\\$TTL 86400/\$TTL $TTL/" -e "s/\t86400\t/\t$TTL\t/" \
            -e "s/\t3600\t/\t$TTL\t/" -e "s/ 2419200 3600 )/ 2419200 $TTL )/" \
            >"$W/tld.unsigned"
    zonesign "${HSMS[@]}" --keyset "$KS" --threads 2 --quiet \
        -o "$W/cand.zone" "$W/tld.unsigned" >"$W/sign.out" 2>&1
}
gate() {
    zonegate --origin tld. --ds "$W/tld.ds" --unsigned "$W/tld.unsigned" \
        --release "$W/release" --now now --propagation-delay ${DELAY}s \
        --ds-ttl ${TTL}s "$W/cand.zone" >"$W/gate.out" 2>&1
}
release() { # DESC
    if sign && gate; then
        ok "$1: released (serial $serial)"
        serial=$((serial + 1))
        zg_nsd_reload
    else
        not_ok "$1"; diag "$(head -8 "$W/gate.out")"
    fi
}

check "ksk1, zsk1 on three tokens" bash -c "$(declare -f kg); HSMS=(${HSMS[*]@Q}); KS=$KS; kg ksk1 ksk active && kg zsk1 zsk active"
sign || not_ok "first signing"
awk '$4 == "DNSKEY" && $5 == 257' "$W/cand.zone" >"$W/ksk.key"
dnssec-dsfromkey -2 -f "$W/ksk.key" tld. >"$W/tld.ds"
check "DNSKEY TTL is $TTL s" bash -c 'awk "\$4 == \"DNSKEY\" {print \$2}" "$1" | sort -u | grep -qx "$2"' _ "$W/cand.zone" "$TTL"
release "version 1: ksk1, zsk1"
NSD_PORT=$(zg_free_port)
UB_PORT=$(zg_free_port)
check "nsd serves the release" zg_nsd_start "$W/nsd" "$NSD_PORT" "tld.=$W/release/tld.zone"
check "validating unbound (trust anchor: the tld. DS)" \
    zg_unbound_start "$W/unbound" "$UB_PORT" "$NSD_PORT" "$W/tld.ds" tld.
check "nic.tld A validates (AD)" zg_validates "$UB_PORT" nic.tld A

# the querier: names with data, a DS, a denial, the apex DNSKEY
names="nic.tld/A tld/DNSKEY tld/SOA ns1.nic.tld/A no-such-x.tld/A"
names+=" $(awk '$4 == "DS" {print $1 "/DS"}' "$W/release/tld.zone" | sort -u | head -5 | tr '\n' ' ')"
querier() {
    while [ ! -e "$W/stop" ]; do
        for q in $names; do
            out=$(dig +dnssec +time=2 +tries=1 -p "$UB_PORT" @127.0.0.1 "${q%/*}" "${q#*/}" 2>&1)
            s=$(grep -o 'status: [A-Z]*' <<<"$out" | head -1)
            ad=0; grep -Eq 'flags:[^;]* ad[ ;]' <<<"$out" && ad=1
            echo "$(date +%s.%N) $q ${s#status: } ad=$ad" >>"$W/queries"
        done
    done
}
querier &
QPID=$!
zg_on_exit "touch '$W/stop'; kill $QPID 2>/dev/null"
t_start=$(date +%s)
wait_caches() { sleep $((TTL + DELAY + 1)); }

wait_caches
kg zsk2 zsk published
release "version 2: zsk2 published"
# too early: zsk2 signs right away
cp "$KS" "$W/keyset.save"
st zsk2 active; st zsk1 retired
before=$(zg_dir_state "$W/release")
sign
gate
rc=$?
check "too early: zsk2 signing ${TTL}+${DELAY} s before its DNSKEY could be cached is refused (exit 1)" [ $rc -eq 1 ]
check "... as unsafe-transition" grep -q '^problem unsafe-transition' "$W/gate.out"
check "... release dir unchanged" [ "$(zg_dir_state "$W/release")" = "$before" ]
cp "$W/keyset.save" "$KS"
wait_caches
st zsk2 active; st zsk1 retired
release "version 3: zsk2 active, zsk1 retired"
wait_caches
st zsk1 removed
release "version 4: zsk1 removed"
wait_caches
touch "$W/stop"
wait "$QPID" 2>/dev/null
elapsed=$(( $(date +%s) - t_start ))
total=$(wc -l <"$W/queries")
servfail=$(grep -c ' SERVFAIL ' "$W/queries")
noad=$(grep -c -v 'ad=1$' "$W/queries")
check "the querier asked $total questions over ${elapsed} s (at least 100)" [ "$total" -ge 100 ]
check "no SERVFAIL during the rollover ($servfail)" [ "$servfail" -eq 0 ]
check "every answer validated (AD) ($noad without)" [ "$noad" -eq 0 ]
[ "$servfail" -eq 0 ] || diag "$(grep SERVFAIL "$W/queries" | head -5)"
check "nsd serves serial 4 with zsk2 only" bash -c '
    out=$(dig +dnssec +norec -p "$1" @127.0.0.1 tld. DNSKEY)
    [ "$(grep -c "DNSKEY[[:space:]]256 " <<<"$out")" -eq 1 ] &&
    dig +short +norec -p "$1" @127.0.0.1 tld. SOA | grep -q " 4 "' _ "$NSD_PORT"
check "the history has 4 releases" [ "$(wc -l <"$W/release/history.jsonl")" -eq 4 ]
done_testing
