import Capture
import Export
import NetfilterSystem
import PacketModel
import PacketParsing

/// `nfowner capture --read FILE`: the packets of a pcapng/pcap file as monitor's text or JSON
/// lines, or a conversation table. Owners come from the comment nfowner writes on each packet;
/// other tools' files show them as unknown.
///
/// A truncated or damaged file: what was read before the damage is printed, then a note on
/// stderr says how many packets were read and where the file stops making sense; the exit
/// status is 0 (a capture cut short by SIGKILL is a normal thing to read), 1 only when not even
/// the file header is readable.
enum CaptureReading {
    static func print(path: String, json: Bool, conversations: Bool) throws {
        let bytes: [UInt8]
        do { bytes = try InputFile.readAll(path: path) } catch { throw UserFacingError(error.description) }
        var reader: CaptureFileReader
        do { reader = try CaptureFileReader(bytes: bytes) } catch {
            throw UserFacingError("\(path) is not a pcapng or pcap file: \(error)")
        }
        var out = ByteBuffer(capacity: 1 << 16)
        var line: [UInt8] = []
        var table = ConversationTable()
        var jsonEncoder = JSONLines.Encoder()
        var unparsable = 0
        if !json && !conversations { Array(TextLines.header.utf8).withUnsafeBytes { out.write($0) } }
        var failure: CaptureFileError?
        while true {
            let record: CaptureRecord?
            do { record = try reader.next() } catch { failure = error; break }
            guard let record else { break }
            guard let event = event(for: record) else { unparsable += 1; continue }
            if conversations {
                table.add(event, ipBytes: record.originalLength)
            } else if json {
                jsonEncoder.append(event, to: &out)
            } else {
                line.removeAll(keepingCapacity: true)
                TextLines.append(event, to: &line)
                line.withUnsafeBytes { out.write($0) }
            }
            if out.count >= 1 << 16 { try write(&out) }
        }
        if conversations { Array(table.rendered().utf8).withUnsafeBytes { out.write($0) } }
        try write(&out)
        if unparsable > 0 { note("\(unparsable) record(s) are not IP packets nfowner can parse: skipped") }
        if let failure {
            note("\(path) stops being readable after \(reader.recordsRead) record(s): \(failure)")
        }
    }

    private static func write(_ out: inout ByteBuffer) throws {
        defer { out.removeAll() }
        do { try out.withBytes { bytes throws(SystemError) in try OutputDescriptor.standardOutput.write(bytes) } } catch {
            if error.code == Errno.brokenPipe { return }
            throw UserFacingError(error.description)
        }
    }

    /// The record as an event: its IP packet parsed, its owner from the comment (when nfowner wrote one).
    static func event(for record: CaptureRecord) -> PacketEvent? {
        let summary: PacketSummary
        do { summary = try record.data.withUnsafeBytes { bytes throws(PacketParseError) in try PacketParser.parse(bytes) } } catch {
            return nil
        }
        var metadata = PacketMetadata()
        metadata.origin = PacketOrigin(kind: .nflog, number: 0)
        metadata.time = record.time.eventTime
        metadata.capturedLength = record.capturedLength
        if record.direction == .inbound { metadata.inputInterface = 0 }
        return PacketEvent(metadata: metadata, packet: summary, owner: record.comment.map(OwnerCommentParser.owner) ?? PacketOwner())
    }
}

/// Reads back the `key=value` comment `OwnerComment` writes (see its grammar).
enum OwnerCommentParser {
    static func fields(_ comment: String) -> [(key: String, value: String)] {
        var result: [(String, String)] = []
        var bytes = Array(comment.utf8)[...]
        while !bytes.isEmpty {
            while bytes.first == UInt8(ascii: " ") { bytes = bytes.dropFirst() }
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { break }
            let key = String(decoding: bytes[bytes.startIndex..<equals], as: UTF8.self)
            bytes = bytes[(equals + 1)...]
            var value: [UInt8] = []
            if bytes.first == UInt8(ascii: "\"") {
                bytes = bytes.dropFirst()
                while let byte = bytes.first {
                    bytes = bytes.dropFirst()
                    if byte == UInt8(ascii: "\"") { break }
                    if byte == UInt8(ascii: "\\"), let escaped = bytes.first {
                        bytes = bytes.dropFirst()
                        switch escaped {
                        case UInt8(ascii: "n"): value.append(10)
                        case UInt8(ascii: "r"): value.append(13)
                        case UInt8(ascii: "t"): value.append(9)
                        case UInt8(ascii: "x"):
                            let hex = String(decoding: bytes.prefix(2), as: UTF8.self)
                            bytes = bytes.dropFirst(2)
                            value.append(UInt8(hex, radix: 16) ?? UInt8(ascii: "?"))
                        default: value.append(escaped)
                        }
                    } else {
                        value.append(byte)
                    }
                }
            } else {
                let end = bytes.firstIndex(of: UInt8(ascii: " ")) ?? bytes.endIndex
                value = Array(bytes[bytes.startIndex..<end])
                bytes = bytes[end...]
            }
            result.append((key, String(decoding: value, as: UTF8.self)))
        }
        return result
    }

    /// `1000(alice)` → (1000, "alice"); `1000` → (1000, nil).
    private static func idAndName(_ value: String) -> (UInt32?, String?) {
        guard let open = value.firstIndex(of: "("), value.hasSuffix(")") else { return (UInt32(value), nil) }
        return (UInt32(value[..<open]), String(value[value.index(after: open)..<value.index(before: value.endIndex)]))
    }

    static func owner(_ comment: String) -> PacketOwner {
        var owner = PacketOwner()
        var pid: Int32?
        var comm: String?
        var exe: String?
        var confidence: OwnerAttribution.Confidence?
        var reason: String?
        var candidates: [ProcessReference] = []
        for (key, value) in fields(comment) {
            switch key {
            case "uid": (owner.uid, owner.userName) = idAndName(value)
            case "user": owner.userName = value
            case "gid": (owner.gid, owner.groupName) = idAndName(value)
            case "group": owner.groupName = value
            case "cgroup": owner.cgroupPath = value
            case "cgroup_id": owner.cgroupID = UInt64(value)
            case "unit": owner.unit = value
            case "pid": pid = Int32(value)
            case "comm": comm = value
            case "exe": exe = value
            case "confidence": confidence = OwnerAttribution.Confidence(rawValue: value)
            case "reason": reason = value
            case "candidates":
                candidates = value.split(separator: ",").compactMap { item in
                    let (number, name) = idAndName(String(item))
                    return number.map { ProcessReference(pid: Int32(bitPattern: $0), comm: name, exe: nil) }
                }
            default: break
            }
        }
        if let confidence {
            var processes = pid.map { [ProcessReference(pid: $0, comm: comm, exe: exe)] } ?? candidates
            // A program: its comm and exe are the first listed process's (see OwnerAttribution.named).
            if confidence == .program, !processes.isEmpty {
                processes[0].comm = comm ?? processes[0].comm
                processes[0].exe = exe ?? processes[0].exe
            }
            owner.attribution = OwnerAttribution(confidence: confidence, reason: reason, processes: processes)
        }
        return owner
    }
}

/// Packets and IP bytes each way per (program, pid, remote endpoint, protocol), in first-seen order.
struct ConversationTable {
    struct Key: Hashable {
        var program: String
        var pid: String
        var remote: String
        var proto: String
    }
    struct Totals {
        var packetsOut = 0, bytesOut = 0, packetsIn = 0, bytesIn = 0
    }
    private(set) var order: [Key] = []
    private(set) var totals: [Key: Totals] = [:]

    mutating func add(_ event: borrowing PacketEvent, ipBytes: Int) {
        let chosen = event.owner.attribution?.chosen
        let program = chosen?.comm ?? chosen?.exe ?? event.owner.userName.map { "(\($0))" }
            ?? event.owner.uid.map { "(uid \($0))" } ?? "-"
        let outbound = event.direction == .outbound
        let packet = event.packet
        let address = outbound ? packet.destination : packet.source
        let port = outbound ? packet.destinationPort : packet.sourcePort
        let host = packet.family == .ipv6 ? "[\(address)]" : "\(address)"
        let key = Key(program: program, pid: chosen.map { "\($0.pid)" } ?? "-",
                      remote: port.map { "\(host):\($0)" } ?? host, proto: Self.protocolName(packet.protocolNumber))
        if totals[key] == nil { order.append(key) }
        var entry = totals[key, default: Totals()]
        if outbound {
            entry.packetsOut += 1
            entry.bytesOut += ipBytes
        } else {
            entry.packetsIn += 1
            entry.bytesIn += ipBytes
        }
        totals[key] = entry
    }

    static func protocolName(_ number: UInt8) -> String {
        switch number {
        case IPProtocolNumber.tcp: "tcp"
        case IPProtocolNumber.udp: "udp"
        case IPProtocolNumber.icmp: "icmp"
        case IPProtocolNumber.icmpv6: "icmpv6"
        case IPProtocolNumber.sctp: "sctp"
        case IPProtocolNumber.gre: "gre"
        default: "\(number)"
        }
    }

    func rendered() -> String {
        let header = ["PROGRAM", "PID", "REMOTE", "PROTO", "PKTS_OUT", "BYTES_OUT", "PKTS_IN", "BYTES_IN"]
        var rows = [header]
        for key in order {
            let entry = totals[key] ?? Totals()
            rows.append([key.program, key.pid, key.remote, key.proto, "\(entry.packetsOut)", "\(entry.bytesOut)",
                         "\(entry.packetsIn)", "\(entry.bytesIn)"])
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        var text = ""
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return index >= 4 ? pad + cell : (index == row.count - 1 ? cell : cell + pad)
            }
            text += cells.joined(separator: "  ") + "\n"
        }
        return text
    }
}
