#!/usr/bin/env bash
# 79-check-creds: `memtunnel check` sends a node only the credentials that
# belong to it (SPEC §3a): the pair beside the variable its address came
# from (MEMCACHIER_SERVERS -> MEMCACHIER_USERNAME/_PASSWORD, …), or
# MEMTUNNEL_USERNAME/_PASSWORD, which override them and are the only source
# for --servers; and nothing at all to a peer it did not verify (--verify
# none). Two SASL stand-ins (tests/tools/sasl-standin.py) play the
# MemCachier and the Memcached Cloud node and record every byte they
# receive; each case looks for every user name and password in each record.
# Cases: only the MemCachier pair set, two providers (the Cloud node gets
# nothing, the MemCachier node logs in: the recording works); the MEMTUNNEL
# pair overrides both providers' pairs; --servers takes the MEMTUNNEL pair
# only; --verify none sends no credential and says so. Then real memcached
# -S: the Cloud pair logs in to a Cloud node, the MEMTUNNEL pair through
# --servers.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # *_PORT are set by start_memcached

# One random user name and password per owner: MemCachier, Memcached Cloud,
# memtunnel's own.
cier_user=cier-$(rnd) cier_pass=CierPw-$(rnd)
cloud_user=cloud-$(rnd) cloud_pass=CloudPw-$(rnd)
tun_user=tun-$(rnd) tun_pass=TunPw-$(rnd)
secrets=("$cier_user" "$cier_pass" "$cloud_user" "$cloud_pass" "$tun_user" "$tun_pass")

# Each stand-in accepts its provider's pair and memtunnel's.
standin() {
	local var=$1 user=$2 pass=$3 port
	bg_start "$var" "$PY" "$TESTS_DIR/tools/sasl-standin.py" --cert "$PKI/server-chain.crt" \
		--key "$PKI/server.key" --record "$T/$var.rec" --user "$user" --password "$pass" \
		--user "$tun_user" --password "$tun_pass" --lifetime 120
	wait_log "$T/$var.out" '^listening [0-9]+$'
	port=$(sed -n 's/^listening //p' "$T/$var.out")
	printf -v "${var}_PORT" '%s' "$port"
}
standin CIER "$cier_user" "$cier_pass"
standin CLOUD "$cloud_user" "$cloud_pass"
vars=(MEMTUNNEL_VARS="MEMCACHIER_SERVERS MEMCACHEDCLOUD_SERVERS"
	MEMCACHIER_SERVERS="localhost:$CIER_PORT" MEMCACHEDCLOUD_SERVERS="localhost:$CLOUD_PORT")
ca=(--ca "$PKI/ca.crt" --connect-timeout 2)

# check NAME ENV... -- ARGS...: run_check (memtunnel check with exactly ENV
# added) after the stand-ins' records were emptied; output in $T/NAME.out
# and $T/NAME.err, records kept as $T/NAME.NODE.rec; sets $status and $out.
check() {
	: >"$T/CIER.rec"
	: >"$T/CLOUD.rec"
	run_check "$@"
	cp "$T/CIER.rec" "$T/$1.CIER.rec"
	cp "$T/CLOUD.rec" "$T/$1.CLOUD.rec"
}

# received NAME NODE: the secrets (by owner and kind) that reached NODE in
# case NAME, one line, in the order of $secrets; "none" if none did.
received() {
	local f=$T/$1.$2.rec got=() labels=(cier-user cier-pass cloud-user cloud-pass tun-user tun-pass) i
	for i in "${!secrets[@]}"; do
		grep -aqF -- "${secrets[$i]}" "$f" && got+=("${labels[$i]}")
	done
	echo "${got[*]:-none}"
}

# Not one secret on memtunnel's output, in any case.
no_secret_output() {
	local s
	for s in "${secrets[@]}"; do
		if grep -qF -- "$s" "$T/$1.out" "$T/$1.err"; then
			fail "$1: no user name or password in check's output"
		fi
	done
	ok "$1: no user name or password in check's output"
}

# ---- only the MemCachier pair, two providers' nodes ------------------------
check CROSS "${vars[@]}" MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass" -- "${ca[@]}"
assert_eq "none" "$(received CROSS CLOUD)" "CROSS: the Memcached Cloud node receives no credential (MemCachier's stays with MemCachier)"
assert_eq "cier-user cier-pass" "$(received CROSS CIER)" "CROSS: the MemCachier node receives MemCachier's pair"
assert_match "$out" $'upstream     localhost:'"$CIER_PORT"$'\n(.*\n)*  sasl       with MEMCACHIER_USERNAME and MEMCACHIER_PASSWORD: authenticated' \
	"CROSS: check logs in to the MemCachier node"
assert_match "$out" 'set MEMCACHEDCLOUD_USERNAME and MEMCACHEDCLOUD_PASSWORD' \
	"CROSS: the advice for the Cloud node names the Cloud pair"
assert_eq 69 "$status" "CROSS: the Cloud node, a SASL server without its credentials, fails (exit 69)"
no_secret_output CROSS

# ---- the MEMTUNNEL pair overrides every provider's -------------------------
check OVERRIDE "${vars[@]}" MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass" \
	MEMCACHEDCLOUD_USERNAME="$cloud_user" MEMCACHEDCLOUD_PASSWORD="$cloud_pass" \
	MEMTUNNEL_USERNAME="$tun_user" MEMTUNNEL_PASSWORD="$tun_pass" -- "${ca[@]}"
assert_eq 0 "$status" "OVERRIDE: both nodes pass (exit 0)"
assert_eq "tun-user tun-pass" "$(received OVERRIDE CIER)" "OVERRIDE: the MemCachier node receives the MEMTUNNEL pair only"
assert_eq "tun-user tun-pass" "$(received OVERRIDE CLOUD)" "OVERRIDE: the Cloud node receives the MEMTUNNEL pair only"
assert_eq 2 "$(grep -c '^  sasl       with MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD: authenticated' "$T/OVERRIDE.out")" \
	"OVERRIDE: both logins name MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD"
no_secret_output OVERRIDE

# The Cloud pair goes to the Cloud node, MemCachier's to MemCachier's.
check BOTH "${vars[@]}" MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass" \
	MEMCACHEDCLOUD_USERNAME="$cloud_user" MEMCACHEDCLOUD_PASSWORD="$cloud_pass" -- "${ca[@]}"
assert_eq 0 "$status" "BOTH: both providers' pairs: both nodes pass (exit 0)"
assert_eq "cier-user cier-pass" "$(received BOTH CIER)" "BOTH: the MemCachier node receives MemCachier's pair only"
assert_eq "cloud-user cloud-pass" "$(received BOTH CLOUD)" "BOTH: the Cloud node receives the Cloud pair only"

# ---- --servers: the MEMTUNNEL pair is its only source -----------------------
servers=(--servers "localhost:$CIER_PORT,localhost:$CLOUD_PORT")
check SERVERS MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass" -- "${servers[@]}" "${ca[@]}"
assert_eq "none none" "$(received SERVERS CIER) $(received SERVERS CLOUD)" \
	"SERVERS: --servers with only a provider's pair: no node receives it"
assert_match "$out" 'set MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD' "SERVERS: the advice names the MEMTUNNEL pair"
check SERVERSTUN MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass" \
	MEMTUNNEL_USERNAME="$tun_user" MEMTUNNEL_PASSWORD="$tun_pass" -- "${servers[@]}" "${ca[@]}"
assert_eq 0 "$status" "SERVERSTUN: --servers with the MEMTUNNEL pair: both nodes pass"
assert_eq "tun-user tun-pass|tun-user tun-pass" "$(received SERVERSTUN CIER)|$(received SERVERSTUN CLOUD)" \
	"SERVERSTUN: each node receives the MEMTUNNEL pair only"

# ---- --verify none: no credential to an unverified peer --------------------
check NONE "${vars[@]}" MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass" \
	MEMCACHEDCLOUD_USERNAME="$cloud_user" MEMCACHEDCLOUD_PASSWORD="$cloud_pass" \
	MEMTUNNEL_USERNAME="$tun_user" MEMTUNNEL_PASSWORD="$tun_pass" -- --verify none --connect-timeout 2
assert_eq "none none" "$(received NONE CIER) $(received NONE CLOUD)" \
	"NONE: --verify none: no node receives any credential"
assert_le 24 "$(wc -c <"$T/NONE.CIER.rec")" "NONE: check did talk to the node (a binary request was recorded)"
assert_eq 2 "$(grep -c '^  sasl       with MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD: not tried: --verify none' "$T/NONE.out")" \
	"NONE: each block says why there was no login"
assert_match "$out" 'sends no credential to a server it did not verify' "NONE: the note explains it"
assert_eq 0 "$status" "NONE: the nodes answered; check exits 0 (with --verify none's warning)"
no_secret_output NONE
check NONESERVERS MEMTUNNEL_USERNAME="$tun_user" MEMTUNNEL_PASSWORD="$tun_pass" -- \
	"${servers[@]}" --verify none --connect-timeout 2
assert_eq "none none" "$(received NONESERVERS CIER) $(received NONESERVERS CLOUD)" \
	"NONESERVERS: --servers, --verify none: no node receives the MEMTUNNEL pair"

# ---- real memcached -S ---------------------------------------------------------
start_memcached CLOUDMC --sasl "$cloud_user" "$cloud_pass"
start_memcached TUNMC --sasl "$tun_user" "$tun_pass"
check REALCLOUD MEMCACHEDCLOUD_SERVERS="localhost:$CLOUDMC_PORT" MEMCACHEDCLOUD_USERNAME="$cloud_user" \
	MEMCACHEDCLOUD_PASSWORD="$cloud_pass" MEMCACHIER_USERNAME="$cier_user" MEMCACHIER_PASSWORD="$cier_pass" -- "${ca[@]}"
assert_eq 0 "$status" "REALCLOUD: memcached -S as the Cloud node, the Cloud pair set: check passes"
assert_match "$out" $'\n  sasl       with MEMCACHEDCLOUD_USERNAME and MEMCACHEDCLOUD_PASSWORD: authenticated' \
	"REALCLOUD: logged in with the Cloud pair"
check REALTUN MEMTUNNEL_USERNAME="$tun_user" MEMTUNNEL_PASSWORD="$tun_pass" -- \
	--servers "localhost:$TUNMC_PORT" "${ca[@]}"
assert_eq 0 "$status" "REALTUN: memcached -S through --servers with the MEMTUNNEL pair: check passes"
assert_match "$out" $'\n  sasl       with MEMTUNNEL_USERNAME and MEMTUNNEL_PASSWORD: authenticated' \
	"REALTUN: logged in with the MEMTUNNEL pair"
no_secret_output REALTUN
