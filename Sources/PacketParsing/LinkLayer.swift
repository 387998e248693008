// Frames a packet socket sends are logged from the device's egress hook with their link-layer
// header in front of the IP packet. What that header is depends on the device:
//
//   Ethernet (ARPHRD_ETHER, and loopback, which fakes one)
//   | destination (6) | source (6) | [0x8100 or 0x88a8 | TCI (2)]… | EtherType (2) | payload
//   no header (ARPHRD_NONE: tun, WireGuard; ARPHRD_RAWIP)
//   | IP packet
//
// Only IPv4 (0x0800) and IPv6 (0x86DD) payloads are IP; everything else a packet socket may
// send (ARP, LLDP, a custom EtherType) is a frame without an IP packet, not a malformed one.
import BinaryParsing

/// How a device's frames start.
public enum LinkHeader: Sendable, Equatable {
    /// An Ethernet header, with up to `LinkLayer.maximumVLANTags` VLAN tags.
    case ethernet
    /// None: the frame is the IP packet.
    case none

    /// The header of devices of ARPHRD type `hardwareType`, nil for types nfowner does not
    /// decode (their frames are counted, not parsed).
    public init?(hardwareType: UInt16) {
        switch hardwareType {
        case 1, 772: self = .ethernet   // ARPHRD_ETHER, ARPHRD_LOOPBACK
        case 0xFFFE, 519: self = .none  // ARPHRD_NONE, ARPHRD_RAWIP
        default: return nil
        }
    }
}

/// What a frame carries, once its link-layer header is taken off.
public enum LinkPayload {
    /// An IP packet: its bytes, from the IP header on.
    case ip(UnsafeRawBufferPointer)
    /// Not IP (its EtherType), or cut short inside the link-layer header (nil).
    case other(etherType: UInt16?)
}

public enum LinkLayer {
    /// VLAN tags followed (802.1Q in 802.1ad is two); a frame with more is not decoded.
    public static let maximumVLANTags = 2
    public static let etherTypeIPv4: UInt16 = 0x0800
    public static let etherTypeIPv6: UInt16 = 0x86DD

    /// The payload of `frame` behind a `header`. Reads only inside `frame`.
    public static func payload(of frame: UnsafeRawBufferPointer, header: LinkHeader) -> LinkPayload {
        switch header {
        case .none:
            return .ip(frame)
        case .ethernet:
            var offset = 12
            for tags in 0...maximumVLANTags {
                guard let etherType = frame.bigEndianUInt16(at: offset) else { return .other(etherType: nil) }
                switch etherType {
                case 0x8100, 0x88A8:
                    // One tag more than followed: not decoded (the tag's type says why).
                    guard tags < maximumVLANTags else { return .other(etherType: etherType) }
                    offset += 4
                case etherTypeIPv4, etherTypeIPv6:
                    return .ip(frame.suffix(from: offset + 2) ?? UnsafeRawBufferPointer(start: nil, count: 0))
                default:
                    return .other(etherType: etherType)
                }
            }
            return .other(etherType: nil)
        }
    }
}
