import PacketModel
import PacketParsing

/// Where a packet was captured, as one pcapng interface: a source (NFLOG group, NFQUEUE queue,
/// file) and a direction. Wireshark's interface column then tells `nflog:5 out` from `nflog:5 in`.
public struct CaptureInterface: Sendable, Hashable {
    public var origin: PacketOrigin
    public var direction: Direction

    public init(origin: PacketOrigin, direction: Direction) {
        self.origin = origin
        self.direction = direction
    }

    /// The if_name: `nflog:5 out`, `nfqueue:3 in`, `file:0 in`.
    public var name: String {
        let kind = switch origin.kind {
        case .nflog: "nflog"
        case .nfqueue: "nfqueue"
        case .file: "file"
        }
        return "\(kind):\(origin.number) \(direction.rawValue)"
    }

    // PacketOrigin is only Equatable; hash what makes it equal.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(origin.kind)
        hasher.combine(origin.number)
        hasher.combine(direction)
    }
}

/// Writes attributed packets as pcapng: one section, an interface per (source, direction), an
/// Enhanced Packet Block per packet with the owner in its comment and in a JSON custom option,
/// and an Apple process-information block per process named.
///
/// A value type that appends bytes to the caller's buffer; the caller writes them to the file
/// (each `append` leaves whole blocks, so a file cut after any write(2) stays readable up to
/// its last complete block). Blocks a packet needs come right before it: the section header
/// before anything, an interface's description before its first packet, a process block
/// before the first packet that refers to it.
///
/// One writer per file: its ids refer to blocks it has written, so a new file (rotation) needs a
/// new writer, which starts with a new section header.
///
/// Memory: one entry per interface and per distinct (pid, process name) seen — the process
/// table grows with the processes that sent traffic during the capture, as the file does.
public struct PcapngWriter: Sendable {
    /// Bytes kept of each packet; longer payloads are cut (the original length says how long
    /// the packet was). 0 means no limit.
    public let snapLength: UInt32
    /// Written as the section's shb_userappl.
    public let application: String?

    /// The interfaces described so far, by interface id.
    public private(set) var interfaces: [CaptureInterface] = []
    private var interfaceIDs: [CaptureInterface: UInt32] = [:]
    private var processIndexes: [ProcessKey: UInt32] = [:]
    private var wroteSectionHeader = false
    /// The last owner, its encoded comment and JSON options and its process block's index:
    /// packets come in runs from one owner, and encoding them is most of the cost of a packet.
    /// Owners are compared by fingerprint; `lastOwner` keeps the storage it points at alive.
    private var lastOwner: PacketOwner?
    private var lastOwnerFingerprint = OwnerFingerprint.unmatched
    private var lastOwnerOptions: [UInt8] = []
    private var lastProcessIndex: UInt32?
    /// The last packet's interface with its id, for the same reason.
    private var lastInterface: (interface: CaptureInterface, id: UInt32)?

    private struct ProcessKey: Hashable {
        var pid: Int32
        var name: String?
    }

    public init(snapLength: UInt32, application: String? = "nfowner") {
        self.snapLength = snapLength
        self.application = application
    }

    /// The number of process-information blocks written so far.
    public var processBlockCount: Int { processIndexes.count }

    /// Appends the Section Header Block, once; later calls append nothing. `append` calls it, so
    /// only a caller that wants the header in the file before the first packet needs to.
    public mutating func appendSectionHeader(to out: inout some BlockOutput) {
        guard !wroteSectionHeader else { return }
        wroteSectionHeader = true
        var block: [UInt8] = []
        PcapngBlocks.appendSectionHeader(application: application, to: &block)
        out.append(contentsOf: block)
    }

    /// The interface id of `interface`, appending its description (and the section header) the
    /// first time. Callers may declare the interfaces they expect up front so their ids follow a
    /// fixed order; otherwise ids go by first packet.
    @discardableResult
    public mutating func declare(_ interface: CaptureInterface, to out: inout some BlockOutput) -> UInt32 {
        if let id = interfaceIDs[interface] { return id }
        appendSectionHeader(to: &out)
        let id = UInt32(interfaces.count)
        interfaces.append(interface)
        interfaceIDs[interface] = id
        var block: [UInt8] = []
        PcapngBlocks.appendInterfaceDescription(linkType: LinkType.raw, snapLength: snapLength,
                                                name: interface.name, to: &block)
        out.append(contentsOf: block)
        return id
    }

    /// Appends one packet: `payload` is the IP packet as captured (it starts with the IP
    /// header), `event` what nfowner knows about it.
    ///
    /// The interface is (`event.metadata.origin`, `event.direction`). The timestamp is the
    /// event's time in microseconds. The original length is the IP header's length
    /// (`event.packet.totalLength`), or the captured length when that is larger — a reader must
    /// never see fewer original than captured bytes, and GSO packets carry 0 or a stale length.
    public mutating func append(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer,
                                to out: inout [UInt8]) {
        appendPacket(event, payload: payload, to: &out)
    }

    /// `append` into raw memory: a direct-write chunk (`RawBlockOutput`).
    public mutating func append(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer,
                                to out: inout RawBlockOutput) {
        appendPacket(event, payload: payload, to: &out)
    }

    // One body for both outputs; the two entry points above let the optimizer specialize it for
    // each inside this module (a generic public entry point would be called unspecialized from
    // the sink's module).
    private mutating func appendPacket<Output: BlockOutput>(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer,
                                                            to out: inout Output) {
        let direction = event.direction
        let interface = CaptureInterface(origin: event.metadata.origin, direction: direction)
        let interfaceID: UInt32
        if let last = lastInterface, last.interface == interface {
            interfaceID = last.id
        } else {
            interfaceID = declare(interface, to: &out)
            lastInterface = (interface, interfaceID)
        }
        let fingerprint = OwnerFingerprint(event.owner)
        if fingerprint != lastOwnerFingerprint {
            lastOwnerOptions = Self.ownerOptions(for: event.owner)
            lastProcessIndex = event.owner.attribution?.chosen.map { index(of: $0, to: &out) }
            lastOwner = event.owner
            lastOwnerFingerprint = fingerprint
        }
        let kept = snapLength == 0 ? payload.count : min(payload.count, Int(snapLength))
        let data = UnsafeRawBufferPointer(rebasing: payload[0..<kept])
        let originalLength = UInt32(clamping: max(event.packet.totalLength, payload.count))
        PcapngBlocks.appendEnhancedPacket(interfaceID: interfaceID, timestamp: Self.microseconds(event.metadata.time),
                                          originalLength: originalLength, data: data, direction: direction,
                                          ownerOptions: lastOwnerOptions, processIndex: lastProcessIndex, to: &out)
    }

    /// `append` for a payload held in an array.
    public mutating func append(_ event: borrowing PacketEvent, payload: [UInt8], to out: inout [UInt8]) {
        payload.withUnsafeBytes { append(event, payload: $0, to: &out) }
    }

    /// The index of the process block for `process`, appending the block the first time.
    private mutating func index(of process: ProcessReference, to out: inout some BlockOutput) -> UInt32 {
        let key = ProcessKey(pid: process.pid, name: Self.processName(process))
        if let index = processIndexes[key] { return index }
        appendSectionHeader(to: &out)
        let index = UInt32(processIndexes.count)
        processIndexes[key] = index
        var block: [UInt8] = []
        PcapngBlocks.appendDarwinProcessInformation(pid: UInt32(bitPattern: process.pid), name: key.name, to: &block)
        out.append(contentsOf: block)
        return index
    }

    /// The name in a process block: the comm (what Apple's tools write, at most 15 bytes), or the
    /// executable's file name when the comm is unknown.
    static func processName(_ process: ProcessReference) -> String? {
        if let comm = process.comm, !comm.isEmpty { return comm }
        guard let exe = process.exe, let last = exe.split(separator: "/").last else { return nil }
        return String(last)
    }

    /// The comment and JSON options of `owner`, encoded.
    static func ownerOptions(for owner: PacketOwner) -> [UInt8] {
        var options = OptionList()
        if let comment = OwnerComment.text(for: owner) {
            options.add(PcapngOption.comment, PcapngBlocks.utf8Prefix(comment))
        }
        if let full = OwnerJSON.text(for: owner) {
            let fits = full.utf8.count <= PcapngBlocks.maximumOptionLength - 4
            if let json = fits ? full : OwnerJSON.text(for: owner, includingProcesses: false) {
                options.addOwnerJSON(Array(json.utf8))
            }
        }
        return options.bytes
    }

    /// Microseconds since the epoch; saturates instead of trapping on a time no clock produces.
    static func microseconds(_ time: EventTime) -> UInt64 {
        let (whole, overflow) = time.seconds.multipliedReportingOverflow(by: 1_000_000)
        guard !overflow else { return .max }
        let (sum, carry) = whole.addingReportingOverflow(min(time.microseconds, 999_999))
        return carry ? .max : sum
    }
}
