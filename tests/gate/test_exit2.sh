#!/usr/bin/env bash
# tests/gate/test_exit2.sh - bad input and usage: exit 2, one line on
# stderr starting "zonegate:", FILE:LINE for zone text, no output files,
# never a crash.  Fixtures: tests/data/gate/*.exit2.*
. "$ZG_SRC/tests/lib/tap.sh"
command -v zonegate >/dev/null || skip_all "zonegate not built"
zg_tmpdir
F=$ZG_SRC/tests/data/gate
# a DS file that parses, for the zone cases
echo 'tld. 3600 IN DS 12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF' >"$ZG_TMP/ds"
mkdir "$ZG_TMP/rel"

run2() { # desc, then zonegate args
    local desc=$1
    shift
    zonegate "$@" --json "$ZG_TMP/out.json" >"$ZG_TMP/stdout" 2>"$ZG_TMP/stderr"
    local rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$ZG_TMP/stderr")" -eq 1 ] &&
        grep -q '^zonegate: ' "$ZG_TMP/stderr" && [ ! -e "$ZG_TMP/out.json" ] &&
        [ -z "$(ls -A "$ZG_TMP/rel")" ]; then
        ok "$desc: exit 2, one line: $(cat "$ZG_TMP/stderr")"
    else
        not_ok "$desc: exit $rc, stderr: $(head -3 "$ZG_TMP/stderr")"
    fi
}

for z in "$F"/*.exit2.zone; do
    run2 "$(basename "$z")" --origin tld. --ds "$ZG_TMP/ds" --release "$ZG_TMP/rel" "$z"
done
check "malformed rdata names FILE:LINE" \
    grep -q 'malformed-rdata.exit2.zone:6: ' <(zonegate --origin tld. --ds "$ZG_TMP/ds" "$F/malformed-rdata.exit2.zone" 2>&1)
for d in "$F"/*.exit2.ds; do
    run2 "$(basename "$d")" --origin tld. --ds "$d" --release "$ZG_TMP/rel" "$F/tld.zone"
done
run2 "missing zone file" --origin tld. --ds "$ZG_TMP/ds" "$ZG_TMP/nonexistent"
run2 "missing DS file" --origin tld. --ds "$ZG_TMP/nonexistent" "$F/tld.zone"
run2 "no --origin" --ds "$ZG_TMP/ds" "$F/tld.zone"
run2 "neither --ds nor --trust-anchor" --origin tld. "$F/tld.zone"
run2 "both --ds and --trust-anchor" --origin tld. --ds "$ZG_TMP/ds" --trust-anchor "$ZG_TMP/ds" "$F/tld.zone"
run2 "relative origin" --origin tld --ds "$ZG_TMP/ds" "$F/tld.zone"
run2 "bad --now" --origin tld. --ds "$ZG_TMP/ds" --now yesterday "$F/tld.zone"
run2 "bad --min-validity" --origin tld. --ds "$ZG_TMP/ds" --min-validity 3w "$F/tld.zone"
run2 "bad --threads" --origin tld. --ds "$ZG_TMP/ds" --threads 0 "$F/tld.zone"
run2 "unknown option" --origin tld. --ds "$ZG_TMP/ds" --frobnicate "$F/tld.zone"
run2 "two zone files" --origin tld. --ds "$ZG_TMP/ds" "$F/tld.zone" "$F/tld.zone"
run2 "unreadable --unsigned" --origin tld. --ds "$ZG_TMP/ds" --unsigned "$ZG_TMP/nope" "$F/tld.zone"
run2 "malformed --previous" --origin tld. --ds "$ZG_TMP/ds" --previous "$F/malformed-rdata.exit2.zone" "$F/tld.zone"
# an unsigned zone is a verdict (rejected), not an error
zonegate --origin tld. --ds "$ZG_TMP/ds" "$F/tld.zone" >"$ZG_TMP/o" 2>&1
rc=$?
check "an unsigned zone is rejected with exit 1" [ $rc -eq 1 ]
check "... reported as a broken chain of trust" grep -q '^problem trust-anchor: 1 (EDE 9)' "$ZG_TMP/o"
check "--help exits 0 and lists --release" bash -c 'zonegate --help | grep -q -- --release'
done_testing
