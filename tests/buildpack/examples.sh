#!/usr/bin/env bash
# examples: each app in examples/ started the way its Procfile starts it —
# memtunnel wrapping the app's own server — against memcached with TLS and
# SASL, configured only through MemCachier's config vars. Two requests must
# count hits=1 then hits=2, memcached itself must hold the counter, and
# memtunnel must exit 0 after SIGTERM (passed on to the app).
#
# The client that cannot authenticate, examples/django-pymemcache (gunicorn
# + pymemcache), runs with MEMTUNNEL_AUTH=memcached against memcached -Z -Y
# (ASCII authentication): memtunnel logs in on every connection, the page
# shows the value it stored and read back, memcached counts the logins
# (auth_cmds), and no process of the app has a credential in its
# environment.
#
#   tests/buildpack/examples.sh
#
# Django (gunicorn + pylibmc or pymemcache), Ruby (WEBrick + Dalli) and PHP
# (the CLI server + ext-memcached) use Debian's packages; as root this
# installs the missing ones, otherwise it prints the apt-get line. Node
# (memjs) runs when node and npm are installed: `npm ci` fetches memjs from
# the npm registry. $MEMTUNNEL picks the binary (default bin/memtunnel).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2154 # MC_* are set by start_memcached

pkgs=(python3-django python3-pylibmc python3-pymemcache gunicorn ruby ruby-dalli ruby-webrick php-cli php-memcached curl libmemcached-tools)
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

# start_example NAME DIR CMD...: `memtunnel CMD` (the app's server on
# $port) in DIR, in the background, with only the config vars in the array
# app_env besides the basics a dyno has; sets app_pid once the app listens.
start_example() {
	local name=$1 dir=$2
	shift 2
	(
		cd "$dir"
		exec env -i HOME="$T" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 PORT="$port" \
			MEMTUNNEL_CA_FILE="$PKI/ca.crt" MEMTUNNEL_STATS_INTERVAL=0 \
			"${app_env[@]}" "$MEMTUNNEL" "$@"
	) >"$T/$name.out" 2>"$T/$name.log" &
	app_pid=$!
	_lib_track "$app_pid"
	wait_until 30 port_open "$port" || fail "$name: the app listens on port $port within 30 s"
}

# stop_example NAME STATUS: SIGTERM to memtunnel, which must exit with
# STATUS: the app's own (0 after a clean shutdown, 143 when SIGTERM kills
# it).
stop_example() {
	local name=$1 want=$2 status=0
	kill -TERM "$app_pid"
	_lib_wait_exit "$app_pid" 15 || fail "$name: memtunnel exits within 15 s of SIGTERM"
	wait "$app_pid" || status=$?
	_lib_untrack "$app_pid"
	assert_eq "$want" "$status" "$name: memtunnel passes SIGTERM on and exits $want, as the app did"
}

# run_example NAME DIR KEY STATUS CMD...: start `memtunnel CMD` in DIR with
# the config vars an app on Heroku gets from MemCachier, check two requests
# and the counter under KEY in memcached, stop it with SIGTERM and expect
# memtunnel to exit with STATUS.
run_example() {
	local name=$1 dir=$2 key=$3 want=$4 body got
	shift 4
	app_env=(MEMCACHIER_SERVERS="localhost:$MC_PORT"
		MEMCACHIER_USERNAME="$user" MEMCACHIER_PASSWORD="$pass")
	start_example "$name" "$dir" "$@"
	body=$(curl -fsS "http://127.0.0.1:$port/" && curl -fsS "http://127.0.0.1:$port/") ||
		fail "$name: two requests" "$body"
	assert_eq $'hits=1\nhits=2' "$body" "$name: two requests count hits=1, hits=2 through memtunnel (TLS + SASL)"
	got=$(memccat --binary --username="$user" --password="$pass" \
		--servers="127.0.0.1:$MC_NOTLS_PORT" "$key" 2>&1) || fail "$name: memccat $key" "$got"
	assert_eq 2 "${got//[[:space:]]/}" "$name: memcached holds the counter under $key"
	stop_example "$name" "$want"
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

# ---- A client that cannot authenticate: pymemcache behind --auth memcached

# memcached -Z -Y: ASCII authentication (an auth file of user:password
# lines) with TLS. Its plaintext listener wants the login too: the mc_*
# readers log in first with MC_ASCII_LOGIN (itself one of the auth_cmds).
ascii_user=asciiuser
ascii_pass=Asc11-pass.7
start_memcached MCY --ascii-auth "$ascii_user" "$ascii_pass"
mcy_stat() { MC_ASCII_LOGIN="$ascii_user $ascii_pass" mc_stat "$MCY_NOTLS_PORT" "$1"; }
mcy_get() { MC_ASCII_LOGIN="$ascii_user $ascii_pass" mc_get "$MCY_NOTLS_PORT" "$1"; }

# descendants PID: every process below PID, one pid a line.
descendants() {
	local all p c pp queue=("$1")
	all=$(ps -e -o pid=,ppid=)
	while [[ ${#queue[@]} -gt 0 ]]; do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		while read -r c pp; do
			[[ $pp != "$p" ]] || { echo "$c"; queue+=("$c"); }
		done <<<"$all"
	done
}

name=django-pymemcache
dir=$examples/$name
errors_before=$(mcy_stat auth_errors)
cmds_before=$(mcy_stat auth_cmds)
port=$(free_port)
mapfile -t cmd < <(procfile_web "$dir")
assert_eq "gunicorn app.wsgi" "${cmd[*]}" "examples/$name/Procfile: web: memtunnel gunicorn app.wsgi"
# A self-hosted memcached's variables; the app reads only MEMCACHE_SERVERS.
app_env=(MEMTUNNEL_AUTH=memcached MEMCACHE_SERVERS="localhost:$MCY_PORT"
	MEMCACHE_USERNAME="$ascii_user" MEMCACHE_PASSWORD="$ascii_pass")
start_example "$name" "$dir" "${cmd[@]}"
body=$(curl -fsS "http://127.0.0.1:$port/" && curl -fsS "http://127.0.0.1:$port/") ||
	fail "$name: two requests" "$body"
assert_eq $'hits=1\nlast=visit 1\nhits=2\nlast=visit 2' "$body" \
	"$name: two requests count, store and read back their value through memtunnel (TLS + --auth memcached)"
got=$(mcy_get :1:hits) || fail "$name: get :1:hits from memcached -Y"
assert_eq 2 "$got" "$name: memcached -Y holds the counter under :1:hits"
got=$(mcy_get :1:last) || fail "$name: get :1:last from memcached -Y"
assert_eq "visit 2" "$got" "$name: memcached -Y holds the value the page read back under :1:last"
cmds_after=$(mcy_stat auth_cmds)
errors_after=$(mcy_stat auth_errors)
# Besides memtunnel's, three logins since cmds_before are the readers' own:
# the two gets' and the one that reads cmds_after.
logins=$((cmds_after - cmds_before - 3))
assert_le 1 "$logins" "$name: memtunnel logged in on memcached -Y ($logins logins; auth_cmds $cmds_before -> $cmds_after)"
assert_eq "$errors_before" "$errors_after" "$name: no login failed (auth_errors)"

mapfile -t procs < <(descendants "$app_pid")
[[ ${#procs[@]} -ge 2 ]] || fail "$name: gunicorn and its worker run under memtunnel" "pids: ${procs[*]}"
checked=0
for p in "${procs[@]}"; do
	# A process that has gone meanwhile is skipped; gunicorn's master and
	# worker stay.
	tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" >"$T/environ.$p" || continue
	checked=$((checked + 1))
	grep -q '^MEMCACHE_SERVERS=127\.0\.0\.1:[0-9]' "$T/environ.$p" ||
		fail "$name: pid $p ($(cat "/proc/$p/comm")) has MEMCACHE_SERVERS pointing at memtunnel" "$(cut -d= -f1 "$T/environ.$p")"
	leaked=$(grep -E '^[A-Za-z0-9_]*(USERNAME|PASSWORD)=' "$T/environ.$p" | cut -d= -f1 || true)
	[[ -z $leaked ]] || fail "$name: no credential variable in the environment of pid $p" "$leaked"
	! grep -qF -- "$ascii_pass" "$T/environ.$p" ||
		fail "$name: the password is nowhere in the environment of pid $p"
done
assert_le 2 "$checked" "$name: no credential in the environment of the app's processes ($checked: gunicorn and its workers)"

stop_example "$name" 0
assert_eq 0 "$(count_log "$T/$name.log" 'at=auth-failed')" "$name: memtunnel logged no at=auth-failed"
! grep -qF -- "$ascii_pass" "$T/$name.log" "$T/$name.out" ||
	fail "$name: the password is not in memtunnel's or the app's output"
ok "$name: the password is not in memtunnel's or the app's output"

# A closing line in the form the other runners end with.
echo "$_lib_n passed, 0 failed"
