#!/usr/bin/env bash
# The benchmark's own parts, without running the benchmark (make check):
# the TLS timer gives plausible figures, and report.py's verdicts come out
# as the acceptance rules say on a fixed set of medians.
#
#   tests/bench/selftest.sh AEAD PKI   (PKI: a tests/pki.sh directory)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
aead=$1
pki=$2
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
line=$(timeout 20 "$aead" --seconds 0.1 --size 100k --get-ratio 0.9 --ca "$pki/ca.crt" \
	--cert "$pki/server-chain.crt" --key "$pki/server.key" 2>&1) || bad "aead exited with $?: $line"
us=$(sed -n 's/.* us_op=\([0-9.]*\)$/\1/p' <<<"$line")
tls=$(sed -n 's/.* tls_us_op=\([0-9.]*\) .*/\1/p' <<<"$line")
# 100 KiB of AES-GCM takes microseconds to a few milliseconds on anything
# that runs this; zero or a missing field is a broken timer. The record
# layer does the cipher's work and more, but each figure is the best of
# 0.1 s on a machine that may be noisy (the same 100 KiB of cipher work has
# timed 48 and 65 µs in one run), so the record layer only has to reach
# half the cipher's figure: far less means it did not decrypt.
if awk -v u="${us:-0}" -v t="${tls:-0}" 'BEGIN { exit !(u > 1 && u < 5000 && t > u / 2 && t < 10000) }'; then
	ok "aead: 100 KiB values, $tls µs per operation in the record layer, $us in the cipher"
else
	bad "aead: implausible output: $line"
fi
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

# --- the report's verdicts, on fixed medians (one round)
# round workload target ops_s p50 p99 rss open tunnel_cpu mc_cpu client_cpu
tab=$'\t'
{
	echo "round${tab}workload${tab}target${tab}ops_s${tab}p50_us${tab}p99_us${tab}rss_kib_per_conn${tab}open_s${tab}tunnel_cpu_us_op${tab}mc_cpu_us_op${tab}client_cpu_us_op"
	row() { local IFS=$'\t'; echo "$*"; }
	# b: the best case (2 cores / (12 + 7 + 12.3 + 0.35) = 63.2 k, 1.28x
	# nginx) is below 1.3x: out of reach, though memtunnel is at 1.06x.
	row 1 b direct 97000 590 2100 "" "" "" 9.5 7.3
	row 1 b relay 60000 840 1600 "" "" 12.3 10.0 7.3
	row 1 b memtunnel 52300 980 2000 "" "" 14.4 13.6 7.1
	row 1 b stunnel 31000 1400 3700 "" "" 34 16 9.8
	row 1 b haproxy 45000 1000 2100 "" "" 17 13.5 7.5
	row 1 b nginx 49400 1000 2600 "" "" 15.5 12.0 7.0
	# c: 1.25x nginx and 0.80x direct: both met.
	row 1 c direct 250000 990 1900 "" "" "" 4.9 1.8
	row 1 c relay 210000 1000 4500 "" "" 2.5 4.9 1.3
	row 1 c memtunnel 200000 1000 5100 "" "" 2.2 5.8 1.4
	row 1 c nginx 160000 1300 4900 "" "" 2.7 5.9 1.3
	# d: 1.29x haproxy where the best case allows 1.63x: missed.
	row 1 d direct 43000 83 330 "" "" "" 21 17
	row 1 d relay 22000 168 420 "" "" 34.6 24 18.8
	# The relay on the TLS stream: a reference, it changes no verdict.
	row 1 d relay-tls 8000 420 900 "" "" 81.5 90 31
	row 1 d memtunnel 9700 380 850 "" "" 74.6 88 29.5
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
# e-ec with --auth memcached at 1.22x memtunnel's: missed; e with no run
# of memtunnel without auth: no verdict.
{
	head -n1 "$T/all.tsv"
	row 1 e-ec direct 200 149 200 "" "" "" 60 30
	row 1 e-ec memtunnel 200 233 300 "" "" 150 90 40
	row 1 e-ec memtunnel-auth 200 284 390 "" "" 170 110 40
	row 1 e direct 200 167 240 "" "" "" 60 30
	row 1 e memtunnel-auth 200 210 300 "" "" 170 110 40
} >"$T/auth.tsv"

py=/usr/bin/python3
meta=(cores=2 aead_b=0.15 aead_c=0.03 aead_d=17.3 tls_b=0.35 tls_c=0.2 tls_d=22.1)
"$py" "$here/report.py" "$T/all.tsv" "$T/all.md" "${meta[@]}" >/dev/null
expect "report: (b) below target even in the best case is out of reach" "$T/all.md" \
	'^- \(b\) 52\.3 k ops/s, 1\.06 × nginx .*best case.* 1\.28 × nginx\): out of reach in this run'
expect "report: (c) met against the best peer" "$T/all.md" '^- \(c\) 200\.0 k ops/s, 1\.25 × nginx .*: met$'
expect "report: (c) met against direct" "$T/all.md" '^- \(c\) 0\.80 × direct .*: met$'
expect "report: (d) reachable in the best case and not reached is missed" "$T/all.md" \
	'^- \(d\) 9700 ops/s, 1\.29 × haproxy .*relay \+ wolfSSL.s record layer.* 1\.63 × haproxy\): \*\*missed\*\*$'
expect "report: (d) the record layer's and the cipher's shares are named" "$T/all.md" \
	'record layer .* at least 22\.1 µs, AES-128-GCM alone 17\.3 µs'
expect "report: (d) the relay's cost on the TLS stream beside the plaintext one" "$T/all.md" \
	'^- \(d\) carrying memcached.s TLS stream, .* costs the relay 81\.5 µs .*, the plaintext stream 34\.6 µs; memtunnel, decrypting as well, 74\.6 µs$'
"$py" "$here/report.py" "$T/all.tsv" "$T/c.md" cores=2 aead_b=0.15 aead_c=0.03 aead_d=17.3 >/dev/null
expect "report: with the cipher alone timed the floor says so" "$T/c.md" \
	'^- \(d\) 9700 ops/s, .*relay \+ cipher.* 1\.68 × haproxy\): \*\*missed\*\*$'

expect "report: (e) with --auth within 1.2x of memtunnel without it is met" "$T/all.md" \
	'^- \(e\) p50 235 µs with --auth memcached, 1\.19 × memtunnel without auth \(198 µs\); target ≤ 1\.2× \(1\.41 × direct without auth, 167 µs\); round by round 1\.28×, 1\.10×: met$'
expect "report: memtunnel-auth has its own column" "$T/all.md" \
	'^\| \(e\) new connection \+ 1 get, paced \(RSA-2048\) \| 167 µs( \| —)* \| 198 µs \| 235 µs( \| —)* \| 1006 µs \|$'
"$py" "$here/report.py" "$T/auth.tsv" "$T/auth.md" cores=2 >/dev/null
expect "report: (e-ec) with --auth above 1.2x is missed" "$T/auth.md" \
	'^- \(e-ec\) p50 284 µs with --auth memcached, 1\.22 × memtunnel without auth \(233 µs\); target ≤ 1\.2× .*: \*\*missed\*\*$'
expect "report: (e) with --auth and no run without it has no verdict" "$T/auth.md" \
	'^- \(e\) p50 210 µs with --auth memcached; target ≤ 1\.2× memtunnel without auth: no usable measurement without auth in this run: n/a$'
status=0
"$py" "$here/report.py" "$T/auth.tsv" "$T/s.md" cores=2 strict=1 >/dev/null || status=$?
if [[ $status -eq 2 ]]; then ok "report: strict=1 exits 2 when --auth misses 1.2x"; else
	bad "report: strict=1 with (e-ec) --auth missed exited $status, not 2"
fi

status=0
"$py" "$here/report.py" "$T/all.tsv" "$T/s.md" "${meta[@]}" strict=1 >/dev/null || status=$?
if [[ $status -eq 2 ]]; then ok "report: strict=1 exits 2 on a missed target"; else
	bad "report: strict=1 with (d) missed exited $status, not 2"
fi
status=0
"$py" "$here/report.py" "$T/no-d.tsv" "$T/s.md" "${meta[@]}" strict=1 >/dev/null || status=$?
if [[ $status -eq 0 ]]; then ok "report: strict=1 exits 0 when only out-of-reach targets are not met"; else
	bad "report: strict=1 without (d) exited $status, not 0"
fi
"$py" "$here/report.py" "$T/all.tsv" "$T/n.md" cores=2 >/dev/null
expect "report: without TLS timed the floor says so" "$T/n.md" '\(relay, TLS not timed\)'

echo "bench selftest: $passes passed, $fails failed"
((fails == 0))
