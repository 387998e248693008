// A rule is shadowed when an earlier rule matches every packet it could match: it can never
// decide anything. The check is conservative — it reports only what it can prove from the
// matchers (a rule without a matcher that the earlier one has is broader there, so it is not
// shadowed), never a rule that could match.

extension Policy {
    /// For each shadowed rule: its index and the index of the earliest rule that shadows it.
    public func shadowedRules() -> [(rule: Int, by: Int)] {
        var found: [(rule: Int, by: Int)] = []
        for (later, rule) in rules.enumerated() {
            if let earlier = rules[..<later].firstIndex(where: { $0.covers(rule) }) {
                found.append((later, earlier))
            }
        }
        return found
    }
}

extension PolicyRule {
    /// Every packet `other` matches, this rule matches too.
    func covers(_ other: PolicyRule) -> Bool {
        matchers.allSatisfy { mine in
            other.matchers.contains { mine.covers($0) }
        }
    }
}

extension PolicyMatcher {
    /// Whether every subject `other` matches, this matcher matches too (false when they read
    /// different fields, or when it cannot be shown).
    func covers(_ other: PolicyMatcher) -> Bool {
        switch (self, other) {
        case (.uid(let a), .uid(let b)): Set(b).isSubset(of: a)
        case (.user(let a), .user(let b)): Set(b).isSubset(of: a)
        case (.gid(let a), .gid(let b)): Set(b).isSubset(of: a)
        case (.group(let a), .group(let b)): Set(b).isSubset(of: a)
        case (.unit(let a), .unit(let b)), (.exe(let a), .exe(let b)), (.comm(let a), .comm(let b)):
            b.allSatisfy { theirs in a.contains { $0.covers(theirs) } }
        case (.cgroup(let a), .cgroup(let b)):
            b.allSatisfy { theirs in a.contains { PolicyMatcher.cgroup(theirs, isUnder: $0) } }
        case (.direction(let a), .direction(let b)): b.isSubset(of: a)
        case (.proto(let a), .proto(let b)): b.isSubset(of: a)
        case (.destination(let a), .destination(let b)), (.source(let a), .source(let b)):
            b.allSatisfy { theirs in a.contains { $0.contains(theirs) } }
        case (.destinationPort(let a), .destinationPort(let b)), (.sourcePort(let a), .sourcePort(let b)):
            b.allSatisfy { theirs in a.contains { $0.contains(theirs) } }
        case (.icmpType(let a), .icmpType(let b)): Set(b).isSubset(of: a)
        default: false
        }
    }
}
