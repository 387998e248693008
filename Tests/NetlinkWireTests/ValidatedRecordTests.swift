import Foundation
import NetlinkWire
import Testing

/// `NflogPacketView.record(ofValidatedMessage:)` (one walk, for events) must give exactly the
/// record that validating and then reading gives.
@Suite struct ValidatedRecordTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Every packet message of every recorded kernel batch.
    @Test func recordedBatchesReadTheSame() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).filter { $0.hasSuffix(".bin") }
        var compared = 0
        for name in names {
            let batch = try Data(contentsOf: Self.fixtures.appendingPathComponent(name))
            batch.withUnsafeBytes { bytes in
                NflogBatchDecoder.forEachPacket(in: bytes, packet: { view in
                    #expect(NflogPacketView.record(ofValidatedMessage: view.message) == view.record, "\(name)")
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
                    #expect(NflogPacketView.record(ofValidatedMessage: view.message) == view.record,
                            "iteration \(iteration)")
                }, other: { _ in })
            }
        }
    }

    @Test func aMessageWithoutNfgenmsgHasNoRecord() {
        let header: [UInt8] = [20, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        header.withUnsafeBytes { #expect(NflogPacketView.record(ofValidatedMessage: $0) == nil) }
    }
}
