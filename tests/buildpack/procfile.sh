#!/usr/bin/env bash
# procfile: run an app's `web:` Procfile command the way a dyno does — a
# fresh environment holding only the config vars, every .profile.d script
# sourced, the command run from HOME — against memcached with TLS and SASL,
# and check that the app's set/get went through memtunnel.
#
#   tests/buildpack/procfile.sh APP_DIR
#
# APP_DIR is a BUILD_DIR after bin/compile, holding the Procfile and app.py
# that tests/buildpack/run.sh put there.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2154 # MC_* are set by start_memcached

app=${1:?usage: procfile.sh APP_DIR}
[[ -f $app/Procfile && -d $app/.profile.d ]] || fail "$app holds a Procfile and .profile.d"

user=appuser
pass=Pr0cfile-pass.7
start_memcached MC --sasl "$user" "$pass"

value="buildpack-$RANDOM$RANDOM"
status=0
# shellcheck disable=SC2016 # expanded by the dyno's shell
out=$(env -i HOME="$app" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
	DYNO=web.1 PORT=5000 APP_VALUE="$value" \
	MEMCACHIER_SERVERS="localhost:$MC_PORT" \
	MEMCACHIER_USERNAME="$user" MEMCACHIER_PASSWORD="$pass" \
	MEMTUNNEL_CA_FILE="$PKI/ca.crt" MEMTUNNEL_STATS_INTERVAL=0 \
	timeout -k 2 30 bash -c '
		cd "$HOME"
		for f in .profile.d/*.sh; do . "$f"; done
		cmd=$(sed -n "s/^web:[[:space:]]*//p" Procfile)
		eval "exec $cmd"' 2>"$T/app.log") || status=$?
printf '%s\n' "$out" >"$T/app.out"
assert_eq 0 "$status" "the web process (memtunnel wrapping the app) exits 0"
assert_match "$out" "^app: servers=127\.0\.0\.1:[0-9]+ " "the app saw MEMCACHIER_SERVERS rewritten to the local listener"
assert_match "$out" " get=$value\$" "the app read back what it stored (pylibmc, binary protocol, SASL)"
got=$(memccat --binary --username="$user" --password="$pass" \
	--servers="127.0.0.1:$MC_NOTLS_PORT" buildpack:procfile 2>&1) ||
	fail "memccat from memcached's plaintext port" "$got"
assert_eq "$value" "$got" "memcached holds the value the app stored through the tunnel"
