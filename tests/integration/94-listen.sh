#!/usr/bin/env bash
# 94-listen: memtunnel listens on loopback only, unless --listen (or
# MEMTUNNEL_LISTEN) names another address, and then it says so with one
# warn line. The listening sockets are read from the kernel: memtunnel's
# socket descriptors (/proc/PID/fd) matched against the LISTEN rows of
# /proc/net/tcp and /proc/net/tcp6. Each run has two upstreams, so exactly
# two listening sockets, and no other.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, L*_PID are set by lib.sh

# listening PID: one line per listening TCP socket of PID, "ADDRESS PORT"
# (IPv4 dotted, IPv6 compressed).
listening() {
	"$PY" - "$1" <<'EOF'
import ipaddress, os, socket, struct, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir("/proc/%s/fd" % pid):
    try:
        link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
    except OSError:
        continue
    if link.startswith("socket:["):
        inodes.add(link[8:-1])
for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
    with open(path) as f:
        next(f)
        for row in f:
            col = row.split()
            if col[3] != "0A" or col[9] not in inodes:
                continue
            hexaddr, hexport = col[1].split(":")
            raw = bytes.fromhex(hexaddr)
            if v6:
                # Four host-order 32-bit words.
                raw = b"".join(struct.pack(">I", w) for w in struct.unpack("<4I", raw))
                addr = ipaddress.IPv6Address(raw)
            else:
                addr = ipaddress.IPv4Address(struct.unpack("<I", raw)[0])
            print(addr.compressed, int(hexport, 16))
EOF
}

# start_any VAR ARGS...: memtunnel in tunnel-only mode on any address
# (start_memtunnel insists on 127.0.0.1); sets VAR_PID and VAR_PORT (the
# first listener's port) from its MEMCACHE_SERVERS line.
start_any() {
	local var=$1 line
	shift
	bg_start "$var" "$MEMTUNNEL" "$@"
	wait_log "$T/$var.out" '^MEMCACHE_SERVERS=' 10
	line=$(sed -n 's/^MEMCACHE_SERVERS=//p' "$T/$var.out")
	line=${line%%,*}
	printf -v "${var}_PORT" '%s' "${line##*:}"
}

start_memcached MC
servers="localhost:$MC_PORT,127.0.0.1:$MC_PORT"
# shellcheck disable=SC2016 # the child's variable
child='echo "MEMCACHE_SERVERS=$MEMCACHE_SERVERS"; exec sleep 30'

# check NAME WANT_WARN ADDR_REGEX: memtunnel NAME (already started) has two
# listening sockets, both matching ADDR_REGEX, and logged the warn or not.
check() {
	local name=$1 want_warn=$2 regex=$3 pidvar=${1}_PID socks n
	socks=$(listening "${!pidvar}")
	n=$(grep -c . <<<"$socks" || true)
	assert_eq 2 "$n" "$name: two listening sockets ($(paste -sd, <<<"$socks"))"
	while read -r addr port; do
		assert_match "$addr" "$regex" "$name: listens on $addr port $port"
	done <<<"$socks"
	local warns
	warns=$(count_log "$T/$name.log" '^memtunnel level=warn at=listening-publicly ')
	assert_eq "$want_warn" "$warns" "$name: $want_warn listening-publicly warn line(s)"
}

# Wrapper mode, no --listen: 127.0.0.1, ephemeral ports.
# shellcheck disable=SC2016 # the child's variable
start_memtunnel LWRAP --servers "$servers" --ca "$PKI/ca.crt" -- sh -c "$child"
check LWRAP 0 '^127\.0\.0\.1$'
out=$(mcload --port "$LWRAP_PORT" setget 2>&1) || fail "setget through the default listener" "$out"
assert_match "$out" 'ok=1' "LWRAP: the default listener works"

# Tunnel-only mode, no --listen: 127.0.0.1:11211 and 11212, when free.
# Two runs of the scenarios at once (two checkouts, say): the other's 94
# waits for this part to end (the lock goes with the process).
exec {default_ports_lock}>"${TMPDIR:-/tmp}/memtunnel-it-default-ports.lock"
flock -w 60 "$default_ports_lock" || fail "the lock on the default ports"
if [[ $(tcp_probe 11211 "" 1) == refused* && $(tcp_probe 11212 "" 1) == refused* ]]; then
	start_memtunnel LTUNNEL --servers "$servers" --ca "$PKI/ca.crt"
	check LTUNNEL 0 '^127\.0\.0\.1$'
	assert_eq "127.0.0.1:11211,127.0.0.1:11212" "$LTUNNEL_SERVERS" "LTUNNEL: the default ports 11211 and 11212"
	stop_memtunnel LTUNNEL
else
	echo "ok $((_lib_n + 1)) - # SKIP tunnel-only default address: 11211 or 11212 is in use here"
	_lib_n=$((_lib_n + 1))
fi
exec {default_ports_lock}>&-

# Other loopback addresses: no warn.
start_any LLOOP2 --servers "$servers" --ca "$PKI/ca.crt" --listen 127.0.0.2:0
check LLOOP2 0 '^127\.0\.0\.2$'
if "$PY" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	start_any LLOOP6 --servers "$servers" --ca "$PKI/ca.crt" --listen '[::1]:0'
	check LLOOP6 0 '^::1$'
	out=$(mcload --host ::1 --port "$LLOOP6_PORT" setget 2>&1) || fail "setget through [::1]" "$out"
	assert_match "$out" 'ok=1' "LLOOP6: the listener on ::1 works"
else
	echo "ok $((_lib_n + 1)) - # SKIP no IPv6 loopback here"
	_lib_n=$((_lib_n + 1))
fi

# Named non-loopback addresses: they are used, with one warn.
start_any LANY --servers "$servers" --ca "$PKI/ca.crt" --listen 0.0.0.0:0
check LANY 1 '^0\.0\.0\.0$'
out=$(mcload --port "$LANY_PORT" setget 2>&1) || fail "setget through 0.0.0.0" "$out"
assert_match "$out" 'ok=1' "LANY: the listener on 0.0.0.0 works"
echo "# $(grep 'at=listening-publicly' "$T/LANY.log")"
MEMTUNNEL_LISTEN=0.0.0.0:0 start_any LENV --servers "$servers" --ca "$PKI/ca.crt"
check LENV 1 '^0\.0\.0\.0$'
start_any LANY6 --servers "$servers" --ca "$PKI/ca.crt" --listen '[::]:0'
check LANY6 1 '^::$'
# The machine's own non-loopback address, when it has one.
ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9.]+$' | grep -v '^127\.' | head -n1 || true)
if [[ -n $ip ]]; then
	start_any LHOST --servers "$servers" --ca "$PKI/ca.crt" --listen "$ip:0"
	check LHOST 1 "^${ip//./\\.}\$"
else
	echo "ok $((_lib_n + 1)) - # SKIP no non-loopback IPv4 address on this machine"
	_lib_n=$((_lib_n + 1))
fi

# Wrapper mode: SIGTERM reaches the child (sleep), which dies of it: 143.
kill -TERM "$LWRAP_PID"
_lib_wait_exit "$LWRAP_PID" 10 || fail "LWRAP exits on SIGTERM"
st=0
wait "$LWRAP_PID" || st=$?
_lib_untrack "$LWRAP_PID"
assert_eq 143 "$st" "LWRAP exits 143 (its child died of the forwarded SIGTERM)"
for v in LLOOP2 LLOOP6 LANY LENV LANY6 LHOST; do
	pidvar=${v}_PID
	[[ -n ${!pidvar:-} ]] || continue
	bg_stop "$v"
	st=${v}_STATUS
	assert_eq 0 "${!st}" "$v exits 0 on SIGTERM"
done
