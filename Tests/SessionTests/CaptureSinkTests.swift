import Capture
import Foundation
import NetfilterSystem
import PacketModel
import PacketParsing
import Sinks
import Testing

/// The capture sink on files: rotation, filters, the packet limit and direct writes (no root needed).
@Suite struct CaptureSinkTests {
    /// A UDP/IPv4 datagram from 10.0.0.1:4000 to 10.0.0.2:53 with `size` payload bytes.
    static func datagram(size: Int, proto: UInt8 = 17) -> [UInt8] {
        let total = 20 + 8 + size
        var bytes: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0, 0, 64, proto, 0, 0,
                              10, 0, 0, 1, 10, 0, 0, 2]
        bytes += [0x0f, 0xa0, 0, 53, UInt8((8 + size) >> 8), UInt8((8 + size) & 0xff), 0, 0]
        bytes += [UInt8](repeating: 0xab, count: size)
        return bytes
    }

    static func event(_ payload: [UInt8], uid: UInt32 = 1000, unit: String? = nil) throws -> PacketEvent {
        let summary = try payload.withUnsafeBytes { bytes throws(PacketParseError) in try PacketParser.parse(bytes) }
        var metadata = PacketMetadata()
        metadata.family = 2
        metadata.hookNumber = 3
        metadata.time = EventTime(seconds: 1_700_000_000, microseconds: 5)
        metadata.capturedLength = payload.count
        return PacketEvent(metadata: metadata, packet: summary, owner: PacketOwner(uid: uid, gid: uid, unit: unit))
    }

    static func records(_ path: String) throws -> [CaptureRecord] {
        let (records, error) = CaptureFileReader.readAll([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(error == nil, "\(path): \(String(describing: error))")
        return records
    }

    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-sink-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }

    /// `packets` datagrams of `size` bytes, one batch each, into ring.pcapng rotated at
    /// `rotateBytes` over 3 files; the sink after `finish`.
    func writeRing(rotateBytes: Int, size: Int, packets: Int) throws -> (sink: CaptureSink, path: String, payload: [UInt8]) {
        let path = directory.appendingPathComponent("ring.pcapng").path
        let sink = CaptureSink(path: path, rotateBytes: rotateBytes, rotateCount: 3)
        try sink.start()
        let payload = Self.datagram(size: size)
        let event = try Self.event(payload)
        for _ in 0..<packets {
            payload.withUnsafeBytes { sink.consume(event, payload: $0) }
            try sink.flush()
        }
        sink.finish()
        return (sink, path, payload)
    }

    @Test func rotationKeepsAtMostCountFilesEachAWholeCapture() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let (sink, path, payload) = try writeRing(rotateBytes: 2000, size: 400, packets: 20)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["ring.pcapng", "ring.pcapng.1", "ring.pcapng.2"])
        #expect(sink.filesStarted > 3)
        for name in names {
            let records = try Self.records(directory.appendingPathComponent(name).path)
            #expect(!records.isEmpty || name == "ring.pcapng")
            for record in records {
                #expect(record.data == payload)
                #expect(record.comment?.hasPrefix("uid=1000 gid=1000") == true)
            }
        }
        #expect(try Self.records(path + ".1").count >= 3, "each rotated file holds the batches up to 2000 bytes")
    }

    @Test func filterAndLimitDecideWhatIsWritten() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("filtered.pcap").path
        let sink = CaptureSink(path: path, format: .pcap, filter: .init(protocols: [17], units: ["web.service"]), limit: 2)
        var limitReached = 0
        sink.onLimit = { limitReached += 1 }
        try sink.start()
        let udp = Self.datagram(size: 10), other = Self.datagram(size: 10, proto: 253)
        let inUnit = try Self.event(udp, unit: "web.service")
        let elsewhere = try Self.event(udp, unit: "db.service")
        let otherProto = try Self.event(other, unit: "web.service")
        for _ in 0..<3 {
            udp.withUnsafeBytes { sink.consume(elsewhere, payload: $0) }
            other.withUnsafeBytes { sink.consume(otherProto, payload: $0) }
            udp.withUnsafeBytes { sink.consume(inUnit, payload: $0) }
            try sink.flush()
        }
        sink.finish()
        #expect(sink.packetsWritten == 2)
        #expect(limitReached == 1)
        let records = try Self.records(path)
        #expect(records.count == 2)
        #expect(records.allSatisfy { $0.data == udp })
    }

    /// Whether the temporary directory's file system takes O_DIRECT (ext4, xfs, btrfs, and tmpfs
    /// since Linux 6.6 do).
    static let directWritesWork: Bool = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-odirect-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        return (try? DirectOutputFile(path: path)) != nil
    }()

    /// Direct writes: the file holds every packet consumed before each tick, whole (what SIGKILL
    /// would leave: the length a multiple of 4 KiB, the last write padded), across 1 MiB chunks;
    /// after `finish` it ends right after its last packet, and the buffered path writes the
    /// same packets.
    @Test(.enabled(if: Self.directWritesWork, "the temporary directory's file system does not take O_DIRECT"))
    func directWritesLeaveAWholeFileAfterEveryTick() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("direct.pcapng").path
        let sink = CaptureSink(path: path)
        try sink.start()
        #expect(sink.writesDirectly)
        let deadline = Date().addingTimeInterval(5)
        while (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0) == 0, Date() < deadline {
            usleep(10_000)  // the writer thread writes the header
        }
        #expect(try Self.records(path).isEmpty, "a valid file from the start")
        var written = 0
        for round in 0..<6 {
            for size in 0..<(round == 3 ? 3000 : 40) {
                let payload = Self.datagram(size: size % 700)
                let event = try Self.event(payload, uid: UInt32(1000 + size % 3))
                payload.withUnsafeBytes { sink.consume(event, payload: $0) }
                written += 1
                if size % 50 == 0 { try sink.flush() }
            }
            try sink.flush()
            sink.tick()
            let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            #expect(size % 4096 == 0, "tick \(round): \(size) bytes")
            let deadline = Date().addingTimeInterval(5)
            var records = try Self.records(path)
            while records.count < written, Date() < deadline {  // the writer thread is still writing
                usleep(10_000)
                records = try Self.records(path)
            }
            #expect(records.count == written, "tick \(round)")
        }
        let sizeBeforeFinish = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        #expect(written > 3000 && sizeBeforeFinish > 1 << 20, "the run crossed a chunk")
        let last = Self.datagram(size: 5)
        let lastEvent = try Self.event(last)
        last.withUnsafeBytes { sink.consume(lastEvent, payload: $0) }
        sink.finish()
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let records = try Self.records(path)
        #expect(records.count == written + 1)
        #expect(records.last?.data == last)
        // The last block is the last packet's: its length is the file's last four bytes.
        let tail = Int(bytes[bytes.count - 4]) | Int(bytes[bytes.count - 3]) << 8
        #expect(bytes[bytes.count - tail] == 6, "an Enhanced Packet Block ends the file")

        let buffered = directory.appendingPathComponent("buffered.pcapng").path
        let other = CaptureSink(path: buffered, directWrites: false)
        try other.start()
        #expect(!other.writesDirectly)
        for record in records {
            let event = try Self.event(record.data)
            record.data.withUnsafeBytes { other.consume(event, payload: $0) }
        }
        other.finish()
        #expect(try Self.records(buffered).map(\.data) == records.map(\.data))
    }

    /// Rotation with direct writes: every file whole, the first ones at least the rotation size.
    @Test(.enabled(if: Self.directWritesWork, "the temporary directory's file system does not take O_DIRECT"))
    func directWritesRotate() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let (sink, _, payload) = try writeRing(rotateBytes: 300_000, size: 600, packets: 1500)
        #expect(sink.filesStarted >= 3)
        for name in ["ring.pcapng", "ring.pcapng.1", "ring.pcapng.2"] {
            let records = try Self.records(directory.appendingPathComponent(name).path)
            #expect(records.allSatisfy { $0.data == payload })
            let size = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path)[.size] as? Int ?? 0
            if name != "ring.pcapng" { #expect(size >= 300_000, "\(name): \(size) bytes") }
        }
    }
}
