#!/usr/bin/env bash
# The quick-start demo (`make demo`): a real memcached that speaks only TLS,
# memtunnel in front of it, and a plain memcache client that stores and
# reads a value through the tunnel. Everything runs on loopback with a
# throwaway CA, and is stopped and removed at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
memtunnel=${MEMTUNNEL:-$root/bin/memtunnel}
py=/usr/bin/python3

say() { printf '==> %s\n' "$*"; }
detail() { printf '    %s\n' "$@"; }
die() {
	printf 'demo failed: %s\n' "$1" >&2
	shift
	local f
	for f in "$@"; do
		[[ -s $f ]] || continue
		printf -- '--- %s\n' "${f##*/}" >&2
		tail -n 20 "$f" >&2
	done
	exit 1
}

[[ -x $memtunnel ]] || die "$memtunnel is not built (run make)"
command -v memcached >/dev/null || die "memcached is not installed (tests/deps.sh test)"
"$py" -c 'import pymemcache' 2>/dev/null || die "python3-pymemcache is not installed (tests/deps.sh test)"

dir=$(mktemp -d "${TMPDIR:-/tmp}/memtunnel-demo.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

# wait_for SECONDS CMD...: poll CMD every 50 ms.
wait_for() {
	local tries=$(($1 * 20))
	shift
	until "$@"; do
		((--tries > 0)) || return 1
		sleep 0.05
	done
}

say "Generating a throwaway CA and a certificate for localhost"
"$root/tests/pki.sh" "$dir/pki" >"$dir/pki.log" 2>&1 || die "could not generate certificates" "$dir/pki.log"
detail "$(openssl x509 -in "$dir/pki/server.crt" -noout -subject -ext subjectAltName | tr -s '\n ' ' ')"

say "Starting memcached with TLS only (no plaintext port)"
user=()
[[ $(id -u) -ne 0 ]] || user=(-u root) # memcached refuses to run as root without -u
MEMCACHED_PORT_FILENAME=$dir/memcached.ports memcached "${user[@]}" -U 0 -p -1 -l 127.0.0.1 \
	-Z -o "ssl_chain_cert=$dir/pki/server-chain.crt,ssl_key=$dir/pki/server.key" \
	>"$dir/memcached.log" 2>&1 &
pids+=($!)
wait_for 10 test -s "$dir/memcached.ports" || die "memcached did not start" "$dir/memcached.log"
mc_port=$(awk '/^TCP INET: / { print $3; exit }' "$dir/memcached.ports")
detail "$(memcached -V) listening with TLS on 127.0.0.1:$mc_port"

say "Starting memtunnel in front of it"
args=(--servers "localhost:$mc_port" --listen 127.0.0.1:0 --ca "$dir/pki/ca.crt" --log-level debug)
detail "memtunnel ${args[*]//"$dir"/\$DEMO}"
"$memtunnel" "${args[@]}" >"$dir/memtunnel.out" 2>"$dir/memtunnel.log" &
mt_pid=$!
pids+=("$mt_pid")
has_servers() { grep -q '^MEMCACHE_SERVERS=' "$dir/memtunnel.out" || ! kill -0 "$mt_pid" 2>/dev/null; }
wait_for 10 has_servers || die "memtunnel printed no MEMCACHE_SERVERS line" "$dir/memtunnel.log"
servers=$(grep -m1 '^MEMCACHE_SERVERS=' "$dir/memtunnel.out") || die "memtunnel exited" "$dir/memtunnel.log"
detail "$servers"
local_addr=${servers#MEMCACHE_SERVERS=}
local_port=${local_addr##*:}

value="hello through memtunnel, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "A plain memcache client (pymemcache) talks to $local_addr"
out=$("$py" - "$local_port" "$value" <<'EOF' 2>&1
import sys
from pymemcache.client.base import Client
c = Client(("127.0.0.1", int(sys.argv[1])), connect_timeout=5, timeout=5)
stored = c.set("demo:greeting", sys.argv[2].encode(), noreply=False)
print("set demo:greeting = %r -> %s" % (sys.argv[2], "STORED" if stored else "NOT STORED"))
got = c.get("demo:greeting")
print("get demo:greeting ->", repr(got.decode()) if got is not None else "(miss)")
c.close()
sys.exit(0 if got == sys.argv[2].encode() else 1)
EOF
) || die "set/get through the tunnel failed: $out" "$dir/memtunnel.log" "$dir/memcached.log"
while IFS= read -r line; do detail "$line"; done <<<"$out"

say "Reading it straight from memcached over TLS (openssl s_client), bypassing memtunnel"
direct=$(printf 'get demo:greeting\r\nquit\r\n' |
	timeout 10 openssl s_client -connect "127.0.0.1:$mc_port" -servername localhost \
		-CAfile "$dir/pki/ca.crt" -verify_return_error -quiet 2>/dev/null | tr -d '\r') ||
	die "could not read the value back over TLS" "$dir/memcached.log"
[[ $direct == *"$value"* ]] || die "memcached does not hold the value: $direct"
detail "memcached holds '$value'"

say "memtunnel's log"
wait_for 5 grep -q 'at=connected' "$dir/memtunnel.log" || true
while IFS= read -r line; do detail "$line"; done <"$dir/memtunnel.log"
tls=$(grep -m1 -o 'tls=[^ ]*' "$dir/memtunnel.log" || true)

kill -TERM "$mt_pid"
status=0
wait "$mt_pid" || status=$?
[[ $status -eq 0 ]] || die "memtunnel exited $status on SIGTERM" "$dir/memtunnel.log"

say "OK: the value went client -> memtunnel (plaintext, loopback) -> memcached (${tls#tls=}${tls:+, }certificate verified) and back."
