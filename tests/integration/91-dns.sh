#!/usr/bin/env bash
# 91-dns: an upstream name that does not resolve. memtunnel starts anyway;
# each client connection to it is closed promptly with one resolve-failed
# warn, and nothing is cached: every connection asks again (3 connections,
# 3 warns). A good upstream beside it keeps working.
# Then, in a private mount namespace where /etc/hosts is a file of the
# test's own: the name fails, the test adds it to that hosts file, and the
# very next connection resolves it and works, without restarting memtunnel
# (skipped, saying so, where unshare is not permitted).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT_*, NS_* are set by lib.sh

start_memcached MC
bad=nonexistent.invalid:11211
start_memtunnel MT --servers "$bad,localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
read -r p_bad p_good <<<"$MT_PORTS"
ok "memtunnel starts with an upstream name that does not resolve"

line="^memtunnel level=warn at=resolve-failed upstream=$bad reason=\"[^\"]+\""
for i in 1 2 3; do
	r=$(tcp_probe "$p_bad" 'get k\r\n' 10)
	read -r state ms bytes <<<"$r"
	[[ $state == closed && $bytes == 0 ]] || fail "connection $i to the unresolvable upstream is closed without a reply" "probe: $r"
	assert_lt "$ms" 2000 "connection $i closed in $ms ms"
	assert_eq "$i" "$(wait_count "$T/MT.log" "$line" "$i" 5)" "connection $i: its own resolve-failed warn (no cached failure)"
	out=$(mcload --port "$p_good" setget 2>&1) || fail "setget through the good upstream" "$out"
	assert_match "$out" 'ok=1' "the good upstream works beside it ($i)"
done
echo "# $(grep -m1 'at=resolve-failed' "$T/MT.log")"
assert_eq 3 "$(count_log "$T/MT.log" " at=[a-z-]+ upstream=$bad ")" "no other line about its connections"
assert_alive MT
stop_memtunnel MT

# ---- The name starts to resolve while memtunnel runs.
if ! why=$(unshare --mount sh -c 'mount --bind /dev/null /etc/hosts' 2>&1); then
	echo "ok $((_lib_n + 1)) - # SKIP unshare --mount with a bind mount is not permitted here: ${why//$'\n'/ }"
	exit 0
fi
name=later.memtunnel.invalid
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >"$T/hosts"
real=$MEMTUNNEL
MEMTUNNEL=$T/memtunnel-ns
# unshare and sh exec, so the pid is memtunnel's.
cat >"$MEMTUNNEL" <<EOF
#!/bin/sh
exec unshare --mount sh -c 'mount --bind "$T/hosts" /etc/hosts && exec "\$0" "\$@"' "$real" "\$@"
EOF
chmod +x "$MEMTUNNEL"
# The server certificate names localhost: --sni checks that name instead.
start_memtunnel NS --servers "$name:$MC_PORT" --sni localhost --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
MEMTUNNEL=$real
cmd=$(tr '\0' ' ' <"/proc/$NS_PID/cmdline")
assert_match "$cmd" "memtunnel --servers $name:" "memtunnel runs in its own mount namespace (pid $NS_PID)"
r=$(tcp_probe "$NS_PORT" 'get k\r\n' 10)
assert_match "$r" '^closed [0-9]+ 0$' "before the name exists: the connection is closed ($r)"
wait_log "$T/NS.log" "^memtunnel level=warn at=resolve-failed upstream=$name:$MC_PORT " 5
ok "before the name exists: one resolve-failed warn"
# Appending keeps the inode the bind mount shows.
echo "127.0.0.1 $name" >>"$T/hosts"
start=$(now_ms)
out=$(mcload --port "$NS_PORT" --timeout 10 setget --key dns-later 2>&1) || fail "setget once the name resolves" "$out"
assert_match "$out" 'ok=1' "the next connection resolves the name and works ($(($(now_ms) - start)) ms), no restart"
assert_eq 1 "$(count_log "$T/NS.log" 'at=resolve-failed')" "only the connection before the change failed"
assert_eq value "$(mc_set "$MC_NOTLS_PORT" probe value && mc_get "$NS_PORT" probe)" "reads through the resolved name reach memcached"
assert_alive NS
stop_memtunnel NS
