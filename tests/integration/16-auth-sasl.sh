#!/usr/bin/env bash
# 16-auth-sasl: --auth sasl against memcached -Z -S: binary clients that
# have no credentials (libmemcached's tools and pylibmc without a user
# name, mcload --binary) work through the tunnel, which logs in with SASL
# PLAIN for them. Dalli 3.0 (Debian's ruby-dalli, binary protocol only)
# too, when it is installed (skipped, saying so, otherwise).
#   - without --auth the same clients are refused by the server (so the
#     cases below can fail);
#   - with it: memcstat shows the server's statistics, memccp/memccat round
#     trip 700 KB byte for byte (the server holds exactly those bytes),
#     pylibmc set/get/get_multi/delete, mcload setget and a verified
#     pipeline; the server counts the logins (auth_cmds) and no failed one;
#     each upstream connection's debug line says auth=sasl;
#   - a wrong password: the client's connection is closed with no byte, and
#     one auth-failed line says the server refused the credentials.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT*_* are set by lib.sh

user=sasl-$(rnd)
pass=Pw-$(rnd)
start_memcached MC --sasl "$user" "$pass"
direct=127.0.0.1:$MC_NOTLS_PORT
# server_stat NAME: one statistic, read directly with the server's credentials.
server_stat() {
	local v
	v=$(mcload --port "$MC_NOTLS_PORT" --binary --username "$user" --password "$pass" stats --stat "$1" 2>&1) ||
		fail "stat $1 from the server" "$v"
	echo "$v"
}
# pylibmc_setget PORT: a binary pylibmc client without a user name: set,
# get, get_multi, delete; prints "pylibmc ok" or what failed.
pylibmc_setget() {
	"$PY" - "127.0.0.1:$1" <<'EOF' 2>&1 || true
import os, sys, pylibmc
c = pylibmc.Client([sys.argv[1]], binary=True)
try:
    values = {"pl:a": os.urandom(100000), "pl:b": b"\r\nEND\r\n\x80\x81", "pl:c": b""}
    for k, v in values.items():
        assert c.set(k, v), "set " + k
    for k, v in values.items():
        assert c.get(k) == v, "get " + k
    assert c.get_multi(list(values) + ["pl:missing"]) == values, "get_multi"
    assert c.delete("pl:a"), "delete"
    assert c.get("pl:a") is None, "get after delete"
    print("pylibmc ok")
except (AssertionError, pylibmc.Error) as e:
    print("pylibmc failed:", e)
EOF
}
# dalli PORT: Dalli without a user name: set, get, get_multi, delete;
# prints "dalli ok" or what failed.
dalli() {
	ruby - "127.0.0.1:$1" <<'EOF' 2>&1 || true
require "dalli"
c = Dalli::Client.new(ARGV[0], socket_timeout: 5)
begin
  v = "\r\nEND\r\n".b + Random.new.bytes(50000)
  c.set("dalli:a", v) or raise "set"
  c.get("dalli:a") == v or raise "get"
  c.get_multi("dalli:a", "dalli:none") == { "dalli:a" => v } or raise "get_multi"
  c.delete("dalli:a") or raise "delete"
  c.get("dalli:a").nil? or raise "get after delete"
  puts "dalli ok"
rescue => e
  puts "dalli failed: #{e.class}: #{e}"
end
EOF
}
have_dalli=0
ruby -e 'require "dalli"' >/dev/null 2>&1 && have_dalli=1
mkdir -p "$T/files"
head -c 700000 /dev/urandom >"$T/files/sasl.bin"

# ---- without --auth: refused ----------------------------------------------
start_memtunnel MT0 --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
out=$(memcstat --binary --servers="127.0.0.1:$MT0_PORT" 2>&1) || true
[[ $out != *"pid: $MC_PID"* ]] || fail "without --auth, memcstat --binary without credentials gets no statistics" "$out"
ok "without --auth, memcstat --binary without credentials gets no statistics"
if out=$(cd "$T/files" && memccp --binary --servers="127.0.0.1:$MT0_PORT" sasl.bin 2>&1); then
	fail "without --auth, memccp --binary without credentials fails" "$out"
fi
ok "without --auth, memccp --binary without credentials fails ($out)"
out=$(pylibmc_setget "$MT0_PORT")
assert_match "$out" '^pylibmc failed' "without --auth, pylibmc binary without a user name fails"
if [[ $have_dalli -eq 1 ]]; then
	out=$(dalli "$MT0_PORT")
	assert_match "$out" '^dalli failed' "without --auth, Dalli without a user name fails ($out)"
fi
stop_memtunnel MT0

# ---- --auth sasl --------------------------------------------------------------
cmds0=$(server_stat auth_cmds)
errors0=$(server_stat auth_errors)
MEMTUNNEL_USERNAME=$user MEMTUNNEL_PASSWORD=$pass start_memtunnel MT --servers "localhost:$MC_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --auth sasl --log-level debug
tunnel=127.0.0.1:$MT_PORT

out=$(memcstat --binary --servers="$tunnel" 2>&1) || fail "memcstat --binary through --auth sasl" "$out"
assert_match "$out" $'\n[[:space:]]*pid: '"$MC_PID"$'\n' "memcstat --binary without credentials shows the server's pid"
out=$(cd "$T/files" && memccp --binary --servers="$tunnel" sasl.bin 2>&1) || fail "memccp --binary through --auth sasl" "$out"
out=$(memccat --binary --servers="$tunnel" --file="$T/back.bin" sasl.bin 2>&1) || fail "memccat --binary through --auth sasl" "$out"
cmp "$T/files/sasl.bin" "$T/back.bin" || fail "memccp/memccat round trip is byte-identical"
ok "memccp/memccat --binary without credentials: 700 KB round trip, byte-identical"
out=$(memccat --binary --username="$user" --password="$pass" --servers="$direct" --file="$T/direct.bin" sasl.bin 2>&1) ||
	fail "memccat from the server's plaintext port" "$out"
cmp "$T/files/sasl.bin" "$T/direct.bin" || fail "the server holds exactly the bytes sent through the tunnel"
ok "the server holds exactly the bytes sent through the tunnel"
assert_eq "pylibmc ok" "$(pylibmc_setget "$MT_PORT")" "pylibmc binary without a user name: set/get/get_multi/delete"
if [[ $have_dalli -eq 1 ]]; then
	assert_eq "dalli ok" "$(dalli "$MT_PORT")" "Dalli 3 without a user name: set/get/get_multi/delete"
else
	ok "# SKIP Dalli: ruby with the dalli gem (Debian's ruby-dalli) is not installed"
fi
out=$(mcload --port "$MT_PORT" --binary setget --size 50000 2>&1) || fail "mcload --binary setget" "$out"
assert_match "$out" 'ok=1' "mcload --binary setget without credentials"
out=$(mcload --port "$MT_PORT" --binary --timeout 30 pipeline --depth 1 --conns 4 --ops 4000 --max-size 64k 2>&1) ||
	fail "mcload --binary pipeline" "$out"
assert_match "$out" ' mismatches=0 errors=0 ' "mcload --binary pipeline: 4000 verified operations on 4 connections"

connected="level=debug at=connected upstream=localhost:$MC_PORT "
n=$(count_log "$T/MT.log" "$connected")
assert_le 8 "$n" "debug lines for the upstream connections ($n)"
assert_eq "$n" "$(count_log "$T/MT.log" "$connected.* auth=sasl ms=[0-9]")" "each says auth=sasl, with its setup time"
cmds1=$(server_stat auth_cmds)
# Every upstream connection logged in once; the stat reads add theirs.
assert_le $((cmds0 + n)) "$cmds1" "the server counted a login per upstream connection (auth_cmds $cmds0 -> $cmds1, $n connections)"
assert_eq "$errors0" "$(server_stat auth_errors)" "and no failed login (auth_errors $errors0)"
assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error line"
assert_alive MT
stop_memtunnel MT

# ---- a wrong password ---------------------------------------------------------
MEMTUNNEL_USERNAME=$user MEMTUNNEL_PASSWORD=wrong-$pass start_memtunnel MTW --servers "localhost:$MC_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --auth sasl --prewarm 0
# A binary VERSION request: the server would answer it even unauthenticated,
# so any byte back means the client reached the server.
probe=$(tcp_probe "$MTW_PORT" '\x80\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' 5)
assert_match "$probe" '^closed [0-9]+ 0$' "wrong password: the client's connection is closed with no byte ($probe)"
wait_log "$T/MTW.log" "level=error at=auth-failed upstream=localhost:$MC_PORT mode=sasl "
line=$(grep -m1 'at=auth-failed' "$T/MTW.log")
assert_match "$line" ' reason="the server refused the credentials" hint="[^"]+"' "wrong password: the reason and a hint ($line)"
assert_eq 1 "$(count_log "$T/MTW.log" 'at=auth-failed')" "one auth-failed line"
if grep -qF -- "$pass" "$T/MTW.log" "$T/MTW.out"; then
	fail "wrong password: no password in memtunnel's output"
fi
ok "wrong password: no password in memtunnel's output"
assert_alive MTW
stop_memtunnel MTW
