#!/usr/bin/env bash
# Build a static memtunnel: wolfSSL (and, when the system has no static
# libuv, libuv too) from the source packages of the running distribution,
# linked statically; glibc stays dynamic.
#
#   buildpack/build-static.sh [--out FILE] [--cache DIR] [--work DIR]
#                             [--key-out FILE [--key-only]]
#   buildpack/build-static.sh --make-mirror DIR
#   buildpack/build-static.sh --print-sources
#
# Used by `make static` (build/static/memtunnel), by bin/compile and by
# bin/build; all get the same binary for the same inputs.
#
# The steps, each in a file of its own under buildpack/lib/:
#   source.sh   the source packages, fetched and verified by apt with a
#               private configuration: signed indexes, Valid-Until, the
#               newest wolfssl, checksums (the chain of trust is told there)
#   mirror.sh   offline builds from a verified copy of the archive
#               (MEMTUNNEL_SOURCE_MIRROR), and --make-mirror
#   libs.sh     wolfSSL with the CPU's AES instructions, and libuv: patched,
#               built, checked and cached
# then memtunnel itself, through the Makefile with the development build's
# flags (buildpack/static.mk names the differences), checked before anything
# is installed or cached.
#
# Caching. The result is stored in the cache directory under a key made of
# the source packages (the .dsc checksums), the static libuv used, the
# compiler, the release and architecture, the build's own files (these
# scripts and the makefiles) and memtunnel's sources; a build whose key is
# cached copies the binary and compiles nothing. The wolfSSL (and libuv)
# builds are cached under their own keys. Cache entries are written only
# after the binary passed its checks. Each build works in a scratch
# directory of its own under --work: builds sharing --work or --cache may
# run at the same time.
#
# --key-out FILE writes the key and what it is made of to FILE, one
# "NAME VALUE" line each (key, memtunnel, os, arch, wolfssl, libuv, source:
# the hash of memtunnel's sources, build: of the build's own files), once
# the sources are resolved; with --key-only the script stops there, having
# built nothing. bin/build keys its layer with it.
#
# Environment:
#   MEMTUNNEL_SOURCE_MIRROR=DIR   source packages from DIR, a mirror written
#                                 by --make-mirror (lib/mirror.sh)
#   MEMTUNNEL_ALLOW_EXPIRED_INDEX=1
#                                 accept signed indexes past their
#                                 Valid-Until (logged on every build)
#   MEMTUNNEL_TEST_NOW=SECONDS    tests only: the time, in seconds since
#                                 the epoch, that Valid-Until is checked
#                                 against (apt's own check keeps the clock)
#   MEMTUNNEL_TEST_STOP=patches   tests only: stop once memtunnel's own
#                                 wolfSSL patches are chosen (a cold
#                                 cache), building nothing
#   MEMTUNNEL_LIBUV=auto|system|source
#                                 auto (default): the system's libuv_a.a
#                                 (libuv1-dev) when present, else built
#                                 from the libuv1 source package
#   MEMTUNNEL_BUILD_JOBS=N        parallel make jobs (default: CPU count)
#   MEMTUNNEL_OS_RELEASE=FILE     read the release from FILE instead of
#                                 /etc/os-release (with APT_CONFIG naming
#                                 other sources, --print-sources then shows
#                                 what another system's files give)
#
# --print-sources prints the deb-src list derived from the system's sources
# and exits.
set -euo pipefail
shopt -s nullglob

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
script=$root/buildpack/build-static.sh
libdir=$root/buildpack/lib
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$libdir/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/source.sh
. "$libdir/source.sh"
# shellcheck source-path=SCRIPTDIR source=lib/mirror.sh
. "$libdir/mirror.sh"
# shellcheck source-path=SCRIPTDIR source=lib/libs.sh
. "$libdir/libs.sh"

out=$root/build/static/memtunnel
cache=$root/build/static/cache
work=$root/build/static/work
mirror_out=
print_sources=0
key_out=
key_only=0

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$script"
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--out) out=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	--work) work=$2; shift 2 ;;
	--make-mirror) mirror_out=$2; shift 2 ;;
	--print-sources) print_sources=1; shift ;;
	--key-out) key_out=$2; shift 2 ;;
	--key-only) key_only=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "build-static.sh: unknown argument: $1 (see --help)" >&2; exit 64 ;;
	esac
done

libuv_mode=${MEMTUNNEL_LIBUV:-auto}
case $libuv_mode in
auto | system | source) ;;
*) die "MEMTUNNEL_LIBUV must be auto, system or source, not '$libuv_mode'" ;;
esac
mirror=${MEMTUNNEL_SOURCE_MIRROR:-}
allow_expired=${MEMTUNNEL_ALLOW_EXPIRED_INDEX:-0}
[[ $allow_expired == [01] ]] || die "MEMTUNNEL_ALLOW_EXPIRED_INDEX must be 0 or 1, not '$allow_expired'"
now=${MEMTUNNEL_TEST_NOW:-$(date +%s)}
[[ $now =~ ^[0-9]+$ ]] || die "MEMTUNNEL_TEST_NOW must be seconds since the epoch, not '$now'"
jobs=${MEMTUNNEL_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "MEMTUNNEL_BUILD_JOBS must be a positive number, not '$jobs'"
if [[ $key_only -eq 1 && -z $key_out ]]; then
	die "--key-only needs --key-out FILE"
fi
if [[ -n $mirror && -n $mirror_out ]]; then
	die "--make-mirror reads the network archive; unset MEMTUNNEL_SOURCE_MIRROR"
fi

# ---------------------------------------------------------------- tools

# The packages the build needs; all of them are in Heroku's build images.
need_pkgs=()
need() { # COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2")
}
need gcc gcc
need make make
need autoreconf autoconf
need aclocal automake
need libtoolize libtool
need dpkg-source dpkg-dev
need patch patch
need apt-get apt
need xz xz-utils
need strip binutils
need readelf binutils
need objdump binutils
need sha256sum coreutils
[[ -e /usr/include/stdio.h ]] || need_pkgs+=(libc6-dev)
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
	mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
	if [[ $(id -u) -ne 0 ]]; then
		die "missing build tools; install them with:" \
			"  sudo apt-get install -y --no-install-recommends ${need_pkgs[*]}"
	fi
	step "Installing build tools: ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# ---------------------------------------------------------------- release

os_release=${MEMTUNNEL_OS_RELEASE:-/etc/os-release}
[[ -r $os_release ]] || die "$os_release is missing: cannot tell which release to take the sources from"
IFS=$'\t' read -r os_id os_version codename os_name < <(
	# shellcheck source=/dev/null
	. "$os_release"
	printf '%s\t%s\t%s\t%s\n' "${ID:-linux}" "${VERSION_ID:-}" \
		"${VERSION_CODENAME:-${UBUNTU_CODENAME:-}}" "${PRETTY_NAME:-${ID:-linux}}"
)
[[ -n $codename ]] || die "$os_release has no VERSION_CODENAME: cannot tell which suites to use"
arch=$(uname -m)
cc_id="$(gcc -dumpmachine) gcc $(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)"
libs_init

# ---------------------------------------------------------------- sources

mkdir -p "$cache" "$work"
cache=$(cd "$cache" && pwd)
work=$(cd "$work" && pwd)
# Each build has its own scratch directory and removes only that one:
# builds sharing --work or --cache may run at the same time. (A failed
# build's files are kept for a look, and said so.)
scratch=$(mktemp -d "$work/build.XXXXXX")
keep_scratch=0
temps=() # this build's temporary entries in the cache
cleanup() {
	local status=$?
	if [[ $status -ne 0 && $keep_scratch -eq 1 ]]; then
		warn "build files kept in $scratch"
	else
		rm -rf "$scratch"
	fi
	[[ ${#temps[@]} -eq 0 ]] || rm -rf "${temps[@]}"
	rm -f "$out.tmp.$$" ${key_out:+"$key_out.tmp.$$"}
	exit "$status"
}
trap cleanup EXIT

source_init
source_list
if [[ $print_sources -eq 1 && -z $mirror ]]; then
	cat "$src_list"
	exit 0
fi
source_update

read -r _ wolf_ver wolf_dsc_sha wolf_dsc_uri < <(source_resolve wolfssl) || true
[[ -n ${wolf_dsc_sha:-} && ${#wolf_dsc_sha} -eq 64 ]] ||
	die "apt did not give a SHA-256 for the wolfssl .dsc"
detail "wolfssl $wolf_ver (${wolf_dsc_uri%/pool/*})"
source_check_newest wolfssl "$wolf_ver"
libs_pick_libuv

if [[ -n $mirror_out ]]; then
	step "Copying the source packages to $mirror_out"
	mirror_pkgs=("wolfssl=$wolf_ver")
	[[ $libuv_mode == system ]] || mirror_pkgs+=("libuv1=$uv_ver")
	mirror_make "$mirror_out" "${mirror_pkgs[@]}"
	exit 0
fi

# ---------------------------------------------------------------- keys

version=$(sed -n 's/^VERSION[[:space:]]*:\{0,1\}=[[:space:]]*//p' "$root/Makefile" | head -n 1)
[[ -n $version ]] || die "no VERSION := line in $root/Makefile"
srcs=("$root"/src/*.c)
[[ ${#srcs[@]} -gt 0 ]] || die "no sources in $root/src"

# hashes KIND FILE...: a "KIND PATH SHA-256" line per file, PATH relative to
# the repository.
hashes() {
	local kind=$1 h f
	shift
	sha256sum -- "$@" | while read -r h f; do
		echo "$kind ${f#"$root"/} $h"
	done
}

libs_keys
manifest=$scratch/manifest
{
	echo "memtunnel $version"
	echo "os $os_id $os_version $arch"
	echo "cc $cc_id"
	echo "asm $asm"
	echo "wolfssl $wolf_ver $wolf_dsc_sha"
	echo "wolfssl-patches $wolf_patch_sha"
	echo "libuv $uv_id"
	# The build's own files: these scripts, and the makefiles that give
	# memtunnel its flags (the Makefile and what it includes).
	# (One sha256sum for all: a process per file made the key take seconds
	# on a busy machine, and a reused build must take less than five.)
	hashes build "$script" "$libdir"/*.sh "$root"/Makefile "$root"/buildpack/static.mk "$root"/tests/bench/bench.mk
	hashes src "$root"/src/*.c "$root"/src/*.h
} >"$manifest"
key=$(sha <"$manifest")
cached=$cache/memtunnel-$key

if [[ -n $key_out ]]; then
	{
		echo "key $key"
		echo "memtunnel $version"
		echo "os $os_id $os_version"
		echo "arch $arch"
		echo "wolfssl $wolf_ver"
		echo "libuv $libuv_mode $uv_ver"
		echo "source $(grep '^src ' "$manifest" | sha)"
		echo "build $(grep '^build ' "$manifest" | sha)"
	} >"$key_out.tmp.$$"
	mv -f "$key_out.tmp.$$" "$key_out"
	[[ $key_only -eq 0 ]] || exit 0
fi

# install_binary FROM: copy to --out without ever leaving a partial file.
install_binary() {
	mkdir -p "$(dirname "$out")"
	cp "$1" "$out.tmp.$$"
	chmod 0755 "$out.tmp.$$"
	mv -f "$out.tmp.$$" "$out"
}

if [[ -x $cached && -f $cached.manifest ]] && cmp -s "$cached.manifest" "$manifest" &&
	"$cached" --version >/dev/null 2>&1; then
	step "Reusing the cached build ${key:0:12} (same sources, same toolchain)"
	install_binary "$cached"
	detail "$("$out" --version)"
	exit 0
fi

# ---------------------------------------------------------------- build

keep_scratch=1
libs_build

step "Compiling memtunnel $version (wolfSSL and libuv static, glibc dynamic)"
# The Makefile's own rules and flags (buildpack/static.mk: STATIC_WOLFSSL
# and what it changes), objects in this build's scratch directory. The make
# is a fresh one: nothing of an outer make's command line, flags or jobs
# (`make static V=1 SANITIZE=...`) reaches it, nor CC from the environment,
# so `make static` and bin/compile build the same binary. It runs from the
# repository root with relative names, so the binary does not depend on
# where the buildpack was checked out (__FILE__ in assert()).
bin=$scratch/memtunnel
env -u MAKEFLAGS -u MFLAGS -u GNUMAKEFLAGS -u MAKEFILES -u MAKELEVEL \
	make -C "$root" --no-print-directory -j"$jobs" V=1 CC=gcc SANITIZE= \
	STATIC_WOLFSSL="$wolf_prefix" STATIC_LIBUV_INC="$uv_inc" STATIC_LIBUV_LIB="$uv_lib" \
	BUILD="$scratch/obj" PROG="$bin" "$bin" >"$scratch/compile.log" 2>&1 || {
	show_log "$scratch/compile.log"
	die "compiling memtunnel failed (see above)"
}
strip --strip-all "$bin"

# Checks before anything is installed or cached.
needed=$(readelf -d "$bin" | awk '/\(NEEDED\)/ { gsub(/[][]/, "", $5); print $5 }')
if grep -Eq 'wolfssl|libuv' <<<"$needed"; then
	die "the binary still loads a shared wolfSSL or libuv: $(paste -sd' ' <<<"$needed")"
fi
vline=$("$bin" --version) || die "the built binary does not run"
[[ $vline == "memtunnel $version "* ]] || die "unexpected --version output: $vline"
# (grep -c reads everything: grep -q would close the pipe early, and
# pipefail would count objdump's SIGPIPE as a failure.)
case $asm in
aesni) insn=aesenc ;;
armasm) insn=aese ;;
*) insn= ;;
esac
if [[ -n $insn ]]; then
	n=$(objdump -d --no-show-raw-insn "$bin" | grep -cw "$insn") || true
	[[ ${n:-0} -gt 0 ]] || die "the binary has no $insn instructions: the AES assembly is missing"
fi

detail "$vline"
detail "shared libraries: $(paste -sd' ' <<<"$needed")"
detail "size: $(stat -c %s "$bin") bytes (stripped)"
case $asm in
aesni)
	if grep -qw aes /proc/cpuinfo; then
		[[ $vline == *"AES-NI"* ]] || die "this CPU has AES-NI but the binary does not use it: $vline"
		detail "AES-NI: compiled in, and this CPU has it"
	else
		detail "AES-NI: compiled in (this CPU lacks it; software fallback)"
	fi
	;;
armasm) detail "ARMv8 crypto extensions: compiled in" ;;
esac

# (Renamed into place, manifest first; the temporary copies are dot-named,
# out of reach of another build's pruning.)
tmp_bin=$(mktemp "$cache/.memtunnel-$key.XXXXXX")
tmp_manifest=$(mktemp "$cache/.memtunnel-$key.manifest.XXXXXX")
temps+=("$tmp_bin" "$tmp_manifest")
cp "$bin" "$tmp_bin"
cp "$manifest" "$tmp_manifest"
chmod 0755 "$tmp_bin"
chmod 0644 "$tmp_manifest"
for f in "$cache"/memtunnel-*; do
	[[ $f == "$cached" || $f == "$cached.manifest" ]] || rm -f "$f"
done
mv -f "$tmp_manifest" "$cached.manifest"
mv -f "$tmp_bin" "$cached"
install_binary "$bin"
keep_scratch=0
step "Built $out (cached as ${key:0:12})"
