/* udp-blast: 64-byte UDP datagrams to 127.0.0.1:PORT as fast as sendmmsg(2) allows, BATCH a call,
 * for SECONDS, as UID (and the same gid) — a sender faster than nfowner-traffic (one send a
 * datagram), for bench/kernel-counting.sh. Swift's Glibc module does not export sendmmsg.
 *
 *   udp-blast PORT SECONDS UID [BATCH]      prints: mode=blast sent=N bytes=B errors=E elapsed_ns=T
 *
 * Errors from sendmmsg (other than a partial batch) are counted and the loop goes on. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "monotonic.h"

#define MAX_BATCH 1024
#define PAYLOAD 64

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: %s PORT SECONDS UID [BATCH]\n", argv[0]); return 64; }
    long port = strtol(argv[1], NULL, 10);
    double seconds = strtod(argv[2], NULL);
    long uid = strtol(argv[3], NULL, 10);
    long batch = argc == 5 ? strtol(argv[4], NULL, 10) : 64;
    if (port < 1 || port > 65535 || !(seconds > 0 && seconds <= 3600) || uid < 0 || batch < 1 || batch > MAX_BATCH) {
        fprintf(stderr, "PORT 1-65535, SECONDS (0, 3600], UID >= 0, BATCH 1-%d\n", MAX_BATCH);
        return 64;
    }
    if (setgroups(0, NULL) != 0 || setgid((gid_t)uid) != 0 || setuid((uid_t)uid) != 0) { perror("drop privileges"); return 1; }

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) { perror("connect"); return 1; }

    static char payload[PAYLOAD];
    memset(payload, 'x', sizeof(payload));
    static struct iovec vectors[MAX_BATCH];
    static struct mmsghdr messages[MAX_BATCH];
    for (long i = 0; i < batch; i++) {
        vectors[i].iov_base = payload;
        vectors[i].iov_len = sizeof(payload);
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }

    long long start = monotonic_ns(), end = start + (long long)(seconds * 1e9), now = start;
    unsigned long long sent = 0, errors = 0;
    while ((now = monotonic_ns()) < end) {
        int n = sendmmsg(fd, messages, (unsigned int)batch, 0);
        if (n > 0) sent += (unsigned long long)n;
        else if (errno != EINTR) errors++;
    }
    printf("mode=blast sent=%llu bytes=%llu errors=%llu elapsed_ns=%lld\n", sent, sent * PAYLOAD, errors, now - start);
    return 0;
}
