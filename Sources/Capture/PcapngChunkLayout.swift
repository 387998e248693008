/// Lays whole pcapng blocks into fixed-size chunks for direct writes, so that every write ends
/// on a block boundary: a chunk the next blocks do not fit into is closed with padding
/// (`PcapngBlocks.padding`), and a partly filled chunk written early (a capture that goes quiet)
/// is padded up to the next alignment boundary. A file cut after any write — SIGKILL, a full
/// disk — is then readable up to its last block, with no torn block at the end.
///
/// Pure bookkeeping over memory the caller owns: the caller encodes packets' blocks right after
/// `filled` (in room beyond `chunkSize`, so that a packet never has to be split), commits them
/// (all, or the longest run of whole blocks that fits), hands the ranges this returns to the
/// disk, and gives a fresh chunk after `takeFull`.
public struct PcapngChunkLayout: Sendable {
    /// Bytes per chunk: a multiple of `alignment`.
    public let chunkSize: Int
    /// What a direct write's length and offset must be a multiple of.
    public let alignment: Int
    /// Bytes of the current chunk holding blocks or padding.
    public private(set) var filled = 0
    /// Bytes of the current chunk already handed out to be written (`writeEarly`).
    public private(set) var handedOut = 0

    public init(chunkSize: Int, alignment: Int) {
        precondition(alignment > 0 && alignment % 4 == 0 && chunkSize % alignment == 0 && chunkSize >= alignment,
                     "chunk size \(chunkSize) is not a multiple of the alignment \(alignment)")
        self.chunkSize = chunkSize
        self.alignment = alignment
    }

    /// Whether the current chunk is full (its rest is to be written with `takeFull`).
    public var isFull: Bool { filled == chunkSize }

    /// Blocks were encoded at `filled..<end` of the chunk: keeps them if they fit — the space left
    /// after them is 0, 16 or at least 24 bytes, what a padding block can fill — and returns
    /// true. Otherwise returns false and keeps nothing: the caller commits the longest run of whole
    /// blocks that fits (`commitWholeBlocks`), moves the rest to the start of the next chunk,
    /// then `closeWithPadding` and `takeFull` (padding overwrites what was moved).
    public mutating func commit(upTo end: Int) -> Bool {
        guard end >= filled, fits(end) else { return false }
        filled = end
        return true
    }

    /// A length field at `offset` that is no block's (below 12, not a multiple of 4, or past
    /// what was encoded): a bug in the encoder, never input from outside.
    public struct MalformedBlock: Error, Equatable {
        public var offset: Int
        public init(offset: Int) { self.offset = offset }
    }

    /// Blocks were encoded at `filled..<end` of `chunk`: commits the longest run of whole blocks
    /// from `filled` that fits (all of them, in one step, when they do) and returns where it
    /// ends — `end` when everything fits. Otherwise the caller moves the rest to the next chunk
    /// (see `commit(upTo:)`); nothing committed into an empty chunk means a block longer than
    /// a chunk.
    public mutating func commitWholeBlocks(upTo end: Int,
                                           in chunk: UnsafeRawBufferPointer) throws(MalformedBlock) -> Int {
        if commit(upTo: end) { return end }
        var runEnd = filled
        while runEnd < end {
            guard runEnd + 8 <= chunk.count else { throw MalformedBlock(offset: runEnd) }
            let length = Int(UInt32(littleEndian: chunk.loadUnaligned(fromByteOffset: runEnd + 4, as: UInt32.self)))
            guard length >= 12, length % 4 == 0, length <= end - runEnd else { throw MalformedBlock(offset: runEnd) }
            guard fits(runEnd + length) else { break }
            runEnd += length
        }
        filled = runEnd
        return runEnd
    }

    /// Pads the chunk from `filled` to its end (`isFull` after): the next blocks go to a new chunk.
    public mutating func closeWithPadding(in chunk: UnsafeMutableRawBufferPointer) {
        pad(to: chunkSize, in: chunk)
    }

    /// For a write before the chunk is full: pads the chunk to the next alignment boundary (to
    /// its end when that is nearer than a padding block fits) and returns the range to write —
    /// from the end of what was handed out before. Empty when nothing is new, and when the
    /// padding filled the chunk (`isFull`: the caller writes it with `takeFull`, as after `commit`).
    public mutating func writeEarly(in chunk: UnsafeMutableRawBufferPointer) -> Range<Int> {
        guard filled > handedOut else { return handedOut..<handedOut }
        var target = (filled + alignment - 1) / alignment * alignment
        if target != filled, !PcapngBlocks.canPad(target - filled) { target += alignment }
        pad(to: min(target, chunkSize), in: chunk)
        if isFull { return handedOut..<handedOut }
        defer { handedOut = filled }
        return handedOut..<filled
    }

    /// The range of a full chunk not written yet, and a fresh start for the next chunk.
    public mutating func takeFull() -> Range<Int> {
        precondition(isFull, "the chunk is not full")
        defer { filled = 0; handedOut = 0 }
        return handedOut..<chunkSize
    }

    /// What is left to write of a file that ends here: exactly the blocks, unpadded (written
    /// through the page cache), and a fresh start.
    public mutating func takeTail() -> Range<Int> {
        defer { filled = 0; handedOut = 0 }
        return handedOut..<filled
    }

    private func fits(_ end: Int) -> Bool {
        let rest = chunkSize - end
        return rest == 0 || (rest > 0 && PcapngBlocks.canPad(rest))
    }

    private mutating func pad(to end: Int, in chunk: UnsafeMutableRawBufferPointer) {
        guard end > filled else { return }
        precondition(chunk.count >= end, "the chunk holds \(chunk.count) bytes, not \(end)")
        UnsafeMutableRawBufferPointer(rebasing: chunk[filled..<end]).copyBytes(from: PcapngBlocks.padding(length: end - filled))
        filled = end
    }
}
