#!/usr/bin/env bash
# 92-tls-old: servers that only speak an old TLS version are refused.
# openssl s_server (-www, certificate valid for localhost) restricted to
# one version each: TLS 1.0 and TLS 1.1 (with SECLEVEL=0 so OpenSSL 3 will
# speak them at all) and TLS 1.2. Each server is first checked with
# openssl s_client to speak exactly its version. Then:
#   - default --tls-min (1.2): the 1.2 server works through the tunnel (an
#     HTTP request gets its answer: the control), the 1.0 and 1.1 servers
#     are refused: the client is closed without a byte, one warn line each;
#   - --tls-min 1.3: the 1.2 server is refused too.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MT*_PORT(S) are set by start_memtunnel

# start_server VAR VERSIONFLAG: openssl s_server on a free port.
start_server() {
	local port
	port=$(free_port)
	bg_start "$1" openssl s_server -accept "127.0.0.1:$port" -cert "$PKI/server-chain.crt" \
		-key "$PKI/server.key" "$2" -cipher 'DEFAULT@SECLEVEL=0' -www
	printf -v "${1}_PORT" '%s' "$port"
	wait_until 10 _lib_tls_probe "$port" "$2" || fail "s_server $2 answers on $port" "$(cat "$T/$1.log")"
}

# _lib_tls_probe PORT FLAG: s_client with only FLAG's version completes a
# handshake (and prints the version it got).
_lib_tls_probe() {
	local out
	out=$(openssl s_client -connect "127.0.0.1:$1" "$2" -cipher 'DEFAULT@SECLEVEL=0' -CAfile "$PKI/ca.crt" \
		-brief </dev/null 2>&1) || true
	grep -q '^Protocol version' <<<"$out"
}

# speaks PORT FLAG: the version s_client got with FLAG, or nothing.
speaks() {
	local out
	out=$(openssl s_client -connect "127.0.0.1:$1" "$2" -cipher 'DEFAULT@SECLEVEL=0' -CAfile "$PKI/ca.crt" \
		-brief </dev/null 2>&1) || true
	sed -n 's/^Protocol version: //p' <<<"$out"
}

start_server OLD10 -tls1
start_server OLD11 -tls1_1
start_server NEW12 -tls1_2
declare -A want=([OLD10]=TLSv1 [OLD11]=TLSv1.1 [NEW12]=TLSv1.2)
for s in OLD10 OLD11 NEW12; do
	port=${s}_PORT
	got=()
	for v in -tls1 -tls1_1 -tls1_2 -tls1_3; do
		p=$(speaks "${!port}" "$v")
		[[ -z $p ]] || got+=("$p")
	done
	assert_eq "${want[$s]}" "${got[*]}" "$s speaks ${want[$s]} and nothing else"
done

request='GET / HTTP/1.0\r\n\r\n'
start_memtunnel MT --servers "localhost:$OLD10_PORT,localhost:$OLD11_PORT,localhost:$NEW12_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --log-level debug
# shellcheck disable=SC2034 # p10 and p11 are read as ${!lport}
read -r p10 p11 p12 <<<"$MT_PORTS"

# The control: the same kind of server at TLS 1.2 answers through the tunnel.
out=$(py_run - "$p12" <<'EOF'
import socket, sys
import mcread
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
data = mcread.to_eof(s)
print(data.split(b"\r\n")[0].decode())
EOF
) || fail "an HTTP request through the tunnel to the TLS 1.2 server"
assert_match "$out" '^HTTP/1\.0 200 ' "control: the TLS 1.2 s_server answers through the tunnel ($out)"
wait_log "$T/MT.log" "at=connected upstream=localhost:$NEW12_PORT tls=TLSv1\.2 " 5
ok "control: memtunnel logged a TLS 1.2 connection to it"

for v in 10 11; do
	port=OLD${v}_PORT
	lport=p$v
	for i in 1 2; do
		r=$(tcp_probe "${!lport}" "$request" 5)
		assert_match "$r" '^closed [0-9]+ 0$' "TLS 1.${v#1} server, connection $i: closed without a byte ($r)"
	done
	line="^memtunnel level=warn at=handshake-failed upstream=localhost:${!port} reason=\"[^\"]+\""
	assert_eq 2 "$(wait_count "$T/MT.log" "$line" 2 5)" "TLS 1.${v#1} server: one handshake-failed warn per connection"
	assert_eq 0 "$(count_log "$T/MT.log" "at=connected upstream=localhost:${!port} ")" "TLS 1.${v#1} server: never connected"
	echo "# $(grep -m1 "level=warn at=handshake-failed upstream=localhost:${!port} " "$T/MT.log")"
done
stop_memtunnel MT

# --tls-min 1.3 refuses the TLS 1.2 server.
start_memtunnel MT13 --servers "localhost:$NEW12_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --tls-min 1.3
r=$(tcp_probe "$MT13_PORT" "$request" 5)
assert_match "$r" '^closed [0-9]+ 0$' "--tls-min 1.3: the TLS 1.2 server's connection is closed without a byte ($r)"
wait_log "$T/MT13.log" "^memtunnel level=warn at=handshake-failed upstream=localhost:$NEW12_PORT reason=" 5
ok "--tls-min 1.3: one handshake-failed warn"
echo "# $(grep -m1 'at=handshake-failed' "$T/MT13.log")"
stop_memtunnel MT13
