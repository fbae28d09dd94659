/* recursion.c -- benchmark workload: call-heavy recursive code.
 * Each round runs
 *  - fib(25), naive doubly recursive,
 *  - Ackermann A(2, 200) and A(3, 5),
 *  - binary trees: builds a complete tree of depth 15 (malloc per node),
 *    walks it recursively for a checksum, frees it, plus 16 short-lived
 *    trees of depth 8,
 *  - n-queens on 8x8 by recursive backtracking (92 solutions),
 *  - a recursive-descent parser/evaluator over 400 generated arithmetic
 *    expressions (mutually recursive expr/term/factor).
 * Recursion depth stays below a few hundred frames.
 *   recursion.wasm [SCALE]   SCALE rounds (default 1). Exits 0 (1 if a known value is wrong). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

static uint32_t rng_state = 0x9908b0dfu;
static uint32_t xorshift32(void) { return xorshift32_next(&rng_state); }

/* ---- fib, ackermann ---- */

__attribute__((noinline)) static uint32_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__attribute__((noinline)) static uint32_t ack(uint32_t m, uint32_t n) {
    if (m == 0) return n + 1;
    if (n == 0) return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

/* ---- binary trees ---- */

typedef struct Node {
    struct Node *left, *right;
    uint32_t value;
} Node;

static Node *build(int depth, uint32_t value) {
    Node *n = malloc(sizeof *n);
    if (!n) {
        printf("out of memory\n");
        exit(1);
    }
    n->value = value;
    if (depth > 0) {
        n->left = build(depth - 1, value * 2 + 1);
        n->right = build(depth - 1, value * 2 + 2);
    } else {
        n->left = n->right = NULL;
    }
    return n;
}

static uint64_t walk(const Node *n, int depth) {
    if (!n) return 0;
    uint64_t h = (uint64_t)n->value * (uint64_t)(depth + 1);
    return h + walk(n->left, depth + 1) * 3 + walk(n->right, depth + 1);
}

static uint32_t count_nodes(const Node *n) { return n ? 1 + count_nodes(n->left) + count_nodes(n->right) : 0; }

static void release(Node *n) {
    if (!n) return;
    release(n->left);
    release(n->right);
    free(n);
}

/* ---- n-queens ---- */

static int queens(int row, int n, int *cols) {
    if (row == n) return 1;
    int total = 0;
    for (int c = 0; c < n; c++) {
        int ok = 1;
        for (int r = 0; r < row && ok; r++) {
            int d = cols[r] - c;
            if (d == 0 || d == row - r || -d == row - r) ok = 0;
        }
        if (ok) {
            cols[row] = c;
            total += queens(row + 1, n, cols);
        }
    }
    return total;
}

/* ---- recursive descent: expr := term (('+'|'-') term)*, term := factor (('*'|'%') factor)*,
 *      factor := number | '(' expr ')' | '-' factor; arithmetic mod 2^32 ---- */

static const char *cur;
static uint32_t expr(void);

static uint32_t factor(void) {
    if (*cur == '(') {
        cur++;
        uint32_t v = expr();
        cur++; /* ')' */
        return v;
    }
    if (*cur == '-') {
        cur++;
        return 0u - factor();
    }
    uint32_t v = 0;
    while (*cur >= '0' && *cur <= '9') v = v * 10 + (uint32_t)(*cur++ - '0');
    return v;
}

static uint32_t term(void) {
    uint32_t v = factor();
    while (*cur == '*' || *cur == '%') {
        char op = *cur++;
        uint32_t w = factor();
        v = op == '*' ? v * w : (w ? v % w : v);
    }
    return v;
}

static uint32_t expr(void) {
    uint32_t v = term();
    while (*cur == '+' || *cur == '-') {
        char op = *cur++;
        uint32_t w = term();
        v = op == '+' ? v + w : v - w;
    }
    return v;
}

static char ebuf[1 << 16];
static size_t epos;

static void gen(int depth) { /* writes a random expression into ebuf */
    uint32_t r = xorshift32();
    if (depth == 0 || r % 4 == 0) {
        epos += (size_t)snprintf(ebuf + epos, sizeof ebuf - epos, "%u", (unsigned)(r >> 8) % 1000);
        return;
    }
    if (r % 11 == 1) {
        ebuf[epos++] = '-';
        gen(depth - 1);
        return;
    }
    int paren = r % 3 == 0;
    if (paren) ebuf[epos++] = '(';
    gen(depth - 1);
    ebuf[epos++] = "+-*%+*"[(r >> 4) % 6];
    gen(depth - 1);
    if (paren) ebuf[epos++] = ')';
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "recursion");
    uint64_t fib_sum = 0, ack_sum = 0, tree_hash = 0, queen_sum = 0, expr_hash = 0;
    uint64_t nodes = 0, expr_chars = 0;
    int bad = 0;
    for (long r = 0; r < scale; r++) {
        uint32_t f = fib(25);
        bad |= f != 75025;
        fib_sum += f;
        uint32_t a1 = ack(2, 200), a2 = ack(3, 5);
        bad |= a1 != 403 || a2 != 253;
        ack_sum += a1 + a2;

        Node *big = build(15, (uint32_t)r);
        tree_hash = tree_hash * 31 + walk(big, 0);
        nodes += count_nodes(big);
        release(big);
        for (int k = 0; k < 16; k++) {
            Node *t = build(8, (uint32_t)k);
            tree_hash = tree_hash * 31 + walk(t, 0);
            nodes += count_nodes(t);
            release(t);
        }

        int cols[8];
        int q = queens(0, 8, cols);
        bad |= q != 92;
        queen_sum += (uint64_t)q;

        for (int k = 0; k < 400; k++) {
            epos = 0;
            gen(9);
            ebuf[epos] = '\0';
            expr_chars += epos;
            cur = ebuf;
            expr_hash = (expr_hash ^ expr()) * 1099511628211ull;
        }
    }
    printf("recursion scale=%ld rounds=%ld\n", scale, scale);
    printf("fib=%llu ackermann=%llu queens=%llu\n", (unsigned long long)fib_sum, (unsigned long long)ack_sum,
           (unsigned long long)queen_sum);
    printf("trees nodes=%llu hash=%016llx\n", (unsigned long long)nodes, (unsigned long long)tree_hash);
    printf("expressions chars=%llu hash=%016llx\n", (unsigned long long)expr_chars, (unsigned long long)expr_hash);
    printf("known values: %s\n", bad ? "WRONG" : "ok");
    return bad;
}
