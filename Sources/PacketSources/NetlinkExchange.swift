import NetfilterSystem
import NetlinkWire

/// A configuration request and its answer, for NFLOG and NFQUEUE alike.
enum NetlinkExchange {
    /// Sends `request` and waits for the kernel's NLMSG_ERROR answer with our sequence number.
    /// Returns the errno (0 = acknowledged). Packets that arrive meanwhile are dropped: this runs
    /// before the rules that feed them are installed.
    static func send(_ request: [UInt8], on socket: NetlinkSocket, sequence: UInt32,
                     what: String) throws(SourceError) -> Int32 {
        do {
            try socket.send(request)
        } catch {
            throw SourceError.configure(what: what, error)
        }
        var answer: Int32?
        let buffer = UnsafeMutableRawBufferPointer.allocateForKernelCopies(byteCount: 1 << 16)
        defer { buffer.deallocate() }
        var attempts = 0
        while answer == nil {
            attempts += 1
            let ready: [Int32]
            do {
                ready = try waitReadable([socket.descriptor], timeoutMilliseconds: 2000)
            } catch {
                throw SourceError.configure(what: what, error)
            }
            guard !ready.isEmpty, attempts < 1000 else {
                throw SourceError.noAnswer(what: what)
            }
            let received: NetlinkSocket.Received
            do {
                received = try socket.receive(into: buffer, nonBlocking: true)
            } catch {
                throw SourceError.configure(what: what, error)
            }
            guard case .bytes(let count) = received else { continue }
            NflogBatchDecoder.forEachItem(in: UnsafeRawBufferPointer(rebasing: buffer[0..<count])) { item in
                if case .error(let errno, let replySequence) = item, replySequence == sequence {
                    answer = errno
                }
            }
        }
        return answer ?? 0
    }

}
