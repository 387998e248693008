import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// `nfowner capture` against the real kernel: traffic from two unprivileged uids inside a
    /// namespace, the file checked with Wireshark's tools (tshark, capinfos) and with
    /// `nfowner capture --read`.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    final class CaptureEndToEndTests {
        let namespace: TestNamespace
        let directory: URL
        /// The second sender: an unprivileged uid other than nobody's.
        let otherUID = 2

        init() throws {
            namespace = try TestNamespace("cap")
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-capture-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        deinit {
            namespace.close()
            try? FileManager.default.removeItem(at: directory)
        }

        /// Traffic as uid/gid `otherUID`.
        @discardableResult
        private func trafficAsOther(_ arguments: [String]) throws -> [String: String] {
            try namespace.traffic(arguments + ["--uid", String(otherUID), "--gid", String(otherUID)], asUnprivileged: false)
        }

        private static func tool(_ arguments: [String]) throws -> Harness.Result {
            try Harness.run("/usr/bin/env", arguments)
        }

        @Test func packetsFromTwoUsersCarryTheirOwnersInTheFile() throws {
            let file = directory.appendingPathComponent("two-users.pcapng").path
            let capture = try RunningCapture(["-w", file, "--netns", namespace.name], directory: directory)
            let udpNobody = try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9201", "--count", "3", "--size", "64"])
            let udpOther = try trafficAsOther(["udp", "--to", "127.0.0.1", "--port", "9202", "--count", "2", "--size", "100"])
            let pingNobody = try namespace.traffic(["ping", "--to", "127.0.0.1", "--count", "1"])
            let pingOther = try trafficAsOther(["ping", "--to", "127.0.0.1", "--count", "1"])
            let listener = try namespace.tcpListener(port: 9203)
            defer { listener.stop() }
            let tcpOther = try trafficAsOther(["tcp", "--to", "127.0.0.1", "--port", "9203", "--bytes", "300"])
            #expect(udpNobody["sent"] == "3" && udpOther["sent"] == "2" && tcpOther["sent"] == "1")
            #expect(pingNobody["sent"] == "1" && pingOther["sent"] == "1")
            usleep(300_000)
            let summary = capture.stop()
            #expect(capture.status == 0, "capture: \(capture.stderr)")
            #expect(Int(summary["written"] ?? "") ?? 0 >= 3 + 2 + 2 + 3)

            let tshark = try Self.tool(["tshark", "-r", file, "-T", "fields", "-E", "separator=|", "-e", "frame.comment",
                                        "-e", "ip.proto", "-e", "udp.dstport", "-e", "tcp.dstport", "-e", "icmp.type"])
            #expect(tshark.status == 0, "tshark: \(tshark.stderr)")
            let table: [[String]] = tshark.stdout.split(separator: "\n").map {
                $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            }
            func rows(_ column: Int, _ value: String) -> [[String]] { table.filter { $0.count == 5 && $0[column] == value } }
            // ICMP port-unreachable errors quote the datagram (ip.proto "1,17"): only the datagrams themselves.
            let nobodyUDP = rows(2, "9201").filter { $0[1] == "17" }, otherUDP = rows(2, "9202").filter { $0[1] == "17" }
            #expect(nobodyUDP.count == 3)
            #expect(otherUDP.count == 2)
            for row in nobodyUDP { #expect(row[0].hasPrefix("uid=65534(nobody) gid=65534"), "\(row)") }
            for row in otherUDP { #expect(row[0].hasPrefix("uid=\(otherUID)("), "\(row)") }
            // The client's TCP packets: socket-owned ones name uid 2; those after close (time-wait) have no socket.
            let otherTCP = rows(3, "9203").filter { $0[0].contains("uid=") }
            #expect(otherTCP.count >= 2, "SYN and data at least")
            for row in otherTCP { #expect(row[0].hasPrefix("uid=\(otherUID)("), "\(row)") }
            let echoRequests = rows(4, "8").filter { $0[1] == "1" }
            #expect(echoRequests.count == 2)
            let requestOwners: Set<String> = Set(echoRequests.map { row in String(row[0].prefix { $0 != "(" && $0 != " " }) })
            #expect(requestOwners == ["uid=65534", "uid=\(otherUID)"])
            for row in table where row.count == 5 && row[0].contains("uid=") {
                #expect(row[0].hasPrefix("uid=65534(") || row[0].hasPrefix("uid=\(otherUID)(") || row[0].hasPrefix("uid=0("),
                        "\(row)")
            }

            let capinfos = try Self.tool(["capinfos", file])
            #expect(capinfos.status == 0, "capinfos: \(capinfos.stderr)")
            #expect(!capinfos.stderr.contains("rror"))

            let otherUser = try #require(Self.tool(["id", "-nu", String(otherUID)]).stdout.split(separator: "\n").first.map(String.init))
            let conversations = try Harness.run(Harness.nfowner, ["capture", "--read", file, "--conversations"])
            #expect(conversations.status == 0)
            let lines = conversations.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(lines.first?.first == "PROGRAM")
            // A sender is named by its process when attribution found it (pid), else by its user.
            func row(_ sent: [String: String], user: String, remote: String, proto: String) -> [String]? {
                let matching = lines.filter { $0.count == 8 && $0[2] == remote && $0[3] == proto }
                    .filter { ($0[0] == "nfowner-traffic" && $0[1] == sent["pid"]) || ($0[0] == "(\(user))" && $0[1] == "-") }
                #expect(matching.count == 1, "one row for \(user) \(remote) \(proto) in\n\(conversations.stdout)")
                return matching.first
            }
            // IP bytes: 20 (IPv4) + 8 (UDP) + payload per datagram.
            if let nobody = row(udpNobody, user: "nobody", remote: "127.0.0.1:9201", proto: "udp") {
                #expect(nobody[4] == "3" && nobody[5] == "\(3 * (20 + 8 + 64))")
            }
            if let other = row(udpOther, user: otherUser, remote: "127.0.0.1:9202", proto: "udp") {
                #expect(other[4] == "2" && other[5] == "\(2 * (20 + 8 + 100))")
            }
            if let ping = row(pingNobody, user: "nobody", remote: "127.0.0.1", proto: "icmp") {
                #expect(ping[4] == "1" && ping[5] == "84")
            }
        }

        @Test func sigkillLeavesAFileReadableUpToItsLastBlock() throws {
            let file = directory.appendingPathComponent("killed.pcapng").path
            let capture = try RunningCapture(["-w", file, "--netns", namespace.name, "--no-processes"], directory: directory)
            // Direct writes where the temporary directory's file system takes O_DIRECT (CaptureSinkTests
            // checks them on their own); the note says which way the file is written.
            #expect(capture.stderr.contains("(direct I/O)") || capture.stderr.contains("does not take direct I/O"),
                    "\(capture.stderr)")
            for round in 0..<5 {
                try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", String(9210 + round), "--count", "20", "--size", "200"])
            }
            // The packets reach the file within the capture's tick (0.5 s) after the kernel's flush
            // timeout (0.1 s): a quiet capture's last chunk is written early, padded to 4 KiB.
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline {
                let sofar = try Harness.run(Harness.nfowner, ["capture", "--read", file, "--format", "json"])
                if sofar.stdout.split(separator: "\n").filter({ $0.contains("\"proto\":\"udp\"") }).count >= 100 { break }
                usleep(50_000)
            }
            capture.stop(with: SIGKILL)
            let tshark = try Self.tool(["tshark", "-r", file, "-T", "fields", "-e", "ip.proto", "-e", "udp.dstport"])
            #expect(tshark.status == 0, "tshark: \(tshark.stderr)")
            #expect(!tshark.stderr.contains("appears to have been cut short"))
            #expect(tshark.stdout.split(separator: "\n").filter { $0.hasPrefix("17\t921") }.count == 100)
            let read = try Harness.run(Harness.nfowner, ["capture", "--read", file, "--format", "json"])
            #expect(read.status == 0)
            #expect(!read.stderr.contains("stops being readable"))
            let records = read.stdout.split(separator: "\n").count
            #expect(records == tshark.stdout.split(separator: "\n").count)

            // A file cut mid-block (as by a full disk): the reader prints what it could read and says where it stopped.
            // Cut inside the last packet's block (the file may end with padding after it).
            var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            let blocks = Self.blockStarts([UInt8](bytes))
            let lastPacket = try #require(blocks.last { $0.type == 6 })
            bytes.removeLast(bytes.count - (lastPacket.offset + lastPacket.length - 10))
            let cut = directory.appendingPathComponent("cut.pcapng")
            try bytes.write(to: cut)
            let partial = try Harness.run(Harness.nfowner, ["capture", "--read", cut.path, "--format", "json"])
            #expect(partial.status == 0)
            #expect(partial.stdout.split(separator: "\n").count == records - 1)
            #expect(partial.stderr.contains("stops being readable after \(records - 1) record(s)"), "\(partial.stderr)")
        }

        /// The blocks of a little-endian pcapng file: type, offset and length of each.
        static func blockStarts(_ bytes: [UInt8]) -> [(type: UInt32, offset: Int, length: Int)] {
            func u32(_ at: Int) -> UInt32 {
                UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
            }
            var blocks: [(type: UInt32, offset: Int, length: Int)] = []
            var offset = 0
            while offset + 12 <= bytes.count {
                let length = Int(u32(offset + 4))
                guard length >= 12, offset + length <= bytes.count else { break }
                blocks.append((u32(offset), offset, length))
                offset += length
            }
            return blocks
        }

        @Test func standardOutputCarriesAValidFileAndCountStopsTheCapture() throws {
            let file = directory.appendingPathComponent("stdout.pcapng")
            FileManager.default.createFile(atPath: file.path, contents: nil)
            let capture = try RunningCapture(["-w", "-", "--netns", namespace.name, "--count", "4", "--proto", "udp"],
                                             directory: directory, stdout: file)
            try namespace.traffic(["ping", "--to", "127.0.0.1", "--count", "2"])
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9220", "--count", "6", "--size", "10"])
            capture.waitForExit(timeout: 10)
            #expect(capture.status == 0, "capture: \(capture.stderr)")
            let tshark = try Self.tool(["tshark", "-r", file.path, "-T", "fields", "-e", "ip.proto", "-e", "frame.comment"])
            #expect(tshark.status == 0, "tshark: \(tshark.stderr)")
            let rows = tshark.stdout.split(separator: "\n")
            #expect(rows.count == 4, "--count 4 of UDP only:\n\(tshark.stdout)")
            for row in rows { #expect(row.hasPrefix("17\tuid=65534"), "\(row)") }
            let capinfos = try Self.tool(["capinfos", file.path])
            #expect(capinfos.status == 0, "capinfos: \(capinfos.stderr)")
        }

        @Test func durationEndsAClassicPcapCapture() throws {
            let file = directory.appendingPathComponent("timed.pcap").path
            let started = Date()
            let capture = try RunningCapture(["-w", file, "--netns", namespace.name, "--duration", "1", "--format", "pcap"],
                                             directory: directory)
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9230", "--count", "2", "--size", "32"])
            capture.waitForExit(timeout: 10)
            #expect(capture.status == 0, "capture: \(capture.stderr)")
            let elapsed = Date().timeIntervalSince(started)
            #expect(elapsed >= 1 && elapsed < 8, "--duration 1 ended after \(elapsed) s")
            let tshark = try Self.tool(["tshark", "-r", file, "-T", "fields", "-e", "ip.proto", "-e", "udp.dstport"])
            #expect(tshark.status == 0, "tshark: \(tshark.stderr)")
            #expect(tshark.stdout.split(separator: "\n").filter { $0 == "17\t9230" }.count == 2)
            let read = try Harness.run(Harness.nfowner, ["capture", "--read", file])
            #expect(read.status == 0)
            #expect(read.stdout.split(separator: "\n").filter { $0.contains(":9230") }.count == 2, "\(read.stdout)")
        }
    }
}

/// `nfowner capture` running in the background, its stderr (and stdout) in files.
final class RunningCapture {
    let process = Process()
    let stderrURL: URL

    /// Starts the capture and waits until it reads its group (its "capturing NFLOG group" note).
    init(_ arguments: [String], directory: URL, stdout: URL? = nil) throws {
        stderrURL = directory.appendingPathComponent("capture-\(UUID().uuidString).err")
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Harness.nfowner)
        process.arguments = ["capture"] + arguments
        process.standardOutput = try stdout.map { try FileHandle(forWritingTo: $0) } ?? FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if stderr.contains("capturing NFLOG group") { return }
            if !process.isRunning { throw HarnessError("capture exited early: \(stderr)") }
            usleep(20_000)
        }
        stop(with: SIGKILL)
        throw HarnessError("capture did not start within 15 s: \(stderr)")
    }

    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
    var status: Int32 { process.isRunning ? -1 : process.terminationStatus }

    func waitForExit(timeout: TimeInterval) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { stop(with: SIGKILL) }
    }

    /// Stops the capture with `signal` (by PID; SIGKILL if it still runs 10 s later) and returns
    /// its summary line's keys.
    @discardableResult
    func stop(with signal: Int32 = SIGINT) -> [String: String] {
        if process.isRunning {
            kill(process.processIdentifier, signal)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        let summary = stderr.split(separator: "\n").last { $0.hasPrefix("received=") }.map(String.init) ?? ""
        return Harness.keyValues(summary)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
