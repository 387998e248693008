import Testing
import NetlinkWire

/// Real kernel captures (kernel 6.18, see Fixtures/README.md for how each was produced).
@Suite("Recorded kernel fixtures")
struct FixtureTests {
    /// The owner-bearing output packet every fixture of a socket-sent packet shares.
    func outputRecord(family: UInt8 = 2, sequence: UInt32, captured: Int, owner: Bool = true) -> NflogRecord {
        var record = NflogRecord()
        record.group = 7
        record.family = family
        record.hardwareProtocol = family == 10 ? 0x86DD : 0x0800
        record.hook = 3
        record.outputInterface = 1
        record.prefix = "nfowner"
        if owner {
            record.uid = 65534
            record.gid = 65534
        }
        record.sequence = sequence
        record.capturedLength = captured
        return record
    }

    func onlyPacket(_ name: String) throws -> (NflogRecord, [UInt8]) {
        let decoded = decodeAll(try loadFixture(name))
        #expect(decoded.viewsInBounds)
        guard decoded.items.count == 1, case .packet(let record, let payload) = decoded.items[0] else {
            Issue.record("\(name): expected one packet, got \(decoded.items)")
            throw FixtureMissing(name: name)
        }
        return (record, payload)
    }

    @Test func udp4FromNobody() throws {
        let (record, payload) = try onlyPacket("udp4-nobody")
        #expect(record == outputRecord(sequence: 0, captured: 33))
        #expect(payload.count == 33)
        #expect(payload.first == 0x45)  // IPv4, IHL 5
        #expect(Array(payload.suffix(5)) == Array("hello".utf8))
    }

    @Test func udp6CutAtSnaplen() throws {
        let (record, payload) = try onlyPacket("udp6-nobody-snaplen")
        #expect(record == outputRecord(family: 10, sequence: 1, captured: 128))
        #expect(payload.first.map { $0 >> 4 } == 6)
    }

    @Test func tcpSynCarriesOwnerAndSynAckDoesNot() throws {
        let (syn, synPayload) = try onlyPacket("tcp-syn-nobody")
        #expect(syn == outputRecord(sequence: 2, captured: 60))
        #expect(synPayload.count > 33 && synPayload[33] == 0x02)  // TCP flags byte: SYN
        let (synAck, synAckPayload) = try onlyPacket("tcp-synack-no-owner")
        #expect(synAck == outputRecord(sequence: 3, captured: 60, owner: false))
        #expect(synAckPayload.count > 33 && synAckPayload[33] == 0x12)  // SYN|ACK
    }

    @Test func pingSocketEcho() throws {
        let (record, payload) = try onlyPacket("icmp-echo-nobody")
        #expect(record == outputRecord(sequence: 8, captured: 32))
        #expect(payload.count > 20 && payload[20] == 8)  // ICMP echo request
    }

    @Test func kernelMadeIcmpErrorHasNoOwner() throws {
        let (record, payload) = try onlyPacket("icmp-unreachable-kernel")
        #expect(record == outputRecord(sequence: 11, captured: 61, owner: false))
        #expect(payload.count > 21 && payload[20] == 3 && payload[21] == 3)  // dest/port unreachable
    }

    @Test func inputHookWithoutPrefix() throws {
        let (record, payload) = try onlyPacket("udp4-input-no-prefix")
        #expect(record.hook == 1)
        #expect(record.prefix == nil)  // nft sends "" when the rule has no prefix
        #expect(record.inputInterface == 1)
        #expect(record.outputInterface == nil)
        #expect(record.uid == nil && record.gid == nil)
        #expect(record.hardwareType == 772)  // ARPHRD_LOOPBACK
        #expect(record.hardwareHeaderLength == 14)
        #expect(record.hardwareAddress == HardwareAddress(bits: 0, length: 6))
        #expect(record.timestamp != nil)  // sent at input, never at output
        #expect(record.sequence == 13)
        #expect(record.capturedLength == 35 && payload.count == 35)
    }

    @Test func batchOfFiveEndsWithDone() throws {
        let decoded = decodeAll(try loadFixture("batch-5-udp4"))
        #expect(decoded.viewsInBounds)
        var expected: [DecodedItem] = []
        for index in 0..<5 {
            let record = outputRecord(sequence: UInt32(14 + index), captured: 29 + index)
            let payloadTail = [UInt8](repeating: UInt8(index), count: index + 1)
            guard case .packet(let got, let payload) = decoded.items.dropFirst(index).first else { break }
            #expect(Array(payload.suffix(index + 1)) == payloadTail)
            expected.append(.packet(record, payload: payload))
            _ = got
        }
        expected.append(.done)
        #expect(decoded.items == expected)
    }

    @Test func bindAck() throws {
        #expect(decodeAll(try loadFixture("ack-bind")).items == [.error(errno: 0, sequence: 101)])
    }

    @Test func secondBindIsRefusedWithEPERM() throws {
        let bytes = try loadFixture("error-eperm-second-bind")
        #expect(decodeAll(bytes).items == [.error(errno: 1, sequence: 106)])
        // The kernel echoes the whole request: it must be exactly what our encoder sends.
        let echoed = Array(bytes.dropFirst(20))
        #expect(echoed == NflogConfigRequest.encode(group: 7, sequence: 106, .command(.bind)))
    }

    @Test func batchEncoderReproducesTheKernelBatch() throws {
        let bytes = try loadFixture("batch-5-udp4")
        var packets: [(record: NflogRecord, payload: [UInt8])] = []
        for item in decodeAll(bytes).items {
            if case .packet(let record, let payload) = item { packets.append((record, payload)) }
        }
        #expect(NflogPacketEncoder.encodeBatch(packets, group: 7) == bytes)
    }
}
