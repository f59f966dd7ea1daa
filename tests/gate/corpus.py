#!/usr/bin/env python3
"""tests/gate/corpus.py OUTDIR - build the gate's corruption corpus.

Clean zones are signed by OTHER tools (dnssec-signzone, ldns-signzone) with
their own file keys, from tests/data/gate/tld.zone; each corruption is made
from a clean zone by editing its records (or by transplanting genuine
signatures from a differently signed variant, so exactly one rule breaks).
Writes OUTDIR/<case>.zone, the DS files, and OUTDIR/manifest with one line
per case:  name|expected class or "pass"|judge(1: other tools may judge)|args
where args may use {D} for OUTDIR.
"""
import base64
import os
import subprocess
import sys
import time

NOW = int(time.time())

OUT = sys.argv[1]
SRC = os.environ.get("ZG_SRC", os.path.join(os.path.dirname(__file__), "../.."))
TEMPLATE = open(os.path.join(SRC, "tests/data/gate/tld.zone")).read()
KEYS = os.path.join(OUT, "keys")
WORK = os.path.join(OUT, "scratch")
os.makedirs(KEYS, exist_ok=True)
os.makedirs(WORK, exist_ok=True)
manifest = []


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          **kw).stdout


def keygen(name, alg, ksk=False):
    d = os.path.join(KEYS, name)
    os.makedirs(d, exist_ok=True)
    args = ["dnssec-keygen", "-q", "-K", d, "-a", alg]
    if alg.startswith("RSA"):
        args += ["-b", "1024"]
    if ksk:
        args += ["-f", "KSK"]
    base = run(*args, "tld.").strip()
    return os.path.join(d, base)


def dnskey(base):
    for line in open(base + ".key"):
        if not line.startswith(";"):
            return line.strip()
    raise RuntimeError(base)


def ds_file(name, base):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        f.write(run("dnssec-dsfromkey", "-2", base + ".key"))
    return path


def read_lines(path):
    """One RR per line, fields tab-separated (ldns-read-zone)."""
    out = run("ldns-read-zone", path)
    return [l for l in out.splitlines() if l and not l.startswith(";")]


def sign_bind(name, pub, sign, text=TEMPLATE, denial="nsec3", extra=()):
    src = os.path.join(WORK, name + ".unsigned")
    with open(src, "w") as f:
        f.write(text + "\n" + "\n".join(dnskey(k) for k in pub) + "\n")
    dst = os.path.join(WORK, name + ".signed")
    args = ["dnssec-signzone", "-q", "-o", "tld.", "-f", dst,
            "-s", "now-3600", "-e", "now+2592000"]
    if denial in ("nsec3", "optout"):
        args += ["-3", "-", "-H", "0"]
    if denial == "optout":
        args += ["-A"]
    args += list(extra) + [src] + list(sign)
    run(*args, cwd=WORK)
    return read_lines(dst)


def f(line):
    return line.split("\t")


def is_sig(line, owner, covered, alg=None):
    p = f(line)
    if p[0] != owner or p[3] != "RRSIG":
        return False
    rd = p[4].split()
    return rd[0] == covered and (alg is None or rd[1] == str(alg))


def write(name, lines, expect, judge=1, args=""):
    with open(os.path.join(OUT, name + ".zone"), "w") as fp:
        fp.write("; expected: %s\n" % expect)
        fp.write("\n".join(lines) + "\n")
    manifest.append("%s|%s|%d|%s" % (name, expect, judge, args))


K = keygen("ksk8", "RSASHA256", True)
Z = keygen("zsk8", "RSASHA256")
Z2 = keygen("zsk8b", "RSASHA256")
K2 = keygen("ksk8b", "RSASHA256", True)
K13 = keygen("ksk13", "ECDSAP256SHA256", True)
Z13 = keygen("zsk13", "ECDSAP256SHA256")
ds_file("ds.txt", K)
ds_file("ds-other.txt", K2)

# Clean zones from other signers: must pass.
L = sign_bind("clean-nsec3", [K, Z], [K, Z])
write("clean-nsec3", L, "pass")
LN = sign_bind("clean-nsec", [K, Z], [K, Z], denial="nsec")
write("clean-nsec", LN, "pass")
write("clean-optout", sign_bind("clean-optout", [K, Z], [K, Z],
                                denial="optout"), "pass")
ds_file("ds13.txt", K13)
write("clean-ecdsa", sign_bind("clean-ecdsa", [K13, Z13], [K13, Z13]), "pass",
      1, "--ds {D}/ds13.txt")
# ldns-signzone, NSEC3 (iterations 0, no salt) and NSEC with ZONEMD
usrc = os.path.join(WORK, "ldns.unsigned")
with open(usrc, "w") as fp:
    fp.write(TEMPLATE + "\n" + dnskey(K) + "\n" + dnskey(Z) + "\n")
run("ldns-signzone", "-n", "-t", "0", "-o", "tld.", "-f",
    os.path.join(WORK, "ldns-nsec3.signed"), "-i", str(NOW - 3600), "-e", str(NOW + 2592000), usrc, K, Z)
write("clean-ldns-nsec3", read_lines(os.path.join(WORK, "ldns-nsec3.signed")),
      "pass")
run("ldns-signzone", "-z", "1:1", "-o", "tld.", "-f",
    os.path.join(WORK, "ldns-zonemd.signed"), "-i", str(NOW - 3600), "-e", str(NOW + 2592000), usrc, K, Z)
LZ = read_lines(os.path.join(WORK, "ldns-zonemd.signed"))
write("clean-ldns-zonemd", LZ, "pass")
write("clean-unsigned", L, "pass", 0, "--unsigned %s" %
      os.path.join(SRC, "tests/data/gate/tld.zone"))

# An algorithm the gate cannot verify (12, GOST R 34.10-2001, RFC 8624: not
# to be validated): a published alg 12 ZSK "signs" every RRset beside the
# real alg 8 signatures (its RRSIGs are the alg 8 ones relabelled).  The
# gate cannot judge them and must not release what it could not check.
def keytag(rdata):
    acc = 0
    for i, b in enumerate(rdata):
        acc += b if i & 1 else b << 8
    return (acc + (acc >> 16)) & 0xFFFF


G_KEY = bytes(range(1, 65))
G_TAG = keytag(bytes([1, 0, 3, 12]) + G_KEY)
G_LINE = "tld.\t3600\tIN\tDNSKEY\t256 3 12 %s" % base64.b64encode(G_KEY).decode()
LG = sign_bind("unsupported", [K, Z], [K, Z], text=TEMPLATE + "\n" + G_LINE,
               extra=("-P",))
G_SIGS = []
for l in LG:
    p = f(l)
    if p[3] != "RRSIG":
        continue
    rd = p[4].split()
    if rd[1] != "8":
        continue
    rd[1], rd[6] = "12", str(G_TAG)
    G_SIGS.append("\t".join(p[:4] + [" ".join(rd)]))
write("unsupported-algorithm", LG + G_SIGS, "unsupported-algorithm", 0)

# Rollovers in progress: must pass.
write("roll-zsk-prepublish", sign_bind("zskpre", [K, Z, Z2], [K, Z]), "pass")
write("roll-ksk-double", sign_bind("kskdouble", [K, K2, Z], [K, K2, Z]),
      "pass")
LA = sign_bind("algroll", [K, Z, K13, Z13], [K, Z, K13, Z13])
write("roll-alg-8-13", LA, "pass")

# One case per problem class.
write("bogus-signature",
      [l.replace("192.0.2.80", "192.0.2.81") for l in L], "bogus-signature")
LB = sign_bind("unpub", [K, Z], [K, Z2], extra=["-P"])
www_a = [l for l in LB if is_sig(l, "www.nic.tld.", "A")]
write("unknown-key", [l for l in L if not is_sig(l, "www.nic.tld.", "A")]
      + www_a, "unknown-key")
write("missing-signature",
      [l for l in L if not is_sig(l, "www.nic.tld.", "AAAA")],
      "missing-signature")
write("expired-signature", L, "expired-signature", 0, "--now now+40d")
write("not-yet-valid-signature", L, "not-yet-valid-signature", 0,
      "--now now-1d")
write("low-validity", L, "low-validity", 0, "--min-validity 60d")
write("rrsig-field",
      [l.replace("\t3600\tIN\tAAAA", "\t7200\tIN\tAAAA")
       if f(l)[0] == "www.nic.tld." else l for l in L], "rrsig-field")
write("trust-anchor", L, "trust-anchor", 0, "--ds {D}/ds-other.txt")
write("algorithm-coverage",
      [l for l in LA if not is_sig(l, "nic.tld.", "A", 13)],
      "algorithm-coverage")
LV = sign_bind("nodeleg", [K, Z], [K, Z],
               text=TEMPLATE.replace("dom1    NS    ns.dom1\n", ""))
write("signed-non-authoritative",
      L + [l for l in LV if is_sig(l, "ns.dom1.tld.", "A")],
      "signed-non-authoritative")
n3 = sorted(f(l)[0] for l in L if f(l)[3] == "NSEC3")
write("nsec3-chain", [l for l in L if f(l)[0] != n3[1]], "nsec3-chain")
LT = sign_bind("bitmap", [K, Z], [K, Z],
               text=TEMPLATE + 'www.nic TXT "more"\n')
old = {f(l)[0]: l for l in L if f(l)[3] == "NSEC3"}
new = {f(l)[0]: l for l in LT if f(l)[3] == "NSEC3"}
hashed = [o for o in old if o in new and f(old[o])[4] != f(new[o])[4]][0]
write("nsec3-bitmap",
      [l for l in L if f(l)[0] != hashed]
      + [l for l in LT if f(l)[0] == hashed], "nsec3-bitmap")
write("nsec3-param", sign_bind("iter5", [K, Z], [K, Z],
                               extra=["-H", "5"]), "nsec3-param")
write("nsec3-param-salt", sign_bind("salt", [K, Z], [K, Z],
                                    extra=["-3", "abcd"]), "nsec3-param")
write("nsec-chain",
      [l for l in LN if not (f(l)[0] == "www.nic.tld." and
                             (f(l)[3] == "NSEC" or is_sig(l, f(l)[0], "NSEC")))],
      "nsec-chain")
changed = os.path.join(OUT, "unsigned-changed.zone")
with open(changed, "w") as fp:
    fp.write(TEMPLATE + 'extra TXT "not in the signed zone"\n')
write("content-mismatch", L, "content-mismatch", 0,
      "--unsigned {D}/unsigned-changed.zone")
with open(os.path.join(OUT, "previous-other-zsk.txt"), "w") as fp:
    fp.write("\n".join(sign_bind("prevzsk", [K, Z2], [K, Z2])) + "\n")
write("unsafe-transition", L, "unsafe-transition", 0,
      "--previous {D}/previous-other-zsk.txt")
write("zonemd", [l.replace("192.0.2.10", "192.0.2.11") for l in LZ],
      "zonemd")

with open(os.path.join(OUT, "manifest"), "w") as fp:
    fp.write("\n".join(manifest) + "\n")
