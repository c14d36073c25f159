#!/usr/bin/env bash
# 11-sasl: memcached with TLS and SASL (-Z -S, binary protocol only). SASL
# runs inside the tunnel: libmemcached's tools, mcload and pylibmc log in
# through memtunnel; a wrong password or none is refused by the server.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT_* are set by start_memcached/start_memtunnel

user=mtuser
pass=s3cr3t-Pass.42
start_memcached MC --sasl "$user" "$pass"
start_memtunnel MT --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
tunnel=127.0.0.1:$MT_PORT
direct=127.0.0.1:$MC_NOTLS_PORT
auth=(--binary --username="$user" --password="$pass")

out=$(memcstat "${auth[@]}" --servers="$tunnel" 2>&1) || fail "memcstat with SASL through the tunnel" "$out"
assert_match "$out" $'\n[[:space:]]*pid: '"$MC_PID"$'\n' "memcstat --binary --username --password through the tunnel shows the upstream's pid"

mkdir -p "$T/files"
head -c 700000 /dev/urandom >"$T/files/sasl.bin"
out=$(cd "$T/files" && memccp "${auth[@]}" --servers="$tunnel" sasl.bin 2>&1) ||
	fail "memccp with SASL through the tunnel" "$out"
out=$(memccat "${auth[@]}" --servers="$tunnel" --file="$T/back.bin" sasl.bin 2>&1) ||
	fail "memccat with SASL through the tunnel" "$out"
cmp "$T/files/sasl.bin" "$T/back.bin" || fail "memccp/memccat with SASL round trip is byte-identical"
ok "memccp/memccat with SASL through the tunnel: byte-identical round trip"
out=$(memccat "${auth[@]}" --servers="$direct" --file="$T/direct.bin" sasl.bin 2>&1) ||
	fail "memccat with SASL directly from the plaintext port" "$out"
cmp "$T/files/sasl.bin" "$T/direct.bin" || fail "the server stored exactly the bytes sent through the tunnel"
ok "the server stored exactly the bytes sent through the tunnel"

out=$(mcload --port "$MT_PORT" setget --binary --username "$user" --password "$pass" --size 50000 2>&1) ||
	fail "mcload setget --binary with SASL" "$out"
assert_match "$out" 'ok=1' "mcload setget --binary --username --password through the tunnel"

out=$("$PY" - "$tunnel" "$user" "$pass" <<'PYEOF' 2>&1
import sys, os, pylibmc
c = pylibmc.Client([sys.argv[1]], binary=True, username=sys.argv[2], password=sys.argv[3])
value = os.urandom(100000)
assert c.set("pylibmc:sasl", value), "set failed"
assert c.get("pylibmc:sasl") == value, "value differs"
print("pylibmc ok")
PYEOF
) || fail "pylibmc with SASL through the tunnel" "$out"
assert_eq "pylibmc ok" "$out" "pylibmc binary + SASL set/get through the tunnel"

errors_before=$(memcstat "${auth[@]}" --servers="$direct" | awk '$1 == "auth_errors:" { print $2 }')

# A wrong password: the server refuses the login, nothing is stored.
echo refused >"$T/files/wrongpass.txt"
if out=$(cd "$T/files" && memccp --binary --username="$user" --password=wrong-password --servers="$tunnel" wrongpass.txt 2>&1); then
	fail "memccp with a wrong password fails" "$out"
fi
ok "memccp with a wrong password fails through the tunnel"
if out=$(mcload --port "$MT_PORT" setget --binary --username "$user" --password wrong-password --key wrongpass 2>&1); then
	fail "mcload with a wrong password fails" "$out"
fi
ok "mcload setget with a wrong password fails through the tunnel"
if out=$(mcload --port "$MT_PORT" setget --binary --key nopass 2>&1); then
	fail "mcload without credentials fails against a SASL server" "$out"
fi
ok "mcload setget without credentials fails through the tunnel"
for key in wrongpass.txt wrongpass nopass; do
	if memccat "${auth[@]}" --servers="$direct" --file="$T/none" "$key" >/dev/null 2>&1; then
		fail "nothing was stored under $key by the refused clients"
	fi
done
ok "the refused clients stored nothing"
errors_after=$(memcstat "${auth[@]}" --servers="$direct" | awk '$1 == "auth_errors:" { print $2 }')
assert_le $((errors_before + 2)) "$errors_after" "the server counted the failed logins (auth_errors $errors_before -> $errors_after)"

assert_alive MT
stop_memtunnel MT
