#!/usr/bin/env python3
"""Spoil a signed zone the May 2026 way, in place: two thirds of the RRSIGs
(every one whose position modulo 3 is not 0) get a signature made by a key
that is not published.  The signature field is replaced by random bytes of
the same length, and the key tag is moved to a tag no DNSKEY has, as if two
other HSMs held their own key pairs."""
import base64, os, sys

path = sys.argv[1]
out = []
n = 0
with open(path) as f:
    for line in f:
        fields = line.split()
        if len(fields) > 12 and fields[3] == "RRSIG" and not line.startswith(";"):
            if n % 3:
                sig = base64.b64decode("".join(fields[12:]))
                fields[10] = str((int(fields[10]) + 1000 * (n % 3)) % 65536)
                fields[12:] = [base64.b64encode(os.urandom(len(sig))).decode()]
                line = "\t".join(fields) + "\n"
            n += 1
        out.append(line)
with open(path + ".tmp", "w") as f:
    f.writelines(out)
os.replace(path + ".tmp", path)
