import Accounting
import CoreMetrics
import Prometheus
import Sinks
import Synchronization

/// Turns the accounting totals into Prometheus series: swift-metrics counters made by
/// swift-prometheus's factory over a registry of this exporter's own (no global bootstrap, so
/// several can live in one process), brought up to date at each scrape and rendered in the
/// text exposition format.
///
/// Series: `nfowner_bytes_total` and `nfowner_packets_total` {unit, user, program, direction,
/// proto[, remote]}, `nfowner_flows_total` {same}, `nfowner_lost_packets_total`,
/// `nfowner_parse_errors_total`, `nfowner_flows_active`. Labels never carry a pid.
public final class PrometheusExporter: Sendable {
    /// What the session counted besides the accounting totals.
    public struct SessionFigures: Sendable, Equatable {
        public var lostPackets: UInt64
        public var parseErrors: UInt64
        /// Enforce mode's decisions; nil when nothing is enforced (then no enforce series).
        public var enforce: EnforceFigures?
        public init(lostPackets: UInt64, parseErrors: UInt64, enforce: EnforceFigures? = nil) {
            self.lostPackets = lostPackets
            self.parseErrors = parseErrors
            self.enforce = enforce
        }
    }

    /// What enforce mode decided so far: new flows by action (decided by nfowner, not by the
    /// kernel's fast path), those decided without knowing the process, audit events written.
    public struct EnforceFigures: Sendable, Equatable {
        public var allow: UInt64
        public var deny: UInt64
        public var reject: UInt64
        public var unknownProcess: UInt64
        public var auditEvents: UInt64
        public init(allow: UInt64, deny: UInt64, reject: UInt64, unknownProcess: UInt64, auditEvents: UInt64) {
            self.allow = allow
            self.deny = deny
            self.reject = reject
            self.unknownProcess = unknownProcess
            self.auditEvents = auditEvents
        }
    }

    /// Enforce mode's series, made at the first scrape that has enforce figures.
    private struct EnforceSeries {
        var allow: CoreMetrics.Counter
        var deny: CoreMetrics.Counter
        var reject: CoreMetrics.Counter
        var unknownProcess: CoreMetrics.Counter
        var auditEvents: CoreMetrics.Counter
        var reported = EnforceFigures(allow: 0, deny: 0, reject: 0, unknownProcess: 0, auditEvents: 0)
    }

    private struct Series {
        var bytes: CoreMetrics.Counter
        var packets: CoreMetrics.Counter
        var flows: CoreMetrics.Counter
        var reported = AccountingCounts()
    }

    private struct State {
        var series: [Series] = []
        var lostReported: UInt64 = 0
        var parseErrorsReported: UInt64 = 0
        var enforce: EnforceSeries?
    }

    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let lost: CoreMetrics.Counter
    private let parseErrors: CoreMetrics.Counter
    private let activeFlows: CoreMetrics.Gauge
    private let state = Mutex(State())

    public init() {
        factory = PrometheusMetricsFactory(registry: registry)
        lost = CoreMetrics.Counter(label: "nfowner_lost_packets_total", factory: factory)
        parseErrors = CoreMetrics.Counter(label: "nfowner_parse_errors_total", factory: factory)
        activeFlows = CoreMetrics.Gauge(label: "nfowner_flows_active", factory: factory)
    }

    /// Brings every series up to `snapshot` and `figures`, then renders the registry.
    public func render(snapshot: AccountingSnapshot, figures: SessionFigures) -> [UInt8] {
        state.withLock { state in
            for index in state.series.count..<snapshot.series.count {
                let key = snapshot.series[index]
                var labels = [("unit", key.unit), ("user", key.user), ("program", key.program),
                              ("direction", key.direction.rawValue), ("proto", key.proto)]
                if !key.remote.isEmpty { labels.append(("remote", key.remote)) }
                if !key.cgroup.isEmpty { labels.append(("cgroup", key.cgroup)) }
                state.series.append(Series(
                    bytes: CoreMetrics.Counter(label: "nfowner_bytes_total", dimensions: labels, factory: factory),
                    packets: CoreMetrics.Counter(label: "nfowner_packets_total", dimensions: labels, factory: factory),
                    flows: CoreMetrics.Counter(label: "nfowner_flows_total", dimensions: labels, factory: factory)))
            }
            for index in 0..<min(state.series.count, snapshot.counts.count) {
                let now = snapshot.counts[index]
                let before = state.series[index].reported
                if now.bytes > before.bytes { state.series[index].bytes.increment(by: Int(now.bytes - before.bytes)) }
                if now.packets > before.packets {
                    state.series[index].packets.increment(by: Int(now.packets - before.packets))
                }
                if now.flows > before.flows { state.series[index].flows.increment(by: Int(now.flows - before.flows)) }
                state.series[index].reported = now
            }
            if figures.lostPackets > state.lostReported {
                lost.increment(by: Int(figures.lostPackets - state.lostReported))
                state.lostReported = figures.lostPackets
            }
            if figures.parseErrors > state.parseErrorsReported {
                parseErrors.increment(by: Int(figures.parseErrors - state.parseErrorsReported))
                state.parseErrorsReported = figures.parseErrors
            }
            activeFlows.record(Int64(snapshot.activeFlows))
            if let figures = figures.enforce { update(&state.enforce, to: figures) }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    /// `nfowner_enforce_decisions_total{action}`, `nfowner_enforce_unknown_process_total` and
    /// `nfowner_enforce_audit_events_total`, brought up to `figures`.
    private func update(_ series: inout EnforceSeries?, to figures: EnforceFigures) {
        if series == nil {
            func decisions(_ action: String) -> CoreMetrics.Counter {
                CoreMetrics.Counter(label: "nfowner_enforce_decisions_total", dimensions: [("action", action)], factory: factory)
            }
            series = EnforceSeries(
                allow: decisions("allow"), deny: decisions("deny"), reject: decisions("reject"),
                unknownProcess: CoreMetrics.Counter(label: "nfowner_enforce_unknown_process_total", factory: factory),
                auditEvents: CoreMetrics.Counter(label: "nfowner_enforce_audit_events_total", factory: factory))
        }
        guard var current = series else { return }
        func advance(_ counter: CoreMetrics.Counter, _ now: UInt64, _ before: UInt64) {
            // Always touched, so a series shows 0 before its first decision.
            counter.increment(by: Int(now > before ? now - before : 0))
        }
        let before = current.reported
        advance(current.allow, figures.allow, before.allow)
        advance(current.deny, figures.deny, before.deny)
        advance(current.reject, figures.reject, before.reject)
        advance(current.unknownProcess, figures.unknownProcess, before.unknownProcess)
        advance(current.auditEvents, figures.auditEvents, before.auditEvents)
        current.reported = figures
        series = current
    }
}
