/* cipher.c -- benchmark workload: a stream cipher and a hash over a buffer.
 * Our own ChaCha20 (RFC 8439 block function, 32-bit counter) and SHA-256
 * (FIPS 180-4), checked first against known answers (SHA-256("abc") and
 * the RFC 8439 section 2.4.2 encryption example). Each round fills a 512 KiB
 * buffer from a xorshift PRNG, encrypts it with a per-round key and nonce,
 * hashes the ciphertext with SHA-256 and with FNV-1a, decrypts it again and
 * checks that the plaintext came back. The round digests are chained into one
 * SHA-256, which is printed.
 *   cipher.wasm [SCALE]   SCALE rounds (default 1). Exits 0 (1 if a check fails). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BUF (512 * 1024)

static uint8_t plain[BUF], work[BUF];

/* ---- ChaCha20 ---- */

static uint32_t rotl32(uint32_t v, int c) { return (v << c) | (v >> (32 - c)); }
static uint32_t load32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void store32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

#define QR(a, b, c, d)                                                                                                 \
    do {                                                                                                               \
        a += b; d ^= a; d = rotl32(d, 16);                                                                             \
        c += d; b ^= c; b = rotl32(b, 12);                                                                             \
        a += b; d ^= a; d = rotl32(d, 8);                                                                              \
        c += d; b ^= c; b = rotl32(b, 7);                                                                              \
    } while (0)

static void chacha20_block(const uint32_t in[16], uint8_t out[64]) {
    uint32_t x[16];
    memcpy(x, in, sizeof x);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) store32le(out + 4 * i, x[i] + in[i]);
}

/* XORs the keystream into buf (encrypts or decrypts) */
__attribute__((noinline)) static void chacha20_xor(const uint8_t key[32], const uint8_t nonce[12], uint32_t counter,
                                                    uint8_t *buf, size_t len) {
    uint32_t st[16];
    st[0] = 0x61707865u;
    st[1] = 0x3320646eu;
    st[2] = 0x79622d32u;
    st[3] = 0x6b206574u;
    for (int i = 0; i < 8; i++) st[4 + i] = load32le(key + 4 * i);
    st[12] = counter;
    for (int i = 0; i < 3; i++) st[13 + i] = load32le(nonce + 4 * i);
    uint8_t ks[64];
    for (size_t off = 0; off < len; off += 64) {
        chacha20_block(st, ks);
        st[12]++;
        size_t n = len - off < 64 ? len - off : 64;
        for (size_t i = 0; i < n; i++) buf[off + i] ^= ks[i];
    }
}

/* ---- SHA-256 ---- */

typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
} Sha256;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr32(uint32_t v, int c) { return (v >> c) | (v << (32 - c)); }

static void sha256_compress(uint32_t h[8], const uint8_t p[64]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr32(w[i - 15], 7) ^ rotr32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr32(w[i - 2], 17) ^ rotr32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

static void sha256_init(Sha256 *s) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->bytes = 0;
    s->fill = 0;
}

__attribute__((noinline)) static void sha256_update(Sha256 *s, const uint8_t *p, size_t n) {
    s->bytes += n;
    while (n > 0) {
        if (s->fill == 0 && n >= 64) {
            sha256_compress(s->h, p);
            p += 64;
            n -= 64;
            continue;
        }
        size_t k = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->block + s->fill, p, k);
        s->fill += k;
        p += k;
        n -= k;
        if (s->fill == 64) {
            sha256_compress(s->h, s->block);
            s->fill = 0;
        }
    }
}

static void sha256_final(Sha256 *s, uint8_t out[32]) {
    uint64_t bits = s->bytes * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (s->fill < 56 ? 56 : 120) - s->fill;
    for (int i = 0; i < 8; i++) pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(s, pad, padlen + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

static void hex(const uint8_t *p, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

/* ---- driver ---- */

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t xorshift64(void) { return xorshift64_next(&rng_state); }

static int known_answers(void) {
    int ok = 1;
    char h[65];
    uint8_t d[32];
    Sha256 s;
    sha256_init(&s);
    sha256_update(&s, (const uint8_t *)"abc", 3);
    sha256_final(&s, d);
    hex(d, 32, h);
    ok &= strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0;

    static const char sunscreen[] = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
                                    "for the future, sunscreen would be it.";
    uint8_t key[32], nonce[12] = {0, 0, 0, 0, 0, 0, 0, 0x4a, 0, 0, 0, 0}, msg[sizeof sunscreen - 1];
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
    memcpy(msg, sunscreen, sizeof msg);
    chacha20_xor(key, nonce, 1, msg, sizeof msg);
    static const uint8_t first[16] = {0x6e, 0x2e, 0x35, 0x9a, 0x25, 0x68, 0xf9, 0x80,
                                      0x41, 0xba, 0x07, 0x28, 0xdd, 0x0d, 0x69, 0x81};
    static const uint8_t last[2] = {0x87, 0x4d};
    ok &= memcmp(msg, first, 16) == 0 && memcmp(msg + sizeof msg - 2, last, 2) == 0;
    return ok;
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "cipher");
    int ok = known_answers();
    printf("cipher scale=%ld buffer=%d rounds=%ld\n", scale, BUF, scale);
    printf("known answers: %s\n", ok ? "ok" : "FAIL");

    Sha256 chain;
    sha256_init(&chain);
    uint64_t fnv_all = 0;
    long bad = 0;
    for (long r = 0; r < scale; r++) {
        for (size_t i = 0; i < BUF; i += 8) {
            uint64_t v = xorshift64();
            /* text-like low entropy in half of each 4 KiB page, noise in the other half */
            if ((i >> 11) & 1) v &= 0x1f1f1f1f1f1f1f1full;
            memcpy(plain + i, &v, 8); /* little-endian on wasm32 */
        }
        uint8_t key[32], nonce[12];
        for (int i = 0; i < 32; i++) key[i] = (uint8_t)(xorshift64() >> 56);
        for (int i = 0; i < 12; i++) nonce[i] = (uint8_t)(xorshift64() >> 56);
        memcpy(work, plain, BUF);
        chacha20_xor(key, nonce, (uint32_t)r, work, BUF);

        Sha256 s;
        uint8_t d[32];
        sha256_init(&s);
        sha256_update(&s, work, BUF);
        sha256_final(&s, d);
        sha256_update(&chain, d, 32);

        uint64_t fnv = 14695981039346656037ull;
        for (size_t i = 0; i < BUF; i++) fnv = (fnv ^ work[i]) * 1099511628211ull;
        fnv_all = fnv_all * 31 + fnv;

        chacha20_xor(key, nonce, (uint32_t)r, work, BUF);
        if (memcmp(work, plain, BUF) != 0) bad++;
    }
    uint8_t d[32];
    char h[65];
    sha256_final(&chain, d);
    hex(d, 32, h);
    printf("sha256 chain=%s\n", h);
    printf("fnv1a=%016llx roundtrip: %s\n", (unsigned long long)fnv_all, bad ? "FAIL" : "ok");
    return ok && !bad ? 0 : 1;
}
