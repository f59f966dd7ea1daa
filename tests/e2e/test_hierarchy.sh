#!/usr/bin/env bash
# End to end on loopback: a root and a TLD signed by zonesign through three
# SoftHSM tokens, released by zonegate, served by nsd, validated by unbound.
# Then the May 2026 fault arrives mid-run (an HSM signs with another key
# after the probe): the gate blocks the release and unbound keeps
# validating the previous zone; pushed past the gate (a test bypass, here
# only), the same zone makes unbound answer SERVFAIL with EDE 6.
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/lib/servers.sh"
. "$ZG_SRC/tests/e2e/lib_hierarchy.sh"
zg_tmpdir
shim=$ZG_BUILD/tests/shim/libzgshim.so
ZG_H_DELEGATIONS=300

check "keys for . and tld. on three HSMs" zg_h_init 3
check "zonesign signs tld. (serial 1)" zg_h_sign_tld 1
zg_h_tld_ds "$H/tld.candidate"
check "zonegate releases tld." bash -c "$(declare -f zg_h_gate_tld); H=$H; zg_h_gate_tld >'$H/tld.gate'"
check "root signed, gated and released" zg_h_root 1
check "released zones in place" test -s "$H/release/tld.zone" -a -s "$H/release/root.zone"
check "nsd and unbound running on loopback" zg_h_serve

check "nic.tld A validates (AD)" zg_validates "$UB_PORT" nic.tld A
check "a DS at a delegation validates (AD)" zg_validates "$UB_PORT" deleg-glue.tld DS
out=$(zg_dig "$UB_PORT" no-such-name-x.tld A)
if grep -q 'status: NXDOMAIN' <<<"$out" && grep -Eq 'flags:[^;]* ad[ ;]' <<<"$out"; then
    ok "NSEC3 denial of a missing name validates (NXDOMAIN, AD)"
else
    not_ok "NSEC3 denial of a missing name validates"; diag "$out"
fi

# Names to watch: every delegation with a DS, and the apex data.
names=$(awk '$4=="DS" {print $1}' "$H/release/tld.zone" | sort -u | head -40)
released_sum=$(sha256sum "$H/release/tld.zone" | cut -d' ' -f1)
released_list=$(zg_dir_state "$H/release")

# The May 2026 shape mid-run: hsm2 and hsm3 hold another key pair under
# the label "evil" and switch to it after 20 signatures (the probe passes).
for i in 2 3; do
    zonehsm --hsm "$(zg_uri_pinfile $i)" --keyset "$H/evil$i.keyset" keygen \
        --zone tld. --label evil --alg 13 --role zsk >/dev/null
done
printf 'token=hsm2 fault=swapkey after=20 label=evil\ntoken=hsm3 fault=swapkey after=20 label=evil\n' >"$H/shim.conf"
export ZG_SHIM_CONF=$H/shim.conf
zg_h_sign_tld 2 "$shim" >"$H/sign2.out" 2>&1
sign_rc=$?
unset ZG_SHIM_CONF
# The signer samples its own signatures, so it may catch the fault itself
# (then it must name the HSM and write nothing) or write a candidate with
# bad signatures (then the gate must reject it).  Either way nothing bad
# may be released.
if [ "$sign_rc" -eq 0 ]; then
    check "zonesign wrote serial 2" grep -Eq 'SOA[[:space:]].* 2 [0-9]+ [0-9]+ [0-9]+ [0-9]+$' "$H/tld.candidate"
    zonegate --origin tld. --ds "$H/tld.ds" --unsigned "$H/tld.unsigned" \
        --release "$H/release" "$H/tld.candidate" >"$H/tld.gate2" 2>&1
    rc=$?
    if [ "$rc" -eq 1 ]; then ok "the gate rejects it (exit 1)"; else not_ok "the gate rejects it (exit $rc)"; diag "$(head -5 "$H/tld.gate2")"; fi
    check "the report names bad signatures, not a network fault" \
        grep -Eq '^problem (bogus-signature|unknown-key)' "$H/tld.gate2"
    diag "$(head -3 "$H/tld.gate2")"
else
    check "zonesign refused, naming a faulty HSM" grep -Eq 'HSM (2|3)' "$H/sign2.out"
    check "and wrote nothing new" bash -c "! grep -Eq 'SOA[[:space:]].* 2 [0-9]+ [0-9]+ [0-9]+ [0-9]+\$' '$H/tld.candidate'"
    ok "(no candidate to gate)"
fi
check "the released tld.zone is byte for byte the previous one" \
    test "$(sha256sum "$H/release/tld.zone" | cut -d' ' -f1)" = "$released_sum"
check "the release directory is unchanged" \
    test "$(zg_dir_state "$H/release")" = "$released_list"
zg_nsd_reload
bad=0
for n in $names; do zg_validates "$UB_PORT" "$n" DS || bad=$((bad + 1)); done
check "unbound keeps validating the released zone ($bad failures)" test "$bad" -eq 0

# Bypass the gate (test only): sign with the fault again and serve it.
export ZG_SHIM_CONF=$H/shim.conf
zg_h_sign_tld 3 "$shim" >"$H/sign3.out" 2>&1 || true
unset ZG_SHIM_CONF
if [ -s "$H/tld.candidate" ]; then
    cp "$H/tld.candidate" "$H/bypass.zone"
    zg_stop "$ZG_UNBOUND_PID"
    zg_nsd_start "$H/nsd2" "$(zg_free_port)" ".=$H/release/root.zone" \
        "tld.=$H/bypass.zone"
    bypass_port=$(grep -m1 'port:' "$H/nsd2/nsd.conf" | awk '{print $2}')
    zg_unbound_start "$H/unbound2" "$(zg_free_port)" "$bypass_port" "$H/root.anchor" tld.
    ub2=$(grep -m1 'port:' "$H/unbound2/unbound.conf" | awk '{print $2}')
    servfail=0
    for n in $names; do zg_bogus "$ub2" "$n" DS && servfail=$((servfail + 1)); done
    check "served past the gate, unbound answers SERVFAIL with EDE 6 ($servfail names)" \
        test "$servfail" -gt 0
else
    not_ok "no faulty zone to bypass the gate with"
fi
done_testing
