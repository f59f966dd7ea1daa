#!/usr/bin/env bash
# tests/signer/test_incremental.sh - --previous: after changing 1% of the
# delegations (DS digests changed, new secure delegations added), re-signing
# makes HSM signatures only for the RRsets whose data changed (DS, SOA for
# the new serial, and the NSEC3 records whose content changed) and reuses
# every other signature byte for byte; the result validates.
# The --previous runs pass --no-patch: they count the cache road's
# signatures (test_patch.sh tests the patch road).
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util dnssec-verify ldns-verify-zone kzonecheck python3 \
    zonesign zonehsm zonegen
zs_setup 2 13 split

zonegen --origin tld. --delegations 3000 --ds-fraction 0.1 --glue-fraction 0.1 \
    --seed 11 --extras -o "$ZG_TMP/v1.zone"
zs_sign 2 --keyset "$ZG_TMP/ks" --opt-out --quiet -o "$ZG_TMP/v1.signed" \
    "$ZG_TMP/v1.zone" 2>"$ZG_TMP/v1.err"
check "v1 signed" test -s "$ZG_TMP/v1.signed"
check "v1: nothing reused without --previous" grep -q "reused 0," "$ZG_TMP/v1.err"

# 1% of 3000 delegations: change the digest of 20 DS RRsets and add 10 new
# secure delegations.
python3 - "$ZG_TMP/v1.zone" "$ZG_TMP/v2.zone" <<'PY'
import sys
src, dst = sys.argv[1], sys.argv[2]
out, changed = [], 0
for line in open(src):
    f = line.split()
    if changed < 20 and len(f) >= 5 and "DS" in f[1:4] and not line.startswith(";"):
        line = line.rstrip("\n")
        line = line[:-1] + ("0" if line[-1] != "0" else "1") + "\n"
        changed += 1
    out.append(line)
for i in range(10):
    out.append(f"newdeleg{i}\t86400\tIN\tNS\tns1.example.net.\n")
    out.append(f"newdeleg{i}\t86400\tIN\tDS\t{1000+i} 13 2 " + "AB" * 32 + "\n")
open(dst, "w").write("".join(out))
assert changed == 20, changed
PY
check "v2 made" test -s "$ZG_TMP/v2.zone"

zs_sign 2 --keyset "$ZG_TMP/ks" --opt-out --quiet --serial increment --no-patch \
    --previous "$ZG_TMP/v1.signed" -o "$ZG_TMP/v2.signed" "$ZG_TMP/v2.zone" \
    2>"$ZG_TMP/v2.err"
check "v2 signed with --previous" test -s "$ZG_TMP/v2.signed"
diag "$(tail -1 "$ZG_TMP/v2.err")"
made=$(sed -n 's/.*signatures made \([0-9]*\), reused \([0-9]*\).*/\1/p' "$ZG_TMP/v2.err")
reused=$(sed -n 's/.*signatures made \([0-9]*\), reused \([0-9]*\).*/\2/p' "$ZG_TMP/v2.err")

# Expected: every signed RRset of v2 whose records (TTL, data) differ from
# v1's, once per signing key (one ZSK; DNSKEY by the KSK is unchanged).
read -r want_made want_total same_sigs < <(python3 - "$ZG_TMP/v1.signed" "$ZG_TMP/v2.signed" <<'PY'
import sys
def load(p):
    sets, sigs, cov = {}, set(), {}
    for line in open(p):
        f = line.split()
        if len(f) < 5:
            continue
        owner, ttl, typ = f[0].lower(), f[1], f[3]
        if typ == "RRSIG":
            sigs.add(line.strip())
            cov.setdefault((owner, f[4]), 0)
            cov[(owner, f[4])] += 1
            continue
        sets.setdefault((owner, typ), set()).add(ttl + " " + " ".join(f[4:]))
    return sets, sigs, cov
s1, g1, _ = load(sys.argv[1])
s2, g2, cov2 = load(sys.argv[2])
made = sum(n for k, n in cov2.items() if s1.get(k) != s2.get(k))
print(made, sum(cov2.values()), len(g1 & g2))
PY
)
diag "made $made reused $reused; expected made $want_made of $want_total; identical RRSIGs $same_sigs"
check "signatures made = changed signed RRsets ($made = $want_made)" test "${made:-x}" = "$want_made"
check "made + reused = all RRSIGs ($made + $reused = $want_total)" test $((made + reused)) -eq "$want_total"
check "reused RRSIGs are v1's, byte for byte ($same_sigs = $reused)" test "$same_sigs" -eq "$reused"
check "only a small part re-signed" test "$made" -lt $((want_total / 10))
check "made at least the 20 changed DS + 10 new DS + SOA" test "$made" -ge 31
check "v2: dnssec-verify" zs_verify_bind tld. "$ZG_TMP/v2.signed"
check "v2: ldns-verify-zone" zs_verify_ldns tld. "$ZG_TMP/v2.signed"
check "v2: kzonecheck" zs_verify_knot tld. "$ZG_TMP/v2.signed"
s1=$(awk '$4=="SOA"{print $7}' "$ZG_TMP/v1.signed")
s2=$(awk '$4=="SOA"{print $7}' "$ZG_TMP/v2.signed")
check "serial incremented ($s1 -> $s2)" test "$s2" -eq $((s1 + 1))

# --refresh larger than the remaining validity: everything is re-signed
zs_sign 2 --keyset "$ZG_TMP/ks" --opt-out --quiet --refresh 30d --no-patch \
    --previous "$ZG_TMP/v1.signed" -o "$ZG_TMP/v3.signed" "$ZG_TMP/v1.zone" \
    2>"$ZG_TMP/v3.err"
check "refresh threshold forces re-signing" grep -q "reused 0," "$ZG_TMP/v3.err"
done_testing
