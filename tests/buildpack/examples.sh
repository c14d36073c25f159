#!/usr/bin/env bash
# examples: each app in examples/ started the way its Procfile starts it —
# memtunnel wrapping the app's own server — against memcached with TLS and
# SASL, configured only through MemCachier's config vars. Two requests must
# count hits=1 then hits=2, memcached itself must hold the counter, and
# memtunnel must exit 0 after SIGTERM (passed on to the app).
#
#   tests/buildpack/examples.sh
#
# Django (gunicorn + pylibmc), Ruby (WEBrick + Dalli) and PHP (the CLI
# server + ext-memcached) use Debian's packages; as root this installs the
# missing ones, otherwise it prints the apt-get line. Node (memjs) runs when
# node and npm are installed: `npm ci` fetches memjs from the npm registry.
# $MEMTUNNEL picks the binary (default bin/memtunnel).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2154 # MC_* are set by start_memcached

pkgs=(python3-django python3-pylibmc gunicorn ruby ruby-dalli ruby-webrick php-cli php-memcached curl libmemcached-tools)
missing=()
for p in "${pkgs[@]}"; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || s=
	[[ $s == installed ]] || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
	if [[ $(id -u) -ne 0 ]]; then
		fail "the examples' packages are installed" \
			"install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
	fi
	echo "# installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$T/apt.log" 2>&1 ||
		fail "apt-get install ${missing[*]}" "$(tail -n 20 "$T/apt.log")"
fi

# A copy, so nothing the apps write (__pycache__, node_modules) lands in the
# repository.
cp -r "$ROOT/examples" "$T/examples"
examples=$T/examples
user=exampleuser
pass=Ex4mple-pass.9
start_memcached MC --sasl "$user" "$pass"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# procfile_web DIR: the words of the Procfile's web command after
# `memtunnel` (the commands here need no shell quoting).
procfile_web() {
	local words
	read -ra words <<<"$(sed -n 's/^web:[[:space:]]*//p' "$1/Procfile")"
	[[ ${words[0]:-} == memtunnel ]] || fail "$1/Procfile: the web command starts with memtunnel"
	printf '%s\n' "${words[@]:1}"
}

# run_example NAME DIR KEY STATUS CMD...: start `memtunnel CMD` (the app's
# server on $port) in DIR with the config vars an app on Heroku gets, check
# two requests and the counter under KEY in memcached, stop it with SIGTERM
# and expect memtunnel to exit with STATUS: the app's own (0 after a clean
# shutdown, 143 when SIGTERM kills it).
run_example() {
	local name=$1 dir=$2 key=$3 want=$4 pid status=0 body got
	shift 4
	(
		cd "$dir"
		exec env -i HOME="$T" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 PORT="$port" \
			MEMCACHIER_SERVERS="localhost:$MC_PORT" \
			MEMCACHIER_USERNAME="$user" MEMCACHIER_PASSWORD="$pass" \
			MEMTUNNEL_CA_FILE="$PKI/ca.crt" MEMTUNNEL_STATS_INTERVAL=0 \
			"$MEMTUNNEL" "$@"
	) >"$T/$name.out" 2>"$T/$name.log" &
	pid=$!
	_lib_track "$pid"
	wait_until 30 port_open "$port" || fail "$name: the app listens on port $port within 30 s"
	body=$(curl -fsS "http://127.0.0.1:$port/" && curl -fsS "http://127.0.0.1:$port/") ||
		fail "$name: two requests" "$body"
	assert_eq $'hits=1\nhits=2' "$body" "$name: two requests count hits=1, hits=2 through memtunnel (TLS + SASL)"
	got=$(memccat --binary --username="$user" --password="$pass" \
		--servers="127.0.0.1:$MC_NOTLS_PORT" "$key" 2>&1) || fail "$name: memccat $key" "$got"
	assert_eq 2 "${got//[[:space:]]/}" "$name: memcached holds the counter under $key"
	kill -TERM "$pid"
	_lib_wait_exit "$pid" 15 || fail "$name: memtunnel exits within 15 s of SIGTERM"
	wait "$pid" || status=$?
	_lib_untrack "$pid"
	assert_eq "$want" "$status" "$name: memtunnel passes SIGTERM on and exits $want, as the app did"
}

# Django and Node run their Procfile's command as it is (gunicorn binds to
# $PORT by itself); Ruby and PHP run the local equivalent of theirs (no
# bundler lockfile here, no heroku-php-apache2).
port=$(free_port)
mapfile -t cmd < <(procfile_web "$examples/django")
assert_eq "gunicorn app.wsgi" "${cmd[*]}" "examples/django/Procfile: web: memtunnel gunicorn app.wsgi"
run_example django "$examples/django" :1:hits 0 "${cmd[@]}"

port=$(free_port)
run_example ruby "$examples/ruby" ruby:hits 0 ruby app.rb

port=$(free_port)
# The CLI server has no SIGTERM handler: it dies of the signal.
run_example php "$examples/php" php:hits 143 php -S "127.0.0.1:$port" index.php

if command -v node >/dev/null && command -v npm >/dev/null; then
	(cd "$examples/node" && npm ci --no-audit --no-fund) >"$T/npm.log" 2>&1 ||
		fail "npm ci in examples/node" "$(tail -n 20 "$T/npm.log")"
	ok "npm ci installs memjs from examples/node/package-lock.json"
	port=$(free_port)
	mapfile -t cmd < <(procfile_web "$examples/node")
	run_example node "$examples/node" node:hits 0 "${cmd[@]}"
else
	echo "# node example not run: node and npm are not installed"
fi

# A closing line in the form the other runners end with.
echo "$_lib_n passed, 0 failed"
