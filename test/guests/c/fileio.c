/* fileio.c -- file I/O inside the preopened directory /data
 * (run with `--dir HOSTDIR::/data`; HOSTDIR should start empty).
 * Writes, appends, seeks/patches, reads back, pread/pwrite, renames, makes and
 * removes a subdirectory, lists the directory (sorted), removes one file.
 * Leaves exactly two files behind: /data/out.txt and /data/keep.txt, whose
 * contents are deterministic. Exits 0, or 1 if an operation fails. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(cond, what)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            printf("FAILED: %s (errno %d: %s)\n", what, errno, strerror(errno)); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_dir(const char *path) {
    DIR *d = opendir(path);
    CHECK(d != NULL, "opendir");
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n < 64) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_str);
    printf("listing %s (%d entries):", path, n);
    for (int i = 0; i < n; i++) {
        char full[256];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        CHECK(stat(full, &st) == 0, "stat");
        printf(" %s%s[%lld]", names[i], S_ISDIR(st.st_mode) ? "/" : "",
               S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size);
        free(names[i]);
    }
    printf("\n");
}

static void cat(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "fopen r");
    char line[256];
    int no = 0;
    while (fgets(line, sizeof line, f)) printf("  %s:%d: %s", path, ++no, line);
    fclose(f);
}

int main(void) {
    /* clean up leftovers of a previous run in the same directory */
    unlink("/data/a.txt");
    unlink("/data/b.txt");
    unlink("/data/out.txt");
    unlink("/data/keep.txt");
    unlink("/data/sub/inner.txt");
    rmdir("/data/sub");

    /* write */
    FILE *f = fopen("/data/a.txt", "w");
    CHECK(f != NULL, "fopen w");
    for (int i = 1; i <= 5; i++) fprintf(f, "line %d: %d squared is %d\n", i, i, i * i);
    CHECK(fclose(f) == 0, "fclose");
    printf("wrote /data/a.txt\n");

    /* append */
    f = fopen("/data/a.txt", "a");
    CHECK(f != NULL, "fopen a");
    fputs("appended line\n", f);
    fclose(f);
    printf("appended to /data/a.txt\n");

    /* seek + patch + tell */
    f = fopen("/data/a.txt", "r+");
    CHECK(f != NULL, "fopen r+");
    CHECK(fseek(f, 0, SEEK_END) == 0, "fseek end");
    long size = ftell(f);
    printf("size after append: %ld\n", size);
    CHECK(fseek(f, 5, SEEK_SET) == 0, "fseek set");
    fputs("ONE", f); /* "line 1:" -> "line ONE" overwrites "1: " */
    CHECK(fseek(f, -14, SEEK_END) == 0, "fseek -end");
    fputs("APPENDED", f);
    rewind(f);
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    printf("read back %zu bytes, first line: %.*s\n", n, (int)strcspn(buf, "\n"), buf);

    /* low-level: open/pwrite/pread/lseek/fstat */
    int fd = open("/data/b.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0, "open b");
    CHECK(write(fd, "0123456789abcdef", 16) == 16, "write b");
    CHECK(pwrite(fd, "XY", 2, 4) == 2, "pwrite");
    char small[8] = {0};
    CHECK(pread(fd, small, 6, 2) == 6, "pread");
    off_t end = lseek(fd, 0, SEEK_END);
    struct stat st;
    CHECK(fstat(fd, &st) == 0, "fstat");
    close(fd);
    printf("b.txt: pread(2,6)=%s end=%lld st_size=%lld\n", small, (long long)end, (long long)st.st_size);

    /* subdirectory */
    CHECK(mkdir("/data/sub", 0755) == 0, "mkdir");
    f = fopen("/data/sub/inner.txt", "w");
    CHECK(f != NULL, "fopen inner");
    fputs("inner\n", f);
    fclose(f);
    list_dir("/data");
    list_dir("/data/sub");

    /* rename, remove */
    CHECK(rename("/data/a.txt", "/data/out.txt") == 0, "rename");
    printf("renamed a.txt -> out.txt\n");
    f = fopen("/data/keep.txt", "w");
    CHECK(f != NULL, "fopen keep");
    fputs("keep me\n", f);
    fclose(f);
    CHECK(unlink("/data/b.txt") == 0, "unlink b");
    CHECK(unlink("/data/sub/inner.txt") == 0, "unlink inner");
    CHECK(rmdir("/data/sub") == 0, "rmdir");
    printf("removed b.txt and sub/\n");
    errno = 0;
    CHECK(access("/data/b.txt", F_OK) != 0 && errno == ENOENT, "b.txt still exists");
    list_dir("/data");
    cat("/data/out.txt");
    printf("fileio: ok\n");
    return 0;
}
