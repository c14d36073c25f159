#!/usr/bin/env bash
# 71-child-env: the wrapped command's environment (SPEC §3). The child runs
# with a known environment (env -i) and reports, from inside, what changed
# and whether each listed listener answers a set/get; the servers' own
# statistics and keys (on their plaintext ports) prove which node each
# listener reaches. Cases: --servers, MEMCACHIER_SERVERS as the source (it
# and MEMCACHE_SERVERS rewritten, credentials unchanged), MEMCACHE_SERVERS
# as the source, two variables via MEMTUNNEL_VARS (each its own listeners,
# in order), and two wrapped memtunnels at once on ephemeral ports.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # A_*, B_*, C_* are set by start_memcached

start_memcached A
start_memcached B
start_memcached C

# probe.py ENVFILE VAR...: compare the environment with the NUL-separated
# one memtunnel was given (prints `added NAME`, `changed NAME`, `removed
# NAME`, sorted by name), print `NAME=value` for each VAR and for MEMCACHE_SERVERS
# and MEMTUNNEL_ACTIVE, then for each listener of each VAR a new
# connection, a set and a get of a key named after it:
# `probe VAR INDEX HOST:PORT ok|failed`.
cat >"$T/probe.py" <<'EOF'
import os, sys
from pymemcache.client.base import Client

given = {}
with open(sys.argv[1], "rb") as f:
    for item in f.read().split(b"\0"):
        if item:
            k, _, v = item.decode().partition("=")
            given[k] = v
env = dict(os.environ)
for k in sorted(set(given) | set(env)):
    if k not in env:
        print("removed", k)
    elif k not in given:
        print("added", k)
    elif env[k] != given[k]:
        print("changed", k)
for k in dict.fromkeys(sys.argv[2:] + ["MEMCACHE_SERVERS", "MEMTUNNEL_ACTIVE"]):
    print("%s=%s" % (k, env.get(k, "<unset>")))
for var in sys.argv[2:]:
    for i, hp in enumerate(env[var].split(",")):
        host, port = hp.rsplit(":", 1)
        key = "%s:%d" % (var, i)
        try:
            c = Client((host, int(port)), connect_timeout=5, timeout=5)
            good = c.set(key, key.encode(), noreply=False) and c.get(key) == key.encode()
            c.close()
        except Exception as e:
            print("#", key, repr(e))
            good = False
        print("probe", var, i, hp, "ok" if good else "failed")
sys.stdout.flush()
EOF

# wrap_probe NAME VARS ASSIGNMENT... -- MEMTUNNEL_ARGS...: run the probe
# under memtunnel with exactly the given environment (plus PATH and a UTF-8
# locale); its report in $T/NAME.out, memtunnel's log in $T/NAME.log.
wrap_probe() {
	local name=$1 vars=$2 envs=("PATH=$PATH" "LC_ALL=C.UTF-8") status=0
	shift 2
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	printf '%s\0' "${envs[@]}" >"$T/$name.env"
	# shellcheck disable=SC2086 # VARS is a word list
	timeout -k 2 20 env -i "${envs[@]}" "$MEMTUNNEL" "$@" -- "$PY" "$T/probe.py" "$T/$name.env" $vars \
		>"$T/$name.out" 2>"$T/$name.log" </dev/null || status=$?
	assert_eq 0 "$status" "$name: memtunnel and the probe exit 0"
	assert_eq 0 "$(count_log "$T/$name.log" 'level=(warn|error)')" "$name: no warn or error line"
}

# value NAME VAR: the value the probe saw for VAR.
value() { sed -n "s/^$2=//p" "$T/$1.out"; }

# listeners_of NAME N: memtunnel's first N listeners as logged, in order.
listeners_of() {
	sed -n 's/^memtunnel level=info at=listening local=\([^ ]*\) .*/\1/p' "$T/$1.log" | head -n "$2" | paste -sd,
}

# changes NAME: the probe's added/changed/removed lines, one line.
changes() { grep -E '^(added|changed|removed) ' "$T/$1.out" | paste -sd' '; }

list_re='^127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+)*$'

# ---- --servers A,B: MEMCACHE_SERVERS lists the two listeners in order.
wrap_probe SERVERS "MEMCACHE_SERVERS" "HOME=/app" "FOO=a b=c 'd'" -- \
	--servers "localhost:$A_PORT,127.0.0.1:$B_PORT" --ca "$PKI/ca.crt"
list=$(value SERVERS MEMCACHE_SERVERS)
assert_match "$list" "$list_re" "--servers: MEMCACHE_SERVERS is a list of local listeners ($list)"
assert_eq "$(listeners_of SERVERS 2)" "$list" "--servers: the listeners, in server order"
assert_eq "added MEMCACHE_SERVERS added MEMTUNNEL_ACTIVE" "$(changes SERVERS)" \
	"--servers: only MEMCACHE_SERVERS and MEMTUNNEL_ACTIVE are added, nothing else changes"
assert_eq 1 "$(value SERVERS MEMTUNNEL_ACTIVE)" "--servers: MEMTUNNEL_ACTIVE=1 in the child"
assert_eq 2 "$(grep -c '^probe MEMCACHE_SERVERS [01] .* ok$' "$T/SERVERS.out")" \
	"--servers: both listeners answer a set/get from inside the child"
assert_eq MEMCACHE_SERVERS:0 "$(mc_get "$A_NOTLS_PORT" MEMCACHE_SERVERS:0)" "--servers: listener 1 reached node A"
assert_eq MEMCACHE_SERVERS:1 "$(mc_get "$B_NOTLS_PORT" MEMCACHE_SERVERS:1)" "--servers: listener 2 reached node B"
assert_eq "" "$(mc_get "$A_NOTLS_PORT" MEMCACHE_SERVERS:1)" "--servers: listener 2 did not reach node A"

# ---- MEMCACHIER_SERVERS as the source; credentials and a stale
# MEMCACHE_SERVERS in the environment.
user=memcachier-user-1
# shellcheck disable=SC2016 # a literal dollar sign in the password
pass='p4ss word=with "quotes" and $dollar'
wrap_probe CACHIER "MEMCACHIER_SERVERS" \
	"MEMCACHIER_SERVERS=127.0.0.1:$C_PORT" "MEMCACHIER_USERNAME=$user" "MEMCACHIER_PASSWORD=$pass" \
	"MEMCACHE_SERVERS=stale.example.com:11211" "DATABASE_URL=postgres://u:p@db/app" -- \
	--ca "$PKI/ca.crt"
list=$(value CACHIER MEMCACHIER_SERVERS)
assert_match "$list" "$list_re" "MEMCACHIER_SERVERS is rewritten to a local listener ($list)"
assert_eq "$list" "$(value CACHIER MEMCACHE_SERVERS)" "MEMCACHE_SERVERS is rewritten to the same list"
assert_eq "$(listeners_of CACHIER 1)" "$list" "MEMCACHIER_SERVERS: the listener memtunnel logged"
assert_eq "changed MEMCACHE_SERVERS changed MEMCACHIER_SERVERS added MEMTUNNEL_ACTIVE" "$(changes CACHIER)" \
	"MEMCACHIER_SERVERS: credentials and other variables unchanged"
assert_eq "probe MEMCACHIER_SERVERS 0 $list ok" "$(grep '^probe ' "$T/CACHIER.out")" \
	"MEMCACHIER_SERVERS: the listener answers from inside the child"
assert_eq MEMCACHIER_SERVERS:0 "$(mc_get "$C_NOTLS_PORT" MEMCACHIER_SERVERS:0)" "MEMCACHIER_SERVERS: the key is on node C"

# ---- MEMCACHE_SERVERS itself as the source: rewritten, once.
wrap_probe MEMCACHE "MEMCACHE_SERVERS" "MEMCACHE_SERVERS=localhost:$B_PORT,localhost:$A_PORT" -- \
	--ca "$PKI/ca.crt"
list=$(value MEMCACHE MEMCACHE_SERVERS)
assert_match "$list" "$list_re" "MEMCACHE_SERVERS as the source is rewritten ($list)"
assert_eq "changed MEMCACHE_SERVERS added MEMTUNNEL_ACTIVE" "$(changes MEMCACHE)" \
	"MEMCACHE_SERVERS as the source: nothing else changes"
assert_eq 2 "$(grep -c '^probe MEMCACHE_SERVERS [01] .* ok$' "$T/MEMCACHE.out")" \
	"MEMCACHE_SERVERS as the source: both listeners answer"

# ---- Two variables: MEMCACHIER_SERVERS (A) and OTHER_CACHE_SERVERS (B,C).
# Every node's statistics start from here.
declare -A sets0
for n in A B C; do
	port=${n}_NOTLS_PORT
	sets0[$n]=$(mc_stat "${!port}" cmd_set)
done
wrap_probe VARS "MEMCACHIER_SERVERS OTHER_CACHE_SERVERS" \
	"MEMTUNNEL_VARS=MEMCACHIER_SERVERS OTHER_CACHE_SERVERS" \
	"MEMCACHIER_SERVERS=localhost:$A_PORT" "OTHER_CACHE_SERVERS=localhost:$B_PORT,127.0.0.1:$C_PORT" \
	"MEMCACHIER_USERNAME=$user" "MEMCACHIER_PASSWORD=$pass" -- \
	--ca "$PKI/ca.crt"
first=$(value VARS MEMCACHIER_SERVERS)
second=$(value VARS OTHER_CACHE_SERVERS)
assert_match "$first" '^127\.0\.0\.1:[0-9]+$' "MEMTUNNEL_VARS: the first variable gets one listener ($first)"
assert_match "$second" '^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$' "MEMTUNNEL_VARS: the second gets two ($second)"
assert_eq "$(listeners_of VARS 3)" "$first,$second" "MEMTUNNEL_VARS: the listeners in variable order, then server order"
assert_eq "$first" "$(value VARS MEMCACHE_SERVERS)" "MEMTUNNEL_VARS: MEMCACHE_SERVERS is the first variable's list"
all=$(tr ',' '\n' <<<"$first,$second" | sort -u | wc -l)
assert_eq 3 "$all" "MEMTUNNEL_VARS: three different listeners"
assert_eq "added MEMCACHE_SERVERS changed MEMCACHIER_SERVERS added MEMTUNNEL_ACTIVE changed OTHER_CACHE_SERVERS" \
	"$(changes VARS)" "MEMTUNNEL_VARS: only the two variables change (credentials and MEMTUNNEL_VARS kept)"
assert_eq 3 "$(grep -c '^probe .* ok$' "$T/VARS.out")" "MEMTUNNEL_VARS: all three listeners answer from inside the child"
for want in "A MEMCACHIER_SERVERS:0" "B OTHER_CACHE_SERVERS:0" "C OTHER_CACHE_SERVERS:1"; do
	read -r n key <<<"$want"
	port=${n}_NOTLS_PORT
	assert_eq "$key" "$(mc_get "${!port}" "$key")" "MEMTUNNEL_VARS: $key is on node $n"
	assert_eq $((sets0[$n] + 1)) "$(mc_stat "${!port}" cmd_set)" "MEMTUNNEL_VARS: node $n saw exactly one set"
done

# ---- Two wrapped memtunnels at once, default (ephemeral) ports. Each child
# writes its list and then waits for $T/release, so both run together.
cat >"$T/hold.sh" <<'EOF'
echo "$MEMCACHE_SERVERS" >"$1.tmp" && mv "$1.tmp" "$1"
i=0
while [ ! -e "$2" ] && [ $i -lt 1000 ]; do
	sleep 0.02
	i=$((i + 1))
done
[ -e "$2" ]
EOF
pids=()
for w in W1 W2; do
	"$MEMTUNNEL" --servers "localhost:$A_PORT,localhost:$B_PORT" --ca "$PKI/ca.crt" \
		-- sh "$T/hold.sh" "$T/$w.list" "$T/release" >"$T/$w.out" 2>"$T/$w.log" &
	pids+=($!)
	_lib_track "$!"
done
both_listed() { [[ -s $T/W1.list && -s $T/W2.list ]]; }
wait_until 10 both_listed || fail "both wrapped children start"
l1=$(cat "$T/W1.list")
l2=$(cat "$T/W2.list")
assert_match "$l1,$l2" "$list_re" "two wrapped memtunnels: both children got local listeners ($l1 / $l2)"
assert_eq 4 "$(tr ',' '\n' <<<"$l1,$l2" | sort -u | wc -l)" "two wrapped memtunnels: four different ports"
for l in ${l1//,/ } ${l2//,/ }; do
	mc_set "${l#*:}" "both:${l#*:}" "v" || fail "a set through $l while both run"
done
ok "two wrapped memtunnels: all four listeners answer while both run"
: >"$T/release"
for i in 0 1; do
	status=0
	_lib_wait_exit "${pids[$i]}" 10 || fail "wrapped memtunnel $((i + 1)) exits after its child"
	wait "${pids[$i]}" || status=$?
	_lib_untrack "${pids[$i]}"
	assert_eq 0 "$status" "wrapped memtunnel $((i + 1)) exits 0 with its child"
done
