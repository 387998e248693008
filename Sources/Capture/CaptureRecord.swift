import PacketModel

/// A timestamp read from a capture file: seconds and nanoseconds since the Unix epoch, UTC.
public struct CaptureTime: Sendable, Equatable, Comparable {
    public var seconds: UInt64
    /// 0 ..< 1_000_000_000.
    public var nanoseconds: UInt32

    public init(seconds: UInt64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// The same instant to the microsecond (nfowner's event time), rounding down.
    public var eventTime: EventTime {
        EventTime(seconds: seconds, microseconds: UInt64(nanoseconds / 1000))
    }

    public static func < (lhs: CaptureTime, rhs: CaptureTime) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }
}

/// An interface as a capture file describes it (a pcapng Interface Description Block, or a pcap
/// file's global header).
public struct CaptureInterfaceDescription: Sendable, Equatable {
    /// LINKTYPE_* (101 = raw IP, what nfowner writes).
    public var linkType: UInt16
    /// Bytes kept of each packet; 0 = no limit.
    public var snapLength: UInt32
    /// if_name, when the file gives one.
    public var name: String?
    /// if_tsresol as written: 10^-n seconds per unit, or 2^-(n & 0x7F) when the high bit is
    /// set. 6 (microseconds) when absent; 9 for a nanosecond pcap file.
    public var timestampResolution: UInt8
    /// if_tsoffset: seconds added to every timestamp.
    public var timestampOffset: Int64

    public init(linkType: UInt16, snapLength: UInt32, name: String? = nil, timestampResolution: UInt8 = 6,
                timestampOffset: Int64 = 0) {
        self.linkType = linkType
        self.snapLength = snapLength
        self.name = name
        self.timestampResolution = timestampResolution
        self.timestampOffset = timestampOffset
    }
}

/// A process named in a capture file (Apple's process-information block).
public struct CaptureProcess: Sendable, Equatable {
    public var pid: UInt32
    public var name: String?

    public init(pid: UInt32, name: String?) {
        self.pid = pid
        self.name = name
    }
}

/// A custom option (codes 2988, 2989, 19372, 19373): a Private Enterprise Number and its data.
public struct CaptureCustomOption: Sendable, Equatable {
    public var code: UInt16
    public var enterpriseNumber: UInt32
    public var data: [UInt8]

    public init(code: UInt16, enterpriseNumber: UInt32, data: [UInt8]) {
        self.code = code
        self.enterpriseNumber = enterpriseNumber
        self.data = data
    }

    /// The data as text for the UTF-8 codes (2988, 19372); nil for the binary ones.
    public var text: String? {
        guard code == PcapngOption.customStringCopiable || code == PcapngOption.customStringLocal else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

/// One packet from a capture file, with everything the file said about it.
public struct CaptureRecord: Sendable, Equatable {
    /// The interface id in its section (0 in a pcap file).
    public var interfaceID: Int
    public var interface: CaptureInterfaceDescription
    public var time: CaptureTime
    /// The packet's length on the wire; `data.count` is how much of it was captured.
    public var originalLength: Int
    public var data: [UInt8]
    /// epb_flags, when present.
    public var flags: UInt32?
    /// opt_comment, every one in the block (pcapng allows several), in order.
    public var comments: [String]
    public var customOptions: [CaptureCustomOption]
    /// Option 0x8001: the index of a process-information block in the section.
    public var processIndex: UInt32?
    /// That block, when the index refers to one read before this packet.
    public var process: CaptureProcess?

    public init(interfaceID: Int, interface: CaptureInterfaceDescription, time: CaptureTime, originalLength: Int,
                data: [UInt8], flags: UInt32? = nil, comments: [String] = [], customOptions: [CaptureCustomOption] = [],
                processIndex: UInt32? = nil, process: CaptureProcess? = nil) {
        self.interfaceID = interfaceID
        self.interface = interface
        self.time = time
        self.originalLength = originalLength
        self.data = data
        self.flags = flags
        self.comments = comments
        self.customOptions = customOptions
        self.processIndex = processIndex
        self.process = process
    }

    public var capturedLength: Int { data.count }

    /// The first comment (nfowner writes one: the owner's `key=value` text).
    public var comment: String? { comments.first }

    /// From epb_flags bits 0–1 (01 inbound, 10 outbound); nil when unknown.
    public var direction: Direction? {
        switch (flags ?? 0) & 0b11 {
        case 0b01: .inbound
        case 0b10: .outbound
        default: nil
        }
    }

    /// The owner JSON nfowner writes: the first UTF-8 custom option under its PEN (32473).
    public var ownerJSON: String? {
        customOptions.first { $0.enterpriseNumber == nfownerPrivateEnterpriseNumber && $0.text != nil }?.text
    }
}
