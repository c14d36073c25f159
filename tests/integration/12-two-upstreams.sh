#!/usr/bin/env bash
# 12-two-upstreams: --servers A,B gives two listeners in that order, and
# each reaches its own node only: proven with each node's statistics and
# keys read on its plaintext (notls) listener.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # A_*, B_*, MT_* are set by start_memcached/start_memtunnel

start_memcached A
start_memcached B
# A by name (DNS SAN), B by address (IP SAN).
start_memtunnel MT --servers "localhost:$A_PORT,127.0.0.1:$B_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
read -r p1 p2 extra <<<"$MT_PORTS"
[[ -n $p1 && -n $p2 && -z $extra ]] || fail "two listeners for two servers" "MEMCACHE_SERVERS=$MT_SERVERS"
ok "two listeners for two servers: $MT_SERVERS"
[[ $p1 != "$p2" ]] || fail "the two listeners have different ports"
wait_log "$T/MT.log" "at=listening local=127\.0\.0\.1:$p1 upstream=localhost:$A_PORT"
wait_log "$T/MT.log" "at=listening local=127\.0\.0\.1:$p2 upstream=127\.0\.0\.1:$B_PORT"
first=$(grep -n 'at=listening' "$T/MT.log" | head -n1)
assert_match "$first" "local=127\.0\.0\.1:$p1 upstream=localhost:$A_PORT" "listeners are logged in server order"

for n in A B; do
	port=${n}_NOTLS_PORT
	assert_eq 0 "$(mc_stat "${!port}" curr_items)" "node $n starts empty"
done

# Three keys through listener 1, five through listener 2.
for i in 1 2 3; do
	mc_set "$p1" "via1:$i" "value-a-$i" || fail "set via1:$i through listener 1"
done
for i in 1 2 3 4 5; do
	mc_set "$p2" "via2:$i" "value-b-$i" || fail "set via2:$i through listener 2"
done
ok "sets through both listeners stored"

assert_eq 3 "$(mc_stat "$A_NOTLS_PORT" cmd_set)" "node A saw exactly the 3 sets of listener 1"
assert_eq 3 "$(mc_stat "$A_NOTLS_PORT" curr_items)" "node A holds 3 items"
assert_eq 5 "$(mc_stat "$B_NOTLS_PORT" cmd_set)" "node B saw exactly the 5 sets of listener 2"
assert_eq 5 "$(mc_stat "$B_NOTLS_PORT" curr_items)" "node B holds 5 items"
assert_eq value-a-2 "$(mc_get "$A_NOTLS_PORT" via1:2)" "a key set through listener 1 is on node A"
assert_eq "" "$(mc_get "$B_NOTLS_PORT" via1:2)" "a key set through listener 1 is not on node B"
assert_eq value-b-4 "$(mc_get "$B_NOTLS_PORT" via2:4)" "a key set through listener 2 is on node B"
assert_eq "" "$(mc_get "$A_NOTLS_PORT" via2:4)" "a key set through listener 2 is not on node A"
assert_eq value-a-3 "$(mc_get "$p1" via1:3)" "listener 1 reads node A's key back"
assert_eq "" "$(mc_get "$p1" via2:3)" "listener 1 does not see node B's key"

out=$(memcstat --servers="127.0.0.1:$p1,127.0.0.1:$p2" 2>&1) || fail "memcstat over both listeners" "$out"
got=$(awk '$1 == "pid:" { print $2 }' <<<"$out" | paste -sd' ')
assert_eq "$A_PID $B_PID" "$got" "memcstat over both listeners reports A's then B's pid"

# pylibmc hashes keys over both listeners; every key must land on exactly
# one node, and both nodes must get some.
out=$("$PY" - "$MT_SERVERS" "$A_NOTLS_PORT" "$B_NOTLS_PORT" <<'PYEOF' 2>&1
import sys, pylibmc
from pymemcache.client.base import Client
servers = sys.argv[1].split(",")
keys = {"py:%d" % i: ("v%d" % i).encode() * 10 for i in range(300)}
c = pylibmc.Client(servers, behaviors={"ketama": True})
for k, v in keys.items():
    assert c.set(k, v), "set %s failed" % k
for k, v in keys.items():
    assert c.get(k) == v, "get %s differs" % k
a = Client(("127.0.0.1", int(sys.argv[2])))
b = Client(("127.0.0.1", int(sys.argv[3])))
on_a = on_b = 0
for k, v in keys.items():
    ga, gb = a.get(k), b.get(k)
    assert (ga == v) != (gb == v), "%s is on %s node(s)" % (k, "both" if ga else "no")
    on_a += ga == v
    on_b += gb == v
assert on_a > 0 and on_b > 0, "all keys on one node: %d/%d" % (on_a, on_b)
print("pylibmc ok a=%d b=%d" % (on_a, on_b))
PYEOF
) || fail "pylibmc with both listeners" "$out"
assert_match "$out" '^pylibmc ok a=[0-9]+ b=[0-9]+$' "pylibmc over both listeners: each key on exactly one node ($out)"

assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error lines from memtunnel"
assert_alive MT
stop_memtunnel MT
