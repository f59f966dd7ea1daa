#!/usr/bin/env bash
# scripts/commission qualifies signers: zonesign (through SoftHSM) and
# dnssec-signzone (file keys) pass; a signer that goes wrong the May 2026
# way (two thirds of its signatures from unpublished keys, or zonesign over
# HSMs that switch keys mid-run) fails, and the JUnit file says which zones
# and why.  With --incumbent, the two signers' outputs are compared.
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/softhsm.sh"
zg_tmpdir
c="$ZG_SRC/scripts/commission"
w="$ZG_SRC/tests/commission"

junit_ok() { # file: valid XML, N test cases, no failures
    python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
cases = s.findall("testcase")
bad = [c for c in cases if c.find("failure") is not None]
sys.exit(0 if len(cases) >= 10 and not bad else 1)
PY
}
junit_failures() { # file: prints "classname name: message" per failure
    python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
for c in ET.parse(sys.argv[1]).getroot().findall("testcase"):
    f = c.find("failure")
    if f is not None:
        print(c.get("classname"), c.get("name") + ":", f.get("message"), "|", (f.text or "").replace("\n", " ")[:400])
PY
}

"$c" --signer "$w/sign-zonesign.sh" --matrix quick --work "$ZG_TMP/zs" \
    --junit "$ZG_TMP/zs.xml" >"$ZG_TMP/zs.out" 2>&1
rc=$?
check "commissioning zonesign passes (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(tail -15 "$ZG_TMP/zs.out")"
check "its JUnit file has every zone and step, none failed" junit_ok "$ZG_TMP/zs.xml"
check "the matrix covers algorithms 8 and 13, opt-out on and off, \$INCLUDE" \
    bash -c "grep -q alg8-optout '$ZG_TMP/zs.out' && grep -q alg13-nooptout '$ZG_TMP/zs.out' && grep -q include '$ZG_TMP/zs.out'"
check "and a ZSK rollover, step by step" grep -q 'zsk-rollover *step3 *PASS' "$ZG_TMP/zs.out"

"$c" --signer "$w/sign-dnssec-signzone.sh" --matrix quick --work "$ZG_TMP/bind" \
    --junit "$ZG_TMP/bind.xml" >"$ZG_TMP/bind.out" 2>&1
rc=$?
check "commissioning dnssec-signzone passes (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(tail -15 "$ZG_TMP/bind.out")"
check "its JUnit file is clean" junit_ok "$ZG_TMP/bind.xml"

ZG_SPOIL=1 "$c" --signer "$w/sign-dnssec-signzone.sh" --matrix quick \
    --rollover-steps 0 --work "$ZG_TMP/spoil" --junit "$ZG_TMP/spoil.xml" \
    >"$ZG_TMP/spoil.out" 2>&1
rc=$?
check "a signer spoiling two thirds of its signatures fails (exit $rc)" test "$rc" -eq 1
fails=$(junit_failures "$ZG_TMP/spoil.xml")
n=$(grep -c . <<<"$fails")
check "the JUnit file names every zone it failed on ($n of 8)" test "$n" -eq 8
check "and why: signatures by keys that are not published" \
    bash -c "grep -q 'unknown-key' <<<\"\$0\"" "$fails"

cat >"$ZG_TMP/shim.conf" <<CONF
token=hsm2 fault=swapkey after=5 label=evil
token=hsm3 fault=swapkey after=5 label=evil
CONF
# plant the other key pair on hsm2 and hsm3 (same algorithm, label "evil")
mkdir -p "$ZG_TMP/may"
ZG_WORK=$ZG_TMP/may/x ZG_IN=/dev/null ZG_OUT=/dev/null ZG_ORIGIN=tld. ZG_ALG=13 \
    "$w/sign-zonesign.sh" >/dev/null 2>&1 || true
export SOFTHSM2_CONF=$ZG_TMP/may/keys-zonesign/tokens-dir/softhsm2.conf
for i in 2 3; do
    zonehsm --hsm "pkcs11:token=hsm$i?module-path=$ZG_SOFTHSM_MODULE&pin-source=file:$ZG_TMP/may/keys-zonesign/tokens-dir/pin" \
        --keyset "$ZG_TMP/may/evil$i.keyset" keygen --zone tld. --label evil \
        --alg 13 --role zsk >/dev/null
done
unset SOFTHSM2_CONF
ZG_SHIM_CONF=$ZG_TMP/shim.conf "$c" --signer "$w/sign-zonesign.sh" \
    --matrix quick --algorithms 13 --rollover-steps 0 --work "$ZG_TMP/may" \
    --junit "$ZG_TMP/may.xml" >"$ZG_TMP/may.out" 2>&1
rc=$?
check "zonesign over HSMs that switch keys mid-run fails commissioning (exit $rc)" test "$rc" -eq 1
fails=$(junit_failures "$ZG_TMP/may.xml")
check "the JUnit file says which zones and why (bad signatures)" \
    bash -c "grep -Eq 'bogus-signature|HSM' <<<\"\$0\"" "$fails"
diag "$(head -2 <<<"$fails")"

"$c" --signer "$w/sign-zonesign.sh" --incumbent "$w/sign-zonesign.sh" \
    --matrix quick --algorithms 13 --rollover-steps 0 --work "$ZG_TMP/inc" \
    >"$ZG_TMP/inc.out" 2>&1
check "candidate beside an incumbent with the same keys: same data, keys, NSEC3" test $? -eq 0
"$c" --signer "$w/sign-zonesign.sh" --incumbent "$w/sign-dnssec-signzone.sh" \
    --matrix quick --algorithms 13 --rollover-steps 0 --work "$ZG_TMP/inc2" \
    >"$ZG_TMP/inc2.out" 2>&1
rc=$?
check "beside an incumbent with other keys the comparison fails (exit $rc)" test "$rc" -eq 1
check "naming the DNSKEY RRsets" grep -q 'DNSKEY RRsets differ' "$ZG_TMP/inc2.out"
done_testing
