#!/usr/bin/env bash
# 25-reuse: upstream connection reuse (--reuse), against memcached -Z.
#
# With the defaults (--reuse auto, a node without credentials), a client
# that ends at a request boundary leaves its verified TLS connection to the
# next client: sequential clients of the text, meta and binary protocols
# each get exactly their own replies, byte for byte (values hold "END",
# "MN", "VALUE" and "VA" lines), while the server sees far fewer
# connections than there are clients. memcached holds a connection to the
# protocol of its first byte, so a binary client never gets a connection a
# text client used. A half-closed client reads its replies and then EOF,
# and never the sentinel's answer. A client that ends inside a request, or
# with replies unread, is not reused, and the next client is served right.
# `--reuse off` makes a connection per client.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # UP_*, MT_* are set by start_memcached/start_memtunnel

start_memcached UP
start_memtunnel MT --servers "localhost:$UP_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	--log-level debug

conns_before=$(mc_stat "$UP_NOTLS_PORT" total_connections)
out=$(py_run - "$MT_PORT" "$T/MT.log" <<'EOF' 2>&1
import os, socket, struct, sys, time
import mcread

port, log = int(sys.argv[1]), sys.argv[2]

def pooled():
    with open(log, "rb") as f:
        return f.read().count(b" at=pooled ")

def wait_pooled(n, what):
    deadline = time.monotonic() + 10
    while pooled() < n:
        if time.monotonic() > deadline:
            sys.exit(f"no at=pooled line #{n} within 10 s after {what}")
        time.sleep(0.005)

def connect():
    return socket.create_connection(("127.0.0.1", port), timeout=10)

tricky = [b"x\r\nEND\r\n", b"MN\r\n", b"VALUE k 0 3\r\nabc\r\nEND\r\n", b"VA 2\r\nhi\r\n", b"\r\n"]

values = [tricky[i % len(tricky)] + os.urandom(i * 37 % 300) + tricky[(i + 2) % len(tricky)]
          for i in range(30)]

def value(i):
    return values[i]

n = 0
# Text: set and get, then close.
for i in range(10):
    s = connect()
    v, k = value(i), b"text:%d" % i
    s.sendall(b"set %s 7 0 %d\r\n%s\r\nget %s\r\n" % (k, len(v), v, k))
    r = mcread.Reader(s)
    assert r.text().status == b"STORED"
    got = r.text()
    assert got.status == b"END" and [(x.key, x.flags, x.data) for x in got.values] == [(k, 7, v)], got
    s.close()
    n += 1
    wait_pooled(n, f"text client {i}")

# Meta, with a client mn of its own in the pipeline.
for i in range(10):
    s = connect()
    v, k = value(i + 10), b"meta:%d" % i
    s.sendall(b"ms %s %d T0 F3\r\n%s\r\nmn\r\nmg %s v f\r\nmn\r\n" % (k, len(v), v, k))
    r = mcread.Reader(s)
    assert r.meta().code == b"HD"
    assert r.meta().code == b"MN"
    got = r.meta()
    assert got.code == b"VA" and got.data == v and b"f3" in got.flags, got
    assert r.meta().code == b"MN"
    s.close()
    n += 1
    wait_pooled(n, f"meta client {i}")

# Binary: set and get (opaques of the client's own), then close.
def bin_req(op, key=b"", value=b"", extras=b"", opaque=0):
    body = extras + key + value
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0, len(body), opaque, 0) + body

for i in range(10):
    s = connect()
    v, k = value(i + 20), b"bin:%d" % i
    s.sendall(bin_req(0x01, k, v, struct.pack(">II", 5, 0), 100 + i) + bin_req(0x00, k, opaque=200 + i))
    r = mcread.Reader(s)
    a = r.binary()
    assert a.opcode == 0x01 and a.status == 0 and a.opaque == 100 + i, a
    b = r.binary()
    assert b.opcode == 0x00 and b.status == 0 and b.opaque == 200 + i and b.value == v, b
    s.close()
    n += 1
    wait_pooled(n, f"binary client {i}")

# Half-closed: the replies, then EOF, and not a byte more.
s = connect()
s.sendall(b"get text:3\r\n")
s.shutdown(socket.SHUT_WR)
data = mcread.to_eof(s)
v = value(3)
want = b"VALUE text:3 7 %d\r\n%s\r\nEND\r\n" % (len(v), v)
assert data == want, (data, want)
s.close()
n += 1
wait_pooled(n, "the half-closed client")
print(f"ok clients={n + 1}")
EOF
) || fail "sequential clients of three protocols, each verified" "$out"
assert_match "$out" '^ok clients=32$' "31 sequential clients and a half-closed one get exactly their replies"
reused=$(count_log "$T/MT.log" ' at=reused ')
handshakes=$(count_log "$T/MT.log" ' at=connected ')
conns_after=$(mc_stat "$UP_NOTLS_PORT" total_connections)
# Two protocols need two connections (plus the spares); each client but
# the first of each protocol is reused.
assert_le 29 "$reused" "at least 29 of 32 clients are given a pooled connection ($reused)"
assert_le "$handshakes" 6 "at most 6 upstream handshakes for 32 clients ($handshakes)"
assert_le $((conns_after - conns_before)) 6 "memcached saw at most 6 new connections ($((conns_after - conns_before)))"
assert_eq 0 "$(count_log "$T/MT.log" 'at=not-reused')" "no clean client was refused reuse"

# A client that ends inside a request: not reused; the next one is right.
before=$(count_log "$T/MT.log" ' at=pooled ')
exec {half}<>"/dev/tcp/127.0.0.1/$MT_PORT"
printf 'set cut 0 0 10\r\nabc' >&"$half"
exec {half}>&-
wait_log "$T/MT.log" 'at=not-reused upstream=[^ ]+ reason="the client ended inside a request"'
ok "a client that ends inside a set's value is not reused"
# Replies left unread: the client is gone when they come.
py_run - "$MT_PORT" <<'EOF' || fail "a client that leaves replies unread"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
s.sendall(b"get text:1 text:2 text:3 text:4\r\n")
s.close()
EOF
wait_log "$T/MT.log" 'at=client-gone upstream=[^ ]+ reason="connection reset by peer"'
assert_eq "$before" "$(count_log "$T/MT.log" ' at=pooled ')" "neither cut connection was pooled"
out=$(mcload --port "$MT_PORT" --timeout 10 setget --key after-cut 2>&1) || fail "setget after the cut clients" "$out"
assert_match "$out" 'ok=1' "the next client's set and get are right"
assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error line"
stop_memtunnel MT

# --reuse off: one upstream connection per client.
start_memtunnel OFF --servers "localhost:$UP_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	--log-level debug --reuse off
for i in 1 2 3 4 5; do
	out=$(mcload --port "$OFF_PORT" --timeout 10 setget --key "off$i" 2>&1) || fail "setget with --reuse off" "$out"
done
assert_eq 0 "$(count_log "$T/OFF.log" ' at=(pooled|reused) ')" "--reuse off pools nothing"
assert_le 5 "$(count_log "$T/OFF.log" ' at=connected ')" "--reuse off: a handshake per client"
stop_memtunnel OFF
