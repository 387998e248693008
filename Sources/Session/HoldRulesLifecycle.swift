import Rules

/// Hold mode's rules for one run: probed and installed at start (unless the run installs no
/// rules), removed at exit — before the queue is unbound, so no packet is queued to nobody.
/// Rules a killed monitor left behind hold nothing (bypass) and are replaced by the next run.
final class HoldRulesLifecycle {
    let spec: HoldSpec
    /// How the rules queue; nil when this run installed none (`--no-rules`).
    let backend: HoldBackend?
    private let runner = HoldRulesRunner()
    private let report: (String) -> Void
    private var removed = false

    init(spec: HoldSpec, installs: Bool, report: @escaping (String) -> Void) throws(SessionError) {
        self.spec = spec
        self.report = report
        guard installs else {
            backend = nil
            report("hold mode with --no-rules: reading NFQUEUE queue \(spec.queue); your rules must queue to it "
                   + "(with --queue-bypass, or traffic stops when nfowner does)")
            return
        }
        let (backend, why) = runner.probe()
        do {
            try runner.install(spec, backend: backend)
        } catch {
            throw SessionError("cannot install hold mode's rules: \(error.reason)")
        }
        self.backend = backend
        report("holding each new TCP connection's SYN and each ping in NFQUEUE queue \(spec.queue) until its owner "
               + "is known (\(why)); with no monitor listening they pass at once (queue bypass)")
    }

    func finish() {
        guard backend != nil, !removed else { return }
        removed = true
        do { try runner.remove(spec) } catch {
            report("could not remove hold mode's rules: \(error.reason); remove them with `nfowner rules remove`")
        }
    }
}
