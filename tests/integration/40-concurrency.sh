#!/usr/bin/env bash
# 40-concurrency: 1000 local connections open at once through one
# memtunnel, each with its own upstream TLS connection, all answered
# correctly (text, then binary protocol).
# heavy
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT_* are set by start_memcached/start_memtunnel

conns=1000
# memtunnel holds two descriptors per connection, mcload one.
want=$((2 * conns + 512))
if [[ $(ulimit -Sn) != unlimited ]] && (($(ulimit -Sn) < want)); then
	ulimit -Sn "$want" 2>/dev/null || fail "raise the open-file limit to $want" "hard limit: $(ulimit -Hn)"
fi
ok "open-file limit $(ulimit -Sn)"

start_memcached MC --extra "-c 4096 -b 4096"
# 1000 handshakes at once take the 2 cores for seconds; the connect
# timeout (5 s by default) is not what this scenario tests, and on a loaded
# VM 595 of 1000 connections hit it (make check failed so once).
start_memtunnel MT --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	--connect-timeout 60

for flag in "" --binary; do
	before=$(mc_stat "$MC_NOTLS_PORT" total_connections)
	start=$(now_ms)
	# shellcheck disable=SC2086 # empty flag on purpose
	out=$(mcload --port "$MT_PORT" --timeout 60 concurrent $flag --conns "$conns" 2>&1) ||
		fail "mcload concurrent ${flag:---text} --conns $conns" "$out"
	ms=$(($(now_ms) - start))
	assert_match "$out" "mode=concurrent conns=$conns ok=$conns failed=0" \
		"$conns concurrent connections (${flag:---text}) all answered correctly in $ms ms"
	after=$(mc_stat "$MC_NOTLS_PORT" total_connections)
	assert_le $((before + conns)) "$after" "memcached accepted $((after - before)) connections for $conns local ones (${flag:---text})"
done

assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error lines from memtunnel"
assert_alive MT
stop_memtunnel MT
