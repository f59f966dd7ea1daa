#!/usr/bin/env bash
# tests/gate/test_drift.sh - the drift check (CLI.md class `drift`): the
# zone nsd serves on 127.0.0.1, transferred by AXFR, against the last
# release in --release DIR.  Alone (no SIGNED_ZONE): exit 0 when equal
# whatever the order and case of the server's file, 1 with exactly the
# changed, added, removed and re-TTL'd records, a lagging serial, a refused
# or unanswered transfer; 2 for no connection, a non-loopback address, no
# release yet.  With a candidate: drift blocks the release (DIR
# byte-identical, --on-fail runs); no drift, the candidate is released.
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/filekeys.sh"
. "$ZG_SRC/tests/lib/servers.sh"
for t in dnssec-keygen dnssec-signzone dnssec-dsfromkey ldns-read-zone nsd \
    dig python3 zonegate; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
T=$ZG_TMP
R=$T/rel
S=$T/srv
mkdir -p "$R" "$S" "$T/keys" "$T/empty"

# the zone, signed with file keys (no HSM needed here): sign SERIAL OUT
cat >"$T/tld.base" <<'EOF'
$TTL 3600
tld. IN SOA ns1.nic.tld. hostmaster.nic.tld. SERIAL 1800 900 604800 86400
tld. IN NS ns1.nic.tld.
nic.tld. IN A 192.0.2.10
ns1.nic.tld. IN A 192.0.2.53
www.tld. IN A 192.0.2.80
www.tld. IN AAAA 2001:db8::80
mail.tld. IN MX 10 mx.tld.
mx.tld. IN A 192.0.2.25
a.tld. 172800 IN NS ns1.a.tld.
ns1.a.tld. 172800 IN A 192.0.2.1
b.tld. 172800 IN NS ns.example.
EOF
zg_filekeys "$T" tld.
sign() { zg_filesign "$T/tld.base" "$1" "$2"; } # sign SERIAL OUT
sign 1 "$T/s1.zone"
sign 2 "$T/s2.zone"
sign 3 "$T/s3.zone"
check "zone signed with serials 1, 2 and 3" [ -s "$T/s1.zone" -a -s "$T/s2.zone" -a -s "$T/s3.zone" ]

# zonegate, its stdout and stderr kept apart: zg NAME ARGS... sets $rc
zg() {
    local n=$1
    shift
    zonegate "$@" >"$T/$n.out" 2>"$T/$n.err"
    rc=$?
}
# exit 2 with one line on stderr starting "zonegate:", nothing on stdout
# and no --json file: err2 DESC PATTERN ARGS...
err2() {
    local desc=$1 pat=$2
    shift 2
    rm -f "$T/e.json"
    zg e "$@" --json "$T/e.json"
    if [ "$rc" -eq 2 ] && [ "$(wc -l <"$T/e.err")" -eq 1 ] &&
        grep -q "^zonegate: .*$pat" "$T/e.err" && [ ! -s "$T/e.out" ] &&
        [ ! -e "$T/e.json" ]; then
        ok "$desc: exit 2, one line: $(cat "$T/e.err")"
    else
        not_ok "$desc: exit $rc, stderr: $(head -3 "$T/e.err")"
    fi
}
# the drift findings of a --json report, one "owner type message" a line
findings() {
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
for p in d["problems"]:
    assert p["class"] == "drift" and p["ede"] == 0, p
    print(p["owner"], p["type"], p["message"])' "$1" | sort
}

# ---- the first release: mode 2, nothing to drift from yet ----
P=$(zg_free_port)
zg first --origin tld. --ds "$T/ds.txt" --release "$R" \
    --served "127.0.0.1#$P" "$T/s1.zone"
check "no release yet: the candidate passes and is released (exit $rc)" \
    [ "$rc" -eq 0 ]
check "... the report says drift was not checked" \
    grep -q "^served by 127.0.0.1#$P: drift not checked: no release of tld. in $R yet" "$T/first.out"
check "... released" cmp -s "$R/tld.zone" "$T/s1.zone"
err2 "alone, no release in DIR yet" "no release of tld\\. in $T/empty yet" \
    --origin tld. --release "$T/empty" --served "127.0.0.1#$P"

# ---- served == released, in another order and letter case ----
# ldns-read-zone: one line per record; tac puts the SOA last; upper case
# owners (the NSEC3 hashes are upper case already in its output)
ldns-read-zone "$R/tld.zone" | tac | sed 's/^www\.tld\./WWW.TLD./' >"$S/tld.zone"
ZG_NSD_XFR=1 zg_nsd_start "$T/nsd" "$P" "tld.=$S/tld.zone"
check "nsd serves tld. on 127.0.0.1#$P" zg_wait_port "$P" tld.
NSD1=$ZG_NSD_PID
zg same --origin tld. --release "$R" --served "127.0.0.1#$P" --json "$T/same.json"
check "served == released (other order and case): exit 0 (got $rc)" [ "$rc" -eq 0 ]
check "... first line PASS" \
    grep -q "^zonegate: PASS tld\\. serial 1: .* served by 127.0.0.1#$P: same as the last release, 0 problems$" <(head -1 "$T/same.out")
check "... --json: pass, no problems, the counts of both sides" python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert d["verdict"] == "pass" and d["zone"] == "tld." and d["serial"] == 1, d
assert d["problems"] == [] and d["counts"]["problems"] == 0, d
x = d["drift"]
assert x["checked"] and x["served_serial"] == 1 and x["released_serial"] == 1, x
assert x["served_records"] == x["released_records"] == d["counts"]["records"] > 30, x
assert x["differences"] == 0, x' "$T/same.json"
check "... the release directory was only read" [ "$(ls "$R")" = "$(printf 'history.jsonl\ntld.zone')" ]

# ---- a record changed, one added, one removed, a TTL changed ----
sed -e 's/\t192\.0\.2\.80$/\t192.0.2.81/' -e '/\tMX\t/d' \
    -e 's/^mx\.tld\.\t3600\tIN\tA\t/mx.tld.\t300\tIN\tA\t/' \
    "$S/tld.zone" >"$S/drift.zone"
echo 'new.tld. 3600 IN TXT "not released"' >>"$S/drift.zone"
check "the drifted file has 4 edits (6 lines of diff)" \
    [ "$(diff "$S/tld.zone" "$S/drift.zone" | grep -c '^[<>]')" -eq 6 ]
cp "$S/drift.zone" "$S/tld.zone"
zg_nsd_reload
zg drift --origin tld. --release "$R" --served "127.0.0.1#$P" --json "$T/drift.json"
check "changed/added/removed/TTL on the server: exit 1 (got $rc)" [ "$rc" -eq 1 ]
check "... first line FAIL with drift" \
    grep -q "^zonegate: FAIL tld\\. serial 1: .*: drift from the last release, 5 problems$" <(head -1 "$T/drift.out")
check "... problem drift: 5 (EDE 0)" grep -q '^problem drift: 5 (EDE 0)$' "$T/drift.out"
cat >"$T/want" <<'EOF'
mail.tld. MX released but not served: 3600 10 mx.tld.
mx.tld. A TTL differs: served 300, released 3600: 192.0.2.25
new.tld. TXT served but not released: 3600 "not released"
www.tld. A released but not served: 3600 192.0.2.80
www.tld. A served but not released: 3600 192.0.2.81
EOF
findings "$T/drift.json" >"$T/got"
if cmp -s "$T/want" "$T/got"; then
    ok "... exactly those five drift findings"
else
    not_ok "... exactly those five drift findings"
    diag "$(diff "$T/want" "$T/got")"
fi
check "... --json verdict fail, counts.classes {drift: 5}" python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert d["verdict"] == "fail" and d["counts"]["classes"] == {"drift": 5}, d
assert d["drift"]["differences"] == 5 and d["drift"]["unlisted"] == 0, d' "$T/drift.json"
check "... the examples are capped by --examples" bash -c \
    "zonegate --origin tld. --release '$R' --served 127.0.0.1#$P --examples 2 |
     grep -c '^  drift: ' | grep -qx 2"

# ---- another serial served: the server lags a release behind ----
zg rel2 --origin tld. --ds "$T/ds.txt" --release "$R" "$T/s2.zone"
check "serial 2 released without --served (exit $rc)" [ "$rc" -eq 0 ]
ldns-read-zone "$T/s1.zone" >"$S/tld.zone"
zg_nsd_reload
zg lag --origin tld. --release "$R" --served "127.0.0.1#$P" --json "$T/lag.json"
check "server still on serial 1, release 2: exit 1 (got $rc)" [ "$rc" -eq 1 ]
check "... a drift finding names both serials" \
    grep -q '^  drift: tld\. SOA key 0 alg 0: served serial 1, last release serial 2$' "$T/lag.out"
check "... --json: served_serial 1, released_serial 2" python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
x = d["drift"]
assert d["serial"] == 2 and x["served_serial"] == 1 and x["released_serial"] == 2, x
assert any(p["message"] == "served serial 1, last release serial 2" and p["type"] == "SOA"
           for p in d["problems"]), d' "$T/lag.json"
ldns-read-zone "$T/s2.zone" >"$S/tld.zone"
zg_nsd_reload
zg caught --origin tld. --release "$R" --served "127.0.0.1#$P"
check "the server catches up: exit 0 (got $rc)" [ "$rc" -eq 0 ]

# ---- the transfer refused, or never answered ----
P2=$(zg_free_port)
zg_nsd_start "$T/nsd2" "$P2" "tld.=$S/tld.zone" # no provide-xfr
NSD2=$ZG_NSD_PID
ZG_NSD_PID=$NSD1
zg refused --origin tld. --release "$R" --served "127.0.0.1#$P2"
check "AXFR refused: exit 1 (got $rc)" [ "$rc" -eq 1 ]
check "... as drift, with the server's answer" \
    grep -q "^  drift: tld\\. AXFR key 0 alg 0: zone transfer from 127.0.0.1#$P2 failed: the server answered REFUSED$" "$T/refused.out"
zg_stop "$NSD2"
P3=$(zg_free_port)
# fake_server PORT PYTHON: a loopback server made of the given Python lines
# (its socket is s, listening), started in the background and stopped at
# exit; $FAKE is its process id
fake_server() {
    python3 -c 'import socket,sys,time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
'"$2" "$1" &
    FAKE=$!
    zg_on_exit "kill $FAKE 2>/dev/null"
    sleep 0.5
}
# timed_zg NAME ARGS...: zg, and its whole-second duration in $took
timed_zg() {
    local t0
    t0=$(date +%s)
    zg "$@"
    took=$(($(date +%s) - t0))
}
# accepts connections (the kernel does) and never answers
fake_server "$P3" 'time.sleep(60)'
timed_zg mute --origin tld. --release "$R" --served "127.0.0.1#$P3" --served-timeout 1
check "no answer: exit 1 (got $rc) within the timeout ($took s)" \
    [ "$rc" -eq 1 -a "$took" -le 4 ]
check "... as drift: no data" \
    grep -q "^  drift: tld\\. AXFR .*failed: no data for 1 s after 0 records$" "$T/mute.out"
kill "$FAKE" 2>/dev/null
# answers, but a byte every half second: each wait is short, the whole
# transfer would take minutes; --served-limit ends it
P4=$(zg_free_port)
fake_server "$P4" 'c, _ = s.accept(); c.recv(4096); c.sendall(bytes([2, 0]))
for i in range(120):
    c.sendall(b"\0"); time.sleep(0.5)'
timed_zg slow --origin tld. --release "$R" --served "127.0.0.1#$P4" --served-timeout 2 \
    --served-limit 3
check "a server sending a byte every 0.5 s: exit 1 (got $rc) within --served-limit 3 ($took s)" \
    [ "$rc" -eq 1 -a "$took" -le 6 ]
check "... as drift: not finished within the limit" \
    grep -q "^  drift: tld\\. AXFR .*failed: the transfer did not finish within 3 s (--served-limit) after 0 records$" "$T/slow.out"
kill "$FAKE" 2>/dev/null

# ---- errors: exit 2, one line ----
for a in 192.0.2.1 10.0.0.1#53 ::ffff:127.0.0.1 2001:db8::1#$P; do
    err2 "non-loopback $a" "only a loopback address" \
        --origin tld. --release "$R" --served "$a"
done
for a in localhost 127.0.0.1#0 127.0.0.1#99999 '127.0.0.1#' '#53'; do
    err2 "bad --served '$a'" "--served " --origin tld. --release "$R" --served "$a"
done
err2 "--served without --release" "needs --release" --origin tld. \
    --served "127.0.0.1#$P"
err2 "--served-timeout 0" "served-timeout" --origin tld. --release "$R" \
    --served "127.0.0.1#$P" --served-timeout 0
err2 "--served-limit 0" "served-limit" --origin tld. --release "$R" \
    --served "127.0.0.1#$P" --served-limit 0
err2 "--served-limit without --served" "need --served" --origin tld. \
    --ds "$T/ds.txt" --release "$R" --served-limit 5 "$T/s1.zone"
err2 "--ds without a SIGNED_ZONE" "need a SIGNED_ZONE" --origin tld. \
    --ds "$T/ds.txt" --release "$R" --served "127.0.0.1#$P"
err2 "::1 is loopback: only the connection fails" "cannot connect to ::1#$P3" \
    --origin tld. --release "$R" --served "::1#$P3"

# ---- mode 2: drift blocks the release ----
# the last release (serial 2) with one record changed and one added
ldns-read-zone "$R/tld.zone" | sed 's/\t192\.0\.2\.80$/\t192.0.2.81/' >"$S/tld.zone"
echo 'new.tld. 3600 IN TXT "not released"' >>"$S/tld.zone"
zg_nsd_reload
before=$(zg_dir_state "$R")
rm -f "$T/hook.in"
zg m2 --origin tld. --ds "$T/ds.txt" --release "$R" --served "127.0.0.1#$P" \
    --on-fail "cat >'$T/hook.in'" --json "$T/m2.json" "$T/s3.zone"
check "candidate 3 is fine but the server drifted: exit 1 (got $rc)" [ "$rc" -eq 1 ]
check "... FAIL, as drift only" bash -c "head -1 '$T/m2.out' | grep -q '^zonegate: FAIL tld\\. serial 3: ' &&
    [ \"\$(grep '^problem ' '$T/m2.out')\" = 'problem drift: 3 (EDE 0)' ]"
check "... the release dir is byte-identical" [ "$(zg_dir_state "$R")" = "$before" ]
check "... --on-fail got the report" grep -q '^problem drift: ' "$T/hook.in"
check "... --json lists the drift" python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert d["verdict"] == "fail" and d["serial"] == 3, d
assert d["counts"]["classes"] == {"drift": 3} and d["drift"]["released_serial"] == 2, d' "$T/m2.json"
zg_stop "$NSD1"
zg m2err --origin tld. --ds "$T/ds.txt" --release "$R" --served "127.0.0.1#$P" \
    --on-fail "touch '$T/hook2'" "$T/s3.zone"
check "server down: exit 2, one line (got $rc: $(cat "$T/m2err.err"))" \
    bash -c "[ $rc -eq 2 ] && [ \$(wc -l <'$T/m2err.err') -eq 1 ] &&
        grep -q '^zonegate: --served: cannot connect to 127.0.0.1#$P: ' '$T/m2err.err'"
check "... DIR byte-identical, no hook" \
    bash -c "[ '$(zg_dir_state "$R")' = '$before' ] && [ ! -e '$T/hook2' ]"
err2 "alone, server down" "cannot connect to 127.0.0.1#$P: " \
    --origin tld. --release "$R" --served "127.0.0.1#$P"

# ---- mode 2: no drift, the candidate is released ----
cp "$R/tld.zone" "$S/tld.zone"
P4=$(zg_free_port)
ZG_NSD_XFR=1 zg_nsd_start "$T/nsd3" "$P4" "tld.=$S/tld.zone"
zg m2ok --origin tld. --ds "$T/ds.txt" --release "$R" --served "127.0.0.1#$P4" \
    "$T/s3.zone"
check "the server serves the last release: candidate 3 released (exit $rc)" \
    [ "$rc" -eq 0 ]
check "... PASS, 0 differences reported" bash -c "head -1 '$T/m2ok.out' | grep -q '^zonegate: PASS tld\\. serial 3: ' &&
    grep -q '^served by 127.0.0.1#$P4: serial 2, [0-9]* records; last release .*: serial 2, [0-9]* records; 0 differences$' '$T/m2ok.out'"
check "... tld.zone is the candidate" cmp -s "$R/tld.zone" "$T/s3.zone"
check "... history has 3 lines" [ "$(wc -l <"$R/history.jsonl")" -eq 3 ]
done_testing
