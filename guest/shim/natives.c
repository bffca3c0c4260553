/* The natives: the functions the prelude receives as W (listed in guest/prelude/natives.js). */

static int blob_put(JSValueConst v)
{
    Bytes b;
    if (bytes_get(v, &b))
        return -1;
    bool ok = out_append(b.p, b.n);
    bytes_put(&b);
    if (!ok)
        JS_ThrowRangeError(ctx, "response too large: out of memory");
    return ok ? 0 : -1;
}

/* Appends a body to the blob: nothing for undefined, else a string, bytes, or a list of them. */
static int blob_put_body(JSValueConst body)
{
    if (JS_IsUndefined(body))
        return 0;
    if (!JS_IsArray(body))
        return blob_put(body);
    int64_t n;
    if (JS_GetLength(ctx, body, &n))
        return -1;
    for (int64_t i = 0; i < n; i++) {
        JSValue part = JS_GetPropertyInt64(ctx, body, i);
        int rc = JS_IsException(part) ? -1 : blob_put(part);
        JS_FreeValue(ctx, part);
        if (rc)
            return -1;
    }
    return 0;
}

/* blob(x) appends a body (as blob_put_body) and returns the blob's new length. */
static JSValue w_blob(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    if (blob_put_body(argv[0]))
        return JS_EXCEPTION;
    return JS_NewInt64(c, (int64_t)hot.out_len);
}

/* Writes v in decimal at p and returns the end: what snprintf does, at a tenth of its cost. */
static char *put_decimal(char *p, int64_t v)
{
    char digits[20];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (v < 0)
        *p++ = '-';
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *p++ = digits[--n];
    return p;
}

/* done(rid, status, headersJSON, body) appends the body (undefined, a string, bytes,
 * or a list of them) to the blob and returns the finished response's entry of the
 * report, "[rid,status,headers,off,len]" (ABI.md): what a small request spends most
 * on besides running the script, done here in one call. */
static JSValue w_done(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    int32_t rid, status;
    if (JS_ToInt32(c, &rid, argv[0]) || JS_ToInt32(c, &status, argv[1]))
        return JS_EXCEPTION;
    size_t off = hot.out_len;
    if (blob_put_body(argv[3]))
        return JS_EXCEPTION;
    size_t hlen;
    const char *headers = JS_ToCStringLen(c, &hlen, argv[2]);
    if (!headers)
        return JS_EXCEPTION;
    char *text = js_malloc(c, hlen + 64);
    JSValue r = JS_EXCEPTION;
    if (text) {
        char *p = text;
        *p++ = '[';
        p = put_decimal(p, rid);
        *p++ = ',';
        p = put_decimal(p, status);
        *p++ = ',';
        memcpy(p, headers, hlen);
        p += hlen;
        *p++ = ',';
        p = put_decimal(p, (int64_t)off);
        *p++ = ',';
        p = put_decimal(p, (int64_t)(hot.out_len - off));
        *p++ = ']';
        r = JS_NewStringLen(c, text, (size_t)(p - text));
        js_free(c, text);
        hot.ready = true;
    }
    JS_FreeCString(c, headers);
    return r;
}

enum { ENC_UTF8, ENC_LATIN1, ENC_HEX, ENC_BASE64, ENC_BASE64URL, ENC_UTF8_FATAL };

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_value(uint8_t ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62;
    if (ch == '/' || ch == '_') return 63;
    return -1;
}

static int hex_value(uint8_t ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* encode(string, enc) -> ArrayBuffer of the string's bytes in encoding enc.
 * Like Node, hex stops at the first bad pair and base64 skips foreign chars. */
static JSValue w_encode(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    int32_t enc = 0;
    JS_ToInt32(c, &enc, argv[1]);
    if (enc == ENC_LATIN1) {
        size_t n;
        const uint16_t *u = JS_ToCStringLenUTF16(c, &n, argv[0]);
        if (!u)
            return JS_EXCEPTION;
        uint8_t *tmp = js_malloc(c, n ? n : 1);
        if (!tmp) {
            JS_FreeCStringUTF16(c, u);
            return JS_EXCEPTION;
        }
        for (size_t i = 0; i < n; i++)
            tmp[i] = (uint8_t)u[i];
        JS_FreeCStringUTF16(c, u);
        JSValue ab = JS_NewArrayBufferCopy(c, tmp, n);
        js_free(c, tmp);
        return ab;
    }
    size_t n;
    const char *s = JS_ToCStringLen(c, &n, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    const uint8_t *p = (const uint8_t *)s;
    JSValue ab;
    if (enc == ENC_HEX || enc == ENC_BASE64 || enc == ENC_BASE64URL) {
        uint8_t *tmp = js_malloc(c, n / 2 + 3);
        size_t k = 0;
        if (!tmp) {
            JS_FreeCString(c, s);
            return JS_EXCEPTION;
        }
        if (enc == ENC_HEX) {
            for (size_t i = 0; i + 1 < n; i += 2) {
                int hi = hex_value(p[i]), lo = hex_value(p[i + 1]);
                if (hi < 0 || lo < 0)
                    break;
                tmp[k++] = (uint8_t)(hi << 4 | lo);
            }
        } else {
            uint32_t acc = 0;
            int bits = 0;
            for (size_t i = 0; i < n && p[i] != '='; i++) {
                int v = b64_value(p[i]);
                if (v < 0)
                    continue;
                acc = acc << 6 | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                    bits -= 8;
                    tmp[k++] = (uint8_t)(acc >> bits);
                }
            }
        }
        ab = JS_NewArrayBufferCopy(c, tmp, k);
        js_free(c, tmp);
    } else {
        ab = JS_NewArrayBufferCopy(c, p, n);
    }
    JS_FreeCString(c, s);
    return ab;
}

/* The Encoding Standard's UTF-8 decoder: each maximal subpart of an invalid sequence becomes
 * one U+FFFD, as browsers and Node decode (QuickJS's own decoder replaces byte by byte). Writes
 * at most n code units; sets *errors when it replaced anything. */
static size_t utf8_decode_whatwg(const uint8_t *p, size_t n, uint16_t *out, int *errors)
{
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t cp = p[i];
        if (cp < 0x80) {
            while (i + 4 <= n && !((p[i] | p[i + 1] | p[i + 2] | p[i + 3]) & 0x80)) {
                out[k] = p[i];
                out[k + 1] = p[i + 1];
                out[k + 2] = p[i + 2];
                out[k + 3] = p[i + 3];
                k += 4;
                i += 4;
            }
            if (i == n || p[i] >= 0x80)
                continue;
            cp = p[i];
            out[k++] = (uint16_t)cp;
            i++;
            continue;
        }
        /* the common well-formed two- and three-byte forms, without the general loop */
        if (cp >= 0xC2 && cp <= 0xDF && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
            out[k++] = (uint16_t)((cp & 0x1F) << 6 | (p[i + 1] & 0x3F));
            i += 2;
            continue;
        }
        if (cp >= 0xE1 && cp <= 0xEF && cp != 0xED && i + 2 < n && (p[i + 1] & 0xC0) == 0x80
            && (p[i + 2] & 0xC0) == 0x80) {
            out[k++] = (uint16_t)((cp & 0x0F) << 12 | (p[i + 1] & 0x3F) << 6 | (p[i + 2] & 0x3F));
            i += 3;
            continue;
        }
        int need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (cp >= 0xC2 && cp <= 0xDF) {
            need = 1;
            cp &= 0x1F;
        } else if (cp >= 0xE0 && cp <= 0xEF) {
            need = 2;
            lo = cp == 0xE0 ? 0xA0 : 0x80;
            hi = cp == 0xED ? 0x9F : 0xBF;
            cp &= 0x0F;
        } else if (cp >= 0xF0 && cp <= 0xF4) {
            need = 3;
            lo = cp == 0xF0 ? 0x90 : 0x80;
            hi = cp == 0xF4 ? 0x8F : 0xBF;
            cp &= 0x07;
        } else {
            out[k++] = 0xFFFD;
            *errors = 1;
            i++;
            continue;
        }
        size_t j = i + 1;
        int m = 0;
        for (; m < need && j < n && p[j] >= lo && p[j] <= hi; m++, j++) {
            cp = cp << 6 | (p[j] & 0x3F);
            lo = 0x80;
            hi = 0xBF;
        }
        i = j; /* a byte that broke the sequence is read again, as the start of the next */
        if (m < need) {
            out[k++] = 0xFFFD;
            *errors = 1;
        } else if (cp >= 0x10000) {
            cp -= 0x10000;
            out[k++] = (uint16_t)(0xD800 | cp >> 10);
            out[k++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
        } else {
            out[k++] = (uint16_t)cp;
        }
    }
    return k;
}

/* Whether every byte is below 0x80, eight at a time. */
static int is_ascii(const uint8_t *p, size_t n)
{
    uint64_t bits = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        bits |= w;
    }
    for (; i < n; i++)
        bits |= p[i];
    return (bits & 0x8080808080808080ull) == 0;
}

/* decode(bytes, enc) -> string. ENC_UTF8_FATAL throws on malformed input. */
static JSValue w_decode(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    int32_t enc = 0;
    JS_ToInt32(c, &enc, argv[1]);
    Bytes b;
    if (bytes_get(argv[0], &b))
        return JS_EXCEPTION;
    JSValue r;
    if (enc == ENC_UTF8 || enc == ENC_UTF8_FATAL) {
        if (is_ascii(b.p, b.n)) {
            r = JS_NewStringLen(c, (const char *)b.p, b.n); /* one byte per character */
        } else {
            /* decoded straight into the string: at most one code unit per byte */
            JSString *str = js_alloc_string(c, (int)b.n, 1);
            if (!str) {
                r = JS_EXCEPTION;
            } else {
                int errors = 0;
                size_t k = utf8_decode_whatwg(b.p, b.n, str16(str), &errors);
                if (errors && enc == ENC_UTF8_FATAL) {
                    js_free_string(c->rt, str);
                    r = JS_ThrowTypeError(c, "The encoded data was not valid for encoding utf-8");
                } else {
                    if (k < b.n - b.n / 4) { /* mostly multi-byte characters: give back the rest */
                        JSString *fit = js_realloc(c, str, sizeof(JSString) + k * 2);
                        if (fit)
                            str = fit;
                    }
                    str->len = (uint32_t)k;
                    r = JS_MKPTR(JS_TAG_STRING, str);
                }
            }
        }
    } else if (enc == ENC_LATIN1) {
        uint16_t *u = js_malloc(c, (b.n ? b.n : 1) * 2);
        if (u) {
            for (size_t i = 0; i < b.n; i++)
                u[i] = b.p[i];
            r = JS_NewStringUTF16(c, u, b.n);
            js_free(c, u);
        } else {
            r = JS_EXCEPTION;
        }
    } else {
        size_t cap = enc == ENC_HEX ? b.n * 2 : (b.n + 2) / 3 * 4;
        char *t = js_malloc(c, cap + 1);
        size_t k = 0;
        if (!t) {
            bytes_put(&b);
            return JS_EXCEPTION;
        }
        if (enc == ENC_HEX) {
            static const char digits[] = "0123456789abcdef";
            for (size_t i = 0; i < b.n; i++) {
                t[k++] = digits[b.p[i] >> 4];
                t[k++] = digits[b.p[i] & 15];
            }
        } else {
            const char *alpha = enc == ENC_BASE64URL ? b64_url : b64_std;
            size_t i = 0;
            for (; i + 2 < b.n; i += 3) {
                uint32_t v = (uint32_t)b.p[i] << 16 | (uint32_t)b.p[i + 1] << 8 | b.p[i + 2];
                t[k++] = alpha[v >> 18 & 63];
                t[k++] = alpha[v >> 12 & 63];
                t[k++] = alpha[v >> 6 & 63];
                t[k++] = alpha[v & 63];
            }
            if (i < b.n) {
                uint32_t v = (uint32_t)b.p[i] << 16 | (i + 1 < b.n ? (uint32_t)b.p[i + 1] << 8 : 0);
                t[k++] = alpha[v >> 18 & 63];
                t[k++] = alpha[v >> 12 & 63];
                if (i + 1 < b.n)
                    t[k++] = alpha[v >> 6 & 63];
                if (enc == ENC_BASE64) {
                    if (i + 1 >= b.n)
                        t[k++] = '=';
                    t[k++] = '=';
                }
            }
        }
        r = JS_NewStringLen(c, t, k);
        js_free(c, t);
    }
    bytes_put(&b);
    return r;
}

/* random(typedArray) fills it from WASI random_get and returns it. */
static JSValue w_random(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    Bytes b;
    hot.impure = true;
    if (JS_IsString(argv[0]))
        return JS_ThrowTypeError(c, "expected a typed array");
    if (bytes_get(argv[0], &b))
        return JS_EXCEPTION;
    if (b.n && __wasi_random_get((uint8_t *)b.p, b.n) != 0) {
        bytes_put(&b);
        return JS_ThrowInternalError(c, "random_get failed");
    }
    bytes_put(&b);
    return js_dup(argv[0]);
}

/* Throw the Error a host call answered with: its message is the n bytes of out (n < 0). */
static JSValue host_refused(JSContext *c, const uint8_t *out, int32_t n)
{
    size_t len = (size_t)-n <= HOST_OUT_CAP ? (size_t)-n : HOST_OUT_CAP;
    JSValue msg = JS_NewStringLen(c, (const char *)out, len);
    JSValue err = JS_NewError(c);
    JS_DefinePropertyValueStr(c, err, "message", msg, JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    return JS_Throw(c, err);
}

/* hostCall(name, parts) calls the synchronous host capability `name` with the
 * concatenated bytes of parts and returns its output as an ArrayBuffer. */
static JSValue w_host_call(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    static uint8_t out[HOST_OUT_CAP];
    size_t name_len;
    hot.impure = true;
    const char *name = JS_ToCStringLen(c, &name_len, argv[0]);
    if (!name)
        return JS_EXCEPTION;
    int64_t count = 0;
    if (JS_GetLength(c, argv[1], &count)) {
        JS_FreeCString(c, name);
        return JS_EXCEPTION;
    }
    uint8_t *in = NULL;
    size_t in_len = 0;
    JSValue r = JS_UNDEFINED;
    for (int64_t i = 0; i < count; i++) {
        JSValue part = JS_GetPropertyInt64(c, argv[1], i);
        Bytes b;
        int err = bytes_get(part, &b);
        JS_FreeValue(c, part);
        if (err) {
            r = JS_EXCEPTION;
            goto done;
        }
        uint8_t *grown = js_realloc(c, in, in_len + b.n + 1);
        if (!grown) {
            bytes_put(&b);
            r = JS_EXCEPTION;
            goto done;
        }
        in = grown;
        memcpy(in + in_len, b.p, b.n);
        in_len += b.n;
        bytes_put(&b);
    }
    int32_t n = wx_host_call(name, (int32_t)name_len, in, (int32_t)in_len, out, HOST_OUT_CAP);
    if (n >= 0)
        r = JS_NewArrayBufferCopy(c, out, (size_t)(n <= HOST_OUT_CAP ? n : HOST_OUT_CAP));
    else
        r = host_refused(c, out, n);
done:
    js_free(c, in);
    JS_FreeCString(c, name);
    return r;
}

/* Shared state's area (guest/prelude/host/shared.js, runtime/host/shared.py, ABI.md): three
 * f64 cells the host and the prelude both read, then the log of top-level writes the host has
 * not applied yet. Zero until the prelude first hands the host its address. */
#define SHARED_LOG_CAP (32 * 1024)
static struct {
    double gen;       /* host: the tenant's state generation, stamped before every crossing */
    double room;      /* host: bytes the log may hold before the tenant's cap is reached */
    double valid;     /* the generation the prelude's cache holds (it and the host set it) */
    uint32_t log_len; /* bytes of log in use; the host empties it */
    uint32_t spare;
    uint8_t log[SHARED_LOG_CAP];
} shared_area;

/* sharedArea() -> [ArrayBuffer over the cells, the area's address]. */
static JSValue w_shared_area(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    JSValue r = JS_NewArray(c);
    JSValue cells = JS_NewArrayBuffer(c, (uint8_t *)&shared_area, 3 * sizeof(double), 0,
                                      NULL, NULL, false);
    if (JS_IsException(r) || JS_IsException(cells)
        || JS_SetPropertyUint32(c, r, 0, cells) < 0
        || JS_SetPropertyUint32(c, r, 1, JS_NewInt64(c, (int64_t)(uintptr_t)&shared_area)) < 0) {
        JS_FreeValue(c, r);
        return JS_EXCEPTION;
    }
    return r;
}

#define SHARED_PATH_KEEP 256 /* a longer path's input is allocated for its call */

/* sharedGet(pathJSON, missing, object): the host call shared.get of an instance whose area
 * the host has (its input: a newline, then the path), answered as the prelude keeps it, with
 * nothing in between to allocate or parse in JS: `missing` for a path holding nothing,
 * `object` for an object, an array as its JSON (an ArrayBuffer: each read parses a copy of
 * its own), any other value as itself. */
static JSValue w_shared_get(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    static uint8_t out[HOST_OUT_CAP + 1]; /* + the NUL parse_json wants */
    static uint8_t kept[SHARED_PATH_KEEP + 1];
    size_t plen;
    hot.impure = true;
    const char *p = JS_ToCStringLen(c, &plen, argv[0]);
    if (!p)
        return JS_EXCEPTION;
    uint8_t *in = plen <= SHARED_PATH_KEEP ? kept : js_malloc(c, plen + 1);
    if (!in) {
        JS_FreeCString(c, p);
        return JS_EXCEPTION;
    }
    in[0] = '\n';
    memcpy(in + 1, p, plen);
    JS_FreeCString(c, p);
    int32_t n = wx_host_call("shared.get", 10, in, (int32_t)plen + 1, out, HOST_OUT_CAP);
    if (in != kept)
        js_free(c, in);
    if (n < 0)
        return host_refused(c, out, n);
    if (n > HOST_OUT_CAP)
        n = HOST_OUT_CAP;
    if (n == 0)
        return js_dup(argv[1]);
    if (n == 1 && out[0] == 'o')
        return js_dup(argv[2]);
    if (out[0] == '[' || out[0] == '{')
        return JS_NewArrayBufferCopy(c, out, (size_t)n);
    out[n] = 0;
    return parse_json(c, (const char *)out, (size_t)n, "<shared>");
}

/* Whether JSON text holds a lone surrogate: JSON.stringify writes one as \udXXX, which the host
 * refuses (it must say so to the script at once, so such a write is never logged). */
static bool lone_surrogate(const char *s, size_t n)
{
    const char *end = s + n;
    for (const char *q; s < end && (q = memchr(s, '\\', (size_t)(end - s))); s = q + 2)
        if (end - q > 2 && q[1] == 'u' && q[2] == 'd')
            return true;
    return false;
}

#define SHARED_VALUE_MAX 4096 /* a longer value's JSON is written by a host call, checked at once */

/* sharedPut(pathJSON, valueJSON | undefined) logs a write as "path\tvalue\n", a delete as
 * "path\t\n" (JSON text holds neither character raw, and is never empty); false, logging nothing, when the log or
 * the room the host gave is full, the value is long, or either holds a lone surrogate. The
 * length moves last: a crossing stopped midway leaves whole records only. */
static JSValue w_shared_put(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    size_t plen, vlen = 0;
    hot.impure = true;
    const char *p = JS_ToCStringLen(c, &plen, argv[0]);
    if (!p)
        return JS_EXCEPTION;
    const char *v = NULL;
    if (!JS_IsUndefined(argv[1]) && !(v = JS_ToCStringLen(c, &vlen, argv[1]))) {
        JS_FreeCString(c, p);
        return JS_EXCEPTION;
    }
    size_t at = shared_area.log_len, end = at + plen + vlen + 2;
    bool ok = end <= SHARED_LOG_CAP && (double)end <= shared_area.room && vlen <= SHARED_VALUE_MAX
              && !lone_surrogate(p, plen) && !(v && lone_surrogate(v, vlen));
    if (ok) {
        uint8_t *d = shared_area.log + at;
        memcpy(d, p, plen);
        d += plen;
        *d++ = '\t';
        if (vlen)
            memcpy(d, v, vlen);
        d[vlen] = '\n';
        shared_area.log_len = (uint32_t)end;
    }
    JS_FreeCString(c, p);
    if (v)
        JS_FreeCString(c, v);
    return JS_NewBool(c, ok);
}

/* The prelude queued a zero-delay timer; without one, drain() skips calling tick. */
static JSValue w_zero_timer(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    hot.zero_timers = true;
    return JS_UNDEFINED;
}

/* enter(f): the code that runs from here on, and every job and promise reaction it queues,
 * belongs to request f (null: to none). That async context is the runtime's (build/guest.py):
 * a reaction runs in the context it was registered in, whoever settles its promise. */
static JSValue w_enter(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    JSValue outer = rt->async_context;
    rt->async_context = js_dup(argv[0]);
    JS_FreeValue(c, outer);
    return JS_UNDEFINED;
}

/* current(): the request the running code belongs to (what enter set, or its job carried). */
static JSValue w_current(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    return js_dup(rt->async_context);
}

/* ready(): something the host waits for (a failed request, a streamed head or end) is in
 * the report; a finished response (done) says so itself. */
static JSValue w_ready(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    hot.ready = true;
    return JS_UNDEFINED;
}

/* leftOver(): the async contexts (flights) of the jobs still queued, each once in a row. */
static JSValue w_left_over(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    JSValue list = JS_NewArray(c);
    uint32_t n = 0;
    JSValue last = JS_UNINITIALIZED;
    struct list_head *el;
    list_for_each(el, &rt->job_list) {
        JSValue v = list_entry(el, JSJobEntry, link)->async_context;
        if (JS_VALUE_GET_TAG(v) == JS_VALUE_GET_TAG(last) && JS_VALUE_GET_PTR(v) == JS_VALUE_GET_PTR(last))
            continue;
        last = v;
        if (JS_SetPropertyUint32(c, list, n++, js_dup(v)) < 0) {
            JS_FreeValue(c, list);
            return JS_EXCEPTION;
        }
    }
    return list;
}

/* Whether a job (a promise reaction, a queued microtask) is waiting to run. */
static JSValue w_jobs_pending(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    return JS_NewBool(c, JS_IsJobPending(rt));
}

/* fromShape(template, ...values): a new object with the template's prototype and
 * properties, holding `values` in the template's property order. The prelude makes
 * every request's req, res, flight and metadata this way: one allocation, where a
 * constructor or a literal adds the properties one shape transition at a time. */
#define FROM_SHAPE_MAX 16
static JSValue w_from_shape(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    if (argc < 1 || !JS_IsObject(argv[0]))
        return JS_ThrowTypeError(c, "fromShape: the template is not an object");
    JSObject *t = JS_VALUE_GET_OBJ(argv[0]);
    JSShape *sh = t->shape;
    int n = argc - 1;
    /* A shape is shared only while hashed; plain data properties only. */
    if (t->class_id != JS_CLASS_OBJECT || !sh->is_hashed || sh->prop_count != n || n > FROM_SHAPE_MAX)
        return JS_ThrowTypeError(c, "fromShape: %d values do not fit the template", n);
    JSShapeProperty *prs = get_shape_prop(sh);
    JSProperty props[FROM_SHAPE_MAX];
    for (int i = 0; i < n; i++)
        if ((prs[i].flags & JS_PROP_TMASK) != JS_PROP_NORMAL || prs[i].atom == JS_ATOM_NULL)
            return JS_ThrowTypeError(c, "fromShape: the template has an accessor or a hole");
    for (int i = 0; i < n; i++)
        props[i].u.value = js_dup(argv[i + 1]);
    return JS_NewObjectFromShape(c, js_dup_shape(sh), JS_CLASS_OBJECT, props);
}

static const JSCFunctionListEntry wx_natives[] = {
    JS_CFUNC_DEF("blob", 1, w_blob),
    JS_CFUNC_DEF("encode", 2, w_encode),
    JS_CFUNC_DEF("decode", 2, w_decode),
    JS_CFUNC_DEF("random", 1, w_random),
    JS_CFUNC_DEF("hostCall", 2, w_host_call),
    JS_CFUNC_DEF("sharedArea", 0, w_shared_area),
    JS_CFUNC_DEF("sharedPut", 2, w_shared_put),
    JS_CFUNC_DEF("sharedGet", 3, w_shared_get),
    JS_CFUNC_DEF("parseJSON", 1, w_parse_json),
    JS_CFUNC_DEF("jobsPending", 0, w_jobs_pending),
    JS_CFUNC_DEF("zeroTimer", 0, w_zero_timer),
    JS_CFUNC_DEF("fromShape", 1, w_from_shape),
    JS_CFUNC_DEF("done", 4, w_done),
    JS_CFUNC_DEF("enter", 1, w_enter),
    JS_CFUNC_DEF("current", 0, w_current),
    JS_CFUNC_DEF("ready", 0, w_ready),
    JS_CFUNC_DEF("leftOver", 0, w_left_over),
    JS_CFUNC_DEF("urlParse", 2, w_url_parse),
    JS_CFUNC_DEF("urlCanParse", 2, w_url_can_parse),
    JS_CFUNC_DEF("urlSet", 3, w_url_set),
    JS_CFUNC_DEF("domainToUnicode", 1, w_domain_to_unicode),
};

