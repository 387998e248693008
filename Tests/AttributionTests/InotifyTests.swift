import Foundation
import NetfilterSystem
import Testing

@Suite struct InotifyParsingTests {
    static func event(watch: Int32, mask: UInt32, cookie: UInt32 = 0, name: String, padTo: Int? = nil) -> [UInt8] {
        var nameBytes = Array(name.utf8)
        if !nameBytes.isEmpty || padTo != nil { nameBytes.append(0) }
        while nameBytes.count < (padTo ?? 0) || nameBytes.count % 4 != 0 { nameBytes.append(0) }
        var bytes: [UInt8] = []
        for value in [UInt32(bitPattern: watch), mask, cookie, UInt32(nameBytes.count)] {
            withUnsafeBytes(of: value) { bytes += $0 }
        }
        return bytes + nameBytes
    }

    @Test func parsesABatch() {
        let create = InotifyMask.create.rawValue | InotifyMask.isDirectory.rawValue
        let bytes = Self.event(watch: 1, mask: create, name: "nginx.service", padTo: 32)
            + Self.event(watch: -1, mask: InotifyMask.queueOverflow.rawValue, name: "")
            + Self.event(watch: 2, mask: InotifyMask.ignored.rawValue, name: "")
        let parsed = bytes.withUnsafeBytes { Inotify.parseEvents($0) }
        #expect(parsed.complete)
        #expect(parsed.events == [
            InotifyEvent(watch: 1, mask: create, name: "nginx.service"),
            InotifyEvent(watch: -1, mask: InotifyMask.queueOverflow.rawValue, name: ""),
            InotifyEvent(watch: 2, mask: InotifyMask.ignored.rawValue, name: ""),
        ])
        #expect(parsed.events[1].isQueueOverflow)
        #expect(parsed.events[0].events.contains(.isDirectory))
    }

    /// Every truncation stops cleanly with the events that fit, never reads past the end.
    @Test func everyPrefixIsSafe() {
        let bytes = Self.event(watch: 1, mask: 0x100, name: "a") + Self.event(watch: 2, mask: 0x200, name: "bcdefgh")
        for length in 0...bytes.count {
            let parsed = Array(bytes[0..<length]).withUnsafeBytes { Inotify.parseEvents($0) }
            // The events are 20 and 24 bytes long.
            #expect(parsed.events.count == (length == bytes.count ? 2 : (length >= 20 ? 1 : 0)))
            #expect(parsed.complete == (length == 0 || length == 20 || length == bytes.count))
        }
        // A length that points far past the buffer.
        var huge = Self.event(watch: 1, mask: 0x100, name: "")
        huge[12] = 0xFF; huge[13] = 0xFF; huge[14] = 0xFF; huge[15] = 0xFF
        let parsed = huge.withUnsafeBytes { Inotify.parseEvents($0) }
        #expect(parsed.events.isEmpty && !parsed.complete)
    }

    @Test func readsRealEvents() throws {
        let directory = NSTemporaryDirectory() + "nfo-inotify-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let inotify = try Inotify()
        defer { inotify.close() }
        #expect(try inotify.readEvents().isEmpty)
        let watch = try inotify.addWatch(path: directory, events: [.create, .delete, .onlyDirectory])
        try FileManager.default.createDirectory(atPath: directory + "/child", withIntermediateDirectories: false)
        try FileManager.default.removeItem(atPath: directory + "/child")
        let events = try inotify.readEvents()
        #expect(events.map(\.name) == ["child", "child"])
        #expect(events.allSatisfy { $0.watch == watch && $0.events.contains(.isDirectory) })
        #expect(events.first?.events.contains(.create) == true)
        #expect(events.last?.events.contains(.delete) == true)
        try inotify.removeWatch(watch)
        try inotify.removeWatch(watch)  // already gone: not an error
        let error = try #require(throws: SystemError.self) {
            try inotify.addWatch(path: directory + "/missing", events: [.create])
        }
        #expect(error.code == Errno.notFound)
    }
}
