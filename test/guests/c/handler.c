/* handler.c -- a request handler with a real memory-safety bug, for the multi-variant tests.
 *
 * It reads requests from stdin, one per line (any bytes, NULs included), and answers each with
 * a greeting: "alice" -> "hello, alice". A secret (the file /secret/key, preopened with
 * --dir DIR::/secret) sits in a buffer on main's stack and is never meant to leave. The bug:
 * handle() copies the request into its struct with the length of the line, not the size of
 * the struct, so a request longer than 16 bytes overwrites the greeting pointer behind the
 * name. A request that writes the secret's absolute address there makes the handler print the
 * secret as its greeting. handler.corpus holds benign requests. Exits 0 at the end of input,
 * 2 without the secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <fcntl.h>
#include <unistd.h>

struct request {
    char name[16];
    const char *greeting;
};

static const char hello[] = "hello";

__attribute__((noinline)) static void handle(const char *line, size_t len) {
    struct request r;
    r.greeting = hello;
    memset(r.name, 0, sizeof r.name);
    memcpy((char *)&r, line, len); /* BUG: len is not checked against sizeof r */
    printf("%s, %.16s\n", r.greeting, r.name);
    fflush(stdout);
}

int main(void) {
    char secret[32] = {0};
    /* Read straight into the stack buffer, so that the secret has one copy in memory. */
    int fd = open("/secret/key", O_RDONLY);
    if (fd < 0 || read(fd, secret, sizeof secret - 1) < 0) {
        fprintf(stderr, "cannot read /secret/key\n");
        return 2;
    }
    close(fd);
    char *line = NULL;
    size_t room = 0, served = 0;
    ssize_t got;
    while ((got = getline(&line, &room, stdin)) > 0) {
        size_t len = (size_t)got;
        if (line[len - 1] == '\n')
            len--;
        handle(line, len);
        served++;
    }
    free(line);
    /* Keeps the secret's buffer alive (and on the stack) until the end. */
    fprintf(stderr, "served %zu requests (secret of %zu bytes kept)\n", served, strlen(secret));
    return 0;
}
