#!/usr/bin/env bash
# tests/signer/test_mismatch.sh - DESIGN.md invariant 1 in zonesign: one
# HSM holds its own key pair under the same label (the .de 2026 fault):
# zonesign exits 1, writes nothing (an existing OUT untouched) and names the
# HSM (number and token) and the key tag.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util zonesign zonehsm
zg_tmpdir
zg_softhsm_init "$ZG_TMP/hsm" 3 || { not_ok "softhsm init"; done_testing; }
zone="$ZG_SRC/zones/sample/tld.zone"

# the real key on hsm1 and hsm2 only
zonehsm --hsm "$(zg_uri 1)" --hsm "$(zg_uri 2)" --keyset "$ZG_TMP/ks" keygen \
    --zone tld. --label csk --alg 13 --role csk --state active >/dev/null
check "key on hsm1 and hsm2" test -s "$ZG_TMP/ks"
# hsm3 gets its own, different pair under the same label
zonehsm --hsm "$(zg_uri 3)" --keyset "$ZG_TMP/ks-rogue" keygen \
    --zone tld. --label csk --alg 13 --role csk --state active >/dev/null
check "rogue key on hsm3" test -s "$ZG_TMP/ks-rogue"
tag=$(sed -n 's/.* tag=\([0-9]*\).*/\1/p' "$ZG_TMP/ks")

# consistent pair: signs
zonesign --hsm "$(zg_uri 1)" --hsm "$(zg_uri 2)" --keyset "$ZG_TMP/ks" --quiet \
    -o "$ZG_TMP/good.signed" "$zone" 2>"$ZG_TMP/good.err"
check "two consistent HSMs sign" test -s "$ZG_TMP/good.signed"

echo "previous content" >"$ZG_TMP/out.zone"
zs_sign 3 --keyset "$ZG_TMP/ks" --quiet -o "$ZG_TMP/out.zone" "$zone" 2>"$ZG_TMP/err"
rc=$?
diag "$(cat "$ZG_TMP/err")"
check "exit 1 (got $rc)" test "$rc" -eq 1
check "existing OUT untouched" grep -qx "previous content" "$ZG_TMP/out.zone"
check "no temporary file left" test -z "$(ls "$ZG_TMP" | grep '\.tmp\.')"
check "HSM 3 and its token named" grep -q "HSM 3 (token hsm3)" "$ZG_TMP/err"
check "key tag $tag named" grep -q "$tag" "$ZG_TMP/err"
check "HSMs 1 and 2 not blamed" test -z "$(grep -E 'HSM [12] \(token' "$ZG_TMP/err")"
zs_sign 3 --keyset "$ZG_TMP/ks" --quiet -o "$ZG_TMP/new.zone" "$zone" 2>/dev/null
check "no output file when OUT did not exist" test ! -e "$ZG_TMP/new.zone"

# the .de 2026 fault exactly: hsm5 holds a different pair under the SAME
# label and CKA_ID (planted with pkcs11-tool)
zs_need pkcs11-tool
softhsm2-util --init-token --free --label hsm5 --so-pin "$ZG_SO_PIN" \
    --pin "$ZG_PIN" </dev/null >/dev/null
id=$(sed -n 's/.* id=\([0-9a-f]*\) .*/\1/p' "$ZG_TMP/ks")
pkcs11-tool --module "$ZG_SOFTHSM_MODULE" --token-label hsm5 --login \
    --pin "$ZG_PIN" --keypairgen --key-type EC:prime256v1 --id "$id" \
    --label csk >/dev/null 2>&1
check "planted pair on hsm5 with CKA_ID $id" test -n "$id"
echo "previous content" >"$ZG_TMP/out5.zone"
zonesign --hsm "$(zg_uri 1)" --hsm "$(zg_uri 2)" --hsm "$(zg_uri 5)" \
    --keyset "$ZG_TMP/ks" --quiet -o "$ZG_TMP/out5.zone" "$zone" 2>"$ZG_TMP/err5"
rc=$?
diag "$(cat "$ZG_TMP/err5")"
check "same label and CKA_ID, other key: exit 1 (got $rc)" test "$rc" -eq 1
check "planted: HSM 3 (token hsm5) named" grep -q "HSM 3 (token hsm5)" "$ZG_TMP/err5"
check "planted: expected key tag $tag named" grep -q "expected key tag $tag" "$ZG_TMP/err5"
check "planted: OUT untouched" grep -qx "previous content" "$ZG_TMP/out5.zone"

# a token without the key at all
softhsm2-util --init-token --free --label hsm4 --so-pin "$ZG_SO_PIN" \
    --pin "$ZG_PIN" </dev/null >/dev/null
zs_sign 4 --keyset "$ZG_TMP/ks" --quiet -o "$ZG_TMP/new.zone" "$zone" 2>"$ZG_TMP/err4"
rc=$?
check "missing key on an HSM: exit 1 (got $rc)" test "$rc" -eq 1
check "missing key: HSM 4 named" grep -q "HSM 4 (token hsm4)" "$ZG_TMP/err4"
done_testing
