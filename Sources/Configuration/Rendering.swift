// Config -> TOML text, for `nfowner config show`. The output parses back to the same config
// (tested with random configs), so what `show` prints can be saved as the config file.

enum TOMLText {
    /// `text` as the inside of a TOML basic string: `"` and `\` escaped, control characters as
    /// \uXXXX (or their short escapes), everything else as is.
    static func escapeBasic(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if isControl(scalar) {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += scalar.value > 0xFFFF
                        ? "\\U" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
                        : "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    static func basicString(_ text: String) -> String { "\"" + escapeBasic(text) + "\"" }

    static func array<S: Sequence>(_ items: S, _ render: (S.Element) -> String) -> String {
        "[" + items.map(render).joined(separator: ", ") + "]"
    }

    static func principal(_ principal: Principal) -> String {
        switch principal {
        case .name(let name): basicString(name)
        case .id(let id): String(id)
        }
    }
}

extension NfownerConfig {
    /// The config as a TOML document with a unit comment on every key. `ConfigLoader.parse` of the
    /// result equals `self` when `self` is valid (anything the loader returned is).
    public func renderTOML() -> String {
        let lines = [
            "# nfowner configuration (effective values)",
            "",
            "[nflog]",
            "groups = \(TOMLText.array(nflog.groups) { String($0) })  # NFLOG groups; rules log to the first",
            "snaplen = \(nflog.snaplen)  # bytes of each packet copied to userspace",
            "queue_threshold = \(nflog.queueThreshold)  # packets per batch",
            "flush_timeout = \(nflog.flushTimeout)  # 1/100 s",
            "receive_buffer = \(nflog.receiveBuffer)  # bytes (SO_RCVBUFFORCE)",
            "coalesce_us = \(nflog.coalesceMicroseconds)  # µs between reads under load; 0 = every batch",
            "new_flow_seconds = \(nflog.newFlowSeconds)  # a flow's first packet at once, then batched this long; 0 = off",
        ] + (nflog.newFlowGroup.map { ["new_flow_group = \($0)  # NFLOG group of new flows' first packets"] } ?? []) + [
            "hold_new_flows = \(nflog.holdNewFlows)  # hold TCP SYNs and pings in NFQUEUE until their owner is known",
        ] + (nflog.holdQueue.map { ["hold_queue = \($0)  # NFQUEUE queue of hold mode"] } ?? []) + [
            "",
            "[hooks]",
            "input = \(hooks.input)  # also log packets arriving for local sockets",
            "packet_sockets = \(TOMLText.array(hooks.packetSockets) { TOMLText.basicString($0) })  # interfaces whose packet sockets' frames are logged",
            "",
            "[select]",
            "users = \(TOMLText.array(select.users, TOMLText.principal))",
            "groups = \(TOMLText.array(select.groups, TOMLText.principal))",
            "cgroups = \(TOMLText.array(select.cgroups) { TOMLText.basicString($0.description) })",
            "",
            "[cgroups]",
            "levels = \(TOMLText.array(cgroups.levels) { String($0) })  # depths below the cgroup2 root",
            "follow = \(cgroups.follow)  # track cgroups created/removed while running",
            "",
            "[accounting]",
            "mode = \(TOMLText.basicString(accounting.mode.rawValue))  # packets (every packet attributed) or kernel (nft counters)",
            "bucket_s = \(accounting.bucketSeconds)  # seconds per time bucket",
            "max_remotes = \(accounting.maxRemotes)  # remote endpoints per owner and bucket; the rest is \"other\"",
            "max_rows = \(accounting.maxRows)  # rows per bucket; past it new owners are \"other\"",
            "input = \(accounting.input)  # account packets arriving for local sockets too",
            "",
            "[storage]",
            "path = \(TOMLText.basicString(storage.path))  # SQLite history; \"\" keeps none",
            "retention_days = \(storage.retentionDays)  # days of history kept",
            "max_mb = \(storage.maxMegabytes)  # MiB; the oldest buckets go first past it",
            "",
            "[metrics]",
            "listen = \(TOMLText.basicString(metrics.listen))  # Prometheus /metrics over HTTP; \"\" turns it off",
            "remote_labels = \(metrics.remoteLabels)  # label series by remote address too",
            "",
            "[run]",
            "keep_rules = \(run.keepRules)  # leave the ruleset installed when the daemon stops",
            "",
            "[enforce]",
            "policy = \(TOMLText.basicString(enforce.policy))  # the policy `nfowner run` enforces; \"\" = none",
            "queue = \(enforce.queue)  # NFQUEUE queue of enforce mode",
            "queues = \(enforce.queues)  # queues from `queue` on, new flows spread over them by CPU",
            "audit_log = \(TOMLText.basicString(enforce.auditLog))  # audit events (JSON Lines); \"\" = none",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
