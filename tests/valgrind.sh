#!/usr/bin/env bash
# Integration scenarios with every memtunnel process under valgrind
# memcheck (tests/valgrind-memtunnel), then a check of each process's
# report: it must have exited normally (its leak check ran), with no
# error (invalid access, uninitialised use, bad free) and nothing
# definitely or indirectly lost.
#
#   tests/valgrind.sh [SCENARIO...]      default: 10 17 20 60 72 73 87 96
#
# Uses $MEMTUNNEL (default bin/memtunnel) as the binary under test, and
# $MCLOAD and $MEMTUNNEL_TEST_PKI like tests/integration/run.sh. The
# reports are kept in build/valgrind/SCENARIO/. Prints one line per
# process, one per scenario, then `N passed, N failed`; exits non-zero on
# any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target=$(realpath "${MEMTUNNEL:-$root/bin/memtunnel}")
[[ -x $target ]] || {
	echo "valgrind.sh: $target is missing (run make)" >&2
	exit 1
}
command -v valgrind >/dev/null || {
	echo "valgrind.sh: valgrind is not installed" >&2
	exit 1
}
# The output whole first: `ldd | grep -q` fails under pipefail when grep
# exits before ldd is done (SIGPIPE).
if [[ $(ldd "$target" 2>/dev/null) == *libasan* ]]; then
	echo "valgrind.sh: $target is built with AddressSanitizer; valgrind needs the plain build" >&2
	exit 1
fi
scenarios=("$@")
# 71-child-env would see valgrind's own variables (LD_PRELOAD, ...) in the
# child's environment; 72 and 73 cover wrapper mode instead. 87 adds
# clients that abort mid-transfer, 96 client certificates.
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(10 17 20 60 72 73 87 96)

logs=$root/build/valgrind
rm -rf "$logs"
mkdir -p "$logs"
# The wrapper's defaults, for scenarios that run memtunnel with an empty
# environment: they must name the same binary and directory.
if [[ $target != "$(realpath "$root/bin/memtunnel")" ]]; then
	echo "# note: scenarios that clear the environment run $root/bin/memtunnel, not $target"
fi
export VALGRIND_MEMTUNNEL_TARGET=$target VALGRIND_MEMTUNNEL_LOGS=$logs
export MEMTUNNEL=$here/valgrind-memtunnel
# memcheck makes memtunnel 20-50 times slower.
export SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-600}

# check_report LOG: prints one line about the process; fails on a problem.
check_report() {
	local log=$1 cmd errors definite indirect
	cmd=$(sed -n 's/^==[0-9]*== Command: //p' "$log" | cut -c1-100)
	errors=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tr -d ,)
	if grep -q 'All heap blocks were freed' "$log"; then
		definite=0 indirect=0
	else
		definite=$(sed -n 's/^==[0-9]*==    definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d ,)
		indirect=$(sed -n 's/^==[0-9]*==    indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d ,)
	fi
	if [[ -z $errors ]]; then
		# No summary: the process was killed, or it exec'd the command (a
		# disabled or nested memtunnel), which valgrind does not follow.
		echo "    ${log##*/}: FAIL no report: it did not exit normally (killed, or exec'd): $cmd"
		sed -n '1,40p' "$log" | sed 's/^/      /'
		return 1
	fi
	if [[ $errors != 0 || ${definite:-0} != 0 || ${indirect:-0} != 0 ]]; then
		echo "    ${log##*/}: FAIL $errors errors, ${definite:-?} bytes definitely and ${indirect:-?} indirectly lost: $cmd"
		sed -n '/== Command:/,$p' "$log" | head -n 120 | sed 's/^/      /'
		return 1
	fi
	echo "    ${log##*/}: ok, 0 errors, 0 bytes lost: $cmd"
}

passed=0
failed=0
for s in "${scenarios[@]}"; do
	status=0
	out=$("$here/integration/run.sh" "$s" 2>&1) || status=$?
	name=$(sed -n 's/^\(PASS\|FAIL\) \([^ ]*\) .*/\2/p' <<<"$out" | head -n1)
	name=${name:-$s}
	mkdir -p "$logs/$name"
	reports=("$logs"/memtunnel.*.log)
	[[ ${#reports[@]} -eq 0 ]] || mv "${reports[@]}" "$logs/$name/"
	reports=("$logs/$name"/memtunnel.*.log)
	ok=1
	[[ $status -eq 0 ]] || ok=0
	nreports=0
	for r in "${reports[@]}"; do
		[[ -e $r ]] || continue
		nreports=$((nreports + 1))
		check_report "$r" || ok=0
	done
	if [[ $nreports -eq 0 ]]; then
		echo "    no valgrind report: memtunnel did not run under valgrind"
		ok=0
	fi
	if [[ $ok -eq 1 ]]; then
		passed=$((passed + 1))
		echo "PASS $name ($nreports processes under memcheck)"
	else
		failed=$((failed + 1))
		echo "FAIL $name ($nreports processes under memcheck)"
		[[ $status -eq 0 ]] || printf '%s\n' "$out" | sed 's/^/    /'
	fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
