#!/usr/bin/env bash
# Run the long tests: every tests/long/*.sh but this one (today: soak.sh),
# or those named as arguments (a path or a name: `soak`).
#
#   tests/long/run.sh [-v] [TEST...]
#
# Each test runs under `timeout` (LONG_TIMEOUT seconds, default 600) with
# its output kept in a log, shown when it fails (always with -v). The
# tests take the same variables as the integration scenarios (MEMTUNNEL,
# MCLOAD, MEMTUNNEL_TEST_PKI) and their own (SOAK_* in soak.sh). One line
# per test, then `N passed, N failed`; non-zero exit when any failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
limit=${LONG_TIMEOUT:-600}
verbose=0
if [[ ${1:-} == -v ]]; then
	verbose=1
	shift
fi

tests=()
if [[ $# -eq 0 ]]; then
	for t in "$here"/*.sh; do
		[[ ${t##*/} == run.sh ]] || tests+=("$t")
	done
else
	for a in "$@"; do
		if [[ -f $a ]]; then
			tests+=("$a")
		elif [[ -f $here/$a.sh ]]; then
			tests+=("$here/$a.sh")
		elif [[ -f $here/$a ]]; then
			tests+=("$here/$a")
		else
			echo "run.sh: no long test $a" >&2
			exit 64
		fi
	done
fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/memtunnel-long.XXXXXX")
trap 'rm -rf "$logs"' EXIT
export MEMTUNNEL_TEST_PKI=${MEMTUNNEL_TEST_PKI:-$logs/pki}
"$here/../pki.sh" "$MEMTUNNEL_TEST_PKI"

passed=0
failed=0
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	log=$logs/$name.log
	start=$EPOCHREALTIME
	status=0
	timeout -k 5 "$limit" bash "$t" >"$log" 2>&1 </dev/null || status=$?
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	if [[ $status -eq 0 ]]; then
		passed=$((passed + 1))
		printf 'PASS %-22s %6ss\n' "$name" "$secs"
		if [[ $verbose -eq 1 ]]; then
			sed 's/^/    /' "$log"
		else
			# The numbers are the point of a long test: always show them.
			grep '^#' "$log" | sed 's/^/    /'
		fi
	else
		failed=$((failed + 1))
		why="exit $status"
		[[ $status -ne 124 ]] || why="timed out after ${limit}s"
		printf 'FAIL %-22s %6ss  (%s)\n' "$name" "$secs" "$why"
		sed 's/^/    /' "$log"
	fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
