/* strsearch.c -- benchmark workload: exact string search.
 * Generates 128 KiB of text: "words" of 1..8 letters from an 8-letter
 * alphabet separated by spaces, drawn with a xorshift PRNG. Each round takes
 * 6 patterns (3..40 bytes; most cut out of the text so they occur, some
 * generated so they may not) and counts all (overlapping) occurrences with
 *  - the naive algorithm,
 *  - Knuth-Morris-Pratt (failure function),
 *  - Boyer-Moore-Horspool (bad-character shift table),
 * checking that the three counts agree. Prints the totals and a hash of the
 * per-pattern counts and first positions.
 *   strsearch.wasm [SCALE]   SCALE rounds (default 1). Exits 0 (1 on disagreement). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define TEXT (128 * 1024)
#define PATS_PER_ROUND 6
#define MAXPAT 40

static unsigned char text[TEXT];

static uint32_t rng_state = 0x3c6ef372u;
static uint32_t xorshift32(void) { return xorshift32_next(&rng_state); }

typedef struct {
    long count;
    long first; /* -1 if none */
} Result;

__attribute__((noinline)) static Result search_naive(const unsigned char *t, long n, const unsigned char *p, int m) {
    Result r = {0, -1};
    for (long i = 0; i + m <= n; i++) {
        int j = 0;
        while (j < m && t[i + j] == p[j]) j++;
        if (j == m) {
            if (r.first < 0) r.first = i;
            r.count++;
        }
    }
    return r;
}

__attribute__((noinline)) static Result search_kmp(const unsigned char *t, long n, const unsigned char *p, int m) {
    int fail[MAXPAT + 1];
    fail[0] = -1;
    for (int i = 1, k = -1; i <= m; i++) { /* fail[i] = longest proper border of p[0..i) */
        while (k >= 0 && p[k] != p[i - 1]) k = fail[k];
        fail[i] = ++k;
    }
    Result r = {0, -1};
    int j = 0;
    for (long i = 0; i < n; i++) {
        while (j >= 0 && p[j] != t[i]) j = fail[j];
        j++;
        if (j == m) {
            if (r.first < 0) r.first = i - m + 1;
            r.count++;
            j = fail[m];
        }
    }
    return r;
}

__attribute__((noinline)) static Result search_bmh(const unsigned char *t, long n, const unsigned char *p, int m) {
    int shift[256];
    for (int c = 0; c < 256; c++) shift[c] = m;
    for (int i = 0; i < m - 1; i++) shift[p[i]] = m - 1 - i;
    Result r = {0, -1};
    long i = 0;
    while (i + m <= n) {
        unsigned char last = t[i + m - 1];
        if (last == p[m - 1] && memcmp(t + i, p, (size_t)(m - 1)) == 0) {
            if (r.first < 0) r.first = i;
            r.count++;
        }
        i += shift[last];
    }
    return r;
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "strsearch");
    static const char alphabet[] = "etaoinsr";
    for (long i = 0; i < TEXT;) {
        int len = 1 + (int)(xorshift32() % 8);
        for (int k = 0; k < len && i < TEXT; k++) {
            /* skewed letter frequencies: min of two draws */
            uint32_t a = xorshift32() % 8, b = xorshift32() % 8;
            text[i++] = (unsigned char)alphabet[a < b ? a : b];
        }
        if (i < TEXT) text[i++] = ' ';
    }

    long total = 0, found = 0, bad = 0;
    uint64_t h = 14695981039346656037ull;
    for (long r = 0; r < scale; r++) {
        for (int k = 0; k < PATS_PER_ROUND; k++) {
            unsigned char pat[MAXPAT];
            /* odd k: short (3..8), even k: long (9..MAXPAT) */
            int m = (k & 1) ? 3 + (int)(xorshift32() % 6) : 9 + (int)(xorshift32() % (MAXPAT - 8));
            if (k % 3 != 2) { /* cut out of the text */
                long at = (long)(xorshift32() % (uint32_t)(TEXT - m));
                memcpy(pat, text + at, (size_t)m);
            } else { /* generated: frequent letters, may or may not occur */
                for (int j = 0; j < m; j++) pat[j] = (unsigned char)(j % 5 == 4 ? ' ' : alphabet[xorshift32() % 3]);
            }
            Result a = search_naive(text, TEXT, pat, m);
            Result b = search_kmp(text, TEXT, pat, m);
            Result c = search_bmh(text, TEXT, pat, m);
            if (a.count != b.count || a.count != c.count || a.first != b.first || a.first != c.first) bad++;
            total += a.count;
            found += a.count > 0;
            h = (h ^ (uint64_t)a.count) * 1099511628211ull;
            h = (h ^ (uint64_t)a.first) * 1099511628211ull;
        }
    }
    printf("strsearch scale=%ld text=%d patterns=%ld\n", scale, TEXT, scale * PATS_PER_ROUND);
    printf("occurrences=%ld patterns found=%ld hash=%016llx\n", total, found, (unsigned long long)h);
    printf("naive/kmp/horspool: %s\n", bad ? "MISMATCH" : "agree");
    return bad ? 1 : 0;
}
