#!/usr/bin/env bash
# tests/gate/test_release.sh - release atomicity (DESIGN.md invariant 3):
# a refused candidate leaves DIR byte-identical and runs --on-fail with
# the report on stdin; a passed one lands at DIR/tld.zone with a history
# line; error cases (exit 2) leave DIR alone too.
. "$ZG_SRC/tests/lib/tap.sh"
for t in dnssec-keygen dnssec-signzone dnssec-dsfromkey ldns-signzone \
    ldns-read-zone python3 zonegate sha256sum; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
C=$ZG_TMP/corpus
mkdir -p "$C" "$ZG_TMP/rel"
python3 "$ZG_SRC/tests/gate/corpus.py" "$C" >/dev/null 2>&1 ||
    { not_ok "corpus built"; done_testing; }
R=$ZG_TMP/rel
# zonegate with its report kept out of the TAP stream
zg() { zonegate "$@" >>"$ZG_TMP/log" 2>&1; }
snap() { (cd "$R" && ls -la --time-style=+%s.%N . | grep -v ' \.\.$' && find . -type f -exec sha256sum {} + | sort); }

check_exit 0 "clean zone passes and is released" zg --origin tld. \
    --ds "$C/ds.txt" --now now --release "$R" "$C/clean-nsec3.zone"
check "released zone is byte-identical to the candidate" cmp -s "$R/tld.zone" "$C/clean-nsec3.zone"
check "history has one line" [ "$(wc -l <"$R/history.jsonl")" -eq 1 ]
check "history line has time, serial, DNSKEY RRset, signing keys, TTLs" \
    python3 -c 'import json,sys,time
h = json.loads(open(sys.argv[1]).readline())
assert h["serial"] == 2026050501 and h["zone"] == "tld." and h["file"] == "tld.zone"
assert len(h["dnskey"]) == 2 and all(k["rdata_hex"] for k in h["dnskey"])
assert len(h["signed_by"]) == 2 and h["max_ttl"]["dnskey"] == 3600
assert abs(h["time"] - time.time()) < 300' "$R/history.jsonl"
check "no temporary files left" [ -z "$(ls "$R" | grep -v -e '^tld.zone$' -e '^history.jsonl$')" ]
before=$(snap)

for bad in bogus-signature unknown-key nsec3-chain; do
    rm -f "$ZG_TMP/hook.in"
    check_exit 1 "$bad: refused" zg --origin tld. --ds "$C/ds.txt" \
        --release "$R" --on-fail "cat > '$ZG_TMP/hook.in'" "$C/$bad.zone"
    check "$bad: release dir byte-identical (checksums, listing, times)" \
        [ "$(snap)" = "$before" ]
    check "$bad: --on-fail got the report on stdin" \
        grep -q "^problem $bad: " "$ZG_TMP/hook.in"
    check "$bad: hook's report starts with the FAIL line" \
        grep -q '^zonegate: FAIL tld\. serial 2026050501: ' <(head -1 "$ZG_TMP/hook.in")
done
check_exit 1 "a failing hook does not change the verdict" zg --origin tld. \
    --ds "$C/ds.txt" --release "$R" --on-fail 'exit 3' "$C/bogus-signature.zone"
check "... and DIR is still untouched" [ "$(snap)" = "$before" ]
check_exit 2 "malformed candidate: exit 2" zg --origin tld. --ds "$C/ds.txt" \
    --release "$R" --on-fail "touch '$ZG_TMP/hook2'" "$ZG_SRC/tests/data/gate/malformed-rdata.exit2.zone"
check "... DIR untouched" [ "$(snap)" = "$before" ]
check "... and the hook is not run for an error" [ ! -e "$ZG_TMP/hook2" ]
check_exit 2 "release dir missing: exit 2" zg --origin tld. --ds "$C/ds.txt" \
    --release "$ZG_TMP/nope" "$C/clean-nsec3.zone"
check_exit 1 "expired at --now: refused" zg --origin tld. --ds "$C/ds.txt" \
    --release "$R" --now now+40d "$C/clean-nsec3.zone"
check "... DIR untouched" [ "$(snap)" = "$before" ]

# the same serial again is an unsafe transition (RFC 1982): refused
check_exit 1 "same serial again: refused" zg --origin tld. \
    --ds "$C/ds.txt" --release "$R" "$C/clean-nsec.zone"
check "... as unsafe-transition" grep -q 'unsafe-transition: tld. SOA .*does not increase' "$ZG_TMP/log"
check "... DIR untouched" [ "$(snap)" = "$before" ]
# a second pass with a higher serial replaces the zone and appends
sed 's| 2026050501 | 2026050502 |' "$C/scratch/clean-nsec.unsigned" >"$ZG_TMP/next.unsigned"
resign() {
    dnssec-signzone -q -d "$ZG_TMP" -o tld. -f "$ZG_TMP/next.zone" -s now-3600 -e now+2592000 \
        "$ZG_TMP/next.unsigned" "$C"/keys/ksk8/K*.private "$C"/keys/zsk8/K*.private >/dev/null
}
check "the same zone re-signed with serial 2026050502 (NSEC)" resign
check_exit 0 "a newer clean zone (NSEC) is released" zg --origin tld. \
    --ds "$C/ds.txt" --release "$R" "$ZG_TMP/next.zone"
check "... it replaced tld.zone" cmp -s "$R/tld.zone" "$ZG_TMP/next.zone"
check "... the history grew by one line" [ "$(wc -l <"$R/history.jsonl")" -eq 2 ]
n=$(wc -l <"$R/history.jsonl")
check "history lines are JSON" python3 -c 'import json,sys
[json.loads(l) for l in open(sys.argv[1])]' "$R/history.jsonl"

# the root zone is released as root.zone
mkdir "$ZG_TMP/rootrel" "$ZG_TMP/rk"
printf '. 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400\n. 518400 IN NS a.root-servers.net.\ntld. 172800 IN NS ns1.nic.tld.\nns1.nic.tld. 172800 IN A 192.0.2.53\n' >"$ZG_TMP/root.unsigned"
rk=$(dnssec-keygen -q -K "$ZG_TMP/rk" -a ECDSAP256SHA256 -f KSK .)
rz=$(dnssec-keygen -q -K "$ZG_TMP/rk" -a ECDSAP256SHA256 .)
cat "$ZG_TMP/rk/$rk.key" "$ZG_TMP/rk/$rz.key" >>"$ZG_TMP/root.unsigned"
dnssec-signzone -q -d "$ZG_TMP" -o . -3 - -H 0 -f "$ZG_TMP/root.signed" "$ZG_TMP/root.unsigned" \
    "$ZG_TMP/rk/$rk" "$ZG_TMP/rk/$rz" >/dev/null 2>&1
dnssec-dsfromkey -2 "$ZG_TMP/rk/$rk.key" >"$ZG_TMP/root.ds"
check_exit 0 "signed root zone passes" zg --origin . --ds "$ZG_TMP/root.ds" \
    --release "$ZG_TMP/rootrel" "$ZG_TMP/root.signed"
check "... released as root.zone" cmp -s "$ZG_TMP/rootrel/root.zone" "$ZG_TMP/root.signed"
check "history has $n lines" [ "$n" -eq 2 ]

# --json is written atomically and is complete JSON
check_exit 1 "--json on a refused zone" zg --origin tld. --ds "$C/ds.txt" \
    --json "$ZG_TMP/r.json" "$C/bogus-signature.zone"
check "--json parses and holds the CLI.md keys" python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert d["verdict"] == "fail" and d["zone"] == "tld." and d["serial"] == 2026050501
assert isinstance(d["counts"], dict)
p = d["problems"][0]
assert set(("class","ede","owner","type","keytag","algorithm","message")) <= set(p)' "$ZG_TMP/r.json"
done_testing
