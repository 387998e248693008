import PacketModel

/// The blocks of an nfowner pcapng file, one encoder each (little-endian, every length computed
/// here). `PcapngWriter` decides which blocks a packet needs; these only encode them.
public enum PcapngBlocks {
    /// Section Header Block:
    ///
    ///     type 0x0A0D0D0A | total length | byte-order magic 0x1A2B3C4D | major 1 | minor 0
    ///     | section length -1 (unknown: the file is written as packets come) | options | length
    ///
    /// with `shb_userappl` = `application` when given.
    public static func appendSectionHeader(application: String?, to out: inout [UInt8]) {
        appendBlock(type: PcapngBlockType.sectionHeader, to: &out) { body in
            body.appendLittleEndian(byteOrderMagic)
            body.appendLittleEndian(UInt16(1))
            body.appendLittleEndian(UInt16(0))
            body.appendLittleEndian(Int64(-1))
            var options = OptionList()
            if let application { options.add(PcapngOption.sectionUserApplication, utf8Prefix(application)) }
            options.finish(into: &body)
        }
    }

    /// Interface Description Block:
    ///
    ///     type 1 | total length | link type (u16) | reserved 0 (u16) | snap length (u32)
    ///     | options: if_name | length
    ///
    /// No if_tsresol: the default, microseconds, is what nfowner's timestamps are in.
    /// `snapLength` 0 means "no limit" to readers.
    public static func appendInterfaceDescription(linkType: UInt16, snapLength: UInt32, name: String?,
                                                  to out: inout [UInt8]) {
        appendBlock(type: PcapngBlockType.interfaceDescription, to: &out) { body in
            body.appendLittleEndian(linkType)
            body.appendLittleEndian(UInt16(0))
            body.appendLittleEndian(snapLength)
            var options = OptionList()
            if let name { options.add(PcapngOption.interfaceName, utf8Prefix(name)) }
            options.finish(into: &body)
        }
    }

    /// Apple's Darwin process-information block:
    ///
    ///     type 0x80000001 | total length | pid (u32) | options: name (code 2) | length
    ///
    /// An Enhanced Packet Block refers to it by its index among the section's process blocks
    /// (option 0x8001), so the writer emits each one before the first packet that names it.
    public static func appendDarwinProcessInformation(pid: UInt32, name: String?, to out: inout [UInt8]) {
        appendBlock(type: PcapngBlockType.darwinProcessInformation, to: &out) { body in
            body.appendLittleEndian(pid)
            var options = OptionList()
            if let name, !name.isEmpty { options.add(PcapngOption.processName, utf8Prefix(name)) }
            options.finish(into: &body)
        }
    }

    /// What an Enhanced Packet Block says besides its bytes.
    public struct PacketOptions: Sendable, Equatable {
        /// epb_flags bits 0–1; nil writes no epb_flags.
        public var direction: Direction?
        /// opt_comment (see `OwnerComment` for nfowner's text).
        public var comment: String?
        /// The owner JSON, written as a custom option (2988) after PEN 32473.
        public var ownerJSON: String?
        /// Option 0x8001: the index of a process-information block in the section.
        public var processIndex: UInt32?

        public init(direction: Direction? = nil, comment: String? = nil, ownerJSON: String? = nil,
                    processIndex: UInt32? = nil) {
            self.direction = direction
            self.comment = comment
            self.ownerJSON = ownerJSON
            self.processIndex = processIndex
        }
    }

    /// Enhanced Packet Block:
    ///
    ///     type 6 | total length | interface id | timestamp high u32 | timestamp low u32
    ///     | captured length | original length | data, padded to 4
    ///     | options: epb_flags, opt_comment, custom 2988 (PEN, JSON), 0x8001 (process index) | length
    ///
    /// `timestamp` counts the interface's units (microseconds for nfowner's interfaces) since the
    /// Unix epoch. The whole of `data` is written: the writer cuts it to the snap length first.
    public static func appendEnhancedPacket(interfaceID: UInt32, timestamp: UInt64, originalLength: UInt32,
                                            data: UnsafeRawBufferPointer, options: PacketOptions,
                                            to out: inout [UInt8]) {
        var owner = OptionList()
        owner.addOwnerText(comment: options.comment, json: options.ownerJSON)
        appendEnhancedPacket(interfaceID: interfaceID, timestamp: timestamp, originalLength: originalLength,
                             data: data, direction: options.direction, ownerOptions: owner.bytes,
                             processIndex: options.processIndex, to: &out)
    }

    /// The same with the owner's options already encoded (the writer keeps them for runs of
    /// packets from one owner instead of encoding them again per packet). Every length is known
    /// up front, so the block goes out in a handful of appends of fixed-size records rather than
    /// a field at a time or through an option list of its own: this runs once per captured packet.
    static func appendEnhancedPacket<Output: BlockOutput>(
        interfaceID: UInt32, timestamp: UInt64, originalLength: UInt32, data: UnsafeRawBufferPointer,
        direction: Direction?, ownerOptions: [UInt8], processIndex: UInt32?, to out: inout Output
    ) {
        let paddedData = paddedTo4(data.count)
        let optionBytes = (direction == nil ? 0 : 8) + ownerOptions.count + (processIndex == nil ? 0 : 8)
        let total = 28 + paddedData + (optionBytes == 0 ? 0 : optionBytes + 4) + 4
        let totalLength = UInt32(clamping: total)
        let head = EnhancedPacketHead(
            type: PcapngBlockType.enhancedPacket.littleEndian, totalLength: totalLength.littleEndian,
            interfaceID: interfaceID.littleEndian, timestampHigh: UInt32(truncatingIfNeeded: timestamp >> 32).littleEndian,
            timestampLow: UInt32(truncatingIfNeeded: timestamp).littleEndian,
            capturedLength: UInt32(clamping: data.count).littleEndian, originalLength: originalLength.littleEndian)
        out.appendBytes(of: head)
        out.appendRaw(data)
        out.appendPadding(after: data.count)
        if let direction {
            // Bits 0-1 of epb_flags: 01 inbound, 10 outbound (00 would be "unknown").
            out.appendOption(PcapngOption.packetFlags, UInt32(direction == .inbound ? 0b01 : 0b10))
        }
        out.append(contentsOf: ownerOptions)
        if let processIndex {
            let option = UInt64(PcapngOption.packetDarwinProcessIndex) | UInt64(4) << 16 | UInt64(processIndex) << 32
            out.appendBytes(of: EnhancedPacketTail(processIndexOption: option.littleEndian,
                                                   endOfOptions: UInt32(PcapngOption.endOfOptions).littleEndian,
                                                   totalLength: totalLength.littleEndian))
        } else {
            if optionBytes != 0 { out.appendLittleEndian(UInt32(PcapngOption.endOfOptions)) }
            out.appendLittleEndian(totalLength)
        }
    }

    /// The end of an Enhanced Packet Block that names a process (most of nfowner's): the process
    /// option, opt_endofopt and the length again, appended as one piece.
    private struct EnhancedPacketTail {
        var processIndexOption: UInt64
        var endOfOptions: UInt32
        var totalLength: UInt32
    }

    /// Whether a padding block of exactly `length` bytes exists: 16, or 24 and more, in
    /// multiples of 4 (an empty Name Resolution Block is 16 bytes; one with a comment option is 24
    /// plus the comment).
    public static func canPad(_ length: Int) -> Bool {
        length % 4 == 0 && (length == 16 || length >= 24)
    }

    /// Blocks of exactly `length` bytes in all (`canPad(length)`) that every reader skips: Name
    /// Resolution Blocks without records, their length made up by a comment that says why they
    /// are there (one block up to 65,556 bytes, more for a longer gap). Direct writes end on the
    /// device's block size; these fill the gap so every write still ends on a pcapng block
    /// boundary. Wireshark and tshark show nothing for them (an NRB's comment belongs to no
    /// packet), unlike a custom block, which tshark lists as a frame.
    ///
    ///     type 4 | total length | nrb_record_end (type 0, length 0)
    ///     [| opt_comment (code 1, length L-24) "nfowner: padding…" and spaces | opt_endofopt] | length
    public static func padding(length: Int) -> [UInt8] {
        precondition(canPad(length), "no padding is \(length) bytes long")
        var out: [UInt8] = []
        out.reserveCapacity(length)
        var left = length
        while left > 0 {
            var piece = min(left, largestPaddingBlock)
            if !canPad(left - piece) && left - piece != 0 { piece -= 24 }
            appendPaddingBlock(length: piece, to: &out)
            left -= piece
        }
        return out
    }

    /// 24 bytes of block and option framing plus the longest comment a u16 length allows that is
    /// a multiple of 4.
    static let largestPaddingBlock = 24 + 65_532

    private static func appendPaddingBlock(length: Int, to out: inout [UInt8]) {
        out.appendLittleEndian(PcapngBlockType.nameResolution)
        out.appendLittleEndian(UInt32(length))
        out.appendLittleEndian(UInt32(0))  // nrb_record_end
        if length >= 24 {
            let textLength = length - 24
            out.appendLittleEndian(PcapngOption.comment)
            out.appendLittleEndian(UInt16(textLength))
            let text = Array(paddingText.utf8.prefix(textLength))
            out.append(contentsOf: text)
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: textLength - text.count))
            out.appendLittleEndian(UInt32(PcapngOption.endOfOptions))
        }
        out.appendLittleEndian(UInt32(length))
    }

    static let paddingText = "nfowner: padding up to a disk block boundary (direct I/O)"

    /// An Enhanced Packet Block's fixed fields, in file order (seven u32s: no padding between them).
    private struct EnhancedPacketHead {
        var type: UInt32
        var totalLength: UInt32
        var interfaceID: UInt32
        var timestampHigh: UInt32
        var timestampLow: UInt32
        var capturedLength: UInt32
        var originalLength: UInt32
    }

    /// Appends `type`, a placeholder length, the body, and the length again — then stores the
    /// real length in front, so no block is built in a buffer of its own first.
    static func appendBlock(type: UInt32, to out: inout [UInt8], body: (inout [UInt8]) -> Void) {
        let start = out.count
        out.appendLittleEndian(type)
        out.appendLittleEndian(UInt32(0))
        body(&out)
        let total = UInt32(clamping: out.count - start + 4)
        out.appendLittleEndian(total)
        out.storeLittleEndian(total, at: start + 4)
    }

    /// The longest an option value can be: its length is a u16.
    static let maximumOptionLength = Int(UInt16.max)

    /// The UTF-8 of `text`, cut at a character boundary so it fits in one option.
    static func utf8Prefix(_ text: String, maximum: Int = maximumOptionLength) -> [UInt8] {
        var bytes = Array(text.utf8)
        guard bytes.count > maximum else { return bytes }
        var end = maximum
        // Back off over continuation bytes (10xxxxxx) to the start of the cut character.
        while end > 0, bytes[end] & 0xC0 == 0x80 { end -= 1 }
        bytes.removeSubrange(end...)
        return bytes
    }
}

/// An option list being written: each value padded to 4 bytes, opt_endofopt at the end.
struct OptionList {
    var bytes: [UInt8] = []

    /// Callers cut text to fit (`utf8Prefix`); a value that still exceeds the u16 length is cut
    /// here rather than trapping.
    mutating func add(_ code: UInt16, _ value: [UInt8]) {
        let length = min(value.count, PcapngBlocks.maximumOptionLength)
        bytes.appendLittleEndian(code)
        bytes.appendLittleEndian(UInt16(length))
        bytes.append(contentsOf: value[0..<length])
        bytes.appendPadding(after: length)
    }

    mutating func add(_ code: UInt16, littleEndian value: UInt32) {
        bytes.appendOption(code, value)
    }

    /// The comment, then the JSON as a custom option behind nfowner's PEN. A comment too long for
    /// an option is cut at a character; JSON that long loses its `processes` list first (a cut
    /// would not parse), and is left out if it still does not fit.
    mutating func addOwnerText(comment: String?, json: String?) {
        if let comment { add(PcapngOption.comment, PcapngBlocks.utf8Prefix(comment)) }
        if let json {
            addOwnerJSON(Array(json.utf8))
        }
    }

    mutating func addOwnerJSON(_ json: [UInt8]) {
        guard json.count <= PcapngBlocks.maximumOptionLength - 4 else { return }
        var value: [UInt8] = []
        value.reserveCapacity(4 + json.count)
        value.appendLittleEndian(nfownerPrivateEnterpriseNumber)
        value.append(contentsOf: json)
        add(PcapngOption.customStringCopiable, value)
    }

    /// The list and its opt_endofopt; nothing at all when the list is empty (a block without
    /// options may end right after its fixed fields).
    func finish(into body: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        body.append(contentsOf: bytes)
        body.appendLittleEndian(PcapngOption.endOfOptions)
        body.appendLittleEndian(UInt16(0))
    }
}
