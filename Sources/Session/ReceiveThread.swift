import NetfilterSystem
import PacketSources

extension ReceiveLoop {
    /// Runs the loop on a thread of its own named `name`, at the receive thread's niceness, and
    /// calls `onReady` on the calling thread meanwhile (a run announces itself there; a trace
    /// starts its command). An error from `onReady` stops the loop and becomes the ending.
    /// Returns once the loop has ended.
    func runOnReceiveThread(name: String, onReady: () throws -> Void) -> ReceiveLoop.Ending {
        nonisolated(unsafe) var ending = ReceiveLoop.Ending.stopRequested
        do {
            let receiver = try DedicatedThread(name: name) {
                // A flow's first packet is resolved while its sender still runs only if this
                // thread gets a CPU at once; on a busy host at niceness 0 the sender often exits
                // (and the shell starts the next program) first. Best effort: not root, no change.
                try? DedicatedThread.setCurrentNiceness(Session.receiveThreadNiceness)
                ending = self.run()
            }
            do {
                try onReady()
            } catch {
                requestStop()
                receiver.join()
                return .failed("\(error)")
            }
            receiver.join()
        } catch {
            return .failed("cannot start the receive thread: \(error)")
        }
        return ending
    }
}
