#!/usr/bin/env bash
# 19-auth-secrets: --auth and the credentials, against memcached -Z -Y.
#   - wrapper mode with every provider's pair set, memtunnel's own pair
#     (MEMTUNNEL_USERNAME/_PASSWORD, which it logs in with), a second
#     tunneled variable (OTHER_SERVERS, a node that refuses that pair), debug
#     lines and stats every second: the child's traffic works, and its
#     environment holds no credential variable and no password anywhere;
#     memtunnel's output (debug level, the auth-failed line) holds no
#     password and no user name beside its password;
#   - with --auth none the providers' pairs stay in the child's environment
#     (the app logs in itself), memtunnel's own pair does not;
#   - memtunnel check --auth memcached: passes with an auth line naming the
#     variables; a wrong password exits 69 with "authentication failed";
#     --json carries the auth object (ok true / false) and no secret;
#   - configuration errors exit 78 with one line naming the flag or the
#     variables, before anything starts and without any value: an unknown
#     mode (--auth, MEMTUNNEL_AUTH), no credentials for a node, half a pair,
#     --servers with only a provider's pair, --verify none, a user name with
#     a space (memcached), a user name too long for a key or with a space
#     (memcachier).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # NODE_*, BAD_* are set by start_memcached

tun_user=tun-$(rnd) tun_pass=TunPw-$(rnd)
cier_user=cier-$(rnd) cier_pass=CierPw-$(rnd)
cloud_user=cloud-$(rnd) cloud_pass=CloudPw-$(rnd)
mc_user=mc-$(rnd) mc_pass=McPw-$(rnd)
other_user=other-$(rnd) other_pass=OtherPw-$(rnd)
passwords=("$tun_pass" "$cier_pass" "$cloud_pass" "$mc_pass" "$other_pass")
# Each user name with its password, as a login would carry them.
pairs=()
for p in "tun $tun_user $tun_pass" "cier $cier_user $cier_pass" "cloud $cloud_user $cloud_pass" \
	"mc $mc_user $mc_pass" "other $other_user $other_pass"; do
	read -r _ u w <<<"$p"
	pairs+=("$u $w" "$u:$w" "$u"$'\t'"$w")
done
start_memcached NODE --ascii-auth "$tun_user" "$tun_pass"
start_memcached BAD --ascii-auth "$other_user" "$other_pass"
creds=(MEMTUNNEL_USERNAME MEMTUNNEL_PASSWORD MEMCACHIER_USERNAME MEMCACHIER_PASSWORD
	MEMCACHEDCLOUD_USERNAME MEMCACHEDCLOUD_PASSWORD MEMCACHE_USERNAME MEMCACHE_PASSWORD
	OTHER_USERNAME OTHER_PASSWORD)
all_env=(MEMTUNNEL_VARS="MEMCACHIER_SERVERS OTHER_SERVERS"
	MEMCACHIER_SERVERS="localhost:$NODE_PORT" OTHER_SERVERS="localhost:$BAD_PORT"
	MEMTUNNEL_USERNAME="$tun_user" MEMTUNNEL_PASSWORD="$tun_pass"
	MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass"
	MEMCACHEDCLOUD_USERNAME="$cloud_user" MEMCACHEDCLOUD_PASSWORD="$cloud_pass"
	MEMCACHE_USERNAME="$mc_user" MEMCACHE_PASSWORD="$mc_pass"
	OTHER_USERNAME="$other_user" OTHER_PASSWORD="$other_pass")

# no_secret DESC FILE...: no password, and no user name beside its
# password, in the files.
no_secret() {
	local desc=$1 s
	shift
	for s in "${passwords[@]}" "${pairs[@]}"; do
		if grep -aqF -- "$s" "$@"; then
			fail "$desc: no password in it" "found ${s:0:6}... in one of: ${*##*/}"
		fi
	done
	ok "$desc: no password, no user name beside a password"
}

# The child: its environment, NUL-separated, in ENVFILE; with a
# MEMCACHIER_SERVERS listener, a pymemcache set/get through it and a try
# through OTHER_SERVERS's (the node that refuses the pair).
cat >"$T/child.py" <<'EOF'
import os, sys
from pymemcache.client.base import Client
with open(sys.argv[1], "wb") as f:
    for k, v in os.environ.items():
        f.write(b"%s=%s\0" % (k.encode(), v.encode()))
if sys.argv[2] == "traffic":
    host, port = os.environ["MEMCACHIER_SERVERS"].rsplit(":", 1)
    c = Client((host, int(port)), connect_timeout=5, timeout=5)
    v = b"\r\nEND\r\n" + os.urandom(1000)
    print("good", "ok" if c.set("sec", v, noreply=False) and c.get("sec") == v else "wrong")
    host, port = os.environ["OTHER_SERVERS"].rsplit(":", 1)
    try:
        Client((host, int(port)), connect_timeout=5, timeout=5).get("sec")
        print("other", "answered")
    except Exception as e:
        print("other", "refused")
EOF
# wrap NAME MODE TRAFFIC: the child under memtunnel --auth MODE with all_env.
wrap() {
	local status=0
	env "${all_env[@]}" MEMTUNNEL_LOG_LEVEL=debug MEMTUNNEL_STATS_INTERVAL=1 PYTHONDONTWRITEBYTECODE=1 \
		timeout -k 2 30 "$MEMTUNNEL" --auth "$2" --ca "$PKI/ca.crt" -- "$PY" "$T/child.py" "$T/$1.env" "$3" \
		>"$T/$1.out" 2>"$T/$1.log" </dev/null || status=$?
	assert_eq 0 "$status" "$1: memtunnel and the child exit 0"
}
# env_names NAME: the names of the credential variables in the child's
# environment, one line.
env_names() {
	local names
	names=$(tr '\0' '\n' <"$T/$1.env" | sed -n 's/^\([A-Z_]*_\(USERNAME\|PASSWORD\)\)=.*/\1/p' | sort | paste -sd' ')
	echo "${names:-none}"
}

# ---- auth on: memcached --------------------------------------------------------
wrap ON memcached traffic
assert_eq "good ok" "$(grep '^good ' "$T/ON.out")" "ON: the child's set/get through the node works, memtunnel logging in"
assert_eq "other refused" "$(grep '^other ' "$T/ON.out")" "ON: the node that refuses the pair refuses the child's request"
assert_match "$(cat "$T/ON.log")" "level=error at=auth-failed upstream=localhost:$BAD_PORT mode=memcached " \
	"ON: its auth-failed line was logged"
assert_le 1 "$(count_log "$T/ON.log" 'level=debug at=connected .* auth=memcached ')" "ON: debug lines were logged"
assert_le 1 "$(count_log "$T/ON.log" ' at=stats ')" "ON: stats lines were logged"
assert_eq none "$(env_names ON)" "ON: no *_USERNAME or *_PASSWORD in the child's environment (${creds[*]} all set)"
no_secret "ON: the child's environment" "$T/ON.env"
no_secret "ON: memtunnel's stdout and stderr (debug level)" "$T/ON.out" "$T/ON.log"

# ---- auth none: the app logs in itself ---------------------------------------------
wrap OFF none none
assert_eq "MEMCACHEDCLOUD_PASSWORD MEMCACHEDCLOUD_USERNAME MEMCACHE_PASSWORD MEMCACHE_USERNAME MEMCACHIER_PASSWORD MEMCACHIER_USERNAME OTHER_PASSWORD OTHER_USERNAME" \
	"$(env_names OFF)" "OFF: --auth none: the providers' pairs stay for the app, MEMTUNNEL_USERNAME/_PASSWORD do not"
no_secret "OFF: memtunnel's stdout and stderr" "$T/OFF.out" "$T/OFF.log"

# ---- memtunnel check --auth memcached -------------------------------------------------
ca=(--ca "$PKI/ca.crt" --connect-timeout 3)
node=(MEMCACHE_SERVERS="localhost:$NODE_PORT" MEMCACHE_USERNAME="$tun_user")
run_check CHECK "${node[@]}" MEMCACHE_PASSWORD="$tun_pass" -- "${ca[@]}" --auth memcached
assert_eq 0 "$status" "CHECK: check --auth memcached against memcached -Y passes"
assert_match "$out" $'\n  auth       memcached with MEMCACHE_USERNAME and MEMCACHE_PASSWORD: ok\n' "CHECK: the auth line"
no_secret "CHECK: check's output" "$T/CHECK.out" "$T/CHECK.err"
run_check CHECKBAD "${node[@]}" MEMCACHE_PASSWORD="$mc_pass" -- "${ca[@]}" --auth memcached
assert_eq 69 "$status" "CHECKBAD: a wrong password exits 69"
assert_match "$out" $'\n  auth       memcached with MEMCACHE_USERNAME and MEMCACHE_PASSWORD: FAILED: the server refused the credentials\n' \
	"CHECKBAD: the auth line says the server refused the credentials"
assert_match "$out" 'authentication failed' "CHECKBAD: the advice says authentication failed"
no_secret "CHECKBAD: check's output" "$T/CHECKBAD.out" "$T/CHECKBAD.err"
run_check JSON "${all_env[@]}" -- "${ca[@]}" --auth memcached --json
assert_eq 69 "$status" "JSON: one node refuses: exit 69"
out=$("$PY" - "$T/JSON.out" "$NODE_PORT" "$BAD_PORT" <<'EOF' 2>&1
import json, sys
doc = json.load(open(sys.argv[1]))
ups = {u["upstream"]: u for u in doc["upstreams"]}
# The auth object: beside the node's other facts, or in its memcache part.
auth = lambda u: u["auth"] if "auth" in u else (u.get("memcache") or {}).get("auth")
want = {"mode": "memcached", "username_variable": "MEMTUNNEL_USERNAME",
        "password_variable": "MEMTUNNEL_PASSWORD"}
good, bad = ups["localhost:" + sys.argv[2]], ups["localhost:" + sys.argv[3]]
if auth(good) != dict(want, ok=True):
    print("good node: auth is", auth(good))
elif auth(bad) != dict(want, ok=False):
    print("refusing node: auth is", auth(bad))
elif good["pass"] is not True or bad["pass"] is not False:
    print("pass:", good["pass"], bad["pass"])
else:
    print("ok")
EOF
)
assert_eq ok "$out" "JSON: the auth object (mode, variables, ok true for the node, false for the refusing one)"
no_secret "JSON: check --json's output" "$T/JSON.out" "$T/JSON.err"

# ---- configuration errors --------------------------------------------------------
# config_error NAME ENV... -- ARGS...: memtunnel (wrapping a command that
# would leave a file) exits 78 with one line on stderr, nothing on stdout,
# the command not run; $err is that line.
config_error() {
	local name=$1 envs args status=0
	shift
	split_env "$@"
	env "${envs[@]}" timeout -k 2 10 "$MEMTUNNEL" --ca "$PKI/ca.crt" "${args[@]}" -- touch "$T/$name.ran" \
		>"$T/$name.out" 2>"$T/$name.err" </dev/null || status=$?
	err=$(cat "$T/$name.err")
	assert_eq 78 "$status" "$name: exit 78 ($err)"
	assert_eq 1 "$(wc -l <"$T/$name.err")" "$name: one line on stderr"
	assert_match "$err" '^memtunnel(: | level=error at=config-error )' "$name: it is memtunnel's configuration error"
	[[ ! -s $T/$name.out && ! -e $T/$name.ran ]] || fail "$name: nothing started (no servers line, no command)"
	no_secret "$name: the message" "$T/$name.err"
}
config_error MODEFLAG "${node[@]}" MEMCACHE_PASSWORD="$tun_pass" -- --auth memcache
assert_match "$err" '--auth' "MODEFLAG: names --auth"
assert_match "$err" 'none.*memcachier.*memcached.*sasl' "MODEFLAG: lists the modes"
config_error MODEVAR "${node[@]}" MEMCACHE_PASSWORD="$tun_pass" MEMTUNNEL_AUTH=plain --
assert_match "$err" 'MEMTUNNEL_AUTH' "MODEVAR: names MEMTUNNEL_AUTH"
config_error NOCREDS MEMCACHE_SERVERS="localhost:$NODE_PORT" -- --auth memcached
assert_match "$err" "localhost:$NODE_PORT" "NOCREDS: names the node"
assert_match "$err" 'MEMCACHE_USERNAME and MEMCACHE_PASSWORD, or MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD' \
	"NOCREDS: names the variables it looked for"
config_error HALF "${node[@]}" -- --auth memcached
assert_match "$err" 'MEMCACHE_PASSWORD' "HALF: a user name without a password: names the missing variable"
if grep -qF -- "$tun_user" "$T/HALF.err"; then
	fail "HALF: the user name's value is not printed" "$err"
fi
ok "HALF: the user name's value is not printed"
config_error SERVERS MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass" -- \
	--servers "localhost:$NODE_PORT" --auth memcached
assert_match "$err" 'MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD' "SERVERS: --servers takes the MEMTUNNEL pair only, and says so"
config_error VERIFY "${node[@]}" MEMCACHE_PASSWORD="$tun_pass" -- --auth memcached --verify none
assert_match "$err" 'verif' "VERIFY: --auth with --verify none: credentials need a verified upstream"
config_error SPACE MEMTUNNEL_USERNAME="two words" MEMTUNNEL_PASSWORD="$tun_pass" -- \
	--servers "localhost:$NODE_PORT" --auth memcached
assert_match "$err" 'MEMTUNNEL_USERNAME' "SPACE: a user name with a space (memcached): names the variable"
config_error LONGKEY MEMCACHIER_SERVERS="localhost:$NODE_PORT" MEMCACHIER_USERNAME="$(printf 'u%.0s' $(seq 1 251))" \
	MEMCACHIER_PASSWORD="$cier_pass" -- --auth memcachier
assert_match "$err" 'MEMCACHIER_USERNAME' "LONGKEY: a user name over 250 bytes (memcachier): names the variable"
config_error KEYSPACE MEMCACHIER_SERVERS="localhost:$NODE_PORT" MEMCACHIER_USERNAME="two words" \
	MEMCACHIER_PASSWORD="$cier_pass" -- --auth memcachier
assert_match "$err" 'MEMCACHIER_USERNAME' "KEYSPACE: a user name with a space (memcachier): names the variable"
