#!/usr/bin/env bash
# 72-sigterm: signals reach the wrapped child exactly once (SPEC §4), and
# the tunnel keeps serving, new connections included, until the child has
# exited. The child (Python) counts every signal of SPEC §4; in its SIGTERM
# handler it opens a NEW connection through the tunnel and does a set/get.
# It exits only when the scenario releases it, after memtunnel has logged
# what it did with the signal, so a second delivery would be counted.
#   - SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH and SIGTERM sent to
#     memtunnel (stdin not a terminal): each forwarded once; exit 0.
#   - A child that exits 0 from its SIGTERM handler: memtunnel exits 0.
#   - DYNO=web.1, SIGTERM to memtunnel and to the child (as Heroku does),
#     at once and one after the other in both orders: not forwarded, one
#     SIGTERM in the child; exit 0.
#   - DYNO=web.1 with MEMTUNNEL_FORWARD_SIGTERM=yes, only memtunnel
#     signalled: forwarded once.
#   - MEMTUNNEL_FORWARD_SIGTERM=no: not forwarded, memtunnel keeps running
#     until its child exits.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, and the *_PID, *_PORT of each run, are set by lib.sh

start_memcached MC

# child.py EVENTS RELEASE: see the header. Prints MEMCACHE_SERVERS=... on
# stdout once its handlers are in place (start_memtunnel waits for it).
# With EXIT_ON_TERM=1 it exits from its SIGTERM handler, after the set/get,
# as an app that shuts down on SIGTERM does.
cat >"$T/child.py" <<'EOF'
import os, signal, sys, time
from pymemcache.client.base import Client

events = open(sys.argv[1], "a", buffering=1)
release = sys.argv[2]
exit_on_term = os.environ.get("EXIT_ON_TERM") == "1"
names = ["SIGTERM", "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"]
counts = dict.fromkeys(names, 0)
servers = os.environ["MEMCACHE_SERVERS"]
host, port = servers.split(",")[0].rsplit(":", 1)

def on_signal(sig, frame):
    name = signal.Signals(sig).name
    counts[name] += 1
    events.write("got %s %d\n" % (name, counts[name]))
    if name == "SIGTERM" and counts[name] == 1:
        key = "on-sigterm-%d" % os.getpid()
        try:
            c = Client((host, int(port)), connect_timeout=5, timeout=5)
            stored = c.set(key, b"stored-while-stopping", noreply=False)
            good = stored and c.get(key) == b"stored-while-stopping"
            c.close()
        except Exception as e:
            events.write("# %r\n" % e)
            good = False
        events.write("term-setget %s %s\n" % (key, "ok" if good else "failed"))
        if exit_on_term:
            sys.exit(0 if good else 1)

for n in names:
    signal.signal(getattr(signal, n), on_signal)
events.write("ready pid=%d\n" % os.getpid())
print("MEMCACHE_SERVERS=" + servers, flush=True)
deadline = time.monotonic() + 20
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.01)
events.write("counts " + " ".join("%s=%d" % (n, counts[n]) for n in names) + "\n")
sys.exit(0 if os.path.exists(release) else 3)
EOF

# start NAME [NAME=VALUE...]: memtunnel (debug log) wrapping child.py, with
# the assignments in its environment only; sets CHILD, the child's pid as
# the child reports it and memtunnel logs it.
start() {
	local name=$1 a
	shift
	for a in "$@"; do
		export "${a?}"
	done
	MEMTUNNEL_LOG_LEVEL=debug start_memtunnel "$name" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" \
		-- "$PY" "$T/child.py" "$T/$name.events" "$T/$name.release"
	for a in "$@"; do
		unset "${a%%=*}"
	done
	wait_log "$T/$name.events" '^ready pid=[0-9]+$' 5
	CHILD=$(sed -n 's/^ready pid=//p' "$T/$name.events")
	wait_log "$T/$name.log" "at=child-started pid=$CHILD " 5
	ok "$name: memtunnel started the child (pid $CHILD)"
}

# term_handled NAME: the child's SIGTERM handler did its set/get through a
# new tunnel connection, and the key is on the server.
term_handled() {
	local key
	wait_log "$T/$1.events" '^term-setget ' 5
	key=$(sed -n 's/^term-setget \([^ ]*\) .*/\1/p' "$T/$1.events")
	assert_match "$(grep '^term-setget ' "$T/$1.events")" ' ok$' \
		"$1: a new connection through the tunnel inside the SIGTERM handler: set/get ok"
	assert_eq stored-while-stopping "$(mc_get "$MC_NOTLS_PORT" "$key")" "$1: that key reached memcached"
}

# finish NAME WANT_COUNTS: release the child and check that memtunnel exits
# 0 with it, that the child counted WANT_COUNTS, and that the listener is
# closed afterwards. Before the release, a SIGUSR2 sent to memtunnel and
# seen by the child marks that every signal memtunnel forwarded before it
# has arrived (it forwards in order), so a second SIGTERM would be counted:
# WANT_COUNTS includes that SIGUSR2.
finish() {
	local name=$1 want=$2 pidvar=${1}_PID portvar=${1}_PORT status=0 n
	n=$(($(count_log "$T/$name.events" '^got SIGUSR2 ') + 1))
	kill -USR2 "${!pidvar}"
	wait_log "$T/$name.events" "^got SIGUSR2 $n\$" 5
	: >"$T/$name.release"
	_lib_wait_exit "${!pidvar}" 10 || fail "$name: memtunnel exits once its child has"
	wait "${!pidvar}" || status=$?
	_lib_untrack "${!pidvar}"
	assert_eq 0 "$status" "$name: memtunnel exits 0, as its child did"
	assert_eq "counts $want" "$(grep '^counts ' "$T/$name.events")" "$name: the child counted $want"
	[[ ! -e /proc/$CHILD ]] || fail "$name: the child (pid $CHILD) is gone"
	assert_match "$(tcp_probe "${!portvar}" '' 2)" '^refused ' "$name: the listener is closed after the exit"
}

# ---- Every signal of SPEC §4, sent to memtunnel only.
start ALL
declare -A desc=([HUP]=Hangup [INT]=Interrupt [QUIT]=Quit [USR1]="User defined signal 1"
	[USR2]="User defined signal 2" [WINCH]="Window changed")
for s in HUP INT QUIT USR1 USR2 WINCH; do
	kill -"$s" "$ALL_PID"
	wait_log "$T/ALL.events" "^got SIG$s 1\$" 5
	wait_log "$T/ALL.log" "at=signal-forwarded signal=\"?${desc[$s]}\"?\$" 5
	ok "ALL: SIG$s sent to memtunnel reached the child"
done
assert_alive ALL
kill -TERM "$ALL_PID"
term_handled ALL
wait_log "$T/ALL.log" 'at=signal-forwarded signal=Terminated$' 5
mc_set "$ALL_PORT" after-sigterm yes || fail "ALL: a new connection from outside after SIGTERM works"
ok "ALL: the tunnel still accepts new connections after SIGTERM"
assert_alive ALL
finish ALL "SIGTERM=1 SIGHUP=1 SIGINT=1 SIGQUIT=1 SIGUSR1=1 SIGUSR2=2 SIGWINCH=1"
assert_eq 8 "$(count_log "$T/ALL.log" 'at=signal-forwarded ')" "ALL: eight signals forwarded (seven, and the SIGUSR2 marker)"
assert_eq 0 "$(count_log "$T/ALL.log" 'level=(warn|error)')" "ALL: no warn or error line"
wait_log "$T/ALL.log" 'at=child-exited status=0$' 1

# ---- An app that shuts down in its SIGTERM handler, after using the cache.
start DIRECT EXIT_ON_TERM=1
kill -TERM "$DIRECT_PID"
term_handled DIRECT
status=0
_lib_wait_exit "$DIRECT_PID" 10 || fail "DIRECT: memtunnel exits once its child has"
wait "$DIRECT_PID" || status=$?
_lib_untrack "$DIRECT_PID"
assert_eq 0 "$status" "DIRECT: the child exits 0 from its handler, and so does memtunnel"
wait_log "$T/DIRECT.log" 'at=child-exited status=0$' 1

# ---- Heroku: DYNO set, SIGTERM to every process at once.
start HEROKU DYNO=web.1
kill -TERM "$HEROKU_PID" "$CHILD"
term_handled HEROKU
wait_log "$T/HEROKU.log" 'at=signal-not-forwarded signal=Terminated$' 5
ok "HEROKU: memtunnel did not forward SIGTERM"
assert_alive HEROKU
mc_set "$HEROKU_PORT" heroku-after-sigterm yes || fail "HEROKU: a new connection from outside after SIGTERM works"
ok "HEROKU: the tunnel still accepts new connections after SIGTERM"
finish HEROKU "SIGTERM=1 SIGHUP=0 SIGINT=0 SIGQUIT=0 SIGUSR1=0 SIGUSR2=1 SIGWINCH=0"
assert_eq 1 "$(count_log "$T/HEROKU.log" 'at=signal-forwarded ')" "HEROKU: only the SIGUSR2 marker was forwarded"

# Two SIGTERMs that arrive together may merge into one, so the same, one
# process after the other, in both orders.
start CHILDFIRST DYNO=web.1
kill -TERM "$CHILD"
wait_log "$T/CHILDFIRST.events" '^got SIGTERM 1$' 5
kill -TERM "$CHILDFIRST_PID"
wait_log "$T/CHILDFIRST.log" 'at=signal-not-forwarded signal=Terminated$' 5
finish CHILDFIRST "SIGTERM=1 SIGHUP=0 SIGINT=0 SIGQUIT=0 SIGUSR1=0 SIGUSR2=1 SIGWINCH=0"
start TUNNELFIRST DYNO=web.1
kill -TERM "$TUNNELFIRST_PID"
wait_log "$T/TUNNELFIRST.log" 'at=signal-not-forwarded signal=Terminated$' 5
kill -TERM "$CHILD"
wait_log "$T/TUNNELFIRST.events" '^got SIGTERM 1$' 5
finish TUNNELFIRST "SIGTERM=1 SIGHUP=0 SIGINT=0 SIGQUIT=0 SIGUSR1=0 SIGUSR2=1 SIGWINCH=0"

# ---- DYNO set but MEMTUNNEL_FORWARD_SIGTERM=yes: memtunnel forwards.
start FORWARD DYNO=web.1 MEMTUNNEL_FORWARD_SIGTERM=yes
kill -TERM "$FORWARD_PID"
term_handled FORWARD
wait_log "$T/FORWARD.log" 'at=signal-forwarded signal=Terminated$' 5
finish FORWARD "SIGTERM=1 SIGHUP=0 SIGINT=0 SIGQUIT=0 SIGUSR1=0 SIGUSR2=1 SIGWINCH=0"

# ---- MEMTUNNEL_FORWARD_SIGTERM=no: the child is not told, memtunnel
# keeps serving until the child exits on its own.
start NOFWD MEMTUNNEL_FORWARD_SIGTERM=no
kill -TERM "$NOFWD_PID"
wait_log "$T/NOFWD.log" 'at=signal-not-forwarded signal=Terminated$' 5
ok "NOFWD: memtunnel did not forward SIGTERM"
assert_alive NOFWD
mc_set "$NOFWD_PORT" nofwd yes || fail "NOFWD: the tunnel still serves"
ok "NOFWD: the tunnel still serves"
finish NOFWD "SIGTERM=0 SIGHUP=0 SIGINT=0 SIGQUIT=0 SIGUSR1=0 SIGUSR2=1 SIGWINCH=0"
