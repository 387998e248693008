#!/usr/bin/env bash
# Hold mode (`monitor --hold-new-flows`): what holding a new TCP connection's SYN costs the
# connecting program, against the C NFQUEUE accept-all reference (bench/c/nfqueue-accept.c) and
# against no queue at all; and how often a one-shot connecting program is named exactly (its pid),
# with and without hold mode.
#
# Latency: a probe (python3, one process) connects PROBES times, every 2 ms, to a closed port in
# the namespace (127.0.0.1:PORT, nothing listens: the kernel answers the SYN with a RST, so
# connect() returns ECONNREFUSED after one round trip through OUTPUT); each connect() is timed
# with CLOCK_MONOTONIC. With a queue, the SYN waits in it for the consumer's verdict: the added
# latency is the difference to "plain". Cases:
#   plain      no rules, no consumer
#   c-accept   iptables raw OUTPUT `-p tcp --syn -j NFQUEUE --queue-bypass`, nfqueue-accept (libmnl)
#   nfowner    nfowner monitor --hold-new-flows --format json --no-cgroups (its own rules, the same
#              raw chain), events to /dev/shm
# each idle and under a background load of LOAD UDP packets/s logged by nfowner's NFLOG rules
# (nfowner's receive loop then also reads batches; the C consumer reads only its queue).
#
# Naming: ONESHOTS one-shot perl processes, one after another, each printing its pid and making
# one connect() to the closed port, then exiting; the share of their SYNs whose event is `exact`
# with that pid, with nfowner monitor (default settings) and with --hold-new-flows.
#
# Run as root: sudo bench/hold.sh   (≈ 2 min)
# Environment knobs [defaults]: NFO_BENCH_PROBES [2000], NFO_BENCH_LOADS ["0 200000"],
#   NFO_BENCH_ONESHOTS [200], NFO_BENCH_PORT [9001] (sink; the closed port is +1)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_begin nfo-hold "network namespaces, NFQUEUE and iptables" nft iptables python3 perl cc

PROBES=${NFO_BENCH_PROBES:-2000}
ONESHOTS=${NFO_BENCH_ONESHOTS:-200}
read -r -a LOADS <<<"${NFO_BENCH_LOADS:-0 200000}"
SINK_PORT=${NFO_BENCH_PORT:-9001}
CLOSED_PORT=$((SINK_PORT + 1))
QUEUE_NUM=43
MONITOR_PID=""
CONSUMER_PID=""
LOAD_PID=""
SINK_PID=""

stop_started() { stop_pids "$LOAD_PID" "$MONITOR_PID" "$CONSUMER_PID" "$SINK_PID"; rm -f "${EVENTS:-}"; }

echo "building release binaries (.build-bench)…" >&2
build_release_binaries
cc -O2 -Wall -o "$WORK/nfqueue-accept" "$REPO/bench/c/nfqueue-accept.c" -lmnl
make_namespace
start_udp_sink "$SINK_PORT"
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
EVENTS=$(mktemp /dev/shm/nfo-hold.XXXXXX)

write_connect_probe "$WORK/probe.py"

start_load() {
    local load=$1
    [[ $load -gt 0 ]] || return 0
    nsenter --net="$NSFILE" "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" --rate "$load" \
        --duration $((PROBES * 3 / 1000 + 5)) --size 64 --quiet >/dev/null &
    LOAD_PID=$!
    sleep 1
}

stop_load() { if [[ -n $LOAD_PID ]]; then kill "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" || true; LOAD_PID=""; fi; }

start_monitor() {
    : >"$WORK/monitor.err"   # before the start: a redirect in the background job may come after the wait's first look
    "$NFOWNER" monitor --format json --no-cgroups --netns "$NS" "$@" </dev/null >"$EVENTS" 2>"$WORK/monitor.err" &
    MONITOR_PID=$!
    for _ in $(seq 100); do grep -q "reading NFLOG" "$WORK/monitor.err" 2>/dev/null && break; sleep 0.1; done
    grep -q "reading NFLOG" "$WORK/monitor.err" || { cat "$WORK/monitor.err" >&2; die "the monitor did not start"; }
    sleep 0.3
}

stop_monitor() {
    kill -INT "$MONITOR_PID"; wait "$MONITOR_PID" || true; MONITOR_PID=""
    echo "  monitor: $(grep -oE '(received|lost|enobufs|held|held_verdict_failures)=[0-9]+' "$WORK/monitor.err" | tr '\n' ' ')"
}

probe() { in_ns "$PYTHON" "$WORK/probe.py" "$PROBES" "$CLOSED_PORT"; }

for load in "${LOADS[@]}"; do
    echo "connect() to a closed port, load=${load}pps"
    start_load "$load"
    echo "  plain     $(probe)"
    stop_load

    in_ns iptables -t raw -A OUTPUT -p tcp --tcp-flags FIN,SYN,RST,ACK SYN -j NFQUEUE --queue-num "$QUEUE_NUM" --queue-bypass
    nsenter --net="$NSFILE" "$WORK/nfqueue-accept" "$QUEUE_NUM" </dev/null >/dev/null 2>"$WORK/nfq.err" &
    CONSUMER_PID=$!
    for _ in $(seq 100); do grep -q '^ready' "$WORK/nfq.err" && break; sleep 0.1; done
    grep -q '^ready' "$WORK/nfq.err" || die "nfqueue-accept did not start: $(cat "$WORK/nfq.err")"
    start_load "$load"
    echo "  c-accept  $(probe)"
    stop_load
    kill -INT "$CONSUMER_PID"; wait "$CONSUMER_PID" || true; CONSUMER_PID=""
    in_ns iptables -t raw -F OUTPUT

    start_monitor --hold-new-flows
    start_load "$load"
    echo "  nfowner   $(probe)"
    stop_load
    stop_monitor
done

# One-shot connecting programs: each perl process prints its pid, connects once, exits.
for mode in default hold; do
    args=()
    [[ $mode == hold ]] && args=(--hold-new-flows)
    start_monitor "${args[@]}"
    in_ns sh -c "for i in \$(seq $ONESHOTS); do perl -MIO::Socket::INET -e 'print \"\$\$\\n\"; IO::Socket::INET->new(PeerAddr => \"127.0.0.1:$CLOSED_PORT\", Timeout => 1)'; done" >"$WORK/pids.txt"
    sleep 0.5
    stop_monitor
    python3 - "$WORK/pids.txt" "$EVENTS" "$CLOSED_PORT" "$mode" <<'PY'
import json, sys
pids = {int(line) for line in open(sys.argv[1]) if line.strip()}
port, mode = int(sys.argv[3]), sys.argv[4]
syns = [e for e in map(json.loads, open(sys.argv[2])) if e.get("dport") == port and e.get("tcp_flags") == "S"]
exact = sum(1 for e in syns if e.get("confidence") == "exact" and e.get("pid") in pids)
named = sum(1 for e in syns if (e.get("exe") or "").endswith("perl") or "/perl5" in (e.get("exe") or ""))
print(f"one-shot perl connects, {mode:7s}: {len(pids)} processes, {len(syns)} SYNs, exact with pid {exact}, exe perl {named}")
PY
done
