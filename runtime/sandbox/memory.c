/*
 * Linear memories for guest instances: wasmtime's host memory creator, native (see memory.py).
 *
 * Every memory starts as the snapshot image mapped copy-on-write. A memory whose store is
 * dropped is reset to the image exactly and kept for the next instance, as wasmtime's own
 * pooling allocator does: PAGEMAP_SCAN lists the pages this process holds privately in it
 * (written since the image was mapped, or swapped out), those are copied back from the image
 * (or zeroed past it), and every other page is still the image's own. Pages past a small
 * budget are handed back to the kernel instead of copied, and a memory that grew is shrunk
 * back the same way. Where the kernel has no PAGEMAP_SCAN (before 6.7), memories are
 * unmapped instead of reused.
 *
 * A derived image (wxm_derive) is the snapshot with some pages replaced: a serverless script's
 * memory right after its top level ran. Its memories map the snapshot and, over it, the
 * replaced pages from a small file of their own, so each script costs only the pages its load
 * wrote. Which image an instantiation gets is chosen per thread (wxm_select).
 *
 * wasmtime calls into here on every instantiation and every store drop, from whichever
 * thread does it; as Python callbacks those calls cost more than the reset itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* linux/fs.h (6.7+), spelled out so that older headers build it too */
struct wx_page_region {
    uint64_t start, end, categories;
};
struct wx_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define WX_PAGEMAP_SCAN _IOWR('f', 16, struct wx_pm_scan_arg)
#define PAGE_IS_FILE (1u << 2)
#define PAGE_IS_PRESENT (1u << 3)
#define PAGE_IS_SWAPPED (1u << 4)
#define PAGE_IS_PFNZERO (1u << 5)
#define SCAN_VEC 64

/* wasmtime's C API (wasmtime/memory.h, wasmtime/config.h), by layout */
typedef struct wasmtime_error wasmtime_error_t;
typedef wasmtime_error_t *(*error_new_t)(const char *message);
typedef struct {
    void *env;
    uint8_t *(*get_memory)(void *env, size_t *byte_size, size_t *byte_capacity);
    wasmtime_error_t *(*grow_memory)(void *env, size_t new_size);
    void (*finalizer)(void *env);
} linear_memory_t;
typedef struct {
    void *env;
    wasmtime_error_t *(*new_memory)(void *env, const void *type, size_t minimum, size_t maximum,
                                    size_t reserved, size_t guard, linear_memory_t *out);
    void (*finalizer)(void *env);
} memory_creator_t;

#define SPARE_MAX 64

typedef struct pool pool;

typedef struct {
    uint8_t *base;
    size_t minimum;  /* the size it was made with, and shrinks back to */
    size_t size;     /* accessible now */
    size_t capacity; /* how far it may grow in place; past it, the guard */
    size_t reserved; /* the whole mapping, guard included */
    pool *pool;
} slot;

struct pool {
    int image_fd;
    const uint8_t *image;
    size_t image_len;
    int pagemap_fd; /* -1: memories are unmapped, not reused */
    int recycling;
    size_t keep_resident;
    error_new_t error_new;
    pthread_mutex_t lock;
    int max_spare, nspare;
    slot *spare[SPARE_MAX];
    /* A derived image (wxm_derive): the base's image with the pages in `diff` over it. */
    pool *base;          /* NULL for a base image */
    int diff_fd;
    const uint8_t *diff; /* the replacement pages, in memory order */
    size_t diff_len;
    size_t memory_len;   /* the memory size it was taken at: every memory starts at this size */
    int32_t *diff_page;  /* per page of memory: its page in diff, or -1 */
    int refs;            /* the host's handle, and one per memory made from it */
    int dropped;         /* the host let go: memories are no longer kept for reuse */
};

#define PAGE 4096
static __thread pool *selected; /* the image this thread's next instantiation gets */

/* ---- page scan -------------------------------------------------------------------------- */

/* Calls visit(arg, lo, hi) for every run of private pages in [start, end), in order:
 * present or swapped, and neither a page of a file (the image) nor the zero page.
 * Returns 0, visit's nonzero result, or -1 if the kernel would not say. */
static int each_private_run(int fd, uint64_t start, uint64_t end,
                            int (*visit)(void *arg, uint64_t lo, uint64_t hi), void *arg)
{
    struct wx_page_region vec[SCAN_VEC];
    struct wx_pm_scan_arg scan = {
        .size = sizeof scan,
        .vec = (uintptr_t)vec,
        .vec_len = SCAN_VEC,
        .category_inverted = PAGE_IS_FILE | PAGE_IS_PFNZERO,
        .category_mask = PAGE_IS_FILE | PAGE_IS_PFNZERO,
        .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
    };
    while (start < end) {
        scan.start = start;
        scan.end = end;
        scan.walk_end = 0;
        long n = ioctl(fd, WX_PAGEMAP_SCAN, &scan);
        if (n < 0)
            return -1;
        for (long i = 0; i < n; i++) {
            int rc = visit(arg, vec[i].start, vec[i].end);
            if (rc)
                return rc;
        }
        if (n < SCAN_VEC || scan.walk_end >= end)
            break;
        start = scan.walk_end;
    }
    return 0;
}

/* ---- slots ------------------------------------------------------------------------------ */

typedef struct {
    pool *pool;
    uint8_t *base;
    long long budget; /* bytes still to copy back in place */
} reset_run;

/* Put [lo, hi) of a memory back as the pool's (base) image has it, zeros past its end. */
static void copy_back(const pool *p, uint8_t *base, size_t lo, size_t hi)
{
    size_t copy_end = hi < p->image_len ? hi : p->image_len;
    if (lo < copy_end)
        memcpy(base + lo, p->image + lo, copy_end - lo);
    size_t zero_from = lo > p->image_len ? lo : p->image_len;
    if (zero_from < hi)
        memset(base + zero_from, 0, hi - zero_from);
}

/* One run of a reset: copied back from the image (a derived image's own pages from its
 * file), or past the budget handed back to the kernel, to refault as the image (or zeros). */
static int reset_pages(void *arg, uint64_t run_lo, uint64_t run_hi)
{
    reset_run *r = arg;
    const pool *p = r->pool;
    size_t lo = run_lo - (uintptr_t)r->base, hi = run_hi - (uintptr_t)r->base;
    r->budget -= (long long)(hi - lo);
    if (r->budget < 0)
        return madvise(r->base + lo, hi - lo, MADV_DONTNEED) ? 1 : 0;
    if (!p->diff_page) {
        copy_back(p, r->base, lo, hi);
        return 0;
    }
    for (size_t off = lo; off < hi; off += PAGE) { /* a derived image: page by page */
        int32_t at = off / PAGE < p->memory_len / PAGE ? p->diff_page[off / PAGE] : -1;
        if (at >= 0)
            memcpy(r->base + off, p->diff + (size_t)at * PAGE, PAGE);
        else
            copy_back(p, r->base, off, off + PAGE);
    }
    return 0;
}

/* Put back what differs from the image; 0 if the kernel would not say what. */
static int reset(pool *p, slot *s)
{
    uint8_t *base = s->base;
    if (s->size > s->minimum) { /* shrink back: drop the grown pages, make them inaccessible */
        size_t grown = s->size - s->minimum;
        if (madvise(base + s->minimum, grown, MADV_DONTNEED) || mprotect(base + s->minimum, grown, PROT_NONE))
            return 0;
        s->size = s->minimum;
    }
    reset_run run = { .pool = p, .base = base, .budget = (long long)p->keep_resident };
    return each_private_run(p->pagemap_fd, (uintptr_t)base, (uintptr_t)base + s->size, reset_pages, &run) == 0;
}

/* A spare slot that fits, the one released last (its pages are the likeliest in cache). */
static slot *take(pool *p, size_t minimum, size_t capacity, size_t reserved)
{
    slot *s = NULL;
    pthread_mutex_lock(&p->lock);
    for (int i = p->nspare - 1; i >= 0; i--) {
        slot *c = p->spare[i];
        if (c->minimum == minimum && c->capacity >= capacity && c->reserved >= reserved) {
            s = c;
            p->spare[i] = p->spare[--p->nspare];
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* Reserve the whole range inaccessible, then map the image and the zeroed rest. */
static slot *map_slot(pool *p, size_t minimum, size_t capacity, size_t reserved, char *why, size_t why_len)
{
    if (p->image_len > minimum) {
        snprintf(why, why_len, "the memory image (%zu B) exceeds the memory (%zu B)", p->image_len, minimum);
        return NULL;
    }
    uint8_t *base = mmap(NULL, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        snprintf(why, why_len, "mmap of the reservation failed: %s", strerror(errno));
        return NULL;
    }
    int ok = mmap(base, p->image_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, p->image_fd, 0) == base;
    if (ok && minimum > p->image_len)
        ok = mprotect(base + p->image_len, minimum - p->image_len, PROT_READ | PROT_WRITE) == 0;
    slot *s = ok ? malloc(sizeof *s) : NULL;
    if (!s) {
        snprintf(why, why_len, "mapping the memory image failed: %s", strerror(errno));
        munmap(base, reserved);
        return NULL;
    }
    *s = (slot){ .base = base, .minimum = minimum, .size = minimum, .capacity = capacity,
                 .reserved = reserved, .pool = p };
    size_t pages = p->diff_page ? p->memory_len / PAGE : 0;
    for (size_t pg = 0; pg < pages;) { /* a derived image: its pages over the base's */
        int32_t at = p->diff_page[pg];
        size_t run = 1;
        if (at < 0) {
            pg++;
            continue;
        }
        while (pg + run < pages && p->diff_page[pg + run] == at + (int32_t)run)
            run++;
        if (mmap(base + pg * PAGE, run * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
                 p->diff_fd, (off_t)at * PAGE) == MAP_FAILED) {
            snprintf(why, why_len, "mapping a derived image failed: %s", strerror(errno));
            munmap(base, reserved);
            free(s);
            return NULL;
        }
        pg += run;
    }
    return s;
}

/* ---- wasmtime's callbacks --------------------------------------------------------------- */

static uint8_t *get_memory(void *env, size_t *byte_size, size_t *byte_capacity)
{
    slot *s = env;
    *byte_size = s->size;
    *byte_capacity = s->capacity;
    return s->base;
}

static wasmtime_error_t *grow_memory(void *env, size_t new_size)
{
    slot *s = env;
    char why[160];
    if (new_size > s->capacity) {
        snprintf(why, sizeof why, "a linear memory cannot grow past %zu bytes", s->capacity);
        return s->pool->error_new(why);
    }
    if (new_size > s->size) {
        if (mprotect(s->base + s->size, new_size - s->size, PROT_READ | PROT_WRITE)) {
            snprintf(why, sizeof why, "cannot grow a linear memory: %s", strerror(errno));
            return s->pool->error_new(why);
        }
        s->size = new_size;
    }
    return NULL;
}

static void unref(pool *p);

static void unmap_slot(slot *s)
{
    pool *p = s->pool;
    munmap(s->base, s->reserved);
    free(s);
    unref(p);
}

static void release(void *env)
{
    slot *s = env;
    pool *p = s->pool;
    if (p->recycling && reset(p, s)) {
        pthread_mutex_lock(&p->lock);
        int kept = !p->dropped && p->nspare < p->max_spare;
        if (kept)
            p->spare[p->nspare++] = s;
        pthread_mutex_unlock(&p->lock);
        if (kept)
            return;
    }
    unmap_slot(s);
}

static wasmtime_error_t *new_memory(void *env, const void *type, size_t minimum, size_t maximum,
                                    size_t reserved, size_t guard, linear_memory_t *out)
{
    pool *p = selected ? selected : env;
    /* a derived image starts the memory at the size it was taken at, which its top level may
     * have grown past the module's minimum */
    size_t initial = p->base ? p->memory_len : minimum;
    size_t capacity = reserved > initial ? reserved : initial;
    slot *s = take(p, initial, capacity, capacity + guard);
    if (!s) {
        char why[200], msg[240];
        if (initial < minimum || (maximum && initial > maximum)) {
            snprintf(why, sizeof why, "a derived image is for a memory of %zu bytes, not %zu",
                     initial, minimum);
            s = NULL;
        } else {
            s = map_slot(p, initial, capacity, capacity + guard, why, sizeof why);
        }
        if (!s) {
            snprintf(msg, sizeof msg, "cannot map a linear memory: %s", why);
            return p->error_new(msg);
        }
        pthread_mutex_lock(&p->lock);
        p->refs++;
        pthread_mutex_unlock(&p->lock);
    }
    out->env = s;
    out->get_memory = get_memory;
    out->grow_memory = grow_memory;
    out->finalizer = release;
    return NULL;
}

/* ---- what memory.py calls --------------------------------------------------------------- */

typedef struct {
    uint64_t *out; /* room for max (start, end) pairs */
    long max, count;
} runs;

static int collect_run(void *arg, uint64_t lo, uint64_t hi)
{
    runs *r = arg;
    if (r->count < r->max) {
        r->out[2 * r->count] = lo;
        r->out[2 * r->count + 1] = hi;
        r->count++;
    }
    return 0;
}

/* A pool over the image file open at image_fd (kept open), or NULL with errno set. */
pool *wxm_open(int image_fd, size_t keep_resident, int max_spare, error_new_t error_new)
{
    struct stat st;
    if (fstat(image_fd, &st))
        return NULL;
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->image_fd = image_fd;
    p->image_len = (size_t)st.st_size;
    p->keep_resident = keep_resident;
    p->max_spare = max_spare < SPARE_MAX ? max_spare : SPARE_MAX;
    p->error_new = error_new;
    pthread_mutex_init(&p->lock, NULL);
    /* the pristine copy a reset copies from: the file's pages, shared with every mapping */
    p->image = mmap(NULL, p->image_len, PROT_READ, MAP_SHARED, image_fd, 0);
    if (p->image == MAP_FAILED) {
        int saved = errno;
        free(p);
        errno = saved;
        return NULL;
    }
    p->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (p->pagemap_fd >= 0) { /* probe: a kernel before 6.7 refuses the ioctl */
        uint64_t probe = (uintptr_t)p->image & ~(uint64_t)4095;
        if (each_private_run(p->pagemap_fd, probe, probe + 4096, collect_run, &(runs){ 0 }) < 0) {
            close(p->pagemap_fd);
            p->pagemap_fd = -1;
        }
    }
    p->recycling = p->pagemap_fd >= 0;
    return p;
}

void wxm_creator(pool *p, memory_creator_t *out)
{
    out->env = p;
    out->new_memory = new_memory;
    out->finalizer = NULL; /* the pool lives as long as the process */
}

const uint8_t *wxm_image(pool *p, size_t *len)
{
    *len = p->image_len;
    return p->image;
}

/* The image this thread's next instantiation gets its memory from (NULL: the engine's own). */
void wxm_select(pool *p)
{
    selected = p;
}

/* A derived image: the base's image with every page of mem[0, len) that differs from it
 * replaced, for memories that start at len bytes; NULL with errno set if it cannot be made.
 * *diff_len is what the replaced pages take. The caller holds one reference, given back
 * with wxm_drop. */
pool *wxm_derive(pool *base, const uint8_t *mem, size_t len, size_t *diff_len)
{
    static const uint8_t zeros[PAGE];
    if (base->base || len % PAGE || len < base->image_len) {
        errno = EINVAL;
        return NULL;
    }
    size_t pages = len / PAGE, ndiff = 0;
    int32_t *diff_page = malloc(pages * sizeof *diff_page);
    pool *p = calloc(1, sizeof *p);
    int fd = (int)syscall(SYS_memfd_create, "wexec-image", MFD_CLOEXEC);
    if (!diff_page || !p || fd < 0)
        goto fail;
    for (size_t pg = 0; pg < pages; pg++) {
        size_t off = pg * PAGE;
        const uint8_t *was = off < base->image_len ? base->image + off : zeros;
        size_t n = off < base->image_len && base->image_len - off < PAGE ? base->image_len - off : PAGE;
        int same = !memcmp(mem + off, was, n) && (n == PAGE || !memcmp(mem + off + n, zeros, PAGE - n));
        diff_page[pg] = same ? -1 : (int32_t)ndiff++;
        if (!same && pwrite(fd, mem + off, PAGE, (off_t)diff_page[pg] * PAGE) != PAGE)
            goto fail;
    }
    *p = *base;
    p->base = base;
    p->diff_fd = fd;
    p->diff_len = *diff_len = ndiff * PAGE;
    p->diff = ndiff ? mmap(NULL, p->diff_len, PROT_READ, MAP_SHARED, fd, 0) : NULL;
    if (p->diff == MAP_FAILED)
        goto fail;
    p->memory_len = len;
    p->diff_page = diff_page;
    p->refs = 1;
    p->dropped = 0;
    p->nspare = 0;
    p->max_spare = base->max_spare < 4 ? base->max_spare : 4;
    pthread_mutex_init(&p->lock, NULL);
    return p;
fail:
    if (fd >= 0)
        close(fd);
    free(diff_page);
    free(p);
    return NULL;
}

static void unref(pool *p)
{
    if (!p->base)
        return; /* a base image lives as long as the process */
    pthread_mutex_lock(&p->lock);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->lock);
    if (!last)
        return;
    if (p->diff)
        munmap((void *)p->diff, p->diff_len);
    close(p->diff_fd);
    free(p->diff_page);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Give back the host's reference to a derived image: memories made from it are no longer
 * kept for reuse, and it is freed once the last of them is dropped. */
void wxm_drop(pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->dropped = 1;
    int n = p->nspare;
    slot *spare[SPARE_MAX];
    memcpy(spare, p->spare, n * sizeof *spare);
    p->nspare = 0;
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < n; i++)
        unmap_slot(spare[i]);
    unref(p);
}

/* Whether dropped memories are reset and reused; may be turned off, never on without a scan. */
int wxm_recycling(pool *p, int set)
{
    if (set >= 0)
        p->recycling = set && p->pagemap_fd >= 0;
    return p->recycling;
}

/* (base, size) of up to max spare memories into out; returns how many. */
int wxm_spare(pool *p, uint64_t *out, int max)
{
    pthread_mutex_lock(&p->lock);
    int n = p->nspare < max ? p->nspare : max;
    for (int i = 0; i < n; i++) {
        out[2 * i] = (uintptr_t)p->spare[i]->base;
        out[2 * i + 1] = p->spare[i]->size;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* Private pages of [start, end) as up to max (start, end) pairs; their count, -1 if unknown. */
long wxm_private_pages(pool *p, uint64_t start, uint64_t end, uint64_t *out, long max)
{
    if (p->pagemap_fd < 0)
        return -1;
    runs r = { .out = out, .max = max };
    return each_private_run(p->pagemap_fd, start, end, collect_run, &r) < 0 ? -1 : r.count;
}
