/*
 * URLs: the natives over ada (build/guest.py pins and compiles it), the WHATWG URL parser Node
 * uses. The prelude keeps a URL as its href and the offsets of its components, as ada's
 * url_aggregator does; each native is one crossing that parses (and maybe edits) a URL and
 * returns both in one array, so getters slice the href without a crossing. Nothing of ada
 * outlives a call: a URL is parsed again from its href for each setter.
 */
#include "ada_c.h"

/* What urlSet(href, field, value) sets; guest/prelude/lib/url.js numbers its fields the same. */
enum {
    URL_HREF, URL_PROTOCOL, URL_USERNAME, URL_PASSWORD, URL_HOST, URL_HOSTNAME, URL_PORT,
    URL_PATHNAME, URL_SEARCH, URL_HASH,
};

/* A string argument as the UTF-8 of a USVString, which is what the URL Standard parses: a lone
 * surrogate, which JS_ToCStringLen writes as its 3-byte WTF-8 form (ED A0..BF xx), becomes
 * U+FFFD (EF BF BD), also 3 bytes. Such a string is always a fresh copy, never the engine's
 * own buffer (that happens only for ASCII), so it is rewritten in place. */
static const char *usv_get(JSContext *c, JSValueConst v, size_t *n)
{
    const char *s = JS_ToCStringLen(c, n, v);
    if (!s)
        return NULL;
    for (size_t i = 0; i + 2 < *n; i++) {
        if ((uint8_t)s[i] == 0xED && (uint8_t)s[i + 1] >= 0xA0) {
            char *w = (char *)s;
            w[i] = (char)0xEF;
            w[i + 1] = (char)0xBF;
            w[i + 2] = (char)0xBD;
            i += 2;
        }
    }
    return s;
}

/* A parsed URL as [href, protocol_end, username_end, host_begin, host_end, port, pathname_start,
 * search_start, hash_start] (ada_url_components, -1 for an absent port, search or hash), or
 * null if it is invalid; the URL is freed. host_begin is where the host begins: ada's
 * host_start is the '@' that ends credentials when there are some. */
static JSValue url_result(JSContext *c, ada_url u)
{
    JSValue r = JS_NULL;
    if (ada_is_valid(u)) {
        const ada_url_components *k = ada_get_components(u);
        ada_string href = ada_get_href(u);
        uint32_t host_begin = k->host_start + (k->host_end > k->host_start && href.data[k->host_start] == '@');
        JSValue v[9] = {
            JS_NewStringLen(c, href.data, href.length),
            JS_NewInt32(c, (int32_t)k->protocol_end), JS_NewInt32(c, (int32_t)k->username_end),
            JS_NewInt32(c, (int32_t)host_begin), JS_NewInt32(c, (int32_t)k->host_end),
            JS_NewInt32(c, (int32_t)k->port), JS_NewInt32(c, (int32_t)k->pathname_start),
            JS_NewInt32(c, (int32_t)k->search_start), JS_NewInt32(c, (int32_t)k->hash_start),
        };
        r = JS_IsException(v[0]) ? v[0] : JS_NewArrayFrom(c, countof(v), v);
    }
    ada_free(u);
    return r;
}

/* urlParse(input, base) -> input parsed against base (undefined: none), as url_result says, or
 * null when it is no URL. canParse(input, base) -> whether it is one, building nothing. */
static JSValue url_parse(JSContext *c, JSValueConst *argv, bool only_check)
{
    size_t n, base_n = 0;
    const char *s = usv_get(c, argv[0], &n), *base = NULL;
    if (!s)
        return JS_EXCEPTION;
    if (!JS_IsUndefined(argv[1]) && !(base = usv_get(c, argv[1], &base_n))) {
        JS_FreeCString(c, s);
        return JS_EXCEPTION;
    }
    JSValue r;
    if (only_check)
        r = JS_NewBool(c, base ? ada_can_parse_with_base(s, n, base, base_n) : ada_can_parse(s, n));
    else
        r = url_result(c, base ? ada_parse_with_base(s, n, base, base_n) : ada_parse(s, n));
    JS_FreeCString(c, s);
    if (base)
        JS_FreeCString(c, base);
    return r;
}

static JSValue w_url_parse(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    return url_parse(c, argv, false);
}

static JSValue w_url_can_parse(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    return url_parse(c, argv, true);
}

/* urlSet(href, field, value) -> the URL (as url_result) after the setter of `field` ran with
 * value, or null when that setter refused it and left the URL as it was (for href: value is
 * no URL). */
static JSValue w_url_set(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    int32_t field;
    size_t href_n, n;
    if (JS_ToInt32(c, &field, argv[1]))
        return JS_EXCEPTION;
    const char *href = JS_ToCStringLen(c, &href_n, argv[0]);
    if (!href)
        return JS_EXCEPTION;
    const char *s = usv_get(c, argv[2], &n);
    if (!s) {
        JS_FreeCString(c, href);
        return JS_EXCEPTION;
    }
    ada_url u = ada_parse(href, href_n);
    bool ok = ada_is_valid(u);
    if (ok) {
        switch (field) {
        case URL_HREF: ok = ada_set_href(u, s, n); break;
        case URL_PROTOCOL: ok = ada_set_protocol(u, s, n); break;
        case URL_USERNAME: ok = ada_set_username(u, s, n); break;
        case URL_PASSWORD: ok = ada_set_password(u, s, n); break;
        case URL_HOST: ok = ada_set_host(u, s, n); break;
        case URL_HOSTNAME: ok = ada_set_hostname(u, s, n); break;
        case URL_PORT: ok = ada_set_port(u, s, n); break;
        case URL_PATHNAME: ok = ada_set_pathname(u, s, n); break;
        case URL_SEARCH: ada_set_search(u, s, n); break;
        case URL_HASH: ada_set_hash(u, s, n); break;
        default: ok = false;
        }
    }
    JS_FreeCString(c, href);
    JS_FreeCString(c, s);
    if (!ok) {
        ada_free(u);
        return JS_NULL;
    }
    return url_result(c, u);
}

/* domainToUnicode(ascii) -> the domain with its punycode labels decoded (UTS #46 ToUnicode). */
static JSValue w_domain_to_unicode(JSContext *c, JSValueConst this, int argc, JSValueConst *argv)
{
    size_t n;
    const char *s = usv_get(c, argv[0], &n);
    if (!s)
        return JS_EXCEPTION;
    ada_owned_string out = ada_idna_to_unicode(s, n);
    JS_FreeCString(c, s);
    JSValue r = JS_NewStringLen(c, out.data, out.length);
    ada_free_owned_string(out);
    return r;
}
