#!/usr/bin/env bash
# 83-prewarm: pre-warmed connections. --prewarm 2 has two verified TLS
# connections ready before any client comes; a client is paired with one
# and its request works; the taken spare is replaced once that client has
# its first reply, or a few milliseconds after it connected when it sends
# nothing, by resuming the session once there is one. Spares the server closes for
# idleness are replaced, and a client is never handed a closed one.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# Every client here needs a connection of its own, which is what this
# shows; reuse (25-reuse) would give it a pooled one.
export MEMTUNNEL_REUSE=off
# shellcheck disable=SC2153,SC2154 # UP_*, MT_* are set by start_memcached/start_memtunnel

start_memcached UP
start_memtunnel MT --servers "localhost:$UP_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	--prewarm 2 --log-level debug
connected='level=debug at=connected upstream=localhost:'
assert_eq 2 "$(wait_count "$T/MT.log" "$connected" 2)" "two spares are connected and verified before any client"
assert_eq 0 "$(count_log "$T/MT.log" 'at=paired ')" "no client yet, nothing paired"

out=$(mcload --port "$MT_PORT" --timeout 10 setget --key warm 2>&1) || fail "setget through a spare" "$out"
assert_match "$out" 'ok=1' "a client's set and get go through a pre-warmed connection"
assert_eq 1 "$(count_log "$T/MT.log" 'at=paired ')" "the client was paired with a spare"
assert_eq 3 "$(wait_count "$T/MT.log" "$connected" 3)" "the taken spare is replaced"
assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error line"

# A client that connects and says nothing: its spare is replaced anyway,
# well before it sends anything.
exec {silent}<>"/dev/tcp/127.0.0.1/$MT_PORT"
assert_eq 2 "$(wait_count "$T/MT.log" 'at=paired ' 2)" "a silent client is paired too"
assert_eq 4 "$(wait_count "$T/MT.log" "$connected" 4 2)" "its spare is replaced while it is silent"
printf 'get warm\r\n' >&"$silent"
reply=$(timeout 5 head -c 40 <&"$silent" | tr -d '\r') || true
exec {silent}>&-
assert_match "$reply" '^VALUE warm ' "the silent client's late request is answered"

# Ten clients in a row, each once the last one's replacement is up (a
# client sooner than a handshake may find no spare, by design): each is
# paired at once, each works, and exactly one spare per client is made.
for i in $(seq 1 10); do
	[[ $(wait_count "$T/MT.log" "$connected" $((4 + i - 1))) -eq $((4 + i - 1)) ]] ||
		fail "client $i: the previous client's spare was replaced"
	out=$(mcload --port "$MT_PORT" --timeout 10 setget --key "row$i" 2>&1) || fail "setget $i" "$out"
	assert_match "$out" 'ok=1' "client $i in a row works" >/dev/null
done
ok "ten clients in a row work"
assert_eq 12 "$(count_log "$T/MT.log" 'at=paired ')" "each of them was paired with a spare"
assert_eq 14 "$(wait_count "$T/MT.log" "$connected" 14)" "one replacement per taken spare"
# The first client's first reply brought the session; every replacement
# started after it resumes.  (The first replacement may start before that
# reply, 10 ms after the client came, on a busy machine: it is not counted.)
assert_eq 11 "$(grep "$connected" "$T/MT.log" | sed -n '4,14p' | grep -c ' resumed=yes ')" \
	"the replacements after the first reply resume the upstream's TLS session"
# Absence over a bounded interval: nothing to synchronise on but time.
sleep 0.3
assert_eq 14 "$(count_log "$T/MT.log" "$connected")" "no more spares than taken: still 14 connections after 300 ms"
stop_memtunnel MT
stop_memcached UP

# A server that closes idle connections after 1 s: spares are closed under
# memtunnel and replaced; clients arriving at any moment, including just
# as the server closes, always get a working connection.
start_memcached IDLE --extra "-o idle_timeout=1"
start_memtunnel MT --servers "localhost:$IDLE_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	--prewarm 1 --log-level debug
wait_log "$T/MT.log" 'at=spare-closed ' 10
ok "a spare the server closed for idleness is noticed"
assert_le 2 "$(wait_count "$T/MT.log" "$connected" 2)" "and replaced"
# Three rounds: a client right after the server closed a spare (its
# replacement may still be on the way), then clients 0-490 ms apart.
n=0
for round in 1 2 3; do
	closed=$(count_log "$T/MT.log" 'at=spare-closed ')
	assert_eq $((closed + 1)) "$(wait_count "$T/MT.log" 'at=spare-closed ' $((closed + 1)) 10)" \
		"round $round: the server closes an idle spare" >/dev/null
	for _ in 1 2 3 4 5; do
		n=$((n + 1))
		out=$(mcload --port "$MT_PORT" --timeout 10 setget --key "idle$n" 2>&1) || fail "setget $n under idle closes" "$out"
		[[ $out == *ok=1* ]] || fail "client $n under idle closes works" "$out"
		sleep "0.$((RANDOM % 50))"
	done
done
ok "$n clients all worked while the server closed $(count_log "$T/MT.log" 'at=spare-closed ') idle spares"
assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no client saw a closed connection: no warn or error line"
assert_alive MT
stop_memtunnel MT
stop_memcached IDLE
