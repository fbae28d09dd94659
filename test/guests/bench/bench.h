/* Shared by the benchmark workloads: the SCALE argument and the xorshift generators.
 * Everything is static so that each workload stays a single translation unit. */
#ifndef MVVM_BENCH_H
#define MVVM_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* argv[1] as a SCALE from 1 to 1000000 (1 when absent); exits 2 with a usage line otherwise. */
static long bench_scale(int argc, char **argv, const char *name) {
    if (argc < 2) return 1;
    char *end;
    long s = strtol(argv[1], &end, 10);
    if (argv[1][0] == '\0' || *end != '\0' || s < 1 || s > 1000000) {
        fprintf(stderr, "usage: %s [SCALE >= 1]\n", name);
        exit(2);
    }
    return s;
}

/* Marsaglia's xorshift64 (13, 7, 17), advancing *state. */
static inline uint64_t xorshift64_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* Marsaglia's xorshift32 (13, 17, 5), advancing *state. */
static inline uint32_t xorshift32_next(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

#endif
