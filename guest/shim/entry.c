/* The exports: the entry points the host calls, each one crossing of guest/ABI.md. */

static uint8_t *in_ptr(void)
{
    return (uint8_t *)(uintptr_t)hot.io[IO_IN_PTR];
}

static int32_t enter(int32_t json_len, int32_t blob_len)
{
    out_reset();
    if (!ctx)
        return abi_error(-1, "wx_init has not run");
    if (json_len < 0 || blob_len < 0 || (uint64_t)json_len + (uint64_t)blob_len > hot.io[IO_IN_CAP])
        return abi_error(-1, "the input envelope does not fit in_cap");
    JS_UpdateStackTop(rt);
    rearm_soft_limit();
    return 0;
}

/* Parses the input JSON header; a NUL goes in temporarily after it. */
static JSValue header(int32_t json_len)
{
    uint8_t *p = in_ptr();
    uint8_t saved = p[json_len];
    p[json_len] = 0;
    JSValue h = parse_json(ctx, (const char *)p, (size_t)json_len, "envelope");
    p[json_len] = saved;
    if (!JS_IsException(h) && !JS_IsObject(h)) {
        JS_FreeValue(ctx, h);
        return JS_EXCEPTION;
    }
    if (JS_IsException(h))
        JS_FreeValue(ctx, JS_GetException(ctx));
    return h;
}

static double number_field(JSValueConst obj, const char *name)
{
    double d = 0;
    JSValue v = JS_GetPropertyStr(ctx, obj, name);
    if (JS_IsNumber(v))
        JS_ToFloat64(ctx, &d, v);
    JS_FreeValue(ctx, v);
    return d;
}

static JSValue blob_copy(int32_t json_len, int32_t blob_len, bool as_array_buffer)
{
    if (!blob_len)
        return JS_UNDEFINED;
    const uint8_t *p = in_ptr() + json_len;
    return as_array_buffer ? JS_NewArrayBufferCopy(ctx, p, (size_t)blob_len)
                           : JS_NewUint8ArrayCopy(ctx, p, (size_t)blob_len);
}

EXPORT("wx_io") int32_t wx_io(void)
{
    if (!hot.io[IO_IN_PTR]) {
        hot.io[IO_IN_PTR] = (uint32_t)(uintptr_t)hot.in_static;
        hot.io[IO_IN_CAP] = IN_STATIC_CAP;
    }
    return (int32_t)(uintptr_t)hot.io;
}

EXPORT("wx_reserve") int32_t wx_reserve(int32_t n)
{
    wx_io();
    if (n < 0)
        return -1;
    if ((uint32_t)n <= hot.io[IO_IN_CAP])
        return 0;
    uint8_t *p = malloc((size_t)n + 1);
    if (!p)
        return -1;
    free(hot.in_heap);
    hot.in_heap = p;
    hot.io[IO_IN_PTR] = (uint32_t)(uintptr_t)p;
    hot.io[IO_IN_CAP] = (uint32_t)n;
    return 0;
}

static int32_t init_failed(const char *what)
{
    JSValue exc = JS_GetException(ctx);
    const char *msg = JS_ToCString(ctx, exc);
    char buf[200];
    snprintf(buf, sizeof buf, "%s: %s", what, msg ? msg : "?");
    for (char *q = buf; *q; q++)
        if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20)
            *q = ' ';
    JS_FreeCString(ctx, msg);
    JS_FreeValue(ctx, exc);
    return abi_error(-2, buf);
}

EXPORT("wx_init") int32_t wx_init(void)
{
    wx_io();
    out_reset();
    if (ctx)
        return abi_error(-1, "wx_init ran twice");
    rt = JS_NewRuntime2(&wx_malloc_funcs, NULL);
    if (!rt)
        return abi_error(-2, "cannot create the JS runtime");
    JS_SetMaxStackSize(rt, JS_STACK_LIMIT);
    JS_SetInterruptHandler(rt, on_interrupt, NULL);
    ctx = JS_NewContext(rt);
    if (!ctx)
        return abi_error(-2, "cannot create the JS context");

    JSValue natives = JS_NewObject(ctx);
    JS_SetPropertyFunctionList(ctx, natives, wx_natives, countof(wx_natives));
    keep_source = 0; /* the prelude's functions print as [native code], as built-ins do */
    JSValue factory = JS_Eval(ctx, wx_prelude, wx_prelude_len, "prelude.js", JS_EVAL_TYPE_GLOBAL);
    keep_source = 1;
    if (JS_IsException(factory)) {
        JS_FreeValue(ctx, natives);
        return init_failed("prelude.js");
    }
    JSValue entries = JS_Call(ctx, factory, JS_UNDEFINED, 1, &natives);
    JS_FreeValue(ctx, factory);
    JS_FreeValue(ctx, natives);
    if (JS_IsException(entries))
        return init_failed("prelude.js");
    static const char *const names[] = {
        "load", "error", "run", "settle", "tick", "flush", "timeout", "uncaught", "rejection", "warm",
        "skip",
    };
    JSValue *slots = (JSValue *)&E;
    for (size_t i = 0; i < countof(names); i++) {
        slots[i] = JS_GetPropertyStr(ctx, entries, names[i]);
        if (!JS_IsFunction(ctx, slots[i])) {
            JS_FreeValue(ctx, entries);
            return abi_error(-2, "prelude.js lacks an entry function");
        }
    }
    JS_FreeValue(ctx, entries);
    JS_SetHostPromiseRejectionTracker(rt, on_rejection, NULL);
    pin_shapes = 1;
    JSValue warmed = JS_Call(ctx, E.warm, JS_UNDEFINED, 0, NULL);
    if (!JS_IsException(warmed)) { /* no job of the warm-up may wait inside the snapshot */
        JSContext *c;
        while (JS_ExecutePendingJob(rt, &c) > 0) {}
    }
    pin_shapes = 0;
    if (JS_IsException(warmed))
        return init_failed("prelude.js warm-up");
    out_reset(); /* what the warm-up request wrote */
    freeze_heap(warmed); /* warm returns the prelude's state object */
    JS_FreeValue(ctx, warmed);
    return out_finish("{}", 2, 0);
}

/* Every entry point starts here: check the input envelope and parse its JSON header.
 * Returns nonzero (an ABI error, already written) if the envelope is bad. */
static int32_t take_envelope(int32_t json_len, int32_t blob_len, JSValue *h)
{
    int32_t rc = enter(json_len, blob_len);
    if (rc)
        return rc;
    *h = header(json_len);
    if (JS_IsException(*h))
        return abi_error(-1, "the input header is not a JSON object");
    return 0;
}

EXPORT("wx_compile") int32_t wx_compile(int32_t json_len, int32_t blob_len)
{
    JSValue h;
    int32_t rc = take_envelope(json_len, blob_len, &h);
    if (rc)
        return rc;
    JSValue fname = JS_GetPropertyStr(ctx, h, "filename");
    const char *filename = JS_IsString(fname) ? JS_ToCString(ctx, fname) : NULL;
    JS_FreeValue(ctx, fname);
    JS_FreeValue(ctx, h);

    uint8_t *src = in_ptr() + json_len;
    uint8_t saved = src[blob_len];
    src[blob_len] = 0;
    JS_SetMaxStackSize(rt, COMPILE_STACK_LIMIT);
    JSValue fn = JS_Eval(ctx, (const char *)src, (size_t)blob_len,
                         filename ? filename : "script.js",
                         JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY);
    JS_SetMaxStackSize(rt, JS_STACK_LIMIT);
    src[blob_len] = saved;
    if (filename)
        JS_FreeCString(ctx, filename);
    if (JS_IsException(fn)) {
        JSValue exc = JS_GetException(ctx);
        JSValue s = JS_Call(ctx, E.error, JS_UNDEFINED, 1, &exc);
        JS_FreeValue(ctx, exc);
        return out_value(s);
    }
    size_t n;
    uint8_t *bc = JS_WriteObject(ctx, &n, fn, JS_WRITE_OBJ_BYTECODE | JS_WRITE_OBJ_STRIP_SOURCE);
    JS_FreeValue(ctx, fn);
    if (!bc || !out_append(bc, n)) {
        js_free(ctx, bc);
        JS_FreeValue(ctx, JS_GetException(ctx));
        return abi_error(-3, "out of memory writing the bytecode");
    }
    js_free(ctx, bc);
    char json[64];
    int k = snprintf(json, sizeof json, "{\"bytecode\": {\"off\": 0, \"len\": %zu}}", n);
    return out_finish(json, (size_t)k, 0);
}

/* Evaluate a script's bytecode and hand the factory to the prelude's load. Returns the output
 * JSON as a JS string: the load's error, or (unless keep_logs) its logs; JS_NULL when it
 * succeeded with keep_logs, which leaves top-level logs for the request's flush. */
static JSValue load_script(JSValue h, const uint8_t *code, size_t len, bool keep_logs)
{
    JSValue argv[3] = { h, JS_UNDEFINED, JS_NewBool(ctx, keep_logs) };
    JSValue fn = JS_ReadObject(ctx, code, len, JS_READ_OBJ_BYTECODE);
    if (!JS_IsException(fn))
        argv[1] = JS_EvalFunction(ctx, fn);
    JSValue s;
    if (JS_IsException(argv[1])) {
        JSValue exc = JS_GetException(ctx);
        s = JS_Call(ctx, E.error, JS_UNDEFINED, 1, &exc);
        JS_FreeValue(ctx, exc);
    } else {
        s = JS_Call(ctx, E.load, JS_UNDEFINED, 3, argv);
        JS_FreeValue(ctx, argv[1]);
        if (JS_IsException(s)) {
            JSValue exc = JS_GetException(ctx);
            hot.deadline_ns = 0;
            if (hot.timed_out)
                s = JS_NewString(ctx, "{\"error\": {\"name\": \"TimeoutError\", "
                                      "\"message\": \"loading the script ran out of time\"}}");
            else
                s = JS_Call(ctx, E.error, JS_UNDEFINED, 1, &exc);
            JS_FreeValue(ctx, exc);
        }
    }
    return s;
}

static bool is_empty_object(JSValueConst s)
{
    size_t n;
    const char *t = JS_IsString(s) ? JS_ToCStringLen(ctx, &n, s) : NULL;
    bool empty = t && n == 2 && t[0] == '{' && t[1] == '}';
    if (t)
        JS_FreeCString(ctx, t);
    return empty;
}

EXPORT("wx_load") int32_t wx_load(int32_t json_len, int32_t blob_len)
{
    JSValue h;
    int32_t rc = take_envelope(json_len, blob_len, &h);
    if (rc)
        return rc;
    set_mem_limit(number_field(h, "mem_limit"));
    start_budget(number_field(h, "budget_ms"));
    /* Top-level code gets its own randomness, and the first run reseeds again
     * in case this load ends up inside a snapshot. */
    reseed();
    hot.seeded = false;
    hot.impure = false;
    uint64_t seed = ctx->random_state;
    JSValue s = load_script(h, in_ptr() + json_len, (size_t)blob_len, false);
    JS_FreeValue(ctx, h);
    hot.deadline_ns = 0;
    /* A top level that logged nothing and read no clock, randomness or host left the same
     * memory it would leave every time: the host may start instances from it (ABI.md). */
    if (!hot.impure && ctx->random_state == seed && is_empty_object(s)) {
        JS_FreeValue(ctx, s);
        s = JS_NewString(ctx, "{\"pure\": true}");
    }
    return out_value(s);
}

/* What wx_run and wx_resume do first: take the envelope, seed the instance's first crossing
 * (a script loaded in it included), start the crossing's time budget. Returns nonzero (an ABI error) if the envelope is bad. */
static int32_t start_crossing(int32_t json_len, int32_t blob_len, JSValue *h)
{
    int32_t rc = take_envelope(json_len, blob_len, h);
    if (rc)
        return rc;
    if (!hot.seeded)
        reseed();
    start_budget(number_field(*h, "budget_ms"));
    /* work an earlier crossing left is sliced from the start, answer or not */
    hot.ready = hot.more;
    hot.more = false;
    hot.slice_end_ns = 0;
    return 0;
}

/* The requests of a crossing: `batch` holds them as [rid, method, url, path, headers, query,
 * params, ip, body length], and their bodies follow one another in the input from `at`. Each
 * runs and drains in turn with the whole budget to itself, as if it had its own crossing; once
 * the crossing has used the budget, the rest are reported in `skipped`, untouched, for the host
 * to run elsewhere. Takes `batch`. */
static int32_t run_batch(JSValue batch, int32_t at, int32_t len)
{
    int64_t count = 0;
    JS_GetLength(ctx, batch, &count);
    int64_t off = 0;
    double budget_ms = hot.budget_ms;
    uint64_t end = hot.deadline_ns; /* 0: no budget */
    for (int64_t i = 0; i < count; i++) {
        JSValue item = JS_GetPropertyInt64(ctx, batch, i);
        JSValue n = JS_GetPropertyUint32(ctx, item, 8);
        double blen = -1;
        if (JS_IsNumber(n))
            JS_ToFloat64(ctx, &blen, n);
        JS_FreeValue(ctx, n);
        if (!JS_IsArray(item) || !(blen >= 0 && off + blen <= len)) {
            JS_FreeValue(ctx, item);
            JS_FreeValue(ctx, batch);
            return abi_error(-1, "a request is not [rid, ..., body length] within the blob");
        }
        if (end && now_ns() >= end) {
            JSValue rid = JS_GetPropertyUint32(ctx, item, 0);
            call_void(E.skip, 1, &rid);
            JS_FreeValue(ctx, rid);
        } else {
            start_budget(budget_ms);
            JSValue argv[2] = { item, blob_copy(at + (int32_t)off, (int32_t)blen, false) };
            call_void(E.run, 2, argv);
            JS_FreeValue(ctx, argv[1]);
            drain();
        }
        JS_FreeValue(ctx, item);
        off += (int64_t)blen;
    }
    JS_FreeValue(ctx, batch);
    return flush();
}

EXPORT("wx_run") int32_t wx_run(int32_t json_len, int32_t blob_len)
{
    JSValue h;
    int32_t rc = start_crossing(json_len, blob_len, &h);
    if (rc)
        return rc;
    /* A fresh instance may load its script in the same crossing: the blob then starts with
     * `load.code` bytes of bytecode, and the request bodies follow. */
    JSValue load = JS_GetPropertyStr(ctx, h, "load");
    int32_t code = 0;
    if (JS_IsObject(load)) {
        double n = number_field(load, "code");
        if (!(n >= 0 && n <= blob_len)) {
            JS_FreeValue(ctx, load);
            JS_FreeValue(ctx, h);
            return abi_error(-1, "load.code exceeds the blob");
        }
        code = (int32_t)n;
        set_mem_limit(number_field(load, "mem_limit"));
        JSValue s = load_script(load, in_ptr() + json_len, (size_t)code, true);
        if (!JS_IsNull(s)) {
            JS_FreeValue(ctx, load);
            JS_FreeValue(ctx, h);
            hot.deadline_ns = 0;
            return out_value(s);
        }
    }
    JS_FreeValue(ctx, load);
    JSValue batch = JS_GetPropertyStr(ctx, h, "batch");
    JS_FreeValue(ctx, h);
    if (!JS_IsArray(batch)) {
        JS_FreeValue(ctx, batch);
        return abi_error(-1, "wx_run needs a batch of requests");
    }
    return run_batch(batch, json_len + code, blob_len - code);
}

EXPORT("wx_resume") int32_t wx_resume(int32_t json_len, int32_t blob_len)
{
    JSValue h;
    int32_t rc = start_crossing(json_len, blob_len, &h);
    if (rc)
        return rc;
    JSValue results = JS_GetPropertyStr(ctx, h, "results");
    int64_t count = 0;
    if (!JS_IsArray(results) || JS_GetLength(ctx, results, &count)) {
        JS_FreeValue(ctx, results);
        JS_FreeValue(ctx, h);
        return abi_error(-1, "wx_resume needs a results array");
    }
    JSValue argv[2] = { JS_UNDEFINED, blob_copy(json_len, blob_len, true) };
    for (int64_t i = 0; i < count; i++) {
        argv[0] = JS_GetPropertyInt64(ctx, results, i);
        call_void(E.settle, 2, argv);
        JS_FreeValue(ctx, argv[0]);
        drain();
    }
    if (!count) /* the host lets the work an earlier crossing left go on */
        drain();
    JS_FreeValue(ctx, argv[1]);
    JS_FreeValue(ctx, results);
    JS_FreeValue(ctx, h);
    return flush();
}
