// Prints "tick NN SUM" COUNT times (argv[1], default 40), sleeping MS milliseconds (argv[2],
// default 50) before each, where SUM folds a heap buffer the program keeps rewriting: a program
// that runs long enough, and calls often enough, for followers to join it while it runs, with
// state in its heap that a follower resumed from a snapshot must have received.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 40;
  int ms = argc > 2 ? atoi(argv[2]) : 50;
  enum { WORDS = 4096 };
  unsigned *words = malloc(sizeof *words * WORDS);
  if (!words) return 1;
  for (int w = 0; w < WORDS; w++) words[w] = (unsigned)w * 2654435761u;
  struct timespec pause = {ms / 1000, (long)(ms % 1000) * 1000000L};
  for (int i = 0; i < count; i++) {
    nanosleep(&pause, NULL);
    unsigned sum = 0;
    for (int w = 0; w < WORDS; w++) {
      words[w] = words[w] * 1103515245u + (unsigned)i;
      sum ^= words[w] >> (w % 7);
    }
    printf("tick %02d %08x\n", i, sum);
    fflush(stdout);
  }
  free(words);
  return 0;
}
