import Capture
import PacketModel
import PacketParsing

/// SplitMix64: a small seeded generator, so a failing iteration can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Packets for the tests: valid datagrams whose IP lengths match their bytes, so tshark
/// decodes them and PacketParser's summary agrees with them.
enum Packets {
    static func be16(_ value: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)] }

    /// IPv4 192.0.2.1 → 198.51.100.7 carrying `transport` (already built) as `protocolNumber`.
    static func ipv4(protocolNumber: UInt8, transport: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x45, 0] + be16(20 + transport.count) + [0x12, 0x34, 0x40, 0x00, 64, protocolNumber, 0, 0]
        bytes += [192, 0, 2, 1, 198, 51, 100, 7]
        return bytes + transport
    }

    /// IPv6 2001:db8::1 → 2001:db8::2 carrying `transport` as next header `protocolNumber`.
    static func ipv6(protocolNumber: UInt8, transport: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x60, 0, 0, 0] + be16(transport.count) + [protocolNumber, 64]
        bytes += [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]
        bytes += [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [2]
        return bytes + transport
    }

    /// UDP from `source` to `destination` with `payload`.
    static func udp(_ source: Int, _ destination: Int, payload: [UInt8]) -> [UInt8] {
        be16(source) + be16(destination) + be16(8 + payload.count) + [0, 0] + payload
    }

    /// A TCP SYN from `source` to `destination`, 20-byte header.
    static func tcpSyn(_ source: Int, _ destination: Int) -> [UInt8] {
        be16(source) + be16(destination) + [0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xFF, 0xFF, 0, 0, 0, 0]
    }

    /// ICMPv6 echo request.
    static func icmpv6Echo() -> [UInt8] { [128, 0, 0, 0, 0x12, 0x34, 0, 1, 0xAB, 0xCD] }

    /// ICMP echo request.
    static func icmpEcho() -> [UInt8] { [8, 0, 0, 0, 0x12, 0x34, 0, 1] + Array(repeating: 0x61, count: 16) }
}

/// Events around real packet bytes: the summary is PacketParser's, the rest as the test says.
/// Keeps the event's parts (events are not copyable) and builds the event on each read.
struct TestPacket {
    var metadata: PacketMetadata
    var packet: PacketSummary
    var owner: PacketOwner
    var payload: [UInt8]

    var event: PacketEvent { PacketEvent(metadata: metadata, packet: packet, owner: owner) }

    init(_ payload: [UInt8], direction: Direction, group: UInt16 = 5, seconds: UInt64 = 1_795_478_400,
         microseconds: UInt64 = 42, owner: PacketOwner = PacketOwner()) {
        let summary = payload.withUnsafeBytes { bytes in
            Result { () throws(PacketParseError) in try PacketParser.parse(bytes) }
        }
        var metadata = PacketMetadata()
        metadata.origin = PacketOrigin(kind: .nflog, number: group)
        metadata.family = payload.first.map { $0 >> 4 == 6 ? 10 : 2 } ?? 2
        metadata.hookNumber = direction == .inbound ? 1 : 3  // NF_INET_LOCAL_IN / NF_INET_LOCAL_OUT
        metadata.time = EventTime(seconds: seconds, microseconds: microseconds)
        metadata.capturedLength = payload.count
        // A test packet that does not parse is a bug in the test: trap loudly.
        guard case .success(let packet) = summary else { fatalError("test packet does not parse: \(summary)") }
        self.metadata = metadata
        self.packet = packet
        self.owner = owner
        self.payload = payload
    }
}

enum Owners {
    static let alice = PacketOwner(
        uid: 1000, gid: 1000, userName: "alice", groupName: "alice", cgroupID: 4242,
        cgroupPath: "/user.slice/user-1000.slice/session-2.scope", unit: "session-2.scope",
        attribution: OwnerAttribution(confidence: .exact, processes: [
            ProcessReference(pid: 1234, comm: "curl", exe: "/usr/bin/curl"),
        ]))

    static let nginx = PacketOwner(
        uid: 33, gid: 33, userName: "www-data", groupName: "www-data",
        cgroupPath: "/system.slice/nginx.service", unit: "nginx.service",
        attribution: OwnerAttribution(confidence: .candidates, reason: "several processes of the uid", processes: [
            ProcessReference(pid: 700, comm: "nginx", exe: "/usr/sbin/nginx"),
            ProcessReference(pid: 701, comm: "nginx", exe: "/usr/sbin/nginx"),
        ]))

    /// Only the kernel's credentials: no names, no process.
    static let uidOnly = PacketOwner(uid: 0, gid: 0)

    /// A process whose name needs quoting in the comment.
    static let oddName = PacketOwner(
        uid: 1001, userName: "bob smith",
        attribution: OwnerAttribution(confidence: .single, processes: [
            ProcessReference(pid: 99, comm: "my \"tool\"", exe: "/opt/my tool/bin/tool"),
        ]))
}

/// A file with several packets of every kind the writer handles.
func sampleFile() -> (bytes: [UInt8], packets: [TestPacket]) {
    let packets = [
        TestPacket(Packets.ipv4(protocolNumber: 6, transport: Packets.tcpSyn(40000, 443)), direction: .outbound,
                   owner: Owners.alice),
        TestPacket(Packets.ipv6(protocolNumber: 17, transport: Packets.udp(53, 41000, payload: [1, 2, 3])),
                   direction: .inbound, microseconds: 43, owner: Owners.nginx),
        TestPacket(Packets.ipv4(protocolNumber: 1, transport: Packets.icmpEcho()), direction: .outbound,
                   microseconds: 44),
        TestPacket(Packets.ipv6(protocolNumber: 58, transport: Packets.icmpv6Echo()), direction: .outbound,
                   seconds: 1_795_478_401, microseconds: 0, owner: Owners.uidOnly),
        TestPacket(Packets.ipv4(protocolNumber: 17, transport: Packets.udp(5353, 5353, payload: Array(repeating: 7, count: 33))),
                   direction: .inbound, microseconds: 999_999, owner: Owners.oddName),
        TestPacket(Packets.ipv4(protocolNumber: 6, transport: Packets.tcpSyn(40001, 443)), direction: .outbound,
                   seconds: 1_795_478_402, owner: Owners.alice),
    ]
    var writer = PcapngWriter(snapLength: 65535)
    var bytes: [UInt8] = []
    for packet in packets { writer.append(packet.event, payload: packet.payload, to: &bytes) }
    return (bytes, packets)
}

/// A big-endian pcapng section followed by a little-endian one, with a nanosecond interface,
/// an if_tsoffset and a block type nfowner does not know: built by hand, as a big-endian
/// machine's tool would write it. Two packets: 12 s + 1 ns (3 bytes), then 5.000001 s.
func mixedByteOrderFile() -> [UInt8] {
    var bytes: [UInt8] = [
        0x0A, 0x0D, 0x0D, 0x0A,  // SHB
        0x00, 0x00, 0x00, 0x1C,  // length 28, big-endian
        0x1A, 0x2B, 0x3C, 0x4D,  // byte-order magic, big-endian
        0x00, 0x01, 0x00, 0x00,  // version 1.0
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // section length -1
        0x00, 0x00, 0x00, 0x1C,  // length again
        0x00, 0x00, 0x00, 0x01,  // IDB
        0x00, 0x00, 0x00, 0x28,  // length 40
        0x00, 0x65, 0x00, 0x00,  // LINKTYPE_RAW, reserved
        0x00, 0x00, 0x00, 0x00,  // snap length 0: no limit
        0x00, 0x09, 0x00, 0x01,  // if_tsresol, length 1
        0x09, 0x00, 0x00, 0x00,  // 10^-9: nanoseconds, 3 bytes of padding
        0x00, 0x0E, 0x00, 0x08,  // if_tsoffset, length 8
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0A,  // +10 s
        0x00, 0x00, 0x00, 0x28,  // length again (no opt_endofopt: allowed)
        0x00, 0x00, 0x0B, 0xAD,  // an unknown block type 0xBAD
        0x00, 0x00, 0x00, 0x10,  // length 16
        0xDE, 0xAD, 0xBE, 0xEF,  // whatever it holds
        0x00, 0x00, 0x00, 0x10,  // length again
        0x00, 0x00, 0x00, 0x06,  // EPB
        0x00, 0x00, 0x00, 0x24,  // length 36
        0x00, 0x00, 0x00, 0x00,  // interface 0
        0x00, 0x00, 0x00, 0x00,  // timestamp high
        0x77, 0x35, 0x94, 0x01,  // timestamp low: 2000000001 ns
        0x00, 0x00, 0x00, 0x03,  // captured 3
        0x00, 0x00, 0x00, 0x03,  // original 3
        0x60, 0x01, 0x02, 0x00,  // data, 1 byte of padding
        0x00, 0x00, 0x00, 0x24,  // length again
    ]
    // Then a little-endian section: interfaces start over.
    PcapngBlocks.appendSectionHeader(application: "other", to: &bytes)
    PcapngBlocks.appendInterfaceDescription(linkType: 1, snapLength: 100, name: "eth0", to: &bytes)
    [UInt8]([0x45]).withUnsafeBytes {
        PcapngBlocks.appendEnhancedPacket(interfaceID: 0, timestamp: 5_000_001, originalLength: 60, data: $0,
                                          options: PcapngBlocks.PacketOptions(direction: .inbound), to: &bytes)
    }
    return bytes
}
