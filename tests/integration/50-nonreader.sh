#!/usr/bin/env bash
# 50-nonreader: clients that send 200 MB of gets and never read a byte.
# One asks for a 100 KiB value (the replies dwarf the requests), one for a
# missing key. memtunnel must push back instead of buffering: its VmRSS
# stays under 64 MiB throughout, and other connections keep working.
# heavy
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, MT_*, FLOOD* are set by the start helpers

limit_kb=65536
# Under AddressSanitizer (make sanitize) freed memory waits in a 256 MiB
# quarantine and counts in VmRSS; keep it small so the bound still measures
# memtunnel's own buffering.
if built_with_asan "$MEMTUNNEL"; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
	echo "# AddressSanitizer build: ASAN_OPTIONS=$ASAN_OPTIONS"
fi
start_memcached MC
start_memtunnel MT --servers "localhost:$MC_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
idle_kb=$(rss_kb "$MT_PID")
echo "# memtunnel VmRSS at start: $idle_kb kB"

out=$(mcload --port "$MT_PORT" setget --key flood:big --size 100k 2>&1) || fail "store the 100 KiB flood value" "$out"
ok "a 100 KiB value stored for the flood"

# A flood ends when no byte went out for 2 s (blocked), or after 40 s of
# sending. mcload's --timeout bounds connecting and sending, so it must be
# longer than that: at its default of 30 s, a flood that a busy machine
# drained slowly but never stopped (the missing key's: 5-byte replies) died
# of the timeout before its 40 s were up.
bg_start FLOODBIG "$MCLOAD" --port "$MT_PORT" --timeout 50 flood --key flood:big --bytes 200M --seconds 40 --hold 90
bg_start FLOODMISS "$MCLOAD" --port "$MT_PORT" --timeout 50 flood --key flood:missing --bytes 200M --seconds 40 --hold 90

floods_done() { _lib_grep "$T/FLOODBIG.out" '^mode=flood ' && _lib_grep "$T/FLOODMISS.out" '^mode=flood '; }
max_kb=0
sample() {
	local kb
	kb=$(rss_kb "$MT_PID")
	((kb <= max_kb)) || max_kb=$kb
}
# Sample memtunnel's RSS while the floods push, until both stop sending.
deadline=$(($(now_ms) + 60000))
until floods_done; do
	_lib_running "$FLOODBIG_PID" || fail "the 100 KiB flood is still running" "$(cat "$T/FLOODBIG.log")"
	_lib_running "$FLOODMISS_PID" || fail "the missing-key flood is still running" "$(cat "$T/FLOODMISS.log")"
	(($(now_ms) < deadline)) || fail "both floods end within 60 s"
	sample
	sleep 0.05
done
big=$(grep '^mode=flood ' "$T/FLOODBIG.out")
miss=$(grep '^mode=flood ' "$T/FLOODMISS.out")
echo "# 100 KiB key flood: $big"
echo "# missing key flood: $miss"
ok "both floods sent what memtunnel took, then held their connections"

# While they hold, unread: another client still gets answers.
for i in 1 2 3; do
	sample
	start=$(now_ms)
	out=$(mcload --port "$MT_PORT" --timeout 10 setget --size 20k 2>&1) || fail "setget #$i while the floods hold" "$out"
	assert_match "$out" 'ok=1' "setget #$i through memtunnel while two clients do not read ($(($(now_ms) - start)) ms)"
	out=$(mcload --port "$MT_PORT" --timeout 10 setget --binary --size 20k 2>&1) || fail "binary setget #$i while the floods hold" "$out"
	assert_match "$out" 'ok=1' "binary setget #$i through memtunnel while two clients do not read"
done
for _ in $(seq 20); do
	sample
	sleep 0.05
done
now_kb=$(rss_kb "$MT_PID")
echo "# memtunnel VmRSS: start $idle_kb kB, peak $max_kb kB, now $now_kb kB (limit $limit_kb kB)"
assert_lt "$max_kb" "$limit_kb" "memtunnel's VmRSS peak $max_kb kB < $limit_kb kB"

assert_alive MT
bg_stop FLOODBIG
assert_eq 0 "$FLOODBIG_STATUS" "the 100 KiB flood's connection stayed open through the hold"
bg_stop FLOODMISS
assert_eq 0 "$FLOODMISS_STATUS" "the missing-key flood's connection stayed open through the hold"

out=$(mcload --port "$MT_PORT" --timeout 10 setget --size 20k 2>&1) || fail "setget after the floods" "$out"
assert_match "$out" 'ok=1' "setget after the floods went away"
assert_alive MT
stop_memtunnel MT
