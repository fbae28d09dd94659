/* argsenv.c -- prints its arguments and the environment variables MVVM_A and
 * MVVM_B (only those, in sorted order), then exits with status = argc.
 * This is the guest with a deliberate NON-ZERO exit status (argc >= 1).
 * argv[0] is not printed (runners differ in what they pass there), only
 * whether it is non-empty. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    printf("argv[0] %s\n", argc > 0 && argv[0] && argv[0][0] ? "present" : "empty");
    for (int i = 1; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);

    /* walk environ so the WASI environ_get path is exercised, keep only ours */
    const char *found[16];
    int n = 0;
    for (char **e = environ; e && *e; e++)
        if ((strncmp(*e, "MVVM_A=", 7) == 0 || strncmp(*e, "MVVM_B=", 7) == 0) && n < 16)
            found[n++] = *e;
    qsort(found, n, sizeof found[0], cmp_str);
    for (int i = 0; i < n; i++) printf("env %s\n", found[i]);
    const char *a = getenv("MVVM_A"), *b = getenv("MVVM_B");
    printf("getenv MVVM_A=%s MVVM_B=%s\n", a ? a : "(unset)", b ? b : "(unset)");
    printf("exiting with %d\n", argc);
    fflush(stdout);
    return argc;
}
