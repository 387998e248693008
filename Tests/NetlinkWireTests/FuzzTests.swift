import Testing
import NetlinkWire

@Suite("Fuzz and round trip")
struct FuzzTests {
    static func randomRecord(_ rng: inout SeededGenerator) -> (NflogRecord, [UInt8]) {
        func maybe<T>(_ make: () -> T) -> T? { Bool.random(using: &rng) ? make() : nil }
        var record = NflogRecord()
        record.group = .random(in: 0...UInt16.max, using: &rng)
        record.family = [2, 10, 7, 5].randomElement(using: &rng) ?? 2
        record.hardwareProtocol = .random(in: 0...UInt16.max, using: &rng)
        record.hook = .random(in: 0...4, using: &rng)
        record.mark = maybe { .random(in: 1...UInt32.max, using: &rng) }
        record.uid = maybe { .random(in: 0...UInt32.max, using: &rng) }
        record.gid = maybe { .random(in: 0...UInt32.max, using: &rng) }
        record.sequence = maybe { .random(in: 0...UInt32.max, using: &rng) }
        record.globalSequence = maybe { .random(in: 0...UInt32.max, using: &rng) }
        record.timestamp = maybe {
            NflogTimestamp(seconds: .random(in: 0...UInt64.max, using: &rng),
                           microseconds: .random(in: 0..<1_000_000, using: &rng))
        }
        record.inputInterface = maybe { .random(in: 0...UInt32.max, using: &rng) }
        record.outputInterface = maybe { .random(in: 0...UInt32.max, using: &rng) }
        record.physicalInputInterface = maybe { .random(in: 0...UInt32.max, using: &rng) }
        record.physicalOutputInterface = maybe { .random(in: 0...UInt32.max, using: &rng) }
        record.hardwareAddress = maybe {
            let length = Int.random(in: 0...8, using: &rng)
            let bits = length == 0 ? 0 : UInt64.random(in: 0...UInt64.max, using: &rng) << UInt64(64 - 8 * length)
            return HardwareAddress(bits: bits, length: length)
        }
        record.hardwareType = maybe { .random(in: 0...UInt16.max, using: &rng) }
        record.hardwareHeaderLength = maybe { .random(in: 0...Int(UInt16.max), using: &rng) }
        record.prefix = maybe {
            let count = Int.random(in: 1...64, using: &rng)
            let scalars = (0..<count).map { _ in
                ["a", "Z", "-", " ", "é", "名", "🦊"].randomElement(using: &rng) ?? "a"
            }
            return scalars.joined()
        }
        let payload = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        record.capturedLength = payload.count
        return (record, payload)
    }

    @Test func encodeDecodeRoundTrip() {
        var rng = SeededGenerator(seed: 0x6E66_6F77)
        for _ in 0..<2_000 {
            let (record, payload) = Self.randomRecord(&rng)
            let decoded = decodeAll(NflogPacketEncoder.encode(record, payload: payload)).items
            #expect(decoded == [.packet(record, payload: payload)])
        }
    }

    @Test func batchRoundTrip() {
        var rng = SeededGenerator(seed: 42)
        let packets = (0..<20).map { _ in Self.randomRecord(&rng) }
        let items = decodeAll(NflogPacketEncoder.encodeBatch(packets.map { ($0.0, $0.1) }, group: 9)).items
        #expect(items == packets.map { DecodedItem.packet($0.0, payload: $0.1) } + [.done])
    }

    /// Random mutations of real and synthetic batches: never a trap, never a view outside the
    /// buffer, and every packet that does decode survives decode → encode → decode unchanged.
    @Test func seededMutationFuzz() throws {
        var rng = SeededGenerator(seed: 0xF022)
        var corpus = try fixtureNames.map(loadFixture)
        for _ in 0..<8 {
            let packets = (0..<3).map { _ in Self.randomRecord(&rng) }
            corpus.append(NflogPacketEncoder.encodeBatch(packets.map { ($0.0, $0.1) }))
        }
        var decodedPackets = 0
        var malformed = 0
        for iteration in 0..<120_000 {
            var bytes = corpus[iteration % corpus.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                mutate(&bytes, &rng)
            }
            let (items, _, inBounds) = decodeAll(bytes)
            if !inBounds {
                Issue.record("payload view out of bounds at iteration \(iteration)")
                return
            }
            for item in items {
                switch item {
                case .packet(let record, let payload):
                    decodedPackets += 1
                    // Cheap enough to do for a sample; the property is what matters.
                    if decodedPackets % 16 == 0 {
                        let again = decodeAll(NflogPacketEncoder.encode(record, payload: payload)).items
                        #expect(again == [.packet(record, payload: payload)], "iteration \(iteration)")
                    }
                case .malformed: malformed += 1
                default: break
                }
            }
        }
        // The mutations must exercise both outcomes, or the fuzzer is not doing its job.
        #expect(decodedPackets > 10_000)
        #expect(malformed > 10_000)
    }

    /// The per-packet walk (plain loads, errors as numbers) against a walk written plainly
    /// from the format: on mutated messages both accept the same ones, and refuse the others
    /// with the same error at the same attribute.
    @Test func thePacketWalkRefusesExactlyWhatAPlainWalkRefuses() {
        var rng = SeededGenerator(seed: 0x7A1C)
        var accepted = 0
        var refused: [NetlinkWireError.Code: Int] = [:]
        for iteration in 0..<60_000 {
            let (record, payload) = Self.randomRecord(&rng)
            var message = NflogPacketEncoder.encode(record, payload: payload)
            for _ in 0..<Int.random(in: 0...3, using: &rng) { mutate(&message, &rng) }
            if Int.random(in: 0..<50, using: &rng) == 0 {  // about the fixed part's end
                message = Array(message.prefix(Int.random(in: 0...24, using: &rng)))
            }
            let offset = Int.random(in: 0...4096, using: &rng)
            let expected = Self.plainRefusal(message)
            let got: (NetlinkWireError.Code, Int)? = message.withUnsafeBytes { bytes -> (NetlinkWireError.Code, Int)? in
                do throws(NetlinkWireError) {
                    _ = try NflogPacketView(message: bytes, offset: offset)
                    return nil
                } catch {
                    return (error.code, error.offset - offset)
                }
            }
            #expect(got?.0 == expected?.0 && got?.1 == expected?.1,
                    "iteration \(iteration): \(String(describing: got)) against \(String(describing: expected))")
            if let expected { refused[expected.0, default: 0] += 1 } else { accepted += 1 }
        }
        #expect(accepted > 10_000)
        #expect(refused[.invalidAttributeLength, default: 0] > 1_000)
        #expect(refused[.invalidAttributeValue, default: 0] > 500)
        #expect(refused[.truncatedMessage, default: 0] > 200)
    }

    /// NFULNL_MSG_PACKET's rules, read straight from the format: nfgenmsg after the 16-byte
    /// header, then attributes (nla_len ≥ 4 and within the message, each at a 4-byte boundary),
    /// and the fixed size of every known fixed-size attribute. The refusal's code and its
    /// position in the message, nil when the message is valid.
    static func plainRefusal(_ message: [UInt8]) -> (NetlinkWireError.Code, Int)? {
        guard message.count >= 20 else { return (.truncatedMessage, 0) }
        let fixedSizes: [UInt16: Int] = [1: 4, 2: 4, 3: 16, 4: 4, 5: 4, 6: 4, 7: 4, 8: 12,
                                         11: 4, 12: 4, 13: 4, 14: 4, 15: 2, 17: 2]
        var position = 20
        while message.count - position >= 4 {
            let length = Int(message[position]) | Int(message[position + 1]) << 8
            let type = (UInt16(message[position + 2]) | UInt16(message[position + 3]) << 8) & 0x3FFF
            guard length >= 4, length <= message.count - position else { return (.invalidAttributeLength, position) }
            if let size = fixedSizes[type], size != length - 4 { return (.invalidAttributeValue, position) }
            position += (length + 3) & ~3
        }
        return nil
    }

    func mutate(_ bytes: inout [UInt8], _ rng: inout SeededGenerator) {
        guard !bytes.isEmpty else { bytes = [UInt8.random(in: 0...255, using: &rng)]; return }
        let index = Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0: bytes[index] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
        case 1: bytes[index] = [0, 1, 3, 4, 5, 0x10, 0x7F, 0x80, 0xFF].randomElement(using: &rng) ?? 0
        case 2: bytes.removeLast(Int.random(in: 0...min(bytes.count, 40), using: &rng))
        case 3:  // a random 16-bit length where an nla_len might be
            let aligned = index & ~3
            if aligned + 1 < bytes.count {
                let value = UInt16.random(in: 0...UInt16.max, using: &rng)
                bytes[aligned] = UInt8(truncatingIfNeeded: value)
                bytes[aligned + 1] = UInt8(truncatingIfNeeded: value >> 8)
            }
        case 4: bytes.insert(contentsOf: bytes[index...].prefix(Int.random(in: 1...24, using: &rng)), at: index)
        case 5: bytes.removeSubrange(index..<min(bytes.count, index + Int.random(in: 1...8, using: &rng)))
        default: bytes[index] = UInt8.random(in: 0...255, using: &rng)
        }
    }
}
