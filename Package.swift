// swift-tools-version: 6.3
// The package layout mirrors the pipeline: bytes from the kernel (NetfilterSystem) are decoded
// (NetlinkWire, PacketParsing), attributed (ProcessResolution), and shown (Export) by the
// Monitor; Rules generates the nftables side. Only NetfilterSystem imports the C module.
import PackageDescription

let package = Package(
    name: "nfowner",
    products: [
        .executable(name: "nfowner", targets: ["nfowner"]),
        .executable(name: "nfowner-traffic", targets: ["nfowner-traffic"]),
        // The pipeline's libraries, for the benchmarks package (Benchmarks/) and other tools.
        .library(name: "NetlinkWire", targets: ["NetlinkWire"]),
        .library(name: "PacketParsing", targets: ["PacketParsing"]),
        .library(name: "Export", targets: ["Export"]),
        .library(name: "Monitor", targets: ["Monitor"]),
        .library(name: "ProcessResolution", targets: ["ProcessResolution"]),
        .library(name: "Rules", targets: ["Rules"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // C boundary: libmnl and the kernel UAPI headers, in an include order that works.
        .systemLibrary(name: "CNetfilter", pkgConfig: "libmnl", providers: [.apt(["libmnl-dev"])]),
        // The only Swift code that calls C or makes syscalls.
        .target(name: "NetfilterSystem", dependencies: ["CNetfilter"]),
        // Bounds-checked reads over raw bytes, shared by every wire parser.
        .target(name: "BinaryParsing"),
        // Netlink and NFLOG message encoding/decoding: pure Swift.
        .target(name: "NetlinkWire", dependencies: ["BinaryParsing"]),
        // IPv4/IPv6 and transport header parsing: pure Swift.
        .target(name: "PacketParsing", dependencies: ["BinaryParsing"]),
        // Ruleset model -> nft script; install/show/remove/status through nft.
        .target(name: "Rules", dependencies: ["NetfilterSystem", "BinaryParsing"]),
        // The config file (TOML): model with embedded defaults, parsing with file:line errors.
        .target(name: "Configuration", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]),
        // uid/gid -> names, cgroup2 tree (id <-> path, units), and later processes.
        .target(name: "ProcessResolution", dependencies: ["NetfilterSystem", "NetlinkWire", "PacketParsing"]),
        // Packet events -> text lines, JSON lines.
        .target(name: "Export", dependencies: ["NetlinkWire", "PacketParsing"]),
        // Traffic totals keyed by protocol/remote endpoint, process, cgroup: value types, no I/O.
        .target(name: "Accounting", dependencies: ["Export", "PacketParsing"]),
        // The NFLOG pipeline: receive, decode, parse, attribute, count, emit.
        .target(name: "Monitor", dependencies: [
            "NetfilterSystem", "NetlinkWire", "PacketParsing", "ProcessResolution", "Export", "Rules",
        ]),
        // Config file + command line -> the ruleset (with discovered cgroups) and NFLOG settings.
        .target(name: "Setup", dependencies: [
            "Configuration", "Rules", "ProcessResolution", "Monitor", "NetfilterSystem",
        ]),
        .executableTarget(name: "nfowner", dependencies: [
            "Setup",
            "Monitor", "Rules", "NetfilterSystem", "ProcessResolution", "Export", "Configuration", "Accounting",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Traffic generator for the end-to-end tests and benchmarks (sends as a chosen uid/gid).
        .executableTarget(name: "nfowner-traffic", dependencies: [
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "BinaryParsingTests", dependencies: ["BinaryParsing"]),
        .testTarget(name: "NetlinkWireTests", dependencies: ["NetlinkWire"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "PacketParsingTests", dependencies: ["PacketParsing"]),
        .testTarget(name: "RulesTests", dependencies: ["Rules"]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration"]),
        .testTarget(name: "SetupTests", dependencies: ["Setup"]),
        .testTarget(name: "AccountingTests", dependencies: ["Accounting"]),
        .testTarget(name: "ProcessResolutionTests", dependencies: ["ProcessResolution"]),
        .testTarget(name: "ExportTests", dependencies: ["Export"]),
        .testTarget(name: "MonitorTests", dependencies: ["Monitor"]),
        .testTarget(name: "EndToEndTests", dependencies: ["nfowner", "nfowner-traffic"]),
    ]
)
