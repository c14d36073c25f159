# shellcheck shell=bash
# Shared helpers for the integration scenarios (tests/integration/NN-*.sh).
#
#   . "$(dirname "$0")/../lib.sh"
#
# Sourcing it gives the scenario:
#   $T        a fresh temporary directory, removed on exit
#   $PKI      the test PKI (tests/pki.sh), shared through MEMTUNNEL_TEST_PKI
#   $ROOT     the repository root; $MEMTUNNEL, $MCLOAD, $PY the programs used
#             (defaults: bin/memtunnel and build/default/tools/mcload, as a
#             plain `make` and `make tools` build them)
# and an EXIT trap that stops every process this scenario started (by pid,
# nothing else) and dumps the logs in $T when the scenario failed.
#
# Results are printed TAP-style: `ok N - what` for each passed check and
# `not ok N - what` followed by the details and the logs for the first
# failure, after which the scenario exits 1.
#
# Processes:
#   start_memcached VAR [--cert NAME] [--sasl USER PASS] [--ascii-auth USER PASS]
#                   [--port P] [--notls-port P] [--extra "ARGS"]
#       memcached with TLS (-Z, $PKI/NAME-chain.crt + NAME.key, default
#       server) on 127.0.0.1 plus a plaintext `notls:` listener, -I 2m;
#       sets VAR_PORT (TLS), VAR_NOTLS_PORT, VAR_PID; logs in $T/VAR.log.
#       --sasl makes it -S with one PLAIN user in its own sasldb.
#       --ascii-auth makes it -Y with one user in its own auth file
#       ($T/VAR.authfile, `USER:PASS`; no space in either): every
#       connection, the plaintext one too, must log in first (mc_* below
#       do with MC_ASCII_LOGIN set).
#       --extra "-l ::1" adds a TLS listener on ::1, its port in VAR_PORT6.
#   stop_memcached VAR / restart_memcached VAR [--extra "ARGS"]
#       (same ports, same options; --extra replaces the extra arguments)
#   start_tls_terminator VAR BACKEND_PORT [CERT]
#       stunnel as a TLS server on 127.0.0.1 in front of a plaintext port
#       (memcached's notls), certificate $PKI/CERT-chain.crt (server); sets
#       VAR_PORT, VAR_PID. For pipelined load: memcached 1.6.18's own TLS
#       stalls on pipelined requests (see 30-bytes.sh).
#   start_memtunnel VAR ARGS...
#       "$MEMTUNNEL" ARGS in the background, stdout $T/VAR.out, stderr
#       $T/VAR.log; waits for the MEMCACHE_SERVERS= line and sets VAR_PID,
#       VAR_SERVERS (the list), VAR_PORTS (space separated) and VAR_PORT
#       (the first). Environment prefixes (X=y start_memtunnel ...) reach it.
#   stop_memtunnel VAR        SIGTERM, bounded wait, asserts exit status 0
#   assert_alive VAR          the process is still running
#   bg_start VAR CMD...       CMD in the background (stdin /dev/null, stdout
#                             $T/VAR.out, stderr $T/VAR.log); sets VAR_PID
#   bg_stop VAR               SIGTERM, bounded wait; sets VAR_STATUS (not
#                             in $(...): only this shell can reap it)
#   run_memtunnel OUT ERR ARGS...  memtunnel in the foreground, bounded by
#                             10 s; prints its exit status (124: it hung)
#   run_check NAME ENV... -- ARGS...  memtunnel check ARGS with the VAR=VALUE
#                             words ENV added, bounded by 20 s; stdout
#                             $T/NAME.out, stderr $T/NAME.err; sets $status
#                             and $out (the stdout)
#
# Checks and tools:
#   ok DESC | fail DESC [DETAILS...] | assert_eq WANT GOT DESC
#   assert_le A B DESC | assert_lt A B DESC | assert_match TEXT REGEX DESC
#   wait_log FILE REGEX [TIMEOUT]  count_log FILE REGEX  wait_until TIMEOUT CMD...
#   wait_count FILE REGEX N [TIMEOUT]
#   rss_kb PID   cpu_ticks PID ($hz a second)   mcload ARGS...   mc_stat PORT NAME   mc_get PORT KEY
#   mc_set PORT KEY VALUE   tcp_probe PORT [PAYLOAD] [TIMEOUT]   now_ms
#   free_port   py_run ARGS... ($PY with tests/mcread.py importable)
#   MC_ASCII_LOGIN="USER PASS" mc_stat|mc_get|mc_set ...: log in first
#   (memcached -Y), the login's STORED not shown
#   split_env ENV... -- ARGS...  the words before -- into the array envs,
#   those after it into the array args (declare both local in the caller)
#   rnd   12 random hex digits (for user names and passwords)
#
# Every reader of memcache replies frames them by their lengths (the VALUE
# or VA line's, the binary header's body length), never by looking for END
# in the bytes: values in the tests hold protocol text on purpose. Python
# readers use tests/mcread.py.

set -euo pipefail
shopt -s nullglob

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$TESTS_DIR/.." && pwd)
MEMTUNNEL=${MEMTUNNEL:-$ROOT/bin/memtunnel}
MCLOAD=${MCLOAD:-$ROOT/build/default/tools/mcload}
PY=${PY:-/usr/bin/python3}
SCENARIO=$(basename "$0" .sh)

# The scenarios say where every setting comes from: nothing from the caller's
# environment (a developer's MEMCACHIER_SERVERS, say) may leak in.
_lib_pki=${MEMTUNNEL_TEST_PKI:-}
unset "${!MEMTUNNEL_@}" MEMCACHIER_SERVERS MEMCACHEDCLOUD_SERVERS MEMCACHE_SERVERS \
	MEMCACHIER_USERNAME MEMCACHIER_PASSWORD MEMCACHEDCLOUD_USERNAME MEMCACHEDCLOUD_PASSWORD \
	MEMCACHE_USERNAME MEMCACHE_PASSWORD DYNO
[[ -z $_lib_pki ]] || export MEMTUNNEL_TEST_PKI=$_lib_pki
# memtunnel is not dumpable by default, so a scenario run by another user
# than root could not read its /proc/PID/fd (the descriptor counts of
# 85-90 and 94). 95-secrets tests the default, as root.
[[ $EUID -eq 0 ]] || export MEMTUNNEL_DUMPABLE=1

T=$(mktemp -d "${TMPDIR:-/tmp}/memtunnel-$SCENARIO.XXXXXX")
PKI=${MEMTUNNEL_TEST_PKI:-$T/pki}

_lib_pids=()        # every process started here and not yet reaped
_lib_n=0            # checks so far
_lib_dumped=0

_lib_cleanup() {
	local status=$? pid
	set +e
	if [[ $status -ne 0 ]]; then
		[[ -e $T/.failed ]] ||
			echo "not ok $((_lib_n + 1)) - $SCENARIO stopped with status $status (line ${_lib_line:-?})"
		dump_logs
	fi
	for pid in "${_lib_pids[@]}"; do
		_lib_running "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${_lib_pids[@]}"; do
		_lib_wait_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [[ -n ${KEEP_TMP:-} ]]; then
		echo "# kept $T"
	else
		rm -rf "$T"
	fi
	exit "$status"
}
trap _lib_cleanup EXIT
trap '_lib_line=$LINENO' ERR
trap 'exit 143' TERM
trap 'exit 130' INT

# ---------------------------------------------------------------- reporting

ok() {
	_lib_n=$((_lib_n + 1))
	echo "ok $_lib_n - $*"
}

# fail DESC [DETAIL...]: report the failed check and exit 1; the EXIT trap
# dumps the logs. Inside $(...) the report goes to stderr, so it is not
# swallowed, and the caller's set -e ends the scenario.
fail() {
	_lib_n=$((_lib_n + 1))
	((BASH_SUBSHELL == 0)) || exec 1>&2
	: >"$T/.failed"
	echo "not ok $_lib_n - $1"
	shift
	[[ $# -eq 0 ]] || printf '%s\n' "$@" | sed 's/^/#   /'
	exit 1
}

assert_eq() {
	[[ $1 == "$2" ]] || fail "$3" "want: $1" "got:  $2"
	ok "$3"
}

_lib_int() { [[ $1 =~ ^[0-9]+$ ]]; }

# assert_le A B DESC / assert_lt A B DESC: non-negative integers.
assert_le() {
	{ _lib_int "$1" && _lib_int "$2"; } || fail "$3" "not integers: '$1' '$2'"
	((10#$1 <= 10#$2)) || fail "$3" "want $1 <= $2"
	ok "$3"
}

assert_lt() {
	{ _lib_int "$1" && _lib_int "$2"; } || fail "$3" "not integers: '$1' '$2'"
	((10#$1 < 10#$2)) || fail "$3" "want $1 < $2"
	ok "$3"
}

assert_match() {
	[[ $1 =~ $2 ]] || fail "$3" "text:  $1" "regex: $2"
	ok "$3"
}

# dump_logs: the last 50 lines of every log and output file in $T, once.
dump_logs() {
	[[ $_lib_dumped -eq 0 ]] || return 0
	_lib_dumped=1
	local f
	for f in "$T"/*.log "$T"/*.out; do
		[[ -s $f ]] || continue
		echo "# ---- ${f##*/} (last 50 lines)"
		tail -n 50 "$f" | sed 's/^/#   /'
	done
}

# ---------------------------------------------------------------- waiting

now_ms() {
	local t=$EPOCHREALTIME
	echo $((${t%.*} * 1000 + 10#${t#*.} / 1000))
}

# wait_until SECONDS CMD...: run CMD every 20 ms until it succeeds; returns
# 1 after SECONDS (a whole number).
wait_until() {
	local deadline=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		(($(now_ms) < deadline)) || return 1
		sleep 0.02
	done
}

_lib_grep() { grep -Eq -- "$2" "$1" 2>/dev/null; }

# wait_log FILE REGEX [TIMEOUT]: wait (default 10 s) for a line matching
# REGEX (extended) in FILE; fails the scenario on timeout.
wait_log() {
	wait_until "${3:-10}" _lib_grep "$1" "$2" ||
		fail "a line matching /$2/ in ${1##*/} within ${3:-10} s"
}

# wait_count FILE REGEX N [TIMEOUT]: wait (default 10 s) until at least N
# lines match REGEX, then print how many do (the caller asserts the number).
wait_count() {
	wait_until "${4:-10}" _lib_count_ge "$1" "$2" "$3" || true
	count_log "$1" "$2"
}

_lib_count_ge() { (($(count_log "$1" "$2") >= $3)); }

# count_log FILE REGEX: number of lines matching REGEX.
count_log() {
	local n
	n=$(grep -Ec -- "$2" "$1" 2>/dev/null) || true
	echo "${n:-0}"
}

# _lib_running PID: PID exists and is not a zombie.
_lib_running() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

_lib_not_running() { ! _lib_running "$1"; }

# _lib_wait_exit PID TIMEOUT: wait for PID to exit (not reaped).
_lib_wait_exit() { wait_until "$2" _lib_not_running "$1"; }

_lib_track() { _lib_pids+=("$1"); }

_lib_untrack() {
	local p keep=()
	for p in "${_lib_pids[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	_lib_pids=("${keep[@]}")
}

# ---------------------------------------------------------------- tools

# built_with_asan BINARY: whether BINARY is an AddressSanitizer build.  The
# output is taken whole first: `ldd | grep -q` under pipefail fails
# whenever grep exits before ldd has written everything (SIGPIPE).
built_with_asan() {
	[[ $(ldd "$1" 2>/dev/null) == *libasan* ]]
}

# rss_bounded: whether memtunnel's ($MT_PID, $MEMTUNNEL) VmRSS measures its
# own memory: not under valgrind (tests/valgrind.sh) or AddressSanitizer
# (make sanitize), whose allocators keep what is freed.
rss_bounded() {
	[[ $(cat "/proc/$MT_PID/comm") != memcheck* ]] && ! built_with_asan "$MEMTUNNEL"
}

# cpu_ticks PID: its user + system time, in clock ticks ($hz a second).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# shellcheck disable=SC2034 # read by the scenarios
hz=$(getconf CLK_TCK)

rss_kb() {
	local v
	v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || true
	[[ -n $v ]] || fail "VmRSS of pid $1" "no /proc/$1/status"
	echo "$v"
}

mcload() {
	[[ -x $MCLOAD ]] || fail "mcload is built" "$MCLOAD is missing (run make tools)"
	"$MCLOAD" "$@"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# split_env ENV... -- ARGS...: the words before -- into the array envs,
# the words after it into the array args; the caller's, when it declares
# them local (`local envs args`).
split_env() {
	envs=()
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	args=("$@")
}

# rnd: 12 random hex digits, for a user name or a password nobody else has.
rnd() { od -An -N6 -tx1 /dev/urandom | tr -d ' \n'; }

# py_run ARGS...: $PY with tests/ on its module path (import mcread), and
# no __pycache__ left in the tree. A function: in bg_start, use env with
# the same two variables and "$PY" instead, so that the pid tracked is
# python's.
py_run() { PYTHONPATH=$TESTS_DIR${PYTHONPATH:+:$PYTHONPATH} PYTHONDONTWRITEBYTECODE=1 "$PY" "$@"; }

# _lib_text_cmd PORT CMD: one text-protocol command on a plaintext port,
# prints the reply lines (CR stripped) up to END/STORED/... or EOF. For
# replies made of lines only (stats, set, version): a VALUE line, whose data
# block only its length can frame, fails it (mc_get reads values).
_lib_text_cmd() {
	local port=$1 cmd=$2 fd line status=0
	exec {fd}<>"/dev/tcp/127.0.0.1/$port" || return 1
	_lib_ascii_login "$fd" || { exec {fd}>&-; return 1; }
	printf '%s' "$cmd" >&"$fd"
	while IFS= read -r -t 5 line <&"$fd"; do
		line=${line%$'\r'}
		case $line in
		VALUE\ *) status=1 && break ;;
		esac
		printf '%s\n' "$line"
		case $line in
		END | STORED | NOT_STORED | DELETED | NOT_FOUND | ERROR | VERSION\ * | *_ERROR*) break ;;
		esac
	done
	exec {fd}>&-
	return "$status"
}

# _lib_ascii_login FD: when MC_ASCII_LOGIN is "USER PASS", send memcached
# -Y's login on FD and read its STORED; fails on any other answer.
_lib_ascii_login() {
	local line
	[[ -n ${MC_ASCII_LOGIN:-} ]] || return 0
	printf 'set login 0 0 %d\r\n%s\r\n' "${#MC_ASCII_LOGIN}" "$MC_ASCII_LOGIN" >&"$1"
	IFS= read -r -t 5 line <&"$1" && [[ $line == $'STORED\r' ]] && return 0
	echo "login on fd $1: ${line:-no answer}" >&2
	return 1
}

# mc_stat PORT NAME: the value of one general statistic, via a plaintext port.
mc_stat() {
	local v
	v=$(_lib_text_cmd "$1" $'stats\r\n' | awk -v n="$2" '$1 == "STAT" && $2 == n { print $3 }')
	[[ -n $v ]] || fail "stat $2 on port $1" "no STAT $2 in the reply"
	echo "$v"
}

# mc_get PORT KEY: the value stored under KEY, empty if none. The data
# block is read by the length in the VALUE line, so any text in it (an END
# line too) is part of the value; fails on a malformed reply. For values
# without NUL bytes, which $(...) drops.
mc_get() {
	local fd line status=1 re=$'^VALUE [^ ]+ [0-9]+ ([0-9]+)\r$'
	exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
	_lib_ascii_login "$fd" || { exec {fd}>&-; return 1; }
	printf 'get %s\r\n' "$2" >&"$fd"
	IFS= read -r -t 5 line <&"$fd" || line=
	if [[ $line =~ $re ]]; then
		# head -c reads no further than the count: the socket keeps the
		# CR LF and END that follow.
		timeout 5 head -c "${BASH_REMATCH[1]}" <&"$fd" &&
			IFS= read -r -t 5 line <&"$fd" && [[ $line == $'\r' ]] &&
			IFS= read -r -t 5 line <&"$fd" && [[ $line == $'END\r' ]] && status=0
	elif [[ $line == $'END\r' ]]; then
		status=0
	fi
	exec {fd}>&-
	[[ $status -eq 0 ]] || echo "mc_get $1 $2: malformed reply" >&2
	return "$status"
}

# mc_set PORT KEY VALUE: store VALUE (ASCII, CR LF allowed); succeeds on STORED.
mc_set() {
	local r
	r=$(_lib_text_cmd "$1" "set $2 0 0 ${#3}"$'\r\n'"$3"$'\r\n')
	[[ $r == STORED ]]
}

# tcp_probe PORT [PAYLOAD] [TIMEOUT]: connect to 127.0.0.1:PORT, send
# PAYLOAD (backslash escapes such as \r\n are decoded), then read until the
# peer closes or TIMEOUT seconds (default 5) pass. Prints one line:
#   closed MS BYTES     the peer closed (EOF or reset) after MS ms, having
#                       sent BYTES bytes
#   open MS BYTES       still open at the timeout
#   refused MS 0        nothing listens
# MS counts from just before the connect.
tcp_probe() {
	"$PY" - "$1" "${2:-}" "${3:-5}" <<'EOF'
import socket, sys, time
port, payload, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
payload = payload.encode().decode("unicode_escape").encode("latin-1")
t0 = time.monotonic()
ms = lambda: int((time.monotonic() - t0) * 1000)
s = socket.socket()
try:
    s.connect(("127.0.0.1", port))
except ConnectionRefusedError:
    print("refused", ms(), 0)
    sys.exit(0)
got = 0
try:
    if payload:
        s.sendall(payload)
    s.settimeout(timeout)
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
except socket.timeout:
    print("open", ms(), got)
    sys.exit(0)
except (ConnectionResetError, BrokenPipeError):
    pass
print("closed", ms(), got)
EOF
}

# ---------------------------------------------------------------- PKI

"$TESTS_DIR/pki.sh" "$PKI" >"$T/pki.log" 2>&1 || {
	fail "test PKI in $PKI" "$(cat "$T/pki.log")"
}
rm -f "$T/pki.log"

# ---------------------------------------------------------------- memcached

# _lib_binary_version PORT: a binary-protocol VERSION gets a 0x81 response
# (a -S server answers nothing in the text protocol).
_lib_binary_version() {
	local fd b
	{ exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf '\x80\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' >&"$fd"
	LC_ALL=C IFS= read -r -N 1 -t 5 b <&"$fd" || b=
	exec {fd}>&-
	[[ $b == $'\x81' ]]
}

_lib_text_version() {
	local r
	r=$(_lib_text_cmd "$1" $'version\r\n' 2>/dev/null) || return 1
	[[ $r == VERSION\ * ]]
}

# _lib_tls_answers PORT: a TLS handshake on PORT completes (with the test
# client certificate, for servers that require one, when $PKI has one: a
# scenario may point PKI at a directory of its own).
_lib_tls_answers() {
	local id=()
	[[ ! -f $PKI/client.crt ]] || id=(-cert "$PKI/client.crt" -key "$PKI/client.key")
	openssl s_client -connect "127.0.0.1:$1" -CAfile "$PKI/ca.crt" "${id[@]}" \
		-brief </dev/null 2>&1 |
		grep -q '^Protocol version'
}

_lib_port_file_ready() { [[ -s $1 ]]; }

start_memcached() {
	local var=$1 cert=server sasl_user='' sasl_pass='' ascii_user='' ascii_pass='' port=-1 notls=0 extra=''
	shift
	while [[ $# -gt 0 ]]; do
		case $1 in
		--cert) cert=$2; shift 2 ;;
		--sasl) sasl_user=$2; sasl_pass=$3; shift 3 ;;
		--ascii-auth) ascii_user=$2; ascii_pass=$3; shift 3 ;;
		--port) port=$2; shift 2 ;;
		--notls-port) notls=$2; shift 2 ;;
		--extra) extra=$2; shift 2 ;;
		*) fail "start_memcached: unknown option $1" ;;
		esac
	done
	# Remember the options, so restart_memcached can repeat them.
	printf -v "${var}_OPTS" '%s' "$(declare -p cert sasl_user sasl_pass ascii_user ascii_pass extra)"
	_lib_start_memcached "$var" "$cert" "$sasl_user" "$sasl_pass" "$port" "$notls" "$extra" \
		"$ascii_user" "$ascii_pass"
}

_lib_start_memcached() {
	local var=$1 cert=$2 sasl_user=$3 sasl_pass=$4 port=$5 notls=$6 extra=$7
	local ascii_user=${8:-} ascii_pass=${9:-}
	local portfile=$T/$var.ports pid p tls_port='' notls_port='' env=() args=()
	[[ -f $PKI/$cert-chain.crt ]] || fail "start_memcached $var: no certificate $cert in $PKI"
	args=(-u root -U 0 -p "$port" -l 127.0.0.1 -l "notls:127.0.0.1:$notls" -I 2m -m 1024 -c 4096
		-Z -o "ssl_chain_cert=$PKI/$cert-chain.crt,ssl_key=$PKI/$cert.key")
	if [[ -n $sasl_user ]]; then
		local sdir=$T/$var.sasl
		mkdir -p "$sdir"
		printf 'mech_list: plain\nsasldb_path: %s\n' "$sdir/sasldb2" >"$sdir/memcached.conf"
		rm -f "$sdir/sasldb2"
		printf '%s' "$sasl_pass" | saslpasswd2 -p -a memcached -c -f "$sdir/sasldb2" "$sasl_user" ||
			fail "saslpasswd2 for $var"
		env=("SASL_CONF_PATH=$sdir")
		args+=(-S)
	fi
	if [[ -n $ascii_user ]]; then
		printf '%s:%s\n' "$ascii_user" "$ascii_pass" >"$T/$var.authfile"
		args+=(-Y "$T/$var.authfile")
	fi
	# shellcheck disable=SC2206 # --extra is split on purpose
	[[ -z $extra ]] || args+=($extra)
	rm -f "$portfile" "$portfile.lck"
	env "${env[@]}" MEMCACHED_PORT_FILENAME="$portfile" memcached "${args[@]}" >>"$T/$var.log" 2>&1 &
	pid=$!
	_lib_track "$pid"
	printf -v "${var}_PID" '%s' "$pid"
	if ! wait_until 10 _lib_port_file_ready "$portfile"; then
		fail "memcached $var starts (memcached ${args[*]})"
	fi
	# The port file lists both listeners; which one is plaintext is found by
	# asking, not assumed from the order. The notls listener is listed last
	# in practice, so it is asked first: a plaintext probe on the TLS port
	# works too but leaves accept() noise in memcached's log.
	local probe=_lib_text_version
	[[ -z $sasl_user ]] || probe=_lib_binary_version
	# -Y: the probe logs in first (MC_ASCII_LOGIN is local to this call).
	local MC_ASCII_LOGIN=${MC_ASCII_LOGIN:-}
	[[ -z $ascii_user ]] || MC_ASCII_LOGIN="$ascii_user $ascii_pass"
	while read -r p; do
		if [[ -z $notls_port ]] && $probe "$p"; then
			notls_port=$p
		else
			tls_port=$p
		fi
	done < <(awk '/^TCP INET: / { print $3 }' "$portfile" | tac)
	[[ -n $tls_port && -n $notls_port ]] ||
		fail "memcached $var has a TLS and a plaintext listener" "$(cat "$portfile")"
	_lib_tls_answers "$tls_port" ||
		fail "memcached $var completes a TLS handshake on port $tls_port"
	[[ $port == -1 || $port == "$tls_port" ]] ||
		fail "memcached $var listens on TLS port $port" "got $tls_port"
	printf -v "${var}_PORT" '%s' "$tls_port"
	printf -v "${var}_NOTLS_PORT" '%s' "$notls_port"
	# A TLS listener on ::1 (--extra "-l ::1") gets a port of its own.
	printf -v "${var}_PORT6" '%s' "$(awk '/^TCP INET6: / { print $3; exit }' "$portfile")"
}

stop_memcached() {
	local pidvar=${1}_PID
	local pid=${!pidvar}
	kill -TERM "$pid" 2>/dev/null || true
	_lib_wait_exit "$pid" 10 || fail "memcached $1 (pid $pid) exits after SIGTERM"
	wait "$pid" 2>/dev/null || true
	_lib_untrack "$pid"
}

restart_memcached() {
	local optvar=${1}_OPTS portvar=${1}_PORT notlsvar=${1}_NOTLS_PORT
	local cert sasl_user sasl_pass ascii_user='' ascii_pass='' extra
	eval "${!optvar}"
	if [[ ${2:-} == --extra ]]; then
		extra=$3
		printf -v "$optvar" '%s' "$(declare -p cert sasl_user sasl_pass ascii_user ascii_pass extra)"
	fi
	_lib_start_memcached "$1" "$cert" "$sasl_user" "$sasl_pass" "${!portvar}" "${!notlsvar}" "$extra" \
		"$ascii_user" "$ascii_pass"
}

# ---------------------------------------------------------------- stunnel

start_tls_terminator() {
	local var=$1 backend=$2 cert=${3:-server} port pid
	port=$(free_port)
	cat >"$T/$var.conf" <<EOF
foreground = yes
pid =
debug = 4
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
[memcached]
accept = 127.0.0.1:$port
connect = 127.0.0.1:$backend
cert = $PKI/$cert-chain.crt
key = $PKI/$cert.key
EOF
	stunnel4 "$T/$var.conf" </dev/null >"$T/$var.log" 2>&1 &
	pid=$!
	_lib_track "$pid"
	printf -v "${var}_PID" '%s' "$pid"
	printf -v "${var}_PORT" '%s' "$port"
	wait_until 10 _lib_tls_answers "$port" ||
		fail "stunnel $var serves TLS on 127.0.0.1:$port"
}

# ---------------------------------------------------------------- memtunnel

_lib_servers_line() { grep -q '^MEMCACHE_SERVERS=' "$1"; }

# _lib_memtunnel_up OUT PID: it printed its servers line, or it exited.
_lib_memtunnel_up() { _lib_servers_line "$1" || _lib_not_running "$2"; }

start_memtunnel() {
	local var=$1 pid line status=0
	shift
	[[ -x $MEMTUNNEL ]] || fail "memtunnel is built" "$MEMTUNNEL is missing (run make)"
	: >"$T/$var.out"
	: >"$T/$var.log"
	"$MEMTUNNEL" "$@" >"$T/$var.out" 2>"$T/$var.log" &
	pid=$!
	_lib_track "$pid"
	printf -v "${var}_PID" '%s' "$pid"
	wait_until 10 _lib_memtunnel_up "$T/$var.out" "$pid" ||
		fail "memtunnel $var prints MEMCACHE_SERVERS= within 10 s ($*)"
	if ! _lib_servers_line "$T/$var.out"; then
		wait "$pid" || status=$?
		_lib_untrack "$pid"
		fail "memtunnel $var starts ($*)" "exited with status $status before printing MEMCACHE_SERVERS="
	fi
	line=$(grep -m1 '^MEMCACHE_SERVERS=' "$T/$var.out")
	line=${line#MEMCACHE_SERVERS=}
	[[ $line =~ ^127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+)*$ ]] ||
		fail "memtunnel $var prints a well-formed MEMCACHE_SERVERS line" "got: $line"
	printf -v "${var}_SERVERS" '%s' "$line"
	local ports=${line//127.0.0.1:/}
	ports=${ports//,/ }
	printf -v "${var}_PORTS" '%s' "$ports"
	printf -v "${var}_PORT" '%s' "${ports%% *}"
}

assert_alive() {
	local pidvar=${1}_PID
	_lib_running "${!pidvar}" || fail "memtunnel $1 is still running"
	ok "memtunnel $1 is still running"
}

stop_memtunnel() {
	local pidvar=${1}_PID status=0
	local pid=${!pidvar}
	_lib_running "$pid" || fail "memtunnel $1 is running before SIGTERM"
	kill -TERM "$pid"
	_lib_wait_exit "$pid" 10 || fail "memtunnel $1 exits within 10 s of SIGTERM"
	wait "$pid" || status=$?
	_lib_untrack "$pid"
	assert_eq 0 "$status" "memtunnel $1 exits 0 on SIGTERM"
}

# ---------------------------------------------------------------- others

bg_start() {
	local var=$1 pid
	shift
	"$@" </dev/null >"$T/$var.out" 2>"$T/$var.log" &
	pid=$!
	_lib_track "$pid"
	printf -v "${var}_PID" '%s' "$pid"
}

bg_stop() {
	local pidvar=${1}_PID status=0
	local pid=${!pidvar}
	kill -TERM "$pid" 2>/dev/null || true
	_lib_wait_exit "$pid" 10 || fail "$1 (pid $pid) exits within 10 s of SIGTERM"
	wait "$pid" || status=$?
	_lib_untrack "$pid"
	printf -v "${1}_STATUS" '%s' "$status"
}

# run_memtunnel OUT ERR ARGS...: run memtunnel in the foreground (bounded by
# 10 s), stdout to OUT, stderr to ERR; prints its exit status (124: hung).
run_memtunnel() {
	local out=$1 err=$2 status=0
	shift 2
	[[ -x $MEMTUNNEL ]] || fail "memtunnel is built" "$MEMTUNNEL is missing (run make)"
	timeout -k 2 10 "$MEMTUNNEL" "$@" >"$out" 2>"$err" </dev/null || status=$?
	echo "$status"
}

# run_check NAME ENV... -- ARGS...: memtunnel check ARGS with ENV (VAR=VALUE
# words) added to the environment, bounded by 20 s; stdout in $T/NAME.out,
# stderr in $T/NAME.err; sets $status (its exit status) and $out (stdout).
run_check() {
	local name=$1 envs args
	shift
	split_env "$@"
	status=0
	env "${envs[@]}" timeout -k 2 20 "$MEMTUNNEL" check "${args[@]}" >"$T/$name.out" 2>"$T/$name.err" </dev/null ||
		status=$?
	out=$(cat "$T/$name.out")
}
