#!/usr/bin/env bash
# Owner resolution at scale: what one new flow costs `nfowner monitor`, and its memory (RSS) with
# 10k, 100k and 1M distinct flows tracked.
#
# In a network namespace of its own: one nft rule logs the sender's UDP datagrams to a group, the
# monitor (release build, `--format none`, owner resolution on, `--flow-lifetime 3600` so nothing
# expires during the run) binds it, and `nfowner-traffic udp --flows N --count N` sends exactly one
# datagram to each of N destinations (127.0.0.1, 127.0.0.2, …): every message is a flow the monitor
# has not seen, resolved once (sock_diag lookup, process table) and then held in its flow cache.
# With no message lost, the cache holds all N flows when the sender stops (the default
# --max-flows, 1,048,576, is above the largest N).
#
# Per size and repetition: the monitor's RSS (VmRSS) just before sending and after the last message
# was handled, its peak (VmHWM), and its CPU ns per message (all threads, /proc/PID/task/*/schedstat).
#
# Run as root: sudo bench/flows.sh      (≈ 3 min with the defaults)
# Knobs: NFO_FLOWS_SIZES ["10000 100000 1000000"], NFO_FLOWS_REPS [3], NFO_FLOWS_RATE [50000]
#        (datagrams/s: below what the monitor resolves per second, so nothing is lost), NFO_FLOWS_GROUP [46]
# Output: bench/results/flows-<UTC time>.md and .json.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

read -r -a SIZES <<<"${NFO_FLOWS_SIZES:-10000 100000 1000000}"
REPS=${NFO_FLOWS_REPS:-3}
RATE=${NFO_FLOWS_RATE:-50000}
GROUP=${NFO_FLOWS_GROUP:-46}
SINK_PORT=9

bench_begin nfo-flows "network namespaces, NFLOG, nft" swift nft ip nsenter python3 awk
for n in "${SIZES[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ && $n -le 16000000 ]] || die "bad flow count '$n' (1…16000000)"
done

SINK_PID=""
MON_PID=""
PORTID=""
stop_started() { stop_pids "$MON_PID" "$SINK_PID"; }

echo "building release binaries (.build-bench)…" >&2
build_release_binaries
make_namespace
start_udp_sink "$SINK_PORT"
install_log_rule nfoflows

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

echo "flows rep sent received lost rss_before_kib rss_after_kib hwm_kib cpu_ns" >"$WORK/raw.txt"
for ((rep = 1; rep <= REPS; rep++)); do
    for n in "${SIZES[@]}"; do
        "$NFOWNER" monitor --format none --no-rules --group "$GROUP" --netns "$NS" --flow-lifetime 3600 \
            </dev/null >/dev/null 2>"$WORK/monitor.err" &
        MON_PID=$!
        for _ in $(seq 100); do
            PORTID=$(group_portid)
            [[ -n $PORTID ]] && break
            kill -0 "$MON_PID" 2>/dev/null || { cat "$WORK/monitor.err" >&2; die "the monitor exited at start"; }
            sleep 0.1
        done
        [[ -n $PORTID ]] || die "the monitor did not bind group $GROUP"
        sleep 1   # start-up (process table scan) outside the measurement
        rss_before=$(status_kib "$MON_PID" VmRSS)
        cpu_before=$(cpu_ns "$MON_PID")
        out=$(in_ns "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" --flows "$n" --count "$n" --rate "$RATE" --quiet)
        wait_drained >/dev/null
        cpu_after=$(cpu_ns "$MON_PID")
        rss_after=$(status_kib "$MON_PID" VmRSS)
        hwm=$(status_kib "$MON_PID" VmHWM)
        kill -INT "$MON_PID"
        wait "$MON_PID" || true
        MON_PID=""
        for _ in $(seq 50); do [[ -z $(group_portid) ]] && break; sleep 0.1; done
        sent=$(grep -o ' sent=[0-9]*' <<<"$out" | cut -d= -f2)
        line=$(grep -E '(^| )received=' "$WORK/monitor.err" | tail -1)
        [[ -n $line ]] || { cat "$WORK/monitor.err" >&2; die "the monitor printed no summary"; }
        received=$(grep -o 'received=[0-9]*' <<<"$line" | cut -d= -f2)
        lost=$(grep -o ' lost=[0-9]*' <<<"$line" | cut -d= -f2)
        echo "$n $rep $sent $received $lost $rss_before $rss_after $hwm $((cpu_after - cpu_before))" >>"$WORK/raw.txt"
        printf '  %8s flows, rep %s: received %8s, lost %s, RSS %6.1f -> %6.1f MiB (peak %6.1f), %6.0f ns/msg\n' \
            "$n" "$rep" "$received" "$lost" "$(awk -v k="$rss_before" 'BEGIN { print k / 1024 }')" \
            "$(awk -v k="$rss_after" 'BEGIN { print k / 1024 }')" "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" \
            "$(awk -v c="$((cpu_after - cpu_before))" -v r="$received" 'BEGIN { print (r > 0 ? c / r : 0) }')" >&2
    done
done

mkdir -p "$REPO/bench/results"
OUT=$REPO/bench/results/flows-$(date -u +%Y-%m-%dT%H%M%SZ)
python3 - "$WORK/raw.txt" "$OUT" "$RATE" "$REPS" "$(uname -r)" "$(nproc)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, statistics, sys, datetime
raw, out, rate, reps, kernel, cpus, model, load = sys.argv[1:]
rows = {}
for line in open(raw).read().splitlines()[1:]:
    n, rep, sent, received, lost, before, after, hwm, cpu = map(int, line.split())
    rows.setdefault(n, []).append({"rep": rep, "sent": sent, "received": received, "lost": lost,
                                   "rss_before_kib": before, "rss_after_kib": after, "hwm_kib": hwm,
                                   "cpu_ns": cpu, "ns_per_msg": cpu / received if received else None})
def mmm(values):
    v = sorted(values)
    return v[0], statistics.median(v), v[-1]
results = []
for n, rs in rows.items():
    results.append({"flows": n, "lost_total": sum(r["lost"] + r["sent"] - r["received"] for r in rs),
                    "rss_after_mib": [x / 1024 for x in mmm(r["rss_after_kib"] for r in rs)],
                    "rss_growth_mib": [x / 1024 for x in mmm(r["rss_after_kib"] - r["rss_before_kib"] for r in rs)],
                    "peak_mib": [x / 1024 for x in mmm(r["hwm_kib"] for r in rs)],
                    "ns_per_new_flow": list(mmm(r["ns_per_msg"] for r in rs if r["ns_per_msg"])),
                    "runs": rs})
now = datetime.datetime.now(datetime.timezone.utc)
meta = {"date": now.isoformat(timespec="seconds"), "kernel": kernel, "cpus": int(cpus), "model": model,
        "load": load, "rate": int(rate), "reps": int(reps)}
json.dump({**meta, "flows": results}, open(out + ".json", "w"), indent=2)
lines = [f"# Owner resolution at scale, {now:%Y-%m-%d %H:%M} UTC", "",
         f"kernel {kernel}, {cpus} CPUs ({model}), load {load} at the end; {reps} runs per row; one datagram "
         f"to each of N destinations at {int(rate) // 1000}k/s, every one a new flow; `monitor --format none "
         "--flow-lifetime 3600`. RSS after = VmRSS once the last message was handled (all N flows cached); "
         "peak = VmHWM; CPU = all threads' ns on CPU per message (= per new flow). min / median / max.", "",
         "| flows | lost | RSS after MiB | RSS growth MiB | peak MiB | CPU ns per new flow |",
         "|---:|---:|---|---|---|---|"]
fmt = lambda t, spec: " / ".join(format(x, spec) for x in t)
for r in results:
    lines.append(f"| {r['flows']:,} | {r['lost_total']} | {fmt(r['rss_after_mib'], '.1f')} | "
                 f"{fmt(r['rss_growth_mib'], '.1f')} | {fmt(r['peak_mib'], '.1f')} | {fmt(r['ns_per_new_flow'], '.0f')} |")
open(out + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "wrote $OUT.md and $OUT.json" >&2
