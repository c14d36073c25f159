#!/usr/bin/env bash
# 20-verify: man-in-the-middle refusals. Servers present a wrong-name, an
# expired, a self-signed and an unknown-CA certificate; memtunnel trusts
# ca.crt only. In full mode all four are refused: the client connection is
# closed without a reply, one warn line names the upstream and the reason,
# and the server never sees a command (cmd_get/cmd_set stay 0). chain mode
# accepts the wrong name only; none accepts all with warnings. Then: IP vs
# DNS SANs, --sni, and MEMTUNNEL_CA inline PEM.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # *_PORT, *_PORTS are set by start_memcached/start_memtunnel

mitm=(WRONG EXPIRED SELF UNKNOWN)
declare -A cert=([WRONG]=wrong [EXPIRED]=expired [SELF]=selfsigned [UNKNOWN]=unknownca)
declare -A reason=([WRONG]="name mismatch" [EXPIRED]="certificate expired"
	[SELF]="self-signed certificate" [UNKNOWN]="unknown issuer")
for s in "${mitm[@]}"; do
	start_memcached "$s" --cert "${cert[$s]}"
done
start_memcached GOOD
start_memcached DNSONLY --cert dnsonly
start_memcached IPONLY --cert iponly

request='set mitm 0 0 5\r\nhello\r\nget mitm\r\n'

# servers_for NAME...: localhost:PORT,... for the named memcacheds.
servers_for() {
	local s list=() port
	for s in "$@"; do
		port=${s}_PORT
		list+=("localhost:${!port}")
	done
	local IFS=,
	echo "${list[*]}"
}

# expect_refused MT LISTENER NAME UPSTREAM: a request through LISTENER is
# answered by closing the connection, with exactly one verify-failed line
# naming UPSTREAM and NAME's reason, and NAME's server saw no command: its
# cmd_set and cmd_get do not move (they are 0 the first time).
expect_refused() {
	local mt=$1 port=$2 s=$3 upstream=$4 r before after
	local notls=${s}_NOTLS_PORT
	before="$(mc_stat "${!notls}" cmd_set) $(mc_stat "${!notls}" cmd_get)"
	r=$(tcp_probe "$port" "$request" 5)
	assert_match "$r" '^closed [0-9]+ 0$' "$mt: ${cert[$s]}.crt server: client connection closed without a reply ($r)"
	wait_log "$T/$mt.log" "level=warn at=verify-failed upstream=$upstream reason=\"${reason[$s]}\""
	assert_eq 1 "$(count_log "$T/$mt.log" "at=verify-failed upstream=$upstream ")" \
		"$mt: exactly one verify-failed line for $upstream, reason \"${reason[$s]}\""
	after="$(mc_stat "${!notls}" cmd_set) $(mc_stat "${!notls}" cmd_get)"
	assert_eq "$before" "$after" "$mt: the ${cert[$s]}.crt server saw no command (cmd_set cmd_get: $after)"
}

# expect_works LISTENER DESC: set and get through LISTENER.
expect_works() {
	local key=k$RANDOM$RANDOM
	mc_set "$1" "$key" "v-$key" || fail "$2: set through 127.0.0.1:$1"
	assert_eq "v-$key" "$(mc_get "$1" "$key")" "$2"
}

# ---- full (the default): all four refused, the good server works --------
start_memtunnel FULL --servers "$(servers_for "${mitm[@]}" GOOD)" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
read -r -a ports <<<"$FULL_PORTS"
for i in 0 1 2 3; do
	s=${mitm[$i]}
	port=${s}_PORT
	expect_refused FULL "${ports[$i]}" "$s" "localhost:${!port}"
done
for s in "${mitm[@]}"; do
	notls=${s}_NOTLS_PORT
	assert_eq "0 0" "$(mc_stat "${!notls}" cmd_set) $(mc_stat "${!notls}" cmd_get)" \
		"FULL: cmd_set and cmd_get of the ${cert[$s]}.crt server are still 0"
done
expect_works "${ports[4]}" "FULL: the server with a valid certificate works"
assert_eq 4 "$(count_log "$T/FULL.log" 'level=warn at=verify-failed ')" "FULL: four verify-failed lines in all"
assert_alive FULL
stop_memtunnel FULL

# ---- chain: only the wrong-name certificate passes ----------------------
start_memtunnel CHAIN --servers "$(servers_for "${mitm[@]}")" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --verify chain
read -r -a ports <<<"$CHAIN_PORTS"
expect_works "${ports[0]}" "CHAIN: the wrong-name server is accepted in chain mode"
for i in 1 2 3; do
	s=${mitm[$i]}
	port=${s}_PORT
	expect_refused CHAIN "${ports[$i]}" "$s" "localhost:${!port}"
done
assert_eq 0 "$(count_log "$T/CHAIN.log" "at=verify-failed upstream=localhost:$WRONG_PORT ")" "CHAIN: no verify-failed line for the wrong-name server"
assert_alive CHAIN
stop_memtunnel CHAIN

# ---- none: everything passes, with warnings -----------------------------
start_memtunnel NONE --servers "$(servers_for "${mitm[@]}")" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --verify none
wait_log "$T/NONE.log" 'level=warn at=verify-disabled'
ok "NONE: a verify-disabled warn line at start"
start_warns=$(count_log "$T/NONE.log" 'level=warn')
read -r -a ports <<<"$NONE_PORTS"
for i in 0 1 2 3; do
	expect_works "${ports[$i]}" "NONE: the ${cert[${mitm[$i]}]}.crt server is accepted with --verify none"
done
# Two connections each (set, get), each one warned about.
wait_until 5 test "$(count_log "$T/NONE.log" 'level=warn')" -ge $((start_warns + 8)) ||
	fail "NONE: a warn line for every connection" "$(count_log "$T/NONE.log" 'level=warn') warn lines, $start_warns at start, 8 connections"
ok "NONE: a warn line for every connection"
assert_eq 0 "$(count_log "$T/NONE.log" 'at=verify-failed')" "NONE: no verify-failed lines"
assert_alive NONE
stop_memtunnel NONE

# ---- IP upstreams are checked against IP SANs, names against DNS SANs ----
start_memtunnel SAN --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --servers \
	"127.0.0.1:$GOOD_PORT,localhost:$GOOD_PORT,127.0.0.1:$IPONLY_PORT,localhost:$DNSONLY_PORT,127.0.0.1:$DNSONLY_PORT,localhost:$IPONLY_PORT"
read -r -a ports <<<"$SAN_PORTS"
expect_works "${ports[0]}" "SAN: 127.0.0.1 upstream, certificate with IP SAN 127.0.0.1: accepted"
expect_works "${ports[1]}" "SAN: localhost upstream, certificate with DNS SAN localhost: accepted"
expect_works "${ports[2]}" "SAN: 127.0.0.1 upstream, certificate with only the IP SAN: accepted"
expect_works "${ports[3]}" "SAN: localhost upstream, certificate with only the DNS SAN: accepted"
reason[DNSONLY]="name mismatch"
reason[IPONLY]="name mismatch"
cert[DNSONLY]=dnsonly
cert[IPONLY]=iponly
for pair in "4 DNSONLY 127.0.0.1" "5 IPONLY localhost"; do
	read -r i s host <<<"$pair"
	port=${s}_PORT
	expect_refused SAN "${ports[$i]}" "$s" "$host:${!port}"
done
assert_alive SAN
stop_memtunnel SAN

# ---- --sni: the name sent and checked ------------------------------------
start_memtunnel SNI --sni wrong.example --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	--servers "localhost:$WRONG_PORT,localhost:$GOOD_PORT"
read -r -a ports <<<"$SNI_PORTS"
expect_works "${ports[0]}" "SNI: --sni wrong.example accepts the wrong.example certificate in full mode"
r=$(tcp_probe "${ports[1]}" "$request" 5)
assert_match "$r" '^closed [0-9]+ 0$' "SNI: --sni wrong.example refuses the localhost certificate ($r)"
wait_log "$T/SNI.log" "level=warn at=verify-failed upstream=localhost:$GOOD_PORT reason=\"name mismatch\""
assert_match "$(grep 'at=verify-failed' "$T/SNI.log")" 'hint="[^"]*MEMTUNNEL_SNI' \
	"SNI: the verify-failed line says what to set (MEMTUNNEL_SNI)"
assert_alive SNI
stop_memtunnel SNI

# ---- MEMTUNNEL_CA: inline PEM instead of --ca ----------------------------
MEMTUNNEL_CA=$(cat "$PKI/ca.crt") start_memtunnel INLINE --listen 127.0.0.1:0 \
	--servers "localhost:$GOOD_PORT,localhost:$UNKNOWN_PORT"
read -r -a ports <<<"$INLINE_PORTS"
expect_works "${ports[0]}" "INLINE: MEMTUNNEL_CA=<ca.crt PEM> trusts the test CA"
expect_refused INLINE "${ports[1]}" UNKNOWN "localhost:$UNKNOWN_PORT"
assert_eq 0 "$(count_log "$T/INLINE.log" 'CERTIFICATE|[A-Za-z0-9+/]{60}')" "INLINE: no PEM text in the log"
assert_alive INLINE
stop_memtunnel INLINE

# The other CA inline: now the good server is the unknown one.
MEMTUNNEL_CA=$(cat "$PKI/other-ca.crt") start_memtunnel OTHER --listen 127.0.0.1:0 \
	--servers "localhost:$GOOD_PORT"
r=$(tcp_probe "$OTHER_PORT" "$request" 5)
assert_match "$r" '^closed [0-9]+ 0$' "OTHER: MEMTUNNEL_CA=<other-ca.crt PEM> refuses the server signed by ca.crt ($r)"
wait_log "$T/OTHER.log" "level=warn at=verify-failed upstream=localhost:$GOOD_PORT reason=\"unknown issuer\""
assert_alive OTHER
stop_memtunnel OTHER

status=$(MEMTUNNEL_CA="not a pem" run_memtunnel "$T/garbage.out" "$T/garbage.err" \
	--listen 127.0.0.1:0 --servers "localhost:$GOOD_PORT")
assert_eq 78 "$status" "MEMTUNNEL_CA=\"not a pem\" exits 78"
assert_eq 1 "$(wc -l <"$T/garbage.err")" "MEMTUNNEL_CA=\"not a pem\": one line on stderr"
assert_match "$(cat "$T/garbage.err")" 'MEMTUNNEL_CA' "the line names MEMTUNNEL_CA"
assert_eq "" "$(cat "$T/garbage.out")" "nothing on stdout"
