#!/usr/bin/env bash
# 75-tty: interactive use under a pseudo-terminal. A Python driver owns the
# terminal's master side and starts memtunnel as the session leader with
# the terminal as its stdin/stdout (stderr to a log). Every read is bounded.
#   - `memtunnel -- sh -i` (and bash): typed commands run; Ctrl-C interrupts
#     a running `sleep 30` in the shell without ending the shell or
#     memtunnel; Ctrl-Z stops a job and `fg` resumes it; the tunnel still
#     answers; `exit 3` ends everything with status 3.
#   - A program without job control, in memtunnel's own foreground group:
#     Ctrl-C, Ctrl-\ and a window resize reach it exactly once (the terminal
#     delivers them, memtunnel does not repeat them); memtunnel survives
#     them and keeps tunnelling.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2153,SC2154 # MC_* are set by start_memcached

start_memcached MC

# terminal.py LOG TRANSCRIPT SCRIPT -- MEMTUNNEL ARGS...: run memtunnel on a new
# pseudo-terminal and play SCRIPT (shell or fg) against it. Prints
# `PASS what` per check, or `FAIL what :: details` and exits 1.
cat >"$T/terminal.py" <<'EOF'
import fcntl, os, pty, re, select, signal, struct, sys, termios, time
from pymemcache.client.base import Client

log, transcript, script = sys.argv[1:4]
argv = sys.argv[5:]
out = open(transcript, "wb")

def passed(what):
    print("PASS", what, flush=True)

def failed(what, detail=""):
    print("FAIL", what, "::", detail, flush=True)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    sys.exit(1)

env = dict(os.environ, PS1="PROMPT> ", TERM="dumb")
env.pop("ENV", None)
pid, fd = pty.fork()
if pid == 0:
    # An interactive shell prompts and echoes on stderr: it stays on the
    # terminal there, and memtunnel's log lines appear in the transcript.
    if script != "shell":
        err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(err, 2)
    os.execve(argv[0], argv, env)

buf = b""
pos = 0

def expect(pattern, what, timeout=5):
    """Read until pattern appears after the last match; returns the match."""
    global buf, pos
    rx = re.compile(pattern.encode())
    end = time.monotonic() + timeout
    while True:
        m = rx.search(buf, pos)
        if m:
            pos = m.end()
            return m
        left = end - time.monotonic()
        if left <= 0:
            failed(what, "no %r in %r" % (pattern, buf[pos:][-300:]))
        r, _, _ = select.select([fd], [], [], min(left, 0.1))
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                failed(what, "terminal closed; no %r in %r" % (pattern, buf[pos:][-300:]))
            buf += data
            out.write(data)
            out.flush()

def send(data):
    os.write(fd, data)

def wait_for(cond, what, timeout=5):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            failed(what, "timed out after %s s" % timeout)
        time.sleep(0.01)

def state(p):
    try:
        with open("/proc/%d/stat" % p) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"

def alive(p):
    return state(p) not in ("Z", "X", "gone")

def log_count(pattern):
    with open(log) as f:
        return sum(1 for line in f if re.search(pattern, line))

def children_named(parent, name=None):
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        if name in (None, comm) and int(fields[1]) == parent and fields[0] not in "ZX":
            found.append(int(d))
    return found

def in_foreground(p):
    """p runs (not stopped) in the terminal's foreground process group."""
    try:
        return os.tcgetpgrp(fd) == os.getpgid(p) and state(p) not in ("T", "t", "Z", "X", "gone")
    except OSError:
        return False

def tunnel_works(port, key):
    c = Client(("127.0.0.1", port), connect_timeout=5, timeout=5)
    good = c.set(key, key.encode(), noreply=False) and c.get(key) == key.encode()
    c.close()
    return good

def finish(want):
    end = time.monotonic() + 5
    while time.monotonic() < end:
        # Keep the master drained so the child never blocks on output.
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                out.write(os.read(fd, 4096))
            except OSError:
                pass
        p, status = os.waitpid(pid, os.WNOHANG)
        if p == pid:
            code = os.waitstatus_to_exitcode(status)
            if code != want:
                failed("memtunnel exits %d" % want, "exit code %d" % code)
            passed("memtunnel exits %d" % want)
            return
    failed("memtunnel exits %d" % want, "still running after 5 s")

if script == "shell":
    expect(r"PROMPT> ", "the shell prompts")
    shells = children_named(pid)
    if len(shells) != 1:
        failed("memtunnel has one child, the shell", repr(shells))
    shell = shells[0]
    send(b"echo mark-$((40 + 2))\n")
    expect(r"mark-42\r\n", "a typed command runs")
    passed("a typed command runs (echo mark-42)")
    send(b'echo "S=$MEMCACHE_SERVERS A=$MEMTUNNEL_ACTIVE"\n')
    port = int(expect(r"S=127\.0\.0\.1:(\d+) A=1\r\n", "the shell has the tunnel's address").group(1))
    passed("the shell has the tunnel's address and MEMTUNNEL_ACTIVE=1")
    expect(r"PROMPT> ", "the shell prompts again")

    send(b"sleep 30\n")
    wait_for(lambda: len(children_named(shell, "sleep")) == 1, "the shell runs sleep 30")
    sleep = children_named(shell, "sleep")[0]
    wait_for(lambda: in_foreground(sleep), "sleep 30 is the terminal's foreground job")
    send(b"\x03")
    t0 = time.monotonic()
    wait_for(lambda: not alive(sleep), "Ctrl-C ends sleep 30", 5)
    passed("Ctrl-C interrupts sleep 30 (%d ms)" % ((time.monotonic() - t0) * 1000))
    expect(r"PROMPT> ", "the shell prompts after Ctrl-C")
    if not alive(pid) or not alive(shell):
        failed("memtunnel and the shell survive Ctrl-C")
    passed("memtunnel and the shell survive Ctrl-C")
    send(b"echo after-$((1 + 1))\n")
    expect(r"after-2\r\n", "a command after Ctrl-C runs")
    passed("the shell runs a command after Ctrl-C")

    send(b"sleep 30\n")
    wait_for(lambda: len(children_named(shell, "sleep")) == 1, "the shell runs sleep 30 again")
    sleep = children_named(shell, "sleep")[0]
    wait_for(lambda: in_foreground(sleep), "sleep 30 is the terminal's foreground job again")
    send(b"\x1a")
    expect(r"Stopped", "Ctrl-Z stops the job")
    if state(sleep) not in ("T", "t"):
        failed("Ctrl-Z stops the job", "sleep is in state %s" % state(sleep))
    expect(r"PROMPT> ", "the shell prompts after Ctrl-Z")
    if not alive(pid):
        failed("memtunnel survives Ctrl-Z")
    passed("Ctrl-Z stops the job; memtunnel is still running")
    send(b"fg\n")
    expect(r"sleep 30\r\n", "fg resumes the job")
    wait_for(lambda: in_foreground(sleep), "the resumed job is in the foreground")
    send(b"\x03")
    wait_for(lambda: not alive(sleep), "Ctrl-C ends the resumed sleep", 5)
    expect(r"PROMPT> ", "the shell prompts after the job ended")
    passed("fg resumes the job and Ctrl-C ends it")

    if not tunnel_works(port, "tty-shell"):
        failed("the tunnel answers after Ctrl-C and Ctrl-Z")
    passed("the tunnel answers after Ctrl-C and Ctrl-Z")
    send(b"exit 3\n")
    finish(3)

elif script == "fg":
    port = int(expect(r"ready S=127\.0\.0\.1:(\d+)\r\n", "the program starts").group(1))
    keys = [(b"\x03", "INT", "Interrupt", "Ctrl-C"),
            (b"\x1c", "QUIT", "Quit", "Ctrl-\\")]
    for data, name, desc, key in keys:
        send(data)
        expect(r"got %s 1\r\n" % name, "%s reaches the program" % key)
        wait_for(lambda: log_count(r'at=signal-not-forwarded signal="?%s"?$' % desc) == 1,
                 "memtunnel got SIG%s and did not forward it" % name)
        passed("%s reaches the program; memtunnel got it too and did not repeat it" % key)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    expect(r"got WINCH 1\r\n", "a resize reaches the program")
    wait_for(lambda: log_count(r'at=signal-not-forwarded signal="Window changed"$') == 1,
             "memtunnel got SIGWINCH and did not forward it")
    passed("a window resize reaches the program; memtunnel does not repeat it")
    if not alive(pid):
        failed("memtunnel survives Ctrl-C")
    if not tunnel_works(port, "tty-fg"):
        failed("the tunnel answers after Ctrl-C")
    passed("memtunnel survives Ctrl-C and keeps tunnelling")
    if log_count(r"at=signal-forwarded ") != 0:
        failed("memtunnel forwarded nothing", open(log).read())
    send(b"quit\n")
    expect(r"counts INT=1 QUIT=1 WINCH=1\r\n", "each signal arrived exactly once")
    passed("the program counted each signal exactly once")
    finish(0)
EOF

# A program without job control that counts its signals until it reads a
# line.
cat >"$T/counter.py" <<'EOF'
import os, signal, sys
n = {"INT": 0, "QUIT": 0, "WINCH": 0}
def on_signal(sig, frame):
    name = signal.Signals(sig).name[3:]
    n[name] += 1
    print("got %s %d" % (name, n[name]), flush=True)
for name in n:
    signal.signal(getattr(signal, "SIG" + name), on_signal)
print("ready S=" + os.environ["MEMCACHE_SERVERS"], flush=True)
sys.stdin.readline()
print("counts " + " ".join("%s=%d" % kv for kv in n.items()), flush=True)
EOF

# play NAME SCRIPT COMMAND...: run the driver; relay its checks.
play() {
	local name=$1 script=$2 line lines status=0 logfile
	shift 2
	timeout -k 2 30 "$PY" "$T/terminal.py" "$T/$name.log" "$T/$name.transcript" "$script" -- \
		"$MEMTUNNEL" --servers "localhost:$MC_PORT" --ca "$PKI/ca.crt" --log-level debug -- "$@" \
		>"$T/$name.driver" 2>&1 || status=$?
	mapfile -t lines <"$T/$name.driver"
	for line in "${lines[@]}"; do
		case $line in
		PASS\ *) ok "$name: ${line#PASS }" ;;
		FAIL\ *)
			fail "$name: ${line#FAIL }" "transcript: $(tr -d '\r' <"$T/$name.transcript" | tail -n 20)" \
				"${lines[@]}"
			;;
		esac
	done
	[[ $status -eq 0 ]] || fail "$name: the terminal driver ends cleanly" "exit $status" "${lines[@]}"
	# With a shell, memtunnel logs to the terminal, as the shell does.
	logfile=$T/$name.log
	[[ $script != shell ]] || logfile=$T/$name.transcript
	wait_log "$logfile" '^memtunnel level=info at=listening ' 1
	assert_eq 0 "$(count_log "$logfile" 'level=(warn|error)')" "$name: no warn or error line"
}

play SH shell sh -i
play BASH shell bash --norc --noprofile -i
play FG fg "$PY" "$T/counter.py"
