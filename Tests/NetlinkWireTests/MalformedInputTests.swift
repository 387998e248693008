import Testing
import NetlinkWire

@Suite("Malformed input")
struct MalformedInputTests {
    let packetType = NetlinkMessageType.nflogPacket
    let done = rawMessage(type: NetlinkMessageType.done, body: [0, 0, 0, 7])

    /// Offsets at which a buffer ends cleanly between messages.
    func messageBoundaries(_ bytes: [UInt8]) -> Set<Int> {
        var boundaries: Set<Int> = [0]
        var position = 0
        while position + 4 <= bytes.count {
            let length = Int(bytes[position]) | Int(bytes[position + 1]) << 8
                | Int(bytes[position + 2]) << 16 | Int(bytes[position + 3]) << 24
            guard length >= 16 else { break }
            boundaries.insert(position + length)
            position += (length + 3) & ~3
            boundaries.insert(min(position, bytes.count))
        }
        return boundaries
    }

    func checkEveryPrefix(_ bytes: [UInt8], _ label: String) {
        let boundaries = messageBoundaries(bytes)
        let full = decodeAll(bytes).items
        #expect(!hasMalformed(full), "\(label) must decode cleanly")
        for cut in 0...bytes.count {
            let decoded = decodeAll(Array(bytes.prefix(cut)))
            #expect(decoded.viewsInBounds, "\(label) prefix \(cut)")
            if boundaries.contains(cut) {
                #expect(!hasMalformed(decoded.items), "\(label) prefix \(cut)")
            } else {
                #expect(decoded.items.last?.isMalformed == true, "\(label) prefix \(cut): \(decoded.items)")
            }
            // Whatever came before the cut decodes the same as in the whole buffer.
            let clean = decoded.items.filter { !$0.isMalformed }
            #expect(Array(full.prefix(clean.count)) == clean, "\(label) prefix \(cut)")
        }
    }

    @Test(arguments: fixtureNames)
    func everyPrefixOfAFixture(name: String) throws {
        checkEveryPrefix(try loadFixture(name), name)
    }

    @Test func everyPrefixOfEncodedMessages() {
        var record = NflogRecord()
        record.group = 3
        record.family = 10
        record.uid = 1000
        record.prefix = "a longer prefix than fifteen bytes"
        record.timestamp = NflogTimestamp(seconds: 1, microseconds: 2)
        record.hardwareAddress = HardwareAddress(bits: 0x0102_0304_0506_0000, length: 6)
        checkEveryPrefix(NflogPacketEncoder.encode(record, payload: [1, 2, 3]), "single")
        checkEveryPrefix(NflogPacketEncoder.encodeBatch([(record, [9]), (NflogRecord(), [])], group: 3), "batch")
        checkEveryPrefix(NflogConfigRequest.encode(group: 7, sequence: 1, .copyMode(.packet, range: 128)), "config")
    }

    @Test func messageLengthBelowHeaderStopsIteration() {
        let bytes = rawMessage(type: packetType, body: nfgen7, length: 12) + done
        let decoded = decodeAll(bytes)
        #expect(decoded.items == [.malformed(.invalidMessageLength)])
        #expect(decoded.errors.first?.offset == 0)
    }

    @Test func messageLengthPastTheBuffer() {
        let bytes = done + rawMessage(type: packetType, body: nfgen7, length: 4096)
        let decoded = decodeAll(bytes)
        #expect(decoded.items == [.done, .malformed(.invalidMessageLength)])
        #expect(decoded.errors.first?.offset == 20)
    }

    @Test func trailingBytesTooShortForAHeader() {
        #expect(decodeAll(done + [0, 0, 0, 0]).items == [.done, .malformed(.invalidMessageLength)])
    }

    @Test func attributeLengthThreeSkipsOnlyThatMessage() {
        let bad = rawMessage(type: packetType, body: nfgen7 + rawAttribute(11, [], length: 3))
        let decoded = decodeAll(bad + done)
        #expect(decoded.items == [.malformed(.invalidAttributeLength), .done])
        #expect(decoded.errors.first?.offset == 20)
    }

    @Test func attributeLengthPastMessageEnd() {
        let bad = rawMessage(type: packetType, body: nfgen7 + rawAttribute(11, beBytes(UInt32(5)), length: 200))
        #expect(decodeAll(bad + done).items == [.malformed(.invalidAttributeLength), .done])
    }

    @Test func uidOfLengthTwo() {
        let bad = rawMessage(type: packetType, body: nfgen7 + rawAttribute(11, [0, 1]))
        let decoded = decodeAll(bad)
        #expect(decoded.items == [.malformed(.invalidAttributeValue)])
        #expect(decoded.errors.first?.reason == "attribute NFULA_UID is not a uint32; length: 2")
        #expect(decoded.errors.first?.offset == 20)
    }

    @Test func hotFieldsOfTheWrongSizeAreRejectedToo() {
        // uid, sequence and gid are read during the walk: their sizes are checked there.
        for type: UInt16 in [11, 12, 14] {
            for value in [[UInt8](), [0, 1], [0, 0, 0, 0, 1]] {
                let bad = rawMessage(type: packetType, body: nfgen7 + rawAttribute(type, value))
                #expect(decodeAll(bad).items == [.malformed(.invalidAttributeValue)], "type \(type), \(value.count) bytes")
            }
        }
    }

    @Test func theLastOfTwoAttributesOfOneTypeCounts() {
        let body = nfgen7 + rawAttribute(11, beBytes(UInt32(5))) + rawAttribute(12, beBytes(UInt32(1)))
            + rawAttribute(10, Array("first".utf8) + [0]) + rawAttribute(11, beBytes(UInt32(6)))
            + rawAttribute(12, beBytes(UInt32(2))) + rawAttribute(10, Array("second".utf8) + [0])
            + rawAttribute(9, [0x45]) + rawAttribute(9, [0x60, 0])
        let items = decodeAll(rawMessage(type: packetType, body: body)).items
        guard case .packet(let record, let payload)? = items.first else {
            Issue.record("not a packet: \(items)")
            return
        }
        #expect(record.uid == 6)
        #expect(record.sequence == 2)
        #expect(record.prefix == "second")
        #expect(payload == [0x60, 0])
    }

    @Test func thePrefixEndsAtItsFirstNUL() {
        for (value, expected) in [(Array("ab".utf8) + [0, 0x63, 0], "ab"), (Array("abc".utf8), "abc"),
                                  ([0], nil), ([], nil), ([0, 0x61], nil)] as [([UInt8], String?)] {
            let message = rawMessage(type: packetType, body: nfgen7 + rawAttribute(10, value))
            guard case .packet(let record, _)? = decodeAll(message).items.first else {
                Issue.record("not a packet")
                continue
            }
            #expect(record.prefix == expected, "\(value)")
        }
    }

    @Test func wrongSizedStructs() {
        for (type, value) in [(UInt16(1), [UInt8](repeating: 0, count: 3)),  // PACKET_HDR
                              (3, [UInt8](repeating: 0, count: 8)),           // TIMESTAMP
                              (8, [UInt8](repeating: 0, count: 10)),          // HWADDR
                              (15, [0, 0, 0, 1])] {                           // HWTYPE
            let bad = rawMessage(type: packetType, body: nfgen7 + rawAttribute(type, value))
            #expect(decodeAll(bad).items == [.malformed(.invalidAttributeValue)], "type \(type)")
        }
    }

    @Test func missingNfgenmsg() {
        #expect(decodeAll(rawMessage(type: packetType, body: [2, 0])).items == [.malformed(.truncatedMessage)])
    }

    @Test func errorMessages() {
        let ack = rawMessage(type: 2, sequence: 9, body: hostBytes(Int32(0)))
        let eperm = rawMessage(type: 2, sequence: 10, body: hostBytes(Int32(-1)))
        let noCode = rawMessage(type: 2, body: [])
        let positive = rawMessage(type: 2, body: hostBytes(Int32(5)))
        let minimum = rawMessage(type: 2, body: hostBytes(Int32.min))
        #expect(decodeAll(ack + eperm + noCode + positive + minimum).items == [
            .error(errno: 0, sequence: 9), .error(errno: 1, sequence: 10),
            .malformed(.truncatedMessage), .malformed(.invalidErrorCode), .malformed(.invalidErrorCode),
        ])
    }

    @Test func unknownAttributesAndFlagBitsAreHandled() {
        let body = nfgen7
            + rawAttribute(99, [1, 2, 3])                  // unknown: skipped
            + rawAttribute(0x8000 | 20, rawAttribute(1, [0, 1]))  // NFULA_VLAN, nested: skipped
            + rawAttribute(0x4000 | 11, beBytes(UInt32(42)))      // NFULA_UID with NLA_F_NET_BYTEORDER
            + rawAttribute(10, Array("p\0junk".utf8))      // prefix cut at the first NUL
        var expected = NflogRecord()
        expected.group = 7
        expected.family = 2
        expected.uid = 42
        expected.prefix = "p"
        #expect(decodeAll(rawMessage(type: packetType, body: body)).items == [.packet(expected, payload: [])])
    }

    @Test func otherMessageTypes() {
        #expect(decodeAll(rawMessage(type: 1, body: []) + rawMessage(type: 0x0301, body: nfgen7)).items
            == [.other(type: 1), .other(type: 0x0301)])
    }

    @Test func lastMessageWithoutPadding() {
        // nlmsg_len 27 at the end of the buffer: no padding follows, still a whole message.
        let body = nfgen7 + hostBytes(UInt16(7)) + hostBytes(UInt16(9)) + [1, 2, 3]
        let message = rawMessage(type: packetType, body: body)
        #expect(message.count == 27)
        var expected = NflogRecord()
        expected.group = 7
        expected.family = 2
        expected.capturedLength = 3
        #expect(decodeAll(done + message).items == [.done, .packet(expected, payload: [1, 2, 3])])
    }
}
