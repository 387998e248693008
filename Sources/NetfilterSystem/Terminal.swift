import CNetfilter
import Glibc

/// The terminal a full-screen view draws on: whether a descriptor is one, its size, and a mode
/// without line buffering or echo (keys arrive one by one; Ctrl-C still signals), restored by
/// `restore()` — which is safe to call more than once.
public final class TerminalMode: @unchecked Sendable {
    public let descriptor: Int32
    private var saved = termios()
    private var active = false

    /// Whether `descriptor` is a terminal.
    public static func isTerminal(_ descriptor: Int32) -> Bool { isatty(descriptor) == 1 }

    /// Rows and columns of the terminal on `descriptor`, nil when it is not one.
    public static func size(of descriptor: Int32) -> (rows: Int, columns: Int)? {
        var size = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 else { return nil }
        return (Int(size.ws_row), Int(size.ws_col))
    }

    /// Turns off canonical mode and echo on `descriptor` (a read returns at once, with what
    /// was typed, possibly nothing).
    public init(keysFrom descriptor: Int32) throws(SystemError) {
        self.descriptor = descriptor
        guard tcgetattr(descriptor, &saved) == 0 else {
            throw SystemError(code: Errno.current, operation: "read the terminal's mode")
        }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        withUnsafeMutableBytes(of: &raw.c_cc) { bytes in
            bytes[Int(VMIN)] = 0
            bytes[Int(VTIME)] = 0
        }
        guard tcsetattr(descriptor, TCSAFLUSH, &raw) == 0 else {
            throw SystemError(code: Errno.current, operation: "set the terminal's mode")
        }
        active = true
    }

    /// Puts the terminal back as it was.
    public func restore() {
        guard active else { return }
        active = false
        tcsetattr(descriptor, TCSAFLUSH, &saved)
    }

    deinit { restore() }

    /// The bytes typed so far (at most 64), without waiting; nil when the terminal is gone
    /// (end of file, or an error other than "nothing yet").
    public func readKeys() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, 64) }
        if count > 0 { return Array(buffer.prefix(count)) }
        if count < 0, Errno.current == EAGAIN || Errno.current == EINTR { return [] }
        return nil
    }
}
