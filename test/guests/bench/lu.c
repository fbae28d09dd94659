/* lu.c -- benchmark workload: dense linear algebra and a stencil.
 * Each round
 *  - LU-decomposes a generated 160x160 matrix with partial pivoting (row
 *    swaps), then solves A x = b for b = A * x_true with an integer x_true by
 *    forward and back substitution;
 *  - runs 40 Jacobi sweeps of the 2D Laplace stencil on a 130x130 grid with
 *    fixed integer boundary values (the grid carries over between rounds).
 * Only +, -, *, / and fabs are used (no libm), so results are the same IEEE
 * doubles everywhere. Printed: the pivot sequence as an integer hash, the
 * solution rounded to integers, whether it is within 1e-6 of x_true, and the
 * Jacobi grid sum with 6 decimals.
 *   lu.wasm [SCALE]   SCALE rounds (default 1). Exits 0 (1 if a solve is off). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define N 160
#define G 130 /* grid including the boundary */
#define SWEEPS 40

static double M[N][N], Orig[N][N], b[N], x[N], y[N];
static int perm[N];
static int xtrue[N];
static double grid[2][G][G];

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t xorshift64(void) { return xorshift64_next(&rng_state); }

static double dabs(double v) { return v < 0 ? -v : v; }

/* in-place LU with partial pivoting; returns a hash of the pivot rows */
__attribute__((noinline)) static uint32_t lu_decompose(void) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < N; i++) perm[i] = i;
    for (int k = 0; k < N; k++) {
        int p = k;
        double best = dabs(M[k][k]);
        for (int i = k + 1; i < N; i++)
            if (dabs(M[i][k]) > best) {
                best = dabs(M[i][k]);
                p = i;
            }
        h = (h ^ (uint32_t)p) * 16777619u;
        if (p != k) {
            for (int j = 0; j < N; j++) {
                double t = M[k][j];
                M[k][j] = M[p][j];
                M[p][j] = t;
            }
            int t = perm[k];
            perm[k] = perm[p];
            perm[p] = t;
        }
        double inv = 1.0 / M[k][k];
        for (int i = k + 1; i < N; i++) {
            double l = M[i][k] * inv;
            M[i][k] = l;
            for (int j = k + 1; j < N; j++) M[i][j] -= l * M[k][j];
        }
    }
    return h;
}

__attribute__((noinline)) static void lu_solve(void) {
    for (int i = 0; i < N; i++) { /* L y = P b */
        double s = b[perm[i]];
        for (int j = 0; j < i; j++) s -= M[i][j] * y[j];
        y[i] = s;
    }
    for (int i = N - 1; i >= 0; i--) { /* U x = y */
        double s = y[i];
        for (int j = i + 1; j < N; j++) s -= M[i][j] * x[j];
        x[i] = s / M[i][i];
    }
}

__attribute__((noinline)) static int jacobi(int cur) {
    for (int s = 0; s < SWEEPS; s++) {
        double(*src)[G] = grid[cur];
        double(*dst)[G] = grid[cur ^ 1];
        for (int i = 1; i < G - 1; i++)
            for (int j = 1; j < G - 1; j++)
                dst[i][j] = 0.25 * (src[i - 1][j] + src[i + 1][j] + src[i][j - 1] + src[i][j + 1]);
        cur ^= 1;
    }
    return cur;
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "lu");

    /* boundary: integer temperatures, the same in both buffers */
    for (int k = 0; k < G; k++) {
        double top = (double)(k % 17) * 6.0, left = 100.0 - (double)(k % 11) * 3.0;
        grid[0][0][k] = grid[1][0][k] = top;
        grid[0][G - 1][k] = grid[1][G - 1][k] = 25.0;
        grid[0][k][0] = grid[1][k][0] = left;
        grid[0][k][G - 1] = grid[1][k][G - 1] = 0.0;
    }

    uint32_t pivots = 0;
    int64_t xsum = 0;
    long bad = 0;
    int cur = 0;
    for (long r = 0; r < scale; r++) {
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < N; j++) Orig[i][j] = M[i][j] = (double)((int)(xorshift64() % 2001) - 1000) / 1000.0;
            xtrue[i] = (int)(xorshift64() % 201) - 100;
        }
        for (int i = 0; i < N; i++) {
            double s = 0.0;
            for (int j = 0; j < N; j++) s += Orig[i][j] * (double)xtrue[j];
            b[i] = s;
        }
        pivots = pivots * 31u + lu_decompose();
        lu_solve();
        for (int i = 0; i < N; i++) {
            double xi = x[i];
            long rounded = (long)(xi < 0 ? xi - 0.5 : xi + 0.5);
            xsum += rounded * (i + 1);
            if (dabs(xi - (double)xtrue[i]) > 1e-6) bad++;
        }
        cur = jacobi(cur);
    }

    double gsum = 0.0, near = grid[cur][G / 8][G / 8], center = grid[cur][G / 2][G / 2];
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) gsum += grid[cur][i][j];

    printf("lu scale=%ld n=%d rounds=%ld\n", scale, N, scale);
    printf("pivot hash=%08x solution sum=%lld off=%ld\n", (unsigned)pivots, (long long)xsum, bad);
    printf("jacobi sweeps=%ld sum=%.6f near=%.6f center=%.6f\n", scale * SWEEPS, gsum, near, center);
    return bad ? 1 : 0;
}
