#!/usr/bin/env bash
# Run the integration scenarios: every tests/integration/[0-9][0-9]-*.sh, or
# the ones named as arguments (a path, a file name, or its number: `20`).
#
#   tests/integration/run.sh [-v] [SCENARIO...]
#
# MEMTUNNEL (default bin/memtunnel), MCLOAD (default build/default/tools/
# mcload, built here with `make tools` when MCLOAD is not set) and
# MEMTUNNEL_TEST_PKI (default: a fresh PKI for this run) say what is tested.
#
# Each scenario runs under `timeout` (SCENARIO_TIMEOUT seconds, default 120)
# with its output kept in a log, shown when it fails (always with -v). One
# line per scenario, then the summary line `N passed, N failed`; the exit
# status is non-zero when any scenario failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
limit=${SCENARIO_TIMEOUT:-120}
verbose=0
if [[ ${1:-} == -v ]]; then
	verbose=1
	shift
fi

scenarios=()
if [[ $# -eq 0 ]]; then
	scenarios=("$here"/[0-9][0-9]-*.sh)
else
	for a in "$@"; do
		if [[ -f $a ]]; then
			scenarios+=("$a")
		elif [[ -f $here/$a ]]; then
			scenarios+=("$here/$a")
		else
			matches=("$here/$a"-*.sh)
			if [[ ! -f ${matches[0]} ]]; then
				echo "run.sh: no scenario $a" >&2
				exit 64
			fi
			scenarios+=("${matches[@]}")
		fi
	done
fi

# Run by hand after a plain `make`: build (or refresh) the load tool the
# scenarios use and check the test packages, as `make integration` does
# before it runs this with MCLOAD set.
root=$(cd "$here/../.." && pwd)
if [[ -z ${MCLOAD:-} ]]; then
	make -C "$root" --no-print-directory tools
	"$root/tests/deps.sh" test
fi
if [[ -z ${MEMTUNNEL:-} && ! -x $root/bin/memtunnel ]]; then
	echo "run.sh: $root/bin/memtunnel is missing: run make (or set MEMTUNNEL)" >&2
	exit 1
fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/memtunnel-it.XXXXXX")
trap 'rm -rf "$logs"' EXIT
# One test PKI for the whole run (the caller's, or a fresh one), instead of
# one per scenario.
export MEMTUNNEL_TEST_PKI=${MEMTUNNEL_TEST_PKI:-$logs/pki}
"$here/../pki.sh" "$MEMTUNNEL_TEST_PKI"

# Scenarios that load the machine on purpose (thousands of connections,
# floods) have a line `# heavy` in their header. Two runs at once (the
# two lanes of make check or make sanitize, each with half the scenarios)
# take turns at those, so that neither measures the other's load; every
# other scenario passes beside two busy loops.
heavy_lock=${TMPDIR:-/tmp}/memtunnel-it-heavy.lock

passed=0
failed=0
for s in "${scenarios[@]}"; do
	name=$(basename "$s" .sh)
	log=$logs/$name.log
	turn=()
	! grep -qx '# heavy' "$s" || turn=(flock -o -w 1800 "$heavy_lock")
	start=$EPOCHREALTIME
	status=0
	"${turn[@]}" timeout -k 5 "$limit" bash "$s" >"$log" 2>&1 </dev/null || status=$?
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	if [[ $status -eq 0 ]]; then
		passed=$((passed + 1))
		printf 'PASS %-22s %6ss\n' "$name" "$secs"
		[[ $verbose -eq 0 ]] || sed 's/^/    /' "$log"
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
