import NetlinkWire
import Testing

@Suite struct ConntrackMessageTests {
    static let entry = ConntrackEntry(family: 2, source: [10, 0, 0, 1], destination: [10, 0, 0, 2], protocolNumber: 6,
                                      sourcePort: 40000, destinationPort: 8080, id: 0x0102_0304)

    /// A dump entry as the kernel sends it has the same tuple layout as our delete request: the
    /// request, relabelled IPCTNL_MSG_CT_NEW, decodes back to the entry.
    static func entryMessage(_ entry: ConntrackEntry) -> [UInt8] {
        var bytes = ConntrackMessages.delete(entry, sequence: 9)
        bytes[4] = 0x00  // type 0x0100: IPCTNL_MSG_CT_NEW
        bytes[5] = 0x01
        return bytes
    }

    @Test func deleteNamesTheOriginalTupleAndTheID() {
        let bytes = ConntrackMessages.delete(Self.entry, sequence: 9)
        #expect(Array(bytes[4..<8]) == [0x02, 0x01, 0x05, 0x00])  // CT_DELETE, REQUEST | ACK
        #expect(bytes[16] == 2)  // nfgenmsg family
        let golden: [UInt8] = [
            52, 0, 0x01, 0x80,                                   // CTA_TUPLE_ORIG, nested
            20, 0, 0x01, 0x80,                                   //   CTA_TUPLE_IP, nested
            8, 0, 1, 0, 10, 0, 0, 1,                             //     CTA_IP_V4_SRC
            8, 0, 2, 0, 10, 0, 0, 2,                             //     CTA_IP_V4_DST
            28, 0, 0x02, 0x80,                                   //   CTA_TUPLE_PROTO, nested
            5, 0, 1, 0, 6, 0, 0, 0,                              //     CTA_PROTO_NUM
            6, 0, 2, 0, 0x9c, 0x40, 0, 0,                        //     CTA_PROTO_SRC_PORT
            6, 0, 3, 0, 0x1f, 0x90, 0, 0,                        //     CTA_PROTO_DST_PORT
            8, 0, 12, 0, 1, 2, 3, 4,                             // CTA_ID
        ]
        #expect(Array(bytes[20...]) == golden)
    }

    @Test func entriesDecodeAndTheDumpEnds() {
        var buffer = Self.entryMessage(Self.entry)
        var v6 = Self.entry
        v6.family = 10
        v6.source = [UInt8](repeating: 0, count: 15) + [1]
        v6.destination = [0xfd] + [UInt8](repeating: 0, count: 14) + [2]
        v6.protocolNumber = 17
        v6.id = nil
        buffer += Self.entryMessage(v6)
        buffer += [20, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  // NLMSG_DONE
        var entries: [ConntrackEntry] = []
        var done = false
        buffer.withUnsafeBytes { bytes in
            ConntrackDecoder.forEachItem(in: bytes) { item in
                switch item {
                case .entry(let entry): entries.append(entry)
                case .done: done = true
                default: Issue.record("unexpected \(item)")
                }
            }
        }
        #expect(entries == [Self.entry, v6])
        #expect(done)
    }

    /// Every prefix and every single-byte corruption: decoded or reported, never a trap.
    @Test func damagedMessagesAreReportedNeverTrap() {
        let message = Self.entryMessage(Self.entry)
        for length in 0..<message.count {
            Array(message[0..<length]).withUnsafeBytes { bytes in
                ConntrackDecoder.forEachItem(in: bytes) { item in
                    if case .entry = item { Issue.record("a prefix of \(length) bytes decoded as an entry") }
                }
            }
        }
        for index in message.indices {
            for value: UInt8 in [0, 1, 0x7f, 0xff] {
                var damaged = message
                damaged[index] = value
                damaged.withUnsafeBytes { bytes in ConntrackDecoder.forEachItem(in: bytes) { _ in } }
            }
        }
    }
}
