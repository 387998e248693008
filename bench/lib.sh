# Shared by the bench scripts. Sourced; sets REPO (the checkout); uses the caller's GROUP and
# PORTID where noted.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Stops the script with a message that names it.
die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# What every bench script does first: checks that it runs as root (`why`: what for) and that each
# given tool is installed; names its network namespace <prefix>-<pid> (NS, NSFILE; made later by
# make_namespace) and makes a work directory WORK; and arranges that however the script ends, its
# own `stop_started` runs if it defines one (the processes it started, by PID; its cgroups; it gets
# the exit status), then the namespace (its nft tables go with it) and WORK are removed. INT and
# TERM exit with 130 and 143, through the same cleanup.
bench_begin() {
    local prefix=$1 why=$2 tool
    shift 2
    [[ $(id -u) -eq 0 ]] || die "needs root ($why): sudo $0"
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "'$tool' not found"
    done
    NS=$prefix-$$
    NSFILE=/run/netns/$NS
    NS_CREATED=0
    WORK=$(mktemp -d "/tmp/$NS.XXXXXX")
    trap bench_end EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# The EXIT trap set by bench_begin.
bench_end() {
    local rc=$?
    set +e
    if declare -F stop_started >/dev/null; then stop_started "$rc"; fi
    remove_namespace
    rm -rf "$WORK"
    exit "$rc"
}

# Runs a command inside the benchmark's network namespace.
in_ns() { nsenter --net="$NSFILE" "$@"; }

# Creates the network namespace $NS with lo up; NS_CREATED=1 tells remove_namespace to delete it.
make_namespace() {
    ip netns add "$NS"
    NS_CREATED=1
    in_ns ip link set lo up
}

# Sets CGROOT to the cgroup2 mount, with nfowner's preference (CgroupMount): /sys/fs/cgroup, then
# /sys/fs/cgroup/unified, then the first cgroup2 line of mountinfo (the filesystem type follows
# the " - "; mountinfo escapes spaces etc. as \040).
find_cgroup2_root() {
    CGROOT=$(awk '{
            for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break }
        }' /proc/self/mountinfo | awk '
            $0 == "/sys/fs/cgroup" { best = $0; rank = 0 }
            $0 == "/sys/fs/cgroup/unified" && rank != 0 { best = $0; rank = 1 }
            best == "" { best = $0; rank = 2 }
            END { print best }')
    [[ -n $CGROOT ]] || die "no cgroup2 filesystem in /proc/self/mountinfo"
    CGROOT=$(printf '%b' "$CGROOT")
}

# Deletes the namespace if make_namespace created it (its nft tables and iptables rules go with it).
remove_namespace() {
    [[ ${NS_CREATED:-0} -eq 1 ]] && ip netns del "$NS" 2>/dev/null
    return 0
}

# Stops the processes with these PIDs — by PID only, never by name; empty arguments are skipped:
# SIGTERM, SIGKILL after a short grace, then reaps them. Safe under `set -e` (one already gone is
# not an error).
stop_pids() {
    local pid
    for pid in "$@"; do
        [[ -n $pid ]] || continue
        kill "$pid" 2>/dev/null && { sleep 0.5; kill -KILL "$pid" 2>/dev/null || true; }
        wait "$pid" 2>/dev/null || true
    done
    return 0
}

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

# --- NFLOG consumers (GROUP: the group; PORTID: the consumer's netlink portid)

# Installs `table inet $1` in the namespace: one rule at OUTPUT that logs the datagrams sent to
# SINK_PORT to NFLOG group GROUP, with nfowner's prefix and a snaplen of 128.
install_log_rule() {
    in_ns nft -f - <<EOF
table inet $1 {
	chain output {
		type filter hook output priority 100; policy accept;
		udp dport $SINK_PORT log prefix "nfowner" group $GROUP snaplen 128
	}
}
EOF
}

# Portid bound to our group, from /proc/net/netfilter/nfnetlink_log (per namespace), or empty.
group_portid() {
    in_ns awk -v g="$GROUP" '$1 == g { print $2 }' /proc/net/netfilter/nfnetlink_log 2>/dev/null || true
}
# Drops (and Rmem: bytes waiting in the receive buffer) of the NETLINK_NETFILTER (12) socket with
# that portid, from /proc/net/netlink.
netlink_drops() {
    in_ns awk -v p="$1" 'NR > 1 && $2 == 12 && $3 == p { print $9; exit }' /proc/net/netlink
}
netlink_rmem() {
    in_ns awk -v p="$1" 'NR > 1 && $2 == 12 && $3 == p { print $5; exit }' /proc/net/netlink
}
now_ns() { date +%s%N; }
# After the sender stops: wait until the consumer has emptied its socket buffer (a slow consumer can
# be seconds behind; stopping it earlier would leave those messages uncounted and their CPU unpaid),
# then past the flush timeout (0.1 s) for the last partial batch. Prints the ns it took to drain.
wait_drained() {
    local start rmem _ end
    start=$(now_ns)
    end=$start
    for _ in $(seq 1200); do   # at most 60 s
        rmem=$(netlink_rmem "$PORTID")
        end=$(now_ns)
        [[ ${rmem:-0} -eq 0 ]] && break
        sleep 0.05
    done
    sleep 0.3
    for _ in $(seq 200); do
        rmem=$(netlink_rmem "$PORTID")
        [[ ${rmem:-0} -eq 0 ]] && break
        sleep 0.05
    done
    echo $((end - start))
}
# ns on CPU of every thread of a process. Numbers leave awk through "%.0f", never "%d": Debian's
# mawk caps "%d" at 2^31 − 1, which is 2.1 s of CPU or 2.1 GB.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
# "user system" ns of a process (all threads: utime and stime of /proc/PID/stat, in clock ticks,
# so only as fine as 1/CLK_TCK — 10 ms here; fine over runs of seconds). Fields are counted after
# the ")" that ends the command name, which may itself contain spaces.
user_system_ns() {
    local tick
    tick=$(getconf CLK_TCK)
    sed 's/.*) //' /proc/"$1"/stat | awk -v t="$tick" '{ printf "%.0f %.0f\n", $12 * 1e9 / t, $13 * 1e9 / t }'
}

# Writes to $1 a python3 probe: `probe.py COUNT PORT` connects COUNT times, every 2 ms, to
# 127.0.0.1:PORT where nothing listens (the kernel answers the SYN with a RST), times each
# connect() and prints "p50_us=… p99_us=… max_us=… n=…". Used by hold.sh and enforce.sh.
write_connect_probe() {
    cat >"$1" <<'PY'
import socket, sys, time
count, port = int(sys.argv[1]), int(sys.argv[2])
durations = []
for _ in range(count):
    s = socket.socket()
    start = time.monotonic_ns()
    code = s.connect_ex(("127.0.0.1", port))
    durations.append(time.monotonic_ns() - start)
    s.close()
    if code != 111:
        sys.exit(f"connect returned {code}, not ECONNREFUSED")
    time.sleep(0.002)
durations.sort()
pick = lambda q: durations[min(len(durations) - 1, int(q * len(durations)))] / 1000
print(f"p50_us={pick(0.5):.1f} p99_us={pick(0.99):.1f} max_us={durations[-1] / 1000:.1f} n={len(durations)}")
PY
}
