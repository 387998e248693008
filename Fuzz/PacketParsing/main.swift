// libFuzzer target for PacketParser (built by Fuzz/run.sh, not by SwiftPM).
//
// Each input is parsed as a packet of either family and with the version nibble choosing; any
// result is printed into a buffer so the formatting code runs too. Crashes, traps and address
// sanitizer reports are the findings.

import BinaryParsing
import PacketParsing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    var text: [UInt8] = []
    text.reserveCapacity(128)
    for family in [IPFamily?.none, .ipv4, .ipv6] {
        let summary: PacketSummary
        do throws(PacketParseError) {
            if let family {
                summary = try PacketParser.parse(bytes, family: family)
            } else {
                summary = try PacketParser.parse(bytes)
            }
        } catch {
            _ = error.reason
            continue
        }
        summary.source.appendText(to: &text)
        summary.destination.appendText(to: &text)
        _ = summary.source.description
        _ = summary.tcpFlags?.letters
        _ = IPProtocolNames.name(for: summary.protocolNumber)
        if let port = summary.sourcePort, bytes.count < 22 { fatalError("port from \(bytes.count) bytes: \(port)") }
    }
    return 0
}
