import Foundation
import TestSupport

/// `nfowner run` in the background (inside a namespace of the test), with its config file, its
/// logs in a file, and its metrics endpoint scraped with curl inside the same namespace.
final class RunningDaemon {
    let process = Process()
    let directory: URL
    let namespace: TestNamespace
    let metricsPort: Int
    var configURL: URL { directory.appendingPathComponent("nfowner.toml") }
    var databasePath: String { directory.appendingPathComponent("history.db").path }
    var logURL: URL { directory.appendingPathComponent("daemon.log") }

    /// Writes `config` (with `@DB@` and `@PORT@` replaced by this daemon's) and starts the daemon,
    /// returning once it accounts (its "…; stop with SIGTERM" line).
    init(config: String, in namespace: TestNamespace) throws {
        self.namespace = namespace
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        metricsPort = Int.random(in: 20_000...29_999)
        try writeConfig(config)
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Harness.nfowner)
        process.arguments = ["run", "--config", configURL.path, "--netns", namespace.name]
        process.standardOutput = try FileHandle(forWritingTo: logURL)
        process.standardError = try FileHandle(forWritingTo: logURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try waitForLog("; stop with SIGTERM", timeout: 15)
    }

    func writeConfig(_ config: String) throws {
        let text = config.replacingOccurrences(of: "@DB@", with: databasePath)
            .replacingOccurrences(of: "@PORT@", with: String(metricsPort))
        try text.write(to: configURL, atomically: true, encoding: .utf8)
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func waitForLog(_ text: String, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.contains(text) { return }
            if !process.isRunning { throw HarnessError("nfowner run exited early: \(log)") }
            usleep(20_000)
        }
        throw HarnessError("nfowner run did not log \"\(text)\" within \(timeout) s: \(log)")
    }

    /// The endpoint's text, fetched by curl inside the namespace.
    func scrape() throws -> String {
        try namespace.exec(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:\(metricsPort)/metrics"])
            .check("scrape /metrics").stdout
    }

    /// Samples of the text format by their `name{labels}`.
    static func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            result[String(line[..<space])] = value
        }
        return result
    }

    /// Sum of `metric` over the series whose labels include every `label="value"` given.
    static func sum(_ samples: [String: Double], _ metric: String, _ labels: [String: String]) -> Double {
        samples.filter { key, _ in
            key.hasPrefix(metric + "{") && labels.allSatisfy { key.contains("\($0.key)=\"\($0.value)\"") }
        }.values.reduce(0, +)
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Stops the daemon with `signal` (by PID) and waits (SIGKILL after 15 s); the exit status.
    @discardableResult
    func stop(with signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning {
            kill(process.processIdentifier, signal)
            let deadline = Date().addingTimeInterval(15)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Named nft counters in a namespace: the reference a test compares nfowner's figures with.
/// Kept in the namespace nfowner watches, so both count the same packets: counters at the far
/// end would also differ by whatever the link dropped on the way (under load, whole 64 KiB TSO
/// segments that TCP then sent again).
struct ReferenceCounters {
    let namespace: TestNamespace
    static let table = "test_reference"

    /// Counts, at the input and output hooks, every IPv4 packet from and to `peer` by
    /// protocol: counters in_tcp, in_udp, in_icmp (from the peer), out_tcp, out_udp, out_icmp.
    init(in namespace: TestNamespace, peer: String) throws {
        self.namespace = namespace
        var script = "table inet \(Self.table) {\n"
        for direction in ["in", "out"] { for proto in ["tcp", "udp", "icmp"] { script += "counter \(direction)_\(proto) {}\n" } }
        script += "chain input { type filter hook input priority 0; policy accept;\n"
        for proto in ["tcp", "udp", "icmp"] { script += "ip saddr \(peer) meta l4proto \(proto) counter name in_\(proto)\n" }
        script += "}\nchain output { type filter hook output priority 0; policy accept;\n"
        for proto in ["tcp", "udp", "icmp"] { script += "ip daddr \(peer) meta l4proto \(proto) counter name out_\(proto)\n" }
        script += "}\n}\n"
        try namespace.nft(["-f", "-"], input: script).check("install reference counters")
    }

    /// Bytes per counter name.
    func bytes() throws -> [String: Int] {
        let text = try namespace.nft(["-j", "list", "counters", "table", "inet", Self.table]).check("list counters").stdout
        guard let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let items = json["nftables"] as? [[String: Any]] else { throw HarnessError("nft -j: \(text)") }
        var result: [String: Int] = [:]
        for item in items {
            guard let counter = item["counter"] as? [String: Any], let name = counter["name"] as? String else { continue }
            result[name] = counter["bytes"] as? Int
        }
        return result
    }
}
