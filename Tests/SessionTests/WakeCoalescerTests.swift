import Testing
@testable import PacketSources

@Suite struct WakeCoalescerTests {
    /// Two wakeups 0.5 ms apart that read something: the loop is under load.
    private func loaded(intervalMicroseconds: UInt32 = 1_000) -> WakeCoalescer {
        var coalescer = WakeCoalescer(intervalMicroseconds: intervalMicroseconds)
        coalescer.woke(at: 4_500_000, endingPause: false)
        coalescer.recordRead()
        coalescer.woke(at: 5_000_000, endingPause: false)
        coalescer.recordRead()
        return coalescer
    }

    @Test func underLoadPausesForWhatIsLeftOfTheIntervalSinceTheLastWakeup() {
        let coalescer = loaded()
        #expect(coalescer.remainingPause(at: 5_000_000) == 1_000_000)
        #expect(coalescer.remainingPause(at: 5_300_000) == 700_000)
        #expect(coalescer.remainingPause(at: 5_999_999) == 1)
        #expect(coalescer.remainingPause(at: 6_000_000) == 0)  // a whole interval went by: block in recv
        #expect(coalescer.remainingPause(at: 4_000_000) == 0)  // a clock that went backwards pauses nothing
    }

    @Test func aPauseThatFoundBatchesIsFollowedByAnother() {
        var coalescer = loaded()
        coalescer.woke(at: 6_000_000, endingPause: true)
        coalescer.recordRead()
        #expect(coalescer.remainingPause(at: 6_200_000) == 800_000)
    }

    @Test func batchesFurtherApartThanTheIntervalAreReadAsTheyCome() {
        var coalescer = WakeCoalescer(intervalMicroseconds: 1_000)
        #expect(coalescer.remainingPause(at: 5_000_000) == 0)  // never woke
        coalescer.woke(at: 5_000_000, endingPause: false)
        coalescer.recordRead()
        #expect(coalescer.remainingPause(at: 5_100_000) == 0)  // the first batch in a while
        coalescer.woke(at: 7_000_000, endingPause: false)    // the next one 2 ms later
        coalescer.recordRead()
        #expect(coalescer.remainingPause(at: 7_100_000) == 0)
    }

    @Test func aWakeupThatReadNothingBlocksInsteadOfPausingAgain() {
        var coalescer = loaded(intervalMicroseconds: 2_000)
        coalescer.woke(at: 7_000_000, endingPause: true)  // that pause ended; nothing queued after it
        #expect(coalescer.remainingPause(at: 7_000_100) == 0)
        coalescer.woke(at: 7_500_000, endingPause: false)  // a receive timeout: nothing read either
        #expect(coalescer.remainingPause(at: 7_500_100) == 0)
    }

    @Test func zeroAndTinyIntervalsNeverPause() {
        for microseconds: UInt32 in [0, 1, 49] {
            var coalescer = WakeCoalescer(intervalMicroseconds: microseconds)
            coalescer.woke(at: 1_000, endingPause: false)
            coalescer.recordRead()
            coalescer.woke(at: 1_010, endingPause: false)
            coalescer.recordRead()
            #expect(!coalescer.isEnabled)
            #expect(coalescer.remainingPause(at: 1_011) == 0)
        }
        #expect(WakeCoalescer(intervalMicroseconds: 50).isEnabled)
    }

    @Test func theIntervalIsCappedByWhatTheSocketBufferHolds() {
        #expect(WakeCoalescer(intervalMicroseconds: 2_000, receiveBufferBytes: 8 << 20).interval == 2_000_000)
        #expect(WakeCoalescer(intervalMicroseconds: 100_000, receiveBufferBytes: 8 << 20).interval == 8_192_000)
        #expect(WakeCoalescer(intervalMicroseconds: 2_000, receiveBufferBytes: 212_992).interval == 208_000)
        #expect(!WakeCoalescer(intervalMicroseconds: 2_000, receiveBufferBytes: 32 << 10).isEnabled)
    }
}
