#!/usr/bin/env bash
# tests/gate/test_corpus.sh - the corruption corpus (tests/gate/corpus.py):
# zones signed by dnssec-signzone and ldns-signzone, clean ones and rollovers
# mid-way must pass; each corruption must be rejected with exactly its
# class (JSON); on every case dnssec-verify and ldns-verify-zone can judge,
# zonegate agrees with them or is stricter.
. "$ZG_SRC/tests/lib/tap.sh"
for t in dnssec-keygen dnssec-signzone dnssec-dsfromkey dnssec-verify \
    ldns-signzone ldns-read-zone ldns-verify-zone python3 zonegate; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
D=$ZG_TMP/corpus
mkdir -p "$D"
python3 "$ZG_SRC/tests/gate/corpus.py" "$D" 2>"$ZG_TMP/corpus.err" ||
    { diag "$(cat "$ZG_TMP/corpus.err")"; not_ok "corpus built"; done_testing; }
ok "corpus built by dnssec-signzone and ldns-signzone"

classes_of() {
    python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
cl = sorted({p["class"] for p in d["problems"]})
print(",".join(cl) if cl else "pass", d["verdict"])
PY
}

seen=""
while IFS='|' read -r name expect judge args; do
    [ -n "$name" ] || continue
    args=${args//\{D\}/$D}
    # shellcheck disable=SC2086
    zonegate --origin tld. --ds "$D/ds.txt" $args --json "$D/$name.json" \
        "$D/$name.zone" >"$D/$name.out" 2>"$D/$name.err"
    rc=$?
    want_rc=1
    [ "$expect" = pass ] && want_rc=0
    if [ "$rc" -ne "$want_rc" ]; then
        not_ok "$name: exit $rc, wanted $want_rc"
        diag "$(head -5 "$D/$name.out" "$D/$name.err")"
        continue
    fi
    got=$(classes_of "$D/$name.json")
    want_verdict=fail
    [ "$expect" = pass ] && want_verdict=pass
    if [ "$got" = "$expect $want_verdict" ]; then
        ok "$name: $got"
    else
        not_ok "$name: got '$got', wanted '$expect $want_verdict'"
        diag "$(head -8 "$D/$name.out")"
    fi
    # the text report's first line says the verdict, the next ones the class
    first=$(head -1 "$D/$name.out")
    if [ "$expect" = pass ]; then
        check "$name: report line 1 says PASS" grep -q '^zonegate: PASS tld\. serial ' <<<"$first"
    else
        check "$name: report says FAIL and names $expect with its EDE" \
            bash -c 'head -1 "$1" | grep -q "^zonegate: FAIL tld\. serial " &&
                     sed -n 2p "$1" | grep -Eq "^problem $2: [0-9]+ \(EDE [0-9]+\)$"' \
            _ "$D/$name.out" "$expect"
    fi
    [ "$expect" != pass ] && seen="$seen $expect"
    [ "$judge" = 1 ] || continue
    for tool in dnssec-verify ldns-verify-zone; do
        if [ $tool = dnssec-verify ]; then
            dnssec-verify -q -o tld. "$D/$name.zone" >/dev/null 2>&1
        else
            ldns-verify-zone -q "$D/$name.zone" >/dev/null 2>&1
        fi
        trc=$?
        if [ $trc -ne 0 ] && [ $rc -eq 0 ]; then
            not_ok "$name: $tool rejects (exit $trc) but zonegate passes"
        elif [ $trc -eq 0 ] && [ $rc -ne 0 ]; then
            ok "$name: zonegate stricter than $tool"
        else
            ok "$name: zonegate agrees with $tool"
        fi
    done
done <"$D/manifest"

# --trust-anchor takes DS or DNSKEY RRs
ta_ok() { zonegate --origin tld. --trust-anchor "$1" "$D/clean-nsec3.zone" >/dev/null 2>&1; }
check_exit 0 "--trust-anchor with the KSK's DNSKEY: pass" ta_ok "$(ls "$D"/keys/ksk8/*.key)"
check_exit 0 "--trust-anchor with its DS: pass" ta_ok "$D/ds.txt"
check_exit 1 "--trust-anchor with another KSK's DNSKEY: rejected" ta_ok "$(ls "$D"/keys/ksk8b/*.key)"

# every class of CLI.md that a zone file alone can show is in the corpus
for c in bogus-signature unknown-key missing-signature expired-signature \
    not-yet-valid-signature low-validity rrsig-field trust-anchor \
    algorithm-coverage signed-non-authoritative nsec3-chain nsec3-bitmap \
    nsec3-param nsec-chain content-mismatch unsafe-transition zonemd \
    unsupported-algorithm; do
    check "corpus has a case for $c" grep -qw -- "$c" <<<"$seen"
done
done_testing
