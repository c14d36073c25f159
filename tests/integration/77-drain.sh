#!/usr/bin/env bash
# 77-drain: after the child exits, memtunnel lets open connections finish
# (bounded by --connect-timeout) and exits with the child's status. A
# signal that arrives during that drain must not kill memtunnel and lose
# the child's status (Heroku signals every process of the dyno, and the
# child may be faster to exit than memtunnel).
#   - child exits 5 while a client holds a tunnel connection open;
#     SIGTERM, SIGINT, SIGHUP to memtunnel during the drain: exit 5.
#   - the drain is bounded: memtunnel exits within --connect-timeout + 1 s
#     even though the client never closes.
#   - with no connection open, memtunnel exits as soon as the child does.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, HOLD_* are set by lib.sh

start_memcached MC

# The child waits for its marker file, so the client connects first.
cat >"$T/child.sh" <<'EOF2'
echo "$MEMCACHE_SERVERS" >"$1.servers"
while [ ! -e "$1.go" ]; do sleep 0.02; done
exit 5
EOF2

"$MEMTUNNEL" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" \
	--connect-timeout 3 -- sh "$T/child.sh" "$T/run" \
	>"$T/MT.out" 2>"$T/MT.log" </dev/null &
mt=$!
_lib_track "$mt"
wait_until 10 test -s "$T/run.servers" || fail "the child starts"
port=$(sed 's/.*://' "$T/run.servers")

# A client that connects, does one set/get, and then holds the connection.
cat >"$T/hold.py" <<'EOF2'
import socket, sys, time
import mcread
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
r = mcread.Reader(s)
s.sendall(b"set drain 0 0 7\r\n\r\nEND\r\n\r\nget drain\r\n")
assert r.text().status == b"STORED"
print("held", len([v for v in r.text().values if v.data == b"\r\nEND\r\n"]), flush=True)
time.sleep(30)
EOF2
# env execs python, so HOLD_PID is the client itself.
bg_start HOLD env "PYTHONPATH=$TESTS_DIR" PYTHONDONTWRITEBYTECODE=1 "$PY" "$T/hold.py" "$port"
wait_log "$T/HOLD.out" '^held 1$' 10 || fail "the client holds a working connection"
ok "a client holds a tunnel connection open"

start=$(now_ms)
touch "$T/run.go"
wait_log "$T/MT.log" 'at=child-exited status=5' 10 || fail "the child exits 5"
for sig in TERM INT HUP; do
	kill -"$sig" "$mt"
done
status=0
_lib_wait_exit "$mt" 10 || fail "memtunnel exits after the drain"
wait "$mt" || status=$?
_lib_untrack "$mt"
took=$(($(now_ms) - start))
assert_eq 5 "$status" "SIGTERM, SIGINT, SIGHUP during the drain: memtunnel still exits with the child's 5"
assert_le "$took" 4500 "the drain is bounded by --connect-timeout 3 (took $took ms)"
assert_eq 0 "$(count_log "$T/MT.log" 'signal-forwarded')" "nothing was forwarded to the exited child"

# No connection open: the exit follows the child's at once.
start=$(now_ms)
status=$(run_memtunnel "$T/Q.out" "$T/Q.log" --servers "localhost:$MC_PORT" \
	--ca "$PKI/ca.crt" --connect-timeout 3 -- sh -c 'exit 9')
took=$(($(now_ms) - start))
assert_eq 9 "$status" "no open connection: the child's status 9"
assert_lt "$took" 1500 "no open connection: no drain wait (took $took ms)"
