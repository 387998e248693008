import PacketModel
import PacketParsing

/// JSON Lines output: one object per packet, keys always present (null when unknown).
///
/// The schema is a public contract (docs/json-schema.md): keys are only ever added, never
/// renamed or removed. Written by hand into a reusable byte buffer because the monitor emits
/// hundreds of thousands of events per second and Foundation's encoder allocates per value.
public enum JSONLines {
    /// Appends one event as a JSON object followed by a newline (a one-off: a stream of events
    /// goes through an `Encoder`).
    public static func append(_ event: borrowing PacketEvent, to out: inout [UInt8]) {
        var encoder = Encoder()
        var buffer = ByteBuffer(capacity: 1024)
        encoder.append(event, to: &buffer)
        buffer.withBytes { out.append(contentsOf: $0) }
    }

    /// Encodes a stream of events. Holds the text of the current second
    /// (`{"time":"2026-11-24T23:04:44.`), so consecutive events copy it instead of computing a
    /// civil date and six divisions each.
    ///
    /// It also keeps the encoded owner keys (`"uid"` … `"reason"`) of the last event: packets come
    /// in runs from one owner (the flow cache hands out the same attribution, the name caches the
    /// same strings), so the next event of that owner copies them — and the equality check is
    /// cheap, since identical strings and arrays compare by identity first. One set of such texts
    /// per direction: with inbound logging a connection's packets alternate out and in, and each
    /// direction has its own flow keys, interfaces and (without a uid) owner keys.
    public struct Encoder {
        private var second: UInt64 = .max
        private var secondText: [UInt8] = []
        private var outbound = DirectionTexts()
        private var inbound = DirectionTexts()

        struct DirectionTexts {
            /// The last owner encoded (kept, so the storage its fingerprint points at stays alive).
            var lastOwner: PacketOwner?
            var lastFingerprint = OwnerFingerprint.unmatched
            var ownerText: [UInt8] = []
            var repeated = RepeatedText()
        }

        public init() {}

        /// Appends one event as a JSON object followed by a newline.
        public mutating func append(_ event: borrowing PacketEvent, to out: inout ByteBuffer) {
            let time = event.metadata.time
            if time.seconds != second {
                second = time.seconds
                secondText.removeAll(keepingCapacity: true)
                secondText.append(ascii: "{\"time\":\"")
                RFC3339.appendSecond(time.seconds, to: &secondText)
            }
            secondText.withUnsafeBytes { out.write($0) }
            out.write(decimal: min(time.microseconds, 999_999), zeroPaddedTo: 6)
            out.write(UInt8(ascii: "Z"))
            if event.metadata.direction == .inbound {
                Self.appendRest(event, texts: &inbound, to: &out)
            } else {
                Self.appendRest(event, texts: &outbound, to: &out)
            }
        }

        /// Everything after the time, with `texts` of the event's direction.
        @inline(__always)
        private static func appendRest(_ event: borrowing PacketEvent, texts: inout DirectionTexts, to out: inout ByteBuffer) {
            JSONLines.appendPacketKeys(event, to: &out, memo: &texts.repeated)
            let fingerprint = OwnerFingerprint(event.owner)
            if fingerprint != texts.lastFingerprint {
                texts.ownerText.removeAll(keepingCapacity: true)
                var fresh = ByteBuffer(capacity: 1024)
                JSONLines.appendOwnerKeys(event.owner, to: &fresh)
                fresh.withBytes { texts.ownerText.append(contentsOf: $0) }
                texts.lastOwner = event.owner
                texts.lastFingerprint = fingerprint
            }
            texts.ownerText.withUnsafeBytes { out.write($0) }
            out.write("}\n")
        }
    }

    /// The keys after the time, up to `iface_out`.
    static func appendPacketKeys(_ event: borrowing PacketEvent, to out: inout ByteBuffer,
                                 memo: inout RepeatedText) {
        // Fields read through `event` (borrowed): a local copy of the metadata moved ~250 bytes
        // (the prefix inline) per event.
        let packet = event.packet
        out.write("\",\"dir\":\"")
        out.write(event.metadata.direction == .inbound ? "in" : "out")
        out.write("\",\"hook\":")
        switch event.metadata.hook {
        case .prerouting?: out.write("\"prerouting\"")
        case .input?: out.write("\"input\"")
        case .forward?: out.write("\"forward\"")
        case .output?: out.write("\"output\"")
        case .postrouting?: out.write("\"postrouting\"")
        case .ingress?: out.write("\"ingress\"")
        case .egress?: out.write("\"egress\"")
        case nil: out.write("null")
        }
        out.write(",\"group\":")
        out.write(decimal: UInt64(event.metadata.origin.number))
        out.write(",\"seq\":")
        appendNumber(event.metadata.sequence.map(UInt64.init), to: &out)
        out.write(",\"prefix\":")
        if event.metadata.prefix != memo.prefix || !memo.hasPrefix {
            memo.prefix = event.metadata.prefix
            memo.hasPrefix = true
            var fresh = ByteBuffer(capacity: 256)
            appendPrefix(event.metadata.prefix, to: &fresh)
            memo.prefixText.removeAll(keepingCapacity: true)
            fresh.withBytes { memo.prefixText.append(contentsOf: $0) }
        }
        memo.prefixText.withUnsafeBytes { out.write($0) }
        // The flow's keys (family … dport) repeat for every packet of the flow: encoded once.
        let flow = RepeatedText.Flow(family: packet.family, protocolNumber: packet.protocolNumber,
                                     source: packet.source, destination: packet.destination,
                                     sourcePort: packet.sourcePort, destinationPort: packet.destinationPort)
        if memo.flow != flow {
            memo.flow = flow
            var fresh = ByteBuffer(capacity: 256)
            appendFlowKeys(packet, to: &fresh)
            memo.flowText.removeAll(keepingCapacity: true)
            fresh.withBytes { memo.flowText.append(contentsOf: $0) }
        }
        memo.flowText.withUnsafeBytes { out.write($0) }
        if let icmp = packet.icmp {
            out.write(",\"icmp_type\":")
            appendNumber(icmp.type.map(UInt64.init), to: &out)
            out.write(",\"icmp_code\":")
            appendNumber(icmp.code.map(UInt64.init), to: &out)
            out.write(",\"icmp_id\":")
            appendNumber(icmp.echoIdentifier.map(UInt64.init), to: &out)
        } else {
            // UDP, TCP and the rest: one write for the three nulls.
            out.write(",\"icmp_type\":null,\"icmp_code\":null,\"icmp_id\":null")
        }
        out.write(",\"tcp_flags\":")
        appendString(packet.tcpFlags?.letters, to: &out)
        out.write(",\"len\":")
        out.write(decimal: UInt64(max(0, packet.totalLength)))
        let names = SIMD4(OwnerFingerprint.bits(event.inputInterfaceName).0, OwnerFingerprint.bits(event.inputInterfaceName).1,
                          OwnerFingerprint.bits(event.outputInterfaceName).0, OwnerFingerprint.bits(event.outputInterfaceName).1)
        if memo.interfaceNames != names || memo.interfaces == nil {
            // Kept alive with the bits, so equal bits keep meaning equal names.
            memo.interfaces = (event.inputInterfaceName, event.outputInterfaceName)
            memo.interfaceNames = names
            var fresh = ByteBuffer(capacity: 128)
            fresh.write(",\"iface_in\":")
            appendString(event.inputInterfaceName, to: &fresh)
            fresh.write(",\"iface_out\":")
            appendString(event.outputInterfaceName, to: &fresh)
            memo.interfacesText.removeAll(keepingCapacity: true)
            fresh.withBytes { memo.interfacesText.append(contentsOf: $0) }
        }
        memo.interfacesText.withUnsafeBytes { out.write($0) }
    }

    /// `family` to `dport`.
    static func appendFlowKeys(_ packet: PacketSummary, to out: inout ByteBuffer) {
        out.write(",\"family\":\"")
        out.write(packet.family == .ipv4 ? "ipv4" : "ipv6")
        out.write("\",\"proto\":\"")
        if let name = IPProtocolNames.name(for: packet.protocolNumber) {
            var name = name
            name.withUTF8 { out.write(UnsafeRawBufferPointer($0)) }
        } else {
            out.write(decimal: UInt64(packet.protocolNumber))
        }
        out.write("\",\"proto_num\":")
        out.write(decimal: UInt64(packet.protocolNumber))
        out.write(",\"src\":\"")
        appendAddress(packet.source, to: &out)
        out.write("\",\"dst\":\"")
        appendAddress(packet.destination, to: &out)
        out.write("\",\"sport\":")
        appendNumber(packet.sourcePort.map(UInt64.init), to: &out)
        out.write(",\"dport\":")
        appendNumber(packet.destinationPort.map(UInt64.init), to: &out)
    }

    /// Text that repeats from event to event (the flow's keys, the log prefix, the interface
    /// names), encoded once.
    struct RepeatedText {
        struct Flow: Equatable {
            var family: IPFamily
            var protocolNumber: UInt8
            var source: IPAddress
            var destination: IPAddress
            var sourcePort: UInt16?
            var destinationPort: UInt16?
        }
        var flow: Flow?
        var flowText: [UInt8] = []
        var prefix: LogPrefix?
        var hasPrefix = false
        var prefixText: [UInt8] = []
        var interfaces: (String?, String?)?
        var interfaceNames = SIMD4<UInt64>()
        var interfacesText: [UInt8] = []
    }

    /// The owner's keys, `uid` to `reason`, then `owner_uid`.
    static func appendOwnerKeys(_ owner: PacketOwner, to out: inout ByteBuffer) {
        out.write(",\"uid\":")
        appendNumber(owner.uid.map(UInt64.init), to: &out)
        out.write(",\"gid\":")
        appendNumber(owner.gid.map(UInt64.init), to: &out)
        out.write(",\"user\":")
        appendString(owner.userName, to: &out)
        out.write(",\"group_name\":")
        appendString(owner.groupName, to: &out)
        out.write(",\"cgroup\":")
        appendString(owner.cgroupPath, to: &out)
        out.write(",\"unit\":")
        appendString(owner.unit, to: &out)
        out.write(",\"cgroup_id\":")
        appendNumber(owner.cgroupID, to: &out)
        appendAttribution(owner.attribution, to: &out)
        appendOwnerUID(owner, to: &out)
    }

    static func appendAttribution(_ attribution: OwnerAttribution?, to out: inout ByteBuffer) {
        // One process (exact, single), or a program without a pid (program).
        let named = attribution?.named
        out.write(",\"pid\":")
        appendNumber(named?.pid.map { UInt64($0) }, to: &out)
        out.write(",\"comm\":")
        appendString(named?.comm, to: &out)
        out.write(",\"exe\":")
        appendString(named?.exe, to: &out)
        out.write(",\"processes\":")
        if let processes = attribution?.processes {
            out.write(UInt8(ascii: "["))
            for (index, process) in processes.enumerated() {
                if index > 0 { out.write(UInt8(ascii: ",")) }
                out.write("{\"pid\":")
                out.write(decimal: UInt64(process.pid))
                out.write(",\"comm\":")
                appendString(process.comm, to: &out)
                out.write(",\"exe\":")
                appendString(process.exe, to: &out)
                out.write(UInt8(ascii: "}"))
            }
            out.write(UInt8(ascii: "]"))
        } else {
            out.write("null")
        }
        out.write(",\"confidence\":")
        appendString(attribution?.confidence.rawValue, to: &out)
        out.write(",\"reason\":")
        appendString(attribution?.reason, to: &out)
    }

    /// `owner_uid` (added with issue 13): the uid the kernel attached, else the one nfowner found
    /// for the owner it names (the receiving socket's, the flow owner's).
    static func appendOwnerUID(_ owner: PacketOwner, to out: inout ByteBuffer) {
        out.write(",\"owner_uid\":")
        appendNumber((owner.uid ?? owner.attribution?.uid).map(UInt64.init), to: &out)
    }

    @inline(__always)
    static func appendAddress(_ address: IPAddress, to out: inout ByteBuffer) {
        out.write(maximum: IPAddress.maximumTextLength) { address.writeText(into: $0) }
    }

    static func appendNumber(_ value: UInt64?, to out: inout ByteBuffer) {
        if let value { out.write(decimal: value) } else { out.write("null") }
    }

    /// A JSON string with RFC 8259 escaping, or null.
    static func appendString(_ value: String?, to out: inout ByteBuffer) {
        guard var value else {
            out.write("null")
            return
        }
        // A native String is contiguous UTF-8 already: escape it in runs, not byte by byte
        // (per-byte appends were half of the JSON path's instructions; exe paths are long).
        value.withUTF8 { appendEscaped(UnsafeRawBufferPointer($0), to: &out) }
    }

    /// The log prefix: straight from its bytes when they are ASCII (always, for nfowner's own
    /// rules), through a repairing String otherwise (JSON must be valid UTF-8).
    static func appendPrefix(_ prefix: LogPrefix?, to out: inout ByteBuffer) {
        guard let prefix else {
            out.write("null")
            return
        }
        prefix.withBytes { bytes in
            if bytes.allSatisfy({ $0 < 0x80 }) {
                appendEscaped(bytes, to: &out)
            } else {
                appendString(String(decoding: bytes, as: UTF8.self), to: &out)
            }
        }
    }

    /// `bytes` (valid UTF-8) as a JSON string: quotes, backslashes and control characters
    /// escaped, every other run of bytes copied at once.
    static func appendEscaped(_ bytes: UnsafeRawBufferPointer, to out: inout ByteBuffer) {
        out.write(UInt8(ascii: "\""))
        var runStart = 0
        var index = 0
        while index < bytes.count {
            // Eight bytes at a time while none needs escaping (paths are long, escapes rare).
            if index + 8 <= bytes.count, let base = bytes.baseAddress,
               !Self.needsEscape(base.loadUnaligned(fromByteOffset: index, as: UInt64.self)) {
                index += 8
                continue
            }
            let byte = bytes[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == 0x7F else {
                index += 1
                continue
            }
            out.write(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            switch byte {
            case UInt8(ascii: "\""): out.write("\\\"")
            case UInt8(ascii: "\\"): out.write("\\\\")
            case 0x0A: out.write("\\n")
            case 0x0D: out.write("\\r")
            case 0x09: out.write("\\t")
            default:
                out.write("\\u00")
                out.write(hexDigit(byte >> 4))
                out.write(hexDigit(byte & 0x0F))
            }
            index += 1
            runStart = index
        }
        out.write(UnsafeRawBufferPointer(rebasing: bytes[runStart...]))
        out.write(UInt8(ascii: "\""))
    }

    /// Whether any of the eight bytes in `word` is a control character (< 0x20), `"`, `\` or
    /// DEL: the classic "has a zero byte" bit test (exact: no false negatives, and none of the
    /// false positives that would only cost a byte-by-byte look).
    @inline(__always)
    static func needsEscape(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ value: UInt64) -> Bool { (value &- ones) & ~value & highs != 0 }
        // A byte below 0x20 (bytes >= 0x80 have their high bit set and are never flagged).
        let below = (word &- ones &* 0x20) & ~word & highs != 0
        return below || hasZero(word ^ (ones &* 0x22)) || hasZero(word ^ (ones &* 0x5C))
            || hasZero(word ^ (ones &* 0x7F))
    }

    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// The keys of every event, in output order: the contract tests check against docs.
    public static let keys = [
        "time", "dir", "hook", "group", "seq", "prefix", "family", "proto", "proto_num", "src", "dst",
        "sport", "dport", "icmp_type", "icmp_code", "icmp_id", "tcp_flags", "len", "iface_in", "iface_out",
        "uid", "gid", "user", "group_name", "cgroup", "unit", "cgroup_id",
        "pid", "comm", "exe", "processes", "confidence", "reason", "owner_uid",
    ]
}
