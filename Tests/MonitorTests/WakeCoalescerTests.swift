import Testing
@testable import Monitor

@Suite struct WakeCoalescerTests {
    @Test func pausesForWhatIsLeftOfTheIntervalSinceTheLastWakeup() {
        var coalescer = WakeCoalescer(intervalMicroseconds: 1_000)
        #expect(coalescer.pause(now: 5_000_000) == 0)  // never woke: block in recv
        coalescer.woke(at: 5_000_000)
        coalescer.read()
        #expect(coalescer.pause(now: 5_000_000) == 1_000_000)
        #expect(coalescer.pause(now: 5_300_000) == 700_000)
        #expect(coalescer.pause(now: 5_999_999) == 1)
        #expect(coalescer.pause(now: 6_000_000) == 0)  // a quiet interval: block in recv
        #expect(coalescer.pause(now: 4_000_000) == 0)  // a clock that went backwards pauses nothing
    }

    @Test func zeroAndTinyIntervalsNeverPause() {
        for microseconds: UInt32 in [0, 1, 49] {
            var coalescer = WakeCoalescer(intervalMicroseconds: microseconds)
            coalescer.woke(at: 1_000)
            coalescer.read()
            #expect(!coalescer.isEnabled)
            #expect(coalescer.pause(now: 1_001) == 0)
        }
        #expect(WakeCoalescer(intervalMicroseconds: 50).isEnabled)
    }

    @Test func anOverrunHalvesTheIntervalUntilPausingStops() {
        var coalescer = WakeCoalescer(intervalMicroseconds: 400)
        coalescer.overran()
        #expect(coalescer.interval == 200_000)
        coalescer.overran()
        coalescer.overran()
        #expect(coalescer.interval == 50_000)
        coalescer.overran()
        #expect(!coalescer.isEnabled)
        coalescer.woke(at: 10)
        coalescer.read()
        #expect(coalescer.pause(now: 11) == 0)
    }

    @Test func aWakeupThatReadNothingBlocksInsteadOfPausingAgain() {
        var coalescer = WakeCoalescer(intervalMicroseconds: 2_000)
        coalescer.woke(at: 1_000_000)
        #expect(coalescer.pause(now: 1_100_000) == 0)  // woke (timeout, or a pause) and read nothing
        coalescer.read()
        #expect(coalescer.pause(now: 1_100_000) == 1_900_000)
        coalescer.woke(at: 3_000_000)  // that pause ended; nothing queued after it
        #expect(coalescer.pause(now: 3_000_100) == 0)
    }
}

extension WakeCoalescerTests {
    @Test func theIntervalIsCappedByWhatTheSocketBufferHolds() {
        #expect(WakeCoalescer(intervalMicroseconds: 2_000, receiveBufferBytes: 8 << 20).interval == 2_000_000)
        #expect(WakeCoalescer(intervalMicroseconds: 100_000, receiveBufferBytes: 8 << 20).interval == 8_192_000)
        #expect(WakeCoalescer(intervalMicroseconds: 2_000, receiveBufferBytes: 212_992).interval == 208_000)
        #expect(!WakeCoalescer(intervalMicroseconds: 2_000, receiveBufferBytes: 32 << 10).isEnabled)
    }
}
