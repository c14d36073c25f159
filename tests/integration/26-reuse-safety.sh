#!/usr/bin/env bash
# 26-reuse-safety: where --reuse must not reuse, it does not.
#
#   - A client that logs in itself (binary SASL, against memcached -Z -S)
#     leaves a connection no one else gets, even with --reuse on: the next
#     client, without a login, is refused by the server (status 0x20).
#     With --reuse auto and the node's credentials in the environment,
#     nothing is pooled at all.
#   - ASCII authentication (memcached -Z -Y) with credentials and no
#     --auth: a connection whose first command was a set (the login) is not
#     reused with --reuse on; the next client is unauthenticated. With
#     --auth memcached, memtunnel's own login is reused: the server counts
#     fewer logins than clients.
#   - A server that sends one stray reply (tests/tools/stray-standin.py):
#     right behind the sentinel's answer, a moment after it (the
#     connection is pooled by then), or a second answer to a get. Each
#     time the connection is closed, never handed out, and the next client
#     gets exactly its own reply. The control, without a stray reply, is
#     reused. A server that answers `mn` with ERROR (memcached before 1.6):
#     a client that half-closes gets exactly its replies and EOF, never that
#     ERROR; one warn line says reuse is off for that node, and nothing is
#     pooled after. A server that does not answer `mn` at all: the client
#     gets its replies and EOF once --connect-timeout has passed, and reuse
#     is off for that node too. (A stray
#     reply still on the network when the connection is
#     handed out cannot be told from the next client's; one in the socket
#     is, by a peek.)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # *_PORT, *_PID are set by lib.sh

user=reuser pass=$(rnd)

# ---- SASL ---------------------------------------------------------------
start_memcached SASL --sasl "$user" "$pass"
sasl_client() { # PORT USER PASS: login (unless USER is -), get; prints the get's status
	py_run - "$@" <<'EOF'
import socket, struct, sys
import mcread
port, user, pw = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
def req(op, key=b"", value=b"", opaque=0):
    body = key + value
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), 0, 0, 0, len(body), opaque, 0) + body
s = socket.create_connection(("127.0.0.1", port), timeout=10)
r = mcread.Reader(s)
if user != b"-":
    s.sendall(req(0x21, b"PLAIN", b"\0" + user + b"\0" + pw, 1))
    a = r.binary()
    assert a.status == 0, a
s.sendall(req(0x00, b"sasl:none", opaque=2))
print("status=0x%02x" % r.binary().status)
s.close()
EOF
}
MEMCACHE_USERNAME=$user MEMCACHE_PASSWORD=$pass start_memtunnel SON --servers "localhost:$SASL_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --log-level debug --reuse on
out=$(sasl_client "$SON_PORT" "$user" "$pass") || fail "a SASL client through --reuse on" "$out"
assert_eq "status=0x01" "$out" "the client logs in and its get misses (status 1, not found)"
wait_log "$T/SON.log" 'at=not-reused upstream=[^ ]+ reason="the client authenticated on the connection \(SASL\)"'
ok "a connection the client logged in on is not reused"
out=$(sasl_client "$SON_PORT" - -) || fail "a client without a login after it" "$out"
assert_eq "status=0x20" "$out" "the next client, without a login, is refused by the server: it did not inherit the login"
assert_eq 0 "$(count_log "$T/SON.log" ' at=(pooled|reused) ')" "nothing was pooled"
stop_memtunnel SON

MEMCACHE_SERVERS="localhost:$SASL_PORT" MEMCACHE_USERNAME=$user MEMCACHE_PASSWORD=$pass \
	start_memtunnel SAUTO --listen 127.0.0.1:0 --ca "$PKI/ca.crt" --log-level debug
for i in 1 2 3; do
	out=$(sasl_client "$SAUTO_PORT" "$user" "$pass") || fail "SASL client $i with --reuse auto" "$out"
	assert_eq "status=0x01" "$out" "SASL client $i with --reuse auto logs in and gets its miss"
done
assert_eq 0 "$(count_log "$T/SAUTO.log" ' at=(pooled|reused|not-reused) ')" \
	"--reuse auto with the node's credentials in the environment frames and pools nothing"
stop_memtunnel SAUTO

# ---- ASCII authentication -------------------------------------------------
start_memcached ASC --ascii-auth "$user" "$pass"
ascii_client() { # PORT LOGIN(0|1): prints the reply to a get
	py_run - "$@" "$user $pass" <<'EOF'
import socket, sys
import mcread
port, login, pair = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3].encode()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
r = mcread.Reader(s)
if login:
    s.sendall(b"set login 0 0 %d\r\n%s\r\n" % (len(pair), pair))
    assert r.text().status == b"STORED"
s.sendall(b"get ascii:none\r\n")
print(r.text().status.decode())
s.close()
EOF
}
MEMTUNNEL_USERNAME=$user MEMTUNNEL_PASSWORD=$pass start_memtunnel AON --servers "localhost:$ASC_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --log-level debug --reuse on
out=$(ascii_client "$AON_PORT" 1) || fail "an ASCII login through --reuse on" "$out"
assert_eq "END" "$out" "the client logs in with a set and its get is answered"
wait_log "$T/AON.log" 'at=not-reused upstream=[^ ]+ reason="the client sent a set, which may be an ASCII login'
ok "a connection on which the client sent a set is not reused where credentials exist and memtunnel does not log in"
out=$(ascii_client "$AON_PORT" 0) || fail "a client without a login after it" "$out"
assert_match "$out" '^CLIENT_ERROR' "the next client is unauthenticated: it did not inherit the login ($out)"
assert_eq 0 "$(count_log "$T/AON.log" ' at=(pooled|reused) ')" "nothing was pooled"
stop_memtunnel AON

logins_before=$(MC_ASCII_LOGIN="$user $pass" mc_stat "$ASC_NOTLS_PORT" auth_cmds)
MEMTUNNEL_USERNAME=$user MEMTUNNEL_PASSWORD=$pass start_memtunnel AAUTH --servers "localhost:$ASC_PORT" \
	--listen 127.0.0.1:0 --ca "$PKI/ca.crt" --log-level debug --auth memcached
for i in 1 2 3 4 5 6; do
	out=$(ascii_client "$AAUTH_PORT" 0) || fail "client $i with --auth memcached" "$out"
	assert_eq "END" "$out" "client $i is logged in by memtunnel"
	wait_count "$T/AAUTH.log" ' at=pooled ' "$i" >/dev/null
done
logins_after=$(MC_ASCII_LOGIN="$user $pass" mc_stat "$ASC_NOTLS_PORT" auth_cmds)
# The probe of mc_stat logs in once itself.
logins=$((logins_after - logins_before - 1))
assert_le 5 "$(count_log "$T/AAUTH.log" ' at=reused ')" "with --auth, 5 of 6 clients reuse an authenticated connection"
assert_le "$logins" 2 "the server counted at most 2 logins by memtunnel for 6 clients ($logins)"
stop_memtunnel AAUTH

# ---- stray replies --------------------------------------------------------
stray() { # VAR MODE: a stand-in node; sets VAR_PORT
	local var=$1 port
	bg_start "$var" "$PY" "$TESTS_DIR/tools/stray-standin.py" --cert "$PKI/server-chain.crt" \
		--key "$PKI/server.key" --stray "$2" --late-ms 100 --lifetime 120
	wait_log "$T/$var.out" '^listening [0-9]+$'
	port=$(sed -n 's/^listening //p' "$T/$var.out")
	printf -v "${var}_PORT" '%s' "$port"
}
text_client() { # PORT KEY: set KEY to a value of protocol text, get it, verify exactly
	py_run - "$@" <<'EOF'
import socket, sys
import mcread
port, key = int(sys.argv[1]), sys.argv[2].encode()
v = b"END\r\nMN\r\nVALUE x 0 1\r\n" + key
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"set %s 0 0 %d\r\n%s\r\nget %s\r\n" % (key, len(v), v, key))
r = mcread.Reader(s)
assert r.text().status == b"STORED"
g = r.text()
assert g.status == b"END" and [(x.key, x.data) for x in g.values] == [(key, v)], g
s.close()
EOF
}
for mode in none after late before; do
	var=ST_${mode^^}
	stray "$var" "$mode"
	port_var=${var}_PORT
	start_memtunnel "M$mode" --servers "localhost:${!port_var}" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
		--log-level debug --prewarm 0
	mport_var=M${mode}_PORT
	text_client "${!mport_var}" "k1-$mode" || fail "first client against the $mode stand-in"
	case $mode in
	none)
		wait_log "$T/Mnone.log" ' at=pooled '
		ok "without a stray reply the connection is pooled"
		;;
	after)
		# The stray reply comes in a TLS record of its own: in the same
		# read as the sentinel's answer (not reused), or just after it,
		# when the connection is pooled (closed at once).
		wait_log "$T/Mafter.log" 'at=(not-reused upstream=[^ ]+ reason="replies that do not match the requests"|spare-closed upstream=[^ ]+ reason="the server sent data unasked")'
		ok "stray after: the connection is not reused, or closed in the pool"
		;;
	before)
		# The stray reply follows the get's at once: it may reach the
		# client before its close, which then resets (unread data), and
		# the connection closes with it; else the framer finds it.
		wait_log "$T/Mbefore.log" 'at=(not-reused upstream=[^ ]+ reason="replies that do not match the requests"|client-gone upstream=[^ ]+ reason="connection reset by peer")'
		ok "stray before: the connection is not reused"
		;;
	late)
		wait_log "$T/Mlate.log" ' at=pooled '
		wait_log "$T/$var.out" '^stray 1$'
		wait_log "$T/Mlate.log" 'at=spare-closed upstream=[^ ]+ reason="the server sent data unasked"'
		ok "stray late: the pooled connection is closed when the stray reply comes"
		;;
	esac
	text_client "${!mport_var}" "k2-$mode" || fail "the next client against the $mode stand-in gets exactly its reply"
	ok "stray $mode: the next client gets exactly its own replies"
	conns=$(grep -c '^conn ' "$T/$var.out")
	if [[ $mode == none ]]; then
		assert_eq 1 "$conns" "the control served both clients on one connection"
	else
		assert_eq 2 "$conns" "stray $mode: the next client had a new connection"
	fi
	assert_eq 0 "$(count_log "$T/M$mode.log" 'level=(warn|error)')" "stray $mode: no warn or error line"
	stop_memtunnel "M$mode"
done

# A server without `mn`: the sentinel's ERROR never reaches the client, and
# turns reuse off for the node. The client half-closes after its requests
# and reads to the end: every byte it gets must be its own.
stray ST_NOMN nomn
start_memtunnel Mnomn --servers "localhost:$ST_NOMN_PORT" --listen 127.0.0.1:0 --ca "$PKI/ca.crt" \
	--log-level debug --prewarm 0
out=$(py_run - "$Mnomn_PORT" <<'EOF'
import socket, sys
import mcread
port = int(sys.argv[1])
v = b"ERROR\r\nEND\r\nMN\r\n"
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"set k1-nomn 0 0 %d\r\n%s\r\nget k1-nomn\r\n" % (len(v), v))
s.shutdown(socket.SHUT_WR)
got = mcread.to_eof(s)
want = b"STORED\r\nVALUE k1-nomn 0 %d\r\n%s\r\nEND\r\n" % (len(v), v)
print("exact" if got == want else "got %r" % got)
EOF
) || fail "a half-closed client against a server without mn" "$out"
assert_eq exact "$out" "a half-closed client gets exactly its replies, then EOF: not the sentinel's ERROR"
wait_log "$T/Mnomn.log" 'level=warn at=reuse-off upstream=[^ ]+ reason="the server did not answer the sentinel'
ok "a refused sentinel turns reuse off for the node, with one warn line"
text_client "$Mnomn_PORT" k2-nomn || fail "second client against a server without mn"
text_client "$Mnomn_PORT" k3-nomn || fail "third client against a server without mn"
assert_eq 0 "$(count_log "$T/Mnomn.log" ' at=(pooled|reused) ')" "nothing was pooled"
assert_eq 1 "$(count_log "$T/Mnomn.log" 'at=reuse-off')" "one reuse-off line"
assert_eq 3 "$(grep -c '^conn ' "$T/ST_NOMN.out")" "three clients, three connections"
stop_memtunnel Mnomn

# A server that never answers the sentinel: after --connect-timeout (1 s)
# the client has its replies and EOF, and reuse is off for the node.
stray ST_SILENT silent
start_memtunnel Msilent --servers "localhost:$ST_SILENT_PORT" --listen 127.0.0.1:0 \
	--ca "$PKI/ca.crt" --log-level debug --prewarm 0 --connect-timeout 1
text_client "$Msilent_PORT" k1-silent || fail "first client against a server silent to mn"
wait_log "$T/Msilent.log" 'level=warn at=reuse-off upstream=[^ ]+ reason="the server did not answer the sentinel'
ok "an unanswered sentinel turns reuse off for the node, with one warn line"
text_client "$Msilent_PORT" k2-silent || fail "second client against a server silent to mn"
assert_eq 0 "$(count_log "$T/Msilent.log" ' at=(pooled|reused) ')" "nothing was pooled"
assert_eq 2 "$(grep -c '^conn ' "$T/ST_SILENT.out")" "two clients, two connections"
stop_memtunnel Msilent
