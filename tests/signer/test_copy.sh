#!/usr/bin/env bash
# tests/signer/test_copy.sh - --previous through the signature cache copies
# the text of unchanged segments (runs of names, signer/segment.c) from the
# previous output instead of printing it again.  The output must be byte
# for byte what printing everything gives: here the text road (--no-cache,
# nothing copied) with the same inputs.  RSA keys (PKCS#1 v1.5 signatures
# are deterministic) and fixed inception/expiration make fresh signatures
# equal on both roads, so whole files can be compared.
# Cases: a day's changes (NS targets, DS digests, names added/removed);
# RRsets whose TTL alone changed (signed and unsigned); signatures inside
# the refresh window (re-signed, never copied); a previous output changed
# after its cache was written (in a segment that would be copied, in one
# that would not, and cut short): no byte of it is copied, the run starts
# over from its text; a cache of another presentation format: nothing
# copied, signatures still reused.
# Every --previous run but the text road's passes --no-patch: this test is
# about the cache road, which the patch road (test_patch.sh) would take
# over where P.zsp allows.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util kzonecheck python3 zonesign zonehsm zonegen
zs_setup 2 8 split

INC=$(date -u -d '-1 hour' +%Y%m%d%H%M%S)
EXP=$(date -u -d '+30 days' +%Y%m%d%H%M%S)
# sign IN OUT ERR [args]: fixed times, trace on (segment counts)
sign() {
    local in=$1 out=$2 err=$3
    shift 3
    ZONESIGN_TRACE=1 zs_sign 2 --keyset "$T/ks" --opt-out --quiet \
        --inception "$INC" --expiration "$EXP" "$@" -o "$out" "$in" 2>"$err"
}
road() { sed -n 's/.*; previous zone \(via its signature cache\|parsed from text\).*/\1/p' "$1"; }
copied() { sed -n 's/.*segments copied \([0-9]*\), printed.*/\1/p' "$1"; }
printed() { sed -n 's/.*segments copied [0-9]*, printed \([0-9]*\).*/\1/p' "$1"; }
counts() { sed -n 's/.*signatures made \([0-9]*\), reused \([0-9]*\).*/\1 \2/p' "$1"; }
# same_as_text NAME OUT: OUT equals the text road's output for the same run
same_as_text() {
    local name=$1 out=$2
    check "$name: byte for byte what printing everything gives" \
        cmp -s "$out" "$out.text" || diag "$(cmp "$out" "$out.text")"
}

zonegen --origin tld. --delegations 2000 --ds-fraction 0.2 --seed 5 \
    --extras -o "$T/v1.zone"
sign "$T/v1.zone" "$T/v1.signed" "$T/v1.err"
check "v1 signed with its cache" test -s "$T/v1.signed" -a -s "$T/v1.signed.zsc"
check "v1: nothing copied without --previous ($(copied "$T/v1.err"))" \
    test "$(copied "$T/v1.err")" = 0

# --- a day's changes, and TTLs alone changed --------------------------
zonegen --origin tld. --delegations 2000 --ds-fraction 0.2 --seed 5 \
    --extras --mutate 0.02 -o "$T/v2m.zone"
# TTL alone: the NS RRset of an unchanged insecure delegation (unsigned)
# and the DS RRset of an unchanged secure one (signed)
python3 - "$T/v1.zone" "$T/v2m.zone" "$T/v2.zone" "$T/ttl.names" <<'PY'
import sys
v1 = open(sys.argv[1]).read().splitlines()
v2 = open(sys.argv[2]).read().splitlines()
same = set(v1) & set(v2)
def owners(lines):
    d = {}
    for l in lines:
        f = l.split()
        if len(f) >= 3 and not l.startswith((";", "$", "@", " ", "\t")):
            d.setdefault(f[0], []).append(l)
    return d
o2 = owners(v2)
def kind(l):  # the type of a line in zonegen's short form (no TTL, class)
    f = l.split("\t")
    return f[1] if len(f) == 3 else None
insecure = next(o for o, ls in o2.items()
                if len(ls) == 2 and all(l in same and kind(l) == "NS" for l in ls))
secure = next(o for o, ls in o2.items()
              if all(l in same for l in ls) and any(kind(l) == "DS" for l in ls)
              and o != insecure)
out = []
for l in v2:
    f = l.split("\t")
    if f[0] == insecure and kind(l) == "NS":
        l = "\t".join([f[0], "7200"] + f[1:])
    if f[0] == secure and kind(l) == "DS":
        l = "\t".join([f[0], "7200"] + f[1:])
    out.append(l)
open(sys.argv[3], "w").write("\n".join(out) + "\n")
open(sys.argv[4], "w").write(insecure + " " + secure + "\n")
PY
read -r ttl_ns ttl_ds <"$T/ttl.names"
sign "$T/v2.zone" "$T/c.signed" "$T/c.err" --previous "$T/v1.signed" --no-patch
sign "$T/v2.zone" "$T/c.signed.text" "$T/ct.err" --previous "$T/v1.signed" \
    --no-cache
check "v2: cache road ($(road "$T/c.err"))" \
    test "$(road "$T/c.err")" = "via its signature cache"
check "v2: text road for the reference ($(road "$T/ct.err"))" \
    test "$(road "$T/ct.err")" = "parsed from text"
diag "v2: segments copied $(copied "$T/c.err"), printed $(printed "$T/c.err"); signatures $(counts "$T/c.err")"
check "v2: most segments copied" \
    test "$(copied "$T/c.err")" -gt $((2 * $(printed "$T/c.err")))
check "v2: changed segments printed" test "$(printed "$T/c.err")" -gt 0
same_as_text "v2" "$T/c.signed"
check "v2: unsigned NS RRset with a new TTL printed with it" \
    grep -q "^$ttl_ns\.tld\. 7200 IN NS " "$T/c.signed"
check "v2: signed DS RRset with a new TTL printed with it" \
    grep -q "^$ttl_ds\.tld\. 7200 IN DS " "$T/c.signed"
check "v2: ... and signed again (RRSIG original TTL 7200)" \
    grep -q "^$ttl_ds\.tld\. 7200 IN RRSIG DS 8 2 7200 " "$T/c.signed"
check "v2: kzonecheck" zs_verify_knot tld. "$T/c.signed"
check "v2: cache written, and usable by the next run" test -s "$T/c.signed.zsc"
sign "$T/v2.zone" "$T/c2.signed" "$T/c2.err" --previous "$T/c.signed" --no-patch
sign "$T/v2.zone" "$T/c2.signed.text" "$T/c2t.err" --previous "$T/c.signed" \
    --no-cache
check "unchanged zone again: everything copied, nothing printed ($(copied "$T/c2.err")/$(printed "$T/c2.err"))" \
    test "$(printed "$T/c2.err")" = 0 -a "$(copied "$T/c2.err")" -gt 0
check "unchanged zone again: identical to the previous output" \
    cmp -s "$T/c2.signed" "$T/c.signed"
same_as_text "unchanged zone again" "$T/c2.signed"

# --- NSEC instead of NSEC3: the same ---------------------------------------
sign_nsec() { # IN OUT ERR [args]
    local in=$1 out=$2 err=$3
    shift 3
    ZONESIGN_TRACE=1 zs_sign 2 --keyset "$T/ks" --nsec --quiet \
        --inception "$INC" --expiration "$EXP" "$@" -o "$out" "$in" 2>"$err"
}
sign_nsec "$T/v1.zone" "$T/n1.signed" "$T/n1.err"
sign_nsec "$T/v2.zone" "$T/n2.signed" "$T/n2.err" --previous "$T/n1.signed" \
    --no-patch
sign_nsec "$T/v2.zone" "$T/n2.signed.text" "$T/n2t.err" \
    --previous "$T/n1.signed" --no-cache
diag "NSEC v2: segments copied $(copied "$T/n2.err"), printed $(printed "$T/n2.err")"
check "NSEC v2: segments copied" test "$(copied "$T/n2.err")" -gt 0
same_as_text "NSEC v2" "$T/n2.signed"
check "NSEC v2: kzonecheck" zs_verify_knot tld. "$T/n2.signed"

# --- signatures inside the refresh window are made anew ------------------
# a small zone signed with expirations spread over 20 days (jitter) from
# now+10d to now+30d, then re-signed with a 20-day refresh threshold: the
# signatures that expire within 20 days are made again, the others reused
# (few signatures, spread thinly: the two runs compared, a second or two
# apart, decide alike)
zonegen --origin tld. --delegations 300 --ds-fraction 0.2 --seed 7 \
    -o "$T/r.zone"
WIN=$(date -u -d '+20 days' +%Y%m%d%H%M%S)
sign "$T/r.zone" "$T/r1.signed" "$T/r1.err" --jitter 20d
sign "$T/r.zone" "$T/r2.signed" "$T/r2.err" --previous "$T/r1.signed" \
    --refresh 20d --jitter 1d --no-patch
sign "$T/r.zone" "$T/r2.signed.text" "$T/r2t.err" --previous "$T/r1.signed" \
    --refresh 20d --jitter 1d --no-cache
read -r rm rr <<<"$(counts "$T/r2.err")"
diag "refresh: made $rm reused $rr; segments copied $(copied "$T/r2.err"), printed $(printed "$T/r2.err")"
check "refresh: some signatures made again, some reused" \
    test "${rm:-0}" -gt 0 -a "${rr:-0}" -gt 0
check "refresh: no signature expiring inside the window was copied" \
    bash -c "! awk '\$4 == \"RRSIG\" && \$9 < \"$WIN\"' '$T/r2.signed' | grep -q ."
check "refresh: segments without signatures to redo copied" \
    test "$(copied "$T/r2.err")" -gt 0
same_as_text "refresh" "$T/r2.signed"

# --- the previous output changed after its cache was written -------------
# Same size, same mtime, one name server changed: A in a segment the next
# run copies (re-signing the unchanged v1: every segment is copied), B in
# a segment it prints (a name v2 changes); C: cut short.  Each time no
# byte of it is copied: the run starts over from its text and gives what
# the text road gives.
python3 - "$T/v1.signed" "$T/v1.zone" "$T/v2m.zone" "$T/edits" <<'PY'
import sys
signed, v1, v2 = sys.argv[1], sys.argv[2], sys.argv[3]
a = set(open(v1).read().splitlines()); b = set(open(v2).read().splitlines())
changed = {l.split()[0] for l in a ^ b if l and not l.startswith((";", "$"))}
text = open(signed).read().splitlines()
def find(pick):
    for i, l in enumerate(text):
        f = l.split()
        if f[3] == "NS" and f[0] != "tld." and pick(f[0][:-len(".tld.")]):
            return i
ia = find(lambda n: n not in changed)
ib = find(lambda n: n in changed)
open(sys.argv[4], "w").write("%d %d\n" % (ia, ib))
PY
read -r ia ib <"$T/edits"
edit() { # SRC DST LINE: "dns" in that line's name server becomes "dnx"
    cp -p "$1.zsc" "$2.zsc"
    python3 - "$1" "$2" "$3" <<'PY'
import os, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src).read().split("\n")
l = lines[n]
i = l.rindex(".dns") + 3
lines[n] = l[:i] + "x" + l[i + 1:]
open(dst, "w").write("\n".join(lines))
st = os.stat(src)
os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
}
for k in A B; do
    line=$ia in=$T/v1.zone where="while copying"
    [ $k = B ] && line=$ib in=$T/v2.zone where="before committing"
    edit "$T/v1.signed" "$T/e$k.signed" "$line"
    check "$k: the edited copy has the same size" \
        test "$(stat -c %s "$T/e$k.signed")" = "$(stat -c %s "$T/v1.signed")"
    bad=$(sed -n "$((line + 1))p" "$T/e$k.signed" | awk '{print $5}')
    sign "$in" "$T/o$k.signed" "$T/o$k.err" --previous "$T/e$k.signed" \
        --no-patch
    sign "$in" "$T/o$k.signed.text" "$T/o$k.t.err" \
        --previous "$T/e$k.signed" --no-cache
    check "$k: signed" test -s "$T/o$k.signed"
    check "$k: said so and read the text ($(road "$T/o$k.err"))" \
        bash -c "grep -q 'changed since its signature cache was written' '$T/o$k.err' &&
                 test '$(road "$T/o$k.err")' = 'parsed from text'"
    check "$k: found $where" grep -q "previous file changed, found $where" \
        "$T/o$k.err"
    check "$k: the edited name server ($bad) is nowhere in the output" \
        bash -c "! grep -qF '$bad' '$T/o$k.signed'"
    same_as_text "$k" "$T/o$k.signed"
    check "$k: no temporary file left" \
        bash -c "! ls '$T'/o$k.signed.tmp.* 2>/dev/null | grep -q ."
done
cp -p "$T/v1.signed.zsc" "$T/eC.signed.zsc"
head -n -5 "$T/v1.signed" >"$T/eC.signed" # whole lines: still a zone
sign "$T/v2.zone" "$T/oC.signed" "$T/oC.err" --previous "$T/eC.signed" \
    --no-patch
check "C (cut short): text road ($(road "$T/oC.err"))" \
    test "$(road "$T/oC.err")" = "parsed from text"

# --- a cache from another presentation format: signatures, no copies -----
python3 - "$T/v1.signed.zsc" "$T/f.signed.zsc" <<'PY'
import ctypes, struct, sys
# the cache's checksum: XXH3-128 (libxxhash) in canonical (big-endian) form
class H(ctypes.Structure):
    _fields_ = [("lo", ctypes.c_uint64), ("hi", ctypes.c_uint64)]
x = ctypes.CDLL("libxxhash.so.0").XXH3_128bits
x.restype, x.argtypes = H, [ctypes.c_char_p, ctypes.c_size_t]
b = bytearray(open(sys.argv[1], "rb").read())
v = struct.unpack(">I", b[8:12])[0]
b[8:12] = struct.pack(">I", v + 1)      # writer format version
h = x(bytes(b[:-16]), len(b) - 16)
b[-16:] = struct.pack(">QQ", h.hi, h.lo)
open(sys.argv[2], "wb").write(bytes(b))
PY
cp -p "$T/v1.signed" "$T/f.signed"
sign "$T/v2.zone" "$T/of.signed" "$T/of.err" --previous "$T/f.signed" \
    --no-patch
check "other format: cache road ($(road "$T/of.err"))" \
    test "$(road "$T/of.err")" = "via its signature cache"
check "other format: nothing copied ($(copied "$T/of.err"))" \
    test "$(copied "$T/of.err")" = 0
check "other format: same signatures reused as with copying" \
    test "$(counts "$T/of.err")" = "$(counts "$T/c.err")"
check "other format: same output" cmp -s "$T/of.signed" "$T/c.signed"
done_testing
