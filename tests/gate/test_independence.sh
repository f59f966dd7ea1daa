#!/usr/bin/env bash
# tests/gate/test_independence.sh - DESIGN.md invariant 2: gate/ includes
# only its own headers, ldns and OpenSSL (and libc); gate/meson.build uses
# only ldns, libcrypto and threads; zonegate links neither libp11 nor
# libzscanner and holds no PKCS11_ symbols.
. "$ZG_SRC/tests/lib/tap.sh"
for t in readelf nm ldd; do
    command -v "$t" >/dev/null || skip_all "$t not installed"
done
G=$ZG_SRC/gate
ZG=$ZG_BUILD/gate/zonegate
check "gate/ has sources" bash -c 'ls "$1"/*.c >/dev/null' _ "$G"
bad=$(grep -HnE '^[[:space:]]*#[[:space:]]*include' "$G"/*.c "$G"/*.h |
    grep -vE '#[[:space:]]*include[[:space:]]*("gate/[a-z_]+\.h"|<ldns/[a-z_0-9]+\.h>|<openssl/[a-z_0-9]+\.h>|<(assert|ctype|errno|fcntl|getopt|inttypes|malloc|libgen|limits|poll|pthread|signal|stdarg|stdbool|stddef|stdint|stdio|stdio_ext|stdlib|string|strings|time|unistd)\.h>|<sys/(mman|socket|stat|types|wait)\.h>)')
if [ -z "$bad" ]; then ok "gate/ includes only gate/, ldns, OpenSSL and libc headers"
else not_ok "gate/ includes something else"; diag "$bad"; fi
check "no hsm/ or signer/ header in gate/" \
    bash -c '! grep -rEn "(hsm|signer)/[a-z_]+\.h|libp11\.h|pkcs11\.h|libzscanner|knot/" "$1"' _ "$G"
check "no source file shared with hsm/ or signer/ (by name or content)" \
    bash -c 'for f in "$1"/gate/*.c "$1"/gate/*.h; do
        for d in hsm signer; do
            [ -d "$1/$d" ] || continue
            for g in "$1/$d"/*.[ch]; do [ -e "$g" ] && cmp -s "$f" "$g" && exit 1; done
        done
    done; exit 0' _ "$ZG_SRC"
deps=$(grep -v '^[[:space:]]*#' "$G/meson.build" | grep -oE '[a-z_0-9]+_dep\b' | sort -u | tr '\n' ' ')
check "gate/meson.build depends only on ldns, libcrypto, threads (and declares gate_dep): $deps" \
    [ "$deps" = "gate_dep ldns_dep libcrypto_dep threads_dep " ]
check "gate/meson.build names no hsm/signer/libp11/zscanner" \
    bash -c '! grep -v "^[[:space:]]*#" "$1" | grep -Eiq "hsm|signer|p11|zscanner|knot"' _ "$G/meson.build"
check "zonegate was built" [ -x "$ZG" ]
needed=$(readelf -d "$ZG" | grep NEEDED)
check "readelf: zonegate needs libldns and libcrypto" \
    bash -c 'grep -q libldns <<<"$1" && grep -q libcrypto <<<"$1"' _ "$needed"
check "readelf: zonegate does not need libp11, libzscanner, p11-kit or libknot" \
    bash -c '! grep -Eiq "libp11|zscanner|p11-kit|libknot|softhsm" <<<"$1"' _ "$needed"
check "ldd: no libp11, libzscanner or libknot loaded" \
    bash -c '! ldd "$1" | grep -Eiq "libp11|zscanner|libknot|p11-kit"' _ "$ZG"
check "nm -D: no PKCS11_ or C_ (PKCS#11) symbols" \
    bash -c '! nm -D "$1" | grep -Eq " (PKCS11_|C_GetFunctionList|C_Sign)"' _ "$ZG"
check "nm: no global hsm_ or signer_ symbols (library code of hsm/ or signer/) in zonegate" \
    bash -c '! nm "$1" 2>/dev/null | grep -Eq " [TDB] (hsm|signer)_"' _ "$ZG"
done_testing
