/* nbody.c -- benchmark workload: gravitational n-body simulation.
 * 128 bodies with masses, positions and velocities from a xorshift PRNG,
 * all-pairs softened gravity (one sqrt per pair), leapfrog (kick-drift)
 * integration with a fixed time step. Only +, -, *, / and sqrt (exact in
 * IEEE 754) are used, in a fixed order, so the trajectory is the same
 * sequence of doubles on every ISA. Prints the total energy and momentum at
 * the start and the end (6 decimals) and a hash of the final positions
 * quantised to 1e-6.
 *   nbody.wasm [SCALE]   150 * SCALE steps (default SCALE 1). Exits 0. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define NB 128
#define STEPS_PER_SCALE 150
#define DT 0.001
#define SOFT2 0.01 /* softening length squared */

typedef struct {
    double x, y, z, vx, vy, vz, m;
} Body;

static Body bodies[NB];
static double ax[NB], ay[NB], az[NB];

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint64_t xorshift64(void) { return xorshift64_next(&rng_state); }
/* uniform in [-1, 1) with 2^-20 resolution */
static double urand(void) { return (double)((int64_t)(xorshift64() >> 43) - (1 << 20)) / (double)(1 << 20); }

__attribute__((noinline)) static void accelerations(void) {
    for (int i = 0; i < NB; i++) ax[i] = ay[i] = az[i] = 0.0;
    for (int i = 0; i < NB; i++) {
        Body *a = &bodies[i];
        for (int j = i + 1; j < NB; j++) {
            Body *b = &bodies[j];
            double dx = b->x - a->x, dy = b->y - a->y, dz = b->z - a->z;
            double d2 = dx * dx + dy * dy + dz * dz + SOFT2;
            double d = sqrt(d2);
            double inv3 = 1.0 / (d2 * d);
            double fa = b->m * inv3, fb = a->m * inv3;
            ax[i] += dx * fa;
            ay[i] += dy * fa;
            az[i] += dz * fa;
            ax[j] -= dx * fb;
            ay[j] -= dy * fb;
            az[j] -= dz * fb;
        }
    }
}

static double energy(void) {
    double e = 0.0;
    for (int i = 0; i < NB; i++) {
        Body *a = &bodies[i];
        e += 0.5 * a->m * (a->vx * a->vx + a->vy * a->vy + a->vz * a->vz);
        for (int j = i + 1; j < NB; j++) {
            Body *b = &bodies[j];
            double dx = b->x - a->x, dy = b->y - a->y, dz = b->z - a->z;
            e -= a->m * b->m / sqrt(dx * dx + dy * dy + dz * dz + SOFT2);
        }
    }
    return e;
}

static double momentum(void) {
    double px = 0, py = 0, pz = 0;
    for (int i = 0; i < NB; i++) {
        px += bodies[i].m * bodies[i].vx;
        py += bodies[i].m * bodies[i].vy;
        pz += bodies[i].m * bodies[i].vz;
    }
    return sqrt(px * px + py * py + pz * pz);
}

int main(int argc, char **argv) {
    long scale = bench_scale(argc, argv, "nbody");
    for (int i = 0; i < NB; i++) {
        Body *b = &bodies[i];
        b->x = urand() * 10.0;
        b->y = urand() * 10.0;
        b->z = urand() * 2.0;
        /* a rough rotation about z plus noise */
        b->vx = -b->y * 0.1 + urand() * 0.05;
        b->vy = b->x * 0.1 + urand() * 0.05;
        b->vz = urand() * 0.02;
        b->m = 0.5 + (urand() + 1.0) * 0.75;
    }
    double e0 = energy(), p0 = momentum();
    long steps = scale * STEPS_PER_SCALE;
    accelerations();
    for (long s = 0; s < steps; s++) {
        for (int i = 0; i < NB; i++) { /* kick (half), drift */
            Body *b = &bodies[i];
            b->vx += 0.5 * DT * ax[i];
            b->vy += 0.5 * DT * ay[i];
            b->vz += 0.5 * DT * az[i];
            b->x += DT * b->vx;
            b->y += DT * b->vy;
            b->z += DT * b->vz;
        }
        accelerations();
        for (int i = 0; i < NB; i++) { /* kick (half) */
            Body *b = &bodies[i];
            b->vx += 0.5 * DT * ax[i];
            b->vy += 0.5 * DT * ay[i];
            b->vz += 0.5 * DT * az[i];
        }
    }
    double e1 = energy(), p1 = momentum();
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < NB; i++) {
        double c[3] = {bodies[i].x, bodies[i].y, bodies[i].z};
        for (int k = 0; k < 3; k++) {
            double q = c[k] * 1e6;
            h = (h ^ (uint64_t)(int64_t)(q < 0 ? q - 0.5 : q + 0.5)) * 1099511628211ull;
        }
    }
    printf("nbody scale=%ld bodies=%d steps=%ld\n", scale, NB, steps);
    printf("energy start=%.6f end=%.6f\n", e0, e1);
    printf("momentum start=%.6f end=%.6f\n", p0, p1);
    printf("position hash=%016llx\n", (unsigned long long)h);
    return 0;
}
