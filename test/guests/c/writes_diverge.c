/* writes_diverge.c -- writes.c whose 10th line differs: a follower that diverges at its 10th
 * write. */
#define DIVERGE_AT 10
#include "writes.c"
