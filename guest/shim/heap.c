/* The memory cap: QuickJS's allocator hooks, counted against the script's limit. */

/* Every allocation QuickJS makes is counted here. The first allocation past
 * the soft limit (a little below the cap) fails, which scripts see as a
 * catchable "out of memory"; after that, going past the cap or running out of
 * linear memory (the host's store limit, reached early when the heap is
 * fragmented) traps, so a script that swallows the error still ends. */

static void heap_trap(void)
{
    hot.io[IO_OUT_JSON] = OOM_MARK; /* tells the host this trap is the memory cap */
    __builtin_trap();
}

/* One catchable failure, then traps; without a cap, failures stay catchable. */
static void *heap_refuse(void)
{
    if (hot.heap_cap && hot.soft_tripped)
        heap_trap();
    hot.soft_tripped = true;
    return NULL;
}

/* Whether growing the heap by `grow` bytes may go ahead. */
static inline bool heap_allows(size_t grow)
{
    if (!hot.heap_cap)
        return true;
    if (hot.heap_used + grow > hot.heap_cap)
        heap_trap();
    return hot.heap_used + grow <= hot.heap_soft || hot.soft_tripped;
}

/* The runtime, which QuickJS writes to all the time, lives in the hot page:
 * it is the first thing JS_NewRuntime2 allocates. */
_Static_assert(sizeof(JSRuntime) <= sizeof hot.runtime, "JSRuntime outgrew hot.runtime");

static void *wx_js_calloc(void *opaque, size_t count, size_t size)
{
    (void)opaque;
    if (!rt && count == 1 && size == sizeof(JSRuntime))
        return hot.runtime;
    if (!heap_allows(count * size))
        return heap_refuse();
    void *p = calloc(count, size);
    if (!p)
        return heap_refuse();
    hot.heap_used += malloc_usable_size(p);
    return p;
}

static void *wx_js_malloc(void *opaque, size_t size)
{
    (void)opaque;
    if (!heap_allows(size))
        return heap_refuse();
    void *p = malloc(size);
    if (!p)
        return heap_refuse();
    hot.heap_used += malloc_usable_size(p);
    return p;
}

static void wx_js_free(void *opaque, void *ptr)
{
    (void)opaque;
    if (ptr && ptr != hot.runtime) {
        hot.heap_used -= malloc_usable_size(ptr);
        free(ptr);
    }
}

static void *wx_js_realloc(void *opaque, void *ptr, size_t size)
{
    (void)opaque;
    size_t old = ptr ? malloc_usable_size(ptr) : 0;
    if (size > old && !heap_allows(size - old))
        return heap_refuse();
    void *p = realloc(ptr, size);
    if (!p && size)
        return heap_refuse();
    hot.heap_used = hot.heap_used - old + (p ? malloc_usable_size(p) : 0);
    return p;
}

static size_t wx_js_usable_size(const void *ptr)
{
    if (ptr == hot.runtime)
        return sizeof(JSRuntime);
    return malloc_usable_size((void *)ptr);
}

static const JSMallocFunctions wx_malloc_funcs = {
    wx_js_calloc, wx_js_malloc, wx_js_free, wx_js_realloc, wx_js_usable_size,
};

static void set_mem_limit(double cap)
{
    if (!(cap > 0))
        return;
    hot.heap_cap = (size_t)cap;
    size_t margin = hot.heap_cap / 16 > (1 << 20) ? hot.heap_cap / 16 : (1 << 20);
    hot.heap_soft = hot.heap_cap > 2 * margin ? hot.heap_cap - margin : hot.heap_cap / 2;
    hot.soft_tripped = false;
}

/* A script that got its out-of-memory error and let go of the memory gets the
 * same warning again next time. */
static void rearm_soft_limit(void)
{
    if (hot.soft_tripped && hot.heap_used < hot.heap_soft)
        hot.soft_tripped = false;
}
