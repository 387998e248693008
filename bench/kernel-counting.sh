#!/usr/bin/env bash
# Kernel counting (`[accounting] mode = "kernel"`): are the daemon's bytes exact at packet rates
# far beyond what NFLOG delivers, and does its CPU stay flat as the rate grows?
#
# In a network namespace of our own: `nfowner run` in kernel mode (its table nfowner_counters
# counts every packet; nothing is logged), a reference table with one plain nft counter on the
# same datagrams, and nfowner-traffic senders (uid 65534) sending 64-byte UDP datagrams to a bound,
# never-read sink for DURATION seconds per phase: at fixed rates, then as fast as 1 and 2 senders
# can. Per phase: the datagrams per second achieved, the daemon's CPU (schedstat, every thread)
# per second of the phase, and the bytes the daemon reports for uid 65534 out (its /metrics,
# after its next read) against the reference counter's.
#
# Run as root: sudo bench/kernel-counting.sh   (≈ 1 min)
# Environment knobs [defaults]: NFO_BENCH_DURATION [5], NFO_BENCH_RATES ["50000 200000"]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_begin nfo-kcount "network namespaces, nft" nft python3 curl

DURATION=${NFO_BENCH_DURATION:-5}
read -r -a RATES <<<"${NFO_BENCH_RATES:-50000 200000}"
SINK_PORT=9
METRICS_PORT=19468
SINK_PID=""
DAEMON_PID=""
stop_started() { stop_pids "$DAEMON_PID" "$SINK_PID"; }

echo "building release binaries (.build-bench)…" >&2
build_release_binaries
make_namespace
start_udp_sink "$SINK_PORT"
in_ns nft -f - <<NFT
table inet nfobench_ref {
	counter sent {}
	chain output {
		type filter hook output priority 0; policy accept;
		udp dport $SINK_PORT meta skuid 65534 counter name sent
	}
}
NFT
cat >"$WORK/run.toml" <<TOML
[accounting]
mode = "kernel"
bucket_s = 1
[storage]
path = ""
[metrics]
listen = "127.0.0.1:$METRICS_PORT"
TOML
"$NFOWNER" run --config "$WORK/run.toml" --netns "$NS" </dev/null >/dev/null 2>"$WORK/daemon.err" &
DAEMON_PID=$!
for _ in $(seq 100); do grep -q "stop with SIGTERM" "$WORK/daemon.err" && break; sleep 0.1; done
grep -q "stop with SIGTERM" "$WORK/daemon.err" || { cat "$WORK/daemon.err" >&2; die "nfowner run did not start"; }

reference_bytes() { in_ns nft -j list counter inet nfobench_ref sent | python3 -c 'import json,sys; print([o["counter"]["bytes"] for o in json.load(sys.stdin)["nftables"] if "counter" in o][0])'; }
daemon_bytes() {
    in_ns curl -s "http://127.0.0.1:$METRICS_PORT/metrics" \
        | awk '/^nfowner_bytes_total/ && /user="nobody"/ && /direction="out"/ { s += $NF } END { printf "%d\n", s }'
}

echo "phase senders rate_asked sent_per_s cpu_ms_per_s reference_bytes daemon_bytes error_pct" >"$WORK/raw.txt"
run_phase() {
    local name=$1 senders=$2 rate=$3 i ref_before ref_after got_before got_after cpu_before cpu_after start end sent=0
    local -a pids=() pace=(--max)
    [[ $rate != max ]] && pace=(--rate "$rate")
    sleep 2
    ref_before=$(reference_bytes); got_before=$(daemon_bytes); cpu_before=$(cpu_ns "$DAEMON_PID"); start=$(now_ns)
    for ((i = 0; i < senders; i++)); do
        nsenter --net="$NSFILE" "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" "${pace[@]}" --duration "$DURATION" \
            --size 64 --quiet --uid 65534 --gid 65534 >"$WORK/sender-$i.out" &
        pids+=($!)
    done
    [[ $senders -eq 0 ]] && sleep "$DURATION"
    for pid in "${pids[@]}"; do wait "$pid"; done
    end=$(now_ns); cpu_after=$(cpu_ns "$DAEMON_PID")
    for ((i = 0; i < senders; i++)); do
        sent=$((sent + $(grep -o ' sent=[0-9]*' "$WORK/sender-$i.out" | cut -d= -f2)))
    done
    sleep 3   # the daemon reads every second; give it two reads
    ref_after=$(reference_bytes); got_after=$(daemon_bytes)
    python3 - "$name" "$senders" "$rate" "$sent" "$start" "$end" "$cpu_before" "$cpu_after" \
        "$ref_before" "$ref_after" "$got_before" "$got_after" >>"$WORK/raw.txt" <<'PY'
import sys
name, senders, rate, sent, start, end, c0, c1, r0, r1, g0, g1 = sys.argv[1:]
seconds = (int(end) - int(start)) / 1e9
ref, got = int(r1) - int(r0), int(g1) - int(g0)
print(name, senders, rate, round(int(sent) / seconds), round((int(c1) - int(c0)) / 1e6 / seconds, 2), ref, got,
      round((got - ref) * 100 / ref, 4) if ref else "-")
PY
    tail -1 "$WORK/raw.txt" >&2
}
run_phase idle 0 0
for rate in "${RATES[@]}"; do run_phase "rate-$rate" 1 "$rate"; done
run_phase max-1 1 max
run_phase max-2 2 max
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true; DAEMON_PID=""

mkdir -p "$REPO/bench/results"
OUT=$REPO/bench/results/kernel-counting-$(date -u +%Y-%m-%dT%H%M%SZ).md
{
    echo "# Kernel counting (nfowner run, [accounting] mode = \"kernel\"), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "kernel $(uname -r), $(nproc) CPUs; $DURATION s per phase; 64-byte UDP datagrams as uid 65534 to a bound, never-read"
    echo "sink; the reference is one nft counter on the same datagrams. CPU = the daemon's, every thread, per second of"
    echo "the phase. Error = (daemon − reference) ÷ reference."
    echo
    echo "| phase | senders | datagrams/s | daemon CPU ms/s | reference bytes | daemon bytes | error % |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$WORK/raw.txt" | awk '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $4, $5, $6, $7, $8 }'
} | tee "$OUT"
echo "wrote $OUT" >&2
