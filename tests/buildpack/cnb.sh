# shellcheck shell=bash
# shellcheck disable=SC2154 # app1, env1, root, cache, bin1...: run.sh sets them
# The buildpack as a Cloud Native Buildpacks lifecycle runs it (Buildpack API
# 0.10): buildpack.toml, bin/detect and bin/build as a non-root user in an app
# directory it cannot write, with the CNB variables and the build settings
# as files in <platform>/env/; the layers' TOML and contents; the Procfile's
# command in the launch environment the lifecycle makes from the layers;
# a second build on the restored layers; a stale key; a corrupted source.
#
# Sourced by tests/buildpack/run.sh after its first compile and its source
# mirror: it uses run.sh's checks (check, pass, fail_check), its build user
# (as_builder), the mirror ($mirror and its spoilers) and the first
# compile's cache ($cache), binary ($bin1) and settings ($env1: the archive,
# or the MEMTUNNEL_SOURCE_MIRROR given to run.sh). That cache's wolfSSL
# build and verified index lists are restored as the lifecycle restores a
# cache layer: the CNB build compiles memtunnel only.

C=$H/cnb
mkdir -p "$C/platform/env" "$C/workspace"
# The app directory belongs to root: the build user can read it, not write.
cp "$app1/Procfile" "$app1/app.py" "$C/workspace/"
chmod -R a+rX,go-w "$C/workspace"
cp -a "$env1/." "$C/platform/env/"
printf '2' >"$C/platform/env/MEMTUNNEL_BUILD_JOBS"
chmod -R a+rX,go-w "$C/platform"
: >"$C/plan.toml"
: >"$C/bp-plan.toml"
[[ ${#builder[@]} -eq 0 ]] || chown 65534:65534 "$C/plan.toml"
# shellcheck source=/dev/null
cnb_target=$(. /etc/os-release && printf '%s\t%s' "$ID" "$VERSION_ID")
case $(uname -m) in
x86_64) cnb_arch=amd64 ;;
aarch64) cnb_arch=arm64 ;;
*) cnb_arch=$(uname -m) ;;
esac

# cnb_run NAME LAYERS EXE [VAR=VALUE...]: bin/EXE as the lifecycle runs it,
# as the build user, from the app directory, with the CNB variables (and
# those given); stdout and stderr in $T/NAME.out and .err, seconds in
# $T/NAME.secs.
cnb_run() {
	local name=$1 layers=$2 exe=$3 t0 status=0
	shift 3
	t0=$EPOCHREALTIME
	(cd "$C/workspace" && as_builder CNB_PLATFORM_DIR="$C/platform" CNB_BUILDPACK_DIR="$root" \
		CNB_BUILD_PLAN_PATH="$C/plan.toml" CNB_LAYERS_DIR="$layers" CNB_BP_PLAN_PATH="$C/bp-plan.toml" \
		CNB_TARGET_OS=linux CNB_TARGET_ARCH="$cnb_arch" \
		CNB_TARGET_DISTRO_NAME="${cnb_target%%$'\t'*}" CNB_TARGET_DISTRO_VERSION="${cnb_target##*$'\t'}" \
		"$@" timeout -k 5 900 "$root/bin/$exe") >"$T/$name.out" 2>"$T/$name.err" || status=$?
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", b - a }' >"$T/$name.secs"
	return "$status"
}

# new_layers NAME: an empty <layers>/<buildpack id> for the build user.
new_layers() {
	rm -rf "${C:?}/$1"
	mkdir -p "$C/$1"
	[[ ${#builder[@]} -eq 0 ]] || chown 65534:65534 "$C/$1"
	echo "$C/$1"
}

# restore LAYERS: what the lifecycle leaves of a build's layers for the
# next one: the cache = true layers, their TOML without [types]; nothing
# else.
restore() {
	local toml
	for toml in "$1"/*.toml; do
		if python3 -c 'import sys, tomllib; sys.exit(not tomllib.load(open(sys.argv[1], "rb")).get("types", {}).get("cache"))' "$toml"; then
			python3 - "$toml" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
out, skip = [], False
for line in lines:
    if line.strip().startswith("["):
        skip = line.strip() == "[types]"
    if not skip:
        out.append(line)
open(sys.argv[1], "w").write("\n".join(out))
PY
		else
			rm -rf "${toml%.toml}" "$toml"
		fi
	done
	find "$1" -maxdepth 1 -type f ! -name '*.toml' -delete
}

# toml_get FILE TABLE KEY: the value, as Python prints it ("" if absent).
toml_get() {
	python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb")).get(sys.argv[2], {}).get(sys.argv[3], ""))' "$@"
}

app_listing() { find "$C/workspace" -printf '%P %y %s %m %u %T@\n' | LC_ALL=C sort; }

descriptor_ok() {
	python3 - "$root/buildpack.toml" "$(sed -n 's/^VERSION[[:space:]]*:\{0,1\}=[[:space:]]*//p' "$root/Makefile")" <<'PY'
import sys, tomllib
d = tomllib.load(open(sys.argv[1], "rb"))
bp = d["buildpack"]
want = {(a, n, v) for a in ("amd64", "arm64")
        for n, v in (("ubuntu", "24.04"), ("debian", "12"))}
got = {(t["arch"], x["name"], x["version"]) for t in d["targets"] if t["os"] == "linux"
       for x in t["distros"]}
print(d["api"], bp["id"], bp["version"], sorted(got))
assert d["api"] == "0.10", "api"
assert bp["version"] == sys.argv[2], "version %s, the Makefile's %s" % (bp["version"], sys.argv[2])
assert bp["id"] and bp["name"] and bp["homepage"] and bp["licenses"], "id, name, homepage, licenses"
assert got == want, "targets"
PY
}
check "buildpack.toml: API 0.10, memtunnel's version, linux amd64/arm64 on Ubuntu 24.04 and Debian 12" descriptor_ok

cnb_detect_ok() {
	local layers
	layers=$(new_layers detect)
	cnb_run cnb-detect "$layers" detect || { cat "$T/cnb-detect.err"; return 1; }
	[[ ! -s $T/cnb-detect.out && ! -s $T/cnb-detect.err ]] || { cat "$T/cnb-detect.out" "$T/cnb-detect.err"; return 1; }
	[[ ! -s $C/plan.toml ]] || { echo "it wrote a build plan:"; cat "$C/plan.toml"; return 1; }
}
check "bin/detect with the CNB variables passes (exit 0), quietly, with an empty build plan" cnb_detect_ok

# ---------------------------------------------------------------- first build

L1=$(new_layers layers)
# The first compile's wolfSSL build and index lists, restored as the
# lifecycle restores a cache layer (its TOML without [types]).
mkdir -p "$L1/build-cache"
cp -a "$cache/memtunnel/"wolfssl-* "$L1/build-cache/"
[[ ! -d $cache/memtunnel/apt-lists ]] || cp -a "$cache/memtunnel/apt-lists" "$L1/build-cache/"
printf '[metadata]\nos = "%s %s"\narch = "%s"\n' "${cnb_target%%$'\t'*}" "${cnb_target##*$'\t'}" \
	"$(uname -m)" >"$L1/build-cache.toml"
[[ ${#builder[@]} -eq 0 ]] || chown -R 65534:65534 "$L1"
app_listing >"$T/cnb-app.before"
if cnb_run cnb-build "$L1" build; then
	pass "bin/build as $(as_builder id -un 2>/dev/null || echo the builder), read-only app, wolfSSL from the cache layer ($(cat "$T/cnb-build.secs") s)"
else
	fail_check "bin/build as the build user" "$T/cnb-build.out" "$T/cnb-build.err"
fi
cnb_bin=$L1/memtunnel/bin/memtunnel

cnb_untouched() {
	app_listing | diff -u "$T/cnb-app.before" - || return 1
	# (And it could not have written there.)
	! as_builder touch "$C/workspace/probe" 2>/dev/null
}
check "bin/build leaves the app directory as it was (and cannot write to it)" cnb_untouched

cnb_style_ok() {
	local bad
	grep -qx '## memtunnel' "$T/cnb-build.out" || { echo "no '## memtunnel' header"; return 1; }
	grep -Eq '^- Done \(finished in [0-9.]+s\)$' "$T/cnb-build.out" || { echo "no '- Done' line"; return 1; }
	grep -q 'using config var MEMTUNNEL_BUILD_JOBS' "$T/cnb-build.out" || return 1
	[[ ! -f $env1/MEMTUNNEL_SOURCE_MIRROR ]] || grep -q 'using config var MEMTUNNEL_SOURCE_MIRROR' "$T/cnb-build.out"
	bad=$(grep -vE '^(## |- |  - |$)' "$T/cnb-build.out" || true)
	[[ -z $bad ]] || { printf 'lines out of the CNB style:\n%s\n' "$bad"; return 1; }
}
check "bin/build output: a '## ' header, '- ' steps, '  - ' details; settings from <platform>/env/" cnb_style_ok

cnb_toml_ok() {
	local t=$L1/memtunnel.toml k
	cat "$t" "$L1/build-cache.toml" || return 1
	[[ $(toml_get "$t" types launch) == True && $(toml_get "$t" types cache) == True &&
		$(toml_get "$t" types build) == False ]] || { echo "memtunnel.toml: not launch + cache only"; return 1; }
	for k in key memtunnel os arch wolfssl libuv source build; do
		[[ -n $(toml_get "$t" metadata "$k") ]] || { echo "no metadata $k"; return 1; }
	done
	[[ $(toml_get "$t" metadata key) =~ ^[0-9a-f]{64}$ ]] || return 1
	[[ $(toml_get "$t" metadata arch) == "$(uname -m)" ]] || return 1
	grep -qF "wolfssl $(toml_get "$t" metadata wolfssl) (" "$T/cnb-build.out" || { echo "metadata wolfssl is not the one built"; return 1; }
	# The key is bin/compile's: the same inputs, the same cache entry.
	[[ -f $cache/memtunnel/memtunnel-$(toml_get "$t" metadata key) ]] || { echo "not bin/compile's key"; return 1; }
	[[ $(toml_get "$L1/build-cache.toml" types cache) == True &&
		$(toml_get "$L1/build-cache.toml" types launch) == False ]] || { echo "build-cache.toml: not cache only"; return 1; }
}
check "memtunnel.toml: launch + cache, [metadata] keyed as bin/compile's cache; build-cache.toml: cache only" cnb_toml_ok

cnb_binary_ok() {
	local needed vline
	[[ -x $cnb_bin ]] || { echo "$cnb_bin missing"; return 1; }
	needed=$(readelf -d "$cnb_bin" | awk '/\(NEEDED\)/ { print $5 }')
	echo "NEEDED: $needed"
	! grep -Eqi 'wolfssl|libuv' <<<"$needed" || return 1
	vline=$("$cnb_bin" --version) || return 1
	echo "$vline"
	[[ $vline == "memtunnel $(toml_get "$L1/memtunnel.toml" metadata memtunnel) "* ]] || return 1
	if [[ $(uname -m) == x86_64 ]] && grep -qw aes /proc/cpuinfo; then
		[[ $vline == *AES-NI* ]] || return 1
	fi
	cmp "$bin1" "$cnb_bin"
}
check "the layer's memtunnel: wolfSSL and libuv static, AES as --version reports, bin/compile's very binary" cnb_binary_ok

check "the Procfile's web command in the CNB launch environment (bash -c) sets and gets through memtunnel (TLS + SASL)" \
	bash "$here/procfile.sh" "$C/workspace" "$L1"

# ---------------------------------------------------------------- restored

stat -c '%i %Y' "$cnb_bin" >"$T/cnb-bin.stat" 2>/dev/null || true
sha256sum <"$cnb_bin" >"$T/cnb-bin.sha" 2>/dev/null || true
restore "$L1"
if cnb_run cnb-again "$L1" build; then
	pass "bin/build again on the restored layers ($(cat "$T/cnb-again.secs") s)"
else
	fail_check "bin/build again on the restored layers" "$T/cnb-again.out" "$T/cnb-again.err"
fi
cnb_again_ok() {
	cat "$T/cnb-again.out"
	awk -v s="$(cat "$T/cnb-again.secs")" 'BEGIN { exit !(s < 5) }' || { echo "took $(cat "$T/cnb-again.secs") s"; return 1; }
	grep -q 'Reusing memtunnel from the cached layer' "$T/cnb-again.out" || return 1
	! grep -Eq 'Fetching|Building|Compiling|Installing' "$T/cnb-again.out" || return 1
	[[ $(stat -c '%i %Y' "$cnb_bin") == "$(cat "$T/cnb-bin.stat")" ]] || { echo "the binary was replaced"; return 1; }
	sha256sum <"$cnb_bin" | cmp - "$T/cnb-bin.sha" || return 1
	[[ $(toml_get "$L1/memtunnel.toml" types launch) == True && $(toml_get "$L1/memtunnel.toml" types cache) == True ]]
}
check "the second build reuses the restored layer in under 5 s, says so, and leaves the binary as it was" cnb_again_ok

cnb_stale_ok() {
	local key
	key=$(toml_get "$L1/memtunnel.toml" metadata key)
	restore "$L1"
	sed -i "s/$key/$(printf '0%.0s' {1..64})/" "$L1/memtunnel.toml"
	touch "$L1/memtunnel/stale-marker"
	cnb_run cnb-stale "$L1" build || { cat "$T/cnb-stale.out" "$T/cnb-stale.err"; return 1; }
	cat "$T/cnb-stale.out"
	grep -q 'Removing the stale memtunnel layer' "$T/cnb-stale.out" || return 1
	grep -q 'Installing memtunnel into the launch layer' "$T/cnb-stale.out" || return 1
	[[ ! -e $L1/memtunnel/stale-marker ]] || { echo "the stale layer's files are still there"; return 1; }
	[[ $(toml_get "$L1/memtunnel.toml" metadata key) == "$key" ]] || return 1
	cmp "$bin1" "$cnb_bin"
}
check "a restored layer with another key is removed and built again" cnb_stale_ok

# ---------------------------------------------------------------- corrupted source

cnb_spoiled_ok() {
	local d tarball t
	d=$(bad_mirror cnb-flipped) && tarball=$(mirror_file "$d" 'wolfssl_*.orig.tar.*') &&
		flip_byte "$tarball" || return 1
	chmod -R a+rX "$d"
	printf '%s' "$d" >"$C/platform/env/MEMTUNNEL_SOURCE_MIRROR"
	restore "$L1"
	cnb_run cnb-spoiled "$L1" build && { echo "the build succeeded"; return 1; }
	rm -f "$C/platform/env/MEMTUNNEL_SOURCE_MIRROR"
	[[ ! -f $env1/MEMTUNNEL_SOURCE_MIRROR ]] || cp "$env1/MEMTUNNEL_SOURCE_MIRROR" "$C/platform/env/"
	cat "$T/cnb-spoiled.err"
	grep -qF "checksum mismatch: $tarball" "$T/cnb-spoiled.err" || return 1
	[[ ! -e $L1/memtunnel && ! -e $L1/memtunnel.toml ]] || { echo "a memtunnel layer is left"; ls -la "$L1"; return 1; }
	for t in "$L1"/*.toml; do
		[[ $(toml_get "$t" types cache) != True ]] || { echo "$t claims cache = true"; return 1; }
	done
}
check "MEMTUNNEL_SOURCE_MIRROR in <platform>/env/ with a corrupted tarball fails bin/build, naming the file, with no layer left to cache" cnb_spoiled_ok
