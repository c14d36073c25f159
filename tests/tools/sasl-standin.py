#!/usr/bin/env python3
"""sasl-standin: a TLS memcache node that records every byte it receives.

A stand-in for a provider's SASL node, used where the test must see what a
client sent (memcached keeps no such record).  It speaks just enough of the
binary protocol for `memtunnel check`: VERSION, SASL list (PLAIN) and SASL
auth (PLAIN, against the --user/--password pairs); every other command gets "unknown
command", and a text-protocol request closes the connection, as memcached -S
does.  Every decrypted byte received is appended to RECORD before it is
parsed, so a secret that reached the node is in RECORD.

    sasl-standin.py --cert CHAIN --key KEY --record FILE
                    [--user U --password P]... [--lifetime SECONDS]

Listens on an ephemeral port of 127.0.0.1 and prints `listening PORT` on
stdout once it accepts.  Exits after --lifetime seconds (default 120), or on
SIGTERM.
"""
import argparse
import signal
import socket
import ssl
import struct
import sys
import threading

VERSION, SASL_LIST, SASL_AUTH = 0x0B, 0x20, 0x21
OK, AUTH_ERROR, UNKNOWN = 0x0000, 0x0020, 0x0081

record_lock = threading.Lock()


def record(path, data):
    with record_lock, open(path, "ab") as f:
        f.write(data)
        f.flush()


def recv_exact(conn, n, path):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        record(path, chunk)
        buf += chunk
    return buf


def reply(conn, opcode, opaque, status, value=b""):
    conn.sendall(struct.pack(">BBHBBHIIQ", 0x81, opcode, 0, 0, 0, status,
                             len(value), opaque, 0) + value)


def serve(raw, ctx, args):
    raw.settimeout(10)
    try:
        with ctx.wrap_socket(raw, server_side=True) as conn:
            while True:
                first = conn.recv(1)
                if not first:
                    return
                record(args.record, first)
                if first[0] != 0x80:
                    return          # text protocol: a SASL node hangs up
                rest = recv_exact(conn, 23, args.record)
                if rest is None:
                    return
                hdr = first + rest
                opcode = hdr[1]
                klen, elen = struct.unpack(">H", hdr[2:4])[0], hdr[4]
                blen, opaque = struct.unpack(">II", hdr[8:16])
                if blen > 1 << 20 or klen + elen > blen:
                    return
                body = recv_exact(conn, blen, args.record) if blen else b""
                if body is None:
                    return
                key, value = body[elen:elen + klen], body[elen + klen:]
                if opcode == VERSION:
                    reply(conn, opcode, opaque, OK, b"1.6.0-standin")
                elif opcode == SASL_LIST:
                    reply(conn, opcode, opaque, OK, b"PLAIN")
                elif opcode == SASL_AUTH:
                    parts = value.split(b"\0")
                    good = (key == b"PLAIN" and len(parts) == 3
                            and (parts[1], parts[2]) in args.logins)
                    if good:
                        reply(conn, opcode, opaque, OK, b"Authenticated")
                    else:
                        reply(conn, opcode, opaque, AUTH_ERROR, b"Auth failure")
                else:
                    reply(conn, opcode, opaque, UNKNOWN, b"Unknown command")
    except (OSError, ssl.SSLError):
        return


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--password", action="append", default=[])
    p.add_argument("--lifetime", type=float, default=120)
    args = p.parse_args()
    if len(args.user) != len(args.password):
        p.error("give --user and --password in pairs")
    args.logins = {(u.encode(), w.encode())
                   for u, w in zip(args.user, args.password)}

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    open(args.record, "ab").close()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(0))
    signal.setitimer(signal.ITIMER_REAL, args.lifetime)

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    print("listening", srv.getsockname()[1], flush=True)
    while True:
        raw, _ = srv.accept()
        threading.Thread(target=serve, args=(raw, ctx, args),
                         daemon=True).start()


if __name__ == "__main__":
    main()
