#!/usr/bin/env bash
# bench: end-to-end throughput of two memtunnel binaries over the same TLS
# upstream — typically bin/memtunnel (Debian's shared wolfSSL, no AES-NI)
# and build/static/memtunnel (wolfSSL with AES-NI, static).
#
#   tests/buildpack/bench.sh BINARY_A BINARY_B
#
# Load: mcload pipeline, 4 connections, 8 requests in flight each, half sets
# and half gets of random values up to 100 KiB, every reply verified. The
# upstream is stunnel (OpenSSL, AES-NI) in front of memcached's plaintext
# port, because memcached 1.6.18's own TLS stalls on pipelined requests
# (see tests/integration/30-bytes.sh). memtunnel negotiates TLS 1.3 with
# TLS13-AES128-GCM-SHA256, its first choice; the log line says which.
# Each binary runs BENCH_RUNS times (3), alternating; the best run counts.
# Prints MB/s (10^6 bytes, both directions, payload bytes as mcload counts
# them) and the ratio. Fails only when a run does not verify.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2154 # MC_*, ST_*, MT* are set by the start helpers

[[ $# -eq 2 ]] || fail "usage: bench.sh BINARY_A BINARY_B"
bins=("$1" "$2")
runs=${BENCH_RUNS:-3}
ops=${BENCH_OPS:-20000}

start_memcached MC
start_tls_terminator ST "$MC_NOTLS_PORT"

# run_load PORT: one verified pipeline run; prints MB/s.
run_load() {
	local out
	out=$(mcload --port "$1" --timeout 120 pipeline --ops "$ops" --conns 4 --depth 8 \
		--max-size 100k --set-ratio 0.5 2>&1) || fail "mcload pipeline through port $1" "$out"
	awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
		END { printf "%.0f\n", (v["bytes_out"] + v["bytes_in"]) / v["seconds"] / 1e6 }' <<<"$out"
}

direct=$(run_load "$MC_NOTLS_PORT")
echo "# plaintext, straight to memcached: $direct MB/s"

declare -A best=()
for ((r = 1; r <= runs; r++)); do
	for i in 0 1; do
		MEMTUNNEL=${bins[$i]}
		start_memtunnel MT$i --servers "localhost:$ST_PORT" --ca "$PKI/ca.crt" \
			--listen 127.0.0.1:0 --log-level debug
		mbs=$(run_load "$(eval echo "\$MT${i}_PORT")")
		cipher=$(grep -m1 -o 'tls=[^ ]* resumed=[^ ]* cipher=[^ ]*' "$T/MT$i.log" || echo "cipher=?")
		echo "# run $r ${bins[$i]}: $mbs MB/s ($cipher)"
		stop_memtunnel MT$i
		((mbs > ${best[$i]:-0})) && best[$i]=$mbs
	done
done
for i in 0 1; do
	ok "${bins[$i]}: best of $runs: ${best[$i]} MB/s"
done
ratio=$(awk -v a="${best[0]}" -v b="${best[1]}" 'BEGIN { printf "%.1f", (a > 0 ? b / a : 0) }')
ok "B/A throughput ratio: $ratio"
