import Capture
import Foundation
import PacketModel
import PacketParsing
import Sinks
import Testing

/// The capture sink on files: rotation, filters and the packet limit (no root needed).
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

    @Test func rotationKeepsAtMostCountFilesEachAWholeCapture() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("ring.pcapng").path
        let sink = CaptureSink(path: path, rotateBytes: 2000, rotateCount: 3)
        try sink.start()
        let payload = Self.datagram(size: 400)
        let event = try Self.event(payload)
        for _ in 0..<20 {
            payload.withUnsafeBytes { sink.consume(event, payload: $0) }
            try sink.flush()
        }
        sink.finish()
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
}
