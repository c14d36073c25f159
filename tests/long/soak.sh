#!/usr/bin/env bash
# soak: a million verified operations through one memtunnel, with clients
# that abort at random, and memtunnel's memory and descriptors back to
# their idle values afterwards.
#
# Two upstreams: memcached's own TLS (-Z), where each connection keeps one
# request in flight (memcached 1.6.18's TLS stalls on pipelines), and
# stunnel in front of a second memcached's plaintext port, where each
# connection pipelines up to 8 requests. soakload (tests/long/soakload.c)
# runs SOAK_CONNS connections spread over both listeners, values of 1 B to
# SOAK_MAX_SIZE skewed small, text and binary protocol, and every
# connection aborts after SOAK_ABORT_EVERY operations on average: in the
# middle of a request, with replies pending, or in the middle of a reply,
# by close or by reset.
#
# Settings (environment): SOAK_OPS (1000000), SOAK_CONNS (64),
# SOAK_MAX_SIZE (1M), SOAK_ABORT_EVERY (1000), SOAK_TIMEOUT (300 s, the
# bound on the traffic), SOAK_RSS_SLACK_KB (16384: how far above idle
# VmRSS may end), SOAK_POOL_MAX (16, UPSTREAM_POOL_MAX in src/upstream.h;
# 0 when memtunnel has no --reuse), SOAKLOAD (the driver; built into
# build/long/ when not given).
#
# The operations run in two halves. Checks: every operation verified (0
# mismatches, 0 errors), no eviction in memcached (a miss would then prove
# nothing), memtunnel alive with no error line, and after the traffic its
# open descriptors equal the idle count (plus the upstream connections
# --reuse, on by default, keeps for the next clients: at most
# SOAK_POOL_MAX per upstream), its VmRSS is within
# SOAK_RSS_SLACK_KB of idle, and no more than 4 MiB above where the first
# half left it (memory that grows with traffic is a leak; what the
# allocator keeps after the first burst is not). Numbers are printed
# throughout.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # A_*, B_*, ST_*, MT_*, LOAD_PID are set by lib.sh

ops=${SOAK_OPS:-1000000}
conns=${SOAK_CONNS:-64}
max_size=${SOAK_MAX_SIZE:-1M}
abort_every=${SOAK_ABORT_EVERY:-1000}
timeout=${SOAK_TIMEOUT:-300}
slack_kb=${SOAK_RSS_SLACK_KB:-16384}

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# The idle pool of --reuse (default auto) is not a leak.
help=$("$MEMTUNNEL" --help 2>&1) || true
pool_max=0
[[ $help != *--reuse* ]] || pool_max=${SOAK_POOL_MAX:-16}
# fds_idle: memtunnel holds no more descriptors than at idle, but for
# pooled upstream connections (two upstreams).
fds_idle() { (($(fd_count "$MT_PID") <= idle_fds + 2 * pool_max)); }

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

start_memcached A --extra "-m 2048"
start_memcached B --extra "-m 2048"
start_tls_terminator ST "$B_NOTLS_PORT"
start_memtunnel MT --servers "localhost:$A_PORT,localhost:$ST_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
read -r port_a port_b <<<"$MT_PORTS"
sleep 1   # let the spare connections (--prewarm) settle
idle_fds=$(fd_count "$MT_PID")
idle_kb=$(rss_kb "$MT_PID")
echo "# memtunnel idle: $idle_fds descriptors, VmRSS $idle_kb kB"
echo "# soak: $ops operations, $conns connections, values up to $max_size, an abort every ~$abort_every operations per connection"

# round NAME OPS: one soakload run, sampling memtunnel every second; sets
# ROUND_FDS and ROUND_KB (memtunnel once the round's clients are gone).
total_ops=0 total_aborts=0 peak_fds=0 peak_kb=0
round() {
	local name=$1 n=$2 samples=0 status=0 summary got aborts fds kb
	bg_start LOAD "$soakload" --target "$port_a:1" --target "$port_b:8" --conns "$conns" --ops "$n" \
		--max-size "$max_size" --abort-every "$abort_every" --timeout "$timeout"
	while _lib_running "$LOAD_PID"; do
		_lib_running "$MT_PID" || fail "memtunnel runs through the soak"
		fds=$(fd_count "$MT_PID")
		kb=$(rss_kb "$MT_PID")
		((fds <= peak_fds)) || peak_fds=$fds
		((kb <= peak_kb)) || peak_kb=$kb
		samples=$((samples + 1))
		((samples % 30)) || echo "# $name, after ${samples} s: memtunnel $fds descriptors, VmRSS $kb kB"
		sleep 1
	done
	wait "$LOAD_PID" || status=$?
	_lib_untrack "$LOAD_PID"
	summary=$(grep '^mode=soak ' "$T/LOAD.out" || true)
	echo "# $name: $summary"
	[[ ! -s $T/LOAD.log ]] || sed 's/^/# soakload: /' "$T/LOAD.log" | head -n 25
	assert_eq 0 "$status" "$name: soakload exits 0"
	got=$(sed -n 's/.* ops=\([0-9]*\) .*/\1/p' <<<"$summary")
	assert_le "$n" "${got:-0}" "$name: $got operations verified"
	assert_match "$summary" ' mismatches=0 errors=0 ' "$name: 0 mismatches, 0 errors"
	aborts=$(sed -n 's/.* aborts=\([0-9]*\) .*/\1/p' <<<"$summary")
	total_ops=$((total_ops + got))
	total_aborts=$((total_aborts + ${aborts:-0}))
	mv "$T/LOAD.out" "$T/LOAD-$name.out"
	mv "$T/LOAD.log" "$T/LOAD-$name.log"
	wait_until 10 fds_idle || true
	ROUND_FDS=$(fd_count "$MT_PID")
	ROUND_KB=$(rss_kb "$MT_PID")
	echo "# $name: memtunnel afterwards: $ROUND_FDS descriptors, VmRSS $ROUND_KB kB"
}

# Two halves: the first shows where memory settles after a burst of this
# traffic (the allocator keeps some), the second that it does not grow.
round first $((ops / 2))
first_kb=$ROUND_KB
round second $((ops - ops / 2))
echo "# in all: $total_ops operations verified, $total_aborts client aborts"
echo "# memtunnel during the soak: peak $peak_fds descriptors, peak VmRSS $peak_kb kB"
assert_le "$ops" "$total_ops" "$total_ops operations verified in all"
if ((abort_every > 0)); then
	assert_le 1 "$total_aborts" "clients aborted $total_aborts times"
fi
for n in A B; do
	port=${n}_NOTLS_PORT
	assert_eq 0 "$(mc_stat "${!port}" evictions)" "memcached $n evicted nothing"
done

assert_alive MT
assert_eq 0 "$(count_log "$T/MT.log" 'level=error')" "no error line from memtunnel"
echo "# memtunnel's warn lines, by kind:"
sed -n 's/^memtunnel level=warn at=\([a-z-]*\) .*reason="\([^"]*\)".*/\1 "\2"/p' "$T/MT.log" | sort | uniq -c |
	sed 's/^/#   /'

end_fds=$ROUND_FDS
end_kb=$ROUND_KB
echo "# memtunnel after: $end_fds descriptors (idle $idle_fds, peak $peak_fds), VmRSS $end_kb kB (idle $idle_kb, after the first half $first_kb, peak $peak_kb)"
if ((pool_max == 0)); then
	assert_eq "$idle_fds" "$end_fds" "memtunnel's descriptors are back to the idle count"
else
	assert_le "$end_fds" $((idle_fds + 2 * pool_max)) \
		"memtunnel's descriptors are back to the idle count, but for at most $pool_max pooled per upstream"
fi
# Under valgrind or AddressSanitizer the allocator keeps what is freed.
if rss_bounded; then
	assert_le "$end_kb" $((idle_kb + slack_kb)) "memtunnel's VmRSS is back within $slack_kb kB of idle ($end_kb kB, idle $idle_kb kB)"
	assert_le "$end_kb" $((first_kb + 4096)) "no growth from the first half to the second ($first_kb kB, then $end_kb kB)"
else
	echo "# VmRSS bounds not checked: valgrind or AddressSanitizer"
fi
out=$(mcload --port "$port_b" setget --size 1M 2>&1) || fail "setget after the soak" "$out"
assert_match "$out" 'ok=1' "a 1 MiB setget works after the soak"
stop_memtunnel MT
