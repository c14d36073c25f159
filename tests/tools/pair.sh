#!/usr/bin/env bash
# pair.sh DIR NAME1 CMD1 NAME2 CMD2: run two shell commands side by side,
# each one's output going to DIR/NAME.out, then print both whole, each under
# a "# NAME" line, in the order given, so that their reports do not
# interleave.  Fails when either command failed.
#
# The checks use it to keep both cores busy with parts that would each
# keep one (a single-threaded test runner, a build, a scenario lane).
set -uo pipefail
[[ $# -eq 5 ]] || { echo "usage: pair.sh DIR NAME1 CMD1 NAME2 CMD2" >&2; exit 64; }
dir=$1
mkdir -p "$dir" || exit 1
bash -c "$3" >"$dir/$2.out" 2>&1 &
first=$!
bash -c "$5" >"$dir/$4.out" 2>&1 &
second=$!
r1=0 r2=0
wait "$first" || r1=$?
wait "$second" || r2=$?
echo "# $2"
cat "$dir/$2.out"
echo "# $4"
cat "$dir/$4.out"
[[ $r1 -eq 0 ]] || echo "# $2 failed (exit $r1)"
[[ $r2 -eq 0 ]] || echo "# $4 failed (exit $r2)"
[[ $r1 -eq 0 && $r2 -eq 0 ]]
