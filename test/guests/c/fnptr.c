/* fnptr.c -- function pointers everywhere: a dispatch table of operations,
 * qsort with several comparators, a callback-based fold, and a small bytecode
 * interpreter whose opcodes are dispatched through an array of handler
 * pointers (compiled to call_indirect). Exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dispatch table ---- */
typedef int64_t (*binop_fn)(int64_t, int64_t);
static int64_t op_add(int64_t a, int64_t b) { return a + b; }
static int64_t op_sub(int64_t a, int64_t b) { return a - b; }
static int64_t op_mul(int64_t a, int64_t b) { return a * b; }
static int64_t op_div(int64_t a, int64_t b) { return b ? a / b : 0; }
static int64_t op_mod(int64_t a, int64_t b) { return b ? a % b : 0; }
static int64_t op_xor(int64_t a, int64_t b) { return a ^ b; }

static const struct {
    const char *name;
    binop_fn fn;
} ops[] = {
    {"add", op_add}, {"sub", op_sub}, {"mul", op_mul},
    {"div", op_div}, {"mod", op_mod}, {"xor", op_xor},
};
#define NOPS (sizeof ops / sizeof ops[0])

/* ---- qsort comparators ---- */
struct rec {
    char name[8];
    int score;
    int id;
};
static int by_score_desc(const void *a, const void *b) {
    const struct rec *x = a, *y = b;
    if (x->score != y->score) return y->score - x->score;
    return x->id - y->id;
}
static int by_name(const void *a, const void *b) {
    const struct rec *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->id - y->id;
}
static int cmp_int_asc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* ---- fold with callback ---- */
typedef int64_t (*fold_fn)(int64_t, int);
static int64_t fold(const int *v, int n, int64_t init, fold_fn f) {
    for (int i = 0; i < n; i++) init = f(init, v[i]);
    return init;
}
static int64_t f_sum(int64_t acc, int x) { return acc + x; }
static int64_t f_sumsq(int64_t acc, int x) { return acc + (int64_t)x * x; }
static int64_t f_hash(int64_t acc, int x) { return (int64_t)((uint64_t)acc * 131u + (uint64_t)(int64_t)x); }

/* ---- bytecode interpreter ---- */
enum { OP_PUSH, OP_ADD, OP_SUB, OP_MUL, OP_DUP, OP_SWAP, OP_JNZ, OP_DEC, OP_PRINT, OP_HALT, OP_OVER, OP_DROP };
struct vm {
    const int *code;
    int pc;
    int64_t stack[64];
    int sp;
    int running;
    int64_t steps;
};
typedef void (*handler)(struct vm *);
static void h_push(struct vm *m) { m->stack[m->sp++] = m->code[m->pc++]; }
static void h_add(struct vm *m) { m->sp--; m->stack[m->sp - 1] += m->stack[m->sp]; }
static void h_sub(struct vm *m) { m->sp--; m->stack[m->sp - 1] -= m->stack[m->sp]; }
static void h_mul(struct vm *m) { m->sp--; m->stack[m->sp - 1] *= m->stack[m->sp]; }
static void h_dup(struct vm *m) { m->stack[m->sp] = m->stack[m->sp - 1]; m->sp++; }
static void h_over(struct vm *m) { m->stack[m->sp] = m->stack[m->sp - 2]; m->sp++; }
static void h_drop(struct vm *m) { m->sp--; }
static void h_swap(struct vm *m) {
    int64_t t = m->stack[m->sp - 1];
    m->stack[m->sp - 1] = m->stack[m->sp - 2];
    m->stack[m->sp - 2] = t;
}
static void h_jnz(struct vm *m) {
    int target = m->code[m->pc++];
    if (m->stack[--m->sp] != 0) m->pc = target;
}
static void h_dec(struct vm *m) { m->stack[m->sp - 1]--; }
static void h_print(struct vm *m) { printf("  vm print: %lld\n", (long long)m->stack[--m->sp]); }
static void h_halt(struct vm *m) { m->running = 0; }
static const handler handlers[] = {
    [OP_PUSH] = h_push, [OP_ADD] = h_add, [OP_SUB] = h_sub, [OP_MUL] = h_mul,
    [OP_DUP] = h_dup,   [OP_SWAP] = h_swap, [OP_JNZ] = h_jnz, [OP_DEC] = h_dec,
    [OP_PRINT] = h_print, [OP_HALT] = h_halt, [OP_OVER] = h_over, [OP_DROP] = h_drop,
};
static int64_t run(const int *code) {
    struct vm m = {.code = code, .pc = 0, .sp = 0, .running = 1, .steps = 0};
    while (m.running) {
        handlers[code[m.pc++]](&m);
        m.steps++;
    }
    printf("  vm steps: %lld\n", (long long)m.steps);
    return m.sp ? m.stack[m.sp - 1] : 0;
}

int main(void) {
    printf("dispatch table:\n");
    for (size_t i = 0; i < NOPS; i++)
        printf("  %s(1000, 37) = %lld\n", ops[i].name, (long long)ops[i].fn(1000, 37));
    int64_t acc = 1;
    for (int i = 0; i < 1000; i++) acc = ops[i % NOPS].fn(acc, i + 3) & 0xffffffff;
    printf("  chained = %lld\n", (long long)acc);

    static const char *names[] = {"delta", "alpha", "kilo", "echo", "bravo", "hotel", "golf", "charlie", "india", "foxtrot"};
    struct rec recs[10];
    for (int i = 0; i < 10; i++) {
        strcpy(recs[i].name, names[i]);
        recs[i].score = (i * 37) % 11;
        recs[i].id = i;
    }
    qsort(recs, 10, sizeof recs[0], by_score_desc);
    printf("by score:");
    for (int i = 0; i < 10; i++) printf(" %s:%d", recs[i].name, recs[i].score);
    printf("\n");
    qsort(recs, 10, sizeof recs[0], by_name);
    printf("by name:");
    for (int i = 0; i < 10; i++) printf(" %s", recs[i].name);
    printf("\n");

    int v[2000];
    unsigned s = 7;
    for (int i = 0; i < 2000; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = (int)(s >> 20) - 2048;
    }
    qsort(v, 2000, sizeof v[0], cmp_int_asc);
    fold_fn folds[] = {f_sum, f_sumsq, f_hash};
    const char *fold_names[] = {"sum", "sumsq", "hash"};
    for (int i = 0; i < 3; i++)
        printf("fold %s = %lld\n", fold_names[i], (long long)fold(v, 2000, 0, folds[i]));
    printf("sorted ints: min=%d max=%d v[1000]=%d\n", v[0], v[1999], v[1000]);

    /* program 1: factorial(20) by a loop: acc n -> acc*n, n-1 while n != 0 */
    static const int fact[] = {
        OP_PUSH, 1, OP_PUSH, 20,          /* acc n */
        /* loop @4 */ OP_SWAP, OP_OVER, OP_MUL, OP_SWAP, OP_DEC, OP_DUP, OP_JNZ, 4,
        OP_DROP, OP_DUP, OP_PRINT, OP_HALT};
    printf("vm factorial:\n");
    int64_t r1 = run(fact);
    /* program 2: sum of 1..100000 by counting down */
    static const int sum[] = {
        OP_PUSH, 0, OP_PUSH, 100000,      /* acc n */
        /* loop @4 */ OP_SWAP, OP_OVER, OP_ADD, OP_SWAP, OP_DEC, OP_DUP, OP_JNZ, 4,
        OP_DROP, OP_DUP, OP_PRINT, OP_HALT};
    printf("vm sum:\n");
    int64_t r2 = run(sum);
    printf("vm results: %lld %lld\n", (long long)r1, (long long)r2);
    printf("fnptr: ok\n");
    return 0;
}
