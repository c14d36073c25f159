#!/usr/bin/env bash
# Make sure the Debian packages needed to build memtunnel and/or run its
# tests are installed.
#
#   tests/deps.sh build|test|all
#
# Silent when nothing is missing. As root it installs what is missing
# (apt-get update once, then apt-get install); otherwise it prints the exact
# command to run and exits 1.
set -euo pipefail

build_pkgs=(gcc make pkg-config libuv1-dev libwolfssl-dev check)
test_pkgs=(memcached libmemcached-tools sasl2-bin openssl python3-pylibmc python3-pymemcache procps stunnel4)
# make fuzz and make valgrind only
extra_pkgs=(clang libclang-rt-14-dev valgrind)

case ${1:-} in
build) want=("${build_pkgs[@]}") ;;
test) want=("${test_pkgs[@]}") ;;
all) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
extra) want=("${extra_pkgs[@]}") ;;
*)
	echo "usage: $0 build|test|all|extra" >&2
	exit 64
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: dpkg-query not found; install these packages with your system's package manager: ${want[*]}" >&2
	exit 1
fi

missing=()
for p in "${want[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || status=
	[[ $status == installed ]] || missing+=("$p")
done
[[ ${#missing[@]} -gt 0 ]] || exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
	echo "Install them with:" >&2
	echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "deps.sh: installing missing packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
