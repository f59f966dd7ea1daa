#!/usr/bin/env bash
# tests/signer/test_spare.sh - the OUT a run replaces, kept as the hidden
# spare DIR/.NAME.spare and written over by the next run (signer/reap.c):
#  - run 2 keeps run 1's OUT as the spare, byte for byte; run 3 writes its
#    OUT into it (the same inode comes back as OUT) and the two names are
#    exchanged; a spare longer than the new OUT leaves nothing behind;
#  - the patch road writes over the spare too; OUT.zsc and OUT.zsp have
#    spares of their own, written over the same way by both roads (with
#    P = OUT too: its own index is read while the spare is written), the
#    index's kept at mode 0600; --no-spare removes them;
#  - a spare with another link, one open elsewhere, or a symbolic link is
#    never written over (the other name, the open file, the link's target
#    keep their bytes), and the run still signs;
#  - an OUT with another link (a release made by a hard link) is never
#    kept as the spare, so later runs never write over it;
#  - --no-spare keeps none and removes one left before;
#  - every HSM failing leaves OUT as it was.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util kzonecheck zonesign zonehsm zonegen ldns-read-zone
shim="$ZG_BUILD/tests/shim/libzgshim.so"
[ -f "$shim" ] || { echo "Bail out! no $shim"; exit 1; }
zs_setup 1 13 split
zonegen --origin tld. --delegations 2000 --ds-fraction 0.2 --seed 7 \
    -o "$T/z.zone"
zonegen --origin tld. --delegations 1500 --ds-fraction 0.2 --seed 8 \
    -o "$T/small.zone"
zonegen --origin tld. --delegations 2000 --ds-fraction 0.2 --seed 7 \
    --mutate 0.05 --mutate-seed 2 -o "$T/z2.zone"
ino() { stat -c %i "$1"; }
sign() { # IN OUT ERR [ARGS...]
    local in=$1 out=$2 err=$3
    shift 3
    ZONESIGN_TRACE=1 zs_sign 1 --keyset "$T/ks" --quiet "$@" -o "$out" "$in" \
        2>"$err"
}
ok_zone() { # LABEL IN SIGNED: validates, and holds the input's records
    check "$1: kzonecheck" zs_verify_knot tld. "$3"
    check "$1: the input's records" zs_same_data "$2" "$3"
}

O=$T/out.signed S=$T/.out.signed.spare
# --- runs 1, 2, 3 to the same OUT -------------------------------------
sign "$T/z.zone" "$O" "$T/r1.err"
check "run 1: signed (exit $?)" test -s "$O"
check "run 1: no spare (nothing was replaced)" test ! -e "$S"
cp "$O" "$T/r1.copy"
i1=$(ino "$O")
sign "$T/z.zone" "$O" "$T/r2.err"
check "run 2: signed (exit $?)" test -s "$O"
check "run 2: run 1's OUT is the spare (inode $i1)" test "$(ino "$S")" = "$i1"
check "run 2: the spare holds run 1's OUT byte for byte" cmp -s "$S" "$T/r1.copy"
check "run 2: mode of a zone file" test "$(stat -c %a "$O")" = 644
i2=$(ino "$O")
ok_zone "run 2" "$T/z.zone" "$O"
check "run 2: no temporary file left" \
    bash -c "! ls -A '$T' | grep -q '\.tmp\.'"
# a smaller zone: written over the longer spare
sign "$T/small.zone" "$O" "$T/r3.err"
check "run 3: signed (exit $?)" test -s "$O"
check "run 3: OUT written over the spare (inode $i1 back)" test "$(ino "$O")" = "$i1"
check "run 3: run 2's OUT is the spare now (inode $i2)" test "$(ino "$S")" = "$i2"
check "run 3: shorter than the spare it was written over" \
    test "$(stat -c %s "$O")" -lt "$(stat -c %s "$T/r1.copy")"
ok_zone "run 3" "$T/small.zone" "$O"

# --- the patch road ------------------------------------------------------
P=$T/p.signed Q=$T/q.signed QS=$T/.q.signed.spare
sign "$T/z.zone" "$P" "$T/p.err"
sign "$T/z2.zone" "$Q" "$T/q1.err" --previous "$P"
check "patch road, first: patched" grep -q "previous zone patched" "$T/q1.err"
q1=$(ino "$Q")
sign "$T/z2.zone" "$Q" "$T/q2.err" --previous "$P"
q2=$(ino "$Q")
sign "$T/z2.zone" "$Q" "$T/q3.err" --previous "$P"
check "patch road, third: patched" grep -q "previous zone patched" "$T/q3.err"
check "patch road, third: OUT written over the spare (inode $q1 back)" \
    test "$(ino "$Q")" = "$q1" -a "$(ino "$QS")" = "$q2"
ok_zone "patch road" "$T/z2.zone" "$Q"

# --- OUT.zsc and OUT.zsp have spares too ----------------------------------
# (the files beside OUT: the cache and the patch index, written over by
# the next run like OUT; the index keeps its mode 0600, it holds a secret)
zi=() zc=() zq=()
for k in 1 2 3; do
    sign "$T/z2.zone" "$Q" "$T/qs$k.err" --previous "$P"
    check "side spares, run $k: patched" grep -q "previous zone patched" "$T/qs$k.err"
    zi[k]=$(ino "$Q.zsp") zc[k]=$(ino "$Q.zsc")
done
check "side spares: run 2's index is the spare after run 3" \
    test "$(ino "$T/.q.signed.zsp.spare")" = "${zi[2]}"
check "side spares: run 3 wrote its index over run 1's (inode ${zi[1]})" \
    test "${zi[3]}" = "${zi[1]}" -a "${zi[2]}" != "${zi[1]}"
check "side spares: run 2's cache is the spare after run 3" \
    test "$(ino "$T/.q.signed.zsc.spare")" = "${zc[2]}"
check "side spares: run 3 wrote its cache over run 1's (inode ${zc[1]})" \
    test "${zc[3]}" = "${zc[1]}" -a "${zc[2]}" != "${zc[1]}"
check "side spares: the index and its spare are mode 600" \
    test "$(stat -c %a "$Q.zsp")$(stat -c %a "$T/.q.signed.zsp.spare")" = 600600
check "side spares: the cache is mode 644" test "$(stat -c %a "$Q.zsc")" = 644
check "side spares: no temporary file left" \
    bash -c "! ls -A '$T' | grep -q '\.tmp\.'"
# what was written over them is whole: the next run patches through them,
# P being OUT itself (its own index and cache are read while the spares
# are written), and the result is the full signing's
for k in 1 2; do
    sign "$T/z.zone" "$Q" "$T/qq$k.err" --previous "$Q"
    check "OUT from itself, run $k: patched" grep -q "previous zone patched" "$T/qq$k.err"
    zq[k]=$(ino "$Q.zsp")
done
check "OUT from itself: each index written over the spare (inodes ${zi[2]}, ${zi[1]})" \
    test "${zq[1]}" = "${zi[2]}" -a "${zq[2]}" = "${zi[1]}"
ok_zone "OUT from itself" "$T/z.zone" "$Q"
sign "$T/z.zone" "$T/full.signed" "$T/full.err"
check "OUT from itself: the full signing's records" \
    cmp -s <(grep -v -e RRSIG -e SOA "$Q") <(grep -v -e RRSIG -e SOA "$T/full.signed")
# a spare index open elsewhere is never written over
cp "$T/.q.signed.zsp.spare" "$T/zsp.copy"
exec 7<"$T/.q.signed.zsp.spare"
sign "$T/z2.zone" "$Q" "$T/qo.err" --previous "$Q"
check "index spare open elsewhere: patched" grep -q "previous zone patched" "$T/qo.err"
check "index spare open elsewhere: the open file keeps its bytes" \
    cmp -s "/proc/$$/fd/7" "$T/zsp.copy"
exec 7<&-
ok_zone "index spare open elsewhere" "$T/z2.zone" "$Q"
# a symbolic link in the cache spare's place: its target keeps its bytes
echo "not a cache" >"$T/cvictim"
rm -f "$T/.q.signed.zsc.spare"
ln -s "$T/cvictim" "$T/.q.signed.zsc.spare"
sign "$T/z2.zone" "$Q" "$T/qsym.err" --previous "$Q"
check "symbolic link as the cache spare: patched" grep -q "previous zone patched" "$T/qsym.err"
check "symbolic link as the cache spare: its target untouched" \
    grep -qx "not a cache" "$T/cvictim"
check "symbolic link as the cache spare: a spare file in its place" \
    test -f "$T/.q.signed.zsc.spare" -a ! -L "$T/.q.signed.zsc.spare"
ok_zone "symbolic link as the cache spare" "$T/z2.zone" "$Q"
# a full run keeps them too, and --no-spare removes them
# (the full road writes the index once OUT is in place: over the old one)
zo=$(ino "$Q.zsp")
sign "$T/z2.zone" "$Q" "$T/qf.err"
check "full run: its index written over the old one (inode $zo)" \
    test "$(ino "$Q.zsp")" = "$zo"
check "full run: the old cache kept as the spare" test -f "$T/.q.signed.zsc.spare"
ok_zone "full run" "$T/z2.zone" "$Q"
sign "$T/z2.zone" "$Q" "$T/qn.err" --previous "$Q" --no-spare
check "--no-spare, patch road: patched" grep -q "previous zone patched" "$T/qn.err"
check "--no-spare, patch road: no spare of OUT, its index or its cache left" \
    test ! -e "$QS" -a ! -e "$T/.q.signed.zsp.spare" -a ! -e "$T/.q.signed.zsc.spare"
ok_zone "--no-spare, patch road" "$T/z2.zone" "$Q"

# --- spares that must not be written over --------------------------------
# another link to the spare: that name keeps its bytes
cp "$S" "$T/s.copy"
ln "$S" "$T/other-link"
sign "$T/z.zone" "$O" "$T/l.err"
check "spare with another link: signed (exit $?)" test -s "$O"
check "spare with another link: that file keeps its bytes" \
    cmp -s "$T/other-link" "$T/s.copy"
check "spare with another link: not OUT now" \
    test "$(ino "$O")" != "$(ino "$T/other-link")"
ok_zone "spare with another link" "$T/z.zone" "$O"
rm -f "$T/other-link"
# the spare open elsewhere (as a server that read the zone before it
# was replaced may still hold it)
cp "$S" "$T/s.copy"
exec 7<"$S"
sign "$T/z.zone" "$O" "$T/open.err"
check "spare open elsewhere: signed (exit $?)" test -s "$O"
check "spare open elsewhere: the open file keeps its bytes" \
    cmp -s "/proc/$$/fd/7" "$T/s.copy"
exec 7<&-
ok_zone "spare open elsewhere" "$T/z.zone" "$O"
# a symbolic link in the spare's place: its target keeps its bytes
echo "not a zone" >"$T/victim"
rm -f "$S"
ln -s "$T/victim" "$S"
sign "$T/z.zone" "$O" "$T/sym.err"
check "symbolic link as the spare: signed (exit $?)" test -s "$O"
check "symbolic link as the spare: its target untouched" \
    grep -qx "not a zone" "$T/victim"
check "symbolic link as the spare: replaced by a spare file" \
    test -f "$S" -a ! -L "$S"
ok_zone "symbolic link as the spare" "$T/z.zone" "$O"

# --- an OUT released by a hard link is never kept as the spare -----------
ln "$O" "$T/released"
cp "$O" "$T/released.copy"
sign "$T/z.zone" "$O" "$T/rel1.err"
check "OUT with another link: not kept as the spare" \
    test "$(ino "$S" 2>/dev/null)" != "$(ino "$T/released")"
sign "$T/z.zone" "$O" "$T/rel2.err"
sign "$T/z.zone" "$O" "$T/rel3.err"
check "OUT with another link: never written over by later runs" \
    cmp -s "$T/released" "$T/released.copy"
ok_zone "after a release by a hard link" "$T/z.zone" "$O"

# --- --no-spare ----------------------------------------------------------
check "a spare is there before --no-spare" test -f "$S"
sign "$T/z.zone" "$O" "$T/ns.err" --no-spare
check "--no-spare: signed (exit $?)" test -s "$O"
check "--no-spare: no spare left" test ! -e "$S"
ok_zone "--no-spare" "$T/z.zone" "$O"

# --- every HSM failing: OUT as it was ------------------------------------
sign "$T/z.zone" "$O" "$T/f0.err"
check "a spare is there before the failing run" test -f "$S"
cp "$O" "$T/o.copy"
printf "%s\n" "token=hsm1 fault=deverror after=30" >"$T/fail.conf"
ZG_MODULE=$shim ZG_SHIM_CONF="$T/fail.conf" sign "$T/z.zone" "$O" "$T/fail.err"
rc=$?
diag "$(grep -v "trace: " "$T/fail.err" | tail -2)"
check "every HSM failing: exit 2 (got $rc)" test "$rc" -eq 2
check "every HSM failing: OUT as it was" cmp -s "$O" "$T/o.copy"
check "every HSM failing: no temporary file left" \
    bash -c "! ls -A '$T' | grep -q '\.tmp\.'"
done_testing
