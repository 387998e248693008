#!/usr/bin/env bash
# Per-packet cost of nfowner's cgroup classification at the OUTPUT hook, with 1, 100 and 1,000
# cgroups, against a linear chain (one `socket cgroupv2` rule per cgroup) and no rules at all.
#
# Cost is measured as sender CPU time per packet: the OUTPUT hook runs in the sending process's
# context, so what the ruleset adds shows up in that process's CPU time. The sender is alone in
# its own cgroup, whose cpu.stat usage_usec (exact sum_exec_runtime, not tick-sampled) we read
# before and after each run.
#
# Everything happens in a network namespace of our own and under <cgroup2 root>/nfo-bench-<pid>;
# both are removed on exit, whatever happens. Run as root:  sudo bench/classification.sh
#
# Environment knobs (defaults in brackets): NFO_BENCH_COUNTS ["1 100 1000"], NFO_BENCH_REPS [3],
# NFO_BENCH_DURATION [3] seconds per run, NFO_BENCH_VARIANTS [all five, see VARIANTS].
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

read -r -a COUNTS <<<"${NFO_BENCH_COUNTS:-1 100 1000}"
REPS=${NFO_BENCH_REPS:-3}
DURATION=${NFO_BENCH_DURATION:-3}
# baseline: empty ruleset. map-*: nfowner's ruleset (verdict map per level). linear-*: one rule per
# cgroup. *-log: as shipped, `counter log group …` with no NFLOG listener bound (the kernel finds no
# instance for the group and drops the message before building it). *-counter: the log statement
# removed, so only the classification (and a counter) is left.
read -r -a VARIANTS <<<"${NFO_BENCH_VARIANTS:-baseline map-log map-counter linear-log linear-counter}"
SINK_PORT=9

bench_begin nfo-bench "network namespaces, cgroups, nft" swift nft ip nsenter python3 stat awk sed
for n in "${COUNTS[@]}"; do
    [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 9999 ]] || die "cgroup counts must be 1…9999, got '$n'"
done

find_cgroup2_root
# nft stat()s "/sys/fs/cgroup/" + path, whatever the mount point (docs/cgroups.md).
case $CGROOT in
    /sys/fs/cgroup) NFT_PREFIX="" ;;
    /sys/fs/cgroup/*) NFT_PREFIX="${CGROOT#/sys/fs/cgroup/}/" ;;
    *) die "cgroup2 is mounted at $CGROOT, outside /sys/fs/cgroup: nft cannot name its cgroups" ;;
esac

NAME=$NS   # also the cgroup's name
BENCH_CG=$CGROOT/$NAME
SENDER_CG=$BENCH_CG/sender
SINK_PID=""

# --- cleanup, run by bench_end before it removes the namespace (with its nft tables) and the work
# directory: processes first (a cgroup with members cannot be removed), then our cgroups. Only
# PIDs we started or that sit in our own cgroups are signalled.
stop_started() {
    local pid dir tries
    stop_pids "$SINK_PID"
    if [[ -d $BENCH_CG ]]; then
        for tries in 1 2 3 4 5 6 7 8 9 10; do
            local left=0
            while read -r dir; do
                while read -r pid; do
                    [[ -n $pid ]] || continue
                    left=1
                    kill -KILL "$pid" 2>/dev/null
                done <"$dir/cgroup.procs"
            done < <(find "$BENCH_CG" -depth -type d 2>/dev/null)
            [[ $left -eq 0 ]] && break
            sleep 0.2
        done
        find "$BENCH_CG" -depth -type d -exec rmdir {} + 2>/dev/null
        [[ -d $BENCH_CG ]] && echo "classification.sh: could not remove $BENCH_CG" >&2
    fi
    return 0
}

# --- 1. release binaries
echo "building release binaries (.build-bench)…" >&2
build_release_binaries

# --- 2. namespace, sink, cgroups
make_namespace

start_udp_sink "$SINK_PORT"

mkdir "$BENCH_CG" "$SENDER_CG"

# Creates g0001 … gN (keeps the ones that exist: N only grows).
ensure_cgroups() {
    local i
    for ((i = 1; i <= $1; i++)); do
        [[ -d $BENCH_CG/$(printf 'g%04d' "$i") ]] || mkdir "$BENCH_CG/$(printf 'g%04d' "$i")"
    done
}

cat >"$WORK/nfowner.toml" <<EOF
# Exactly our cgroups: /$NAME (level 1) and every cgroup below it at level 2.
[select]
cgroups = ["/$NAME"]

[cgroups]
levels = [2]
follow = false
EOF

# --- 3. rulesets
# map-log: what `nfowner rules install` installs. map-counter: the same script without the log
# statement. linear-*: the same classification (same prefixes, deepest level first, the first
# match logs and accepts) written as one rule per cgroup, the sender's rule last of its level.
make_rulesets() {
    local n=$1 log_args path id i
    "$NFOWNER" rules show --config "$WORK/nfowner.toml" >"$WORK/map-log.nft"
    sed -E 's/ log prefix "[^"]*" group [0-9]+ snaplen [0-9]+( queue-threshold [0-9]+)?//' \
        "$WORK/map-log.nft" >"$WORK/map-counter.nft"
    ! grep -q ' log ' "$WORK/map-counter.nft" || die "could not strip the log statement"
    local elements
    elements=$(grep -o 'goto cg_[0-9]*' "$WORK/map-log.nft" | wc -l)
    [[ $elements -eq $((n + 2)) ]] \
        || die "expected $((n + 2)) map elements (N + sender + parent), nfowner rendered $elements"
    log_args=$(grep -o -m1 'group [0-9]* snaplen [0-9]*\( queue-threshold [0-9]*\)\?' "$WORK/map-log.nft")

    local -a paths=()
    for ((i = 1; i <= n; i++)); do paths+=("$(printf 'g%04d' "$i")"); done
    paths+=(sender)
    {
        echo "table inet nfobench"
        echo "delete table inet nfobench"
        echo "table inet nfobench {"
        # The sender's rule counts into a named counter: listing a chain makes nft 1.0.6 walk
        # /sys/fs/cgroup once per `socket cgroupv2` rule to print its path (minutes at N=1000),
        # while `nft list counter` is instant. Only this one rule of N+2 uses an object reference
        # instead of an inline counter, and it runs once per packet in every variant.
        echo "	counter sender {"
        echo "	}"
        echo "	chain output {"
        echo "		type filter hook output priority 100; policy accept;"
        local counter
        for path in "${paths[@]}"; do
            id=$(stat -c %i "$BENCH_CG/$path")
            counter="counter"
            [[ $path == sender ]] && counter='counter name "sender"'
            echo "		socket cgroupv2 level 2 \"$NFT_PREFIX$NAME/$path\" $counter log prefix \"nfowner cg=$id\" $log_args accept"
        done
        id=$(stat -c %i "$BENCH_CG")
        echo "		socket cgroupv2 level 1 \"$NFT_PREFIX$NAME\" counter log prefix \"nfowner cg=$id\" $log_args accept"
        echo "	}"
        echo "}"
    } >"$WORK/linear-log.nft"
    sed -E 's/ log prefix "[^"]*" group [0-9]+ snaplen [0-9]+( queue-threshold [0-9]+)?//' \
        "$WORK/linear-log.nft" >"$WORK/linear-counter.nft"
}

install_variant() {
    in_ns nft flush ruleset   # our own namespace: nothing else lives here
    case $1 in
        baseline) ;;
        map-log) "$NFOWNER" rules install --netns "$NS" --config "$WORK/nfowner.toml" >"$WORK/install.log" 2>&1 \
            || { cat "$WORK/install.log" >&2; die "nfowner rules install failed"; } ;;
        *) in_ns nft -f "$WORK/$1.nft" ;;
    esac
}

# Packets the ruleset counted for the sender's cgroup (proves the sender was classified), or "-".
sender_matches() {
    local id
    id=$(stat -c %i "$SENDER_CG")
    case $1 in
        # awk reads everything (an early-exiting grep -m1 could SIGPIPE nft under pipefail).
        map-*) in_ns nft list chain inet nfowner "cg_$id" | awk '
            !done { for (i = 1; i < NF; i++) if ($i == "packets") { print $(i + 1); done = 1; break } }' ;;
        linear-*) in_ns nft list counter inet nfobench sender | awk '
            !done { for (i = 1; i < NF; i++) if ($i == "packets") { print $(i + 1); done = 1; break } }' ;;
        *) echo "-" ;;
    esac
}

cpu_usec() { awk '$1 == "usage_usec" { print $2 }' "$SENDER_CG/cpu.stat"; }

# --- 4. measure: one run = the traffic generator alone in the sender cgroup, in our namespace.
echo "cgroups variant rep sent cpu_usec elapsed_ns errors matched" >"$WORK/raw.txt"
run_once() {
    local n=$1 variant=$2 rep=$3 before after out sent elapsed errors matched
    before=$(cpu_usec)
    out=$(
        echo "$BASHPID" >"$SENDER_CG/cgroup.procs"
        exec nsenter --net="$NSFILE" "$TRAFFIC" udp --to 127.0.0.1 --port "$SINK_PORT" --max \
            --duration "$DURATION" --size 64 --quiet
    )
    after=$(cpu_usec)
    sent=$(grep -o ' sent=[0-9]*' <<<"$out" | cut -d= -f2)
    errors=$(grep -o ' errors=[0-9]*' <<<"$out" | cut -d= -f2)
    elapsed=$(grep -o ' elapsed_ns=[0-9]*' <<<"$out" | cut -d= -f2)
    [[ -n $sent && $sent -gt 0 ]] || die "no result from nfowner-traffic: $out"
    matched=$(sender_matches "$variant")
    if [[ $matched != "-" && $matched != "$sent" ]]; then
        die "$variant N=$n: the sender's rule counted $matched packets, the sender sent $sent"
    fi
    echo "$n $variant $rep $sent $((after - before)) $elapsed $errors $matched" >>"$WORK/raw.txt"
    printf '  N=%-5s %-15s rep %s: %9s packets, %6.1f ns/packet\n' "$n" "$variant" "$rep" "$sent" \
        "$(awk -v c="$((after - before))" -v s="$sent" 'BEGIN { print c * 1000 / s }')" >&2
}

for n in "${COUNTS[@]}"; do
    echo "N=$n: creating cgroups and rulesets…" >&2
    ensure_cgroups "$n"
    make_rulesets "$n"
    # Repetitions outermost, so slow drift (other load on the machine) spreads over all variants.
    for ((rep = 1; rep <= REPS; rep++)); do
        for variant in "${VARIANTS[@]}"; do
            install_variant "$variant"
            run_once "$n" "$variant" "$rep"
        done
    done
    in_ns nft flush ruleset
done

# --- 5. report
mkdir -p "$REPO/bench/results"
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=$REPO/bench/results/classification-$STAMP
python3 - "$WORK/raw.txt" "$OUT" "$DURATION" "$REPS" "$(uname -r)" "$(nft --version)" \
    "$(nproc)" "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$CGROOT" <<'PY'
import json, statistics, sys, datetime
raw, out, duration, reps, kernel, nft, cpus, model, cgroot = sys.argv[1:]
rows = [line.split() for line in open(raw).read().splitlines()[1:]]
runs = {}
for n, variant, rep, sent, cpu_us, elapsed, errors, matched in rows:
    runs.setdefault((int(n), variant), []).append({
        "rep": int(rep), "sent": int(sent), "cpu_ns": int(cpu_us) * 1000, "elapsed_ns": int(elapsed),
        "errors": int(errors), "sender_rule_packets": None if matched == "-" else int(matched),
        "ns_per_packet": int(cpu_us) * 1000 / int(sent)})
order = ["baseline", "map-log", "map-counter", "linear-log", "linear-counter"]
results = []
for (n, variant) in sorted(runs, key=lambda k: (k[0], order.index(k[1]) if k[1] in order else 99)):
    r = runs[(n, variant)]
    per = sorted(x["ns_per_packet"] for x in r)
    base = runs.get((n, "baseline"))
    base_median = statistics.median(x["ns_per_packet"] for x in base) if base else None
    results.append({
        "cgroups": n, "map_elements_level2": n + 1, "variant": variant,
        "min_ns": per[0], "median_ns": statistics.median(per), "max_ns": per[-1],
        "delta_median_ns": None if base_median is None else statistics.median(per) - base_median,
        "delta_min_ns": None if base is None else per[0] - min(x["ns_per_packet"] for x in base),
        "median_pps": statistics.median(x["sent"] * 1e9 / x["elapsed_ns"] for x in r),
        "runs": r})
now = datetime.datetime.now(datetime.timezone.utc)
meta = {"date": now.strftime("%Y-%m-%d %H:%M UTC"), "kernel": kernel, "nft": nft, "cpus": int(cpus),
        "cpu_model": model, "cgroup2_mount": cgroot, "duration_s": float(duration), "repetitions": int(reps),
        "datagram": "UDP, 64-byte payload, 127.0.0.1 -> 127.0.0.1:9 (bound, never read), one connected socket",
        "metric": "sender cgroup cpu.stat usage_usec per datagram sent"}
json.dump({**meta, "results": results}, open(out + ".json", "w"), indent=2)

lines = [f"# Classification benchmark, {meta['date']}", "",
         f"kernel {kernel}, {nft}, {cpus} CPUs ({model}); {reps} runs of {duration} s each; "
         "sender CPU ns per 64-byte UDP datagram (min / median / max); Δ median = median minus the baseline's "
         "median at the same N, Δ min = min minus the baseline's min.", "",
         "| cgroups | variant | min ns | median ns | max ns | Δ median ns | Δ min ns | median kpps |",
         "|---:|---|---:|---:|---:|---:|---:|---:|"]
for r in results:
    d = r["delta_median_ns"]
    dm = r["delta_min_ns"]
    delta = "–" if r["variant"] == "baseline" or d is None else f"{d:+.1f}"
    delta_min = "–" if r["variant"] == "baseline" or dm is None else f"{dm:+.1f}"
    lines.append(f"| {r['cgroups']} | {r['variant']} | {r['min_ns']:.1f} | {r['median_ns']:.1f} | "
                 f"{r['max_ns']:.1f} | {delta} | {delta_min} | {r['median_pps'] / 1000:.0f} |")
# Per-rule slope of the linear chain between the smallest and largest N.
ns = sorted({r["cgroups"] for r in results})
if len(ns) >= 2:
    lines.append("")
    for v in ("linear-counter", "linear-log", "map-counter", "map-log"):
        a = next((r for r in results if r["cgroups"] == ns[0] and r["variant"] == v), None)
        b = next((r for r in results if r["cgroups"] == ns[-1] and r["variant"] == v), None)
        if a and b and a["delta_median_ns"] is not None and b["delta_median_ns"] is not None:
            slope = (b["delta_median_ns"] - a["delta_median_ns"]) / (ns[-1] - ns[0])
            lines.append(f"- {v}: Δ grows by {slope:.2f} ns per added cgroup from N={ns[0]} to N={ns[-1]}")
open(out + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "wrote $OUT.md and $OUT.json" >&2
