#!/usr/bin/env bash
# tests/gate/test_history_integrity.sh - the release directory must be what
# the gate's history says it is (CHECKS.md "Release directory"): each
# history line records the SHA-256 of the zone file it placed; a file
# edited or removed behind the gate's back makes the next run with
# --release DIR exit 2 (one line naming the file, the history line and
# the recorded serial), with or without a candidate, DIR untouched, no
# --on-fail hook.  Lines without a digest (older releases) are not checked.
. "$ZG_SRC/tests/lib/tap.sh"
. "$ZG_SRC/tests/lib/filekeys.sh"
. "$ZG_SRC/tests/lib/servers.sh"
for t in dnssec-keygen dnssec-signzone dnssec-dsfromkey ldns-read-zone nsd \
    dig python3 sha256sum zonegate; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
T=$ZG_TMP
R=$T/rel
mkdir -p "$R" "$T/keys" "$T/srv"

cat >"$T/tld.base" <<'EOF'
$TTL 3600
tld. IN SOA ns1.nic.tld. hostmaster.nic.tld. SERIAL 1800 900 604800 86400
tld. IN NS ns1.nic.tld.
ns1.nic.tld. IN A 192.0.2.53
www.tld. IN A 192.0.2.80
a.tld. 172800 IN NS ns1.a.tld.
ns1.a.tld. 172800 IN A 192.0.2.1
EOF
zg_filekeys "$T" tld.
sign() { zg_filesign "$T/tld.base" "$1" "$T/s$1.zone"; } # sign SERIAL
for s in 1 2 3 4 5; do sign $s; done
check "zone signed with serials 1 to 5" \
    [ -s "$T/s1.zone" -a -s "$T/s3.zone" -a -s "$T/s5.zone" ]

# zonegate, stdout and stderr apart: zg NAME ARGS... sets $rc
zg() {
    local n=$1
    shift
    zonegate "$@" >"$T/$n.out" 2>"$T/$n.err"
    rc=$?
}
rel() { # rel NAME SERIAL: release sSERIAL.zone into R
    zg "$1" --origin tld. --ds "$T/ds.txt" --release "$R" "$T/s$2.zone"
}
# the "sha256" of history line N (1-based) of R
line_sha() { sed -n "${1}p" "$R/history.jsonl" | python3 -c 'import json,sys
print(json.loads(sys.stdin.read()).get("sha256", "-"))'; }
file_sha() { sha256sum "$1" | cut -d' ' -f1; }
state() { zg_dir_state "$R"; }
# exit 2 with exactly one stderr line matching PATTERN (grep -E), nothing
# on stdout, no --json file, no hook run, DIR as before:
# refused DESC PATTERN ARGS...
refused() {
    local desc=$1 pat=$2 before
    shift 2
    before=$(state)
    rm -f "$T/e.json" "$T/hook"
    zg e "$@" --json "$T/e.json" --on-fail "touch '$T/hook'"
    if [ "$rc" -eq 2 ] && [ "$(wc -l <"$T/e.err")" -eq 1 ] &&
        grep -Eq "^zonegate: $pat\$" "$T/e.err"; then
        ok "$desc: exit 2, one line: $(cat "$T/e.err")"
    else
        not_ok "$desc: exit $rc, stderr: $(head -3 "$T/e.err")"
    fi
    check "... nothing on stdout, no --json report" \
        [ ! -s "$T/e.out" -a ! -e "$T/e.json" ]
    check "... no --on-fail hook run" [ ! -e "$T/hook" ]
    check "... DIR byte-identical (names, sizes, modes, times, contents)" \
        [ "$(state)" = "$before" ]
}
# the message for history line LINE, serial SERIAL, reason REASON (ERE)
msg() {
    printf '%s' "$R/tld\\.zone is not the release recorded in $R/history\\.jsonl:$1 \\(serial $2\\): $3; nothing released"
}
differs="its SHA-256 differs, changed outside the gate"

# ---- the digest is recorded ----
rel r1 1
check "serial 1 released (exit $rc)" [ "$rc" -eq 0 ]
check "history line 1 has a sha256 equal to sha256sum of DIR/tld.zone" \
    [ "$(line_sha 1)" = "$(file_sha "$R/tld.zone")" ]
check "... which is the candidate's" [ "$(line_sha 1)" = "$(file_sha "$T/s1.zone")" ]
check "... 64 lower-case hex digits" grep -Eq '^[0-9a-f]{64}$' <(line_sha 1)
check "... the line is still version 2" python3 -c 'import json,sys
assert json.loads(open(sys.argv[1]).readline())["version"] == 2' "$R/history.jsonl"
rel r2 2
check "serial 2 released over it (exit $rc)" [ "$rc" -eq 0 ]
check "history line 2 has the sha256 of the new DIR/tld.zone" \
    [ "$(line_sha 2)" = "$(file_sha "$R/tld.zone")" -a \
      "$(line_sha 2)" = "$(file_sha "$T/s2.zone")" ]

# a server serving the release, for the drift check alone
P=$(zg_free_port)
ldns-read-zone "$R/tld.zone" >"$T/srv/tld.zone"
ZG_NSD_XFR=1 zg_nsd_start "$T/nsd" "$P" "tld.=$T/srv/tld.zone"
check "nsd serves tld. on 127.0.0.1#$P" zg_wait_port "$P" tld.
zg d0 --origin tld. --release "$R" --served "127.0.0.1#$P"
check "drift check alone, release intact: exit 0 (got $rc)" [ "$rc" -eq 0 ]
CLOSED=$(zg_free_port)
zg d0c --origin tld. --release "$R" --served "127.0.0.1#$CLOSED"
check "drift check alone, release intact, closed port: exit 2 (got $rc)" [ "$rc" -eq 2 ]
check "... with the connect error" grep -q "cannot connect to 127.0.0.1#$CLOSED" "$T/d0c.err"

cp -p "$R/tld.zone" "$T/good.zone"
restore() { cp -p "$T/good.zone" "$R/tld.zone"; }

# ---- (a) one TTL edited by hand ----
sed -i '0,/\t3600\tIN A\t/s//\t3601\tIN A\t/' "$R/tld.zone"
check "(a) one TTL of DIR/tld.zone edited (one byte)" \
    [ "$(cmp -l "$R/tld.zone" "$T/good.zone" | wc -l)" -eq 1 ]
refused "(a) edited release, next candidate" "$(msg 2 2 "$differs")" \
    --origin tld. --ds "$T/ds.txt" --release "$R" "$T/s3.zone"
# (d) the drift check alone refuses too, before any transfer
refused "(d) edited release, drift check alone (nsd up)" "$(msg 2 2 "$differs")" \
    --origin tld. --release "$R" --served "127.0.0.1#$P"
refused "(d) edited release, drift check alone, closed port: the history error wins" \
    "$(msg 2 2 "$differs")" --origin tld. --release "$R" --served "127.0.0.1#$CLOSED"
refused "(d) edited release, candidate and --served" "$(msg 2 2 "$differs")" \
    --origin tld. --ds "$T/ds.txt" --release "$R" --served "127.0.0.1#$P" "$T/s3.zone"

# ---- (a) a comment line appended ----
restore
echo '; edited by hand' >>"$R/tld.zone"
refused "(a) a comment appended to the release" "$(msg 2 2 "$differs")" \
    --origin tld. --ds "$T/ds.txt" --release "$R" "$T/s3.zone"

# ---- restored: works again ----
restore
rel r3 3
check "release restored byte for byte: serial 3 released (exit $rc)" [ "$rc" -eq 0 ]
check "... history has 3 lines, the last with the new file's digest" \
    [ "$(wc -l <"$R/history.jsonl")" -eq 3 -a \
      "$(line_sha 3)" = "$(file_sha "$R/tld.zone")" ]
cp -p "$R/tld.zone" "$T/good.zone"

# ---- (b) the release removed ----
rm "$R/tld.zone"
refused "(b) release removed, next candidate" \
    "$(msg 3 3 "No such file or directory")" \
    --origin tld. --ds "$T/ds.txt" --release "$R" "$T/s4.zone"
refused "(b) release removed, drift check alone" \
    "$(msg 3 3 "No such file or directory")" \
    --origin tld. --release "$R" --served "127.0.0.1#$P"
restore

# ---- lines of other zones do not count ----
printf '{"time": 1, "zone": "other.", "serial": 9, "file": "other.zone", "sha256": "%064d", "version": 2, "dnskey": []}\n' 0 \
    >>"$R/history.jsonl"
rel r4 4
check "a later line of another zone naming a missing file: serial 4 released (exit $rc)" \
    [ "$rc" -eq 0 ]
check "... history has 5 lines, the last for tld. with its digest" \
    [ "$(wc -l <"$R/history.jsonl")" -eq 5 -a \
      "$(line_sha 5)" = "$(file_sha "$R/tld.zone")" ]

# ---- a malformed digest is a malformed history line ----
cp -p "$R/history.jsonl" "$T/good.hist"
sed -i '$s/"sha256": "[0-9a-f]*"/"sha256": "xyz"/' "$R/history.jsonl"
refused "a sha256 that is not 64 hex digits" \
    "$R/history\\.jsonl:5: sha256 is not 64 hex digits" \
    --origin tld. --ds "$T/ds.txt" --release "$R" "$T/s5.zone"
cp -p "$T/good.hist" "$R/history.jsonl"
sed -i '$s/"file": "tld.zone"/"file": "..\/outside.zone"/' "$R/history.jsonl"
refused "a file name with a slash (a hand-written line pointing out of DIR)" \
    "$R/history\\.jsonl:5: file is not a plain file name in the release directory" \
    --origin tld. --ds "$T/ds.txt" --release "$R" "$T/s5.zone"
cp -p "$T/good.hist" "$R/history.jsonl"

# ---- (c) a last line of the previous format: no check ----
sed -i '$s/"sha256": "[0-9a-f]*", //' "$R/history.jsonl"
check "(c) the last history line has no sha256 any more" \
    [ "$(line_sha 5)" = "-" ]
echo '; edited by hand' >>"$R/tld.zone"
rel r5 5
check "(c) no digest recorded: not checked, serial 5 released although edited (exit $rc)" \
    [ "$rc" -eq 0 ]
check "... it replaced the edited file" cmp -s "$R/tld.zone" "$T/s5.zone"
check "... and the new line records the digest again" \
    [ "$(line_sha 6)" = "$(file_sha "$T/s5.zone")" ]
check "history lines are JSON" python3 -c 'import json,sys
[json.loads(l) for l in open(sys.argv[1])]' "$R/history.jsonl"
done_testing
