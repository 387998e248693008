import Accounting
import Configuration
@testable import Daemon
import Rules
import Testing

@Suite struct DaemonTests {
    @Test(arguments: [(60, 10), (1, 1), (2, 2), (7, 7), (45, 9), (3600, 10), (13, 1), (86400, 10)])
    func theReadPeriodDividesTheBucket(bucket: Int, period: Int) {
        #expect(Daemon.readPeriod(bucketSeconds: bucket) == period)
        #expect(bucket % Daemon.readPeriod(bucketSeconds: bucket) == 0)
    }

    @Test func aCounterThatWentBackCountsFromZero() {
        #expect(Daemon.difference(OwnerCount(packets: 10, bytes: 1000), since: OwnerCount(packets: 4, bytes: 400))
                == AccountingCounts(bytes: 600, packets: 6))
        #expect(Daemon.difference(OwnerCount(packets: 3, bytes: 300), since: nil) == AccountingCounts(bytes: 300, packets: 3))
        #expect(Daemon.difference(OwnerCount(packets: 2, bytes: 200), since: OwnerCount(packets: 9, bytes: 900))
                == AccountingCounts(bytes: 200, packets: 2))
    }

    @Test func sighupNamesWhatWaitsForARestart() {
        var changed = NfownerConfig()
        changed.accounting.maxRemotes = 5
        changed.storage.retentionDays = 2
        #expect(Daemon.restartOnlyChanges(from: NfownerConfig(), to: changed).isEmpty, "applied while running")
        changed.nflog.groups = [9]
        changed.metrics.listen = ""
        changed.accounting.mode = .kernel
        #expect(Daemon.restartOnlyChanges(from: NfownerConfig(), to: changed) == ["[nflog]", "accounting.mode", "metrics.listen"])
    }

    @Test func limitsComeFromTheConfig() {
        var config = NfownerConfig()
        config.accounting.bucketSeconds = 10
        config.accounting.maxRemotes = 3
        config.metrics.remoteLabels = true
        let limits = Daemon.limits(config)
        #expect(limits.bucketSeconds == 10 && limits.maxRemotes == 3 && limits.remoteLabels)
    }
}
