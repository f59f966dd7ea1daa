# scripts/bench.d/count-rrsig.awk - count RRSIG records in a zone file in
# presentation format, whichever signer wrote it: one record per line
# (Knot, ldns, OpenDNSSEC, zonesign) or multi-line records with
# parentheses and omitted owners (dnssec-signzone).
#
# A record starts on a line read outside parentheses.  Its type is the
# first field among the first five that is a type mnemonic (upper case,
# not a class); the record is counted when that type is RRSIG.  Type
# names inside an NSEC/NSEC3 bitmap come after the record's own type, so
# they are never taken for it.  Comments (';' to end of line) are dropped;
# the zones benchmarked carry no ';' inside quoted strings.
#
#   awk -f count-rrsig.awk ZONE        prints the count
BEGIN { depth = 0; n = 0 }
{
    line = $0
    sub(/;.*/, "", line)
    if (depth == 0 && line !~ /^[ \t]*$/ && line !~ /^\$/) {
        k = split(line, f, /[ \t]+/)
        for (i = 1; i <= k && i <= 6; i++) {
            if (f[i] == "" || f[i] == "IN" || f[i] == "CH" || f[i] == "HS")
                continue
            if (f[i] ~ /^[A-Z][A-Z0-9-]*$/) {
                if (f[i] == "RRSIG")
                    n++
                break
            }
        }
    }
    opens = gsub(/\(/, "(", line)
    closes = gsub(/\)/, ")", line)
    depth += opens - closes
    if (depth < 0)
        depth = 0
}
END { print n }
