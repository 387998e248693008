import Capture
import Foundation
import PacketModel
import Testing

/// Writer → reader: what nfowner writes comes back, field by field.
@Suite struct RoundTripTests {
    @Test func pcapngRoundTrip() throws {
        let (bytes, packets) = sampleFile()
        var reader = try CaptureFileReader(bytes: bytes)
        #expect(reader.format == .pcapng)
        var records: [CaptureRecord] = []
        while let record = try reader.next() { records.append(record) }
        #expect(reader.sectionApplication == "nfowner")
        #expect(records.count == packets.count)
        #expect(reader.interfaces.map(\.name) == ["nflog:5 out", "nflog:5 in"])
        #expect(reader.processes == [CaptureProcess(pid: 1234, name: "curl"), CaptureProcess(pid: 99, name: "my \"tool\"")])

        for (record, packet) in zip(records, packets) {
            let event = packet.event
            #expect(record.data == packet.payload)
            #expect(record.originalLength == event.packet.totalLength)
            #expect(record.interface.linkType == 101)
            #expect(record.interface.snapLength == 65535)
            #expect(record.interface.name == "nflog:5 \(event.direction.rawValue)")
            #expect(record.direction == event.direction)
            #expect(record.time.eventTime == event.time)
            #expect(record.comment == OwnerComment.text(for: event.owner))
            #expect(record.ownerJSON == OwnerJSON.text(for: event.owner))
            if let chosen = event.owner.attribution?.chosen {
                #expect(record.process == CaptureProcess(pid: UInt32(chosen.pid), name: chosen.comm))
            } else {
                #expect(record.process == nil)
                #expect(record.processIndex == nil)
            }
        }
        #expect(records.map(\.processIndex) == [0, nil, nil, nil, 1, 0])
        #expect(records[2].comments.isEmpty && records[2].customOptions.isEmpty)  // nothing known, nothing written
    }

    @Test func commentText() {
        #expect(OwnerComment.text(for: Owners.alice)
            == "uid=1000(alice) gid=1000(alice) cgroup=/user.slice/user-1000.slice/session-2.scope "
            + "unit=session-2.scope pid=1234 comm=curl exe=/usr/bin/curl confidence=exact")
        #expect(OwnerComment.text(for: Owners.nginx)
            == "uid=33(www-data) gid=33(www-data) cgroup=/system.slice/nginx.service unit=nginx.service "
            + #"candidates=700(nginx),701(nginx) confidence=candidates reason="several processes of the uid""#)
        #expect(OwnerComment.text(for: Owners.uidOnly) == "uid=0 gid=0")
        #expect(OwnerComment.text(for: Owners.oddName)
            == #"uid="1001(bob smith)" pid=99 comm="my \"tool\"" exe="/opt/my tool/bin/tool" confidence=single"#)
        #expect(OwnerComment.text(for: PacketOwner()) == nil)
        #expect(OwnerComment.text(for: PacketOwner(cgroupID: 77)) == "cgroup_id=77")
        // Control characters, backslashes and the empty string, each escaped or quoted.
        #expect(OwnerComment.text(for: PacketOwner(unit: "a\tb\\c\u{1}\n")) == #"unit="a\tb\\c\x01\n""#)
        #expect(OwnerComment.text(for: PacketOwner(unit: "")) == #"unit="""#)
        #expect(OwnerComment.text(for: PacketOwner(unit: "a=b")) == "unit=a=b")
    }

    /// A program: comm and exe without a pid, then the processes running it.
    @Test func programCommentAndJSON() throws {
        let owner = PacketOwner(uid: 0, cgroupPath: "/", attribution: OwnerAttribution(
            confidence: .program, reason: "2 processes",
            processes: [ProcessReference(pid: 21, comm: "ping", exe: "/usr/bin/ping"),
                        ProcessReference(pid: 22, comm: "ping", exe: "/usr/bin/ping")]))
        #expect(OwnerComment.text(for: owner)
            == #"uid=0 cgroup=/ comm=ping exe=/usr/bin/ping candidates=21(ping),22(ping) confidence=program reason="2 processes""#)
        let json = try Self.object(OwnerJSON.text(for: owner))
        #expect(json["pid"] == nil)
        #expect(json["comm"] as? String == "ping")
        #expect(json["exe"] as? String == "/usr/bin/ping")
        #expect((json["processes"] as? [[String: Any]])?.map { $0["pid"] as? Int } == [21, 22])
        #expect(json["confidence"] as? String == "program")
    }

    @Test func ownerJSON() throws {
        let alice = try #require(OwnerJSON.text(for: Owners.alice))
        #expect(alice == #"{"uid":1000,"gid":1000,"user":"alice","group_name":"alice","#
            + #""cgroup":"/user.slice/user-1000.slice/session-2.scope","cgroup_id":4242,"unit":"session-2.scope","#
            + #""pid":1234,"comm":"curl","exe":"/usr/bin/curl","confidence":"exact"}"#)
        let nginx = try Self.object(OwnerJSON.text(for: Owners.nginx))
        #expect(nginx["pid"] == nil)  // several candidates: no single process
        let processes = try #require(nginx["processes"] as? [[String: Any]])
        #expect(processes.map { $0["pid"] as? Int } == [700, 701])
        #expect(nginx["reason"] as? String == "several processes of the uid")
        let odd = try Self.object(OwnerJSON.text(for: Owners.oddName))
        #expect(odd["comm"] as? String == "my \"tool\"")
        #expect(odd["user"] as? String == "bob smith")
        #expect(OwnerJSON.text(for: PacketOwner()) == nil)
        #expect(OwnerJSON.text(for: PacketOwner(unit: "\u{1}")) == #"{"unit":"\u0001"}"#)
    }

    /// `text` parsed by Foundation's JSON parser: the option must be valid JSON, not just look it.
    static func object(_ text: String?) throws -> [String: Any] {
        let text = try #require(text)
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// Packets longer than the snap length keep their first bytes and say how long they were.
    @Test func snapLengthCutsPayload() throws {
        let packet = TestPacket(Packets.ipv4(protocolNumber: 17, transport: Packets.udp(1, 2, payload: Array(repeating: 9, count: 100))),
                                direction: .outbound)
        var writer = PcapngWriter(snapLength: 64)
        var bytes: [UInt8] = []
        writer.append(packet.event, payload: packet.payload, to: &bytes)
        let (records, error) = CaptureFileReader.readAll(bytes)
        #expect(error == nil)
        let record = try #require(records.first)
        #expect(record.data == Array(packet.payload.prefix(64)))
        #expect(record.originalLength == 128)
        #expect(record.interface.snapLength == 64)
    }

    /// Owners too long for a u16 option length: JSON first drops its process list (a cut would
    /// not parse), and is left out when even that is too long; a comment is cut at a character.
    /// The file reads either way.
    @Test func ownerTooLongForAnOption() throws {
        let longExe = "/" + String(repeating: "é", count: 3000)  // 6001 bytes of UTF-8
        let processes = (0..<16).map { ProcessReference(pid: Int32($0), comm: "w", exe: longExe) }
        let manyExes = PacketOwner(uid: 7, cgroupPath: "/" + String(repeating: "ü", count: 20_000),
                                   attribution: OwnerAttribution(confidence: .candidates, processes: processes))
        let longReason = PacketOwner(uid: 8, attribution: OwnerAttribution(confidence: .none,
                                                                           reason: "a" + String(repeating: "ß", count: 40_000)))
        var writer = PcapngWriter(snapLength: 0)
        var bytes: [UInt8] = []
        for owner in [manyExes, longReason] {
            let packet = TestPacket(Packets.ipv4(protocolNumber: 1, transport: Packets.icmpEcho()), direction: .outbound,
                                    owner: owner)
            writer.append(packet.event, payload: packet.payload, to: &bytes)
        }
        let (records, error) = CaptureFileReader.readAll(bytes)
        #expect(error == nil)
        #expect(records.count == 2)
        let first = try #require(records.first)
        #expect(first.comment == OwnerComment.text(for: manyExes))  // about 40 kB: whole
        let json = try Self.object(first.ownerJSON)
        #expect(json["processes"] == nil)
        #expect(json["uid"] as? Int == 7)

        let second = try #require(records.last)
        let comment = try #require(second.comment)
        #expect(comment.utf8.count >= 65534 && comment.utf8.count <= 65535)  // cut where a "ß" starts or ends
        #expect(try #require(OwnerComment.text(for: longReason)).hasPrefix(comment))
        #expect(second.ownerJSON == nil)
    }

    /// Times no clock produces saturate instead of trapping.
    @Test func extremeTimes() throws {
        var packet = TestPacket(Packets.ipv4(protocolNumber: 1, transport: Packets.icmpEcho()), direction: .inbound)
        packet.metadata.time = EventTime(seconds: .max, microseconds: .max)
        var bytes: [UInt8] = []
        var writer = PcapngWriter(snapLength: 0)
        writer.append(packet.event, payload: packet.payload, to: &bytes)
        PcapWriter(snapLength: 0).append(packet.event, payload: packet.payload, to: &bytes)  // must not trap either
        let record = try #require(CaptureFileReader.readAll(bytes).records.first)
        #expect(record.time == CaptureTime(seconds: UInt64.max / 1_000_000, nanoseconds: 551_615_000))
    }

    /// Declared interfaces get ids in declaration order, packets or not.
    @Test func declaredInterfacesComeFirst() throws {
        var writer = PcapngWriter(snapLength: 0)
        var bytes: [UInt8] = []
        let group = PacketOrigin(kind: .nflog, number: 5)
        #expect(writer.declare(CaptureInterface(origin: group, direction: .inbound), to: &bytes) == 0)
        #expect(writer.declare(CaptureInterface(origin: group, direction: .outbound), to: &bytes) == 1)
        #expect(writer.declare(CaptureInterface(origin: group, direction: .inbound), to: &bytes) == 0)
        let packet = TestPacket(Packets.ipv4(protocolNumber: 1, transport: Packets.icmpEcho()), direction: .outbound)
        writer.append(packet.event, payload: packet.payload, to: &bytes)
        let (records, error) = CaptureFileReader.readAll(bytes)
        #expect(error == nil)
        #expect(records.map(\.interfaceID) == [1])
        #expect(records.first?.interface.snapLength == 0)
    }

    @Test func classicPcapRoundTrip() throws {
        let (_, packets) = sampleFile()
        let writer = PcapWriter(snapLength: 65535)
        var bytes: [UInt8] = []
        writer.appendFileHeader(to: &bytes)
        for packet in packets { writer.append(packet.event, payload: packet.payload, to: &bytes) }
        var reader = try CaptureFileReader(bytes: bytes)
        #expect(reader.format == .pcap(.littleEndian, nanosecondTimestamps: false))
        var records: [CaptureRecord] = []
        while let record = try reader.next() { records.append(record) }
        #expect(records.map(\.data) == packets.map(\.payload))
        #expect(records.map(\.time.eventTime) == packets.map(\.metadata.time))
        #expect(records.map(\.originalLength) == packets.map(\.packet.totalLength))
        #expect(records.allSatisfy { $0.interface.linkType == 101 && $0.comment == nil && $0.direction == nil })
    }

    /// A big-endian, nanosecond pcap file (as a big-endian host writes it), built by hand.
    @Test func bigEndianNanosecondPcap() throws {
        let bytes: [UInt8] = [
            0xA1, 0xB2, 0x3C, 0x4D,  // magic 0xA1B23C4D big-endian: nanoseconds
            0x00, 0x02, 0x00, 0x04,  // version 2.4
            0x00, 0x00, 0x00, 0x00,  // thiszone
            0x00, 0x00, 0x00, 0x00,  // sigfigs
            0x00, 0x00, 0xFF, 0xFF,  // snap length 65535
            0x00, 0x00, 0x00, 0x65,  // LINKTYPE_RAW
            0x00, 0x00, 0x00, 0x02,  // 2 s
            0x3B, 0x9A, 0xC9, 0xFF,  // 999999999 ns
            0x00, 0x00, 0x00, 0x02,  // captured 2
            0x00, 0x00, 0x00, 0x30,  // original 48
            0x45, 0x00,
        ]
        var reader = try CaptureFileReader(bytes: bytes)
        #expect(reader.format == .pcap(.bigEndian, nanosecondTimestamps: true))
        let record = try #require(try reader.next())
        #expect(record.time == CaptureTime(seconds: 2, nanoseconds: 999_999_999))
        #expect(record.data == [0x45, 0x00])
        #expect(record.originalLength == 48)
        #expect(record.interface.timestampResolution == 9)
        #expect(try reader.next() == nil)
    }

    /// A big-endian section with a nanosecond interface, an if_tsoffset and an unknown block,
    /// then a little-endian one.
    @Test func bigEndianSectionAndUnknownBlocks() throws {
        let bytes = mixedByteOrderFile()
        let (records, error) = CaptureFileReader.readAll(bytes)
        #expect(error == nil)
        #expect(records.count == 2)
        #expect(records.first?.time == CaptureTime(seconds: 12, nanoseconds: 1))
        #expect(records.first?.data == [0x60, 0x01, 0x02])
        #expect(records.first?.interface.timestampResolution == 9)
        #expect(records.last?.time == CaptureTime(seconds: 5, nanoseconds: 1000))
        #expect(records.last?.interface.name == "eth0")
        #expect(records.last?.direction == .inbound)
    }

    /// if_tsresol in powers of two: 2^-10 s units.
    @Test func binaryTimestampResolution() throws {
        var bytes: [UInt8] = []
        PcapngBlocks.appendSectionHeader(application: nil, to: &bytes)
        // An IDB by hand: the writer never writes if_tsresol.
        bytes += [0x01, 0, 0, 0, 0x1C, 0, 0, 0, 0x65, 0, 0, 0, 0, 0, 0, 0,
                  0x09, 0, 0x01, 0, 0x8A, 0, 0, 0,  // if_tsresol 0x8A: 2^-10 s
                  0x1C, 0, 0, 0]
        [UInt8]([0x45]).withUnsafeBytes {
            // 3 s and 512/1024 s.
            PcapngBlocks.appendEnhancedPacket(interfaceID: 0, timestamp: 3 * 1024 + 512, originalLength: 1, data: $0,
                                              options: PcapngBlocks.PacketOptions(), to: &bytes)
        }
        let (records, error) = CaptureFileReader.readAll(bytes)
        #expect(error == nil)
        #expect(records.first?.time == CaptureTime(seconds: 3, nanoseconds: 500_000_000))
    }
}
