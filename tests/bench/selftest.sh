#!/usr/bin/env bash
# The benchmark's own parts, without running the benchmark (make check):
# the TLS timer gives plausible figures, bench.sh refuses bad settings
# before it starts anything, and report.py's columns and verdicts come out
# as the targets say on fixed sets of medians.
#
#   tests/bench/selftest.sh [AEAD PKI]   (PKI: a tests/pki.sh directory;
#                                        default build/bench/aead, build/pki)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
aead=${1:-$root/build/bench/aead}
pki=${2:-$root/build/pki}
[[ -x $aead && -f $pki/ca.crt ]] || {
	echo "bench selftest: $aead or $pki/ca.crt is missing (make bench-selftest builds them)" >&2
	exit 1
}
T=$(mktemp -d "${TMPDIR:-/tmp}/memtunnel-bench-selftest.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0 passes=0

ok() {
	printf '  ok    %s\n' "$1"
	passes=$((passes + 1))
}
bad() {
	printf '  FAIL  %s\n' "$1"
	fails=$((fails + 1))
}

# expect NAME FILE PATTERN: FILE has a line matching PATTERN (grep -E).
expect() {
	if grep -Eq -- "$3" "$2"; then ok "$1"; else
		bad "$1: no line matches /$3/ in:"
		sed 's/^/        /' "$2"
	fi
}

# --- the TLS timer
# 100 KiB of AES-GCM takes microseconds to a few milliseconds on anything
# that runs this; zero or a missing field is a broken timer. The record
# layer does the cipher's work and more, but each figure is the best of
# 0.1 s on a machine that may be noisy (the same 100 KiB of cipher work has
# timed 48 and 65 µs in one run), so the record layer only has to reach
# half the cipher's figure: far less means it did not decrypt. A busy
# machine can still slow the cipher's 0.1 s alone: three tries.
for try in 1 2 3; do
	line=$(timeout 20 "$aead" --seconds 0.1 --size 100k --get-ratio 0.9 --ca "$pki/ca.crt" \
		--cert "$pki/server-chain.crt" --key "$pki/server.key" 2>&1) || { bad "aead exited with $?: $line"; break; }
	us=$(sed -n 's/.* us_op=\([0-9.]*\)$/\1/p' <<<"$line")
	tls=$(sed -n 's/.* tls_us_op=\([0-9.]*\) .*/\1/p' <<<"$line")
	if awk -v u="${us:-0}" -v t="${tls:-0}" 'BEGIN { exit !(u > 1 && u < 5000 && t > u / 2 && t < 10000) }'; then
		ok "aead: 100 KiB values, $tls µs per operation in the record layer, $us in the cipher"
		break
	fi
	[[ $try -lt 3 ]] || bad "aead: implausible output, three times: $line"
done
# The client verifies the server: a CA that did not issue it fails.
if timeout 20 "$aead" --seconds 0.05 --ca "$pki/other-ca.crt" --cert "$pki/server-chain.crt" \
	--key "$pki/server.key" >/dev/null 2>"$T/err"; then
	bad "aead's TLS client accepted a server from another CA"
else
	expect "aead: the TLS client verifies the server" "$T/err" "^aead: the handshake failed \(client\)"
fi
if timeout 5 "$aead" --ca "$pki/ca.crt" >/dev/null 2>"$T/err"; then
	bad "aead accepted --ca without --cert and --key"
else
	expect "aead: --ca, --cert and --key go together" "$T/err" "^aead: --ca, --cert and --key go together"
fi
if timeout 5 "$aead" --size nonsense >/dev/null 2>"$T/err"; then
	bad "aead accepted --size nonsense"
else
	expect "aead: a bad number is named" "$T/err" "^aead: --size: 'nonsense' is not a number"
fi

# --- bench.sh's settings: refused before anything starts (exit 1, the
# setting named); the optional targets and e-max are accepted, up to the
# check that comes after the names (direct is required).
# bench_input NAME PATTERN VAR=VALUE...: bench.sh exits 1 saying PATTERN.
bench_input() {
	local name=$1 pattern=$2 status=0
	shift 2
	env "$@" BENCH_OUT="$T/out" timeout 20 "$here/bench.sh" >"$T/bench.out" 2>"$T/bench.err" || status=$?
	if [[ $status -eq 1 ]]; then expect "$name" "$T/bench.err" "$pattern"; else
		bad "$name: bench.sh exited $status, not 1"
		sed 's/^/        /' "$T/bench.err"
	fi
}
bench_input "bench.sh: an unknown workload is named" "^bench: BENCH_WORKLOADS: unknown workload 'e-fast'" \
	BENCH_WORKLOADS="a e-fast"
bench_input "bench.sh: an unknown target is named" "^bench: BENCH_TARGETS: unknown target 'memtunnel-fast'" \
	BENCH_TARGETS="direct memtunnel-fast"
bench_input "bench.sh: BENCH_CHURN_SECONDS must be a number" "^bench: BENCH_CHURN_SECONDS must be a number, not 'one'" \
	BENCH_CHURN_SECONDS=one
bench_input "bench.sh: memtunnel-poll, memtunnel-noreuse and e-max are known" \
	"^bench: BENCH_TARGETS must include direct" \
	BENCH_TARGETS="memtunnel-poll memtunnel-noreuse" BENCH_WORKLOADS="e-max"

# --- the report's verdicts, on fixed medians (one round)
# round workload target ops_s p50 p99 rss open tunnel_cpu mc_cpu client_cpu
tab=$'\t'
header="round${tab}workload${tab}target${tab}ops_s${tab}p50_us${tab}p99_us${tab}rss_kib_per_conn${tab}open_s${tab}tunnel_cpu_us_op${tab}mc_cpu_us_op${tab}client_cpu_us_op"
row() { local IFS=$'\t'; echo "$*"; }
{
	echo "$header"
	# b: the best case (2 cores / (12 + 7 + 12.3 + 0.35) = 63.2 k, 1.28x
	# nginx) is below 1.3x: bounded, though memtunnel is at 1.06x. Its CPU
	# 0.69x nginx's, the cheapest peer (not the relay): met.
	row 1 b direct 97000 590 2100 "" "" "" 9.5 7.3
	row 1 b relay 60000 840 1600 "" "" 12.3 10.0 7.3
	row 1 b memtunnel 52300 980 2000 "" "" 14.4 13.6 7.1
	row 1 b stunnel 31000 1400 3700 "" "" 34 16 9.8
	row 1 b haproxy 45000 1000 2100 "" "" 23 13.5 7.5
	row 1 b nginx 49400 1000 2600 "" "" 21 12.0 7.0
	# c: 1.25x nginx and 0.80x direct: both met. CPU 0.67x, below the
	# relay's plus the record layer's (a reference, no floor): met.
	row 1 c direct 250000 990 1900 "" "" "" 4.9 1.8
	row 1 c relay 210000 1000 4500 "" "" 2.5 4.9 1.3
	row 1 c memtunnel 200000 1000 5100 "" "" 2.2 5.8 1.4
	row 1 c nginx 160000 1300 4900 "" "" 3.3 5.9 1.3
	# d: 1.29x haproxy where the best case allows 1.63x: not met. CPU
	# 0.68x haproxy's (the cheapest peer; the relays do not count): met.
	row 1 d direct 43000 83 330 "" "" "" 21 17
	row 1 d relay 22000 168 420 "" "" 34.6 24 18.8
	# The relay on the TLS stream: a reference, it changes no verdict.
	row 1 d relay-tls 8000 420 900 "" "" 81.5 90 31
	row 1 d memtunnel 9700 380 850 "" "" 70 88 29.5
	row 1 d haproxy 7500 510 1050 "" "" 103 77.7 38
	row 1 d nginx 7400 510 1100 "" "" 107 80 33
	# e with --auth memcached: 1.19x memtunnel's p50 without auth, in two
	# rounds whose own ratios are 1.28x and 1.10x: the medians' ratio is met.
	row 1 e direct 200 167 240 "" "" "" 60 30
	row 1 e memtunnel 200 196 300 "" "" 150 90 40
	row 2 e memtunnel 200 200 310 "" "" 150 90 40
	row 1 e memtunnel-auth 200 250 380 "" "" 170 110 40
	row 2 e memtunnel-auth 200 220 330 "" "" 170 110 40
	row 1 e nginx 200 1006 1400 "" "" 400 200 40
} >"$T/all.tsv"
grep -Pv '\td\t' "$T/all.tsv" >"$T/no-d.tsv"
# e-ec with --auth memcached at 1.22x memtunnel's: not met; e with no run
# of memtunnel without auth: no verdict.
{
	echo "$header"
	row 1 e-ec direct 200 149 200 "" "" "" 60 30
	row 1 e-ec memtunnel 200 233 300 "" "" 150 90 40
	row 1 e-ec memtunnel-auth 200 284 390 "" "" 170 110 40
	row 1 e direct 200 167 240 "" "" "" 60 30
	row 1 e memtunnel-auth 200 210 300 "" "" 170 110 40
} >"$T/auth.tsv"
# The figures of issue 22: (a) CPU per request 1.51x nginx's, the cheapest
# peer (stunnel 57.7, haproxy 63.8); closed-loop churn (e-max) p50 1.80x
# nginx's and CPU per connection 1.87x. The relay and memtunnel
# --busy-poll 200 spend less than nginx in (a) but are no peers; in e-max the
# relay's CPU would be above 0.5x nginx's, but bounds nothing there (a
# tunnel that reuses its upstream connections opens none).
{
	echo "$header"
	row 1 a direct 26000 38 80 "" "" "" 20 19
	row 1 a relay 12000 70 150 "" "" 44 21 23
	row 1 a memtunnel 16000 62.2 130 "" "" 76.4 30 21
	row 1 a memtunnel-poll 10500 90 160 "" "" 40 29 22
	row 1 a stunnel 9000 104 170 "" "" 57.7 33 24
	row 1 a haproxy 8800 106 170 "" "" 63.8 35 26
	row 1 a nginx 11000 83.9 140 "" "" 50.7 29 23
	row 1 e-max direct 10000 78 160 "" "" "" 60 70
	row 1 e-max relay 4500 150 330 "" "" 200 95 75
	row 1 e-max memtunnel 1100 837 1900 "" "" 626 530 60
	row 1 e-max memtunnel-poll 1000 900 2100 "" "" 340 600 60
	row 1 e-max stunnel 800 700 1500 "" "" 400 600 80
	row 1 e-max haproxy 900 600 1300 "" "" 380 500 80
	row 1 e-max nginx 1000 466 900 "" "" 335 420 75
} >"$T/cpu.tsv"
# Closed-loop churn that meets its targets: p50 0.32x nginx's and 1.92x
# direct's, CPU per connection 0.45x nginx's.
{
	echo "$header"
	row 1 e-max direct 10000 78 160 "" "" "" 60 70
	row 1 e-max memtunnel 4000 150 400 "" "" 150 150 60
	row 1 e-max stunnel 800 700 1500 "" "" 400 600 80
	row 1 e-max nginx 1000 466 900 "" "" 335 420 75
} >"$T/churn-met.tsv"

py=/usr/bin/python3
meta=(cores=2 aead_a=0.15 aead_b=0.15 aead_c=0.03 aead_d=17.3 tls_a=0.35 tls_b=0.35 tls_c=0.2 tls_d=22.1)
"$py" "$here/report.py" "$T/all.tsv" "$T/all.md" "${meta[@]}" >/dev/null
expect "report: (b) below target even in the best case is bounded" "$T/all.md" \
	'^\| \(b\) \| ops/s ≥ 1\.3× the best peer.s \| 52\.3 k \| nginx 49\.4 k \| 1\.06× \| bounded \| best case .* = 63\.2 k ops/s, 1\.28 × nginx \|$'
expect "report: (b) CPU at 0.69x the cheapest peer is met, the relay and record layer beside it" "$T/all.md" \
	'^\| \(b\) \| CPU per operation ≤ 0\.7× the cheapest peer.s \| 14\.4 µs \| nginx 21\.0 µs \| 0\.69× \| met \| the plaintext relay \+ wolfSSL.s record layer, 12\.3 \+ 0\.35 = 12\.7 µs, 0\.60 × nginx \|$'
expect "report: (c) met against the best peer" "$T/all.md" \
	'^\| \(c\) \| ops/s ≥ 1\.2× the best peer.s \| 200\.0 k \| nginx 160\.0 k \| 1\.25× \| met \|'
expect "report: (c) met against direct" "$T/all.md" \
	'^\| \(c\) \| ops/s ≥ 0\.75× direct.s \| 200\.0 k \| direct 250\.0 k \| 0\.80× \| met \|'
expect "report: (c) CPU below the relay's plus the record layer's is met" "$T/all.md" \
	'^\| \(c\) \| CPU per operation ≤ 0\.7× the cheapest peer.s \| 2\.20 µs \| nginx 3\.30 µs \| 0\.67× \| met \|'
expect "report: (d) reachable in the best case and not reached is not met" "$T/all.md" \
	'^\| \(d\) \| ops/s ≥ 1\.5× the best peer.s \| 9700 \| haproxy 7500 \| 1\.29× \| \*\*not met\*\* \| best case .*relay \+ wolfSSL.s record layer.* 1\.63 × haproxy \|$'
expect "report: (d) CPU at 0.68x the cheapest peer (no relay counted) is met" "$T/all.md" \
	'^\| \(d\) \| CPU per operation ≤ 0\.7× the cheapest peer.s \| 70\.0 µs \| haproxy 103 µs \| 0\.68× \| met \|'
expect "report: (d) the record layer's and the cipher's shares are named" "$T/all.md" \
	'record layer .* at least 22\.1 µs, AES-128-GCM alone 17\.3 µs'
expect "report: (d) the relay's cost on the TLS stream beside the plaintext one" "$T/all.md" \
	'^- \(d\) carrying memcached.s TLS stream, .* costs the relay 81\.5 µs .*, the plaintext stream 34\.6 µs; memtunnel, decrypting as well, 70\.0 µs$'
expect "report: the CPU beside the speed, with the ratio to the cheapest peer" "$T/all.md" \
	'^\| \(d\) 4 conns, 100 KiB values \| 43\.0 k \| 22\.0 k; CPU 34\.6 µs \(0\.34×\) \| 8000; CPU 81\.5 µs \(0\.79×\) \| 9700; CPU 70\.0 µs \(0\.68×\) \| — \| — \| 7500; CPU 103 µs \(1\.00×\) \| 7400; CPU 107 µs \(1\.04×\) \| haproxy 103 µs \|$'
expect "report: the detail names the cheapest peer" "$T/all.md" \
	'^\| d \| memtunnel \| 9700 \| .* \| 70\.0 \| 0\.68× \(haproxy 103\) \| 88\.0 \| 29\.5 \|$'
"$py" "$here/report.py" "$T/all.tsv" "$T/c.md" cores=2 aead_b=0.15 aead_c=0.03 aead_d=17.3 >/dev/null
expect "report: with the cipher alone timed the best case says so" "$T/c.md" \
	'^\| \(d\) \| ops/s .*relay \+ cipher.* 1\.68 × haproxy \|$'

expect "report: (e) with --auth within 1.2x of memtunnel without it is met" "$T/all.md" \
	'^- \(e\) p50 235 µs with --auth memcached, 1\.19 × memtunnel without auth \(198 µs\); target ≤ 1\.2× \(1\.41 × direct without auth, 167 µs\); round by round 1\.28×, 1\.10×: met$'
expect "report: memtunnel-auth has its own column" "$T/all.md" \
	'^\| \(e\) new connection \+ 1 get, paced \(RSA-2048\) \| 167 µs( \| —)* \| 198 µs; CPU 150 µs \(0\.38×\) \| 235 µs; CPU 170 µs \(0\.42×\)( \| —)* \| 1006 µs; CPU 400 µs \(1\.00×\) \| nginx 400 µs \|$'
"$py" "$here/report.py" "$T/auth.tsv" "$T/auth.md" cores=2 >/dev/null
expect "report: (e-ec) with --auth above 1.2x is not met" "$T/auth.md" \
	'^- \(e-ec\) p50 284 µs with --auth memcached, 1\.22 × memtunnel without auth \(233 µs\); target ≤ 1\.2× .*: \*\*not met\*\*$'
expect "report: (e) with --auth and no run without it has no verdict" "$T/auth.md" \
	'^- \(e\) p50 210 µs with --auth memcached; target ≤ 1\.2× memtunnel without auth: no usable measurement without auth in this run: n/a$'

"$py" "$here/report.py" "$T/cpu.tsv" "$T/cpu.md" "${meta[@]}" >/dev/null
expect "report: (a) CPU per request 1.51x the cheapest peer is not met" "$T/cpu.md" \
	'^\| \(a\) \| CPU per request ≤ 1\.0× the cheapest peer.s \| 76\.4 µs \| nginx 50\.7 µs \| 1\.51× \| \*\*not met\*\* \| .* = 44\.4 µs, 0\.87 × nginx \|$'
# A CPU target is met or not: where even the relay and the record layer
# spend more than 0.7x the cheapest peer, memtunnel above it is not met.
{
	echo "$header"
	row 1 b direct 97000 590 2100 "" "" "" 9.5 7.3
	row 1 b relay 60000 840 1600 "" "" 12.3 10.0 7.3
	row 1 b memtunnel 52300 980 2000 "" "" 14.4 13.6 7.1
	row 1 b nginx 49400 1000 2600 "" "" 15.5 12.0 7.0
} >"$T/relay-above.tsv"
"$py" "$here/report.py" "$T/relay-above.tsv" "$T/relay-above.md" "${meta[@]}" >/dev/null
expect "report: a CPU target is not bounded by the relay" "$T/relay-above.md" \
	'^\| \(b\) \| CPU per operation ≤ 0\.7× the cheapest peer.s \| 14\.4 µs \| nginx 15\.5 µs \| 0\.93× \| \*\*not met\*\* \| .* = 12\.7 µs, 0\.82 × nginx \|$'
expect "report: (a) added p50 0.53x is not met" "$T/cpu.md" \
	'^\| \(a\) \| added p50 ≤ 0\.5× the best peer.s \| \+24 µs \| nginx \+46 µs \| 0\.53× \| \*\*not met\*\* \|'
expect "report: (a) p99 below the best peer's is met" "$T/cpu.md" \
	'^\| \(a\) \| p99 ≤ the best peer.s \| 130 µs \| nginx 140 µs \| 0\.93× \| met \|'
expect "report: neither the relay nor memtunnel --busy-poll 200 is the cheapest peer" "$T/cpu.md" \
	'^\| \(a\) 1 conn, .* \| 38\.0 µs / — \| 70\.0 µs / \+32; CPU 44\.0 µs \(0\.87×\) \| 62\.2 µs / \+24; CPU 76\.4 µs \(1\.51×\) \| 90\.0 µs / \+52; CPU 40\.0 µs \(0\.79×\) \| .* \| nginx 50\.7 µs \|$'
expect "report: closed-loop churn in the summary: p50 / p99 and CPU per connection" "$T/cpu.md" \
	'^\| \(e-max\) new connection \+ 1 get, back to back \(closed-loop churn\): p50 / p99 \| 78\.0 / 160 µs \| .* \| 837 / 1900 µs; CPU 626 µs \(1\.87×\) \| .* \| nginx 335 µs \|$'
expect "report: (e-max) p50 1.80x the best peer is not met" "$T/cpu.md" \
	'^\| \(e-max\) \| p50 ≤ 0\.4× the best peer.s \| 837 µs \| nginx 466 µs \| 1\.80× \| \*\*not met\*\* \|'
expect "report: (e-max) p50 against direct" "$T/cpu.md" \
	'^\| \(e-max\) \| p50 ≤ 2× direct.s \| 837 µs \| direct 78\.0 µs \| 10\.73× \| \*\*not met\*\* \|'
expect "report: (e-max) CPU per connection is not met, not bounded by the relay" "$T/cpu.md" \
	'^\| \(e-max\) \| CPU per connection ≤ 0\.5× the cheapest peer.s \| 626 µs \| nginx 335 µs \| 1\.87× \| \*\*not met\*\* \|  \|$'
expect "report: the defaults beside --busy-poll 200" "$T/cpu.md" \
	'^\| \(a\) \| --busy-poll 200 \| added p50 \+24 / \+52 µs \| 76\.4 / 40\.0 µs \(1\.91×\) \|$'
expect "report: the relay's churn is a floor line" "$T/cpu.md" \
	'^- \(e-max\) a new connection through one plaintext hop alone, back to back: p50 150 µs, 1\.92× direct .*, 200 µs of the relay.s CPU per connection; memtunnel .* 626 µs of CPU per connection$'
"$py" "$here/report.py" "$T/churn-met.tsv" "$T/churn.md" cores=2 >/dev/null
expect "report: (e-max) p50 0.32x the best peer is met" "$T/churn.md" \
	'^\| \(e-max\) \| p50 ≤ 0\.4× the best peer.s \| 150 µs \| nginx 466 µs \| 0\.32× \| met \|'
expect "report: (e-max) p50 1.92x direct is met" "$T/churn.md" \
	'^\| \(e-max\) \| p50 ≤ 2× direct.s \| 150 µs \| direct 78\.0 µs \| 1\.92× \| met \|'
expect "report: (e-max) CPU per connection 0.45x is met" "$T/churn.md" \
	'^\| \(e-max\) \| CPU per connection ≤ 0\.5× the cheapest peer.s \| 150 µs \| nginx 335 µs \| 0\.45× \| met \|'

# strict_status NAME WANT TSV META...: report.py with strict=1 exits WANT.
strict_status() {
	local name=$1 want=$2 tsv=$3 status=0
	shift 3
	"$py" "$here/report.py" "$tsv" "$T/s.md" "$@" strict=1 >/dev/null || status=$?
	if [[ $status -eq $want ]]; then ok "$name"; else bad "$name: exited $status, not $want"; fi
}
strict_status "report: strict=1 exits 2 when --auth misses 1.2x" 2 "$T/auth.tsv" cores=2
strict_status "report: strict=1 exits 2 on a missed throughput target" 2 "$T/all.tsv" "${meta[@]}"
strict_status "report: strict=1 exits 0 when only bounded targets are not met" 0 "$T/no-d.tsv" "${meta[@]}"
strict_status "report: strict=1 exits 2 on missed CPU and churn targets" 2 "$T/cpu.tsv" "${meta[@]}"
strict_status "report: strict=1 exits 2 on a missed CPU target alone" 2 "$T/relay-above.tsv" "${meta[@]}"
strict_status "report: strict=1 exits 0 when closed-loop churn meets its targets" 0 "$T/churn-met.tsv" cores=2
"$py" "$here/report.py" "$T/all.tsv" "$T/n.md" cores=2 >/dev/null
expect "report: without TLS timed the best case says so" "$T/n.md" '\(relay, TLS not timed\)'

echo "bench selftest: $passes passed, $fails failed"
((fails == 0))
