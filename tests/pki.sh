#!/usr/bin/env bash
# Generate the test PKI used by the integration scenarios and the demo.
#
#   tests/pki.sh DIR
#
# DIR receives (EC P-256 keys, PEM):
#   ca.crt ca.key               the CA memtunnel is told to trust
#   other-ca.crt other-ca.key   a second CA memtunnel is never given
#   server.crt/key              SAN DNS:localhost, IP:127.0.0.1, IP:::1 (by ca)
#   wrong.crt/key               CN and SAN wrong.example only (by ca)
#   dnsonly.crt/key             SAN DNS:localhost only, CN dns-only (by ca)
#   iponly.crt/key              SAN IP:127.0.0.1 only, CN ip-only (by ca)
#   ip6only.crt/key             SAN IP:::1 only, CN ip6-only (by ca)
#   ipname.crt/key              SAN DNS:other.example, IP:127.0.0.1, CN
#                               localhost (by ca)
#   dnsip.crt/key               SAN DNS:127.0.0.1 only: a name, not an address
#   wildip.crt/key              SAN DNS:*.0.0.1 only
#   wildcard.crt/key            SAN DNS:*.mc.test only
#   cnonly.crt/key              no SAN at all, CN localhost (by ca)
#   expired.crt/key             SAN localhost/127.0.0.1, validity in the past (by ca)
#   selfsigned.crt/key          SAN localhost/127.0.0.1, self-signed
#   unknownca.crt/key           SAN localhost/127.0.0.1 (by other-ca)
#   client.crt/key              extendedKeyUsage clientAuth (by ca)
#   rsaclient.crt/key           the same with an RSA-2048 key; also, for the
#                               client key check: rsaclient-trad.key (PKCS#1
#                               form), client-nopub.key (SEC1 without the
#                               public point), rsaother.key (unrelated RSA)
#   soon3.crt/key soon30.crt/key  SAN localhost/127.0.0.1, expire in 3 / 30 days (by ca)
#   NAME-chain.crt              NAME.crt followed by its issuer, for servers
#
# Every certificate is checked with `openssl verify` for the outcome its
# scenario relies on (success, or the one expected failure), so a test never
# passes because its fixture was wrong. A DIR that is already complete is
# reused as it is (unless its short-lived certificates are getting stale).
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 DIR" >&2
	exit 64
fi
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

die() {
	echo "pki.sh: $*" >&2
	exit 1
}

# Several scenarios may share one DIR: generate it once, under a lock.
exec 9>"$dir/.lock"
flock 9

# Reuse a complete DIR; regenerate one older than a day, because soon3.crt
# and soon30.crt must keep their "expires in N days" meaning.
certs=(ca other-ca server wrong dnsonly iponly ip6only ipname dnsip wildip wildcard cnonly expired selfsigned unknownca client rsaclient soon3 soon30)
keys=(rsaclient-trad client-nopub rsaother)
complete() {
	local n
	[[ -f $dir/.complete && -z $(find "$dir/.complete" -mmin +1440) ]] || return 1
	for n in "${certs[@]}"; do
		[[ -s $dir/$n.crt && -s $dir/$n.key ]] || return 1
	done
	for n in "${keys[@]}"; do
		[[ -s $dir/$n.key ]] || return 1
	done
}
if complete; then
	exit 0
fi
rm -f "$dir/.complete"

work=$(mktemp -d "$dir/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

ossl() {
	local out
	if ! out=$(openssl "$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "openssl $1 failed"
	fi
}

# newkey NAME: an EC P-256 key, or RSA-2048 with KEYTYPE=rsa.
newkey() {
	if [[ ${KEYTYPE:-ec} == rsa ]]; then
		ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key"
	else
		ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
	fi
}

cat >ext.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no

[dn]

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_local]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1

[server_short]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1

[server_wrong]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:wrong.example

[server_dnsonly]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost

[server_iponly]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1

[server_ip6only]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:::1

[server_ipname]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:other.example, IP:127.0.0.1

[server_dnsip]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:127.0.0.1

[server_wildip]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:*.0.0.1

[server_wildcard]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:*.mc.test

[server_nosan]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[selfsigned]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:localhost, IP:127.0.0.1

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# CA NAME CN
make_ca() {
	newkey "$1"
	ossl req -new -x509 -key "$1.key" -out "$1.crt" -days 3650 -sha256 \
		-subj "/O=memtunnel tests/CN=$2" \
		-config ext.cnf -extensions ca_ext
}

# leaf NAME CN EXTSECTION ISSUER DAYS
leaf() {
	newkey "$1"
	ossl req -new -key "$1.key" -out "$1.csr" -subj "/O=memtunnel tests/CN=$2" -config ext.cnf
	ossl x509 -req -in "$1.csr" -CA "$4.crt" -CAkey "$4.key" -CAcreateserial \
		-out "$1.crt" -days "$5" -sha256 -extfile ext.cnf -extensions "$3"
	rm -f "$1.csr"
}

make_ca ca "memtunnel test CA"
make_ca other-ca "memtunnel unrelated CA"

leaf server localhost server_local ca 825
leaf wrong wrong.example server_wrong ca 825
leaf dnsonly dns-only server_dnsonly ca 825
leaf iponly ip-only server_iponly ca 825
leaf ip6only ip6-only server_ip6only ca 825
leaf ipname localhost server_ipname ca 825
leaf dnsip dns-ip server_dnsip ca 825
leaf wildip wild-ip server_wildip ca 825
leaf wildcard wildcard server_wildcard ca 825
leaf cnonly localhost server_nosan ca 825
leaf unknownca localhost server_short other-ca 825
leaf client memtunnel-client client ca 825
KEYTYPE=rsa leaf rsaclient memtunnel-rsa-client client ca 825
ossl rsa -in rsaclient.key -traditional -out rsaclient-trad.key
ossl ec -in client.key -no_public -out client-nopub.key
KEYTYPE=rsa newkey rsaother
leaf soon3 localhost server_short ca 3
leaf soon30 localhost server_short ca 30

# x509 -req cannot set a start date in OpenSSL 3.0; `openssl ca` can.
newkey expired
ossl req -new -key expired.key -out expired.csr -subj "/O=memtunnel tests/CN=localhost" -config ext.cnf
mkdir -p ca.db
: >ca.db/index.txt
echo 1000 >ca.db/serial
cat >ca.cnf <<EOF
[ca]
default_ca = test_ca

[test_ca]
dir = $work/ca.db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $work/ca.crt
private_key = $work/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none

[any]
organizationName = optional
commonName = supplied
EOF
start=$(date -u -d '30 days ago' +%Y%m%d%H%M%SZ)
end=$(date -u -d '2 days ago' +%Y%m%d%H%M%SZ)
ossl ca -batch -notext -config ca.cnf -in expired.csr -out expired.crt \
	-startdate "$start" -enddate "$end" -extfile ext.cnf -extensions server_short
rm -rf expired.csr ca.db ca.cnf

newkey selfsigned
ossl req -new -x509 -key selfsigned.key -out selfsigned.crt -days 825 -sha256 \
	-subj "/O=memtunnel tests/CN=localhost" \
	-config ext.cnf -extensions selfsigned

for n in server wrong dnsonly iponly ip6only ipname dnsip wildip wildcard cnonly expired soon3 soon30 client; do
	cat "$n.crt" ca.crt >"$n-chain.crt"
done
cat unknownca.crt other-ca.crt >unknownca-chain.crt
cp selfsigned.crt selfsigned-chain.crt
rm -f ext.cnf ./*.srl

# ---- check every fixture for the outcome the scenarios rely on ----------

# expect_ok CERT [openssl verify options...]
expect_ok() {
	local cert=$1 out
	shift
	out=$(openssl verify -CAfile ca.crt "$@" "$cert" 2>&1) ||
		die "fixture $cert should verify against ca.crt ($*) but: $out"
}

# expect_fail CERT ERRNUM [openssl verify options...]
expect_fail() {
	local cert=$1 code=$2 out
	shift 2
	if out=$(openssl verify -CAfile ca.crt "$@" "$cert" 2>&1); then
		die "fixture $cert verified against ca.crt ($*) but must fail with error $code"
	fi
	[[ $out == *"error $code at"* ]] ||
		die "fixture $cert failed with the wrong error (want $code): $out"
}

expect_ok server.crt -purpose sslserver -verify_hostname localhost
expect_ok server.crt -purpose sslserver -verify_ip 127.0.0.1
expect_ok server.crt -purpose sslserver -verify_ip ::1
expect_ok wrong.crt -purpose sslserver -verify_hostname wrong.example
expect_fail wrong.crt 62 -verify_hostname localhost  # hostname mismatch
expect_fail wrong.crt 64 -verify_ip 127.0.0.1        # IP address mismatch
expect_ok dnsonly.crt -purpose sslserver -verify_hostname localhost
expect_fail dnsonly.crt 64 -verify_ip 127.0.0.1      # IP address mismatch
expect_ok iponly.crt -purpose sslserver -verify_ip 127.0.0.1
expect_fail iponly.crt 62 -verify_hostname localhost # hostname mismatch
# Identity fixtures: each one's names are exactly what its tests rely on.
# sans CERT: the subjectAltName extension as openssl prints it, or "".
sans() {
	openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | sed -n '2,$s/^ *//p'
}
expect_sans() {
	local got
	got=$(sans "$1")
	[[ $got == "$2" ]] || die "fixture $1 has SAN \"$got\", want \"$2\""
}
expect_sans ip6only.crt 'IP Address:0:0:0:0:0:0:0:1'
expect_ok ip6only.crt -purpose sslserver -verify_ip ::1
expect_ok ip6only.crt -purpose sslserver -verify_ip 0:0::1
expect_fail ip6only.crt 64 -verify_ip 127.0.0.1     # IP address mismatch
expect_fail ip6only.crt 62 -verify_hostname localhost # hostname mismatch
expect_sans ipname.crt 'DNS:other.example, IP Address:127.0.0.1'
expect_ok ipname.crt -purpose sslserver -verify_ip 127.0.0.1
expect_ok ipname.crt -purpose sslserver -verify_hostname other.example
expect_fail ipname.crt 62 -verify_hostname localhost # CN=localhost is not consulted
expect_sans dnsip.crt 'DNS:127.0.0.1'
expect_ok dnsip.crt -purpose sslserver -verify_hostname 127.0.0.1  # as a name it is there
expect_fail dnsip.crt 64 -verify_ip 127.0.0.1       # as an address it is not
expect_sans wildip.crt 'DNS:*.0.0.1'
expect_fail wildip.crt 64 -verify_ip 127.0.0.1
expect_sans wildcard.crt 'DNS:*.mc.test'
expect_ok wildcard.crt -purpose sslserver -verify_hostname node1.mc.test
expect_fail wildcard.crt 62 -verify_hostname mc.test
expect_sans cnonly.crt ''
[[ $(openssl x509 -in cnonly.crt -noout -subject) == *'CN = localhost' ]] ||
	die "cnonly.crt is not for CN=localhost"
expect_ok cnonly.crt -purpose sslserver -verify_hostname localhost # only through the CN
expect_fail expired.crt 10                           # certificate has expired
expect_ok expired.crt -no_check_time -purpose sslserver -verify_hostname localhost
expect_fail selfsigned.crt 18                        # self-signed certificate
out=$(openssl verify -CAfile selfsigned.crt -verify_hostname localhost selfsigned.crt 2>&1) ||
	die "selfsigned.crt is not a valid self-signed certificate: $out"
expect_fail unknownca.crt 20                         # unable to get local issuer
out=$(openssl verify -CAfile other-ca.crt -verify_hostname localhost -verify_ip 127.0.0.1 unknownca.crt 2>&1) ||
	die "unknownca.crt does not verify against other-ca.crt: $out"
expect_ok client.crt -purpose sslclient
expect_fail client.crt 26 -purpose sslserver         # unsupported purpose
expect_ok soon3.crt -purpose sslserver -verify_hostname localhost -verify_ip 127.0.0.1
expect_ok soon30.crt -purpose sslserver -verify_hostname localhost -verify_ip 127.0.0.1
openssl x509 -in soon3.crt -noout -checkend $((2 * 86400)) >/dev/null ||
	die "soon3.crt expires in less than 2 days"
if openssl x509 -in soon3.crt -noout -checkend $((4 * 86400)) >/dev/null; then
	die "soon3.crt does not expire within 4 days"
fi
openssl x509 -in soon30.crt -noout -checkend $((29 * 86400)) >/dev/null ||
	die "soon30.crt expires in less than 29 days"
if openssl x509 -in soon30.crt -noout -checkend $((31 * 86400)) >/dev/null; then
	die "soon30.crt does not expire within 31 days"
fi
for n in "${certs[@]}"; do
	a=$(openssl x509 -in "$n.crt" -noout -pubkey)
	b=$(openssl pkey -in "$n.key" -pubout)
	[[ $a == "$b" ]] || die "$n.key does not match $n.crt"
done
grep -q 'BEGIN RSA PRIVATE KEY' rsaclient-trad.key || die "rsaclient-trad.key is not in PKCS#1 form"
[[ $(openssl pkey -in rsaclient-trad.key -pubout) == "$(openssl x509 -in rsaclient.crt -noout -pubkey)" ]] ||
	die "rsaclient-trad.key does not match rsaclient.crt"
if [[ $(openssl asn1parse -in client-nopub.key) == *'cont [ 1 ]'* ]]; then
	die "client-nopub.key still holds the public point"
fi

chmod 600 ./*.key
mv -f ./*.crt ./*.key "$dir/"
touch "$dir/.complete"
