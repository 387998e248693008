#!/usr/bin/env bash
# Instruction profile of `nfowner monitor` under NFLOG load, with valgrind's callgrind (instruction
# counts are reproducible here; perf hardware counters are not available in this VM).
#
# In a network namespace of its own: one nft rule logs the sender's UDP datagrams to a group, the
# monitor (release build, under callgrind) binds it with --no-rules, nfowner-traffic sends at a fixed
# rate that the instrumented monitor can keep up with, then the monitor is stopped with SIGINT and the
# top functions by instructions (inclusive and self) are printed, demangled.
#
# Run as root: sudo bench/callgrind-monitor.sh     (≈ 1 min)
# Knobs: NFO_PROF_FORMAT [none] (none|json, or run: `nfowner run` with its accounting, SQLite history in
#        1 s buckets and metrics endpoint, as bench/nflog.sh runs it, or capture: `nfowner capture -w
#        FILE` into the run's work directory, or capture-null: `capture -w /dev/null`), NFO_PROF_RATE [20000], NFO_PROF_DURATION [3], NFO_PROF_TOP [25],
#        NFO_PROF_VALGRIND_ARGS [] (extra callgrind options, e.g. --dump-instr=yes for per-instruction costs),
#        NFO_PROF_BINARY [this tree's release build] (another nfowner binary to profile, e.g. a release build
#        of an earlier commit: two runs give an A/B in instructions per message, which do not vary
#        with the host's load as CPU time does),
#        NFO_PROF_KEEP_DEBUG [0] (1: keep the binary's debug sections, for per-line costs with
#        `callgrind_annotate --auto=yes`; valgrind reads DWARF 4 only, so build it with
#        `swift build -c release -Xswiftc -g -Xswiftc -dwarf-version=4 -Xcc -gdwarf-4 --scratch-path .build-prof`)
# Output: bench/results/callgrind-monitor-<format>-<UTC time>.out (callgrind file) and .txt (the listing).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

FORMAT=${NFO_PROF_FORMAT:-none}
RATE=${NFO_PROF_RATE:-20000}
DURATION=${NFO_PROF_DURATION:-3}
TOP=${NFO_PROF_TOP:-25}
GROUP=44
SINK_PORT=9

bench_begin nfo-prof "network namespaces, NFLOG, nft" \
    swift valgrind callgrind_annotate objcopy nft ip nsenter python3
SINK_PID=""
MON_PID=""
stop_started() { stop_pids "$MON_PID" "$SINK_PID"; }
build_release_binaries

make_namespace
start_udp_sink "$SINK_PORT"
install_log_rule nfoprof

mkdir -p "$REPO/bench/results"
OUT=$REPO/bench/results/callgrind-monitor-$FORMAT-$(date -u +%Y-%m-%dT%H%M%SZ)
# valgrind 3.19 (Debian 12) cannot read the DWARF 5 that Swift 6 emits ("Possibly corrupted debuginfo
# file ... Giving up"): profile a copy without debug sections; the symbol table keeps function names.
PROFILED=${NFO_PROF_BINARY:-$BIN/nfowner}
[[ -x $PROFILED ]] || die "NFO_PROF_BINARY '$PROFILED' is not an executable"
if [[ ${NFO_PROF_KEEP_DEBUG:-0} == 1 ]]; then
    cp "$PROFILED" "$WORK/nfowner"
else
    objcopy --strip-debug "$PROFILED" "$WORK/nfowner"
fi
# shellcheck disable=SC2086 # word splitting of the extra options is intended
if [[ $FORMAT == run ]]; then
    printf '[nflog]\ngroups = [%s]\n[accounting]\nbucket_s = 1\n[storage]\npath = "%s"\n[metrics]\nlisten = "127.0.0.1:19466"\n' \
        "$GROUP" "$WORK/history.db" >"$WORK/run.toml"
    PROFILED_COMMAND=(run --no-rules --config "$WORK/run.toml" --netns "$NS")
elif [[ $FORMAT == capture || $FORMAT == capture-null ]]; then
    CAPTURE_FILE=$WORK/capture.pcapng
    [[ $FORMAT == capture-null ]] && CAPTURE_FILE=/dev/null
    PROFILED_COMMAND=(capture -w "$CAPTURE_FILE" --no-rules --group "$GROUP" --netns "$NS")
else
    PROFILED_COMMAND=(monitor --format "$FORMAT" --no-rules --group "$GROUP" --netns "$NS")
fi
valgrind --tool=callgrind --callgrind-out-file="$OUT.out" ${NFO_PROF_VALGRIND_ARGS:-} \
    "$WORK/nfowner" "${PROFILED_COMMAND[@]}" </dev/null >/dev/null 2>"$WORK/monitor.err" &
MON_PID=$!
for _ in $(seq 300); do
    in_ns awk -v g="$GROUP" '$1 == g { f = 1 } END { exit !f }' /proc/net/netfilter/nfnetlink_log && break
    kill -0 "$MON_PID" 2>/dev/null || { cat "$WORK/monitor.err" >&2; die "the monitor exited"; }
    sleep 0.1
done
sleep 2
in_ns "$BIN/nfowner-traffic" udp --to 127.0.0.1 --port "$SINK_PORT" --rate "$RATE" --duration "$DURATION" --quiet >&2
sleep 2
kill -INT "$MON_PID"
wait "$MON_PID" || true
MON_PID=""
grep 'received=' "$WORK/monitor.err" >&2 || true

demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else swift demangle --simplified; fi; }
{
    echo "# callgrind: nfowner ${PROFILED_COMMAND[*]}, $RATE pkt/s × $DURATION s, $(date -u '+%Y-%m-%d %H:%M UTC'), $PROFILED"
    grep 'received=' "$WORK/monitor.err" || true
    echo
    echo "## inclusive"
    # sed, not head: head's early exit killed the demangler with SIGPIPE, and pipefail made that
    # the script's exit status (141) before the listing was complete.
    callgrind_annotate --inclusive=yes --threshold=100 "$OUT.out" 2>/dev/null | demangle | sed -n "1,$((TOP + 25))p"
    echo
    echo "## self"
    callgrind_annotate --threshold=100 "$OUT.out" 2>/dev/null | demangle | sed -n "1,$((TOP + 25))p"
} >"$OUT.txt"
cat "$OUT.txt"
echo "wrote $OUT.out and $OUT.txt" >&2
