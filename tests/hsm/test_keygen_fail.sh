#!/usr/bin/env bash
# tests/hsm/test_keygen_fail.sh - a keygen that cannot place the key on
# every HSM leaves nothing behind: token 3 holds a different key-encryption
# key, so unwrapping there fails; the key is destroyed on every token, the
# key set is not written, exit 2 with one line.  A KEK on only some tokens
# is refused up front.  The import ceremony still works on the same tokens.
. "$ZG_SRC/tests/hsm/lib.sh"
zh_setup 4 3 pkcs11-tool
KS=$ZG_TMP/ks
objects() { pkcs11-tool --module "$M" --token-label "hsm$1" --login --pin "$ZG_PIN" -O 2>/dev/null | grep -c "label: *$2\$"; }

check_exit 0 "kek-init on tokens 1 and 2" zh --hsm "$(zg_uri 1)" --hsm "$(zg_uri 2)" kek-init
check_exit 0 "a different kek-init on token 3" zh --hsm "$(zg_uri 3)" kek-init
check_exit 2 "wrap keygen fails" zh "${H[@]}" --keyset "$KS" keygen --zone example. --label k1 --alg 13
check "one line naming HSM 3 and the KEK" grep -q '^zonehsm: HSM 3 (token hsm3): cannot place the key: C_UnwrapKey: .*same key-encryption key as HSM 1' "$ZG_TMP/zh.err"
check "one line only" test "$(wc -l <"$ZG_TMP/zh.err")" -eq 1
check "nothing on stdout" test ! -s "$ZG_TMP/zh.out"
for i in 1 2 3; do
    check "token $i holds no object labelled k1" test "$(objects $i k1)" -eq 0
done
check "no key set written" test ! -e "$KS"

check_exit 0 "import keygen works on the same tokens" zh "${H[@]}" --keyset "$KS" keygen --zone example. --label k1 --alg 13 --replicate import
check_exit 0 "and checks" zh "${H[@]}" --keyset "$KS" check

# Token 4 has no KEK: wrap replication onto 1..4 is refused up front.
check_exit 2 "wrap keygen with a KEK on 3 of 4 tokens refused" zh "${H[@]}" --hsm "$(zg_uri 4)" --keyset "$KS" keygen --label k2 --alg 13
check "message says 3 of 4 and suggests import" grep -q 'on 3 of 4 tokens.*--replicate import' "$ZG_TMP/zh.err"
check "token 1 holds no object labelled k2" test "$(objects 1 k2)" -eq 0
check "key set still has one key" test "$(grep -c '^key ' "$KS")" -eq 1
done_testing
