#!/usr/bin/env bash
# 89-conns-5000: 5 000 local connections open at once, each with its own
# verified TLS connection upstream, all answered correctly. memtunnel is
# started with a soft open-file limit of 1024 (the usual default), far
# below the ~10 000 descriptors it needs: it must raise the soft limit to
# the hard one at start and log it. Time, descriptor counts and VmRSS are
# printed; afterwards the descriptors return to the idle count and VmRSS to
# within 64 MiB of idle (the connections' memory is given back, not kept
# by the allocator for a burst that may never come again).
# --connect-timeout 30: 5 000 handshakes at once on a busy 2-core machine
# can take longer than the default 5 s; this scenario is about descriptors
# and memory, not handshake speed.
# heavy
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# Descriptors are counted back to the idle count after each burst: pooled
# connections (--reuse, kept up to 30 s; 25-reuse) would be counted too.
export MEMTUNNEL_REUSE=off
# shellcheck disable=SC2153,SC2154 # MC_*, MT_*, LOAD_PID are set by lib.sh

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# fds_idle: memtunnel holds no more descriptors than at idle.
fds_idle() { (($(fd_count "$MT_PID") <= idle_fds)); }

conns=5000
need=$((2 * conns + 1000))   # memtunnel: client + upstream per connection
if [[ $(ulimit -Hn) != unlimited ]] && (($(ulimit -Hn) < need)); then
	ulimit -Hn "$need" 2>/dev/null || fail "a hard open-file limit of at least $need" "hard limit: $(ulimit -Hn)"
fi
[[ $(ulimit -Sn) == unlimited ]] || (($(ulimit -Sn) >= need)) || ulimit -Sn "$need"
hard=$(ulimit -Hn)
ok "hard open-file limit $hard"

start_memcached MC --extra "-c 12000 -b 8192"

# memtunnel alone starts with the soft limit at 1024.
ulimit -Sn 1024
start_memtunnel MT --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --prewarm 0 --connect-timeout 30
ulimit -Sn "$hard"
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$MT_PID/limits")
assert_eq "$hard" "$soft" "memtunnel raised its soft open-file limit from 1024 to the hard limit"
wait_log "$T/MT.log" "^memtunnel level=info at=fd-limit limit=$hard\$" 2
ok "memtunnel logged the limit ($hard)"
idle_fds=$(fd_count "$MT_PID")
idle_kb=$(rss_kb "$MT_PID")
echo "# memtunnel idle: $idle_fds descriptors, VmRSS $idle_kb kB"

for flag in "" --binary; do
	start=$(now_ms)
	bg_start LOAD "$MCLOAD" --port "$MT_PORT" --timeout 90 concurrent ${flag:+"$flag"} --conns "$conns"
	peak_fds=0 peak_kb=0
	while _lib_running "$LOAD_PID"; do
		n=$(fd_count "$MT_PID")
		((n <= peak_fds)) || peak_fds=$n
		kb=$(rss_kb "$MT_PID")
		((kb <= peak_kb)) || peak_kb=$kb
		sleep 0.1
	done
	status=0
	wait "$LOAD_PID" || status=$?
	_lib_untrack "$LOAD_PID"
	ms=$(($(now_ms) - start))
	out=$(cat "$T/LOAD.out" "$T/LOAD.log")
	echo "# ${flag:---text}: $conns connections in $ms ms; memtunnel peak $peak_fds descriptors, VmRSS $peak_kb kB"
	assert_eq 0 "$status" "mcload concurrent ${flag:---text} --conns $conns exits 0"
	assert_match "$out" "mode=concurrent conns=$conns ok=$conns failed=0" \
		"$conns concurrent connections (${flag:---text}) all answered correctly"
	assert_le $((2 * conns)) "$peak_fds" "memtunnel held two descriptors per connection at the peak ($peak_fds)"
	wait_until 10 fds_idle || true
	assert_eq "$idle_fds" "$(fd_count "$MT_PID")" "memtunnel's descriptors are back to the idle count"
done

# The descriptors close before the close callbacks free the connections'
# memory (on the next loop turn): wait for the RSS to settle, bounded.
rss_settled() { (($(rss_kb "$MT_PID") < idle_kb + 65536)); }
wait_until 5 rss_settled || true
end_kb=$(rss_kb "$MT_PID")
echo "# memtunnel VmRSS: idle $idle_kb kB, after $end_kb kB"
if rss_bounded; then
	assert_lt "$end_kb" $((idle_kb + 65536)) "memtunnel's VmRSS after the connections closed ($end_kb kB) is within 64 MiB of idle ($idle_kb kB)"
else
	echo "# VmRSS bound not checked: valgrind or AddressSanitizer"
fi
assert_eq 0 "$(count_log "$T/MT.log" 'level=(warn|error)')" "no warn or error line"
assert_alive MT
stop_memtunnel MT
