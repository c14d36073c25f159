"""Readers of memcache replies for the tests, framed by lengths.

A reply is never found by looking for "END" (or "MN", or any text) in the
bytes received: a value may hold any bytes, protocol text included, and a
recv() may end anywhere. So the text protocol's data block is read by the
<bytes> of its VALUE line, the meta protocol's by the <size> of its VA line,
and a binary reply by the total body length of its 24-byte header.

    import mcread
    r = mcread.Reader(sock)        # any object with recv(n), ssl sockets too
    r.text()     # TextReply(status, values, stats): b"END" and the values
                 # of a get, or a one-line reply (b"STORED", b"VERSION x")
    r.meta()     # MetaReply(code, flags, data): VA (data), HD, EN, MN, ...
    r.binary()   # BinaryReply(opcode, status, opaque, cas, extras, key,
                 # value)
    first_bytes(sock, b"mn\r\n", 4)   # what a request's answer begins with

The parse_* functions are pure: parse_X(buf, pos) returns (reply, end) for
a complete reply at buf[pos:], or None when more bytes are needed; they
raise ProtocolError on a malformed reply. The Reader feeds them. Lines end
in CR LF, as memcached sends them.
"""

import collections

Value = collections.namedtuple("Value", "key flags data cas")
TextReply = collections.namedtuple("TextReply", "status values stats")
MetaReply = collections.namedtuple("MetaReply", "code flags data")
BinaryReply = collections.namedtuple("BinaryReply", "opcode status opaque cas extras key value")

LINE_MAX = 8192  # longer than any reply line memcached writes
HEADER_LEN = 24  # binary protocol


class ProtocolError(Exception):
    pass


class Closed(EOFError):
    """The peer closed (or reset) before a whole reply arrived."""


def parse_line(buf, pos=0):
    """(line without CR LF, end) or None."""
    eol = buf.find(b"\r\n", pos, pos + LINE_MAX + 2)
    if eol < 0:
        if len(buf) - pos > LINE_MAX:
            raise ProtocolError("no CR LF in the first %d bytes" % LINE_MAX)
        return None
    line = bytes(buf[pos:eol])
    if b"\n" in line:
        raise ProtocolError("bare LF in reply line %r" % line[:80])
    return line, eol + 2


def _decimal(field, what):
    if not field.isdigit():
        raise ProtocolError("%s is not a decimal number: %r" % (what, field[:80]))
    return int(field)


def _data_block(buf, pos, size):
    """The size bytes at pos and their CR LF: (data, end) or None."""
    end = pos + size + 2
    if len(buf) < end:
        return None
    if buf[end - 2:end] != b"\r\n":
        raise ProtocolError("%d-byte data block not followed by CR LF (got %r)"
                            % (size, bytes(buf[end - 2:end])))
    return bytes(buf[pos:pos + size]), end


def parse_text(buf, pos=0):
    """A text-protocol reply: a get's VALUE blocks up to END, stats' STAT
    lines up to END, or any one-line reply (STORED, ERROR, VERSION x...)."""
    values, stats = [], {}
    while True:
        got = parse_line(buf, pos)
        if got is None:
            return None
        line, pos = got
        if line.startswith(b"VALUE "):
            # VALUE <key> <flags> <bytes> [<cas>]
            f = line.split(b" ")
            if len(f) not in (4, 5):
                raise ProtocolError("malformed VALUE line %r" % line[:80])
            size = _decimal(f[3], "VALUE <bytes>")
            block = _data_block(buf, pos, size)
            if block is None:
                return None
            data, pos = block
            cas = _decimal(f[4], "VALUE <cas>") if len(f) == 5 else None
            values.append(Value(f[1], _decimal(f[2], "VALUE <flags>"), data, cas))
        elif line.startswith(b"STAT "):
            f = line.split(b" ", 2)
            stats[f[1]] = f[2] if len(f) == 3 else b""
        elif line == b"END":
            return TextReply(line, values, stats), pos
        elif values or stats:
            raise ProtocolError("%r inside a multi-line reply" % line[:80])
        else:
            return TextReply(line, [], {}), pos


def parse_meta(buf, pos=0):
    """A meta-protocol reply: `VA <size> <flags>*` and its data block, or a
    one-line reply (HD, EN, NF, NS, EX, MN, ME ..., ERROR ...)."""
    got = parse_line(buf, pos)
    if got is None:
        return None
    line, end = got
    f = line.split(b" ")
    if f[0] != b"VA":
        return MetaReply(f[0], f[1:], None), end
    if len(f) < 2:
        raise ProtocolError("VA line without a size: %r" % line[:80])
    block = _data_block(buf, end, _decimal(f[1], "VA <size>"))
    if block is None:
        return None
    data, end = block
    return MetaReply(b"VA", f[2:], data), end


def parse_binary(buf, pos=0):
    """A binary-protocol response: the 24-byte header, then exactly its
    total body length (extras, key, value)."""
    if len(buf) - pos < HEADER_LEN:
        return None
    h = bytes(buf[pos:pos + HEADER_LEN])
    if h[0] != 0x81:
        raise ProtocolError("binary response magic 0x%02x, not 0x81" % h[0])
    keylen = int.from_bytes(h[2:4], "big")
    extlen = h[4]
    status = int.from_bytes(h[6:8], "big")
    bodylen = int.from_bytes(h[8:12], "big")
    if extlen + keylen > bodylen:
        raise ProtocolError("extras %d + key %d exceed the body length %d"
                            % (extlen, keylen, bodylen))
    end = pos + HEADER_LEN + bodylen
    if len(buf) < end:
        return None
    body = bytes(buf[pos + HEADER_LEN:end])
    return BinaryReply(h[1], status, int.from_bytes(h[12:16], "big"),
                       int.from_bytes(h[16:24], "big"), body[:extlen],
                       body[extlen:extlen + keylen], body[extlen + keylen:]), end


def first_bytes(sock, request, n):
    """Send request, then receive the first n bytes back and nothing past
    them (a Reader on sock takes up after them); fewer if the peer closes
    first. For checking that nothing came before a request's own reply."""
    sock.sendall(request)
    got = b""
    while len(got) < n:
        b = sock.recv(n - len(got))
        if not b:
            break
        got += b
    return got


def to_eof(sock):
    """Every byte the peer sends until it closes: for checking that a
    connection ends with exactly the bytes expected, and not one more."""
    got = b""
    while True:
        b = sock.recv(65536)
        if not b:
            return got
        got += b


class Reader:
    """Replies from one connection, in order; bytes received past a reply
    are kept for the next one (pipelined requests)."""

    def __init__(self, sock, chunk=65536):
        self.sock, self.chunk, self.buf = sock, chunk, bytearray()

    def read(self, parse):
        while True:
            got = parse(self.buf, 0)
            if got is not None:
                reply, end = got
                del self.buf[:end]
                return reply
            try:
                b = self.sock.recv(self.chunk)
            except ConnectionResetError:
                b = b""
            if not b:
                raise Closed("closed after %d bytes of a reply" % len(self.buf))
            self.buf += b

    def text(self):
        return self.read(parse_text)

    def meta(self):
        return self.read(parse_meta)

    def binary(self):
        return self.read(parse_binary)

