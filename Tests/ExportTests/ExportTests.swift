import Export
import Foundation
import PacketModel
import PacketParsing
import Testing

@Suite struct ExportTests {
    static func event(prefix: String? = "nfowner", uid: UInt32? = 1000, user: String? = "alice") -> PacketEvent {
        var metadata = PacketMetadata()
        metadata.origin = PacketOrigin(kind: .nflog, number: 5)
        metadata.family = 2
        metadata.hookNumber = 3
        metadata.sequence = 41
        metadata.prefix = prefix.flatMap(LogPrefix.init)
        metadata.outputInterface = 1
        metadata.time = EventTime(seconds: 1_795_478_400, microseconds: 42)
        let packet = PacketSummary(
            family: .ipv4, source: .v4(0x7F00_0001), destination: .v4(0x0A00_0002), protocolNumber: 6,
            totalLength: 60, fragment: nil,
            transport: .tcp(TCPInfo(ports: PortPair(source: 40000, destination: 443), flags: [.syn, .ack])))
        return PacketEvent(metadata: metadata, packet: packet,
                           owner: PacketOwner(uid: uid, gid: uid.map { _ in 100 }, userName: user,
                                              groupName: uid.map { _ in "users" }),
                           outputInterfaceName: "lo")
    }

    static func decode(_ event: borrowing PacketEvent) throws -> [String: Any] {
        var out: [UInt8] = []
        JSONLines.append(event, to: &out)
        #expect(out.last == UInt8(ascii: "\n"))
        #expect(out.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        return try #require(try JSONSerialization.jsonObject(with: Data(out)) as? [String: Any])
    }

    /// A stream encoder reuses the last owner's keys only while the owner is the same: a change of
    /// user, cgroup or process in between must show in the very next line.
    @Test func streamEncoderFollowsOwnerChanges() throws {
        var alice = Self.event()
        alice.attribution = OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: 7, comm: "curl", exe: "/usr/bin/curl")])
        var bob = Self.event(uid: 1001, user: "bob")
        bob.cgroupPath = "/b.slice"
        bob.attribution = OwnerAttribution(confidence: .single, processes: [ProcessReference(pid: 8, comm: "wget", exe: "/usr/bin/wget")])
        var encoder = JSONLines.Encoder()
        var buffer = ByteBuffer()
        // Events are not copyable: the stream names which one goes next.
        for isAlice in [true, true, false, true, false, false] {
            if isAlice { encoder.append(alice, to: &buffer) } else { encoder.append(bob, to: &buffer) }
        }
        let lines = buffer.bytes.split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == 6)
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]) }
        #expect(objects.map { $0["user"] as? String } == ["alice", "alice", "bob", "alice", "bob", "bob"])
        #expect(objects.map { $0["uid"] as? Int } == [1000, 1000, 1001, 1000, 1001, 1001])
        #expect(objects.map { $0["comm"] as? String } == ["curl", "curl", "wget", "curl", "wget", "wget"])
        #expect(objects.map { $0["cgroup"] as? String } == [nil, nil, "/b.slice", nil, "/b.slice", "/b.slice"])
        // One-off and stream encodings of an event are the same bytes.
        var single: [UInt8] = []
        JSONLines.append(bob, to: &single)
        #expect(Array(lines[5]) + [UInt8(ascii: "\n")] == single)
    }

    /// The prefix and interface names are encoded once while they repeat: a change shows at once.
    @Test func streamEncoderFollowsPrefixAndInterfaceChanges() throws {
        let plain = Self.event(prefix: "nfowner")
        var classified = Self.event(prefix: "nfowner cg=42")
        classified.inputInterfaceName = "veth0"
        classified.outputInterfaceName = nil
        let unprefixed = Self.event(prefix: nil)
        var encoder = JSONLines.Encoder()
        var buffer = ByteBuffer()
        for next in [0, 0, 1, 2, 1, 0] {
            switch next {
            case 0: encoder.append(plain, to: &buffer)
            case 1: encoder.append(classified, to: &buffer)
            default: encoder.append(unprefixed, to: &buffer)
            }
        }
        let objects = try buffer.bytes.split(separator: UInt8(ascii: "\n")).map {
            try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])
        }
        #expect(objects.map { $0["prefix"] as? String } == ["nfowner", "nfowner", "nfowner cg=42", nil, "nfowner cg=42", "nfowner"])
        #expect(objects.map { $0["iface_out"] as? String } == ["lo", "lo", nil, "lo", nil, "lo"])
        #expect(objects.map { $0["iface_in"] as? String } == [nil, nil, "veth0", nil, "veth0", nil])
    }

    /// A flow's keys are encoded once per run of packets of that flow: another flow shows at once.
    @Test func streamEncoderFollowsFlowChanges() throws {
        func event(_ source: IPAddress, _ sport: UInt16, _ dport: UInt16) -> PacketEvent {
            var event = Self.event()
            event.packet = PacketSummary(
                family: { if case .v4 = source { return IPFamily.ipv4 } else { return IPFamily.ipv6 } }(), source: source, destination: source, protocolNumber: 17,
                totalLength: 40, fragment: nil, transport: .udp(PortPair(source: sport, destination: dport)))
            return event
        }
        let v6 = IPAddress.v6(high: 0x2001_0db8_0000_0000, low: 1)
        let stream: [(IPAddress, UInt16, UInt16)] = [(.v4(0x7F00_0001), 1, 2), (.v4(0x7F00_0001), 1, 2),
                                                     (.v4(0x7F00_0001), 1, 3), (v6, 1, 3), (.v4(0x7F00_0001), 1, 2)]
        var encoder = JSONLines.Encoder()
        var buffer = ByteBuffer()
        for item in stream { encoder.append(event(item.0, item.1, item.2), to: &buffer) }
        let objects = try buffer.bytes.split(separator: UInt8(ascii: "\n")).map {
            try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])
        }
        #expect(objects.map { $0["dport"] as? Int } == [2, 2, 3, 3, 2])
        #expect(objects.map { $0["src"] as? String } == ["127.0.0.1", "127.0.0.1", "127.0.0.1", "2001:db8::1", "127.0.0.1"])
        #expect(objects.map { $0["family"] as? String } == ["ipv4", "ipv4", "ipv4", "ipv6", "ipv4"])
    }

    /// Events of every shape the encoder caches differently: TCP with flags, ICMP echo, UDP,
    /// inbound without a hook's uid, a packet seen without a hook, an IPv6 flow.
    static let shapeCount = 5
    static func shape(_ which: Int) -> PacketEvent {
        var tcp = Self.event()
        tcp.attribution = OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: 7, comm: "curl", exe: "/usr/bin/curl")])
        var icmp = Self.event()
        icmp.packet = PacketSummary(family: .ipv4, source: .v4(0x7F00_0001), destination: .v4(0x7F00_0001), protocolNumber: 1,
                                    totalLength: 84, fragment: nil,
                                    transport: .icmp(ICMPInfo(type: 8, code: 0, echoIdentifier: 4711)))
        icmp.metadata.sequence = nil
        icmp.metadata.origin = PacketOrigin(kind: .nflog, number: 6)
        var udp = Self.event(prefix: "nfowner cg=49102")
        udp.packet = PacketSummary(family: .ipv6, source: .v6(high: 0x2001_0db8_0000_0000, low: 1),
                                   destination: .v6(high: 0x2001_0db8_0000_0000, low: 2), protocolNumber: 17,
                                   totalLength: 1280, fragment: nil, transport: .udp(PortPair(source: 5353, destination: 53)))
        udp.metadata.family = 10
        udp.metadata.origin = PacketOrigin(kind: .nflog, number: 7)
        var inbound = Self.event(prefix: nil, uid: nil, user: nil)
        inbound.metadata.hookNumber = 1
        inbound.inputInterfaceName = "veth0"
        inbound.outputInterfaceName = nil
        inbound.attribution = OwnerAttribution(confidence: .exact, reason: "the receiving socket", processes: [ProcessReference(pid: 9, comm: "nc", exe: "/usr/bin/nc.openbsd")], uid: 1000)
        var netdev = Self.event(prefix: "nfowner \"q\"\t")
        netdev.metadata.family = 5
        netdev.metadata.hookNumber = 1
        netdev.metadata.time = EventTime(seconds: 1_795_478_401, microseconds: 999_999)
        switch which {
        case 0: return tcp
        case 1: return icmp
        case 2: return udp
        case 3: return inbound
        default: return netdev
        }
    }

    /// Byte for byte what the encoder wrote before its texts were cached in larger pieces: a
    /// change of layout is a change of the public contract's bytes, which must be deliberate.
    @Test func jsonLinesAreByteForByteStable() throws {
        let expected = [
            #"{"time":"2026-11-24T00:00:00.000042Z","dir":"out","hook":"output","group":5,"seq":41,"prefix":"nfowner","family":"ipv4","proto":"tcp","proto_num":6,"src":"127.0.0.1","dst":"10.0.0.2","sport":40000,"dport":443,"icmp_type":null,"icmp_code":null,"icmp_id":null,"tcp_flags":"SA","len":60,"iface_in":null,"iface_out":"lo","uid":1000,"gid":100,"user":"alice","group_name":"users","cgroup":null,"unit":null,"cgroup_id":null,"pid":7,"comm":"curl","exe":"/usr/bin/curl","processes":[{"pid":7,"comm":"curl","exe":"/usr/bin/curl"}],"confidence":"exact","reason":null,"owner_uid":1000}"#,
            #"{"time":"2026-11-24T00:00:00.000042Z","dir":"out","hook":"output","group":6,"seq":null,"prefix":"nfowner","family":"ipv4","proto":"icmp","proto_num":1,"src":"127.0.0.1","dst":"127.0.0.1","sport":null,"dport":null,"icmp_type":8,"icmp_code":0,"icmp_id":4711,"tcp_flags":null,"len":84,"iface_in":null,"iface_out":"lo","uid":1000,"gid":100,"user":"alice","group_name":"users","cgroup":null,"unit":null,"cgroup_id":null,"pid":null,"comm":null,"exe":null,"processes":null,"confidence":null,"reason":null,"owner_uid":1000}"#,
            #"{"time":"2026-11-24T00:00:00.000042Z","dir":"out","hook":"output","group":7,"seq":41,"prefix":"nfowner cg=49102","family":"ipv6","proto":"udp","proto_num":17,"src":"2001:db8::1","dst":"2001:db8::2","sport":5353,"dport":53,"icmp_type":null,"icmp_code":null,"icmp_id":null,"tcp_flags":null,"len":1280,"iface_in":null,"iface_out":"lo","uid":1000,"gid":100,"user":"alice","group_name":"users","cgroup":null,"unit":null,"cgroup_id":null,"pid":null,"comm":null,"exe":null,"processes":null,"confidence":null,"reason":null,"owner_uid":1000}"#,
            #"{"time":"2026-11-24T00:00:00.000042Z","dir":"in","hook":"input","group":5,"seq":41,"prefix":null,"family":"ipv4","proto":"tcp","proto_num":6,"src":"127.0.0.1","dst":"10.0.0.2","sport":40000,"dport":443,"icmp_type":null,"icmp_code":null,"icmp_id":null,"tcp_flags":"SA","len":60,"iface_in":"veth0","iface_out":null,"uid":null,"gid":null,"user":null,"group_name":null,"cgroup":null,"unit":null,"cgroup_id":null,"pid":9,"comm":"nc","exe":"/usr/bin/nc.openbsd","processes":[{"pid":9,"comm":"nc","exe":"/usr/bin/nc.openbsd"}],"confidence":"exact","reason":"the receiving socket","owner_uid":1000}"#,
            #"{"time":"2026-11-24T00:00:01.999999Z","dir":"out","hook":"egress","group":5,"seq":41,"prefix":"nfowner \"q\"\t","family":"ipv4","proto":"tcp","proto_num":6,"src":"127.0.0.1","dst":"10.0.0.2","sport":40000,"dport":443,"icmp_type":null,"icmp_code":null,"icmp_id":null,"tcp_flags":"SA","len":60,"iface_in":null,"iface_out":"lo","uid":1000,"gid":100,"user":"alice","group_name":"users","cgroup":null,"unit":null,"cgroup_id":null,"pid":null,"comm":null,"exe":null,"processes":null,"confidence":null,"reason":null,"owner_uid":1000}"#
        ]
        for which in 0..<Self.shapeCount {
            var out: [UInt8] = []
            JSONLines.append(Self.shape(which), to: &out)
            #expect(String(decoding: out, as: UTF8.self) == expected[which] + "\n", "shape \(which)")
        }
    }

    /// One encoder fed the shapes in an order where every cached text changes (head, middle,
    /// tail, direction): each line is the event's own encoding, never a neighbour's text.
    @Test func streamLinesEqualOneOffLines() throws {
        let order = [0, 0, 1, 2, 3, 0, 4, 3, 3, 1, 1, 2, 0, 4, 4]
        var encoder = JSONLines.Encoder()
        var buffer = ByteBuffer()
        for which in order { encoder.append(Self.shape(which), to: &buffer) }
        let lines = buffer.bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == order.count)
        for (line, which) in zip(lines, order) {
            var single: [UInt8] = []
            JSONLines.append(Self.shape(which), to: &single)
            #expect(String(decoding: line, as: UTF8.self) + "\n" == String(decoding: single, as: UTF8.self), "shape \(which)")
        }
    }

    /// The stream encoder fingerprints owners by the 16 bytes of their optional strings.
    @Test func anOptionalStringIsSixteenBytes() {
        #expect(MemoryLayout<String?>.size == 16)
    }

    /// The encoders start from `OwnerFingerprint.unmatched`: no owner may have it, or its first
    /// event would be written with no owner keys at all. The empty owner and owners with the
    /// largest ids are the ones closest to it.
    @Test func noOwnerHasTheUnmatchedFingerprint() throws {
        let owners = [PacketOwner(), PacketOwner(uid: .max, gid: .max, cgroupID: .max),
                      PacketOwner(uid: 0, gid: 0, cgroupID: 0, attribution: OwnerAttribution(confidence: .flow))]
        for owner in owners { #expect(OwnerFingerprint(owner) != .unmatched) }
        // And the first event of a stream carries its owner.
        var encoder = JSONLines.Encoder()
        var buffer = ByteBuffer()
        encoder.append(PacketEvent(metadata: PacketMetadata(), packet: Self.event().packet, owner: PacketOwner()), to: &buffer)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer.bytes)) as? [String: Any])
        #expect(Set(object.keys) == Set(JSONLines.keys))
    }

    /// Owners equal in content but built separately (other string storage) encode the same.
    @Test func equalOwnersFromOtherStorageEncodeTheSame() throws {
        var first = Self.event()
        first.cgroupPath = String(repeating: "/a", count: 20)
        var second = Self.event()
        second.cgroupPath = String(repeating: "/a", count: 10) + String(repeating: "/a", count: 10)
        var encoder = JSONLines.Encoder()
        var buffer = ByteBuffer()
        encoder.append(first, to: &buffer)
        encoder.append(second, to: &buffer)
        let lines = buffer.bytes.split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == 2 && lines[0].elementsEqual(lines[1]))
    }

    @Test func jsonHasExactlyTheDocumentedKeys() throws {
        let object = try Self.decode(Self.event())
        #expect(Set(object.keys) == Set(JSONLines.keys))
        #expect(object.count == JSONLines.keys.count)
        // The contract document lists the same keys.
        let docs = try String(contentsOfFile: #filePath.replacingOccurrences(
            of: "Tests/ExportTests/ExportTests.swift", with: "docs/json-schema.md"), encoding: .utf8)
        for key in JSONLines.keys { #expect(docs.contains("| `\(key)` |"), "docs/json-schema.md lacks \(key)") }
    }

    @Test func jsonValues() throws {
        let object = try Self.decode(Self.event())
        #expect(object["time"] as? String == "2026-11-24T00:00:00.000042Z")
        #expect(object["dir"] as? String == "out")
        #expect(object["hook"] as? String == "output")
        #expect(object["group"] as? Int == 5)
        #expect(object["seq"] as? Int == 41)
        #expect(object["family"] as? String == "ipv4")
        #expect(object["proto"] as? String == "tcp")
        #expect(object["proto_num"] as? Int == 6)
        #expect(object["src"] as? String == "127.0.0.1")
        #expect(object["dst"] as? String == "10.0.0.2")
        #expect(object["sport"] as? Int == 40000)
        #expect(object["dport"] as? Int == 443)
        #expect(object["tcp_flags"] as? String == "SA")
        #expect(object["len"] as? Int == 60)
        #expect(object["iface_out"] as? String == "lo")
        #expect(object["iface_in"] is NSNull)
        #expect(object["icmp_type"] is NSNull)
        #expect(object["uid"] as? Int == 1000)
        #expect(object["user"] as? String == "alice")
        #expect(object["group_name"] as? String == "users")
    }

    @Test func unknownOwnerIsNullNotMissing() throws {
        let object = try Self.decode(Self.event(prefix: nil, uid: nil, user: nil))
        for key in ["uid", "gid", "user", "group_name", "prefix", "cgroup", "unit", "cgroup_id"] {
            #expect(object[key] is NSNull)
        }
        #expect(object.count == JSONLines.keys.count)
    }

    @Test func cgroupFields() throws {
        var event = Self.event()
        event.cgroupID = 4242
        event.cgroupPath = "/system.slice/nginx.service"
        event.unit = "nginx.service"
        let object = try Self.decode(event)
        #expect(object["cgroup"] as? String == "/system.slice/nginx.service")
        #expect(object["unit"] as? String == "nginx.service")
        #expect(object["cgroup_id"] as? Int == 4242)
        var out: [UInt8] = []
        TextLines.append(event, to: &out)
        #expect(String(decoding: out, as: UTF8.self).contains("nginx.service"))
    }

    @Test func attributionFields() throws {
        var event = Self.event()
        event.attribution = OwnerAttribution(confidence: .exact, processes: [
            ProcessReference(pid: 812, comm: "curl", exe: "/usr/bin/curl"),
            ProcessReference(pid: 813, comm: "curl", exe: nil),
        ])
        let exact = try Self.decode(event)
        #expect(exact["pid"] as? Int == 812)
        #expect(exact["comm"] as? String == "curl")
        #expect(exact["exe"] as? String == "/usr/bin/curl")
        #expect(exact["confidence"] as? String == "exact")
        #expect(exact["reason"] is NSNull)
        let processes = try #require(exact["processes"] as? [[String: Any]])
        #expect(processes.count == 2)
        #expect(processes[1]["exe"] is NSNull)

        event.attribution = OwnerAttribution(confidence: .candidates, processes: [
            ProcessReference(pid: 1, comm: "a", exe: nil), ProcessReference(pid: 2, comm: "b", exe: nil),
        ])
        let candidates = try Self.decode(event)
        #expect(candidates["pid"] is NSNull)
        #expect((candidates["processes"] as? [Any])?.count == 2)
        var out: [UInt8] = []
        TextLines.append(event, to: &out)
        #expect(String(decoding: out, as: UTF8.self).contains("2 processes"))

        event.attribution = OwnerAttribution(confidence: .none, reason: "no socket: kernel-generated")
        let none = try Self.decode(event)
        #expect(none["reason"] as? String == "no socket: kernel-generated")
        #expect((none["processes"] as? [Any])?.isEmpty == true)
        event.attribution = nil
        let off = try Self.decode(event)
        #expect(off["processes"] is NSNull)
        #expect(off["confidence"] is NSNull)
    }

    /// A program: `pid` null, `comm` and `exe` the program's, the processes listed; no new key.
    @Test func programFields() throws {
        var event = Self.event()
        event.attribution = OwnerAttribution(
            confidence: .program, reason: "3 processes of uid 1000 in /a.slice, all running /usr/bin/ping",
            processes: [ProcessReference(pid: 21, comm: "ping", exe: "/usr/bin/ping"),
                        ProcessReference(pid: 22, comm: "ping", exe: "/usr/bin/ping"),
                        ProcessReference(pid: 23, comm: "ping", exe: nil)])
        let program = try Self.decode(event)
        #expect(program["pid"] is NSNull)
        #expect(program["comm"] as? String == "ping")
        #expect(program["exe"] as? String == "/usr/bin/ping")
        #expect(program["confidence"] as? String == "program")
        #expect((program["processes"] as? [[String: Any]])?.compactMap { $0["pid"] as? Int } == [21, 22, 23])
        #expect(Set(program.keys) == Set(JSONLines.keys))
        var out: [UInt8] = []
        TextLines.append(event, to: &out)
        #expect(String(decoding: out, as: UTF8.self).contains(" ping[*] "))

        // The stream encoder tells a program from the single process of the same list apart.
        var single = Self.event()
        single.attribution = event.attribution
        single.attribution?.confidence = .single
        var encoder = JSONLines.Encoder()
        var buffer = ByteBuffer()
        encoder.append(event, to: &buffer)
        encoder.append(single, to: &buffer)
        encoder.append(event, to: &buffer)
        let objects = try buffer.bytes.split(separator: UInt8(ascii: "\n")).map {
            try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])
        }
        #expect(objects.map { $0["pid"] as? Int } == [nil, 21, nil])
        #expect(objects.map { $0["confidence"] as? String } == ["program", "single", "program"])
    }

    @Test func hostileStringsAreEscaped() throws {
        let nasty = "a\"b\\c\nd\u{01}e\u{7F}é"
        let object = try Self.decode(Self.event(prefix: nasty, user: "x\ty"))
        #expect(object["prefix"] as? String == nasty)
        #expect(object["user"] as? String == "x\ty")
    }

    /// Every escapable byte at every position of strings longer than one 8-byte word, next to
    /// multi-byte UTF-8, round-trips through a JSON parser (the escaper skips clean words).
    @Test func escapesAtEveryPositionOfLongStrings() throws {
        let specials: [Character] = ["\"", "\\", "\n", "\r", "\t", "\u{00}", "\u{01}", "\u{1F}", "\u{7F}", "é", "€"]
        let base = Array("/usr/lib/systemd/systemd-resolved --x")
        for special in specials {
            for position in 0..<base.count {
                var text = base
                text.insert(special, at: position)
                let user = String(text)
                let object = try Self.decode(Self.event(prefix: user, user: user))
                #expect(object["user"] as? String == user)
                #expect(object["prefix"] as? String == String(user.utf8.prefix(LogPrefix.inlineCapacity)))
            }
        }
    }

    @Test func rfc3339Dates() {
        #expect(RFC3339.string(EventTime(seconds: 0, microseconds: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(RFC3339.string(EventTime(seconds: 951_782_400, microseconds: 999_999)) == "2000-02-29T00:00:00.999999Z")
        #expect(RFC3339.string(EventTime(seconds: 4_102_444_799, microseconds: 1)) == "2099-12-31T23:59:59.000001Z")
        #expect(RFC3339.string(EventTime(seconds: 1_709_164_800 + 86_399, microseconds: 5)) == "2024-02-29T23:59:59.000005Z")
    }

    @Test func hooksAndDirections() {
        #expect(Hook(family: 2, number: 3) == .output)
        #expect(Hook(family: 10, number: 1) == .input)
        // NFPROTO_NETDEV: a device's ingress and egress (packet sockets' frames).
        #expect(Hook(family: 5, number: 0) == .ingress)
        #expect(Hook(family: 5, number: 1) == .egress)
        #expect(Hook(family: 5, number: 2) == nil)
        #expect(Hook(family: 7, number: 1) == nil)
        #expect(Hook(family: 2, number: 9) == nil)
        #expect(Hook.egress.direction == .outbound && Hook.ingress.direction == .inbound)
        #expect(Hook.prerouting.direction == .inbound)
        #expect(Hook.postrouting.direction == .outbound)
    }

    @Test func textLineShowsOwnerAndEndpoints() {
        var out: [UInt8] = []
        TextLines.append(Self.event(), to: &out)
        let line = String(decoding: out, as: UTF8.self)
        #expect(line.hasPrefix("00:00:00.000042"))
        #expect(line.contains("127.0.0.1:40000"))
        #expect(line.contains("→ 10.0.0.2:443 [SA]"))
        #expect(line.contains("alice(1000)"))
        #expect(line.contains("users(100)"))
        #expect(line.hasSuffix("nfowner\n"))
        #expect(line.contains(" - "))
        var anonymous: [UInt8] = []
        TextLines.append(Self.event(prefix: "a\nb", uid: nil, user: nil), to: &anonymous)
        let text = String(decoding: anonymous, as: UTF8.self)
        #expect(text.contains(" - "))
        #expect(text.hasSuffix("a?b\n"))
    }
}
