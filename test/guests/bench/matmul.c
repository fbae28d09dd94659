/* matmul.c -- benchmark workload: dense double-precision matrix multiply.
 * Each round fills two 128x128 matrices from a xorshift PRNG and multiplies
 * them twice: the naive i-j-k triple loop and a 32x32-blocked i-k-j loop.
 * Entries are multiples of 1/64 in [-1, 1], so every product and every
 * partial sum is exact in a double: both variants give bit-identical results
 * whatever the summation order, on every ISA, and the checksums are integers.
 *   matmul.wasm [SCALE]   SCALE rounds (default 1). Prints checksums; exits
 *                         0 (1 if the two variants disagree). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define N 128
#define TILE 32

static double A[N][N], B[N][N], C1[N][N], C2[N][N];

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t xorshift64(void) { return xorshift64_next(&rng_state); }

static void fill(double m[N][N]) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) m[i][j] = (double)((int)(xorshift64() % 129) - 64) / 64.0;
}

__attribute__((noinline)) static void matmul_naive(void) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < N; k++) s += A[i][k] * B[k][j];
            C1[i][j] = s;
        }
}

__attribute__((noinline)) static void matmul_blocked(void) {
    memset(C2, 0, sizeof C2);
    for (int ii = 0; ii < N; ii += TILE)
        for (int kk = 0; kk < N; kk += TILE)
            for (int jj = 0; jj < N; jj += TILE)
                for (int i = ii; i < ii + TILE; i++)
                    for (int k = kk; k < kk + TILE; k++) {
                        double a = A[i][k];
                        for (int j = jj; j < jj + TILE; j++) C2[i][j] += a * B[k][j];
                    }
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "matmul");
    uint64_t sum = 0, weighted = 0;
    int64_t trace = 0, maxabs = 0;
    long mismatches = 0;
    for (long r = 0; r < scale; r++) {
        fill(A);
        fill(B);
        matmul_naive();
        matmul_blocked();
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                if (C1[i][j] != C2[i][j]) mismatches++;
                /* C = (integer) / 4096 exactly */
                int64_t v = (int64_t)(C1[i][j] * 4096.0);
                sum += (uint64_t)v;
                weighted = weighted * 1099511628211ull + (uint64_t)v;
                if (i == j) trace += v;
                if (v > maxabs) maxabs = v;
                if (-v > maxabs) maxabs = -v;
            }
    }
    printf("matmul scale=%ld n=%d rounds=%ld\n", scale, N, scale);
    printf("sum=%lld trace=%lld max=%lld (units of 1/4096)\n", (long long)(int64_t)sum, (long long)trace,
           (long long)maxabs);
    printf("hash=%016llx\n", (unsigned long long)weighted);
    printf("naive vs blocked: %s\n", mismatches ? "MISMATCH" : "identical");
    return mismatches ? 1 : 0;
}
