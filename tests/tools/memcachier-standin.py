#!/usr/bin/env python3
"""memcachier-standin: a TLS node with MemCachier's ASCII authentication.

MemCachier cannot be reached from the tests, so this plays its ASCII
scheme: the first command of every connection must be

    set <username> 0 0 <len>\\r\\n<password>\\r\\n

(the user name as the key, the password alone as the value).  When it
matches a --user/--password pair the node answers STORED and from then on
relays the connection's bytes both ways to a real plaintext memcached
(--backend HOST:PORT), so gets and sets are served by memcached itself.
A set with another name or password gets `CLIENT_ERROR authentication
failure`; any other first command (or a set whose flags or exptime are not
0) gets `CLIENT_ERROR unauthenticated`; both close the connection.

    memcachier-standin.py --cert CHAIN --key KEY --backend HOST:PORT
                          [--user U --password P]... [--record FILE]
                          [--silent | --answer TEXT] [--auth-delay MS]
                          [--lifetime SECONDS]

  --record FILE    every decrypted byte received from any client is appended
                   to FILE as it is read, so a test can look for what was
                   (or was not) sent
  --silent         complete the TLS handshake, read and record, never answer
  --answer TEXT    answer the first command (read as a login when it is a
                   set) with TEXT, backslash escapes decoded (\\r\\n), and
                   close: a server that answers the login wrongly
  --auth-delay MS  wait MS ms before answering the authentication; bytes the
                   client sends meanwhile (it should send none before the
                   answer) are counted as early= on the connection's line

Listens on an ephemeral port of 127.0.0.1 and prints `listening PORT` on
stdout once it accepts, then one line per connection event:

    conn N auth=ok early=BYTES       authenticated, relaying
    conn N auth=refused              wrong name or password
    conn N auth=unauthenticated      the first command was not the login
    conn N silent                    --silent: accepted, never answering
    conn N answered                  --answer: answered TEXT and closed
    conn N closed up=BYTES down=BYTES  (after auth=ok) the relay ended

Exits after --lifetime seconds (default 120), or on SIGTERM.
"""
import argparse
import asyncio
import signal
import ssl
import sys

LINE_MAX = 2048         # the login line is short; a longer one is refused
VALUE_MAX = 16 * 1024   # as memcached's own ASCII authentication
FIRST_TIMEOUT = 10      # the login must come quickly


class Node:
    def __init__(self, args):
        self.args = args
        self.logins = {(u.encode(), w.encode())
                       for u, w in zip(args.user, args.password)}
        host, _, port = args.backend.rpartition(":") if args.backend else ("", "", "0")
        self.backend = (host, int(port))
        self.n = 0
        self.rec = open(args.record, "ab", buffering=0) if args.record else None

    def say(self, *words):
        print(*words, flush=True)

    def record(self, data):
        if self.rec is not None and data:
            self.rec.write(data)

    async def read_line(self, reader):
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError:
            return None
        except asyncio.IncompleteReadError as e:
            self.record(e.partial)
            return None
        self.record(line)
        return line[:-2]

    async def read_exactly(self, reader, n):
        try:
            data = await reader.readexactly(n)
        except asyncio.IncompleteReadError as e:
            self.record(e.partial)
            return None
        self.record(data)
        return data

    async def serve(self, reader, writer):
        self.n += 1
        n = self.n
        try:
            if self.args.silent:
                self.say("conn", n, "silent")
                while True:
                    b = await reader.read(65536)
                    if not b:
                        return
                    self.record(b)
            await self.login(n, reader, writer)
        except (OSError, ssl.SSLError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def login(self, n, reader, writer):
        line = await asyncio.wait_for(self.read_line(reader), FIRST_TIMEOUT)
        if line is None:
            return
        f = line.split(b" ")
        if self.args.answer is not None:
            if len(f) == 5 and f[0] == b"set" and f[4].isdigit():
                await self.read_exactly(reader, int(f[4]) + 2)
            self.say("conn", n, "answered")
            writer.write(self.args.answer)
            await writer.drain()
            return
        if (len(f) != 5 or f[0] != b"set" or f[2] != b"0" or f[3] != b"0"
                or not f[4].isdigit() or int(f[4]) > VALUE_MAX):
            self.say("conn", n, "auth=unauthenticated")
            writer.write(b"CLIENT_ERROR unauthenticated\r\n")
            await writer.drain()
            return
        block = await self.read_exactly(reader, int(f[4]) + 2)
        if block is None:
            return
        if block[-2:] != b"\r\n" or (f[1], block[:-2]) not in self.logins:
            self.say("conn", n, "auth=refused")
            writer.write(b"CLIENT_ERROR authentication failure\r\n")
            await writer.drain()
            return
        early = b""
        if self.args.auth_delay > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.args.auth_delay / 1000
            while (left := deadline - loop.time()) > 0:
                try:
                    b = await asyncio.wait_for(reader.read(65536), left)
                except asyncio.TimeoutError:
                    break
                if not b:
                    break
                self.record(b)
                early += b
        up_r, up_w = await asyncio.open_connection(*self.backend)
        self.say("conn", n, "auth=ok", "early=%d" % len(early))
        writer.write(b"STORED\r\n")
        up_w.write(early)
        counts = [len(early), 0]
        try:
            await asyncio.gather(self.pump(reader, up_w, counts, 0, True),
                                 self.pump(up_r, writer, counts, 1, False))
        finally:
            up_w.close()
            self.say("conn", n, "closed", "up=%d" % counts[0], "down=%d" % counts[1])

    async def pump(self, src, dst, counts, i, recorded):
        try:
            while True:
                b = await src.read(65536)
                if not b:
                    break
                if recorded:
                    self.record(b)
                counts[i] += len(b)
                dst.write(b)
                await dst.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            # The other direction ends too: one side gone ends the relay.
            dst.close()


async def run(args):
    node = Node(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: done.done() or done.set_result(0))
    loop.call_later(args.lifetime, lambda: done.done() or done.set_result(0))
    server = await asyncio.start_server(node.serve, "127.0.0.1", 0, ssl=ctx,
                                        backlog=1024, limit=LINE_MAX,
                                        ssl_handshake_timeout=10)
    node.say("listening", server.sockets[0].getsockname()[1])
    await done
    server.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--backend")
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--password", action="append", default=[])
    p.add_argument("--record")
    p.add_argument("--silent", action="store_true")
    p.add_argument("--answer", metavar="TEXT")
    p.add_argument("--auth-delay", type=int, default=0, metavar="MS")
    p.add_argument("--lifetime", type=float, default=120)
    args = p.parse_args()
    if len(args.user) != len(args.password):
        p.error("give --user and --password in pairs")
    if args.answer is not None:
        args.answer = args.answer.encode().decode("unicode_escape").encode("latin-1")
    elif not args.silent and not args.backend:
        p.error("--backend HOST:PORT is needed unless --silent or --answer")
    if args.record:
        open(args.record, "ab").close()
    asyncio.run(run(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
