#!/usr/bin/env python3
"""stray-standin: a TLS memcached (text protocol) that answers one reply too many.

No packaged server sends a reply nobody asked for, so this one does, on
purpose, to prove that memtunnel never hands such a connection to another
client.  It keeps values in memory and serves `set` (data block read by its
length), `get` with one key, and `mn`; anything else gets ERROR.  The stray
reply is `END\\r\\n`, sent:

    --stray after    right behind every MN, in the same write
    --stray late     --late-ms (100) after every MN
    --stray before   behind every get's reply (a get answered twice)
    --stray none     never (the control)
    --stray nomn     never, but `mn` is answered ERROR, as a memcached
                     older than 1.6 answers it
    --stray silent   never, and `mn` is not answered at all

    stray-standin.py --cert CHAIN --key KEY --stray MODE [--late-ms MS]
                     [--lifetime SECONDS]

Listens on an ephemeral port of 127.0.0.1 and prints `listening PORT` on
stdout, then `conn N` per connection and `stray N` per stray reply sent.
Exits after --lifetime seconds (default 120), or on SIGTERM.
"""
import argparse
import asyncio
import signal
import ssl
import sys


class Node:
    def __init__(self, args):
        self.args = args
        self.values = {}
        self.conns = 0

    def say(self, *words):
        print(*words, flush=True)

    async def stray(self, n, writer, delay):
        if delay:
            await asyncio.sleep(delay)
        if not writer.is_closing():
            writer.write(b"END\r\n")
            self.say("stray", n)

    async def serve(self, reader, writer):
        self.conns += 1
        n = self.conns
        self.say("conn", n)
        mode = self.args.stray
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                words = line.rstrip(b"\r\n").split()
                if not words:
                    writer.write(b"ERROR\r\n")
                elif words[0] == b"set" and len(words) in (5, 6):
                    data = await reader.readexactly(int(words[4]) + 2)
                    self.values[words[1]] = (words[2], data[:-2])
                    if len(words) == 5:
                        writer.write(b"STORED\r\n")
                elif words[0] == b"get" and len(words) == 2:
                    v = self.values.get(words[1])
                    out = b""
                    if v:
                        out += b"VALUE %s %s %d\r\n%s\r\n" % (words[1], v[0], len(v[1]), v[1])
                    out += b"END\r\n"
                    writer.write(out)
                    if mode == "before":
                        writer.write(b"END\r\n")
                        self.say("stray", n)
                elif words[0] == b"mn" and mode == "nomn":
                    writer.write(b"ERROR\r\n")
                elif words[0] == b"mn" and mode == "silent":
                    pass
                elif words[0] == b"mn":
                    writer.write(b"MN\r\n")
                    if mode == "after":
                        writer.write(b"END\r\n")
                        self.say("stray", n)
                    elif mode == "late":
                        asyncio.ensure_future(self.stray(n, writer, self.args.late_ms / 1000))
                else:
                    writer.write(b"ERROR\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def run(args):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    node = Node(args)
    server = await asyncio.start_server(node.serve, "127.0.0.1", 0, ssl=ctx)
    node.say("listening", server.sockets[0].getsockname()[1])
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.cancel)
    try:
        await asyncio.wait_for(stop, args.lifetime)
    except (asyncio.CancelledError, asyncio.TimeoutError):
        pass
    server.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--stray", choices=("after", "late", "before", "none", "nomn", "silent"), required=True)
    p.add_argument("--late-ms", type=int, default=100)
    p.add_argument("--lifetime", type=float, default=120)
    args = p.parse_args()
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
