/*
 * nfqueue-accept: the C reference NFQUEUE consumer for bench/nflog.sh — accept everything.
 *
 * Binds one queue with copy mode meta (no payload copied), receives batches into a large buffer,
 * and after each recv sends one NFQNL_MSG_VERDICT_BATCH (NF_ACCEPT for every id <= the highest id
 * seen). That is the least a userspace verdict can cost; the enforce mode will be measured against it.
 *
 * usage: nfqueue-accept QUEUE [MAXLEN [REPEAT_MARK]]     prints accepted/s once a second on stdout;
 *        on SIGINT/SIGTERM prints to stderr:  accepted=N enobufs=N batches=N verdicts=N
 *        With REPEAT_MARK (e.g. 0x400000) the verdict is NF_REPEAT with that packet mark instead of
 *        NF_ACCEPT: what nfowner enforce answers for "allow" with its own chains installed, so the
 *        two can be compared on the same kernel path (bench/enforce.sh, case c-repeat).
 * Build: cc -O2 -o nfqueue-accept nfqueue-accept.c -lmnl
 * Rules: iptables -A OUTPUT -p udp --dport 9 -j NFQUEUE --queue-num N   (nft's queue statement is
 *        missing in this kernel, CONFIG_NFT_QUEUE off).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#define RECV_BUFFER (512 * 1024)
#define SOCKET_BUFFER (8 * 1024 * 1024)

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static struct nlmsghdr *put_header(char *buf, uint16_t type, uint16_t queue, uint16_t flags)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
    nfg->nfgen_family = AF_UNSPEC;
    nfg->version = NFNETLINK_V0;
    nfg->res_id = htons(queue);
    return nlh;
}

static int configure(struct mnl_socket *nl, uint16_t queue, uint32_t maxlen)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = put_header(buf, NFQNL_MSG_CONFIG, queue, NLM_F_ACK);
    nlh->nlmsg_seq = (uint32_t)time(NULL);
    struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND };
    mnl_attr_put(nlh, NFQA_CFG_CMD, sizeof(cmd), &cmd);
    struct nfqnl_msg_config_params params = { .copy_range = 0, .copy_mode = NFQNL_COPY_META };
    mnl_attr_put(nlh, NFQA_CFG_PARAMS, sizeof(params), &params);
    mnl_attr_put_u32(nlh, NFQA_CFG_QUEUE_MAXLEN, htonl(maxlen));
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) { perror("sendto"); return -1; }
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
    if (n < 0) { perror("recv ack"); return -1; }
    if (mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(nl), NULL, NULL) < 0) {
        perror("bind queue");
        return -1;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) { fprintf(stderr, "usage: %s QUEUE [MAXLEN [REPEAT_MARK]]\n", argv[0]); return 64; }
    long q = strtol(argv[1], NULL, 10);
    long maxlen = argc >= 3 ? strtol(argv[2], NULL, 10) : 1024;
    int repeat = argc == 4;
    uint32_t repeat_mark = repeat ? (uint32_t)strtoul(argv[3], NULL, 0) : 0;
    if (q < 0 || q > 65535 || maxlen < 1) { fprintf(stderr, "bad queue or maxlen\n"); return 64; }

    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
    if (!nl) { perror("socket"); return 1; }
    int fd = mnl_socket_get_fd(nl);
    int rcvbuf = SOCKET_BUFFER;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) perror("SO_RCVBUFFORCE");
    int one = 1;   /* ENOBUFS on the verdict path is not worth reporting per message */
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) { perror("bind"); return 1; }
    if (configure(nl, (uint16_t)q, (uint32_t)maxlen) < 0) return 1;
    fprintf(stderr, "ready queue=%ld portid=%u\n", q, mnl_socket_get_portid(nl));

    static char buf[RECV_BUFFER] __attribute__((aligned(8)));
    char vbuf[256] __attribute__((aligned(8)));
    uint64_t accepted = 0, enobufs = 0, batches = 0, verdicts = 0, last_accepted = 0;
    const uint16_t packet_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
    double last_print = now_s();

    while (!stop) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, 1000);
        double t = now_s();
        if (t - last_print >= 1.0) {
            printf("accepted/s=%.0f\n", (accepted - last_accepted) / (t - last_print));
            fflush(stdout);
            last_accepted = accepted;
            last_print = t;
        }
        if (r <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            if (errno == ENOBUFS) { enobufs++; continue; }
            perror("recv");
            break;
        }
        batches++;
        int len = (int)n;
        uint32_t max_id = 0;
        int any = 0;
        for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_type != packet_type) continue;
            const struct nlattr *attr;
            mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
                if (mnl_attr_get_type(attr) != NFQA_PACKET_HDR
                    || mnl_attr_get_payload_len(attr) < sizeof(struct nfqnl_msg_packet_hdr)) continue;
                const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr);
                uint32_t id = ntohl(ph->packet_id);
                if (!any || id > max_id) max_id = id;
                any = 1;
                accepted++;
                break;
            }
        }
        if (!any) continue;
        /* One verdict for the whole batch: accept every id <= max_id. */
        struct nlmsghdr *v = put_header(vbuf, NFQNL_MSG_VERDICT_BATCH, (uint16_t)q, 0);
        struct nfqnl_msg_verdict_hdr vh = { .verdict = htonl(repeat ? NF_REPEAT : NF_ACCEPT), .id = htonl(max_id) };
        mnl_attr_put(v, NFQA_VERDICT_HDR, sizeof(vh), &vh);
        if (repeat) mnl_attr_put_u32(v, NFQA_MARK, htonl(repeat_mark));
        if (mnl_socket_sendto(nl, v, v->nlmsg_len) < 0) { perror("verdict"); break; }
        verdicts++;
    }
    fprintf(stderr, "accepted=%llu enobufs=%llu batches=%llu verdicts=%llu\n", (unsigned long long)accepted,
            (unsigned long long)enobufs, (unsigned long long)batches, (unsigned long long)verdicts);
    mnl_socket_close(nl);
    return 0;
}
