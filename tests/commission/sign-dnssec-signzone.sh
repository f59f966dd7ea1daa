#!/usr/bin/env bash
# A signer for scripts/commission: BIND's dnssec-signzone with file keys.
# Environment from commission: ZG_IN ZG_OUT ZG_ORIGIN ZG_ALG ZG_OPTOUT
# ZG_STEP ZG_WORK.  Keys live in $ZG_KEYS (default: ../keys beside the
# case directory), one KSK per algorithm and two ZSKs for the rollover:
#   step 0: ZSK1 signs        step 1: ZSK2 published, ZSK1 signs
#   step 2: ZSK2 signs, ZSK1 still published      step 3: ZSK2 alone
# With ZG_SPOIL=1 two thirds of the RRSIGs are replaced by signatures from
# keys that are not published (the May 2026 shape).
set -euo pipefail
keys=${ZG_KEYS:-$(dirname "$ZG_WORK")/keys-bind}
mkdir -p "$keys"
alg=$ZG_ALG
origin=$ZG_ORIGIN
cd "$keys"
exec 9>"$keys/.lock"
flock 9
mk() { # role name
    local d="$keys/alg$alg-$2"
    if [ ! -d "$d" ]; then
        mkdir -p "$d.tmp"
        (cd "$d.tmp" && dnssec-keygen -q -a "$alg" $([ "$1" = ksk ] && echo -f KSK) \
            $([ "$alg" = 8 ] && echo -b 2048) "$origin" >/dev/null)
        mv "$d.tmp" "$d"
    fi
    echo "$d"
}
ksk=$(mk ksk ksk)
zsk1=$(mk zsk zsk1)
zsk2=$(mk zsk zsk2)
flock -u 9

step=${ZG_STEP:-0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$ZG_IN" "$work/in.zone"
[ -f "$ZG_IN.inc" ] && cp "$ZG_IN.inc" "$work/" || true
signing=("$ksk"/K*.private)
case $step in
0) signing+=("$zsk1"/K*.private) ;;
1) signing+=("$zsk1"/K*.private); cat "$zsk2"/K*.key >>"$work/in.zone" ;;
2) signing+=("$zsk2"/K*.private); cat "$zsk1"/K*.key >>"$work/in.zone" ;;
*) signing+=("$zsk2"/K*.private) ;;
esac
# dnssec-signzone publishes the keys found in the zone; sign with those
# given on the command line.
for k in "${signing[@]}"; do cat "${k%.private}.key" >>"$work/in.zone"; done
nsec3=(-3 -)
[ "${ZG_OPTOUT:-0}" = 1 ] && nsec3+=(-A)
start=$(( $(date +%s) - 3600 ))
end=$(( ${ZG_NOW:-$(date +%s)} + 14 * 86400 ))
dnssec-signzone -q -d "$work" -o "$origin" "${nsec3[@]}" -H 0 -s "$start" -e "$end" \
    -f "$work/out.zone" "$work/in.zone" "${signing[@]}" >/dev/null
if [ "${ZG_SPOIL:-0}" = 1 ]; then
    # one record per line first (dnssec-signzone writes RRSIGs over lines)
    ldns-read-zone "$work/out.zone" >"$work/flat.zone"
    python3 "$(dirname "$0")/spoil.py" "$work/flat.zone"
    mv "$work/flat.zone" "$work/out.zone"
fi
mv "$work/out.zone" "$ZG_OUT"
