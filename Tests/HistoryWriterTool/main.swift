// Test tool for the kill -9 test (HistoryEndToEndTests): writes one bucket after another to the
// history given as the first argument, through a HistoryWriter, flushing each, and prints
// "written N" after bucket N is committed. It runs until killed.
import Accounting
import Foundation
import History

guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write("usage: nfowner-history-writer DATABASE\n".data(using: .utf8)!)
    exit(2)
}
let rowsPerBucket = 200

/// Bucket `index`: 200 rows, each 1000 + index bytes, 1 packet; start = index * 60.
func bucket(_ index: Int) -> TrafficBucket {
    var rows: [AccountingKey: AccountingCounts] = [:]
    for row in 0..<rowsPerBucket {
        let key = AccountingKey(unit: "unit\(row % 7).service", cgroup: "/system.slice/unit\(row % 7).service",
                                user: "user\(row % 3)", program: "/usr/bin/prog\(row % 5)",
                                direction: row % 2 == 0 ? .out : .in, proto: "tcp",
                                remoteAddress: "10.0.\(row / 250).\(row % 250)", remotePort: UInt16(1000 + row))
        rows[key] = AccountingCounts(bytes: UInt64(1000 + index), packets: 1, flows: 1)
    }
    return TrafficBucket(start: Int64(index) * 60, seconds: 60, rows: rows, unaccountedPackets: 1)
}

do {
    let store = try HistoryStore(path: CommandLine.arguments[1])
    let writer = HistoryWriter(store: store)
    var index = 0
    while true {
        writer.submit([bucket(index)])
        try writer.flush()
        FileHandle.standardOutput.write("written \(index)\n".data(using: .utf8)!)
        index += 1
    }
} catch {
    FileHandle.standardError.write("nfowner-history-writer: \(error)\n".data(using: .utf8)!)
    exit(1)
}
