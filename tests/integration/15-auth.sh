#!/usr/bin/env bash
# 15-auth: --auth memcached against memcached -Z -Y (ASCII authentication),
# for clients that cannot log in themselves.
#   - without --auth the server refuses such a client (so the cases below
#     can fail);
#   - pymemcache: set, get, get_many, delete, add, incr through the tunnel,
#     values holding protocol text (\r\nEND\r\n, VALUE, MN, STORED) and
#     random bytes; the server holds exactly those bytes (read back directly,
#     logged in, framed by the VALUE line's length);
#   - a meta-protocol client (ms/mg/md/mn, as Dalli 5 speaks it, framed by
#     the VA line's size): its first reply is its own (the login's STORED
#     never reaches the client), quiet pipelines end in MN. It pipelines,
#     so it reaches the same memcached -Y through stunnel in front of its
#     plaintext port: memcached 1.6.18's own TLS stalls on pipelined input
#     (see 30-bytes.sh); the login is memcached's all the same;
#   - the debug line of every upstream connection says auth=memcached;
#   - 200 new connections at once (mcload concurrent) all work: the server
#     counts at least 200 more logins (auth_cmds) and no failed one;
#   - pre-warmed spares are logged in again after the server restarts on
#     the same port, and a client's first request goes through one.
# (Dalli 3.0, Debian's ruby-dalli, speaks the binary protocol only, which
# memcached -Y refuses: 16-auth-sasl.sh runs it, with --auth sasl.)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT*_* are set by lib.sh

user=mt-$(rnd)
pass=Pw-$(rnd)
start_memcached MC --ascii-auth "$user" "$pass"
login="$user $pass"
server_stat() { MC_ASCII_LOGIN=$login mc_stat "$MC_NOTLS_PORT" "$1"; }
connected="level=debug at=connected upstream=localhost:$MC_PORT "

# ---- without --auth the server refuses a client that does not log in ------
start_memtunnel MT0 --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
out=$(py_run - "$MT0_PORT" <<'EOF' 2>&1
import sys
from pymemcache.client.base import Client
c = Client(("127.0.0.1", int(sys.argv[1])), connect_timeout=5, timeout=5)
try:
    c.set("refused", b"x", noreply=False)
    print("stored")
except Exception as e:
    print("refused:", e)
EOF
)
assert_match "$out" '^refused: .*authenticat' "without --auth, pymemcache is refused by memcached -Y ($out)"
stop_memtunnel MT0

# ---- --auth memcached -------------------------------------------------------
# Two listeners: memcached's own TLS, and stunnel in front of the same
# server's plaintext port (for the pipelining meta client).
start_tls_terminator TERM "$MC_NOTLS_PORT"
MEMTUNNEL_USERNAME=$user MEMTUNNEL_PASSWORD=$pass start_memtunnel MT \
	--servers "localhost:$MC_PORT,localhost:$TERM_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --auth memcached --log-level debug
read -r _ meta_port <<<"$MT_PORTS"

# pymemcache through the tunnel; then the server's copy, read directly.
out=$(py_run - "$MT_PORT" "$MC_NOTLS_PORT" "$login" <<'EOF' 2>&1
import os, socket, sys
from pymemcache.client.base import Client
import mcread
port, direct, login = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()

def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)

values = {
    "pm:end": b"\r\nEND\r\n",
    "pm:value": b"VALUE pm:end 0 7\r\n\r\nEND\r\n\r\nEND\r\n",
    "pm:mn": b"MN\r\n",
    "pm:stored": b"STORED\r\n",
    "pm:errors": b"CLIENT_ERROR authentication failure\r\nERROR\r\nVA 3 \r\nEN\r\n",
    "pm:empty": b"",
    "pm:random": b"END\r\n" + os.urandom(100000) + b"\r\nEND\r\n",
    "pm:big": os.urandom(900 * 1024),
}
c = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
for k, v in values.items():
    check(c.set(k, v, noreply=False) is True, "set " + k)
for k, v in values.items():
    check(c.get(k) == v, "get " + k)
check(c.get_many(list(values) + ["pm:missing"]) == values, "get_many")
check(c.delete("pm:stored", noreply=False) is True, "delete")
check(c.get("pm:stored") is None, "get after delete")
check(c.delete("pm:stored", noreply=False) is False, "second delete finds nothing")
check(c.add("pm:n", b"41", noreply=False) is True, "add")
check(c.incr("pm:n", 1) == 42, "incr")
c.close()
del values["pm:stored"]

# What the server holds, on its plaintext port after memcached -Y's login.
s = socket.create_connection(("127.0.0.1", direct), timeout=10)
r = mcread.Reader(s)
s.sendall(b"set login 0 0 %d\r\n%s\r\n" % (len(login), login))
check(r.text().status == b"STORED", "direct login")
for k, v in values.items():
    s.sendall(b"get %s\r\n" % k.encode())
    rep = r.text()
    check(len(rep.values) == 1 and rep.values[0].data == v, "the server holds " + k)
s.sendall(b"get pm:stored\r\n")
check(r.text().values == [], "the deleted key is gone on the server")
print("ok", len(values))
EOF
) || fail "pymemcache through --auth memcached" "$out"
assert_eq "ok 7" "$out" "pymemcache: set/get/get_many/delete/add/incr with protocol text in values; the server holds the same bytes"

# A meta-protocol client.
out=$(py_run - "$meta_port" <<'EOF' 2>&1
import os, socket, sys
import mcread
port = int(sys.argv[1])

def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)

s = socket.create_connection(("127.0.0.1", port), timeout=10)
# The connection's first reply is the answer to its first request: as
# many bytes as MN\r\n holds, so a STORED passed on would show.
first = mcread.first_bytes(s, b"mn\r\n", 4)
check(len(first) == 4, "the first reply arrives (got %r)" % first)
check(first == b"MN\r\n", "the first bytes are the reply to mn, not the login's answer (got %r)" % first)
r = mcread.Reader(s)
values = {
    b"mt:mn": b"MN\r\n",
    b"mt:end": b"\r\nEND\r\n",
    b"mt:va": b"VA 5 s5\r\nhello\r\nMN\r\n",
    b"mt:value": b"VALUE mt:va 0 2\r\nhi\r\nEND\r\n",
    b"mt:stored": b"STORED\r\nHD\r\nEN\r\n",
    b"mt:random": os.urandom(50000) + b"\r\nMN\r\n",
    b"mt:big": os.urandom(1000 * 1024),
}
keys = list(values)
# Quiet sets, pipelined, closed by mn: the only reply is MN.
req = b"".join(b"ms %s %d T0 F%d q\r\n%s\r\n" % (k, len(v), i, v) for i, (k, v) in enumerate(values.items()))
s.sendall(req + b"mn\r\n")
rep = r.meta()
check(rep.code == b"MN", "quiet sets: only MN comes back (got %r)" % (rep,))
# Quiet gets with a miss in the middle, closed by mn: the hits, then MN.
ask = keys[:3] + [b"mt:missing"] + keys[3:]
s.sendall(b"".join(b"mg %s v f k s q\r\n" % k for k in ask) + b"mn\r\n")
for i, k in enumerate(keys):
    rep = r.meta()
    check(rep.code == b"VA" and rep.data == values[k], "mg %r: the value" % k)
    check(set(rep.flags) == {b"f%d" % i, b"k" + k, b"s%d" % len(values[k])}, "mg %r: the flags %r" % (k, rep.flags))
rep = r.meta()
check(rep.code == b"MN", "quiet gets end with MN (got %r)" % (rep,))
# Not quiet: HD, EN, NF.
s.sendall(b"ms mt:loud 2 T0\r\nok\r\nmd mt:mn q\r\nmg mt:mn v\r\nmd mt:mn\r\n")
check(r.meta().code == b"HD", "ms answers HD")
check(r.meta().code == b"EN", "mg after md: EN")
check(r.meta().code == b"NF", "a second md: NF")
print("ok", len(values))
EOF
) || fail "a meta-protocol client through --auth memcached" "$out"
assert_eq "ok 7" "$out" "meta protocol: first reply is the client's own, quiet ms/mg pipelines end in MN, values framed by VA sizes"
assert_eq "" "$(MC_ASCII_LOGIN=$login mc_get "$MC_NOTLS_PORT" mt:mn)" "the md went through: the key is gone on the server"

all='level=debug at=connected '
# The spare that replaces the last one taken logs as it comes up: wait for it.
n=$(wait_count "$T/MT.log" "$all" 4)
assert_le 4 "$n" "debug lines for the upstream connections so far ($n)"
assert_eq "$n" "$(count_log "$T/MT.log" "$all.* auth=memcached ms=[0-9]")" "each says auth=memcached, with its setup time"

# ---- 200 new connections at once --------------------------------------------
cmds0=$(server_stat auth_cmds)
errors0=$(server_stat auth_errors)
out=$(mcload --port "$MT_PORT" --timeout 60 concurrent --conns 200 --size 100 2>&1) ||
	fail "200 concurrent connections through --auth memcached" "$out"
assert_match "$out" '^mode=concurrent conns=200 ok=200 failed=0$' "200 concurrent connections: each set and got its key"
cmds1=$(server_stat auth_cmds)
errors1=$(server_stat auth_errors)
assert_le $((cmds0 + 200)) "$cmds1" "the server counted at least 200 more logins (auth_cmds $cmds0 -> $cmds1)"
assert_eq "$errors0" "$errors1" "and no failed login (auth_errors $errors0)"
assert_eq 0 "$(count_log "$T/MT.log" 'at=auth-failed')" "no auth-failed line"
assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error line"
assert_alive MT
stop_memtunnel MT

# ---- spares are logged in again after the server restarts -------------------
MEMTUNNEL_USERNAME=$user MEMTUNNEL_PASSWORD=$pass start_memtunnel MTP --servers "localhost:$MC_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --auth memcached --prewarm 2 --log-level debug
spare="$connected.* auth=memcached "
assert_eq 2 "$(wait_count "$T/MTP.log" "$spare" 2)" "two spares are connected and logged in before any client"
assert_eq 0 "$(count_log "$T/MTP.log" 'at=paired ')" "no client yet, nothing paired"
stop_memcached MC
restart_memcached MC
ok "memcached restarted on port $MC_PORT"
assert_eq 4 "$(wait_count "$T/MTP.log" "$spare" 4 15)" "two new spares are connected and logged in after the restart"
assert_le 3 "$(server_stat auth_cmds)" "the restarted server counted their logins (and this one)"
out=$(mcload --port "$MTP_PORT" --timeout 10 setget --key after-restart 2>&1) || fail "setget after the restart" "$out"
assert_match "$out" 'ok=1' "a client's first request after the restart works"
assert_eq 1 "$(count_log "$T/MTP.log" 'at=paired ')" "it went through a pre-warmed spare"
assert_eq 0 "$(count_log "$T/MTP.log" 'at=auth-failed')" "no auth-failed line"
assert_eq 0 "$(server_stat auth_errors)" "the restarted server counted no failed login"
assert_alive MTP
stop_memtunnel MTP
