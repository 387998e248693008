/*
 * nflog-count: the C reference NFLOG consumer for bench/nflog.sh.
 *
 * The least work a consumer can do: bind one group, receive batches into a large buffer, walk the
 * netlink messages, count NFULNL_MSG_PACKET and the gaps in NFULA_SEQ, count ENOBUFS. No parsing of
 * the packet, no output per message. Its CPU per message is the bar nfowner is measured against.
 *
 * Group configuration (one NFULNL_MSG_CONFIG, acknowledged), the same as nfowner's defaults:
 *   copy mode packet, copy range 128, NFULNL_CFG_F_SEQ, nlbufsiz 131072, qthresh 64, timeout 10 (0.1 s)
 * Socket: SO_RCVBUFFORCE 8 MiB; receive buffer 512 KiB (>= nlbufsiz, batches can exceed it).
 *
 * usage: nflog-count GROUP [PACE_US]  exits on SIGINT/SIGTERM, printing to stderr:
 *        received=N lost=N enobufs=N truncated=N batches=N wakeups=N
 *
 * Without PACE_US (the reference): one blocking recv per batch, waking for each. With it, the
 * pacing rule of nfowner's receive loop (`coalesce_us`, Sources/Monitor/WakeCoalescer.swift), for a
 * like-for-like comparison: take what is queued without blocking; when nothing is, and the last
 * wakeup read something and either ended a pause or came less than PACE_US after the one before
 * it (under load), sleep out the rest of PACE_US since that wakeup; otherwise block in recv.
 * Build: cc -O2 -o nflog-count nflog-count.c -lmnl
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include "monotonic.h"

#define RECV_BUFFER (512 * 1024)
#define SOCKET_BUFFER (8 * 1024 * 1024)

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int configure(struct mnl_socket *nl, uint16_t group)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = (uint32_t)time(NULL);
    struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
    nfg->nfgen_family = AF_UNSPEC;
    nfg->version = NFNETLINK_V0;
    nfg->res_id = htons(group);

    struct nfulnl_msg_config_cmd cmd = { .command = NFULNL_CFG_CMD_BIND };
    mnl_attr_put(nlh, NFULA_CFG_CMD, sizeof(cmd), &cmd);
    struct nfulnl_msg_config_mode mode = { .copy_range = htonl(128), .copy_mode = NFULNL_COPY_PACKET };
    mnl_attr_put(nlh, NFULA_CFG_MODE, sizeof(mode), &mode);
    mnl_attr_put_u16(nlh, NFULA_CFG_FLAGS, htons(NFULNL_CFG_F_SEQ));
    mnl_attr_put_u32(nlh, NFULA_CFG_NLBUFSIZ, htonl(131072));
    mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(64));
    mnl_attr_put_u32(nlh, NFULA_CFG_TIMEOUT, htonl(10));

    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) { perror("sendto"); return -1; }
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
    if (n < 0) { perror("recv ack"); return -1; }
    if (mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(nl), NULL, NULL) < 0) {
        perror("bind group");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) { fprintf(stderr, "usage: %s GROUP [PACE_US]\n", argv[0]); return 64; }
    long g = strtol(argv[1], NULL, 10);
    if (g < 0 || g > 65535) { fprintf(stderr, "group must be 0…65535\n"); return 64; }
    long pace_us = argc == 3 ? strtol(argv[2], NULL, 10) : 0;
    if (pace_us < 0 || pace_us > 100000) { fprintf(stderr, "PACE_US must be 0…100000\n"); return 64; }
    const long long pace_ns = pace_us * 1000LL;

    struct sigaction sa = { .sa_handler = on_signal };   /* no SA_RESTART: recv returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
    if (!nl) { perror("socket"); return 1; }
    int fd = mnl_socket_get_fd(nl);
    int rcvbuf = SOCKET_BUFFER;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) perror("SO_RCVBUFFORCE");
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) { perror("bind"); return 1; }
    if (configure(nl, (uint16_t)g) < 0) return 1;
    fprintf(stderr, "ready group=%ld portid=%u\n", g, mnl_socket_get_portid(nl));

    static char buf[RECV_BUFFER] __attribute__((aligned(8)));
    uint64_t received = 0, lost = 0, enobufs = 0, truncated = 0, batches = 0, wakeups = 0;
    long long last_wake = 0, previous_wake = 0;
    int read_since_wake = 0, woke_from_pause = 0;
    uint32_t last_seq = 0;
    int have_seq = 0;
    const uint16_t packet_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;

    while (!stop) {
        ssize_t n;
        if (pace_ns == 0) {
            wakeups++;
            n = recv(fd, buf, sizeof(buf), MSG_TRUNC);
        } else if ((n = recv(fd, buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT)) < 0 && errno == EAGAIN) {
            wakeups++;
            long long since = monotonic_ns() - last_wake;
            int loaded = woke_from_pause || (previous_wake != 0 && last_wake - previous_wake < pace_ns);
            if (read_since_wake && loaded && since >= 0 && since < pace_ns) {
                struct timespec rest = { 0, (long)(pace_ns - since) };
                nanosleep(&rest, NULL);
                previous_wake = last_wake;
                last_wake = monotonic_ns();
                woke_from_pause = 1;
                read_since_wake = 0;
                continue;
            }
            n = recv(fd, buf, sizeof(buf), MSG_TRUNC);
            previous_wake = last_wake;
            last_wake = monotonic_ns();
            woke_from_pause = 0;
            read_since_wake = n >= 0 || errno == ENOBUFS;
        } else if (n >= 0 || errno == ENOBUFS) {
            read_since_wake = 1;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOBUFS) { enobufs++; continue; }
            perror("recv");
            break;
        }
        batches++;
        if ((size_t)n > sizeof(buf)) { truncated++; n = sizeof(buf); }
        int len = (int)n;
        for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_type != packet_type) continue;
            received++;
            /* Walk the attributes by hand for NFULA_SEQ: count only, nothing else is read. */
            const struct nlattr *attr;
            mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
                if (mnl_attr_get_type(attr) != NFULA_SEQ || mnl_attr_get_payload_len(attr) < 4) continue;
                uint32_t seq = ntohl(mnl_attr_get_u32(attr));
                if (have_seq && seq != last_seq + 1) lost += (uint32_t)(seq - last_seq - 1);
                last_seq = seq;
                have_seq = 1;
                break;
            }
        }
    }
    fprintf(stderr, "received=%llu lost=%llu enobufs=%llu truncated=%llu batches=%llu wakeups=%llu\n",
            (unsigned long long)received, (unsigned long long)lost, (unsigned long long)enobufs,
            (unsigned long long)truncated, (unsigned long long)batches, (unsigned long long)wakeups);
    mnl_socket_close(nl);   /* closing the socket unbinds the group */
    return 0;
}
