/*
 * The fast JSON path behind the parseJSON native. Reaches QuickJS internals and depends on
 * build/guest.py's QUICKJS_PATCHES (json_number_value).
 */

/* QuickJS's JSON parser builds every string in a growing buffer and every array
 * element by element, some 60 ns a token here. Most JSON a request brings (the
 * host's envelope headers, scripts' request bodies) is plain: ASCII strings
 * without escapes, integers, shallow nesting. json_fast takes exactly that and
 * builds the same values directly; on anything else it gives up without a word
 * (JS_UNINITIALIZED) and the caller parses the whole text with QuickJS's
 * parser, which then produces the value or the error it always would. */

#define JSON_FAST_DEPTH 32
#define JSON_FAST_CHUNK 16

typedef struct {
    const uint8_t *p, *end;
    int depth;
} json_fast_state;

static JSValue json_fast_value(json_fast_state *s);

static inline void json_fast_space(json_fast_state *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* At a '"': the span of a string without escapes, control or non-ASCII bytes. */
static bool json_fast_span(json_fast_state *s, const uint8_t **start, size_t *len)
{
    const uint8_t *q = s->p + 1;
    while (q < s->end && *q != '"') {
        if (*q == '\\' || *q < 0x20 || *q >= 0x80)
            return false;
        q++;
    }
    if (q >= s->end)
        return false;
    *start = s->p + 1;
    *len = (size_t)(q - *start);
    s->p = q + 1;
    return true;
}

static bool json_fast_word(json_fast_state *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n))
        return false;
    s->p += n;
    return true;
}

/* An integer of up to 15 digits (exact in a double), valued as QuickJS's own parser values
 * it (json_number_value); anything else gives up. */
static JSValue json_fast_number(json_fast_state *s)
{
    const uint8_t *digits = s->p + (*s->p == '-'), *q = digits;
    while (q < s->end && *q >= '0' && *q <= '9')
        q++;
    size_t n = (size_t)(q - digits);
    if (n == 0 || n > 15 || (*digits == '0' && n > 1)
        || (q < s->end && (*q == '.' || *q == 'e' || *q == 'E')))
        return JS_UNINITIALIZED;
    JSValue v = js_float64(json_number_value(s->p, q));
    s->p = q;
    return v;
}

/* Elements are gathered JSON_FAST_CHUNK at a time, the first chunk making the array in
 * one step; a chunk lives on the shadow stack, so it is kept small. */
static JSValue json_fast_array(json_fast_state *s)
{
    JSValue items[JSON_FAST_CHUNK], arr = JS_UNDEFINED;
    uint32_t n = 0, at = 0;
    s->p++;
    json_fast_space(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return JS_NewArray(ctx);
    }
    for (;;) {
        JSValue v = json_fast_value(s);
        if (JS_IsException(v) || JS_IsUninitialized(v)) {
            JS_FreeValue(ctx, arr);
            arr = v;
            break;
        }
        items[n++] = v;
        json_fast_space(s);
        bool more = s->p < s->end && *s->p == ',';
        bool last = !more && s->p < s->end && *s->p == ']';
        if (!more && !last) {
            JS_FreeValue(ctx, arr);
            arr = JS_UNINITIALIZED;
            break;
        }
        s->p++;
        if (n == JSON_FAST_CHUNK || last) { /* the array takes the chunk, even on failure */
            if (JS_IsUndefined(arr)) {
                arr = JS_NewArrayFrom(ctx, (int)n, items);
                at = n;
            } else {
                for (uint32_t i = 0; i < n; i++) {
                    if (JS_DefinePropertyValueUint32(ctx, arr, at++, items[i], JS_PROP_C_W_E) < 0) {
                        while (++i < n)
                            JS_FreeValue(ctx, items[i]);
                        JS_FreeValue(ctx, arr);
                        arr = JS_EXCEPTION;
                        break;
                    }
                }
            }
            n = 0;
            if (last || JS_IsException(arr))
                return arr;
        }
        json_fast_space(s);
    }
    while (n)
        JS_FreeValue(ctx, items[--n]);
    return arr;
}

static JSValue json_fast_object(json_fast_state *s)
{
    JSValue obj = JS_NewObject(ctx);
    if (JS_IsException(obj))
        return obj;
    s->p++;
    json_fast_space(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return obj;
    }
    for (;;) {
        const uint8_t *key;
        size_t key_len;
        if (s->p >= s->end || *s->p != '"' || !json_fast_span(s, &key, &key_len))
            break;
        json_fast_space(s);
        if (s->p >= s->end || *s->p != ':')
            break;
        s->p++;
        json_fast_space(s);
        JSValue v = json_fast_value(s);
        if (JS_IsException(v) || JS_IsUninitialized(v)) {
            JS_FreeValue(ctx, obj);
            return v;
        }
        JSAtom atom = JS_NewAtomLen(ctx, (const char *)key, key_len);
        if (atom == JS_ATOM_NULL) {
            JS_FreeValue(ctx, v);
            JS_FreeValue(ctx, obj);
            return JS_EXCEPTION;
        }
        int rc = JS_DefinePropertyValue(ctx, obj, atom, v, JS_PROP_C_W_E);
        JS_FreeAtom(ctx, atom);
        if (rc < 0) {
            JS_FreeValue(ctx, obj);
            return JS_EXCEPTION;
        }
        json_fast_space(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            json_fast_space(s);
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return obj;
        }
        break;
    }
    JS_FreeValue(ctx, obj);
    return JS_UNINITIALIZED;
}

static JSValue json_fast_value(json_fast_state *s)
{
    if (s->p >= s->end || s->depth >= JSON_FAST_DEPTH)
        return JS_UNINITIALIZED;
    const uint8_t *start;
    size_t len;
    JSValue v;
    switch (*s->p) {
    case '{':
    case '[':
        s->depth++;
        v = *s->p == '{' ? json_fast_object(s) : json_fast_array(s);
        s->depth--;
        return v;
    case '"':
        return json_fast_span(s, &start, &len) ? JS_NewStringLen(ctx, (const char *)start, len)
                                               : JS_UNINITIALIZED;
    case 't':
        return json_fast_word(s, "true", 4) ? JS_TRUE : JS_UNINITIALIZED;
    case 'f':
        return json_fast_word(s, "false", 5) ? JS_FALSE : JS_UNINITIALIZED;
    case 'n':
        return json_fast_word(s, "null", 4) ? JS_NULL : JS_UNINITIALIZED;
    default:
        return json_fast_number(s);
    }
}

/* JSON.parse of text[0, len) (NUL-terminated, as JS_ParseJSON wants): the fast path,
 * else QuickJS's parser. */
static JSValue parse_json(JSContext *c, const char *text, size_t len, const char *filename)
{
    json_fast_state s = { (const uint8_t *)text, (const uint8_t *)text + len, 0 };
    json_fast_space(&s);
    JSValue v = json_fast_value(&s);
    if (JS_IsException(v))
        return v;
    if (!JS_IsUninitialized(v)) {
        json_fast_space(&s);
        if (s.p == s.end)
            return v;
        JS_FreeValue(c, v);
    }
    return JS_ParseJSON(c, text, len, filename);
}

/* parseJSON(text or bytes) is JSON.parse without a reviver, on a stack budget
 * small enough that deep nesting is a RangeError rather than a native trap. */
static JSValue w_parse_json(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    Bytes b;
    if (bytes_get(argv[0], &b))
        return JS_EXCEPTION;
    const char *text = b.cstr;
    char *copy = NULL;
    if (!text) { /* bytes: JS_ParseJSON wants a NUL after the input */
        copy = js_malloc(c, b.n + 1);
        if (!copy) {
            bytes_put(&b);
            return JS_EXCEPTION;
        }
        memcpy(copy, b.p, b.n);
        copy[b.n] = 0;
        text = copy;
    }
    uintptr_t saved = rt->stack_limit;
    uintptr_t budget = js_get_stack_pointer() - JSON_STACK_BUDGET;
    if (budget > saved)
        rt->stack_limit = budget;
    JSValue v = parse_json(c, text, b.n, "<json>");
    rt->stack_limit = saved;
    js_free(c, copy);
    bytes_put(&b);
    return v;
}
