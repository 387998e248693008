import PacketModel
import PacketParsing

/// Packet and byte totals for a traced command: per protocol and remote endpoint, and per
/// owner (process when known, else user). Pure value type: feed it events, render it.
public struct TrafficSummary: Sendable {
    /// A flow's far end as seen from the traced process: the destination of what it sent, the
    /// source of what it received.
    public struct Endpoint: Hashable, Sendable, Comparable {
        public var protocolName: String
        public var address: String
        /// Port, or for ICMP the type ("echo" traffic is grouped by type).
        public var port: String?

        public init(protocolName: String, address: String, port: String?) {
            self.protocolName = protocolName
            self.address = address
            self.port = port
        }

        public static func < (lhs: Endpoint, rhs: Endpoint) -> Bool {
            (lhs.protocolName, lhs.address, lhs.port ?? "") < (rhs.protocolName, rhs.address, rhs.port ?? "")
        }

        public var description: String {
            guard let port else { return "\(protocolName) \(address)" }
            return "\(protocolName) \(address) \(port)"
        }
    }

    public struct Totals: Sendable, Equatable {
        public var packetsOut: UInt64 = 0
        public var bytesOut: UInt64 = 0
        public var packetsIn: UInt64 = 0
        public var bytesIn: UInt64 = 0
        public init() {}

        mutating func add(_ event: borrowing PacketEvent) {
            let bytes = UInt64(max(0, event.packet.totalLength))
            if event.direction == .inbound {
                packetsIn += 1
                bytesIn += bytes
            } else {
                packetsOut += 1
                bytesOut += bytes
            }
        }
    }

    public private(set) var byEndpoint: [Endpoint: Totals] = [:]
    /// Keyed by a label: "comm[pid]" when the process is known, else "uid N (user)", else "no owner".
    public private(set) var byOwner: [String: Totals] = [:]
    public private(set) var total = Totals()
    /// Keyed by the attribution's confidence ("exact", "flow", ..., "none"); "off" when owner
    /// resolution was off. Every event is in exactly one.
    public private(set) var byConfidence: [String: Totals] = [:]

    public init() {}

    /// Adds one event. `owner` labels who sent it (see `byOwner`).
    public mutating func add(_ event: borrowing PacketEvent, owner: String? = nil) {
        let packet = event.packet
        let name = IPProtocolNames.name(for: packet.protocolNumber) ?? String(packet.protocolNumber)
        let outbound = event.direction == .outbound
        let address = outbound ? packet.destination : packet.source
        let port: String?
        if let icmp = packet.icmp {
            port = icmp.type.map { "type \($0)" }
        } else {
            port = (outbound ? packet.destinationPort : packet.sourcePort).map(String.init)
        }
        let endpoint = Endpoint(protocolName: name, address: address.description, port: port)
        byEndpoint[endpoint, default: Totals()].add(event)
        let label = owner ?? event.owner.uid.map { uid in "uid \(uid)" + (event.userName.map { " (\($0))" } ?? "") } ?? "no owner"
        byOwner[label, default: Totals()].add(event)
        byConfidence[event.attribution?.confidence.rawValue ?? "off", default: Totals()].add(event)
        total.add(event)
    }

    /// A plain-text table, widest totals first.
    public func render() -> String {
        var lines = ["", "nfowner trace summary: \(total.packetsOut) packets (\(total.bytesOut) bytes) out, "
                     + "\(total.packetsIn) packets (\(total.bytesIn) bytes) in"]
        guard total.packetsOut + total.packetsIn > 0 else { return lines.joined(separator: "\n") + "\n" }
        lines.append("")
        lines.append(row("REMOTE ENDPOINT", "PKTS OUT", "BYTES OUT", "PKTS IN", "BYTES IN"))
        for (endpoint, totals) in byEndpoint.sorted(by: { ($0.value.bytesOut + $0.value.bytesIn, $1.key) > ($1.value.bytesOut + $1.value.bytesIn, $0.key) }) {
            lines.append(row(endpoint.description, totals))
        }
        lines.append("")
        lines.append(row("SENDER", "PKTS OUT", "BYTES OUT", "PKTS IN", "BYTES IN"))
        for (owner, totals) in byOwner.sorted(by: { ($0.value.packetsOut, $1.key) > ($1.value.packetsOut, $0.key) }) {
            lines.append(row(owner, totals))
        }
        lines.append("")
        lines.append(row("CONFIDENCE", "PKTS OUT", "BYTES OUT", "PKTS IN", "BYTES IN", "% B OUT", "% B IN"))
        let order = OwnerAttribution.Confidence.allCases.map(\.rawValue) + ["off"]
        for confidence in order {
            guard let totals = byConfidence[confidence] else { continue }
            lines.append(row(confidence, String(totals.packetsOut), String(totals.bytesOut), String(totals.packetsIn),
                             String(totals.bytesIn), Self.share(totals.bytesOut, of: total.bytesOut),
                             Self.share(totals.bytesIn, of: total.bytesIn)))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// "99.8" (per cent, one decimal), "-" of nothing.
    static func share(_ part: UInt64, of whole: UInt64) -> String {
        guard whole > 0 else { return "-" }
        let tenths = (part * 1000 + whole / 2) / whole
        return "\(tenths / 10).\(tenths % 10)"
    }

    private func row(_ label: String, _ totals: Totals) -> String {
        row(label, String(totals.packetsOut), String(totals.bytesOut), String(totals.packetsIn), String(totals.bytesIn))
    }

    private func row(_ label: String, _ columns: String...) -> String {
        let padded = label.count >= 40 ? label + " " : label + String(repeating: " ", count: 40 - label.count)
        return padded + columns.map { String(repeating: " ", count: max(0, 10 - $0.count)) + $0 }.joined(separator: " ")
    }

    /// "curl[812]" for a known process, "ping or sh (2 candidates)" for several, else nil (the
    /// summary then labels by uid).
    public static func senderLabel(_ event: borrowing PacketEvent) -> String? {
        guard let attribution = event.attribution else { return nil }
        if let chosen = attribution.chosen { return "\(chosen.comm ?? "?")[\(chosen.pid)]" }
        guard attribution.confidence == .candidates else { return nil }
        let names = Set(attribution.processes.compactMap(\.comm)).sorted().joined(separator: " or ")
        return "\(names) (\(attribution.processes.count) candidates)"
    }
}
