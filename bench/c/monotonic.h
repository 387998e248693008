/* The monotonic clock in nanoseconds, shared by the C helpers in bench/c. */
#ifndef NFO_BENCH_MONOTONIC_H
#define NFO_BENCH_MONOTONIC_H

#include <time.h>

static inline long long monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000LL + now.tv_nsec;
}

#endif
