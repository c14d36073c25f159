#!/usr/bin/env bash
# 10-text-binary: text and binary protocol through memtunnel to a TLS
# memcached, with libmemcached's tools, mcload, pylibmc and pymemcache.
# Values are compared byte for byte, through the tunnel and directly on the
# server's plaintext listener.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT_* are set by start_memcached/start_memtunnel

start_memcached MC
start_memtunnel MT --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
wait_log "$T/MT.log" "level=info at=listening local=127\.0\.0\.1:$MT_PORT upstream=localhost:$MC_PORT"
ok "one listening line names the listener and its upstream"
tunnel=127.0.0.1:$MT_PORT
direct=127.0.0.1:$MC_NOTLS_PORT

# memcstat reports the upstream's own pid: the tunnel reaches that server.
for proto in text binary; do
	flag=()
	[[ $proto == text ]] || flag=(--binary)
	out=$(memcstat "${flag[@]}" --servers="$tunnel") || fail "memcstat ($proto) through the tunnel" "$out"
	assert_match "$out" $'\n[[:space:]]*pid: '"$MC_PID"$'\n' "memcstat ($proto) through the tunnel shows the upstream's pid"
done

# memccp + memccat, 900 kB of random bytes, text then binary protocol.
mkdir -p "$T/files"
for proto in text binary; do
	flag=()
	[[ $proto == text ]] || flag=(--binary)
	f=$T/files/blob-$proto.bin
	head -c 900000 /dev/urandom >"$f"
	out=$(cd "$T/files" && memccp "${flag[@]}" --servers="$tunnel" "blob-$proto.bin" 2>&1) ||
		fail "memccp ($proto) through the tunnel" "$out"
	out=$(memccat "${flag[@]}" --servers="$tunnel" --file="$T/back-$proto.bin" "blob-$proto.bin" 2>&1) ||
		fail "memccat ($proto) through the tunnel" "$out"
	cmp "$f" "$T/back-$proto.bin" || fail "memccp/memccat ($proto) round trip is byte-identical"
	ok "memccp/memccat ($proto) round trip through the tunnel is byte-identical"
	out=$(memccat --servers="$direct" --file="$T/direct-$proto.bin" "blob-$proto.bin" 2>&1) ||
		fail "memccat directly from the server's plaintext port ($proto)" "$out"
	cmp "$f" "$T/direct-$proto.bin" || fail "the server stored exactly the bytes sent through the tunnel ($proto)"
	ok "the server stored exactly the bytes sent through the tunnel ($proto)"
done

# A key stored directly is read through the tunnel, and the reverse.
mc_set "$MC_NOTLS_PORT" direct:key direct-value || fail "set directly on the plaintext port"
out=$(memccat --servers="$tunnel" --file="$T/direct-key" direct:key 2>&1) || fail "memccat direct:key through the tunnel" "$out"
assert_eq direct-value "$(cat "$T/direct-key")" "a value stored directly reads back through the tunnel"

# mcload: text and binary set/get with verification.
for flag in "" --binary; do
	# shellcheck disable=SC2086 # empty flag on purpose
	out=$(mcload --port "$MT_PORT" setget $flag --size 100000 2>&1) || fail "mcload setget $flag" "$out"
	assert_match "$out" 'ok=1' "mcload setget ${flag:---text} --size 100000 through the tunnel"
done

# Real client libraries.
out=$("$PY" - "$tunnel" <<'PYEOF' 2>&1
import sys, os, pylibmc
server = sys.argv[1]
for binary in (False, True):
    c = pylibmc.Client([server], binary=binary)
    value = os.urandom(200000)
    key = "pylibmc:%s" % binary
    assert c.set(key, value), "set failed"
    got = c.get(key)
    assert got == value, "value differs (binary=%s)" % binary
    c.set("pylibmc:str", "hello")
    assert c.get("pylibmc:str") == "hello"
    c.set("pylibmc:n", 41)
    assert c.incr("pylibmc:n", 1) == 42
    assert c.get("pylibmc:missing") is None
    c.disconnect_all()
print("pylibmc ok")
PYEOF
) || fail "pylibmc set/get through the tunnel" "$out"
assert_eq "pylibmc ok" "$out" "pylibmc text and binary set/get through the tunnel"

# pymemcache waits for each reply here (noreply=False): its default,
# pipelining "set ... noreply" with the next request, trips memcached
# 1.6.18's TLS stall on pipelined input (see 30-bytes.sh), with or without
# memtunnel.
out=$("$PY" - "$MT_PORT" <<'PYEOF' 2>&1
import sys, os
from pymemcache.client.base import Client
c = Client(("127.0.0.1", int(sys.argv[1])), connect_timeout=5, timeout=10, default_noreply=False)
value = os.urandom(300000)
assert c.set("pymemcache:k", value), "set not stored"
assert c.get("pymemcache:k") == value, "value differs"
assert c.get("pymemcache:missing") is None
many = {"pymemcache:%d" % i: os.urandom(i * 10) for i in range(1, 200)}
for k, v in many.items():
    assert c.set(k, v), "set %s not stored" % k
got = c.get_many(list(many))
assert got == many, "get_many differs"
c.close()
print("pymemcache ok")
PYEOF
) || fail "pymemcache set/get through the tunnel" "$out"
assert_eq "pymemcache ok" "$out" "pymemcache set/get/get_many through the tunnel"

assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error lines from memtunnel"
assert_alive MT
stop_memtunnel MT
