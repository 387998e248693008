import Foundation
import NetlinkWire
import PacketModel
import Testing

/// `NflogPacketView.eventFields(ofValidatedMessage:)` (one walk, for events) must give exactly
/// what validating and then reading the whole record gives.
@Suite struct ValidatedRecordTests {
    static func check(_ view: NflogPacketView, _ context: String) {
        let record = view.record
        let fields = NflogPacketView.eventFields(ofValidatedMessage: view.message)
        #expect(fields != nil, "\(context)")
        guard let fields else { return }
        #expect(fields.timestamp == record.timestamp, "\(context)")
        #expect(fields.sequence == record.sequence, "\(context)")
        #expect(fields.inputInterface == record.inputInterface, "\(context)")
        #expect(fields.outputInterface == record.outputInterface, "\(context)")
        #expect(fields.mark == record.mark, "\(context)")
        #expect(view.prefixBytes.flatMap(LogPrefix.init(bytes:)) == record.rawPrefix, "\(context)")
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Every packet message of every recorded kernel batch.
    @Test func recordedBatchesReadTheSame() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).filter { $0.hasSuffix(".bin") }
        var compared = 0
        for name in names {
            let batch = try Data(contentsOf: Self.fixtures.appendingPathComponent(name))
            batch.withUnsafeBytes { bytes in
                NflogBatchDecoder.forEachPacket(in: bytes, packet: { view in
                    Self.check(view, name)
                    compared += 1
                }, other: { _ in })
            }
        }
        #expect(compared >= 8)
    }

    /// Random records with every optional attribute present or not, encoded then read both ways.
    @Test func randomRecordsReadTheSame() {
        var rng = SeededGenerator(seed: 0x5EED_0F_0E)
        for iteration in 0..<2000 {
            let (record, payload) = FuzzTests.randomRecord(&rng)
            let message = NflogPacketEncoder.encode(record, payload: payload)
            message.withUnsafeBytes { bytes in
                NflogBatchDecoder.forEachPacket(in: bytes, packet: { view in
                    Self.check(view, "iteration \(iteration)")
                }, other: { _ in })
            }
        }
    }

    /// Random bytes changed in encoded records: whatever still validates (odd lengths, unknown
    /// types, attributes cut short) reads the same both ways.
    @Test func mutatedRecordsThatValidateReadTheSame() {
        var rng = SeededGenerator(seed: 0xB17_F11E)
        var compared = 0
        for iteration in 0..<3000 {
            let (record, payload) = FuzzTests.randomRecord(&rng)
            var message = NflogPacketEncoder.encode(record, payload: payload)
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                // Past the nlmsghdr: a changed length there only makes the batch decoder stop.
                let index = Int.random(in: 16..<message.count, using: &rng)
                message[index] = UInt8.random(in: 0...255, using: &rng)
            }
            message.withUnsafeBytes { bytes in
                NflogBatchDecoder.forEachPacket(in: bytes, packet: { view in
                    Self.check(view, "iteration \(iteration)")
                    compared += 1
                }, other: { _ in })
            }
        }
        #expect(compared >= 300)
    }

    @Test func aMessageWithoutNfgenmsgHasNoFields() {
        let header: [UInt8] = [20, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        header.withUnsafeBytes { #expect(NflogPacketView.eventFields(ofValidatedMessage: $0) == nil) }
    }
}
