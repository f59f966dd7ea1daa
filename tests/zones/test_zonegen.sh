#!/usr/bin/env bash
# The zone generator is deterministic, streams any size, and writes zones
# that independent parsers accept.
. "$ZG_SRC/tests/lib/tap.sh"
zg_tmpdir
gen="$ZG_BUILD/zones/zonegen"

"$gen" --delegations 2000 --ds-fraction 0.3 --glue-fraction 0.2 --extras \
    --seed 5 -o "$ZG_TMP/a.zone"
"$gen" --delegations 2000 --ds-fraction 0.3 --glue-fraction 0.2 --extras \
    --seed 5 >"$ZG_TMP/b.zone"
"$gen" --delegations 2000 --ds-fraction 0.3 --glue-fraction 0.2 --extras \
    --seed 6 -o "$ZG_TMP/c.zone"
check "same arguments give the same bytes" cmp -s "$ZG_TMP/a.zone" "$ZG_TMP/b.zone"
check "another seed gives another zone" bash -c "! cmp -s '$ZG_TMP/a.zone' '$ZG_TMP/c.zone'"

check "kzonecheck accepts it" kzonecheck -o tld. "$ZG_TMP/a.zone"
check "ldns-read-zone accepts it" bash -c "ldns-read-zone '$ZG_TMP/a.zone' >/dev/null"

dels=$(ldns-read-zone "$ZG_TMP/a.zone" | awk '$4=="NS" && $1!="tld." {print $1}' | sort -u | wc -l)
# 2000 generated + deleg-glue + sub.ent-deleg from --extras
check "2002 delegations ($dels)" test "$dels" -eq 2002
ds=$(ldns-read-zone "$ZG_TMP/a.zone" | awk '$4=="DS" {print $1}' | sort -u | wc -l)
check "DS fraction near 0.3 ($ds of 2002)" test "$ds" -gt 500 -a "$ds" -lt 700

"$gen" --delegations 2000 --ds-fraction 0.3 --glue-fraction 0.2 --extras \
    --seed 5 --mutate 0.01 -o "$ZG_TMP/m.zone"
changed=$(diff "$ZG_TMP/a.zone" "$ZG_TMP/m.zone" | grep -c '^>')
check "--mutate 0.01 changes a few delegations ($changed lines)" \
    test "$changed" -gt 10 -a "$changed" -lt 200

"$gen" --delegations 500 --seed 3 -o "$ZG_TMP/s.zone" --split "$ZG_TMP/s.inc"
check "--split writes an \$INCLUDE" grep -q '^\$INCLUDE ' "$ZG_TMP/s.zone"
"$gen" --delegations 500 --seed 3 -o "$ZG_TMP/u.zone"
# ldns does not implement $INCLUDE; BIND's compiler does (-i none: no
# integrity checks, so no look-ups of out-of-zone names).
compile() { named-compilezone -q -i none -k ignore -o - tld. "$1" </dev/null; }
check "the split zone holds the same records" \
    cmp -s <(compile "$ZG_TMP/s.zone") <(compile "$ZG_TMP/u.zone")
check "and they are all there" \
    test "$(compile "$ZG_TMP/u.zone" | wc -l)" -gt 1000
check_exit 2 "a relative origin is refused" "$gen" --origin tld --delegations 1
done_testing
