import Capture
import PacketModel
import Testing

/// Each block nfowner writes, byte for byte against bytes written out by hand from the pcapng
/// specification (little-endian; every length counted in the comments).
@Suite struct BlockEncodingTests {
    @Test func sectionHeaderBlock() {
        var out: [UInt8] = []
        PcapngBlocks.appendSectionHeader(application: "nfowner", to: &out)
        let expected: [UInt8] = [
            0x0A, 0x0D, 0x0D, 0x0A,                          // block type: SHB ("\n\r\r\n")
            0x2C, 0x00, 0x00, 0x00,                          // total length 44 = 8 + 16 fixed + 16 options + 4
            0x4D, 0x3C, 0x2B, 0x1A,                          // byte-order magic 0x1A2B3C4D, little-endian
            0x01, 0x00, 0x00, 0x00,                          // major version 1, minor version 0
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // section length -1: not known in advance
            0x04, 0x00, 0x07, 0x00,                          // option 4 shb_userappl, length 7
            0x6E, 0x66, 0x6F, 0x77, 0x6E, 0x65, 0x72, 0x00,  // "nfowner", 1 byte of padding
            0x00, 0x00, 0x00, 0x00,                          // opt_endofopt
            0x2C, 0x00, 0x00, 0x00,                          // total length again
        ]
        #expect(out == expected)
    }

    @Test func interfaceDescriptionBlock() {
        var out: [UInt8] = []
        PcapngBlocks.appendInterfaceDescription(linkType: LinkType.raw, snapLength: 65535, name: "nflog:5 out", to: &out)
        let expected: [UInt8] = [
            0x01, 0x00, 0x00, 0x00,                          // block type 1: IDB
            0x28, 0x00, 0x00, 0x00,                          // total length 40 = 8 + 8 fixed + 16 + 4 + 4
            0x65, 0x00, 0x00, 0x00,                          // link type 101 (LINKTYPE_RAW), reserved 0
            0xFF, 0xFF, 0x00, 0x00,                          // snap length 65535
            0x02, 0x00, 0x0B, 0x00,                          // option 2 if_name, length 11
            0x6E, 0x66, 0x6C, 0x6F, 0x67, 0x3A, 0x35, 0x20,  // "nflog:5 "
            0x6F, 0x75, 0x74, 0x00,                          // "out", 1 byte of padding
            0x00, 0x00, 0x00, 0x00,                          // opt_endofopt
            0x28, 0x00, 0x00, 0x00,                          // total length again
        ]
        #expect(out == expected)
    }

    @Test func darwinProcessInformationBlock() {
        var out: [UInt8] = []
        PcapngBlocks.appendDarwinProcessInformation(pid: 1234, name: "curl", to: &out)
        let expected: [UInt8] = [
            0x01, 0x00, 0x00, 0x80,                          // block type 0x80000001: Apple process information
            0x1C, 0x00, 0x00, 0x00,                          // total length 28 = 8 + 4 pid + 8 name + 4 end + 4
            0xD2, 0x04, 0x00, 0x00,                          // pid 1234
            0x02, 0x00, 0x04, 0x00,                          // option 2 process name, length 4
            0x63, 0x75, 0x72, 0x6C,                          // "curl" (no padding needed)
            0x00, 0x00, 0x00, 0x00,                          // opt_endofopt
            0x1C, 0x00, 0x00, 0x00,                          // total length again
        ]
        #expect(out == expected)
    }

    /// A process without a name: the block is the pid alone, with no option list at all.
    @Test func darwinProcessInformationBlockWithoutName() {
        var out: [UInt8] = []
        PcapngBlocks.appendDarwinProcessInformation(pid: 7, name: nil, to: &out)
        #expect(out == [
            0x01, 0x00, 0x00, 0x80,                          // block type 0x80000001
            0x10, 0x00, 0x00, 0x00,                          // total length 16 = 8 + 4 pid + 4
            0x07, 0x00, 0x00, 0x00,                          // pid 7
            0x10, 0x00, 0x00, 0x00,                          // total length again
        ])
    }

    @Test func enhancedPacketBlockWithOptions() {
        var out: [UInt8] = []
        let data: [UInt8] = [0x45, 0x00, 0x00, 0x14, 0xAA]
        let options = PcapngBlocks.PacketOptions(direction: .outbound, comment: "uid=1000(alice)",
                                                 ownerJSON: #"{"uid":1000}"#, processIndex: 0)
        data.withUnsafeBytes {
            PcapngBlocks.appendEnhancedPacket(interfaceID: 1, timestamp: 1_795_478_400_000_042, originalLength: 20,
                                              data: $0, options: options, to: &out)
        }
        let expected: [UInt8] = [
            0x06, 0x00, 0x00, 0x00,                          // block type 6: EPB
            0x64, 0x00, 0x00, 0x00,                          // total length 100 = 8 + 20 fixed + 8 data + 60 options + 4
            0x01, 0x00, 0x00, 0x00,                          // interface id 1
            0xFA, 0x60, 0x06, 0x00,                          // timestamp high: 1795478400000042 µs = 0x660FA_643BE02A
            0x2A, 0xE0, 0x3B, 0x64,                          // timestamp low
            0x05, 0x00, 0x00, 0x00,                          // captured length 5
            0x14, 0x00, 0x00, 0x00,                          // original length 20
            0x45, 0x00, 0x00, 0x14, 0xAA, 0x00, 0x00, 0x00,  // the 5 data bytes, 3 bytes of padding
            0x02, 0x00, 0x04, 0x00,                          // option 2 epb_flags, length 4
            0x02, 0x00, 0x00, 0x00,                          // bits 0-1 = 10: outbound
            0x01, 0x00, 0x0F, 0x00,                          // option 1 opt_comment, length 15
            0x75, 0x69, 0x64, 0x3D, 0x31, 0x30, 0x30, 0x30,  // "uid=1000"
            0x28, 0x61, 0x6C, 0x69, 0x63, 0x65, 0x29, 0x00,  // "(alice)", 1 byte of padding
            0xAC, 0x0B, 0x10, 0x00,                          // option 2988 (custom UTF-8, copiable), length 16
            0xD9, 0x7E, 0x00, 0x00,                          // Private Enterprise Number 32473
            0x7B, 0x22, 0x75, 0x69, 0x64, 0x22, 0x3A, 0x31,  // {"uid":1
            0x30, 0x30, 0x30, 0x7D,                          // 000}
            0x01, 0x80, 0x04, 0x00,                          // option 0x8001 (Apple process index), length 4
            0x00, 0x00, 0x00, 0x00,                          // process block 0 of the section
            0x00, 0x00, 0x00, 0x00,                          // opt_endofopt
            0x64, 0x00, 0x00, 0x00,                          // total length again
        ]
        #expect(out == expected)
    }

    /// No options at all: the block ends after the padded data.
    @Test func enhancedPacketBlockWithoutOptions() {
        var out: [UInt8] = []
        let data: [UInt8] = [0x60, 0x00, 0x00, 0x00]
        data.withUnsafeBytes {
            PcapngBlocks.appendEnhancedPacket(interfaceID: 0, timestamp: 1, originalLength: 40, data: $0,
                                              options: PcapngBlocks.PacketOptions(), to: &out)
        }
        #expect(out == [
            0x06, 0x00, 0x00, 0x00,                          // block type 6: EPB
            0x24, 0x00, 0x00, 0x00,                          // total length 36 = 8 + 20 + 4 + 4
            0x00, 0x00, 0x00, 0x00,                          // interface id 0
            0x00, 0x00, 0x00, 0x00,                          // timestamp high
            0x01, 0x00, 0x00, 0x00,                          // timestamp low: 1 µs after the epoch
            0x04, 0x00, 0x00, 0x00,                          // captured length 4
            0x28, 0x00, 0x00, 0x00,                          // original length 40
            0x60, 0x00, 0x00, 0x00,                          // data, already a multiple of 4
            0x24, 0x00, 0x00, 0x00,                          // total length again
        ])
    }

    @Test func classicPcapHeaderAndRecord() {
        let packet = TestPacket(Packets.ipv4(protocolNumber: 17, transport: Packets.udp(1, 2, payload: [])),
                                direction: .outbound, seconds: 0x6500_0000, microseconds: 7)
        var out: [UInt8] = []
        let writer = PcapWriter(snapLength: 96)
        writer.appendFileHeader(to: &out)
        writer.append(packet.event, payload: packet.payload, to: &out)
        let expected: [UInt8] = [
            0xD4, 0xC3, 0xB2, 0xA1,                          // magic 0xA1B2C3D4: microseconds, little-endian
            0x02, 0x00, 0x04, 0x00,                          // version 2.4
            0x00, 0x00, 0x00, 0x00,                          // thiszone 0 (UTC)
            0x00, 0x00, 0x00, 0x00,                          // sigfigs 0
            0x60, 0x00, 0x00, 0x00,                          // snap length 96
            0x65, 0x00, 0x00, 0x00,                          // link type 101, LINKTYPE_RAW
            0x00, 0x00, 0x00, 0x65,                          // record: seconds 0x65000000
            0x07, 0x00, 0x00, 0x00,                          // microseconds 7
            0x1C, 0x00, 0x00, 0x00,                          // captured length 28
            0x1C, 0x00, 0x00, 0x00,                          // original length 28
        ] + packet.payload                                   // then the packet, unpadded
        #expect(out == expected)
    }

    /// The writer puts the blocks in the order readers need them: section header, then each
    /// interface and process block right before the first packet that uses it.
    @Test func writerOrdersBlocks() {
        let (bytes, _) = sampleFile()
        var types: [UInt32] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            let type = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
                | UInt32(bytes[offset + 3]) << 24
            let length = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16
                | Int(bytes[offset + 7]) << 24
            types.append(type)
            offset += length
        }
        #expect(offset == bytes.count)
        let shb: UInt32 = 0x0A0D_0D0A, idb: UInt32 = 1, epb: UInt32 = 6, dpib: UInt32 = 0x8000_0001
        #expect(types == [
            shb, idb, dpib, epb,  // alice's curl, out: interface "nflog:5 out", process block 0
            idb, epb,             // nginx candidates, in: interface "nflog:5 in", no single process
            epb,                  // no owner
            epb,                  // uid only
            dpib, epb,            // bob's tool, in: process block 1
            epb,                  // alice's curl again: process block 0 reused
        ])
    }

    /// A run of packets from one process on one interface: its blocks once, then packets only,
    /// each referring to the same process block.
    @Test func runFromOneProcess() throws {
        var writer = PcapngWriter(snapLength: 0)
        var bytes: [UInt8] = []
        for port in 40000..<40003 {
            let packet = TestPacket(Packets.ipv4(protocolNumber: 6, transport: Packets.tcpSyn(port, 443)),
                                    direction: .outbound, owner: Owners.alice)
            writer.append(packet.event, payload: packet.payload, to: &bytes)
        }
        #expect(writer.processBlockCount == 1)
        #expect(writer.interfaces.count == 1)
        var reader = try CaptureFileReader(bytes: bytes)
        var indexes: [UInt32?] = []
        while let record = try reader.next() { indexes.append(record.processIndex) }
        #expect(indexes == [0, 0, 0])
        #expect(reader.processes == [CaptureProcess(pid: 1234, name: "curl")])
    }

    /// The writer reuses the last owner's encoded options while the owner stays the same; an owner
    /// that differs in its process only (same uid, cgroup and names) gets its own comment, JSON
    /// and process block, and going back to the first owner refers to its block again.
    @Test func ownerChangesWithinARun() throws {
        var other = Owners.alice
        other.attribution = OwnerAttribution(confidence: .exact, processes: [
            ProcessReference(pid: 1235, comm: "wget", exe: "/usr/bin/wget"),
        ])
        var writer = PcapngWriter(snapLength: 0)
        var bytes: [UInt8] = []
        for (port, owner) in [(40000, Owners.alice), (40001, other), (40002, other), (40003, Owners.alice)] {
            let packet = TestPacket(Packets.ipv4(protocolNumber: 6, transport: Packets.tcpSyn(port, 443)),
                                    direction: .outbound, owner: owner)
            writer.append(packet.event, payload: packet.payload, to: &bytes)
        }
        var reader = try CaptureFileReader(bytes: bytes)
        var records: [CaptureRecord] = []
        while let record = try reader.next() { records.append(record) }
        #expect(records.map(\.processIndex) == [0, 1, 1, 0])
        #expect(records.map { $0.comment?.contains("pid=1235 comm=wget") } == [false, true, true, false])
        #expect(records.map { $0.ownerJSON?.contains("\"pid\":1234") } == [true, false, false, true])
        #expect(reader.processes == [CaptureProcess(pid: 1234, name: "curl"), CaptureProcess(pid: 1235, name: "wget")])
    }

    @Test func interfaceNames() {
        #expect(CaptureInterface(origin: PacketOrigin(kind: .nflog, number: 5), direction: .outbound).name == "nflog:5 out")
        #expect(CaptureInterface(origin: PacketOrigin(kind: .nfqueue, number: 3), direction: .inbound).name == "nfqueue:3 in")
    }

    /// The smallest padding: a Name Resolution Block with only its end-of-records marker.
    @Test func paddingOfSixteenBytes() {
        let expected: [UInt8] = [
            0x04, 0x00, 0x00, 0x00,  // block type 4: NRB
            0x10, 0x00, 0x00, 0x00,  // total length 16
            0x00, 0x00, 0x00, 0x00,  // nrb_record_end: type 0, length 0
            0x10, 0x00, 0x00, 0x00,  // total length again
        ]
        #expect(PcapngBlocks.padding(length: 16) == expected)
    }

    /// Longer padding: the NRB's comment makes up the length.
    @Test func paddingOfThirtyTwoBytes() {
        let expected: [UInt8] = [
            0x04, 0x00, 0x00, 0x00,  // block type 4: NRB
            0x20, 0x00, 0x00, 0x00,  // total length 32 = 8 + 4 end of records + 4 + 8 comment + 4 + 4
            0x00, 0x00, 0x00, 0x00,  // nrb_record_end
            0x01, 0x00, 0x08, 0x00,  // option 1 opt_comment, length 8
            0x6E, 0x66, 0x6F, 0x77, 0x6E, 0x65, 0x72, 0x3A,  // "nfowner:", the start of the reason
            0x00, 0x00, 0x00, 0x00,  // opt_endofopt
            0x20, 0x00, 0x00, 0x00,  // total length again
        ]
        #expect(PcapngBlocks.padding(length: 32) == expected)
    }

    /// Which lengths padding can take, and that a gap longer than one block's u16 comment is
    /// filled by several blocks, exactly, each of them whole.
    @Test func paddingLengths() {
        #expect([4, 8, 12, 20, 18, 30].allSatisfy { !PcapngBlocks.canPad($0) })
        #expect([16, 24, 28, 4096, 1 << 20].allSatisfy { PcapngBlocks.canPad($0) })
        for length in [24, 100, 4096, 65_556, 65_560, 65_576, 131_112, 131_116, 1 << 20] {
            let bytes = PcapngBlocks.padding(length: length)
            #expect(bytes.count == length)
            var offset = 0
            while offset < bytes.count {
                #expect(bytes[offset] == 4, "an NRB at \(offset) of \(length)")
                let blockLength = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16
                #expect(blockLength >= 16 && blockLength <= 65_556)
                offset += blockLength
            }
            #expect(offset == length)
        }
    }
}
