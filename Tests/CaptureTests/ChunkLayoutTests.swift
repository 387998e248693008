import Capture
import PacketModel
import Testing

/// The direct-write layout: whole blocks in aligned chunks, padded so that every write ends on
/// a block boundary, checked by writing a "file" the way `DirectCaptureWriter` does and reading
/// it back — whole, and cut after each write (what SIGKILL leaves).
@Suite struct ChunkLayoutTests {
    /// A file assembled from the ranges the layout hands out, at their offsets.
    struct SimulatedFile {
        var bytes: [UInt8] = []
        /// The file's length after each write, in order.
        var writeEnds: [Int] = []
        var alignedWrites = true

        mutating func write(_ chunk: UnsafeMutableRawBufferPointer, _ range: Range<Int>, chunkOffset: Int,
                            alignment: Int?) {
            guard !range.isEmpty else { return }
            let offset = chunkOffset + range.lowerBound
            if let alignment, offset % alignment != 0 || range.count % alignment != 0 { alignedWrites = false }
            if bytes.count < offset + range.count { bytes += [UInt8](repeating: 0, count: offset + range.count - bytes.count) }
            for index in range { bytes[chunkOffset + index] = chunk[index] }
            writeEnds.append(offset + range.count)
        }
    }

    /// The sample packets with payloads of many lengths, encoded straight into the chunk and
    /// committed every one to three packets, as the direct writer does, with early writes after
    /// some of them. Small chunks, so that a run crosses many chunk ends.
    static func run(chunkSize: Int, alignment: Int, packets: Int, seed: UInt64) -> (file: SimulatedFile, payloads: [[UInt8]]) {
        var random = SplitMix64(state: seed)
        var writer = PcapngWriter(snapLength: 65535)
        var layout = PcapngChunkLayout(chunkSize: chunkSize, alignment: alignment)
        let room = 8192  // past the chunk's end: longer than three packets here (at most ~1,100 bytes each)
        var chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize + room, alignment: alignment)
        var file = SimulatedFile()
        var chunkOffset = 0
        var encoded = 0
        var payloads: [[UInt8]] = []
        let owners = [Owners.alice, Owners.nginx, Owners.uidOnly, Owners.oddName]

        func handOverFullChunk() {
            file.write(chunk, layout.takeFull(), chunkOffset: chunkOffset, alignment: alignment)
            chunkOffset += chunkSize
        }
        // What the writer's commit does: whole blocks that fit stay, the rest opens the next chunk.
        func commit() {
            while true {
                let kept: Int
                do { kept = try layout.commitWholeBlocks(upTo: encoded, in: UnsafeRawBufferPointer(chunk)) } catch {
                    Issue.record("a block that is not whole: \(error)")
                    break
                }
                if kept == encoded { break }
                #expect(layout.filled > 0, "every block fits into an empty chunk")
                let moved = Array(chunk[kept..<encoded])
                layout.closeWithPadding(in: chunk)
                handOverFullChunk()
                let next = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize + room, alignment: alignment)
                next.initializeMemory(as: UInt8.self, repeating: 0xEE)  // a reused chunk holds old bytes
                chunk.deallocate()
                chunk = next
                chunk.copyBytes(from: moved)
                encoded = moved.count
            }
            if layout.isFull {
                handOverFullChunk()
                encoded = 0
            }
        }
        var uncommitted = 0
        for _ in 0..<packets {
            let payload = Packets.ipv4(protocolNumber: 17, transport: Packets.udp(
                5353, 53, payload: [UInt8](repeating: 0x5A, count: Int(random.next() % 300))))
            let packet = TestPacket(payload, direction: .outbound, owner: owners[Int(random.next() % 4)])
            var output = RawBlockOutput(base: chunk.baseAddress!, capacity: chunk.count, count: encoded)
            payload.withUnsafeBytes { writer.append(packet.event, payload: $0, to: &output) }
            #expect(!output.overflowed)
            encoded = output.count
            payloads.append(payload)
            uncommitted += 1
            if uncommitted >= 1 + Int(random.next() % 3) {
                commit()
                uncommitted = 0
            }
            if random.next() % 5 == 0 {
                commit()
                uncommitted = 0
                let range = layout.writeEarly(in: chunk)
                if layout.isFull {
                    #expect(range.isEmpty)
                    handOverFullChunk()
                } else {
                    file.write(chunk, range, chunkOffset: chunkOffset, alignment: alignment)
                }
                encoded = layout.filled
            }
        }
        commit()
        file.write(chunk, layout.takeTail(), chunkOffset: chunkOffset, alignment: nil)
        chunk.deallocate()
        return (file, payloads)
    }

    static let layouts: [(chunkSize: Int, alignment: Int)] = [(2048, 64), (4096, 256), (8192, 4096), (2560, 128)]

    @Test func everyWriteEndsOnABlockAndTheWholeFileReadsBack() {
        for (index, shape) in Self.layouts.enumerated() {
            let (file, payloads) = Self.run(chunkSize: shape.chunkSize, alignment: shape.alignment, packets: 800,
                                            seed: UInt64(index + 1))
            #expect(file.alignedWrites, "every write but the last is aligned (\(shape))")
            #expect(file.writeEnds.count > 100)
            let (records, error) = CaptureFileReader.readAll(file.bytes)
            #expect(error == nil, "\(shape): \(String(describing: error))")
            #expect(records.map(\.data) == payloads)
            // Cut after any write: readable to its end, every packet up to there, no error.
            var previous = 0
            for end in file.writeEnds {
                let (prefix, prefixError) = CaptureFileReader.readAll(Array(file.bytes[0..<end]))
                #expect(prefixError == nil, "\(shape) cut at \(end): \(String(describing: prefixError))")
                #expect(prefix.count >= previous)
                #expect(prefix.map(\.data) == Array(payloads.prefix(prefix.count)))
                previous = prefix.count
            }
        }
    }

    static func place(_ blocks: [UInt8], into chunk: UnsafeMutableRawBufferPointer, _ layout: inout PcapngChunkLayout) -> Bool {
        UnsafeMutableRawBufferPointer(rebasing: chunk[layout.filled..<(layout.filled + blocks.count)]).copyBytes(from: blocks)
        return layout.commit(upTo: layout.filled + blocks.count)
    }

    @Test func theFileEndsExactlyAfterItsLastBlock() {
        var writer = PcapngWriter(snapLength: 0)
        var blocks: [UInt8] = []
        let packet = TestPacket(Packets.ipv4(protocolNumber: 1, transport: Packets.icmpEcho()), direction: .outbound)
        writer.append(packet.event, payload: packet.payload, to: &blocks)
        var layout = PcapngChunkLayout(chunkSize: 8192, alignment: 4096)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 4096)
        defer { chunk.deallocate() }
        do { let placed = Self.place(blocks, into: chunk, &layout); #expect(placed) }
        let tail = layout.takeTail()
        #expect(tail == 0..<blocks.count, "no padding at the end of a file")
        #expect(layout.filled == 0)
    }

    @Test func blocksThatLeaveAGapNoPaddingFillsGoToTheNextChunk() {
        var layout = PcapngChunkLayout(chunkSize: 4096, alignment: 4096)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 4096)
        defer { chunk.deallocate() }
        do { let placed = Self.place(PcapngBlocks.padding(length: 4000), into: chunk, &layout); #expect(placed) }
        do { let placed = Self.place(PcapngBlocks.padding(length: 88), into: chunk, &layout); #expect(!placed, "8 bytes would be left") }
        #expect(layout.filled == 4000, "nothing kept")
        do { let placed = Self.place(PcapngBlocks.padding(length: 80), into: chunk, &layout); #expect(placed, "16 bytes left: an empty NRB") }
        do { let placed = Self.place(PcapngBlocks.padding(length: 16), into: chunk, &layout); #expect(placed) }
        #expect(layout.isFull)
        let whole = layout.takeFull()
        #expect(whole == 0..<4096)
        do { let placed = Self.place(PcapngBlocks.padding(length: 5000), into: chunk, &layout); #expect(!placed, "longer than a chunk") }
    }

    @Test func anEarlyWriteIsPaddedToTheNextBoundaryAndNotRepeated() {
        var layout = PcapngChunkLayout(chunkSize: 8192, alignment: 4096)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 4096)
        defer { chunk.deallocate() }
        do { let placed = Self.place(PcapngBlocks.padding(length: 4092), into: chunk, &layout); #expect(placed) }
        let first = layout.writeEarly(in: chunk)
        #expect(first == 0..<0, "4 bytes cannot be padded: on to the chunk's end…")
        #expect(layout.isFull)
        let full = layout.takeFull()
        #expect(full == 0..<8192, "…written as a full chunk")
        let nothing = layout.writeEarly(in: chunk)
        #expect(nothing.isEmpty, "nothing new, nothing to write")
        // Part of a chunk: padded to the boundary and written; the next early write starts there.
        do { let placed = Self.place(PcapngBlocks.padding(length: 1000), into: chunk, &layout); #expect(placed) }
        let early = layout.writeEarly(in: chunk)
        #expect(early == 0..<4096)
        let again = layout.writeEarly(in: chunk)
        #expect(again.isEmpty)
        do { let placed = Self.place(PcapngBlocks.padding(length: 1000), into: chunk, &layout); #expect(placed) }
        let last = layout.writeEarly(in: chunk)
        #expect(last.isEmpty, "padded to the boundary, which is the chunk's end…")
        #expect(layout.isFull)
        let rest = layout.takeFull()
        #expect(rest == 4096..<8192, "…so it goes out as the rest of a full chunk")
    }

    /// Three blocks of which two fit: the longest run that fits is committed, in order, and a
    /// length field that is no block's is reported where it is.
    @Test func commitWholeBlocksKeepsTheLongestRunThatFits() throws {
        var layout = PcapngChunkLayout(chunkSize: 4096, alignment: 4096)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 4096)
        defer { chunk.deallocate() }
        let blocks = PcapngBlocks.padding(length: 2000) + PcapngBlocks.padding(length: 2000) + PcapngBlocks.padding(length: 200)
        UnsafeMutableRawBufferPointer(rebasing: chunk[0..<blocks.count]).copyBytes(from: blocks)
        let kept = try layout.commitWholeBlocks(upTo: blocks.count, in: UnsafeRawBufferPointer(chunk))
        #expect(kept == 4000, "96 bytes are left for the 200-byte third block: it goes to the next chunk")
        #expect(layout.filled == 4000)
        var fresh = PcapngChunkLayout(chunkSize: 4096, alignment: 4096)
        let all = try fresh.commitWholeBlocks(upTo: 2000, in: UnsafeRawBufferPointer(chunk))
        #expect(all == 2000, "everything fits: committed in one step")
        chunk[2004] = 7  // the second block's length field: 7 is no block's length
        var broken = PcapngChunkLayout(chunkSize: 4096, alignment: 4096)
        #expect(throws: PcapngChunkLayout.MalformedBlock(offset: 2000)) {
            _ = try broken.commitWholeBlocks(upTo: blocks.count, in: UnsafeRawBufferPointer(chunk))
        }
    }
}
