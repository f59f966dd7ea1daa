# tests/lib/softhsm.sh - SoftHSM2 tokens for one test, in its own directory
# with its own SOFTHSM2_CONF (never the system token store).  Sourced.
#
#   zg_softhsm_init DIR N     tokens hsm1..hsmN, user PIN 1234
#   zg_uri I                  pkcs11 URI of token hsmI (pin-value)
#   zg_uri_pinfile I          the same with pin-source=file:DIR/pin
#   zg_hsm_args N             "--hsm URI" for tokens 1..N
#   zg_hsm_pinfile_args N [MODULE]  the same with pin-source URIs, through
#                             MODULE (the fault-injection shim, say) if given
ZG_SOFTHSM_MODULE=${ZG_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
ZG_PIN=1234
ZG_SO_PIN=87654321

zg_softhsm_init() {
    local dir=$1 n=$2 i
    mkdir -p "$dir/tokens"
    cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    export SOFTHSM2_CONF="$dir/softhsm2.conf"
    printf '%s\n' "$ZG_PIN" >"$dir/pin"
    chmod 600 "$dir/pin"
    ZG_SOFTHSM_DIR=$dir
    for i in $(seq 1 "$n"); do
        softhsm2-util --init-token --free --label "hsm$i" \
            --so-pin "$ZG_SO_PIN" --pin "$ZG_PIN" </dev/null >/dev/null ||
            return 1
    done
}

zg_uri() {
    echo "pkcs11:token=hsm$1?module-path=${ZG_MODULE:-$ZG_SOFTHSM_MODULE}&pin-value=$ZG_PIN"
}

zg_uri_pinfile() {
    echo "pkcs11:token=hsm$1?module-path=${ZG_MODULE:-$ZG_SOFTHSM_MODULE}&pin-source=file:$ZG_SOFTHSM_DIR/pin"
}

zg_hsm_args() {
    local i
    for i in $(seq 1 "$1"); do printf -- '--hsm\n%s\n' "$(zg_uri "$i")"; done
}

zg_hsm_pinfile_args() {
    local i
    for i in $(seq 1 "$1"); do
        printf -- '--hsm\n%s\n' "$(ZG_MODULE=${2:-${ZG_MODULE:-}} zg_uri_pinfile "$i")"
    done
}
