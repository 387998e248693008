import Testing
import NetlinkWire

/// Hex text → bytes (whitespace ignored).
private func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
}

private func decode(_ bytes: [UInt8]) throws(NetlinkWireError) -> InetDiagReply? {
    // An allocation of exactly the message's size, so any overread would leave it.
    let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
    defer { storage.deallocate() }
    storage.copyBytes(from: bytes)
    return try InetDiagDecoder.decodeReply(UnsafeRawBufferPointer(storage))
}

@Suite("inet_diag wire format")
struct InetDiagTests {
    // Recorded on kernel 6.18 with a Python sock_diag client (see docs/socket-lookup.md).

    /// The kernel's ENOENT reply to a TCP lookup of 127.0.0.1:1 → 127.0.0.1:2; it echoes the
    /// request, which is therefore the golden request too.
    static let enoentReply = hexBytes("""
        5c000000 0200 0000 01000000 58320000 feffffff
        48000000 1400 0100 01000000 00000000 02060000 ffffffff
        0001 0002 7f000001000000000000000000000000 7f000001000000000000000000000000
        00000000 ffffffff ffffffff
        """)

    /// TCP over IPv6 [::1]:51440 → [::1]:47783, established, uid 0, inode 305954, cgroup 1.
    static let tcp6Reply = hexBytes("""
        7c000000 1400 0000 01000000 58320000
        0a 01 00 00 c8f0 baa7 00000000000000000000000000000001 00000000000000000000000000000001
        00000000 07000000 00000000
        00000000 00000000 00000000 00000000 22ab0400
        05000800 00000000 08000f00 00000000 0c001500 01000000 00000000 06001600 12000000
        """)

    /// TCP TIME_WAIT: state 6, inode 0, no cgroup attribute.
    static let timeWaitReply = hexBytes("""
        60000000 1400 0000 01000000 58320000
        02 06 03 00 e0da b079 7f000001000000000000000000000000 7f000001000000000000000000000000
        06000000 00000000 30ea0000
        00000000 00000000 00000000 00000000 00000000
        08000f00 00000000
        """)

    @Test func requestMatchesGoldenBytes() {
        let id = InetDiagSocketID(sourcePort: 1, destinationPort: 2,
                                  source: InetDiagAddress(ipv4: 0x7f00_0001),
                                  destination: InetDiagAddress(ipv4: 0x7f00_0001))
        let request = InetDiagRequest(family: InetDiag.familyIPv4, protocolNumber: 6, socketID: id)
        let bytes = request.encoded(sequence: 1)
        #expect(bytes.count == 16 + InetDiag.requestSize)
        #expect(bytes == Array(Self.enoentReply[20...]))
    }

    /// SOCK_DESTROY: the lookup's body with type 21 and NLM_F_REQUEST | NLM_F_ACK.
    @Test func destroyRequestIsTheLookupWithAnotherTypeAndAnAck() {
        let id = InetDiagSocketID(sourcePort: 1, destinationPort: 2,
                                  source: InetDiagAddress(ipv4: 0x7f00_0001),
                                  destination: InetDiagAddress(ipv4: 0x7f00_0001))
        let request = InetDiagRequest(family: InetDiag.familyIPv4, protocolNumber: 6, socketID: id)
        let lookup = request.encoded(sequence: 7)
        let destroy = request.encoded(sequence: 7, destroy: true)
        #expect(destroy.count == lookup.count)
        #expect(destroy[4] == 21 && destroy[5] == 0)
        #expect(destroy[6] == 0x05 && destroy[7] == 0)
        #expect(Array(destroy[8...]) == Array(lookup[8...]))
    }

    /// The ACK (errno 0) or error answering a sequence; other sequences and types are skipped,
    /// and no input traps.
    @Test func acknowledgementsAreMatchedBySequence() {
        func error(_ code: Int32, sequence: UInt32) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: 36)
            bytes.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: UInt32(36), toByteOffset: 0, as: UInt32.self)
                raw.storeBytes(of: UInt16(2), toByteOffset: 4, as: UInt16.self)
                raw.storeBytes(of: sequence, toByteOffset: 8, as: UInt32.self)
                raw.storeBytes(of: code, toByteOffset: 16, as: Int32.self)
            }
            return bytes
        }
        func ack(_ bytes: [UInt8], _ sequence: UInt32) -> Int32? {
            bytes.withUnsafeBytes { InetDiagDecoder.acknowledgement($0, sequence: sequence) }
        }
        #expect(ack(error(0, sequence: 3), 3) == 0)
        #expect(ack(error(-2, sequence: 3), 3) == 2)
        #expect(ack(error(0, sequence: 4) + error(-95, sequence: 3), 3) == 95)
        #expect(ack(error(0, sequence: 4), 3) == nil)
        #expect(ack(error(5, sequence: 3), 3) == nil, "a positive code is not an errno")
        #expect(ack(Array(Self.enoentReply), 1) == 2)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            var bytes = error(0, sequence: 3)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if let code = ack(Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator))), 3) {
                #expect(code >= 0, "an errno, never negative")
            }
        }
    }

    @Test func enoentIsAnError() throws {
        #expect(try decode(Self.enoentReply) == .error(errno: 2, sequence: 1))
    }

    @Test func decodesTCP6Socket() throws {
        let reply = try #require(try decode(Self.tcp6Reply))
        guard case .socket(let message, let sequence) = reply else {
            Issue.record("expected a socket, got \(reply)")
            return
        }
        #expect(sequence == 1)
        #expect(message.family == InetDiag.familyIPv6)
        #expect(message.state == InetDiagState.established)
        #expect(message.socketID.sourcePort == 51440)
        #expect(message.socketID.destinationPort == 47783)
        #expect(message.socketID.source == InetDiagAddress(high: 0, low: 1))
        #expect(message.socketID.interface == 0)
        #expect(message.socketID.cookie == 7)
        #expect(message.uid == 0)
        #expect(message.inode == 305954)
        #expect(message.cgroupID == 1)
    }

    @Test func decodesTimeWait() throws {
        guard case .socket(let message, _) = try #require(try decode(Self.timeWaitReply)) else {
            Issue.record("expected a socket")
            return
        }
        #expect(message.state == InetDiagState.timeWait)
        #expect(InetDiagState.name(message.state) == "time-wait")
        #expect(message.inode == 0)
        #expect(message.cgroupID == nil)
        #expect(message.socketID.source.ipv4 == 0x7f00_0001)
        #expect(message.socketID.sourcePort == 0xe0da)
    }

    @Test func requestRoundTripsThroughTheDecoder() throws {
        // inet_diag_msg is inet_diag_req_v2 without idiag_states, plus 20 bytes of counters:
        // cut the states out and decode the request's sockid as a reply's.
        let id = InetDiagSocketID(sourcePort: 443, destinationPort: 51000,
                                  source: InetDiagAddress(high: 0x2001_0db8_0000_0000, low: 0x1),
                                  destination: InetDiagAddress(high: 0xfe80_0000_0000_0000, low: 0xabcd),
                                  interface: 3, cookie: 0x1122_3344_5566_7788)
        var bytes = InetDiagRequest(family: InetDiag.familyIPv6, protocolNumber: 17, socketID: id)
            .encoded(sequence: 9)
        bytes.removeSubrange(20..<24)
        bytes += [UInt8](repeating: 0, count: 20)  // expires … inode
        bytes[0] = UInt8(bytes.count)
        let decoded = try bytes.withUnsafeBytes { raw throws(NetlinkWireError) in
            try InetDiagDecoder.decodeMessage(raw)
        }
        #expect(decoded.socketID == id)
    }

    @Test(arguments: ["enoent", "tcp6", "timewait"])
    func everyPrefixFailsCleanly(_ name: String) throws {
        let bytes = switch name {
        case "enoent": Self.enoentReply
        case "tcp6": Self.tcp6Reply
        default: Self.timeWaitReply
        }
        let full = try decode(bytes)
        #expect(full != nil)
        for cut in 0..<bytes.count {
            var prefix = Array(bytes.prefix(cut))
            // Keep nlmsg_len consistent with the cut, so the inner structures are what is short.
            if cut >= 4 { prefix[0] = UInt8(cut) ; prefix[1] = 0; prefix[2] = 0; prefix[3] = 0 }
            do {
                let reply = try decode(prefix)
                if cut == 0 { #expect(reply == nil) }
                // A cut that only removes attributes, or the echoed request of an error, decodes.
                if case .socket(let message, _) = reply {
                    #expect(cut >= 16 + InetDiag.messageSize, "prefix \(cut)")
                    #expect(message.inode == { if case .socket(let m, _) = full { m.inode } else { 0 } }())
                }
            } catch {
                #expect([.invalidMessageLength, .truncatedMessage, .invalidAttributeLength].contains(error.code),
                        "prefix \(cut): \(error)")
            }
        }
    }

    @Test func wrongSizedCgroupIDIsRejected() {
        var bytes = Self.tcp6Reply
        // The cgroup attribute starts 16 + 72 + 8 + 8 bytes in; make it a 4-byte value.
        let attribute = 16 + InetDiag.messageSize + 16
        #expect(bytes[attribute + 2] == 21)
        bytes[attribute] = 8
        #expect(throws: NetlinkWireError.self) { try decode(bytes) }
        do { _ = try decode(bytes) } catch { #expect(error.code == .invalidAttributeValue) }
    }

    @Test func ackAndPositiveErrorsAreNotAnswers() {
        var ack = Self.enoentReply
        ack.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        do { _ = try decode(ack); Issue.record("an ACK must not decode") } catch {
            #expect(error.code == .invalidErrorCode)
        }
    }

    @Test func otherMessagesAreSkipped() throws {
        let noop: [UInt8] = [16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        #expect(try decode(noop) == nil)
        #expect(try decode(noop + Self.enoentReply) == .error(errno: 2, sequence: 1))
    }
}
