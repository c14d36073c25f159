#!/usr/bin/env bash
# 76-pid1: memtunnel as PID 1 of a new pid namespace (unshare --pid --fork
# --mount-proc), as in a container. Its child orphans two grandchildren,
# which the kernel hands to PID 1; once they have exited, none of them may
# be left as a zombie while the child still runs, and memtunnel exits with
# the child's status. The same child under a PID 1 that reaps only its own
# child (a Python control) does leave zombies, which shows the check works.
# Skipped, saying so, only where unshare is not permitted.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2154 # MC_* are set by start_memcached

if ! why=$(unshare --pid --fork --mount-proc true 2>&1); then
	echo "ok 1 - # SKIP unshare --pid --fork --mount-proc is not permitted here: ${why//$'\n'/ }"
	exit 0
fi

start_memcached MC

# orphans.sh DIR: runs in the namespace. Reports its parent, then starts two
# grandchildren that are orphaned at once (their subshell exits), reports
# their parent, lets them exit, waits up to 2 s for them to disappear, and
# reports each one as `gone` or by its state, then every zombie in the
# namespace. Exits 7.
cat >"$T/orphans.sh" <<'EOF'
dir=$1
ppid_of() { sed 's/^.*) . \([0-9]*\) .*$/\1/' "/proc/$1/stat" 2>/dev/null; }
state_of() { sed 's/^.*) \(.\) .*$/\1/' "/proc/$1/stat" 2>/dev/null || echo gone; }
# A grandchild: waits (bounded) for $dir/go, then exits.
grandchild='i=0; while [ ! -e "$1" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done'
echo "parent $PPID"
(sh -c "$grandchild" sh "$dir/go" & echo $! >"$dir/g1")
(sh -c "$grandchild" sh "$dir/go" & echo $! >"$dir/g2")
read -r g1 <"$dir/g1"
read -r g2 <"$dir/g2"
echo "orphans' parents $(ppid_of "$g1") $(ppid_of "$g2")"
: >"$dir/go"
i=0
while [ $i -lt 100 ] && { [ -e "/proc/$g1" ] || [ -e "/proc/$g2" ]; }; do
	sleep 0.02
	i=$((i + 1))
done
echo "orphans $(state_of "$g1") $(state_of "$g2")"
zombies=
for f in /proc/[0-9]*/stat; do
	[ "$(sed 's/^.*) \(.\) .*$/\1/' "$f" 2>/dev/null)" = Z ] && zombies="$zombies ${f#/proc/}"
done
echo "zombies:${zombies:- none}" | sed 's,/stat,,g'
exit 7
EOF

# in_namespace NAME INIT...: run INIT as PID 1 of a new pid namespace with
# orphans.sh as its child (INIT ends with the command to start); output in
# $T/NAME.out, stderr in $T/NAME.log; sets STATUS.
in_namespace() {
	local name=$1
	shift
	mkdir -p "$T/$name.dir"
	STATUS=0
	timeout -k 2 20 unshare --pid --fork --mount-proc "$@" sh "$T/orphans.sh" "$T/$name.dir" \
		>"$T/$name.out" 2>"$T/$name.log" </dev/null || STATUS=$?
}

in_namespace PID1 "$MEMTUNNEL" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" --log-level debug --
assert_eq 7 "$STATUS" "memtunnel as PID 1 exits with its child's status"
assert_eq "parent 1" "$(grep '^parent ' "$T/PID1.out")" "memtunnel is PID 1, the child's parent"
assert_eq "orphans' parents 1 1" "$(grep '^orphans. parents ' "$T/PID1.out")" "the orphaned grandchildren are handed to memtunnel"
assert_eq "orphans gone gone" "$(grep '^orphans ' "$T/PID1.out")" "the exited grandchildren were reaped"
assert_eq "zombies: none" "$(grep '^zombies:' "$T/PID1.out")" "no zombie in the namespace while the child runs"
wait_log "$T/PID1.log" '^memtunnel level=info at=child-exited status=7$' 1
ok "memtunnel logs the child's exit, not the orphans'"
assert_eq 1 "$(count_log "$T/PID1.log" 'at=child-exited ')" "one child-exited line"
assert_eq 0 "$(count_log "$T/PID1.log" 'level=(warn|error)')" "no warn or error line"

# Control: a PID 1 that waits for its own child only leaves the orphans as
# zombies, and the same checks see them.
in_namespace CONTROL "$PY" -c 'import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))'
assert_eq 7 "$STATUS" "control: the Python PID 1 exits with its child's status"
assert_eq "orphans Z Z" "$(grep '^orphans ' "$T/CONTROL.out")" "control: without reaping, the orphans stay zombies"
assert_match "$(grep '^zombies:' "$T/CONTROL.out")" '^zombies: [0-9]+ [0-9]+$' "control: the zombie scan finds them"
