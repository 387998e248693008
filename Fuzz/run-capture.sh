#!/bin/sh
# Builds the capture-file reader's libFuzzer target and runs it.
#   Fuzz/run-capture.sh [libFuzzer options…]     e.g. Fuzz/run-capture.sh -max_total_time=60
# Its modules are compiled one by one (as SwiftPM does), with fuzzer coverage and
# AddressSanitizer. Committed seeds (an nfowner pcapng file, the same as pcap, a file with a
# big-endian section) are in Fuzz/CaptureReader/seeds; the growing corpus stays in the build
# directory.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_BUILD:-$root/.build-fuzz}/capture
mkdir -p "$out/corpus"
flags="-O -g -sanitize=fuzzer,address -parse-as-library -use-ld=lld"

objects=""
for module in BinaryParsing PacketParsing PacketModel Capture; do
    swiftc $flags -emit-module -emit-object -wmo -module-name "$module" -I "$out" \
        -emit-module-path "$out/$module.swiftmodule" -o "$out/$module.o" \
        "$root/Sources/$module"/*.swift
    objects="$objects $out/$module.o"
done
# shellcheck disable=SC2086 # the object list is meant to split
swiftc $flags -I "$out" -module-name CaptureReaderFuzz \
    "$root/Fuzz/CaptureReader/main.swift" $objects -o "$out/capture-reader-fuzzer"

exec "$out/capture-reader-fuzzer" "$out/corpus" "$root/Fuzz/CaptureReader/seeds" -max_len=4096 "$@"
