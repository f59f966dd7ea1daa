#!/usr/bin/env bash
# tests/signer/test_faults.sh - HSM faults while signing, through the
# fault-injecting module tests/shim/libzgshim.so over SoftHSM:
#  - one HSM fails mid-run: the pool takes it out, the others finish, the
#    zone validates and the summary names the HSM taken out;
#  - one HSM signs wrongly (flipped bit) with --verify-every 1: caught,
#    taken out, the zone still validates;
#  - every HSM fails: exit 2, nothing written, a previous OUT untouched;
#  - session copies of the key: an HSM that refuses the copy signs with
#    its token object (logged); an HSM whose copy is another key stops the
#    run before anything is signed (exit 1, HSM named, nothing written),
#    and --hsm-token-keys makes no copy at all;
#  - the patch road (two batches: the changed DS RRsets early, then the
#    rest): HSMs caught flipping bits or signing with another key (checked
#    1 in 5) in either batch, the zone still validates; every HSM failing
#    leaves OUT and P untouched.
ZG_SRC=${ZG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
. "$ZG_SRC/tests/signer/common.sh"
zs_need softhsm2-util ldns-verify-zone kzonecheck zonesign zonehsm zonegen
shim="$ZG_BUILD/tests/shim/libzgshim.so"
[ -f "$shim" ] || { echo "Bail out! no $shim"; exit 1; }
zs_setup 3 13 split
zonegen --origin tld. --delegations 3000 --ds-fraction 0.2 --seed 4 --extras \
    -o "$ZG_TMP/z.zone"
export ZG_MODULE=$shim

fault_run() { # name conf-line... ; signs to $ZG_TMP/name.signed
    local name=$1
    shift
    printf '%s\n' "$@" >"$ZG_TMP/$name.conf"
    ZG_SHIM_CONF="$ZG_TMP/$name.conf" zs_sign 3 --keyset "$ZG_TMP/ks" --quiet \
        ${ZS_EXTRA:-} -o "$ZG_TMP/$name.signed" "$ZG_TMP/z.zone" 2>"$ZG_TMP/$name.err"
}

fault_run deverror "token=hsm2 fault=deverror after=100"
check "hsm2 device error after 100: signed (exit $?)" test -s "$ZG_TMP/deverror.signed"
diag "$(grep -E 'HSM|taken' "$ZG_TMP/deverror.err")"
check "summary: HSM 2 taken out" grep -q "HSM 2 (token hsm2): .*taken out" "$ZG_TMP/deverror.err"
check "deverror: ldns-verify-zone" zs_verify_ldns tld. "$ZG_TMP/deverror.signed"
check "deverror: kzonecheck" zs_verify_knot tld. "$ZG_TMP/deverror.signed"

ZS_EXTRA="--verify-every 1" fault_run flipbit "token=hsm3 fault=flipbit after=50"
check "hsm3 flipped bits, verify every: signed" test -s "$ZG_TMP/flipbit.signed"
diag "$(grep -E 'HSM|taken' "$ZG_TMP/flipbit.err")"
check "summary: HSM 3 taken out" grep -q "HSM 3 (token hsm3): .*taken out" "$ZG_TMP/flipbit.err"
check "flipbit: ldns-verify-zone" zs_verify_ldns tld. "$ZG_TMP/flipbit.signed"
check "flipbit: kzonecheck" zs_verify_knot tld. "$ZG_TMP/flipbit.signed"

echo "previous content" >"$ZG_TMP/all.signed"
fault_run all "token=hsm1 fault=deverror after=30" \
    "token=hsm2 fault=deverror after=30" "token=hsm3 fault=deverror after=30"
rc=$?
diag "$(tail -2 "$ZG_TMP/all.err")"
check "every HSM failing: exit 2 (got $rc)" test "$rc" -eq 2
check "every HSM failing: previous OUT untouched" grep -qx "previous content" "$ZG_TMP/all.signed"
check "every HSM failing: no temporary file left" test -z "$(ls "$ZG_TMP" | grep '\.tmp\.')"
check "every HSM failing: one error line names the cause" grep -q "^zonesign: .*HSM" "$ZG_TMP/all.err"

ZS_EXTRA="--verify-every 1" fault_run nocopy "token=hsm2 fault=nocopy"
check "hsm2 refuses session copies: signed (exit $?)" test -s "$ZG_TMP/nocopy.signed"
diag "$(grep -E 'copy|HSM' "$ZG_TMP/nocopy.err" | head -3)"
check "nocopy: one line names HSM 2 and the token objects" test "$(grep -c '^zonesign: HSM 2 (token hsm2): no session copy of key [kz]sk13 (CKR_ACTION_PROHIBITED); signing with the token objects$' "$ZG_TMP/nocopy.err")" -eq 1
check "nocopy: no other HSM complains" test "$(grep -c 'no session copy' "$ZG_TMP/nocopy.err")" -eq 1
check "nocopy: HSM 2 still signed (summary)" grep -Eq "HSM 2 \(token hsm2\): [1-9][0-9]* signatures" "$ZG_TMP/nocopy.err"
check "nocopy: ldns-verify-zone" zs_verify_ldns tld. "$ZG_TMP/nocopy.signed"
check "nocopy: kzonecheck" zs_verify_knot tld. "$ZG_TMP/nocopy.signed"

if pkcs11-tool --module "$ZG_SOFTHSM_MODULE" --token-label hsm3 --login --pin "$ZG_PIN" \
    --keypairgen --key-type EC:prime256v1 --id ee --label evil --usage-sign >/dev/null 2>&1; then
    echo "previous content" >"$ZG_TMP/badcopy.signed"
    fault_run badcopy "token=hsm3 fault=badcopy label=evil"
    rc=$?
    diag "$(head -3 "$ZG_TMP/badcopy.err")"
    check "hsm3 session copy is another key: exit 1 (got $rc)" test "$rc" -eq 1
    check "badcopy: HSM 3 named with the session copy's probe" grep -q "^zonesign: HSM 3 (token hsm3): key .*session copy of the key: probe signature does not verify" "$ZG_TMP/badcopy.err"
    check "badcopy: previous OUT untouched" grep -qx "previous content" "$ZG_TMP/badcopy.signed"
    check "badcopy: no cache written" test ! -e "$ZG_TMP/badcopy.signed.zsc"
    ZS_EXTRA="--hsm-token-keys" fault_run badcopy2 "token=hsm3 fault=badcopy label=evil"
    check "badcopy with --hsm-token-keys: no copy made, signed (exit $?)" test -s "$ZG_TMP/badcopy2.signed"
    check "badcopy with --hsm-token-keys: kzonecheck" zs_verify_knot tld. "$ZG_TMP/badcopy2.signed"
else
    not_ok "evil key made on hsm3"
fi

# --- the patch road: --previous P with its index.  The changed DS RRsets
# go to the HSMs in a batch of their own while the rest is worked out,
# the other signatures in a second batch: an HSM caught in either batch
# has what it signed in both signed again
unset ZS_EXTRA
zs_sign 3 --keyset "$ZG_TMP/ks" --quiet -o "$ZG_TMP/p0.signed" "$ZG_TMP/z.zone" \
    2>"$ZG_TMP/p0.err"
check "patch road: P signed without faults, with its index" \
    test -s "$ZG_TMP/p0.signed" -a -s "$ZG_TMP/p0.signed.zsp"
zonegen --origin tld. --delegations 3000 --ds-fraction 0.2 --seed 4 --extras \
    --mutate 0.05 --mutate-seed 1 -o "$ZG_TMP/z1.zone"
cp "$ZG_TMP/p0.signed" "$ZG_TMP/p0.copy"
patch_fault() { # name conf-line... ; z1.zone from P to $ZG_TMP/name.signed
    local name=$1
    shift
    printf '%s\n' "$@" >"$ZG_TMP/$name.conf"
    ZONESIGN_TRACE=1 ZG_SHIM_CONF="$ZG_TMP/$name.conf" zs_sign 3 \
        --keyset "$ZG_TMP/ks" --quiet ${ZS_EXTRA:-} --previous "$ZG_TMP/p0.signed" \
        -o "$ZG_TMP/$name.signed" "$ZG_TMP/z1.zone" 2>"$ZG_TMP/$name.err"
}
patch_ok() { # name: patched, with an early DS batch, and it validates
    check "$1: patched" grep -q "previous zone patched" "$ZG_TMP/$1.err"
    check "$1: changed DS RRsets signed in a batch of their own" \
        grep -q "trace: patch: early DS signed" "$ZG_TMP/$1.err"
    check "$1: ldns-verify-zone" zs_verify_ldns tld. "$ZG_TMP/$1.signed"
    check "$1: kzonecheck" zs_verify_knot tld. "$ZG_TMP/$1.signed"
}
ZS_EXTRA="--verify-every 1" patch_fault pflip "token=hsm1 fault=flipbit after=20" \
    "token=hsm2 fault=flipbit after=20"
check "patch road, hsm1 and hsm2 flip bits from the first: signed (exit $?)" \
    test -s "$ZG_TMP/pflip.signed"
diag "$(grep -vE "^zonesign: trace: " "$ZG_TMP/pflip.err")"
check "pflip: HSM 1 and HSM 2 taken out" \
    test "$(grep -cE 'HSM [12] \(token hsm[12]\): .*taken out' "$ZG_TMP/pflip.err")" -eq 2
patch_ok pflip
# another key from its second signature on, one signature in five checked:
# some wrong ones pass unchecked until HSM 3 is caught, in whichever batch
ZS_EXTRA="--verify-every 5" patch_fault pswap "token=hsm3 fault=swapkey after=21 label=evil"
check "patch road, hsm3 signs with another key, 1 in 5 checked: signed (exit $?)" \
    test -s "$ZG_TMP/pswap.signed"
diag "$(grep -E '^zonesign: HSM' "$ZG_TMP/pswap.err")"
check "pswap: HSM 3 taken out" grep -q "HSM 3 (token hsm3): .*taken out" "$ZG_TMP/pswap.err"
patch_ok pswap
all_dead() { # name: patch_fault with every HSM failing after 20 signatures
    patch_fault "$1" "token=hsm1 fault=deverror after=20" \
        "token=hsm2 fault=deverror after=20" "token=hsm3 fault=deverror after=20"
}
echo "previous content" >"$ZG_TMP/pall.signed"
all_dead pall
rc=$?
check "patch road, every HSM failing: exit 2 (got $rc)" test "$rc" -eq 2
check "pall: OUT untouched" grep -qx "previous content" "$ZG_TMP/pall.signed"
check "pall: P untouched" cmp -s "$ZG_TMP/p0.signed" "$ZG_TMP/p0.copy"
check "pall: no temporary file left" test -z "$(ls "$ZG_TMP" | grep '\.tmp\.')"
# the same over an OUT that is another signed zone with its own index and
# cache, and spares of all three to write over: OUT, OUT.zsc and OUT.zsp
# stay as they were (OUT.zsp is only kept as the index's spare once OUT is
# replaced), P's index is not touched, and a run from OUT afterwards
# patches it through that index.  With --no-spare, OUT.zsp goes early (it
# is freed while the run goes on) and the run from OUT afterwards has no
# index: the cache road
all_fail() { # name: every HSM failing over a copy of pflip's OUT, OUT.zsc
    # and OUT.zsp: exit 2, OUT and OUT.zsc as they were, nothing left over
    local n=$1 f rc
    for f in "" .zsc .zsp; do
        cp "$ZG_TMP/pflip.signed$f" "$ZG_TMP/$n.signed$f"
    done
    all_dead "$n"
    rc=$?
    check "$n, every HSM failing over an indexed OUT: exit 2 (got $rc)" test "$rc" -eq 2
    check "$n: OUT untouched" cmp -s "$ZG_TMP/pflip.signed" "$ZG_TMP/$n.signed"
    check "$n: OUT.zsc untouched" cmp -s "$ZG_TMP/pflip.signed.zsc" "$ZG_TMP/$n.signed.zsc"
    check "$n: no temporary file left" test -z "$(ls -A "$ZG_TMP" | grep '\.tmp\.')"
}
sign_from() { # name next: a run from NAME's OUT to NEXT (it signs, and
    # the result validates); its stderr in NEXT.err
    ZONESIGN_TRACE=1 zs_sign 3 --keyset "$ZG_TMP/ks" --quiet --previous "$ZG_TMP/$1.signed" \
        -o "$ZG_TMP/$2.signed" "$ZG_TMP/z1.zone" 2>"$ZG_TMP/$2.err"
    check "$2: a run from that OUT signs (exit $?)" test -s "$ZG_TMP/$2.signed"
    check "$2: kzonecheck" zs_verify_knot tld. "$ZG_TMP/$2.signed"
}
for f in "" .zsc .zsp; do
    cp "$ZG_TMP/pflip.signed$f" "$ZG_TMP/.pall2.signed$f.spare"
done
cp "$ZG_TMP/p0.signed.zsp" "$ZG_TMP/p0.zsp.copy"
all_fail pall2
check "pall2: OUT's index untouched (it describes OUT)" \
    cmp -s "$ZG_TMP/pflip.signed.zsp" "$ZG_TMP/pall2.signed.zsp"
check "pall2: P's index untouched" cmp -s "$ZG_TMP/p0.signed.zsp" "$ZG_TMP/p0.zsp.copy"
sign_from pall2 pall3
check "pall3: patched through OUT's index" \
    grep -q "previous zone patched" "$ZG_TMP/pall3.err"
ZS_EXTRA="--no-spare" all_fail pall4
check "pall4 (--no-spare): OUT's index is not there (no index that does not describe OUT)" \
    test ! -e "$ZG_TMP/pall4.signed.zsp"
sign_from pall4 pall5
check "pall5: it had no index to patch with" \
    grep -q "declined: no usable patch index" "$ZG_TMP/pall5.err"
done_testing
