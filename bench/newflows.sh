#!/usr/bin/env bash
# New flows at packet time: how long a flow's first packet takes to reach nfowner, and how often its
# sender is named exactly, with each flow's first packet delivered at once (nflog.new_flow_seconds 2,
# the default) against every packet batched (0), under a background load or none.
#
# For each mode and load: nfowner monitor --format json --no-cgroups --netns NS (installing its own
# ruleset, as a user would run it); a background sender (nfowner-traffic udp, one flow, at LOAD
# packets/s, 0 = none) to a bound, never-read UDP sink; and a probe (python3) that opens PROBES UDP
# sockets one after another, every 5 ms, each sending one datagram to 127.0.0.1:PROBE_PORT (a new
# flow each: a new source port) and recording when it sent it (CLOCK_REALTIME ns). Even probes keep
# their socket 50 ms, odd ones close it right after sending (a one-shot sender's socket).
#
# delay = the event's time (nfowner stamps output packets with the time it received their batch: the
# kernel sends no timestamp at output; its owner is looked up right after) − the probe's send time.
# Reported: p50, p99, max of the delay; the share of probes whose event names the probe's pid
# (`exact`), per kind of probe. Both clocks are this machine's CLOCK_REALTIME.
#
# The events go to a file in /dev/shm (memory): at 200k packets/s the JSON is ~140 MB/s, and a disk's
# writeback stalls would be measured instead of nfowner.
#
# Run as root: sudo bench/newflows.sh   (≈ 3 min)
# Environment knobs [defaults]: NFO_BENCH_PROBES [400], NFO_BENCH_LOADS ["0 200000"],
#   NFO_BENCH_MODES ["2 0"] (new_flow_seconds values), NFO_BENCH_PORT [9001] (sink; probes: +1),
#   NFO_BENCH_MONITOR_ARGS [""] (more monitor options, e.g. "--coalesce-us 500")
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_begin nfo-newflows "network namespaces and NFLOG" nft python3

PROBES=${NFO_BENCH_PROBES:-400}
read -r -a LOADS <<<"${NFO_BENCH_LOADS:-0 200000}"
read -r -a MODES <<<"${NFO_BENCH_MODES:-2 0}"
read -r -a MONITOR_ARGS <<<"${NFO_BENCH_MONITOR_ARGS:-}"
SINK_PORT=${NFO_BENCH_PORT:-9001}
PROBE_PORT=$((SINK_PORT + 1))
GROUP=5
MONITOR_PID=""
LOAD_PID=""
SINK_PID=""

stop_started() { stop_pids "$LOAD_PID" "$MONITOR_PID" "$SINK_PID"; rm -f "${EVENTS:-}"; }

echo "building release binaries (.build-bench)…" >&2
build_release_binaries
make_namespace
start_udp_sink "$SINK_PORT"
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
EVENTS=$(mktemp /dev/shm/nfo-newflows.XXXXXX)

cat >"$WORK/probe.py" <<'EOF'
import socket, sys, time
count, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held, rows = [], []
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    sport = s.getsockname()[1]
    sent = time.time_ns()
    s.sendto(b"probe", ("127.0.0.1", port))
    rows.append(f"{sport} {sent} {'held' if i % 2 == 0 else 'closed'}")
    if i % 2 == 0:
        held.append((sent, s))
    else:
        s.close()
    while held and time.time_ns() - held[0][0] > 50_000_000:
        held.pop(0)[1].close()
    time.sleep(0.005)
for _, s in held:
    s.close()
open(out, "w").write("\n".join(rows) + "\n")
EOF

cat >"$WORK/report.py" <<'EOF'
import json, sys, datetime
probes_file, events_file, probe_pid, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
port = int(sys.argv[5])
probes = {}
for line in open(probes_file):
    sport, sent, kind = line.split()
    probes[int(sport)] = (int(sent), kind)
seen = {}
for line in open(events_file):
    if f'"dport":{port},' not in line:
        continue
    event = json.loads(line)
    if event.get("proto") != "udp" or event.get("sport") not in probes or event["sport"] in seen:
        continue
    t = datetime.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    seen[event["sport"]] = (int(t.timestamp() * 1_000_000) * 1000, event)
def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")
for kind in ("held", "closed"):
    ports = [p for p, (_, k) in probes.items() if k == kind]
    delays = [(seen[p][0] - probes[p][0]) / 1e6 for p in ports if p in seen]
    exact = sum(1 for p in ports if p in seen and seen[p][1].get("pid") == probe_pid)
    named = sum(1 for p in ports if p in seen and seen[p][1].get("exe"))
    print(f"{label} {kind:6s} probes={len(ports)} seen={len(delays)} "
          f"delay_ms p50={pct(delays, 0.5):.3f} p99={pct(delays, 0.99):.3f} max={max(delays, default=float('nan')):.3f} "
          f"exact_pid={exact}/{len(ports)} exe_named={named}/{len(ports)}")
EOF

# --- The kernel's side: what the flow-set lookup costs the sender. One UDP flow at max rate, no
# reader (logged packets are discarded at the group), nfowner's ruleset with each mode; sender ns
# per datagram = its elapsed time ÷ datagrams sent (one core spent sending, so this is its CPU).
# Mode "ct": the conntrack alternative (`ct state new` to the new-flow group), for comparison; it
# turns conntrack on in the namespace, and a one-way UDP stream is "new" for every packet.
for rep in $(seq "${NFO_BENCH_COST_REPS:-3}"); do
    for mode in "${MODES[@]}" ct; do
        in_ns nft flush ruleset
        if [[ $mode == ct ]]; then
            in_ns nft -f - <<EOF
table inet nfoct {
	chain output {
		type filter hook output priority 100; policy accept;
		ct state new log prefix "nfowner" group 6 snaplen 128 queue-threshold 1 accept
		log prefix "nfowner" group 5 snaplen 128 queue-threshold 64
	}
}
EOF
        else
            "$NFOWNER" rules install --netns "$NS" --no-cgroups --new-flow-seconds "$mode" >/dev/null 2>&1
        fi
        out=$(in_ns "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" --max --duration 2 --quiet)
        sent=$(grep -o ' sent=[0-9]*' <<<"$out" | cut -d= -f2)
        elapsed=$(grep -o ' elapsed_ns=[0-9]*' <<<"$out" | cut -d= -f2)
        echo "sender new_flow_seconds=$mode rep $rep: $(awk -v e="$elapsed" -v s="$sent" 'BEGIN { printf "%.0f", e / s }') ns/datagram"
    done
done
in_ns nft flush ruleset

for mode in "${MODES[@]}"; do
    for load in "${LOADS[@]}"; do
        label="new_flow_seconds=$mode load=${load}pps"
        : >"$WORK/monitor.err"   # before the start: a redirect in the background job may come after the wait's first look
        "$NFOWNER" monitor --format json --no-cgroups --new-flow-seconds "$mode" --netns "$NS" "${MONITOR_ARGS[@]}" \
            </dev/null >"$EVENTS" 2>"$WORK/monitor.err" &
        MONITOR_PID=$!
        for _ in $(seq 100); do grep -q "reading NFLOG" "$WORK/monitor.err" 2>/dev/null && break; sleep 0.1; done
        grep -q "reading NFLOG" "$WORK/monitor.err" || { cat "$WORK/monitor.err" >&2; die "the monitor did not start"; }
        sleep 0.5
        if [[ $load -gt 0 ]]; then
            in_ns "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" --rate "$load" \
                --duration $((PROBES * 6 / 1000 + 3)) --size 64 --quiet >/dev/null &
            LOAD_PID=$!
            sleep 1
        fi
        # nsenter itself, not the in_ns function: a backgrounded function is a subshell, and $!
        # must be the probe's own pid (nsenter execs it).
        nsenter --net="$NSFILE" "$PYTHON" "$WORK/probe.py" "$PROBES" "$PROBE_PORT" "$WORK/probes.txt" &
        probe=$!
        wait "$probe"
        if [[ -n $LOAD_PID ]]; then wait "$LOAD_PID" || true; LOAD_PID=""; fi
        sleep 0.5
        kill -INT "$MONITOR_PID"; wait "$MONITOR_PID" || true; MONITOR_PID=""
        summary=$(grep -E '(^| )received=' "$WORK/monitor.err" | tail -1)
        python3 "$WORK/report.py" "$WORK/probes.txt" "$EVENTS" "$probe" "$label" "$PROBE_PORT"
        echo "  monitor: $(grep -oE '(received|lost|enobufs)=[0-9]+' <<<"$summary" | tr '\n' ' ')"
    done
done
