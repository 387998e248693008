import Accounting
import Foundation
@testable import History
import Testing

/// A real full disk and a real read-only file system: a small tmpfs mounted for the test.
/// Needs root (mount); the suites without root simulate a full disk with max_page_count.
@Suite(.enabled(if: getuid() == 0, "needs root: mounts a small tmpfs"), .serialized)
struct FileSystemLimitTests {
    final class SmallFileSystem {
        let directory = try! TemporaryDirectory()
        var path: String { directory.url.path }
        init(megabytes: Int) throws {
            try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0755", "nfowner-test", path])
        }
        func remount(_ options: String) throws { try Self.run("/bin/mount", ["-o", "remount,\(options)", path]) }
        deinit { try? Self.run("/bin/umount", ["-l", path]) }

        static func run(_ tool: String, _ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = arguments
            try process.run()
            process.waitUntilExit()
            struct Failed: Error { var command: String }
            if process.terminationStatus != 0 { throw Failed(command: ([tool] + arguments).joined(separator: " ")) }
        }
    }

    @Test func aFullFileSystemIsReportedAndTheWriterCatchesUpWhenThereIsRoom() throws {
        let fileSystem = try SmallFileSystem(megabytes: 1)
        let store = try HistoryStore(path: fileSystem.path + "/history.db")
        let writer = HistoryWriter(store: store, retryInterval: 0.2)
        var index: Int64 = 0
        var failure: HistoryError?
        while failure == nil && index < 200 {
            writer.submit([HistoryWriterTests.bucket(start: index * 60, rows: 500)])
            index += 1
            do { try writer.flush() } catch { failure = error }
        }
        #expect(failure?.code == .diskFull, "\(String(describing: failure))")
        #expect(writer.currentStatus.pendingBuckets >= 1)
        try fileSystem.remount("size=64m")
        #expect(HistoryWriterTests.wait { writer.currentStatus.pendingBuckets == 0 })
        #expect(writer.currentStatus.lastError == nil)
        let result = try store.query(since: 0, until: index * 60, by: [.unit])
        #expect(result.unaccountedPackets == UInt64(index), "every bucket, none lost")
        try store.integrityCheck()
        try writer.close()
    }

    @Test func aReadOnlyFileSystemIsNamed() throws {
        let fileSystem = try SmallFileSystem(megabytes: 8)
        let path = fileSystem.path + "/history.db"
        let store = try HistoryStore(path: path)
        try store.write(Sample.buckets)
        try store.close()
        try fileSystem.remount("ro")
        let error = #expect(throws: HistoryError.self) { try HistoryStore(path: path) }
        #expect(error?.code == .readOnly)
        #expect(error?.reason == "cannot write history to \(path): its directory is not writable (a read-only file "
                + "system, or permissions); give [storage] path a writable place (systemd: StateDirectory=nfowner)")
        // Reading still works.
        let reader = try HistoryStore(path: path, access: .readOnly)
        #expect(try reader.query(since: 0, until: 1000, by: [.unit]).unaccountedPackets == 7)
    }
}
