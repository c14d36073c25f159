#!/usr/bin/env bash
# 06-mcread: the tests' reader of memcache replies (tests/mcread.py) frames
# every reply by its lengths, whatever the value holds and wherever a
# recv() ends:
#   - replies whose values hold protocol text (CR LF END CR LF, VALUE lines,
#     MN CR LF, a binary header), in the text, meta and binary protocols,
#     parse to exactly the values, cut into two chunks at every position,
#     into chunks of every size, and into chunks that end right after each
#     piece of protocol text; the same cuts stop a reader that scans for
#     CR LF END CR LF short (the fixtures would catch one);
#   - against real memcached, directly and through memtunnel, such values
#     (up to 1 MiB) read back whole with get, gets, mg and a binary GET,
#     pipelined too;
#   - lib.sh's mc_get reads a value by its length.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT_* are set by start_memcached/start_memtunnel

cat >"$T/cuts.py" <<'EOF'
import mcread

TRAPS = [b"\r\nEND\r\n", b"END\r\n", b"VALUE ", b"MN\r\n", b"EN\r\n", b"HD\r\n",
         b"\r\n", b"\x81\x00"]
V1 = b"a\r\nEND\r\nVALUE k 0 3\r\nabc\r\nEND\r\nMN\r\n\x00\x81\x00\x00\r\n"
V3 = b"\r\nEND\r\n"
V4 = b"END"

def binary_response(opcode, key, value, extras=b"", status=0, opaque=0, cas=0):
    body = extras + key + value
    return (bytes([0x81, opcode]) + len(key).to_bytes(2, "big") + bytes([len(extras), 0])
            + status.to_bytes(2, "big") + len(body).to_bytes(4, "big")
            + opaque.to_bytes(4, "big") + cas.to_bytes(8, "big") + body)

# (name, parser, stream, the replies it holds); each stream ends with a
# second reply, so bytes past the first must be kept for the next.
CASES = [
    ("text get", "text",
     b"VALUE k1 3 %d\r\n%s\r\nVALUE k2 0 0\r\n\r\nVALUE k3 0 7 99\r\n%s\r\n"
     b"VALUE k4 0 3\r\n%s\r\nEND\r\nSTORED\r\n" % (len(V1), V1, V3, V4),
     [mcread.TextReply(b"END", [mcread.Value(b"k1", 3, V1, None), mcread.Value(b"k2", 0, b"", None),
                                mcread.Value(b"k3", 0, V3, 99), mcread.Value(b"k4", 0, V4, None)], {}),
      mcread.TextReply(b"STORED", [], {})]),
    ("text miss", "text", b"END\r\nVALUE k 0 1\r\nx\r\nEND\r\n",
     [mcread.TextReply(b"END", [], {}), mcread.TextReply(b"END", [mcread.Value(b"k", 0, b"x", None)], {})]),
    ("meta", "meta",
     b"VA %d f5 t-1\r\n%s\r\nVA 4\r\nMN\r\n\r\nHD\r\nEN\r\nMN\r\n" % (len(V1), V1),
     [mcread.MetaReply(b"VA", [b"f5", b"t-1"], V1), mcread.MetaReply(b"VA", [], b"MN\r\n"),
      mcread.MetaReply(b"HD", [], None), mcread.MetaReply(b"EN", [], None),
      mcread.MetaReply(b"MN", [], None)]),
    ("binary", "binary",
     binary_response(0x00, b"", V1 + binary_response(0x0a, b"", b""), b"\x00\x00\x00\x07", cas=5)
     + binary_response(0x0a, b"", b""),
     [mcread.BinaryReply(0x00, 0, 0, 5, b"\x00\x00\x00\x07", b"", V1 + binary_response(0x0a, b"", b"")),
      mcread.BinaryReply(0x0a, 0, 0, 0, b"", b"", b"")]),
]

class Chunks:
    """A socket stand-in whose recv() returns the stream cut at `cuts`."""
    def __init__(self, stream, cuts):
        edges = [0] + sorted(set(c for c in cuts if 0 < c < len(stream))) + [len(stream)]
        self.chunks = [stream[a:b] for a, b in zip(edges, edges[1:])]
    def recv(self, n):
        if not self.chunks:
            return b""
        c = self.chunks.pop(0)
        if len(c) > n:
            self.chunks.insert(0, c[n:])
            c = c[:n]
        return c

def cut_sets(stream):
    n = len(stream)
    for k in range(1, n):
        yield [k]
    for size in range(1, n + 1):
        yield range(size, n, size)
    for t in TRAPS:
        at, i = [], stream.find(t)
        while i >= 0:
            at.append(i + len(t))
            i = stream.find(t, i + 1)
        yield at

def scan_for_end(sock):
    """The pattern the suite must not hold: stop at the first recv that
    ends in END CR LF."""
    data = b""
    while not data.endswith(b"END\r\n"):
        b = sock.recv(65536)
        if not b:
            break
        data += b
    return data

checked = fooled = 0
for name, kind, stream, want in CASES:
    for cuts in cut_sets(stream):
        r = mcread.Reader(Chunks(stream, cuts))
        got = [getattr(r, kind)() for _ in want]
        if got != want or r.buf or r.sock.chunks:
            raise SystemExit("%s, cut at %s: got %r, %d bytes left" % (name, list(cuts), got, len(r.buf)))
        checked += 1
        if kind == "text" and scan_for_end(Chunks(stream, cuts)) != stream[:mcread.parse_text(stream)[1]]:
            fooled += 1
print("checked=%d fooled=%d" % (checked, fooled))
EOF
out=$(py_run "$T/cuts.py" 2>&1) || fail "mcread parses every cut of the fixture replies" "$out"
echo "# cuts: $out"
assert_match "$out" '^checked=[0-9]+ fooled=[1-9][0-9]*$' \
	"every cut of text, meta and binary replies holding protocol text parses to exactly its values; the same cuts stop an END-scanning reader short"

start_memcached MC
start_memtunnel MT --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"

# live.py PORT: values holding protocol text, stored and read back with
# get, gets, mg and a binary GET; prints one line per check.
cat >"$T/live.py" <<'EOF'
import socket, sys
import mcread

port = int(sys.argv[1])
small = b"x\r\nEND\r\nVALUE big 0 3\r\nabc\r\nEND\r\nMN\r\nEN\r\n\x80\x00\x81"
big = (b"\r\nEND\r\nVALUE k 0 1\r\nMN\r\n\x81" * 50000)[:1048576]
values = {b"mr:small": small, b"mr:big": big, b"mr:end": b"\r\nEND\r\n", b"mr:empty": b""}

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s, mcread.Reader(s)

def check(what, cond, detail=""):
    if not cond:
        raise SystemExit("%s: %s" % (what, detail))
    print("ok", what)

s, r = conn()
for k, v in values.items():
    s.sendall(b"set %s 7 0 %d\r\n%s\r\n" % (k, len(v), v))
    got = r.text()
    check("set " + k.decode(), got.status == b"STORED", got)
keys = list(values)
s.sendall(b"get " + b" ".join(keys) + b" mr:none\r\n")
got = r.text()
check("get of 4 keys and a miss", got.status == b"END"
      and [(x.key, x.flags, x.data) for x in got.values] == [(k, 7, values[k]) for k in keys],
      [(x.key, len(x.data)) for x in got.values])
s.sendall(b"gets mr:big\r\n")
got = r.text()
check("gets with a cas", len(got.values) == 1 and got.values[0].data == big and got.values[0].cas)
# Pipelined: 20 gets in one write, their replies in one stream.
s.sendall(b"get mr:small\r\nget mr:big\r\n" * 10)
ok = all(r.text().values[0].data == (small if i % 2 == 0 else big) for i in range(20))
check("20 pipelined gets", ok and not r.buf)

for k, v in values.items():
    s.sendall(b"mg %s v f\r\n" % k)
    got = r.meta()
    check("mg " + k.decode(), got == mcread.MetaReply(b"VA", [b"f7"], v), got[:2])
s.sendall(b"mg mr:none v\r\nmn\r\n")
check("mg of a miss, then mn", (r.meta(), r.meta()) == (mcread.MetaReply(b"EN", [], None),
                                                       mcread.MetaReply(b"MN", [], None)))
s.close()

s, r = conn()
for k, v in values.items():
    s.sendall(b"\x80\x00" + len(k).to_bytes(2, "big") + b"\x00" * 4
              + len(k).to_bytes(4, "big") + b"\x00" * 12 + k)
    got = r.binary()
    check("binary GET " + k.decode(), got.status == 0 and got.extras == (7).to_bytes(4, "big")
          and got.value == v, (got.status, len(got.value)))
s.close()
EOF
for target in "MC_NOTLS_PORT:memcached's plaintext port" "MT_PORT:memtunnel"; do
	port=${target%%:*}
	out=$(py_run "$T/live.py" "${!port}" 2>&1) || fail "mcread against ${target#*:}" "$out"
	assert_eq 16 "$(grep -c '^ok ' <<<"$out")" "${target#*:}: values holding protocol text read back whole with get, gets, mg, binary GET, pipelined"
done

# lib.sh's mc_get reads the value by its length: the END and VALUE lines in
# it end nothing.
v=$'a\r\nEND\r\nVALUE x 0 1\r\nb\r\nMN\r\nEND'
mc_set "$MT_PORT" mr:shell "$v" || fail "mc_set of a value holding END lines"
assert_eq "$v" "$(mc_get "$MT_PORT" mr:shell)" "mc_get through memtunnel: a value holding END and VALUE lines reads back whole"
assert_alive MT
stop_memtunnel MT
