#!/usr/bin/env bash
# 81-resume: TLS session resumption is bounded and survives refusals.
#   - Age: a session is offered only while the full handshake its chain was
#     last verified in is younger than the bound (24 h; 3 s here through
#     MEMTUNNEL_TEST_RESUME). A resumed connection's new ticket inherits
#     that age: it does not start the clock again, a full handshake does.
#   - Expiry: the full handshake the bound forces warns again of a
#     certificate about to expire (soon3 expires in 3 days).
#   - Refusal: memcached 1.6.18 requiring client certificates answers an
#     offered session with an alert. Each client connection still works,
#     through exactly one full handshake after the refused attempt; then
#     sessions are not offered for a while (3 s here, 1 min by default).
#   - Not off for good: once that server is replaced by one that resumes
#     (same port), resumption comes back after the pause. A server restart
#     (a stale ticket, silently answered with a full handshake) is no
#     refusal and pauses nothing.
#   - 20 clients at once offering a session the server refuses: all work,
#     20 full handshakes, and the refusals pause offers once (the pause
#     does not grow with each of them).
# No pre-warmed connections (--prewarm 0): each client's connection is
# made when it comes, so the last connected line is its own.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# Every client here needs a connection of its own, which is what this
# shows; reuse (25-reuse) would give it a pooled one.
export MEMTUNNEL_REUSE=off
# shellcheck disable=SC2153,SC2154 # MC_*, RF_*, MA_*, MB_* are set by lib.sh

connected='level=debug at=connected upstream='
refused='level=debug at=resume-refused upstream='

# setget VAR KEY: one client's set and get through memtunnel VAR.
setget() {
	local portvar=${1}_PORT out
	if ! out=$(mcload --port "${!portvar}" --timeout 10 setget --key "$2" 2>&1) || [[ $out != *ok=1* ]]; then
		fail "client $2 through memtunnel $1: set and get" "$out"
	fi
}

# last VAR: memtunnel VAR's last connected line.
last() { grep "$connected" "$T/$1.log" | tail -n1; }

past() { (($(now_ms) >= $1)); }

# ---- Age. The bound is a time: the waits below are for time to pass.
start_memcached MC
MEMTUNNEL_TEST_RESUME=3000:3000:12000 start_memtunnel MA --servers "localhost:$MC_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --prewarm 0 --log-level debug
setget MA a1
t1=$(now_ms)
assert_match "$(last MA)" ' resumed=no ' "the first connection makes a full handshake"
wait_until 10 past $((t1 + 1500))
setget MA a2
assert_match "$(last MA)" ' resumed=yes ' "1.5 s later the next one resumes (its new ticket is kept)"
wait_until 10 past $((t1 + 3100))
setget MA a3
assert_match "$(last MA)" ' resumed=no ' \
	"3.1 s after the full handshake (bound 3 s) a full one again, though the ticket kept at 1.5 s is younger"
setget MA a4
assert_match "$(last MA)" ' resumed=yes ' "that full handshake starts the clock again: the next one resumes"
assert_eq 4 "$(count_log "$T/MA.log" "$connected")" "four clients, four connections"
assert_eq 0 "$(count_log "$T/MA.log" 'level=(warn|error)')" "no warn or error line"
stop_memtunnel MA
stop_memcached MC

# ---- The expiry warning comes again with the full handshake a bound later:
# a long-running process must hear of a certificate about to expire.
start_memcached SOON --cert soon3
MEMTUNNEL_TEST_RESUME=3000:3000:12000 start_memtunnel MS --servers "localhost:$SOON_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --prewarm 0 --log-level debug
expiring="level=warn at=cert-expiring upstream=localhost:$SOON_PORT "
setget MS s1
t1=$(now_ms)
assert_eq 1 "$(count_log "$T/MS.log" "$expiring")" "the first full handshake warns of the certificate expiring in 3 days"
wait_until 10 past $((t1 + 1500))
setget MS s2
assert_match "$(last MS)" ' resumed=yes ' "1.5 s later a connection resumes"
assert_eq 1 "$(count_log "$T/MS.log" "$expiring")" "a resumed one shows no chain: no second warning"
wait_until 10 past $((t1 + 3100))
setget MS s3
assert_match "$(last MS)" ' resumed=no ' "past the bound a full handshake again"
assert_eq 2 "$(count_log "$T/MS.log" "$expiring")" "and the certificate is looked at again: a second warning"
stop_memtunnel MS
stop_memcached SOON

# ---- Refusal, then a server that resumes.
mtls="-o ssl_verify_mode=2,ssl_ca_cert=$PKI/ca.crt"
start_memcached RF --extra "$mtls"
MEMTUNNEL_TEST_RESUME=86400000:3000:12000 start_memtunnel MB --servers "localhost:$RF_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --cert "$PKI/client.crt" --key "$PKI/client.key" \
	--prewarm 0 --log-level debug
setget MB b1
assert_eq 0 "$(count_log "$T/MB.log" "$refused")" "no session yet: nothing to refuse"
t_ref=$(now_ms)
setget MB b2
assert_eq 1 "$(count_log "$T/MB.log" "$refused")" "the second client's connection offers the session: refused"
assert_match "$(grep "$refused" "$T/MB.log")" ' paused_ms=3000$' "offers are paused for 3 s"
assert_eq 2 "$(count_log "$T/MB.log" "$connected")" "the refused attempt ends in one full handshake"
assert_match "$(last MB)" ' resumed=no ' "a full one"
setget MB b3
elapsed=$(($(now_ms) - t_ref))
if ((elapsed < 2500)); then
	assert_eq 1 "$(count_log "$T/MB.log" "$refused")" "within the pause ($elapsed ms) no session is offered"
else
	echo "# b3 came $elapsed ms after the refusal: too late to show the pause"
fi

# The server is replaced by one that resumes, on the same port: its first
# connection finds our ticket stale (a full handshake, no refusal), the
# next one resumes.
stop_memcached RF
restart_memcached RF --extra ""
n=0
resumes() {
	n=$((n + 1))
	setget MB "c$n"
	[[ $(last MB) == *' resumed=yes '* ]]
}
wait_until 15 resumes || fail "resumption comes back after the pause" "$(tail -n 5 "$T/MB.log")"
back=$(($(now_ms) - t_ref))
echo "# resumed again $back ms after the refusal, at client $n after the replacement"
assert_le "$back" 9000 "resumption is back within 9 s of the refusal (pause 3 s)"
assert_eq 1 "$(count_log "$T/MB.log" "$refused")" "a stale ticket is no refusal"

# A restart: the stale ticket is answered with a full handshake, and the
# very next connection resumes (no pause).
stop_memcached RF
restart_memcached RF
before=$(count_log "$T/MB.log" "$connected")
setget MB d1
assert_match "$(last MB)" ' resumed=no ' "after a server restart: a full handshake"
setget MB d2
assert_match "$(last MB)" ' resumed=yes ' "and the next connection resumes at once"
assert_eq $((before + 2)) "$(count_log "$T/MB.log" "$connected")" "one connection each"
assert_eq 1 "$(count_log "$T/MB.log" "$refused")" "a restart is no refusal"

# ---- 20 at once, refused. The first connection to the new instance
# gets it to issue a ticket; then 20 clients at once offer it.
stop_memcached RF
restart_memcached RF --extra "$mtls"
setget MB e1
before=$(count_log "$T/MB.log" "$connected")
ref_before=$(count_log "$T/MB.log" "$refused")
out=$(mcload --port "$MB_PORT" --timeout 30 concurrent --conns 20 2>&1) || true
assert_match "$out" 'mode=concurrent conns=20 ok=20 failed=0' "20 clients at once all work"
assert_eq $((before + 20)) "$(count_log "$T/MB.log" "$connected")" "20 connections, one full handshake each"
now_ref=$(($(count_log "$T/MB.log" "$refused") - ref_before))
echo "# 20 at once: $now_ref refused offers"
assert_le 1 "$now_ref" "they offered the session and were refused"
assert_eq 0 "$(grep "$refused" "$T/MB.log" | tail -n "$now_ref" | grep -vc ' paused_ms=3000$')" \
	"refusals of one offer count once: the pause stays 3 s"
assert_eq 0 "$(count_log "$T/MB.log" 'level=(warn|error)')" "no warn or error line"
assert_alive MB
stop_memtunnel MB
