import PacketModel

/// Enforce mode's audit events: a packet event exactly as the monitor writes it in JSON (the
/// same keys, `docs/json-schema.md`), followed by what the policy decided:
///
///     {…the monitor's keys…,"rule":"web-only","rule_index":0,"action":"deny","verdict":"accept","mode":"audit"}
///
/// `rule` is the deciding rule's name ("default" when none matched; `rule_index` is then null),
/// `action` what the policy says, `verdict` what the packet got (in audit mode always "accept"),
/// `mode` "enforce" or "audit". Written once per decision (a new flow), so a one-off encode is
/// cheap enough.
public enum AuditLines {
    public static func append(_ event: borrowing PacketEvent, rule: String, ruleIndex: Int?, action: String,
                              verdict: String, mode: String, to out: inout [UInt8]) {
        var buffer = ByteBuffer(capacity: 1024)
        var encoder = JSONLines.Encoder()
        encoder.append(event, to: &buffer)
        // The event ends with "}\n": the decision's keys go before the brace.
        buffer.withBytes { out.append(contentsOf: $0.dropLast(2)) }
        var keys = ByteBuffer(capacity: 256)
        keys.write(",\"rule\":")
        JSONLines.appendString(rule, to: &keys)
        keys.write(",\"rule_index\":")
        JSONLines.appendNumber(ruleIndex.map { UInt64($0) }, to: &keys)
        keys.write(",\"action\":")
        JSONLines.appendString(action, to: &keys)
        keys.write(",\"verdict\":")
        JSONLines.appendString(verdict, to: &keys)
        keys.write(",\"mode\":")
        JSONLines.appendString(mode, to: &keys)
        keys.write("}\n")
        keys.withBytes { out.append(contentsOf: $0) }
    }
}
