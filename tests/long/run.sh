#!/usr/bin/env bash
# Run the long tests: every tests/long/*.sh but this one (today: soak.sh
# and reuse.sh), or those named as arguments (a path or a name: `soak`),
# with the integration scenarios' runner (one line per test, `N passed, N
# failed`), in verbose mode since the numbers are the point of a long test.
#
#   tests/long/run.sh [TEST...]
#
# LONG_TIMEOUT bounds each test (seconds, default 600). The tests take the
# same variables as the integration scenarios (MEMTUNNEL, MCLOAD,
# MEMTUNNEL_TEST_PKI) and their own (SOAK_* in soak.sh, REUSE_* in
# reuse.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tests=()
if [[ $# -eq 0 ]]; then
	for t in "$here"/*.sh; do
		[[ ${t##*/} == run.sh ]] || tests+=("$t")
	done
fi
for a in "$@"; do
	if [[ -f $a ]]; then
		tests+=("$a")
	elif [[ -f $here/${a%.sh}.sh ]]; then
		tests+=("$here/${a%.sh}.sh")
	else
		echo "run.sh: no long test $a" >&2
		exit 64
	fi
done
SCENARIO_TIMEOUT=${LONG_TIMEOUT:-600} exec "$here/../integration/run.sh" -v "${tests[@]}"
