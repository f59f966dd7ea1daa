# tests/lib/filekeys.sh - a zone signed with BIND file keys, for gate tests
# that need real signed zones but no HSM (sourced after tap.sh).
#
# zg_filekeys DIR ORIGIN: a KSK and a ZSK (ECDSAP256SHA256) in DIR/keys, the
#   parent's DS (SHA-256) in DIR/ds.txt; ZG_FK_DIR, ZG_FK_ORIGIN, ZG_FK_KSK
#   and ZG_FK_ZSK name them for zg_filesign.
# zg_filesign BASE SERIAL OUT: the zone text BASE with " SERIAL " replaced
#   by SERIAL, signed (NSEC3, no salt, 0 iterations, valid from an hour ago
#   for 30 days) into OUT; the unsigned text is left in DIR/uSERIAL.
zg_filekeys() {
    ZG_FK_DIR=$1
    ZG_FK_ORIGIN=$2
    mkdir -p "$1/keys"
    ZG_FK_KSK=$(dnssec-keygen -q -K "$1/keys" -a ECDSAP256SHA256 -f KSK "$2")
    ZG_FK_ZSK=$(dnssec-keygen -q -K "$1/keys" -a ECDSAP256SHA256 "$2")
    dnssec-dsfromkey -2 "$1/keys/$ZG_FK_KSK.key" >"$1/ds.txt"
}
zg_filesign() {
    local d=$ZG_FK_DIR
    sed "s/ SERIAL / $2 /" "$1" >"$d/u$2"
    cat "$d/keys/$ZG_FK_KSK.key" "$d/keys/$ZG_FK_ZSK.key" >>"$d/u$2"
    dnssec-signzone -q -d "$d" -o "$ZG_FK_ORIGIN" -3 - -H 0 -f "$3" \
        -s now-3600 -e now+2592000 "$d/u$2" "$d/keys/$ZG_FK_KSK" \
        "$d/keys/$ZG_FK_ZSK" >/dev/null 2>&1
}
