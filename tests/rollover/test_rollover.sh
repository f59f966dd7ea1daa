#!/usr/bin/env bash
# tests/rollover/test_rollover.sh ROLLOVER - scripts/rollover --too-early
# end to end on SoftHSM (zonehsm, zonesign, zonegate): every step of the
# correct schedule passes and is released, every too-early variant is
# refused as unsafe-transition with the release directory unchanged; the
# release history then holds one line per released step with increasing
# serials and the keys the schedule put in.
. "$ZG_SRC/tests/lib/tap.sh"
for t in zonehsm zonesign zonegate zonegen softhsm2-util dnssec-dsfromkey python3; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
what=$1 passes=$2 refusals=$3
zg_tmpdir
"$ZG_SRC/scripts/rollover" "$what" --too-early --state "$ZG_TMP/st" \
    --build "$ZG_BUILD" >"$ZG_TMP/out" 2>&1
rc=$?
check "scripts/rollover $what --too-early: exit 0 (every step as expected)" [ $rc -eq 0 ]
[ $rc -eq 0 ] || diag "$(tail -40 "$ZG_TMP/out")"
n=$(grep -c '=> PASS, released' "$ZG_TMP/out")
check "$passes steps of the schedule passed and were released ($n)" [ "$n" -eq "$passes" ]
n=$(grep -c '=> REFUSED as expected (unsafe-transition), release dir unchanged' "$ZG_TMP/out")
check "$refusals too-early variants refused, release dir unchanged ($n)" [ "$n" -eq "$refusals" ]
check "no unexpected verdict" bash -c '! grep -q UNEXPECTED "$1"' _ "$ZG_TMP/out"
check "each refusal says what must wait and until when" \
    bash -c '[ "$(grep -c "| unsafe-transition: .*earliest safe time [0-9-]* [0-9:]* UTC" "$1")" -ge "$2" ]' \
    _ "$ZG_TMP/out" "$refusals"
R=$ZG_TMP/st/$what/release
check "history.jsonl: $passes lines, serials increasing, times increasing" python3 -c '
import json, sys
h = [json.loads(l) for l in open(sys.argv[1])]
assert len(h) == int(sys.argv[2]), len(h)
assert all(b["serial"] > a["serial"] and b["time"] > a["time"] for a, b in zip(h, h[1:]))
assert all(e["version"] == 2 and "signed_data_by" in e and "parent_ds" in e for e in h)' \
    "$R/history.jsonl" "$passes"
check "the released zone is the last candidate" cmp -s "$R/tld.zone" "$ZG_TMP/st/$what/cand.zone"
# the rollover really happened: the first and the last DNSKEY RRsets share no key
check "no key of the first release is left in the last" python3 -c '
import json, sys
h = [json.loads(l) for l in open(sys.argv[1])]
first = {(k["keytag"], k["algorithm"]) for k in h[0]["dnskey"] if k["flags"] == (257 if sys.argv[2] in ("ksk", "double-ds", "csk") else 256) or sys.argv[2] == "algorithm"}
last = {(k["keytag"], k["algorithm"]) for k in h[-1]["dnskey"]}
assert first and not (first & last), (first, last)' "$R/history.jsonl" "$what"
# independent opinion on the last release, at its simulated time
if command -v ldns-verify-zone >/dev/null; then
    t=$(python3 -c 'import json,sys,time
print(time.strftime("%Y%m%d%H%M%S", time.gmtime([json.loads(l) for l in open(sys.argv[1])][-1]["time"])))' "$R/history.jsonl")
    check "ldns-verify-zone accepts the last release at its time ($t)" \
        bash -c 'ldns-verify-zone -t "$1" "$2" >/dev/null 2>&1' _ "$t" "$R/tld.zone"
fi
done_testing
