#!/usr/bin/env bash
# The accounting daemon's memory under a flood of distinct remote endpoints: `nfowner run --no-rules`
# reads an NFLOG group that one rule logs UDP datagrams to, while nfowner-traffic sends ENDPOINTS
# datagrams, each to a new destination (127.x.y.z, `--flows`), at RATE per second. Reported: the
# daemon's peak and final resident memory (VmHWM, VmRSS from /proc/PID/status), what it received and
# lost (its summary line), the history's size, and the rows of the last bucket (metrics: flows_active).
# The issue's target is 1M distinct remote endpoints in an hour; here they come in seconds, which
# is harder (nothing has aged out).
#
# Run as root: sudo bench/accounting.sh   (≈ 1 min)
# Environment knobs [defaults]: NFO_BENCH_ENDPOINTS [1000000], NFO_BENCH_RATE [100000], NFO_BENCH_GROUP [42]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_begin nfo-acct "network namespaces, NFLOG, nft" nft python3 curl

ENDPOINTS=${NFO_BENCH_ENDPOINTS:-1000000}
RATE=${NFO_BENCH_RATE:-100000}
GROUP=${NFO_BENCH_GROUP:-42}
SINK_PORT=9
METRICS_PORT=19467
SINK_PID=""
DAEMON_PID=""
stop_started() { stop_pids "$DAEMON_PID" "$SINK_PID"; }

echo "building release binaries (.build-bench)…" >&2
build_release_binaries
make_namespace
start_udp_sink "$SINK_PORT"
install_log_rule nfobench

cat >"$WORK/run.toml" <<TOML
[nflog]
groups = [$GROUP]
[storage]
path = "$WORK/history.db"
[metrics]
listen = "127.0.0.1:$METRICS_PORT"
TOML
"$NFOWNER" run --no-rules --config "$WORK/run.toml" --netns "$NS" </dev/null >/dev/null 2>"$WORK/daemon.err" &
DAEMON_PID=$!
for _ in $(seq 100); do grep -q "accounting NFLOG group" "$WORK/daemon.err" && break; sleep 0.1; done
grep -q "accounting NFLOG group" "$WORK/daemon.err" || { cat "$WORK/daemon.err" >&2; die "nfowner run did not start"; }
sleep 0.5
rss_kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
START_RSS=$(rss_kib "$DAEMON_PID" VmRSS)

echo "sending $ENDPOINTS datagrams to $ENDPOINTS distinct destinations at $RATE/s…" >&2
SENT=$(in_ns "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" --flows "$ENDPOINTS" --count "$ENDPOINTS" \
    --rate "$RATE" --size 64 --quiet)
sleep 2
ACTIVE=$(in_ns curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk '$1 == "nfowner_flows_active" { print $2 }')
HWM=$(rss_kib "$DAEMON_PID" VmHWM)
RSS=$(rss_kib "$DAEMON_PID" VmRSS)
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=""
SUMMARY=$(grep -E '(^| )received=' "$WORK/daemon.err" | tail -1)
DB_BYTES=$( (du -cb "$WORK"/history.db* 2>/dev/null || true) | tail -1 | cut -f1)
DB_BYTES=${DB_BYTES:-0}

mkdir -p "$REPO/bench/results"
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=$REPO/bench/results/accounting-$STAMP.md
{
    echo "# nfowner run under $ENDPOINTS distinct remote endpoints, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "kernel $(uname -r), $(nproc) CPUs. Sender: \`$(cut -d' ' -f1-4 <<<"$SENT")\` at $RATE/s, each datagram to a new"
    echo "127.x.y.z destination. Daemon: default accounting bounds (max_remotes 100, max_rows 100000), 60 s buckets,"
    echo "history and metrics on."
    echo
    echo "| measure | value |"
    echo "|---|---:|"
    echo "| resident memory at start (VmRSS) | $((START_RSS / 1024)) MiB |"
    echo "| peak resident memory (VmHWM) | $((HWM / 1024)) MiB |"
    echo "| resident memory after the flood (VmRSS) | $((RSS / 1024)) MiB |"
    echo "| flows remembered (nfowner_flows_active) | ${ACTIVE:-?} |"
    echo "| history size | $((DB_BYTES / 1024)) KiB |"
    echo
    echo "Summary line: \`$SUMMARY\`"
} | tee "$OUT"
echo "wrote $OUT" >&2
