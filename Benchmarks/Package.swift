// swift-tools-version: 6.1
// Micro-benchmarks of nfowner's per-packet hot paths (ordo-one/benchmark), with malloc counts.
//
// A separate package so that the main package's build and CI never compile the benchmark
// framework. It uses the main package's library products through a path dependency.
// Run: cd Benchmarks && swift package benchmark   (see README.md)
import PackageDescription

let package = Package(
    name: "nfowner-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        // The "name:" pins the identity: a path dependency is otherwise named after its folder,
        // which differs between clones and worktrees.
        .package(name: "nfowner", path: ".."),
        // The malloc interposer trait is what makes the malloc counters real on Swift 6.3.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NetlinkWire", package: "nfowner"),
                .product(name: "PacketParsing", package: "nfowner"),
                .product(name: "PacketModel", package: "nfowner"),
                .product(name: "Export", package: "nfowner"),
                .product(name: "PacketSources", package: "nfowner"),
                .product(name: "Attribution", package: "nfowner"),
                .product(name: "Session", package: "nfowner"),
                .product(name: "Sinks", package: "nfowner"),
                .product(name: "Rules", package: "nfowner"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
