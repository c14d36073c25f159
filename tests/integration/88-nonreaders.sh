#!/usr/bin/env bash
# 88-nonreaders: 20 clients at once that send gets and never read a byte
# (10 ask for a 100 KiB value, 10 for a missing key). Backpressure must
# hold memtunnel's memory to a bounded amount per connection: its VmRSS
# peak stays within 20 MiB (1 MiB per non-reader) of what it was before
# the floods, other clients keep getting answers, and once the floods go
# away its descriptors return to the idle count. Numbers are printed.
# heavy
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# Descriptors are counted back to the idle count after each burst: pooled
# connections (--reuse, kept up to 30 s; 25-reuse) would be counted too.
export MEMTUNNEL_REUSE=off
# shellcheck disable=SC2153,SC2154 # MC_*, MT_*, F*_PID are set by lib.sh

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# fds_idle: memtunnel holds no more descriptors than at idle.
fds_idle() { (($(fd_count "$MT_PID") <= idle_fds)); }

nflood=20
per_conn_kb=1024
start_memcached MC
# --prewarm 0: spare upstream connections would blur the descriptor count.
start_memtunnel MT --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --prewarm 0
idle_fds=$(fd_count "$MT_PID")

out=$(mcload --port "$MT_PORT" setget --key flood:big --size 100k 2>&1) || fail "store the 100 KiB flood value" "$out"
ok "a 100 KiB value stored for the floods"
# A first round of ordinary traffic, so that the baseline includes what
# any busy memtunnel holds (TLS sessions, the allocator's arenas).
out=$(mcload --port "$MT_PORT" --timeout 30 pipeline --depth 1 --conns 4 --ops 2000 --max-size 128k 2>&1) ||
	fail "warm-up traffic" "$out"
base_kb=$(rss_kb "$MT_PID")
echo "# memtunnel before the floods: $idle_fds descriptors at idle, VmRSS $base_kb kB after a warm-up"

for i in $(seq "$nflood"); do
	key=flood:big
	((i % 2)) || key=flood:missing
	bg_start "F$i" "$MCLOAD" --port "$MT_PORT" flood --key "$key" --bytes 100M --seconds 8 --hold 60
done

max_kb=0
sample() {
	local kb
	kb=$(rss_kb "$MT_PID")
	((kb <= max_kb)) || max_kb=$kb
}
# Each flood sends for 8 s, or until backpressure held it for 2 s.
all_flooded() {
	local i
	for i in $(seq "$nflood"); do
		_lib_grep "$T/F$i.out" '^mode=flood ' || return 1
	done
}
deadline=$(($(now_ms) + 40000))
until all_flooded; do
	(($(now_ms) < deadline)) || fail "all $nflood floods stop sending within 40 s"
	sample
	sleep 0.05
done
blocked=$(cat "$T"/F*.out | grep -c 'blocked=1' || true)
sent=$(cat "$T"/F*.out | sed -n 's/^mode=flood sent=\([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
hits=$(mc_stat "$MC_NOTLS_PORT" get_hits)
misses=$(mc_stat "$MC_NOTLS_PORT" get_misses)
replies_kb=$((hits * 100 + misses * 5 / 1024))
echo "# $nflood floods sent $((sent / 1024)) kB of gets ($blocked blocked by backpressure within 8 s); memcached answered $hits hits and $misses misses, about $replies_kb kB"
# The point of the bound: far more was asked and answered than memtunnel
# may hold.
assert_lt $((nflood * per_conn_kb * 4)) "$replies_kb" "the floods drew more than 4 x $nflood x $per_conn_kb kB of replies"
flood_fds=$(fd_count "$MT_PID")
assert_eq $((idle_fds + 2 * nflood)) "$flood_fds" "memtunnel holds two descriptors per non-reader ($flood_fds)"

# memcached still works through the gets the floods left in its buffers,
# so the first answers can take seconds: a generous timeout.
for i in 1 2 3; do
	sample
	start=$(now_ms)
	out=$(mcload --port "$MT_PORT" --timeout 20 setget --size 20k 2>&1) || fail "setget #$i while $nflood clients do not read" "$out"
	assert_match "$out" 'ok=1' "setget #$i while $nflood clients do not read ($(($(now_ms) - start)) ms)"
done
for _ in $(seq 20); do
	sample
	sleep 0.05
done
limit_kb=$((base_kb + nflood * per_conn_kb))
echo "# memtunnel VmRSS: before $base_kb kB, peak $max_kb kB with $nflood non-readers ($(((max_kb - base_kb) / nflood)) kB each), limit $limit_kb kB"
if rss_bounded; then
	assert_lt "$max_kb" "$limit_kb" "VmRSS peak $max_kb kB < $base_kb kB + $nflood x $per_conn_kb kB"
else
	echo "# VmRSS bound not checked: valgrind or AddressSanitizer"
fi

for i in $(seq "$nflood"); do
	bg_stop "F$i"
	st=F${i}_STATUS
	[[ ${!st} == 0 ]] || fail "flood $i held its connection until stopped" "status ${!st}: $(cat "$T/F$i.log")"
done
ok "all $nflood non-readers held their connections until stopped"

wait_until 5 fds_idle || true
end_fds=$(fd_count "$MT_PID")
end_kb=$(rss_kb "$MT_PID")
echo "# memtunnel after the floods: $end_fds descriptors, VmRSS $end_kb kB"
assert_eq "$idle_fds" "$end_fds" "memtunnel's descriptors are back to the idle count ($idle_fds)"
out=$(mcload --port "$MT_PORT" --timeout 10 setget --size 20k 2>&1) || fail "setget after the floods" "$out"
assert_match "$out" 'ok=1' "setget after the floods went away"
assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error line"
assert_alive MT
stop_memtunnel MT
