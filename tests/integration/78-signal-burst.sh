#!/usr/bin/env bash
# 78-signal-burst: SIGUSR1 and SIGHUP sent to memtunnel in a burst right
# after start-up each reach the child exactly once (SPEC §4).
#
# The child is bash whose first lines install its traps; it then prints
# MEMCACHE_SERVERS= (start_memtunnel waits for it). From then on, 40
# signals, SIGUSR1 and SIGHUP in turn, go to memtunnel one at a time, each
# after the child wrote down the previous one, so that none is merged with
# another: the counts are exact, never a matter of timing. The burst cannot
# start earlier without flaking: a signal forwarded before the command has
# installed its handlers takes the default action, as it does for the bare
# command. Nor can a signal sent to memtunnel's pid land between fork and
# exec (memtunnel is inside child_spawn until the exec); that window is
# tested in-process by the unit test child/fork_window.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT_* are set by lib.sh

start_memcached MC

# shellcheck disable=SC2016 # the child's variables
child='trap "echo USR1 >>\"\$1\"" USR1
trap "echo HUP >>\"\$1\"" HUP
echo "MEMCACHE_SERVERS=$MEMCACHE_SERVERS"
for ((i = 0; i < 2000; i++)); do [[ -e $2 ]] && exit 0; sleep 0.01; done
exit 3'
: >"$T/events"
MEMTUNNEL_LOG_LEVEL=debug start_memtunnel MT --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" \
	-- bash -c "$child" bash "$T/events" "$T/release"

acked() { (($(wc -l <"$T/events") >= $1)); }
sent=0
for ((n = 1; n <= 40; n++)); do
	if ((n % 2)); then sig=USR1; else sig=HUP; fi
	kill -s "$sig" "$MT_PID"
	sent=$n
	wait_until 5 acked "$n" || fail "the child notes signal $n ($sig) within 5 s" "$(cat "$T/events")"
done
ok "40 signals sent to memtunnel, each noted by the child before the next"
: >"$T/release"
_lib_wait_exit "$MT_PID" 10 || fail "memtunnel exits within 10 s once the child is released"
status=0
wait "$MT_PID" || status=$?
_lib_untrack "$MT_PID"
assert_eq 0 "$status" "the child exits 0, and memtunnel with it"
assert_eq 20 "$(grep -c '^USR1$' "$T/events")" "the child got SIGUSR1 exactly 20 times"
assert_eq 20 "$(grep -c '^HUP$' "$T/events")" "the child got SIGHUP exactly 20 times"
assert_eq "$sent" "$(wc -l <"$T/events")" "the child got nothing else"
assert_eq 20 "$(count_log "$T/MT.log" 'at=signal-forwarded signal="User defined signal 1"$')" \
	"memtunnel forwarded SIGUSR1 20 times"
assert_eq 20 "$(count_log "$T/MT.log" 'at=signal-forwarded signal=Hangup$')" \
	"memtunnel forwarded SIGHUP 20 times"
