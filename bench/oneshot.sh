#!/usr/bin/env bash
# One-shot senders named at packet time (issue 12's target: the sender's exe named on ≥ 99% of
# the packets a live socket sent). The issue's shell loop, ROUNDS rounds of
#   ping (one echo request) · perl (TCP connect, 512 bytes, close) · python3 (one UDP datagram)
# — each step another executable, one unprivileged uid (65534), one cgroup of the bench's own,
# each step gone a moment after it sent, and each writing its pid before it sends — watched by
# `nfowner monitor --format json --netns NS` (installing its own ruleset, as a user runs it),
# without and with --hold-new-flows, idle and under a background UDP load of LOAD packets/s
# (nfowner-traffic, uid 0, to a bound, never-read sink).
#
# Per program, over the packets that carry the sender's uid (ping: echo requests; perl: every
# packet of its connections, SYN to the last ACK; python3: its datagrams):
#   named     the confidence is exact, single or program and `exe` is the sender's executable;
#   with pid  `pid` is the sender's own (from the pid file);
#   wrong     a pid, exe or comm named outright that is another process's or program's (must be 0).
#
# Run as root: sudo bench/oneshot.sh   (≈ 1 min per 100 rounds and row, plus the release build)
# Environment knobs [defaults]: NFO_BENCH_ROUNDS [100], NFO_BENCH_MODES ["window hold"],
#   NFO_BENCH_LOADS ["0 200000"], NFO_BENCH_PORT [9330] (TCP listener; datagrams: +1; load: +2),
#   NFO_BENCH_KEEP [""] (a directory: each row's events, pid file and monitor stderr are kept there)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_begin nfo-oneshot "network namespaces, cgroups, NFLOG and NFQUEUE" nft python3 perl ping setpriv

ROUNDS=${NFO_BENCH_ROUNDS:-100}
read -r -a MODES <<<"${NFO_BENCH_MODES:-window hold}"
read -r -a LOADS <<<"${NFO_BENCH_LOADS:-0 200000}"
TCP_PORT=${NFO_BENCH_PORT:-9330}
UDP_PORT=$((TCP_PORT + 1))
SINK_PORT=$((TCP_PORT + 2))
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "NFO_BENCH_ROUNDS must be a positive number, got '$ROUNDS'"
for mode in "${MODES[@]}"; do
    [[ $mode == window || $mode == hold ]] || die "modes are 'window' and 'hold', got '$mode'"
done
UNPRIVILEGED=65534

find_cgroup2_root
LOOP_CG=$CGROOT/$NS
MONITOR_PID=""
LOAD_PID=""
SINK_PID=""
PEER_PID=""

# Processes first (by PID; a cgroup with members cannot be removed), then the cgroup.
stop_started() {
    local pid
    stop_pids "$LOAD_PID" "$MONITOR_PID" "$SINK_PID" "$PEER_PID"
    if [[ -d $LOOP_CG ]]; then
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            [[ -s $LOOP_CG/cgroup.procs ]] || break
            while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$LOOP_CG/cgroup.procs"
            sleep 0.2
        done
        rmdir "$LOOP_CG" 2>/dev/null || echo "oneshot.sh: could not remove $LOOP_CG" >&2
    fi
    return 0
}

echo "building release binaries (.build-bench)…" >&2
build_release_binaries
make_namespace
mkdir "$LOOP_CG"
chmod 0711 "$WORK"   # the loop runs as uid $UNPRIVILEGED and appends to a pid file in it
start_udp_sink "$SINK_PORT"
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

# The peer: a TCP listener that reads each connection to its end, and a UDP socket for the
# datagrams, bound and never read (no port unreachable goes back).
cat >"$WORK/peer.py" <<'EOF'
import signal, socket, sys, threading
tcp_port, udp_port, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", udp_port))
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", tcp_port))
listener.listen(128)
def drain(connection):
    with connection:
        while connection.recv(65536):
            pass
open(ready, "w").write("ready\n")
signal.alarm(3600)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=drain, args=(connection,), daemon=True).start()
EOF
nsenter --net="$NSFILE" "$PYTHON" "$WORK/peer.py" "$TCP_PORT" "$UDP_PORT" "$WORK/peer.ready" </dev/null >/dev/null 2>&1 &
PEER_PID=$!
for _ in $(seq 50); do [[ -s $WORK/peer.ready ]] && break; sleep 0.1; done
[[ -s $WORK/peer.ready ]] || die "the TCP/UDP peer did not start"

LOOP="for round in \$(seq $ROUNDS); do
  sh -c 'echo \"ping \$\$\" >> \"\$P\"; exec ping -c1 -W1 127.0.0.1 >/dev/null'
  perl -MIO::Socket::INET -e 'open my \$f, \">>\", \$ENV{P}; print \$f \"perl \$\$\\n\"; close \$f; \$s = IO::Socket::INET->new(\"127.0.0.1:$TCP_PORT\") or die; print \$s \"x\" x 512; close \$s'
  /usr/bin/python3 -c 'import os, socket; open(os.environ[\"P\"], \"a\").write(\"python3 %d\\n\" % os.getpid()); socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b\"x\", (\"127.0.0.1\", $UDP_PORT))'
done"

cat >"$WORK/report.py" <<'EOF'
import json, sys
events_file, pids_file, label, tcp_port, udp_port, uid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
program_of = {}
for line in open(pids_file):
    words = line.split()
    if len(words) == 2:
        program_of[int(words[1])] = words[0]
def kind(event):
    if event.get("uid") != uid:
        return None
    if event.get("proto") == "icmp" and event.get("icmp_type") == 8:
        return "ping"
    if event.get("proto") == "tcp" and event.get("dport") == tcp_port:
        return "perl"
    if event.get("proto") == "udp" and event.get("dport") == udp_port:
        return "python3"
    return None
def right_exe(name, exe):
    return exe is not None and (exe.endswith("/" + name) or ("/" + name + ".") in exe)
rows = {name: [0, 0, 0, 0] for name in ("ping", "perl", "python3")}  # packets, named, with pid, wrong
wrong_examples = []
for line in open(events_file):
    if not line.startswith("{"):
        continue
    event = json.loads(line)
    name = kind(event)
    if name is None:
        continue
    row = rows[name]
    row[0] += 1
    outright = event.get("confidence") in ("exact", "single", "program")
    if outright and right_exe(name, event.get("exe")):
        row[1] += 1
    if event.get("pid") is not None and program_of.get(event["pid"]) == name:
        row[2] += 1
    if outright:
        wrong_pid = event.get("pid") is not None and program_of.get(event["pid"]) != name
        wrong_exe = event.get("exe") is not None and not right_exe(name, event.get("exe"))
        wrong_comm = event.get("exe") is None and event.get("comm") is not None and event.get("comm") != name
        if wrong_pid or wrong_exe or wrong_comm:
            row[3] += 1
            wrong_examples.append(f'{name}: {event.get("confidence")} pid {event.get("pid")} {event.get("exe") or event.get("comm")}')
total = [sum(row[i] for row in rows.values()) for i in range(4)]
cells = " ".join(f"{name}={row[1]}/{row[0]}(pid {row[2]},wrong {row[3]})" for name, row in rows.items())
share = 100.0 * total[1] / total[0] if total[0] else float("nan")
print(f"{label}: {cells} all={total[1]}/{total[0]} ({share:.1f}%) wrong={total[3]}")
for example in wrong_examples[:5]:
    print(f"  wrong: {example}")
EOF

for mode in "${MODES[@]}"; do
    for load in "${LOADS[@]}"; do
        label="mode=$mode load=${load}pps rounds=$ROUNDS"
        events=$WORK/events.json
        pids=$WORK/pids.txt
        : >"$pids"
        chmod 0666 "$pids"
        hold=()
        [[ $mode == hold ]] && hold=(--hold-new-flows)
        # Emptied before the start: the background job's own redirect may come after the wait's
        # first look, which would then find the previous row's "reading NFLOG".
        : >"$WORK/monitor.err"
        "$NFOWNER" monitor --format json --netns "$NS" "${hold[@]}" </dev/null >"$events" 2>"$WORK/monitor.err" &
        MONITOR_PID=$!
        for _ in $(seq 100); do grep -q "reading NFLOG" "$WORK/monitor.err" 2>/dev/null && break; sleep 0.1; done
        grep -q "reading NFLOG" "$WORK/monitor.err" || { cat "$WORK/monitor.err" >&2; die "the monitor did not start"; }
        if [[ $load -gt 0 ]]; then
            # nsenter itself, not the in_ns function: a backgrounded function is a subshell, and
            # $! must be the sender's own pid (nsenter execs it) for stop_pids to stop it.
            nsenter --net="$NSFILE" "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" --rate "$load" --duration 3600 \
                --size 64 --quiet >/dev/null &
            LOAD_PID=$!
            sleep 1
        fi
        started=$(now_ns)
        P=$pids sh -c 'echo $$ > "$1/cgroup.procs" || exit 1
            exec nsenter --net="$2" setpriv --reuid="$3" --regid="$3" --clear-groups /bin/sh -c "$4"' \
            oneshot "$LOOP_CG" "$NSFILE" "$UNPRIVILEGED" "$LOOP" || die "the shell loop failed"
        elapsed_ms=$((($(now_ns) - started) / 1000000))
        stop_pids "$LOAD_PID"
        LOAD_PID=""
        sleep 1
        kill -INT "$MONITOR_PID"; wait "$MONITOR_PID" || true; MONITOR_PID=""
        if [[ -n ${NFO_BENCH_KEEP:-} ]]; then
            mkdir -p "$NFO_BENCH_KEEP"
            for file in "$events" "$pids" "$WORK/monitor.err"; do
                cp "$file" "$NFO_BENCH_KEEP/$mode-$load-$(basename "$file")"
            done
        fi
        python3 "$WORK/report.py" "$events" "$pids" "$label" "$TCP_PORT" "$UDP_PORT" "$UNPRIVILEGED"
        summary=$(grep -E '(^| )received=' "$WORK/monitor.err" | tail -1)
        echo "  loop: ${elapsed_ms} ms; monitor: $(grep -oE '(received|lost|enobufs|held|exe_from_exit_records)=[0-9]+' <<<"$summary" | tr '\n' ' ')"
    done
done
