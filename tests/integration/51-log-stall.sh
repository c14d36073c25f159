#!/usr/bin/env bash
# 51-log-stall: memtunnel's stderr is a pipe that nobody reads (a log drain
# or router that stalls). Logging must never hold up the tunnel.
#   - Two upstreams: a closed port (every connection to it ends in one
#     warn line) and a healthy memcached. 10 000 connections to the closed
#     node fill the pipe and then some.
#   - With the pipe full, a verified set/get through the healthy node
#     completes within 1 s.
#   - Once the pipe is read again, memtunnel says how many lines it had to
#     drop (at=log-dropped count=N, N > 0), and those lines plus the ones
#     that got through account for every connection.
#   - A memtunnel whose log pipe stays full still exits promptly on
#     SIGTERM (the final flush waits 2 s at most).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_* are set by lib.sh

start_memcached MC
closed=$(free_port)

# The pipe: this shell holds it open for reading (O_RDWR does not wait for
# a writer) and reads nothing until told to.
mkfifo "$T/stderr.fifo"
exec {pipe}<>"$T/stderr.fifo"
"$MEMTUNNEL" --servers "127.0.0.1:$MC_PORT,127.0.0.1:$closed" --listen 127.0.0.1:0 \
	--ca "$PKI/ca.crt" >"$T/MT.out" 2>"$T/stderr.fifo" &
MT_PID=$!
_lib_track "$MT_PID"
wait_until 10 _lib_memtunnel_up "$T/MT.out" "$MT_PID" ||
	fail "memtunnel prints MEMCACHE_SERVERS= within 10 s"
_lib_servers_line "$T/MT.out" || fail "memtunnel starts with its stderr on a pipe"
read -r good_port dead_port < <(sed -n 's/^MEMCACHE_SERVERS=127\.0\.0\.1:\([0-9]*\),127\.0\.0\.1:\([0-9]*\)$/\1 \2/p' "$T/MT.out")
[[ -n $good_port && -n $dead_port ]] || fail "two listeners" "$(cat "$T/MT.out")"
ok "memtunnel listens on $good_port (healthy) and $dead_port (closed node)"

# drive.py PORT N: N connections to the closed node's listener, 100 at a
# time; each is counted once memtunnel closes it. A connection not closed
# within 2 s counts as stalled, and the first stall ends the run (bounded:
# 60 s in all). Prints "closed=N stalled=N".
cat >"$T/drive.py" <<'EOF'
import selectors, socket, sys, time
port, total = int(sys.argv[1]), int(sys.argv[2])
closed = stalled = 0
end = time.monotonic() + 60
while closed < total and not stalled and time.monotonic() < end:
    sel = selectors.DefaultSelector()
    for _ in range(min(100, total - closed)):
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + 2
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.1):
            try:
                b = key.fileobj.recv(1)
            except ConnectionResetError:
                b = b""
            if not b:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                closed += 1
    stalled += len(sel.get_map())
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
print("closed=%d stalled=%d" % (closed, stalled), flush=True)
EOF

# pipe_bytes: how many bytes wait in the pipe and its capacity.
pipe_bytes() {
	"$PY" - "$pipe" <<'EOF'
import array, fcntl, sys, termios
fd = int(sys.argv[1])
n = array.array("i", [0])
fcntl.ioctl(fd, termios.FIONREAD, n)
print(n[0], fcntl.fcntl(fd, 1032))   # F_GETPIPE_SZ
EOF
}

# pipe_full FIFO: true once the pipe has no free slot for another write.
# The byte count cannot say so: memtunnel's writer sends batches of whole
# lines up to PIPE_BUF, and a batch that does not fit in the last page
# starts a page of its own, so a full pipe may hold anything from about
# half its size up.  A pipe polls writable exactly while a slot is free.
# The writer does not stop before the pipe is full, so this waits (2 s at
# most) only for it to catch up.
pipe_full() {
	"$PY" - "$1" <<'EOF'
import os, select, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)
p = select.poll()
p.register(fd, select.POLLOUT)
end = time.monotonic() + 2
while p.poll(0) and time.monotonic() < end:
    time.sleep(0.01)
sys.exit(1 if p.poll(0) else 0)
EOF
}

total=10000
out=$(timeout 90 "$PY" "$T/drive.py" "$dead_port" "$total") || fail "the connections to the closed node" "$out"
echo "# $total connections to the closed node: $out"
read -r queued size < <(pipe_bytes)
echo "# the pipe holds $queued of $size bytes"
pipe_full "$T/stderr.fifo" || fail "the log pipe is full (it holds $queued of $size bytes and has a free slot)"
ok "the log pipe is full ($queued of $size bytes, no free slot)"

start=$(now_ms)
status=0
got=$(mcload --port "$good_port" --timeout 3 setget 2>&1) || status=$?
ms=$(($(now_ms) - start))
echo "# set/get through the healthy node with the log pipe full: $ms ms (status $status)"
assert_eq 0 "$status" "a verified set/get through the healthy node succeeds with the log pipe full ($got)"
assert_lt "$ms" 1000 "it completes within 1 s ($ms ms)"
assert_match "$out" "^closed=$total stalled=0\$" "every connection to the closed node was closed by memtunnel"

# The reader comes back: everything queued arrives, then the count. It
# gets a read-only descriptor, so that it sees the end once memtunnel is
# gone.
exec {reader}<"$T/stderr.fifo"
cat <&"$reader" {pipe}<&- >"$T/MT.log" &
cat_pid=$!
_lib_track "$cat_pid"
exec {reader}<&- {pipe}<&-
wait_log "$T/MT.log" '^memtunnel level=warn at=log-dropped count=[1-9][0-9]*$' 10
dropped=$(sed -n 's/^memtunnel level=warn at=log-dropped count=\([0-9]*\)$/\1/p' "$T/MT.log" |
	awk '{ n += $1 } END { print n + 0 }')
warned=$(count_log "$T/MT.log" '^memtunnel level=warn at=connect-failed upstream=127\.0\.0\.1:'"$closed"' ')
echo "# the log shows $warned connect-failed lines and $dropped dropped"
assert_le 1 "$dropped" "memtunnel reports the lines it dropped (count=$dropped)"
assert_eq "$total" $((warned + dropped)) "written and dropped lines account for every connection ($warned + $dropped)"

assert_alive MT
stop_memtunnel MT
_lib_wait_exit "$cat_pid" 5 || fail "the log reader sees the end of the pipe"
wait "$cat_pid" || true
_lib_untrack "$cat_pid"
assert_match "$(tail -n 1 "$T/MT.log")" '^memtunnel level=' "the last line is memtunnel's, whole"

# The exit does not wait for a reader that never comes back: a second
# memtunnel, its pipe full, stops within a few seconds of SIGTERM, exit 0.
mkfifo "$T/stderr2.fifo"
exec {pipe}<>"$T/stderr2.fifo"
"$MEMTUNNEL" --servers "127.0.0.1:$closed" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	>"$T/MT2.out" 2>"$T/stderr2.fifo" &
MT2_PID=$!
_lib_track "$MT2_PID"
wait_until 10 _lib_memtunnel_up "$T/MT2.out" "$MT2_PID" ||
	fail "the second memtunnel prints MEMCACHE_SERVERS= within 10 s"
port2=$(sed -n 's/^MEMCACHE_SERVERS=127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/MT2.out")
[[ -n $port2 ]] || fail "the second memtunnel listens" "$(cat "$T/MT2.out")"
out=$(timeout 90 "$PY" "$T/drive.py" "$port2" 2000) || fail "2000 connections to the closed node" "$out"
read -r queued size < <(pipe_bytes)
pipe_full "$T/stderr2.fifo" || fail "the second log pipe is full (it holds $queued of $size bytes and has a free slot)"
ok "the second log pipe is full ($queued of $size bytes, no free slot)"
start=$(now_ms)
kill -TERM "$MT2_PID"
_lib_wait_exit "$MT2_PID" 10 || fail "memtunnel exits within 10 s of SIGTERM with its log pipe full"
ms=$(($(now_ms) - start))
status=0
wait "$MT2_PID" || status=$?
_lib_untrack "$MT2_PID"
exec {pipe}<&-
echo "# with the log pipe full, memtunnel exited $ms ms after SIGTERM"
assert_eq 0 "$status" "it exits 0"
assert_lt "$ms" 5000 "it exits within 5 s ($ms ms)"
