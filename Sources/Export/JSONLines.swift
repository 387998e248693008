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

    /// Encodes a stream of events, as a few cached texts and the handful of values that change
    /// from packet to packet:
    ///
    ///     {"time":"2026-11-24T23:04:44.   the current second                (per second)
    ///     123456                          microseconds
    ///     Z","dir":…,"seq":               direction, hook, group             (head)
    ///     4242                            sequence number
    ///     ,"prefix":…,"dport":443         prefix and the flow's keys         (middle)
    ///     ,"icmp_type":…,"len":60         ICMP, TCP flags, length
    ///     ,"iface_in":…,"owner_uid":0}⏎   interfaces and the owner's keys    (tail)
    ///
    /// Packets come in runs of one flow and one owner (the flow cache hands out the same
    /// attribution, the name caches the same strings), so each cached text is checked with a
    /// cheap comparison — identical strings and arrays compare by identity — and copied. One set
    /// per direction: with inbound logging a connection's packets alternate out and in, and each
    /// direction has its own flow keys, interfaces and (without a uid) owner keys.
    public struct Encoder {
        private var second: UInt64 = .max
        private var secondText: [UInt8] = []
        private var outbound = DirectionTexts()
        private var inbound = DirectionTexts()
        /// The NFLOG sequence numbers of one group grow by one from event to event.
        private var sequenceDigits = DecimalCounter()

        struct DirectionTexts {
            /// Direction, hook and group as one word (see `headKey`), and their text.
            var headKey = UInt64.max
            var head: [UInt8] = []
            /// The prefix and flow the middle text was made from (the prefix itself only when
            /// its summary does not tell it: longer than 24 bytes).
            var prefixSummary = LogPrefix.Summary(nil)
            var longPrefix: LogPrefix?
            var flow = RepeatedFlow.none
            var middle: [UInt8] = []
            /// The interface names and owner the tail was made from, kept so the storage their
            /// bits point at stays alive (equal bits keep meaning equal strings).
            var interfaces: (String?, String?) = (nil, nil)
            var interfaceBits = SIMD4<UInt64>(repeating: .max)
            var lastOwner: PacketOwner?
            var lastFingerprint = OwnerFingerprint.unmatched
            var tail: [UInt8] = []
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
            out.write(sixDigits: min(time.microseconds, 999_999))
            // The direction from the head's key when a head of that key was written before, so
            // the hook is not decoded again for every event.
            let headKey = Self.headKey(event)
            if headKey == outbound.headKey {
                Self.appendRest(event, headKey: headKey, texts: &outbound, sequenceDigits: &sequenceDigits, to: &out)
            } else if headKey == inbound.headKey || event.metadata.direction == .inbound {
                Self.appendRest(event, headKey: headKey, texts: &inbound, sequenceDigits: &sequenceDigits, to: &out)
            } else {
                Self.appendRest(event, headKey: headKey, texts: &outbound, sequenceDigits: &sequenceDigits, to: &out)
            }
        }

        /// Everything after the microseconds, with `texts` of the event's direction.
        @inline(__always)
        private static func appendRest(_ event: borrowing PacketEvent, headKey: UInt64, texts: inout DirectionTexts,
                                       sequenceDigits: inout DecimalCounter, to out: inout ByteBuffer) {
            if headKey != texts.headKey {
                texts.headKey = headKey
                Self.remake(&texts.head) { JSONLines.appendHead(event, to: &$0) }
            }
            texts.head.withUnsafeBytes { out.write($0) }
            if let sequence = event.metadata.sequence {
                out.write(decimal: UInt64(sequence), counting: &sequenceDigits)
            } else {
                out.write("null")
            }

            let flow = RepeatedFlow(event.packet)
            let prefixSummary = event.metadata.prefixSummary
            if flow != texts.flow || prefixSummary != texts.prefixSummary
                || (!prefixSummary.isExact && event.metadata.prefix != texts.longPrefix) {
                texts.flow = flow
                texts.prefixSummary = prefixSummary
                texts.longPrefix = prefixSummary.isExact ? nil : event.metadata.prefix
                Self.remake(&texts.middle) { buffer in
                    buffer.write(",\"prefix\":")
                    JSONLines.appendPrefix(event.metadata.prefix, to: &buffer)
                    JSONLines.appendFlowKeys(event.packet, to: &buffer)
                }
            }
            texts.middle.withUnsafeBytes { out.write($0) }
            JSONLines.appendPacketValues(event.packet, to: &out)

            let interfaceBits = SIMD4(OwnerFingerprint.bits(event.inputInterfaceName).0, OwnerFingerprint.bits(event.inputInterfaceName).1,
                                      OwnerFingerprint.bits(event.outputInterfaceName).0, OwnerFingerprint.bits(event.outputInterfaceName).1)
            let fingerprint = OwnerFingerprint(event.owner)
            if fingerprint != texts.lastFingerprint || interfaceBits != texts.interfaceBits {
                texts.interfaces = (event.inputInterfaceName, event.outputInterfaceName)
                texts.interfaceBits = interfaceBits
                texts.lastOwner = event.owner
                texts.lastFingerprint = fingerprint
                Self.remake(&texts.tail) { buffer in
                    buffer.write(",\"iface_in\":")
                    appendString(event.inputInterfaceName, to: &buffer)
                    buffer.write(",\"iface_out\":")
                    appendString(event.outputInterfaceName, to: &buffer)
                    JSONLines.appendOwnerKeys(event.owner, to: &buffer)
                    buffer.write("}\n")
                }
            }
            texts.tail.withUnsafeBytes { out.write($0) }
        }

        /// What the head text says in one word, from stored fields alone: the hook (family and
        /// number), the group, and which interfaces are known (the direction of a packet seen
        /// without a hook).
        @inline(__always)
        static func headKey(_ event: borrowing PacketEvent) -> UInt64 {
            UInt64(event.metadata.inputInterface == nil ? 0 : 1) | UInt64(event.metadata.outputInterface == nil ? 0 : 2)
                | UInt64(event.metadata.family) << 8 | UInt64(event.metadata.hookNumber) << 16
                | UInt64(event.metadata.origin.number) << 32
        }


        /// Replaces `text` with what `body` writes (only when a cached text changes).
        static func remake(_ text: inout [UInt8], _ body: (inout ByteBuffer) -> Void) {
            var fresh = ByteBuffer(capacity: 1024)
            body(&fresh)
            text.removeAll(keepingCapacity: true)
            fresh.withBytes { text.append(contentsOf: $0) }
        }
    }

    /// From the time's `Z` to `"seq":`.
    static func appendHead(_ event: borrowing PacketEvent, to out: inout ByteBuffer) {
        out.write("Z\",\"dir\":\"")
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
    }

    /// The keys after `dport` that change from packet to packet of a flow: `icmp_type` to `len`.
    @inline(__always)
    static func appendPacketValues(_ packet: borrowing PacketSummary, to out: inout ByteBuffer) {
        if let icmp = packet.icmp {
            out.write(",\"icmp_type\":")
            appendNumber(icmp.type.map(UInt64.init), to: &out)
            out.write(",\"icmp_code\":")
            appendNumber(icmp.code.map(UInt64.init), to: &out)
            out.write(",\"icmp_id\":")
            appendNumber(icmp.echoIdentifier.map(UInt64.init), to: &out)
            out.write(",\"tcp_flags\":null")
        } else if let flags = packet.tcpFlags {
            out.write(",\"icmp_type\":null,\"icmp_code\":null,\"icmp_id\":null,\"tcp_flags\":\"")
            appendLetters(flags, to: &out)
            out.write(UInt8(ascii: "\""))
        } else {
            // UDP and the rest: one write for the four nulls.
            out.write(",\"icmp_type\":null,\"icmp_code\":null,\"icmp_id\":null,\"tcp_flags\":null")
        }
        out.write(",\"len\":")
        out.write(decimal: UInt64(max(0, packet.totalLength)))
    }

    /// The flags' letters (`TCPFlags.letters`) straight into the buffer: no String per packet.
    @inline(__always)
    static func appendLetters(_ flags: TCPFlags, to out: inout ByteBuffer) {
        let letters: StaticString = "FSRPAUEC"
        out.reserve(8)
        for index in 0..<8 where flags.rawValue & (1 << UInt8(index)) != 0 {
            out.write(letters.utf8Start[index])
        }
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

    /// A flow's keys as the middle text was made from them, packed into five words so that the
    /// per-event comparison is a few vector operations (the derived `==` over optionals and
    /// address enums was ~50 instructions an event).
    struct RepeatedFlow: Equatable {
        /// Family, protocol, address kinds and ports, each optional port with its own bit.
        var keys: UInt64
        /// Source and destination address: an IPv4 address in the low word, zero above it.
        var addresses: SIMD4<UInt64>

        @inline(__always)
        init(_ packet: borrowing PacketSummary) {
            let (source, sourceIsV6) = Self.words(packet.source)
            let (destination, destinationIsV6) = Self.words(packet.destination)
            addresses = SIMD4(source.0, source.1, destination.0, destination.1)
            var keys: UInt64 = packet.family == .ipv4 ? 0 : 1
            keys |= UInt64(packet.protocolNumber) << 1
            if sourceIsV6 { keys |= 1 << 9 }
            if destinationIsV6 { keys |= 1 << 10 }
            if let port = packet.sourcePort { keys |= 1 << 11 | UInt64(port) << 12 }
            if let port = packet.destinationPort { keys |= 1 << 28 | UInt64(port) << 29 }
            self.keys = keys
        }

        private init(keys: UInt64, addresses: SIMD4<UInt64>) {
            self.keys = keys
            self.addresses = addresses
        }

        @inline(__always)
        private static func words(_ address: IPAddress) -> ((UInt64, UInt64), Bool) {
            switch address {
            case .v4(let value): ((UInt64(value), 0), false)
            case .v6(let high, let low): ((high, low), true)
            }
        }

        @inline(__always)
        static func == (lhs: RepeatedFlow, rhs: RepeatedFlow) -> Bool {
            let difference = lhs.addresses ^ rhs.addresses
            let half = difference.lowHalf | difference.highHalf
            return half[0] | half[1] | (lhs.keys ^ rhs.keys) == 0
        }

        /// Matches no packet's flow (key bits no packet sets): for an encoder that has encoded
        /// nothing yet.
        static let none = RepeatedFlow(keys: .max, addresses: SIMD4())
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
