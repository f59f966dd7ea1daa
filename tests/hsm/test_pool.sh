#!/usr/bin/env bash
# tests/hsm/test_pool.sh - three tokens with a KSK (13) and a ZSK (8), then
# the C test of the signing pool (test_pool.c prints the TAP).
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
command -v softhsm2-util >/dev/null || skip_all "softhsm2-util missing"
zg_tmpdir
zg_softhsm_init "$ZG_TMP" 3 || { not_ok "tokens made"; done_testing; }
mapfile -t H < <(zg_hsm_args 3)
KS=$ZG_TMP/ks
if ! zonehsm "${H[@]}" --keyset "$KS" keygen --zone example. --label ksk1 --alg 13 --role ksk >/dev/null ||
    ! zonehsm "${H[@]}" --keyset "$KS" keygen --label zsk1 --alg 8 --replicate import >/dev/null; then
    not_ok "keygen for the pool test"
    done_testing
fi
"$ZG_BUILD/tests/hsm/test_pool" "$KS" "$(zg_uri 1)" "$(zg_uri 2)" "$(zg_uri 3)"
