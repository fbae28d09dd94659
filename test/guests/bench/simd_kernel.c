/* simd_kernel.c -- benchmark workload: integer SIMD kernels (-msimd128,
 * wasm_simd128.h; the file name starts with "simd" so the recipe adds
 * -msimd128). On a generated 1024x512 8-bit image, each round runs
 *  - a 3x3 Gaussian blur ([1 2 1; 2 4 2; 1 2 1] / 16, rounded) in u16x8
 *    lanes, 4 passes, ping-ponging between two buffers,
 *  - block matching: for 1860 16x16 blocks of the blurred image, the sum of
 *    absolute differences against the original at all 121 offsets in +-5
 *    pixels (u8x16 saturating subtracts, pairwise widening adds), keeping
 *    the best offset,
 *  - a 4-lane multiply/xor-shift hash over the image as u32x4 words.
 * In the first round every kernel is also run as plain scalar C and the
 * results must be identical. Integer arithmetic only.
 * Without SIMD128 (a native build, to cross-check the output) the scalar
 * versions stand in for the SIMD ones.
 *   simd_kernel.wasm [SCALE]   SCALE rounds (default 1). Exits 0 (1 if SIMD and scalar differ). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

#include "bench.h"

#define W 1024
#define H 512
#define BLUR_PASSES 4
#define RANGE 5
#define BS 16

static uint8_t orig[H][W], img[2][H][W], check[2][H][W];

static uint32_t rng_state = 0x1b873593u;
static uint32_t xorshift32(void) { return xorshift32_next(&rng_state); }

/* ---- scalar reference kernels ---- */

static uint8_t blur_px(uint8_t (*src)[W], int y, int x) {
    unsigned v = src[y - 1][x - 1] + 2u * src[y - 1][x] + src[y - 1][x + 1] + 2u * src[y][x - 1] + 4u * src[y][x] +
                 2u * src[y][x + 1] + src[y + 1][x - 1] + 2u * src[y + 1][x] + src[y + 1][x + 1];
    return (uint8_t)((v + 8) >> 4);
}

__attribute__((noinline)) static void blur_scalar(uint8_t (*src)[W], uint8_t (*dst)[W]) {
    memcpy(dst[0], src[0], W);
    memcpy(dst[H - 1], src[H - 1], W);
    for (int y = 1; y < H - 1; y++) {
        dst[y][0] = src[y][0];
        dst[y][W - 1] = src[y][W - 1];
        for (int x = 1; x < W - 1; x++) dst[y][x] = blur_px(src, y, x);
    }
}

static uint32_t sad_scalar(uint8_t (*cur)[W], uint8_t (*ref)[W], int by, int bx, int dy, int dx) {
    uint32_t s = 0;
    for (int y = 0; y < BS; y++)
        for (int x = 0; x < BS; x++) {
            int d = cur[by + y][bx + x] - ref[by + y + dy][bx + x + dx];
            s += (uint32_t)(d < 0 ? -d : d);
        }
    return s;
}

__attribute__((noinline)) static void hash_scalar(const uint32_t *p, int n, uint32_t out[4]) {
    uint32_t h[4] = {0x811c9dc5u, 0x01000193u, 0x9e3779b9u, 0x85ebca6bu};
    for (int i = 0; i < n; i += 4)
        for (int l = 0; l < 4; l++) {
            uint32_t v = (h[l] ^ p[i + l]) * 0x9e3779b1u;
            h[l] = v ^ (v >> 15) ^ (v << 7);
        }
    memcpy(out, h, sizeof h);
}

/* ---- SIMD kernels ---- */

#ifdef __wasm_simd128__
/* 8 u16 lanes: a + 2b + c */
static inline v128_t row121(v128_t a, v128_t b, v128_t c) {
    return wasm_i16x8_add(wasm_i16x8_add(a, c), wasm_i16x8_shl(b, 1));
}

__attribute__((noinline)) static void blur_simd(uint8_t (*src)[W], uint8_t (*dst)[W]) {
    memcpy(dst[0], src[0], W);
    memcpy(dst[H - 1], src[H - 1], W);
    const v128_t round = wasm_i16x8_splat(8);
    for (int y = 1; y < H - 1; y++) {
        dst[y][0] = src[y][0];
        dst[y][W - 1] = src[y][W - 1];
        int x = 1;
        for (; x + 16 <= W - 1; x += 16) {
            v128_t lo[3], hi[3];
            for (int k = 0; k < 3; k++) {
                const uint8_t *row = src[y - 1 + k] + x;
                v128_t l = wasm_v128_load(row - 1), m = wasm_v128_load(row), r = wasm_v128_load(row + 1);
                lo[k] = row121(wasm_u16x8_extend_low_u8x16(l), wasm_u16x8_extend_low_u8x16(m),
                               wasm_u16x8_extend_low_u8x16(r));
                hi[k] = row121(wasm_u16x8_extend_high_u8x16(l), wasm_u16x8_extend_high_u8x16(m),
                               wasm_u16x8_extend_high_u8x16(r));
            }
            v128_t vlo = wasm_u16x8_shr(wasm_i16x8_add(row121(lo[0], lo[1], lo[2]), round), 4);
            v128_t vhi = wasm_u16x8_shr(wasm_i16x8_add(row121(hi[0], hi[1], hi[2]), round), 4);
            wasm_v128_store(dst[y] + x, wasm_u8x16_narrow_i16x8(vlo, vhi));
        }
        for (; x < W - 1; x++) dst[y][x] = blur_px(src, y, x);
    }
}

static uint32_t sad_simd(uint8_t (*cur)[W], uint8_t (*ref)[W], int by, int bx, int dy, int dx) {
    v128_t acc = wasm_i16x8_splat(0);
    for (int y = 0; y < BS; y++) {
        v128_t a = wasm_v128_load(cur[by + y] + bx), b = wasm_v128_load(ref[by + y + dy] + bx + dx);
        v128_t d = wasm_v128_or(wasm_u8x16_sub_sat(a, b), wasm_u8x16_sub_sat(b, a));
        acc = wasm_i16x8_add(acc, wasm_u16x8_extadd_pairwise_u8x16(d)); /* <= 16 * 510 per lane */
    }
    v128_t s = wasm_u32x4_extadd_pairwise_u16x8(acc);
    return wasm_u32x4_extract_lane(s, 0) + wasm_u32x4_extract_lane(s, 1) + wasm_u32x4_extract_lane(s, 2) +
           wasm_u32x4_extract_lane(s, 3);
}

__attribute__((noinline)) static void hash_simd(const uint32_t *p, int n, uint32_t out[4]) {
    v128_t h = wasm_u32x4_make(0x811c9dc5u, 0x01000193u, 0x9e3779b9u, 0x85ebca6bu);
    const v128_t mul = wasm_u32x4_splat(0x9e3779b1u);
    for (int i = 0; i < n; i += 4) {
        v128_t v = wasm_i32x4_mul(wasm_v128_xor(h, wasm_v128_load(p + i)), mul);
        h = wasm_v128_xor(wasm_v128_xor(v, wasm_u32x4_shr(v, 15)), wasm_i32x4_shl(v, 7));
    }
    wasm_v128_store(out, h);
}
#else
#define blur_simd blur_scalar
#define sad_simd sad_scalar
#define hash_simd hash_scalar
#endif

typedef uint32_t (*SadFn)(uint8_t (*)[W], uint8_t (*)[W], int, int, int, int);

/* best offset per block; returns the sum of the minimal SADs, hashes the offsets into *h */
__attribute__((noinline)) static uint64_t match_blocks(SadFn sad, uint8_t (*cur)[W], uint8_t (*ref)[W], uint64_t *h) {
    uint64_t total = 0;
    for (int by = BS; by + 2 * BS <= H; by += BS)
        for (int bx = BS; bx + 2 * BS <= W; bx += BS) {
            uint32_t best = UINT32_MAX;
            int bdy = 0, bdx = 0;
            for (int dy = -RANGE; dy <= RANGE; dy++)
                for (int dx = -RANGE; dx <= RANGE; dx++) {
                    uint32_t s = sad(cur, ref, by, bx, dy, dx);
                    if (s < best) {
                        best = s;
                        bdy = dy;
                        bdx = dx;
                    }
                }
            total += best;
            *h = (*h ^ (uint64_t)((bdy + RANGE) * 16 + (bdx + RANGE))) * 1099511628211ull;
        }
    return total;
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "simd_kernel");
    /* smooth gradients with noise, plus some bright rectangles */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int v = (x * 3 + y * 5) / 8 % 200 + (int)(xorshift32() % 48);
            if (((x / 37) + (y / 23)) % 5 == 0) v = 255 - v / 4;
            orig[y][x] = (uint8_t)v;
        }
    memcpy(img[0], orig, sizeof orig);

    int bad = 0;
    uint64_t sad_total = 0, offsets = 14695981039346656037ull, hashes = 0;
    int cur = 0;
    for (long r = 0; r < scale; r++) {
        int start = cur;
        if (r == 0) memcpy(check[start], img[start], sizeof check[0]);
        for (int p = 0; p < BLUR_PASSES; p++) {
            blur_simd(img[cur], img[cur ^ 1]);
            cur ^= 1;
        }
        uint64_t oh = offsets;
        sad_total += match_blocks(sad_simd, img[cur], orig, &offsets);
        uint32_t hv[4];
        hash_simd((const uint32_t *)(const void *)img[cur], W * H / 4, hv);
        for (int l = 0; l < 4; l++) hashes = hashes * 1000003u + hv[l];

        if (r == 0) { /* the scalar versions must agree */
            int c = start;
            for (int p = 0; p < BLUR_PASSES; p++) {
                blur_scalar(check[c], check[c ^ 1]);
                c ^= 1;
            }
            bad |= memcmp(check[c], img[cur], sizeof check[0]) != 0;
            uint64_t oh2 = oh;
            uint64_t t2 = match_blocks(sad_scalar, check[c], orig, &oh2);
            bad |= oh2 != offsets || t2 != sad_total;
            uint32_t hs[4];
            hash_scalar((const uint32_t *)(const void *)check[c], W * H / 4, hs);
            bad |= memcmp(hs, hv, sizeof hs) != 0;
        }
        /* perturb so the next round's input differs: a 16x16 square of noise */
        int sy = (int)(xorshift32() % (H - 16)), sx = (int)(xorshift32() % (W - 16));
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) img[cur][sy + y][sx + x] ^= (uint8_t)xorshift32();
    }
    uint64_t pixsum = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) pixsum += img[cur][y][x];
    printf("simd_kernel scale=%ld image=%dx%d rounds=%ld\n", scale, W, H, scale);
    printf("blur passes=%ld pixel sum=%llu\n", scale * BLUR_PASSES, (unsigned long long)pixsum);
    printf("block match sad=%llu offsets hash=%016llx\n", (unsigned long long)sad_total,
           (unsigned long long)offsets);
    printf("lane hash=%016llx\n", (unsigned long long)hashes);
    printf("simd vs scalar: %s\n", bad ? "MISMATCH" : "identical");
    return bad;
}
