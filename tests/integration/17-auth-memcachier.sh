#!/usr/bin/env bash
# 17-auth-memcachier: --auth memcachier (MemCachier's ASCII login: `set
# <username> 0 0 <len>` with the password as the value) against a stand-in
# for MemCachier (tests/tools/memcachier-standin.py, a TLS node that checks
# the login, then relays to a real memcached), which records every byte it
# receives.
#   - wrapper mode, as on Heroku: MEMCACHIER_SERVERS with MEMCACHIER_USERNAME
#     and MEMCACHIER_PASSWORD (a password with a space and a colon), the mode
#     from MEMTUNNEL_AUTH, no spare connections; the child uses the rewritten
#     MEMCACHE_SERVERS with pymemcache and a meta-protocol client, sending
#     its first request at once; its environment holds no credential;
#   - every connection began with exactly the login, the node delayed its
#     STORED by 200 ms and no client byte came before it (early=0), and the
#     client never saw the STORED; the backing memcached holds the values;
#   - memtunnel check --auth memcachier passes and reports the login;
#   - a wrong password: the client's connection is closed with no byte, one
#     auth-failed line (mode=memcachier, the refusal, a hint);
#   - a node that completes TLS and never answers the login
#     (--connect-timeout 1): the client is closed with no byte about 1 s
#     after it connected, with the "no answer ... in time" reason.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # BACK_*, CIER_*, SILENT_*, MT*_* are set by lib.sh

user=cier-$(rnd)
pass="Pw $(rnd):x y"
start_memcached BACK

# standin VAR ARGS...: a stand-in node; sets VAR_PORT, records in $T/VAR.rec.
standin() {
	local var=$1 port
	shift
	bg_start "$var" "$PY" "$TESTS_DIR/tools/memcachier-standin.py" --cert "$PKI/server-chain.crt" \
		--key "$PKI/server.key" --record "$T/$var.rec" --lifetime 120 "$@"
	wait_log "$T/$var.out" '^listening [0-9]+$'
	port=$(sed -n 's/^listening //p' "$T/$var.out")
	printf -v "${var}_PORT" '%s' "$port"
}
standin CIER --backend "127.0.0.1:$BACK_NOTLS_PORT" --user "$user" --password "$pass" --auth-delay 200

# ---- wrapper mode -------------------------------------------------------------
cat >"$T/child.py" <<'EOF'
import os, socket, sys
from pymemcache.client.base import Client
import mcread

def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)

env = os.environ
print("credentials", " ".join(sorted(k for k in env if k.endswith(("_USERNAME", "_PASSWORD")))) or "none")
check(env["MEMCACHE_SERVERS"] == env["MEMCACHIER_SERVERS"], "MEMCACHE_SERVERS is the rewritten list")
host, port = env["MEMCACHE_SERVERS"].rsplit(":", 1)
port = int(port)

# A meta-protocol client, its first request sent at once: the first bytes
# back are MN\r\n, not the login's STORED.
s = socket.create_connection((host, port), timeout=10)
first = mcread.first_bytes(s, b"mn\r\n", 4)
check(len(first) == 4, "the first reply arrives (got %r)" % first)
check(first == b"MN\r\n", "the first bytes are the reply to mn (got %r)" % first)
r = mcread.Reader(s)
v = b"STORED\r\nVA 2\r\nMN\r\n\r\nEND\r\n" + os.urandom(20000)
s.sendall(b"ms cier:meta %d T0 q\r\n%s\r\nmg cier:meta v s\r\nmn\r\n" % (len(v), v))
rep = r.meta()
check(rep.code == b"VA" and rep.data == v, "mg returns the value")
check(r.meta().code == b"MN", "then MN")
s.close()

c = Client((host, port), connect_timeout=5, timeout=10)
values = {"cier:end": b"\r\nEND\r\n", "cier:value": b"VALUE x 0 1\r\nx\r\nEND\r\n", "cier:big": os.urandom(500000)}
for k, v in values.items():
    check(c.set(k, v, noreply=False) is True, "set " + k)
check(c.get_many(list(values)) == values, "get_many")
check(c.delete("cier:big", noreply=False) is True, "delete")
check(c.get("cier:big") is None, "get after delete")
print("child ok")
EOF
status=0
# --reuse off: each of the child's connections logs in on a connection of
# its own (26-reuse-safety shows --auth's connections reused).
env MEMCACHIER_SERVERS="localhost:$CIER_PORT" MEMCACHIER_USERNAME="$user" MEMCACHIER_PASSWORD="$pass" \
	MEMTUNNEL_AUTH=memcachier MEMTUNNEL_CA_FILE="$PKI/ca.crt" MEMTUNNEL_PREWARM=0 MEMTUNNEL_LOG_LEVEL=debug \
	MEMTUNNEL_REUSE=off \
	PYTHONPATH="$TESTS_DIR" PYTHONDONTWRITEBYTECODE=1 \
	timeout -k 2 30 "$MEMTUNNEL" -- "$PY" "$T/child.py" >"$T/RUN.out" 2>"$T/RUN.log" </dev/null || status=$?
assert_eq 0 "$status" "wrapper mode: memtunnel and the child exit 0"
assert_eq 1 "$(count_log "$T/RUN.out" '^child ok$')" "the child's pymemcache and meta clients work through --auth memcachier"
assert_eq "credentials none" "$(grep '^credentials ' "$T/RUN.out")" "the child's environment holds no *_USERNAME or *_PASSWORD"
n=$(count_log "$T/RUN.log" 'level=debug at=connected ')
assert_le 2 "$n" "debug lines for the child's connections ($n)"
assert_eq "$n" "$(count_log "$T/RUN.log" 'level=debug at=connected .* auth=memcachier ms=[0-9]')" "each says auth=memcachier"
assert_eq 0 "$(count_log "$T/RUN.log" 'level=(warn|error)')" "no warn or error line"

# What the node saw.
assert_eq "$n" "$(count_log "$T/CIER.out" '^conn [0-9]+ auth=ok early=0$')" \
	"the node logged in each connection, and no client byte came before its delayed STORED"
assert_eq 0 "$(count_log "$T/CIER.out" 'auth=(refused|unauthenticated)|early=[1-9]')" "no refused login, no early byte"
out=$(py_run - "$T/CIER.rec" "$user" "$pass" "$n" <<'EOF' 2>&1
import sys
rec = open(sys.argv[1], "rb").read()
user, pw, n = sys.argv[2].encode(), sys.argv[3].encode(), int(sys.argv[4])
login = b"set %s 0 0 %d\r\n%s\r\n" % (user, len(pw), pw)
if not rec.startswith(login):
    print("the record does not start with the login:", rec[:60])
elif rec.count(login) != n:
    print("%d logins recorded for %d connections" % (rec.count(login), n))
else:
    print("ok")
EOF
)
assert_eq ok "$out" "the record begins with exactly 'set USER 0 0 LEN' and the password, once per connection"
# (mc_get prints the value alone; the dot keeps its last CR LF.)
out=$(mc_get "$BACK_NOTLS_PORT" cier:value && echo .)
assert_eq $'VALUE x 0 1\r\nx\r\nEND\r\n.' "$out" "the backing memcached holds the bytes set through the tunnel"

# ---- memtunnel check --auth memcachier -----------------------------------------
: >"$T/CIER.rec"
status=0
env MEMCACHIER_SERVERS="localhost:$CIER_PORT" MEMCACHIER_USERNAME="$user" MEMCACHIER_PASSWORD="$pass" \
	timeout -k 2 20 "$MEMTUNNEL" check --auth memcachier --ca "$PKI/ca.crt" >"$T/CHECK.out" 2>"$T/CHECK.err" </dev/null ||
	status=$?
assert_eq 0 "$status" "check --auth memcachier passes"
assert_match "$(cat "$T/CHECK.out")" $'\n  auth       memcachier with MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD: ok' \
	"check reports the login and the variables it used"
grep -aqF -- "set $user 0 0 ${#pass}" "$T/CIER.rec" || fail "check sent the login to the node"
ok "check sent the login to the node"
if grep -qF -- "$pass" "$T/CHECK.out" "$T/CHECK.err" "$T/RUN.out" "$T/RUN.log"; then
	fail "the password appears in no output"
fi
ok "the password appears in no output"

# ---- a wrong password -------------------------------------------------------------
refused0=$(count_log "$T/CIER.out" 'auth=refused')
MEMCACHIER_SERVERS=localhost:$CIER_PORT MEMCACHIER_USERNAME=$user MEMCACHIER_PASSWORD=wrong-$(rnd) \
	start_memtunnel MTW --auth memcachier --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --prewarm 0
probe=$(tcp_probe "$MTW_PORT" 'get cier:end\r\n' 5)
assert_match "$probe" '^closed [0-9]+ 0$' "wrong password: the client is closed with no byte ($probe)"
wait_log "$T/MTW.log" "level=error at=auth-failed upstream=localhost:$CIER_PORT mode=memcachier "
assert_match "$(grep -m1 at=auth-failed "$T/MTW.log")" ' reason="the server refused the credentials" hint="[^"]+"' \
	"wrong password: the refusal and a hint"
assert_eq 1 "$(count_log "$T/MTW.log" 'at=auth-failed')" "one auth-failed line"
assert_eq $((refused0 + 1)) "$(count_log "$T/CIER.out" 'auth=refused')" "the node refused one login"
assert_alive MTW
stop_memtunnel MTW

# ---- a node that never answers the login ------------------------------------------
standin SILENT --silent
MEMCACHIER_SERVERS=localhost:$SILENT_PORT MEMCACHIER_USERNAME=$user MEMCACHIER_PASSWORD=$pass \
	start_memtunnel MTS --auth memcachier --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --prewarm 0 --connect-timeout 1
probe=$(tcp_probe "$MTS_PORT" 'get k\r\n' 10)
assert_match "$probe" '^closed [0-9]+ 0$' "silent node: the client is closed with no byte ($probe)"
read -r _ ms _ <<<"$probe"
assert_le 900 "$ms" "silent node: not before the 1 s connect timeout ($ms ms)"
assert_lt "$ms" 3000 "silent node: within the connect timeout and some slack ($ms ms)"
wait_log "$T/MTS.log" "level=error at=auth-failed upstream=localhost:$SILENT_PORT mode=memcachier "
assert_match "$(grep -m1 at=auth-failed "$T/MTS.log")" ' reason="no answer to the authentication in time" hint="[^"]+"' \
	"silent node: the reason says no answer in time"
assert_eq 1 "$(count_log "$T/SILENT.out" '^conn [0-9]+ silent$')" "the node saw one connection"
grep -aqF -- "set $user 0 0 ${#pass}" "$T/SILENT.rec" || fail "memtunnel sent the login to the silent node"
ok "memtunnel sent the login to the silent node"
if grep -qF -- "get k" "$T/SILENT.rec"; then
	fail "the client's request never reached the silent node"
fi
ok "the client's request never reached the silent node"
assert_alive MTS
stop_memtunnel MTS
