#!/usr/bin/env bash
# A signer for scripts/commission: zonesign through three SoftHSM tokens.
# Environment from commission: ZG_IN ZG_OUT ZG_ORIGIN ZG_ALG ZG_OPTOUT
# ZG_STEP ZG_WORK (ZG_NOW for rollover steps).  Tokens and key sets live in
# $ZG_KEYS (default: keys-zonesign beside the case directories), made on
# first use.  The rollover (its own key set in the rollover's directory):
#   step 0: ZSK1 active          step 1: ZSK2 published
#   step 2: ZSK2 active, ZSK1 retired       step 3: ZSK1 removed
# ZG_SHIM_CONF set: the HSMs are reached through the fault-injection module
# (tests/shim), configured by that file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${ZG_SRC:=$(cd "$here/../.." && pwd)}"
: "${ZG_BUILD:=$ZG_SRC/build}"
export PATH="$ZG_BUILD/hsm:$ZG_BUILD/signer:$PATH"
. "$ZG_SRC/tests/lib/softhsm.sh"
keys=${ZG_KEYS:-$(dirname "$ZG_WORK")/keys-zonesign}
mkdir -p "$keys"
exec 9>"$keys/.lock"
flock 9
[ -f "$keys/tokens-dir/softhsm2.conf" ] || zg_softhsm_init "$keys/tokens-dir" 3 >/dev/null
export SOFTHSM2_CONF=$keys/tokens-dir/softhsm2.conf
module=/usr/lib/softhsm/libsofthsm2.so
[ -n "${ZG_SHIM_CONF:-}" ] && module=$ZG_BUILD/tests/shim/libzgshim.so
hsms=()
for i in 1 2 3; do
    hsms+=(--hsm "pkcs11:token=hsm$i?module-path=$module&pin-source=file:$keys/tokens-dir/pin")
done
plain=()
for i in 1 2 3; do
    plain+=(--hsm "pkcs11:token=hsm$i?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:$keys/tokens-dir/pin")
done
alg=$ZG_ALG
step=${ZG_STEP:-0}
keygen() { # keyset label role state
    zonehsm "${plain[@]}" --keyset "$1" keygen --zone "$ZG_ORIGIN" \
        --label "$2" --alg "$alg" --role "$3" --state "$4" >/dev/null
}
if [ "$(basename "$ZG_WORK")" = zsk-rollover ]; then
    ks=$ZG_WORK/rollover.keyset
    tag=roll$alg
    case $step in
    0) [ -f "$ks" ] || { keygen "$ks" "$tag-ksk" ksk active &&
           keygen "$ks" "$tag-zsk1" zsk active; } ;;
    1) keygen "$ks" "$tag-zsk2" zsk published ;;
    2) zonehsm "${plain[@]}" --keyset "$ks" state --label "$tag-zsk2" --set active
       zonehsm "${plain[@]}" --keyset "$ks" state --label "$tag-zsk1" --set retired ;;
    3) zonehsm "${plain[@]}" --keyset "$ks" state --label "$tag-zsk1" --set removed ;;
    esac
else
    ks=$keys/alg$alg.keyset
    if [ ! -f "$ks" ]; then
        keygen "$ks" "a$alg-ksk" ksk active
        keygen "$ks" "a$alg-zsk" zsk active
    fi
fi
flock -u 9
nsec3=(--nsec3)
[ "${ZG_OPTOUT:-0}" = 1 ] && nsec3+=(--opt-out)
now=${ZG_NOW:-$(date +%s)}
exec zonesign "${hsms[@]}" --keyset "$ks" "${nsec3[@]}" --quiet \
    --inception "$(( $(date +%s) - 3600 ))" --expiration "$(( now + 14 * 86400 ))" \
    -o "$ZG_OUT" "$ZG_IN"
