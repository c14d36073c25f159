#!/usr/bin/env bash
# 98-listener-hold: out of descriptors, memtunnel pauses a listener, but the
# port stays its own. Another local process that binds the port meanwhile
# would get the app's plaintext cache traffic and its SASL password.
#   - memtunnel carries K tunnels, then its open-file limit is set
#     (prlimit) to its lowest free descriptor number, and the test-only
#     MEMTUNNEL_TEST_NO_RESERVE=1 (no reserve descriptor to shed with, as
#     when lookups on the thread pool took it back: test 90 meets that race
#     now and then), so that the next client pauses the listener for
#     certain.
#   - While it is paused, another process tries 500 times (over 1 s) to
#     bind and listen on the port (SO_REUSEADDR, as servers do): refused
#     every time (EADDRINUSE).
#   - The client that came in meanwhile waits in the kernel's backlog and
#     is served once the K tunnels close; service resumes.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT_*, HOLD_*, WAITER_*, BINDER_* are set by lib.sh

command -v prlimit >/dev/null || fail "prlimit (util-linux) is installed"
fd_list() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tr '\n' ' '; }
# lowest_free PID: the number its next descriptor would get.
lowest_free() {
	local n=0 fd
	for fd in $(fd_list "$1"); do
		((fd == n)) || break
		n=$((n + 1))
	done
	echo "$n"
}
# fds_settled: memtunnel's descriptors are the same 300 ms apart.
fds_settled() {
	local a
	a=$(fd_list "$MT_PID")
	sleep 0.3
	[[ $a == "$(fd_list "$MT_PID")" ]]
}

K=4
start_memcached MC
# --prewarm 0 and an IP upstream: nothing but the tunnels themselves takes
# descriptors.
MEMTUNNEL_TEST_NO_RESERVE=1 start_memtunnel MT --servers "127.0.0.1:$MC_PORT" --listen 127.0.0.1:0 \
	--ca "$PKI/ca.crt" --prewarm 0 --busy-poll 0
out=$(mcload --port "$MT_PORT" setget 2>&1) || fail "setget before the exhaustion" "$out"

# hold.py PORT K: K tunnels, each answering "version", held until SIGTERM
# (60 s at most). Prints "held=N".
cat >"$T/hold.py" <<'EOF'
import socket, sys, time
port, k = int(sys.argv[1]), int(sys.argv[2])
keep = []
for _ in range(k):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"version\r\n")
    got = b""
    while not got.endswith(b"\r\n"):
        b = s.recv(4096)
        if not b:
            break
        got += b
    if not got.startswith(b"VERSION "):
        break
    keep.append(s)
print("held=%d" % len(keep), flush=True)
time.sleep(60)
EOF

# binder.py PORT GO: try to take the port (bind + listen with SO_REUSEADDR)
# every 2 ms. Prints "ready" when it starts, then "taken after MS ms" (and
# gives it back) or, 500 tries after the file GO appeared (at least 1 s),
# "refused N times". Bounded: 30 s.
cat >"$T/binder.py" <<'EOF'
import errno, os, socket, sys, time
port, go = int(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
t0 = time.monotonic()
n = after = 0
while time.monotonic() - t0 < 30 and after < 500:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(8)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        n += 1
        if os.path.exists(go):
            after += 1
        s.close()
        time.sleep(0.002)
        continue
    print("taken after %d ms" % ((time.monotonic() - t0) * 1000), flush=True)
    s.close()
    sys.exit(0)
print("refused %d times (%d while paused)" % (n, after), flush=True)
EOF

# waiter.py PORT: one client that sends "version" and waits up to 20 s.
# Prints "answered", "closed" or "silent", and when (ms after connect).
cat >"$T/waiter.py" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
t0 = time.monotonic()
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"version\r\n")
    got = b""
    while not got.endswith(b"\r\n"):
        b = s.recv(4096)
        if not b:
            break
        got += b
    what = "answered" if got.startswith(b"VERSION ") else "closed"
except socket.timeout:
    what = "silent"
except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
    what = "closed"
print("%s %d" % (what, (time.monotonic() - t0) * 1000), flush=True)
EOF

bg_start HOLD "$PY" "$T/hold.py" "$MT_PORT" "$K"
wait_log "$T/HOLD.out" '^held=' 20
assert_eq "held=$K" "$(cat "$T/HOLD.out")" "$K tunnels work"
# No new descriptor from here on: the lowest free number is the limit.
wait_until 10 fds_settled || fail "memtunnel's descriptors settle" "$(fd_list "$MT_PID")"
limit=$(lowest_free "$MT_PID")
read -r soft hard < <(prlimit --pid "$MT_PID" --nofile --raw --noheadings -o SOFT,HARD)
prlimit --pid "$MT_PID" --nofile="$limit:$hard" || fail "prlimit --nofile=$limit:$hard on memtunnel"
echo "# memtunnel holds descriptors $(fd_list "$MT_PID"); its limit is now $limit"

bg_start BINDER "$PY" "$T/binder.py" "$MT_PORT" "$T/binder.go"
wait_log "$T/BINDER.out" '^ready$'
bg_start WAITER "$PY" "$T/waiter.py" "$MT_PORT"
wait_log "$T/MT.log" 'at=listener-paused ' 10
ok "out of descriptors, memtunnel pauses the listener"
: >"$T/binder.go"
wait_log "$T/BINDER.out" '^(taken|refused)' 20
result=$(tail -n 1 "$T/BINDER.out")
echo "# another process binding 127.0.0.1:$MT_PORT while paused: $result"
assert_match "$result" '^refused [0-9]+ times \(500 while paused\)$' "no other process can take the port while the listener is paused"
assert_eq "" "$(cat "$T/WAITER.out")" "the client that came meanwhile is waiting, not refused"

# The tunnels close: the waiting client is served, and so are new ones.
start=$(now_ms)
bg_stop HOLD
wait_log "$T/WAITER.out" '^[a-z]+ ' 20
read -r what _ <"$T/WAITER.out"
served=$(($(now_ms) - start))
echo "# the waiting client: $(cat "$T/WAITER.out") ($served ms after the tunnels closed)"
assert_eq answered "$what" "the waiting client is served once descriptors are free"
assert_lt "$served" 3000 "within 3 s of the tunnels closing ($served ms)"
wait_log "$T/MT.log" 'at=listener-resumed ' 5
ok "memtunnel logs listener-resumed"
prlimit --pid "$MT_PID" --nofile="$soft:$hard" || fail "prlimit --nofile=$soft:$hard on memtunnel"
out=$(mcload --port "$MT_PORT" --timeout 10 pipeline --depth 1 --conns 4 --ops 1000 2>&1) ||
	fail "verified traffic after the pause" "$out"
assert_match "$out" ' mismatches=0 errors=0 ' "1000 verified operations on 4 connections afterwards"
assert_alive MT
stop_memtunnel MT
