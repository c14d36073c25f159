#!/usr/bin/env bash
# Print the module graph of memtunnel's objects and fail on a call cycle.
#
#   tests/tools/modgraph.sh [OBJDIR | OBJECT...]   (default build/default/src)
#
# A module is X.c plus any X_*.c (check.c, check_link.c and check_print.c
# are one module).  A reference from module A to a function or object that
# module B defines is an edge A -> B, read with nm from the object files.
# One line per edge (`A -> B`, sorted), then either `no cycle` (exit 0) or
# each cycle found, one per line (exit 1).
set -euo pipefail

shopt -s nullglob
if [[ $# -eq 1 && -d $1 || $# -eq 0 ]]; then
	dir=${1:-build/default/src}
	objs=("$dir"/*.o)
else
	objs=("$@")
fi
if [[ ${#objs[@]} -eq 0 ]]; then
	echo "modgraph.sh: no object files (${dir:-none given}): run make first" >&2
	exit 2
fi

# Module names: a file's stem, cut at its first underscore when the part
# before it is itself a file (conn_io.o belongs to conn, tlsconn.o does not
# belong to tls).
declare -A stem=()
for o in "${objs[@]}"; do
	s=$(basename "$o" .o)
	stem[$s]=1
done
module_of() {
	local s=$1 head=${1%%_*}
	if [[ $head != "$s" && -n ${stem[$head]:-} ]]; then
		echo "$head"
	else
		echo "$s"
	fi
}

{
	for o in "${objs[@]}"; do
		m=$(module_of "$(basename "$o" .o)")
		nm --defined-only -g "$o" | awk -v m="$m" 'NF == 3 { print "D", m, $3 }'
		nm --undefined-only -g "$o" | awk -v m="$m" '{ print "U", m, $NF }'
	done
} | awk '
	$1 == "D" { def[$3] = $2; next }
	{ use[NR] = $2 " " $3 }
	END {
		for (i in use) {
			split(use[i], f, " ")
			if ((f[2] in def) && def[f[2]] != f[1])
				edge[f[1] " -> " def[f[2]]] = 1
		}
		for (e in edge) print e
	}' | sort -u >"${TMPDIR:-/tmp}/modgraph.$$"
trap 'rm -f "${TMPDIR:-/tmp}/modgraph.$$"' EXIT
cat "${TMPDIR:-/tmp}/modgraph.$$"

# Cycles: depth-first search over the edges; a back edge closes a cycle,
# printed as the path around it.
awk '
	{
		adj[$1] = adj[$1] " " $3
		if (!($1 in node)) { node[$1] = 1; order[++nodes] = $1 }
		if (!($3 in node)) { node[$3] = 1; order[++nodes] = $3 }
	}
	function visit(n,    list, k, i, j, path) {
		state[n] = 1; stack[++depth] = n
		k = split(adj[n], list, " ")
		for (i = 1; i <= k; i++) {
			if (state[list[i]] == 1) {
				path = ""
				for (j = 1; j <= depth; j++)
					if (stack[j] == list[i] || path != "")
						path = path stack[j] " -> "
				print "cycle: " path list[i]
				found = 1
			} else if (state[list[i]] == 0)
				visit(list[i])
		}
		depth--; state[n] = 2
	}
	END {
		for (i = 1; i <= nodes; i++)
			if (state[order[i]] == 0)
				visit(order[i])
		if (!found) print "no cycle"
		exit found
	}' "${TMPDIR:-/tmp}/modgraph.$$"
