import ArgumentParser

@main
struct Nfowner: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nfowner",
        abstract: "Name the process owner of every packet this host sends, from netfilter.",
        discussion: """
            nfowner asks the kernel, at the moment a packet leaves, which socket owner sent it: an \
            nftables rule in the OUTPUT hook logs each packet to an NFLOG group with the owning \
            socket's uid and gid attached, and nfowner reads, parses and shows those packets. This \
            works for every protocol (TCP, UDP, ICMP, raw sockets…) and for processes that exit \
            right after sending, unlike tools that look sockets up after capture.

            Start with:  sudo nfowner monitor
            (installs nfowner's own nftables table for the run and removes it on exit),
            or:          sudo nfowner trace -- curl -s https://example.org/
            (runs one command and shows only its packets, then a summary).
            """,
        subcommands: [MonitorCommand.self, TraceCommand.self, TopCommand.self, RunCommand.self, ReportCommand.self,
                      EnforceCommand.self, PolicyCommand.self, CaptureCommand.self, RulesCommand.self, ConfigCommand.self])
}
