import Testing
import NetlinkWire

/// NFQUEUE config and verdict messages against bytes derived by hand from nfnetlink_queue.h
/// (header fields host order, little-endian here; attribute values big-endian), and the packet
/// decoder against built, malformed and random messages.
@Suite("NFQUEUE messages", .enabled(if: UInt16(1).littleEndian == 1, "goldens are little-endian"))
struct NfqueueMessageTests {
    @Test func bindWithSettingsIsOneMessage() {
        let bytes = NfqueueMessages.config(queue: 7, sequence: 3, [
            .command(.bind), .copyMode(.packet, range: 128), .maximumLength(4096),
            .flags([.failOpen, .uidGid], mask: [.failOpen, .uidGid]),
        ])
        let golden: [UInt8] = [
            64, 0, 0, 0,  0x02, 0x03,  0x05, 0x00,  3, 0, 0, 0,  0, 0, 0, 0,   // nlmsghdr: type 0x0302, REQUEST|ACK
            0, 0, 0x00, 0x07,                                                 // nfgenmsg: AF_UNSPEC, v0, queue 7
            8, 0, 1, 0,  1, 0, 0, 0,                                          // CFG_CMD: bind, pad, pf 0
            9, 0, 2, 0,  0, 0, 0, 0x80,  2, 0, 0, 0,                          // CFG_PARAMS: range 128, COPY_PACKET
            8, 0, 3, 0,  0, 0, 0x10, 0,                                       // CFG_QUEUE_MAXLEN 4096
            8, 0, 4, 0,  0, 0, 0, 9,                                          // CFG_MASK: FAIL_OPEN | UID_GID
            8, 0, 5, 0,  0, 0, 0, 9,                                          // CFG_FLAGS
        ]
        #expect(bytes == golden)
    }

    @Test func verdictAcceptNamesThePacket() {
        let golden: [UInt8] = [
            32, 0, 0, 0,  0x01, 0x03,  0x01, 0x00,  0, 0, 0, 0,  0, 0, 0, 0,  // type 0x0301, REQUEST
            0, 0, 0x00, 0x07,
            12, 0, 2, 0,  0, 0, 0, 1,  0x12, 0x34, 0x56, 0x78,               // VERDICT_HDR: NF_ACCEPT, id
        ]
        #expect(NfqueueMessages.verdict(queue: 7, id: 0x1234_5678, .accept) == golden)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        let written = NfqueueMessages.writeVerdict(queue: 7, id: 0x1234_5678, .accept, into: buffer)
        #expect(Array(buffer[0..<written]) == golden)
        #expect(NfqueueMessages.writeVerdict(queue: 7, id: 1, .drop, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<31])) == 0)
    }

    @Test func repeatVerdictWithAMark() {
        let golden: [UInt8] = [
            40, 0, 0, 0,  0x01, 0x03,  0x01, 0x00,  0, 0, 0, 0,  0, 0, 0, 0,  // type 0x0301, REQUEST
            0, 0, 0x00, 0x07,
            12, 0, 2, 0,  0, 0, 0, 4,  0x12, 0x34, 0x56, 0x78,               // VERDICT_HDR: NF_REPEAT, id
            8, 0, 3, 0,  0x00, 0x80, 0x00, 0x01,                             // MARK
        ]
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        let written = NfqueueMessages.writeVerdict(queue: 7, id: 0x1234_5678, .repeat, mark: 0x0080_0001, into: buffer)
        #expect(written == NfqueueMessages.markedVerdictLength)
        #expect(Array(buffer[0..<written]) == golden)
        let short = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(NfqueueMessages.markedVerdictLength - 1)])
        #expect(NfqueueMessages.writeVerdict(queue: 7, id: 1, .repeat, mark: 1, into: short) == 0)
    }

    /// A held packet as the kernel sends it: header, then the given attributes.
    static func packet(queue: UInt16 = 7, family: UInt8 = 2, attributes: [(UInt16, [UInt8])]) -> [UInt8] {
        var body: [UInt8] = [family, 0, UInt8(queue >> 8), UInt8(queue & 0xff)]
        for (type, value) in attributes {
            let length = UInt16(4 + value.count)
            body += [UInt8(length & 0xff), UInt8(length >> 8), UInt8(type & 0xff), UInt8(type >> 8)] + value
            while body.count % 4 != 0 { body.append(0) }
        }
        let total = UInt32(16 + body.count)
        return withUnsafeBytes(of: total.littleEndian, Array.init) + [0x00, 0x03, 0, 0] + [UInt8](repeating: 0, count: 8) + body
    }

    static let ipv4Syn: [UInt8] = [0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]
        + [0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]

    static func decodeOne(_ bytes: [UInt8]) -> [String] {
        var seen: [String] = []
        bytes.withUnsafeBytes { buffer in
            NfqueueDecoder.forEachItem(in: buffer) { item in
                switch item {
                case .packet(let view):
                    seen.append("packet q=\(view.queue) f=\(view.family) id=\(view.id) hook=\(view.hook) "
                                + "uid=\(view.uid.map(String.init) ?? "-") gid=\(view.gid.map(String.init) ?? "-") "
                                + "mark=\(view.mark.map(String.init) ?? "-") out=\(view.outputInterface.map(String.init) ?? "-") "
                                + "payload=\(view.payload.count)")
                case .error(let errno, let sequence): seen.append("error \(errno) seq \(sequence)")
                case .malformed(let error): seen.append("malformed \(error.code)")
                case .other(let type): seen.append("other \(type)")
                }
            }
        }
        return seen
    }

    @Test func decodesAHeldPacketWithItsOwner() {
        let message = Self.packet(attributes: [
            (1, [0, 0, 0, 42, 0x08, 0x00, 3]),   // PACKET_HDR: id 42, ETH_P_IP, hook 3 (output)
            (3, [0, 0, 0, 5]),                   // MARK
            (6, [0, 0, 0, 1]),                   // OUTDEV 1
            (16, [0, 0, 0x03, 0xe8]),            // UID 1000
            (17, [0, 0, 0x03, 0xe9]),            // GID 1001
            (99, [1, 2, 3]),                     // unknown: skipped
            (10, Self.ipv4Syn),                  // PAYLOAD
        ])
        #expect(Self.decodeOne(message) == ["packet q=7 f=2 id=42 hook=3 uid=1000 gid=1001 mark=5 out=1 payload=40"])
    }

    @Test func refusesWhatCannotBeDecided() {
        // No PACKET_HDR: no id to answer.
        #expect(Self.decodeOne(Self.packet(attributes: [(10, Self.ipv4Syn)])) == ["malformed truncatedMessage"])
        // A 2-byte UID.
        #expect(Self.decodeOne(Self.packet(attributes: [(1, [0, 0, 0, 1, 8, 0, 3]), (16, [0, 1])]))
                == ["malformed invalidAttributeValue"])
        // A 6-byte packet header.
        #expect(Self.decodeOne(Self.packet(attributes: [(1, [0, 0, 0, 1, 8, 0])])) == ["malformed invalidAttributeValue"])
        // nla_len past the message.
        var overrun = Self.packet(attributes: [(1, [0, 0, 0, 1, 8, 0, 3])])
        overrun[20] = 200
        #expect(Self.decodeOne(overrun) == ["malformed invalidAttributeLength"])
        // A message cut short of its nfgenmsg, and a bad nlmsg_len.
        var short: [UInt8] = withUnsafeBytes(of: UInt32(18).littleEndian, Array.init) + [0x00, 0x03, 0, 0]
        short += [UInt8](repeating: 0, count: 10)
        #expect(Self.decodeOne(short) == ["malformed truncatedMessage"])
        #expect(Self.decodeOne([40, 0, 0, 0, 0, 3, 0, 0]) == ["malformed invalidMessageLength"])
    }

    @Test func readsAcknowledgementsAndErrors() {
        func error(_ code: Int32, sequence: UInt8) -> [UInt8] {
            withUnsafeBytes(of: UInt32(36).littleEndian, Array.init) + [2, 0, 0, 0, sequence, 0, 0, 0, 0, 0, 0, 0]
                + withUnsafeBytes(of: code.littleEndian, Array.init) + [UInt8](repeating: 0, count: 16)
        }
        #expect(Self.decodeOne(error(0, sequence: 4) + error(-16, sequence: 5)) == ["error 0 seq 4", "error 16 seq 5"])
    }

    /// Random bytes and random damage to valid messages: the decoder never traps, never reads
    /// past the buffer (the address sanitizer run would catch it), and every item it yields is
    /// a packet whose views lie inside the buffer, or an error.
    @Test func survivesRandomAndDamagedInput() {
        var rng = SeededGenerator(seed: 0x4e46_5155)
        let valid = Self.packet(attributes: [(1, [0, 0, 0, 9, 8, 0, 3]), (16, [0, 0, 0, 0]), (10, Self.ipv4Syn)])
        var packets = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...96, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                bytes = valid
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = .random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng)) }
            }
            bytes.withUnsafeBytes { buffer in
                let range = UInt(bitPattern: buffer.baseAddress)..<(UInt(bitPattern: buffer.baseAddress) + UInt(buffer.count))
                NfqueueDecoder.forEachItem(in: buffer) { item in
                    guard case .packet(let view) = item else { return }
                    packets += 1
                    if view.payload.count > 0 {
                        #expect(range.contains(UInt(bitPattern: view.payload.baseAddress)))
                        #expect(UInt(bitPattern: view.payload.baseAddress) + UInt(view.payload.count) <= range.upperBound)
                    }
                }
            }
        }
        #expect(packets > 100, "damage left some messages valid; none decoded means the valid path is broken")
    }
}
