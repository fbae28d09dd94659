/* renumber.c -- moves the standard streams and the preopened directory to other descriptor
 * numbers with fd_renumber, then keeps working through the new numbers
 * (run with `--dir HOSTDIR::/data`; HOSTDIR should start empty).
 * stdin goes to fd 6 (fd_renumber(0, 6)), the preopen /data to fd 0, a file lands on fd 3, the
 * preopen's old number, and stdout goes to fd 5. Between the moves it computes and
 * prints through the moved stdout, so a checkpoint can happen in any of the table's shapes.
 * Leaves /data/a.txt and /data/e.txt behind. Exits 0, or 1 if an operation fails. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static int out = 1; /* where stdout is now */

/* Prints through the current stdout descriptor (stdio's FILE would keep writing to fd 1). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (write(out, line, (size_t)n) != n) exit(1);
}

static void check(int ok, const char *what) {
    if (!ok) {
        say("FAILED: %s\n", what);
        exit(1);
    }
}

/* Some work with a write per round, so that every phase has sites. */
static unsigned long long work(unsigned long long seed, int rounds) {
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 20000; i++) seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        say("  round %d: %llu\n", r, seed >> 40);
    }
    return seed;
}

/* path_open relative to directory descriptor `dir`, for writing (create, truncate). */
static int open_at(int dir, const char *path) {
    __wasi_fd_t fd;
    __wasi_rights_t rights = __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK |
                             __WASI_RIGHTS_FD_TELL;
    __wasi_errno_t e = __wasi_path_open(dir, 0, path, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC,
                                        rights, rights, 0, &fd);
    check(e == 0, "path_open");
    return (int)fd;
}

static void put(int fd, const char *s) {
    check(write(fd, s, strlen(s)) == (long)strlen(s), "write");
}

int main(void) {
    unsigned long long seed = 7;
    int a = open("/data/a.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    int b = open("/data/b.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    int c = open("/data/c.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    say("opened a=%d b=%d c=%d\n", a, b, c);
    seed = work(seed, 3);

    /* Each open below has exactly one free number to take, so every WASI gives the same one. */
    check(__wasi_fd_renumber(0, 6) == 0, "renumber stdin");
    say("stdin moved to fd 6 (c.txt closed)\n");
    seed = work(seed, 3);

    int d = open("/data/d.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    say("d.txt opened at fd %d\n", d);
    check(__wasi_fd_renumber(3, d) == 0, "renumber the preopen");
    int dir = d;
    say("/data moved to fd %d (d.txt closed)\n", dir);
    seed = work(seed, 3);

    /* A file on the preopen's old number, opened through the preopen's new one. */
    int e = open_at(dir, "e.txt");
    say("e.txt opened at fd %d\n", e);
    put(e, "e.txt through the moved directory\n");
    put(a, "a.txt line 1\n");
    seed = work(seed, 3);

    check(__wasi_fd_renumber(1, b) == 0, "renumber stdout");
    out = b;
    say("stdout moved to fd %d (b.txt closed)\n", b);
    put(a, "a.txt line 2\n");
    seed = work(seed, 3);

    check(close(e) == 0 && close(a) == 0, "close");
    check(__wasi_path_unlink_file(dir, "b.txt") == 0, "unlink b");
    check(__wasi_path_unlink_file(dir, "c.txt") == 0, "unlink c");
    check(__wasi_path_unlink_file(dir, "d.txt") == 0, "unlink d");
    say("renumber: ok %llu\n", seed & 0xff);
    return 0;
}
