#!/usr/bin/env bash
# 18-auth-failures: what a failed authentication does, against memcached
# -Z -Y and stand-ins that answer the login wrongly.
#   - wrapper mode, two nodes through MEMTUNNEL_VARS, each with its own
#     pair: MEMCACHIER_SERVERS (the right pair) and MEMCACHEDCLOUD_SERVERS
#     (a wrong password), --auth memcached, no spares, stats every second.
#     A client of the wrong node is closed at once with no byte; exactly one
#     auth-failed line (the refusal, a hint); a second failure right after
#     adds no line; the stats lines count every failure for that node and
#     none for the other; the good node keeps serving and the wrapped child
#     keeps running. Failing clients keep coming until the next line, which
#     is about 10 s after the first and carries suppressed=N;
#   - a spare whose login fails is not handed out: the client is closed
#     with no byte, one line, and the spare is retried with a growing delay
#     (a handful of failures in seconds, not a busy loop);
#   - a server that answers the login wrongly: ERROR (does not take it),
#     STORED with bytes after it, an unknown line, a line over 1 KiB
#     (unexpected answer), closing without a word (closed during it); and
#     a mode that does not match the server: sasl against memcached without
#     SASL, memcached against memcached -S.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # GOOD_*, BAD_*, PLAIN_*, SASL_*, MT*_*, RUN_* are set by lib.sh

cier_user=cier-$(rnd) cier_pass=CierPw-$(rnd)
cloud_user=cloud-$(rnd) cloud_pass=CloudPw-$(rnd)
start_memcached GOOD --ascii-auth "$cier_user" "$cier_pass"
start_memcached BAD --ascii-auth "$cloud_user" "$cloud_pass"

# stats_sum LOG UPSTREAM: the auth failures the stats lines counted.
stats_sum() {
	grep "at=stats upstream=$2 " "$1" | sed -n 's/.* count#memtunnel\.auth\.failures=\([0-9]*\).*/\1/p' |
		awk '{ s += $1 } END { print s + 0 }'
}
stats_at_least() { (($(stats_sum "$1" "$2") >= $3)); }
# setget PORT KEY: a pymemcache set and get through a listener; prints ok.
setget() {
	py_run - "$1" "$2" <<'EOF' 2>&1 || true
import sys
from pymemcache.client.base import Client
c = Client(("127.0.0.1", int(sys.argv[1])), connect_timeout=5, timeout=5)
v = b"\r\nEND\r\nVALUE " + sys.argv[2].encode()
print("ok" if c.set(sys.argv[2], v, noreply=False) and c.get(sys.argv[2]) == v else "wrong value")
EOF
}
# closed_empty PROBE: a tcp_probe line saying the peer closed, no byte sent.
closed_empty() { [[ $1 =~ ^closed\ [0-9]+\ 0$ ]]; }

# ---- two nodes, one with a wrong password ------------------------------------
cat >"$T/child.sh" <<'EOF'
echo "pid $$ $MEMCACHIER_SERVERS $MEMCACHEDCLOUD_SERVERS" >"$1.tmp" && mv "$1.tmp" "$1"
i=0
while [ ! -e "$2" ] && [ $i -lt 4500 ]; do
	sleep 0.02
	i=$((i + 1))
done
[ -e "$2" ]
EOF
bg_start RUN env MEMTUNNEL_VARS="MEMCACHIER_SERVERS MEMCACHEDCLOUD_SERVERS" \
	MEMCACHIER_SERVERS="localhost:$GOOD_PORT" MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass" \
	MEMCACHEDCLOUD_SERVERS="localhost:$BAD_PORT" MEMCACHEDCLOUD_USERNAME="$cloud_user" \
	MEMCACHEDCLOUD_PASSWORD="wrong-$cloud_pass" MEMTUNNEL_STATS_INTERVAL=1 \
	"$MEMTUNNEL" --auth memcached --ca "$PKI/ca.crt" --prewarm 0 -- sh "$T/child.sh" "$T/child.info" "$T/release"
wait_until 10 test -s "$T/child.info" || fail "the wrapped child starts"
read -r _ child_pid good bad <"$T/child.info"
listener_good=${good##*:}
listener_bad=${bad##*:}
ok "the child runs (pid $child_pid) with MEMCACHIER_SERVERS=$good and MEMCACHEDCLOUD_SERVERS=$bad"
assert_eq ok "$(setget "$listener_good" first)" "the good node serves"

probe=$(tcp_probe "$listener_bad" 'get first\r\n' 5)
closed_empty "$probe" || fail "the wrong node's client is closed with no byte" "$probe"
read -r _ ms _ <<<"$probe"
assert_lt "$ms" 2000 "the wrong node's client is closed at once, with no byte ($ms ms)"
failed="level=error at=auth-failed upstream=localhost:$BAD_PORT mode=memcached "
wait_log "$T/RUN.log" "$failed"
first_ms=$(now_ms)
line=$(grep -m1 'at=auth-failed' "$T/RUN.log")
assert_match "$line" ' reason="the server refused the credentials" hint="[^"]+"' "the line has the refusal and a hint"
probe=$(tcp_probe "$listener_bad" 'get second\r\n' 5)
closed_empty "$probe" || fail "a second client of the wrong node is closed with no byte" "$probe"
wait_until 5 stats_at_least "$T/RUN.log" "localhost:$BAD_PORT" 2 ||
	fail "the stats lines count both failures" "$(grep at=stats "$T/RUN.log")"
ok "the stats lines count both failures (count#memtunnel.auth.failures)"
assert_eq 1 "$(count_log "$T/RUN.log" 'at=auth-failed')" "the second failure within 10 s adds no line"
assert_eq 0 "$(stats_sum "$T/RUN.log" "localhost:$GOOD_PORT")" "no failure counted for the good node"
_lib_running "$child_pid" || fail "the wrapped child is still running"
ok "the wrapped child is still running"
assert_eq ok "$(setget "$listener_good" second)" "the good node still serves"
assert_eq "" "$(MC_ASCII_LOGIN="$cloud_user $cloud_pass" mc_get "$BAD_NOTLS_PORT" second)" \
	"nothing of the refused clients reached the wrong node"

# Failing clients until the rate limit lets the next line through.
n=2
second_line() { (($(count_log "$T/RUN.log" 'at=auth-failed') >= 2)); }
until second_line; do
	(($(now_ms) - first_ms < 15000)) || fail "a second auth-failed line within 15 s of the first" "$(grep at=auth-failed "$T/RUN.log")"
	probe=$(tcp_probe "$listener_bad" 'get more\r\n' 5)
	closed_empty "$probe" || fail "client $((n + 1)) of the wrong node is closed with no byte" "$probe"
	n=$((n + 1))
	wait_until 1 second_line || true
done
gap=$(($(now_ms) - first_ms))
assert_le 9000 "$gap" "the next line came ${gap} ms after the first, not sooner than the 10 s limit (less our delay)"
line=$(grep 'at=auth-failed' "$T/RUN.log" | sed -n 2p)
assert_match "$line" "^memtunnel $failed.* suppressed=[0-9]+" "it is the same node's line and says how many were suppressed"
suppressed=$(sed -n 's/.* suppressed=\([0-9]*\).*/\1/p' <<<"$line")
assert_le 1 "$suppressed" "suppressed=$suppressed counts the failures in between"
assert_le "$suppressed" "$n" "suppressed=$suppressed is no more than the $n failures made"
wait_until 5 stats_at_least "$T/RUN.log" "localhost:$BAD_PORT" "$n" || true
assert_eq "$n" "$(stats_sum "$T/RUN.log" "localhost:$BAD_PORT")" "the stats lines count all $n failures"
_lib_running "$child_pid" || fail "the wrapped child is still running after $n failures"
ok "the wrapped child is still running after $n failures"
assert_eq ok "$(setget "$listener_good" third)" "the good node still serves after $n failures"
: >"$T/release"
_lib_wait_exit "$RUN_PID" 10 || fail "memtunnel exits with its child"
status=0
wait "$RUN_PID" || status=$?
_lib_untrack "$RUN_PID"
assert_eq 0 "$status" "memtunnel exits 0 with its child"

# ---- a spare that cannot log in ------------------------------------------------
start_ms=$(now_ms)
MEMTUNNEL_USERNAME=$cloud_user MEMTUNNEL_PASSWORD=wrong-$cloud_pass MEMTUNNEL_STATS_INTERVAL=1 \
	start_memtunnel MTS --servers "localhost:$BAD_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	--auth memcached --prewarm 1
wait_until 15 stats_at_least "$T/MTS.log" "localhost:$BAD_PORT" 5 ||
	fail "the spare's failed logins are retried" "$(grep at=stats "$T/MTS.log")"
elapsed=$(($(now_ms) - start_ms))
tries=$(stats_sum "$T/MTS.log" "localhost:$BAD_PORT")
# Retried after 100, 200, 400, 800 ms: five attempts take 1.5 s at least.
assert_le 1500 "$elapsed" "five failed spare logins took ${elapsed} ms: retried with a growing delay"
assert_le "$tries" 10 "and the stats counted $tries by then, not a busy loop"
assert_eq 1 "$(count_log "$T/MTS.log" 'at=auth-failed')" "one auth-failed line for them all"
probe=$(tcp_probe "$MTS_PORT" 'get spare\r\n' 5)
closed_empty "$probe" || fail "a client is not handed a spare that failed its login" "$probe"
ok "a client is not handed a spare that failed its login: closed with no byte ($probe)"
assert_eq 0 "$(count_log "$T/MTS.log" 'at=paired ')" "no spare was paired"
assert_alive MTS
stop_memtunnel MTS

# ---- servers that answer the login wrongly -----------------------------------------
# answer VAR TEXT: a stand-in that answers the login with TEXT and closes.
answer() {
	bg_start "$1" "$PY" "$TESTS_DIR/tools/memcachier-standin.py" --cert "$PKI/server-chain.crt" \
		--key "$PKI/server.key" --lifetime 120 --answer "$2"
	wait_log "$T/$1.out" '^listening [0-9]+$'
	printf -v "${1}_PORT" '%s' "$(sed -n 's/^listening //p' "$T/$1.out")"
}
answer ERR 'ERROR\r\n'
answer EXTRA 'STORED\r\nVALUE x 0 1\r\n'
answer ODD 'HELLO\r\n'
answer LONG "$(printf 'A%.0s' $(seq 1 1100))\r\n"
answer HANGUP ''
start_memcached PLAIN
start_memcached SASL --sasl "$cier_user" "$cier_pass"
MEMTUNNEL_USERNAME=$cier_user MEMTUNNEL_PASSWORD=$cier_pass start_memtunnel MTA \
	--servers "localhost:$ERR_PORT,localhost:$EXTRA_PORT,localhost:$ODD_PORT,localhost:$LONG_PORT,localhost:$HANGUP_PORT,localhost:$SASL_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --auth memcached --prewarm 0 --connect-timeout 3
MEMTUNNEL_USERNAME=$cier_user MEMTUNNEL_PASSWORD=$cier_pass start_memtunnel MTB \
	--servers "localhost:$PLAIN_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --auth sasl --prewarm 0 --connect-timeout 3
read -r p_err p_extra p_odd p_long p_hangup p_sasl <<<"$MTA_PORTS"
# expect NAME LOG UPSTREAM LISTENER MODE REASON PAYLOAD
expect() {
	local probe line
	probe=$(tcp_probe "$4" "$7" 8)
	closed_empty "$probe" || fail "$1: the client is closed with no byte" "$probe"
	wait_log "$2" "at=auth-failed upstream=$3 mode=$5 "
	line=$(grep -m1 "at=auth-failed upstream=$3 " "$2")
	assert_match "$line" " reason=\"$6\" hint=\"[^\"]+\"" "$1: the client is closed with no byte; reason: $6"
}
expect "ERROR" "$T/MTA.log" "localhost:$ERR_PORT" "$p_err" memcached "the server does not take this authentication" 'get x\r\n'
expect "STORED and more" "$T/MTA.log" "localhost:$EXTRA_PORT" "$p_extra" memcached "unexpected answer to the authentication" 'get x\r\n'
expect "an unknown line" "$T/MTA.log" "localhost:$ODD_PORT" "$p_odd" memcached "unexpected answer to the authentication" 'get x\r\n'
expect "a line over 1 KiB" "$T/MTA.log" "localhost:$LONG_PORT" "$p_long" memcached "unexpected answer to the authentication" 'get x\r\n'
expect "a hang-up" "$T/MTA.log" "localhost:$HANGUP_PORT" "$p_hangup" memcached "the server closed the connection during the authentication" 'get x\r\n'
expect "memcached against -S" "$T/MTA.log" "localhost:$SASL_PORT" "$p_sasl" memcached "the server closed the connection during the authentication" 'get x\r\n'
expect "sasl against no SASL" "$T/MTB.log" "localhost:$PLAIN_PORT" "$MTB_PORT" sasl "the server does not take this authentication" \
	'\x80\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
assert_alive MTA
assert_alive MTB
stop_memtunnel MTA
stop_memtunnel MTB
