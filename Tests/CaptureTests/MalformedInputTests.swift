import Capture
import Testing

/// Cut and damaged files: the reader returns records or a typed error, never traps, never reads
/// past the buffer, and counts the records before an error correctly.
@Suite struct MalformedInputTests {
    /// The offsets where blocks end, and which of those end a packet block.
    static func blockEnds(_ bytes: [UInt8]) -> (all: Set<Int>, packets: [Int]) {
        var all: Set<Int> = [0]
        var packets: [Int] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            let type = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
                | UInt32(bytes[offset + 3]) << 24
            let length = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16
                | Int(bytes[offset + 7]) << 24
            offset += length
            all.insert(offset)
            if type == 6 { packets.append(offset) }
        }
        return (all, packets)
    }

    /// What a capture killed mid-write leaves: every prefix reads as the complete records before
    /// the cut, then `.truncated` (or no error when the cut falls between blocks).
    @Test func everyPrefixOfPcapng() throws {
        let (bytes, _) = sampleFile()
        let (full, fullError) = CaptureFileReader.readAll(bytes)
        #expect(fullError == nil)
        let ends = Self.blockEnds(bytes)
        for length in 0...bytes.count {
            let (records, error) = CaptureFileReader.readAll(Array(bytes.prefix(length)))
            let complete = ends.packets.filter { $0 <= length }.count
            #expect(records == Array(full.prefix(complete)), "prefix \(length)")
            if ends.all.contains(length) && length > 0 {
                #expect(error == nil, "prefix \(length) ends between blocks")
            } else {
                let error = try #require(error, "prefix \(length) cuts a block")
                #expect(error.code == .truncated, "prefix \(length): \(error)")
                #expect(error.recordsBefore == complete)
            }
        }
    }

    @Test func everyPrefixOfPcap() throws {
        let (_, packets) = sampleFile()
        let writer = PcapWriter(snapLength: 0)
        var bytes: [UInt8] = []
        writer.appendFileHeader(to: &bytes)
        var ends: [Int] = []
        for packet in packets {
            writer.append(packet.event, payload: packet.payload, to: &bytes)
            ends.append(bytes.count)
        }
        for length in 0...bytes.count {
            let (records, error) = CaptureFileReader.readAll(Array(bytes.prefix(length)))
            let complete = ends.filter { $0 <= length }.count
            #expect(records.map(\.data) == packets.prefix(complete).map(\.payload), "prefix \(length)")
            if length == 24 || ends.contains(length) {
                #expect(error == nil, "prefix \(length)")
            } else {
                #expect(error?.code == .truncated, "prefix \(length)")
                #expect(error?.recordsBefore == complete, "prefix \(length)")
            }
        }
    }

    /// The sentence a user sees for a file cut by SIGKILL.
    @Test func truncatedErrorDescription() throws {
        let (bytes, packets) = sampleFile()
        let (records, error) = CaptureFileReader.readAll(Array(bytes.dropLast(5)))
        #expect(records.count == packets.count - 1)
        let failure = try #require(error)
        #expect(failure.code == .truncated)
        #expect(failure.recordsBefore == packets.count - 1)
        #expect(failure.description.hasSuffix("after 5 complete packet records)"))
    }

    /// Random byte changes and cuts of valid files (nfowner's pcapng, a big-endian section, a
    /// pcap file); a seeded generator so failures replay.
    @Test func mutationsNeverTrap() {
        let (sample, packets) = sampleFile()
        var pcap: [UInt8] = []
        let writer = PcapWriter(snapLength: 0)
        writer.appendFileHeader(to: &pcap)
        for packet in packets { writer.append(packet.event, payload: packet.payload, to: &pcap) }
        let seeds = [sample, mixedByteOrderFile(), pcap]
        var random = SplitMix64(state: 0x6361_7074_7572_65)
        var outcomes: [CaptureFileError.Code?: Int] = [:]
        for round in 0..<30_000 {
            var mutated = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let index = Int.random(in: 0..<mutated.count, using: &random)
                switch random.next() % 3 {
                case 0: mutated[index] = UInt8.random(in: 0...255, using: &random)
                case 1: mutated[index] ^= 1 << UInt8.random(in: 0...7, using: &random)
                // Lengths and counts are where parsers break: make one huge or tiny.
                default: mutated[index] = [0x00, 0xFF, 0x7F, 0x80, 0x0C, 0x04].randomElement(using: &random) ?? 0
                }
            }
            if random.next() % 4 == 0 {
                mutated.removeLast(Int.random(in: 0...mutated.count, using: &random))
            }
            let (records, error) = CaptureFileReader.readAll(mutated)
            outcomes[error?.code, default: 0] += 1
            if let error { #expect(error.recordsBefore == records.count) }
            for record in records {
                #expect(record.data.count <= mutated.count)
            }
        }
        // The mutations reach past the first block: several kinds of error come out, and some
        // files still read whole.
        #expect(outcomes.count >= 5, "\(outcomes)")
        #expect(outcomes[nil, default: 0] > 0)
    }

    /// Random bytes behind a section header's first bytes, and behind a pcap magic.
    @Test func randomBodiesNeverTrap() {
        var random = SplitMix64(state: 42)
        for round in 0..<20_000 {
            let head: [UInt8] = round % 2 == 0 ? [0x0A, 0x0D, 0x0D, 0x0A] : [0xD4, 0xC3, 0xB2, 0xA1]
            var bytes = head + (0..<Int.random(in: 0...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            if round % 4 == 0, bytes.count >= 12 {
                // A valid byte-order magic so parsing goes past the section header's start.
                bytes.replaceSubrange(8..<12, with: [0x4D, 0x3C, 0x2B, 0x1A])
            }
            let (records, error) = CaptureFileReader.readAll(bytes)
            if let error { #expect(error.recordsBefore == records.count) }
        }
    }

    // MARK: One defect each

    static func firstError(_ bytes: [UInt8]) -> CaptureFileError? {
        CaptureFileReader.readAll(bytes).error
    }

    /// A valid section header, then `rest`.
    static func section(_ rest: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        PcapngBlocks.appendSectionHeader(application: nil, to: &bytes)
        return bytes + rest
    }

    static let rawInterface: [UInt8] = {
        var bytes: [UInt8] = []
        PcapngBlocks.appendInterfaceDescription(linkType: 101, snapLength: 0, name: nil, to: &bytes)
        return bytes
    }()

    @Test func notACaptureFile() {
        #expect(Self.firstError(Array("GET / HTTP/1.1\r\n".utf8))?.code == .notACaptureFile)
        #expect(Self.firstError([])?.code == .truncated)
    }

    @Test func blockLengthNotAMultipleOf4() {
        let bytes = Self.section([0x01, 0, 0, 0, 0x0E, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(Self.firstError(bytes)?.code == .badBlockLength)
    }

    @Test func blockLengthBelow12() {
        #expect(Self.firstError(Self.section([0x01, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0]))?.code == .badBlockLength)
    }

    @Test func trailingLengthDiffers() {
        var interface = Self.rawInterface
        interface[interface.count - 4] ^= 0x04
        #expect(Self.firstError(Self.section(interface))?.code == .blockLengthMismatch)
    }

    @Test func badByteOrderMagic() {
        var bytes = Self.section([])
        bytes[8] = 0x00
        #expect(Self.firstError(bytes)?.code == .badByteOrderMagic)
    }

    @Test func unsupportedVersion() {
        var bytes = Self.section([])
        bytes[12] = 2
        #expect(Self.firstError(bytes)?.code == .unsupportedVersion)
        var pcap: [UInt8] = []
        PcapWriter(snapLength: 0).appendFileHeader(to: &pcap)
        pcap[4] = 3
        #expect(Self.firstError(pcap)?.code == .unsupportedVersion)
    }

    @Test func packetOnUndescribedInterface() {
        var packet: [UInt8] = []
        [UInt8]([0x45]).withUnsafeBytes {
            PcapngBlocks.appendEnhancedPacket(interfaceID: 1, timestamp: 0, originalLength: 1, data: $0,
                                              options: PcapngBlocks.PacketOptions(), to: &packet)
        }
        #expect(Self.firstError(Self.section(Self.rawInterface + packet))?.code == .unknownInterface)
    }

    @Test func capturedLengthPastBlock() {
        var packet: [UInt8] = []
        [UInt8]([0x45, 0, 0, 0]).withUnsafeBytes {
            PcapngBlocks.appendEnhancedPacket(interfaceID: 0, timestamp: 0, originalLength: 4, data: $0,
                                              options: PcapngBlocks.PacketOptions(), to: &packet)
        }
        packet[20] = 5  // captured length 5, but 4 bytes of data
        #expect(Self.firstError(Self.section(Self.rawInterface + packet))?.code == .badField)
    }

    @Test func optionPastBlock() {
        var packet: [UInt8] = []
        [UInt8]([0x45, 0, 0, 0]).withUnsafeBytes {
            PcapngBlocks.appendEnhancedPacket(interfaceID: 0, timestamp: 0, originalLength: 4, data: $0,
                                              options: PcapngBlocks.PacketOptions(comment: "abcd"), to: &packet)
        }
        packet[34] = 0x40  // the comment's length: 64 bytes, past the block
        let error = Self.firstError(Self.section(Self.rawInterface + packet))
        #expect(error?.code == .badOption)
        #expect(error?.recordsBefore == 0)
    }

    @Test func flagsOfTheWrongLength() {
        var packet: [UInt8] = []
        [UInt8]([0x45, 0, 0, 0]).withUnsafeBytes {
            PcapngBlocks.appendEnhancedPacket(interfaceID: 0, timestamp: 0, originalLength: 4, data: $0,
                                              options: PcapngBlocks.PacketOptions(direction: .inbound), to: &packet)
        }
        packet[34] = 2  // epb_flags of length 2
        #expect(Self.firstError(Self.section(Self.rawInterface + packet))?.code == .badOption)
    }

    @Test func impossibleTimestampResolution() {
        let interface: [UInt8] = [0x01, 0, 0, 0, 0x1C, 0, 0, 0, 0x65, 0, 0, 0, 0, 0, 0, 0,
                                  0x09, 0, 0x01, 0, 20, 0, 0, 0,  // if_tsresol 10^-20: past UInt64
                                  0x1C, 0, 0, 0]
        #expect(Self.firstError(Self.section(interface))?.code == .badField)
    }

    /// After an error, `next()` throws it again instead of reading on from a bad place.
    @Test func errorSticks() throws {
        var bytes = Self.section(Self.rawInterface)
        bytes += [0x06, 0, 0, 0, 0x0D, 0, 0, 0, 0, 0, 0, 0]  // an EPB with length 13
        var reader = try CaptureFileReader(bytes: bytes)
        var errors: [CaptureFileError] = []
        for _ in 0..<2 {
            do {
                let record = try reader.next()
                Issue.record("expected an error, read \(String(describing: record))")
            } catch {
                errors.append(error)
            }
        }
        #expect(errors.count == 2 && errors[0] == errors[1])
        #expect(errors.first?.code == .badBlockLength)
    }
}
