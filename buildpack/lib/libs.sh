# shellcheck shell=bash disable=SC2034,SC2154 # variables in and out, as listed above
# The static libraries memtunnel links: wolfSSL, configured for memtunnel
# with the CPU's AES instructions, and libuv (the system's libuv_a.a, or
# built from the libuv1 source package). Sourced by
# buildpack/build-static.sh after common.sh and source.sh; it defines
# functions only.
#
# The caller sets root, scratch, cache, temps (as for lib/source.sh), arch
# (uname -m), cc_id, os_id, os_version, jobs, libuv_mode (auto, system or
# source), and wolf_ver and wolf_dsc_sha (source_resolve wolfssl); then calls:
#   libs_init        what wolfSSL is configured with on this CPU: sets asm
#                    (aesni, armasm or none), asm_args, wolfssl_args and
#                    lib_cflags
#   libs_pick_libuv  (after source_update) which libuv: sets libuv_mode to
#                    system or source, uv_ver, and uv_id, which names it in
#                    the cache keys; from source, through source_resolve
#   libs_keys        the cache keys: lib_key (wolfSSL), uv_key (libuv from
#                    source); wolf_patch_sha, the checksum of memtunnel's own
#                    patches to wolfSSL
#   libs_build       each library from the cache, or fetched (source_fetch),
#                    patched, built, checked and cached; sets wolf_prefix
#                    (include/ and lib/libwolfssl.a), uv_inc and uv_lib
#
# Each library is cached in $cache as a prefix (include/, lib/) named
# wolfssl-KEY or libuv-KEY. A key covers the source package (the .dsc's
# SHA-256), the configure options, the assembly, the compiler, the release,
# memtunnel's own patches and the text of the functions that fetch and build
# it. A failed build shows the end of its log and ends through die; its
# files stay in $scratch.

libs_init() {
	# Which assembly the CPU family gets. x86-64: AES-NI and the AVX code,
	# both chosen at run time by CPUID, so the binary runs on any x86-64
	# CPU. arm64: wolfSSL's ARMv8 code uses the crypto extensions
	# unconditionally, so it is enabled only when this CPU has them (every
	# AWS Graviton does).
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
	#   verification instead, which needs the verify callback on success
	#   too: WOLFSSL_ALWAYS_VERIFY_CB, below (tlsconn.c refuses to build
	#   without it).
	# - no OpenSSL compatibility layer (--enable-opensslall/extra): it keeps
	#   a decoded peer certificate and more in every session (4.5 KiB);
	#   memtunnel uses wolfSSL's native and wolfCrypt calls only.
	# - --enable-aesgcm=small: the GHASH tables of the C code (1 KiB) are
	#   not used with AES-NI or ARMv8, whose code is unchanged.
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
}

libs_pick_libuv() {
	local multiarch f uv_sha
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
		read -r uv_pkg uv_ver uv_dsc_sha uv_dsc_uri < <(source_resolve libuv1) || true
		[[ -n ${uv_dsc_sha:-} && ${#uv_dsc_sha} -eq 64 ]] ||
			die "apt did not give a SHA-256 for the libuv1 .dsc"
		uv_id="source $uv_pkg $uv_ver $uv_dsc_sha"
		detail "libuv1 $uv_ver (${uv_dsc_uri%/pool/*}), built from source"
	fi
}

# build_wolfssl SRC PREFIX / build_libuv SRC PREFIX: build a patched source
# tree and install the static library and headers in PREFIX. Their text is
# part of the cache keys of the libraries they build.
build_wolfssl() (
	cd "$1" || exit 1
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
	cd "$1" || exit 1
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

libs_keys() {
	local p toolchain uv_tool
	wolf_patches=("$root"/buildpack/patches/wolfssl-*.patch)
	wolf_apply=()
	wolf_patch_sha=$(for p in "${wolf_patches[@]}"; do printf '%s %s\n' "${p##*/}" "$(sha <"$p")"; done | sha)
	toolchain="cc $cc_id"$'\n'"os $os_id $os_version $arch"$'\n'"cflags $lib_cflags"
	lib_key=$(printf '%s\n' "wolfssl $wolf_ver $wolf_dsc_sha" "args ${wolfssl_args[*]}" "asm $asm" \
		"$toolchain" "$(declare -f source_fetch build_wolfssl)" "patches $wolf_patch_sha" | sha)
	if [[ $libuv_mode == source ]]; then
		uv_tool=autotools
		! command -v cmake >/dev/null 2>&1 || uv_tool="cmake $(cmake --version | head -n 1)"
		uv_key=$(printf '%s\n' "$uv_id" "$toolchain" "$uv_tool" "$(declare -f source_fetch build_libuv)" | sha)
	fi
}

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

libs_build() {
	local t0 src p d opts
	wolf_prefix=$cache/wolfssl-$lib_key
	if [[ -f $wolf_prefix/lib/libwolfssl.a && -f $wolf_prefix/include/wolfssl/options.h ]]; then
		step "Reusing the cached wolfSSL $wolf_ver build"
	else
		step "Fetching wolfssl $wolf_ver (signature and checksums verified by apt)"
		t0=$SECONDS
		src=$(source_fetch wolfssl "$wolf_ver")
		detail "$(grep -c '^dpkg-source: info: applying' "$scratch/unpack-wolfssl.log" || true) distribution patches applied, $((SECONDS - t0)) s"
		# memtunnel's own patches change speed, never behaviour (each says
		# so in its header), and were made against one wolfssl release: one
		# that does not apply exactly to this release is left out, with a
		# warning, rather than fail a deploy.
		wolf_apply=()
		for p in "${wolf_patches[@]}"; do
			if (cd "$src" && patch -p1 --forward --batch --fuzz=0 --dry-run <"$p") >"$scratch/patch-check.log" 2>&1; then
				wolf_apply+=("$p")
				detail "memtunnel's own patch: ${p##*/}"
			else
				detail "warning: ${p##*/} does not apply to wolfssl $wolf_ver; building without it (it only saves CPU)"
			fi
		done
		# Tests only: the choice above, without the build that follows.
		if [[ ${MEMTUNNEL_TEST_STOP:-} == patches ]]; then
			detail "stopping before the wolfSSL build (MEMTUNNEL_TEST_STOP=patches)"
			exit 0
		fi
		t0=$SECONDS
		step "Building wolfSSL $wolf_ver (${asm_args[*]:-no assembly for $arch})"
		[[ $asm != none ]] || detail "warning: no AES instructions for this CPU; AES-GCM runs in software"
		build_wolfssl "$src" "$scratch/wolfssl" >"$scratch/wolfssl-build.log" 2>&1 || {
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
		return
	fi
	local uv_prefix=$cache/libuv-$uv_key
	if [[ -f $uv_prefix/lib/libuv_a.a && -f $uv_prefix/include/uv.h ]]; then
		step "Reusing the cached libuv $uv_ver build"
	else
		step "Fetching libuv1 $uv_ver (signature and checksums verified by apt)"
		t0=$SECONDS
		src=$(source_fetch libuv1 "$uv_ver")
		detail "$(grep -c '^dpkg-source: info: applying' "$scratch/unpack-libuv1.log" || true) distribution patches applied, $((SECONDS - t0)) s"
		t0=$SECONDS
		step "Building libuv $uv_ver"
		build_libuv "$src" "$scratch/libuv" >"$scratch/libuv-build.log" 2>&1 || {
			show_log "$scratch/libuv-build.log"
			die "the libuv build failed"
		}
		store_dir "$scratch/libuv" "$uv_prefix"
		detail "libuv_a.a $(du -k "$uv_prefix/lib/libuv_a.a" | cut -f1) KiB, built in $((SECONDS - t0)) s"
	fi
	uv_lib=$uv_prefix/lib/libuv_a.a
	uv_inc=$uv_prefix/include
}
