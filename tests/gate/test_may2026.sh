#!/usr/bin/env bash
# tests/gate/test_may2026.sh - the May 2026 outage shape (DESIGN.md): two
# thirds of the RRsets (NSEC3 included) signed by two unpublished keys,
# (a) with their own key tags -> unknown-key, (b) with the published ZSK's
# tag patched in -> bogus-signature.  Rejected, every bad signature
# counted, the report grouping them by key in its first lines.
. "$ZG_SRC/tests/lib/tap.sh"
for t in dnssec-keygen dnssec-signzone dnssec-dsfromkey ldns-read-zone \
    python3 zonegate zonegen; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
D=$ZG_TMP
zonegen --delegations 600 --ds-fraction 0.3 --glue-fraction 0.2 --extras \
    -o "$D/unsigned.zone" || { not_ok "zonegen"; done_testing; }
python3 "$ZG_SRC/tests/gate/may2026.py" "$D" "$D/unsigned.zone" ||
    { not_ok "may2026.py built the zones"; done_testing; }
. "$D/facts"
zgo() { local out=$1; shift; zonegate "$@" >"$out" 2>&1; }
ok "zones built: $N_BAD bad signatures, $N_OK RRsets signed by the published ZSK $TAG_PUB"
check "two thirds of the ZSK signatures are bad" \
    [ $((N_BAD * 3)) -ge $(((N_BAD + N_OK) * 2 - 3)) ]

json_count() { # file class
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(sum(1 for p in d["problems"] if p["class"] == sys.argv[2]),
      len(d["problems"]), d["verdict"])' "$1" "$2"
}

check_exit 1 "own tags: rejected" zgo "$D/own.out" --origin tld. --ds "$D/ds.txt" \
    --json "$D/own.json" "$D/may-own.zone"
check "own tags: JSON has $N_BAD unknown-key findings and nothing else" \
    [ "$(json_count "$D/own.json" unknown-key)" = "$N_BAD $N_BAD fail" ]
check "own tags: line 2 is 'problem unknown-key: $N_BAD (EDE 9)'" \
    [ "$(sed -n 2p "$D/own.out")" = "problem unknown-key: $N_BAD (EDE 9)" ]
for t in "$TAG_B" "$TAG_C"; do
    check "own tags: key $t grouped as not published, all its signatures bad" \
        grep -Eq "^key $t alg 8 \(not published\): 0 signatures verify, [0-9]+ do not \(100% " "$D/own.out"
done
check "own tags: published ZSK $TAG_PUB shown with its good signatures" \
    grep -Eq "^key $TAG_PUB alg 8: $((N_OK + 1)) signatures verify, 0 do not" "$D/own.out"
b=$(grep -E "^key ($TAG_B|$TAG_C) " "$D/own.out" | sed -E 's/.* ([0-9]+) do not.*/\1/' | awk '{s+=$1} END{print s}')
check "own tags: per-key counts add up to every bad signature ($b)" [ "$b" = "$N_BAD" ]
check "own tags: key groups come before the examples" \
    bash -c 'awk "/^key /{k=NR} /^  unknown-key: /{e=e?e:NR} END{exit !(k && e && k < e)}" "$1"' _ "$D/own.out"

check_exit 1 "patched tags: rejected" zgo "$D/pat.out" --origin tld. --ds "$D/ds.txt" \
    --json "$D/pat.json" "$D/may-patched.zone"
check "patched tags: JSON has $N_BAD bogus-signature findings and nothing else" \
    [ "$(json_count "$D/pat.json" bogus-signature)" = "$N_BAD $N_BAD fail" ]
check "patched tags: line 2 is 'problem bogus-signature: $N_BAD (EDE 6)'" \
    [ "$(sed -n 2p "$D/pat.out")" = "problem bogus-signature: $N_BAD (EDE 6)" ]
pct=$(( (N_BAD * 100 + (N_BAD + N_OK + 1) / 2) / (N_BAD + N_OK + 1) ))
check "patched tags: key $TAG_PUB: $((N_OK + 1)) verify, $N_BAD do not ($pct%)" \
    grep -q "^key $TAG_PUB alg 8: $((N_OK + 1)) signatures verify, $N_BAD do not ($pct% of this key's signatures)" "$D/pat.out"
check "patched tags: examples name owner, type, key tag and algorithm" \
    grep -Eq "^  bogus-signature: [^ ]+ [A-Z0-9]+ key $TAG_PUB alg 8: " "$D/pat.out"
check "NSEC3 signatures are among the bad ones" \
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if any(p["type"] == "NSEC3" for p in d["problems"]) else 1)' "$D/pat.json"
check_exit 1 "single-threaded run gives the same verdict" zgo "$D/pat1.out" --threads 1 \
    --origin tld. --ds "$D/ds.txt" --json "$D/pat1.json" "$D/may-patched.zone"
check "... and the same findings" cmp -s "$D/pat.json" "$D/pat1.json"
done_testing
