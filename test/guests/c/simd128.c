/* simd128.c -- compiled with -msimd128 (named so that its .wasm does not
 * collide with wat/simd.wat). Dot product and saxpy with wasm_simd128.h
 * intrinsics (checked against scalar loops), an
 * auto-vectorisable integer loop, and a byte histogram whose per-value
 * counting uses i8x16 compares. v128 values are also passed through
 * non-inlined functions. Exits 0 (1 if SIMD and scalar results differ). */
#include <stdint.h>
#include <stdio.h>
#include <wasm_simd128.h>

#define N 4096
static float xs[N], ys[N], out_simd[N], out_scalar[N];
static uint8_t bytes[N * 4];
static int32_t ia[N], ib[N], ic[N];

static uint32_t rng = 2463534242u;
static uint32_t xorshift(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

__attribute__((noinline)) static v128_t twist(v128_t v, int k) {
    return wasm_i32x4_add(wasm_i32x4_shl(v, k), wasm_i32x4_splat(k));
}

static float dot_simd(const float *a, const float *b, int n) {
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int i = 0; i < n; i += 4)
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    return wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1) +
           wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3);
}

static float dot_scalar4(const float *a, const float *b, int n) {
    /* same association order as dot_simd, so results are bit-identical */
    float l[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; i += 4)
        for (int j = 0; j < 4; j++) l[j] += a[i + j] * b[i + j];
    return l[0] + l[1] + l[2] + l[3];
}

static void saxpy_simd(float a, const float *x, const float *y, float *o, int n) {
    v128_t va = wasm_f32x4_splat(a);
    for (int i = 0; i < n; i += 4)
        wasm_v128_store(o + i, wasm_f32x4_add(wasm_f32x4_mul(va, wasm_v128_load(x + i)), wasm_v128_load(y + i)));
}

static int hsum_u8(v128_t acc) {
    v128_t w = wasm_u32x4_extadd_pairwise_u16x8(wasm_u16x8_extadd_pairwise_u8x16(acc));
    return (int)(wasm_u32x4_extract_lane(w, 0) + wasm_u32x4_extract_lane(w, 1) +
                 wasm_u32x4_extract_lane(w, 2) + wasm_u32x4_extract_lane(w, 3));
}

static int count_eq(const uint8_t *p, int n, uint8_t value) {
    v128_t needle = wasm_i8x16_splat((int8_t)value);
    v128_t acc = wasm_i8x16_splat(0);
    int total = 0;
    for (int i = 0; i < n; i += 16) {
        /* eq gives 0xff (-1) per matching lane; subtracting counts up */
        acc = wasm_i8x16_sub(acc, wasm_i8x16_eq(wasm_v128_load(p + i), needle));
        if ((i / 16) % 128 == 127) { /* flush before 8-bit lanes can overflow */
            total += hsum_u8(acc);
            acc = wasm_i8x16_splat(0);
        }
    }
    return total + hsum_u8(acc);
}

int main(void) {
    for (int i = 0; i < N; i++) {
        xs[i] = (float)((int)(xorshift() % 2001) - 1000) / 256.0f;
        ys[i] = (float)((int)(xorshift() % 2001) - 1000) / 512.0f;
        ia[i] = (int32_t)(xorshift() % 1000) - 500;
        ib[i] = (int32_t)(xorshift() % 1000) - 500;
    }
    for (int i = 0; i < N * 4; i++) bytes[i] = (uint8_t)(xorshift() >> 24) & 0x3f;

    float d1 = dot_simd(xs, ys, N), d2 = dot_scalar4(xs, ys, N);
    printf("dot simd=%.4f scalar=%.4f equal=%d\n", d1, d2, d1 == d2);

    saxpy_simd(2.5f, xs, ys, out_simd, N);
    for (int i = 0; i < N; i++) out_scalar[i] = 2.5f * xs[i] + ys[i];
    int mism = 0;
    double s = 0;
    for (int i = 0; i < N; i++) {
        mism += out_simd[i] != out_scalar[i];
        s += out_simd[i];
    }
    printf("saxpy sum=%.4f out[0]=%.5f out[4095]=%.5f mismatches=%d\n", s, out_simd[0], out_simd[N - 1], mism);

    /* auto-vectorisable integer loop */
    for (int i = 0; i < N; i++) ic[i] = ia[i] * ib[i] + (ia[i] >> 2);
    int64_t isum = 0;
    for (int i = 0; i < N; i++) isum += ic[i];
    printf("int loop sum=%lld\n", (long long)isum);

    /* byte histogram: scalar full histogram vs SIMD per-value counts */
    int hist[64] = {0};
    for (int i = 0; i < N * 4; i++) hist[bytes[i]]++;
    int bad = 0, maxv = 0;
    for (int v = 0; v < 64; v++) {
        if (count_eq(bytes, N * 4, (uint8_t)v) != hist[v]) bad++;
        if (hist[v] > hist[maxv]) maxv = v;
    }
    printf("histogram: h[0]=%d h[17]=%d h[63]=%d most=%d(%d) simd_mismatch=%d\n", hist[0], hist[17],
           hist[63], maxv, hist[maxv], bad);

    /* v128 through a non-inlined call */
    v128_t v = wasm_i32x4_make(1, -2, 3, -4);
    v128_t w = twist(v, 3);
    v128_t z = wasm_i32x4_mul(twist(w, 1), v);
    printf("twist lanes: %d %d %d %d\n", wasm_i32x4_extract_lane(z, 0), wasm_i32x4_extract_lane(z, 1),
           wasm_i32x4_extract_lane(z, 2), wasm_i32x4_extract_lane(z, 3));

    if (d1 != d2 || mism || bad) {
        printf("simd: MISMATCH\n");
        return 1;
    }
    printf("simd: ok\n");
    return 0;
}
