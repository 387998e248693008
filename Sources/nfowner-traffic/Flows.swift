// `udp --flows N`: the destination addresses of N distinct flows. Loopback routes all of 127.0.0.0/8 to lo,
// so counting the host part up from the --to address gives up to 16,777,214 distinct 5-tuples that all
// stay on this host (a socket bound to 0.0.0.0:PORT receives every one of them).

/// The destinations of `udp --flows N`: flow k goes to the --to address plus k, counted in the host part of
/// 127.0.0.0/8 and wrapping inside it. The host parts 0 (127.0.0.0) and all-ones (127.255.255.255, the
/// loopback broadcast address, which needs SO_BROADCAST) are skipped, so after 127.255.255.254 comes 127.0.0.1.
struct FlowSequence: Equatable {
    /// Most flows accepted: well below the 16,777,214 usable host parts, so every flow is distinct.
    static let maximumCount = 16_000_000

    /// 127.0.0.0/8: the network part, host order.
    static let loopbackNetwork: UInt32 = 0x7F00_0000
    static let hostMask: UInt32 = 0x00FF_FFFF
    /// Usable host parts: 1 … 0xFF_FFFE.
    static let usableHosts: UInt32 = hostMask - 1

    /// How many flows (destinations).
    let count: Int
    /// The first destination, IPv4 host order; nil for a single flow to any address (IPv6 included).
    private let first: UInt32?

    /// Throws `.invalidFlows` with a reason for the user when `count` is outside 1…16,000,000, or when
    /// `count` > 1 and `destination` is not a unicast IPv4 loopback address (127.0.0.1 … 127.255.255.254).
    init(count: Int, destination: SocketAddress) throws(TrafficError) {
        guard (1...Self.maximumCount).contains(count) else {
            throw TrafficError(.invalidFlows, "--flows must be 1…\(Self.maximumCount), not \(count)")
        }
        self.count = count
        guard count > 1 else {
            first = nil
            return
        }
        guard let address = destination.ipv4 else {
            throw TrafficError(.invalidFlows, "--flows above 1 needs an IPv4 loopback --to (127.x.y.z): "
                + "IPv6 has a single loopback address (::1), so it cannot give distinct flows")
        }
        let host = address & Self.hostMask
        guard address & ~Self.hostMask == Self.loopbackNetwork, host != 0, host != Self.hostMask else {
            throw TrafficError(.invalidFlows, "--flows above 1 needs --to in 127.0.0.1…127.255.255.254 "
                + "(flows only ever go to loopback), not \(destination.host)")
        }
        first = address
    }

    /// Destination of flow `flow` (taken modulo `count`): IPv4 host order, or nil for the single flow of a
    /// sequence that was not counted (count 1), whose destination is --to itself.
    func address(ofFlow flow: Int) -> UInt32? {
        guard let first else { return nil }
        let offset = UInt32(flow.magnitude % UInt(count))
        let host = ((first & Self.hostMask) - 1 + offset) % Self.usableHosts + 1
        return Self.loopbackNetwork | host
    }
}
