#!/usr/bin/env bash
# tests/signer/test_split.sh - split reading (signer/reader.c): a zone file
# read in two halves on two threads gives exactly what reading it whole
# gives: the same records, the same warnings with the same FILE:LINE, the
# same errors; zones it cannot split safely ($INCLUDE) are read whole, and
# a cut inside a multi-line record falls back to reading whole.
# ZONESIGN_SPLIT_MIN (bytes) lowers the size from which a file is split,
# ZONESIGN_SPLIT_SLICE (bytes) the slices each half is parsed in, and
# ZONESIGN_SPLIT_DELAY (microseconds) holds the second half's thread back,
# so that the first takes slices from the back of the second half (work
# stealing): the same again.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util kzonecheck python3 zonesign zonehsm zonegen
zs_setup 1 13 csk

# sign Z with split reading forced (MIN=1) or off; output without RRSIG
# lines (ECDSA signatures differ run to run), stderr without timings
sign_as() { # MIN ZONE TAG [DELAY]
    ZONESIGN_TRACE=1 ZONESIGN_SPLIT_MIN=$1 ZONESIGN_SPLIT_SLICE=2048 \
        ZONESIGN_SPLIT_DELAY=${4:-0} zs_sign 1 --keyset "$T/ks" \
        --opt-out --quiet -o "$T/$3.signed" "$2" 2>"$T/$3.err"
    echo $? >"$T/$3.rc"
    if [ -f "$T/$3.signed" ]; then
        grep -v ' IN RRSIG ' "$T/$3.signed" >"$T/$3.data"
    else
        : >"$T/$3.data"
    fi
    grep -v 'trace:\|signed \|phases:\|signatures$' "$T/$3.err" >"$T/$3.msgs"
}

same() { # ZONE NAME WANT_ROAD
    local z=$1 n=$2 road=$3
    rm -f "$T/s.signed" "$T/w.signed" "$T/d.signed"
    sign_as 1 "$z" s
    sign_as 999999999999 "$z" w
    check "$n: split road is '$road'" grep -q "parse .*($road)" "$T/s.err"
    check "$n: whole read takes the whole road" grep -q "(whole)" "$T/w.err"
    check "$n: same exit status ($(cat "$T/s.rc") $(cat "$T/w.rc"))" \
        cmp -s "$T/s.rc" "$T/w.rc"
    check "$n: same records" cmp -s "$T/s.data" "$T/w.data"
    check "$n: same warnings and errors" cmp -s "$T/s.msgs" "$T/w.msgs" ||
        diag "$(diff "$T/s.msgs" "$T/w.msgs" | head -4)"
    # the second half's thread held back: the first takes slices from it
    sign_as 1 "$z" d 200000
    if [ "$road" = "split in two" ]; then
        check "$n: with slices taken from the other half's back" \
            grep -q "slices, [1-9][0-9]* taken" "$T/d.err"
    fi
    check "$n: ... same exit status, records, warnings and errors" \
        bash -c "cmp -s '$T/d.rc' '$T/w.rc' && cmp -s '$T/d.data' '$T/w.data' &&
                 cmp -s '$T/d.msgs' '$T/w.msgs'" ||
        diag "$(diff "$T/d.msgs" "$T/w.msgs" | head -4)"
}

zonegen --origin tld. --delegations 3000 --ds-fraction 0.2 --glue-fraction 0.1 \
    --seed 3 --extras -o "$T/gen.zone"
same "$T/gen.zone" "zonegen zone" "split in two"
check "zonegen zone: kzonecheck (split road)" zs_verify_knot tld. "$T/s.signed"

# directives in the first half, relative names, records without TTL,
# duplicates and TTL disagreements (warnings with line numbers) in both
# halves, no final newline
python3 - "$T/dir.zone" <<'PY'
import sys
L = ["$ORIGIN tld.", "$TTL 3600",
     "@ SOA ns.tld. host.tld. 1 7200 3600 1209600 300", "@ NS ns", "ns A 192.0.2.1"]
for i in range(200):
    L.append(f"a{i} NS ns.example.")
    if i % 7 == 0:
        L.append(f"a{i} DS {i} 13 2 " + "AB" * 32)
    if i == 50:
        L += ["$TTL 600", "$ORIGIN sub.tld.", "x A 192.0.2.7", "$ORIGIN tld."]
    if i == 60:
        L += [f"dup{i} 100 A 192.0.2.9", f"dup{i} 100 A 192.0.2.9"]
for i in range(200, 400):
    L.append(f"b{i} 300 A 192.0.2.{i % 250}")
    if i == 300:
        L += [f"ttl{i} 100 TXT \"x\"", f"ttl{i} 200 TXT \"y\"", f"b{i} A 192.0.2.1"]
    if i == 350:
        L += [f"dup{i} A 192.0.2.9", f"dup{i} A 192.0.2.9", "k DNSKEY 256 3 13 " + "AA" * 32]
open(sys.argv[1], "w").write("\n".join(L))
PY
same "$T/dir.zone" "directives and warnings" "split in two"
check "directives zone: warnings were given" grep -q "duplicate" "$T/s.msgs"
check "directives zone: \$TTL 600 applied to the second half" \
    grep -q '^dup350.tld. 600 IN A ' "$T/s.data"

# the checks of split reading run per bin (the first octet of the name
# below the origin, signer/zone.c): warnings from many bins come in
# canonical order, and the first error in canonical order wins, with the
# warnings before it and none after it, exactly as in one pass.  Names
# under many first letters, in file order unlike canonical order.
checks_zone() { # FILE CASE
    python3 - "$1" "$2" <<'PY'
import sys
path, case = sys.argv[1], sys.argv[2]
L = ["$ORIGIN tld.", "$TTL 3600",
     "@ SOA ns.tld. host.tld. 1 7200 3600 1209600 300", "@ NS ns", "ns A 192.0.2.1"]
if case == "apex-dname":
    L.append("@ DNAME elsewhere.example.")
letters = "zyxwvutsrqponmlkjihgfedcba0987654321"
for i in range(600):
    c = letters[i % len(letters)]
    L.append(f"{c}n{i} NS ns.example.")
    if i % 50 == 7:   # a duplicate (warning) in many bins
        L += [f"{c}d{i} A 192.0.2.9", f"{c}d{i} A 192.0.2.9"]
    if i % 80 == 11:  # a TTL disagreement (warning)
        L += [f"{c}t{i} 100 TXT \"x\"", f"{c}t{i} 200 TXT \"y\""]
bad = {
    "cname-m": ["mcname A 192.0.2.1", "mcname CNAME ns"],
    "cname-two": ["xcname CNAME ns", "xcname CNAME ns.example."],
    "ds-q-cname-c": ["qsub DS 1 13 2 " + "AB" * 32, "ccname A 192.0.2.1",
                     "ccname CNAME ns"],
    "below-dname": ["oold DNAME new.example.", "x.oold A 192.0.2.1",
                    "zsub DS 1 13 2 " + "AB" * 32],
}.get(case, [])
# errors early in the file, after the middle, and late
for k, line in enumerate(bad):
    L.insert([len(L) // 3, len(L) * 2 // 3, len(L) - 5][k % 3], line)
open(path, "w").write("\n".join(L) + "\n")
PY
}
for case in warnings cname-m cname-two ds-q-cname-c below-dname apex-dname; do
    checks_zone "$T/chk-$case.zone" "$case"
    same "$T/chk-$case.zone" "checks ($case)" "split in two"
done
checks_zone "$T/chk-w.zone" warnings
sign_as 1 "$T/chk-w.zone" s
check "checks (warnings): warnings from many bins" \
    test "$(grep -c 'duplicate A record dropped' "$T/s.msgs")" -ge 10
checks_zone "$T/chk-c.zone" ds-q-cname-c
sign_as 1 "$T/chk-c.zone" s
check "checks: the first error in canonical order wins (ccname, not qsub)" \
    grep -q 'CNAME beside other data' "$T/s.msgs"
checks_zone "$T/chk-a.zone" apex-dname
sign_as 1 "$T/chk-a.zone" s
check "checks: a DNAME at the apex puts every other name below it" \
    grep -q 'data below a DNAME' "$T/s.msgs"

# a multi-line record across the middle, its lines starting like owners
python3 - "$T/ml.zone" <<'PY'
import sys
L = ["$ORIGIN tld.", "$TTL 3600",
     "@ SOA ns.tld. host.tld. 1 7200 3600 1209600 300", "@ NS ns", "ns A 192.0.2.1"]
L += [f"a{i} A 192.0.2.{i}" for i in range(1, 60)]
L += ["t TXT ("] + [f"{i}word" for i in range(400)] + [")"]
L += [f"c{i} A 192.0.2.{i}" for i in range(1, 60)]
open(sys.argv[1], "w").write("\n".join(L) + "\n")
PY
same "$T/ml.zone" "multi-line record at the cut" "whole"

# $INCLUDE: read whole
zonegen --origin tld. --delegations 500 --seed 4 -o "$T/inc.zone" \
    --split "$T/inc-part.zone"
same "$T/inc.zone" "\$INCLUDE" "whole"

# errors in the second half: the same FILE:LINE
for f in "$ZG_SRC"/tests/data/signer/bad-*.zone; do
    same "$f" "$(basename "$f")" "whole"
done 2>/dev/null | grep -v " road" | sed 's/^ok [0-9]* - /ok - /; s/^not ok [0-9]* - /not ok - /' >"$T/bad.tap"
while read -r st rest; do
    case "$st" in
    ok) ok "${rest#- }" ;;
    not) not_ok "${rest#ok - }" ;;
    esac
done <"$T/bad.tap"
python3 - "$T/late.zone" <<'PY'
import sys
L = ["$ORIGIN tld.", "$TTL 3600",
     "@ SOA ns.tld. host.tld. 1 7200 3600 1209600 300", "@ NS ns", "ns A 192.0.2.1"]
L += [f"a{i} A 192.0.2.{i % 250}" for i in range(300)]
L += ["bad A 192.0.2.300"] + [f"c{i} A 192.0.2.1" for i in range(20)]
open(sys.argv[1], "w").write("\n".join(L) + "\n")
PY
sign_as 1 "$T/late.zone" s
sign_as 999999999999 "$T/late.zone" w
check "syntax error in the second half: exit 2" test "$(cat "$T/s.rc")" = 2
check "syntax error in the second half: same message as whole" \
    cmp -s "$T/s.msgs" "$T/w.msgs"
check "syntax error names late.zone:306" grep -q 'late.zone:306:' "$T/s.msgs"
check "no output" test ! -e "$T/s.signed"
done_testing
