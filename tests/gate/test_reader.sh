#!/usr/bin/env bash
# tests/gate/test_reader.sh - the parallel reader (gate/load.c) reads a
# large zone exactly as one reader does (same records, same findings),
# keeps FILE:LINE right in every piece, and honours $ORIGIN/$TTL that
# were set before a split point.
. "$ZG_SRC/tests/lib/tap.sh"
for t in zonegate zonegen python3; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
D=$ZG_TMP
echo 'tld. 3600 IN DS 12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF' >"$D/ds"
zonegen --delegations 40000 --ds-fraction 0.2 --glue-fraction 0.2 --extras \
    -o "$D/big.zone" || { not_ok zonegen; done_testing; }
check "zone is large enough to be split (> 1 MiB)" [ "$(stat -c %s "$D/big.zone")" -gt 1048576 ]
for t in 1 2 4; do
    zonegate --threads "$t" --origin tld. --ds "$D/ds" --unsigned "$D/big.zone" \
        --json "$D/t$t.json" "$D/big.zone" >"$D/t$t.out" 2>&1
    check "--threads $t: exit 1 (unsigned zone)" [ $? -eq 1 ]
done
check "2 readers: same JSON as 1" cmp -s "$D/t1.json" "$D/t2.json"
check "4 readers: same JSON as 1" cmp -s "$D/t1.json" "$D/t4.json"
check "no content-mismatch against itself (every record read)" \
    bash -c '! grep -q content-mismatch "$1"' _ "$D/t2.out"
recs=$(grep -cvE '^[[:space:]]*(;|$|\$)' "$D/big.zone")
check "record count plausible ($recs lines with records)" \
    python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["counts"]["records"]; sys.exit(0 if n >= int(sys.argv[2]) * 0.9 else 1)' "$D/t2.json" "$recs"

# a bad record near the end: the error names its line
n=$(wc -l <"$D/big.zone")
bad=$((n - 10))
sed "${bad}i www-bad A 192.0.2.999" "$D/big.zone" >"$D/bad.zone"
for t in 1 2; do
    zonegate --threads $t --origin tld. --ds "$D/ds" "$D/bad.zone" >/dev/null 2>"$D/err$t"
    check "--threads $t: malformed record: exit 2" [ $? -eq 2 ]
    check "--threads $t: error names line $bad" grep -q "bad.zone:$bad: " "$D/err$t"
done

# $ORIGIN and $TTL set early apply to records in every piece
{
    echo '$ORIGIN tld.'
    echo '$TTL 777'
    sed -e '/^\$ORIGIN/d' -e '/^\$TTL/d' "$D/big.zone"
    echo '$ORIGIN sub.tld.'
    echo 'late TXT "x"'
} >"$D/dir.zone"
head -n -2 "$D/dir.zone" >"$D/dir-unsigned.zone"
zonegate --threads 2 --origin tld. --ds "$D/ds" --unsigned "$D/dir-unsigned.zone" \
    --json "$D/dir.json" "$D/dir.zone" >/dev/null 2>&1
check "late \$ORIGIN honoured: the only extra record is late.sub.tld. TXT" \
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
m = [(p["owner"], p["type"]) for p in d["problems"] if p["class"] == "content-mismatch"]
sys.exit(0 if m == [("late.sub.tld.", "TXT")] else 1)' "$D/dir.json"
zonegate --threads 1 --origin tld. --ds "$D/ds" --unsigned "$D/dir-unsigned.zone" \
    --json "$D/dir1.json" "$D/dir.zone" >/dev/null 2>&1
check "directives: 2 readers give the same JSON as 1" cmp -s "$D/dir1.json" "$D/dir.json"
done_testing
