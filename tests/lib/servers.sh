# tests/lib/servers.sh - real DNS servers on loopback for end-to-end tests.
# Sourced after tap.sh.  Every server runs in the test's temporary
# directory on a free 127.0.0.1 high port, in the foreground of a
# background job, and is stopped by its process id when the test ends.
#
#   zg_free_port                      prints a free TCP/UDP port on 127.0.0.1
#   zg_nsd_start DIR PORT ZONE=FILE.. nsd serving those zone files; with
#                                     ZG_NSD_XFR=1 in the environment it
#                                     also allows AXFR from 127.0.0.1
#   zg_nsd_reload DIR                 re-read the zone files (SIGHUP)
#   zg_unbound_start DIR PORT NSDPORT ANCHOR_FILE ZONE...
#                                     validating unbound; stub zones for
#                                     "." and every ZONE point at nsd
#   zg_dig PORT NAME TYPE             dig +dnssec against 127.0.0.1:PORT
#   zg_stop PID                       stop a server by its process id

zg_free_port() {
    python3 - <<'PY'
import socket
for _ in range(50):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        s.close(); t.close(); continue
    s.close(); t.close()
    if port > 1024:
        print(port); break
PY
}

zg_stop() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

# Waits until the server on PORT answers a query (bounded: 10 s).
zg_wait_port() {
    local port=$1 name=$2 i
    for i in $(seq 1 100); do
        if dig +time=1 +tries=1 +norec -p "$port" @127.0.0.1 "$name" SOA \
            >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

zg_nsd_start() {
    local dir=$1 port=$2 spec name file
    shift 2
    mkdir -p "$dir"
    cat >"$dir/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1
    port: $port
    username: ""
    chroot: ""
    zonesdir: "$dir"
    database: ""
    zonelistfile: "$dir/zone.list"
    xfrdfile: "$dir/xfrd.state"
    xfrdir: "$dir"
    pidfile: "$dir/nsd.pid"
    logfile: "$dir/nsd.log"
    verbosity: 1
    hide-version: yes
    server-count: 1
    tcp-count: 32
    reuseport: no
    do-ip6: no
remote-control:
    control-enable: no
CONF
    for spec in "$@"; do
        name=${spec%%=*}
        file=${spec#*=}
        printf 'zone:\n    name: "%s"\n    zonefile: "%s"\n' "$name" "$file" \
            >>"$dir/nsd.conf"
        if [ -n "${ZG_NSD_XFR:-}" ]; then
            printf '    provide-xfr: 127.0.0.1 NOKEY\n' >>"$dir/nsd.conf"
        fi
    done
    nsd -c "$dir/nsd.conf" -d >>"$dir/nsd.log" 2>&1 &
    ZG_NSD_PID=$!
    zg_on_exit "zg_stop $ZG_NSD_PID"
    local first=${1%%=*}
    zg_wait_port "$port" "$first"
}

zg_nsd_reload() {
    kill -HUP "$ZG_NSD_PID"
    sleep 0.5
}

zg_unbound_start() {
    local dir=$1 port=$2 nsdport=$3 anchor=$4 z
    shift 4
    mkdir -p "$dir"
    cat >"$dir/unbound.conf" <<CONF
server:
    interface: 127.0.0.1
    port: $port
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$dir"
    pidfile: "$dir/unbound.pid"
    logfile: "$dir/unbound.log"
    use-syslog: no
    verbosity: 1
    val-log-level: 2
    do-not-query-localhost: no
    module-config: "validator iterator"
    trust-anchor-file: "$anchor"
    ede: yes
    serve-expired: no
    prefetch: no
    harden-referral-path: no
    qname-minimisation: no
    minimal-responses: no
    root-hints: ""
    # short caches so a test can watch a new version arrive
    cache-max-ttl: ${ZG_UNBOUND_CACHE_MAX:-86400}
    cache-max-negative-ttl: 5
    infra-host-ttl: 5
    val-bogus-ttl: 1
remote-control:
    control-enable: no
stub-zone:
    name: "."
    stub-addr: 127.0.0.1@$nsdport
CONF
    for z in "$@"; do
        printf 'stub-zone:\n    name: "%s"\n    stub-addr: 127.0.0.1@%s\n' \
            "$z" "$nsdport" >>"$dir/unbound.conf"
    done
    unbound -d -c "$dir/unbound.conf" >>"$dir/unbound.log" 2>&1 &
    ZG_UNBOUND_PID=$!
    zg_on_exit "zg_stop $ZG_UNBOUND_PID"
    local i
    for i in $(seq 1 100); do
        dig +time=1 +tries=1 -p "$port" @127.0.0.1 . SOA >/dev/null 2>&1 &&
            return 0
        sleep 0.1
    done
    return 1
}

zg_dig() {
    dig +dnssec +time=3 +tries=1 -p "$1" @127.0.0.1 "$2" "$3"
}

# True if the answer from PORT for NAME TYPE is NOERROR with the AD flag.
zg_validates() {
    local out
    out=$(zg_dig "$@")
    grep -q 'status: NOERROR' <<<"$out" &&
        grep -Eq 'flags:[^;]* ad[ ;]' <<<"$out"
}

# True if the answer is SERVFAIL carrying EDE 6 (DNSSEC Bogus).
zg_bogus() {
    local out
    out=$(zg_dig "$@")
    grep -q 'status: SERVFAIL' <<<"$out" && grep -q 'EDE: 6' <<<"$out"
}
