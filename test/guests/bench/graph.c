/* graph.c -- benchmark workload: BFS and PageRank on a generated graph.
 * A directed graph of 32768 vertices: a ring (so everything is reachable)
 * plus 1..15 extra out-edges per vertex whose targets are skewed towards low
 * vertex numbers (the smaller of two xorshift draws), stored as CSR arrays
 * (offsets + targets) built by counting. Each round
 *  - runs BFS from 4 sources (queue in an array) and hashes the distances,
 *  - runs 8 PageRank iterations (damping 0.85, dangling-free by
 *    construction) in doubles, continuing from the previous round.
 * Integer results are printed as is; PageRank as the ids of the 5 best ranked
 * vertices and sums with 6 decimals (IEEE +, *, / only, in a fixed order).
 *   graph.wasm [SCALE]   SCALE rounds (default 1). Exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define V 32768
#define MAX_EXTRA 15
#define BFS_PER_ROUND 4
#define PR_PER_ROUND 8

static uint32_t offs[V + 1];
static uint32_t targets[V * (MAX_EXTRA + 1)];
static uint32_t outdeg[V];
static int32_t dist[V];
static uint32_t queue[V];
static double rank_[V], next_[V], contrib[V];

static uint64_t rng_state = 0xda942042e4dd58b5ull;
static uint64_t xorshift64(void) { return xorshift64_next(&rng_state); }

static void build_graph(void) {
    /* pass 1: degrees (the ring edge + extras), drawn once and replayed */
    uint64_t saved = rng_state;
    for (uint32_t v = 0; v < V; v++) {
        uint32_t extra = 1 + (uint32_t)(xorshift64() % MAX_EXTRA);
        outdeg[v] = 1 + extra;
        for (uint32_t e = 0; e < extra; e++) xorshift64();
    }
    offs[0] = 0;
    for (uint32_t v = 0; v < V; v++) offs[v + 1] = offs[v] + outdeg[v];
    /* pass 2: the same draws again, now writing the targets */
    rng_state = saved;
    for (uint32_t v = 0; v < V; v++) {
        uint32_t extra = 1 + (uint32_t)(xorshift64() % MAX_EXTRA);
        uint32_t *t = &targets[offs[v]];
        t[0] = (v + 1) % V;
        for (uint32_t e = 0; e < extra; e++) {
            uint64_t r = xorshift64();
            uint32_t a = (uint32_t)(r & (V - 1)), b = (uint32_t)((r >> 32) & (V - 1));
            t[1 + e] = a < b ? a : b;
        }
    }
}

/* returns a hash of the distance array; *reached and *maxd are outputs */
__attribute__((noinline)) static uint64_t bfs(uint32_t src, uint32_t *reached, int32_t *maxd) {
    for (uint32_t v = 0; v < V; v++) dist[v] = -1;
    uint32_t head = 0, tail = 0;
    dist[src] = 0;
    queue[tail++] = src;
    while (head < tail) {
        uint32_t u = queue[head++];
        int32_t du = dist[u] + 1;
        for (uint32_t e = offs[u]; e < offs[u + 1]; e++) {
            uint32_t w = targets[e];
            if (dist[w] < 0) {
                dist[w] = du;
                queue[tail++] = w;
            }
        }
    }
    uint64_t h = 14695981039346656037ull;
    int32_t m = 0;
    for (uint32_t v = 0; v < V; v++) {
        h = (h ^ (uint32_t)dist[v]) * 1099511628211ull;
        if (dist[v] > m) m = dist[v];
    }
    *reached = tail;
    *maxd = m;
    return h;
}

__attribute__((noinline)) static void pagerank_step(void) {
    const double base = 0.15 / (double)V;
    for (uint32_t v = 0; v < V; v++) {
        contrib[v] = rank_[v] / (double)outdeg[v];
        next_[v] = 0.0;
    }
    for (uint32_t u = 0; u < V; u++) {
        double c = contrib[u];
        for (uint32_t e = offs[u]; e < offs[u + 1]; e++) next_[targets[e]] += c;
    }
    for (uint32_t v = 0; v < V; v++) rank_[v] = base + 0.85 * next_[v];
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "graph");
    build_graph();
    for (uint32_t v = 0; v < V; v++) rank_[v] = 1.0 / (double)V;

    uint64_t bfs_hash = 0;
    uint64_t reached_total = 0;
    int64_t depth_total = 0;
    for (long r = 0; r < scale; r++) {
        for (int k = 0; k < BFS_PER_ROUND; k++) {
            uint32_t src = (uint32_t)(xorshift64() % V), reached;
            int32_t maxd;
            bfs_hash = bfs_hash * 31 + bfs(src, &reached, &maxd);
            reached_total += reached;
            depth_total += maxd;
        }
        for (int k = 0; k < PR_PER_ROUND; k++) pagerank_step();
    }

    /* top 5 by rank (ties: lower id first) */
    int top[5];
    for (int t = 0; t < 5; t++) {
        int best = -1;
        for (uint32_t v = 0; v < V; v++) {
            int taken = 0;
            for (int s = 0; s < t; s++) taken |= top[s] == (int)v;
            if (!taken && (best < 0 || rank_[v] > rank_[best])) best = (int)v;
        }
        top[t] = best;
    }
    double total = 0.0, top_mass = 0.0;
    for (uint32_t v = 0; v < V; v++) total += rank_[v];
    for (int t = 0; t < 5; t++) top_mass += rank_[top[t]];

    printf("graph scale=%ld vertices=%d edges=%u\n", scale, V, (unsigned)offs[V]);
    printf("bfs runs=%ld reached=%llu depth sum=%lld hash=%016llx\n", scale * BFS_PER_ROUND,
           (unsigned long long)reached_total, (long long)depth_total, (unsigned long long)bfs_hash);
    printf("pagerank iterations=%ld top=%d,%d,%d,%d,%d\n", scale * PR_PER_ROUND, top[0], top[1], top[2], top[3],
           top[4]);
    printf("pagerank total=%.6f top5 x V=%.6f\n", total, top_mass * (double)V);
    return 0;
}
