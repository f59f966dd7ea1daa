#!/usr/bin/env bash
# tests/gate/test_optout.sh - an Opt-Out NSEC3 chain (RFC 5155 6) may
# still cover insecure delegations (ldns-signzone -n -p does): such NSEC3s
# must match their names (gate/nsec3.c looks every name up in the chain),
# their bitmaps are checked, and an NSEC3 left for a removed name is
# reported.
. "$ZG_SRC/tests/lib/tap.sh"
for t in zonegate ldns-signzone ldns-keygen ldns-key2ds python3; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
zg_tmpdir
D=$ZG_TMP
cd "$D" || exit 1
{
    echo '$TTL 3600'
    echo 'tld. IN SOA ns1.tld. h.tld. 1 3600 600 86400 300'
    echo 'tld. IN NS ns1.tld.'
    echo 'ns1.tld. IN A 192.0.2.1'
    for i in $(seq 1 40); do
        echo "d$i.tld. IN NS ns.example."
        [ $((i % 5)) -eq 0 ] && echo "d$i.tld. IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
    done
} >z.zone
K=$(ldns-keygen -a ECDSAP256SHA256 -k tld.) && Z=$(ldns-keygen -a ECDSAP256SHA256 tld.) ||
    { not_ok ldns-keygen; done_testing; }
ldns-signzone -n -p -t 0 -f s.zone z.zone "$K" "$Z" >/dev/null 2>&1
check "ldns-signzone -n -p signed" [ -s s.zone ]
ldns-key2ds -n -2 "$K.key" >ds
n3=$(grep -cP '\tNSEC3\t1 1 ' s.zone)
ns=$(grep -cP '\tNSEC3\t1 1 0 -\s+\S+ NS $' s.zone)
check "Opt-Out chain with NSEC3s for insecure delegations ($n3 NSEC3, $ns NS-only)" [ "$n3" -ge 40 -a "$ns" -ge 30 ]
zonegate --threads 2 --origin tld. --ds ds s.zone >out 2>&1
check "zonegate passes it (every NSEC3 matches a name)" [ $? -eq 0 ]
# an insecure delegation's NSEC3 with a wrong bitmap
python3 - s.zone bm.zone <<'PY'
import re, sys
t = open(sys.argv[1]).read().split("\n")
for i, l in enumerate(t):
    if re.search(r"\tNSEC3\t1 1 0 -\s+\S+ NS$", l.rstrip()):
        t[i] = l.rstrip() + " TXT"
        break
open(sys.argv[2], "w").write("\n".join(t))
PY
zonegate --threads 2 --origin tld. --ds ds bm.zone >out 2>&1
check "wrong bitmap on an insecure delegation's NSEC3: exit 1" [ $? -eq 1 ]
check "... reported as nsec3-bitmap" grep -q "problem nsec3-bitmap: 1 " out
# a delegation removed after signing: its NSEC3 matches no name
grep -v '^d7\.tld\.' s.zone >rm.zone
zonegate --threads 2 --origin tld. --ds ds rm.zone >out 2>&1
check "NSEC3 of a removed insecure delegation: exit 1" [ $? -eq 1 ]
check "... reported as nsec3-chain (matches no name)" grep -q "NSEC3 whose hash matches no name" out
done_testing
