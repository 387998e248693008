#!/usr/bin/env python3
"""Record raw NFLOG netlink receive buffers from the running kernel as test fixtures.

Usage (as root): scripts/record-nflog-fixtures.py [OUTPUT_DIR]
OUTPUT_DIR defaults to Tests/NetlinkWireTests/Fixtures next to this script.

Everything happens in a private network namespace nfo-rec-<pid> on loopback: an nft table logs
output packets to NFLOG group 7 (prefix "nfowner") and inbound UDP to port 9999 (no prefix).
Each *.bin file is exactly one recv() buffer; README.md lists what produced each file and what it
decodes to (decoded here by an independent Python decoder, so the Swift tests cross-check it).
The namespace is deleted on every exit path.

Python 3.9+ stdlib only; setns goes through ctypes because os.setns needs 3.12.
"""

import ctypes
import ctypes.util
import os
import signal
import socket
import struct
import subprocess
import sys
import time

NETLINK_NETFILTER = 12
GROUP = 7
SNAPLEN = 128
NOBODY = 65534
CLONE_NEWNET = 0x40000000

# Netlink / nfnetlink_log constants (see Sources/NetlinkWire for the Swift names).
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NFLOG_PACKET = 4 << 8 | 0
NFLOG_CONFIG = 4 << 8 | 1
CFG_CMD, CFG_MODE, CFG_NLBUFSIZ, CFG_TIMEOUT, CFG_QTHRESH, CFG_FLAGS = 1, 2, 3, 4, 5, 6
CMD_BIND = 1
COPY_PACKET = 2
F_SEQ = 1

RULESET = f"""
table inet nforec {{
    chain out {{
        type filter hook output priority 0;
        log group {GROUP} snaplen {SNAPLEN} prefix "nfowner"
    }}
    chain in {{
        type filter hook input priority 0;
        udp dport 9999 log group {GROUP} snaplen {SNAPLEN}
    }}
}}
"""


def run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


# --- encoding -------------------------------------------------------------------------------

def attr(kind, value):
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def config_request(seq, group, *attrs):
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, group) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), NFLOG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


# --- decoding (independent of the Swift decoder) ---------------------------------------------

ATTR_NAMES = {1: "PACKET_HDR", 2: "MARK", 3: "TIMESTAMP", 4: "IFINDEX_INDEV", 5: "IFINDEX_OUTDEV",
              8: "HWADDR", 9: "PAYLOAD", 10: "PREFIX", 11: "UID", 12: "SEQ", 13: "SEQ_GLOBAL",
              14: "GID", 15: "HWTYPE", 16: "HWHEADER", 17: "HWLEN"}


def describe(buf):
    """One line per message: what a correct decoder must report."""
    lines, pos = [], 0
    while pos + 16 <= len(buf):
        length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", buf, pos)
        msg = buf[pos:pos + length]
        if kind == NLMSG_DONE:
            lines.append(f"NLMSG_DONE (nlmsg_len {length}, flags {flags:#x})")
        elif kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", msg, 16)
            lines.append(f"NLMSG_ERROR errno {-err} ({'ACK' if err == 0 else os.strerror(-err)}), "
                         f"nlmsg_seq {seq}, nlmsg_len {length}")
        elif kind == NFLOG_PACKET:
            family, _version, group = struct.unpack_from("!BBH", msg, 16)
            fields = [f"family {family}", f"group {group}", f"flags {flags:#x}"]
            apos = 20
            while apos + 4 <= len(msg):
                alen, atype = struct.unpack_from("=HH", msg, apos)
                value = msg[apos + 4:apos + alen]
                atype &= 0x3FFF
                name = ATTR_NAMES.get(atype, str(atype))
                if atype == 1:
                    proto, hook = struct.unpack_from("!HB", value)
                    fields.append(f"hw_protocol {proto:#06x} hook {hook}")
                elif atype == 10:
                    text = value.split(b"\0")[0].decode()
                    fields.append(f"prefix {text!r}")
                elif atype == 9:
                    fields.append(f"captured {len(value)}")
                elif atype == 8:
                    (hlen,) = struct.unpack_from("!H", value)
                    fields.append(f"HWADDR len {hlen} {value[4:4 + hlen].hex(':')}")
                elif atype == 16:
                    fields.append(f"HWHEADER {len(value)} bytes")
                elif len(value) == 4:
                    fields.append(f"{name} {struct.unpack('!I', value)[0]}")
                elif len(value) == 2:
                    fields.append(f"{name} {struct.unpack('!H', value)[0]}")
                else:
                    fields.append(f"{name} ({len(value)} bytes)")
                apos += (alen + 3) & ~3
            lines.append("packet: " + ", ".join(fields))
        else:
            lines.append(f"type {kind}")
        pos += (length + 3) & ~3
    return lines


# --- namespace plumbing ---------------------------------------------------------------------

def enter_netns(name):
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def as_nobody(action):
    """Runs action() in a forked child with uid/gid 65534; sockets it opens carry that owner."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            action()
        except BaseException as error:  # the child must never return into the parent's code
            print(f"child: {error!r}", file=sys.stderr)
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("traffic child failed")


# --- recording ------------------------------------------------------------------------------

class Recorder:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.readme = []
        self.seq = 100
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, 0))

    def request(self, sock, *attrs):
        """Sends one config request; returns the raw reply buffer (an NLMSG_ERROR)."""
        self.seq += 1
        sock.send(config_request(self.seq, GROUP, *attrs))
        sock.settimeout(2)
        return sock.recv(65536)

    def configure(self, *attrs):
        reply = self.request(self.sock, *attrs)
        (err,) = struct.unpack_from("=i", reply, 16)
        if err != 0:
            raise OSError(-err, f"NFLOG config failed: {os.strerror(-err)}")
        return reply

    def drain(self, quiet=0.4):
        """All buffers that arrive until `quiet` seconds pass without one."""
        buffers = []
        self.sock.settimeout(quiet)
        while True:
            try:
                data, _, flags, _ = self.sock.recvmsg(1 << 20)
            except socket.timeout:
                return buffers
            if flags & socket.MSG_TRUNC:
                raise RuntimeError("receive buffer truncated")
            buffers.append(data)

    def save(self, name, data, what):
        with open(os.path.join(self.out_dir, name), "wb") as out:
            out.write(data)
        self.readme.append(f"## {name}\n\n{what}\n\n{len(data)} bytes. Decodes to:\n")
        self.readme.extend(f"- {line}" for line in describe(data))
        self.readme.append("")
        print(f"{name}: {len(data)} bytes", file=sys.stderr)

    def pick(self, buffers, predicate, what):
        for data in buffers:
            if predicate(describe(data)):
                return data
        raise RuntimeError(f"no buffer for {what}; got: {[describe(b) for b in buffers]}")


def has(*needles):
    return lambda lines: all(any(n in line for line in lines) for n in needles)


def lacks(needle):
    return lambda lines: all(needle not in line for line in lines)


def both(a, b):
    return lambda lines: a(lines) and b(lines)


def record(ns, out_dir):
    run("ip", "-n", ns, "link", "set", "lo", "up")
    run("nsenter", f"--net=/run/netns/{ns}", "sysctl", "-q", "-w",
        "net.ipv4.ping_group_range=0 2147483647")
    subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "nft", "-f", "-"],
                   input=RULESET.encode(), check=True)
    enter_netns(ns)
    time.sleep(0.5)  # let IPv6 ::1 settle (no DAD on loopback, but be safe)

    rec = Recorder(out_dir)
    ack = rec.configure(attr(CFG_CMD, struct.pack("B", CMD_BIND)))
    rec.save("ack-bind.bin", ack,
             f"Reply to an NFULNL_CFG_CMD_BIND request for group {GROUP} (nlmsg_seq {rec.seq}, "
             "NLM_F_REQUEST|NLM_F_ACK): an NLMSG_ERROR with error 0, i.e. an ACK.")
    rec.configure(attr(CFG_MODE, struct.pack("!IBB", SNAPLEN, COPY_PACKET, 0)))
    rec.configure(attr(CFG_FLAGS, struct.pack("!H", F_SEQ)))
    rec.configure(attr(CFG_QTHRESH, struct.pack("!I", 1)))
    rec.configure(attr(CFG_TIMEOUT, struct.pack("!I", 10)))

    # A second socket binding the same group: the kernel refuses with EPERM.
    other = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    other.bind((0, 0))
    eperm = rec.request(other, attr(CFG_CMD, struct.pack("B", CMD_BIND)))
    other.close()
    rec.save("error-eperm-second-bind.bin", eperm,
             f"Reply to a second socket's BIND of group {GROUP} (nlmsg_seq {rec.seq}): NLMSG_ERROR "
             "-EPERM, followed by the echoed request.")
    rec.drain(0.2)

    # UDP over IPv4 from uid/gid 65534, 5 payload bytes, to a bound port (no ICMP error).
    sink4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink4.bind(("127.0.0.1", 9000))

    def udp4():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"hello", ("127.0.0.1", 9000))
    as_nobody(udp4)
    got = rec.drain()
    rec.save("udp4-nobody.bin", rec.pick(got, has("UID 65534", "captured 33"), "udp4"),
             "UDP/IPv4 127.0.0.1 -> 127.0.0.1:9000, payload \"hello\" (5 bytes), sent by a process with "
             "uid/gid 65534; output hook, rule prefix \"nfowner\"; qthresh 1 so one message per buffer.")

    # UDP over IPv6, 200 payload bytes: the capture is cut at the snaplen of 128.
    sink6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sink6.bind(("::1", 9000))

    def udp6():
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.sendto(b"x" * 200, ("::1", 9000))
    as_nobody(udp6)
    got = rec.drain()
    rec.save("udp6-nobody-snaplen.bin", rec.pick(got, has("hw_protocol 0x86dd", "UID 65534"), "udp6"),
             "UDP/IPv6 ::1 -> ::1:9000 with 200 payload bytes (248-byte packet) from uid/gid 65534; "
             f"the kernel copies only snaplen {SNAPLEN} bytes.")

    # TCP connect + close from 65534 to a listener opened by root.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 9001))
    listener.listen(4)

    def tcp():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.connect(("127.0.0.1", 9001))
    as_nobody(tcp)
    conn, _ = listener.accept()
    conn.close()
    got = rec.drain()
    syn = got[0]
    rec.save("tcp-syn-nobody.bin", syn,
             "First packet of a TCP connect() from uid/gid 65534 to 127.0.0.1:9001 (the SYN, 60 bytes "
             "with options); output hook.")
    rec.save("tcp-synack-no-owner.bin",
             rec.pick(got[1:], both(has("captured 60"), lacks("UID")), "syn-ack"),
             "The SYN-ACK answering it: owned by a request socket, so no UID/GID attributes.")

    # Ping socket ICMP echo from 65534; the echo reply is made by the kernel (no owner).
    def ping():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP) as s:
            s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + b"ping", ("127.0.0.1", 0))
            s.settimeout(1)
            s.recv(64)
    as_nobody(ping)
    got = rec.drain()
    rec.save("icmp-echo-nobody.bin", rec.pick(got, has("UID 65534"), "ping"),
             "ICMP echo request from an unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP) of "
             "uid/gid 65534, 4 data bytes (32-byte packet).")

    # A kernel-made packet: UDP to a closed port -> ICMP port unreachable, no owner.
    def closed_port():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"knock", ("127.0.0.1", 9))
    as_nobody(closed_port)
    got = rec.drain()
    rec.save("icmp-unreachable-kernel.bin",
             rec.pick(got, both(has("captured 61"), lacks("UID")), "icmp unreachable"),
             "ICMP port unreachable made by the kernel after a UDP datagram to closed port 9 (20 IP + "
             "8 ICMP + the 33-byte offending datagram = 61 bytes); no socket, so no UID/GID.")

    # Input hook: the in-chain rule has no prefix (nft sends an empty NFULA_PREFIX).
    sink9999 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink9999.bind(("127.0.0.1", 9999))

    def udp_in():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"inbound", ("127.0.0.1", 9999))
    as_nobody(udp_in)
    got = rec.drain()
    rec.save("udp4-input-no-prefix.bin", rec.pick(got, has("hook 1"), "input"),
             "The same kind of datagram (7 bytes of payload, 35-byte packet) seen by the input-chain rule "
             "`udp dport 9999 log group 7 snaplen 128` (no prefix, hook 1 = NF_INET_LOCAL_IN). Inbound "
             "on loopback: no UID/GID (no early demux), but IFINDEX_INDEV and the link-layer "
             "HWTYPE/HWLEN/HWHEADER/HWADDR attributes.")

    # Batch: threshold 5, 5 datagrams sent back to back -> one buffer, 5 messages + NLMSG_DONE.
    rec.configure(attr(CFG_TIMEOUT, struct.pack("!I", 500)))
    rec.configure(attr(CFG_QTHRESH, struct.pack("!I", 5)))

    def burst():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for index in range(5):
                s.sendto(bytes([index]) * (index + 1), ("127.0.0.1", 9000))
    as_nobody(burst)
    got = rec.drain(1.0)
    rec.save("batch-5-udp4.bin", rec.pick(got, has("NLMSG_DONE"), "batch"),
             "Queue threshold 5: five UDP/IPv4 datagrams from uid/gid 65534 to 127.0.0.1:9000 with "
             "1..5 payload bytes (29..33-byte packets), delivered in one recv() buffer as five "
             "packet messages followed by NLMSG_DONE.")
    for s in (sink4, sink6, listener, sink9999, rec.sock):
        s.close()
    return rec.readme


def main():
    if os.geteuid() != 0:
        sys.exit("needs root: creates a network namespace and an nft table")
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "Tests", "NetlinkWireTests", "Fixtures")
    os.makedirs(out_dir, exist_ok=True)
    ns = f"nfo-rec-{os.getpid()}"
    # SIGTERM/SIGHUP become SystemExit so the finally below still deletes the namespace.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    run("ip", "netns", "add", ns)
    try:
        readme = record(ns, out_dir)
    finally:
        # The namespace dies with its last reference: our setns'd thread exits with us, and
        # `ip netns del` drops the bind mount.
        subprocess.run(["ip", "netns", "del", ns], check=False)
    uname = os.uname()
    header = [
        "# NFLOG fixtures",
        "",
        "Raw netlink receive buffers recorded from a real kernel by `scripts/record-nflog-fixtures.py`",
        f"(kernel {uname.release}, {uname.machine}, host byte order {sys.byteorder}-endian). Each `.bin` is",
        "exactly one recv() buffer from a NETLINK_NETFILTER socket bound to NFLOG group 7, in a private",
        "network namespace on loopback, with this nft table:",
        "",
        "```",
        RULESET.strip(),
        "```",
        "",
        "Group config: copy mode packet with range 128, flags NFULNL_CFG_F_SEQ, queue threshold 1 and",
        "timeout 10 (1/100 s) for the single-packet files, threshold 5 for the batch. NFULA_SEQ counts",
        "every message logged to the group since the bind, starting at 0 (files skip the numbers of",
        "packets not kept, e.g. the TCP ACK/FIN and ICMP echo reply). `family` 2 is IPv4, 10 is IPv6;",
        "`hook` 1 is input, 3 is output. No TIMESTAMP at output (the kernel does not send it there).",
        "Batch messages and their NLMSG_DONE carry nlmsg_flags 0 (no NLM_F_MULTI) and nlmsg_seq 0; the",
        "NLMSG_DONE holds an nfgenmsg with res_id = group. An ACK echoes only the request's 16-byte",
        "header; an error echoes the whole request. nlmsg_pid of replies is the socket's port id.",
        "The lines below were decoded by the recording script's own Python decoder.",
        "",
    ]
    with open(os.path.join(out_dir, "README.md"), "w") as out:
        out.write("\n".join(header + readme) + "\n")


if __name__ == "__main__":
    main()
