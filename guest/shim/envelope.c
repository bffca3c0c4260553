/* The output envelope: staging the blob and the JSON header, and reading bytes from JS values. */

/* The blob is staged behind room for the JSON header, known only at the end,
 * so the header usually goes in front of it without moving the blob. A small
 * output is staged in the hot page (out_static); a bigger one moves to a heap
 * buffer, which is kept for the next crossings unless it grew very big. */

static bool out_reserve(size_t extra)
{
    size_t need = hot.out_head + hot.out_len + extra;
    if (need <= hot.out_cap)
        return true;
    bool in_static = hot.out_base == hot.out_static;
    size_t head = in_static ? OUT_HEADROOM : hot.out_head;
    need = head + hot.out_len + extra;
    size_t cap = hot.out_heap_cap ? hot.out_heap_cap : OUT_HEADROOM * 2;
    while (cap < need)
        cap = cap < ((size_t)1 << 30) ? cap * 2 : need;
    if (cap > hot.out_heap_cap) {
        uint8_t *p = realloc(hot.out_heap, cap);
        if (!p)
            return false;
        hot.out_heap = p;
        hot.out_heap_cap = cap;
    }
    if (in_static)
        memcpy(hot.out_heap + head, hot.out_base + hot.out_head, hot.out_len);
    hot.out_base = hot.out_heap;
    hot.out_cap = hot.out_heap_cap;
    hot.out_head = head;
    return true;
}

static void out_reset(void)
{
    if (hot.out_heap_cap > OUT_KEEP_CAP) {
        free(hot.out_heap);
        hot.out_heap = NULL;
        hot.out_heap_cap = 0;
    }
    hot.out_base = hot.out_static;
    hot.out_cap = OUT_STATIC_CAP;
    hot.out_head = OUT_STATIC_HEAD;
    hot.out_len = 0;
}

static bool out_append(const uint8_t *p, size_t n)
{
    if (!out_reserve(n))
        return false;
    memcpy(hot.out_base + hot.out_head + hot.out_len, p, n);
    hot.out_len += n;
    return true;
}

/* Places the JSON header in front of the staged blob and fills the io block. */
static int32_t out_finish(const char *json, size_t n, int32_t rc)
{
    if (n > hot.out_head && !out_reserve(n)) {
        static const char oom[] = "{\"abi_error\": \"out of memory writing the output\"}";
        hot.out_len = 0;
        json = oom;
        n = sizeof oom - 1;
        rc = -3;
    }
    if (n > hot.out_head) {
        memmove(hot.out_base + n, hot.out_base + hot.out_head, hot.out_len);
        hot.out_head = n;
    }
    memcpy(hot.out_base + hot.out_head - n, json, n);
    hot.io[IO_OUT_PTR] = (uint32_t)(uintptr_t)(hot.out_base + hot.out_head - n);
    hot.io[IO_OUT_JSON] = (uint32_t)n;
    hot.io[IO_OUT_BLOB] = (uint32_t)hot.out_len;
    return rc;
}

/* Writes {"abi_error": msg}; msg is ASCII without quotes or backslashes. */
static int32_t abi_error(int32_t rc, const char *msg)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{\"abi_error\": \"%s\"}", msg);
    hot.out_len = 0;
    return out_finish(buf, (size_t)n, rc);
}

/* Writes the string a prelude entry returned as the output header. */
static int32_t out_value(JSValue s)
{
    size_t n;
    const char *p = JS_IsString(s) ? JS_ToCStringLen(ctx, &n, s) : NULL;
    JS_FreeValue(ctx, s);
    if (!p) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        return abi_error(-3, "the prelude produced no output header");
    }
    int32_t rc = out_finish(p, n, 0);
    JS_FreeCString(ctx, p);
    return rc;
}

typedef struct {
    const uint8_t *p;
    size_t n;
    const char *cstr; /* to free, when the bytes came from a string */
    JSValue ab;       /* to free, when they came from a typed array */
} Bytes;

/* Strings give their UTF-8; ArrayBuffers and typed arrays their bytes. */
static int bytes_get(JSValueConst v, Bytes *b)
{
    b->cstr = NULL;
    b->ab = JS_UNDEFINED;
    if (JS_IsString(v)) {
        b->cstr = JS_ToCStringLen(ctx, &b->n, v);
        b->p = (const uint8_t *)b->cstr;
        return b->cstr ? 0 : -1;
    }
    if (JS_IsArrayBuffer(v)) {
        b->p = JS_GetArrayBuffer(ctx, &b->n, v);
        return b->p || !JS_HasException(ctx) ? 0 : -1;
    }
    if (JS_GetTypedArrayType(v) >= 0) {
        size_t off, len, el;
        b->ab = JS_GetTypedArrayBuffer(ctx, v, &off, &len, &el);
        if (JS_IsException(b->ab))
            return -1;
        size_t total;
        const uint8_t *base = JS_GetArrayBuffer(ctx, &total, b->ab);
        b->p = base ? base + off : NULL;
        b->n = base ? len : 0;
        return 0;
    }
    JS_ThrowTypeError(ctx, "expected a string, ArrayBuffer or typed array");
    return -1;
}

static void bytes_put(Bytes *b)
{
    if (b->cstr)
        JS_FreeCString(ctx, b->cstr);
    JS_FreeValue(ctx, b->ab);
}
