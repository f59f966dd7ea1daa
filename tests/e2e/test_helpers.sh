#!/usr/bin/env bash
# zonesign's signing helpers (hsm/helper.c): on the full road every pool
# thread signs through a process of its own.  What must hold:
#   - the helpers' signatures are the in-process signatures (RSA is
#     deterministic: the outputs are byte for byte the same);
#   - a helper whose key copy is another key stops the run before anything
#     is signed (exit 1, the HSM named, no output);
#   - a helper that starts signing wrongly after its proof is caught by the
#     pool's sampling like an in-process session; the HSM is taken out;
#   - a helper that cannot sign, or dies mid-run, costs speed, not the
#     zone: its thread signs in zonesign's own process;
#   - no PIN on a helper's command line or in its environment;
#   - a helper started by hand refuses.
# The faults come from the fault-injection module (tests/shim), most of
# them with in=helper: only the helpers see them.
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
command -v softhsm2-util >/dev/null || skip_all "softhsm2-util missing"
command -v dnssec-verify >/dev/null || skip_all "dnssec-verify missing"
zg_tmpdir
T=$ZG_TMP
shim=$ZG_BUILD/tests/shim/libzgshim.so
zg_softhsm_init "$T/tok" 3 || { not_ok "tokens made"; done_testing; }
mapfile -t plain < <(zg_hsm_pinfile_args 3)
mapfile -t faulty < <(zg_hsm_pinfile_args 3 "$shim")
ks=$T/ec.keyset
rks=$T/rsa.keyset
if ! zonehsm "${plain[@]}" --keyset "$ks" keygen --zone tld. --label ksk --alg 13 --role ksk >/dev/null ||
    ! zonehsm "${plain[@]}" --keyset "$ks" keygen --zone tld. --label zsk --alg 13 --role zsk >/dev/null ||
    ! zonehsm "${plain[@]}" --keyset "$rks" keygen --zone tld. --label rksk --alg 8 --role ksk >/dev/null ||
    ! zonehsm "${plain[@]}" --keyset "$rks" keygen --zone tld. --label rzsk --alg 8 --role zsk >/dev/null ||
    ! zonehsm --hsm "$(zg_uri_pinfile 3)" --keyset "$T/evil.keyset" keygen --zone tld. \
        --label evil --alg 13 --role zsk >/dev/null; then
    not_ok "keys for the helper tests"
    done_testing
fi
zonegen --delegations 3000 --ds-fraction 0.3 --seed 5 --serial 7 >"$T/in.zone"
when=(--inception 20261201000000 --expiration 20261231000000)

# How many signing helpers the summary says were started and proven.
helpers_of() { sed -n 's/.*phases: .*; \([0-9]*\) signing helpers\{0,1\}.*/\1/p' "$1"; }
# Signatures HSM N made, from the summary.
sigs_of() { sed -n "s/^zonesign: HSM $2 (token hsm$2): \([0-9]*\) signatures.*/\1/p" "$1"; }

# 1. The same signatures either way (RSA PKCS#1 v1.5 is deterministic).
zonesign "${plain[@]}" --keyset "$rks" "${when[@]}" -o "$T/rsa-h.zone" "$T/in.zone" 2>"$T/rsa-h.err"
check "RSA zone signed through the helpers (exit $?)" test -s "$T/rsa-h.zone"
check "two signing helpers by default (one per pool thread)" test "$(helpers_of "$T/rsa-h.err")" = 2 \
    || diag "$(cat "$T/rsa-h.err")"
zonesign "${plain[@]}" --keyset "$rks" "${when[@]}" --signing-helpers 0 --threads 2 \
    -o "$T/rsa-0.zone" "$T/in.zone" 2>"$T/rsa-0.err"
check "--signing-helpers 0: none" test "$(helpers_of "$T/rsa-0.err")" = 0
check "helpers and in-process give the same zone, byte for byte" cmp -s "$T/rsa-h.zone" "$T/rsa-0.zone"
zonesign "${plain[@]}" --keyset "$rks" "${when[@]}" --threads 3 --signing-helpers 1 \
    -o "$T/rsa-1.zone" "$T/in.zone" 2>"$T/rsa-1.err"
check "--threads 3 --signing-helpers 1: one helper, the same zone" \
    test "$(helpers_of "$T/rsa-1.err")" = 1 -a -n "$(cmp "$T/rsa-1.zone" "$T/rsa-0.zone" && echo same)"
check "every helper ended cleanly (status 0) when the pool closed it" \
    test "$(grep -c 'signing helper .* ended with status' "$T/rsa-h.err" "$T/rsa-1.err" | awk -F: '{s += $2} END {print s}')" -eq 0
for i in 1 2 3; do
    n=$(sigs_of "$T/rsa-h.err" $i)
    check "HSM $i signed its share through the helpers ($n)" test "${n:-0}" -gt 500
done

# 2. ECDSA through the helpers: dnssec-verify checks every signature.
zonesign "${plain[@]}" --keyset "$ks" -o "$T/ec.zone" "$T/in.zone" 2>"$T/ec.err"
check "ECDSA zone through two helpers" test "$(helpers_of "$T/ec.err")" = 2
check "dnssec-verify: every signature of it" dnssec-verify -q -o tld. "$T/ec.zone"

# The cases below sign through the shim with a fault file.
run_faulty() { # name conf [options]: runs zonesign into cand.zone
    printf '%s\n' "$2" >"$T/shim.conf"
    rm -f "$T/cand.zone"
    ZG_SHIM_CONF=$T/shim.conf zonesign "${faulty[@]}" --keyset "$ks" "${@:3}" \
        -o "$T/cand.zone" "$T/in.zone" 2>"$T/$1.err"
}

# 3. A helper's session copy is another key: the proof of the helper's
# keys fails; nothing is signed or written.
cp "$T/ec.zone" "$T/cand.zone.before"
run_faulty badcopy "token=hsm3 fault=badcopy label=evil in=helper"
rc=$?
check "a helper whose key copy is another key: exit 1 (got $rc)" test $rc -eq 1
check "the mismatch line names HSM 3 and the helper's copy" \
    grep -q "^zonesign: HSM 3 (token hsm3): key .*signing helper's copy of the key: probe signature does not verify" "$T/badcopy.err"
check "and nothing is written" test ! -e "$T/cand.zone"
# The same fault outside the helpers is the pool's own proof, as before.
run_faulty badcopy-main "token=hsm3 fault=badcopy label=evil in=main"
check "the same fault in zonesign's own process: exit 1 too" test $? -eq 1

# 4. Every helper signature of HSM 1 flipped after 20: sampled (here:
# every signature) and caught; HSM 1 out; the zone verifies.
run_faulty flip "token=hsm1 fault=flipbit after=20 in=helper" --verify-every 1
check "flipped helper signatures: zonesign finishes on HSMs 2 and 3 (exit $?)" test -s "$T/cand.zone"
check "HSM 1 taken out: its signature does not verify" \
    grep -q "HSM 1 (token hsm1) taken out of rotation: key .*does not verify against the DNSKEY" "$T/flip.err"
check "dnssec-verify: every signature written verifies" dnssec-verify -q -o tld. "$T/cand.zone"

# 5. A helper's HSM refusing from its first signature: the helper is not
# used (logged), zonesign signs in its own process on all three HSMs.
run_faulty deverror "token=hsm2 fault=deverror in=helper"
check "helpers that cannot sign: zonesign still signs (exit $?)" test -s "$T/cand.zone"
check "each helper logged as not used, with the reason" \
    test "$(grep -c 'signing helper [12] not used (HSM 2: key .*CKR_DEVICE_ERROR); its worker signs in this process' "$T/deverror.err")" -eq 2
check "no helper left" test "$(helpers_of "$T/deverror.err")" = 0
check "HSM 2 stays in rotation (the device is fine in zonesign's process)" \
    test "$(sigs_of "$T/deverror.err" 2)" -gt 500
check "dnssec-verify: the zone" dnssec-verify -q -o tld. "$T/cand.zone"

# 6. Helpers dying mid-run (the driver takes the process down at their
# 60th signature on HSM 2): the rest is signed in zonesign's process.
run_faulty exit "token=hsm2 fault=exit after=60 in=helper"
check "helpers dying mid-run: zonesign finishes (exit $?)" test -s "$T/cand.zone"
check "both helpers started, both lost, each logged" \
    test "$(helpers_of "$T/exit.err")" = 2 -a \
    "$(grep -c 'signing helper [12] lost; its worker signs in this process from now on' "$T/exit.err")" -eq 2
check "no HSM taken out for a helper's death" test "$(grep -c 'taken out' "$T/exit.err")" -eq 0
check "dnssec-verify: the zone" dnssec-verify -q -o tld. "$T/cand.zone"

# 6b. A helper whose HSM hangs at login: not ready within 20 s, it is
# ended, and its thread signs in zonesign's own process (so does the next
# helper's: it starts only when the one before is ready or given up).
run_faulty stuck "token=hsm3 fault=stuck in=helper"
check "a helper stuck at login: zonesign finishes (exit $?)" test -s "$T/cand.zone"
check "each helper given up after 20 s, logged" \
    test "$(grep -c 'signing helper [12] not used (not ready after 20 s); its worker signs in this process' "$T/stuck.err")" -eq 2
check "no helper process left behind" test -z "$(pgrep -f -- '--hsm-signing-helper')"
check "dnssec-verify: the zone" dnssec-verify -q -o tld. "$T/cand.zone"

# 7. No PIN where other users can read it: the URIs (here with
# pin-value) reach a helper over its socket, never on its command line or
# in its environment.  A slowed helper is looked at through /proc.
pinuri=()
for i in 1 2 3; do
    pinuri+=(--hsm "pkcs11:token=hsm$i?module-path=$shim&pin-value=$ZG_PIN")
done
printf 'token=hsm1 fault=delay ms=3 in=helper\n' >"$T/shim.conf"
ZG_SHIM_CONF=$T/shim.conf zonesign "${pinuri[@]}" --keyset "$ks" --quiet \
    -o "$T/slow.zone" "$T/in.zone" 2>"$T/slow.err" &
zpid=$!
seen=0 leak=0
for _ in $(seq 1 400); do
    for c in $(pgrep -P $zpid 2>/dev/null); do
        if tr '\0' ' ' </proc/$c/cmdline 2>/dev/null | grep -q -- '--hsm-signing-helper'; then
            seen=1
            grep -q -e 'pkcs11:' -e 'pin-value' /proc/$c/cmdline /proc/$c/environ 2>/dev/null && leak=1
        fi
    done
    [ $seen -eq 1 ] && break
    sleep 0.05
done
wait $zpid
check "a running helper was seen" test $seen -eq 1
check "no URI (so no PIN) on its command line or in its environment" test $leak -eq 0
check "the run with pin-value URIs finishes" test -s "$T/slow.zone"
check "no pin-value in zonesign's messages" test "$(grep -c 'pin-value' "$T/slow.err")" -eq 0

# 8. A helper started by hand refuses: no socket.
zonesign --hsm-signing-helper </dev/null >"$T/hand.out" 2>"$T/hand.err"
rc=$?
check "a helper started by hand: exit 2 (got $rc)" test $rc -eq 2
check "and says why" grep -q 'not a socket' "$T/hand.err"
# 9. A bad count is a usage error, before anything is opened.
zonesign "${plain[@]}" --keyset "$ks" --signing-helpers many -o "$T/bad.zone" "$T/in.zone" 2>"$T/bad.err"
rc=$?
check "--signing-helpers many: exit 2 (got $rc), one line, no output" \
    test $rc -eq 2 -a "$(cat "$T/bad.err")" = "zonesign: bad --signing-helpers" -a ! -e "$T/bad.zone"
done_testing
