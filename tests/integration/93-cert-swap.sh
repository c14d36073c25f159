#!/usr/bin/env bash
# 93-cert-swap: with two upstreams, node B presenting a certificate that is
# valid (same trusted CA, in date) but only for node A's name is refused.
# Certificates are made here, signed by the test CA:
#   node-a  SAN DNS:node-a.memtunnel.test      node-b  SAN DNS:node-b...
#   local   SAN DNS:localhost                  loopip  SAN IP:127.0.0.1
# Part 1, A = localhost (DNS SAN) and B = 127.0.0.1 (IP SAN), one host: B
# presents A's certificate. Part 2, two names in a private /etc/hosts
# (mount namespace; skipped, saying so, where unshare is not permitted):
# B presents node-a's certificate. Each time: A works; B's client is
# closed without a byte, one verify-failed warn says "name mismatch", no
# request reaches B; then B restarted on the same port with its own
# certificate works through the same memtunnel (the control: only the
# certificate differed).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # A_*, B_*, MT*_* are set by lib.sh

# A PKI of the scenario's own: the test CA, and leaves signed by it.
TESTPKI=$PKI
mkdir -p "$T/pki"
cp "$TESTPKI/ca.crt" "$T/pki/ca.crt"
# leaf NAME SAN
leaf() {
	local d=$T/pki out
	out=$({
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$1.key" &&
			openssl req -new -key "$d/$1.key" -subj "/O=memtunnel tests/CN=$1" -out "$d/$1.csr" &&
			printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = %s\n' "$2" >"$d/$1.ext" &&
			openssl x509 -req -in "$d/$1.csr" -CA "$TESTPKI/ca.crt" -CAkey "$TESTPKI/ca.key" \
				-CAcreateserial -CAserial "$d/ca.srl" -out "$d/$1.crt" -days 30 -sha256 -extfile "$d/$1.ext"
	} 2>&1) || fail "certificate $1 ($2)" "$out"
	cat "$d/$1.crt" "$d/ca.crt" >"$d/$1-chain.crt"
	out=$(openssl verify -CAfile "$d/ca.crt" "$d/$1.crt" 2>&1) || fail "certificate $1 verifies against the test CA" "$out"
}
leaf node-a DNS:node-a.memtunnel.test
leaf node-b DNS:node-b.memtunnel.test
leaf local DNS:localhost
leaf loopip IP:127.0.0.1
ok "four certificates signed by the test CA"
PKI=$T/pki

# swap NAME HOST_A HOST_B CERT_A CERT_B: one round (see the top).
swap() {
	local name=$1 host_a=$2 host_b=$3 cert_a=$4 cert_b=$5
	start_memcached A --cert "$cert_a"
	# B first with A's certificate.
	start_memcached B --cert "$cert_a"
	start_memtunnel "MT$name" --servers "$host_a:$A_PORT,$host_b:$B_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
	local ports=MT${name}_PORTS log=$T/MT$name.log p_a p_b out r
	read -r p_a p_b <<<"${!ports}"

	out=$(mcload --port "$p_a" setget 2>&1) || fail "$name: setget through A" "$out"
	assert_match "$out" 'ok=1' "$name: A ($host_a, its own certificate) works"
	for i in 1 2; do
		r=$(tcp_probe "$p_b" 'set swapped 0 0 1\r\nx\r\nget swapped\r\n' 5)
		assert_match "$r" '^closed [0-9]+ 0$' "$name: B ($host_b) presenting A's certificate: client $i closed without a byte ($r)"
	done
	local line="^memtunnel level=warn at=verify-failed upstream=$host_b:$B_PORT reason=\"name mismatch\""
	assert_eq 2 "$(wait_count "$log" "$line" 2 5)" "$name: one verify-failed \"name mismatch\" warn per connection"
	assert_eq 0 "$(mc_stat "$B_NOTLS_PORT" cmd_set)" "$name: no request reached B"
	assert_eq 0 "$(count_log "$log" "level=(warn|error).*upstream=$host_a:$A_PORT")" "$name: no warn about A"

	# The control: B with its own certificate, same port, same memtunnel.
	stop_memcached B
	start_memcached B --cert "$cert_b" --port "$B_PORT"
	out=$(mcload --port "$p_b" --timeout 10 setget 2>&1) || fail "$name: setget through B with its own certificate" "$out"
	assert_match "$out" 'ok=1' "$name: control: B with its own certificate works through the same memtunnel"
	assert_eq 2 "$(count_log "$log" 'at=verify-failed')" "$name: no further verify failure"
	stop_memtunnel "MT$name"
	stop_memcached A
	stop_memcached B
}

swap localhost localhost 127.0.0.1 local loopip

if ! why=$(unshare --mount sh -c 'mount --bind /dev/null /etc/hosts' 2>&1); then
	echo "ok $((_lib_n + 1)) - # SKIP two names in a private /etc/hosts: unshare --mount is not permitted here: ${why//$'\n'/ }"
	exit 0
fi
printf '127.0.0.1 localhost\n127.0.0.1 node-a.memtunnel.test\n127.0.0.1 node-b.memtunnel.test\n' >"$T/hosts"
real=$MEMTUNNEL
MEMTUNNEL=$T/memtunnel-ns
# unshare and sh exec, so the pid is memtunnel's.
cat >"$MEMTUNNEL" <<EOF
#!/bin/sh
exec unshare --mount sh -c 'mount --bind "$T/hosts" /etc/hosts && exec "\$0" "\$@"' "$real" "\$@"
EOF
chmod +x "$MEMTUNNEL"
swap names node-a.memtunnel.test node-b.memtunnel.test node-a node-b
MEMTUNNEL=$real
