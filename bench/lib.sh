# Shared by the bench scripts. Sourced; uses the caller's REPO, NSFILE, WORK and die().

# Runs a command inside the benchmark's network namespace.
in_ns() { nsenter --net="$NSFILE" "$@"; }

# Builds nfowner and nfowner-traffic in release mode (scratch path .build-bench, git-ignored)
# and sets NFOWNER, TRAFFIC and BIN to their paths.
build_release_binaries() {
    (cd "$REPO" && swift build -c release --scratch-path .build-bench --product nfowner >&2 \
        && swift build -c release --scratch-path .build-bench --product nfowner-traffic >&2)
    BIN=$(cd "$REPO" && swift build -c release --scratch-path .build-bench --show-bin-path)
    NFOWNER=$BIN/nfowner
    TRAFFIC=$BIN/nfowner-traffic
}

# Starts a UDP socket on 0.0.0.0:$1 inside the namespace that is bound but never read, with a
# tiny receive buffer: after the first few datagrams each is dropped at the socket (no ICMP
# port-unreachable, which would put a second packet through OUTPUT for every datagram, and no
# reader to wake up). The alarm makes it exit by itself should everything else fail. Sets
# SINK_PID — the real interpreter, not a pyenv-style shim that would fork it, so the PID is the
# sink itself and can be killed by PID. Bound to every address, so `nfowner-traffic udp --flows N`
# (destinations 127.0.0.1, 127.0.0.2, …: loopback routes all of 127/8 to lo) finds it too.
start_udp_sink() {
    local port=$1
    local python
    python=$(python3 -c 'import sys; print(sys.executable)')
    nsenter --net="$NSFILE" "$python" -c '
import signal, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("0.0.0.0", int(sys.argv[1])))
open(sys.argv[2], "w").write("ready\n")
signal.alarm(3600)
while True:
    signal.pause()
' "$port" "$WORK/sink.ready" </dev/null >/dev/null 2>&1 &
    SINK_PID=$!
    for _ in $(seq 50); do [[ -s $WORK/sink.ready ]] && break; sleep 0.1; done
    [[ -s $WORK/sink.ready ]] || die "the UDP sink did not start"
}
