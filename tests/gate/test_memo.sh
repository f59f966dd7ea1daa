#!/usr/bin/env bash
# tests/gate/test_memo.sh - gate/load.c's remainder memo: a simple line
# whose text after the owner field was parsed before (same $ORIGIN, same
# default TTL) reuses libldns's result and has only its owner parsed.
# The records must be byte for byte those of libldns's own reader:
#  - the zone (tests/gate/memozone.py: relative names, "@", omitted and
#    upper-case owners, rdata names relative to a changing $ORIGIN, lines
#    without a TTL under a changing $TTL, escapes and comments that must
#    go to libldns whole) carries a ZONEMD digest made by dnspython from
#    the same text: the gate's zonemd check compares every record it read
#    (owner, type, TTL, rdata) with dnspython's reading;
#  - the same zone with a comment on every record line (so libldns's file
#    reader reads every line, no memo) is given as --unsigned: no
#    content-mismatch, and the same report;
#  - a count of ldns_rr_new_frm_str calls (LD_PRELOAD) shows that most
#    lines did skip libldns's record parser, i.e. the memo was used;
#  - faults on lines whose remainder was remembered give the same
#    FILE:LINE error on both roads.
. "$ZG_SRC/tests/lib/tap.sh"
for t in zonegate cc /usr/bin/python3; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
/usr/bin/python3 -c 'import dns.zone, dns.zonetypes' 2>/dev/null ||
    skip_all "dnspython not installed"
zg_tmpdir
D=$ZG_TMP
echo 'tld. 3600 IN DS 12345 8 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF' >"$D/ds"
/usr/bin/python3 "$ZG_SRC/tests/gate/memozone.py" "$D/base.zone" ||
    { not_ok "memozone.py"; done_testing; }

# ZONEMD (RFC 8976, SIMPLE, SHA-384) of the text as dnspython reads it
zonemd() { # in out
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
import dns.zone, dns.zonetypes
z = dns.zone.from_file(sys.argv[1], origin="tld.", relativize=False)
md = z.compute_digest(dns.zonetypes.DigestHashAlgorithm.SHA384)
text = open(sys.argv[1]).read()
with open(sys.argv[2], "w") as f:
    f.write(text + "$ORIGIN tld.\ntld. 86400 IN ZONEMD %s\n" % md.to_text())
PY
}
zonemd "$D/base.zone" "$D/plain.zone" || { not_ok "dnspython ZONEMD"; done_testing; }
# every record line with a comment: libldns's file reader only
comment() { sed -E 's/^([^$;].*[^[:space:]])[[:space:]]*$/\1 ; c/' "$1" >"$2"; }
comment "$D/plain.zone" "$D/comment.zone"
check "zone is large enough to be read in pieces (> 1 MiB)" \
    [ "$(stat -c %s "$D/plain.zone")" -gt 1048576 ]
check "comment variant: every line a directive or commented" \
    bash -c '! grep -vE "^\\$|; c$" "$1" | grep -q .' _ "$D/comment.zone"

for v in plain comment; do
    for t in 1 2; do
        zonegate --threads $t --origin tld. --ds "$D/ds" --unsigned "$D/comment.zone" \
            --json "$D/$v$t.json" "$D/$v.zone" >"$D/$v$t.out" 2>"$D/$v$t.err"
        check "$v, --threads $t: exit 1 (unsigned zone)" [ $? -eq 1 ]
        check "$v, --threads $t: the records match dnspython's (no zonemd problem)" \
            bash -c '! grep -qi zonemd "$1"' _ "$D/$v$t.out"
        check "$v, --threads $t: the records match libldns's reader (no content-mismatch)" \
            bash -c '! grep -q content-mismatch "$1"' _ "$D/$v$t.out"
    done
done
check "memo road and libldns's reader: same JSON" cmp -s "$D/plain1.json" "$D/comment1.json"
check "2 readers: same JSON as 1" cmp -s "$D/plain1.json" "$D/plain2.json"
check "every record counted" \
    /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["counts"]["records"] > 35000 else 1)' "$D/plain1.json"

# the zonemd check sees a change of one TTL, one rdata name or one owner
# on a line whose remainder is remembered (so a memo that returned the
# wrong record would be seen)
n=$(grep -n '^d4009 86400 IN NS ns2' "$D/plain.zone" | cut -d: -f1)
for edit in 's/^d4009 86400 IN NS ns2/d4009 86401 IN NS ns2/' \
            's/^d4009 86400 IN NS ns2\.dns[0-9]*\./d4009 86400 IN NS ns2.dns39./' \
            's/^d4009 86400 IN NS ns2/d4008 86400 IN NS ns2/'; do
    sed "${n}$edit" "$D/plain.zone" >"$D/edit.zone"
    zonegate --origin tld. --ds "$D/ds" "$D/edit.zone" >"$D/edit.out" 2>&1
    check "control: '$edit' after the digest is a zonemd problem" grep -q zonemd "$D/edit.out"
done

# the memo was used: ldns_rr_new_frm_str called for far fewer lines than
# there are records (counted by a preloaded wrapper)
cat >"$D/count.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
static unsigned long calls;
ldns_status ldns_rr_new_frm_str(ldns_rr **rr, const char *str, uint32_t ttl,
                                const ldns_rdf *origin, ldns_rdf **prev)
{
    static ldns_status (*real)(ldns_rr **, const char *, uint32_t,
                               const ldns_rdf *, ldns_rdf **);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "ldns_rr_new_frm_str");
    __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
    return real(rr, str, ttl, origin, prev);
}
__attribute__((destructor)) static void report(void)
{
    const char *f = getenv("MEMO_TEST_COUNT");
    FILE *o = f ? fopen(f, "w") : NULL;
    if (o) {
        fprintf(o, "%lu\n", calls);
        fclose(o);
    }
}
C
if cc -shared -fPIC -o "$D/count.so" "$D/count.c" -ldl 2>"$D/cc.err"; then
    # an ASan build wants its runtime first; the wrapper only counts
    MEMO_TEST_COUNT="$D/calls" LD_PRELOAD="$D/count.so" \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        zonegate --threads 2 --origin tld. --ds "$D/ds" "$D/plain.zone" >/dev/null 2>&1
    calls=$(cat "$D/calls" 2>/dev/null)
    recs=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["records"])' "$D/plain1.json")
    diag "ldns_rr_new_frm_str calls: ${calls:-none}, records: $recs"
    check "the memo was used: ldns_rr_new_frm_str for under a third of the records" \
        [ -n "$calls" ] && [ "$calls" -gt 0 ] && [ $((calls * 3)) -lt "$recs" ]
else
    not_ok "cc could not build the counting wrapper: $(head -2 "$D/cc.err")"
fi

# faults on lines whose remainder was remembered (" 86400 IN NS
# ns1.dns0.example.net." is, from the first delegation on, in every
# piece), in the first piece and in a later one: the same error on both
# roads, at exactly that line
long=$(printf 'a%.0s' {1..63}).$(printf 'b%.0s' {1..63}).$(printf 'c%.0s' {1..63}).$(printf 'd%.0s' {1..60})
for owner in d101 d7009 d13009; do
    at=$(grep -nE "^$owner[[:space:]]" "$D/plain.zone" | head -1 | cut -d: -f1)
    for bad in 'bad..name 86400 IN NS ns1.dns0.example.net.' \
               'x.example. 86400 IN NS ns1.dns0.example.net.' \
               "$long 86400 IN NS ns1.dns0.example.net." \
               'd0 86400 CH NS ns1.dns0.example.net.' \
               'd0 86400 IN NS ns1..dns0.example.net.' \
               "d0 86400 IN NS $long"; do
        sed "${at}i $bad" "$D/plain.zone" >"$D/badp.zone"
        comment "$D/badp.zone" "$D/badc.zone"
        for t in 1 2; do
            zonegate --threads $t --origin tld. --ds "$D/ds" "$D/badp.zone" >/dev/null 2>"$D/ep"
            rp=$?
            zonegate --threads $t --origin tld. --ds "$D/ds" "$D/badc.zone" >/dev/null 2>"$D/ec"
            rc=$?
            what="line $at '${bad:0:30}...' --threads $t"
            check "$what: exit 2 on both roads" [ $rp -eq 2 -a $rc -eq 2 ]
            check "$what: same error" \
                bash -c 'diff <(sed "s/badp.zone/Z/" "$1") <(sed "s/badc.zone/Z/" "$2")' _ "$D/ep" "$D/ec"
            check "$what: error names line $at" grep -q "badp.zone:$at: " "$D/ep"
        done
    done
done
# an owner or rdata name that is too long only once the origin is added
# (RFC 1035 3.1) is refused, not cut to 8 bits of length or kept
sed "200i $long 86400 IN NS ns1.dns0.example.net." "$D/plain.zone" >"$D/badp.zone"
zonegate --origin tld. --ds "$D/ds" "$D/badp.zone" >/dev/null 2>"$D/ep"
check "a 258-octet owner is refused: longer than 255 octets" \
    grep -q 'badp.zone:200: owner name is longer than 255 octets' "$D/ep"
sed "200i d0 86400 IN NS $long" "$D/plain.zone" >"$D/badp.zone"
zonegate --origin tld. --ds "$D/ds" "$D/badp.zone" >/dev/null 2>"$D/ep"
check "a 258-octet name in rdata is refused: longer than 255 octets" \
    grep -q 'badp.zone:200: name in rdata is longer than 255 octets' "$D/ep"

# under a foreign $ORIGIN, once a remainder is remembered there (after a
# record with an absolute owner in the zone), a relative owner and "@" on
# a memo hit are outside the zone: refused at their line
cat >"$D/at.zone" <<'Z'
$TTL 3600
$ORIGIN tld.
@ 86400 IN SOA ns1.nic hostmaster.nic 1 10800 3600 2419200 3600
@ 86400 IN NS ns1.nic.tld.
$ORIGIN example.
a.tld. 3600 IN A 192.0.2.1
b.tld. 3600 IN A 192.0.2.1
c 3600 IN A 192.0.2.1
@ 3600 IN A 192.0.2.1
Z
zonegate --origin tld. --ds "$D/ds" "$D/at.zone" >/dev/null 2>"$D/at.err"
check "relative owner under a foreign \$ORIGIN: refused at line 8" \
    grep -q 'at.zone:8: owner is outside' "$D/at.err"
sed -i '8d' "$D/at.zone"
zonegate --origin tld. --ds "$D/ds" "$D/at.zone" >/dev/null 2>"$D/at.err"
check "\"@\" under a foreign \$ORIGIN: refused at line 8" \
    grep -q 'at.zone:8: owner is outside' "$D/at.err"
done_testing
