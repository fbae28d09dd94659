/* http_server.c -- a small HTTP/1.1 server serving one static body.
 *
 * It accepts connections on the listening socket the runtime hands it (--tcplisten: the
 * descriptor after the preopened directories, 3 without any), reads requests up to their blank
 * line, and answers each with "hello from mvvm\n". A connection stays open for further requests
 * (HTTP/1.1 keep-alive) until the client closes it or sends "Connection: close". With an
 * argument N it exits 0 after N requests; without one it serves until it is stopped.
 *
 * wasi-libc has no accept(), so it calls the WASI socket functions directly. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

#define LISTENER 3

static const char BODY[] = "hello from mvvm\n";

/* Reads one request (up to and including its blank line) into buf; returns its length, or 0 if
 * the client closed the connection, or -1 on an error or a request too large for buf. */
static int read_request(__wasi_fd_t fd, char *buf, size_t cap, size_t *have) {
    for (;;) {
        char *end = memmem(buf, *have, "\r\n\r\n", 4);
        if (end) return (int)(end - buf) + 4;
        if (*have == cap) return -1;
        __wasi_iovec_t iov = {(uint8_t *)buf + *have, cap - *have};
        __wasi_size_t got = 0;
        __wasi_roflags_t flags = 0;
        if (__wasi_sock_recv(fd, &iov, 1, 0, &got, &flags) != 0) return -1;
        if (got == 0) return 0;
        *have += got;
    }
}

static int send_all(__wasi_fd_t fd, const char *data, size_t len) {
    while (len > 0) {
        __wasi_ciovec_t iov = {(const uint8_t *)data, len};
        __wasi_size_t sent = 0;
        if (__wasi_sock_send(fd, &iov, 1, 0, &sent) != 0 || sent == 0) return -1;
        data += sent;
        len -= sent;
    }
    return 0;
}

/* Serves one connection; returns how many requests it answered, stopping at `left`. */
static long serve(__wasi_fd_t fd, long left) {
    char buf[8192];
    size_t have = 0;
    long served = 0;
    char response[256];
    int head = snprintf(response, sizeof response,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                        sizeof BODY - 1, BODY);
    while (left < 0 || served < left) {
        int len = read_request(fd, buf, sizeof buf, &have);
        if (len <= 0) break;
        int closing = memmem(buf, len, "Connection: close", 17) != NULL;
        if (send_all(fd, response, (size_t)head) != 0) break;
        served++;
        memmove(buf, buf + len, have - len);
        have -= len;
        if (closing) break;
    }
    (void)__wasi_fd_close(fd);
    return served;
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : -1;
    long served = 0;
    while (limit < 0 || served < limit) {
        __wasi_fd_t conn;
        __wasi_errno_t e = __wasi_sock_accept(LISTENER, 0, &conn);
        if (e != 0) {
            fprintf(stderr, "http_server: accept failed (errno %d); run it with --tcplisten\n", e);
            return 1;
        }
        served += serve(conn, limit < 0 ? -1 : limit - served);
    }
    printf("served %ld requests\n", served);
    return 0;
}
