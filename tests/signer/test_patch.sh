#!/usr/bin/env bash
# tests/signer/test_patch.sh - --previous P through P's patch index P.zsp:
# zonesign diffs the new input against the previous one in chunks, parses
# only the changed chunks (and the first, with the SOA) and writes OUT as P
# with the changed names' text replaced ("previous zone patched").  The
# output must be byte for byte what the other roads give: here the text
# road (--no-cache) with the same inputs and options.  RSA keys (PKCS#1
# v1.5 signatures are deterministic) and fixed inception/expiration make
# fresh signatures equal on every road, so whole files can be compared.
# Cases:
#  a: five days of registry changes, each signed from the day before;
#  b: the same input again;
#  c: a new serial; apex data changed; another expiration;
#  d: every reason to decline (P or its index not what was written, other
#     options or keys, changes the road does not handle, warnings,
#     signatures to refresh): the run goes on on the old road with the
#     same output;
#  e: a syntax error in a changed part: reported as the old road reports
#     it, nothing written;
#  f: zones that get no index ($INCLUDE, NSEC, DNAME, a directive after
#     the first delegations, warnings);
#  g: hand edits (glue, TTLs, authoritative data, comments, the NSEC3
#     chain's ends, the file's ends, moved lines, owners spelt otherwise);
#  h: OUT written over P; one thread; an index left beside an OUT written
#     without one; a zone with its DS records in a section of their own;
#  and last, a new key.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util kzonecheck ldns-verify-zone ldns-read-zone python3 \
    zonesign zonehsm zonegen
zs_setup 2 8 split

INC=$(date -u -d '-1 hour' +%Y%m%d%H%M%S)
EXP=$(date -u -d '+30 days' +%Y%m%d%H%M%S)
# the signing options of every run unless a case says otherwise
OPTS=(--opt-out)
# sign IN OUT [args]: fixed times, trace on; stderr goes to OUT.err
sign() {
    local in=$1 out=$2
    shift 2
    ZONESIGN_TRACE=1 zs_sign 2 --keyset "$T/ks" "${OPTS[@]}" --quiet \
        --inception "$INC" --expiration "$EXP" "$@" -o "$out" "$in" \
        2>"$out.err"
}
road() { sed -n 's/.*; previous zone \(via its signature cache\|parsed from text\|patched\)$/\1/p' "$1"; }
# "n m k j" from "patch: <n> of <m> chunks parsed, <k> names changed, <j>
# NSEC3 changed"; the reason from "patch: declined: <reason>"
patch_counts() { sed -n 's/^zonesign: trace: patch: \([0-9]*\) of \([0-9]*\) chunks parsed, \([0-9]*\) names changed, \([0-9]*\) NSEC3 changed.*/\1 \2 \3 \4/p' "$1"; }
declined() { sed -n 's/^zonesign: trace: patch: declined: //p' "$1"; }
made() { sed -n 's/.*signatures made \([0-9]*\), reused.*/\1/p' "$1"; }
# what a person reads: warnings and errors, without trace, counts, timings
msgs() { grep -v 'trace:\|signed \|phases:\|signatures$' "$1"; }
# the number of entries in a signature cache (its header: cache.c)
zsc_entries() {
    python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read(64)
ol = struct.unpack(">I", b[28:32])[0]
print(struct.unpack(">Q", b[32 + ol:40 + ol])[0])
PY
}
gen() { # OUT [zonegen args]: the base zone of every case, or a day of it
    local out=$1
    shift
    zonegen --origin tld. --delegations 3000 --ds-fraction 0.2 --seed 5 \
        --extras "$@" -o "$out"
}
# same_as_text NAME IN OUT [args]: IN signed to OUT with args, and again
# with --no-cache to OUT.text (the reference): the same bytes
same_as_text() {
    local name=$1 in=$2 out=$3
    shift 3
    sign "$in" "$out" "$@"
    sign "$in" "$out.text" "$@" --no-cache
    if cmp -s "$out" "$out.text"; then
        ok "$name: byte for byte what the text road gives"
    else
        not_ok "$name: byte for byte what the text road gives"
        diag "$(cmp "$out" "$out.text" 2>&1)"
    fi
}
# patched NAME IN OUT [args]: same_as_text, and the patch road was taken
patched() {
    local name=$1 out=$3
    same_as_text "$@"
    check "$name: patched ($(road "$out.err"))" \
        test "$(road "$out.err")" = patched
    [ "$(road "$out.err")" = patched ] ||
        diag "$name: declined: $(declined "$out.err")"
}
# declines NAME ROAD IN OUT [args]: same_as_text; the patch road was not
# taken, the run went on on ROAD, and the trace said why
declines() {
    local name=$1 want=$2 out=$4
    shift 2
    same_as_text "$name" "$@"
    check "$name: not patched, $want ($(road "$out.err"))" \
        test "$(road "$out.err")" = "$want"
    check "$name: the trace says why" grep -q 'trace: patch: declined: .' \
        "$out.err"
    diag "$name: declined: $(declined "$out.err")"
}
check "--no-patch is an option (--help)" bash -c "zonesign --help 2>&1 | grep -q -- --no-patch"

# --- a: five days, each signed from the day before -------------------------
# zonegen --mutate changes the base zone, so day K (--mutate-seed K)
# differs from day K-1 by both days' changes (~4% of the delegations:
# new name servers and DS, delegations added, removed, secured, unsecured,
# glue removed with a delegation's new name servers and back again)
gen "$T/d0.zone"
sign "$T/d0.zone" "$T/d0.signed"
check "day 0 signed" test -s "$T/d0.signed"
check "day 0: signature cache and patch index written" \
    test -s "$T/d0.signed.zsc" -a -s "$T/d0.signed.zsp"
for k in 1 2 3 4 5; do
    gen "$T/d$k.zone" --mutate 0.02 --mutate-seed $k
    patched "day $k" "$T/d$k.zone" "$T/d$k.signed" --previous "$T/d$((k - 1)).signed"
    read -r pn pm pk pj <<<"$(patch_counts "$T/d$k.signed.err")"
    diag "day $k: $pn of $pm chunks parsed, $pk names changed, $pj NSEC3 changed"
    check "day $k: some chunks parsed, not all ($pn of $pm)" \
        test "${pn:-0}" -ge 1 -a "${pn:-0}" -lt "${pm:-0}"
    check "day $k: names changed ($pk)" test "${pk:-0}" -gt 0
    check "day $k: index written for the next day" test -s "$T/d$k.signed.zsp"
    # the changed DS RRsets went to the HSMs early, and no signature was
    # made twice: the HSMs made as many as the run counts
    check "day $k: changed DS RRsets signed early" \
        grep -q 'trace: patch: early DS signed' "$T/d$k.signed.err"
    check "day $k: NSEC3 records made signed early" \
        grep -q 'trace: patch: early NSEC3 signed' "$T/d$k.signed.err"
    hs=$(sed -n 's/^zonesign: HSM [0-9]* (token [^)]*): \([0-9]*\) signatures.*/\1/p' "$T/d$k.signed.err" | awk '{ s += $1 } END { print s + 0 }')
    check "day $k: the HSMs made the signatures made, once each ($hs, $(made "$T/d$k.signed.err"))" \
        test "${hs:-x}" = "$(made "$T/d$k.signed.err")"
    # OUT.zsc holds the signed RRsets, one entry each: the entries of the
    # RRsets gone or changed are left out, none is kept twice
    ne=$(zsc_entries "$T/d$k.signed.zsc")
    ns=$(sed -n 's/.* RRsets (\([0-9]*\) signed).*/\1/p' "$T/d$k.signed.err")
    check "day $k: OUT.zsc has an entry per signed RRset ($ne, $ns)" \
        test -n "$ne" -a "$ne" = "$ns"
    # the old road with the same inputs: the same signatures made
    sign "$T/d$k.zone" "$T/d$k.np" --previous "$T/d$((k - 1)).signed" --no-patch
    check "day $k: as many signatures made as on the cache road ($(made "$T/d$k.signed.err") $(made "$T/d$k.np.err"))" \
        test "$(made "$T/d$k.signed.err")" = "$(made "$T/d$k.np.err")"
done
check "day 5: kzonecheck" zs_verify_knot tld. "$T/d5.signed"
check "day 5: ldns-verify-zone" zs_verify_ldns tld. "$T/d5.signed"
check "day 5: day 5's data, record for record" zs_same_data "$T/d5.zone" "$T/d5.signed"

# OUT is written while the HSMs sign, with stand-in signatures mended when
# the signatures are in: as OUT is written (mid) or after it is (end).
# Both orders forced, two days each, each day from the one before: the
# same bytes, and an index the next day can use (its digest of OUT right)
for order in mid end; do
    prev="$T/d0.signed"
    for k in 1 2; do
        ZONESIGN_TEST_WRITER=$order patched "writer $order, day $k" \
            "$T/d$k.zone" "$T/w$order$k.signed" --previous "$prev"
        prev="$T/w$order$k.signed"
        read -r wm we <<<"$(sed -n 's/.*stand-ins mended while it was written \([0-9]*\), after \([0-9]*\)$/\1 \2/p' "$prev.err")"
        if [ $order = mid ]; then
            check "writer mid, day $k: mended as OUT was written ($wm, $we)" \
                test "${wm:-0}" -gt 0 -a "${we:-1}" = 0
        else
            check "writer end, day $k: mended after OUT was written ($wm, $we)" \
                test "${we:-0}" -gt 0 -a "${wm:-1}" = 0
        fi
    done
    check "writer $order: day 2 the same as the five-day run's day 2" \
        cmp -s "$T/w${order}2.signed" "$T/d2.signed"
done

# --- a2: a zone several of the stream's 1 MiB batches long ------------------
# (the zones above fit in one or two: here P is read, digested and copied
# batch after batch, the writing thread digesting each as it writes it)
genbig() { # OUT [zonegen args]
    local out=$1
    shift
    zonegen --origin tld. --delegations 20000 --ds-fraction 0.2 --seed 6 \
        "$@" -o "$out"
}
genbig "$T/g0.zone"
sign "$T/g0.zone" "$T/g0.signed"
gsize=$(stat -c %s "$T/g0.signed" 2>/dev/null || echo 0)
check "large day 0: OUT is more than four batches ($gsize octets)" \
    test "$gsize" -gt $((4 << 20))
for k in 1 2; do
    genbig "$T/g$k.zone" --mutate 0.01 --mutate-seed $k
    patched "large day $k" "$T/g$k.zone" "$T/g$k.signed" --previous "$T/g$((k - 1)).signed"
done
ZONESIGN_TEST_WRITER=mid patched "large day 2 again, writer mid" \
    "$T/g2.zone" "$T/gm2.signed" --previous "$T/g1.signed"
check "large day 2: kzonecheck" zs_verify_knot tld. "$T/g2.signed"

# --- b: the same input again ------------------------------------------------
patched "same input" "$T/d5.zone" "$T/b.signed" --previous "$T/d5.signed"
check "same input: identical to the previous output" cmp -s "$T/b.signed" "$T/d5.signed"
read -r bn bm bk bj <<<"$(patch_counts "$T/b.signed.err")"
diag "same input: $bn of $bm chunks parsed, $bk names changed, $bj NSEC3 changed"
check "same input: only the first chunk parsed, no name changed" \
    test "$bn $bk $bj" = "1 0 0"
sign "$T/d5.zone" "$T/b.np" --previous "$T/d5.signed" --no-patch
check "same input: as many signatures made as on the cache road ($(made "$T/b.signed.err") $(made "$T/b.np.err"))" \
    test "$(made "$T/b.signed.err")" = "$(made "$T/b.np.err")"

# --- c: a new serial; apex data changed -------------------------------------
gen "$T/d6.zone" --mutate 0.02 --mutate-seed 6
patched "--serial increment" "$T/d5.zone" "$T/c.signed" --previous "$T/d5.signed" \
    --serial increment
s5=$(awk '$4 == "SOA" { print $7 }' "$T/d5.signed")
sc=$(awk '$4 == "SOA" { print $7 }' "$T/c.signed")
check "--serial increment: serial $s5 -> $sc" test "$sc" = $((s5 + 1))
sed 's/"registry zone made by zonegen"/"registry zone, day 6"/; s/^\(@\t86400\tIN\tNS\t\)ns2\.nic$/\1ns3.example.net./' \
    "$T/d5.zone" >"$T/apex.zone"
check "apex zone differs in two lines" \
    test "$(diff "$T/d5.zone" "$T/apex.zone" | grep -c '^>')" = 2
patched "apex TXT and NS changed" "$T/apex.zone" "$T/apex.signed" --previous "$T/d5.signed"
# another expiration for the new signatures (signatures of P outside the
# refresh window are kept, as on the other roads): whichever road is
# taken, the same output
same_as_text "day 6 with --expiration 2 days later" "$T/d6.zone" "$T/exp.signed" \
    --previous "$T/d5.signed" --expiration "$(date -u -d '+32 days' +%Y%m%d%H%M%S)"
diag "day 6 with --expiration 2 days later: $(road "$T/exp.signed.err"); $(declined "$T/exp.signed.err")"

# --- d: declines ------------------------------------------------------------
# control: from P = day 5 to day 6 the road is taken
patched "day 6 (control)" "$T/d6.zone" "$T/d6.signed" --previous "$T/d5.signed"
# fresh_p NAME: a new P for a case that changes P or its files (day 5
# again, signed from day 4 on the cache road; its own .zsc and .zsp)
fresh_p() {
    sign "$T/d5.zone" "$T/$1" --previous "$T/d4.signed" --no-patch &&
        test -s "$T/$1.zsp" && cmp -s "$T/$1" "$T/d5.signed"
}

# P edited in place after signing: one name server changed, same size,
# atime and mtime put back: in an unchanged name early in P and one late
# in P (text the patch road would copy, the late one after the last
# edit), and in a name day 6 changes (text the patch road would replace).
# The index knows P by its digest; the cache road finds the change too
# (test_copy.sh) and reads P's text.  Nothing of a started OUT is left.
for where in early late changed; do
    check "edited P ($where): made" fresh_p "pe-$where.signed"
    P=$T/pe-$where.signed
    before=$(stat -c '%s %Y' "$P")
    python3 - "$P" "$T/d5.zone" "$T/d6.zone" "$where" >"$P.bad" <<'PY'
import os, sys
p, z5, z6, where = sys.argv[1:]
a = set(open(z5).read().splitlines()); b = set(open(z6).read().splitlines())
changed = {l.split()[0] for l in a ^ b if l and not l.startswith((";", "$"))}
st = os.stat(p)
data = open(p, "rb").read()
at, off = [], 0
for line in data.split(b"\n"):
    w = line.decode().split()
    if len(w) > 4 and w[3] == "NS" and w[0] != "tld." and ".dns" in w[4]:
        if (w[0][:-len(".tld.")] in changed) == (where == "changed"):
            at.append((off + line.decode().rindex(".dns") + 3, w[4]))
    off += len(line) + 1
i, ns = at[-1] if where == "late" else at[0]
with open(p, "r+b") as f:  # in place: the same file
    f.seek(i)
    f.write(b"x")
j = ns.rindex(".dns") + 3
print(ns[:j] + "x" + ns[j + 1:])
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
    bad=$(cat "$P.bad")
    check "edited P ($where): one byte, same size, same mtime ($bad)" \
        bash -c "test -n '$bad' && grep -qF '$bad' '$P' &&
                 test \"\$(stat -c '%s %Y' '$P')\" = '$before'"
    declines "P edited ($where)" "parsed from text" "$T/d6.zone" \
        "$T/pe-$where.out" --previous "$P"
    check "P edited ($where): the edited name server is nowhere in the output" \
        bash -c "! grep -qF '$bad' '$T/pe-$where.out'"
    check "P edited ($where): no temporary file left" \
        bash -c "! ls '$T'/pe-$where.out?* 2>/dev/null | grep -v '\.err$\|\.text$\|\.zs[cp]$' | grep -q ."
done
# P cut short (whole lines: still a zone)
check "P cut short: made" fresh_p ps.signed
head -n -5 "$T/ps.signed" >"$T/ps.short" && cat "$T/ps.short" >"$T/ps.signed"
declines "P cut short" "parsed from text" "$T/d6.zone" "$T/ps.out" \
    --previous "$T/ps.signed"
# P.zsc damaged (one byte flipped in its middle), P as it was
check "damaged cache: P made" fresh_p pd.signed
python3 - "$T/pd.signed.zsc" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    b = f.read()
    f.seek(len(b) // 2)
    f.write(bytes([b[len(b) // 2] ^ 0x01]))
PY
declines "P.zsc with one byte flipped" "parsed from text" "$T/d6.zone" \
    "$T/pd.out" --previous "$T/pd.signed"

# the index's secret (the chunk and content digests are keyed with it):
# made by the full run of day 0, handed from day to day, another for an
# index made afresh; the index is its owner's alone (struct pidx_hdr: the
# secret's 192 octets at 144)
zsp_key() { python3 -c 'import sys; print(open(sys.argv[1], "rb").read()[144:336].hex())' "$1"; }
k0=$(zsp_key "$T/d0.signed.zsp")
check "secret: day 0's index has one" test -n "$k0" -a "${k0//0/}" != ""
check "secret: handed on to day 5's index" test "$(zsp_key "$T/d5.signed.zsp")" = "$k0"
check "secret: the index is readable by its owner only" \
    test "$(stat -c %a "$T/d5.signed.zsp")" = 600
check "secret: an index made afresh has another" fresh_p sk.signed
check "secret: an index made afresh has another (differs)" \
    test "$(zsp_key "$T/sk.signed.zsp")" != "$k0" -a -n "$(zsp_key "$T/sk.signed.zsp")"
patched "secret: P with an index made afresh" "$T/d6.zone" "$T/sk.out" --previous "$T/sk.signed"

# an index of the format before (version 5, unkeyed, as earlier builds
# wrote it): not used; the run takes the cache road and writes this
# version's index beside OUT
zsp_version() { python3 -c 'import sys, struct; print(struct.unpack_from("<I", open(sys.argv[1], "rb").read(12), 8)[0])' "$1"; }
check "old format: P made" fresh_p v5.signed
check "old format: this build writes version 6" test "$(zsp_version "$T/v5.signed.zsp")" = 6
python3 - "$T/v5.signed.zsp" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(8)
    f.write(struct.pack("<I", 5))
PY
declines "P.zsp of version 5" "via its signature cache" "$T/d6.zone" \
    "$T/v5.out" --previous "$T/v5.signed"
check "P.zsp of version 5: declined as no usable index" \
    grep -q "declined: no usable patch index" "$T/v5.out.err"
check "P.zsp of version 5: OUT gets a version 6 index" \
    test "$(zsp_version "$T/v5.out.zsp")" = 6

# P copied with its .zsc and .zsp (cp): another inode, other times, the
# same content: the index still describes it (P and P.zsc are known by
# size and digest), so it is patched
cp "$T/d5.signed" "$T/pc.signed"
cp "$T/d5.signed.zsc" "$T/pc.signed.zsc"
cp "$T/d5.signed.zsp" "$T/pc.signed.zsp"
patched "P copied" "$T/d6.zone" "$T/pc.out" --previous "$T/pc.signed"

# P.zsp damaged: one byte flipped in its middle
check "damaged index: P made" fresh_p pz.signed
python3 - "$T/pz.signed.zsp" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    b = f.read()
    f.seek(len(b) // 2)
    f.write(bytes([b[len(b) // 2] ^ 0x01]))
PY
declines "P.zsp with one byte flipped" "via its signature cache" "$T/d6.zone" \
    "$T/pz.out" --previous "$T/pz.signed"
# (the body's digest is checked while the run goes on, before the commit)
check "P.zsp with one byte flipped: found damaged" \
    grep -q "declined: the previous zone's index is damaged" "$T/pz.out.err"
check "P.zsp with one byte flipped: no temporary file left" \
    test -z "$(ls "$T" | grep '\.tmp\.')"

# P.zsp removed
check "removed index: P made" fresh_p pr.signed
rm -f "$T/pr.signed.zsp"
declines "P.zsp removed" "via its signature cache" "$T/d6.zone" "$T/pr.out" \
    --previous "$T/pr.signed"

# P.zsc changed since P.zsp was written: day 0's cache put in its place
# (the cache road finds it is not P's and reads P's text)
check "other cache: P made" fresh_p pk.signed
cp "$T/d0.signed.zsc" "$T/pk.signed.zsc"
declines "P.zsc replaced after P.zsp was written" "parsed from text" "$T/d6.zone" \
    "$T/pk.out" --previous "$T/pk.signed"

declines "--no-patch" "via its signature cache" "$T/d6.zone" "$T/np.out" \
    --previous "$T/d5.signed" --no-patch

# other NSEC3 parameters (with the same input: nothing else changed)
declines "--iterations 1" "via its signature cache" "$T/d5.zone" "$T/it.out" \
    --previous "$T/d5.signed" --iterations 1
declines "--salt" "via its signature cache" "$T/d5.zone" "$T/salt.out" \
    --previous "$T/d5.signed" --salt 0a1b2c3d
OPTS=()
declines "no --opt-out" "via its signature cache" "$T/d5.zone" "$T/oo.out" \
    --previous "$T/d5.signed"
OPTS=(--opt-out)

# a delegation removed while its glue stays (glue names become
# authoritative); an authoritative name added; one removed; a delegation
# added above existing names (c.nic, above a.b.c.nic)
python3 - "$T/d5.zone" "$T/hand" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
owner = lambda l: l.split("\t")[0] if "\t" in l else None
# a delegation with glue: "L NS ns1.L", "ns1.L A ..."
glued = next(owner(l) for l in lines
             if l.split("\t")[1:2] == ["NS"] and l.endswith("\tns1." + owner(l)))
out = [l for l in lines if not (owner(l) == glued and l.split("\t")[1] in ("NS", "DS"))]
open(sys.argv[2] + "-unglue.zone", "w").write("\n".join(out))
# a new authoritative name in the middle of the file, between two owners
mid = next(i for i in range(len(lines) // 2, len(lines))
           if owner(lines[i]) and owner(lines[i]) != owner(lines[i - 1]))
add = lines[:mid] + ["www\t3600\tIN\tA\t192.0.2.80"] + lines[mid:]
open(sys.argv[2] + "-addname.zone", "w").write("\n".join(add))
rm = [l for l in lines if owner(l) != "sip.nic"]
open(sys.argv[2] + "-rmname.zone", "w").write("\n".join(rm))
above = lines[:mid] + ["c.nic\t86400\tIN\tNS\tns1.example.net."] + lines[mid:]
open(sys.argv[2] + "-above.zone", "w").write("\n".join(above))
PY
check "glued delegation removed, glue kept" \
    test "$(diff "$T/d5.zone" "$T/hand-unglue.zone" | grep -c '^<')" -ge 2
declines "a delegation removed while its glue stays" "via its signature cache" \
    "$T/hand-unglue.zone" "$T/unglue.out" --previous "$T/d5.signed"
declines "an authoritative name added (www)" "via its signature cache" \
    "$T/hand-addname.zone" "$T/addname.out" --previous "$T/d5.signed"
check "www added: in the output" grep -q '^www\.tld\. 3600 IN A 192\.0\.2\.80$' "$T/addname.out"
declines "an authoritative name removed (sip.nic)" "via its signature cache" \
    "$T/hand-rmname.zone" "$T/rmname.out" --previous "$T/d5.signed"
declines "a delegation added above existing names (c.nic)" "via its signature cache" \
    "$T/hand-above.zone" "$T/above.out" --previous "$T/d5.signed"

# SOA MINIMUM changed (the NSEC3 TTL, RFC 9077): declined
sed 's/ 10800 3600 2419200 3600 )/ 10800 3600 2419200 1800 )/' "$T/d5.zone" >"$T/min.zone"
check "SOA MINIMUM changed" bash -c "! cmp -s '$T/d5.zone' '$T/min.zone'"
declines "SOA MINIMUM changed" "via its signature cache" "$T/min.zone" \
    "$T/min.out" --previous "$T/d5.signed"

# a duplicate record in a changed part (day 6, one NS line of a delegation
# day 6 changes written twice): declined; the warning exactly as the old
# road gives it, with its FILE:LINE
python3 - "$T/d5.zone" "$T/d6.zone" "$T/dup.zone" >"$T/dup.line" <<'PY'
import sys
z5 = set(open(sys.argv[1]).read().splitlines())
lines = open(sys.argv[2]).read().splitlines()
i = next(i for i in range(len(lines) // 2, len(lines))
         if lines[i] not in z5 and "\tNS\t" in lines[i])
lines.insert(i + 1, lines[i])
open(sys.argv[3], "w").write("\n".join(lines) + "\n")
print(i + 2)
PY
dupline=$(cat "$T/dup.line")
declines "a duplicate record in a changed part" "via its signature cache" \
    "$T/dup.zone" "$T/dup.out" --previous "$T/d5.signed"
sign "$T/dup.zone" "$T/dup.np" --previous "$T/d5.signed" --no-patch
msgs "$T/dup.out.err" >"$T/dup.msgs"
msgs "$T/dup.np.err" >"$T/dup.np.msgs"
check "duplicate: warned with dup.zone:$dupline ($(head -1 "$T/dup.msgs"))" \
    grep -q "dup\.zone:$dupline: duplicate NS record dropped" "$T/dup.msgs"
check "duplicate: the same warnings as the old road (--no-patch)" \
    cmp -s "$T/dup.msgs" "$T/dup.np.msgs" || diag "$(diff "$T/dup.msgs" "$T/dup.np.msgs" | head -4)"
msgs "$T/dup.out.text.err" >"$T/dup.text.msgs"
check "duplicate: the same warnings as the text road" \
    cmp -s "$T/dup.msgs" "$T/dup.text.msgs"
check "duplicate: a zone with warnings gets no patch index" test ! -e "$T/dup.out.zsp"

# signatures of P inside the refresh window
declines "--refresh 29d (every signature of P inside it)" "via its signature cache" \
    "$T/d6.zone" "$T/rf.out" --previous "$T/d5.signed" --refresh 29d

# --- e: a syntax error in a changed part --------------------------------------
python3 - "$T/d6.zone" "$T/err.zone" >"$T/err.line" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
i = next(i for i in range(len(lines) * 2 // 3, len(lines))
         if lines[i].split("\t")[0] != lines[i - 1].split("\t")[0])
lines.insert(i, "bad-host\t3600\tIN\tA\t192.0.2.300")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print(i + 1)
PY
errline=$(cat "$T/err.line")
for how in default no-cache no-patch; do
    args=()
    [ $how = no-cache ] && args=(--no-cache)
    [ $how = no-patch ] && args=(--no-patch)
    zs_sign 2 --keyset "$T/ks" --opt-out --quiet --inception "$INC" \
        --expiration "$EXP" --previous "$T/d5.signed" "${args[@]}" \
        -o "$T/err-$how.signed" "$T/err.zone" 2>"$T/err-$how.msg"
    echo $? >"$T/err-$how.rc"
done
check "syntax error: exit 2 ($(cat "$T/err-default.rc"))" test "$(cat "$T/err-default.rc")" = 2
check "syntax error: one line ($(head -1 "$T/err-default.msg"))" \
    test "$(wc -l <"$T/err-default.msg")" = 1
check "syntax error: names err.zone:$errline" \
    grep -q "^zonesign: .*err\.zone:$errline: " "$T/err-default.msg"
check "syntax error: the same line as --no-cache" \
    cmp -s "$T/err-default.msg" "$T/err-no-cache.msg"
check "syntax error: the same line as --no-patch" \
    cmp -s "$T/err-default.msg" "$T/err-no-patch.msg"
check "syntax error: no OUT, no OUT.zsc, no OUT.zsp" \
    bash -c "! ls '$T'/err-default.signed* 2>/dev/null | grep -q ."

# --- f: zones that get no patch index ----------------------------------------
gen "$T/inc.zone" --split "$T/inc-part.zone"
sign "$T/inc.zone" "$T/inc.signed"
check "\$INCLUDE: signed, with its cache" test -s "$T/inc.signed" -a -s "$T/inc.signed.zsc"
check "\$INCLUDE: no patch index" test ! -e "$T/inc.signed.zsp"
gen "$T/inc6.zone" --mutate 0.02 --mutate-seed 6 --split "$T/inc6-part.zone"
declines "\$INCLUDE, next day" "via its signature cache" "$T/inc6.zone" \
    "$T/inc6.signed" --previous "$T/inc.signed"
OPTS=(--nsec)
sign "$T/d5.zone" "$T/nsec.signed"
check "NSEC: signed, with its cache" test -s "$T/nsec.signed" -a -s "$T/nsec.signed.zsc"
check "NSEC: no patch index" test ! -e "$T/nsec.signed.zsp"
declines "NSEC, next day" "via its signature cache" "$T/d6.zone" \
    "$T/nsec6.signed" --previous "$T/nsec.signed"
OPTS=(--opt-out)
# a DNAME; a directive after the first delegations
{ cat "$T/d5.zone"; printf 'moved.nic\t3600\tIN\tDNAME\tnic.example.\n'; } >"$T/dname.zone"
check "DNAME zone made" grep -q 'DNAME' "$T/dname.zone"
sign "$T/dname.zone" "$T/dname.signed"
check "DNAME: signed, no patch index" test -s "$T/dname.signed" -a ! -e "$T/dname.signed.zsp"
awk 'NR == 200 { print "$TTL 7200" } { print }' "$T/d5.zone" >"$T/ttl.zone"
sign "$T/ttl.zone" "$T/ttl.signed"
check "\$TTL after the first delegations: signed, no patch index" \
    test -s "$T/ttl.signed" -a ! -e "$T/ttl.signed.zsp"

# --- g: hand edits of day 5, each against P = day 5 ------------------------
# Those the road handles (delegations directly below the apex added,
# removed or changed, with their glue; records of names that stay) must
# be patched; the others only give the same output, whichever road.
python3 - "$T/d5.zone" "$T/g" <<'PY'
import sys
src, pre = sys.argv[1], sys.argv[2]
lines = open(src).read().split("\n")
if lines[-1] == "":
    lines.pop()
# zonegen's delegations are "owner<TAB>type<TAB>data"; a glue name's
# lines belong to its delegation's block
def base(l):
    f = l.split("\t")
    return f[0] if f[1] in ("NS", "DS") else f[0].split(".", 1)[1]
first = next(i for i, l in enumerate(lines) if len(l.split("\t")) == 3)
head, blocks = lines[:first], []
for l in lines[first:]:
    if blocks and base(blocks[-1][0]) == base(l):
        blocks[-1].append(l)
    else:
        blocks.append([l])
kind = lambda l: l.split("\t")[1]
glued = [i for i, b in enumerate(blocks) if any(kind(l) in ("A", "AAAA") for l in b)]
plain = [i for i, b in enumerate(blocks) if len(b) == 2 and all(kind(l) == "NS" for l in b)]
secure = [i for i, b in enumerate(blocks) if any(kind(l) == "DS" for l in b)]
def at(frac, pool):  # the block of pool nearest that fraction of the file
    return min(pool, key=lambda i: abs(i - int(len(blocks) * frac)))
def write(name, hd, bl, nl=True):
    t = "\n".join(hd + [l for b in bl for l in b]) + ("\n" if nl else "")
    open("%s-%s.zone" % (pre, name), "w").write(t)
def copy():
    return list(head), [list(b) for b in blocks]
def sub(l, old, new):
    assert old in l, (l, old)
    return l.replace(old, new, 1)

h, b = copy()   # a glue address
g = glued[0]
b[g] = [l.rsplit("\t", 1)[0] + "\t192.0.2.201" if kind(l) == "A" else l for l in b[g]]
write("glue-addr", h, b)
h, b = copy()   # a glue name added below a delegation that stays
g = glued[1]
lab = base(b[g][0])
b[g] += ["%s\tNS\tns3.%s" % (lab, lab), "ns3.%s\tA\t192.0.2.33" % lab]
write("glue-add", h, b)
h, b = copy()   # a secure delegation with glue added
b.insert(len(b) // 2, ["newglued\tNS\tns1.newglued", "newglued\tNS\tns2.example.net.",
                       "newglued\tDS\t4242 13 2 " + "CD" * 32, "ns1.newglued\tA\t192.0.2.34"])
write("new-glued", h, b)
h, b = copy()   # a delegation removed with its glue
del b[glued[2]]
write("rm-glued", h, b)
h, b = copy()   # TTLs alone: an unsigned NS RRset, a signed DS RRset
i = at(0.5, plain)
b[i] = [sub(l, "\tNS\t", "\t7200\tNS\t") for l in b[i]]
i = at(0.5, secure)
b[i] = [sub(l, "\tDS\t", "\t7200\tDS\t") if kind(l) == "DS" else l for l in b[i]]
write("ttl", h, b)
h, b = copy()   # records of authoritative names that stay (one multi-line)
h = [sub(l, "192.0.2.80", "192.0.2.81") if l.startswith("nic\t") and "\tA\t" in l else
     sub(l, "192.0.2.99", "192.0.2.97") if l.startswith("*.wild\t") and "\tA\t" in l else
     sub(l, "two empty", "2 empty") if l.startswith("a.b.c.nic\t") else
     sub(l, "AC69DBDB", "BC69DBDB") if "AC69DBDB" in l else l for l in h]
write("auth", h, b)
h, b = copy()   # comments between delegations: no name changes
for f in (0.75, 0.5, 0.25):
    b.insert(int(len(b) * f), ["; a comment at %.2f" % f])
write("comments", h, b)
h, b = copy()   # the first and the last delegation of the file
for i in (0, len(b) - 1):
    b[i] = [l.replace(".example.", "x.example.") for l in b[i]]
assert b[0] != blocks[0] and b[-1] != blocks[-1]
write("first-last", h, b)
h, b = copy()   # a delegation's NS records in the other order
i = at(0.7, plain)
b[i] = b[i][::-1]
write("swap", h, b)
h, b = copy()   # glue two labels below deleg-glue, and its DS
h = [sub(l, "192.0.2.7", "192.0.2.8") if l.startswith("ns.deep.deleg-glue\t") else
     sub(l, "49FD46E6", "49FD46E7") if l.startswith("deleg-glue\t") and "\tDS\t" in l else l
     for l in h]
write("deep-glue", h, b)
h, b = copy()   # a secure delegation below an empty non-terminal
h = [sub(l, "3C5D1EA4", "3C5D1EA5") if l.startswith("sub.ent-deleg\t") and "\tDS\t" in l else l
     for l in h]
write("ent-deleg", h, b)
h, b = copy()   # a delegation's lines moved to the end of the file
b.append(b.pop(at(0.3, plain)))
write("moved", h, b)
h, b = copy()   # the delegations' two halves swapped
half = len(b) // 2
write("swapped", h, b[half:] + b[:half])
h, b = copy()   # an owner in capitals; an owner written absolute
i = at(0.4, plain)
b[i] = [l.split("\t", 1)[0].upper() + "\t" + l.split("\t", 1)[1] for l in b[i]]
write("capitals", h, b)
h, b = copy()
i = at(0.6, plain)
b[i] = [l.split("\t", 1)[0] + ".tld.\t" + l.split("\t", 1)[1] for l in b[i]]
write("absolute", h, b)
h, b = copy()   # an owner's first letter as \DDD (RFC 1035 5.1)
i = at(0.45, plain)
b[i] = ["\\%03d" % ord(l[0]) + l[1:] for l in b[i]]
write("escaped", h, b)
h, b = copy()   # no newline at the end of the file
write("no-newline", h, b, nl=False)
h, b = copy()   # the default TTL of every delegation
h = [sub(l, "86400", "7200") if l.startswith("$TTL") else l for l in h]
write("ttl-directive", h, b)
h, b = copy()   # the SOA's TTL (declined: the NSEC3 TTL, RFC 9077)
h = [sub(l, "86400", "7200") if "\tSOA\t" in l else l for l in h]
write("soa-ttl", h, b)
PY
# the NSEC3 chain's ends (RFC 5155 3.1.7: the last record points back to
# the first): secure delegations added whose hashes sort before and after
# every hash of the chain, the secure delegation with the lowest hash
# removed; and the apex's type bitmap changed (its CAA removed)
python3 - "$T/d5.zone" "$T/d5.signed" "$T/g-ends.zone" >"$T/g-ends.names" <<'PY'
import base64, hashlib, sys
zone, signed, dst = sys.argv[1:]
def nsec3(name):  # RFC 5155 5: SHA-1, no salt, 0 iterations
    wire = b"".join(bytes([len(l)]) + l.lower().encode()
                    for l in name.rstrip(".").split(".")) + b"\0"
    return base64.b32hexencode(hashlib.sha1(wire).digest()).decode().lower()
chain = [l.split()[0].split(".")[0] for l in open(signed)
         if l.split()[3:4] == ["NSEC3"]]
lo, hi = min(chain), max(chain)
first = next("edge%d" % i for i in range(100000) if nsec3("edge%d.tld." % i) < lo)
last = next("edge%d" % i for i in range(100000) if nsec3("edge%d.tld." % i) > hi)
lines = open(zone).read().splitlines()
secure = {l.split("\t")[0] for l in lines if l.split("\t")[1:2] == ["DS"]
          and "." not in l.split("\t")[0]}
gone = min(secure, key=lambda o: nsec3(o + ".tld."))
out = [l for l in lines if l.split("\t")[0] != gone and "\tCAA\t" not in l]
assert len(lines) - len(out) >= 3
for n in (first, last):
    out += ["%s\tNS\tns1.example.net." % n, "%s\tDS\t4343 13 2 %s" % (n, "EF" * 32)]
open(dst, "w").write("\n".join(out) + "\n")
print("added %s (first) and %s (last), removed %s%s" % (
    first, last, gone, " (the first)" if nsec3(gone + ".tld.") == lo else ""))
PY
diag "the chain's ends: $(cat "$T/g-ends.names")"
patched "the chain's ends, the apex bitmap" "$T/g-ends.zone" "$T/g-ends.signed" \
    --previous "$T/d5.signed"
check "the chain's ends: kzonecheck" zs_verify_knot tld. "$T/g-ends.signed"

for g in glue-addr new-glued rm-glued ttl auth comments first-last swap deep-glue; do
    check "$g: differs from day 5" bash -c "! cmp -s '$T/d5.zone' '$T/g-$g.zone'"
    patched "$g" "$T/g-$g.zone" "$T/g-$g.signed" --previous "$T/d5.signed"
done
check "ttl: the new TTLs printed" \
    bash -c "grep -q '^[^ ]* 7200 IN NS ' '$T/g-ttl.signed' &&
             grep -q '^[^ ]* 7200 IN RRSIG DS 8 2 7200 ' '$T/g-ttl.signed'"
for g in glue-add ent-deleg moved capitals absolute escaped no-newline \
    ttl-directive; do
    check "$g: differs from day 5" bash -c "! cmp -s '$T/d5.zone' '$T/g-$g.zone'"
    same_as_text "$g" "$T/g-$g.zone" "$T/g-$g.signed" --previous "$T/d5.signed"
    diag "$g: $(road "$T/g-$g.signed.err"); $(declined "$T/g-$g.signed.err")"
done
# chunks are matched where they moved to: only those at the seams are read
patched "halves swapped" "$T/g-swapped.zone" "$T/g-swapped.signed" \
    --previous "$T/d5.signed"
read -r sn sm sk sj <<<"$(patch_counts "$T/g-swapped.signed.err")"
check "halves swapped: a few chunks read ($sn of $sm), no name changed ($sk)" \
    test "${sn:-0}" -ge 1 -a "${sn:-99}" -le 4 -a "${sk:-1}" = 0
declines "SOA TTL changed" "via its signature cache" "$T/g-soa-ttl.zone" \
    "$T/g-soa-ttl.signed" --previous "$T/d5.signed"
# half the delegations changed
gen "$T/big.zone" --mutate 0.5 --mutate-seed 9
same_as_text "half the delegations changed" "$T/big.zone" "$T/big.signed" \
    --previous "$T/d5.signed"
diag "half the delegations changed: $(road "$T/big.signed.err"); $(declined "$T/big.signed.err")"
# the cache road from a patched P (P.zsc written by the patch road)
sign "$T/d6.zone" "$T/np6.signed" --previous "$T/d5.signed" --no-patch
diag "cache road from the patched day 5: $(sed -n 's/.*trace: \(segments copied.*\)/\1/p' "$T/np6.signed.err")"
check "cache road from the patched day 5: the patch road's output" \
    cmp -s "$T/np6.signed" "$T/d6.signed"

# --- h: how the road is used --------------------------------------------------
# OUT is P (-o P --previous P): patched, the same output
check "in place: P made" fresh_p pi.signed
sign "$T/d6.zone" "$T/pi.signed" --previous "$T/pi.signed"
check "in place: patched ($(road "$T/pi.signed.err"))" test "$(road "$T/pi.signed.err")" = patched
check "in place: the text road's output" cmp -s "$T/pi.signed" "$T/d6.signed.text"
check "in place: a new index for the next run" test -s "$T/pi.signed.zsp"
patched "one thread" "$T/d6.zone" "$T/th.signed" --previous "$T/d5.signed" --threads 1
# an index left beside an OUT that a later run wrote without one (a zone
# with warnings; --no-cache) is never used
check "overwritten OUT: P made" fresh_p po.signed
sign "$T/dup.zone" "$T/po.signed"
declines "after a run with warnings over P" "via its signature cache" "$T/d6.zone" \
    "$T/po2.signed" --previous "$T/po.signed"
check "overwritten OUT (--no-cache): P made" fresh_p pn.signed
sign "$T/d5.zone" "$T/pn.signed" --no-cache
diag "after --no-cache over P: $(cd "$T" && ls pn.signed.z* 2>/dev/null | tr '\n' ' ')"
declines "after a --no-cache run over P" "parsed from text" "$T/d6.zone" \
    "$T/pn2.signed" --previous "$T/pn.signed"
# a zone whose DS records stand in a section of their own at the end (the
# records of a secure delegation in two places): one DS and the NS of
# another secure delegation changed
python3 - "$T/d5.zone" "$T/d6.zone" "$T/ds5.zone" "$T/ds6.zone" <<'PY'
import sys
def split(src, dst):
    lines = open(src).read().splitlines()
    ds = [l for l in lines if l.split("\t")[1:2] == ["DS"]]
    rest = [l for l in lines if l.split("\t")[1:2] != ["DS"]]
    open(dst, "w").write("\n".join(rest + ["; DS records"] + ds) + "\n")
    return rest, ds
split(sys.argv[1], sys.argv[3])
rest, ds = split(sys.argv[1], "/dev/null")
owners = sorted({l.split("\t")[0] for l in ds if "\t86400\t" not in l})
a, b = owners[len(owners) // 3], owners[2 * len(owners) // 3]
out = []
for l in rest:
    if l.split("\t")[0] == b and l.split("\t")[1] == "NS":
        l = l.replace(".example.", "x.example.")
    out.append(l)
out.append("; DS records")
for l in ds:
    if l.split("\t")[0] == a:
        l = l[:-1] + ("0" if l[-1] != "0" else "1")
    out.append(l)
open(sys.argv[4], "w").write("\n".join(out) + "\n")
PY
sign "$T/ds5.zone" "$T/ds5.signed"
check "DS section: signed with an index" test -s "$T/ds5.signed" -a -s "$T/ds5.signed.zsp"
same_as_text "DS section, a DS and an NS changed" "$T/ds6.zone" "$T/ds6.signed" \
    --previous "$T/ds5.signed"
diag "DS section: $(road "$T/ds6.signed.err"); $(declined "$T/ds6.signed.err")$(patch_counts "$T/ds6.signed.err")"

# --- a changed key set (last: it changes $T/ks) ------------------------------
zonehsm $(zg_hsm_args 2) --keyset "$T/ks" keygen --label zsk8b --alg 8 \
    --role zsk --state active >/dev/null
declines "a new ZSK" "via its signature cache" "$T/d6.zone" "$T/key.out" \
    --previous "$T/d5.signed"
done_testing
