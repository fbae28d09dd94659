/* heap_address.c -- prints where its heap and its static data lie, for the variant tests: a
 * `mvvm-aot --shift-data BYTES` variant prints a heap address BYTES higher and the same static
 * address, a `--shift-stack` variant a lower stack address. Its output differs between variants
 * by design, so it is no guest of the agreeing-pair tests. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static char data[16] = "static";

int main(void) {
    char local[16] = "stack";
    char *heap = malloc(64);
    if (heap == NULL)
        return 1;
    printf("heap %lu\ndata %lu\nstack %lu\n", (unsigned long)(uintptr_t)heap,
           (unsigned long)(uintptr_t)data, (unsigned long)(uintptr_t)local);
    free(heap);
    return data[0] == 's' && local[0] == 's' ? 0 : 1;
}
