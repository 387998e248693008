#!/bin/sh
# Builds the PacketParsing libFuzzer target and runs it.
#   Fuzz/run.sh [libFuzzer options…]     e.g. Fuzz/run.sh -runs=2000000  or  -max_total_time=60
# BinaryParsing and PacketParsing are compiled as their own modules (as SwiftPM does), with
# fuzzer coverage and AddressSanitizer. Committed seeds are in Fuzz/PacketParsing/seeds; the
# growing corpus stays in the build directory.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_BUILD:-$root/.build-fuzz}
mkdir -p "$out/corpus"
flags="-O -g -sanitize=fuzzer,address -parse-as-library -use-ld=lld"

swiftc $flags -emit-module -emit-object -wmo -module-name BinaryParsing \
    -emit-module-path "$out/BinaryParsing.swiftmodule" -o "$out/BinaryParsing.o" \
    "$root"/Sources/BinaryParsing/*.swift
swiftc $flags -emit-module -emit-object -wmo -module-name PacketParsing -I "$out" \
    -emit-module-path "$out/PacketParsing.swiftmodule" -o "$out/PacketParsing.o" \
    "$root"/Sources/PacketParsing/*.swift
swiftc $flags -I "$out" -module-name PacketParsingFuzz \
    "$root/Fuzz/PacketParsing/main.swift" "$out/BinaryParsing.o" "$out/PacketParsing.o" \
    -o "$out/packet-parsing-fuzzer"

exec "$out/packet-parsing-fuzzer" "$out/corpus" "$root/Fuzz/PacketParsing/seeds" -max_len=256 "$@"
