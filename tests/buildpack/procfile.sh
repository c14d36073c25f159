#!/usr/bin/env bash
# procfile: run an app's `web:` Procfile command the way a dyno does, against
# memcached with TLS and SASL, and check that the app's set/get went through
# memtunnel.
#
#   tests/buildpack/procfile.sh APP_DIR
#   tests/buildpack/procfile.sh APP_DIR LAYERS_DIR
#
# APP_DIR holds the Procfile and app.py that tests/buildpack/run.sh put
# there. With APP_DIR alone it is a BUILD_DIR after bin/compile, run as a
# Cedar dyno does: a fresh environment holding only the config vars, every
# .profile.d script sourced, the command run from HOME. With LAYERS_DIR (a
# CNB build's <layers>/<buildpack id>), as a CNB launcher does: PATH starting
# with the bin/ of each launch layer (alphabetically), the layers' env/ and
# env.launch/ files applied, and the command run by heroku/procfile's
# process, `bash -c COMMAND`, from the app directory.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2154 # MC_* are set by start_memcached

app=${1:?usage: procfile.sh APP_DIR [LAYERS_DIR]}
layers=${2:-}
if [[ -z $layers ]]; then
	[[ -f $app/Procfile && -d $app/.profile.d ]] || fail "$app holds a Procfile and .profile.d"
else
	[[ -f $app/Procfile && -d $layers ]] || fail "$app holds a Procfile, and $layers is a directory"
fi

# launch_env LAYERS: the VAR=VALUE settings a CNB launcher gives a process
# from this buildpack's layers (Buildpack API 0.10, "Environment"): PATH
# gets each launch layer's bin/, and each file of env/ and env.launch/
# sets, defaults, prepends or appends its variable.
launch_env() {
	local toml layer f name op delim path=/usr/local/bin:/usr/bin:/bin
	declare -A vars=()
	for toml in "$1"/*.toml; do
		layer=${toml%.toml}
		if [[ ! -d $layer ]] || ! grep -Eq '^[[:space:]]*launch[[:space:]]*=[[:space:]]*true' "$toml"; then
			continue
		fi
		[[ ! -d $layer/bin ]] || path=$layer/bin:$path
		for f in "$layer"/env/* "$layer"/env.launch/*; do
			[[ -f $f && $f != *.delim ]] || continue
			name=${f##*/}
			op=override
			[[ $name != *.* ]] || { op=${name##*.}; name=${name%.*}; }
			delim=$(cat "${f%.*}.delim" 2>/dev/null || true)
			case $op in
			override) vars[$name]=$(cat "$f") ;;
			default) [[ -n ${vars[$name]+set} ]] || vars[$name]=$(cat "$f") ;;
			prepend) vars[$name]=$(cat "$f")${vars[$name]:+$delim${vars[$name]}} ;;
			append) vars[$name]=${vars[$name]:+${vars[$name]}$delim}$(cat "$f") ;;
			*) fail "unknown env file suffix in the layer: $f" ;;
			esac
		done
	done
	printf 'PATH=%s\n' "$path"
	for name in "${!vars[@]}"; do
		printf '%s=%s\n' "$name" "${vars[$name]}"
	done
}

user=appuser
pass=Pr0cfile-pass.7
start_memcached MC --sasl "$user" "$pass"

value="buildpack-$RANDOM$RANDOM"
config=(LANG=C.UTF-8 DYNO=web.1 PORT=5000 APP_VALUE="$value"
	MEMCACHIER_SERVERS="localhost:$MC_PORT"
	MEMCACHIER_USERNAME="$user" MEMCACHIER_PASSWORD="$pass"
	MEMTUNNEL_CA_FILE="$PKI/ca.crt" MEMTUNNEL_STATS_INTERVAL=0)
cmd=$(sed -n 's/^web:[[:space:]]*//p' "$app/Procfile")
[[ -n $cmd ]] || fail "the Procfile has a web: line"
status=0
if [[ -z $layers ]]; then
	# shellcheck disable=SC2016 # expanded by the dyno's shell
	out=$(env -i HOME="$app" PATH=/usr/local/bin:/usr/bin:/bin "${config[@]}" \
		timeout -k 2 30 bash -c '
			cd "$HOME"
			for f in .profile.d/*.sh; do . "$f"; done
			eval "exec $1"' web "$cmd" 2>"$T/app.log") || status=$?
else
	mapfile -t launch < <(launch_env "$layers")
	mkdir -p "$T/home"
	out=$(cd "$app" && env -i HOME="$T/home" "${config[@]}" "${launch[@]}" \
		timeout -k 2 30 bash -c "$cmd" 2>"$T/app.log") || status=$?
fi
printf '%s\n' "$out" >"$T/app.out"
assert_eq 0 "$status" "the web process (memtunnel wrapping the app) exits 0"
assert_match "$out" "^app: servers=127\.0\.0\.1:[0-9]+ " "the app saw MEMCACHIER_SERVERS rewritten to the local listener"
assert_match "$out" " get=$value\$" "the app read back what it stored (pylibmc, binary protocol, SASL)"
got=$(memccat --binary --username="$user" --password="$pass" \
	--servers="127.0.0.1:$MC_NOTLS_PORT" buildpack:procfile 2>&1) ||
	fail "memccat from memcached's plaintext port" "$got"
assert_eq "$value" "$got" "memcached holds the value the app stored through the tunnel"
