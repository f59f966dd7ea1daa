#!/usr/bin/python3
"""Counts the RRSIGs of a signed zone that do not verify against the zone's
own DNSKEY RRset, with dnspython and python-cryptography: a third opinion,
independent of zonesign (libzscanner, hsm/) and zonegate (libldns, OpenSSL
EVP).  Validity times are ignored; only the signature is checked.

usage: count_bad.py ZONE [ORIGIN]     prints the number of bad RRSIGs
"""
import sys

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone


def main():
    path = sys.argv[1]
    origin = sys.argv[2] if len(sys.argv) > 2 else None
    z = dns.zone.from_file(path, origin=origin, relativize=False,
                           check_origin=False)
    apex = z.origin
    keys = {apex: z.get_rdataset(apex, dns.rdatatype.DNSKEY)}
    bad = 0
    for name, node in z.nodes.items():
        for rds in node.rdatasets:
            if rds.rdtype != dns.rdatatype.RRSIG:
                continue
            for sig in rds:
                covered = node.get_rdataset(dns.rdataclass.IN, sig.type_covered)
                if covered is None:
                    bad += 1
                    continue
                rrset = dns.rrset.RRset(name, dns.rdataclass.IN,
                                        sig.type_covered)
                rrset.update(covered)
                sigset = dns.rrset.RRset(name, dns.rdataclass.IN,
                                         dns.rdatatype.RRSIG,
                                         sig.type_covered)
                sigset.add(sig, rds.ttl)
                try:
                    dns.dnssec.validate_rrsig(rrset, sig, keys,
                                              now=sig.inception + 1)
                except dns.dnssec.ValidationFailure:
                    bad += 1
    print(bad)


if __name__ == "__main__":
    main()
