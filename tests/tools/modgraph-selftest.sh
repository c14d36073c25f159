#!/usr/bin/env bash
# modgraph.sh must see a cycle through a module's second file (a_io.c
# belongs to a) and pass a graph without one.  Tiny objects made here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/modgraph.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cc=${CC:-cc}

obj() {		# obj NAME 'C source'
	printf '%s\n' "$2" >"$dir/$1.c"
	"$cc" -c -o "$dir/$1.o" "$dir/$1.c"
}
obj a 'void a_f(void); void a_f(void) {}'
obj a_io 'void b_f(void); void a_io_f(void); void a_io_f(void) { b_f(); }'
obj b 'void a_f(void); void b_f(void); void b_f(void) { a_f(); }'
obj c 'void b_f(void); void c_f(void); void c_f(void) { b_f(); }'

if out=$("$here/modgraph.sh" "$dir"/a.o "$dir"/a_io.o "$dir"/b.o "$dir"/c.o); then
	echo "modgraph-selftest: a <-> b through a_io.c passed as acyclic:" >&2
	echo "$out" >&2
	exit 1
fi
grep -q '^cycle: a -> b -> a$\|^cycle: b -> a -> b$' <<<"$out" || {
	echo "modgraph-selftest: the cycle is not named:" >&2
	echo "$out" >&2
	exit 1
}
out=$("$here/modgraph.sh" "$dir"/a.o "$dir"/b.o "$dir"/c.o) || {
	echo "modgraph-selftest: a graph without a cycle failed:" >&2
	echo "$out" >&2
	exit 1
}
[[ $out == $'b -> a\nc -> b\nno cycle' ]] || {
	echo "modgraph-selftest: unexpected graph:" >&2
	echo "$out" >&2
	exit 1
}
echo "modgraph-selftest: passed"
