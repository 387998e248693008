// Pure parsers for what `status` reads: nft's listing of our table, and two per-namespace /proc
// files. Each takes text and returns values, so the tests feed them recorded output.
//
// /proc/net/netfilter/nfnetlink_log, one line per bound group, all columns DECIMAL (kernel
// format "%5u %6u %5u %1u %5u %6u %2u"; measured on 6.18 with group 1000 -> "1000"):
//
//       5   5632     0 2   200    150  1
//   group portid  qlen mode range flush-timeout(1/100 s) refcount
//
// /proc/net/netlink, a header then one line per netlink socket; Eth is the protocol
// (12 = NETLINK_NETFILTER), Pid the socket's portid, Inode the socket inode (all decimal):
//
//   sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
//   000000009df34295 12  5632       00000000 0        0        0     2        0        16660

/// One bound NFLOG group, from /proc/net/netfilter/nfnetlink_log.
public struct NflogInstance: Sendable, Equatable {
    public var group: UInt16
    /// Netlink port id of the listening socket. Usually the pid of the process that bound it
    /// first, but not always: `status` resolves the real owner through the socket inode.
    public var portID: UInt32
    /// Packets queued in the kernel, not yet sent (a batch in progress).
    public var queueLength: UInt32
    /// NFULNL_COPY_NONE (0), _META (1) or _PACKET (2).
    public var copyMode: UInt8
    /// Bytes of each packet the group copies (NFULNL copy_range), before the rule's snaplen.
    public var copyRange: UInt32
    /// Flush timeout in 1/100 s.
    public var flushTimeout: UInt32
    /// Kernel references to the instance.
    public var referenceCount: UInt32

    public init(group: UInt16, portID: UInt32, queueLength: UInt32, copyMode: UInt8, copyRange: UInt32,
                flushTimeout: UInt32, referenceCount: UInt32) {
        self.group = group
        self.portID = portID
        self.queueLength = queueLength
        self.copyMode = copyMode
        self.copyRange = copyRange
        self.flushTimeout = flushTimeout
        self.referenceCount = referenceCount
    }
}

/// One netlink socket, from /proc/net/netlink.
public struct NetlinkSocketEntry: Sendable, Equatable {
    /// NETLINK_NETFILTER: the protocol NFLOG listeners use.
    public static let netfilterProtocol: UInt32 = 12

    public var netlinkProtocol: UInt32
    public var portID: UInt32
    public var inode: UInt64

    public init(netlinkProtocol: UInt32, portID: UInt32, inode: UInt64) {
        self.netlinkProtocol = netlinkProtocol
        self.portID = portID
        self.inode = inode
    }
}

/// Packets and bytes counted by one of nfowner's log rules.
public struct RuleCounters: Sendable, Equatable {
    /// Chain the rule is in (named after its hook).
    public var chain: String
    public var packets: UInt64
    public var bytes: UInt64

    public init(chain: String, packets: UInt64, bytes: UInt64) {
        self.chain = chain
        self.packets = packets
        self.bytes = bytes
    }
}

public enum StatusParsers {
    /// Parses /proc/net/netfilter/nfnetlink_log. Blank lines are skipped; any other line that is
    /// not 7 decimal numbers throws `.unexpectedOutput` quoting it.
    public static func parseNflogInstances(_ text: String) throws(RulesError) -> [NflogInstance] {
        var instances: [NflogInstance] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty { continue }
            guard fields.count == 7,
                  let group = UInt16(fields[0]), let portID = UInt32(fields[1]), let qlen = UInt32(fields[2]),
                  let mode = UInt8(fields[3]), let range = UInt32(fields[4]), let timeout = UInt32(fields[5]),
                  let refs = UInt32(fields[6])
            else {
                throw RulesError(.unexpectedOutput,
                    "cannot parse /proc/net/netfilter/nfnetlink_log line '\(NftText.printable(String(line)))': expected 7 decimal columns")
            }
            instances.append(NflogInstance(group: group, portID: portID, queueLength: qlen, copyMode: mode,
                                           copyRange: range, flushTimeout: timeout, referenceCount: refs))
        }
        return instances
    }

    /// Parses /proc/net/netlink. The header line is recognised and skipped; a data line whose Eth,
    /// Pid or Inode column is not a decimal number throws `.unexpectedOutput` quoting it.
    public static func parseNetlinkSockets(_ text: String) throws(RulesError) -> [NetlinkSocketEntry] {
        var entries: [NetlinkSocketEntry] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty || fields.first == "sk" { continue }
            guard fields.count >= 10, let proto = UInt32(fields[1]), let portID = UInt32(fields[2]),
                  let inodeField = fields.last, let inode = UInt64(inodeField)
            else {
                throw RulesError(.unexpectedOutput,
                    "cannot parse /proc/net/netlink line '\(NftText.printable(String(line)))'")
            }
            entries.append(NetlinkSocketEntry(netlinkProtocol: proto, portID: portID, inode: inode))
        }
        return entries
    }

    /// The counters of every chain's rules carrying nfowner's log-rule comment in an `nft list
    /// table` listing, summed per chain (in listing order). Rules without a `counter packets N bytes M` are skipped.
    public static func parseRuleCounters(_ listing: String) -> [RuleCounters] {
        var result: [RuleCounters] = []
        var chain = ""
        let marker = "comment \"\(Rule.logRuleComment)\""
        for rawLine in listing.split(separator: "\n") {
            let words = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.count >= 3, words[0] == "chain", words[words.count - 1] == "{" {
                chain = String(words[1])
                continue
            }
            guard rawLine.contains(marker) else { continue }
            guard let at = words.firstIndex(of: "counter"), at + 4 < words.count,
                  words[at + 1] == "packets", let packets = UInt64(words[at + 2]),
                  words[at + 3] == "bytes", let bytes = UInt64(words[at + 4])
            else { continue }
            // A chain logs with up to three rules (a new flow per family, then the rest): one sum.
            if let last = result.indices.last, result[last].chain == chain {
                result[last].packets &+= packets
                result[last].bytes &+= bytes
            } else {
                result.append(RuleCounters(chain: chain, packets: packets, bytes: bytes))
            }
        }
        return result
    }

    /// The content hash from the table comment `comment "nfowner ruleset sha256=HEX[ by=…]"`, or
    /// nil when the listing has no such comment (a table nfowner did not write, or an old format).
    public static func parseInstalledHash(_ listing: String) -> String? {
        TableComment.find(inListing: listing)?.hash
    }
}
