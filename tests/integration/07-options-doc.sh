#!/usr/bin/env bash
# 07-options-doc: the README's Options table and `memtunnel --help` (made
# from the option table, src/config_opts.c) name the same options:
#   - every flag and variable of the README's table is an option of --help,
#     and every option of --help is in the README's table;
#   - every MEMTUNNEL_ variable the README mentions anywhere is in --help;
#   - where the README's table gives a default as a value (`5`), --help
#     gives the same default for that row's first flag or variable.
# No network and no memcached: it reads text, within seconds.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

readme=$ROOT/README.md
[[ -r $readme ]] || fail "README.md is readable" "$readme"

status=$(run_memtunnel "$T/help.out" "$T/help.err" --help)
assert_eq 0 "$status" "--help exits 0"

# The README's table: the rows between "### Options" and the next heading,
# without the header and the rule; "\|" inside a cell is no separator.
# One line per row: flag cell, TAB, variable cell, TAB, default cell.
awk '/^### Options/ { on = 1; next }
	on && /^#/ { exit }
	on && /^\| / && !/^\| flag \|/ && !/^\|---/' "$readme" |
	sed -e 's/\\|/~/g' -e 's/^| //' -e 's/ |$//' -e 's/ | /\t/g' >"$T/rows"

# names FILE: the flags and MEMTUNNEL_ variables in FILE, one a line, sorted.
names() {
	{ grep -oE -- '(^|[^A-Za-z0-9_-])--?[A-Za-z][A-Za-z-]*' "$1" | sed 's/^[^-]*//' || true
	  grep -oE 'MEMTUNNEL_[A-Z0-9_]+' "$1" || true; } | sort -u
}

cut -f1,2 "$T/rows" >"$T/readme-cells"
names "$T/readme-cells" >"$T/readme.names"
# --help: an option's heading is indented by two spaces, its text by eight.
grep -E '^  [^ ]' "$T/help.out" >"$T/help-heads" || true
names "$T/help-heads" >"$T/help.names"

n_readme=$(wc -l <"$T/readme.names")
n_help=$(wc -l <"$T/help.names")
assert_le 30 "$n_readme" "the README's Options table names 30 flags and variables or more (got $n_readme)"
assert_le 30 "$n_help" "--help lists 30 options or more (got $n_help)"

mapfile -t missing < <(comm -23 "$T/readme.names" "$T/help.names")
[[ ${#missing[@]} -eq 0 ]] || fail "every flag and variable of the README's Options table is an option of --help" \
	"missing from --help:" "${missing[@]}"
ok "every flag and variable of the README's Options table is an option of --help"

mapfile -t missing < <(comm -13 "$T/readme.names" "$T/help.names")
[[ ${#missing[@]} -eq 0 ]] || fail "every option of --help is in the README's Options table" \
	"missing from the README's table:" "${missing[@]}"
ok "every option of --help is in the README's Options table"

grep -oE 'MEMTUNNEL_[A-Z0-9_]+' "$readme" | sort -u >"$T/readme.vars"
grep -oE 'MEMTUNNEL_[A-Z0-9_]+' "$T/help.out" | sort -u >"$T/help.vars"
mapfile -t missing < <(comm -23 "$T/readme.vars" "$T/help.vars")
[[ ${#missing[@]} -eq 0 ]] || fail "every MEMTUNNEL_ variable the README mentions is in --help" \
	"missing from --help:" "${missing[@]}"
ok "every MEMTUNNEL_ variable the README mentions ($(wc -l <"$T/readme.vars")) is in --help"

# Each --help entry on one line: heading, TAB, its text.
awk '/^  [^ ]/ { if (head != "") print head "\t" text; head = substr($0, 3); text = ""; next }
	/^        / && head != "" { sub(/^ +/, ""); text = text " " $0; next }
	{ if (head != "") print head "\t" text; head = "" }
	END { if (head != "") print head "\t" text }' "$T/help.out" >"$T/help-entries"

checked=0
while IFS=$'\t' read -r flags vars def; do
	[[ $def =~ ^\`([^\`]+)\` ]] || continue
	want=${BASH_REMATCH[1]}
	first=$(grep -oE -- '--[a-z][a-z-]*' <<<"$flags" | head -n1 || true)
	[[ -n $first ]] || first=$(grep -oE 'MEMTUNNEL_[A-Z0-9_]+' <<<"$vars" | head -n1 || true)
	entry=$(awk -F'\t' -v n="$first" '{ split($1, w, /[ ,]+/); for (i in w) if (w[i] == n) print $2 }' "$T/help-entries")
	[[ -n $entry ]] || fail "--help has an entry for $first" "$(cat "$T/help-entries")"
	[[ $entry == *"default: $want"* ]] ||
		fail "the README's default for $first, $want, is the default --help gives" "--help: $entry"
	checked=$((checked + 1))
done <"$T/rows"
assert_le 10 "$checked" "the README's defaults given as values agree with --help ($checked rows)"
