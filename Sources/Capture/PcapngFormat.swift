// The pcapng numbers nfowner writes and reads.
//
// Every pcapng block has the same frame, so a reader can skip blocks it does not know:
//
//     0                   1                   2                   3
//     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//    +---------------------------------------------------------------+
//  0 |                          Block Type                           |
//    +---------------------------------------------------------------+
//  4 |                      Block Total Length                       |
//    +---------------------------------------------------------------+
//  8 /                          Block Body                           /
//    /          (fixed fields, then options; a multiple of 4)        /
//    +---------------------------------------------------------------+
//    |                      Block Total Length                       |
//    +---------------------------------------------------------------+
//
// and every option list is code/length/value triples, each value padded to 4 bytes, ended by
// opt_endofopt (code 0, length 0):
//
//    +-------------------------------+-------------------------------+
//    |          Option Code          |         Option Length         |
//    +-------------------------------+-------------------------------+
//    /          Option Value (Option Length bytes, padded to 4)      /
//    +---------------------------------------------------------------+
//
// Numbers are in the byte order the Section Header Block's byte-order magic announces; nfowner
// writes little-endian always (not host order), so its files are byte-for-byte the same on
// every machine. See docs/capture.md for the file nfowner writes.

/// Block types (the pcapng specification's names in the doc comments).
public enum PcapngBlockType {
    /// Section Header Block (SHB): "\n\r\r\n", the same in both byte orders.
    public static let sectionHeader: UInt32 = 0x0A0D_0D0A
    /// Interface Description Block (IDB).
    public static let interfaceDescription: UInt32 = 0x0000_0001
    /// Name Resolution Block (NRB): written only as padding (no records; see
    /// `PcapngBlocks.padding`), skipped when read.
    public static let nameResolution: UInt32 = 0x0000_0004
    /// Simple Packet Block (SPB): read, never written.
    public static let simplePacket: UInt32 = 0x0000_0003
    /// Enhanced Packet Block (EPB).
    public static let enhancedPacket: UInt32 = 0x0000_0006
    /// Apple's Darwin process-information block (DPIB): u32 pid, then options (2 = name).
    /// Wireshark 4.6 and later decode it; earlier versions skip it as an unknown local block.
    public static let darwinProcessInformation: UInt32 = 0x8000_0001
}

/// Option codes, by the block they appear in.
public enum PcapngOption {
    /// opt_endofopt: ends every option list.
    public static let endOfOptions: UInt16 = 0
    /// opt_comment: UTF-8 text, in any block. Wireshark shows it as `frame.comment`.
    public static let comment: UInt16 = 1
    /// opt_custom, UTF-8 string after a u32 Private Enterprise Number, may be copied to new files.
    public static let customStringCopiable: UInt16 = 2988
    /// opt_custom, binary after a u32 PEN, may be copied to new files.
    public static let customBinaryCopiable: UInt16 = 2989
    /// opt_custom, UTF-8 string after a u32 PEN, should not be copied.
    public static let customStringLocal: UInt16 = 19372
    /// opt_custom, binary after a u32 PEN, should not be copied.
    public static let customBinaryLocal: UInt16 = 19373

    /// shb_userappl: the application that wrote the section.
    public static let sectionUserApplication: UInt16 = 4

    /// if_name: the interface's name.
    public static let interfaceName: UInt16 = 2
    /// if_tsresol: one byte; 10^-n seconds, or 2^-n when the high bit is set. Default 6 (µs).
    public static let interfaceTimestampResolution: UInt16 = 9
    /// if_tsoffset: signed 64-bit seconds added to every timestamp of the interface.
    public static let interfaceTimestampOffset: UInt16 = 14

    /// epb_flags: u32; bits 0–1 the direction (01 inbound, 10 outbound).
    public static let packetFlags: UInt16 = 2
    /// Apple's OPT_PKT_DARWIN_PIB_ID: u32 index of a process-information block in the section.
    public static let packetDarwinProcessIndex: UInt16 = 0x8001

    /// The Darwin process-information block's process name.
    public static let processName: UInt16 = 2
}

/// Link-layer header types (LINKTYPE_*, shared by pcap and pcapng).
public enum LinkType {
    /// LINKTYPE_RAW: the packet starts with its IPv4 or IPv6 header — what NFLOG hands over.
    public static let raw: UInt16 = 101
}

/// The Private Enterprise Number in front of nfowner's custom options: 32473, which IANA
/// reserves for documentation and examples (RFC 5612). nfowner has no PEN of its own; a reader
/// that finds this one should still check the JSON's keys before trusting it.
public let nfownerPrivateEnterpriseNumber: UInt32 = 32473

/// The byte-order magic of a Section Header Block, as written in the section's byte order.
let byteOrderMagic: UInt32 = 0x1A2B_3C4D
