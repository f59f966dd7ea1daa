#!/usr/bin/env python3
"""tests/gate/memozone.py - a zone for tests/gate/test_memo.sh.

  memozone.py OUT

Writes a zone (origin tld., over 1 MiB so that it is read in several
pieces) whose simple lines repeat the text after their owner field, the
way delegations repeat their name servers, in every shape gate/load.c's
remainder memo must get right: relative and absolute owners, "@", owners
repeated on consecutive lines, omitted owners after a remembered line,
upper case in owners, rdata and $ORIGIN, rdata names relative to an
$ORIGIN that changes, lines without a TTL under a $TTL that changes, an
owner repeated across a $ORIGIN change, blanks that differ, and lines
that must go to libldns whole (escapes, quotes, parentheses, comments,
remainders too long to remember).  Every RRset has one TTL, so that
dnspython's ZONEMD digest of the text (computed by test_memo.sh) covers
exactly the records the gate reads.  Deterministic.
"""
import sys

HOSTERS = 40  # distinct name-server pairs: their NS lines repeat


def ns_pair(i):
    h = (i * 7) % HOSTERS
    return "ns1.dns%d.example.net." % h, "ns2.dns%d.example.org." % h


def main():
    out = []
    w = out.append
    w("$TTL 3600")
    w("$ORIGIN tld.")
    w("@ 86400 IN SOA ns1.nic hostmaster.nic 2026010101 10800 3600 2419200 3600")
    w("@ 86400 IN NS ns1.nic")
    w("@ 86400 IN NS ns2.nic.tld.")
    w("ns1.nic 3600 IN A 192.0.2.53")
    w("ns2.nic 3600 IN A 192.0.2.54")
    for i in range(15000):
        a, b = ns_pair(i)
        k = i % 10
        if k == 0:    # absolute owner
            w("d%d.tld. 86400 IN NS %s" % (i, a))
            w("d%d.tld. 86400 IN NS %s" % (i, b))
        elif k == 1:  # tabs instead of spaces: another remainder text
            w("d%d\t86400\tIN\tNS\t%s" % (i, a))
            w("d%d\t86400\tIN\tNS\t%s" % (i, b))
        elif k == 2:  # the owner omitted after a remembered line
            w("d%d 86400 IN NS %s" % (i, a))
            w("\t86400 IN NS %s" % b)
        elif k == 3:  # upper case in the owner and in the rdata
            w("D%d.TLD. 86400 IN NS %s" % (i, a.upper()))
            w("d%d 86400 IN NS %s" % (i, b.upper()))
        elif k == 4:  # glue below the delegation, repeated addresses
            w("d%d 86400 IN NS ns.d%d" % (i, i))
            w("d%d 86400 IN NS %s" % (i, b))
            w("ns.d%d 86400 IN A 192.0.2.%d" % (i, i % 200))
            w("ns.d%d 86400 IN AAAA 2001:db8::%x" % (i, i % 200))
        elif k == 5:  # trailing blanks
            w("d%d 86400 IN NS %s   " % (i, a))
            w("d%d 86400 IN NS %s\t" % (i, b))
        elif k == 6:  # escapes, quotes, comments: libldns whole, and
            # an owner repeated around such a line (the owner libldns
            # parsed in between is not the one to reuse)
            w("d%d 86400 IN NS %s" % (i, a))
            w("d\\120%d 86400 IN NS %s" % (i, a))  # owner dx<i>
            w("d%d 86400 IN NS %s" % (i, b))
            w("txt%d 86400 IN TXT \"v=%d\"" % (i, i % 5))
            w("txt%d 86400 IN A 192.0.2.1 ; a comment" % i)
        elif k == 7:  # a remainder too long to remember
            w("d%d 86400 IN NS %s.%s" % (i, "x" * 60, a))
            w("d%d 86400 IN NS %s" % (i, b))
        elif k == 8:  # parentheses: libldns whole
            w("d%d 86400 IN ( NS" % i)
            w("    %s )" % a)
            w("d%d 86400 IN NS %s" % (i, b))
        else:         # the common case
            w("d%d 86400 IN NS %s" % (i, a))
            w("d%d 86400 IN NS %s" % (i, b))
    # rdata names relative to the origin: the same text makes other names
    # under another $ORIGIN; "@" and owners repeated across the change
    for blk, origin in enumerate(("tld.", "sub.tld.", "SUB2.TLD.", "tld.")):
        w("$ORIGIN " + origin)
        w("edge 3600 IN A 192.0.2.%d" % (100 + blk))
        w("www 3600 IN A 192.0.2.80")
        w("@ 3600 IN A 192.0.2.80")
        w("@ 3600 IN MX %d mail" % (10 + blk))
        for i in range(300):
            w("r%d-%d 3600 IN NS ns1.hoster" % (blk, i))
            w("r%d-%d 3600 IN NS ns2.hoster" % (blk, i))
            w("m%d-%d 3600 IN MX 10 mail" % (blk, i))
        w("edge 3600 IN A 192.0.2.80")
    # no TTL on the line: the $TTL in force, which changes
    for ttl in (3600, 7200, 60):
        w("$TTL %d" % ttl)
        for i in range(300):
            w("t%d-%d IN NS ns1.dns1.example.net." % (ttl, i))
            w("t%d-%d NS ns2.dns1.example.org." % (ttl, i))
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
