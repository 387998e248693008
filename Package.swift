// swift-tools-version: 6.3
// The package layout is the pipeline: bytes from the kernel (NetfilterSystem) arrive through a
// packet source (PacketSources: NFLOG now, NFQUEUE and files next), are parsed (NetlinkWire,
// PacketParsing) into the core model (PacketModel), attributed to their owner (Attribution), and
// handed to sinks (Sinks, with the encoders of Export and the totals of Accounting) by one
// Session that monitor, trace and the daemon share. Rules generates the nftables side; Setup
// turns the config file and the command line into a plan.
//
// System calls: NetfilterSystem is the only target that imports the C module (CNetfilter) and the
// only library that calls Glibc; processes (nft, nsenter) are started through its ChildProcess.
// Outside it, two kinds of code reach the kernel: nfowner-traffic, the test tool, calls Glibc
// itself for its TCP/UDP/ping/raw sockets, privilege drop and clock (reporting failures with
// NetfilterSystem's SystemError); and Attribution (/proc, cgroupfs), Rules (/proc, nft's path)
// and Configuration (the config file) read files through Foundation, as History does (its
// directory), which keeps the SQLite history through GRDB (and the system's libsqlite3).
import PackageDescription

let package = Package(
    name: "nfowner",
    products: [
        .executable(name: "nfowner", targets: ["nfowner"]),
        .executable(name: "nfowner-traffic", targets: ["nfowner-traffic"]),
        // The pipeline's libraries, for the benchmarks package (Benchmarks/) and other tools.
        .library(name: "NetlinkWire", targets: ["NetlinkWire"]),
        .library(name: "PacketParsing", targets: ["PacketParsing"]),
        .library(name: "PacketModel", targets: ["PacketModel"]),
        .library(name: "Export", targets: ["Export"]),
        .library(name: "PacketSources", targets: ["PacketSources"]),
        .library(name: "Attribution", targets: ["Attribution"]),
        .library(name: "Sinks", targets: ["Sinks"]),
        .library(name: "Session", targets: ["Session"]),
        .library(name: "Rules", targets: ["Rules"]),
        .library(name: "Capture", targets: ["Capture"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // C boundary: libmnl and the kernel UAPI headers, in an include order that works.
        .systemLibrary(name: "CNetfilter", pkgConfig: "libmnl", providers: [.apt(["libmnl-dev"])]),
        // The only library that calls C or Glibc (see the header for what else reaches the kernel).
        .target(name: "NetfilterSystem", dependencies: ["CNetfilter"]),
        // Bounds-checked reads over raw bytes, shared by every wire parser.
        .target(name: "BinaryParsing"),
        // IPv4/IPv6 and transport header parsing: pure Swift.
        .target(name: "PacketParsing", dependencies: ["BinaryParsing"]),
        // The core model every stage shares: a packet's metadata, headers and owner. No
        // source's types (no NFLOG, no NFQUEUE): sources map into it, sinks read it.
        .target(name: "PacketModel", dependencies: ["BinaryParsing", "PacketParsing"]),
        // Netlink, NFLOG and sock_diag message encoding/decoding: pure Swift.
        .target(name: "NetlinkWire", dependencies: ["BinaryParsing", "PacketModel"]),
        // Ruleset model -> nft script / iptables-restore text; install/show/remove/status.
        .target(name: "Rules", dependencies: ["NetfilterSystem", "BinaryParsing", "PacketModel"]),
        // The config file (TOML): model with embedded defaults, parsing with file:line errors.
        .target(name: "Configuration", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]),
        // The enforce policy: its file (TOML, read with Configuration's helpers) and the pure
        // first-match evaluation of a packet and its owner. No I/O but reading the file.
        .target(name: "Policy", dependencies: [
            "Configuration", "PacketParsing", .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        // Packet sources: NFLOG (subscription, decoding into the model, loss accounting) and the
        // receive loop that drives any netlink source on a thread of its own.
        .target(name: "PacketSources", dependencies: ["NetfilterSystem", "NetlinkWire", "PacketModel"]),
        // The attribution engine: uid/gid names, the cgroup2 tree and watcher, the process
        // table, socket lookup, the flow cache and owner resolution. Every reader takes a root.
        .target(name: "Attribution", dependencies: ["NetfilterSystem", "NetlinkWire", "PacketParsing", "PacketModel"]),
        // Packet events -> text lines, JSON lines: pure encoders, no I/O.
        .target(name: "Export", dependencies: ["PacketModel", "PacketParsing"]),
        // pcapng (owner in every packet's comment and a JSON custom option, Apple process blocks)
        // and classic pcap: encoders and a bounds-checked reader, pure Swift, no I/O.
        .target(name: "Capture", dependencies: ["BinaryParsing", "PacketModel", "PacketParsing"]),
        // Traffic totals keyed by protocol/remote endpoint, process, cgroup: value types, no I/O.
        .target(name: "Accounting", dependencies: ["PacketModel", "PacketParsing"]),
        // Report model and rendering (table, JSON, CSV) and the report's time syntax: pure, no I/O.
        .target(name: "Reports", dependencies: ["Accounting"]),
        // The accounting history in SQLite (GRDB, WAL): schema and migrations, batched writes
        // off the packet path, retention and size bound, and the report query.
        .target(name: "History", dependencies: [
            "Accounting", "Reports", .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // Sinks: where attributed packets go (text, JSON lines, trace totals). One protocol.
        .target(name: "Sinks", dependencies: ["PacketModel", "PacketParsing", "Export", "Accounting", "Capture", "NetfilterSystem"]),
        // The daemon's Prometheus endpoint: the accounting totals as swift-metrics counters in a
        // swift-prometheus registry, served over HTTP/1.1 by a small blocking server of our own
        // (its socket made on the daemon's thread, so inside the daemon's network namespace).
        .target(name: "MetricsEndpoint", dependencies: [
            "Accounting", "Sinks", "NetfilterSystem", "Configuration",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // Live views of the accounting totals (`top`): grouping, rates, human units, text layout. Pure.
        .target(name: "Views", dependencies: ["Accounting", "Sinks"]),
        // Config file + command line -> the ruleset (with discovered cgroups) and NFLOG settings.
        .target(name: "Setup", dependencies: [
            "Configuration", "Rules", "Attribution", "PacketSources", "NetfilterSystem",
        ]),
        // One run: the plan's rules (install, adopt, remove), a source, the attribution engine,
        // the sinks, threads and signals, counters and the summary line.
        .target(name: "Session", dependencies: [
            "PacketSources", "Attribution", "Sinks", "Rules", "Setup", "PacketModel", "PacketParsing",
            "NetlinkWire", "NetfilterSystem", "Policy", "Export",
        ]),
        // `nfowner run`: a session with the accounting sink, the history writer and the metrics
        // endpoint; SIGHUP reloads the config.
        .target(name: "Daemon", dependencies: [
            "Session", "Sinks", "Accounting", "MetricsEndpoint", "Configuration", "Setup", "NetfilterSystem", "Rules",
            "Attribution", .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "nfowner", dependencies: [
            "Daemon", "Accounting", "MetricsEndpoint", "Views", .product(name: "Logging", package: "swift-log"),
            "Session", "Setup", "Sinks", "Rules", "NetfilterSystem", "Attribution", "Configuration", "PacketModel",
            "Capture", "Export", "PacketParsing", "History", "Reports", "Policy",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Traffic generator for the end-to-end tests and benchmarks (sends as a chosen uid/gid).
        // Makes its own socket calls (Glibc); NetfilterSystem gives it SystemError and Errno.
        .executableTarget(name: "nfowner-traffic", dependencies: [
            "NetfilterSystem",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Test tool: writes history buckets until killed (the kill -9 consistency test).
        .executableTarget(name: "nfowner-history-writer", dependencies: ["History", "Accounting"],
                          path: "Tests/HistoryWriterTool"),

        // Shared by the kernel tests (RulesTests, AttributionTests, EndToEndTests): running commands
        // and a network namespace per test. A library target (no tests of its own) under Tests/.
        .target(name: "TestSupport", path: "Tests/TestSupport"),

        .testTarget(name: "BinaryParsingTests", dependencies: ["BinaryParsing"]),
        .testTarget(name: "NetlinkWireTests", dependencies: ["NetlinkWire", "PacketModel"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "PacketParsingTests", dependencies: ["PacketParsing"]),
        .testTarget(name: "RulesTests", dependencies: ["Rules", "PacketModel", "TestSupport"]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration"]),
        .testTarget(name: "SetupTests", dependencies: ["Setup"]),
        .testTarget(name: "PolicyTests", dependencies: ["Policy", "PacketParsing", "TestSupport"]),
        .testTarget(name: "AccountingTests", dependencies: ["Accounting", "PacketModel"]),
        .testTarget(name: "AttributionTests", dependencies: ["Attribution", "PacketModel", "TestSupport"]),
        .testTarget(name: "ExportTests", dependencies: ["Export", "PacketModel"]),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "PacketModel", "PacketParsing"]),
        .testTarget(name: "SessionTests", dependencies: [
            "Session", "PacketSources", "Sinks", "Attribution", "PacketModel", "PacketParsing", "Capture", "Policy", "Rules",
            "NetfilterSystem", "Export",
        ]),
        .testTarget(name: "ViewsTests", dependencies: ["Views", "Accounting", "Sinks"]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Accounting", "Configuration", "Rules"]),
        .testTarget(name: "MetricsEndpointTests", dependencies: ["MetricsEndpoint", "Accounting", "Sinks", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Accounting"]),
        .testTarget(name: "HistoryTests", dependencies: ["History", "Reports", "Accounting"]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "nfowner", "nfowner-traffic", "nfowner-history-writer", "TestSupport", "History", "Reports", "Accounting",
        ]),
    ]
)
