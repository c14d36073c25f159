#!/usr/bin/env bash
# Build the libFuzzer targets and run each for a bounded time.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     SECONDS per target, default 60
#
# Targets (tests/fuzz/NAME_fuzz.c, seeds in tests/fuzz/corpus/NAME/):
#   config  config_parse: command line, environment, server lists, and
#           childenv_build on what it accepts
#   pem     tls_ctx_new with inline PEM (MEMTUNNEL_CA, _CERT, _KEY)
#   cert    certinfo_parse_der on a server's certificate
#   ident   the identity rules (ident.c): a reference identity against one
#           SAN, checked against the rules restated
#   auth    auth_reply: the server's answer to --auth's login, checked
#           against what a success is
#   mcframe the framers of --reuse (mcframe.c): client and server bytes in
#           any cuts give the same state and account for every byte;
#           generated conversations are judged OK, and not OK with one
#           reply too many
#
# Everything is built with clang into build/fuzz/: src/*.c except main.c
# with -fsanitize=fuzzer-no-link,address,undefined, each target linked
# with -fsanitize=fuzzer,address,undefined. Inputs the fuzzer finds are
# kept in build/fuzz/corpus/NAME/ (the seeds in the repository are only
# read); a crash, leak, timeout or broken contract leaves its input in
# build/fuzz/artifacts/ and fails the run. One line per target, then
# `N passed, N failed`.
#
# The TLS library is the distribution's, not instrumented: inside it only
# what ASan's interceptors see is checked, and coverage guides the fuzzer
# through memtunnel's code.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(config pem cert ident auth mcframe)
[[ $secs =~ ^[0-9]+$ && $secs -ge 1 ]] || {
	echo "usage: $0 [SECONDS] [TARGET...]" >&2
	exit 64
}

CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || {
	echo "fuzz: $CC is not installed (apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
}
out=$root/build/fuzz
mkdir -p "$out/obj" "$out/artifacts"

warn=(-std=gnu11 -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes)
# shellcheck disable=SC2054 # the commas belong to the flags
san=(-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all)
read -ra pkg_cflags <<<"$(pkg-config --cflags libuv wolfssl)"
read -ra pkg_libs <<<"$(pkg-config --libs libuv wolfssl)"

# build: every object from scratch (a few seconds), so no stale object of
# another compiler or flag set is ever linked.
echo "# building with $("$CC" --version | head -n1)"
rm -f "$out"/obj/*.o
objs=()
for src in "$root"/src/*.c; do
	[[ ${src##*/} != main.c ]] || continue
	obj=$out/obj/$(basename "$src" .c).o
	"$CC" "${warn[@]}" "${san[@]}" -fsanitize=fuzzer-no-link "${pkg_cflags[@]}" -I"$root/src" \
		-c -o "$obj" "$src"
	objs+=("$obj")
done
for t in "${targets[@]}"; do
	[[ -f $here/${t}_fuzz.c ]] || {
		echo "fuzz: no target $t ($here/${t}_fuzz.c)" >&2
		exit 64
	}
	"$CC" "${warn[@]}" "${san[@]}" -fsanitize=fuzzer "${pkg_cflags[@]}" -I"$root/src" \
		-o "$out/${t}_fuzz" "$here/${t}_fuzz.c" "${objs[@]}" "${pkg_libs[@]}"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
for t in "${targets[@]}"; do
	corpus=$out/corpus/$t
	mkdir -p "$corpus"
	args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$t-")
	[[ ! -f $here/$t.dict ]] || args+=(-dict="$here/$t.dict")
	log=$out/$t.log
	status=0
	"$out/${t}_fuzz" "${args[@]}" "$corpus" "$here/corpus/$t" >"$log" 2>&1 || status=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1) || true
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2) || true
	units=$(find "$corpus" -type f | wc -l)
	if [[ $status -eq 0 && -n $runs ]]; then
		passed=$((passed + 1))
		printf 'PASS %-8s %ss, %s runs, coverage %s, %s inputs found\n' "$t" "$secs" "$runs" "${cov:-?}" "$units"
	else
		failed=$((failed + 1))
		printf 'FAIL %-8s exit %s; log %s\n' "$t" "$status" "$log"
		grep -E 'ERROR|contract broken|SUMMARY|Test unit written|runtime error|^    #[0-9] ' "$log" |
			head -n 24 | sed 's/^/    /' || true
	fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
