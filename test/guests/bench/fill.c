/* Fills MIB MiB of memory with pseudo-random data, stops, and checks a sample once resumed.
 *
 *   fill MIB [READYFILE]
 *
 * What bench/src/bin/latency.rs checkpoints with mvvm (compiled to wasm) and artifact/criu.sh with
 * CRIU (compiled natively), so that both checkpoint the same thing: a xorshift64 sequence
 * (x = 88172645463325252; x ^= x << 13; x ^= x >> 7; x ^= x << 17), stored 8 bytes at a time over
 * MIB MiB, then a call to `stop`, then the sum of one u64 per 64 KiB (wrapping), which must be
 * nonzero.
 *
 * It prints "ready <sum>" before it stops and "resumed <sum>" after, so a caller can tell that
 * the memory came back intact (the two sums must be equal). Exit status: 0 on success, 1 if the
 * sample sums to zero, 2 on bad arguments or no memory, 3 if not resumed within 10 minutes of
 * waiting (native build).
 *
 * Native build (gcc -O2): `stop` writes this process's pid to READYFILE (if given; written to a
 * temporary name and renamed, so the file appears complete) and waits for SIGUSR1; a
 * checkpointer (criu dump) takes the process there, and after a restore the caller sends SIGUSR1.
 *
 * wasm32-wasi build (clang --target=wasm32-wasi): `stop` does nothing observable; mvvm's
 * `-f stop` trigger checkpoints at its entry (found by name in the name section). READYFILE is
 * ignored.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef __wasi__
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#endif

static volatile uint32_t stops; /* a side effect the optimizer cannot drop */

#ifdef __wasi__
__attribute__((noinline)) void stop(const char *ready) {
    (void)ready;
    stops++;
    __asm__ volatile("" ::: "memory");
}
#else
__attribute__((noinline)) void stop(const char *ready) {
    stops++;
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    /* Blocked, so that it stays pending for sigtimedwait: no wakeup is lost. */
    sigprocmask(SIG_BLOCK, &usr1, &old);
    if (ready) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", ready);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0 || rename(tmp, ready) != 0) {
            perror("fill: ready file");
            exit(2);
        }
    }
    /* Wait for SIGUSR1, at most 10 minutes at a time (a restore interrupts the wait, which then
     * starts again from the restored process). */
    for (;;) {
        struct timespec limit = {600, 0};
        int r = sigtimedwait(&usr1, NULL, &limit);
        if (r == SIGUSR1)
            break;
        if (r < 0 && errno == EAGAIN) {
            fprintf(stderr, "fill: not resumed within 10 minutes\n");
            exit(3);
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}
#endif

static uint64_t check(const uint64_t *m, size_t bytes) {
    uint64_t s = 0;
    for (size_t p = 0; p < bytes - 8; p += 65536)
        s += m[p / 8];
    return s;
}

int main(int argc, char **argv) {
    char *end;
    unsigned long mib = argc > 1 ? strtoul(argv[1], &end, 10) : 0;
    if (argc < 2 || argc > 3 || *end || mib == 0 || mib > 4095) {
        fprintf(stderr, "usage: fill MIB [READYFILE]   (1 <= MIB <= 4095)\n");
        return 2;
    }
    size_t bytes = (size_t)mib << 20;
    uint64_t *m = malloc(bytes);
    if (!m) {
        fprintf(stderr, "fill: cannot allocate %lu MiB\n", mib);
        return 2;
    }
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < bytes / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m[i] = x;
    }
    printf("ready %016" PRIx64 "\n", check(m, bytes));
    fflush(stdout);
    stop(argc > 2 ? argv[2] : NULL);
    uint64_t s = check(m, bytes);
    printf("resumed %016" PRIx64 "\n", s);
    fflush(stdout);
    free(m);
    return s ? 0 : 1;
}
