#ifndef NFOWNER_CNETFILTER_SHIM_H
#define NFOWNER_CNETFILTER_SHIM_H
/* Order matters: libc socket headers first, then the kernel UAPI headers, then libmnl.
 * Otherwise in_addr is defined twice, IFNAMSIZ becomes ambiguous, and old bundled kernel
 * headers can win the include guard and silently drop newer constants. */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/inotify.h>
#include <netinet/in.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <pthread.h>
#include <pwd.h>
#include <grp.h>
#include <errno.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <libmnl/libmnl.h>

/* Macros and globals Swift cannot import, as prefixed functions. */
static inline int nfowner_errno(void) { return errno; }
static inline void nfowner_set_errno(int value) { errno = value; }
static inline int nfowner_mnl_socket_buffer_size(void) { return MNL_SOCKET_BUFFER_SIZE; }

/* setns is declared only under _GNU_SOURCE, which the Swift Glibc module is not built with. */
extern int setns(int fd, int nstype);
extern int pthread_setname_np(pthread_t thread, const char *name);
static inline void nfowner_name_thread(pthread_t thread, const char *name) { (void)pthread_setname_np(thread, name); }
static inline int nfowner_enter_network_namespace(int fd) { return setns(fd, 0x40000000 /* CLONE_NEWNET */); }
/* ppoll is _GNU_SOURCE too: poll with a nanosecond timeout (NULL: none), no signal mask change. */
extern int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *sigmask);
static inline int nfowner_poll_nanoseconds(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout) {
    return ppoll(fds, nfds, timeout, NULL);
}
/* setpriority(PRIO_PROCESS, tid, nice) for the calling thread only: Linux applies a process
 * priority to the one task (thread) a tid names. Returns 0 or -1 with errno. */
/* O_DIRECT is behind _GNU_SOURCE, which the Glibc module is built without: the kernel's value
 * for this architecture (asm/fcntl.h). */
static inline int nfowner_o_direct(void) {
#if defined(__aarch64__) || defined(__arm__)
    return 0200000;
#elif defined(__powerpc__) || defined(__powerpc64__)
    return 0400000;
#elif defined(__mips__)
    return 0100000;
#else
    return 040000;
#endif
}
static inline int nfowner_set_thread_niceness(int niceness) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness);
}

#endif
