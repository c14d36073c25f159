#!/usr/bin/env bash
# 05-cli: the command line and environment. Bad input exits 78 (bad
# configuration) or 64 (usage) with exactly one stderr line naming the flag
# or variable, and starts nothing; --help and --version exit 0; the server
# list defaults (host alone = port 11211, the provider variables,
# --tls-port) reach the listeners.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MT_* are set by start_memtunnel

# Everything else on these command lines is valid, so a bad value that slips
# through makes memtunnel start (and hit the 10 s bound: status 124).
base=(--listen 127.0.0.1:0 --ca "$PKI/ca.crt")
good=(--servers localhost:11211)

# expect_exit STATUS NAME [VAR=VALUE...] -- ARGS...: memtunnel ARGS, with
# those variables set, exits STATUS with one stderr line naming NAME and
# nothing on stdout.
expect_exit() {
	local want=$1 name=$2 envs args status err
	[[ -x $MEMTUNNEL ]] || fail "memtunnel is built" "$MEMTUNNEL is missing (run make)"
	shift 2
	split_env "$@"
	status=0
	env "${envs[@]}" timeout -k 2 10 "$MEMTUNNEL" "${args[@]}" >"$T/cli.out" 2>"$T/cli.err" </dev/null || status=$?
	err=$(cat "$T/cli.err")
	local what="${envs[*]}${envs[*]:+ }${args[*]}"
	what=${what//"$PKI"/PKI}
	what=${what//"$T"/T}
	[[ $status == "$want" ]] || fail "'$what' exits $want" "got $status" "stderr: $err"
	[[ $(wc -l <"$T/cli.err") == 1 ]] || fail "'$what' prints exactly one line on stderr" "stderr: $err"
	[[ $err == *"$name"* ]] || fail "'$what': the stderr line names $name" "stderr: $err"
	[[ ! -s $T/cli.out ]] || fail "'$what' prints nothing on stdout" "stdout: $(cat "$T/cli.out")"
	ok "exit $want, one line naming $name: $what"
}

# ---- configuration errors: 78 --------------------------------------------
expect_exit 78 --servers -- "${base[@]}" --servers 'a:99999'
expect_exit 78 --servers -- "${base[@]}" --servers 'a:0'
expect_exit 78 --servers -- "${base[@]}" --servers 'mc1:11211,mc2:port'
expect_exit 78 --servers -- "${base[@]}" --servers '[::1:11211'
expect_exit 78 --servers -- "${base[@]}" --servers ' , '
expect_exit 78 --verify -- "${base[@]}" "${good[@]}" --verify maybe
expect_exit 78 --tls-min -- "${base[@]}" "${good[@]}" --tls-min 1.0
expect_exit 78 --tls-min -- "${base[@]}" "${good[@]}" --tls-min 1.1
expect_exit 78 --tls-port -- "${base[@]}" "${good[@]}" --tls-port 70000
expect_exit 78 --log-level -- "${base[@]}" "${good[@]}" --log-level loud
expect_exit 78 --connect-timeout -- "${base[@]}" "${good[@]}" --connect-timeout -1
expect_exit 78 --connect-timeout -- "${base[@]}" "${good[@]}" --connect-timeout 0
expect_exit 78 --idle-timeout -- "${base[@]}" "${good[@]}" --idle-timeout soon
expect_exit 78 --listen -- --ca "$PKI/ca.crt" "${good[@]}" --listen 127.0.0.1:99999
expect_exit 78 --ca -- --listen 127.0.0.1:0 "${good[@]}" --ca "$T/no-such-ca.pem"
expect_exit 78 MEMCACHIER_SERVERS MEMCACHIER_SERVERS='mc1.example.com:11211,mc2.example.com:garbage' -- "${base[@]}"
expect_exit 78 MEMCACHIER_SERVERS MEMCACHIER_SERVERS='[garbage' -- "${base[@]}"
expect_exit 78 MEMTUNNEL_SERVERS MEMTUNNEL_SERVERS='a:99999' -- "${base[@]}"
expect_exit 78 MEMTUNNEL_VERIFY MEMTUNNEL_VERIFY=maybe -- "${base[@]}" "${good[@]}"
expect_exit 78 MEMTUNNEL_TLS_MIN MEMTUNNEL_TLS_MIN=1.0 -- "${base[@]}" "${good[@]}"
expect_exit 78 MEMTUNNEL_CA MEMTUNNEL_CA='not a pem' -- --listen 127.0.0.1:0 "${good[@]}"
expect_exit 78 --servers -- "${base[@]}"

# ---- usage errors: 64 ----------------------------------------------------
expect_exit 64 --bogus -- "${base[@]}" "${good[@]}" --bogus
expect_exit 64 --servers -- "${base[@]}" --servers

# ---- --help, --version -----------------------------------------------------
status=$(run_memtunnel "$T/help.out" "$T/help.err" --help)
assert_eq 0 "$status" "--help exits 0"
assert_match "$(cat "$T/help.out")" 'usage: memtunnel' "--help prints the usage on stdout"
assert_match "$(cat "$T/help.out")" '--servers' "--help lists --servers"
assert_eq "" "$(cat "$T/help.err")" "--help prints nothing on stderr"
status=$(run_memtunnel "$T/version.out" "$T/version.err" --version)
assert_eq 0 "$status" "--version exits 0"
assert_match "$(head -n1 "$T/version.out")" '^memtunnel [0-9]+\.[0-9]+\.[0-9]+' "--version prints memtunnel X.Y.Z"

# ---- where the server list comes from ------------------------------------
start_memcached MC
start_memtunnel DEFPORT "${base[@]}" --servers localhost
wait_log "$T/DEFPORT.log" "at=listening local=127\.0\.0\.1:$DEFPORT_PORT upstream=localhost:11211"
ok "--servers localhost means localhost:11211"
stop_memtunnel DEFPORT

MEMCACHIER_SERVERS="localhost:$MC_PORT" MEMCACHE_SERVERS=localhost:1 start_memtunnel SRC "${base[@]}"
wait_log "$T/SRC.log" "at=listening local=127\.0\.0\.1:$SRC_PORT upstream=localhost:$MC_PORT"
out=$(mcload --port "$SRC_PORT" setget 2>&1) || fail "setget through the listener from MEMCACHIER_SERVERS" "$out"
assert_match "$out" 'ok=1' "without --servers, MEMCACHIER_SERVERS is tunneled (before MEMCACHE_SERVERS)"
stop_memtunnel SRC

MEMCACHIER_SERVERS=localhost:1 start_memtunnel FLAG "${base[@]}" --servers "127.0.0.1:$MC_PORT"
wait_log "$T/FLAG.log" "at=listening local=127\.0\.0\.1:$FLAG_PORT upstream=127\.0\.0\.1:$MC_PORT"
ok "--servers wins over MEMCACHIER_SERVERS"
stop_memtunnel FLAG

start_memtunnel TLSPORT "${base[@]}" --servers "localhost:11211, 127.0.0.1" --tls-port "$MC_PORT"
read -r p1 p2 <<<"$TLSPORT_PORTS"
wait_log "$T/TLSPORT.log" "at=listening local=127\.0\.0\.1:$p2 upstream=127\.0\.0\.1:$MC_PORT"
for p in "$p1" "$p2"; do
	out=$(mcload --port "$p" setget 2>&1) || fail "setget through 127.0.0.1:$p with --tls-port" "$out"
done
ok "--tls-port replaces every upstream's port (two listeners, both reach the server)"
stop_memtunnel TLSPORT
