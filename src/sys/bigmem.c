/* sys/bigmem: see bigmem.h. */
#include "sys/bigmem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* What a large allocation maps: its bytes rounded up to whole pages. */
static size_t mapped_bytes(size_t bytes)
{
    return (bytes + BIGMEM_PAGE_BYTES - 1) & ~(BIGMEM_PAGE_BYTES - 1);
}

void *bigmem_alloc_zeroed(size_t bytes)
{
    if (bytes < BIGMEM_MAPPED_MIN_BYTES)
        return calloc(1, bytes ? bytes : 1);
    size_t len = mapped_bytes(bytes);
    if (len < bytes)
        return NULL;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void bigmem_free(void *p, size_t bytes)
{
    if (!p)
        return;
    if (bytes < BIGMEM_MAPPED_MIN_BYTES)
        free(p);
    else
        munmap(p, mapped_bytes(bytes));
}

/* ---- the prefaulter ----------------------------------------------------------------------- */

struct range {
    char *from, *to;
};

struct bigmem_prefaulter {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* work queued, a chunk done, or stopping */
    struct range queue[BIGMEM_PREFAULT_QUEUE];
    size_t queued;
    struct range busy; /* the chunk being populated now (from == NULL: none) */
    size_t done_bytes;
    bool stopping;
};

static bool populate_now(void *p, size_t bytes)
{
#ifdef MADV_POPULATE_WRITE
    return madvise(p, bytes, MADV_POPULATE_WRITE) == 0;
#else
    (void)p;
    (void)bytes;
    return false;
#endif
}

static void *prefault_main(void *arg)
{
    struct bigmem_prefaulter *pf = arg;
    pthread_setname_np(pthread_self(), "tally-prefault"); /* for top -H and /proc; best effort */
    pthread_mutex_lock(&pf->lock);
    for (;;) {
        while (!pf->stopping && pf->queued == 0)
            pthread_cond_wait(&pf->changed, &pf->lock);
        if (pf->stopping)
            break;
        /* a chunk off the front of the first range, populated unlocked */
        struct range *r = &pf->queue[0];
        pf->busy = (struct range){r->from, r->from + BIGMEM_PREFAULT_CHUNK_BYTES};
        if (pf->busy.to > r->to)
            pf->busy.to = r->to;
        r->from = pf->busy.to;
        if (r->from == r->to) {
            pf->queued--;
            for (size_t i = 0; i < pf->queued; i++)
                pf->queue[i] = pf->queue[i + 1];
        }
        pthread_mutex_unlock(&pf->lock);
        bool ok = populate_now(pf->busy.from, (size_t)(pf->busy.to - pf->busy.from));
        pthread_mutex_lock(&pf->lock);
        if (ok)
            pf->done_bytes += (size_t)(pf->busy.to - pf->busy.from);
        pf->busy = (struct range){NULL, NULL};
        pthread_cond_broadcast(&pf->changed);
    }
    pthread_mutex_unlock(&pf->lock);
    return NULL;
}

struct bigmem_prefaulter *bigmem_prefaulter_start(void)
{
    /* can this kernel populate ahead? asked once, of a mapping of our own */
    void *probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED)
        return NULL;
    bool can = populate_now(probe, 4096);
    munmap(probe, 4096);
    if (!can)
        return NULL;
    struct bigmem_prefaulter *pf = calloc(1, sizeof *pf);
    if (!pf)
        return NULL;
    pthread_mutex_init(&pf->lock, NULL);
    pthread_cond_init(&pf->changed, NULL);
    if (pthread_create(&pf->thread, NULL, prefault_main, pf) != 0) {
        pthread_mutex_destroy(&pf->lock);
        pthread_cond_destroy(&pf->changed);
        free(pf);
        return NULL;
    }
    return pf;
}

void bigmem_prefaulter_stop(struct bigmem_prefaulter *pf)
{
    if (!pf)
        return;
    pthread_mutex_lock(&pf->lock);
    pf->stopping = true;
    pthread_cond_broadcast(&pf->changed);
    pthread_mutex_unlock(&pf->lock);
    pthread_join(pf->thread, NULL);
    pthread_mutex_destroy(&pf->lock);
    pthread_cond_destroy(&pf->changed);
    free(pf);
}

bool bigmem_prefault(struct bigmem_prefaulter *pf, void *p, size_t bytes)
{
    if (bytes < BIGMEM_MAPPED_MIN_BYTES)
        return false; /* calloc'd: not a mapping of its own */
    pthread_mutex_lock(&pf->lock);
    bool queued = pf->queued < BIGMEM_PREFAULT_QUEUE;
    if (queued) {
        pf->queue[pf->queued++] = (struct range){p, (char *)p + bytes};
        pthread_cond_broadcast(&pf->changed);
    }
    pthread_mutex_unlock(&pf->lock);
    return queued;
}

static bool overlaps(struct range r, const char *from, const char *to)
{
    return r.from && r.from < to && from < r.to;
}

void bigmem_prefault_forget(struct bigmem_prefaulter *pf, void *p, size_t bytes)
{
    const char *from = p, *to = (const char *)p + bytes;
    pthread_mutex_lock(&pf->lock);
    size_t kept = 0;
    for (size_t i = 0; i < pf->queued; i++) /* ranges lie within one allocation each */
        if (!overlaps(pf->queue[i], from, to))
            pf->queue[kept++] = pf->queue[i];
    pf->queued = kept;
    while (overlaps(pf->busy, from, to))
        pthread_cond_wait(&pf->changed, &pf->lock);
    pthread_mutex_unlock(&pf->lock);
}

size_t bigmem_prefaulted_bytes(struct bigmem_prefaulter *pf)
{
    pthread_mutex_lock(&pf->lock);
    size_t done = pf->done_bytes;
    pthread_mutex_unlock(&pf->lock);
    return done;
}

/* ---- an identity set's memory ------------------------------------------------------------- */

static void *set_alloc(void *ctx, size_t bytes)
{
    (void)ctx;
    return bigmem_alloc_zeroed(bytes);
}

static void set_release(void *ctx, void *p, size_t bytes)
{
    if (ctx && p)
        bigmem_prefault_forget(ctx, p, bytes);
    bigmem_free(p, bytes);
}

static bool set_prefault(void *ctx, void *p, size_t bytes)
{
    return ctx && bigmem_prefault(ctx, p, bytes);
}

struct dedup_memory bigmem_dedup_memory(struct bigmem_prefaulter *pf)
{
    return (struct dedup_memory){set_alloc, set_release, set_prefault, pf};
}
