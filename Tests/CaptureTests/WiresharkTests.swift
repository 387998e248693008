import Capture
import Foundation
import Testing

/// A real reader reads what nfowner writes: Wireshark's tshark and capinfos (Debian packages
/// `tshark` and `wireshark-common`; scripts/install-dependencies.sh installs them).
@Suite(.enabled(if: Wireshark.tshark != nil && Wireshark.capinfos != nil,
                "tshark or capinfos is not installed: apt-get install tshark"))
struct WiresharkTests {
    @Test func tsharkShowsEveryComment() throws {
        let (bytes, packets) = sampleFile()
        let directory = try Wireshark.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }  // cleanup only; asserts come before
        let file = directory.appendingPathComponent("sample.pcapng")
        try Data(bytes).write(to: file)

        let tshark = try #require(Wireshark.tshark)
        let fields = try Wireshark.run(tshark, ["-r", file.path, "-T", "fields", "-E", "separator=|",
                                                "-e", "frame.comment", "-e", "ip.proto", "-e", "ipv6.nxt",
                                                "-e", "frame.interface_name"], in: directory)
        #expect(fields.status == 0, "\(fields.stderr)")
        #expect(Wireshark.complaints(fields.stderr).isEmpty, "\(fields.stderr)")
        let lines = fields.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == packets.count, "\(fields.stdout)")
        for (line, packet) in zip(lines, packets) {
            let columns = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard columns.count == 4 else {
                Issue.record("expected 4 columns: \(line)")
                continue
            }
            // tshark 4.0 prints the comment as it is in the file, quotes and backslashes included.
            #expect(columns[0] == (OwnerComment.text(for: packet.event.owner) ?? ""))
            let protocolNumber = packet.event.packet.protocolNumber
            #expect(columns[1] == (packet.payload[0] >> 4 == 4 ? "\(protocolNumber)" : ""))
            #expect(columns[2] == (packet.payload[0] >> 4 == 6 ? "\(protocolNumber)" : ""))
            #expect(columns[3] == "nflog:5 \(packet.event.direction.rawValue)")
        }
    }

    @Test func capinfosReadsTheFile() throws {
        let (bytes, packets) = sampleFile()
        let directory = try Wireshark.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }  // cleanup only; asserts come before
        let file = directory.appendingPathComponent("sample.pcapng")
        try Data(bytes).write(to: file)

        let capinfos = try #require(Wireshark.capinfos)
        let info = try Wireshark.run(capinfos, [file.path], in: directory)
        #expect(info.status == 0, "\(info.stderr)")
        #expect(Wireshark.complaints(info.stderr).isEmpty, "\(info.stderr)")
        let lines = info.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.contains { $0.hasPrefix("File type:") && $0.contains("pcapng") }, "\(info.stdout)")
        #expect(lines.contains { $0.hasPrefix("Number of packets:") && $0.hasSuffix(" \(packets.count)") }, "\(info.stdout)")
        #expect(lines.contains { $0.hasPrefix("Capture application:") && $0.hasSuffix("nfowner") }, "\(info.stdout)")
        #expect(lines.contains { $0.hasPrefix("Number of interfaces in file:") && $0.hasSuffix(" 2") }, "\(info.stdout)")
    }

    /// tshark 4.0 does not put the process block on the packet, but its file-format view
    /// dissects the blocks themselves: the process blocks and each packet's reference to one.
    /// Later versions renamed these fields (4.6 shows the process on the packet instead).
    @Test(.enabled(if: Wireshark.fileViewHasDarwinFields, "this tshark's file view has no pcapng.darwin.* fields (4.0 has)"))
    func tsharkFileViewShowsProcessBlocks() throws {
        let (bytes, _) = sampleFile()
        let directory = try Wireshark.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }  // cleanup only; asserts come before
        let file = directory.appendingPathComponent("sample.pcapng")
        try Data(bytes).write(to: file)

        let tshark = try #require(Wireshark.tshark)
        let fields = try Wireshark.run(tshark, ["-r", file.path, "-X", "read_format:MIME Files Format", "-T", "fields",
                                                "-E", "separator=|", "-e", "pcapng.darwin.process_id",
                                                "-e", "pcapng.darwin.process_name",
                                                "-e", "pcapng.options.option.data.packet.darwin.dpeb_id"], in: directory)
        #expect(fields.status == 0, "\(fields.stderr)")
        #expect(Wireshark.complaints(fields.stderr).isEmpty, "\(fields.stderr)")
        // The whole file is one "frame" in this view; its fields list every block's values.
        #expect(fields.stdout == "1234,99|curl,my \"tool\"|0,1,0\n")
    }

    /// The classic pcap writer's file, as tshark sees it.
    @Test func tsharkReadsClassicPcap() throws {
        let (_, packets) = sampleFile()
        var bytes: [UInt8] = []
        let writer = PcapWriter(snapLength: 65535)
        writer.appendFileHeader(to: &bytes)
        for packet in packets { writer.append(packet.event, payload: packet.payload, to: &bytes) }
        let directory = try Wireshark.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }  // cleanup only; asserts come before
        let file = directory.appendingPathComponent("sample.pcap")
        try Data(bytes).write(to: file)

        let tshark = try #require(Wireshark.tshark)
        let fields = try Wireshark.run(tshark, ["-r", file.path, "-T", "fields", "-e", "frame.len",
                                                "-e", "frame.time_epoch"], in: directory)
        #expect(fields.status == 0, "\(fields.stderr)")
        #expect(Wireshark.complaints(fields.stderr).isEmpty, "\(fields.stderr)")
        let lines = fields.stdout.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(lines.map { $0.first } == packets.map { "\($0.payload.count)" })
        #expect(lines.map { $0.last } == packets.map {
            let time = $0.event.time
            return "\(time.seconds)." + String(repeating: "0", count: 6 - "\(time.microseconds)".count) + "\(time.microseconds)000"
        })
    }
}

enum Wireshark {
    static let tshark = executable("tshark")
    static let capinfos = executable("capinfos")

    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":") + ["/usr/bin", "/usr/sbin"])
            .map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Whether `tshark -G fields` lists the file-format view's Darwin process fields.
    static let fileViewHasDarwinFields: Bool = {
        guard let tshark else { return false }
        do {
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }  // cleanup only
            let fields = try run(tshark, ["-G", "fields"], in: directory)
            return fields.stdout.contains("\tpcapng.darwin.process_id\t")
        } catch {
            return false
        }
    }()

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-capture-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a tool with its output in files (no pipe a chatty tool could fill and block on).
    static func run(_ executable: String, _ arguments: [String], in directory: URL) throws -> Result {
        let outURL = directory.appendingPathComponent("stdout"), errURL = directory.appendingPathComponent("stderr")
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Result(status: process.terminationStatus,
                      stdout: try String(contentsOf: outURL, encoding: .utf8),
                      stderr: try String(contentsOf: errURL, encoding: .utf8))
    }

    /// stderr lines that report a problem with the file. tshark run as root warns about that
    /// ("Running as user "root" and group "root". This could be dangerous."): not about the file.
    static func complaints(_ stderr: String) -> [Substring] {
        stderr.split(separator: "\n").filter { !$0.contains("Running as user") }
    }
}
