/*
 * bench/dedup: the event-identity set alone. Fingerprints N identities (SipHash-128 of
 * "org/subscription/transaction id"), inserts them, then looks up N present and N absent.
 * Prints operations per second and bytes per event.
 *
 *   build/release/bench/bench_dedup [N]
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/dedup.h"
#include "sys/wallclock.h"

static const uint8_t key[16] = {7, 1, 4, 9, 2, 8, 3, 6, 5, 0, 11, 13, 12, 15, 14, 10};

static struct siphash128 fp_of(long i, const char *run)
{
    char text[96];
    int n = snprintf(text, sizeof text, "org-1/sub-%ld/%s-txn-%016lx", i % 1000, run, i);
    return dedup_fingerprint(key, text, (size_t)n);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    struct dedup d;
    if (n <= 0 || !dedup_init(&d, 0))
        return 2;
    int64_t t0 = wallclock_monotonic_usec();
    /* bytes an event sampled at counts spaced evenly on a log scale from 1M: what a set of a
     * size met at random costs, the table made ahead of a growth included */
    double sampled = 0, peak = 0;
    int samples = 0;
    double next_sample = 1e6;
    for (long i = 0; i < n; i++) {
        if (dedup_insert(&d, fp_of(i, "a"), 1, (uint64_t)i) != DEDUP_INSERTED)
            return 1;
        if ((double)(i + 1) >= next_sample) {
            double b = (double)dedup_memory_bytes(&d) / (double)(i + 1);
            sampled += b;
            peak = b > peak ? b : peak;
            samples++;
            next_sample *= 1.0442737824274138; /* 2^(1/16) */
        }
    }
    int64_t t1 = wallclock_monotonic_usec();
    long hits = 0;
    for (long i = 0; i < n; i++)
        hits += dedup_find(&d, fp_of(i, "a"), 1, NULL);
    int64_t t2 = wallclock_monotonic_usec();
    long misses = 0;
    for (long i = 0; i < n; i++)
        misses += !dedup_find(&d, fp_of(i, "b"), 1, NULL);
    int64_t t3 = wallclock_monotonic_usec();
    if (hits != n || misses != n)
        return 1;
    printf("dedup: %ld identities: fingerprint+insert %.2f M/s, lookup hit %.2f M/s, "
           "miss %.2f M/s; %.1f bytes/event at the end, %.1f on average from 1M (%d samples), "
           "%.1f at most\n",
           n, (double)n / (double)(t1 - t0), (double)n / (double)(t2 - t1),
           (double)n / (double)(t3 - t2), (double)dedup_memory_bytes(&d) / (double)n,
           samples ? sampled / samples : 0.0, samples, peak);
    dedup_free(&d);
    return 0;
}
