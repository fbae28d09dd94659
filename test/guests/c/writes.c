/* writes.c -- twenty lines, each its own write(2) (one fd_write), with a little work between
 * them. Built with DIVERGE_AT=N (writes_diverge.c), the Nth line differs: a variant that parts
 * from the master at its Nth write, for the multi-variant tests. Exits 0. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef DIVERGE_AT
#define DIVERGE_AT 0
#endif

static unsigned work(unsigned seed) {
    for (int i = 0; i < 20000; i++)
        seed = seed * 1664525u + 1013904223u;
    return seed;
}

int main(void) {
    unsigned seed = 1;
    for (int n = 1; n <= 20; n++) {
        seed = work(seed);
        char line[64];
        int len = snprintf(line, sizeof line, "line %d: %08x\n", n, n == DIVERGE_AT ? ~seed : seed);
        if (write(1, line, (size_t)len) != len)
            return 1;
    }
    return 0;
}
