#!/usr/bin/env bash
# reuse: upstream connection reuse (--reuse on) under a million verified
# operations from thousands of short-lived clients, and not one reply
# reaching a client it was not meant for.
#
# The same two upstreams as soak.sh: memcached's own TLS (-Z), where a
# client keeps one group of requests in flight and never sends anything
# behind a value before its reply (memcached 1.6.18's TLS stalls there),
# and stunnel in front of a second memcached's plaintext port, where it
# pipelines up to 8 groups. soakload (tests/long/soakload.c) runs
# REUSE_CONNS connections at once over both listeners, as incarnations of
# REUSE_LIFE requests on average in the text, meta and binary protocols:
# sets, gets, deletes, multi-key gets, noreply and quiet requests, values
# of 1 B to REUSE_MAX_SIZE holding protocol text (`\r\nEND\r\n`, `MN\r\n`,
# `VALUE `, `VA `). Most end cleanly at a request boundary (a close, or a
# half-close after the last reply or right behind the last request), which
# lets memtunnel keep their upstream connections for the next clients; one
# in REUSE_ABORT_EVERY requests or so ends its incarnation in the middle
# of a request, with replies pending or in the middle of a reply (memtunnel
# may keep or drop such a connection, as long as no one else sees its
# replies). Every incarnation has keys of its own, so a reply that reaches
# another client is a mismatch or an error.
#
# Checks: every operation verified (0 mismatches, 0 errors), thousands of
# incarnations, every protocol, quiet requests, aborts and clean ends of
# every kind seen; no eviction in memcached; memtunnel alive with no error
# line, and its descriptors back to idle but for the idle pools once the
# clients are gone; and reuse happened: count#memtunnel.connections.reused
# summed over the stats lines (every MEMTUNNEL_STATS_INTERVAL and the last
# one, at exit) is at least REUSE_MIN_PCT % of the clean ends. A memtunnel
# without --reuse runs the soak without it and fails the reuse check; every
# client then costs a handshake, so a million operations do not fit in
# REUSE_TIMEOUT (REUSE_OPS=50000 shows the other checks passing).
#
# Settings (environment): REUSE_OPS (1000000), REUSE_CONNS (48),
# REUSE_LIFE (12), REUSE_ABORT_EVERY (60), REUSE_MAX_SIZE (256k),
# REUSE_MIN_PCT (50), REUSE_TIMEOUT (130 s, the bound on the traffic; it
# takes 75-100 s on 2 cores), REUSE_POOL_MAX (16, UPSTREAM_POOL_MAX in
# src/upstream.h), SOAKLOAD (the driver; built into build/long/ when not
# given).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # A_*, B_*, ST_*, MT_*, LOAD_PID are set by lib.sh

ops=${REUSE_OPS:-1000000}
conns=${REUSE_CONNS:-48}
life=${REUSE_LIFE:-12}
abort_every=${REUSE_ABORT_EVERY:-60}
max_size=${REUSE_MAX_SIZE:-256k}
min_pct=${REUSE_MIN_PCT:-50}
timeout=${REUSE_TIMEOUT:-130}
pool_max=${REUSE_POOL_MAX:-16}

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# load_over: soakload has exited, or memtunnel has (then soakload only
# collects connection errors until its timeout).
load_over() { ! _lib_running "$LOAD_PID" || ! _lib_running "$MT_PID"; }
# fds_settled: memtunnel holds no more descriptors than idle, a full idle
# pool and a spare (--prewarm 1) for each of the two upstreams: the
# spares may not have been made yet when idle was read.
fds_settled() { (($(fd_count "$MT_PID") <= idle_fds + 2 * (pool_max + 1))); }
# field NAME: a number from soakload's summary line.
field() { sed -n "s/.* $1=\([0-9.]*\)\( .*\)\{0,1\}\$/\1/p" <<<"$summary"; }
# stat_sum NAME [UPSTREAM]: count#memtunnel.NAME summed over memtunnel's
# stats lines (those of one upstream); 0 when no line has it.
stat_sum() {
	awk -v key="count#memtunnel.$1=" -v up="${2:-}" '
		/ at=stats upstream=/ && (up == "" || index($0, " upstream=" up " ")) {
			for (i = 1; i <= NF; i++)
				if (index($i, key) == 1)
					s += substr($i, length(key) + 1)
		}
		END { print s + 0 }' "$T/MT.log"
}

soakload=${SOAKLOAD:-}
if [[ -z $soakload ]]; then
	soakload=$ROOT/build/long/soakload
	mkdir -p "${soakload%/*}"
	if [[ ! -x $soakload || $TESTS_DIR/long/soakload.c -nt $soakload ]]; then
		out=$(${CC:-cc} -std=gnu11 -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -O2 -g \
			-o "$soakload" "$TESTS_DIR/long/soakload.c" 2>&1) || fail "build soakload" "$out"
	fi
fi
[[ -x $soakload ]] || fail "soakload is built" "$soakload is missing"

need=$((4 * conns + 256))
[[ $(ulimit -Sn) == unlimited ]] || (($(ulimit -Sn) >= need)) || ulimit -Sn "$need" ||
	fail "an open-file limit of $need"

# The reuse code may not have landed in this build: its --help names it.
help=$("$MEMTUNNEL" --help 2>&1) || true
reuse=()
if [[ $help == *--reuse* ]]; then
	reuse=(--reuse on)
else
	echo "# this memtunnel has no --reuse: the soak runs without it, and the reuse check must fail"
fi

start_memcached A --extra "-m 2048"
start_memcached B --extra "-m 2048"
start_tls_terminator ST "$B_NOTLS_PORT"
MEMTUNNEL_STATS_INTERVAL=10 start_memtunnel MT --servers "localhost:$A_PORT,localhost:$ST_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" "${reuse[@]}"
read -r port_a port_b <<<"$MT_PORTS"
idle_fds=$(fd_count "$MT_PID")
echo "# memtunnel ${reuse[*]:-(no --reuse)}: $idle_fds descriptors, VmRSS $(rss_kb "$MT_PID") kB at idle"
echo "# reuse soak: $ops operations, $conns connections at once, incarnations of ~$life requests," \
	"an abort every ~$abort_every requests, values up to $max_size, text, meta and binary"

bg_start LOAD "$soakload" --target "$port_a:1" --target "$port_b:8" --conns "$conns" --ops "$ops" \
	--life "$life" --abort-every "$abort_every" --max-size "$max_size" --protos text,binary,meta \
	--mix full --timeout "$timeout"
wait_until $((timeout + 15)) load_over || fail "soakload ends within $((timeout + 15)) s"
_lib_running "$MT_PID" || fail "memtunnel runs through the soak"
status=0
wait "$LOAD_PID" || status=$?
_lib_untrack "$LOAD_PID"
summary=$(grep '^mode=soak ' "$T/LOAD.out" || true)
echo "# $summary"
[[ ! -s $T/LOAD.log ]] || sed 's/^/# soakload: /' "$T/LOAD.log" | head -n 25
assert_eq 0 "$status" "soakload exits 0"
assert_match "$summary" ' mismatches=0 errors=0 ' "0 mismatches, 0 errors"

got=$(field ops)
incarnations=$(field connections)
clean=$(field clean_ends)
aborts=$(field aborts)
echo "# $got operations in $(field seconds) s ($(field ops_per_sec)/s): $incarnations incarnations," \
	"$clean clean ends (close $(field ends_close), half-close $(field ends_half)," \
	"half-close behind the last request $(field ends_early)), $aborts aborts (mid-request" \
	"$(field aborts_request), replies pending $(field aborts_pending), mid-reply $(field aborts_reply);" \
	"$(field aborts_rst) by reset)"
echo "# requests: text $(field text_ops), meta $(field meta_ops), binary $(field binary_ops);" \
	"quiet $(field quiet_ops); multi-key gets $(field multigets)"
assert_le "$ops" "${got:-0}" "$got operations verified"
assert_le 1000 "${incarnations:-0}" "$incarnations incarnations"
for f in text_ops meta_ops binary_ops quiet_ops multigets ends_close ends_half ends_early \
	aborts_request aborts_pending aborts_reply; do
	assert_le 1 "$(field $f)" "$f=$(field $f)"
done
for n in A B; do
	port=${n}_NOTLS_PORT
	assert_eq 0 "$(mc_stat "${!port}" evictions)" "memcached $n evicted nothing"
done

assert_alive MT
assert_eq 0 "$(count_log "$T/MT.log" 'level=error')" "no error line from memtunnel"
echo "# memtunnel's warn lines, by kind:"
sed -n 's/^memtunnel level=warn at=\([a-z-]*\) .*reason="\([^"]*\)".*/\1 "\2"/p' "$T/MT.log" | sort | uniq -c |
	sed 's/^/#   /'
wait_until 10 fds_settled || true
end_fds=$(fd_count "$MT_PID")
echo "# memtunnel after the soak: $end_fds descriptors (idle $idle_fds), VmRSS $(rss_kb "$MT_PID") kB"
fds_settled || fail "memtunnel's descriptors are back to idle but for its pools once the clients are gone" \
	"$end_fds descriptors, idle $idle_fds, at most $pool_max pooled per upstream"
ok "memtunnel's descriptors are back to idle but for its pools ($end_fds, idle $idle_fds)"

# The stats line at exit counts what the last interval did not.
stop_memtunnel MT
accepted=$(stat_sum connections.accepted)
reused=$(stat_sum connections.reused)
echo "# memtunnel: $accepted connections accepted, $reused reused" \
	"(upstream A, memcached -Z: $(stat_sum connections.reused "localhost:$A_PORT");" \
	"upstream B, stunnel: $(stat_sum connections.reused "localhost:$ST_PORT"))," \
	"for $clean clean ends: $((clean ? 100 * reused / clean : 0)) %"
# (The incarnations started last may have been cut before memtunnel
# accepted them.)
assert_le $((incarnations - conns)) "$accepted" \
	"memtunnel's stats count the clients ($accepted accepted, $incarnations incarnations)"
assert_le $(((clean * min_pct + 99) / 100)) "$reused" \
	"reuse happened: $reused reused connections, at least $min_pct % of $clean clean ends"
