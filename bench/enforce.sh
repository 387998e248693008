#!/usr/bin/env bash
# Enforce mode (`nfowner enforce`) against the C NFQUEUE accept-all reference
# (bench/c/nfqueue-accept.c: libmnl, copy mode meta, one batch verdict per receive), in one run:
#
# Verdicts per second: a sender at full speed, 64 B UDP datagrams to a bound, never-read socket
# in the namespace; a raw-table NOTRACK rule makes every datagram untracked, so every one is queued
# (enforce queues NEW and UNTRACKED packets; the reference's rule queues them all). Counted: the
# consumer's verdicts (its accepted= / enforce's decided=) over the sender's time.
#   c-accept   iptables -A OUTPUT -p udp --dport SINK -j NFQUEUE, nfqueue-accept
#   enforce    nfowner enforce --policy P: default allow and one rule that needs the process
#              (exe), so every packet goes to userspace and is evaluated with its owner resolved
#
# Connect latency: a probe connects PROBES times, every 2 ms, to a closed port (the kernel
# answers the SYN with a RST: connect() fails after one round trip through OUTPUT); p50/p99 of
# the connect() time:
#   plain      no rules
#   c-accept   the SYN (ctstate NEW) queued to nfqueue-accept
#   enforce    the SYN queued to nfowner enforce (exe rule: owner resolved while it waits)
#   enforce-no-process  the same uid/port policy with --no-fast-path: every SYN queued, but the
#              policy reads nothing of the process (the verdict path alone, no owner resolution)
#   c-repeat   nfowner's own chains (as enforce-no-process installed them), answered by the C
#              reference with enforce's allow verdict: NF_REPEAT and the allow mark, so the packet
#              runs the chains again and continues through OUTPUT (see Sources/Rules/EnforceRules.swift).
#              Separates the kernel path nfowner's rules take from nfowner's own userspace time.
#   c-chains   the same chains answered NF_ACCEPT (as c-accept answers): against c-repeat, what
#              the REPEAT verdict itself costs; against c-accept, what nfowner's chains cost
#   fast-path  nfowner enforce with that policy the kernel decides alone (uid and port rules):
#              the queue must see 0 packets
#
# Run as root: sudo bench/enforce.sh   (≈ 2 min)
# Environment knobs [defaults]: NFO_BENCH_REPS [3], NFO_BENCH_DURATION [3] s, NFO_BENCH_PROBES [2000],
#   NFO_BENCH_PORT [9101] (sink; the closed port is +1),
#   NFO_BENCH_AWAKE [0]: 1 runs one `nice -n 19` busy loop per CPU during the latency part. On a
#       virtual machine an idle vCPU is halted, and waking it to run the queue's consumer can cost
#       hundreds of µs, more than everything measured here; the loops keep every vCPU running and
#       yield to any other task at once, so the p50s measure the software path, not the host.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_begin nfo-enforce "network namespaces, NFQUEUE and iptables" nft iptables python3 cc

REPS=${NFO_BENCH_REPS:-3}
DURATION=${NFO_BENCH_DURATION:-3}
PROBES=${NFO_BENCH_PROBES:-2000}
SINK_PORT=${NFO_BENCH_PORT:-9101}
CLOSED_PORT=$((SINK_PORT + 1))
QUEUE_NUM=47
AWAKE=${NFO_BENCH_AWAKE:-0}
CONSUMER_PID=""
SINK_PID=""
SPINNER_PIDS=()

stop_started() { stop_pids "$CONSUMER_PID" "$SINK_PID" "${SPINNER_PIDS[@]}"; }

echo "building release binaries (.build-bench)…" >&2
build_release_binaries
cc -O2 -Wall -o "$WORK/nfqueue-accept" "$REPO/bench/c/nfqueue-accept.c" -lmnl
make_namespace
start_udp_sink "$SINK_PORT"
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

cat >"$WORK/exe.toml" <<TOML
default = "allow"
mode = "enforce"
fail = "closed"

[[rule]]
name = "needs-the-process"
action = "deny"
exe = "/nonexistent/program"
TOML
cat >"$WORK/kernel.toml" <<TOML
default = "allow"
mode = "enforce"
fail = "closed"

[[rule]]
name = "kernel-decides"
action = "deny"
uid = [4242]
proto = ["tcp"]
dst_port = [$CLOSED_PORT]
TOML

write_connect_probe "$WORK/probe.py"
probe() { in_ns "$PYTHON" "$WORK/probe.py" "$PROBES" "$CLOSED_PORT"; }
send() { in_ns "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" --max --duration "$DURATION" --size 64 --quiet; }
field() { grep -oE "(^| )$1=[0-9.]+" <<<"$2" | tail -1 | cut -d= -f2; }
latency() { echo "$(field p50_us "$1") $(field p99_us "$1")"; }

# start_c [REPEAT_MARK]: the C reference on the queue; with a mark it answers NF_REPEAT with it.
start_c() {
    nsenter --net="$NSFILE" "$WORK/nfqueue-accept" "$QUEUE_NUM" ${1:+1024 "$1"} </dev/null >/dev/null 2>"$WORK/c.err" &
    CONSUMER_PID=$!
    for _ in $(seq 100); do grep -q '^ready' "$WORK/c.err" && break; sleep 0.1; done
    grep -q '^ready' "$WORK/c.err" || die "nfqueue-accept did not start: $(cat "$WORK/c.err")"
}
stop_c() { kill -INT "$CONSUMER_PID"; wait "$CONSUMER_PID" || true; CONSUMER_PID=""; }

start_enforce() {
    : >"$WORK/enforce.err"   # before the start: a redirect in the background job may come after the wait's first look
    "$NFOWNER" enforce --policy "$1" --netns "$NS" --queue "$QUEUE_NUM" --no-audit "${@:2}" \
        </dev/null >/dev/null 2>"$WORK/enforce.err" &
    CONSUMER_PID=$!
    for _ in $(seq 100); do grep -q "deciding packets" "$WORK/enforce.err" && break; sleep 0.1; done
    grep -q "deciding packets" "$WORK/enforce.err" || die "nfowner enforce did not start: $(cat "$WORK/enforce.err")"
}
stop_enforce() { kill -INT "$CONSUMER_PID"; wait "$CONSUMER_PID" || true; CONSUMER_PID=""; }

in_ns iptables -t raw -A OUTPUT -p udp --dport "$SINK_PORT" -j CT --notrack
echo "kind rep sent verdicts seconds" >"$WORK/rate.txt"
for ((rep = 1; rep <= REPS; rep++)); do
    in_ns iptables -A OUTPUT -p udp --dport "$SINK_PORT" -j NFQUEUE --queue-num "$QUEUE_NUM"
    start_c
    out=$(send)
    sleep 0.3
    stop_c
    in_ns iptables -D OUTPUT -p udp --dport "$SINK_PORT" -j NFQUEUE --queue-num "$QUEUE_NUM"
    echo "c-accept $rep $(field sent "$out") $(field accepted "$(cat "$WORK/c.err")") $(field elapsed_ns "$out")" >>"$WORK/rate.txt"

    start_enforce "$WORK/exe.toml"
    out=$(send)
    sleep 0.3
    stop_enforce
    echo "enforce $rep $(field sent "$out") $(field decided "$(cat "$WORK/enforce.err")") $(field elapsed_ns "$out")" >>"$WORK/rate.txt"
    printf '  rep %s: %s\n' "$rep" "$(tail -2 "$WORK/rate.txt" | tr '\n' ' ')" >&2
done
in_ns iptables -t raw -F OUTPUT

echo "kind p50_us p99_us queued" >"$WORK/latency.txt"
if [[ $AWAKE == 1 ]]; then
    for ((cpu = 0; cpu < $(nproc); cpu++)); do
        taskset -c "$cpu" nice -n 19 bash -c 'while :; do :; done' &
        SPINNER_PIDS+=("$!")
    done
    echo "latency with every vCPU kept awake (NFO_BENCH_AWAKE=1: ${#SPINNER_PIDS[@]} nice 19 busy loops)" >&2
fi
for ((rep = 1; rep <= REPS; rep++)); do
    echo "plain $(latency "$(probe)") -" >>"$WORK/latency.txt"
    in_ns iptables -A OUTPUT -p tcp -m conntrack --ctstate NEW -j NFQUEUE --queue-num "$QUEUE_NUM"
    start_c
    line=$(probe)
    stop_c
    in_ns iptables -F OUTPUT
    echo "c-accept $(latency "$line") $(field accepted "$(cat "$WORK/c.err")")" >>"$WORK/latency.txt"
    start_enforce "$WORK/exe.toml"
    line=$(probe)
    stop_enforce
    echo "enforce $(latency "$line") $(field held "$(cat "$WORK/enforce.err")")" >>"$WORK/latency.txt"
    start_enforce "$WORK/kernel.toml" --no-fast-path
    line=$(probe)
    in_ns iptables-save -t filter >"$WORK/enforce-rules.txt"
    stop_enforce
    echo "enforce-no-process $(latency "$line") $(field held "$(cat "$WORK/enforce.err")")" >>"$WORK/latency.txt"
    in_ns iptables-restore <"$WORK/enforce-rules.txt"
    start_c 0x400000
    line=$(probe)
    stop_c
    echo "c-repeat $(latency "$line") $(field accepted "$(cat "$WORK/c.err")")" >>"$WORK/latency.txt"
    start_c
    line=$(probe)
    stop_c
    in_ns iptables -F
    in_ns iptables -X
    echo "c-chains $(latency "$line") $(field accepted "$(cat "$WORK/c.err")")" >>"$WORK/latency.txt"
    start_enforce "$WORK/kernel.toml"
    line=$(probe)
    stop_enforce
    echo "fast-path $(latency "$line") $(field held "$(cat "$WORK/enforce.err")")" >>"$WORK/latency.txt"
    printf '  latency rep %s: %s\n' "$rep" "$(tail -7 "$WORK/latency.txt" | tr '\n' ' ')" >&2
done
if ((${#SPINNER_PIDS[@]})); then
    kill "${SPINNER_PIDS[@]}"
    wait "${SPINNER_PIDS[@]}" 2>/dev/null || true   # killed by SIGTERM: not an error
    SPINNER_PIDS=()
fi

python3 - "$WORK/rate.txt" "$WORK/latency.txt" "$PROBES" "$AWAKE" <<'PY'
import statistics, sys
rate = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
lat = [l.split() for l in open(sys.argv[2]).read().splitlines()[1:]]
probes = int(sys.argv[3])
med = statistics.median
per = {}
for kind, rep, sent, verdicts, ns in rate:
    per.setdefault(kind, []).append((int(verdicts) / (int(ns) / 1e9), int(sent)))
print("Verdicts per second (64 B UDP at full speed, every datagram queued; medians of the runs):")
ref = med(v for v, _ in per["c-accept"])
for kind, values in per.items():
    v = med(x for x, _ in values)
    print(f"  {kind:9s} {v:>10,.0f}/s  ({v / ref:.2f}× c-accept)  sent {med(s for _, s in values):,.0f}")
awake = " with every vCPU kept awake (NFO_BENCH_AWAKE=1)" if sys.argv[4] == "1" else ""
print(f"connect() to a closed port, {probes} probes{awake} (medians of the runs' p50 and p99):")
byk = {}
for kind, p50, p99, queued in lat:
    byk.setdefault(kind, []).append((float(p50), float(p99), queued))
cref = med(p for p, _, _ in byk["c-accept"])
plain = med(p for p, _, _ in byk["plain"])
for kind, values in byk.items():
    p50 = med(p for p, _, _ in values)
    p99 = med(q for _, q, _ in values)
    added = f", added {p50 - plain:.1f} µs ({(p50 - plain) / (cref - plain):.2f}× c-accept's)" if kind != "plain" and cref > plain else ""
    queued = values[-1][2]
    print(f"  {kind:18s} p50 {p50:6.1f} µs  p99 {p99:7.1f} µs{added}  queued {queued}")
PY
