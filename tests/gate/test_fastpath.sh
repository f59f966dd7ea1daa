#!/usr/bin/env bash
# tests/gate/test_fastpath.sh - gate/load.c hands simple one-line records
# straight to ldns_rr_new_frm_str and everything else (parentheses,
# comments, quotes, escapes, CR, directives) to libldns's file reader.
# Both roads must give the same records, the same findings and the same
# FILE:LINE: a zone where every record line carries a comment (so every
# line takes libldns's file reader) is compared with the plain zone.
. "$ZG_SRC/tests/lib/tap.sh"
for t in zonegate zonegen python3; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
D=$ZG_TMP
echo 'tld. 3600 IN DS 12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF' >"$D/ds"
zonegen --delegations 30000 --ds-fraction 0.2 --glue-fraction 0.2 --extras \
    -o "$D/gen.zone" || { not_ok zonegen; done_testing; }
# odd but valid shapes among simple lines: blank lines, blank-only lines,
# tabs, trailing blanks, an omitted owner, a record in parentheses
python3 - "$D/gen.zone" "$D/plain.zone" <<'PY'
import sys
src = open(sys.argv[1]).read().split("\n")
out = []
for i, l in enumerate(src):
    out.append(l)
    if i % 997 == 5 and l and not l.startswith("$"):
        out.append("")
        out.append("   \t ")
        out.append("\tIN TXT \"same owner %d\"" % i)
        out.append("tab%d.tld.\t3600\tIN\tA\t192.0.2.1   " % i)
        out.append("paren%d.tld. 3600 IN ( A" % i)
        out.append("  192.0.2.2 )")
open(sys.argv[2], "w").write("\n".join(out))
PY
# the same text, every record line with a comment: libldns's reader only
sed -E 's/^([^$;].*[^[:space:]])$/\1 ; c/' "$D/plain.zone" >"$D/comment.zone"
check "zone is large enough to be split (> 1 MiB)" [ "$(stat -c %s "$D/plain.zone")" -gt 1048576 ]
check "comment variant has as many lines" [ "$(wc -l <"$D/plain.zone")" -eq "$(wc -l <"$D/comment.zone")" ]
for v in plain comment; do
    for t in 1 2; do
        zonegate --threads $t --origin tld. --ds "$D/ds" --unsigned "$D/plain.zone" \
            --json "$D/$v$t.json" "$D/$v.zone" >"$D/$v$t.out" 2>&1
        check "$v, --threads $t: exit 1 (unsigned zone)" [ $? -eq 1 ]
    done
done
check "simple-line path and libldns's reader: same JSON" cmp -s "$D/plain1.json" "$D/comment1.json"
check "2 readers: same JSON as 1 (plain)" cmp -s "$D/plain1.json" "$D/plain2.json"
check "2 readers: same JSON as 1 (comments)" cmp -s "$D/comment1.json" "$D/comment2.json"
check "no content-mismatch: the comment variant holds the same records" \
    bash -c '! grep -q content-mismatch "$1"' _ "$D/comment2.out"
check "records counted, the extra shapes included" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["counts"]["records"] > 30000 else 1)' "$D/plain2.json"

# upper case on simple lines (owners, rdata names, a relative name under an
# upper-case $ORIGIN, an omitted owner after an upper-case one): canonical
# form (RFC 4034 6.2) makes the records equal to the lower-case ones
python3 - "$D/plain.zone" "$D/upper.zone" "$D/lower.zone" <<'PY'
import sys
src = open(sys.argv[1]).read().split("\n")
up, lo = [], []
for i, l in enumerate(src):
    if i % 3 == 1 and l and l[0] not in "$; \t" and '"' not in l and "(" not in l:
        l2 = l.upper().replace(" IN ", " IN ").replace("\tIN\t", "\tIN\t")
        f = l2.split()
        # keep the type's rdata that is not a name as it was
        if len(f) >= 4 and f[3] in ("NS", "CNAME", "MX", "A", "AAAA", "DS"):
            if f[3] in ("A", "AAAA", "DS"):
                l2 = " ".join(f[:4] + l.split()[4:])
            up.append(l2)
            lo.append(l)
            continue
    up.append(l)
    lo.append(l)
tail_up = ["$ORIGIN SUB.TLD.", "Rel 3600 IN NS NS1.Example.", "\t3600 IN DS 1 13 2 " + "AB" * 32]
tail_lo = ["$ORIGIN sub.tld.", "rel 3600 IN NS ns1.example.", "\t3600 IN DS 1 13 2 " + "ab" * 32]
open(sys.argv[2], "w").write("\n".join(up + tail_up) + "\n")
open(sys.argv[3], "w").write("\n".join(lo + tail_lo) + "\n")
PY
check "upper-case variant differs from the lower-case text" bash -c '! cmp -s "$1" "$2"' _ "$D/upper.zone" "$D/lower.zone"
zonegate --threads 2 --origin tld. --ds "$D/ds" --unsigned "$D/lower.zone" \
    --json "$D/upper.json" "$D/upper.zone" >"$D/upper.out" 2>&1
check "upper case: exit 1 (unsigned zone)" [ $? -eq 1 ]
check "upper case: no content-mismatch against the lower-case zone" \
    bash -c '! grep -q content-mismatch "$1"' _ "$D/upper.out"
zonegate --threads 2 --origin tld. --ds "$D/ds" --unsigned "$D/lower.zone" \
    --json "$D/lower.json" "$D/lower.zone" >/dev/null 2>&1
check "upper case: same JSON as the lower-case zone" cmp -s "$D/upper.json" "$D/lower.json"

# a malformed record read by libldns's file reader as the last line of a
# piece (pieces are cut at the first record line at or after 1 MiB): it
# is an error like anywhere else, not a "trailing blank" at end of input
python3 - "$D/plain.zone" "$D/edge.zone" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
lines = data.split(b"\n")
off, n = 0, 0
for n, l in enumerate(lines):
    if off + len(l) + 1 > 1048576:
        break
    off += len(l) + 1
# line n holds byte 1 MiB: make it the bad record, the next a plain one
lines[n] = b"bad..name.tld. 3600 IN NS ns1.example. ; c"
lines[n + 1] = b"next.tld. 3600 IN NS ns1.example."
open(sys.argv[2], "wb").write(b"\n".join(lines))
PY
edge=$(grep -n '^bad\.\.name' "$D/edge.zone" | cut -d: -f1)
for t in 1 2; do
    zonegate --threads $t --origin tld. --ds "$D/ds" "$D/edge.zone" >/dev/null 2>"$D/edge$t.err"
    check "bad record ending a piece, --threads $t: exit 2" [ $? -eq 2 ]
    check "bad record ending a piece, --threads $t: error names line $edge" grep -q "edge.zone:$edge: " "$D/edge$t.err"
done

# --timings: phases on stderr, the report on stdout unchanged
zonegate --threads 2 --origin tld. --ds "$D/ds" --unsigned "$D/plain.zone" \
    --timings "$D/plain.zone" >"$D/tim.out" 2>"$D/tim.err"
check "--timings: same exit (1)" [ $? -eq 1 ]
check "--timings: same report on stdout" cmp -s "$D/tim.out" "$D/plain2.out"
for ph in parse sort index verify denial total; do
    check "--timings: stderr has the $ph phase" grep -qE "^zonegate: timing $ph +[0-9.]+ s wall +[0-9.]+ s cpu" "$D/tim.err"
done
check "--timings: parse counts every record" \
    bash -c 'n=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"counts\"][\"records\"])" "$1"); grep -qE "timing parse .* ([0-9]+) items" "$2" && [ "$(grep -oE "timing parse .* [0-9]+ items" "$2" | grep -oE "[0-9]+ items" | grep -oE "[0-9]+")" -ge "$n" ]' _ "$D/plain2.json" "$D/tim.err"

# faults: same message and FILE:LINE on both roads, blank lines after the
# bad record counted the way libldns counts them
n=$(wc -l <"$D/plain.zone")
for at in 40 $((n / 2)) $((n - 5)); do
    for bad in 'www-bad A 192.0.2.999' 'bad..name.tld. 3600 IN NS ns1.example.' \
               'x.tld. 3600 CH A 192.0.2.1' 'x.example. 3600 IN A 192.0.2.1'; do
        sed "${at}i $bad\n\n" "$D/plain.zone" >"$D/badp.zone"
        sed -E 's/^([^$;].*[^[:space:]])$/\1 ; c/' "$D/badp.zone" >"$D/badc.zone"
        for t in 1 2; do
            zonegate --threads $t --origin tld. --ds "$D/ds" "$D/badp.zone" >/dev/null 2>"$D/ep"
            rp=$?
            zonegate --threads $t --origin tld. --ds "$D/ds" "$D/badc.zone" >/dev/null 2>"$D/ec"
            rc=$?
            check "line $at '$bad' --threads $t: exit 2 on both roads" [ $rp -eq 2 -a $rc -eq 2 ]
            check "line $at '$bad' --threads $t: same error" \
                bash -c 'diff <(sed "s/badp.zone/Z/" "$1") <(sed "s/badc.zone/Z/" "$2")' _ "$D/ep" "$D/ec"
            check "line $at '$bad' --threads $t: error names a line at or after $at" \
                bash -c 'l=$(grep -oE "badp.zone:[0-9]+:" "$1" | grep -oE "[0-9]+"); [ -n "$l" ] && [ "$l" -ge "$2" ] && [ "$l" -le $(($2 + 3)) ]' _ "$D/ep" "$at"
        done
    done
done
done_testing
