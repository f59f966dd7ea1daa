#!/usr/bin/env bash
# Fault injection end to end: zonesign signs through the fault-injection
# module (tests/shim) over three SoftHSM tokens, zonegate gates and
# releases.  For every fault (key switched after the probe, flipped bits,
# device errors, a lost session, a slow token, every HSM failing): either
# the signer takes the HSM out and finishes on the others, or it stops
# naming the HSM and writes nothing; whatever it writes, the gate rejects
# every bad signature; nothing bad is released and the previous release
# stays byte for byte.  Then kill -9 of zonesign and of zonegate mid-run.
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
zg_tmpdir
shim=$ZG_BUILD/tests/shim/libzgshim.so
T=$ZG_TMP
zg_softhsm_init "$T/tok" 3
mapfile -t plain < <(zg_hsm_pinfile_args 3)
mapfile -t faulty < <(zg_hsm_pinfile_args 3 "$shim")
ks=$T/tld.keyset
zonehsm "${plain[@]}" --keyset "$ks" keygen --zone tld. --label ksk --alg 13 --role ksk >/dev/null
zonehsm "${plain[@]}" --keyset "$ks" keygen --zone tld. --label zsk --alg 13 --role zsk >/dev/null
for i in 2 3; do
    zonehsm --hsm "$(zg_uri_pinfile $i)" --keyset "$T/evil$i.keyset" keygen \
        --zone tld. --label evil --alg 13 --role zsk >/dev/null
done

zone() { zonegen --delegations 2000 --ds-fraction 0.2 --extras --seed 4 --serial "$1" >"$T/in.zone"; }
rel=$T/release
mkdir -p "$rel"
zone 1
zonesign "${plain[@]}" --keyset "$ks" --quiet -o "$T/out.zone" "$T/in.zone"
dnssec-dsfromkey -2 -f "$T/out.zone" tld. >"$T/ds"
zonegate --origin tld. --ds "$T/ds" --unsigned "$T/in.zone" --release "$rel" \
    "$T/out.zone" >"$T/first.gate"
check "a clean first release" test $? -eq 0 -a -s "$rel/tld.zone"
serial=1

# One fault: sign serial+1 through the shim, gate it, check the outcome.
fault_case() { # name conf [zonesign options]
    local name=$1 conf=$2
    shift 2
    serial=$((serial + 1))
    zone $serial
    printf '%s\n' "$conf" >"$T/shim.conf"
    local before
    before=$(zg_dir_state "$rel")
    rm -f "$T/cand.zone"
    ZG_SHIM_CONF=$T/shim.conf zonesign "${faulty[@]}" --keyset "$ks" --quiet \
        "$@" -o "$T/cand.zone" "$T/in.zone" >"$T/sign.out" 2>&1
    local src=$?
    if [ $src -ne 0 ]; then
        check "$name: zonesign stops with one clear line naming the HSM (exit $src)" \
            grep -Eq 'zonesign: .*HSM' "$T/sign.out"
        check "$name: and writes nothing" test ! -e "$T/cand.zone"
        check "$name: the release is untouched" test "$(zg_dir_state "$rel")" = "$before"
        serial=$((serial - 1))
        return
    fi
    zonegate --origin tld. --ds "$T/ds" --unsigned "$T/in.zone" \
        --json "$T/gate.json" --release "$rel" "$T/cand.zone" >"$T/gate.out" 2>&1
    local grc=$?
    # An independent opinion on the candidate: every signature checked.
    local bad
    bad=$(/usr/bin/python3 "$ZG_SRC/tests/e2e/count_bad.py" "$T/cand.zone" tld.)
    if [ "$bad" -gt 0 ]; then
        check "$name: $bad bad signatures written: the gate rejects (exit $grc)" test $grc -eq 1
        local counted
        counted=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(sum(1 for p in j["problems"] if p["class"] in ("bogus-signature","unknown-key")))' "$T/gate.json")
        check "$name: the gate counts every one ($counted of $bad)" test "$counted" -eq "$bad"
        check "$name: the release is byte for byte the previous one" test "$(zg_dir_state "$rel")" = "$before"
        serial=$((serial - 1))
    else
        check "$name: the signer finished on the healthy HSMs; the gate passes (exit $grc)" test $grc -eq 0
        check "$name: dnssec-verify agrees" dnssec-verify -q -o tld. "$T/cand.zone"
        check "$name: the new zone is what was released" cmp -s "$T/cand.zone" "$rel/tld.zone"
    fi
}

fault_case "key switched after the probe (hsm2, hsm3)" \
    "token=hsm2 fault=swapkey after=50 label=evil
token=hsm3 fault=swapkey after=50 label=evil"
fault_case "key switched, every signature verified by the signer" \
    "token=hsm2 fault=swapkey after=50 label=evil" --verify-every 1
fault_case "flipped bit (hsm3)" "token=hsm3 fault=flipbit after=30"
fault_case "device error (hsm2)" "token=hsm2 fault=deverror after=40"
fault_case "lost session (hsm3)" "token=hsm3 fault=losesession after=40"
fault_case "slow token (hsm1, 5 ms a signature)" "token=hsm1 fault=delay ms=5"
fault_case "every HSM failing" "token=hsm1 fault=deverror after=10
token=hsm2 fault=deverror after=10
token=hsm3 fault=deverror after=10"

# kill -9 in the middle of a run.
zonegen --delegations 150000 --ds-fraction 0.3 --seed 9 --serial 100 >"$T/big.zone"
before=$(zg_dir_state "$rel")
cp "$rel/tld.zone" "$T/prev-out.zone"
cp "$rel/tld.zone" "$T/out2.zone"
out_before=$(sha256sum <"$T/out2.zone")
zonesign "${plain[@]}" --keyset "$ks" --quiet -o "$T/out2.zone" "$T/big.zone" &
pid=$!
sleep 1.5
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check "kill -9 of zonesign: its output file is the old one, whole" \
    test "$(sha256sum <"$T/out2.zone")" = "$out_before"
zonesign "${plain[@]}" --keyset "$ks" --quiet -o "$T/big.signed" "$T/big.zone"
for delay in 0.5 1.5 3; do
    zonegate --origin tld. --ds "$T/ds" --release "$rel" "$T/big.signed" >/dev/null 2>&1 &
    pid=$!
    sleep $delay
    if kill -9 $pid 2>/dev/null; then
        wait $pid 2>/dev/null
        check "kill -9 of zonegate after ${delay}s: the release directory is exactly as it was" \
            test "$(zg_dir_state "$rel")" = "$before"
    else
        wait $pid 2>/dev/null
        not_ok "zonegate finished before the kill after ${delay}s (zone too small)"
    fi
done
# The worst moment: kill zonegate once it has a file open in the release
# directory (it is writing the new zone there), seen through /proc.
for try in 1 2; do
    zonegen --delegations 150000 --ds-fraction 0.3 --seed 9 --serial $((100 + try)) >"$T/big.zone"
    zonesign "${plain[@]}" --keyset "$ks" --quiet -o "$T/big.signed" "$T/big.zone" 2>/dev/null
    before=$(zg_dir_state "$rel")
    zonegate --origin tld. --ds "$T/ds" --release "$rel" "$T/big.signed" >/dev/null 2>&1 &
    pid=$!
    hit=0
    for i in $(seq 1 200000); do
        if ls -l /proc/$pid/fd 2>/dev/null | grep -q -- "-> $rel/"; then
            kill -9 $pid 2>/dev/null && hit=1
            break
        fi
        kill -0 $pid 2>/dev/null || break
    done
    wait $pid 2>/dev/null
    check "caught zonegate writing into the release directory (try $try)" test $hit -eq 1
    check "kill -9 there leaves the release directory exactly as it was (try $try)" \
        test "$(zg_dir_state "$rel")" = "$before"
    check "no temporary file left in it (try $try)" \
        test -z "$(ls -A "$rel" | grep -v -e '^tld.zone$' -e '^history.jsonl$')"
done
done_testing
