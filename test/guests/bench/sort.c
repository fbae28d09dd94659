/* sort.c -- benchmark workload: sorting generated integers with our own
 * sorts (no libc qsort). Each round fills an array of 40000 32-bit values
 * from a xorshift PRNG (a mix of full-range values and many duplicates) and
 * sorts copies of it with
 *  - quicksort: median of three, insertion sort below 16 elements, recursion
 *    on the smaller part only (depth stays O(log n)),
 *  - top-down mergesort with a scratch buffer,
 *  - heapsort (sift-down, in place),
 * then checks that all three are sorted and identical. Prints order-sensitive
 * hashes of the results.
 *   sort.wasm [SCALE]   SCALE rounds (default 1). Exits 0 (1 on a bad sort). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define N 40000

static int32_t orig[N], qa[N], ma[N], ha[N], scratch[N];

static uint32_t rng_state = 0x6d2b79f5u;
static uint32_t xorshift32(void) { return xorshift32_next(&rng_state); }

static void insertion(int32_t *a, int lo, int hi) {
    for (int i = lo + 1; i <= hi; i++) {
        int32_t v = a[i];
        int j = i - 1;
        while (j >= lo && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void swap(int32_t *a, int i, int j) {
    int32_t t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void quicksort(int32_t *a, int lo, int hi) {
    while (hi - lo >= 16) {
        int mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo]) swap(a, mid, lo);
        if (a[hi] < a[lo]) swap(a, hi, lo);
        if (a[hi] < a[mid]) swap(a, hi, mid);
        int32_t pivot = a[mid];
        int i = lo, j = hi;
        while (i <= j) { /* Hoare-style partition */
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                swap(a, i, j);
                i++;
                j--;
            }
        }
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
    insertion(a, lo, hi);
}

static void mergesort_rec(int32_t *a, int32_t *tmp, int lo, int hi) { /* [lo, hi) */
    if (hi - lo < 2) return;
    int mid = lo + (hi - lo) / 2;
    mergesort_rec(a, tmp, lo, mid);
    mergesort_rec(a, tmp, mid, hi);
    if (a[mid - 1] <= a[mid]) return;
    int i = lo, j = mid, k = lo;
    while (i < mid && j < hi) tmp[k++] = a[j] < a[i] ? a[j++] : a[i++];
    while (i < mid) tmp[k++] = a[i++];
    while (j < hi) tmp[k++] = a[j++];
    memcpy(a + lo, tmp + lo, (size_t)(hi - lo) * sizeof *a);
}

static void sift_down(int32_t *a, int root, int n) {
    int32_t v = a[root];
    for (;;) {
        int child = 2 * root + 1;
        if (child >= n) break;
        if (child + 1 < n && a[child + 1] > a[child]) child++;
        if (a[child] <= v) break;
        a[root] = a[child];
        root = child;
    }
    a[root] = v;
}

static void heapsort(int32_t *a, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(a, i, n);
    for (int end = n - 1; end > 0; end--) {
        swap(a, 0, end);
        sift_down(a, 0, end);
    }
}

static uint64_t hash(const int32_t *a, int n) {
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < n; i++) h = (h ^ (uint32_t)a[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "sort");
    uint64_t combined = 0;
    int64_t medians = 0;
    long bad = 0;
    for (long r = 0; r < scale; r++) {
        for (int i = 0; i < N; i++) {
            uint32_t v = xorshift32();
            /* one in four from a small range, so there are many duplicates */
            orig[i] = (v & 3) == 0 ? (int32_t)(v >> 24) - 128 : (int32_t)v;
        }
        memcpy(qa, orig, sizeof orig);
        memcpy(ma, orig, sizeof orig);
        memcpy(ha, orig, sizeof orig);
        quicksort(qa, 0, N - 1);
        mergesort_rec(ma, scratch, 0, N);
        heapsort(ha, N);
        for (int i = 1; i < N; i++)
            if (qa[i - 1] > qa[i]) bad++;
        if (memcmp(qa, ma, sizeof qa) != 0 || memcmp(qa, ha, sizeof qa) != 0) bad++;
        combined = combined * 31 + hash(qa, N);
        medians += qa[N / 2];
    }
    printf("sort scale=%ld n=%d rounds=%ld\n", scale, N, scale);
    printf("hash=%016llx median sum=%lld\n", (unsigned long long)combined, (long long)medians);
    printf("quick/merge/heap: %s\n", bad ? "MISMATCH" : "sorted and identical");
    return bad ? 1 : 0;
}
