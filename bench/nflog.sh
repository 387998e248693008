#!/usr/bin/env bash
# NFLOG consumer cost: messages received per second, loss, and consumer CPU ns per message for
#   c        bench/c/nflog-count.c, the minimal libmnl consumer (the reference): wakes for each batch
#   c-paced  the same program with nfowner's wake coalescing (2 ms), for a like-for-like comparison
#   none     nfowner monitor --format none --no-rules   (decode, parse, names, counters; no output)
#   none-unpaced  the same with --coalesce-us 0 (wakes for each batch, as the reference does)
#   none-500 the same with --coalesce-us 500 (the pause that keeps a new flow's delay p99 under 1 ms
#            at 200k packets/s: bench/newflows.sh)
#   json-null  nfowner monitor --format json --no-rules > /dev/null   (the JSON sink's own cost: encode and
#            write(2), without the file system's)
#   json     nfowner monitor --format json --no-rules > FILE   (owner resolution on: the default; the
#            file is in the run's work directory under /tmp and removed after each run)
#   capture  nfowner capture -w FILE --no-rules   (pcapng with each packet's owner as comment and JSON
#            option; the file in the work directory, removed after each run like json's)
#   capture-buffered  the same with --buffered-writes: one write(2) per batch through the page cache
#            (what capture did before it wrote around the page cache; not in the default set)
#   capture-null  nfowner capture -w /dev/null --no-rules   (the pcapng encoder's own cost, without the
#            file system's page-cache writes; not in the default set)
#   tcpdump  tcpdump -i nflog:N -w /dev/null
#   run      nfowner run --no-rules: the accounting daemon, with its SQLite history (1 s buckets, so
#            it writes every second) and its metrics endpoint on; its CPU is also given ÷ none's
# all measured in one run, in a network namespace of our own, with the same nft table logging the
# sender's UDP datagrams at OUTPUT; then (NFO_BENCH_NFQUEUE=1) the C NFQUEUE accept-all reference alone.
#
# CPU is the sum of the first field of /proc/PID/task/*/schedstat (ns on CPU, every thread) sampled
# right before the sender starts and after the last batch has been delivered; divided by the messages
# the consumer received. Loss: sequence gaps from the consumer's own summary (nflog-count, nfowner),
# kernel drops from the Drops column of /proc/net/netlink for the consumer's socket (counts batches),
# and the deficit = datagrams sent × log rules − messages received (the check that needs no trust).
#
# Run as root: sudo bench/nflog.sh      (≈ 6 min with the defaults)
# Environment knobs (defaults in brackets):
#   NFO_BENCH_REPS [3], NFO_BENCH_DURATION [3] s per run, NFO_BENCH_GROUP [42], NFO_BENCH_RATE [200000]
#   NFO_BENCH_CASES ["max-64 max-1400 max-64-x8 rate-64"]
#       <max|rate>-<payload bytes>[-x<log rules>][-f<flows>][-in]: -f sends datagram i to 127.0.0.(i mod flows)
#       (nfowner-traffic udp --flows), so with flows > datagrams every message is a new flow for the
#       owner resolution: rate-64-f10000000 against rate-64 gives its cost per new flow. -in also logs
#       each datagram at INPUT, where it arrives at the sink (loopback: no uid, so nfowner finds the
#       receiving socket): two messages per datagram, one out, one in (`monitor --input`'s cost).
#   NFO_BENCH_CONSUMERS ["c c-paced none none-unpaced json-null json capture tcpdump run"], NFO_BENCH_NFQUEUE [1]
#   NFO_BENCH_BASELINE: another nfowner binary (e.g. a release build of an earlier commit); a consumer
#       named `<consumer>@base` (none@base, json-null@base…) runs from it, interleaved with the others
#       in every repetition, so a change is compared with its baseline under the same machine load.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

REPS=${NFO_BENCH_REPS:-3}
DURATION=${NFO_BENCH_DURATION:-3}
GROUP=${NFO_BENCH_GROUP:-42}
RATE=${NFO_BENCH_RATE:-200000}
read -r -a CASES <<<"${NFO_BENCH_CASES:-max-64 max-1400 max-64-x8 rate-64}"
read -r -a CONSUMERS <<<"${NFO_BENCH_CONSUMERS:-c c-paced none none-unpaced json-null json capture tcpdump run}"
NFQUEUE=${NFO_BENCH_NFQUEUE:-1}
QUEUE_NUM=$((GROUP + 1))
SINK_PORT=9
ECHO_PORT=7

bench_begin nfo-nflog "network namespaces, NFLOG, nft" swift nft ip nsenter python3 cc awk
[[ -f /usr/include/libmnl/libmnl.h ]] || die "libmnl headers missing: apt-get install libmnl-dev"
for c in "${CASES[@]}"; do
    [[ $c =~ ^(max|rate)-[0-9]+(-x[1-9][0-9]?)?(-f[1-9][0-9]*)?(-in)?$ ]] \
        || die "bad case '$c' (want max-64, rate-64, max-64-x8, rate-64-f1000000, max-64-in…)"
done
if [[ " ${CONSUMERS[*]} " == *"@base "* ]]; then
    [[ -x ${NFO_BENCH_BASELINE:-} ]] \
        || die "a @base consumer needs NFO_BENCH_BASELINE=/path/to/an/nfowner/binary (got '${NFO_BENCH_BASELINE:-}')"
fi
TCPDUMP=$(command -v tcpdump || true)
SKIPPED=""
if [[ " ${CONSUMERS[*]} " == *" tcpdump "* && -z $TCPDUMP ]]; then
    echo "nflog.sh: tcpdump not installed (apt-get install tcpdump): skipping that consumer" >&2
    SKIPPED="tcpdump (not installed)"
    read -r -a CONSUMERS <<<"$(tr ' ' '\n' <<<"${CONSUMERS[*]}" | grep -vx tcpdump | tr '\n' ' ')"
fi

SINK_PID=""
ECHO_PID=""
CONSUMER_PID=""

# --- cleanup, run by bench_end before it removes the namespace (with its nft table and iptables
# rules) and the work directory: the processes we started, by PID; a failed run keeps its raw results.
stop_started() {
    stop_pids "$CONSUMER_PID" "$ECHO_PID" "$SINK_PID"
    if [[ $1 -ne 0 && -s $WORK/raw.txt ]]; then
        mkdir -p "$REPO/bench/results"
        cat "$WORK/raw.txt" "$WORK/nfq.txt" >"$REPO/bench/results/nflog-failed-$NS.txt" 2>/dev/null
        echo "nflog.sh: raw measurements kept in bench/results/nflog-failed-$NS.txt" >&2
    fi
}

# --- 1. binaries: nfowner release build, the C references
echo "building release binaries (.build-bench) and the C references…" >&2
build_release_binaries
cc -O2 -Wall -o "$WORK/nflog-count" "$REPO/bench/c/nflog-count.c" -lmnl
cc -O2 -Wall -o "$WORK/nfqueue-accept" "$REPO/bench/c/nfqueue-accept.c" -lmnl

# --- 2. namespace and the UDP sink (bound, never read, tiny buffer: no ICMP errors come back and no
# reader wakes up; see classification.sh). The alarm makes it exit by itself should all else fail.
make_namespace
start_udp_sink "$SINK_PORT"

# One table, `rules` identical log rules for the sender's datagrams. The prefix is nfowner's, so the
# monitor parses it as it does in production; snaplen 128 caps the copy for every consumer alike
# (tcpdump asks the group for whole packets). No queue-threshold: the group's own (64) applies.
install_nflog_rules() {
    local rules=$1 inbound=${2:-0} i hook
    local -a hooks=(output)
    [[ $inbound == 1 ]] && hooks+=(input)
    {
        echo "table inet nfobench {"
        for hook in "${hooks[@]}"; do
            echo "	chain $hook {"
            echo "		type filter hook $hook priority 100; policy accept;"
            for ((i = 0; i < rules; i++)); do
                echo "		udp dport $SINK_PORT log prefix \"nfowner\" group $GROUP snaplen 128"
            done
            echo "	}"
        done
        echo "}"
    } >"$WORK/rules.nft"
    in_ns nft flush ruleset
    in_ns nft -f "$WORK/rules.nft"
}

start_consumer() {
    local consumer=$1 NFOWNER=$NFOWNER
    # `<consumer>@base`: the same consumer run from NFO_BENCH_BASELINE's binary (an A/B in one run).
    if [[ $consumer == *@base ]]; then
        consumer=${consumer%@base}
        NFOWNER=$NFO_BENCH_BASELINE
    fi
    case $consumer in
        c) nsenter --net="$NSFILE" "$WORK/nflog-count" "$GROUP" </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        c-paced) nsenter --net="$NSFILE" "$WORK/nflog-count" "$GROUP" 2000 </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        none) "$NFOWNER" monitor --format none --no-rules --group "$GROUP" --netns "$NS" \
                  </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        none-unpaced) "$NFOWNER" monitor --format none --no-rules --group "$GROUP" --netns "$NS" --coalesce-us 0 \
                  </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        none-500) "$NFOWNER" monitor --format none --no-rules --group "$GROUP" --netns "$NS" --coalesce-us 500 \
                  </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        json-null) "$NFOWNER" monitor --format json --no-rules --group "$GROUP" --netns "$NS" \
                  </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        json) "$NFOWNER" monitor --format json --no-rules --group "$GROUP" --netns "$NS" \
                  </dev/null >"$WORK/events.json" 2>"$WORK/consumer.err" & ;;
        capture) "$NFOWNER" capture -w "$WORK/capture.pcapng" --no-rules --group "$GROUP" --netns "$NS" \
                  </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        capture-buffered) "$NFOWNER" capture -w "$WORK/capture.pcapng" --buffered-writes --no-rules --group "$GROUP" --netns "$NS" \
                  </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        capture-null) "$NFOWNER" capture -w /dev/null --no-rules --group "$GROUP" --netns "$NS" \
                  </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        run) printf '[nflog]\ngroups = [%s]\n[accounting]\nbucket_s = 1\n[storage]\npath = "%s"\n[metrics]\nlisten = "127.0.0.1:19465"\n' \
                  "$GROUP" "$WORK/history.db" >"$WORK/run.toml"
             "$NFOWNER" run --no-rules --config "$WORK/run.toml" --netns "$NS" \
                  </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        tcpdump) nsenter --net="$NSFILE" "$TCPDUMP" -n -i "nflog:$GROUP" -w /dev/null \
                  </dev/null >/dev/null 2>"$WORK/consumer.err" & ;;
        *) die "unknown consumer '$consumer'" ;;
    esac
    CONSUMER_PID=$!
    local _
    for _ in $(seq 100); do
        PORTID=$(group_portid)
        [[ -n $PORTID ]] && break
        kill -0 "$CONSUMER_PID" 2>/dev/null || { cat "$WORK/consumer.err" >&2; die "$consumer exited at start"; }
        sleep 0.1
    done
    [[ -n $PORTID ]] || { cat "$WORK/consumer.err" >&2; die "$consumer did not bind group $GROUP in 10 s"; }
    sleep 0.5   # let start-up work (process table scan, threads) finish outside the measured window
}

stop_consumer() {
    kill -INT "$CONSUMER_PID" 2>/dev/null || true
    local _
    for _ in $(seq 100); do kill -0 "$CONSUMER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CONSUMER_PID" 2>/dev/null || true
    wait "$CONSUMER_PID" 2>/dev/null || true
    CONSUMER_PID=""
    rm -f "$WORK/events.json" "$WORK/capture.pcapng" "$WORK"/history.db*
    # Wait for the kernel to release the group, so the next consumer can bind it.
    for _ in $(seq 50); do [[ -z $(group_portid) ]] && break; sleep 0.1; done
}

# received lost enobufs from the consumer's exit summary ("-" when it does not report one).
consumer_summary() {
    local f=$WORK/consumer.err
    case $1 in
        tcpdump)
            local captured dropped
            captured=$(awk '/packets captured/ { print $1 }' "$f")
            dropped=$(awk '/packets dropped by kernel/ { print $1 }' "$f")
            echo "${captured:-0} - ${dropped:--} - -" ;;
        *)
            local line
            line=$(grep -E '(^| )received=' "$f" | tail -1)
            [[ -n $line ]] || { cat "$f" >&2; die "$1 printed no summary"; }
            awk 'function or_dash(x) { return x == "" ? "-" : x }
                 { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                   print v["received"], or_dash(v["lost"]), or_dash(v["enobufs"]), or_dash(v["batches"]),
                         or_dash(v["wakeups"]) }' <<<"$line" ;;
    esac
}

echo "case consumer rep rules sent elapsed_ns received lost enobufs kernel_drops cpu_ns drain_ns slipped_ns user_ns system_ns batches wakeups" >"$WORK/raw.txt"
run_once() {
    local case=$1 consumer=$2 rep=$3 mode size rules before after out sent elapsed drops drain slipped batches wakeups
    local user_before system_before user_after system_after
    IFS=- read -r mode size _ <<<"$case"
    rules=1; [[ $case =~ -x([0-9]+) ]] && rules=${BASH_REMATCH[1]}
    # Messages per datagram: each log rule once, at output and (-in) at input.
    [[ $case == *-in ]] && rules=$((rules * 2))
    local -a pace=(--max) spread=()
    [[ $mode == rate ]] && pace=(--rate "$RATE")
    [[ $case =~ -f([0-9]+) ]] && spread=(--flows "${BASH_REMATCH[1]}")
    start_consumer "$consumer"
    before=$(cpu_ns "$CONSUMER_PID")
    read -r user_before system_before <<<"$(user_system_ns "$CONSUMER_PID")"
    out=$(in_ns "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" "${pace[@]}" "${spread[@]}" \
        --duration "$DURATION" --size "$size" --quiet)
    drain=$(wait_drained)
    after=$(cpu_ns "$CONSUMER_PID")
    read -r user_after system_after <<<"$(user_system_ns "$CONSUMER_PID")"
    drops=$(netlink_drops "$PORTID")
    stop_consumer
    sent=$(grep -o ' sent=[0-9]*' <<<"$out" | cut -d= -f2)
    elapsed=$(grep -o ' elapsed_ns=[0-9]*' <<<"$out" | cut -d= -f2)
    [[ -n $sent && $sent -gt 0 ]] || die "no result from nfowner-traffic: $out"
    # slipped_ns > 0: the machine stalled the sender and the asked rate was not kept (see
    # docs/traffic-generator.md); the row then says so.
    slipped=$(grep -o ' slipped_ns=[0-9]*' <<<"$out" | cut -d= -f2 || true)
    [[ ${slipped:-0} -eq 0 ]] || echo "  note: the sender slipped ${slipped} ns behind its schedule" >&2
    read -r received lost enobufs batches wakeups <<<"$(consumer_summary "$consumer")"
    echo "$case $consumer $rep $rules $sent $elapsed $received $lost $enobufs ${drops:--} $((after - before)) $drain ${slipped:-0} $((user_after - user_before)) $((system_after - system_before)) $batches $wakeups" \
        >>"$WORK/raw.txt"
    printf '  %-10s %-8s rep %s: sent %8s, received %9s (%5.0f k/s), lost %s, drops %s, drain %5.2f s, %7.1f ns/msg\n' \
        "$case" "$consumer" "$rep" "$sent" "$received" \
        "$(awk -v r="$received" -v e="$((elapsed + drain))" 'BEGIN { print r * 1e6 / e }')" "$lost" "${drops:--}" \
        "$(awk -v d="$drain" 'BEGIN { print d / 1e9 }')" \
        "$(awk -v c="$((after - before))" -v r="$received" 'BEGIN { print (r > 0 ? c / r : 0) }')" >&2
}

# --- 3. NFLOG: repetitions outermost, so drift in the machine's load spreads over every consumer.
for c in "${CASES[@]}"; do
    rules=1; [[ $c =~ -x([0-9]+) ]] && rules=${BASH_REMATCH[1]}
    inbound=0; [[ $c == *-in ]] && inbound=1
    install_nflog_rules "$rules" "$inbound"
    for ((rep = 1; rep <= REPS; rep++)); do
        for consumer in "${CONSUMERS[@]}"; do
            run_once "$c" "$consumer" "$rep"
        done
    done
done
in_ns nft flush ruleset

# --- 4. NFQUEUE: the C accept-all reference alone (iptables: nft's queue statement is missing here).
echo "kind rep sent elapsed_ns accepted p50_ns p99_ns" >"$WORK/nfq.txt"
if [[ $NFQUEUE == 1 ]]; then
    command -v iptables >/dev/null || die "'iptables' not found (NFO_BENCH_NFQUEUE=0 skips NFQUEUE)"
    # The round-trip echo server: its replies leave through OUTPUT too (sport 7), so both directions
    # of a round trip are queued once each.
    # nsenter directly, not the in_ns function: a backgrounded function runs in a subshell, and $!
    # would be that subshell's PID, not the server's (killing it left the server running).
    nsenter --net="$NSFILE" "$TRAFFIC" listen --udp --echo --port "$ECHO_PORT" --address 127.0.0.1 \
        --timeout 3600 --quiet >"$WORK/echo.out" 2>&1 &
    ECHO_PID=$!
    for _ in $(seq 50); do grep -q '^ready' "$WORK/echo.out" && break; sleep 0.1; done
    grep -q '^ready' "$WORK/echo.out" || die "the echo server did not start"
    roundtrip() {
        in_ns "$TRAFFIC" roundtrip --to 127.0.0.1 --port "$ECHO_PORT" --count 2000 --size 64 --quiet
    }
    for ((rep = 1; rep <= REPS; rep++)); do
        out=$(roundtrip)
        echo "rtt-plain $rep - - - $(grep -o ' p50_ns=[0-9]*' <<<"$out" | cut -d= -f2) $(grep -o ' p99_ns=[0-9]*' <<<"$out" | cut -d= -f2)" >>"$WORK/nfq.txt"
        in_ns iptables -A OUTPUT -p udp -j NFQUEUE --queue-num "$QUEUE_NUM"
        nsenter --net="$NSFILE" "$WORK/nfqueue-accept" "$QUEUE_NUM" </dev/null >/dev/null 2>"$WORK/nfq.err" &
        CONSUMER_PID=$!
        for _ in $(seq 200); do grep -q '^ready' "$WORK/nfq.err" && break; sleep 0.1; done
        grep -q '^ready' "$WORK/nfq.err" || die "nfqueue-accept did not start in 20 s: $(cat "$WORK/nfq.err")"
        out=$(in_ns "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" --max --duration "$DURATION" --size 64 --quiet)
        sleep 0.3
        rt=$(roundtrip)
        kill -INT "$CONSUMER_PID"; wait "$CONSUMER_PID" || true; CONSUMER_PID=""
        in_ns iptables -F OUTPUT
        accepted=$(grep -o 'accepted=[0-9]*' "$WORK/nfq.err" | cut -d= -f2)
        # The round trip's 2 × 2000 datagrams went through the queue too.
        echo "queue $rep $(grep -o ' sent=[0-9]*' <<<"$out" | cut -d= -f2) $(grep -o ' elapsed_ns=[0-9]*' <<<"$out" | cut -d= -f2) $((accepted - 4000)) - -" >>"$WORK/nfq.txt"
        echo "rtt-queued $rep - - - $(grep -o ' p50_ns=[0-9]*' <<<"$rt" | cut -d= -f2) $(grep -o ' p99_ns=[0-9]*' <<<"$rt" | cut -d= -f2)" >>"$WORK/nfq.txt"
        printf '  nfqueue rep %s: %s\n' "$rep" "$(tail -3 "$WORK/nfq.txt" | tr '\n' ' ')" >&2
    done
fi

# --- 5. report
mkdir -p "$REPO/bench/results"
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=$REPO/bench/results/nflog-$STAMP
python3 - "$WORK/raw.txt" "$WORK/nfq.txt" "$OUT" "$DURATION" "$REPS" "$(uname -r)" "$(nproc)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$RATE" "$GROUP" "$SKIPPED" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, statistics, sys, datetime
raw, nfq, out, duration, reps, kernel, cpus, model, rate, group, skipped, load = sys.argv[1:]
med = statistics.median
def num(x):
    return None if x == "-" else int(x)
runs = {}
for line in open(raw).read().splitlines()[1:]:
    case, consumer, rep, rules, sent, elapsed, received, lost, enobufs, drops, cpu, drain, slipped, user, system, batches, wakeups = line.split()
    received = int(received)
    r = {"rep": int(rep), "rules": int(rules), "sent": int(sent), "elapsed_ns": int(elapsed),
         "received": received, "expected": int(sent) * int(rules),
         "deficit": int(sent) * int(rules) - received, "seq_lost": num(lost), "enobufs": num(enobufs),
         "kernel_drops": num(drops), "cpu_ns": int(cpu),
         "ns_per_msg": int(cpu) / received if received else None,
         "drain_ns": int(drain), "msgs_per_s": received * 1e9 / (int(elapsed) + int(drain)),
         "sender_slipped_ns": int(slipped),
         "user_ns_per_msg": int(user) / received if received else None,
         "system_ns_per_msg": int(system) / received if received else None,
         "batches": num(batches), "wakeups": num(wakeups),
         "batches_per_wakeup": num(batches) / num(wakeups) if num(batches) is not None and num(wakeups) else None}
    runs.setdefault(case, {}).setdefault(consumer, []).append(r)

names = {"c": "C reference (libmnl)", "c-paced": "C reference, 2 ms wake coalescing",
         "none": "nfowner --format none", "none-unpaced": "nfowner --format none --coalesce-us 0", "none-500": "nfowner --format none --coalesce-us 500",
         "json-null": "nfowner --format json > /dev/null", "run": "nfowner run (accounting, SQLite, metrics)", "json": "nfowner --format json > file", "capture": "nfowner capture -w file (pcapng)", "capture-null": "nfowner capture -w /dev/null (pcapng)", "capture-buffered": "nfowner capture -w file --buffered-writes (pcapng)", "tcpdump": "tcpdump -w /dev/null"}
def label(consumer):
    base = consumer.removesuffix("@base")
    return names.get(base, base) + (" (baseline build)" if consumer != base else "")
def describe(case):
    parts = case.split("-")
    pace = "max rate" if parts[0] == "max" else f"{int(rate) // 1000}k pkt/s"
    rules = next((int(p[1:]) for p in parts[2:] if p.startswith("x")), 1)
    flows = next((int(p[1:]) for p in parts[2:] if p.startswith("f")), None)
    return (f"{pace}, {parts[1]} B" + (f", {rules} rules" if rules > 1 else "")
            + (f", a new flow per packet ({flows:,} destinations)" if flows else "")
            + (", logged out and in (2 messages per datagram)" if "in" in parts[2:] else ""))
results = []
for case, by in runs.items():
    ref = by.get("c")
    ref_med = med(x["ns_per_msg"] for x in ref if x["ns_per_msg"] is not None) if ref else None
    none = by.get("none")
    none_med = med(x["ns_per_msg"] for x in none if x["ns_per_msg"] is not None) if none else None
    for consumer, rs in by.items():
        per = sorted(x["ns_per_msg"] for x in rs if x["ns_per_msg"] is not None)
        results.append({
            "case": case, "description": describe(case), "consumer": consumer,
            "min_ns_per_msg": per[0] if per else None, "median_ns_per_msg": med(per) if per else None,
            "max_ns_per_msg": per[-1] if per else None,
            "ratio_to_c_median": (med(per) / ref_med) if per and ref_med else None,
            "ratio_to_none_median": (med(per) / none_med) if per and none_med else None,
            "median_msgs_per_s": med(x["msgs_per_s"] for x in rs),
            "max_drain_s": max(x["drain_ns"] for x in rs) / 1e9,
            "median_sender_pps": med(x["sent"] * 1e9 / x["elapsed_ns"] for x in rs),
            "max_sender_slipped_ns": max(x["sender_slipped_ns"] for x in rs),
            "median_user_ns_per_msg": med(x["user_ns_per_msg"] for x in rs if x["user_ns_per_msg"] is not None),
            "median_system_ns_per_msg": med(x["system_ns_per_msg"] for x in rs if x["system_ns_per_msg"] is not None),
            "median_batches_per_wakeup": (med(x["batches_per_wakeup"] for x in rs)
                                          if all(x["batches_per_wakeup"] is not None for x in rs) else None),
            "deficit_total": sum(x["deficit"] for x in rs),
            "expected_total": sum(x["expected"] for x in rs),
            "seq_lost_total": None if any(x["seq_lost"] is None for x in rs) else sum(x["seq_lost"] for x in rs),
            "kernel_drops_total": None if any(x["kernel_drops"] is None for x in rs) else sum(x["kernel_drops"] for x in rs),
            "enobufs_total": None if any(x["enobufs"] is None for x in rs) else sum(x["enobufs"] for x in rs),
            "runs": rs})
nfq_rows = [l.split() for l in open(nfq).read().splitlines()[1:]]
nfqueue = None
if nfq_rows:
    q = [r for r in nfq_rows if r[0] == "queue"]
    plain = [r for r in nfq_rows if r[0] == "rtt-plain"]
    queued = [r for r in nfq_rows if r[0] == "rtt-queued"]
    acc = sorted(int(r[4]) * 1e9 / int(r[3]) for r in q)
    nfqueue = {
        "accepted_per_s": {"min": acc[0], "median": med(acc), "max": acc[-1]},
        "lost_total": sum(int(r[2]) - int(r[4]) for r in q), "sent_total": sum(int(r[2]) for r in q),
        "rtt_plain_p50_ns": med(int(r[5]) for r in plain), "rtt_plain_p99_ns": med(int(r[6]) for r in plain),
        "rtt_queued_p50_ns": med(int(r[5]) for r in queued), "rtt_queued_p99_ns": med(int(r[6]) for r in queued),
        "runs": [dict(zip(["kind", "rep", "sent", "elapsed_ns", "accepted", "p50_ns", "p99_ns"], r)) for r in nfq_rows]}

now = datetime.datetime.now(datetime.timezone.utc)
meta = {"date": now.strftime("%Y-%m-%d %H:%M UTC"), "kernel": kernel, "cpus": int(cpus), "cpu_model": model,
        "load_average_at_end": load, "duration_s": float(duration), "repetitions": int(reps), "group": int(group),
        "fixed_rate_pps": int(rate), "skipped": skipped or None,
        "traffic": "nfowner-traffic udp --to 127.0.0.1 --port 9 (bound, never read), one connected socket",
        "rule": "udp dport 9 log prefix \"nfowner\" group N snaplen 128 (×1 or ×8), inet filter output",
        "metric": "consumer CPU (sum of /proc/PID/task/*/schedstat field 1) over the sending window / messages received"}
json.dump({**meta, "nflog": results, "nfqueue": nfqueue}, open(out + ".json", "w"), indent=2)

def f(x, fmt):
    return "–" if x is None else format(x, fmt)
lines = [f"# NFLOG consumers, {meta['date']}", "",
         f"kernel {kernel}, {cpus} CPUs ({model}), load {load} at the end; {reps} runs of {duration} s per row. "
         "CPU = consumer ns on CPU per message (min / median / max); × C = median ÷ the C reference's median "
         "in the same case; user / system = the median split of that time between user space and the kernel "
         "(utime/stime of /proc/PID/stat, 10 ms ticks); deficit = sent × rules − received over all runs; seq lost = gaps in the "
         "NFLOG sequence numbers (the consumer's own count); drops = /proc/net/netlink Drops (batches); "
         "msgs/s = received ÷ (sending time + drain, the time the consumer needed after the sender stopped to "
         "empty its socket buffer); ENOBUFS for tcpdump is its 'packets dropped by kernel' (libpcap's count); "
         "batches per wakeup = the consumer's own batches ÷ wakeups= over its whole run (median of the runs; a "
         "consumer that wakes for each batch counts every recv as a wakeup, so ≈ 1).", "",
         "| case | consumer | msgs/s (median) | max drain s | CPU ns/msg min | median | max | × C | × none | user / system ns/msg | batches per wakeup | deficit | seq lost | kernel drops | ENOBUFS | sender slipped ms |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in results:
    lines.append(f"| {r['description']} | {label(r['consumer'])} | "
                 f"{r['median_msgs_per_s'] / 1000:.0f}k | {r['max_drain_s']:.2f} | {f(r['min_ns_per_msg'], '.0f')} | "
                 f"{f(r['median_ns_per_msg'], '.0f')} | {f(r['max_ns_per_msg'], '.0f')} | "
                 f"{f(r['ratio_to_c_median'], '.2f')} | {f(r['ratio_to_none_median'], '.2f')} | {r['median_user_ns_per_msg']:.0f} / {r['median_system_ns_per_msg']:.0f} | "
                 f"{f(r['median_batches_per_wakeup'], '.1f')} | "
                 f"{r['deficit_total']} of {r['expected_total']} | "
                 f"{f(r['seq_lost_total'], 'd')} | {f(r['kernel_drops_total'], 'd')} | {f(r['enobufs_total'], 'd')} | "
                 f"{r['max_sender_slipped_ns'] / 1e6:.1f} |")
if skipped:
    lines += ["", f"Skipped: {skipped}."]
if nfqueue:
    a = nfqueue["accepted_per_s"]
    lines += ["", "NFQUEUE, C accept-all with batch verdicts (copy meta, queue-maxlen 1024), max-rate 64 B UDP: "
              f"{a['min'] / 1000:.0f}k / {a['median'] / 1000:.0f}k / {a['max'] / 1000:.0f}k accepted/s "
              f"(min/median/max), {nfqueue['lost_total']} of {nfqueue['sent_total']} sent not accepted. "
              f"UDP round trip (2,000 × 64 B, both directions queued): p50 {nfqueue['rtt_queued_p50_ns'] / 1000:.1f} µs, "
              f"p99 {nfqueue['rtt_queued_p99_ns'] / 1000:.1f} µs vs {nfqueue['rtt_plain_p50_ns'] / 1000:.1f} / "
              f"{nfqueue['rtt_plain_p99_ns'] / 1000:.1f} µs without the queue (medians of the runs)."]
open(out + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "wrote $OUT.md and $OUT.json" >&2
