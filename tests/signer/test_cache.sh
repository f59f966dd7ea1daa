#!/usr/bin/env bash
# tests/signer/test_cache.sh - the signature cache OUT.zsc (signer/cache.c):
# written beside OUT; --previous uses it only when it belongs to the
# previous zone (size and SHA-256) and is intact, else parses the text;
# both roads reuse exactly the same signatures; --previous-cache names a
# cache kept elsewhere (a released copy of the zone); --no-cache writes
# none; a cache that does not fit is never trusted.
# Every --previous run but the text road's passes --no-patch: this test is
# about the cache road, which the patch road (test_patch.sh) would take
# over where P.zsp allows.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util kzonecheck python3 zonesign zonehsm zonegen
zs_setup 2 13 split

zonegen --origin tld. --delegations 2000 --ds-fraction 0.2 --seed 5 \
    --extras -o "$T/v1.zone"
# v2: 20 DS digests changed and NS targets of 5% of the delegations
zonegen --origin tld. --delegations 2000 --ds-fraction 0.2 --seed 5 \
    --extras --mutate 0.05 -o "$T/v2m.zone"
python3 - "$T/v2m.zone" "$T/v2.zone" <<'PY'
import sys
out, changed = [], 0
for line in open(sys.argv[1]):
    f = line.split()
    if changed < 20 and len(f) >= 5 and "DS" in f[1:4] and not line.startswith(";"):
        line = line.rstrip("\n")
        line = line[:-1] + ("0" if line[-1] != "0" else "1") + "\n"
        changed += 1
    out.append(line)
open(sys.argv[2], "w").write("".join(out))
assert changed == 20, changed
PY
check "mutated zone differs" bash -c "! cmp -s '$T/v1.zone' '$T/v2.zone'"

zs_sign 2 --keyset "$T/ks" --opt-out --quiet -o "$T/v1.signed" "$T/v1.zone" \
    2>"$T/v1.err"
check "v1 signed" test -s "$T/v1.signed"
check "v1.signed.zsc written beside it" test -s "$T/v1.signed.zsc"

# counts "made reused" and the road taken, from zonesign's stderr
counts() { sed -n 's/.*signatures made \([0-9]*\), reused \([0-9]*\).*/\1 \2/p' "$1"; }
road() { sed -n 's/.*; previous zone \(via its signature cache\|parsed from text\).*/\1/p' "$1"; }
# the RRSIG lines of FILE whose covered RRset is unchanged from v1 (these
# are the ones that may be reused), sorted
sig_set() { grep -F ' IN RRSIG ' "$1" | grep -v ' IN RRSIG SOA ' | sort; }

sign_v2() { # OUT ERR [extra args]
    local out=$1 err=$2
    shift 2
    zs_sign 2 --keyset "$T/ks" --opt-out --quiet --serial increment "$@" \
        -o "$out" "$T/v2.zone" 2>"$err"
}

sign_v2 "$T/c.signed" "$T/c.err" --previous "$T/v1.signed" --no-patch
check "v2 with the cache: road is the cache ($(road "$T/c.err"))" \
    test "$(road "$T/c.err")" = "via its signature cache"
sign_v2 "$T/t.signed" "$T/t.err" --previous "$T/v1.signed" --no-cache
check "v2 with --no-cache: road is the text ($(road "$T/t.err"))" \
    test "$(road "$T/t.err")" = "parsed from text"
check "--no-cache writes no cache" test ! -e "$T/t.signed.zsc"
read -r cm cr <<<"$(counts "$T/c.err")"
read -r tm tr <<<"$(counts "$T/t.err")"
diag "cache: made $cm reused $cr; text: made $tm reused $tr"
check "some signatures reused (${cr:-?})" test "${cr:-0}" -gt 100
check "some signatures made (${cm:-?})" test "${cm:-0}" -gt 1
check "same counts on both roads" test "$cm $cr" = "$tm $tr"
# every reused signature is v1's byte for byte; the fresh ones differ
# (ECDSA), so compare only the v1 RRSIGs found in each result
sig_set "$T/v1.signed" >"$T/v1.sigs"
comm -12 "$T/v1.sigs" <(sig_set "$T/c.signed") >"$T/c.reused"
comm -12 "$T/v1.sigs" <(sig_set "$T/t.signed") >"$T/t.reused"
check "the cache reuses exactly the text road's signatures" \
    cmp -s "$T/c.reused" "$T/t.reused"
check "reused count = v1 RRSIGs kept ($(wc -l <"$T/c.reused"))" \
    test "$(wc -l <"$T/c.reused")" -eq "${cr:-0}"
check "v2 via the cache: kzonecheck" zs_verify_knot tld. "$T/c.signed"
check "c.signed.zsc written" test -s "$T/c.signed.zsc"

# the cache of a zone that was edited afterwards is not used
cp "$T/v1.signed" "$T/e.signed"
cp "$T/v1.signed.zsc" "$T/e.signed.zsc"
sed -i '0,/ IN NS /s/ IN NS \(.*\)\./ IN NS x\1./' "$T/e.signed"
check "edited copy differs" bash -c "! cmp -s '$T/v1.signed' '$T/e.signed'"
sign_v2 "$T/e2.signed" "$T/e2.err" --previous "$T/e.signed" --no-patch
check "stale cache (zone edited): text road ($(road "$T/e2.err"))" \
    test "$(road "$T/e2.err")" = "parsed from text"

# a damaged cache is not used
cp "$T/v1.signed" "$T/d.signed"
cp "$T/v1.signed.zsc" "$T/d.signed.zsc"
python3 - "$T/d.signed.zsc" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x01
open(p, "wb").write(bytes(b))
PY
sign_v2 "$T/d2.signed" "$T/d2.err" --previous "$T/d.signed" --no-patch
check "damaged cache: text road ($(road "$T/d2.err"))" \
    test "$(road "$T/d2.err")" = "parsed from text"
check "damaged cache: same counts as the text road" \
    test "$(counts "$T/d2.err")" = "$tm $tr"
printf 'ZGSC' >"$T/d.signed.zsc"
sign_v2 "$T/d3.signed" "$T/d3.err" --previous "$T/d.signed" --no-patch
check "truncated cache: text road, signed" \
    test "$(road "$T/d3.err")" = "parsed from text" -a -s "$T/d3.signed"

# the cache of another zone is not used
zonegen --origin tld. --delegations 300 --seed 9 -o "$T/o.zone"
zs_sign 2 --keyset "$T/ks" --opt-out --quiet -o "$T/o.signed" "$T/o.zone" 2>/dev/null
cp "$T/v1.signed" "$T/x.signed"
cp "$T/o.signed.zsc" "$T/x.signed.zsc"
sign_v2 "$T/x2.signed" "$T/x2.err" --previous "$T/x.signed" --no-patch
check "another zone's cache: text road" \
    test "$(road "$T/x2.err")" = "parsed from text"

# a released copy of the zone with the cache named explicitly
mkdir -p "$T/rel"
cp "$T/v1.signed" "$T/rel/tld.zone"
sign_v2 "$T/r.signed" "$T/r.err" --previous "$T/rel/tld.zone" \
    --previous-cache "$T/v1.signed.zsc" --no-patch
check "--previous-cache: cache road" \
    test "$(road "$T/r.err")" = "via its signature cache"
check "--previous-cache: same counts" test "$(counts "$T/r.err")" = "$cm $cr"
sign_v2 "$T/r2.signed" "$T/r2.err" --previous "$T/rel/tld.zone" \
    --previous-cache "$T/o.signed.zsc" --no-patch
check "--previous-cache of another zone: warned, text road" \
    bash -c "grep -q 'not a signature cache' '$T/r2.err' &&
             grep -q 'parsed from text' '$T/r2.err'"
check_exit 2 "--previous-cache without --previous" \
    zs_sign 2 --keyset "$T/ks" --quiet --previous-cache "$T/v1.signed.zsc" \
    -o "$T/n.signed" "$T/v2.zone" 2>/dev/null

# expired signatures in the cache are not reused: sign with a short
# validity, then re-sign with a refresh threshold above it
zs_sign 2 --keyset "$T/ks" --opt-out --quiet --expiration now+2d \
    -o "$T/s.signed" "$T/v1.zone" 2>/dev/null
zs_sign 2 --keyset "$T/ks" --opt-out --quiet --refresh 3d --no-patch \
    --previous "$T/s.signed" -o "$T/s2.signed" "$T/v1.zone" 2>"$T/s2.err"
check "refresh above the cached validity: cache road, reused 0" \
    bash -c "grep -q 'via its signature cache' '$T/s2.err' &&
             grep -q 'reused 0,' '$T/s2.err'"
# a changed key set: the cached ZSK signatures name another key tag
zonehsm $(zg_hsm_args 2) --keyset "$T/ks" keygen --label zsk13b --alg 13 \
    --role zsk --state active >/dev/null
zonehsm $(zg_hsm_args 2) --keyset "$T/ks" state --label zsk13 --set retired \
    >/dev/null
zs_sign 2 --keyset "$T/ks" --opt-out --quiet --previous "$T/v1.signed" \
    --no-patch -o "$T/k.signed" "$T/v1.zone" 2>"$T/k.err"
read -r km kr <<<"$(counts "$T/k.err")"
diag "new ZSK: made $km reused $kr"
check "new ZSK (DNSKEY RRset changed too): nothing reused" test "${kr:-x}" = 0
check "new ZSK: kzonecheck" zs_verify_knot tld. "$T/k.signed"
done_testing
