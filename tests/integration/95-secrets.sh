#!/usr/bin/env bash
# 95-secrets: nothing secret reaches memtunnel's output. One wrapper-mode
# run with everything a real dyno holds:
#   - SASL credentials (MEMCACHIER_USERNAME / MEMCACHIER_PASSWORD, used by
#     the child through the tunnel against memcached -S);
#   - inline PEM: MEMTUNNEL_CA, and a client certificate and key
#     (MEMTUNNEL_CERT, MEMTUNNEL_KEY) that the server requires (stunnel,
#     requireCert, in front of memcached);
#   - --log-level debug and stats every second;
#   - traffic, a verify failure (a second node with a certificate from an
#     unknown CA) and, at the end, the fatal path (MEMTUNNEL_TEST_FATAL_AFTER).
# Then configuration errors that involve the same material: a broken
# MEMTUNNEL_CA, a broken MEMTUNNEL_KEY, and a server list with
# credentials in it.
# In all of memtunnel's stdout and stderr there must be none of: the
# password, the user name, a line of any PEM's base64, a PEM header, the
# private key's scalar (hex) or its DER in base64.
# Then what the app and other users can see, memtunnel running as user
# nobody (skipped, saying so, without root and setpriv): with inline
# MEMTUNNEL_CA/_CERT/_KEY and MEMTUNNEL_USERNAME/_PASSWORD none of these is
# in the app's environment (the app's own credentials are); memtunnel is
# not dumpable (its /proc files belong to root, nobody cannot read its
# environ), the app is as dumpable as without memtunnel, and no line of the
# key is left in memtunnel's /proc/PID/environ. With the *_FILE variables
# the paths stay in the app's environment, and MEMTUNNEL_DUMPABLE=1 keeps
# memtunnel dumpable. Tunnel-only mode is not dumpable either.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_*, BAD_*, RUN_* are set by lib.sh

user=u$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
pass=Pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
start_memcached MC --sasl "$user" "$pass"
start_memcached BAD --cert unknownca

# The TLS server that requires the client certificate: stunnel in front of
# memcached's plaintext port (memcached's own TLS, with client
# certificates required, refuses every session resumption: see
# 96-mtls-resume.sh).
MTLS_PORT=$(free_port)
cat >"$T/mtls.conf" <<EOF
foreground = yes
pid =
debug = 4
[memcached]
accept = 127.0.0.1:$MTLS_PORT
connect = 127.0.0.1:$MC_NOTLS_PORT
cert = $PKI/server-chain.crt
key = $PKI/server.key
CAfile = $PKI/ca.crt
verifyChain = yes
requireCert = yes
EOF
bg_start MTLS stunnel4 "$T/mtls.conf"
# binary_version PORT [CERT KEY]: a binary-protocol version request over
# TLS; prints `version V`, `closed` or `error KIND`.
binary_version() {
	py_run - "$PKI/ca.crt" "$@" <<'EOF' 2>&1 || true
import socket, ssl, sys
import mcread
ca, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=ca)
if len(sys.argv) > 3:
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
try:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"\x80\x0b" + b"\x00" * 22)
            print("version", mcread.Reader(s).binary().value.decode())
except mcread.Closed:
    print("closed")
except (OSError, ssl.SSLError) as e:
    print("error", e.__class__.__name__)
EOF
}
mtls_up() { [[ $(binary_version "$MTLS_PORT" "$PKI/client.crt" "$PKI/client.key") == version* ]]; }
wait_until 10 mtls_up || fail "stunnel with client certificates answers" "$(cat "$T/MTLS.log")"
ok "the server answers a client with the test client's certificate"
without=$(binary_version "$MTLS_PORT")
assert_match "$without" '^(closed|error)' "without a client certificate the server refuses ($without)"

# The secrets, one per line, in $T/secrets (kept out of every log).
{
	echo "$pass"
	echo "$user"
	for f in "$PKI/ca.crt" "$PKI/client.crt" "$PKI/client.key"; do
		# Every base64 line of the PEM (the short last lines too, above 16
		# characters).
		grep -v -- '-----' "$f" | awk 'length($0) >= 16'
	done
	echo "-----BEGIN"
	echo "PRIVATE KEY"
	# The key's scalar in hex, with and without colons, and its DER.
	openssl pkey -in "$PKI/client.key" -noout -text | awk '/^priv:/ { p = 1; next } /^[^ ]/ { p = 0 } p' |
		tr -d ' \n' | tee >(tr -d ':' >"$T/priv.hex") >"$T/priv.colons"
	echo
	cat "$T/priv.hex"
	echo
	openssl pkey -in "$PKI/client.key" -outform DER | base64 -w0 | cut -c1-40
	echo
} >"$T/secrets.txt"
grep -v '^$' "$T/secrets.txt" >"$T/secrets"
rm -f "$T/secrets.txt"
n=$(wc -l <"$T/secrets")
assert_le 10 "$n" "$n secret strings to look for"

# The child: SASL traffic through the tunnel with the credentials from its
# environment, a connection to the bad node, then it waits for the fatal
# error, which comes 10 s after start: beside two busy loops the traffic
# once took more than the 4 s this used to allow. Its own output names no
# secret.
cat >"$T/child.sh" <<'EOF'
set -u
first=${MEMCACHIER_SERVERS%%,*}
second=${MEMCACHIER_SERVERS##*,}
for i in 1 2 3; do
	"$MCLOAD" --port "${first##*:}" --binary --username "$MEMCACHIER_USERNAME" \
		--password "$MEMCACHIER_PASSWORD" setget --size 10k >/dev/null || exit 1
done
"$MCLOAD" --port "${first##*:}" --binary --username "$MEMCACHIER_USERNAME" \
	--password "$MEMCACHIER_PASSWORD" pipeline --depth 1 --conns 2 --ops 2000 >/dev/null || exit 1
"$MCLOAD" --port "${second##*:}" --binary --username "$MEMCACHIER_USERNAME" \
	--password "$MEMCACHIER_PASSWORD" --timeout 5 setget >/dev/null 2>&1 && exit 2
echo "child: traffic done" >&2
sleep 30
EOF
export MCLOAD
start=$(now_ms)
status=0
# shellcheck disable=SC2016 # MEMCACHIER_* are the child's
env MEMCACHIER_SERVERS="localhost:$MTLS_PORT,localhost:$BAD_PORT" \
	MEMCACHIER_USERNAME="$user" MEMCACHIER_PASSWORD="$pass" \
	MEMTUNNEL_CA="$(cat "$PKI/ca.crt")" MEMTUNNEL_CERT="$(cat "$PKI/client.crt")" \
	MEMTUNNEL_KEY="$(cat "$PKI/client.key")" MEMTUNNEL_LOG_LEVEL=debug MEMTUNNEL_STATS_INTERVAL=1 \
	MEMTUNNEL_TEST_FATAL_AFTER=10 MEMTUNNEL_GRACE=1 \
	timeout -k 2 20 "$MEMTUNNEL" -- bash "$T/child.sh" >"$T/RUN.out" 2>"$T/RUN.log" </dev/null || status=$?
echo "# the run took $(($(now_ms) - start)) ms, exit $status; $(wc -l <"$T/RUN.log") lines on stderr"
assert_eq 70 "$status" "the run ends on the injected fatal error (exit 70)"
assert_eq 1 "$(count_log "$T/RUN.log" '^child: traffic done$')" "the child's SASL traffic through the tunnel succeeded"
assert_le 1 "$(count_log "$T/RUN.log" 'level=warn at=verify-failed .*reason="unknown issuer"')" "the verify failure was logged"
assert_le 1 "$(count_log "$T/RUN.log" 'level=debug ')" "debug lines were logged"
assert_le 1 "$(count_log "$T/RUN.log" ' at=stats ')" "stats lines were logged"
auths=$(mcload --port "$MC_NOTLS_PORT" --binary --username "$user" --password "$pass" stats --stat auth_cmds 2>&1) ||
	fail "memcached's auth_cmds" "$auths"
assert_le 5 "$auths" "memcached saw the SASL authentications ($auths)"

# Configuration errors around the same material.
# expect_error NAME STATUS ENV...: memtunnel with ENV exits STATUS.
expect_error() {
	local name=$1 want=$2 st=0
	shift 2
	env "$@" timeout -k 2 10 "$MEMTUNNEL" --servers "localhost:$MC_PORT" -- true \
		>"$T/$name.out" 2>"$T/$name.log" </dev/null || st=$?
	assert_eq "$want" "$st" "$name: memtunnel exits $want"
	echo "# $name: $(head -n1 "$T/$name.log")"
}
marker=$(head -n1 "$T/secrets")
expect_error BADCA 78 MEMTUNNEL_CA="-----BEGIN CERTIFICATE-----
$marker
$(sed -n 2p "$PKI/client.key")
-----END CERTIFICATE-----"
# A key whose base64 is broken (its second line replaced by the password).
expect_error BADKEY 78 MEMTUNNEL_CA="$(cat "$PKI/ca.crt")" MEMTUNNEL_CERT="$(cat "$PKI/client.crt")" \
	MEMTUNNEL_KEY="$(sed "2s/.*/$marker/" "$PKI/client.key")"
status=0
env MEMCACHIER_SERVERS="$user:$pass@localhost:$MC_PORT" timeout -k 2 10 "$MEMTUNNEL" -- true \
	>"$T/CREDLIST.out" 2>"$T/CREDLIST.log" </dev/null || status=$?
echo "# CREDLIST (exit $status): $(head -n1 "$T/CREDLIST.log")"
assert_le 1 "$status" "a server list with credentials in it is refused (exit $status)"

found=0
for f in RUN BADCA BADKEY CREDLIST; do
	for s in out log; do
		while IFS= read -r secret; do
			if grep -qF -- "$secret" "$T/$f.$s"; then
				found=$((found + 1))
				echo "# $f.$s contains secret text: ${secret:0:6}..."
			fi
		done <"$T/secrets"
	done
done
assert_eq 0 "$found" "none of the $(wc -l <"$T/secrets") secret strings appears in any output"

# ---- What the app and other users can see of memtunnel ----------------------
# memtunnel runs as user nobody here (setpriv), so that /proc shows whether
# it is dumpable: the /proc/PID files of a process that is not are owned by
# root, and its own user cannot read its environ. The child reports its
# environment's names, its own dumpable state (prctl) and its pid, then
# waits for a release file.
if [[ $EUID -ne 0 ]] || ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1; then
	echo "ok $((_lib_n + 1)) - # SKIP the process checks need root, setpriv and user nobody"
	exit 0
fi
as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"; }
chmod 711 "$T"
mkdir -m 755 "$T/pub"
mkdir -m 700 "$T/app"
chown nobody "$T/app"
cp "$PKI/ca.crt" "$PKI/client.crt" "$PKI/client.key" "$T/pub/"
chmod 644 "$T/pub/"*
cat >"$T/pub/app.py" <<'EOF'
import ctypes, os, sys, time
report, release = sys.argv[1], sys.argv[2]
prctl = ctypes.CDLL(None, use_errno=True).prctl
with open(report + ".tmp", "w") as f:
    f.write("pid %d\n" % os.getpid())
    f.write("dumpable %d\n" % prctl(3, 0, 0, 0, 0))  # PR_GET_DUMPABLE
    for k in sorted(os.environ):
        f.write("env %s\n" % k)
os.rename(report + ".tmp", report)
for _ in range(1000):
    if os.path.exists(release):
        break
    time.sleep(0.02)
EOF
# The app's own dumpable state without memtunnel, for comparison.
# (Released at once: the release file given exists.)
as_nobody "$PY" "$T/pub/app.py" "$T/app/BARE.report" "$T/pub/app.py"
bare_dumpable=$(sed -n 's/^dumpable //p' "$T/app/BARE.report")

# wrap_app NAME ENV...: memtunnel (as nobody, wrapper mode, with exactly
# ENV) around app.py; waits for the report. Sets NAME_PID (memtunnel's).
wrap_app() {
	local name=$1
	shift
	bg_start "$name" env -i PATH="$PATH" LC_ALL=C.UTF-8 "$@" \
		setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
		"$MEMTUNNEL" --servers "localhost:$MC_PORT" -- "$PY" "$T/pub/app.py" \
		"$T/app/$name.report" "$T/app/$name.release"
	wait_until 10 test -s "$T/app/$name.report" || fail "$name: the app starts under memtunnel" "$(cat "$T/$name.log")"
}
# release_app NAME: let the app exit; memtunnel exits 0 with it.
release_app() {
	local pid=${1}_PID status=0
	: >"$T/app/$1.release"
	_lib_wait_exit "${!pid}" 10 || fail "$1: memtunnel exits with the app"
	wait "${!pid}" || status=$?
	_lib_untrack "${!pid}"
	assert_eq 0 "$status" "$1: memtunnel and the app exit 0"
}
# app_env NAME: the names in the app's environment, one line.
app_env() { sed -n 's/^env //p' "$T/app/$1.report" | paste -sd' '; }
# owner PID: the owner of /proc/PID/environ (root when not dumpable).
owner() { stat -c %U "/proc/$1/environ"; }

# Inline material and memtunnel's own credentials.
key_lines=$(grep -v -- '-----' "$PKI/client.key")
wrap_app INLINE MEMTUNNEL_CA="$(cat "$PKI/ca.crt")" MEMTUNNEL_CERT="$(cat "$PKI/client.crt")" \
	MEMTUNNEL_KEY="$(cat "$PKI/client.key")" MEMTUNNEL_USERNAME="$user" MEMTUNNEL_PASSWORD="$pass" \
	MEMCACHIER_PASSWORD="app-$pass"
names=$(app_env INLINE)
for v in MEMTUNNEL_KEY MEMTUNNEL_CERT MEMTUNNEL_CA MEMTUNNEL_USERNAME MEMTUNNEL_PASSWORD; do
	if [[ " $names " == *" $v "* ]]; then
		fail "INLINE: $v is not in the app's environment" "the app's environment: $names"
	fi
done
ok "INLINE: MEMTUNNEL_KEY, _CERT, _CA, _USERNAME and _PASSWORD are not in the app's environment"
assert_match " $names " ' MEMCACHIER_PASSWORD ' "INLINE: the app's own credentials are (--auth none)"
assert_eq root "$(owner "$INLINE_PID")" "INLINE: memtunnel is not dumpable (its /proc files belong to root)"
if as_nobody cat "/proc/$INLINE_PID/environ" >/dev/null 2>&1; then
	fail "INLINE: its own user (nobody) cannot read memtunnel's /proc/PID/environ"
fi
ok "INLINE: its own user (nobody) cannot read memtunnel's /proc/PID/environ"
assert_eq "$bare_dumpable" "$(sed -n 's/^dumpable //p' "$T/app/INLINE.report")" \
	"INLINE: the app is as dumpable as without memtunnel ($bare_dumpable)"
tr '\0' '\n' <"/proc/$INLINE_PID/environ" >"$T/INLINE.environ"
assert_match "$(cat "$T/INLINE.environ")" $'(^|\n)PATH=' "INLINE: root reads memtunnel's environ"
left=0
while IFS= read -r line; do
	grep -qF -- "$line" "$T/INLINE.environ" && left=$((left + 1))
done <<<"$key_lines"
assert_eq 0 "$left" "INLINE: no line of the key's text is left in memtunnel's environ once it runs"
release_app INLINE

# Files, and MEMTUNNEL_DUMPABLE=1 for debugging.
wrap_app FILES MEMTUNNEL_CA_FILE="$T/pub/ca.crt" MEMTUNNEL_CERT_FILE="$T/pub/client.crt" \
	MEMTUNNEL_KEY_FILE="$T/pub/client.key" MEMTUNNEL_DUMPABLE=1
assert_match " $(app_env FILES) " ' MEMTUNNEL_CA_FILE MEMTUNNEL_CERT_FILE MEMTUNNEL_DUMPABLE MEMTUNNEL_KEY_FILE ' \
	"FILES: the *_FILE paths stay in the app's environment"
assert_eq nobody "$(owner "$FILES_PID")" "FILES: MEMTUNNEL_DUMPABLE=1 keeps memtunnel dumpable"
as_nobody cat "/proc/$FILES_PID/environ" >/dev/null 2>&1 || fail "FILES: with MEMTUNNEL_DUMPABLE=1 its own user reads its environ"
ok "FILES: with MEMTUNNEL_DUMPABLE=1 its own user reads its environ"
assert_eq "$bare_dumpable" "$(sed -n 's/^dumpable //p' "$T/app/FILES.report")" "FILES: the app is as dumpable as without memtunnel"
release_app FILES

# Tunnel-only mode is not dumpable either.
bg_start TONLY setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
	"$MEMTUNNEL" --servers "localhost:$MC_PORT" --ca "$T/pub/ca.crt" --listen 127.0.0.1:0
wait_log "$T/TONLY.out" '^MEMCACHE_SERVERS='
assert_eq root "$(owner "$TONLY_PID")" "TONLY: tunnel-only memtunnel is not dumpable"
bg_stop TONLY
assert_eq 0 "$TONLY_STATUS" "TONLY: exits 0 on SIGTERM"
