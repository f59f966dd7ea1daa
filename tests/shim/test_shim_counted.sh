#!/usr/bin/env bash
# tests/shim/test_shim_counted.sh - counted faults (after=N) of
# libzgshim.so, many signatures in one process with the shimsign driver
# (raw PKCS#11 over dlopen, CKF_OS_LOCKING_OK, size query before each
# signature), from one thread and from several.  Checked with openssl.
#
#   test_shim_counted.sh SHIM SHIMSIGN     (run by meson with ZG_SRC set)
set -u
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/shim/shim_lib.sh"
shim_setup "$1" "$2" 3

check "EC key zsk on hsm1" shim_keygen hsm1 zsk 01 EC:prime256v1
check "EC key zsk on hsm2" shim_keygen hsm2 zsk 01 EC:prime256v1
check "EC key evil on hsm2" shim_keygen hsm2 evil 02 EC:prime256v1
check "RSA key zsk on hsm3" shim_keygen hsm3 zsk 01 RSA:2048
check "RSA key evil on hsm3" shim_keygen hsm3 evil 02 RSA:2048

# run TOKEN MECH COUNT THREADS: signatures by key zsk into $ZG_TMP/run,
# the driver's status lines into $ZG_TMP/run.out.
run() {
    rm -rf "$ZG_TMP/run"
    mkdir "$ZG_TMP/run"
    "$SHIMSIGN" "$SHIM" "$1" zsk "$2" "$ZG_SOFTHSM_DIR/pin" "$ZG_TMP/data" \
        "$ZG_TMP/run" "$3" "$4" >"$ZG_TMP/run.out" 2>"$ZG_TMP/run.err"
}

# expect I..J STATUS PEM: signatures I..J got STATUS ("ok" or "rv=0x..")
# and, when ok, verify with PEM ("-" to skip) and, for BADPEM, do not.
expect() {
    local from=$1 to=$2 status=$3 good=$4 bad=${5:-} i
    for i in $(seq "$from" "$to"); do
        grep -qx "$i $status" "$ZG_TMP/run.out" || return 1
        [ "$good" = - ] || shim_verify "$good" "$ZG_TMP/run/sig.$i" || return 1
        [ -z "$bad" ] || ! shim_verify "$bad" "$ZG_TMP/run/sig.$i" || return 1
    done
}

# count_verifying PEM: how many signatures in $ZG_TMP/run verify.
count_verifying() {
    local n=0 f
    for f in "$ZG_TMP"/run/sig.*; do
        [ -e "$f" ] || continue
        shim_verify "$1" "$f" && n=$((n + 1))
    done
    echo "$n"
}

lines() { grep -c "$1" "$ZG_TMP/run.out"; }

e1=$ZG_TMP/hsm1-zsk.pem
z2=$ZG_TMP/hsm2-zsk.pem
e2=$ZG_TMP/hsm2-evil.pem
z3=$ZG_TMP/hsm3-zsk.pem
e3=$ZG_TMP/hsm3-evil.pem

unset ZG_SHIM_CONF
check "pass-through: driver runs" run hsm1 ecdsa 4 1
check "pass-through: 4 ECDSA signatures verify" expect 0 3 ok "$e1"
check "pass-through: RSA multi-part verifies" \
    eval 'run hsm3 rsa-multi 2 1 && expect 0 1 ok "$z3" "$e3"'

shim_conf 'token=hsm1 fault=flipbit after=2'
check "flipbit after=2: driver runs" run hsm1 ecdsa 5 1
check "flipbit after=2: signatures 1-2 verify" expect 0 1 ok "$e1"
check "flipbit after=2: signatures 3-5 are made but do not verify" \
    eval 'expect 2 4 ok - "$e1"'

shim_conf 'token=hsm1 fault=deverror after=3'
check "deverror after=3: driver runs" run hsm1 ecdsa 5 1
check "deverror after=3: signatures 1-3 verify" expect 0 2 ok "$e1"
check "deverror after=3: calls 4-5 get CKR_DEVICE_ERROR" \
    expect 3 4 rv=0x30 -

shim_conf 'token=hsm2 fault=swapkey after=2 label=evil'
check "swapkey after=2: driver runs" run hsm2 ecdsa 5 1
check "swapkey after=2: signatures 1-2 verify with zsk only" \
    expect 0 1 ok "$z2" "$e2"
check "swapkey after=2: signatures 3-5 verify with evil, not zsk" \
    expect 2 4 ok "$e2" "$z2"

shim_conf 'token=hsm3 fault=swapkey after=1 label=evil'
check "swapkey RSA single-part" \
    eval 'run hsm3 rsa 3 1 && expect 0 0 ok "$z3" "$e3" && expect 1 2 ok "$e3" "$z3"'
check "swapkey RSA multi-part (C_SignUpdate data replayed)" \
    eval 'run hsm3 rsa-multi 3 1 && expect 0 0 ok "$z3" "$e3" && expect 1 2 ok "$e3" "$z3"'

shim_conf 'token=hsm3 fault=flipbit after=1'
check "flipbit on C_SignFinal" \
    eval 'run hsm3 rsa-multi 3 1 && expect 0 0 ok "$z3" && expect 1 2 ok - "$z3"'

shim_conf 'token=hsm1 fault=losesession after=2'
check "losesession after=2: driver runs" run hsm1 ecdsa 5 1
check "losesession after=2: signatures 1-2 verify" expect 0 1 ok "$e1"
check "losesession after=2: call 3 and every later one on that session get CKR_SESSION_HANDLE_INVALID" \
    expect 2 4 rv=0xb3 -

shim_conf 'token=hsm1 fault=flipbit after=1' 'token=hsm1 fault=deverror after=3'
check "two faults on one token: driver runs" run hsm1 ecdsa 5 1
check "two faults: signature 1 verifies" expect 0 0 ok "$e1"
check "two faults: signatures 2-3 are flipped" expect 1 2 ok - "$e1"
check "two faults: calls 4-5 get CKR_DEVICE_ERROR" expect 3 4 rv=0x30 -

shim_conf 'token=hsm2 fault=flipbit after=0' 'token=hsm3 fault=deverror after=0'
check "faults of other tokens leave hsm1 alone" \
    eval 'run hsm1 ecdsa 5 1 && expect 0 4 ok "$e1"'

shim_conf 'token=hsm1 fault=delay ms=300'
t0=$(now_ms)
run hsm1 ecdsa 3 1
t1=$(now_ms)
diag "3 signatures with delay ms=300: $((t1 - t0)) ms"
check "delay: 3 signatures verify" expect 0 2 ok "$e1"
check "delay: 3 signatures took at least 900 ms" test $((t1 - t0)) -ge 900

# Counting under concurrency: 4 threads, 4 sessions, one token counter.
shim_conf 'token=hsm1 fault=flipbit after=40'
check "4 threads, flipbit after=40: driver runs" run hsm1 ecdsa 160 4
check "4 threads: all 160 signatures made" test "$(lines ' ok$')" -eq 160
n=$(count_verifying "$e1")
check "4 threads: exactly 40 verify (got $n)" test "$n" -eq 40

shim_conf 'token=hsm2 fault=swapkey after=25 label=evil'
check "4 threads, swapkey after=25: driver runs" run hsm2 ecdsa 100 4
n=$(count_verifying "$z2")
m=$(count_verifying "$e2")
check "4 threads: exactly 25 verify with zsk, 75 with evil (got $n, $m)" \
    test "$n" -eq 25 -a "$m" -eq 75

shim_conf 'token=hsm1 fault=losesession after=30'
check "4 threads, losesession after=30: driver runs" run hsm1 ecdsa 100 4
check "4 threads: 30 signatures, 70 lost-session errors" \
    test "$(lines ' ok$')" -eq 30 -a "$(lines ' rv=0xb3$')" -eq 70

done_testing
