import Foundation
import TestSupport
import Testing
@testable import nfowner_traffic

/// The traffic generator's own logic, without timing: the pacer's decisions for given clock readings and the
/// destination sequence of `udp --flows`.
@Suite struct PacerTests {
    let start: UInt64 = 1_000_000_000

    @Test func theFirstEventIsDueAtTheStart() {
        var pacer = Pacer(rate: 1000, start: start)
        #expect(pacer.step(next: 0, now: start) == .send(1))
    }

    @Test func aFarEventIsSleptForUntilShortlyBeforeItAndANearOneIsSpunFor() {
        var pacer = Pacer(rate: 1000, start: start)  // 1 ms apart
        #expect(pacer.step(next: 1, now: start) == .sleep(until: start + 1_000_000 - Pacer.wakeMargin))
        #expect(pacer.step(next: 1, now: start + 1_000_000 - Pacer.spinThreshold)
                == .spin(until: start + 1_000_000))
        #expect(pacer.step(next: 1, now: start + 1_000_000) == .send(1))
        #expect(pacer.slipped == 0)
    }

    @Test func everyEventAlreadyDueIsSentInOneBurst() {
        var pacer = Pacer(rate: 1000, start: start)
        // Events 1…5 are due at 1…5 ms; at 5.5 ms all five are late.
        #expect(pacer.step(next: 1, now: start + 5_500_000) == .send(5))
        // Exactly at a due time counts as due; a nanosecond before does not.
        #expect(pacer.step(next: 1, now: start + 5_000_000) == .send(5))
        #expect(pacer.step(next: 1, now: start + 4_999_999) == .send(4))
    }

    @Test func aFractionalIntervalAgreesWithTheDueTimes() {
        var pacer = Pacer(rate: 300, start: start)  // 3,333,333.3 ns apart
        #expect(pacer.due(300) == start + 1_000_000_000)
        #expect(pacer.step(next: 0, now: pacer.due(2)) == .send(3))
        #expect(pacer.step(next: 0, now: pacer.due(2) - 1) == .send(2))
    }

    @Test func aLongStallCatchesUpAtMostTheWindowAndSlipsTheRest() {
        var pacer = Pacer(rate: 200_000, start: start)  // 5 µs apart
        let window = Int(Pacer.catchUpWindow / 5_000)
        #expect(pacer.maximumBurst == window + 1)
        // A one-second stall: only the last 50 ms are caught up.
        let now = start + 1_000_000_000
        #expect(pacer.step(next: 0, now: now) == .send(window + 1))
        #expect(pacer.slipped == 1_000_000_000 - Pacer.catchUpWindow)
        #expect(pacer.due(0) == now - Pacer.catchUpWindow)
        // After the burst the next event is one interval after the window's end.
        #expect(pacer.step(next: window + 1, now: now) == .spin(until: now + 5_000))
    }

    @Test func belowTwentyPerSecondALateEventIsSentAloneAndTheRestSlips() {
        var pacer = Pacer(rate: 3, start: start)  // the 50 ms window is shorter than one interval
        #expect(pacer.maximumBurst == 1)
        #expect(pacer.step(next: 0, now: start + 1_000_000_000) == .send(1))
        #expect(pacer.slipped == 1_000_000_000 - Pacer.catchUpWindow)
    }

    @Test func aStallWithinTheWindowIsCaughtUpWithoutSlipping() {
        var pacer = Pacer(rate: 200_000, start: start)
        #expect(pacer.step(next: 0, now: start + 10_000_000) == .send(2001))
        #expect(pacer.slipped == 0)
    }

    @Test func eventsDueBeforeTheEndOfARun() {
        let pacer = Pacer(rate: 200_000, start: start)
        #expect(pacer.dueBefore(start + 2_000_000_000) == 400_000)
        #expect(pacer.dueBefore(start + 1) == 1)
        #expect(pacer.dueBefore(start) == 0)
        #expect(Pacer(rate: 1, start: start).dueBefore(start + 2_000_000_000) == 2)
        #expect(Pacer(rate: 3, start: start).dueBefore(start + 1_000_000_001) == 4)
    }

    /// A simulated sender: each datagram costs `sendCost` ns, a sleep wakes `wakeLatency` ns late. Over one
    /// simulated second it must send exactly `rate` datagrams without slipping, as long as it can keep up.
    @Test(arguments: [1.0, 10.0, 10_000, 50_000, 200_000, 400_000])
    func aSimulatedSecondSendsExactlyTheRate(rate: Double) {
        let sendCost: UInt64 = 1_800
        let wakeLatency: UInt64 = 60_000
        var pacer = Pacer(rate: rate, start: start)
        let end = start + 1_000_000_000
        var now = start
        var sent = 0
        var steps = 0
        while pacer.due(sent) < end && steps < 10_000_000 {
            steps += 1
            switch pacer.step(next: sent, now: now) {
            case .send(let count):
                let burst = min(count, pacer.dueBefore(end) - sent)
                sent += burst
                now += UInt64(burst) * sendCost
            case .sleep(let deadline):
                #expect(deadline > now)
                now = deadline + wakeLatency
            case .spin(let deadline):
                #expect(deadline > now && deadline - now <= Pacer.spinThreshold)
                now = deadline
            }
        }
        #expect(sent == Int(rate))
        #expect(pacer.slipped == 0)
    }

    @Test func aSenderSlowerThanTheRateSlipsInsteadOfBurstingForever() {
        var pacer = Pacer(rate: 1_000_000, start: start)  // 1 µs apart, but a send costs 2 µs
        var now = start
        var sent = 0
        var largest = 0
        while now < start + 1_000_000_000 {
            switch pacer.step(next: sent, now: now) {
            case .send(let count):
                largest = max(largest, count)
                sent += count
                now += UInt64(count) * 2_000
            case .sleep(let deadline), .spin(let deadline):
                now = deadline
            }
        }
        #expect(largest == pacer.maximumBurst)
        #expect(pacer.slipped > 0)
        // It sends back to back: one per 2 µs, the last burst (≤ 50 ms' worth) possibly past the second.
        #expect(sent >= 500_000 && sent <= 550_001)
    }
}

@Suite struct FlowSequenceTests {
    func sequence(_ to: String, _ count: Int) throws -> FlowSequence {
        try FlowSequence(count: count, destination: SocketAddress(to, port: 9))
    }

    func dotted(_ address: UInt32?) -> String {
        guard let address else { return "-" }
        return [24, 16, 8, 0].map { String((address >> UInt32($0)) & 0xFF) }.joined(separator: ".")
    }

    @Test func flowsCountUpFromTheDestinationAndRepeatModuloN() throws {
        let flows = try sequence("127.0.0.1", 3)
        #expect((0..<7).map { dotted(flows.address(ofFlow: $0)) }
                == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"])
    }

    @Test func theHostPartCarriesAcrossOctets() throws {
        let flows = try sequence("127.0.0.254", 4)
        #expect((0..<4).map { dotted(flows.address(ofFlow: $0)) }
                == ["127.0.0.254", "127.0.0.255", "127.0.1.0", "127.0.1.1"])
    }

    @Test func theSequenceWrapsInside127Slash8SkippingTheNetworkAndBroadcastAddresses() throws {
        let flows = try sequence("127.255.255.253", 4)
        #expect((0..<4).map { dotted(flows.address(ofFlow: $0)) }
                == ["127.255.255.253", "127.255.255.254", "127.0.0.1", "127.0.0.2"])
    }

    @Test func theLargestSequenceIsDistinctAndStaysOnLoopback() throws {
        let flows = try sequence("127.128.0.0", FlowSequence.maximumCount)
        let last = try #require(flows.address(ofFlow: FlowSequence.maximumCount - 1))
        #expect(last >> 24 == 127)
        #expect(last != flows.address(ofFlow: 0))
        #expect(flows.address(ofFlow: FlowSequence.maximumCount) == flows.address(ofFlow: 0))
        // Around the wrap every address is different and none is .0 or the broadcast address.
        let wrapStart = Int(FlowSequence.hostMask - 0x80_0000) - 3
        let around = (wrapStart..<(wrapStart + 8)).compactMap { flows.address(ofFlow: $0) }
        #expect(Set(around).count == 8)
        #expect(around.allSatisfy { $0 & 0xFF_FFFF != 0 && $0 & 0xFF_FFFF != 0xFF_FFFF })
    }

    @Test func oneFlowGoesToTheDestinationItselfInEitherFamily() throws {
        #expect(try sequence("::1", 1).address(ofFlow: 5) == nil)
        #expect(try sequence("192.0.2.1", 1).address(ofFlow: 0) == nil)
    }

    @Test(arguments: [
        ("127.0.0.1", 0), ("127.0.0.1", -1), ("127.0.0.1", FlowSequence.maximumCount + 1),
        ("::1", 2), ("192.0.2.1", 2), ("127.0.0.0", 2), ("127.255.255.255", 2), ("128.0.0.1", 2),
    ])
    func invalidFlowsAreRejected(to: String, count: Int) {
        let error = #expect(throws: TrafficError.self) {
            try FlowSequence(count: count, destination: SocketAddress(to, port: 9))
        }
        #expect(error?.code == .invalidFlows)
    }
}

extension EndToEnd {
    @Suite(.serialized, .enabled(if: Harness.isRoot, "needs root: creates a network namespace and nft rules"))
    struct TrafficGeneratorFlowsEndToEndTests {
        /// 3000 datagrams over 1000 flows reach 1000 distinct destination addresses, all delivered to one
        /// socket bound to 0.0.0.0 (no ICMP port unreachable: every 127.x.y.z is local).
        @Test func aThousandFlowsReachAThousandDestinations() throws {
            let namespace = try TestNamespace("flows")
            defer { namespace.close() }
            try namespace.nft(["-f", "-"], input: """
                table ip nfo_flows {
                    set seen { type ipv4_addr; size 65536; flags dynamic; }
                    chain out {
                        type filter hook output priority 0; policy accept;
                        udp dport 9611 counter add @seen { ip daddr }
                        icmp type destination-unreachable counter
                    }
                }
                """).check("nft -f")
            let sink = try BackgroundProcess(["nsenter", "--net=\(namespace.path)", Harness.traffic, "listen", "--udp",
                                              "--address", "0.0.0.0", "--port", "9611", "--timeout", "5"],
                                             waitForOutput: true)
            defer { sink.stop() }

            let result = try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9611", "--flows", "1000",
                                                "--count", "3000", "--rate", "50000"])
            #expect(result["sent"] == "3000")
            #expect(result["errors"] == "0")
            #expect(result["flows"] == "1000")
            #expect(result["local"]?.hasPrefix("127.0.0.1:") == true)

            let set = try namespace.nft(["-j", "list", "set", "ip", "nfo_flows", "seen"]).check("nft list set")
            let json = try JSONSerialization.jsonObject(with: Data(set.stdout.utf8)) as? [String: Any]
            let objects = json?["nftables"] as? [[String: Any]] ?? []
            let elements = objects.compactMap { $0["set"] as? [String: Any] }.first?["elem"] as? [Any] ?? []
            let addresses = Set(elements.compactMap { $0 as? String })
            #expect(addresses.count == 1000)
            #expect(addresses.contains("127.0.0.1") && addresses.contains("127.0.3.232"))

            let chain = try namespace.nft(["list", "chain", "ip", "nfo_flows", "out"]).check("nft list chain").stdout
            #expect(chain.contains("udp dport 9611 counter packets 3000 "))
            #expect(chain.contains("icmp type destination-unreachable counter packets 0 "))
        }
    }
}
