#!/usr/bin/env bash
# 21-ident: whom the certificate names (SPEC §5, RFC 9525). An IP upstream,
# IPv4 or IPv6 in any textual form, is compared as an address with the
# certificate's iPAddress SANs only: a DNS SAN spelling the address
# (DNS:127.0.0.1) or a wildcard (DNS:*.0.0.1) never matches it, an IP SAN
# never matches a name, and the subject CN is never consulted. Through the
# tunnel each good upstream carries a set/get; each bad one gets the client
# connection closed without a reply, exactly one verify-failed line with
# reason "name mismatch", and its server sees no command. `memtunnel check`
# gives the same verdicts, and --verify chain checks no identity.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # *_PORT, *_PORTS are set by start_memcached/start_memtunnel

# SANs of each certificate (tests/pki.sh checks them with openssl).
start_memcached GOOD --extra "-l ::1"                   # DNS:localhost IP:127.0.0.1 IP:::1
start_memcached IP6ONLY --cert ip6only --extra "-l ::1" # IP:::1
start_memcached IPONLY --cert iponly --extra "-l ::1"   # IP:127.0.0.1
start_memcached IPNAME --cert ipname                      # DNS:other.example IP:127.0.0.1, CN=localhost
start_memcached DNSIP --cert dnsip                        # DNS:127.0.0.1
start_memcached WILDIP --cert wildip                      # DNS:*.0.0.1
start_memcached CNONLY --cert cnonly                      # none, CN=localhost
for s in GOOD IP6ONLY IPONLY; do
	port6=${s}_PORT6
	[[ -n ${!port6} ]] || fail "memcached $s listens on ::1" "$(cat "$T/$s.ports")"
done

# Each case: upstream as given to --servers, the memcached behind it, and
# the verdict. The upstream= of the log line is the --servers entry.
good=(
	"[::1]:$GOOD_PORT6 GOOD"           # IP:::1 among other names
	"[0:0::1]:$IP6ONLY_PORT6 IP6ONLY"  # ::1 spelt otherwise
	"127.0.0.1:$GOOD_PORT GOOD"
	"127.0.0.1:$IPNAME_PORT IPNAME"    # the IP SAN, whatever else is named
	"127.0.0.1:$IPONLY_PORT IPONLY"
)
bad=(
	"[::1]:$IPONLY_PORT6 IPONLY"       # an IPv4 SAN is not ::1
	"127.0.0.1:$IP6ONLY_PORT IP6ONLY"  # nor ::1 127.0.0.1
	"127.0.0.1:$DNSIP_PORT DNSIP"      # a name that spells the address
	"127.0.0.1:$WILDIP_PORT WILDIP"    # a wildcard against an address
	"localhost:$IPONLY_PORT IPONLY"    # an IP SAN against a name
	"localhost:$IPNAME_PORT IPNAME"    # CN=localhost beside SANs
	"localhost:$CNONLY_PORT CNONLY"    # CN=localhost and no SAN at all
)

request='set ident 0 0 5\r\nhello\r\nget ident\r\n'

# expect_works LISTENER DESC: set and get through LISTENER.
expect_works() {
	local key=k$RANDOM$RANDOM
	mc_set "$1" "$key" "v-$key" || fail "$2: set through 127.0.0.1:$1"
	assert_eq "v-$key" "$(mc_get "$1" "$key")" "$2"
}

# expect_refused MT LISTENER NAME UPSTREAM: the client connection is closed
# without a reply, one verify-failed line names UPSTREAM and "name
# mismatch", and NAME's server saw no command.
expect_refused() {
	local mt=$1 port=$2 s=$3 upstream=$4 r before after re
	local notls=${s}_NOTLS_PORT
	# shellcheck disable=SC2001 # a bracket expression, not a plain string
	re=$(sed 's/[].[]/\\&/g' <<<"$upstream")
	before="$(mc_stat "${!notls}" cmd_set) $(mc_stat "${!notls}" cmd_get)"
	r=$(tcp_probe "$port" "$request" 5)
	assert_match "$r" '^closed [0-9]+ 0$' "$mt: $upstream ($s): client connection closed without a reply ($r)"
	wait_log "$T/$mt.log" "level=warn at=verify-failed upstream=$re reason=\"name mismatch\""
	assert_eq 1 "$(count_log "$T/$mt.log" "at=verify-failed upstream=$re ")" \
		"$mt: exactly one verify-failed line for $upstream, reason \"name mismatch\""
	after="$(mc_stat "${!notls}" cmd_set) $(mc_stat "${!notls}" cmd_get)"
	assert_eq "$before" "$after" "$mt: the $s server saw no command (cmd_set cmd_get: $after)"
}

list=()
for c in "${good[@]}" "${bad[@]}"; do
	list+=("${c%% *}")
done
servers=$(IFS=,; echo "${list[*]}")

# ---- full: the good ones carry data, the bad ones are refused -------------
start_memtunnel FULL --servers "$servers" --listen 127.0.0.1:0 --ca "$PKI/ca.crt"
read -r -a ports <<<"$FULL_PORTS"
i=0
for c in "${good[@]}"; do
	read -r up s <<<"$c"
	expect_works "${ports[$i]}" "FULL: $up ($s) is accepted"
	i=$((i + 1))
done
for c in "${bad[@]}"; do
	read -r up s <<<"$c"
	expect_refused FULL "${ports[$i]}" "$s" "$up"
	i=$((i + 1))
done
assert_eq "${#bad[@]}" "$(count_log "$T/FULL.log" 'level=warn at=verify-failed ')" \
	"FULL: one verify-failed line per refused upstream, none for the others"
assert_alive FULL
stop_memtunnel FULL

# ---- chain: no identity check, all of them carry data ---------------------
start_memtunnel CHAIN --servers "$servers" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --verify chain
read -r -a ports <<<"$CHAIN_PORTS"
i=0
for c in "${good[@]}" "${bad[@]}"; do
	read -r up s <<<"$c"
	expect_works "${ports[$i]}" "CHAIN: $up ($s) is accepted with --verify chain"
	i=$((i + 1))
done
assert_eq 0 "$(count_log "$T/CHAIN.log" 'at=verify-failed')" "CHAIN: no verify-failed line"
assert_alive CHAIN
stop_memtunnel CHAIN

# ---- memtunnel check: the same verdicts -----------------------------------
n=0
for c in "${good[@]}"; do
	read -r up s <<<"$c"
	n=$((n + 1))
	status=$(run_memtunnel "$T/check$n.out" "$T/check$n.err" check --servers "$up" --ca "$PKI/ca.crt" --connect-timeout 2)
	out=$(cat "$T/check$n.out")
	assert_eq 0 "$status" "CHECK: $up ($s): check exits 0"
	assert_match "$out" $'\n  verify     ok: ' "CHECK: $up ($s): verify ok"
done
for c in "${bad[@]}"; do
	read -r up s <<<"$c"
	n=$((n + 1))
	status=$(run_memtunnel "$T/check$n.out" "$T/check$n.err" check --servers "$up" --ca "$PKI/ca.crt" --connect-timeout 2)
	out=$(cat "$T/check$n.out")
	assert_eq 69 "$status" "CHECK: $up ($s): check exits 69"
	assert_match "$out" $'\n  verify     FAILED: name mismatch\n' "CHECK: $up ($s): the verdict is name mismatch"
	assert_match "$out" $'\n  result     FAIL at verify: name mismatch' "CHECK: $up ($s): result FAIL at verify"
done
# The advice says why: an address is not matched by a DNS name, and a
# certificate with no SAN names nothing (its CN is not read).
assert_match "$(cat "$T/check$((${#good[@]} + 3)).out")" 'The certificate is for DNS:127\.0\.0\.1, not "127\.0\.0\.1" \(an address matches only an IP name, never a DNS name\)' \
	"CHECK: DNS:127.0.0.1 against 127.0.0.1: the advice says a DNS name never matches an address"
assert_match "$(cat "$T/check$((${#good[@]} + ${#bad[@]})).out")" 'no DNS or IP names, and memtunnel never consults the subject CN' \
	"CHECK: the CN-only certificate: the advice says the CN is not consulted"
