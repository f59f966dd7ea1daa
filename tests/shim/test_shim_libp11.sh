#!/usr/bin/env bash
# tests/shim/test_shim_libp11.sh - libzgshim.so under libp11 0.4.12, the
# consumer zonehsm/zonesign use (the shimp11 driver: EVP_DigestSign on a
# libp11 key, several threads).  This is the May 2026 shape: the first
# signatures (a probe) are good, later ones are not.  Checked with openssl.
#
#   test_shim_libp11.sh SHIM SHIMSIGN SHIMP11   (run by meson, ZG_SRC set)
set -u
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/shim/shim_lib.sh"
SHIMP11=${3:-none}
[ "$SHIMP11" != none ] || skip_all "libp11 development files not installed"
shim_setup "$1" "$2" 2

check "EC key zsk on hsm1" shim_keygen hsm1 zsk 01 EC:prime256v1
check "EC key zsk on hsm2" shim_keygen hsm2 zsk 01 EC:prime256v1
check "EC key evil on hsm2" shim_keygen hsm2 evil 02 EC:prime256v1

# run TOKEN COUNT THREADS: signatures by zsk into $ZG_TMP/run.
run() {
    rm -rf "$ZG_TMP/run"
    mkdir "$ZG_TMP/run"
    "$SHIMP11" "$SHIM" "$1" zsk "$ZG_SOFTHSM_DIR/pin" "$ZG_TMP/data" \
        "$ZG_TMP/run" "$2" "$3" >"$ZG_TMP/run.out" 2>"$ZG_TMP/run.err"
}

# expect I J STATUS GOODPEM [BADPEM]: as in test_shim_counted.sh.
expect() {
    local from=$1 to=$2 status=$3 good=$4 bad=${5:-} i
    for i in $(seq "$from" "$to"); do
        grep -qx "$i $status" "$ZG_TMP/run.out" || return 1
        [ "$good" = - ] || shim_verify "$good" "$ZG_TMP/run/sig.$i" || return 1
        [ -z "$bad" ] || ! shim_verify "$bad" "$ZG_TMP/run/sig.$i" || return 1
    done
}

count_verifying() {
    local n=0 f
    for f in "$ZG_TMP"/run/sig.*; do
        [ -e "$f" ] || continue
        shim_verify "$1" "$f" && n=$((n + 1))
    done
    echo "$n"
}

z1=$ZG_TMP/hsm1-zsk.pem
z2=$ZG_TMP/hsm2-zsk.pem
e2=$ZG_TMP/hsm2-evil.pem

unset ZG_SHIM_CONF
check "pass-through: libp11 signs through the shim" run hsm1 4 1
check "pass-through: 4 signatures verify" expect 0 3 ok "$z1"

shim_conf 'token=hsm2 fault=swapkey after=3 label=evil'
check "swapkey after=3: driver runs" run hsm2 10 1
check "swapkey after=3: signatures 1-3 (the probe) verify with zsk only" \
    expect 0 2 ok "$z2" "$e2"
check "swapkey after=3: signatures 4-10 verify with evil, not zsk" \
    expect 3 9 ok "$e2" "$z2"

shim_conf 'token=hsm1 fault=flipbit after=2'
check "flipbit after=2: driver runs" run hsm1 5 1
check "flipbit after=2: signatures 1-2 verify" expect 0 1 ok "$z1"
check "flipbit after=2: signatures 3-5 made but do not verify" \
    expect 2 4 ok - "$z1"

shim_conf 'token=hsm1 fault=deverror after=2'
check "deverror after=2: driver runs" run hsm1 5 1
check "deverror after=2: signatures 1-2 verify" expect 0 1 ok "$z1"
check "deverror after=2: signatures 3-5 fail" expect 2 4 err -

shim_conf 'token=hsm1 fault=losesession after=2'
check "losesession after=2: driver runs" run hsm1 5 1
check "losesession after=2: signatures 1-2 verify" expect 0 1 ok "$z1"
check "losesession after=2: signature 3 fails" expect 2 2 err -

shim_conf 'token=hsm2 fault=swapkey after=60 label=evil'
check "4 threads, swapkey after=60: driver runs" run hsm2 200 4
check "4 threads: 200 signatures made" \
    test "$(grep -c ' ok$' "$ZG_TMP/run.out")" -eq 200
n=$(count_verifying "$z2")
m=$(count_verifying "$e2")
check "4 threads: exactly 60 verify with zsk, 140 with evil (got $n, $m)" \
    test "$n" -eq 60 -a "$m" -eq 140

done_testing
