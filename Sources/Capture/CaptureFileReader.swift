import BinaryParsing

// Reads pcapng (either byte order, several sections) and classic pcap (either byte order,
// microsecond or nanosecond timestamps) from bytes in memory.
//
//   pcapng:  SHB | IDB | … | EPB | DPIB | EPB | … [ SHB | … ]    blocks framed as in PcapngFormat.swift
//   pcap:    global header (24) | record header (16) + data | record header (16) + data | …
//
// Every read goes through the checked reads (nil past the end), every length is compared with
// what is left before it is used, and an error is typed and sticks: a malformed or cut file
// never traps, and after an error `next()` throws the same error again.

/// Reads the packets of a capture file one at a time.
///
///     var reader = try CaptureFileReader(bytes: fileBytes)
///     while let record = try reader.next() { … }
///
/// A file cut short (a capture killed mid-write) throws `.truncated` after its last complete
/// record; `recordsBefore` in the error counts the records read before it.
public struct CaptureFileReader: Sendable {
    public enum Format: Sendable, Equatable {
        case pcapng
        case pcap(ByteOrder, nanosecondTimestamps: Bool)
    }

    public let format: Format
    /// Packet records returned so far.
    public private(set) var recordsRead = 0
    /// Where the next block or record starts.
    public private(set) var offset = 0
    /// The current section's interfaces by id (pcap: the one the global header describes).
    public private(set) var interfaces: [CaptureInterfaceDescription] = []
    /// The current section's process-information blocks, by index.
    public private(set) var processes: [CaptureProcess] = []
    /// The current section's shb_userappl.
    public private(set) var sectionApplication: String?

    private let bytes: [UInt8]
    /// The current section's byte order (pcapng) or the file's (pcap).
    private var order: ByteOrder = .littleEndian
    private var failure: CaptureFileError?

    /// Reads the start of `bytes`: the pcap global header, or checks for a pcapng section header.
    /// Throws `.truncated` when the file is too short to tell (an empty file too), and
    /// `.notACaptureFile` when it starts with something else.
    public init(bytes: [UInt8]) throws(CaptureFileError) {
        self.bytes = bytes
        guard bytes.count >= 4 else {
            throw CaptureFileError(.truncated, "the file is \(bytes.count) bytes long: too short for a capture file header",
                                   offset: 0, recordsBefore: 0)
        }
        let first = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        switch first {
        case PcapngBlockType.sectionHeader:
            format = .pcapng
        case 0xA1B2_C3D4, 0xD4C3_B2A1, 0xA1B2_3C4D, 0x4D3C_B2A1:
            // Read little-endian: the first pair is microseconds, the second nanoseconds; the
            // swapped value means the writer was big-endian.
            let order: ByteOrder = first == 0xA1B2_C3D4 || first == 0xA1B2_3C4D ? .littleEndian : .bigEndian
            format = .pcap(order, nanosecondTimestamps: first == 0xA1B2_3C4D || first == 0x4D3C_B2A1)
            self.order = order
            let copy = bytes
            let header = copy.withUnsafeBytes { buffer in
                Result { () throws(CaptureFileError) in try Self.pcapGlobalHeader(buffer, order: order) }
            }
            var interface = try header.get()
            if case .pcap(_, nanosecondTimestamps: true) = format { interface.timestampResolution = 9 }
            interfaces = [interface]
            offset = 24
        default:
            throw CaptureFileError(.notACaptureFile, "the file starts with \(hex32(first)), neither a pcapng section header nor a pcap magic number",
                                   offset: 0, recordsBefore: 0)
        }
    }

    /// The next packet record; nil at the end of the file. Blocks that are not packets are read
    /// on the way (interfaces, process blocks, new sections) or skipped (unknown types).
    public mutating func next() throws(CaptureFileError) -> CaptureRecord? {
        if let failure { throw failure }
        let copy = bytes
        let result = copy.withUnsafeBytes { buffer in
            Result { () throws(CaptureFileError) -> CaptureRecord? in
                switch format {
                case .pcapng: try nextPcapngRecord(buffer)
                case .pcap: try nextPcapRecord(buffer)
                }
            }
        }
        do {
            let record = try result.get()
            if record != nil { recordsRead += 1 }
            return record
        } catch {
            failure = error
            throw error
        }
    }

    /// Every record of `bytes`, and the error that stopped reading before the end, if any.
    public static func readAll(_ bytes: [UInt8]) -> (records: [CaptureRecord], error: CaptureFileError?) {
        var records: [CaptureRecord] = []
        do {
            var reader = try CaptureFileReader(bytes: bytes)
            while let record = try reader.next() { records.append(record) }
            return (records, nil)
        } catch {
            return (records, error)
        }
    }

    private func error(_ code: CaptureFileError.Code, _ reason: String, at offset: Int) -> CaptureFileError {
        CaptureFileError(code, reason, offset: offset, recordsBefore: recordsRead)
    }

    // MARK: pcap

    /// snaplen at 16, link type at 20 (its low 16 bits; the high ones hold FCS information).
    private static func pcapGlobalHeader(_ buffer: UnsafeRawBufferPointer,
                                         order: ByteOrder) throws(CaptureFileError) -> CaptureInterfaceDescription {
        guard let major = buffer.uint16(at: 4, order), let snapLength = buffer.uint32(at: 16, order),
              let linkType = buffer.uint32(at: 20, order) else {
            throw CaptureFileError(.truncated, "the pcap global header needs 24 bytes; the file has \(buffer.count)",
                                   offset: 0, recordsBefore: 0)
        }
        guard major == 2 else {
            throw CaptureFileError(.unsupportedVersion, "pcap version \(major) is not 2", offset: 0, recordsBefore: 0)
        }
        return CaptureInterfaceDescription(linkType: UInt16(truncatingIfNeeded: linkType), snapLength: snapLength)
    }

    private mutating func nextPcapRecord(_ buffer: UnsafeRawBufferPointer) throws(CaptureFileError) -> CaptureRecord? {
        let start = offset
        let remaining = buffer.count - start
        guard remaining > 0 else { return nil }
        guard let seconds = buffer.uint32(at: start, order), let fraction = buffer.uint32(at: start + 4, order),
              let captured = buffer.uint32(at: start + 8, order), let original = buffer.uint32(at: start + 12, order)
        else {
            throw error(.truncated, "the file ends \(remaining) bytes into a 16-byte pcap record header", at: start)
        }
        guard let data = buffer.subrange(at: start + 16, count: Int(captured)) else {
            throw error(.truncated, "pcap record of \(captured) captured bytes; the file has \(remaining - 16) left", at: start)
        }
        offset = start + 16 + Int(captured)
        guard case .pcap(_, let nanoseconds) = format, let interface = interfaces.first else { return nil }
        // A fraction of a second at or past one second (a sloppy writer) carries into the seconds.
        let perSecond: UInt64 = nanoseconds ? 1_000_000_000 : 1_000_000
        let wholeSeconds = UInt64(seconds) + UInt64(fraction) / perSecond
        let rest = UInt64(fraction) % perSecond
        let time = CaptureTime(seconds: wholeSeconds, nanoseconds: UInt32(nanoseconds ? rest : rest * 1000))
        return CaptureRecord(interfaceID: 0, interface: interface, time: time, originalLength: Int(original),
                             data: Array(data))
    }

    // MARK: pcapng

    private mutating func nextPcapngRecord(_ buffer: UnsafeRawBufferPointer) throws(CaptureFileError) -> CaptureRecord? {
        while true {
            let start = offset
            let remaining = buffer.count - start
            guard remaining > 0 else { return nil }
            guard remaining >= 12, let rawType = buffer.uint32(at: start, order) else {
                throw error(.truncated, "the file ends \(remaining) bytes into a block header", at: start)
            }
            if rawType == PcapngBlockType.sectionHeader {
                // The type reads the same in both byte orders; the magic after the length says
                // which one the section uses, and must be settled before the length is read.
                guard let magic = buffer.uint32(at: start + 8, .littleEndian) else {
                    throw error(.truncated, "the file ends inside a section header", at: start)
                }
                switch magic {
                case byteOrderMagic: order = .littleEndian
                case byteOrderMagic.byteSwapped: order = .bigEndian
                default:
                    throw error(.badByteOrderMagic, "section header byte-order magic \(hex32(magic)) is not 0x1a2b3c4d in either byte order", at: start)
                }
            }
            guard let length = buffer.uint32(at: start + 4, order) else {
                throw error(.truncated, "the file ends inside a block header", at: start)
            }
            let type = rawType
            guard length >= 12, length % 4 == 0 else {
                throw error(.badBlockLength, "block of type \(hex32(type)) has length \(length): below 12 or not a multiple of 4", at: start)
            }
            guard let block = buffer.subrange(at: start, count: Int(length)) else {
                throw error(.truncated, "block of type \(hex32(type)) is \(length) bytes; the file has \(remaining) left", at: start)
            }
            guard let trailer = block.uint32(at: Int(length) - 4, order), trailer == length else {
                throw error(.blockLengthMismatch, "block of type \(hex32(type)) starts with length \(length) and ends with \(block.uint32(at: Int(length) - 4, order) ?? 0)", at: start)
            }
            guard let body = block.subrange(at: 8, count: Int(length) - 12) else {
                throw error(.badBlockLength, "block length \(length) leaves no body", at: start)
            }
            switch type {
            case PcapngBlockType.sectionHeader:
                try readSectionHeader(body, at: start)
            case PcapngBlockType.interfaceDescription:
                try readInterfaceDescription(body, at: start)
            case PcapngBlockType.darwinProcessInformation:
                try readProcessInformation(body, at: start)
            case PcapngBlockType.enhancedPacket:
                let record = try readEnhancedPacket(body, at: start)
                offset = start + Int(length)
                return record
            case PcapngBlockType.simplePacket:
                let record = try readSimplePacket(body, at: start)
                offset = start + Int(length)
                return record
            default:
                break  // Statistics, name resolution, custom and unknown blocks: not needed here.
            }
            offset = start + Int(length)
        }
    }

    /// Byte-order magic (checked above) | major | minor | section length (i64) | options.
    private mutating func readSectionHeader(_ body: UnsafeRawBufferPointer, at start: Int) throws(CaptureFileError) {
        guard let major = body.uint16(at: 4, order), let minor = body.uint16(at: 6, order), body.count >= 16 else {
            throw error(.badBlockLength, "section header body of \(body.count) bytes; at least 16 needed", at: start)
        }
        guard major == 1 else {
            throw error(.unsupportedVersion, "pcapng section version \(major).\(minor); only 1.x is known", at: start)
        }
        interfaces = []
        processes = []
        sectionApplication = nil
        var options = OptionReader(body, from: 16, order: order)
        while let (code, value) = try options.next(recordsBefore: recordsRead, blockStart: start) {
            if code == PcapngOption.sectionUserApplication { sectionApplication = Self.string(value) }
        }
    }

    /// Link type (u16) | reserved (u16) | snap length (u32) | options.
    private mutating func readInterfaceDescription(_ body: UnsafeRawBufferPointer, at start: Int) throws(CaptureFileError) {
        guard let linkType = body.uint16(at: 0, order), let snapLength = body.uint32(at: 4, order) else {
            throw error(.badBlockLength, "interface description body of \(body.count) bytes; at least 8 needed", at: start)
        }
        var interface = CaptureInterfaceDescription(linkType: linkType, snapLength: snapLength)
        var options = OptionReader(body, from: 8, order: order)
        while let (code, value) = try options.next(recordsBefore: recordsRead, blockStart: start) {
            switch code {
            case PcapngOption.interfaceName:
                interface.name = Self.string(value)
            case PcapngOption.interfaceTimestampResolution:
                guard value.count == 1, let resolution = value.byte(at: 0) else {
                    throw error(.badOption, "if_tsresol is \(value.count) bytes; it must be 1", at: start)
                }
                guard TimestampScale(resolution) != nil else {
                    throw error(.badField, "if_tsresol \(resolution) is finer than a 64-bit timestamp can count", at: start)
                }
                interface.timestampResolution = resolution
            case PcapngOption.interfaceTimestampOffset:
                guard value.count == 8, let seconds = value.uint64(at: 0, order) else {
                    throw error(.badOption, "if_tsoffset is \(value.count) bytes; it must be 8", at: start)
                }
                interface.timestampOffset = Int64(bitPattern: seconds)
            default:
                break
            }
        }
        interfaces.append(interface)
    }

    /// Process id (u32) | options (2 = name).
    private mutating func readProcessInformation(_ body: UnsafeRawBufferPointer, at start: Int) throws(CaptureFileError) {
        guard let pid = body.uint32(at: 0, order) else {
            throw error(.badBlockLength, "process information body of \(body.count) bytes; at least 4 needed", at: start)
        }
        var process = CaptureProcess(pid: pid, name: nil)
        var options = OptionReader(body, from: 4, order: order)
        while let (code, value) = try options.next(recordsBefore: recordsRead, blockStart: start) {
            if code == PcapngOption.processName { process.name = Self.string(value) }
        }
        processes.append(process)
    }

    /// Interface id | timestamp high | timestamp low | captured length | original length
    /// | data, padded to 4 | options.
    private func readEnhancedPacket(_ body: UnsafeRawBufferPointer, at start: Int) throws(CaptureFileError) -> CaptureRecord {
        guard let interfaceID = body.uint32(at: 0, order), let high = body.uint32(at: 4, order),
              let low = body.uint32(at: 8, order), let captured = body.uint32(at: 12, order),
              let original = body.uint32(at: 16, order) else {
            throw error(.badBlockLength, "enhanced packet body of \(body.count) bytes; at least 20 needed", at: start)
        }
        let interface = try self.interface(interfaceID, at: start)
        guard let data = body.subrange(at: 20, count: Int(captured)) else {
            throw error(.badField, "enhanced packet: captured length \(captured) exceeds the \(body.count - 20) bytes of the block", at: start)
        }
        // The data's padding may be missing at the very end of a block; options start after
        // it when it is there.
        let optionsStart = min(20 + paddedTo4(Int(captured)), body.count)
        var record = CaptureRecord(interfaceID: Int(interfaceID), interface: interface,
                                   time: Self.time(UInt64(high) << 32 | UInt64(low), interface),
                                   originalLength: Int(original), data: Array(data))
        var options = OptionReader(body, from: optionsStart, order: order)
        while let (code, value) = try options.next(recordsBefore: recordsRead, blockStart: start) {
            switch code {
            case PcapngOption.comment:
                record.comments.append(Self.string(value))
            case PcapngOption.packetFlags:
                guard value.count == 4, let flags = value.uint32(at: 0, order) else {
                    throw error(.badOption, "epb_flags is \(value.count) bytes; it must be 4", at: start)
                }
                record.flags = flags
            case PcapngOption.packetDarwinProcessIndex:
                guard value.count == 4, let index = value.uint32(at: 0, order) else {
                    throw error(.badOption, "process index option 0x8001 is \(value.count) bytes; it must be 4", at: start)
                }
                record.processIndex = index
                record.process = Int(index) < processes.count ? processes[Int(index)] : nil
            case PcapngOption.customStringCopiable, PcapngOption.customBinaryCopiable,
                 PcapngOption.customStringLocal, PcapngOption.customBinaryLocal:
                guard let enterprise = value.uint32(at: 0, order), let data = value.suffix(from: 4) else {
                    throw error(.badOption, "custom option \(code) is \(value.count) bytes; its enterprise number needs 4", at: start)
                }
                record.customOptions.append(CaptureCustomOption(code: code, enterpriseNumber: enterprise, data: Array(data)))
            default:
                break
            }
        }
        return record
    }

    /// Original length | data (as much as the block, the snap length and the original length
    /// allow); no timestamp, always interface 0.
    private func readSimplePacket(_ body: UnsafeRawBufferPointer, at start: Int) throws(CaptureFileError) -> CaptureRecord {
        guard let original = body.uint32(at: 0, order) else {
            throw error(.badBlockLength, "simple packet body of \(body.count) bytes; at least 4 needed", at: start)
        }
        let interface = try self.interface(0, at: start)
        var captured = min(Int(original), body.count - 4)
        if interface.snapLength != 0 { captured = min(captured, Int(interface.snapLength)) }
        guard let data = body.subrange(at: 4, count: captured) else {
            throw error(.badField, "simple packet of \(captured) bytes does not fit its block", at: start)
        }
        return CaptureRecord(interfaceID: 0, interface: interface, time: CaptureTime(seconds: 0, nanoseconds: 0),
                             originalLength: Int(original), data: Array(data))
    }

    private func interface(_ id: UInt32, at start: Int) throws(CaptureFileError) -> CaptureInterfaceDescription {
        guard Int(id) < interfaces.count else {
            throw error(.unknownInterface, "packet on interface \(id); the section describes \(interfaces.count)", at: start)
        }
        return interfaces[Int(id)]
    }

    /// UTF-8 text of an option (invalid sequences repaired); trailing NULs, which some writers
    /// add though the format says strings are not terminated, removed.
    private static func string(_ value: UnsafeRawBufferPointer) -> String {
        var end = value.count
        while end > 0, value.byte(at: end - 1) == 0 { end -= 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: value[0..<end]), as: UTF8.self)
    }

    /// A timestamp in the interface's units, as seconds and nanoseconds, with if_tsoffset added
    /// (saturating at the epoch and at the end of UInt64 seconds).
    static func time(_ units: UInt64, _ interface: CaptureInterfaceDescription) -> CaptureTime {
        // The resolution was validated when the interface was read; microseconds otherwise.
        let scale = TimestampScale(interface.timestampResolution) ?? .microseconds
        var time = scale.time(units)
        if interface.timestampOffset >= 0 {
            let (sum, overflow) = time.seconds.addingReportingOverflow(UInt64(interface.timestampOffset))
            time.seconds = overflow ? .max : sum
        } else {
            let back = interface.timestampOffset.magnitude
            time.seconds = time.seconds >= back ? time.seconds - back : 0
        }
        return time
    }
}

/// if_tsresol as arithmetic: 10^-n seconds (n ≤ 19, the largest power of ten a UInt64 holds)
/// or 2^-n (n ≤ 63).
struct TimestampScale {
    enum Base { case decimal, binary }
    let base: Base
    let exponent: Int

    /// pcapng's default: 10^-6 s.
    static let microseconds = TimestampScale(base: .decimal, exponent: 6)

    private init(base: Base, exponent: Int) {
        self.base = base
        self.exponent = exponent
    }

    /// nil for resolutions whose units per second do not fit a UInt64.
    init?(_ resolution: UInt8) {
        if resolution & 0x80 == 0 {
            guard resolution <= 19 else { return nil }
            base = .decimal
        } else {
            guard resolution & 0x7F <= 63 else { return nil }
            base = .binary
        }
        exponent = Int(resolution & 0x7F)
    }

    func time(_ units: UInt64) -> CaptureTime {
        switch base {
        case .decimal:
            var perSecond: UInt64 = 1
            for _ in 0..<exponent { perSecond *= 10 }
            let fraction = units % perSecond
            let nanoseconds: UInt64
            if exponent <= 9 {
                var factor: UInt64 = 1
                for _ in exponent..<9 { factor *= 10 }
                nanoseconds = fraction * factor
            } else {
                var divisor: UInt64 = 1
                for _ in 9..<exponent { divisor *= 10 }
                nanoseconds = fraction / divisor
            }
            return CaptureTime(seconds: units / perSecond, nanoseconds: UInt32(nanoseconds))
        case .binary:
            guard exponent > 0 else { return CaptureTime(seconds: units, nanoseconds: 0) }
            let fraction = units & ((1 << UInt64(exponent)) - 1)
            // fraction × 10^9 / 2^exponent in 128 bits: the product outgrows 64 bits past 2^34.
            let product = fraction.multipliedFullWidth(by: 1_000_000_000)
            let nanoseconds = (product.low >> UInt64(exponent)) | (product.high << UInt64(64 - exponent))
            return CaptureTime(seconds: units >> UInt64(exponent), nanoseconds: UInt32(truncatingIfNeeded: nanoseconds))
        }
    }
}

/// Walks an option list: code (u16) | length (u16) | value padded to 4, until opt_endofopt or
/// the end of the block (a list without opt_endofopt is allowed).
struct OptionReader {
    let region: UnsafeRawBufferPointer
    let order: ByteOrder
    var position: Int
    var finished = false

    init(_ body: UnsafeRawBufferPointer, from start: Int, order: ByteOrder) {
        region = body
        self.order = order
        position = start
    }

    /// The next option; nil after opt_endofopt or at the end. Throws `.badOption` (through the
    /// reader's context) when a header or value runs past the block.
    mutating func next(recordsBefore: Int, blockStart: Int) throws(CaptureFileError)
        -> (code: UInt16, value: UnsafeRawBufferPointer)? {
        guard !finished, position < region.count else { return nil }
        guard let code = region.uint16(at: position, order), let length = region.uint16(at: position + 2, order) else {
            throw CaptureFileError(.badOption, "an option header is cut off: \(region.count - position) bytes left in the block",
                                   offset: blockStart, recordsBefore: recordsBefore)
        }
        if code == PcapngOption.endOfOptions {
            finished = true
            return nil
        }
        guard let value = region.subrange(at: position + 4, count: Int(length)) else {
            throw CaptureFileError(.badOption, "option \(code) of \(length) bytes runs past its block (\(region.count - position - 4) left)",
                                   offset: blockStart, recordsBefore: recordsBefore)
        }
        // A missing final padding is tolerated: the next read finds the end of the block.
        position = min(position + 4 + paddedTo4(Int(length)), region.count)
        return (code, value)
    }
}

/// `0x` and eight hex digits, for block types and magic numbers in error messages.
func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
