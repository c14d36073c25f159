#!/usr/bin/env bash
# 80-check: `memtunnel check` against real memcached servers. A TLS + SASL
# server passes (exit 0) with the version, cipher, chain, days left,
# resumption and a successful login shown, and the password nowhere; a wrong
# password exits 69 with "authentication failed". The wrong-name, expired,
# self-signed and unknown-CA servers exit 69 naming the reason, with advice;
# a closed port says "connection refused"; a plaintext port gets the
# --tls-port hint. `--json` parses, and carries the same facts (compared
# with what openssl reads from the certificates). Certificates that expire
# within the warning window get a warn line; 30 days away gets none.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # *_PORT are set by start_memcached

# Credentials come only from where this scenario puts them: the pair beside
# MEMCACHIER_SERVERS (79-check-creds.sh tests which pair goes where).
unset MEMCACHEDCLOUD_USERNAME MEMCACHEDCLOUD_PASSWORD MEMCACHE_USERNAME MEMCACHE_PASSWORD

user=checkuser
pass=Pw-$RANDOM$RANDOM-secret
start_memcached SASL --sasl "$user" "$pass"
start_memcached PLAIN
declare -A cert=([WRONG]=wrong [EXPIRED]=expired [SELF]=selfsigned [UNKNOWN]=unknownca
	[SOON3]=soon3 [SOON30]=soon30)
declare -A reason=([WRONG]="name mismatch" [EXPIRED]="certificate expired"
	[SELF]="self-signed certificate" [UNKNOWN]="unknown issuer")
for s in WRONG EXPIRED SELF UNKNOWN SOON3 SOON30; do
	start_memcached "$s" --cert "${cert[$s]}"
done
closed=$(free_port)
ca=(--ca "$PKI/ca.crt" --connect-timeout 2)

# check NAME ARGS...: memtunnel check, stdout in $T/NAME.out, stderr in
# $T/NAME.err; sets $status, $out and $err.
check() {
	local name=$1
	shift
	status=$(run_memtunnel "$T/$name.out" "$T/$name.err" check "$@")
	out=$(cat "$T/$name.out")
	err=$(cat "$T/$name.err")
}

no_secret() {
	if grep -qF -- "$pass" "$T/$1.out" "$T/$1.err"; then
		fail "$1: the password appears nowhere in the output"
	fi
	ok "$1: the password appears nowhere in the output"
}

# ---- TLS + SASL, right credentials: everything passes ---------------------
MEMCACHIER_SERVERS=localhost:$SASL_PORT MEMCACHIER_USERNAME=$user MEMCACHIER_PASSWORD=$pass check GOOD "${ca[@]}"
assert_eq 0 "$status" "GOOD: TLS + SASL server: check exits 0"
assert_match "$out" $'\n  connected  127\\.0\\.0\\.1:'"$SASL_PORT"' in [0-9.]+ ms' "GOOD: the address connected to and the connect time"
# The suite's name depends on the build: TLS13-AES128-GCM-SHA256 (wolfSSL)
# or TLS_AES_128_GCM_SHA256 (IANA, with the OpenSSL compatibility layer).
suite='TLS(13-[A-Z0-9-]+|_[A-Z0-9_]+)'
assert_match "$out" $'\n  tls        TLSv1\\.3 '"$suite"', handshake [0-9.]+ ms' "GOOD: protocol version, cipher and handshake time"
assert_match "$out" $'\n  resumed    yes, second handshake [0-9.]+ ms' "GOOD: the second handshake resumed the session"
assert_match "$out" $'\n  cert 0     /O=memtunnel tests/CN=localhost\n    issuer   /O=memtunnel tests/CN=memtunnel test CA\n    names    DNS:localhost IP:127\\.0\\.0\\.1 IP:::1\n    valid    [0-9T:-]+Z to [0-9T:-]+Z, [0-9]+ days left' \
	"GOOD: the leaf certificate: subject, issuer, names, validity, days left"
assert_match "$out" $'\n  cert 1     /O=memtunnel tests/CN=memtunnel test CA\n    issuer   \\(itself\\)' "GOOD: the CA certificate follows"
assert_match "$out" $'\n  verify     ok: the chain leads to a trusted CA, the dates are valid and the certificate is for "localhost"' "GOOD: the verdict in words"
assert_match "$out" $'\n  memcache   binary protocol, version 1\\.[0-9]+\\.[0-9]+' "GOOD: the memcached version, over the binary protocol"
assert_match "$out" $'\n  sasl       with MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD: authenticated \\(mechanisms offered: PLAIN\\)' "GOOD: SASL login succeeded"
assert_match "$out" $'\n  result     PASS\n' "GOOD: result PASS"
assert_match "$out" $'\nmemtunnel check: 1 of 1 upstream passed$' "GOOD: the summary line"
assert_eq "" "$err" "GOOD: nothing on stderr"
no_secret GOOD
# The days left agree with openssl's reading of the certificate.
end=$(openssl x509 -in "$PKI/server.crt" -noout -enddate | sed 's/^notAfter=//')
want=$(( ($(date -u -d "$end" +%s) - $(date -u +%s)) / 86400 ))
days=$(sed -n 's/^    valid .*, \([0-9]*\) days left$/\1/p' "$T/GOOD.out" | head -n1)
assert_le $((want - 1)) "$days" "GOOD: days left ($days) match openssl ($want)"
assert_le "$days" "$want" "GOOD: days left ($days) are not more than openssl says ($want)"

# ---- wrong password ------------------------------------------------------
MEMCACHIER_SERVERS=localhost:$SASL_PORT MEMCACHIER_USERNAME=$user MEMCACHIER_PASSWORD=wrong-$pass check BADPASS "${ca[@]}"
assert_eq 69 "$status" "BADPASS: wrong password: check exits 69"
assert_match "$out" $'\n  result     FAIL at auth: authentication failed: status 0x0020 \\(authentication error\\)' "BADPASS: says authentication failed, with the server's status"
assert_match "$out" 'refused the login with the credentials in MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD' "BADPASS: advice names the variables"
assert_match "$out" $'\n  tls        TLSv1\\.3 ' "BADPASS: TLS itself worked and is shown"
if grep -qF -- "wrong-$pass" "$T/BADPASS.out" "$T/BADPASS.err"; then
	fail "BADPASS: the wrong password appears nowhere in the output"
fi
ok "BADPASS: the wrong password appears nowhere in the output"

# A SASL server and no credentials: the text protocol gets no answer.
MEMCACHIER_SERVERS=localhost:$SASL_PORT check NOCREDS "${ca[@]}"
assert_eq 69 "$status" "NOCREDS: SASL server without credentials: check exits 69"
assert_match "$out" 'FAIL at memcache: no answer to .version.' "NOCREDS: the text command got no answer"
assert_match "$out" 'set MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD' "NOCREDS: advice says which variables to set"

# ---- TLS without SASL: the text protocol ----------------------------------
check TEXT --servers "127.0.0.1:$PLAIN_PORT" "${ca[@]}"
assert_eq 0 "$status" "TEXT: TLS server without SASL, IP upstream: check exits 0"
assert_match "$out" $'\n  memcache   text protocol, version 1\\.[0-9]+\\.[0-9]+\n' "TEXT: version over the text protocol"
assert_match "$out" 'the certificate is for "127\.0\.0\.1"' "TEXT: the IP was checked against the certificate"

# ---- refused certificates: the reason, and what to do ---------------------
for s in WRONG EXPIRED SELF UNKNOWN; do
	port=${s}_PORT
	check "$s" --servers "localhost:${!port}" "${ca[@]}"
	assert_eq 69 "$status" "$s: ${cert[$s]}.crt: check exits 69"
	assert_match "$out" $'\n  verify     FAILED: '"${reason[$s]}"$'\n' "$s: the verdict names the reason: ${reason[$s]}"
	assert_match "$out" $'\n  result     FAIL at verify: '"${reason[$s]}" "$s: result FAIL at verify"
	assert_match "$out" $'\n  cert 0     /O=memtunnel tests/CN=' "$s: the refused chain is shown"
	assert_match "$out" $'\n  to fix     [A-Z]' "$s: advice follows"
done
assert_match "$(cat "$T/WRONG.out")" 'The certificate is for DNS:wrong\.example, not "localhost".*--sni NAME \(MEMTUNNEL_SNI\)' "WRONG: advice shows the certificate's names and --sni"
assert_match "$(cat "$T/WRONG.out")" '--verify chain \(MEMTUNNEL_VERIFY=chain\) would skip the name check, at a cost: .*read and change the traffic' "WRONG: --verify chain is offered with its risk spelled out"
assert_match "$(cat "$T/EXPIRED.out")" 'EXPIRED [0-9]+ days ago' "EXPIRED: the certificate's expiry is shown"
assert_match "$(cat "$T/EXPIRED.out")" 'expired on [0-9T:-]+Z, [0-9]+ days ago\. Only the provider can fix this' "EXPIRED: advice says who can fix it"
assert_match "$(cat "$T/SELF.out")" 'self-signed certificate .*MEMTUNNEL_CA' "SELF: advice mentions MEMTUNNEL_CA"
assert_match "$(cat "$T/UNKNOWN.out")" 'chains to /O=memtunnel tests/CN=memtunnel unrelated CA, a CA memtunnel does not trust \(it trusts only the CAs given with --ca\)\. .*MEMTUNNEL_CA' \
	"UNKNOWN: advice names the unknown CA, where trust came from, and MEMTUNNEL_CA"

# --sni fixes the wrong name; --verify chain passes it, saying the name was not checked.
check SNI --servers "localhost:$WRONG_PORT" --sni wrong.example "${ca[@]}"
assert_eq 0 "$status" "SNI: --sni wrong.example: the wrong-name server passes"
check CHAIN --servers "localhost:$WRONG_PORT" --verify chain "${ca[@]}"
assert_eq 0 "$status" "CHAIN: --verify chain: the wrong-name server passes"
assert_match "$out" 'the name was NOT checked \(--verify chain\)' "CHAIN: the verdict says the name was not checked"

# ---- a closed port and plaintext ports --------------------------------------
check CLOSED --servers "localhost:$closed" "${ca[@]}"
assert_eq 69 "$status" "CLOSED: nothing listens: check exits 69"
assert_match "$out" $'\n  result     FAIL at connect: connection refused' "CLOSED: says connection refused"
assert_match "$out" '--tls-port PORT' "CLOSED: advice mentions --tls-port"

for s in PLAIN SASL; do
	port=${s}_NOTLS_PORT
	check "NOTLS_$s" --servers "localhost:${!port}" "${ca[@]}"
	assert_eq 69 "$status" "NOTLS_$s: plaintext port of the $s server: check exits 69"
	assert_match "$out" $'\n  result     FAIL at tls: ' "NOTLS_$s: the TLS step failed"
	assert_match "$out" 'plaintext memcached port' "NOTLS_$s: advice says this looks like a plaintext port"
	assert_match "$out" 'set --tls-port PORT \(MEMTUNNEL_TLS_PORT\)' "NOTLS_$s: advice suggests --tls-port"
done

# ---- expiry warnings ---------------------------------------------------------
check SOON3 --servers "localhost:$SOON3_PORT" "${ca[@]}"
assert_eq 0 "$status" "SOON3: a certificate expiring in 3 days still passes"
assert_match "$out" $'\n  WARNING    cert 0 expires in [1-3] days, on [0-9T:-]+Z' "SOON3: a warning line in the block"
assert_match "$err" '^memtunnel level=warn at=cert-expiring upstream=localhost:'"$SOON3_PORT"' subject="/O=memtunnel tests/CN=localhost" not_after=[0-9T:-]+Z days_left=[1-3] ' \
	"SOON3: one warn line on stderr with the date"
assert_eq 1 "$(wc -l <"$T/SOON3.err")" "SOON3: exactly one line on stderr"
check SOON30 --servers "localhost:$SOON30_PORT" "${ca[@]}"
assert_eq 0 "$status" "SOON30: a certificate expiring in 30 days passes"
assert_eq "" "$err" "SOON30: no warn line"
if [[ $out == *WARNING* ]]; then fail "SOON30: no warning in the block"; fi
ok "SOON30: no warning in the block"
MEMTUNNEL_EXPIRY_WARN_DAYS=31 check SOON30W --servers "localhost:$SOON30_PORT" "${ca[@]}"
assert_match "$err" 'at=cert-expiring .* days_left=(28|29|30) ' "SOON30W: MEMTUNNEL_EXPIRY_WARN_DAYS=31 warns about it"

# ---- several upstreams: one block each, in order, exit 69 if one fails ---------
MEMCACHIER_USERNAME=$user MEMCACHIER_PASSWORD=$pass \
	MEMCACHIER_SERVERS="localhost:$SASL_PORT,localhost:$EXPIRED_PORT,localhost:$closed" check MANY "${ca[@]}"
assert_eq 69 "$status" "MANY: one good, two bad upstreams: check exits 69"
assert_eq "localhost:$SASL_PORT localhost:$EXPIRED_PORT localhost:$closed" \
	"$(sed -n 's/^upstream     //p' "$T/MANY.out" | paste -sd ' ')" "MANY: one block per upstream, in order"
assert_match "$out" $'\nmemtunnel check: 1 of 3 upstreams passed$' "MANY: the summary counts them"

# ---- --json ------------------------------------------------------------------
MEMCACHIER_USERNAME=$user MEMCACHIER_PASSWORD=$pass \
	MEMCACHIER_SERVERS="localhost:$SASL_PORT,localhost:$WRONG_PORT,localhost:$closed,localhost:$SOON3_PORT" check JSON --json "${ca[@]}"
assert_eq 69 "$status" "JSON: --json with failing upstreams exits 69"
"$PY" -m json.tool "$T/JSON.out" >/dev/null 2>"$T/json-tool.log" ||
	fail "JSON: python3 -m json.tool parses the output" "$(cat "$T/json-tool.log")"
ok "JSON: python3 -m json.tool parses the output"
no_secret JSON
enddates=$(for c in server ca wrong soon3; do
	openssl x509 -in "$PKI/$c.crt" -noout -enddate | sed 's/^notAfter=//'
done | while read -r d; do date -u -d "$d" +%Y-%m-%dT%H:%M:%SZ; done | paste -sd ' ')
out=$("$PY" - "$T/JSON.out" "$SASL_PORT" "$WRONG_PORT" "$closed" "$SOON3_PORT" "$enddates" <<'PYEOF' 2>&1
import json, re, sys
doc = json.load(open(sys.argv[1]))
sasl, wrong, closed, soon3 = sys.argv[2:6]
server_end, ca_end, wrong_end, soon3_end = sys.argv[6].split()
def check(cond, what):
    if not cond:
        print("FAILED:", what, json.dumps(doc, indent=1)[:3000])
        sys.exit(1)
check(doc["pass"] is False and doc["passed"] == 2 and doc["failed"] == 2, "summary")
check(doc["verify"] == "full" and doc["expiry_warn_days"] == 14, "settings")
ups = doc["upstreams"]
check([u["upstream"] for u in ups] == ["localhost:" + p for p in (sasl, wrong, closed, soon3)], "order")
g = ups[0]
check(g["pass"] is True and g["failed_step"] is None and g["reason"] is None, "good passes")
check(g["address"] == "127.0.0.1:" + sasl and g["connect_ms"] >= 0, "address")
check(g["tls"]["ok"] is True and g["tls"]["version"] == "TLSv1.3", "tls version")
check(re.fullmatch(r"TLS(13-[A-Z0-9-]+|_[A-Z0-9_]+)", g["tls"]["cipher"]), "cipher")
check(g["tls"]["resumed"] is True and g["tls"]["resumed_handshake_ms"] >= 0, "resumed")
check(g["verify"] == {"mode": "full", "name": "localhost", "ok": True,
                      "verdict": g["verify"]["verdict"]} and g["verify"]["verdict"].startswith("ok:"), "verify")
c0, c1 = g["chain"]
check(c0["subject"] == "/O=memtunnel tests/CN=localhost", "leaf subject")
check(c0["issuer"] == "/O=memtunnel tests/CN=memtunnel test CA", "leaf issuer")
check(c0["dns_names"] == ["localhost"] and c0["ip_addresses"] == ["127.0.0.1", "::1"], "SANs")
check(c0["names_total"] == 3, "names_total")
check(c0["not_after"] == server_end and c1["not_after"] == ca_end, "not_after as openssl reads it")
check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c0["not_before"]), "not_before")
check(isinstance(c0["days_left"], int) and c0["days_left"] > 800, "days_left")
check(c1["subject"] == c1["issuer"] and c1["dns_names"] == [], "CA")
check(g["expiring"] is None and g["advice"] == [], "nothing to say")
m = g["memcache"]
check(m["protocol"] == "binary" and re.fullmatch(r"1\.\d+\.\d+", m["version"]), "memcache version")
check(m["sasl"] == {"username_variable": "MEMCACHIER_USERNAME", "password_variable": "MEMCACHIER_PASSWORD",
                    "withheld": False, "offered": True, "mechanisms": "PLAIN", "authenticated": True, "error": None}, "sasl")
w = ups[1]
check(w["pass"] is False and w["failed_step"] == "verify" and w["reason"] == "name mismatch", "wrong name")
check(w["verify"]["ok"] is False and w["tls"]["ok"] is False, "wrong name: not ok")
check(w["chain"][0]["dns_names"] == ["wrong.example"] and w["chain"][0]["not_after"] == wrong_end, "wrong name: chain shown")
check(any("--sni" in a for a in w["advice"]) and any("--verify chain" in a for a in w["advice"]), "wrong name: advice")
check(w["memcache"]["protocol"] is None, "wrong name: no memcache traffic")
x = ups[2]
check(x["failed_step"] == "connect" and x["reason"] == "connection refused", "closed")
check(x["address"] is None and x["tls"]["ok"] is None and x["chain"] == [], "closed: nothing else")
s = ups[3]
check(s["pass"] is True and s["expiring"]["index"] == 0, "soon3 passes with a warning")
check(s["expiring"]["not_after"] == soon3_end and 1 <= s["expiring"]["days_left"] <= 3, "soon3 expiry")
check(s["memcache"]["protocol"] == "binary" and s["memcache"]["sasl"]["offered"] is False
      and s["memcache"]["sasl"]["authenticated"] is None, "soon3: no SASL, credentials unused")
check(len(s["advice"]) == 1 and "does not ask for a SASL login" in s["advice"][0], "soon3: a note about the credentials")
print("ok")
PYEOF
) || true
assert_eq ok "$out" "JSON: the document carries the same facts (checked field by field)"

MEMCACHIER_SERVERS=localhost:$SASL_PORT MEMCACHIER_USERNAME=$user MEMCACHIER_PASSWORD=$pass check JSONOK --json "${ca[@]}"
assert_eq 0 "$status" "JSONOK: --json with every upstream passing exits 0"
assert_eq "true 1" "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(str(d["pass"]).lower(), d["passed"])' "$T/JSONOK.out")" \
	"JSONOK: pass is true"

# Certificate text with quotes, a backslash and UTF-8 stays valid JSON.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/odd.key" 2>/dev/null
openssl req -new -key "$T/odd.key" -out "$T/odd.csr" -utf8 \
	-subj '/O=Quote" Back\\slash Ünïcødé/CN=localhost' 2>"$T/odd.log" || fail "a CSR with an odd subject" "$(cat "$T/odd.log")"
printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\n' >"$T/odd.ext"
openssl x509 -req -in "$T/odd.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
	-CAserial "$T/odd.srl" -out "$T/odd.crt" -days 10 -extfile "$T/odd.ext" 2>>"$T/odd.log" ||
	fail "signing the odd certificate" "$(cat "$T/odd.log")"
cat "$T/odd.crt" "$PKI/ca.crt" >"$T/odd-chain.crt"
start_memcached ODD --extra "-o ssl_chain_cert=$T/odd-chain.crt,ssl_key=$T/odd.key"
check ODD --json --servers "localhost:$ODD_PORT" "${ca[@]}"
assert_eq 0 "$status" "ODD: the server with an odd subject passes"
subject=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["upstreams"][0]["chain"][0]["subject"])' "$T/ODD.out" 2>&1) ||
	fail "ODD: the JSON parses" "$subject"
assert_eq '/O=Quote" Back\slash Ünïcødé/CN=localhost' "$subject" "ODD: quotes, backslash and UTF-8 survive the JSON escaping"
assert_match "$err" 'at=cert-expiring' "ODD: expires in 10 days: warned"

# A leaf of more than 2048 bytes (62 names): wolfSSL's session chain does
# not keep it, the peer certificate does; the chain shows it all the same.
openssl req -new -key "$T/odd.key" -out "$T/big.csr" -subj '/O=memtunnel tests/CN=localhost' 2>>"$T/odd.log"
{
	printf 'subjectAltName = DNS:localhost, IP:127.0.0.1'
	for i in $(seq 1 60); do printf ', DNS:host-%02d.a-rather-long-name.example' "$i"; done
	echo
} >"$T/big.ext"
openssl x509 -req -in "$T/big.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
	-CAserial "$T/odd.srl" -out "$T/big.crt" -days 100 -extfile "$T/big.ext" 2>>"$T/odd.log" ||
	fail "signing the big certificate" "$(cat "$T/odd.log")"
assert_lt 2048 "$(openssl x509 -in "$T/big.crt" -outform der | wc -c)" "BIG: the leaf is larger than 2048 bytes"
cat "$T/big.crt" "$PKI/ca.crt" >"$T/big-chain.crt"
start_memcached BIG --extra "-o ssl_chain_cert=$T/big-chain.crt,ssl_key=$T/odd.key"
check BIG --servers "localhost:$BIG_PORT" "${ca[@]}"
assert_eq 0 "$status" "BIG: the server with a large certificate passes"
assert_match "$out" $'\n  cert 0     /O=memtunnel tests/CN=localhost\n    issuer   /O=memtunnel tests/CN=memtunnel test CA\n    names    DNS:localhost IP:127\\.0\\.0\\.1 DNS:host-01\\.a-rather-long-name\\.example .* and 46 more\n' \
	"BIG: cert 0 is the large leaf, its names cut at 16 with the rest counted"
assert_match "$out" $'\n  cert 1     /O=memtunnel tests/CN=memtunnel test CA\n' "BIG: cert 1 is the CA"

# ---- usage -----------------------------------------------------------------------
status=$(run_memtunnel "$T/usage.out" "$T/usage.err" --json --servers "localhost:$SASL_PORT")
assert_eq 64 "$status" "--json outside check is a usage error (64)"
assert_match "$(cat "$T/usage.err")" 'setting=--json' "the usage error names --json"
