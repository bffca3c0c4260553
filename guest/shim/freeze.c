/*
 * What a snapshot shares: per-instance state reseeded after it, and the heap frozen before it.
 * Reaches QuickJS internals and depends on build/guest.py's QUICKJS_PATCHES (JS_RC_IMMORTAL).
 */

static void reseed(void)
{
    uint64_t seed = 0;
    if (__wasi_random_get((uint8_t *)&seed, sizeof seed) != 0)
        seed = js__gettimeofday_us();
    ctx->random_state = seed ? seed : 1;
    ctx->time_origin = js__now_ms();
    hot.seeded = true;
}

/* Every instance starts from the snapshot's memory, mapped copy-on-write, so
 * the first store to any page of it costs a page fault and a copy. Left as it
 * is, a request stores to some hundred pages: reference counts of the
 * prelude's functions, shapes and atoms it merely uses, the links of the GC
 * object list, and the free blocks of whatever partly used arena heads each
 * size class. freeze_heap() runs last in wx_init and leaves a heap that a
 * request can run on while writing to a few pages only. */

/* Blocks per size class (16, 24, ... 512 bytes) of the arenas new allocations
 * are taken from, in two tiers carved side by side from one allocation each.
 * The first holds one block more than a small request (hello world: load, run,
 * response) has alive at once, measured, plus the prelude's state properties
 * (props_to_hot_arenas), and starts a page: such a request writes to three
 * pages for all it allocates. Bigger ones continue in the second tier, then
 * in older arenas, as without them. */
static const uint8_t hot_blocks[JS_ARENA_BLOCK_SIZE_COUNT] = {
    10, 18, 17, 12, 21, 5, 2, 2, 10, 3, 3, 2, 4, 3, 5,
    3, 4, 0, 3, 2, 3, 2, 0,
    0, 0, 2, 0, 0, 0, 0, 2,
};
static const uint8_t spare_blocks[JS_ARENA_BLOCK_SIZE_COUNT] = {
    8, 16, 8, 6, 20, 4, 4, 4, 6, 4, 4, 3, 4, 4, 4,
    4, 4, 2, 4, 3, 4, 2, 2,
    2, 2, 3, 2, 2, 2, 2, 3,
};
#define HOT_SHAPES 128 /* free room in the shape hash table */
#define HOT_ATOMS 256  /* and in the atom hash table */

/* Marks a block's count immortal (see QUICKJS_PATCHES in build/guest.py):
 * it is never counted, so never freed, and never written again. */
static void immortalize(void *p)
{
    js_rc(p)->ref_count = JS_RC_IMMORTAL;
}

/* Builtins make most of their properties on first use (JS_PROP_AUTOINIT),
 * which rewrites the holder's shape and property slot: a first
 * Array.isArray or promise.then in every instance would copy those pages.
 * Making them all now adds some 10 KiB to the snapshot, pages a request
 * only reads. Properties made this way can hold more of them, hence the
 * walk to the end of the list, which grows as it goes. */
static void instantiate_builtins(void)
{
    struct list_head *el;
    list_for_each(el, &rt->gc_obj_list) {
        JSGCObjectHeader *g = list_entry(el, JSGCObjectHeader, link);
        if (JS_GC_TYPE(g) != JS_GC_OBJ_TYPE_JS_OBJECT)
            continue;
        JSObject *p = (JSObject *)g;
        for (int i = 0; i < p->shape->prop_count; i++) {
            JSShapeProperty *prs = get_shape_prop(p->shape) + i;
            if ((prs->flags & JS_PROP_TMASK) != JS_PROP_AUTOINIT)
                continue;
            if (JS_AutoInitProperty(ctx, p, prs->atom, &p->prop[i], prs))
                JS_FreeValue(ctx, JS_GetException(ctx));
        }
    }
}

/* Carves an arena of `counts` blocks per size class from one allocation,
 * starting a page, and puts each at the head of its class's free list. The
 * arenas sit inside a bigger block, so they must never be released: each
 * counts one block past its end as in use, which is never handed out. */
static void carve_arenas(const uint8_t *counts)
{
    size_t total = HOST_PAGE;
    for (int idx = 0; idx < JS_ARENA_BLOCK_SIZE_COUNT; idx++)
        if (counts[idx])
            total += sizeof(JSArena) + (size_t)counts[idx] * arena_block_sizes[idx];
    uint8_t *at = rt->mf.js_malloc(rt->malloc_state.opaque, total);
    if (!at)
        return;
    at += -(uintptr_t)at % HOST_PAGE;
    for (int idx = 0; idx < JS_ARENA_BLOCK_SIZE_COUNT; idx++) {
        int n = counts[idx], size = arena_block_sizes[idx];
        if (!n)
            continue;
        JSArena *ar = (JSArena *)at;
        at += sizeof(JSArena) + (size_t)n * size;
        ar->block_size_idx = idx;
        ar->n_blocks = n + 1;
        ar->n_used_blocks = 1;
        ar->first_free_block = 0;
        for (int i = 0; i < n; i++) {
            JSMallocBlockHeader *b = arena_get_block(ar, i, size);
            b->u.free_next = i + 1 < n ? i + 1 : JS_ARENA_FREE_NIL;
            b->block_size_idx = idx;
        }
        list_add(&ar->link, &rt->arena_state.arena_list[idx]);
        list_add(&ar->free_link, &rt->arena_state.free_arena_list[idx]);
    }
}

/* The prelude's state object is written by every request: its property array
 * moves to the hot arenas, which a request writes to anyway. The old array is
 * part of the frozen heap and stays where it is. */
static void props_to_hot_arenas(JSValueConst v)
{
    if (!JS_IsObject(v))
        return;
    JSObject *p = JS_VALUE_GET_OBJ(v);
    size_t size = sizeof(JSProperty) * (size_t)p->shape->prop_size;
    JSProperty *prop = js_malloc_rt(rt, size);
    if (!prop)
        return;
    memcpy(prop, p->prop, size);
    p->prop = prop;
}

static void freeze_heap(JSValueConst state)
{
    instantiate_builtins();
    JS_RunGC(rt);
    /* Everything alive now lives as long as the instance. Small blocks are
     * found through their arenas (allocated ones hold their own index), the
     * rest through the GC object list and the atom table; a block missed
     * here only keeps being counted. */
    JSArenaState *as = &rt->arena_state;
    for (int idx = 0; idx < JS_ARENA_BLOCK_SIZE_COUNT; idx++) {
        struct list_head *el;
        list_for_each(el, &as->arena_list[idx]) {
            JSArena *ar = list_entry(el, JSArena, link);
            for (int i = 0; i < ar->n_blocks; i++) {
                JSMallocBlockHeader *b = arena_get_block(ar, i, arena_block_sizes[idx]);
                if (b->u.block_idx == i)
                    b->ref_count = JS_RC_IMMORTAL;
            }
        }
    }
    for (int i = 1; i < rt->atom_size; i++) {
        JSAtomStruct *p = rt->atom_array[i];
        if (!atom_is_free(p))
            immortalize(p);
    }
    /* Immortal objects leave the GC object list: the cycle collector never
     * frees them, and a request adding or removing an object no longer writes
     * to a neighbour in the snapshot. A self-linked node can still be unlinked
     * (a shape resized in place moves to a new block). */
    struct list_head *el, *next;
    list_for_each_safe(el, next, &rt->gc_obj_list) {
        immortalize(el);
        init_list_head(el);
    }
    init_list_head(&rt->gc_obj_list);

    /* Room for what a request adds, so it does not rehash the snapshot's
     * shapes or atoms. */
    while (2 * (rt->shape_hash_count + HOT_SHAPES) > rt->shape_hash_size)
        if (resize_shape_hash(rt, rt->shape_hash_bits + 1))
            break;
    while (rt->atom_count + HOT_ATOMS >= rt->atom_count_resize)
        if (JS_ResizeAtomHash(rt, rt->atom_hash_size * 2))
            break;

    carve_arenas(spare_blocks);
    carve_arenas(hot_blocks); /* the head of each free list */
    props_to_hot_arenas(state);
}
