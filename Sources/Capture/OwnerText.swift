import PacketModel

/// A packet's owner as the text of its pcapng comment: `key=value` fields separated by one
/// space, only the fields that are known, always in this order:
///
///     uid=1000(alice) gid=1000(alice) cgroup=/user.slice/user-1000.slice/session-2.scope
///     unit=session-2.scope pid=1234 comm=curl exe=/usr/bin/curl confidence=exact
///
/// (on one line). The grammar, for scripts that split it:
///
///     comment = field *(" " field)
///     field   = key "=" value             ; key: lowercase letters and "_"
///     value   = bare / quoted
///     bare    = 1*(any character but space, control characters, DEL, '"' and '\')
///     quoted  = '"' *(plain / escape) '"'  ; used when a bare value is impossible
///     escape  = '\"' / '\\' / '\n' / '\r' / '\t' / '\x' 2HEXDIG   ; \xHH: other control bytes
///
/// A value is quoted when it is empty or holds a space, a control character, DEL, `"` or `\`;
/// `=` needs no quoting (the key ends at the first `=`). Non-ASCII text stays as it is (UTF-8).
///
/// Keys: `uid` (with the user name in parentheses when known; `user` when only the name is),
/// `gid` (likewise; `group`), `cgroup` (the path; `cgroup_id` when only the id is known),
/// `unit`, `pid`, `comm`, `exe` (the process when there is exactly one answer; `comm` and `exe`
/// without `pid` for a program),
/// `candidates` (`pid(comm),pid(comm),…` when there are several), `confidence`, `reason`.
public enum OwnerComment {
    /// The comment for `owner`, or nil when nothing about it is known (no comment is written).
    public static func text(for owner: PacketOwner) -> String? {
        var fields = Fields()
        switch (owner.uid, owner.userName) {
        case let (uid?, name?): fields.add("uid", "\(uid)(\(name))")
        case let (uid?, nil): fields.add("uid", "\(uid)")
        case let (nil, name?): fields.add("user", name)
        case (nil, nil): break
        }
        switch (owner.gid, owner.groupName) {
        case let (gid?, name?): fields.add("gid", "\(gid)(\(name))")
        case let (gid?, nil): fields.add("gid", "\(gid)")
        case let (nil, name?): fields.add("group", name)
        case (nil, nil): break
        }
        if let path = owner.cgroupPath {
            fields.add("cgroup", path)
        } else if let id = owner.cgroupID {
            fields.add("cgroup_id", "\(id)")
        }
        if let unit = owner.unit { fields.add("unit", unit) }
        if let attribution = owner.attribution {
            if let chosen = attribution.chosen {
                fields.add("pid", "\(chosen.pid)")
                if let comm = chosen.comm { fields.add("comm", comm) }
                if let exe = chosen.exe { fields.add("exe", exe) }
            } else if !attribution.processes.isEmpty {
                // A program (no pid) names its comm and exe before the processes running it.
                if attribution.confidence == .program, let named = attribution.named {
                    if let comm = named.comm { fields.add("comm", comm) }
                    if let exe = named.exe { fields.add("exe", exe) }
                }
                let list = attribution.processes.map { process in
                    process.comm.map { "\(process.pid)(\($0))" } ?? "\(process.pid)"
                }
                fields.add("candidates", list.joined(separator: ","))
            }
            fields.add("confidence", attribution.confidence.rawValue)
            if let reason = attribution.reason { fields.add("reason", reason) }
        }
        return fields.text.isEmpty ? nil : String(decoding: fields.text, as: UTF8.self)
    }

    private struct Fields {
        var text: [UInt8] = []

        mutating func add(_ key: String, _ value: String) {
            if !text.isEmpty { text.append(UInt8(ascii: " ")) }
            text.append(contentsOf: key.utf8)
            text.append(UInt8(ascii: "="))
            OwnerComment.appendValue(value, to: &text)
        }
    }

    /// `value` bare when the grammar allows, else quoted and escaped.
    static func appendValue(_ value: String, to out: inout [UInt8]) {
        let utf8 = value.utf8
        guard !utf8.isEmpty, !utf8.contains(where: needsQuoting) else {
            out.append(UInt8(ascii: "\""))
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0..<0x20, 0x7F:
                    out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "x")])
                    appendHexByte(byte, to: &out)
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
            return
        }
        out.append(contentsOf: utf8)
    }

    private static func needsQuoting(_ byte: UInt8) -> Bool {
        byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }
}

/// A packet's owner as compact JSON, for the custom option (code 2988, PEN 32473): the keys of
/// nfowner's JSON Lines output (docs/json-schema.md) that are known, in this order —
/// `uid`, `gid`, `user`, `group_name`, `cgroup`, `cgroup_id`, `unit`, `pid`, `comm`, `exe`,
/// `processes` (`[{"pid":…,"comm":…,"exe":…}]`), `confidence`, `reason`.
///
/// Unknown values are left out rather than written as null: the option rides on every packet.
/// For the same reason `processes` appears only when it says more than `pid`/`comm`/`exe`
/// (several processes, or none chosen); `pid`, `comm` and `exe` only when there is exactly one
/// answer (`OwnerAttribution.chosen`).
public enum OwnerJSON {
    /// The JSON object for `owner`, or nil when nothing about it is known.
    /// `includingProcesses: false` leaves the `processes` list out (when the full text would not
    /// fit in an option).
    public static func text(for owner: PacketOwner, includingProcesses: Bool = true) -> String? {
        var object = Object()
        if let uid = owner.uid { object.number("uid", UInt64(uid)) }
        if let gid = owner.gid { object.number("gid", UInt64(gid)) }
        if let name = owner.userName { object.string("user", name) }
        if let name = owner.groupName { object.string("group_name", name) }
        if let path = owner.cgroupPath { object.string("cgroup", path) }
        if let id = owner.cgroupID { object.number("cgroup_id", id) }
        if let unit = owner.unit { object.string("unit", unit) }
        if let attribution = owner.attribution {
            let chosen = attribution.chosen
            if let named = attribution.named {
                if let pid = named.pid { object.signed("pid", Int64(pid)) }
                if let comm = named.comm { object.string("comm", comm) }
                if let exe = named.exe { object.string("exe", exe) }
            }
            let listSaysMore = chosen.map { attribution.processes != [$0] } ?? !attribution.processes.isEmpty
            if includingProcesses, listSaysMore {
                object.key("processes")
                object.text.append(UInt8(ascii: "["))
                for (index, process) in attribution.processes.enumerated() {
                    if index > 0 { object.text.append(UInt8(ascii: ",")) }
                    var inner = Object()
                    inner.signed("pid", Int64(process.pid))
                    if let comm = process.comm { inner.string("comm", comm) }
                    if let exe = process.exe { inner.string("exe", exe) }
                    object.text.append(contentsOf: inner.closed)
                }
                object.text.append(UInt8(ascii: "]"))
            }
            object.string("confidence", attribution.confidence.rawValue)
            if let reason = attribution.reason { object.string("reason", reason) }
        }
        return object.isEmpty ? nil : String(decoding: object.closed, as: UTF8.self)
    }

    private struct Object {
        var text: [UInt8] = [UInt8(ascii: "{")]
        var isEmpty: Bool { text.count == 1 }
        var closed: [UInt8] { text + [UInt8(ascii: "}")] }

        mutating func key(_ key: String) {
            if !isEmpty { text.append(UInt8(ascii: ",")) }
            OwnerJSON.appendString(key, to: &text)
            text.append(UInt8(ascii: ":"))
        }

        mutating func number(_ name: String, _ value: UInt64) {
            key(name)
            text.append(contentsOf: "\(value)".utf8)
        }

        mutating func signed(_ name: String, _ value: Int64) {
            key(name)
            text.append(contentsOf: "\(value)".utf8)
        }

        mutating func string(_ name: String, _ value: String) {
            key(name)
            OwnerJSON.appendString(value, to: &text)
        }
    }

    /// A JSON string (RFC 8259): `"` and `\` escaped, control characters as \n, \r, \t or \u00XX.
    static func appendString(_ value: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                appendHexByte(byte, to: &out)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Two lowercase hex digits.
func appendHexByte(_ byte: UInt8, to out: inout [UInt8]) {
    let digits = Array("0123456789abcdef".utf8)
    out.append(digits[Int(byte >> 4)])
    out.append(digits[Int(byte & 0x0F)])
}
