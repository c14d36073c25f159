#!/usr/bin/env bash
# 70-exit-status: wrapper mode exits as a shell would. The child's status
# passes through (0, 1, 7, 255), a child killed by signal S gives 128+S
# (SIGKILL, a real SIGSEGV, SIGTERM, SIGABRT), a command that is not found
# gives 127 and one that cannot be executed 126, each with one error line
# naming the command. Bad configuration or usage starts no child at all
# (78, 64), and neither does a listener that cannot be bound. A client
# connection left open does not keep memtunnel from exiting with its child.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_* are set by start_memcached

ulimit -c 0 # the signal deaths below must not leave core files

start_memcached MC
tunnel=(--servers "127.0.0.1:$MC_PORT" --ca "$PKI/ca.crt")

# wrapped WANT DESC COMMAND...: run COMMAND under memtunnel, check the exit
# status and that memtunnel logged no error.
wrapped() {
	local want=$1 desc=$2 status
	shift 2
	status=$(run_memtunnel "$T/w.out" "$T/w.log" "${tunnel[@]}" -- "$@")
	assert_eq "$want" "$status" "$desc: memtunnel exits $want"
}

for n in 0 1 7 255; do
	wrapped "$n" "child exits $n" sh -c "exit $n"
	wait_log "$T/w.log" "^memtunnel level=info at=child-exited status=$n\$" 1
	assert_eq 0 "$(count_log "$T/w.log" 'level=(warn|error)')" "child exits $n: no warn or error line"
done

# The child's output reaches memtunnel's stdout untouched.
wrapped 0 "a child that writes to stdout" sh -c 'printf "line 1\nline 2\n"'
assert_eq $'line 1\nline 2' "$(cat "$T/w.out")" "the child's stdout passes through"

wrapped 137 "child killed by SIGKILL" sh -c 'kill -KILL $$'
wait_log "$T/w.log" '^memtunnel level=info at=child-exited signal=Killed$' 1
ok "the SIGKILL death is logged"
# A real segmentation fault, not a signal sent by kill(1).
wrapped 139 "child dies of SIGSEGV (a real fault)" "$PY" -c 'import ctypes; ctypes.string_at(0)'
wait_log "$T/w.log" '^memtunnel level=info at=child-exited signal="Segmentation fault"$' 1
ok "the SIGSEGV death is logged"
wrapped 143 "child killed by SIGTERM" sh -c 'kill -TERM $$'
wrapped 134 "child aborts (SIGABRT)" "$PY" -c 'import os; os.abort()'

# Exec failures, like a shell: 127 not found, 126 found but not runnable.
expect_exec_failure() {
	local want=$1 desc=$2 cmd=$3 reason=$4
	wrapped "$want" "$desc" "$cmd"
	assert_eq 1 "$(count_log "$T/w.log" 'level=error')" "$desc: one error line"
	assert_eq 1 "$(grep -cxF "memtunnel level=error at=exec-failed command=$cmd reason=\"$reason\"" "$T/w.log")" \
		"$desc: the line names the command and says \"$reason\""
	assert_eq 0 "$(count_log "$T/w.log" 'at=child-exited')" "$desc: no child exit is reported"
}
expect_exec_failure 127 "a command not in PATH" memtunnel-no-such-command "command not found"
expect_exec_failure 127 "a missing path" "$T/missing/cmd" "command not found"
printf '#!/bin/sh\necho should not run\n' >"$T/not-executable"
chmod 644 "$T/not-executable"
expect_exec_failure 126 "a file without the execute bit" "$T/not-executable" "permission denied (not executable?)"
[[ ! -s $T/w.out ]] || fail "the non-executable file did not run" "$(cat "$T/w.out")"
mkdir "$T/a-directory"
wrapped 126 "a directory as the command" "$T/a-directory"

# Bad configuration: one line naming the setting, exit 78, no child. The
# child would create $T/started.
# shellcheck disable=SC2016 # $1 is the child's
no_child() {
	local want=$1 desc=$2 status
	shift 2
	rm -f "$T/started"
	status=$(run_memtunnel "$T/w.out" "$T/w.log" "$@" -- sh -c ': >"$1"' sh "$T/started")
	assert_eq "$want" "$status" "$desc: memtunnel exits $want"
	[[ ! -e $T/started ]] || fail "$desc: no child is started"
	ok "$desc: no child is started"
	assert_eq 1 "$(count_log "$T/w.log" '^memtunnel level=error ')" "$desc: one error line"
}
no_child 78 "--servers with a bad port" --servers "127.0.0.1:99999" --ca "$PKI/ca.crt"
wait_log "$T/w.log" 'level=error at=config-error setting=--servers ' 1
ok "the error names --servers"
no_child 78 "no servers at all" --ca "$PKI/ca.crt"
MEMTUNNEL_VERIFY=sometimes no_child 78 "a bad MEMTUNNEL_VERIFY" "${tunnel[@]}"
wait_log "$T/w.log" 'setting=MEMTUNNEL_VERIFY ' 1
ok "the error names MEMTUNNEL_VERIFY"
no_child 78 "a CA file that does not exist" --servers "127.0.0.1:$MC_PORT" --ca "$T/no-such-ca.crt"
no_child 64 "an unknown option" "${tunnel[@]}" --no-such-option
# A listener that cannot be bound (the port is memcached's own) fails
# before the child would start.
# shellcheck disable=SC2016 # $1 is the child's
status=$(run_memtunnel "$T/w.out" "$T/w.log" "${tunnel[@]}" --listen "127.0.0.1:$MC_NOTLS_PORT" \
	-- sh -c ': >"$1"' sh "$T/started")
[[ ! -e $T/started ]] || fail "a listener that cannot be bound: no child is started"
ok "a listener that cannot be bound: no child is started"
[[ $status -ne 0 && $status -lt 128 ]] || fail "a listener that cannot be bound: memtunnel fails" "status $status"
ok "a listener that cannot be bound: memtunnel exits $status"
wait_log "$T/w.log" "level=error .*127\.0\.0\.1:$MC_NOTLS_PORT.*address already in use" 1
ok "the error names the address in use"

# A connection still open when the child exits (held here, idle) does not
# keep memtunnel alive: it exits with the child's status once open
# connections are flushed, within --connect-timeout.
# shellcheck disable=SC2016 # the child's variables
"$MEMTUNNEL" "${tunnel[@]}" --connect-timeout 1 \
	-- sh -c 'echo "$MEMCACHE_SERVERS" >"$1"; i=0
		while [ ! -e "$2" ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i + 1)); done; exit 6' \
	sh "$T/held.list" "$T/held.release" >"$T/held.out" 2>"$T/held.log" </dev/null &
held=$!
_lib_track "$held"
listed() { [[ -s $T/held.list ]]; }
wait_until 10 listed || fail "the child writes its server list"
port=$(sed 's/.*://' "$T/held.list")
exec {conn}<>"/dev/tcp/127.0.0.1/$port"
printf 'set held 0 0 2\r\nok\r\n' >&"$conn"
IFS= read -r -t 5 reply <&"$conn" || fail "a reply on the held connection"
assert_eq $'STORED\r' "$reply" "a set on the connection that stays open"
: >"$T/held.release"
wait_log "$T/held.log" 'at=child-exited status=6$' 5
exited=$(now_ms)
_lib_wait_exit "$held" 5 || fail "memtunnel exits although a client connection is still open"
took=$(($(now_ms) - exited))
status=0
wait "$held" || status=$?
_lib_untrack "$held"
exec {conn}>&-
assert_eq 6 "$status" "a client connection still open: memtunnel exits with the child's status"
assert_le "$took" 3000 "a client connection still open: exit within about --connect-timeout 1 s ($took ms)"
