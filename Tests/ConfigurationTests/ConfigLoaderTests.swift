import Foundation
import Testing
@testable import Configuration

private func parse(_ text: String) throws(ConfigError) -> NfownerConfig {
    try ConfigLoader.parse(text, file: "test.toml")
}

/// The error `text` produces; fails the test when it parses.
private func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
    do {
        let config = try parse(text)
        Issue.record("expected an error, parsed \(config)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

@Suite struct Defaults {
    @Test func embeddedDefaultParsesToTheDefaults() throws {
        #expect(try parse(NfownerConfig.embeddedDefaultTOML) == NfownerConfig())
    }

    @Test func emptyFileAndEmptyTablesAreTheDefaults() throws {
        #expect(try parse("") == NfownerConfig())
        #expect(try parse("# nothing\n\n") == NfownerConfig())
        #expect(try parse("[nflog]\n[hooks]\n[select]\n[cgroups]\n") == NfownerConfig())
    }

    @Test func defaultsMatchTheRulesAndMonitorDefaults() {
        let config = NfownerConfig()
        #expect(config.nflog.groups == [5])
        #expect(config.nflog.snaplen == 128)
        #expect(config.nflog.queueThreshold == 64)
        #expect(config.nflog.flushTimeout == 10)
        #expect(config.nflog.receiveBuffer == 8_388_608)
        #expect(config.nflog.coalesceMicroseconds == 2_000)
        #expect(config.hooks.input == false)
        #expect(config.select.isEverything)
        #expect(config.cgroups.levels == [1, 2, 3])
        #expect(config.cgroups.follow == true)
    }
}

@Suite struct EveryKey {
    @Test func theNewFlowGroupIsAGroupOfItsOwn() throws {
        #expect(NfownerConfig().nflog.effectiveNewFlowGroup == 6)
        #expect(NfownerConfig.Nflog(groups: [7, 8, 10]).effectiveNewFlowGroup == 9)
        #expect(NfownerConfig.Nflog(groups: [65535]).effectiveNewFlowGroup == 0)
        let error = #expect(throws: ConfigError.self) {
            try parse("[nflog]\ngroups = [5, 6]\nnew_flow_group = 6\n")
        }
        #expect(error?.code == .duplicate)
        #expect(error?.line == 3)
    }

    @Test func everyKeyIsRead() throws {
        let config = try parse("""
            [nflog]
            groups = [7, 0, 65535]
            snaplen = 65535
            queue_threshold = 1
            flush_timeout = 6000
            receive_buffer = 65536
            coalesce_us = 0
            new_flow_seconds = 30
            new_flow_group = 9
            hold_new_flows = true
            hold_queue = 11
            [hooks]
            input = true
            packet_sockets = ["eth0", "wg0.5"]
            [select]
            users = ["alice", 1000, 0]
            groups = ["wheel", 4294967294]
            cgroups = ["/system.slice/nginx.service/", "nginx.service", "/machine", "user.slice/user-1000.slice"]
            [cgroups]
            levels = [16, 1]
            follow = false
            [enforce]
            policy = "/etc/nfowner/policy.toml"
            queue = 0
            queues = 4
            audit_log = "/var/log/nfowner-audit.jsonl"
            """)
        #expect(config.enforce == NfownerConfig.Enforce(policy: "/etc/nfowner/policy.toml", queue: 0, queues: 4,
                                                        auditLog: "/var/log/nfowner-audit.jsonl"))
        var expected = NfownerConfig.Nflog(groups: [7, 0, 65535], snaplen: 65535, queueThreshold: 1,
                                           flushTimeout: 6000, receiveBuffer: 65536,
                                           coalesceMicroseconds: 0, newFlowSeconds: 30, newFlowGroup: 9)
        expected.holdNewFlows = true
        expected.holdQueue = 11
        #expect(config.nflog == expected)
        #expect(config.nflog.holdNewFlows)
        #expect(config.nflog.holdQueue == 11)
        #expect(config.nflog.effectiveHoldQueue == 11)
        #expect(config.hooks.input)
        #expect(config.hooks.packetSockets == ["eth0", "wg0.5"])
        #expect(config.select.users == [.name("alice"), .id(1000), .id(0)])
        #expect(config.select.groups == [.name("wheel"), .id(4_294_967_294)])
        #expect(config.select.cgroups.map(\.kind) == [.path, .unit, .path, .path])
        #expect(config.select.cgroups.map(\.value) == [
            "system.slice/nginx.service", "nginx.service", "machine", "user.slice/user-1000.slice",
        ])
        #expect(config.select.cgroups.first?.absolutePath == "/system.slice/nginx.service")
        #expect(config.select.cgroups[1].absolutePath == nil)
        #expect(config.cgroups == NfownerConfig.Discovery(levels: [16, 1], follow: false))
    }

    @Test func otherTOMLSpellingsOfTheSameKeys() throws {
        let dotted = try parse("nflog.snaplen = 200\nselect.users = [\"bob\"]\n")
        #expect(dotted.nflog.snaplen == 200)
        #expect(dotted.select.users == [.name("bob")])
        let inline = try parse("hooks = { input = true }\ncgroups = { levels = [] }\n")
        #expect(inline.hooks.input)
        #expect(inline.cgroups.levels.isEmpty)
        let strings = try parse("[select]\nusers = [\"\"\"a,}\"\"\"\"\", 'b[}', \"c\\\",}\"]\n")
        #expect(strings.select.users == [.name("a,}\"\""), .name("b[}"), .name("c\",}")])
        let quoted = try parse("[\"nflog\"]\n'flush_timeout' = 0x20\n")
        #expect(quoted.nflog.flushTimeout == 32)
    }

    @Test func unitsAndPathsAreClassified() throws {
        #expect(try CgroupSelector("init.scope").kind == .unit)
        #expect(try CgroupSelector("user@1000.service").kind == .unit)
        #expect(try CgroupSelector("/init.scope") == CgroupSelector(kind: .path, value: "init.scope"))
        #expect(try CgroupSelector("a/b/").description == "a/b")
        #expect(try CgroupSelector("/machine").description == "/machine")
        #expect(throws: ConfigError.self) { try CgroupSelector("machine") }
    }
}

@Suite struct Errors {
    struct Case: CustomTestStringConvertible, Sendable {
        let text: String
        let code: ConfigError.Code
        let line: Int?
        let reason: String
        var testDescription: String { reason }
    }

    static let cases: [Case] = [
        // Types.
        Case(text: "[nflog]\ngroups = [5]\nsnaplen = \"big\"\n", code: .wrongType, line: 3,
             reason: "nflog.snaplen must be an integer from 1 to 65535, got \"big\""),
        Case(text: "[nflog]\nsnaplen = 12.5\n", code: .wrongType, line: 2,
             reason: "nflog.snaplen must be an integer from 1 to 65535, got 12.5"),
        Case(text: "[hooks]\ninput = \"yes\"\n", code: .wrongType, line: 2,
             reason: "hooks.input must be true or false, got \"yes\""),
        Case(text: "[hooks]\npacket_sockets = \"eth0\"\n", code: .wrongType, line: 2,
             reason: "hooks.packet_sockets must be an array of interface names (strings), e.g. [\"eth0\"], got \"eth0\""),
        Case(text: "[hooks]\npacket_sockets = [1]\n", code: .wrongType, line: 2,
             reason: "hooks.packet_sockets[0] must be an interface name (a string), got 1"),
        Case(text: "[hooks]\n\npacket_sockets = [\"eth0\", \"a b\"]\n", code: .invalidName, line: 3,
             reason: "hooks.packet_sockets[1]: \"a b\" is not an interface name (1-15 characters: letters, digits, _-.@:); see `ip link`"),
        Case(text: "[hooks]\npacket_sockets = [\"eth0\", \"eth0\"]\n", code: .duplicate, line: 2,
             reason: "hooks.packet_sockets lists \"eth0\" twice"),
        Case(text: "[nflog]\ngroups = 5\n", code: .wrongType, line: 2,
             reason: "nflog.groups must be an array of 1 to 8 integers from 0 to 65535, got 5"),
        Case(text: "[select]\nusers = [\"a\", true]\n", code: .wrongType, line: 2,
             reason: "select.users[1] must be a user name or a uid, got true"),
        Case(text: "[select]\ncgroups = [1]\n", code: .wrongType, line: 2,
             reason: "select.cgroups[0] must be a cgroup path or unit name (a string), got 1"),
        Case(text: "nflog = 3\n", code: .wrongType, line: 1, reason: "[nflog] must be a table, got 3"),
        Case(text: "[cgroups]\nfollow = 1979-05-27\n", code: .wrongType, line: 2,
             reason: "cgroups.follow must be true or false, got a date"),
        // Ranges.
        Case(text: "[nflog]\nsnaplen = 0\n", code: .outOfRange, line: 2,
             reason: "nflog.snaplen must be an integer from 1 to 65535, got 0"),
        Case(text: "[nflog]\nqueue_threshold = 65536\n", code: .outOfRange, line: 2,
             reason: "nflog.queue_threshold must be an integer from 1 to 65535, got 65536"),
        Case(text: "[nflog]\nflush_timeout = 6001\n", code: .outOfRange, line: 2,
             reason: "nflog.flush_timeout must be an integer from 1 to 6000, got 6001"),
        Case(text: "[nflog]\nreceive_buffer = 1024\n", code: .outOfRange, line: 2,
             reason: "nflog.receive_buffer must be an integer from 65536 to 1073741824, got 1024"),
        Case(text: "[nflog]\ncoalesce_us = 100001\n", code: .outOfRange, line: 2,
             reason: "nflog.coalesce_us must be an integer from 0 to 100000, got 100001"),
        Case(text: "[nflog]\ngroups = [65536]\n", code: .outOfRange, line: 2,
             reason: "nflog.groups[0] must be an integer from 0 to 65535, got 65536"),
        Case(text: "[nflog]\ngroups = []\n", code: .outOfRange, line: 2,
             reason: "nflog.groups must list 1 to 8 NFLOG groups, got 0"),
        Case(text: "[nflog]\ngroups = [1,2,3,4,5,6,7,8,9]\n", code: .outOfRange, line: 2,
             reason: "nflog.groups must list 1 to 8 NFLOG groups, got 9"),
        Case(text: "[cgroups]\nlevels = [0]\n", code: .outOfRange, line: 2,
             reason: "cgroups.levels[0] must be an integer from 1 to 16, got 0"),
        Case(text: "[select]\nusers = [-1]\n", code: .outOfRange, line: 2,
             reason: "select.users[0] must be a uid from 0 to 4294967294, got -1"),
        Case(text: "[select]\ngroups = [4294967295]\n", code: .outOfRange, line: 2,
             reason: "select.groups[0] must be a gid from 0 to 4294967294, got 4294967295"),
        // Unknown keys and tables.
        Case(text: "[nflog]\nsnaplem = 1\n", code: .unknownKey, line: 2,
             reason: "unknown key nflog.snaplem (did you mean nflog.snaplen?)"),
        Case(text: "[nflog]\nqueueThreshold = 1\n", code: .unknownKey, line: 2,
             reason: "unknown key nflog.queueThreshold (did you mean nflog.queue_threshold?)"),
        Case(text: "# c\n[nflgo]\nsnaplen = 1\n", code: .unknownKey, line: 2,
             reason: "unknown table [nflgo] (did you mean [nflog]?)"),
        Case(text: "[nflog]\ninput = true\n", code: .unknownKey, line: 2,
             reason: "unknown key nflog.input (did you mean hooks.input, under [hooks]?)"),
        Case(text: "snaplen = 1\n", code: .unknownKey, line: 1,
             reason: "unknown top-level key snaplen (did you mean nflog.snaplen, under [nflog]?)"),
        Case(text: "[hooks]\nforward = true\n", code: .unknownKey, line: 2,
             reason: "unknown key hooks.forward; the keys of [hooks] are input, packet_sockets"),
        Case(text: "[[firewall]]\nx = 1\n", code: .unknownKey, line: 1,
             reason: "unknown table [firewall]; the tables are [nflog], [hooks], [select], [cgroups], [accounting], [storage], [metrics], [run], [enforce]"),
        Case(text: "[[policy]]\nx = 1\n", code: .unknownKey, line: 1,
             reason: "unknown top-level key policy (did you mean enforce.policy, under [enforce]?)"),
        Case(text: "[enforce]\npolicy = \"policy.toml\"\n", code: .outOfRange, line: 2,
             reason: "enforce.policy must be an absolute path to the policy file (or \"\" for none), got \"policy.toml\""),
        Case(text: "[enforce]\nqueue = 70000\n", code: .outOfRange, line: 2,
             reason: "enforce.queue must be an integer from 0 to 65535, got 70000"),
        Case(text: "[enforce]\nqueues = 17\n", code: .outOfRange, line: 2,
             reason: "enforce.queues must be an integer from 1 to 16, got 17"),
        Case(text: "[enforce]\nqueue = 65535\nqueues = 2\n", code: .outOfRange, line: 3,
             reason: "enforce.queue 65535 with enforce.queues 2 goes past queue 65535; choose a lower enforce.queue"),
        // The daemon's tables.
        Case(text: "[accounting]\nbucket_s = 0\n", code: .outOfRange, line: 2,
             reason: "accounting.bucket_s must be an integer from 1 to 86400, got 0"),
        Case(text: "[accounting]\nbucket = 60\n", code: .unknownKey, line: 2,
             reason: "unknown key accounting.bucket (did you mean accounting.bucket_s?)"),
        Case(text: "[storage]\npath = \"nfowner.db\"\n", code: .outOfRange, line: 2,
             reason: "storage.path must be an absolute path (or \"\" for no history), got \"nfowner.db\""),
        Case(text: "[storage]\npath = 5\n", code: .wrongType, line: 2, reason: "storage.path must be a string, got 5"),
        Case(text: "[metrics]\n\nlisten = \"localhost:9465\"\n", code: .outOfRange, line: 3,
             reason: "metrics.listen must be ADDRESS:PORT (e.g. \"127.0.0.1:9465\", \"[::1]:9465\") or \"\" to turn metrics off, got \"localhost:9465\""),
        Case(text: "[run]\nkeep_rules = 1\n", code: .wrongType, line: 2, reason: "run.keep_rules must be true or false, got 1"),
        // Duplicates.
        Case(text: "[nflog]\ngroups = [5, 6, 5]\n", code: .duplicate, line: 2, reason: "nflog.groups lists 5 twice"),
        Case(text: "[cgroups]\nlevels = [1, 1]\n", code: .duplicate, line: 2, reason: "cgroups.levels lists 1 twice"),
        Case(text: "[select]\nusers = [\"a\", \"a\"]\n", code: .duplicate, line: 2, reason: "select.users lists \"a\" twice"),
        Case(text: "[select]\ncgroups = [\"a/b\", \"/a/b/\"]\n", code: .duplicate, line: 2,
             reason: "select.cgroups lists \"a/b\" twice"),
        // Names.
        Case(text: "[select]\nusers = [\"\"]\n", code: .invalidName, line: 2,
             reason: "select.users[0]: the user name \"\" is empty"),
        Case(text: "[select]\ngroups = [\"a/b\"]\n", code: .invalidName, line: 2,
             reason: "select.groups[0]: the group name \"a/b\" contains \"/\""),
        Case(text: "[select]\nusers = [\"a\\nb\"]\n", code: .invalidName, line: 2,
             reason: "select.users[0]: the user name \"a\\nb\" contains the control character U+000A"),
        Case(text: "[select]\nusers = [\"1000\"]\n", code: .invalidName, line: 2,
             reason: "select.users[0]: the user name \"1000\" is all digits; write an id without quotes (1000)"),
        // Cgroups that must never reach nft text.
        Case(text: "[select]\ncgroups = ['a\"b/c']\n", code: .invalidCgroup, line: 2,
             reason: "select.cgroups[0]: \"a\\\"b/c\" contains a double quote, which cannot be written into nftables rules"),
        Case(text: "[select]\ncgroups = [\"x.service; flush ruleset\"]\n", code: .invalidCgroup, line: 2,
             reason: "select.cgroups[0]: \"x.service; flush ruleset\" contains a semicolon, which cannot be written into nftables rules"),
        Case(text: "[select]\ncgroups = [\"a/b\\n}\"]\n", code: .invalidCgroup, line: 2,
             reason: "select.cgroups[0]: \"a/b\\n}\" contains the control character U+000A, which cannot be written into nftables rules"),
        Case(text: "[select]\ncgroups = [\"a/../../etc\"]\n", code: .invalidCgroup, line: 2,
             reason: "select.cgroups[0]: \"a/../../etc\" contains \"..\"; write the path relative to the cgroup2 root without . or .."),
        Case(text: "[select]\ncgroups = [\"'x'\"]\n", code: .invalidCgroup, line: 2,
             reason: "select.cgroups[0]: \"'x'\" contains a single quote, which cannot be written into nftables rules"),
        Case(text: "[select]\ncgroups = [\"/\"]\n", code: .invalidCgroup, line: 2,
             reason: "select.cgroups[0]: \"/\" is the cgroup2 root, which selects everything; leave select.cgroups empty instead"),
        Case(text: "[select]\ncgroups = [\"a//b\"]\n", code: .invalidCgroup, line: 2,
             reason: "select.cgroups[0]: \"a//b\" has an empty path component (\"//\")"),
        Case(text: "[select]\ncgroups = [\"nginx\"]\n", code: .invalidCgroup, line: 2,
             reason: "select.cgroups[0]: \"nginx\" is neither a path nor a unit name: a unit ends in .service, .scope, .slice, .socket, .mount, .swap; a top-level cgroup is written with a leading slash (\"/nginx\")"),
        // Syntax, with TOMLKit's line and column.
        Case(text: "[nflog]\nsnaplen =\n", code: .syntax, line: 2, reason: "invalid TOML: "),
        Case(text: "[nflog]\nsnaplen = 1\nsnaplen = 2\n", code: .syntax, line: 3, reason: "invalid TOML: "),
        Case(text: "[nflog\n", code: .syntax, line: 1, reason: "invalid TOML: "),
        Case(text: "[nflog]\nsnaplen = 99999999999999999999\n", code: .syntax, line: 2, reason: "invalid TOML: "),
        Case(text: "[}nflog]\n", code: .syntax, line: 1, reason: "invalid TOML: "),
        Case(text: "a = 1\n[\n", code: .syntax, line: 2, reason: "invalid TOML: "),
        Case(text: "  [[ {x}]]\n", code: .syntax, line: 1, reason: "invalid TOML: "),
        Case(text: "[ é]\n", code: .syntax, line: 1, reason: "invalid TOML: "),
        Case(text: "[cgroups]\nlevels = [}1, 2]\n", code: .syntax, line: 2, reason: "invalid TOML: "),
        Case(text: "[cgroups]\nlevels = [1, # c\n \"]\" ,\n}]\n", code: .syntax, line: 4, reason: "invalid TOML: "),
        Case(text: "[cgroups]\nfollow = 1979-05-27 0\n", code: .syntax, line: 2, reason: "invalid TOML: "),
        Case(text: "[cgroups]\nlevels = [1,19_79-05-27 2]", code: .syntax, line: 2, reason: "invalid TOML: "),
        Case(text: "[cgroups]\nfollow = 1979-05-27 07:32:00\n", code: .wrongType, line: 2,
             reason: "cgroups.follow must be true or false, got a date-time"),
        Case(text: "a = 1\u{0}\n", code: .unreadable, line: 1, reason: "contains a NUL byte; TOML text cannot"),
    ]

    @Test(arguments: cases) func reportsCodeLineAndReason(_ c: Case) throws {
        let error = try #require(failure(c.text))
        #expect(error.code == c.code)
        #expect(error.line == c.line)
        #expect(error.file == "test.toml")
        if c.code == .syntax {
            #expect(error.reason.hasPrefix(c.reason))
            #expect(error.reason.contains("(column "))
        } else {
            #expect(error.reason == c.reason)
        }
        #expect(!error.description.contains("\n"))
    }

    @Test func descriptionIsFileLineReason() throws {
        let error = try #require(failure("# nfowner\n[nflog]\nsnaplen = \"big\"\n"))
        #expect(error.description == "test.toml:3: nflog.snaplen must be an integer from 1 to 65535, got \"big\"")
        let syntax = try #require(failure("a = \n"))
        #expect(syntax.description.hasPrefix("test.toml:1: invalid TOML: "))
        #expect(ConfigError(.unreadable, "x", file: "f").description == "f: x")
        #expect(ConfigError(.unreadable, "x").description == "x")
    }

    @Test func theLineIsTheOffendingKeysEvenWhenTheNameRepeats() throws {
        let text = "[nflog]\ngroups = [5]\n\n[select]\nusers = []\ngroups = [\"\"]\n"
        #expect(try #require(failure(text)).line == 6)
        let dotted = try #require(failure("select.users = []\nnflog.snaplen = 0\n"))
        #expect(dotted.line == 2)
        let inline = try #require(failure("hooks = { input = 1 }\n"))
        #expect(inline.line == 1)
        let multiline = try #require(failure("[select]\nusers = [\n  \"a\",\n  \"b\",\n  2.5,\n]\n"))
        #expect(multiline.line == 2)
    }
}

@Suite struct Loading {
    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func loadsAFileAndNamesItInErrors() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = directory.appendingPathComponent("good.toml")
        try "[hooks]\ninput = true\n".write(to: good, atomically: true, encoding: .utf8)
        #expect(try ConfigLoader.load(path: good.path).hooks.input)

        let bad = directory.appendingPathComponent("bad.toml")
        try "\n[nflog]\nsnaplen = 0\n".write(to: bad, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError(.outOfRange, "nflog.snaplen must be an integer from 1 to 65535, got 0",
                                    file: bad.path, line: 3)) {
            try ConfigLoader.load(path: bad.path)
        }
    }

    @Test func anExplicitMissingFileIsAnError() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("missing.toml").path
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: missing) }
        #expect(error.code == .fileNotFound)
        #expect(error.file == missing)
        let directoryError = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: directory.path) }
        #expect(directoryError.code == .unreadable)
    }

    @Test func nonUTF8AndHugeFilesAreRefused() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let latin1 = directory.appendingPathComponent("latin1.toml")
        try Data([0x61, 0x20, 0x3D, 0x20, 0x22, 0xE9, 0x22, 0x0A]).write(to: latin1)
        #expect(throws: ConfigError.self) { try ConfigLoader.load(path: latin1.path) }
        let huge = directory.appendingPathComponent("huge.toml")
        try Data(repeating: 0x23, count: ConfigLoader.maxFileBytes + 1).write(to: huge)
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: huge.path) }
        #expect(error.code == .unreadable)
    }

    @Test(.enabled(if: !FileManager.default.fileExists(atPath: ConfigLoader.defaultPath),
                   "a real /etc/nfowner/nfowner.toml exists on this machine"))
    func aMissingDefaultFileMeansTheDefaults() throws {
        #expect(try ConfigLoader.load() == NfownerConfig())
    }
}

@Suite struct DaemonTablesTests {
    @Test func readsEveryDaemonKey() throws {
        let config = try ConfigLoader.parse("""
            [accounting]
            bucket_s = 10
            max_remotes = 0
            max_rows = 500
            input = false
            [storage]
            path = ""
            retention_days = 7
            max_mb = 64
            [metrics]
            listen = "[::1]:19465"
            remote_labels = true
            [run]
            keep_rules = true
            """, file: "t.toml")
        #expect(config.accounting == NfownerConfig.Accounting(bucketSeconds: 10, maxRemotes: 0, maxRows: 500, input: false))
        #expect(config.storage == NfownerConfig.Storage(path: "", retentionDays: 7, maxMegabytes: 64))
        #expect(config.metrics == NfownerConfig.Metrics(listen: "[::1]:19465", remoteLabels: true))
        #expect(config.run.keepRules)
        #expect(try ConfigLoader.parse(config.renderTOML(), file: "shown.toml") == config)
    }

    @Test(arguments: [
        ("127.0.0.1:9465", "127.0.0.1", 9465, false), ("0.0.0.0:1", "0.0.0.0", 1, false),
        ("[::1]:9465", "::1", 9465, true), ("[fe80::1%eth0]:80", nil, 0, false), ("127.0.0.1", nil, 0, false),
        ("127.0.0.1:0", nil, 0, false), ("127.0.0.1:65536", nil, 0, false), ("256.0.0.1:80", nil, 0, false),
        ("::1:9465", nil, 0, false), ("[]:80", nil, 0, false), ("a.b.c.d:80", nil, 0, false), ("", nil, 0, false),
    ] as [(String, String?, Int, Bool)])
    func listenAddresses(text: String, host: String?, port: Int, ipv6: Bool) {
        let address = ListenAddress(text)
        #expect(address?.host == host)
        if let address {
            #expect(Int(address.port) == port && address.isIPv6 == ipv6)
            #expect(address.description == text)
        }
    }
}
