import PacketModel
import PacketParsing

/// Human-readable output: one aligned line per packet.
///
///     TIME             DIR PROTO   SOURCE                    DESTINATION                       LEN   USER(UID)         GROUP(GID)        PREFIX
///     23:19:46.962219  out tcp     127.0.0.1:40386         → 127.0.0.1:8080 [S]                 60    nobody(65534)     nogroup(65534)    nfowner
///
/// Times are UTC, like the JSON output. ICMP shows type/code in place of ports.
public enum TextLines {
    static let timeWidth = 17, directionWidth = 4, protocolWidth = 8, endpointWidth = 24, destinationWidth = 34
    static let lengthWidth = 6, cgroupWidth = 26, processWidth = 20
    static let ownerWidth = 18

    public static var header: String {
        var out: [UInt8] = []
        out.append(padded: "TIME", width: timeWidth)
        out.append(padded: "DIR", width: directionWidth)
        out.append(padded: "PROTO", width: protocolWidth)
        out.append(padded: "SOURCE", width: endpointWidth)
        out.append(padded: "  DESTINATION", width: destinationWidth + 3)
        out.append(padded: "LEN", width: lengthWidth)
        out.append(padded: "USER(UID)", width: ownerWidth)
        out.append(padded: "GROUP(GID)", width: ownerWidth)
        out.append(padded: "PROCESS", width: processWidth)
        out.append(padded: "CGROUP", width: cgroupWidth)
        out.append(ascii: "PREFIX\n")
        return String(decoding: out, as: UTF8.self)
    }

    public static func append(_ event: borrowing PacketEvent, to out: inout [UInt8]) {
        let packet = event.packet
        var time: [UInt8] = []
        RFC3339.append(event.time, to: &time, dateAndTime: false)
        out.append(padded: String(decoding: time, as: UTF8.self), width: timeWidth)
        out.append(padded: event.direction.rawValue, width: directionWidth)
        let protocolName = IPProtocolNames.name(for: packet.protocolNumber) ?? String(packet.protocolNumber)
        out.append(padded: protocolName, width: protocolWidth)
        out.append(padded: endpoint(packet.source, port: packet.sourcePort, family: packet.family), width: endpointWidth)
        out.append(ascii: "→ ")
        var destination = endpoint(packet.destination, port: packet.destinationPort, family: packet.family)
        if let icmp = packet.icmp {
            destination += " " + icmpDescription(icmp)
        } else if let flags = packet.tcpFlags, !flags.isEmpty {
            destination += " [" + flags.letters + "]"
        } else if case .notFirstFragment = packet.transport {
            destination += " (fragment)"
        }
        out.append(padded: destination, width: destinationWidth)
        out.append(UInt8(ascii: " "))
        out.append(padded: String(packet.totalLength), width: lengthWidth)
        out.append(padded: owner(name: event.userName, id: event.owner.uid), width: ownerWidth)
        out.append(padded: owner(name: event.groupName, id: event.owner.gid), width: ownerWidth)
        out.append(padded: process(event.attribution), width: processWidth)
        // The unit says most to a person; else the cgroup path; else the bare id.
        let cgroup = event.unit ?? event.cgroupPath ?? event.cgroupID.map { "cgroup \($0)" } ?? "-"
        out.append(padded: printable(cgroup), width: cgroupWidth)
        if let prefix = event.metadata.prefix?.string { out.append(contentsOf: printable(prefix).utf8) }
        out.append(UInt8(ascii: "\n"))
    }

    /// Control characters would break the line (or the terminal): shown as "?".
    static func printable(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 < 0x20 || $0 == 0x7F ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }

    static func endpoint(_ address: IPAddress, port: UInt16?, family: IPFamily) -> String {
        guard let port else { return address.description }
        return family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// `comm[pid]` when one process is known, `comm[*]` for a program (several processes of one
    /// executable: any of their pids), `N processes` for candidates, else "-".
    static func process(_ attribution: OwnerAttribution?) -> String {
        guard let attribution else { return "-" }
        if let chosen = attribution.chosen { return printable("\(chosen.comm ?? "?")[\(chosen.pid)]") }
        if attribution.confidence == .program, let named = attribution.named {
            return printable("\(named.comm ?? "?")[*]")
        }
        if attribution.confidence == .candidates { return "\(attribution.processes.count) processes" }
        return "-"
    }

    static func owner(name: String?, id: UInt32?) -> String {
        guard let id else { return "-" }
        return "\(name ?? String(id))(\(id))"
    }

    static func icmpDescription(_ icmp: ICMPInfo) -> String {
        var text = "type=\(icmp.type.map(String.init) ?? "?") code=\(icmp.code.map(String.init) ?? "?")"
        if let id = icmp.echoIdentifier { text += " id=\(id)" }
        return text
    }
}
