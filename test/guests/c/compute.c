/* compute.c -- nested loops and recursion: 64x64 integer matrix multiply,
 * recursive fib(22), recursive quicksort of 10000 LCG-generated ints,
 * a sieve and a float kernel. Prints checksums; exits 0 (1 if a self-check fails). */
#include <stdint.h>
#include <stdio.h>

#define N 64
#define SORT_N 10000

static uint32_t lcg_state = 12345u;
static uint32_t lcg(void) {
    lcg_state = lcg_state * 1103515245u + 12345u;
    return (lcg_state >> 8) & 0xffffffu;
}

static int32_t A[N][N], B[N][N], C[N][N];
static int32_t data[SORT_N];
static unsigned char composite[100000];

static void matmul(void) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            int32_t s = 0;
            for (int k = 0; k < N; k++)
                s += A[i][k] * B[k][j];
            C[i][j] = s;
        }
}

static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static void quicksort(int32_t *a, int lo, int hi) {
    if (lo >= hi)
        return;
    int32_t pivot = a[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
        while (a[i] < pivot) i++;
        while (a[j] > pivot) j--;
        if (i <= j) {
            int32_t t = a[i]; a[i] = a[j]; a[j] = t;
            i++; j--;
        }
    }
    quicksort(a, lo, j);
    quicksort(a, i, hi);
}

static int ackermann(int m, int n) {
    if (m == 0) return n + 1;
    if (n == 0) return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

int main(void) {
    /* matrix multiply */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            A[i][j] = (int32_t)(lcg() % 201) - 100;
            B[i][j] = (int32_t)(lcg() % 201) - 100;
        }
    matmul();
    uint64_t msum = 0;
    int64_t trace = 0;
    for (int i = 0; i < N; i++) {
        trace += C[i][i];
        for (int j = 0; j < N; j++)
            msum = msum * 31u + (uint32_t)C[i][j];
    }
    printf("matmul %dx%d: trace=%lld checksum=%llu C[7][9]=%d\n", N, N,
           (long long)trace, (unsigned long long)msum, C[7][9]);

    /* recursion */
    printf("fib(22)=%d\n", fib(22));
    printf("ackermann(2,3)=%d ackermann(3,3)=%d\n", ackermann(2, 3), ackermann(3, 3));

    /* quicksort */
    lcg_state = 42u;
    for (int i = 0; i < SORT_N; i++)
        data[i] = (int32_t)lcg() - 0x800000;
    quicksort(data, 0, SORT_N - 1);
    int sorted = 1;
    uint64_t qsum = 0;
    for (int i = 0; i < SORT_N; i++) {
        if (i > 0 && data[i - 1] > data[i]) sorted = 0;
        qsum = qsum * 1000003u + (uint32_t)data[i];
    }
    printf("quicksort n=%d sorted=%d min=%d median=%d max=%d checksum=%llu\n", SORT_N, sorted,
           data[0], data[SORT_N / 2], data[SORT_N - 1], (unsigned long long)qsum);

    /* sieve */
    int primes = 0, last = 0;
    for (int i = 2; i < 100000; i++) {
        if (composite[i]) continue;
        primes++;
        last = i;
        for (int j = 2 * i; j < 100000; j += i) composite[j] = 1;
    }
    printf("primes below 100000: %d (largest %d)\n", primes, last);

    /* floating point: Leibniz series and a small Newton iteration */
    double pi4 = 0.0;
    for (int k = 0; k < 200000; k++)
        pi4 += (k % 2 ? -1.0 : 1.0) / (2.0 * k + 1.0);
    double x = 1.0;
    for (int k = 0; k < 20; k++)
        x = 0.5 * (x + 2.0 / x);
    printf("pi~%.9f sqrt2~%.12f\n", 4.0 * pi4, x);

    if (!sorted || fib(22) != 17711) {
        printf("self-check FAILED\n");
        return 1;
    }
    printf("compute: ok\n");
    return 0;
}
