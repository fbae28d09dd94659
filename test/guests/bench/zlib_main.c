/* zlib_main.c -- benchmark workload: our driver for zlib (the C sources
 * shipped in the libz-sys crate, src/zlib/). Each round generates 128 KiB of
 * mixed data with a xorshift PRNG (text from a small vocabulary, CSV-like
 * number lines, byte runs and an incompressible random block), then for each
 * of four settings
 *   zlib level 1, zlib level 6, zlib level 9, gzip level 6 Z_HUFFMAN_ONLY
 * deflates it in a streaming loop (16 KiB in, 8 KiB out at a time) and
 * inflates it back the same way (4 KiB out at a time), checking the result.
 * Prints the compressed sizes, CRC-32 and Adler-32 of the input, and a CRC-32
 * of every compressed stream (so the deflate output is checked bit for bit).
 * The zlib version goes to stderr only.
 *   zlib_main.wasm [SCALE]   SCALE rounds (default 1). Exits 0 (1 on any zlib error or mismatch). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#include "zlib.h"

#define DATA (128 * 1024)
#define COMP (DATA + DATA / 8 + 1024)
#define NSET 4

static unsigned char data[DATA], comp[COMP], back[DATA];

static const struct {
    const char *name;
    int level, window_bits, strategy;
} settings[NSET] = {
    {"zlib-1", 1, 15, Z_DEFAULT_STRATEGY},
    {"zlib-6", 6, 15, Z_DEFAULT_STRATEGY},
    {"zlib-9", 9, 15, Z_DEFAULT_STRATEGY},
    {"gzip-6-huffman", 6, 31, Z_HUFFMAN_ONLY},
};

static uint64_t rng_state = 0x5851f42d4c957f2dull;
static uint64_t xorshift64(void) { return xorshift64_next(&rng_state); }

static void fail(const char *what, int rc) {
    printf("zlib error in %s: %d\n", what, rc);
    exit(1);
}

static void generate(void) {
    static const char *words[] = {"checkpoint", "restore", "the", "wasm", "frame", "stack", "of", "memory",
                                  "image", "a", "runtime", "loop", "site", "and", "pulley", "native"};
    size_t n = 0;
    while (n < DATA) {
        uint64_t r = xorshift64();
        size_t room = DATA - n;
        switch (r % 16) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: { /* a line of text */
            int nw = 4 + (int)((r >> 8) % 12);
            for (int i = 0; i < nw && n < DATA; i++) {
                const char *w = words[xorshift64() % 16];
                size_t len = strlen(w);
                if (len + 1 > DATA - n) len = DATA - n - 1;
                memcpy(data + n, w, len);
                n += len;
                if (n < DATA) data[n++] = i + 1 == nw ? '\n' : ' ';
            }
            break;
        }
        case 9: case 10: case 11: case 12: { /* CSV numbers */
            char line[96];
            int len = snprintf(line, sizeof line, "%u,%u,%d,%u\n", (unsigned)(r >> 40), (unsigned)((r >> 8) % 1000),
                               (int)((r >> 20) % 2001) - 1000, (unsigned)(xorshift64() % 100000));
            size_t k = (size_t)len < room ? (size_t)len : room;
            memcpy(data + n, line, k);
            n += k;
            break;
        }
        case 13: case 14: { /* a run */
            size_t k = 16 + (size_t)((r >> 8) % 300);
            if (k > room) k = room;
            memset(data + n, (int)((r >> 32) & 0xff), k);
            n += k;
            break;
        }
        default: { /* noise */
            size_t k = 32 + (size_t)((r >> 8) % 256);
            if (k > room) k = room;
            for (size_t i = 0; i < k; i++) data[n + i] = (unsigned char)(xorshift64() >> 56);
            n += k;
            break;
        }
        }
    }
}

static size_t compress_stream(int s) {
    z_stream z;
    memset(&z, 0, sizeof z);
    int rc = deflateInit2(&z, settings[s].level, Z_DEFLATED, settings[s].window_bits, 8, settings[s].strategy);
    if (rc != Z_OK) fail("deflateInit2", rc);
    size_t in = 0, out = 0;
    do {
        size_t chunk = DATA - in < 16384 ? DATA - in : 16384;
        z.next_in = data + in;
        z.avail_in = (uInt)chunk;
        in += chunk;
        int flush = in == DATA ? Z_FINISH : Z_NO_FLUSH;
        do {
            size_t space = COMP - out < 8192 ? COMP - out : 8192;
            z.next_out = comp + out;
            z.avail_out = (uInt)space;
            rc = deflate(&z, flush);
            if (rc == Z_STREAM_ERROR) fail("deflate", rc);
            out += space - z.avail_out;
        } while (z.avail_out == 0 && out < COMP);
    } while (in < DATA);
    if (rc != Z_STREAM_END) fail("deflate (not finished)", rc);
    deflateEnd(&z);
    return out;
}

static void decompress_stream(int s, size_t len) {
    z_stream z;
    memset(&z, 0, sizeof z);
    int rc = inflateInit2(&z, settings[s].window_bits);
    if (rc != Z_OK) fail("inflateInit2", rc);
    z.next_in = comp;
    z.avail_in = (uInt)len;
    size_t out = 0;
    do {
        size_t space = DATA - out < 4096 ? DATA - out : 4096;
        if (space == 0) fail("inflate (output too long)", 0);
        z.next_out = back + out;
        z.avail_out = (uInt)space;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) fail("inflate", rc);
        out += space - z.avail_out;
    } while (rc != Z_STREAM_END);
    inflateEnd(&z);
    if (out != DATA || memcmp(back, data, DATA) != 0) fail("round trip (data differs)", 0);
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "zlib_main");
    fprintf(stderr, "zlib %s\n", zlibVersion());
    uLong crc = crc32(0L, Z_NULL, 0), adler = adler32(0L, Z_NULL, 0);
    uLong comp_crc[NSET];
    uint64_t sizes[NSET] = {0};
    for (int s = 0; s < NSET; s++) comp_crc[s] = crc32(0L, Z_NULL, 0);
    for (long r = 0; r < scale; r++) {
        generate();
        crc = crc32(crc, data, DATA);
        adler = adler32(adler, data, DATA);
        for (int s = 0; s < NSET; s++) {
            size_t len = compress_stream(s);
            sizes[s] += len;
            comp_crc[s] = crc32(comp_crc[s], comp, (uInt)len);
            decompress_stream(s, len);
        }
    }
    printf("zlib_main scale=%ld input=%llu bytes\n", scale, (unsigned long long)DATA * (unsigned long long)scale);
    printf("input crc32=%08lx adler32=%08lx\n", (unsigned long)crc, (unsigned long)adler);
    for (int s = 0; s < NSET; s++)
        printf("%-15s compressed=%llu stream crc32=%08lx\n", settings[s].name, (unsigned long long)sizes[s],
               (unsigned long)comp_crc[s]);
    printf("round trips: ok\n");
    return 0;
}
