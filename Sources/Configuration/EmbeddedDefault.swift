// The documented default config file: what `nfowner` uses when /etc/nfowner/nfowner.toml does not
// exist, and a starting point to copy there. A test checks it parses to `NfownerConfig()`, so
// the comments cannot drift from the defaults in code.

extension NfownerConfig {
    public static let embeddedDefaultTOML = #"""
    # /etc/nfowner/nfowner.toml: nfowner's configuration.
    # Every key is optional; a missing key (or a missing file) means the default shown here.
    # Unknown keys are errors, so a typo never goes unnoticed. Check a file with
    #   nfowner config check FILE
    # and print the effective configuration with
    #   nfowner config show

    [nflog]
    # NFLOG groups, 1 to 8 unique numbers from 0 to 65535. nfowner's rules log to the first;
    # the monitor listens on all of them. 0, 1 and 2 are what ulogd and IDS examples use.
    groups = [5]
    # Bytes of each packet copied to userspace, 1 to 65535. 128 covers the IP and TCP headers
    # with options, which is all nfowner reads.
    snaplen = 128
    # Packets the kernel collects before sending them as one message, 1 to 65535. Fewer
    # messages per batch cost more CPU per packet (20: ~40% more than 64 at high rates).
    queue_threshold = 64
    # Longest a partly filled batch waits, in 1/100 s, 1 to 6000 (10 = 0.1 s).
    flush_timeout = 10
    # Socket receive buffer in bytes (SO_RCVBUFFORCE), 65536 to 1073741824 (1 GiB).
    # 8 MiB absorbed bursts of ~190k packets/s without loss.
    receive_buffer = 8388608
    # Under load, read the socket at most once per this many microseconds, taking every batch
    # queued meanwhile, 0 to 100000 (capped at 1 µs per KiB of receive_buffer). Waking for each
    # batch cost half a consumer's CPU; 2000 (2 ms) saves most of that for at most 2 ms more
    # delay. 0 wakes for each batch.
    coalesce_us = 2000
    # Deliver each flow's first packet at once (it flushes the pending batch), so a sender that
    # exits right after sending is looked up while its socket exists; later packets of the flow
    # are batched for this many seconds, 0 to 3600 (0 batches everything). Match --flow-lifetime.
    new_flow_seconds = 2
    # Hold mode: each new TCP connection's SYN and each ping's echo request wait in an NFQUEUE
    # queue (hold_queue, default the first group's number) until their owner is looked up, so
    # they name their process exactly. Fails open: with no monitor listening they pass at once.
    # Costs each held packet one round trip to the monitor (docs/attribution.md).
    hold_new_flows = false

    [hooks]
    # Also log packets arriving for local sockets. Outgoing packets are always logged.
    input = false
    # Also log the frames packet sockets (AF_PACKET: DHCP clients, packet generators, raw
    # Ethernet tools) send on these interfaces; they bypass the IP hooks. E.g. ["eth0"].
    packet_sockets = []

    [select]
    # Narrow what is logged. Empty lists mean everyone; a packet must match every non-empty list.
    # Users and groups by name or id: users = ["alice", 1000]
    users = []
    groups = []
    # Cgroups by path relative to the cgroup2 root ("system.slice/nginx.service", or "/machine"
    # for a top-level one) or by systemd unit name ("nginx.service", "user@1000.service").
    cgroups = []

    [cgroups]
    # Depths below the cgroup2 root whose cgroups are classified, so each logged packet names
    # its cgroup: 1 = slices, 2 = services and user slices, 3 = sessions and user services.
    # Each 1 to 16; [] turns discovery off.
    levels = [1, 2, 3]
    # Follow cgroups created and removed while nfowner runs.
    follow = true

    # The next tables are read by the daemon, `nfowner run`.
    [accounting]
    # "packets": every packet is logged to nfowner and attributed (unit, cgroup, user, program,
    # protocol, remote). "kernel": nft counts bytes per direction, uid and classified cgroup
    # itself and nfowner reads the counters: exact at any packet rate, no program or remote.
    mode = "packets"
    # Seconds per time bucket, 1 to 86400. Traffic is totalled per bucket; a crash loses at
    # most the bucket being filled.
    bucket_s = 60
    # Remote endpoints kept per owner and direction in a bucket, 0 to 100000; the rest are
    # added up as the remote "other", so a flood of distinct remotes cannot eat memory.
    max_remotes = 100
    # Rows kept per bucket, 100 to 10000000; past it, new owners are added up as "other" too.
    max_rows = 100000
    # Also account packets arriving for local sockets: in and out are reported separately.
    input = true

    [storage]
    # The SQLite history `nfowner report` reads; "" keeps no history.
    path = "/var/lib/nfowner/nfowner.db"
    # Days of history kept, 1 to 36500.
    retention_days = 30
    # Size bound in MiB, 1 to 1048576: past it the oldest buckets are deleted first.
    max_mb = 1024

    [metrics]
    # Prometheus text format at http://LISTEN/metrics; "" turns it off. Numeric addresses:
    # "127.0.0.1:9465", "[::1]:9465", "0.0.0.0:9465" (every interface: mind your firewall).
    listen = "127.0.0.1:9465"
    # Label series by remote address too (unbounded on a busy host: off by default).
    remote_labels = false

    [run]
    # Leave the ruleset installed when the daemon stops.
    keep_rules = false

    [enforce]
    # A policy file (docs/enforce.md) `nfowner run` enforces besides accounting, as `nfowner
    # enforce` would; its decisions are counted in the metrics. "" enforces nothing.
    policy = ""
    # The NFQUEUE queue its rules queue new flows to (0 to 65535); it must be free.
    queue = 10
    # Spread new flows over this many queues from `queue` on (1 to 16), by the CPU each is sent
    # on, each decided by a thread of its own.
    queues = 1
    # Append an audit event (JSON Lines) for each decision of a rule with log = true, or every
    # decision in audit mode; "" writes none.
    audit_log = ""

    """#
}
