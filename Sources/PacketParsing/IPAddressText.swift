// Text forms of IPAddress: dotted quad for IPv4, RFC 5952 canonical text for IPv6.
//
// RFC 5952 in short: lowercase hex, no leading zeros in a group, the longest run of two or more
// zero groups becomes "::" (the first such run on ties, a single zero group stays "0"), and
// IPv4-mapped addresses (::ffff:0:0/96) end in a dotted quad. That is also what glibc's
// inet_ntop prints for them, so our output matches ss, ip and nft.

extension IPAddress {
    /// The longest text this type produces: INET6_ADDRSTRLEN without the NUL (45); the longest
    /// actual form is 39 characters ("ffff:…:ffff").
    public static let maximumTextLength = 45

    /// An IPv4 address from its four octets, first octet first.
    public init(v4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self = .v4(UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
    }

    /// An address from its network-order bytes: 4 for IPv4, 16 for IPv6; nil for other counts.
    public init?(bytes: some Collection<UInt8>) {
        var value: (UInt64, UInt64) = (0, 0)
        switch bytes.count {
        case 4:
            var v4: UInt32 = 0
            for byte in bytes { v4 = v4 << 8 | UInt32(byte) }
            self = .v4(v4)
        case 16:
            for (index, byte) in bytes.enumerated() {
                if index < 8 { value.0 = value.0 << 8 | UInt64(byte) } else { value.1 = value.1 << 8 | UInt64(byte) }
            }
            self = .v6(high: value.0, low: value.1)
        default:
            return nil
        }
    }

    /// Appends the same text as `description`, as UTF-8, without creating a String.
    public func appendText(to buffer: inout [UInt8]) {
        // Writing into stack storage and appending once is ~4× faster than appending per byte.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maximumTextLength) { storage in
            var sink = BufferSink(storage: storage)
            writeText(to: &sink)
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: storage[..<sink.count]))
        }
    }

    /// Writes the text through `sink`; shared by `description` and `appendText(to:)`.
    func writeText<Sink: TextSink>(to sink: inout Sink) {
        switch self {
        case .v4(let value):
            writeDottedQuad(value, to: &sink)
        case .v6(let high, let low):
            if high == 0, low >> 32 == 0xFFFF {
                for byte in "::ffff:".utf8 { sink.write(byte) }
                writeDottedQuad(UInt32(truncatingIfNeeded: low), to: &sink)
                return
            }
            func group(_ index: Int) -> UInt16 {
                let half = index < 4 ? high : low
                return UInt16(truncatingIfNeeded: half >> (48 - 16 * (index % 4)))
            }
            // The longest run of zero groups, at least 2 long; the first wins ties.
            var bestStart = -1, bestLength = 1
            var runStart = -1
            for index in 0...8 {
                if index < 8, group(index) == 0 {
                    if runStart < 0 { runStart = index }
                } else if runStart >= 0 {
                    if index - runStart > bestLength {
                        bestStart = runStart
                        bestLength = index - runStart
                    }
                    runStart = -1
                }
            }
            var index = 0
            while index < 8 {
                if index == bestStart {
                    sink.write(UInt8(ascii: ":"))
                    sink.write(UInt8(ascii: ":"))
                    index += bestLength
                    continue
                }
                if index > 0, index != bestStart + bestLength { sink.write(UInt8(ascii: ":")) }
                writeHex(group(index), to: &sink)
                index += 1
            }
        }
    }

    private func writeDottedQuad<Sink: TextSink>(_ value: UInt32, to sink: inout Sink) {
        for shift in stride(from: UInt32(24), through: 0, by: -8) {
            if shift != 24 { sink.write(UInt8(ascii: ".")) }
            let octet = UInt8(truncatingIfNeeded: value >> shift)
            if octet >= 100 { sink.write(UInt8(ascii: "0") + octet / 100) }
            if octet >= 10 { sink.write(UInt8(ascii: "0") + octet / 10 % 10) }
            sink.write(UInt8(ascii: "0") + octet % 10)
        }
    }

    private func writeHex<Sink: TextSink>(_ value: UInt16, to sink: inout Sink) {
        var started = false
        for shift in stride(from: UInt16(12), through: 0, by: -4) {
            let digit = UInt8(truncatingIfNeeded: value >> shift) & 0x0F
            if digit != 0 || started || shift == 0 {
                started = true
                sink.write(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
            }
        }
    }
}

extension IPAddress {
    /// Writes the same text as `description` to `storage`, which must hold at least
    /// `maximumTextLength` bytes; returns how many were written.
    @inlinable
    public func writeText(into storage: UnsafeMutableBufferPointer<UInt8>) -> Int {
        writeTextBytes(into: storage)
    }

    @usableFromInline
    func writeTextBytes(into storage: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var sink = BufferSink(storage: storage)
        writeText(to: &sink)
        return sink.count
    }
}

extension IPAddress: CustomStringConvertible {
    /// "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1".
    public var description: String {
        String(unsafeUninitializedCapacity: Self.maximumTextLength) { storage in
            var sink = BufferSink(storage: storage)
            writeText(to: &sink)
            return sink.count
        }
    }
}

/// Where IPAddress text goes, one UTF-8 byte at a time (generic, so the writes inline).
protocol TextSink {
    mutating func write(_ byte: UInt8)
}

/// Writes into fixed storage; bytes beyond its capacity are dropped rather than written out of
/// bounds (our texts are at most 39 bytes, the storage is 45).
struct BufferSink: TextSink {
    let storage: UnsafeMutableBufferPointer<UInt8>
    var count = 0
    mutating func write(_ byte: UInt8) {
        guard count < storage.count else { return }
        storage[count] = byte
        count += 1
    }
}
