// Validation of the strings a config can carry: user/group names and cgroup selectors. Cgroup
// paths and unit names end up in nft text (`socket cgroupv2 level N "path"`), where nothing can be
// escaped, so characters that would end the string or the statement are refused here, early, with
// the file and line. The Rules module still checks whatever it writes.

extension CgroupSelector {
    /// Unit types that own a cgroup; other unit types (.target, .timer, .device, …) never hold processes.
    static let unitSuffixes = [".service", ".scope", ".slice", ".socket", ".mount", ".swap"]
    /// Longest path accepted, in bytes (PATH_MAX - 1).
    static let maxPathBytes = 4095
    /// Longest path component (NAME_MAX) and longest unit name systemd accepts, in bytes.
    static let maxNameBytes = 255

    static func classify(_ text: String) -> Result<CgroupSelector, ConfigErrorReason> {
        if let bad = forbiddenCharacter(in: text) {
            return .failure(ConfigErrorReason("\(quoted(text)) contains \(bad), which cannot be written into nftables rules"))
        }
        if text.contains("/") {
            var components = text.split(separator: "/", omittingEmptySubsequences: false)
            if components.first == "" { components.removeFirst() }
            if components.last == "" { components.removeLast() }
            guard !components.isEmpty else {
                return .failure(ConfigErrorReason("\(quoted(text)) is the cgroup2 root, which selects everything; leave select.cgroups empty instead"))
            }
            for component in components {
                switch component {
                case "":
                    return .failure(ConfigErrorReason("\(quoted(text)) has an empty path component (\"//\")"))
                case ".", "..":
                    return .failure(ConfigErrorReason("\(quoted(text)) contains \"\(component)\"; write the path relative to the cgroup2 root without . or .."))
                default:
                    if component.utf8.count > maxNameBytes {
                        return .failure(ConfigErrorReason("\(quoted(text)) has a component longer than \(maxNameBytes) bytes"))
                    }
                }
            }
            let path = components.joined(separator: "/")
            guard path.utf8.count <= maxPathBytes else {
                return .failure(ConfigErrorReason("\(quoted(text)) is longer than \(maxPathBytes) bytes"))
            }
            return .success(CgroupSelector(kind: .path, value: path))
        }
        guard !text.isEmpty else {
            return .failure(ConfigErrorReason("\"\" is empty; give a path relative to the cgroup2 root or a unit name"))
        }
        guard text != ".", text != ".." else {
            return .failure(ConfigErrorReason("\(quoted(text)) is not a cgroup; write the path relative to the cgroup2 root without . or .."))
        }
        guard unitSuffixes.contains(where: { text.hasSuffix($0) && text.count > $0.count }) else {
            return .failure(ConfigErrorReason("\(quoted(text)) is neither a path nor a unit name: a unit ends in "
                + unitSuffixes.joined(separator: ", ") + "; a top-level cgroup is written with a leading slash (\"/\(escapedForMessage(text))\")"))
        }
        guard text.utf8.count <= maxNameBytes else {
            return .failure(ConfigErrorReason("\(quoted(text)) is longer than \(maxNameBytes) bytes, the longest unit name systemd accepts"))
        }
        return .success(CgroupSelector(kind: .unit, value: text))
    }

    /// The first character that must not reach nft text, described for a message; nil if none.
    private static func forbiddenCharacter(in text: String) -> String? {
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": return "a double quote"
            case "'": return "a single quote"
            case ";": return "a semicolon"
            default:
                if isControl(scalar) { return "the control character \(scalarName(scalar))" }
            }
        }
        return nil
    }
}

enum PrincipalRules {
    /// Longest user or group name accepted, in bytes. Linux tools accept 32; the limit only stops
    /// absurd input.
    static let maxNameBytes = 256

    /// nil when `name` can be a user or group name; otherwise why not.
    static func problem(withName name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > maxNameBytes { return "is longer than \(maxNameBytes) bytes" }
        if name.contains("/") { return "contains \"/\"" }
        if let scalar = name.unicodeScalars.first(where: isControl) {
            return "contains the control character \(scalarName(scalar))"
        }
        if name.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
            return "is all digits; write an id without quotes (\(name))"
        }
        return nil
    }
}

/// A reason without file or line; the loader adds them.
struct ConfigErrorReason: Error {
    let text: String
    init(_ text: String) { self.text = text }
}

func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.properties.generalCategory == .control
        || scalar.value == 0x2028 || scalar.value == 0x2029  // line and paragraph separators
}

func scalarName(_ scalar: Unicode.Scalar) -> String {
    let hex = String(scalar.value, radix: 16, uppercase: true)
    return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
}

/// `text` between double quotes with TOML escapes, shortened to about 60 characters for messages.
func quoted(_ text: String) -> String {
    let limit = 60
    let shown = text.count > limit ? String(text.prefix(limit)) + "…" : text
    return "\"" + escapedForMessage(shown) + "\""
}

func escapedForMessage(_ text: String) -> String {
    TOMLText.escapeBasic(text)
}
