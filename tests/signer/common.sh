# tests/signer/common.sh - helpers for the zonesign shell tests (sourced
# after tests/lib/tap.sh and tests/lib/softhsm.sh).

# zs_need TOOL...: skip the whole test if a tool is missing.
zs_need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip_all "$t not installed"
    done
}

# zs_keys KEYSET NHSM ALG MODE: keys on tokens hsm1..hsmNHSM, MODE is
# "split" (KSK + ZSK) or "csk".  Ed25519 (15) keys are imported (SoftHSM
# 2.6.1 cannot wrap them); ZS_REPLICATE overrides.
zs_keys() {
    local ks=$1 n=$2 alg=$3 mode=$4
    local -a hsm
    mapfile -t hsm < <(zg_hsm_args "$n")
    local rep=${ZS_REPLICATE:-}
    [ -n "$rep" ] || { [ "$alg" = 15 ] && rep=import || rep=wrap; }
    if [ "$mode" = csk ]; then
        zonehsm "${hsm[@]}" --keyset "$ks" keygen --zone "${ZS_ORIGIN:-tld.}" \
            --label "${ZS_LABEL:-}csk$alg" --alg "$alg" --role csk --state active --replicate "$rep" >/dev/null
    else
        zonehsm "${hsm[@]}" --keyset "$ks" keygen --zone "${ZS_ORIGIN:-tld.}" \
            --label "${ZS_LABEL:-}ksk$alg" --alg "$alg" --role ksk --state active --replicate "$rep" >/dev/null &&
            zonehsm "${hsm[@]}" --keyset "$ks" keygen --zone "${ZS_ORIGIN:-tld.}" \
                --label "${ZS_LABEL:-}zsk$alg" --alg "$alg" --role zsk --state active --replicate "$rep" >/dev/null
    fi
}

# zs_setup NHSM ALG MODE: the usual start of a test: a temporary directory
# (also $T), NHSM fresh SoftHSM tokens and a key set $ZG_TMP/ks made by
# zs_keys; a failure ends the test.
zs_setup() {
    zg_tmpdir
    T=$ZG_TMP
    zg_softhsm_init "$ZG_TMP/hsm" "$1" || { not_ok "softhsm init"; done_testing; }
    zs_keys "$ZG_TMP/ks" "$1" "$2" "$3" || { not_ok "keygen"; done_testing; }
}

# zs_sign NHSM ARGS...: zonesign with tokens hsm1..hsmNHSM.
zs_sign() {
    local n=$1
    shift
    local -a hsm
    mapfile -t hsm < <(zg_hsm_args "$n")
    zonesign "${hsm[@]}" "$@"
}

# zs_verify ORIGIN FILE: the three independent validators.
zs_verify_bind() { dnssec-verify ${ZS_BIND_ARGS:-} -q -o "$1" "$2" >"$ZG_TMP/dv.log" 2>&1 || { diag "$(tail -5 "$ZG_TMP/dv.log")"; return 1; }; }
zs_verify_ldns() { ldns-verify-zone -V 1 "$2" >"$ZG_TMP/lv.log" 2>&1 || { diag "$(tail -5 "$ZG_TMP/lv.log")"; return 1; }; }
zs_verify_knot() { kzonecheck -o "$1" -d on "$2" >"$ZG_TMP/kv.log" 2>&1 || { diag "$(tail -5 "$ZG_TMP/kv.log")"; return 1; }; }

# zs_same_data UNSIGNED SIGNED: the signed zone without DNSSEC records has
# the unsigned zone's records, record for record.
zs_same_data() {
    ldns-read-zone -c -s -e DNSKEY -e NSEC3PARAM "$1" 2>/dev/null | grep -v '^;' | sort >"$ZG_TMP/a.txt"
    ldns-read-zone -c -s -e DNSKEY -e NSEC3PARAM "$2" 2>/dev/null | grep -v '^;' | sort >"$ZG_TMP/b.txt"
    [ -s "$ZG_TMP/a.txt" ] && diff -q "$ZG_TMP/a.txt" "$ZG_TMP/b.txt" >/dev/null ||
        { diag "$(diff "$ZG_TMP/a.txt" "$ZG_TMP/b.txt" | head -5)"; return 1; }
}
