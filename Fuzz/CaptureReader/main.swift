// libFuzzer target for CaptureFileReader (built by Fuzz/run-capture.sh, not by SwiftPM).
//
// Each input is read as a capture file to its end or its first error; every record's fields are
// touched so the option decoding and the text conversions run too. Crashes, traps and address
// sanitizer reports are the findings; so is an error whose count of earlier records is wrong.

import Capture

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    let (records, error) = CaptureFileReader.readAll(bytes)
    var total = 0
    for record in records {
        total &+= record.data.count &+ record.originalLength &+ Int(record.time.nanoseconds)
        total &+= record.comment?.utf8.count ?? 0
        total &+= record.ownerJSON?.utf8.count ?? 0
        total &+= record.process?.name?.utf8.count ?? 0
        if record.data.count > size { fatalError("a record of \(record.data.count) bytes from \(size)") }
        if record.time.nanoseconds >= 1_000_000_000 { fatalError("nanoseconds \(record.time.nanoseconds)") }
        _ = record.direction
    }
    if let error {
        if error.recordsBefore != records.count { fatalError("\(error) but \(records.count) records") }
        total &+= error.description.utf8.count
    }
    return total == -1 ? 1 : 0
}
