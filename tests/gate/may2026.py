#!/usr/bin/env python3
"""tests/gate/may2026.py OUTDIR UNSIGNED - the May 2026 shape.

Signs UNSIGNED (tld.) with dnssec-signzone three times: with the published
KSK+ZSK, and with two ZSKs that are never published (one per "HSM").  Two
thirds of the RRsets (NSEC3 included, DNSKEY aside) then carry the
signatures of the unpublished keys: may-own.zone with their own key tags,
may-patched.zone with the published ZSK's tag patched in.  Writes ds.txt
and facts (shell variables: N_BAD, N_OK, TAG_PUB, TAG_B, TAG_C).
"""
import os
import subprocess
import sys

OUT, UNSIGNED = sys.argv[1], sys.argv[2]


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          **kw).stdout


def keygen(name, ksk=False):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    args = ["dnssec-keygen", "-q", "-K", d, "-a", "RSASHA256", "-b", "1024"]
    base = run(*(args + (["-f", "KSK"] if ksk else []) + ["tld."])).strip()
    return os.path.join(d, base)


def pubkey(base):
    return [l for l in open(base + ".key") if not l.startswith(";")][0]


K, Z, B, C = keygen("ksk", True), keygen("zsk"), keygen("hsm2"), keygen("hsm3")
src = os.path.join(OUT, "unsigned")
with open(src, "w") as f:
    f.write(open(UNSIGNED).read() + "\n" + pubkey(K) + pubkey(Z))
with open(os.path.join(OUT, "ds.txt"), "w") as f:
    f.write(run("dnssec-dsfromkey", "-2", K + ".key"))


def sign(name, zsk):
    dst = os.path.join(OUT, name)
    run("dnssec-signzone", "-q", "-P", "-d", OUT, "-o", "tld.", "-3", "-", "-H", "0",
        "-s", "now-3600", "-e", "now+2592000", "-f", dst, src, K, zsk)
    lines = run("ldns-read-zone", dst).splitlines()
    return [l for l in lines if l and not l.startswith(";")]


def tag(base):
    return int(base.rsplit("+", 1)[1])


variants = [sign("s-pub", Z), sign("s-b", B), sign("s-c", C)]


def sigs(lines):
    """(owner, covered) -> RRSIG lines by the ZSK (not the KSK)"""
    m = {}
    for l in lines:
        p = l.split("\t")
        if p[3] != "RRSIG":
            continue
        rd = p[4].split()
        if int(rd[6]) == tag(K):
            continue
        m.setdefault((p[0], rd[0]), []).append(l)
    return m


base = variants[0]
maps = [sigs(v) for v in variants]
keys = sorted(k for k in maps[0] if k[1] != "DNSKEY")
bad = {}
for i, k in enumerate(keys):
    if i % 3:
        bad[k] = maps[i % 3][k]
n_bad = sum(len(v) for v in bad.values())
n_ok = len(keys) - len(bad)


def compose(patch):
    out = []
    for l in base:
        p = l.split("\t")
        if p[3] == "RRSIG" and (p[0], p[4].split()[0]) in bad and \
                int(p[4].split()[6]) != tag(K):
            continue
        out.append(l)
    for k, ls in bad.items():
        for l in ls:
            if patch:
                p = l.split("\t")
                rd = p[4].split(" ")
                rd[6] = str(tag(Z))
                p[4] = " ".join(rd)
                l = "\t".join(p)
            out.append(l)
    return out


for name, patch in (("may-own.zone", False), ("may-patched.zone", True)):
    with open(os.path.join(OUT, name), "w") as f:
        f.write("\n".join(compose(patch)) + "\n")
with open(os.path.join(OUT, "facts"), "w") as f:
    f.write("N_BAD=%d\nN_OK=%d\nTAG_PUB=%d\nTAG_KSK=%d\nTAG_B=%d\nTAG_C=%d\n" % (
        n_bad, n_ok, tag(Z), tag(K), tag(B), tag(C)))
