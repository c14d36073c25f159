#!/usr/bin/env bash
# 74-exec-mode: a disabled memtunnel (MEMTUNNEL_ENABLED false, 0, no, off,
# any case) and a nested one (MEMTUNNEL_ACTIVE=1 from an outer memtunnel)
# exec their command: the same pid, the environment untouched, no tunnel,
# no configuration checked. The pid a shell prints as $$ is compared with
# the pid of the memtunnel that was started.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_* are set by start_memcached

start_memcached MC

# bg_status PID: wait (bounded) for a tracked background job; its status
# in STATUS.
bg_status() {
	STATUS=0
	_lib_wait_exit "$1" 10 || fail "process $1 exits within 10 s"
	wait "$1" || STATUS=$?
	_lib_untrack "$1"
}

# ---- MEMTUNNEL_ENABLED=off: `sh -c 'echo $$'` prints memtunnel's own pid.
for value in off OFF false False 0 no No; do
	# shellcheck disable=SC2016 # $$ is the child shell's
	MEMTUNNEL_ENABLED=$value "$MEMTUNNEL" --log-level debug -- sh -c 'echo "$$"; exit 4' \
		>"$T/off.out" 2>"$T/off.log" </dev/null &
	pid=$!
	_lib_track "$pid"
	bg_status "$pid"
	assert_eq 4 "$STATUS" "MEMTUNNEL_ENABLED=$value: the command's status"
	assert_eq "$pid" "$(cat "$T/off.out")" "MEMTUNNEL_ENABLED=$value: the command runs as memtunnel's own pid"
	[[ ! -s $T/off.log ]] || fail "MEMTUNNEL_ENABLED=$value: no tunnel, nothing logged" "$(cat "$T/off.log")"
	ok "MEMTUNNEL_ENABLED=$value: no tunnel, nothing logged"
done

# The environment is passed exactly as it was, in order: no MEMTUNNEL_ACTIVE,
# no rewritten server list.
envs=("PATH=$PATH" "MEMTUNNEL_ENABLED=off" "MEMCACHIER_SERVERS=mc1.example.com:11211"
	"MEMCACHIER_USERNAME=u" "MEMCACHIER_PASSWORD=p w" "ZZZ=last" "AAA=after-zzz")
status=0
env -i "${envs[@]}" "$MEMTUNNEL" -- env >"$T/env.out" 2>"$T/env.log" || status=$?
assert_eq 0 "$status" "MEMTUNNEL_ENABLED=off env: exit 0"
assert_eq "$(printf '%s\n' "${envs[@]}")" "$(cat "$T/env.out")" \
	"MEMTUNNEL_ENABLED=off: the environment is untouched, in its order"

# Disabled with nothing else configured (no servers, a bad setting): the
# command still runs, with its status.
status=0
env -i "PATH=$PATH" MEMTUNNEL_ENABLED=false MEMTUNNEL_VERIFY=bogus MEMTUNNEL_CA_FILE=/nonexistent \
	"$MEMTUNNEL" -- sh -c 'echo ran; exit 9' >"$T/bare.out" 2>"$T/bare.log" || status=$?
assert_eq 9 "$status" "MEMTUNNEL_ENABLED=false, no servers, bad settings: the command's status"
assert_eq ran "$(cat "$T/bare.out")" "MEMTUNNEL_ENABLED=false, no servers: the command ran"

# Exec failures in this mode, as a shell reports them.
status=0
MEMTUNNEL_ENABLED=no "$MEMTUNNEL" -- memtunnel-no-such-command >/dev/null 2>"$T/e.log" || status=$?
assert_eq 127 "$status" "MEMTUNNEL_ENABLED=no, missing command: 127"
assert_eq 1 "$(count_log "$T/e.log" '^memtunnel level=error at=exec-failed command=memtunnel-no-such-command reason="command not found"$')" \
	"MEMTUNNEL_ENABLED=no, missing command: one error line"
printf '#!/bin/sh\necho no\n' >"$T/plain"
chmod 644 "$T/plain"
status=0
MEMTUNNEL_ENABLED=no "$MEMTUNNEL" -- "$T/plain" >/dev/null 2>"$T/e.log" || status=$?
assert_eq 126 "$status" "MEMTUNNEL_ENABLED=no, a file that is not executable: 126"

# A value that is not a boolean is a configuration error, not a guess.
status=$(MEMTUNNEL_ENABLED=maybe run_memtunnel "$T/maybe.out" "$T/maybe.log" \
	--servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" -- sh -c 'echo ran')
assert_eq 78 "$status" "MEMTUNNEL_ENABLED=maybe: exit 78"
[[ ! -s $T/maybe.out ]] || fail "MEMTUNNEL_ENABLED=maybe: the command does not run"
ok "MEMTUNNEL_ENABLED=maybe: the command does not run"
wait_log "$T/maybe.log" '^memtunnel level=error at=config-error setting=MEMTUNNEL_ENABLED ' 1
ok "MEMTUNNEL_ENABLED=maybe: the error names MEMTUNNEL_ENABLED"

# ---- Nested: the inner memtunnel (given a server list that would not even
# parse) sees MEMTUNNEL_ACTIVE=1 and execs its shell, which therefore has
# the pid the outer memtunnel started and the outer one as its parent, and
# reaches memcached through the outer tunnel.
[[ -x $MCLOAD ]] || fail "mcload is built" "$MCLOAD is missing (run make)"
# shellcheck disable=SC2016 # the child shell's variables
"$MEMTUNNEL" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" --log-level debug \
	-- "$MEMTUNNEL" --servers "not:a:list" -- \
	sh -c 'echo "$$ $PPID $MEMTUNNEL_ACTIVE $MEMCACHE_SERVERS"; "$1" --port "${MEMCACHE_SERVERS##*:}" setget --key nested' \
	sh "$MCLOAD" >"$T/nested.out" 2>"$T/nested.log" </dev/null &
outer=$!
_lib_track "$outer"
bg_status "$outer"
assert_eq 0 "$STATUS" "nested: exit 0"
read -r shell_pid shell_ppid active servers <"$T/nested.out"
started=$(sed -n 's/.*at=child-started pid=\([0-9]*\) .*/\1/p' "$T/nested.log")
assert_eq "$started" "$shell_pid" "nested: the shell has the pid of the inner memtunnel (it exec'd)"
assert_eq "$outer" "$shell_ppid" "nested: the shell's parent is the outer memtunnel"
assert_eq 1 "$active" "nested: MEMTUNNEL_ACTIVE=1"
local_addr=$(sed -n 's/.*at=listening local=\([^ ]*\) .*/\1/p' "$T/nested.log")
assert_eq "$local_addr" "$servers" "nested: MEMCACHE_SERVERS is the outer listener, set once"
assert_eq 1 "$(count_log "$T/nested.log" 'at=listening ')" "nested: only the outer memtunnel listens"
assert_match "$(sed -n 2p "$T/nested.out")" 'ok=1' "nested: the shell reaches memcached through the outer tunnel"
assert_eq 0 "$(count_log "$T/nested.log" 'level=(warn|error)')" "nested: no warn or error line"

# ---- Signal state: exec mode hands the command exactly the dispositions and
# the mask memtunnel inherited (an ignored signal stays ignored across exec,
# so memtunnel's own SIG_IGN of SIGPIPE must not reach it); wrap mode gives
# it every signal at its default and an empty mask. A launcher sets the
# caller's state (Python ignores SIGPIPE and SIGXFSZ itself, so it sets
# every signal), then execs; `cat /proc/self/status` (which changes none
# itself) reports SigIgn, SigBlk and SigCgt.
cat >"$T/launch.py" <<'PYEOF'
import os, signal, sys
ignored, blocked = (
    {getattr(signal, "SIG" + n) for n in a.split(",") if n} for a in sys.argv[1:3])
for sig in range(1, signal.NSIG):
    try:
        signal.signal(sig, signal.SIG_IGN if sig in ignored else signal.SIG_DFL)
    except (OSError, ValueError):
        pass        # SIGKILL, SIGSTOP, glibc's reserved signals
signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
os.execvp(sys.argv[3], sys.argv[3:])
PYEOF
# sigstate IGNORED BLOCKED CMD...: the Sig* lines of CMD run by the launcher
# (bounded: a memtunnel that inherited SIGCHLD blocked would never see its
# child exit).
sigstate() {
	timeout -k 2 10 "$PY" "$T/launch.py" "$@" </dev/null 2>>"$T/sig.log" |
		grep -E '^Sig(Ign|Blk|Cgt):' | tr -s '\t\n' '  ' || echo "exit=$?"
}
for state in ":" "PIPE:" ":USR1,HUP,ALRM" "PIPE,HUP:USR2,TERM,PIPE,CHLD"; do
	ign=${state%%:*} blk=${state#*:}
	direct=$(sigstate "$ign" "$blk" cat /proc/self/status)
	[[ $direct == *SigIgn* ]] || fail "ignored [$ign] blocked [$blk]: the launcher reports a state" "$direct"
	disabled=$(MEMTUNNEL_ENABLED=false sigstate "$ign" "$blk" "$MEMTUNNEL" -- cat /proc/self/status)
	assert_eq "$direct" "$disabled" "ignored [$ign] blocked [$blk]: MEMTUNNEL_ENABLED=false hands the command the caller's signal state"
	nested=$(MEMTUNNEL_ACTIVE=1 sigstate "$ign" "$blk" "$MEMTUNNEL" -- cat /proc/self/status)
	assert_eq "$direct" "$nested" "ignored [$ign] blocked [$blk]: a nested memtunnel hands the command the caller's signal state"
	# Wrap mode, alone and with a nested memtunnel inside: all default, none blocked.
	clean='SigBlk: 0000000000000000 SigIgn: 0000000000000000 SigCgt: 0000000000000000 '
	wrapped=$(sigstate "$ign" "$blk" "$MEMTUNNEL" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" \
		-- cat /proc/self/status)
	assert_eq "$clean" "$wrapped" "ignored [$ign] blocked [$blk]: wrap mode starts the command with a clean signal state"
	wrapped=$(sigstate "$ign" "$blk" "$MEMTUNNEL" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" \
		-- "$MEMTUNNEL" -- cat /proc/self/status)
	assert_eq "$clean" "$wrapped" "ignored [$ign] blocked [$blk]: a nested memtunnel inside wrap mode keeps it clean"
done

# Started by posix_spawn (GNU make starts every recipe so), a process has
# glibc's own signals (32 and 33: thread cancellation, setxid) ignored, and
# glibc's sigaction cannot set them back; an ignored signal survives exec.
# Exec mode hands that on as it is; wrap mode still gives the command every
# signal at its default (make check failed so once).
cat >"$T/spawn.py" <<'PYEOF'
import os, sys
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
PYEOF
spawned() {
	timeout -k 2 10 "$PY" "$T/spawn.py" "$PY" "$T/launch.py" "" "" "$@" </dev/null 2>>"$T/sig.log" |
		grep -E '^Sig(Ign|Blk|Cgt):' | tr -s '\t\n' '  ' || echo "exit=$?"
}
direct=$(spawned cat /proc/self/status)
assert_match "$direct" 'SigIgn: 0000000180000000' "started by posix_spawn: glibc's signals 32 and 33 are ignored"
disabled=$(MEMTUNNEL_ENABLED=false spawned "$MEMTUNNEL" -- cat /proc/self/status)
assert_eq "$direct" "$disabled" "started by posix_spawn: MEMTUNNEL_ENABLED=false hands the command that state"
wrapped=$(spawned "$MEMTUNNEL" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" -- cat /proc/self/status)
assert_eq "$clean" "$wrapped" "started by posix_spawn: wrap mode starts the command with every signal at its default"

# `yes | head -1`: yes dies of SIGPIPE (141) when the caller left SIGPIPE at
# its default, and gets EPIPE (1, with a message) when the caller ignored it;
# through a disabled or nested memtunnel exactly as run bare.
# shellcheck disable=SC2016 # the inner shell's
pipeline='"$@" 2>"$0" | head -1 >/dev/null; echo "${PIPESTATUS[0]}"'
for ign in "" PIPE; do
	want=$("$PY" "$T/launch.py" "$ign" "" bash -c "$pipeline" "$T/yes-bare.err" yes </dev/null)
	assert_eq "$([[ -n $ign ]] && echo 1 || echo 141)" "$want" "SIGPIPE ignored [$ign]: yes | head -1, bare"
	for mode in MEMTUNNEL_ENABLED=false MEMTUNNEL_ACTIVE=1; do
		got=$(env "$mode" "$PY" "$T/launch.py" "$ign" "" bash -c "$pipeline" "$T/yes.err" \
			"$MEMTUNNEL" -- yes </dev/null)
		assert_eq "$want" "$got" "SIGPIPE ignored [$ign], $mode: yes | head -1 ends as when run bare"
		assert_eq "$(cat "$T/yes-bare.err")" "$(cat "$T/yes.err")" \
			"SIGPIPE ignored [$ign], $mode: yes | head -1 writes what it writes bare"
	done
done
