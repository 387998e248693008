import NetfilterSystem
import NetlinkWire

/// How the kernel should deliver NFLOG messages to us. Units on every field.
public struct NflogSettings: Sendable, Equatable {
    /// NFLOG groups to bind (0…65535), each must be free.
    public var groups: [UInt16] = [5]
    /// Bytes of each packet to copy (the snaplen; the rule's own snaplen applies first).
    public var copyRange: UInt32 = 128
    /// Messages the kernel batches before sending (a rule's queue-threshold can only lower it).
    public var queueThreshold: UInt32 = 64
    /// Longest a partial batch waits before it is sent, in 1/100 s.
    public var flushTimeout: UInt32 = 10
    /// Size of the kernel's batch buffer per group, in bytes (NFULA_CFG_NLBUFSIZ, max 131072).
    public var netlinkBufferSize: UInt32 = 131_072
    /// Socket receive buffer in bytes (SO_RCVBUFFORCE): room for bursts while we are busy.
    public var socketReceiveBuffer: Int = 8 << 20
    /// Under load, the receive thread wakes at most once per this many microseconds and reads
    /// every batch queued meanwhile (0: wake for each batch). See `WakeCoalescer`.
    public var coalesceMicroseconds: UInt32 = 2_000
    /// The group each flow's first packet is logged to (the ruleset's `newFlowGroup`), or nil.
    /// Bound on a socket of its own with queue threshold 1, read before the others and watched
    /// during a coalescing pause, so a new flow's owner is looked up at once while the bulk
    /// stays batched. Must not be one of `groups`.
    public var newFlowGroup: UInt16?

    public init() {}
}

/// An NFLOG socket bound to our groups and configured, and one for the new-flow group when
/// there is one; unbinds on `close()`.
public final class NflogSubscription: @unchecked Sendable {
    public let socket: NetlinkSocket
    /// Bound to `settings.newFlowGroup` alone.
    public let newFlowSocket: NetlinkSocket?
    public let settings: NflogSettings
    private var nextSequence: UInt32 = 1
    private var unbound = false

    /// Opens the socket and binds and configures every group, waiting for the kernel's answer
    /// to each so that a failure names its cause (group taken, not root, no nfnetlink_log).
    public init(settings: NflogSettings) throws(SourceError) {
        self.settings = settings
        if let group = settings.newFlowGroup, settings.groups.contains(group) {
            throw SourceError.invalidSettings("NFLOG group \(group) cannot carry new flows: it is also read for the "
                                              + "rest of the traffic; choose another new-flow group")
        }
        let socket = try Self.openSocket(receiveBuffer: settings.socketReceiveBuffer)
        self.socket = socket
        do {
            newFlowSocket = settings.newFlowGroup == nil ? nil
                : try Self.openSocket(receiveBuffer: settings.socketReceiveBuffer)
        } catch {
            socket.close()
            throw error
        }
        do {
            for group in settings.groups {
                try bind(group: group, on: socket, queueThreshold: settings.queueThreshold)
            }
            if let group = settings.newFlowGroup, let newFlowSocket {
                try bind(group: group, on: newFlowSocket, queueThreshold: 1)
            }
        } catch {
            close()
            throw error
        }
    }

    private static func openSocket(receiveBuffer: Int) throws(SourceError) -> NetlinkSocket {
        let socket: NetlinkSocket
        do {
            socket = try NetlinkSocket(protocol: NetlinkSocket.netfilterProtocol)
        } catch {
            throw SourceError.openSocket(error)
        }
        do {
            try socket.setReceiveBufferSize(receiveBuffer, force: true)
        } catch where error.code == Errno.permissionDenied {
            // Without CAP_NET_ADMIN, fall back to the capped size; binding will explain the rest.
            _ = try? socket.setReceiveBufferSize(receiveBuffer, force: false)
        } catch {
            socket.close()
            throw SourceError.openSocket(error)
        }
        return socket
    }

    private func bind(group: UInt16, on socket: NetlinkSocket, queueThreshold: UInt32) throws(SourceError) {
        // One message: the kernel applies the bind and then the settings to the new instance,
        // so no packet is delivered with default (full-size) copy settings.
        let sequence = takeSequence()
        let request = NflogConfigRequest.encode(group: group, sequence: sequence, [
            .command(.bind),
            .copyMode(.packet, range: settings.copyRange),
            .bufferSize(settings.netlinkBufferSize),
            .flushTimeout(settings.flushTimeout),
            .queueThreshold(queueThreshold),
            .flags(.sequence),
        ])
        let code = try NetlinkExchange.send(request, on: socket, sequence: sequence, what: "bind NFLOG group \(group)")
        guard code != 0 else { return }
        throw SourceError.bind(group: group, errno: code, holders: [])
    }

    private func takeSequence() -> UInt32 {
        defer { nextSequence &+= 1 }
        return nextSequence
    }

    /// Unbinds every group (best effort; once). The kernel then flushes each group's pending
    /// batch to the socket — before `send` returns — and sends nothing more.
    public func unbind() {
        guard !unbound else { return }
        unbound = true
        for group in settings.groups {
            _ = try? socket.send(NflogConfigRequest.encode(group: group, sequence: takeSequence(), .command(.unbind)))
        }
        if let newFlowSocket, let group = settings.newFlowGroup {
            _ = try? newFlowSocket.send(NflogConfigRequest.encode(group: group, sequence: takeSequence(), .command(.unbind)))
        }
    }

    /// Unbinds (unless done already) and closes the sockets.
    public func close() {
        unbind()
        socket.close()
        newFlowSocket?.close()
    }
}
