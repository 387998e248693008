import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// Issue 13, packet sockets: frames an AF_PACKET socket writes on a veth bypass the IP hooks;
    /// with `--packet-sockets IFACE` nfowner logs them at the device's egress hook, takes the
    /// link-layer header off (Ethernet, a VLAN tag) and names the sending program — every frame,
    /// zero parse errors, a frame without IP counted apart — while an IP socket's packets on the
    /// same device are still logged once, at output. The netdev table goes when the run ends.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct PacketSocketEndToEndTests {
        static let frames = 40

        @Test func everyFrameAPacketSocketSendsNamesItsProgram() throws {
            let pair = try VethPair("13pkt")
            defer { pair.close() }
            let monitor = try RunningMonitor(["--format", "json", "--netns", pair.local.name, "--no-cgroups",
                                              "--packet-sockets", pair.localEnd])
            defer { monitor.stop() }
            let tables = try pair.local.nft(["list", "tables"]).stdout
            #expect(tables.contains("table netdev nfowner"), "\(tables)")

            let sender = try Python.start(
                Self.frameSender, [pair.localEnd, pair.localAddress, pair.peerAddress, "9651", String(Self.frames)],
                in: pair.local, uid: 0)
            #expect(sender.finish().contains("sent \(Self.frames + 2)"))
            try Python.run(Python.udpSender,
                                                   [pair.peerAddress, "9652", "3", "100"], in: pair.local)
            let all = monitor.waitForEvents(timeout: 8) { events in
                events.filter { $0.int("dport") == 9651 }.count >= Self.frames + 1
                    && events.filter { $0.int("dport") == 9652 }.count >= 3
            }
            let summary = monitor.stop()

            let frames = all.filter { $0.int("dport") == 9651 }
            #expect(frames.count == Self.frames + 1, "\(frames.count) frames: \(frames)")
            var named = 0
            for event in frames {
                let ok = event.string("hook") == "egress" && event.string("dir") == "out"
                    && event.int("pid") == Int(sender.pid) && event.string("confidence") == "exact"
                    && event.int("uid") == 0 && event.int("len") == 28 + 16
                if ok { named += 1 } else { Issue.record("frame not named \(sender.pid): \(event)") }
            }
            print("issue 13 figure: packet socket frames named: \(named) of \(frames.count)")
            let datagrams = all.filter { $0.int("dport") == 9652 }
            #expect(datagrams.count == 3 && datagrams.allSatisfy { $0.string("hook") == "output" },
                    "an IP socket's datagrams are logged once, at output: \(datagrams)")
            #expect(summary["parse_errors"] == "0", "\(summary)")
            #expect(summary["link_frames"] == String(Self.frames + 2), "\(summary)")
            #expect(summary["non_ip_frames"] == "1", "\(summary)")

            let after = try pair.local.nft(["list", "tables"]).stdout
            #expect(!after.contains("nfowner"), "nfowner's tables are removed on exit: \(after)")
        }

        @Test func theIptablesBackendRefusesPacketSockets() throws {
            let namespace = try TestNamespace("13pkti")
            defer { namespace.close() }
            let result = try Harness.run(Harness.nfowner, ["rules", "install", "--backend", "iptables", "--netns", namespace.name,
                                                           "--packet-sockets", "eth0", "--no-cgroups"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("packet sockets (--packet-sockets, hooks.packet_sockets) need the nft backend"),
                    "\(result.stderr)")
        }

        /// IFACE SRC DST PORT COUNT: a packet socket bound to IFACE writes COUNT Ethernet frames
        /// with an IPv4/UDP packet (SRC → DST:PORT, 16 bytes of payload, broadcast MAC), one more
        /// in an 802.1Q tag, and one ARP request; then keeps its socket open for 0.5 s.
        static let frameSender = #"""
        import socket, struct, sys, time
        iface, src, dst, port, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((iface, 0))
        mac = s.getsockname()[4]
        print("ready", flush=True)
        def ip_packet():
            udp = struct.pack("!HHHH", 40000, port, 8 + 16, 0) + b"nfowner-frame-13"
            header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                                 socket.inet_aton(src), socket.inet_aton(dst))
            return header + udp
        broadcast = b"\xff" * 6
        sent = 0
        for _ in range(count):
            s.send(broadcast + mac + b"\x08\x00" + ip_packet())
            sent += 1
        s.send(broadcast + mac + b"\x81\x00" + struct.pack("!H", 13) + b"\x08\x00" + ip_packet())
        sent += 1
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton(src), b"\0" * 6,
                          socket.inet_aton(dst))
        s.send(broadcast + mac + b"\x08\x06" + arp)
        sent += 1
        time.sleep(0.5)
        print("sent", sent)
        """#
    }
}
