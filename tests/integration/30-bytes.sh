#!/usr/bin/env bash
# 30-bytes: byte-exact tunnelling. 1 MiB values in both protocols (compared
# through the tunnel and on the server itself), then >= 100 000 random
# pipelined operations with random value sizes per protocol, and a smaller
# pipelined run with values up to 1 MiB: 0 mismatches, 0 errors.
#
# The pipelined runs reach memcached through stunnel acting as the TLS
# server, not through memcached's own TLS: memcached 1.6.18 (-Z) stalls on
# pipelined input. When the tail of a value and the next request arrive in
# one TLS record, it reads the value with an exact-length SSL_read, leaves
# the next request in OpenSSL's buffer and waits for the socket, which
# stays quiet if the client is waiting for that answer. It happens without
# memtunnel too (python's ssl module sending "set k 0 0 17000 noreply" +
# value + "get k" in one write, or stunnel as the client under the same
# mcload pipeline), so it says nothing about memtunnel.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, ST_*, MT_* are set by the start helpers

start_memcached MC
start_tls_terminator ST "$MC_NOTLS_PORT"
start_memtunnel MT --servers "localhost:$MC_PORT,localhost:$ST_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
read -r _ pipe_port <<<"$MT_PORTS"
tunnel=127.0.0.1:$MT_PORT

# 1 MiB through libmemcached's tools, compared on both sides.
mkdir -p "$T/files"
for proto in text binary; do
	flag=()
	[[ $proto == text ]] || flag=(--binary)
	f=mib-$proto.bin
	head -c 1048576 /dev/urandom >"$T/files/$f"
	out=$(cd "$T/files" && memccp "${flag[@]}" --servers="$tunnel" "$f" 2>&1) || fail "memccp 1 MiB ($proto)" "$out"
	out=$(memccat "${flag[@]}" --servers="$tunnel" --file="$T/back-$f" "$f" 2>&1) || fail "memccat 1 MiB ($proto)" "$out"
	cmp "$T/files/$f" "$T/back-$f" || fail "1 MiB value ($proto) is byte-identical after the round trip"
	ok "1 MiB value ($proto): byte-identical round trip through the tunnel"
	out=$(memccat --servers="127.0.0.1:$MC_NOTLS_PORT" --file="$T/direct-$f" "$f" 2>&1) || fail "memccat 1 MiB directly ($proto)" "$out"
	cmp "$T/files/$f" "$T/direct-$f" || fail "1 MiB value ($proto): the server holds exactly the bytes sent"
	ok "1 MiB value ($proto): the server holds exactly the bytes sent"
done

# mcload plants CR LF, NUL and protocol-looking tokens in its values.
for flag in "" --binary; do
	# shellcheck disable=SC2086 # empty flag on purpose
	out=$(mcload --port "$MT_PORT" setget $flag --size 1M 2>&1) || fail "mcload setget $flag --size 1M" "$out"
	assert_match "$out" 'ok=1' "mcload setget ${flag:---text} --size 1M through the tunnel"
done

# summary_ok OUT OPS DESC: a pipeline summary with at least OPS operations,
# no mismatch and no error.
summary_ok() {
	local ops
	ops=$(sed -n 's/.*mode=pipeline ops=\([0-9]*\) .*/\1/p' <<<"$1")
	[[ -n $ops ]] || fail "$3" "no summary: $1"
	assert_le "$2" "$ops" "$3: $ops operations"
	assert_match "$1" ' mismatches=0 errors=0 ' "$3: 0 mismatches, 0 errors"
}

for flag in "" --binary; do
	# shellcheck disable=SC2086 # empty flag on purpose
	out=$(mcload --port "$pipe_port" --timeout 45 pipeline $flag --ops 100000 --conns 4 --depth 64 --max-size 16k 2>&1) ||
		fail "mcload pipeline ${flag:---text} 100000 ops" "$out"
	summary_ok "$out" 100000 "pipeline ${flag:---text}, random sizes up to 16 KiB"
	echo "# $out"
done

for flag in "" --binary; do
	# shellcheck disable=SC2086 # empty flag on purpose
	out=$(mcload --port "$pipe_port" --timeout 45 pipeline $flag --ops 3000 --conns 4 --depth 8 --max-size 1M 2>&1) ||
		fail "mcload pipeline ${flag:---text} values up to 1 MiB" "$out"
	summary_ok "$out" 3000 "pipeline ${flag:---text}, random sizes up to 1 MiB"
	echo "# $out"
done

assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error lines from memtunnel"
assert_alive MT
stop_memtunnel MT
