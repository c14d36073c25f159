#!/usr/bin/env bash
# Build a static memtunnel: wolfSSL (and, when the system has no static
# libuv, libuv too) from the source packages of the running distribution,
# linked statically; glibc stays dynamic.
#
#   buildpack/build-static.sh [--out FILE] [--cache DIR] [--work DIR]
#   buildpack/build-static.sh --make-mirror DIR
#   buildpack/build-static.sh --print-sources
#
# Used by `make static` (build/static/memtunnel) and by bin/compile; both get
# the same binary for the same inputs.
#
# Where the source comes from. apt fetches the source packages with a private
# sources list derived from the system's (each `deb` entry of the running
# release, its -updates and its -security pocket, as `deb-src`) and private
# state and cache directories, so the system's package lists are never
# touched and no root is needed. apt verifies the archive's InRelease
# signature with the keyring the system uses for that archive, the Sources
# index against InRelease, and each downloaded file against Sources;
# dpkg-source then checks the tarballs against the .dsc and applies the
# distribution's patches (security fixes included); then the project's own
# patches to wolfSSL are applied (buildpack/patches/, each explained in its
# header).
#
# apt runs with a private configuration (APT_CONFIG names a file of this
# build's, so neither the host's APT_CONFIG nor /etc/apt/apt.conf{,.d} apply)
# and with insecure, weak and unauthenticated repositories refused outright;
# only the location of the system's sources is read from the host's apt
# configuration. Every signed index must be within its Valid-Until date, and
# the wolfssl built must be the newest that the signed Sources indexes offer
# (an older one, from a stale or trimmed copy of the archive, is refused).
#
# Offline builds: MEMTUNNEL_SOURCE_MIRROR=DIR takes the same source packages
# from DIR, a partial copy of the archive written by --make-mirror: the signed
# InRelease and the Sources indexes of every pocket the system installs from
# (the security pocket included), the source files, plus SHA256SUMS over all
# of it. Every file must be listed in SHA256SUMS and match it; that proves the
# copy whole, not authentic. Authenticity comes from the same chain as online:
# apt verifies each InRelease against the system's keyring, the Sources
# indexes against InRelease and every source file against Sources; Valid-Until
# is honoured too, so a mirror of a pocket that has one (Debian's security
# pocket: a week) must be made again before it expires.
# MEMTUNNEL_ALLOW_EXPIRED_INDEX=1 builds from expired indexes anyway, with a
# warning naming each one on every build.
#
# Caching. The result is stored in the cache directory under a key made of
# the source packages (the .dsc checksums), the static libuv used, the
# compiler, the release and architecture, this script and memtunnel's own
# sources; a build whose key is cached copies the binary and compiles
# nothing. The wolfSSL (and libuv) builds are cached under their own keys.
# Cache entries are written only after the binary passed its checks.
#
# Environment:
#   MEMTUNNEL_SOURCE_MIRROR=DIR   source packages from DIR (see above)
#   MEMTUNNEL_ALLOW_EXPIRED_INDEX=1
#                                 accept signed indexes past their
#                                 Valid-Until (logged on every build)
#   MEMTUNNEL_TEST_NOW=SECONDS    tests only: the time, in seconds since
#                                 the epoch, that Valid-Until is checked
#                                 against (apt's own check keeps the clock)
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

out=$root/build/static/memtunnel
cache=$root/build/static/cache
work=$root/build/static/work
mirror_out=
print_sources=0

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

# show_log FILE: the end of a tool's log, indented, on stderr.
show_log() {
	[[ -s $1 ]] || return 0
	printf ' !     --- last lines of %s\n' "$1" >&2
	tail -n 40 "$1" | sed 's/^/ !     /' >&2
}

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

# Which assembly the CPU family gets. x86-64: AES-NI and the AVX code, both
# chosen at run time by CPUID, so the binary runs on any x86-64 CPU. arm64:
# wolfSSL's ARMv8 code uses the crypto extensions unconditionally, so it is
# enabled only when this CPU has them (every AWS Graviton does).
asm_args=()
case $arch in
x86_64 | amd64)
	asm=aesni
	asm_args=(--enable-aesni --enable-intelasm)
	;;
aarch64 | arm64)
	if grep -qw aes /proc/cpuinfo && grep -qw pmull /proc/cpuinfo && grep -qw sha2 /proc/cpuinfo; then
		asm=armasm
		asm_args=(--enable-armasm)
	else
		asm=none
	fi
	;;
*) asm=none ;;
esac

# Per-connection memory decides what is left out (each idle connection
# holds one wolfSSL session for as long as it lives):
# - no --enable-sessioncerts: it gives every session two fixed arrays of
#   9 x 2 KiB certificates (36 KiB).  memtunnel copies the chain during
#   verification instead, which needs the verify callback on success too:
#   WOLFSSL_ALWAYS_VERIFY_CB, below (tlsconn.c refuses to build without it).
# - no OpenSSL compatibility layer (--enable-opensslall/extra): it keeps a
#   decoded peer certificate and more in every session (4.5 KiB); memtunnel
#   uses wolfSSL's native and wolfCrypt calls only.
# - --enable-aesgcm=small: the GHASH tables of the C code (1 KiB) are not
#   used with AES-NI or ARMv8, whose code is unchanged.
# shellcheck disable=SC2054 # the commas belong to --enable-sp's value
wolfssl_args=(--enable-static --disable-shared
	--enable-tls13 --disable-oldtls --enable-sni --enable-session-ticket --enable-alpn
	--enable-aesgcm=small --enable-chacha --enable-poly1305 --enable-curve25519 --enable-ecc
	--enable-supportedcurves --enable-altcertchains --enable-ip-alt-name
	--enable-sys-ca-certs
	--enable-sp=ec256,rsa2048 --enable-sp-asm
	"${asm_args[@]}"
	--enable-reproducible-build --disable-examples --disable-crypttests)
lib_cflags="-O2 -ffunction-sections -fdata-sections -fstack-protector-strong -D_FORTIFY_SOURCE=2"

# ---------------------------------------------------------------- apt

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
		printf ' !     build files kept in %s\n' "$scratch" >&2
	else
		rm -rf "$scratch"
	fi
	[[ ${#temps[@]} -eq 0 ]] || rm -rf "${temps[@]}"
	rm -f "$out.tmp.$$"
	exit "$status"
}
trap cleanup EXIT

# apt's state is this build's own; online, the index lists of the last
# build are copied in (apt then downloads only what changed) and the new
# ones published back with a rename (publish_lists).
host_apt_config=${APT_CONFIG:-}
state=$scratch/apt
lists_cache=$cache/apt-lists
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/sources" "$state/conf.d"
if [[ -z $mirror && -d $lists_cache ]]; then
	# (Another build may swap the cache meanwhile: a torn copy is dropped.)
	cp -a "$lists_cache/." "$state/lists/" 2>/dev/null || {
		rm -rf "$state/lists"
		mkdir -p "$state/lists/partial"
	}
fi
# The configuration apt reads is this file alone: the host's APT_CONFIG,
# apt.conf and apt.conf.d (where a Check-Valid-Until "false" or an
# AllowInsecureRepositories "true" may sit) do not apply.
printf '%s\n' 'Dir::Etc::Main "/dev/null";' "Dir::Etc::Parts \"$state/conf.d\";" \
	'Dir::Etc::Preferences "/dev/null";' "Dir::Etc::PreferencesParts \"$state/conf.d\";" >"$state/apt.conf"
export APT_CONFIG=$state/apt.conf
apt_opts=(-o "Dir::Etc::SourceList=$state/sources/none.list"
	-o "Dir::Etc::SourceParts=$state/sources"
	-o "Dir::State::Lists=$state/lists"
	-o "Dir::Cache=$state/cache"
	-o "Debug::NoLocking=true"
	-o "Acquire::Languages=none"
	-o "Acquire::GzipIndexes=true"
	-o "Acquire::Retries=3"
	-o "Acquire::AllowInsecureRepositories=false"
	-o "Acquire::AllowWeakRepositories=false"
	-o "Acquire::AllowDowngradeToInsecureRepositories=false"
	-o "APT::Get::AllowUnauthenticated=false"
	-o "Acquire::Check-Date=true")
if [[ $allow_expired -eq 1 ]]; then
	apt_opts+=(-o "Acquire::Check-Valid-Until=false")
else
	apt_opts+=(-o "Acquire::Check-Valid-Until=true")
fi
: >"$state/sources/none.list"

# publish_lists: make this build's verified index lists the cache's, by
# rename (a concurrent build copies either the old set or the new one).
publish_lists() {
	local tmp
	tmp=$(mktemp -d "$cache/.apt-lists.XXXXXX")
	temps+=("$tmp" "$tmp.old")
	if cp -a "$state/lists/." "$tmp/" && rm -rf "$tmp/partial"; then
		mv -T "$lists_cache" "$tmp.old" 2>/dev/null || true
		mv -T "$tmp" "$lists_cache" || true
		rm -rf "$tmp.old"
	fi
	rm -rf "$tmp"
	# The shared layout of earlier versions.
	rm -rf "$cache/apt" "$cache/apt-mirror"
}

# system_sources: one line per archive pocket the system installs from, as
# URI<TAB>SUITE<TAB>COMPONENTS<TAB>SIGNED-BY, from both the one-line format
# (sources.list, *.list) and deb822 (*.sources). Only the running release's
# own pockets (CODENAME, -updates, -security) are kept: third-party
# repositories rarely publish sources and have no business here. A Signed-By
# that holds an inline key keeps its lines joined by \x1f.
system_sources() {
	local sl='' sp=''
	eval "$(APT_CONFIG=$host_apt_config apt-config shell sl Dir::Etc::sourcelist/f sp Dir::Etc::sourceparts/d)"
	local files=()
	[[ -z $sl || ! -f $sl ]] || files+=("$sl")
	[[ -z $sp ]] || files+=("$sp"*.list "$sp"*.sources)
	[[ ${#files[@]} -gt 0 ]] || return 0
	awk -v codename="$codename" '
	function wanted(s) {
		return s == codename || s == codename "-updates" || s == codename "-security"
	}
	# One record per archive pocket; one-line sources often spread its
	# components over several lines (jammy main, then jammy universe).
	function emit(uri, suite, comps, key,   id, n, c, i) {
		if (!wanted(suite) || comps == "") return
		if (uri !~ /\/$/) uri = uri "/"
		id = uri "\t" suite
		if (!(id in have)) { order[++norder] = id; have[id] = ""; keys[id] = key }
		else if (keys[id] == "") keys[id] = key
		n = split(comps, c, /[ \t]+/)
		for (i = 1; i <= n; i++) {
			if (c[i] == "" || ((id, c[i]) in comp)) continue
			comp[id, c[i]] = 1
			have[id] = have[id] (have[id] == "" ? "" : " ") c[i]
		}
	}
	function flush(   n, u, s, i, j, us, ss) {
		if (types ~ /(^| )deb( |$)|(^| )deb-src( |$)/ && tolower(enabled) != "no") {
			n = split(uris, us, /[ \t]+/)
			split(suites, ss, /[ \t]+/)
			for (i = 1; i <= n; i++)
				for (j = 1; j in ss; j++)
					if (us[i] != "" && ss[j] != "") emit(us[i], ss[j], comps, key)
		}
		types = uris = suites = comps = key = enabled = field = ""
	}
	FNR == 1 { if (deb822) flush(); deb822 = FILENAME ~ /\.sources$/ }
	deb822 {
		if ($0 ~ /^#/) next
		if ($0 ~ /^[ \t]*$/) { flush(); next }
		if ($0 ~ /^[ \t]/) {
			if (field == "signed-by") key = key "\x1f" $0
			next
		}
		i = index($0, ":")
		field = tolower(substr($0, 1, i - 1))
		v = substr($0, i + 1)
		gsub(/^[ \t]+|[ \t]+$/, "", v)
		if (field == "types") types = v
		else if (field == "uris") uris = v
		else if (field == "suites") suites = v
		else if (field == "components") comps = v
		else if (field == "signed-by") key = v
		else if (field == "enabled") enabled = v
		next
	}
	{
		sub(/#.*/, "")
		if ($1 != "deb" && $1 != "deb-src") next
		line = $0
		key = ""
		if (match(line, /\[[^]]*\]/)) {
			opts = substr(line, RSTART + 1, RLENGTH - 2)
			line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
			n = split(opts, o, /[ \t]+/)
			for (i = 1; i <= n; i++)
				if (o[i] ~ /^signed-by=/) key = substr(o[i], 11)
		}
		n = split(line, w, /[ \t]+/)
		k = (w[1] == "") ? 2 : 1
		comps = ""
		for (i = k + 3; i <= n; i++) if (w[i] != "") comps = comps (comps == "" ? "" : " ") w[i]
		emit(w[k + 1], w[k + 2], comps, key)
	}
	END {
		if (deb822) flush()
		for (i = 1; i <= norder; i++)
			printf "%s\t%s\t%s\n", order[i], have[order[i]], keys[order[i]]
	}
	' "${files[@]}"
}

# write_source FILE URI SUITE COMPONENTS SIGNED-BY: one deb-src stanza.
write_source() {
	{
		echo "Types: deb-src"
		echo "URIs: $2"
		echo "Suites: $3"
		echo "Components: $4"
		# An inline key starts on the line after the field name.
		case $5 in
		'') ;;
		$'\x1f'*) printf 'Signed-By:%s\n' "${5//$'\x1f'/$'\n'}" ;;
		*) printf 'Signed-By: %s\n' "${5//$'\x1f'/$'\n'}" ;;
		esac
		echo
	} >>"$1"
}

# mirror_path URI: where a copy of archive URI lives inside a mirror.
mirror_path() {
	local p=${1#*://}
	p=${p%/}
	[[ $p != *..* ]] || die "refusing an apt source URI with '..' in it: $1"
	printf '%s\n' "$p"
}

# check_mirror DIR: every file in DIR is listed in DIR/SHA256SUMS and matches.
check_mirror() {
	local dir=$1 sums=$1/SHA256SUMS f line hash path bad=0
	[[ -d $dir ]] || die "MEMTUNNEL_SOURCE_MIRROR: $dir is not a directory"
	[[ -f $sums ]] || die "missing checksum list: $sums" \
		"(a mirror is made by buildpack/build-static.sh --make-mirror DIR)"
	declare -A listed=()
	while IFS= read -r line; do
		[[ $line =~ ^([0-9a-f]{64})\ [\ *](.+)$ ]] ||
			die "malformed line in $sums: $line"
		hash=${BASH_REMATCH[1]}
		path=${BASH_REMATCH[2]}
		[[ $path != /* && $path != ../* && $path != */../* ]] ||
			die "$sums names a file outside the mirror: $path"
		listed[$path]=$hash
	done <"$sums"
	[[ ${#listed[@]} -gt 0 ]] || die "empty checksum list: $sums"
	while IFS= read -r -d '' f; do
		f=${f#./}
		[[ $f == SHA256SUMS ]] && continue
		[[ -n ${listed[$f]:-} ]] || die "not listed in $sums: $dir/$f"
	done < <(cd "$dir" && find . -type f -print0)
	for path in "${!listed[@]}"; do
		if [[ ! -f $dir/$path ]]; then
			printf ' !     missing from the mirror: %s\n' "$dir/$path" >&2
			bad=1
			continue
		fi
		hash=$(sha256sum <"$dir/$path")
		hash=${hash%% *}
		if [[ $hash != "${listed[$path]}" ]]; then
			printf ' !     checksum mismatch: %s\n' "$dir/$path" >&2
			printf ' !       want %s\n !       got  %s\n' "${listed[$path]}" "$hash" >&2
			bad=1
		fi
	done
	[[ $bad -eq 0 ]] || die "the source mirror $dir does not match $sums; stopping"
}

# Write the private deb-src list: the network archive, or its mirror copy.
mapfile -t pockets < <(system_sources)
[[ ${#pockets[@]} -gt 0 ]] ||
	die "no apt source for $codename, $codename-updates or $codename-security in the system's sources"
src_list=$state/sources/memtunnel.sources
if [[ -z $mirror ]]; then
	for p in "${pockets[@]}"; do
		IFS=$'\t' read -r uri suite comps key <<<"$p"
		write_source "$src_list" "$uri" "$suite" "$comps" "$key"
	done
	if [[ $print_sources -eq 1 ]]; then
		cat "$src_list"
		exit 0
	fi
else
	mirror=$(cd "$mirror" 2>/dev/null && pwd) || die "MEMTUNNEL_SOURCE_MIRROR: ${MEMTUNNEL_SOURCE_MIRROR} is not a directory"
	step "Checking the source mirror $mirror"
	check_mirror "$mirror"
	detail "every file matches SHA256SUMS"
	# Every pocket the system installs from must be in the mirror, as
	# online: leaving one out (the security pocket) would roll its fixes
	# back. A pocket is looked up under its own archive's path first; a
	# mirror made where the sources name another mirror host holds the same
	# suite elsewhere, and its InRelease is checked against the same keyring.
	declare -A used=()
	for p in "${pockets[@]}"; do
		IFS=$'\t' read -r uri suite comps key <<<"$p"
		base=$mirror/$(mirror_path "$uri")
		if [[ ! -f $base/dists/$suite/InRelease ]]; then
			base=$(find "$mirror" -path "*/dists/$suite/InRelease" -printf '%h\n' | head -n 1)
			base=${base%/dists/*}
		fi
		[[ -n $base && -f $base/dists/$suite/InRelease ]] ||
			die "the mirror has no signed index for ${uri} $suite (no .../dists/$suite/InRelease)" \
				"(a mirror must carry every pocket this system installs from; make it again with --make-mirror)"
		[[ -z ${used[$base/$suite]:-} ]] || continue
		used[$base/$suite]=1
		# The components whose Sources index the InRelease lists (checked
		# against its signature by apt below) must all be there.
		have=()
		for c in $comps; do
			grep -q " $c/source/Sources" "$base/dists/$suite/InRelease" || continue
			[[ -n $(echo "$base/dists/$suite/$c/source/Sources".*) ]] ||
				die "the mirror lacks the $c Sources index of $suite: ${base#"$mirror"/}/dists/$suite/$c/source/"
			have+=("$c")
		done
		[[ ${#have[@]} -gt 0 ]] || die "the InRelease of $suite in the mirror lists no Sources index of $comps"
		write_source "$src_list" "file:$base" "$suite" "${have[*]}" "$key"
		detail "signed index: ${base#"$mirror"/}/dists/$suite/InRelease"
	done
	# apt's download sandbox (user _apt) may not be able to read a private
	# directory; reading local files needs no sandbox.
	[[ $(id -u) -ne 0 ]] || apt_opts+=(-o "APT::Sandbox::User=root")
fi

step "Reading the signed source indexes of $os_name"
# failed_indexes LOG: the InRelease files apt's LOG says it could not get,
# verify or accept, as URI/dists/SUITE/InRelease (mirror: relative to it).
failed_indexes() {
	{
		sed -nE "s/^(Err:[0-9]+ |W: GPG error: |E: The repository ')([^ ']+) ([^ ':]+) InRelease.*/\2 \3/p" "$1" |
			while read -r u s; do printf '%s/dists/%s/InRelease\n' "${u%/}" "$s"; done
		sed -nE 's/^E: Release file for ([^ ]+) is expired.*/\1/p' "$1"
	} | sed "s|^file:${mirror:+$mirror/}||" | sort -u | paste -sd' '
}
if ! apt-get "${apt_opts[@]}" -q --error-on=any update >"$scratch/apt-update.log" 2>&1; then
	show_log "$scratch/apt-update.log"
	bad=$(failed_indexes "$scratch/apt-update.log")
	[[ -z $bad ]] || die "apt could not verify the signed index $bad (see above); stopping"
	die "apt could not fetch or verify the source indexes (see above); stopping"
fi
[[ -n $mirror ]] || publish_lists

# check_valid_until: every source's InRelease, as apt verified it, is
# within its Valid-Until (against MEMTUNNEL_TEST_NOW in the tests), or
# MEMTUNNEL_ALLOW_EXPIRED_INDEX=1 says to build anyway, loudly.
check_valid_until() {
	local file rel uri f name until t expired=()
	declare -A seen=()
	while IFS=$'\t' read -r file rel uri; do
		# (The InRelease sits beside the indexes it lists, named alike.)
		f=${file%_"$rel"_*}_${rel}_InRelease
		[[ -z ${seen[$f]:-} ]] || continue
		seen[$f]=1
		name=${uri%/}/dists/$rel/InRelease
		[[ -z $mirror ]] || name="${name#file:"$mirror"/} (in the mirror)"
		[[ -f $f ]] || die "apt kept no verified InRelease for $name; stopping"
		until=$(sed -n '/^-----BEGIN PGP SIGNATURE/q; s/^Valid-Until: //p' "$f" | head -n 1)
		[[ -n $until ]] || continue
		t=$(date -d "$until" +%s) || die "unreadable Valid-Until in the InRelease of $name: $until"
		if [[ $now -gt $t ]]; then
			expired+=("$name expired on $until")
		fi
	done < <(apt-get "${apt_opts[@]}" indextargets --format \
		$'$(FILENAME)\t$(RELEASE)\t$(REPO_URI)' 'Identifier: Sources')
	[[ ${#seen[@]} -gt 0 ]] || die "apt lists no signed Sources index; stopping"
	[[ ${#expired[@]} -gt 0 ]] || return 0
	if [[ $allow_expired -eq 1 ]]; then
		printf ' !     warning: MEMTUNNEL_ALLOW_EXPIRED_INDEX=1: building from a signed index past its Valid-Until:\n' >&2
		printf ' !     warning:   %s\n' "${expired[@]}" >&2
		printf ' !     warning: its wolfssl may lack the security fixes published since\n' >&2
		return 0
	fi
	die "signed index past its Valid-Until: ${expired[0]}" "${expired[@]:1}" \
		"(an old copy of the archive can hold a vulnerable wolfssl: make the mirror again," \
		"or set MEMTUNNEL_ALLOW_EXPIRED_INDEX=1 to build from it anyway)"
}
check_valid_until

# resolve PKG: the source package apt would download, as
# "NAME VERSION DSC-SHA256 DSC-URI", from the verified indexes.
resolve() {
	local log=$scratch/resolve-$1.log
	apt-get "${apt_opts[@]}" -q source --print-uris "$1" >"$log" 2>&1 || {
		show_log "$log"
		die "no source package $1 in the apt sources above" \
			"(on Ubuntu, wolfssl is in the universe component)"
	}
	awk '$2 ~ /\.dsc$/ {
		uri = $1; gsub(/\x27/, "", uri)
		name = $2; sub(/\.dsc$/, "", name)
		split(name, nv, "_"); hash = $4; sub(/^SHA256:/, "", hash)
		print nv[1], nv[2], hash, uri; exit
	}' "$log"
}

read -r _ wolf_ver wolf_dsc_sha wolf_dsc_uri < <(resolve wolfssl) || true
[[ -n ${wolf_dsc_sha:-} && ${#wolf_dsc_sha} -eq 64 ]] ||
	die "apt did not give a SHA-256 for the wolfssl .dsc"
detail "wolfssl $wolf_ver (${wolf_dsc_uri%/pool/*})"
# The wolfssl supplied must be the newest of the signed Sources indexes:
# online what apt resolved (a pin could lower it), offline the mirror's
# .dsc. An older one may lack security fixes.
newest_version() { # reads versions, prints the highest
	local v best=
	while read -r v; do
		if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$best"; then
			best=$v
		fi
	done
	printf '%s\n' "$best"
}
newest=$(apt-cache "${apt_opts[@]}" showsrc --only-source wolfssl 2>/dev/null |
	sed -n 's/^Version: //p' | newest_version)
[[ -n $newest ]] || die "no wolfssl version in the signed Sources indexes"
supplied=$wolf_ver
if [[ -n $mirror && -z $(find "$mirror" -type f -name "wolfssl_${wolf_ver#*:}.dsc") ]]; then
	supplied=$(find "$mirror" -type f -name 'wolfssl_*.dsc' -printf '%f\n' |
		sed 's/^wolfssl_//; s/\.dsc$//' | newest_version)
	[[ -n $supplied ]] || die "the mirror carries no wolfssl source package; the signed index offers $newest"
	dpkg --compare-versions "$supplied" lt "$newest" ||
		die "the mirror's wolfssl $supplied is not in the signed Sources index (its newest: $newest)"
fi
if dpkg --compare-versions "$supplied" lt "$newest"; then
	die "wolfssl $supplied is older than $newest, the newest the signed Sources index offers; refusing it"
fi

multiarch=$(gcc -print-multiarch 2>/dev/null || true)
system_uv=
for f in ${multiarch:+/usr/lib/$multiarch/libuv_a.a} /usr/lib/libuv_a.a /usr/lib64/libuv_a.a; do
	if [[ -f $f && -f /usr/include/uv.h ]]; then
		system_uv=$f
		break
	fi
done
case $libuv_mode in
auto) [[ -n $system_uv ]] && libuv_mode=system || libuv_mode=source ;;
system) [[ -n $system_uv ]] || die "MEMTUNNEL_LIBUV=system but there is no libuv_a.a (install libuv1-dev)" ;;
esac
if [[ $libuv_mode == system ]]; then
	uv_ver=$(dpkg-query -W -f='${Version}' libuv1-dev 2>/dev/null || echo unknown)
	uv_sha=$(sha256sum <"$system_uv")
	uv_id="system $system_uv libuv1-dev $uv_ver ${uv_sha%% *}"
	detail "libuv: the system's static library, $system_uv (libuv1-dev $uv_ver)"
else
	read -r uv_pkg uv_ver uv_dsc_sha uv_dsc_uri < <(resolve libuv1) || true
	[[ -n ${uv_dsc_sha:-} && ${#uv_dsc_sha} -eq 64 ]] ||
		die "apt did not give a SHA-256 for the libuv1 .dsc"
	uv_id="source $uv_pkg $uv_ver $uv_dsc_sha"
	detail "libuv1 $uv_ver (${uv_dsc_uri%/pool/*}), built from source"
fi

# ---------------------------------------------------------------- --make-mirror

# make_mirror DIR: copy the InRelease and the Sources indexes of every
# pocket (a build from the mirror needs them all, as online), the source
# packages resolved above, and write SHA256SUMS.
make_mirror() {
	local dir=$1 pkg ver target uri suite comp file repo rel idx hash got inrel
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	while IFS=$'\t' read -r repo suite comp file; do
		rel=$dir/$(mirror_path "$repo")/dists/$suite
		mkdir -p "$rel/$comp/source"
		# InRelease as apt verified it; the Sources index as published
		# (apt keeps its lists recompressed), checked against InRelease.
		inrel=${file%_"$suite"_*}_${suite}_InRelease
		[[ -f $inrel ]] || die "no InRelease for $repo $suite (a mirror needs a signed InRelease)"
		cp "$inrel" "$rel/InRelease"
		idx=$comp/source/Sources.xz
		hash=$(awk -v f="$idx" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == f { print $1 }' "$inrel")
		[[ -n $hash ]] || die "$inrel lists no $idx"
		got=
		[[ ! -f $rel/$idx ]] || got=$(sha256sum <"$rel/$idx")
		: >"$scratch/download.log"
		# By hash first: the file the verified InRelease names, even when
		# the archive (or a cache in front of it) has since moved on, or
		# not yet, to another one under the plain name.
		if [[ ${got%% *} != "$hash" ]] && grep -q '^Acquire-By-Hash: yes' "$inrel"; then
			/usr/lib/apt/apt-helper "${apt_opts[@]}" download-file \
				"${repo}dists/$suite/$comp/source/by-hash/SHA256/$hash" "$rel/$idx" "SHA256:$hash" \
				>>"$scratch/download.log" 2>&1 && got=$(sha256sum <"$rel/$idx")
		fi
		if [[ ${got%% *} != "$hash" ]]; then
			/usr/lib/apt/apt-helper "${apt_opts[@]}" download-file "${repo}dists/$suite/$idx" "$rel/$idx" "SHA256:$hash" \
				>>"$scratch/download.log" 2>&1 || { show_log "$scratch/download.log"; die "could not download ${repo}dists/$suite/$idx"; }
		fi
		got=$(sha256sum <"$rel/$idx")
		[[ ${got%% *} == "$hash" ]] || die "checksum mismatch: $rel/$idx"
		detail "signed index: $(mirror_path "$repo") $suite/$comp"
	done < <(apt-get "${apt_opts[@]}" indextargets --format \
		$'$(REPO_URI)\t$(RELEASE)\t$(COMPONENT)\t$(FILENAME)' 'Identifier: Sources')
	local pkgs=("wolfssl $wolf_ver")
	[[ $libuv_mode == system ]] || pkgs+=("libuv1 $uv_ver")
	for pkg in "${pkgs[@]}"; do
		ver=${pkg#* }
		pkg=${pkg%% *}
		target=
		while IFS=$'\t' read -r uri suite comp file; do
			if /usr/lib/apt/apt-helper cat-file "$file" |
				awk -v p="$pkg" -v v="$ver" '
					/^Package: / { pk = $2 } /^Version: / { if (pk == p && $2 == v) f = 1 }
					END { exit !f }'; then
				target="$uri"$'\t'"$suite"$'\t'"$comp"
				break
			fi
		done < <(apt-get "${apt_opts[@]}" indextargets --format \
			$'$(REPO_URI)\t$(RELEASE)\t$(COMPONENT)\t$(FILENAME)' 'Identifier: Sources')
		[[ -n $target ]] || die "cannot tell which index lists $pkg $ver"
		IFS=$'\t' read -r repo suite comp <<<"$target"
		# The source files, fetched and verified by apt. (--print-uris
		# leaves out files already downloaded, so it goes first.)
		local dl=$scratch/mirror-$pkg uris=$scratch/mirror-$pkg.uris
		mkdir -p "$dl"
		[[ $(id -u) -ne 0 ]] || ! id _apt >/dev/null 2>&1 || chown _apt "$dl"
		if ! (cd "$dl" && apt-get "${apt_opts[@]}" -q source --print-uris "$pkg=$ver" >"$uris" 2>&1 &&
			apt-get "${apt_opts[@]}" -q source --download-only "$pkg=$ver" >"$scratch/mirror-$pkg.log" 2>&1); then
			show_log "$uris"
			show_log "$scratch/mirror-$pkg.log"
			die "apt could not download the $pkg source package"
		fi
		local n=0
		while read -r uri file; do
			uri=${uri//\'/}
			local sub=${uri#"$repo"}
			sub=${sub%/*}
			mkdir -p "$dir/$(mirror_path "$repo")/$sub"
			cp "$dl/$file" "$dir/$(mirror_path "$repo")/$sub/$file"
			n=$((n + 1))
		done < <(awk '/^\x27/ { print $1, $2 }' "$uris")
		[[ $n -gt 0 ]] || die "apt listed no files for the $pkg source package"
		detail "$pkg $ver ($(mirror_path "$repo") $suite/$comp)"
	done
	(cd "$dir" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort |
		xargs -d '\n' sha256sum >"$scratch/SHA256SUMS")
	mv "$scratch/SHA256SUMS" "$dir/SHA256SUMS"
	step "Wrote the source mirror $dir"
	detail "$(wc -l <"$dir/SHA256SUMS") files listed in $dir/SHA256SUMS"
	detail "build from it with: MEMTUNNEL_SOURCE_MIRROR=$dir"
}

if [[ -n $mirror_out ]]; then
	step "Copying the source packages to $mirror_out"
	make_mirror "$mirror_out"
	exit 0
fi

# ---------------------------------------------------------------- keys

version=$(sed -n 's/^VERSION[[:space:]]*:\{0,1\}=[[:space:]]*//p' "$root/Makefile" | head -n 1)
[[ -n $version ]] || die "no VERSION := line in $root/Makefile"
srcs=("$root"/src/*.c)
[[ ${#srcs[@]} -gt 0 ]] || die "no sources in $root/src"

# fetch PKG VERSION: download the source package through apt (or from the
# mirror) into $scratch and unpack it; prints the source tree's path.
fetch() {
	local pkg=$1 ver=$2 dl=$scratch/dl-$1
	mkdir -p "$dl"
	[[ $(id -u) -ne 0 ]] || ! id _apt >/dev/null 2>&1 || chown _apt "$dl"
	(cd "$dl" && apt-get "${apt_opts[@]}" -q source --download-only "$pkg=$ver") >"$scratch/fetch-$pkg.log" 2>&1 || {
		show_log "$scratch/fetch-$pkg.log"
		die "apt could not download or verify the $pkg source package (see above)"
	}
	local dsc=("$dl/${pkg}_"*.dsc)
	[[ ${#dsc[@]} -eq 1 ]] || die "expected one $pkg .dsc in $dl"
	# dpkg-source checks every file against the .dsc, whose checksum apt
	# took from the signed index. The .dsc's own OpenPGP signature needs the
	# uploaders' keyring, which build machines do not have: dpkg-source's
	# warning about it is expected.
	(cd "$scratch" && dpkg-source --no-copy -x "${dsc[0]}" "src-$pkg") >"$scratch/unpack-$pkg.log" 2>&1 || {
		show_log "$scratch/unpack-$pkg.log"
		die "dpkg-source rejected ${dsc[0]##*/} (a file does not match the .dsc?)"
	}
	echo "$scratch/src-$pkg"
}

# build_wolfssl SRC PREFIX / build_libuv SRC PREFIX: build a patched source
# tree and install the static library and headers in PREFIX. Their text is
# part of the cache keys of the libraries they build.
build_wolfssl() (
	cd "$1"
	# The project's own changes that apply to this source (see
	# wolf_apply), after the distribution's patches. (Called in an || list,
	# where set -e does not apply: every failure must stop the build.)
	local p
	for p in "${wolf_apply[@]}"; do
		patch -p1 --forward --batch --fuzz=0 <"$p" || exit 1
	done
	# The upstream tarball ships no configure script.
	[[ -x configure ]] || ./autogen.sh
	./configure --prefix="$2" "${wolfssl_args[@]}" CFLAGS="$lib_cflags -DWOLFSSL_ALWAYS_VERIFY_CB"
	make -j"$jobs"
	make install
)

build_libuv() (
	cd "$1"
	local lib
	if command -v cmake >/dev/null 2>&1; then
		cmake -S . -B _build -DCMAKE_BUILD_TYPE=Release -DLIBUV_BUILD_TESTS=OFF \
			-DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_C_FLAGS="$lib_cflags"
		cmake --build _build --target uv_a -j "$jobs"
		lib=_build/libuv_a.a
	else
		sh autogen.sh
		./configure --disable-shared --enable-static CFLAGS="$lib_cflags"
		make -j"$jobs" libuv.la
		lib=.libs/libuv.a
	fi
	mkdir -p "$2/lib"
	cp "$lib" "$2/lib/libuv_a.a"
	cp -r include "$2/include"
)

sha() { sha256sum | cut -c1-64; }
wolf_patches=("$root"/buildpack/patches/wolfssl-*.patch)
wolf_apply=()
wolf_patch_sha=$(for p in "${wolf_patches[@]}"; do printf '%s %s\n' "${p##*/}" "$(sha <"$p")"; done | sha)
toolchain="cc $cc_id"$'\n'"os $os_id $os_version $arch"$'\n'"cflags $lib_cflags"
lib_key=$(printf '%s\n' "wolfssl $wolf_ver $wolf_dsc_sha" "args ${wolfssl_args[*]}" "asm $asm" \
	"$toolchain" "$(declare -f fetch build_wolfssl)" "patches $wolf_patch_sha" | sha)
if [[ $libuv_mode == source ]]; then
	uv_tool=autotools
	! command -v cmake >/dev/null 2>&1 || uv_tool="cmake $(cmake --version | head -n 1)"
	uv_key=$(printf '%s\n' "$uv_id" "$toolchain" "$uv_tool" "$(declare -f fetch build_libuv)" | sha)
fi
manifest=$scratch/manifest
{
	echo "memtunnel $version"
	echo "os $os_id $os_version $arch"
	echo "cc $cc_id"
	echo "asm $asm"
	echo "wolfssl $wolf_ver $wolf_dsc_sha"
	echo "wolfssl-patches $wolf_patch_sha"
	echo "libuv $uv_id"
	echo "script $(sha <"$script")"
	for f in "$root"/src/*.c "$root"/src/*.h; do
		echo "src ${f#"$root"/} $(sha <"$f")"
	done
} >"$manifest"
key=$(sha <"$manifest")
cached=$cache/memtunnel-$key

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

# store_dir SRC DEST: put a finished directory into the cache atomically,
# then drop the entries of other keys (DEST-like names). A build sharing the
# cache under the same key may have stored DEST first: the same content,
# kept as it is, never replaced under that build's feet. Temporary copies
# are dot-named, so no other build's pruning takes them.
store_dir() {
	local tmp name=${2##*/} old
	tmp=$(mktemp -d "${2%/*}/.$name.XXXXXX")
	temps+=("$tmp")
	cp -a "$1/." "$tmp/"
	mv -T "$tmp" "$2" 2>/dev/null || rm -rf "$tmp"
	for old in "${2%-*}"-*; do
		[[ $old == "$2" ]] || rm -rf "$old"
	done
}

wolf_prefix=$cache/wolfssl-$lib_key
if [[ -f $wolf_prefix/lib/libwolfssl.a && -f $wolf_prefix/include/wolfssl/options.h ]]; then
	step "Reusing the cached wolfSSL $wolf_ver build"
else
	step "Fetching wolfssl $wolf_ver (signature and checksums verified by apt)"
	t0=$SECONDS
	wsrc=$(fetch wolfssl "$wolf_ver")
	detail "$(grep -c '^dpkg-source: info: applying' "$scratch/unpack-wolfssl.log" || true) distribution patches applied, $((SECONDS - t0)) s"
	# memtunnel's own patches change speed, never behaviour (each says so in
	# its header), and were made against one wolfssl release: one that does
	# not apply exactly to this release is left out, with a warning, rather
	# than fail a deploy.
	wolf_apply=()
	for p in "${wolf_patches[@]}"; do
		if (cd "$wsrc" && patch -p1 --forward --batch --fuzz=0 --dry-run <"$p") >"$scratch/patch-check.log" 2>&1; then
			wolf_apply+=("$p")
			detail "memtunnel's own patch: ${p##*/}"
		else
			detail "warning: ${p##*/} does not apply to wolfssl $wolf_ver; building without it (it only saves CPU)"
		fi
	done
	t0=$SECONDS
	step "Building wolfSSL $wolf_ver (${asm_args[*]:-no assembly for $arch})"
	[[ $asm != none ]] || detail "warning: no AES instructions for this CPU; AES-GCM runs in software"
	build_wolfssl "$wsrc" "$scratch/wolfssl" >"$scratch/wolfssl-build.log" 2>&1 || {
		show_log "$scratch/wolfssl-build.log"
		die "the wolfSSL build failed"
	}
	opts=$scratch/wolfssl/include/wolfssl/options.h
	# What memtunnel relies on, WOLFSSL_ALWAYS_VERIFY_CB among it: the
	# peer's chain is copied while it is verified (expiry warnings,
	# memtunnel check).
	for d in WOLFSSL_TLS13 HAVE_SNI HAVE_SESSION_TICKET HAVE_CHACHA HAVE_CURVE25519 \
		WOLFSSL_IP_ALT_NAME WOLFSSL_SYS_CA_CERTS WOLFSSL_ALT_CERT_CHAINS \
		WOLFSSL_ALWAYS_VERIFY_CB; do
		grep -q "^#define $d\$" "$opts" || die "the wolfSSL build lacks $d"
	done
	case $asm in
	aesni) grep -q '^#define WOLFSSL_AESNI$' "$opts" || die "the wolfSSL build lacks AES-NI" ;;
	armasm) grep -q '^#define WOLFSSL_ARMASM$' "$opts" || die "the wolfSSL build lacks the ARMv8 code" ;;
	esac
	store_dir "$scratch/wolfssl" "$wolf_prefix"
	detail "libwolfssl.a $(du -k "$wolf_prefix/lib/libwolfssl.a" | cut -f1) KiB, built in $((SECONDS - t0)) s"
fi

if [[ $libuv_mode == system ]]; then
	uv_lib=$system_uv
	uv_inc=/usr/include
else
	uv_prefix=$cache/libuv-$uv_key
	if [[ -f $uv_prefix/lib/libuv_a.a && -f $uv_prefix/include/uv.h ]]; then
		step "Reusing the cached libuv $uv_ver build"
	else
		step "Fetching libuv1 $uv_ver (signature and checksums verified by apt)"
		t0=$SECONDS
		usrc=$(fetch libuv1 "$uv_ver")
		detail "$(grep -c '^dpkg-source: info: applying' "$scratch/unpack-libuv1.log" || true) distribution patches applied, $((SECONDS - t0)) s"
		t0=$SECONDS
		step "Building libuv $uv_ver"
		build_libuv "$usrc" "$scratch/libuv" >"$scratch/libuv-build.log" 2>&1 || {
			show_log "$scratch/libuv-build.log"
			die "the libuv build failed"
		}
			store_dir "$scratch/libuv" "$uv_prefix"
		detail "libuv_a.a $(du -k "$uv_prefix/lib/libuv_a.a" | cut -f1) KiB, built in $((SECONDS - t0)) s"
	fi
	uv_lib=$uv_prefix/lib/libuv_a.a
	uv_inc=$uv_prefix/include
fi

step "Compiling memtunnel $version (wolfSSL and libuv static, glibc dynamic)"
# The development build's flags, minus -Werror: a newer compiler's new
# warning must not fail a deploy. wolfSSL's headers come first, so
# <wolfssl/options.h> is the one matching the library linked.
cflags=(-std=gnu11 -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes
	-O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -ffunction-sections -fdata-sections
	"-DMEMTUNNEL_VERSION=\"$version\"" -I"$wolf_prefix/include" -I"$uv_inc")
mkdir -p "$scratch/obj"
objs=()
# Compiled from the repository root with relative names, so the binary does
# not depend on where the buildpack was checked out (__FILE__ in assert()).
for f in "${srcs[@]}"; do
	o=$scratch/obj/$(basename "$f" .c).o
	(cd "$root" && gcc "${cflags[@]}" -c -o "$o" "${f#"$root"/}") 2>>"$scratch/compile.log" || {
		show_log "$scratch/compile.log"
		die "compiling ${f#"$root"/} failed"
	}
	objs+=("$o")
done
bin=$scratch/memtunnel
gcc -Wl,-z,relro,-z,now -Wl,--gc-sections -o "$bin" "${objs[@]}" \
	"$wolf_prefix/lib/libwolfssl.a" "$uv_lib" -lm -lpthread -ldl -lrt 2>>"$scratch/compile.log" || {
	show_log "$scratch/compile.log"
	die "linking memtunnel failed"
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
