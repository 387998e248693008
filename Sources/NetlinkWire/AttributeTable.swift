// Where each attribute of one message lies, found in a single pass (what libmnl's
// mnl_attr_parse fills into a `tb[]` array), so a decoder reads the attributes it knows directly
// instead of switching over every attribute in a loop.
//
//   area:  [len|type|value...pad][len|type|value...pad] ...
//                   ^ start(type), length(type)
//
// Held inline (no allocation): it is built for every logged packet.

import BinaryParsing

@usableFromInline
struct AttributeTable {
    /// Attribute types below this are indexed; higher ones are skipped as unknown.
    @usableFromInline static let capacity = 32

    /// Offset of each type's value in the area, -1 when absent. The last attribute of a type wins.
    @usableFromInline var starts = InlineArray<32, Int32>(repeating: -1)
    @usableFromInline var lengths = InlineArray<32, UInt16>(repeating: 0)
    @usableFromInline let area: UnsafeRawBufferPointer

    /// Indexes the attributes in `area` (the bytes after a message's fixed header);
    /// `baseOffset` is the area's offset in the batch, for error offsets.
    ///
    /// Throws `.invalidAttributeLength` for an nla_len below 4 or past the end of `area`. Up to
    /// 3 trailing bytes too short for an attribute header are ignored as padding, as the
    /// kernel's non-strict nla_parse does.
    /// `check` sees every attribute (type, value length, batch offset) and may reject it.
    @inline(__always)
    init(area: UnsafeRawBufferPointer, baseOffset: Int,
         check: (_ type: UInt16, _ length: Int, _ offset: Int) throws(NetlinkWireError) -> Void
    ) throws(NetlinkWireError) {
        self.area = area
        // Offsets are held as Int32 to keep the table small.
        guard area.count <= Int(Int32.max) else {
            throw NetlinkWireError(.invalidAttributeLength, "attribute area of \(area.count) bytes is too large",
                                   offset: baseOffset)
        }
        var cursor = AttributeCursor(area: area, baseOffset: baseOffset)
        while let attribute = try cursor.next() {
            try check(attribute.type, attribute.valueLength, attribute.offset)
            guard attribute.type < Self.capacity else { continue }
            starts[Int(attribute.type)] = Int32(attribute.valueStart)
            lengths[Int(attribute.type)] = UInt16(attribute.valueLength)
        }
    }

    /// The value of the attribute of `type`, nil when the message has none.
    @inlinable @inline(__always)
    func value(_ type: UInt16) -> UnsafeRawBufferPointer? {
        let index = Int(type)
        guard index < Self.capacity else { return nil }
        let start = Int(starts[index])
        let length = Int(lengths[index])
        // Checked again (the cursor already did): cheap, and keeps every read provably inside.
        guard start >= 0, start + length <= area.count else { return nil }
        return UnsafeRawBufferPointer(rebasing: area[start..<(start + length)])
    }
}
