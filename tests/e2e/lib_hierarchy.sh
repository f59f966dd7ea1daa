# tests/e2e/lib_hierarchy.sh - a test DNS hierarchy signed by zonesign
# through SoftHSM and released by zonegate.  Sourced after tap.sh,
# softhsm.sh and servers.sh.
#
#   zg_h_init N          three tokens (or N), key sets for . and tld.
#   zg_h_sign_tld SERIAL [MODULE]   sign tld. into $H/tld.candidate
#   zg_h_gate_tld        gate it against the DS in the root, release
#   zg_h_root            sign, gate and release the root with tld.'s DS
#   zg_h_serve           nsd + unbound on loopback
# Layout under $H ($ZG_TMP/h): tokens/, keys, release/, unsigned zones.

zg_h_init() {
    H=$ZG_TMP/h
    mkdir -p "$H/release"
    zg_softhsm_init "$H/tokens" "${1:-3}"
    HSMS=()
    local i
    for i in $(seq 1 "${1:-3}"); do HSMS+=(--hsm "$(zg_uri_pinfile "$i")"); done
    zonehsm "${HSMS[@]}" --keyset "$H/root.keyset" keygen --zone . \
        --label root-ksk --alg 13 --role ksk --state active >/dev/null &&
    zonehsm "${HSMS[@]}" --keyset "$H/root.keyset" keygen --zone . \
        --label root-zsk --alg 13 --role zsk --state active >/dev/null &&
    zonehsm "${HSMS[@]}" --keyset "$H/tld.keyset" keygen --zone tld. \
        --label tld-ksk --alg 13 --role ksk --state active >/dev/null &&
    zonehsm "${HSMS[@]}" --keyset "$H/tld.keyset" keygen --zone tld. \
        --label tld-zsk --alg 13 --role zsk --state active >/dev/null
}

# The tld zone: a small TLD with short TTLs so caches turn over in tests.
zg_h_tld_unsigned() {
    zonegen --origin tld. --delegations "${ZG_H_DELEGATIONS:-200}" \
        --ds-fraction 0.2 --glue-fraction 0.1 --extras --seed 3 \
        --serial "$1" |
        sed -e 's/^\$TTL 86400/$TTL 30/' -e 's/\t86400\t/\t30\t/' \
            -e 's/\t3600\t/\t30\t/' >"$H/tld.unsigned"
}

zg_h_sign_tld() {
    local serial=$1 module=${2:-}
    zg_h_tld_unsigned "$serial"
    local hsms=("${HSMS[@]}")
    if [ -n "$module" ]; then
        hsms=()
        local i
        for i in $(seq 1 3); do
            hsms+=(--hsm "pkcs11:token=hsm$i?module-path=$module&pin-source=file:$ZG_SOFTHSM_DIR/pin")
        done
    fi
    zonesign "${hsms[@]}" --keyset "$H/tld.keyset" --threads 2 \
        -o "$H/tld.candidate" "$H/tld.unsigned"
}

zg_h_tld_ds() {
    dnssec-dsfromkey -2 -f "$1" tld. >"$H/tld.ds"
}

zg_h_gate_tld() {
    zonegate --origin tld. --ds "$H/tld.ds" --unsigned "$H/tld.unsigned" \
        --release "$H/release" "$@" "$H/tld.candidate"
}

zg_h_root() {
    cat >"$H/root.unsigned" <<ZONE
\$TTL 30
.	30	IN	SOA	a.root-servers.test. hostmaster.test. $1 30 30 600 30
.	30	IN	NS	a.root-servers.test.
a.root-servers.test.	30	IN	A	127.0.0.1
tld.	30	IN	NS	ns1.nic.tld.
ns1.nic.tld.	30	IN	A	127.0.0.1
ZONE
    sed 's/^tld\.\t[0-9]*/tld.\t30/' "$H/tld.ds" >>"$H/root.unsigned"
    zonesign "${HSMS[@]}" --keyset "$H/root.keyset" --threads 2 \
        -o "$H/root.candidate" "$H/root.unsigned" || return 1
    dnssec-dsfromkey -2 -f "$H/root.candidate" . >"$H/root.anchor"
    zonegate --origin . --trust-anchor "$H/root.anchor" \
        --unsigned "$H/root.unsigned" --release "$H/release" \
        "$H/root.candidate" >"$H/root.gate"
}

zg_h_serve() {
    NSD_PORT=$(zg_free_port)
    UB_PORT=$(zg_free_port)
    zg_nsd_start "$H/nsd" "$NSD_PORT" ".=$H/release/root.zone" \
        "tld.=$H/release/tld.zone" || return 1
    zg_unbound_start "$H/unbound" "$UB_PORT" "$NSD_PORT" "$H/root.anchor" tld.
}
