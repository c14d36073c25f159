#!/usr/bin/env bash
# 82-expiry-stats: operability lines of issue 6.
#   - a server certificate that expires in 3 days: one warn line with its
#     date at the first connection; 30 days: none (default 14-day window);
#     MEMTUNNEL_EXPIRY_WARN_DAYS=40 makes the 30-day one warn too.
#   - MEMTUNNEL_STATS_INTERVAL=1: l2met stats lines per upstream whose
#     counts match the traffic this scenario generated, and a final line
#     at exit.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # SOON*_*, MC_*, MT*_* are set by lib.sh

start_memcached SOON3 --cert soon3
start_memcached SOON30 --cert soon30

expires3=$(date -u -d "$(openssl x509 -noout -enddate -in "$PKI/soon3.crt" | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)

start_memtunnel MT --servers "localhost:$SOON3_PORT,localhost:$SOON30_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt"
read -r p3 p30 <<<"$MT_PORTS"
mcload --port "$p3" setget >/dev/null || fail "set/get through the 3-day server"
mcload --port "$p30" setget >/dev/null || fail "set/get through the 30-day server"
wait_log "$T/MT.log" "at=cert-expiring upstream=localhost:$SOON3_PORT " 5 ||
	fail "a warn line for the certificate that expires in 3 days"
line=$(grep "at=cert-expiring upstream=localhost:$SOON3_PORT " "$T/MT.log")
assert_match "$line" "level=warn " "the expiry line is a warning"
assert_match "$line" "not_after=$expires3 " "it carries the certificate's date ($expires3)"
assert_match "$line" "days_left=2 " "and the whole days left"
assert_eq 1 "$(count_log "$T/MT.log" 'at=cert-expiring')" "exactly one expiry line: none for the 30-day certificate"
mcload --port "$p3" setget >/dev/null || fail "a second set/get"
assert_eq 1 "$(count_log "$T/MT.log" 'at=cert-expiring')" "and only at the first connection"
stop_memtunnel MT

MEMTUNNEL_EXPIRY_WARN_DAYS=40 start_memtunnel MT40 --servers "localhost:$SOON30_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt"
mcload --port "$MT40_PORT" setget >/dev/null || fail "set/get through the 30-day server"
wait_log "$T/MT40.log" "at=cert-expiring upstream=localhost:$SOON30_PORT .*days_left=29 " 5 ||
	fail "MEMTUNNEL_EXPIRY_WARN_DAYS=40: the 30-day certificate warns"
ok "MEMTUNNEL_EXPIRY_WARN_DAYS=40: the 30-day certificate warns"
stop_memtunnel MT40

# ---- stats: 5 set/gets through node A, 2 through node B, 1 failure on C.
start_memcached MC
dead=$(free_port)
MEMTUNNEL_STATS_INTERVAL=1 start_memtunnel ST \
	--servers "localhost:$MC_PORT,localhost:$SOON30_PORT,127.0.0.1:$dead" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --prewarm 0
read -r pa pb pc <<<"$ST_PORTS"
for _ in 1 2 3 4 5; do mcload --port "$pa" setget --size 100 >/dev/null || fail "set/get via A"; done
for _ in 1 2; do mcload --port "$pb" setget --size 100 >/dev/null || fail "set/get via B"; done
tcp_probe "$pc" >/dev/null || true
# The counts of one interval add up over the lines of this run.
sum() { # sum UPSTREAM FIELD
	grep "at=stats upstream=$1 " "$T/ST.log" | sed -n "s/.* $2=\([0-9]*\).*/\1/p" |
		awk '{s += $1} END {print s + 0}'
}
at_least() { # at_least N UPSTREAM FIELD
	[[ $(sum "$2" "$3") -ge $1 ]]
}
wait_until 5 at_least 5 "localhost:$MC_PORT" 'count#memtunnel.connections.accepted' ||
	fail "stats lines count node A's 5 connections" "$(grep at=stats "$T/ST.log")"
wait_until 5 at_least 1 "127.0.0.1:$dead" 'count#memtunnel.connect.failures' ||
	fail "stats lines count node C's refused connection" "$(grep at=stats "$T/ST.log")"
stop_memtunnel ST
assert_eq 5 "$(sum "localhost:$MC_PORT" 'count#memtunnel.connections.accepted')" "node A: accepted=5 in all"
assert_eq 2 "$(sum "localhost:$SOON30_PORT" 'count#memtunnel.connections.accepted')" "node B: accepted=2 in all"
assert_eq 1 "$(sum "127.0.0.1:$dead" 'count#memtunnel.connections.accepted')" "node C: accepted=1 in all"
assert_eq 1 "$(sum "127.0.0.1:$dead" 'count#memtunnel.connect.failures')" "node C: connect.failures=1"
assert_eq 0 "$(sum "localhost:$MC_PORT" 'count#memtunnel.verify.failures')" "node A: verify.failures=0"
# mcload setget --size 100 sends a set and two gets per run: the byte
# counts are the same every run, so node A's are 5/2 of node B's.
up_a=$(sum "localhost:$MC_PORT" 'count#memtunnel.bytes.up')
up_b=$(sum "localhost:$SOON30_PORT" 'count#memtunnel.bytes.up')
assert_eq $((up_b * 5)) $((up_a * 2)) "bytes.up: node A carried 5/2 of node B's ($up_a vs $up_b)"
[[ $up_b -gt 200 ]] || fail "bytes.up counts plaintext bytes (node B: $up_b)"
ok "bytes.up counts each set/get ($((up_b / 2)) bytes each)"
assert_match "$(grep "at=stats upstream=localhost:$MC_PORT " "$T/ST.log" | grep -m1 handshake.p50)" \
	'sample#memtunnel.handshake.p50=[0-9]+\.[0-9]{3}ms' "a handshake p50 in ms"
assert_match "$(tail -n 3 "$T/ST.log")" "at=stats upstream=127.0.0.1:$dead " "a final stats line at exit"
