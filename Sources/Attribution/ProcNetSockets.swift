// The socket tables in /proc/net: tcp, udp, icmp (ping sockets), raw, and their "6" twins.
// nfowner reads them only where sock_diag has no handler: ping sockets (none exists) and raw
// sockets (INET_RAW_DIAG is often not built).
//
//   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ...
//   22: 00000000:ECAD 00000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 307351 ...
//
// Addresses are hex dumps of the in-kernel (network order) bytes read as host-order u32 words:
// IPv4 is one word ("0100007F" is 127.0.0.1 on a little-endian host), IPv6 four words. The port
// is a plain hex number: the local port, for ping sockets the ICMP echo id, for raw sockets the
// IP protocol number. "st" is the TCP state in hex (07 = close for unconnected sockets).
//
// /proc/net is /proc/self/net, which follows the namespace of the process's MAIN thread; a
// thread that entered another namespace must read /proc/thread-self/net (the default here).
import Foundation
import PacketParsing

/// One row of a /proc/net socket table.
public struct ProcNetSocketRow: Sendable, Equatable {
    public var local: SocketEndpoint
    public var remote: SocketEndpoint
    /// The "st" column (a TCP state number; 7 = close for unconnected sockets).
    public var state: UInt8
    public var uid: UInt32
    /// 0 for sockets without a file.
    public var inode: UInt64

    public init(local: SocketEndpoint, remote: SocketEndpoint, state: UInt8, uid: UInt32, inode: UInt64) {
        self.local = local
        self.remote = remote
        self.state = state
        self.uid = uid
        self.inode = inode
    }
}

/// One row of /proc/net/packet: an AF_PACKET socket.
public struct PacketSocketRow: Sendable, Equatable {
    /// SOCK_RAW (3: frames with their link-layer header) or SOCK_DGRAM (2: without).
    public var type: UInt8
    /// The EtherType it receives (0: none, a socket that only sends; 3: ETH_P_ALL).
    public var protocolNumber: UInt16
    /// The interface it is bound to; 0 when unbound.
    public var interface: UInt32
    public var uid: UInt32
    public var inode: UInt64

    public init(type: UInt8, protocolNumber: UInt16, interface: UInt32, uid: UInt32, inode: UInt64) {
        self.type = type
        self.protocolNumber = protocolNumber
        self.interface = interface
        self.uid = uid
        self.inode = inode
    }
}

/// Reads /proc/net socket tables under a directory (fixture trees in tests).
public struct ProcNetSockets: Sendable {
    /// The net directory: /proc/thread-self/net by default, so a thread inside another network
    /// namespace sees that namespace's sockets.
    public var netDirectory: String

    public init(netDirectory: String = "/proc/thread-self/net") {
        self.netDirectory = netDirectory
    }

    /// Ping sockets (SOCK_DGRAM + IPPROTO_ICMP/ICMPV6) whose echo id is `echoID` and whose
    /// local address is `localAddress` or the wildcard (an unbound ping socket shows 0.0.0.0).
    /// Several may match; the caller sees all.
    public func lookupPing(family: IPFamily, localAddress: IPAddress,
                           echoID: UInt16) throws(SocketLookupError) -> [ProcNetSocketRow] {
        try rows(table: family == .ipv4 ? "icmp" : "icmp6", family: family).filter {
            $0.local.port == echoID && Self.matches($0.local.address, localAddress)
        }
    }

    /// Raw sockets of IP protocol `protocolNumber` bound to `localAddress` or the wildcard and,
    /// when connected, to `remoteAddress`. Every raw socket of that protocol receives a copy
    /// of matching packets, so all are candidates.
    public func lookupRaw(family: IPFamily, protocolNumber: UInt8, localAddress: IPAddress,
                          remoteAddress: IPAddress? = nil) throws(SocketLookupError) -> [ProcNetSocketRow] {
        try rows(table: family == .ipv4 ? "raw" : "raw6", family: family).filter { row in
            guard row.local.port == UInt16(protocolNumber), Self.matches(row.local.address, localAddress)
            else { return false }
            guard let remoteAddress else { return true }
            return Self.matches(row.remote.address, remoteAddress)
        }
    }

    /// All rows of one table ("tcp", "udp6", "icmp", "raw6", ...).
    public func rows(table: String, family: IPFamily) throws(SocketLookupError) -> [ProcNetSocketRow] {
        Self.parse(try text(of: table), family: family)
    }

    /// Packet sockets of `uid` that can send on interface `interface`: bound to it, or unbound
    /// (interface 0: such a socket names the interface with each sendto). Every one is a
    /// candidate.
    public func lookupPacket(uid: UInt32, interface: UInt32) throws(SocketLookupError) -> [PacketSocketRow] {
        Self.parsePacket(try text(of: "packet")).filter { $0.uid == uid && ($0.interface == interface || $0.interface == 0) }
    }

    private func text(of table: String) throws(SocketLookupError) -> String {
        let path = netDirectory + "/" + table
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8)
        else {
            throw SocketLookupError(.unreadable, "cannot read \(path)")
        }
        return text
    }

    /// /proc/net/packet's rows; the header and malformed lines are skipped.
    ///
    ///     sk               RefCnt Type Proto  Iface R Rmem   User   Inode
    ///     ffff8f0a4c0e3000 3      3    0003   2     1 0      0      81234
    public static func parsePacket(_ text: String) -> [PacketSocketRow] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 9, let type = UInt8(fields[2]), let protocolNumber = UInt16(fields[3], radix: 16),
                  let interface = UInt32(fields[4]), let uid = UInt32(fields[7]), let inode = UInt64(fields[8])
            else { return nil }
            return PacketSocketRow(type: type, protocolNumber: protocolNumber, interface: interface, uid: uid, inode: inode)
        }
    }

    /// Parses a table's text. Lines that do not parse (the header, a truncated last line)
    /// are skipped: the file is a snapshot the kernel writes in pages, not a contract.
    public static func parse(_ text: String, family: IPFamily) -> [ProcNetSocketRow] {
        var rows: [ProcNetSocketRow] = []
        for line in text.split(separator: "\n") {
            if let row = parseLine(line, family: family) { rows.append(row) }
        }
        return rows
    }

    /// One data line; nil for the header or anything malformed.
    public static func parseLine(_ line: Substring, family: IPFamily) -> ProcNetSocketRow? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        // sl local remote st queues timer retrnsmt uid timeout inode
        guard fields.count >= 10, fields[0].hasSuffix(":"),
              let local = parseEndpoint(fields[1], family: family),
              let remote = parseEndpoint(fields[2], family: family),
              let state = UInt8(fields[3], radix: 16),
              let uid = UInt32(fields[7]),
              let inode = UInt64(fields[9])
        else { return nil }
        return ProcNetSocketRow(local: local, remote: remote, state: state, uid: uid, inode: inode)
    }

    /// "0100007F:ECAD" → 127.0.0.1 port 0xECAD (on a little-endian host).
    static func parseEndpoint(_ field: Substring, family: IPFamily) -> SocketEndpoint? {
        let parts = field.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1], radix: 16) else { return nil }
        let hex = parts[0]
        switch family {
        case .ipv4:
            guard hex.count == 8, let word = UInt32(hex, radix: 16) else { return nil }
            return SocketEndpoint(.v4(UInt32(bigEndian: word)), port)
        case .ipv6:
            guard hex.count == 32 else { return nil }
            var words: [UInt64] = []
            var index = hex.startIndex
            for _ in 0..<4 {
                let end = hex.index(index, offsetBy: 8)
                guard let word = UInt32(hex[index..<end], radix: 16) else { return nil }
                words.append(UInt64(UInt32(bigEndian: word)))
                index = end
            }
            return SocketEndpoint(.v6(high: words[0] << 32 | words[1], low: words[2] << 32 | words[3]), port)
        }
    }

    /// A socket's address matches when equal or when the socket has the wildcard.
    static func matches(_ socketAddress: IPAddress, _ packetAddress: IPAddress) -> Bool {
        switch socketAddress {
        case .v4(0), .v6(high: 0, low: 0): true
        default: socketAddress == packetAddress
        }
    }
}
