#!/usr/bin/env bash
# tests/gate/test_include.sh - $INCLUDE in zonegate's reader (RFC 1035
# 5.1): relative paths from the including file's directory, the optional
# origin, nesting, the including file's origin kept; faults name the
# included file and its line (exit 2); zonegen --split output and a signed
# candidate split by $INCLUDE are read like one file.
. "$ZG_SRC/tests/lib/tap.sh"
for t in zonegate zonegen dnssec-keygen dnssec-signzone dnssec-dsfromkey python3; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
F=$ZG_SRC/tests/data/gate
D=$ZG_TMP
zgq() { zonegate "$@" >>"$D/log" 2>&1; }
echo 'tld. 3600 IN DS 12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF' >"$D/ds"

# the fixture with includes reads as exactly the flat zone's records
zonegate --origin tld. --ds "$D/ds" --unsigned "$F/include/flat.zone" \
    --json "$D/inc.json" "$F/include/main.zone" >"$D/inc.out" 2>&1
check "main.zone with \$INCLUDEs: verdict only (exit 1, unsigned)" [ $? -eq 1 ]
check "... same records as flat.zone (no content-mismatch)" python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert d["counts"]["records"] == 7, d["counts"]
assert not [p for p in d["problems"] if p["class"] == "content-mismatch"], d["problems"]' "$D/inc.json"
# and a mismatch is still seen through an include (guards against a reader
# that drops the included records: flat.zone has them, an empty include not)
mkdir -p "$D/copy/sub"
cp "$F/include/main.zone" "$D/copy/"
cp "$F/include/sub/"*.inc "$D/copy/sub/"
: >"$D/copy/sub/b.inc"
zonegate --origin tld. --ds "$D/ds" --unsigned "$F/include/flat.zone" \
    --json "$D/inc2.json" "$D/copy/main.zone" >/dev/null 2>&1
check "an emptied nested include shows as www.nic.tld. A missing" python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
m = [(p["owner"], p["type"]) for p in d["problems"] if p["class"] == "content-mismatch"]
assert m == [("www.nic.tld.", "A")], m' "$D/inc2.json"
# the same, run from another directory: relative to the file, not the cwd
(cd / && zonegate --origin tld. --ds "$D/ds" --unsigned "$F/include/flat.zone" \
    --json "$D/inc3.json" "$F/include/main.zone" >/dev/null 2>&1)
check "include paths do not depend on the working directory" cmp -s "$D/inc.json" "$D/inc3.json"

# faults inside included files: exit 2, one line, the included FILE:LINE
zonegate --origin tld. --ds "$D/ds" "$F/include-bad.exit2.zone" >/dev/null 2>"$D/err"
check "malformed record in an included file: exit 2" [ $? -eq 2 ]
check "... names the included file and its line" grep -q "include/bad.inc:3: " "$D/err"
check "... in one line" [ "$(wc -l <"$D/err")" -eq 1 ]
zonegate --origin tld. --ds "$D/ds" "$F/include-missing.exit2.zone" >/dev/null 2>"$D/err"
check "missing included file: exit 2" [ $? -eq 2 ]
check "... names the including FILE:LINE and the missing file" \
    grep -q "include-missing.exit2.zone:4: \$INCLUDE .*no-such-file.inc" "$D/err"
zonegate --origin tld. --ds "$D/ds" "$F/include-loop.exit2.zone" >/dev/null 2>"$D/err"
check "include loop stopped by the depth limit: exit 2" [ $? -eq 2 ]
check "... says so" grep -q 'nested deeper than' "$D/err"
printf '$ORIGIN tld.\n$INCLUDE sub.inc bad..name\n' >"$D/badorg.zone"
: >"$D/sub.inc"
zonegate --origin tld. --ds "$D/ds" "$D/badorg.zone" >/dev/null 2>"$D/err"
rc=$?
check "bad \$INCLUDE origin: exit 2 with FILE:LINE" \
    bash -c '[ "$2" -eq 2 ] && grep -q "badorg.zone:2: " "$1"' _ "$D/err" "$rc"
printf '$ORIGIN tld.\n$INCLUDE sub.inc tld. extra\n' >"$D/extra.zone"
check_exit 2 "three words after \$INCLUDE: exit 2" zgq --origin tld. --ds "$D/ds" "$D/extra.zone"
zonegate --origin tld. --ds "$D/ds" "$D/extra.zone" >/dev/null 2>"$D/err"
check_exit 0 "... three words after \$INCLUDE: refused with FILE:LINE" grep -q "extra.zone:2: " "$D/err"
printf '$ORIGIN tld.\n@ SOA a. b. 1 2 3 4 5\n$INCLUDE out.inc example.\n' >"$D/out.zone"
echo '@ A 192.0.2.1' >"$D/out.inc"
zonegate --origin tld. --ds "$D/ds" "$D/out.zone" >/dev/null 2>"$D/err"
check "included records outside the zone: exit 2 naming the included file" \
    grep -q "out.inc:1: owner is outside" "$D/err"

# zonegen --split: the unsigned registry zone as commissioning feeds it
zonegen --delegations 300 --seed 7 -o "$D/split.zone" --split "$D/split-deleg.zone" ||
    not_ok "zonegen --split"
zonegen --delegations 300 --seed 7 -o "$D/whole.zone" || not_ok "zonegen"
check "zonegen --split wrote an \$INCLUDE" grep -q '^\$INCLUDE' "$D/split.zone"
# a signed candidate of the whole zone, gated with the split zone as --unsigned
k=$(dnssec-keygen -q -K "$D" -a ECDSAP256SHA256 -f KSK tld.)
zk=$(dnssec-keygen -q -K "$D" -a ECDSAP256SHA256 tld.)
cat "$D/whole.zone" "$D/$k.key" "$D/$zk.key" >"$D/tosign.zone"
dnssec-signzone -q -d "$D" -o tld. -3 - -H 0 -f "$D/signed.zone" -K "$D" "$D/tosign.zone" \
    "$D/$k" "$D/$zk" >/dev/null 2>&1 || not_ok "dnssec-signzone"
dnssec-dsfromkey -2 "$D/$k.key" >"$D/tld.ds"
cat "$D/$k.key" "$D/$zk.key" >"$D/keys.inc"
{ cat "$D/split.zone"; echo "\$INCLUDE keys.inc"; } >"$D/split-keys.zone"
check_exit 0 "signed zone passes with --unsigned = the split zone (\$INCLUDE read)" \
    zgq --origin tld. --ds "$D/tld.ds" --unsigned "$D/split-keys.zone" \
    --now now "$D/signed.zone"
{ grep -v '^\$INCLUDE' "$D/split.zone"; cat "$D/keys.inc"; } >"$D/half.zone"
check_exit 1 "... and fails with only the first half (includes matter)" \
    zgq --origin tld. --ds "$D/tld.ds" --unsigned "$D/half.zone" \
    --now now "$D/signed.zone"
# the candidate itself split by $INCLUDE, released whole-file as given
printf '$INCLUDE signed.zone\n' >"$D/cand.zone"
mkdir "$D/rel"
check_exit 0 "a signed candidate read through \$INCLUDE passes and is released" \
    zgq --origin tld. --ds "$D/tld.ds" --release "$D/rel" "$D/cand.zone"
done_testing
