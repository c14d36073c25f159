#!/usr/bin/env bash
# The buildpack as Heroku runs it: bin/detect, bin/release, the deb-src list
# derived from Heroku's and Debian's apt source files, bin/compile into a
# temporary BUILD_DIR/CACHE_DIR/ENV_DIR (as a non-root user, in an
# environment holding only what a build has), a second compile with the same
# cache, the app's Procfile command in a fresh shell that sources .profile.d,
# the refusal to overwrite files of the app, builds from a local source
# mirror, intact and corrupted, and memtunnel compiled with the Makefile's
# flags. Then the same buildpack as a Cloud Native Buildpack (cnb.sh:
# buildpack.toml, bin/detect and bin/build as a CNB lifecycle runs them).
#
#   tests/buildpack/run.sh
#
# Needs network access to the distribution's archive for the first compile
# and for making the mirror, unless MEMTUNNEL_SOURCE_MIRROR names a mirror
# (buildpack/build-static.sh --make-mirror) to use instead. Prints one line
# per check and `N passed, N failed`; exits non-zero when a check failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

T=$(mktemp -d "${TMPDIR:-/tmp}/memtunnel-buildpack.XXXXXX")
chmod 0755 "$T"
cleanup() {
	local status=$?
	if [[ -n ${KEEP_TMP:-} ]]; then
		echo "# kept $T"
	else
		rm -rf "$T"
	fi
	exit "$status"
}
trap cleanup EXIT

# Heroku runs a checkout of the buildpack; so does this test, from a copy
# that edits in the working tree cannot change halfway through.
root=$T/buildpack
mkdir -p "$root"
tar -C "$repo" --exclude=./.git --exclude=./build --exclude=./bin/memtunnel -cf - . | tar -C "$root" -xf -

passed=0
failed=0
pass() {
	passed=$((passed + 1))
	printf 'PASS %s\n' "$1"
}
# fail_check DESC [FILE...]: report a failed check with the end of each FILE.
# The first failure is repeated at the end of the run, where a shortened log
# of the whole run still shows it.
fail_check() {
	local f desc=$1
	failed=$((failed + 1))
	shift
	for f in "$@"; do
		[[ -s $f ]] || continue
		printf '    --- %s\n' "${f##*/}"
		tail -n 30 "$f" | sed 's/^/    /'
	done >"$T/fail.txt"
	printf 'FAIL %s\n' "$desc"
	cat "$T/fail.txt"
	[[ -e $T/first-fail.txt ]] || { printf 'first failure: %s\n' "$desc" && cat "$T/fail.txt"; } >"$T/first-fail.txt"
}
# check DESC CMD...: CMD's status decides; its output is shown on failure.
check() {
	local desc=$1
	shift
	if "$@" >"$T/check.log" 2>&1; then
		pass "$desc"
	else
		fail_check "$desc" "$T/check.log"
	fi
}

# The build runs as a user without root, like Heroku's: nobody, when this
# test runs as root.
builder=()
if [[ $(id -u) -eq 0 ]]; then
	builder=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
H=$T/heroku
mkdir -p "$H/tmp" "$H/home" "$H/env"
[[ ${#builder[@]} -eq 0 ]] || chown -R 65534:65534 "$H"

# as_builder CMD...: CMD as the build user, with a build's environment only.
as_builder() {
	"${builder[@]}" env -i HOME="$H/home" TMPDIR="$H/tmp" LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# new_app NAME: a fresh BUILD_DIR holding a small app with a Procfile.
new_app() {
	local app=$H/$1
	mkdir -p "$app"
	cat >"$app/Procfile" <<'EOF'
web: memtunnel python3 app.py
EOF
	cat >"$app/app.py" <<'EOF'
import os

import pylibmc

servers = os.environ["MEMCACHIER_SERVERS"]
client = pylibmc.Client(servers.split(","), binary=True,
                        username=os.environ["MEMCACHIER_USERNAME"],
                        password=os.environ["MEMCACHIER_PASSWORD"])
client.set("buildpack:procfile", os.environ["APP_VALUE"].encode())
print("app: servers=%s get=%s" % (servers, client.get("buildpack:procfile").decode()))
EOF
	[[ ${#builder[@]} -eq 0 ]] || chown -R 65534:65534 "$app"
	echo "$app"
}

# compile NAME APP CACHE ENV: bin/compile as the builder; stdout and stderr
# in $T/NAME.out and $T/NAME.err, seconds taken in $T/NAME.secs.
compile() {
	local name=$1 app=$2 cache=$3 env=$4 t0 status=0
	mkdir -p "$cache" "$env"
	[[ ${#builder[@]} -eq 0 ]] || chown 65534:65534 "$cache" "$env"
	t0=$EPOCHREALTIME
	as_builder "$root/bin/compile" "$app" "$cache" "$env" >"$T/$name.out" 2>"$T/$name.err" || status=$?
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", b - a }' >"$T/$name.secs"
	return "$status"
}

set_env() { # ENV_DIR VAR VALUE
	printf '%s' "$3" >"$1/$2"
	[[ ${#builder[@]} -eq 0 ]] || chown 65534:65534 "$1/$2"
}

env1=$H/env/one
mkdir -p "$env1"
if [[ -n ${MEMTUNNEL_SOURCE_MIRROR:-} ]]; then
	set_env "$env1" MEMTUNNEL_SOURCE_MIRROR "$(cd "$MEMTUNNEL_SOURCE_MIRROR" && pwd)"
fi

# ---------------------------------------------------------------- detect, release

detect_ok() {
	local out
	out=$("$root/bin/detect" "$H/tmp")
	[[ $out == memtunnel ]] || { echo "printed: $out"; return 1; }
}
check "bin/detect accepts any app and prints its name" detect_ok

release_ok() {
	local out want
	out=$("$root/bin/release" "$H/tmp")
	want=$'---\naddons: []\ndefault_process_types: {}'
	[[ $out == "$want" ]] || { printf 'printed:\n%s\n' "$out"; return 1; }
}
check "bin/release prints YAML with no add-ons and no default process types" release_ok

# ---------------------------------------------------------------- apt sources

# sources_case NAME CODENAME: --print-sources over the fixture files in
# $T/src-NAME (sources.list, sources.list.d/), compared with
# $T/src-NAME/want.
sources_case() {
	local dir=$T/src-$1 got
	printf 'ID=test\nVERSION_ID=0\nVERSION_CODENAME=%s\n' "$2" >"$dir/os-release"
	printf 'Dir::Etc::sourcelist "%s";\nDir::Etc::sourceparts "%s";\n' \
		"$dir/sources.list" "$dir/sources.list.d" >"$dir/apt.conf"
	got=$(APT_CONFIG=$dir/apt.conf MEMTUNNEL_OS_RELEASE=$dir/os-release \
		env -u MEMTUNNEL_SOURCE_MIRROR "$root/buildpack/build-static.sh" --print-sources --cache "$dir/cache" --work "$dir/work") || return 1
	diff -u "$dir/want" <(printf '%s\n' "$got")
}

# heroku-22 (Ubuntu 22.04): one-line sources.list, a pocket's components
# spread over several lines, backports and a third-party repository left out.
mkdir -p "$T/src-h22/sources.list.d"
cat >"$T/src-h22/sources.list" <<'EOF'
# See http://help.ubuntu.com/community/UpgradeNotes for how to upgrade to
deb http://archive.ubuntu.com/ubuntu/ jammy main restricted
# deb-src http://archive.ubuntu.com/ubuntu/ jammy main restricted
deb http://archive.ubuntu.com/ubuntu/ jammy-updates main restricted
deb http://archive.ubuntu.com/ubuntu/ jammy universe
deb http://archive.ubuntu.com/ubuntu/ jammy-updates universe
deb http://archive.ubuntu.com/ubuntu/ jammy-backports main restricted universe multiverse
deb http://security.ubuntu.com/ubuntu/ jammy-security main restricted
deb http://security.ubuntu.com/ubuntu/ jammy-security universe
EOF
cat >"$T/src-h22/sources.list.d/pgdg.list" <<'EOF'
deb [arch=amd64 signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] http://apt.postgresql.org/pub/repos/apt jammy-pgdg main
EOF
cat >"$T/src-h22/want" <<'EOF'
Types: deb-src
URIs: http://archive.ubuntu.com/ubuntu/
Suites: jammy
Components: main restricted universe

Types: deb-src
URIs: http://archive.ubuntu.com/ubuntu/
Suites: jammy-updates
Components: main restricted universe

Types: deb-src
URIs: http://security.ubuntu.com/ubuntu/
Suites: jammy-security
Components: main restricted universe
EOF
check "apt sources: Ubuntu's one-line sources.list (heroku-22) gives its three pockets" sources_case h22 jammy

# heroku-24 (Ubuntu 24.04): deb822 ubuntu.sources with several suites per
# stanza, Signed-By kept; a third-party .sources, a disabled stanza, a
# one-line entry with options and a file apt ignores.
mkdir -p "$T/src-h24/sources.list.d"
cat >"$T/src-h24/sources.list.d/ubuntu.sources" <<'EOF'
Types: deb
URIs: http://archive.ubuntu.com/ubuntu/
Suites: noble noble-updates noble-backports
Components: main universe
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

## Ubuntu security updates.
Types: deb
URIs: http://security.ubuntu.com/ubuntu/
Suites: noble-security
Components: main universe
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
EOF
cat >"$T/src-h24/sources.list.d/pgdg.sources" <<'EOF'
Types: deb
URIs: https://apt.postgresql.org/pub/repos/apt
Suites: noble-pgdg
Components: main
Signed-By: /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc
EOF
cat >"$T/src-h24/sources.list.d/off.sources" <<'EOF'
Enabled: no
Types: deb
URIs: http://mirror.example/ubuntu
Suites: noble
Components: main
EOF
cat >"$T/src-h24/sources.list.d/extra.list" <<'EOF'
deb [ arch=amd64,arm64 signed-by=/etc/apt/keyrings/extra.gpg ] http://extra.example/ubuntu noble-security main
EOF
echo 'deb http://old.example/ubuntu noble main' >"$T/src-h24/sources.list.d/old.list.save"
cat >"$T/src-h24/want" <<'EOF'
Types: deb-src
URIs: http://extra.example/ubuntu/
Suites: noble-security
Components: main
Signed-By: /etc/apt/keyrings/extra.gpg

Types: deb-src
URIs: http://archive.ubuntu.com/ubuntu/
Suites: noble
Components: main universe
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb-src
URIs: http://archive.ubuntu.com/ubuntu/
Suites: noble-updates
Components: main universe
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb-src
URIs: http://security.ubuntu.com/ubuntu/
Suites: noble-security
Components: main universe
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
EOF
check "apt sources: deb822 (heroku-24), options, disabled and third-party entries" sources_case h24 noble

# Debian with the key inline in Signed-By: the key block is kept as it is.
mkdir -p "$T/src-inline/sources.list.d"
cat >"$T/src-inline/sources.list.d/debian.sources" <<'EOF'
Types: deb deb-src
# a comment inside the stanza
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZexample
 -----END PGP PUBLIC KEY BLOCK-----
EOF
cat >"$T/src-inline/want" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian/
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZexample
 -----END PGP PUBLIC KEY BLOCK-----
EOF
check "apt sources: an inline Signed-By key block is carried over" sources_case inline bookworm

# ---------------------------------------------------------------- first compile

app1=$(new_app app1)
cache=$H/cache
if compile first "$app1" "$cache" "$env1"; then
	pass "bin/compile, cold cache, as $(as_builder id -un 2>/dev/null || echo the builder) ($(cat "$T/first.secs") s)"
else
	fail_check "bin/compile, cold cache" "$T/first.out" "$T/first.err"
fi
bin1=$app1/vendor/memtunnel/bin/memtunnel

log_style_ok() {
	local bad
	grep -q '^-----> ' "$T/first.out" || { echo "no '-----> ' step line"; return 1; }
	bad=$(grep -vE '^(-----> |       )' "$T/first.out" || true)
	[[ -z $bad ]] || { printf 'lines out of the step/detail style:\n%s\n' "$bad"; return 1; }
}
check "bin/compile output uses '-----> ' steps and indented details only" log_style_ok

own_patches_ok() {
	local p
	for p in "$root"/buildpack/patches/wolfssl-*.patch; do
		grep -qF "memtunnel's own patch: ${p##*/}" "$T/first.out" || { echo "${p##*/} not applied"; return 1; }
	done
}
check "the first compile applies memtunnel's own wolfSSL patches to this wolfssl" own_patches_ok

# (check runs these inside `if`, where set -e does not apply: every step
# returns explicitly.)
static_ok() {
	local needed libs
	[[ -x $bin1 ]] || { echo "$bin1 missing"; return 1; }
	needed=$(readelf -d "$bin1" | awk '/\(NEEDED\)/ { print $5 }')
	libs=$(ldd "$bin1") || return 1
	printf 'NEEDED: %s\nldd:\n%s\n' "$needed" "$libs"
	! grep -Eqi 'wolfssl|libuv' <<<"$needed$libs"
}
check "the installed binary loads no shared wolfSSL or libuv" static_ok

aesni_ok() {
	[[ $(uname -m) == x86_64 ]] || { echo "not x86_64: nothing to check"; return 0; }
	grep -q 'AES-NI: compiled in' "$T/first.out" || return 1
	local n
	n=$(objdump -d --no-show-raw-insn "$bin1" | grep -cw aesenc) || true
	echo "aesenc instructions: $n"
	[[ ${n:-0} -gt 0 ]]
}
check "the binary carries the AES-NI code" aesni_ok

profile_ok() {
	local out
	# shellcheck disable=SC2016 # expanded by the inner shell
	out=$(env -i HOME="$app1" PATH=/usr/bin:/bin bash -c \
		'cd "$HOME" && . .profile.d/memtunnel.sh && command -v memtunnel && memtunnel --version')
	echo "$out"
	[[ $out == "$app1/vendor/memtunnel/bin/memtunnel"$'\n'"memtunnel "*"(wolfSSL "* ]]
}
check "a fresh shell sourcing .profile.d/memtunnel.sh runs memtunnel --version" profile_ok

# ---------------------------------------------------------------- second compile

app2=$(new_app app2)
if compile second "$app2" "$cache" "$env1"; then
	pass "bin/compile again with the same cache ($(cat "$T/second.secs") s)"
else
	fail_check "bin/compile again with the same cache" "$T/second.out" "$T/second.err"
fi
second_fast() {
	cat "$T/second.secs"
	awk -v s="$(cat "$T/second.secs")" 'BEGIN { exit !(s < 5) }'
}
check "the second compile takes under 5 s" second_fast
second_reused() {
	grep -q 'Reusing the cached build' "$T/second.out" || { cat "$T/second.out"; return 1; }
	! grep -Eq 'Fetching|Building|Compiling' "$T/second.out"
}
check "the second compile says it reused the cache and builds nothing" second_reused
check "the second compile installs a byte-identical binary" \
	cmp "$bin1" "$app2/vendor/memtunnel/bin/memtunnel"

# ---------------------------------------------------------------- the Procfile

check "the Procfile's web command sets and gets through memtunnel (TLS + SASL)" \
	bash "$here/procfile.sh" "$app1"

# ---------------------------------------------------------------- app files

app3=$(new_app app3)
mkdir -p "$app3/vendor/memtunnel/bin"
echo "the app's own file" >"$app3/vendor/memtunnel/bin/memtunnel"
[[ ${#builder[@]} -eq 0 ]] || chown -R 65534:65534 "$app3"
refuses_vendor() {
	if compile vendor "$app3" "$cache" "$env1"; then
		echo "compile succeeded"
		return 1
	fi
	cat "$T/vendor.err"
	grep -q 'vendor/memtunnel already exists' "$T/vendor.err" || return 1
	[[ $(cat "$app3/vendor/memtunnel/bin/memtunnel") == "the app's own file" ]] || return 1
	[[ ! -e $app3/.profile.d/memtunnel.sh ]]
}
check "an app's own vendor/memtunnel stops the compile and stays untouched" refuses_vendor

app4=$(new_app app4)
mkdir -p "$app4/.profile.d"
echo 'export APP_SETTING=1' >"$app4/.profile.d/memtunnel.sh"
[[ ${#builder[@]} -eq 0 ]] || chown -R 65534:65534 "$app4"
refuses_profile() {
	if compile profile "$app4" "$cache" "$env1"; then
		echo "compile succeeded"
		return 1
	fi
	cat "$T/profile.err"
	grep -q '.profile.d/memtunnel.sh already exists' "$T/profile.err" || return 1
	[[ $(cat "$app4/.profile.d/memtunnel.sh") == 'export APP_SETTING=1' ]] || return 1
	[[ ! -e $app4/vendor/memtunnel ]]
}
check "an app's own .profile.d/memtunnel.sh stops the compile and stays untouched" refuses_profile

# ---------------------------------------------------------------- source mirror

mirror=$T/mirror
if [[ -n ${MEMTUNNEL_SOURCE_MIRROR:-} ]]; then
	cp -a "$MEMTUNNEL_SOURCE_MIRROR/." "$mirror"
	pass "source mirror copied from MEMTUNNEL_SOURCE_MIRROR"
elif env -u MEMTUNNEL_SOURCE_MIRROR "$root/buildpack/build-static.sh" --make-mirror "$mirror" \
	--cache "$T/mirror-state" --work "$T/mirror-work" >"$T/mirror.log" 2>&1; then
	pass "build-static.sh --make-mirror writes a source mirror"
else
	fail_check "build-static.sh --make-mirror writes a source mirror" "$T/mirror.log"
fi
chmod -R a+rX "$mirror" 2>/dev/null || true

env2=$H/env/mirror
mkdir -p "$env2"
set_env "$env2" MEMTUNNEL_SOURCE_MIRROR "$mirror"
app5=$(new_app app5)
mirror_reuses() {
	compile mirror "$app5" "$cache" "$env2" || { cat "$T/mirror.out" "$T/mirror.err"; return 1; }
	cat "$T/mirror.out"
	grep -q 'every file matches SHA256SUMS' "$T/mirror.out" || return 1
	grep -q 'Reusing the cached build' "$T/mirror.out" || return 1
	cmp "$bin1" "$app5/vendor/memtunnel/bin/memtunnel"
}
check "a compile from the mirror resolves the same source packages (cache reused, same binary)" mirror_reuses

# A patch of memtunnel's own that does not apply to the distribution's
# wolfssl (another release) is left out with a warning, and the others
# still apply; the build goes on with them (the wolfSSL build itself, the
# one every compile runs, is left out here: MEMTUNNEL_TEST_STOP).
stale_patch_ok() {
	local bp=$T/bp-stale out=$T/stale.out
	rm -rf "$bp"
	cp -a "$root" "$bp"
	cat >"$bp/buildpack/patches/wolfssl-zz-stale.patch" <<'EOF'
A patch made for some other wolfssl release: its context is nowhere.
--- a/src/internal.c
+++ b/src/internal.c
@@ -1,3 +1,3 @@
 no such line in any release
-of wolfSSL at all
+of wolfSSL, anywhere
 at the start of internal.c
EOF
	MEMTUNNEL_TEST_STOP=patches MEMTUNNEL_SOURCE_MIRROR=$mirror "$bp/buildpack/build-static.sh" \
		--out "$T/stale-bin" --cache "$T/stale-cache" --work "$T/stale-work" >"$out" 2>&1 || { cat "$out"; return 1; }
	cat "$out"
	grep -q "warning: wolfssl-zz-stale.patch does not apply to wolfssl .*; building without it" "$out" || return 1
	grep -q "memtunnel's own patch: wolfssl-keep-input-buffer.patch" "$out" || return 1
	grep -q "stopping before the wolfSSL build" "$out" || return 1
	[[ ! -e $T/stale-bin ]] || { echo "a binary was written"; return 1; }
}
check "a wolfSSL patch of memtunnel's own that does not apply is left out with a warning" stale_patch_ok

# memtunnel is compiled through the Makefile, with its flags: the first
# compile's binary is linked with LDHARDEN's relro and now, and carries a
# build ID; a copy of the buildpack whose LDHARDEN also asks for no build ID
# compiles memtunnel again (the makefiles are in the cache key; wolfSSL's
# build is reused) into a binary without one.
makefile_flags_ok() {
	local bp=$T/bp-flags out=$T/flags.out
	# (readelf's output is read whole: grep -q could close the pipe early.)
	[[ $(readelf -lW "$bin1") == *GNU_RELRO* ]] || { echo "$bin1: no RELRO segment"; return 1; }
	[[ $(readelf -d "$bin1") == *BIND_NOW* ]] || { echo "$bin1: not linked with -z now"; return 1; }
	[[ $(readelf -n "$bin1") == *'Build ID'* ]] || { echo "$bin1: no build ID"; return 1; }
	rm -rf "$bp" "$T/flags-cache"
	cp -a "$root" "$bp"
	sed -i 's/^LDHARDEN := .*/& -Wl,--build-id=none/' "$bp/Makefile"
	grep -q -- '^LDHARDEN := .*--build-id=none' "$bp/Makefile" || { echo "no LDHARDEN line in the Makefile"; return 1; }
	mkdir -p "$T/flags-cache"
	cp -a "$cache/memtunnel/"wolfssl-* "$T/flags-cache/" || return 1
	MEMTUNNEL_SOURCE_MIRROR=$mirror "$bp/buildpack/build-static.sh" --out "$T/flags-bin" \
		--cache "$T/flags-cache" --work "$T/flags-work" >"$out" 2>&1 || { cat "$out"; return 1; }
	cat "$out"
	grep -q 'Reusing the cached wolfSSL' "$out" || return 1
	grep -q 'Compiling memtunnel' "$out" || return 1
	"$T/flags-bin" --version || return 1
	[[ $(readelf -n "$T/flags-bin") != *'Build ID'* ]] || { echo "$T/flags-bin has a build ID"; return 1; }
}
check "memtunnel is compiled with the Makefile's flags (a change to LDHARDEN reaches the static binary)" makefile_flags_ok

# bad_mirror NAME: a copy of the mirror to spoil.
bad_mirror() {
	rm -rf "${T:?}/$1"
	cp -a "$mirror" "$T/$1"
	echo "$T/$1"
}
# mirror_file DIR GLOB: the one file in the mirror matching GLOB.
mirror_file() {
	local f
	f=$(find "$1" -type f -name "$2" | head -n 1)
	[[ -n $f ]] || { echo "no $2 in $1" >&2; return 1; }
	echo "$f"
}
flip_byte() { # FILE: change one byte in the middle
	local size
	size=$(stat -c %s "$1") || return 1
	printf '\x5a' | dd of="$1" bs=1 seek=$((size / 2)) conv=notrunc status=none
}
relist() { # DIR: rewrite SHA256SUMS for the spoiled content
	(cd "$1" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort |
		xargs -d '\n' sha256sum >"$T/sums" && mv "$T/sums" SHA256SUMS)
}
# spoiled NAME DIR PATTERN: compile from DIR with a fresh cache must fail with
# PATTERN in its error output, install nothing and cache no build.
spoiled() {
	local name=$1 dir=$2 pattern=$3 app env cache
	app=$(new_app "app-$name")
	env=$H/env/$name
	cache=$H/cache-$name
	mkdir -p "$env"
	set_env "$env" MEMTUNNEL_SOURCE_MIRROR "$dir"
	chmod -R a+rX "$dir"
	if compile "$name" "$app" "$cache" "$env"; then
		echo "compile succeeded"
		return 1
	fi
	cat "$T/$name.err"
	grep -Eq -- "$pattern" "$T/$name.err" || { echo "no /$pattern/ in the error output"; return 1; }
	[[ ! -e $app/vendor/memtunnel ]] || { echo "something was installed"; return 1; }
	if compgen -G "$cache/memtunnel/memtunnel-*" >/dev/null || compgen -G "$cache/memtunnel/wolfssl-*" >/dev/null; then
		echo "a build was cached:"
		ls -la "$cache/memtunnel"
		return 1
	fi
}

spoil_flipped() {
	local d tarball
	d=$(bad_mirror flipped) && tarball=$(mirror_file "$d" 'wolfssl_*.orig.tar.*') &&
		flip_byte "$tarball" || return 1
	spoiled flipped "$d" "checksum mismatch: ${tarball//./\\.}"
}
check "a corrupted tarball in the mirror stops the build, naming the file" spoil_flipped

spoil_relisted() {
	local d tarball
	d=$(bad_mirror relisted) && tarball=$(mirror_file "$d" 'wolfssl_*.orig.tar.*') &&
		flip_byte "$tarball" && relist "$d" || return 1
	spoiled relisted "$d" "Hash Sum mismatch" || return 1
	grep -q -- "${tarball##*/}" "$T/relisted.err"
}
check "a corrupted tarball with a rewritten SHA256SUMS is caught by the signed index, naming the file" \
	spoil_relisted

spoil_unsigned() {
	local d inrelease
	d=$(bad_mirror unsigned) && inrelease=$(mirror_file "$d" InRelease) && [[ -n $inrelease ]] &&
		sed -i 's/^Date: .*/Date: Thu, 01 Jan 2015 00:00:00 UTC/' "$inrelease" && relist "$d" || return 1
	spoiled unsigned "$d" "BADSIG|not signed|signatures were invalid"
}
check "a tampered InRelease (its signature no longer matches) stops the build" spoil_unsigned

spoil_nolist() {
	local d
	d=$(bad_mirror nolist) && rm -f "$d/SHA256SUMS" || return 1
	spoiled nolist "$d" "missing checksum list: $d/SHA256SUMS"
}
check "a mirror without SHA256SUMS stops the build, naming the missing list" spoil_nolist

spoil_extra() {
	local d dir
	local dsc
	d=$(bad_mirror extra) && dsc=$(mirror_file "$d" 'wolfssl_*.dsc') || return 1
	dir=$(dirname "$dsc")
	echo "not from the archive" >"$dir/extra.patch"
	spoiled extra "$d" "not listed in .*SHA256SUMS: $dir/extra\\.patch"
}
check "a file the mirror's SHA256SUMS does not list stops the build, naming it" spoil_extra

# ---------------------------------------------------------------- mirror trust

# build_as NAME MIRROR [VAR=VALUE...]: build-static.sh as the builder from
# MIRROR, with the first compile's cache (a build of the same sources
# reuses it) and its own work directory; output in $T/NAME.out and .err.
build_as() {
	local name=$1 dir=$2
	shift 2
	chmod -R a+rX "$dir"
	mkdir -p "$H/work-$name"
	[[ ${#builder[@]} -eq 0 ]] || chown 65534:65534 "$H/work-$name"
	as_builder MEMTUNNEL_SOURCE_MIRROR="$dir" "$@" "$root/buildpack/build-static.sh" \
		--out "$H/work-$name/memtunnel" --cache "$cache/memtunnel" --work "$H/work-$name" \
		>"$T/$name.out" 2>"$T/$name.err"
}

# (a) Valid-Until. Debian's index cannot be re-signed, so the clock is
# faked for the check instead: MEMTUNNEL_TEST_NOW, a day past the earliest
# Valid-Until in the mirror (Debian's security pocket: a week after its
# Date). apt's own Valid-Until check keeps the real clock.
expired_ok() {
	local f until=0 t now
	while IFS= read -r f; do
		t=$(sed -n '/^-----BEGIN PGP SIGNATURE/q; s/^Valid-Until: //p' "$f" | head -n 1)
		[[ -n $t ]] || continue
		t=$(date -d "$t" +%s) || return 1
		[[ $until -ne 0 && $t -ge $until ]] || until=$t
	done < <(find "$mirror" -type f -name InRelease)
	[[ $until -ne 0 ]] || { echo "no InRelease of the mirror has a Valid-Until: nothing to check"; return 0; }
	now=$((until + 86400))
	if build_as expired "$mirror" MEMTUNNEL_TEST_NOW="$now"; then
		echo "a build from an index expired a day ago succeeded"
		cat "$T/expired.out" "$T/expired.err"
		return 1
	fi
	cat "$T/expired.err"
	grep -q "signed index past its Valid-Until: .* expired on " "$T/expired.err" || return 1
	grep -q "MEMTUNNEL_ALLOW_EXPIRED_INDEX=1" "$T/expired.err" || return 1
	build_as expired-allowed "$mirror" MEMTUNNEL_TEST_NOW="$now" MEMTUNNEL_ALLOW_EXPIRED_INDEX=1 ||
		{ cat "$T/expired-allowed.out" "$T/expired-allowed.err"; return 1; }
	cat "$T/expired-allowed.err"
	grep -q "warning: MEMTUNNEL_ALLOW_EXPIRED_INDEX=1: building from a signed index past its Valid-Until" \
		"$T/expired-allowed.err" || return 1
	grep -q "warning:   .* expired on " "$T/expired-allowed.err" || return 1
	"$H/work-expired-allowed/memtunnel" --version
}
check "an index past its Valid-Until stops a mirror build; MEMTUNNEL_ALLOW_EXPIRED_INDEX=1 builds, logged" expired_ok

# change_byte FILE: change the byte in the middle of FILE to another value.
change_byte() {
	local size at old new
	size=$(stat -c %s "$1") || return 1
	at=$((size / 2))
	old=$(dd if="$1" bs=1 skip="$at" count=1 status=none)
	new=Z
	[[ $old != Z ]] || new=Y
	printf '%s' "$new" | dd of="$1" bs=1 seek="$at" conv=notrunc status=none
}

# (b) One byte of a signed InRelease changed (SHA256SUMS rewritten to
# match): the signature check stops the build, naming the file.
spoil_inrelease_byte() {
	local d f
	d=$(bad_mirror inrelease-byte) && f=$(mirror_file "$d/deb.debian.org" InRelease) || return 1
	cp "$f" "$T/inrelease.orig"
	change_byte "$f" && ! cmp -s "$f" "$T/inrelease.orig" && relist "$d" || return 1
	spoiled inrelease-byte "$d" "could not verify the signed index ${f#"$d"/}"
}
check "one byte changed in a signed InRelease stops the build, naming the file" spoil_inrelease_byte

# index_versions DIR PKG: "VERSION<TAB>DIRECTORY<TAB>SOURCES-FILE" for each
# PKG that a Sources index of mirror DIR lists.
index_versions() {
	local idx
	while IFS= read -r idx; do
		xz -dc "$idx" | awk -v p="$2" -v f="$idx" '
			/^Package: / { pk = $2 } /^Version: / { v = $2 } /^Directory: / { d = $2 }
			/^$/ { if (pk == p) print v "\t" d "\t" f; pk = "" }
			END { if (pk == p) print v "\t" d "\t" f }'
	done < <(find "$1" -path '*/source/Sources.xz')
}

# older_wolfssl DIR: replace the newest wolfssl in mirror DIR by an older
# one that a signed index also lists (its genuine files, fetched from the
# archive and checked against that index); offline, or
# when no index lists an older one, by a copy of the newest .dsc under an
# older version (the refusal comes before any file is read). Prints
# "OLD NEWEST".
older_wolfssl() {
	local d=$1 lines newest old odir oidx host f name sha ndsc base
	mapfile -t lines < <(index_versions "$d" wolfssl)
	[[ ${#lines[@]} -gt 0 ]] || { echo "no wolfssl in the mirror's indexes" >&2; return 1; }
	newest=$(printf '%s\n' "${lines[@]}" | cut -f1 | while read -r v; do
		if [[ -z ${b:-} ]] || dpkg --compare-versions "$v" gt "$b"; then b=$v; fi
		echo "$b"
	done | tail -n 1)
	old=
	for f in "${lines[@]}"; do
		IFS=$'\t' read -r v dir idx <<<"$f"
		if dpkg --compare-versions "$v" lt "$newest" &&
			{ [[ -z $old ]] || dpkg --compare-versions "$v" gt "$old"; }; then
			old=$v odir=$dir oidx=$idx
		fi
	done
	ndsc=$(mirror_file "$d" "wolfssl_${newest#*:}.dsc") || return 1
	base=
	if [[ -n $old ]]; then
		# The archive's root in the mirror: the Sources index's path
		# up to /dists/.
		base=${oidx%/dists/*}
		host=http://${base#"$d"/}
		mkdir -p "$base/$odir"
		# (A file the newest shares, the upstream tarball, is copied.)
		while read -r sha name; do
			if [[ -f $(dirname "$ndsc")/$name ]]; then
				cp "$(dirname "$ndsc")/$name" "$base/$odir/$name"
				continue
			fi
			/usr/lib/apt/apt-helper download-file "$host/$odir/$name" "$base/$odir/$name" "SHA256:$sha" \
				>"$T/older-download.log" 2>&1 || { base=; break; }
		done < <(xz -dc "$oidx" | awk -v v="$old" '
			/^Package: / { pk = $2 } /^Version: / { ver = $2 }
			/^Checksums-Sha256:/ { c = 1; next } /^[^ ]/ { c = 0 }
			c && pk == "wolfssl" && ver == v { print $1, $3 }')
	fi
	if [[ -z $base ]]; then
		echo "(no genuine older wolfssl at hand: a copy of the newest .dsc stands for one)" >&2
		old="${newest}~older"
		cp "$ndsc" "$(dirname "$ndsc")/wolfssl_${old#*:}.dsc"
	fi
	rm -f "$ndsc" "$(dirname "$ndsc")/wolfssl_${newest#*:}".debian.tar.*
	relist "$d"
	echo "$old $newest"
}

# (c) The mirror carries an older wolfssl than the newest the signed
# indexes offer (a security update left out): refused, naming both.
spoil_older() {
	local d v
	d=$(bad_mirror older) && v=$(older_wolfssl "$d") || return 1
	echo "supplied and newest: $v"
	v=${v//./\\.} # (a pattern: versions hold . and +)
	v=${v//+/\\+}
	spoiled older "$d" "wolfssl ${v%% *} is older than ${v##* }, the newest the signed Sources index offers"
}
check "a mirror carrying an older wolfssl than its signed index offers stops the build, naming both" spoil_older

# The same with the pocket of the newest left out altogether, index and
# all: the mirror must carry every pocket the system installs from.
spoil_pocket() {
	local d v ndsc pocket
	d=$(bad_mirror pocket) && ndsc=$(mirror_file "$d" 'wolfssl_*.dsc') || return 1
	pocket=${ndsc%/pool/*}
	v=$(older_wolfssl "$d") || return 1
	[[ $v != *'~older '* ]] || { echo "no older wolfssl in another pocket: nothing to check"; return 0; }
	rm -rf "$pocket"
	relist "$d"
	echo "left out: ${pocket#"$d"/}; the mirror carries wolfssl ${v%% *}"
	spoiled pocket "$d" "the mirror has no signed index for .*${pocket#"$d"/}"
}
check "a mirror leaving out the pocket of the newest wolfssl stops the build, naming it" spoil_pocket

# (e) The host's apt configuration cannot weaken the checks: with an
# APT_CONFIG allowing insecure and unauthenticated repositories, a mirror
# whose InRelease has lost its signature is still refused.
spoil_apt_config() {
	local d f
	d=$(bad_mirror hostile) && f=$(mirror_file "$d/deb.debian.org" InRelease) || return 1
	awk '/^-----BEGIN PGP SIGNED MESSAGE/ { h = 1; next } h && /^$/ { h = 0; next } h { next }
		/^-----BEGIN PGP SIGNATURE/ { exit } { print }' "$f" >"$T/inrelease.unsigned" && mv "$T/inrelease.unsigned" "$f" || return 1
	relist "$d"
	cat >"$T/hostile.conf" <<'EOF'
Acquire::AllowInsecureRepositories "true";
Acquire::AllowDowngradeToInsecureRepositories "true";
Acquire::AllowWeakRepositories "true";
APT::Get::AllowUnauthenticated "true";
Acquire::Check-Valid-Until "false";
EOF
	chmod a+r "$T/hostile.conf"
	if build_as hostile "$d" APT_CONFIG="$T/hostile.conf"; then
		echo "the build from an unsigned index succeeded"
		cat "$T/hostile.out" "$T/hostile.err"
		return 1
	fi
	cat "$T/hostile.err"
	grep -q "could not verify the signed index ${f#"$d"/}" "$T/hostile.err"
}
check "a hostile APT_CONFIG (insecure repositories allowed) does not let an unsigned index through" spoil_apt_config

# (d) Two builds at once, sharing the work and cache directories, into
# different outputs. memtunnel's sources differ from the cached build's
# (a comment), so both compile it while the other runs. They start
# together: a second build started once the first was compiling had to
# check the mirror and read the indexes before the first's compile (make
# -j, a few seconds) was done, or it found the first's result cached.
concurrent_ok() {
	local bp=$T/bp-conc cc=$T/conc-cache wk=$T/conc-work left build
	rm -rf "$bp" "$cc" "$wk"
	cp -a "$root" "$bp"
	echo "/* concurrent build test */" >>"$bp/src/main.c"
	mkdir -p "$cc" "$wk"
	cp -a "$cache/memtunnel/"wolfssl-* "$cc/" || return 1
	build=$(printf 'MEMTUNNEL_SOURCE_MIRROR=%q timeout 600 %q --cache %q --work %q --out' \
		"$mirror" "$bp/buildpack/build-static.sh" "$cc" "$wk")
	"$here/../tools/pair.sh" "$T/conc" first "$build $T/conc-a" second "$build $T/conc-b" || return 1
	grep -q 'Compiling memtunnel' "$T/conc/second.out" || { echo "the second build did not compile"; return 1; }
	cmp "$T/conc-a" "$T/conc-b" || return 1
	"$T/conc-a" --version || return 1
	left=$(find "$wk" "$cc" -mindepth 1 -maxdepth 1 \( -name 'build.*' -o -name '.*' \))
	[[ -z $left ]] || { printf 'left behind:\n%s\n' "$left"; return 1; }
}
check "two builds at once sharing work and cache directories both succeed" concurrent_ok

# ---------------------------------------------------------------- Cloud Native Buildpack

# shellcheck source-path=SCRIPTDIR source=cnb.sh
. "$here/cnb.sh"

[[ ! -e $T/first-fail.txt ]] || cat "$T/first-fail.txt"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
