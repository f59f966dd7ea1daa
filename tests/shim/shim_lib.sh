# tests/shim/shim_lib.sh - helpers shared by the shim tests (sourced after
# tests/lib/tap.sh and tests/lib/softhsm.sh).
#
#   shim_setup SHIM SHIMSIGN N   tokens hsm1..hsmN in $ZG_TMP/hsm, data file
#   shim_keygen TOKEN LABEL ID TYPE   key pair straight on SoftHSM, public
#                                key to $ZG_TMP/TOKEN-LABEL.pem
#   shim_conf 'LINE' ...         writes the config, exports ZG_SHIM_CONF
#   shim_tool ARGS...            pkcs11-tool through the shim (PIN via env)
#   shim_verify PEM SIG          openssl verifies SIG over $ZG_TMP/data
#   now_ms                       wall clock in milliseconds
shim_setup() {
    SHIM=$1
    SHIMSIGN=$2
    for t in pkcs11-tool openssl softhsm2-util; do
        command -v "$t" >/dev/null || skip_all "$t not installed"
    done
    [ -f "$SHIM" ] || { echo "Bail out! no $SHIM"; exit 1; }
    zg_tmpdir
    zg_softhsm_init "$ZG_TMP/hsm" "$3" || { echo "Bail out! tokens"; exit 1; }
    # pkcs11-tool reads the PIN from this variable (--pin env:NAME): never
    # from argv.
    export ZG_TEST_PIN=$ZG_PIN
    printf 'zone data to be signed, %s\n' "$(date)" >"$ZG_TMP/data"
    openssl dgst -sha256 -binary "$ZG_TMP/data" >"$ZG_TMP/digest"
    unset ZG_SHIM_CONF ZG_SHIM_MODULE
    # A sanitizer build of the shim needs its runtime loaded first when an
    # uninstrumented program (pkcs11-tool) dlopens it.
    SHIM_PRELOAD=$(ldd "$SHIM" | awk '/libasan/ { print $3 }')
}

shim_keygen() {
    local tok=$1 label=$2 id=$3 type=$4
    pkcs11-tool --module "$ZG_SOFTHSM_MODULE" --token-label "$tok" \
        --login --pin env:ZG_TEST_PIN --keypairgen --key-type "$type" \
        --label "$label" --id "$id" >/dev/null 2>&1 &&
        pkcs11-tool --module "$ZG_SOFTHSM_MODULE" --token-label "$tok" \
            --read-object --type pubkey --label "$label" \
            -o "$ZG_TMP/$tok-$label.der" >/dev/null 2>&1 &&
        openssl pkey -pubin -inform DER -in "$ZG_TMP/$tok-$label.der" \
            -out "$ZG_TMP/$tok-$label.pem" 2>/dev/null
}

shim_conf() {
    printf '%s\n' "$@" >"$ZG_TMP/shim.conf"
    export ZG_SHIM_CONF=$ZG_TMP/shim.conf
}

shim_tool() {
    if [ -n "$SHIM_PRELOAD" ]; then
        LD_PRELOAD=$SHIM_PRELOAD pkcs11-tool --module "$SHIM" "$@"
    else
        pkcs11-tool --module "$SHIM" "$@"
    fi
}

shim_verify() {
    openssl dgst -sha256 -verify "$1" -signature "$2" "$ZG_TMP/data" \
        >/dev/null 2>&1
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}
