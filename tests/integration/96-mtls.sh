#!/usr/bin/env bash
# 96-mtls: client certificates (mutual TLS).
#   - A client key that does not belong to the client certificate is a
#     configuration error at start (exit 78, naming the key's flag or
#     variable), from files and from inline PEM alike: otherwise every
#     connection would fail later, at the server.
#     RSA (PKCS#8 and PKCS#1) and EC (with and without the public point)
#     keys are checked alike, and a key of the other kind is refused.
#   - A MEMTUNNEL_KEY that holds the key followed by the certificate chain
#     (a common bundle) starts (and, under ASan or valgrind, without an
#     invalid access while the key is read).
#   - memcached's own TLS with client certificates required
#     (ssl_verify_mode=2): 1.6.18 answers any attempt to resume a session
#     with an internal_error alert (shown first with openssl s_client, so
#     the fixture is what it claims). memtunnel must still serve every
#     connection: 20 one after the other and 20 at once, all verified.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT_*, MTLSMC_PID are set by lib.sh

# ---- A key that does not match.
start_memcached MC
st=$(run_memtunnel "$T/mismatch.out" "$T/mismatch.log" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" \
	--cert "$PKI/client.crt" --key "$PKI/server.key" -- true)
echo "# files: $(head -n1 "$T/mismatch.log")"
assert_eq 78 "$st" "--cert and a --key of another certificate: exit 78"
assert_eq 1 "$(count_log "$T/mismatch.log" '^memtunnel level=error at=config-error setting=--key ')" "the error names --key"
st=$(MEMTUNNEL_CA="$(cat "$PKI/ca.crt")" MEMTUNNEL_CERT="$(cat "$PKI/client.crt")" MEMTUNNEL_KEY="$(cat "$PKI/server.key")" \
	run_memtunnel "$T/mismatch-env.out" "$T/mismatch-env.log" --servers "localhost:$MC_PORT" -- true)
echo "# inline: $(head -n1 "$T/mismatch-env.log")"
assert_eq 78 "$st" "MEMTUNNEL_CERT and a MEMTUNNEL_KEY of another certificate: exit 78"
assert_eq 1 "$(count_log "$T/mismatch-env.log" '^memtunnel level=error at=config-error setting=MEMTUNNEL_KEY ')" "the error names MEMTUNNEL_KEY"
st=$(run_memtunnel "$T/match.out" "$T/match.log" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" \
	--cert "$PKI/client.crt" --key "$PKI/client.key" -- true)
assert_eq 0 "$st" "control: the matching key starts (the child's status 0)"
st=$(MEMTUNNEL_CA="$(cat "$PKI/ca.crt")" MEMTUNNEL_CERT="$(cat "$PKI/client.crt")" \
	MEMTUNNEL_KEY="$(cat "$PKI/client.key" "$PKI/client-chain.crt")" \
	run_memtunnel "$T/bundle.out" "$T/bundle.log" --servers "localhost:$MC_PORT" -- true)
assert_eq 0 "$st" "MEMTUNNEL_KEY with the certificate chain after the key starts (the child's status 0)"
# Key kinds and forms (the static build checks them with its own code).
for pair in rsaclient:rsaclient:0 rsaclient:rsaclient-trad:0 client:client-nopub:0 \
	rsaclient:rsaother:78 rsaclient:client:78 client:rsaclient:78; do
	IFS=: read -r cert key want <<<"$pair"
	st=$(run_memtunnel "$T/kind.out" "$T/kind.log" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" \
		--cert "$PKI/$cert.crt" --key "$PKI/$key.key" -- true)
	assert_eq "$want" "$st" "$cert.crt with $key.key: exit $want"
done

# ---- memcached -Z requiring client certificates. Started here rather
# than with start_memcached, whose readiness probe has no client
# certificate.
port=$(free_port)
notls=$(free_port)
bg_start MTLSMC memcached -u root -U 0 -p "$port" -l 127.0.0.1 -l "notls:127.0.0.1:$notls" -I 2m -m 256 \
	-Z -o "ssl_chain_cert=$PKI/server-chain.crt,ssl_key=$PKI/server.key,ssl_verify_mode=2,ssl_ca_cert=$PKI/ca.crt"
# s_client NAME ARGS...: a handshake with the client certificate; prints
# New or Reused (or the error).
s_client() {
	local out
	out=$(echo | openssl s_client -connect "127.0.0.1:$port" -CAfile "$PKI/ca.crt" -cert "$PKI/client.crt" \
		-key "$PKI/client.key" "$@" 2>&1) || true
	grep -m1 -oE '^(New|Reused),|alert [a-z ]+' <<<"$out" | head -n1 | grep . || echo "no handshake"
}
mc_up() { [[ $(s_client) == New, ]]; }
wait_until 10 mc_up || fail "memcached with client certificates required starts" "$(cat "$T/MTLSMC.log")"
ok "memcached -Z requires client certificates on port $port"
# Shown with TLS 1.2, where s_client saves the session before it exits
# (a TLS 1.3 ticket comes after the handshake and may be missed).
first=$(s_client -tls1_2 -sess_out "$T/sess")
again=$(s_client -tls1_2 -sess_in "$T/sess")
echo "# openssl s_client -tls1_2: first $first then, resuming, $again"
assert_eq "New,:alert internal error" "$first:$again" "memcached refuses to resume a session (internal_error)"

start_memtunnel MT --servers "localhost:$port" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	--cert "$PKI/client.crt" --key "$PKI/client.key" --log-level debug
good=0
for i in $(seq 20); do
	if out=$(mcload --port "$MT_PORT" --timeout 10 setget --key "seq$i" 2>&1) && [[ $out == *ok=1* ]]; then
		good=$((good + 1))
	fi
done
echo "# 20 one after the other: $good worked; memtunnel: $(count_log "$T/MT.log" 'resumed=yes') resumed, $(count_log "$T/MT.log" 'resumed=no') full handshakes, $(count_log "$T/MT.log" 'level=warn at=handshake-failed') handshake-failed warns"
assert_eq 20 "$good" "20 connections one after the other all work"
out=$(mcload --port "$MT_PORT" --timeout 30 concurrent --conns 20 2>&1) || true
assert_match "$out" 'mode=concurrent conns=20 ok=20 failed=0' "20 connections at once all work"
assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error line"
stop_memtunnel MT
