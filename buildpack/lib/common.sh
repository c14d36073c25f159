# shellcheck shell=bash
# The static build's shared helpers: the buildpack's output style and a
# checksum. Sourced first by buildpack/build-static.sh; it defines functions
# only. The files of buildpack/lib/ run under `set -euo pipefail` and
# `shopt -s nullglob`, which build-static.sh sets.
#
#   step TEXT        a "-----> " step line on stdout
#   detail LINE...   indented detail lines on stdout
#   die LINE...      " !     " lines on stderr, then exit 1. Inside $(...)
#                    or <(...) that ends the subshell only: its caller checks
#                    the status or what was printed.
#   show_log FILE    the end of a tool's log, indented, on stderr
#   sha              the SHA-256 of stdin, in hex

step() { printf -- '-----> %s\n' "$*"; }
detail() { printf '       %s\n' "$@"; }
die() {
	printf ' !     %s\n' "$1" >&2
	shift
	local line
	for line in "$@"; do
		printf ' !     %s\n' "$line" >&2
	done
	exit 1
}

show_log() {
	[[ -s $1 ]] || return 0
	printf ' !     --- last lines of %s\n' "$1" >&2
	tail -n 40 "$1" | sed 's/^/ !     /' >&2
}

sha() { sha256sum | cut -c1-64; }
