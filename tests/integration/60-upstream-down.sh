#!/usr/bin/env bash
# 60-upstream-down: an upstream that is down. Each client connection is
# closed promptly (< 1 s) with one connect-failed warn line; once memcached
# is back on that port, new connections work without restarting memtunnel.
# Twice, so the second return also covers a TLS session from before the
# restart.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # UP_*, MT_* are set by start_memcached/start_memtunnel

# Learn two ports memcached can bind, then free them.
start_memcached UP
stop_memcached UP
r=$(tcp_probe "$UP_PORT" "" 1)
assert_match "$r" '^refused ' "nothing listens on the upstream port $UP_PORT"

start_memtunnel MT --servers "localhost:$UP_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --connect-timeout 3
ok "memtunnel starts while its upstream is down"

request='set down 0 0 4\r\ndown\r\nget down\r\n'
for round in 1 2; do
	before=$(count_log "$T/MT.log" "at=connect-failed ")
	for payload in "" "$request"; do
		r=$(tcp_probe "$MT_PORT" "$payload" 5)
		read -r state ms bytes <<<"$r"
		[[ $state == closed && $bytes == 0 ]] ||
			fail "round $round: the client connection is closed without a reply" "probe: $r"
		assert_lt "$ms" 1000 "round $round: connection ${payload:+with a request }closed without a reply in $ms ms"
	done
	line="level=warn at=connect-failed upstream=localhost:$UP_PORT reason=\"connection refused\""
	assert_eq $((before + 2)) "$(wait_count "$T/MT.log" "$line" $((before + 2)))" \
		"round $round: one connect-failed warn line per refused connection"
	assert_alive MT

	restart_memcached UP
	start=$(now_ms)
	out=$(mcload --port "$MT_PORT" --timeout 10 setget --key "back$round" 2>&1) ||
		fail "round $round: setget once the upstream is back" "$out"
	assert_match "$out" 'ok=1' "round $round: the upstream is back: setget works without restarting memtunnel ($(($(now_ms) - start)) ms)"
	assert_eq 1 "$(mc_stat "$UP_NOTLS_PORT" cmd_set)" "round $round: the restarted server got the set"
	out=$(mcload --port "$MT_PORT" --timeout 10 setget --binary --key "bin$round" 2>&1) ||
		fail "round $round: binary setget once the upstream is back" "$out"
	assert_match "$out" 'ok=1' "round $round: binary setget works too"
	stop_memcached UP
done

assert_alive MT
stop_memtunnel MT
