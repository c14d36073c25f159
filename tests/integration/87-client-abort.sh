#!/usr/bin/env bash
# 87-client-abort: clients that go away in the middle of a transfer, while
# verified traffic runs on another connection.
#   - 50 clients each ask for a 1 MiB value and disconnect after a random
#     part of the response (half with a plain close, half with a reset);
#   - 20 clients each send part of a 1 MiB set and disconnect;
# memtunnel keeps running and answering, the stored value is intact (read
# back by its length: it holds CR LF END CR LF and VALUE lines, which mcload
# plants on purpose), and
# its descriptors and memory return to their idle level (numbers printed).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# Descriptors are counted back to the idle count after each burst: pooled
# connections (--reuse, kept up to 30 s; 25-reuse) would be counted too.
export MEMTUNNEL_REUSE=off
# shellcheck disable=SC2153,SC2154 # MC_*, MT_*, LOAD_PID are set by lib.sh

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# fds_idle: memtunnel holds no more descriptors than at idle.
fds_idle() { (($(fd_count "$MT_PID") <= idle_fds)); }

start_memcached MC
# --prewarm 0: spare upstream connections would blur the descriptor count.
start_memtunnel MT --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --prewarm 0
idle_fds=$(fd_count "$MT_PID")
idle_kb=$(rss_kb "$MT_PID")
echo "# memtunnel idle: $idle_fds descriptors, VmRSS $idle_kb kB"

out=$(mcload --port "$MT_PORT" setget --key big --size 1M --seed 7 2>&1) || fail "store the 1 MiB value" "$out"
ok "a 1 MiB value stored through the tunnel"

bg_start LOAD "$MCLOAD" --port "$MT_PORT" --timeout 60 pipeline --depth 1 --conns 2 --ops 1000000 --max-size 64k

# abort.py PORT: the aborting clients; prints one line per client and a
# summary `gets=N got_min=B got_max=B sets=N`.
cat >"$T/abort.py" <<'EOF'
import random, socket, struct, sys
port = int(sys.argv[1])
rng = random.Random(5)
total = 1048576 + len("VALUE big 0 1048576\r\n") + len("\r\nEND\r\n")
got_min, got_max = total, 0
for i in range(50):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"get big\r\n")
    want = rng.randrange(1, total - 1)
    got = 0
    while got < want:
        b = s.recv(min(65536, want - got))
        if not b:
            sys.exit("client %d: the tunnel closed after %d bytes" % (i, got))
        got += len(b)
    if i % 2:
        # A reset instead of a FIN.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    got_min, got_max = min(got_min, got), max(got_max, got)
for i in range(20):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"set big 0 0 1048576\r\n")
    s.sendall(b"x" * rng.randrange(1, 1048576))
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
print("gets=50 got_min=%d got_max=%d sets=20" % (got_min, got_max))
EOF
start=$(now_ms)
out=$("$PY" "$T/abort.py" "$MT_PORT" 2>&1) || fail "the aborting clients" "$out"
echo "# aborts: $out in $(($(now_ms) - start)) ms"
assert_match "$out" '^gets=50 got_min=[0-9]+ got_max=[0-9]+ sets=20$' "50 gets cut short, 20 sets cut short"
_lib_running "$LOAD_PID" || fail "the verified load still runs after the aborts (raise its --ops)"
ok "the verified load still runs after the aborts"
peak_kb=$(rss_kb "$MT_PID")
assert_alive MT

# The value is intact: no cut-short set replaced it.
out=$(mcload --port "$MT_PORT" setget --key big2 --size 1M 2>&1) || fail "setget 1 MiB after the aborts" "$out"
assert_match "$out" 'ok=1' "a 1 MiB setget through the tunnel after the aborts"
# readback.py PORT: the value of "big", read by its length (it holds
# protocol text, CR LF END CR LF among it, which a reader that looks for END
# takes for the end of the reply); prints its key, flags, length, SHA-256
# and how many times it holds CR LF END CR LF and "VALUE ".
cat >"$T/readback.py" <<'EOF'
import hashlib, socket, sys
import mcread
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"get big\r\n")
reply = mcread.Reader(s).text()
assert reply.status == b"END" and len(reply.values) == 1, reply.status
v = reply.values[0]
print(v.key.decode(), v.flags, len(v.data), hashlib.sha256(v.data).hexdigest(),
      v.data.count(b"\r\nEND\r\n"), v.data.count(b"VALUE "))
EOF
got=$(py_run "$T/readback.py" "$MT_PORT" 2>&1) || fail "read the 1 MiB value back through the tunnel" "$got"
direct=$(py_run "$T/readback.py" "$MC_NOTLS_PORT" 2>&1) || fail "read the 1 MiB value back from memcached" "$direct"
echo "# the value (key flags bytes sha256 CRLF-END-CRLFs VALUEs): $got"
assert_match "$got" '^big 0 1048576 [0-9a-f]{64} [1-9][0-9]* [1-9][0-9]*$' \
	"the 1 MiB value, protocol text in it, reads back whole through the tunnel"
assert_eq "$direct" "$got" "it is the same value memcached holds"

bg_stop LOAD
summary=$(grep '^mode=pipeline' "$T/LOAD.out" || true)
[[ -z $summary ]] || fail "the load was still running when stopped" "$summary"
assert_eq 0 "$(count_log "$T/LOAD.log" '^mcload: (conn [0-9]+: )?(mismatch|connection)')" "the verified load saw no mismatch and no closed connection"

wait_until 5 fds_idle || true
end_fds=$(fd_count "$MT_PID")
end_kb=$(rss_kb "$MT_PID")
echo "# memtunnel: descriptors idle $idle_fds, after $end_fds; VmRSS idle $idle_kb kB, after the aborts $peak_kb kB, at the end $end_kb kB"
assert_eq "$idle_fds" "$end_fds" "memtunnel's descriptors are back to the idle count ($idle_fds)"
if rss_bounded; then
	assert_lt "$end_kb" $((idle_kb + 32768)) "memtunnel's VmRSS $end_kb kB stays within 32 MiB of idle ($idle_kb kB)"
else
	echo "# VmRSS bound not checked: valgrind or AddressSanitizer"
fi
assert_eq 0 "$(count_log "$T/MT.log" 'level=error')" "no error line"
assert_alive MT
stop_memtunnel MT
