# shellcheck shell=bash
# The static build's shared helpers: the buildpack's output style, a
# checksum and the build settings. Sourced first by buildpack/build-static.sh,
# bin/compile and bin/build; it defines functions only. The files of
# buildpack/lib/ run under `set -euo pipefail` and `shopt -s nullglob`,
# which build-static.sh sets.
#
# Two output styles, chosen by MEMTUNNEL_LOG_STYLE:
#   classic (default)  Heroku's classic buildpacks: "-----> " steps,
#                      details indented by 7 spaces, " !     " errors
#   cnb                Heroku's Cloud Native Buildpacks: "- " steps,
#                      "  - " details, "! " errors (bin/build sets it)
#
#   step TEXT        a step line on stdout
#   detail LINE...   detail lines on stdout
#   warn LINE...     error or warning lines on stderr
#   die LINE...      warn, then exit 1. Inside $(...) or <(...) that ends
#                    the subshell only: its caller checks the status or what
#                    was printed.
#   show_log FILE    the end of a tool's log, on stderr
#   sha              the SHA-256 of stdin, in hex
#   load_build_settings DIR
#                    export the build settings (MEMTUNNEL_SOURCE_MIRROR,
#                    MEMTUNNEL_BUILD_JOBS, MEMTUNNEL_ALLOW_EXPIRED_INDEX) that
#                    DIR holds as files named after them, one detail line
#                    each: Heroku's ENV_DIR, a CNB platform's env/

style_prefix() { # step|detail|error
	case ${MEMTUNNEL_LOG_STYLE:-classic}:$1 in
	cnb:step) printf -- '- ' ;;
	cnb:detail) printf '  - ' ;;
	cnb:error) printf '! ' ;;
	*:step) printf -- '-----> ' ;;
	*:detail) printf '       ' ;;
	*:error) printf ' !     ' ;;
	esac
}

step() { printf -- '%s%s\n' "$(style_prefix step)" "$*"; }
detail() {
	local p line
	p=$(style_prefix detail)
	for line in "$@"; do
		printf '%s%s\n' "$p" "$line"
	done
}
warn() {
	local p line
	p=$(style_prefix error)
	for line in "$@"; do
		printf '%s%s\n' "$p" "$line"
	done >&2
}
die() {
	warn "$@"
	exit 1
}

show_log() {
	[[ -s $1 ]] || return 0
	warn "--- last lines of $1"
	local line lines=()
	mapfile -t lines < <(tail -n 40 "$1")
	[[ ${#lines[@]} -eq 0 ]] || warn "${lines[@]}"
}

sha() { sha256sum | cut -c1-64; }

load_build_settings() {
	local var
	[[ -n $1 && -d $1 ]] || return 0
	for var in MEMTUNNEL_SOURCE_MIRROR MEMTUNNEL_BUILD_JOBS MEMTUNNEL_ALLOW_EXPIRED_INDEX; do
		if [[ -f $1/$var ]]; then
			export "$var=$(cat "$1/$var")"
			detail "using config var $var"
		fi
	done
}
