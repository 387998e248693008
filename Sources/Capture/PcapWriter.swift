import PacketModel

/// Writes the classic pcap format (libpcap's, readable by every tool since the 1990s): a global
/// header, then a record header and the bytes of each packet. It has no place for a comment, so
/// these files carry no owner — pcapng is nfowner's format; this is for tools that read nothing
/// else.
///
///     global header (24 bytes):
///       magic 0xA1B2C3D4 (microsecond timestamps) | version 2.4 (u16, u16) | thiszone 0 (i32)
///       | sigfigs 0 (u32) | snaplen (u32) | link type 101, LINKTYPE_RAW (u32)
///     record header (16 bytes), then the captured bytes (no padding):
///       seconds (u32) | microseconds (u32) | captured length (u32) | original length (u32)
///
/// Little-endian, like nfowner's pcapng files.
public struct PcapWriter: Sendable {
    /// Bytes kept of each packet; 0 means no limit (written as 262144, what tcpdump uses).
    public let snapLength: UInt32

    public init(snapLength: UInt32) {
        self.snapLength = snapLength
    }

    /// The 24-byte global header; once, at the start of the file.
    public func appendFileHeader(to out: inout some BlockOutput) {
        out.appendLittleEndian(UInt32(0xA1B2_C3D4))
        out.appendLittleEndian(UInt16(2))
        out.appendLittleEndian(UInt16(4))
        out.appendLittleEndian(Int32(0))
        out.appendLittleEndian(UInt32(0))
        out.appendLittleEndian(snapLength == 0 ? UInt32(262_144) : snapLength)
        out.appendLittleEndian(UInt32(LinkType.raw))
    }

    /// One packet record: the time is the event's; the original length the IP header's (or the
    /// captured length when that is larger, as in `PcapngWriter`). Times past 2106 do not fit
    /// the format's u32 seconds and are written as its last second.
    public func append(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        appendRecord(event, payload: payload, to: &out)
    }

    /// `append` into raw memory (`RawBlockOutput`).
    public func append(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer, to out: inout RawBlockOutput) {
        appendRecord(event, payload: payload, to: &out)
    }

    private func appendRecord<Output: BlockOutput>(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer,
                                                   to out: inout Output) {
        let kept = snapLength == 0 ? payload.count : min(payload.count, Int(snapLength))
        let time = event.metadata.time
        out.appendLittleEndian(UInt32(clamping: time.seconds))
        out.appendLittleEndian(UInt32(min(time.microseconds, 999_999)))
        out.appendLittleEndian(UInt32(clamping: kept))
        out.appendLittleEndian(UInt32(clamping: max(event.packet.totalLength, payload.count)))
        out.appendRaw(UnsafeRawBufferPointer(rebasing: payload[0..<kept]))
    }

    /// `append` for a payload held in an array.
    public func append(_ event: borrowing PacketEvent, payload: [UInt8], to out: inout [UInt8]) {
        payload.withUnsafeBytes { append(event, payload: $0, to: &out) }
    }
}
