/*
 * One guest instance and the envelope crossing into it, native (see instance.py).
 *
 * A crossing is: make the store and instance if this is the first one, size the guest's input
 * buffer, copy the envelope in, set the deadline, call the export, and find the output. Done
 * from Python that is a dozen ctypes calls and as many wrapper objects, more time than the
 * wasmtime work they ask for; here it is one call, with the GIL released throughout.
 *
 * wasmtime's C API is reached through the library the Python package loaded (wxi_open looks
 * its functions up by name), and its handle structs are declared below by layout, checked
 * against the host's own bindings when the engine opens.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- wasmtime's C API (wasmtime.h and what it includes), by layout ------------------- */

typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasm_engine_t wasm_engine_t;
typedef struct wasmtime_instance_pre wasmtime_instance_pre_t;
typedef struct wasi_config_t wasi_config_t;

typedef struct {
    uint64_t store_id;
    size_t index;
} instance_ref;

typedef struct {
    uint8_t kind;
    union {
        struct {
            uint64_t store_id;
            void *index;
        } func;
        struct {
            uint64_t store_id;
            uint32_t index;
            uint32_t spare;
        } memory;
        uint8_t bytes[24];
    } of;
} extern_ref;

typedef union {
    int32_t i32;
    int64_t i64;
    uint8_t bytes[16];
} val_raw;

#define EXTERN_FUNC 0
#define EXTERN_MEMORY 3

typedef struct {
    wasmtime_store_t *(*store_new)(wasm_engine_t *, void *, void (*)(void *));
    wasmtime_context_t *(*store_context)(wasmtime_store_t *);
    void (*store_limiter)(wasmtime_store_t *, int64_t, int64_t, int64_t, int64_t, int64_t);
    void (*store_delete)(wasmtime_store_t *);
    wasi_config_t *(*wasi_config_new)(void);
    wasmtime_error_t *(*set_wasi)(wasmtime_context_t *, wasi_config_t *);
    void (*set_epoch_deadline)(wasmtime_context_t *, uint64_t);
    wasmtime_error_t *(*pre_instantiate)(const wasmtime_instance_pre_t *, wasmtime_context_t *,
                                         instance_ref *, wasm_trap_t **);
    bool (*export_get)(wasmtime_context_t *, const instance_ref *, const char *, size_t, extern_ref *);
    wasmtime_error_t *(*call_unchecked)(wasmtime_context_t *, const void *, val_raw *, size_t,
                                        wasm_trap_t **);
    uint8_t *(*memory_data)(const wasmtime_context_t *, const void *);
    size_t (*memory_data_size)(const wasmtime_context_t *, const void *);
    wasmtime_error_t *(*error_new)(const char *);
} api_t;

static const char *const api_names[] = {
    "wasmtime_store_new", "wasmtime_store_context", "wasmtime_store_limiter",
    "wasmtime_store_delete", "wasi_config_new", "wasmtime_context_set_wasi",
    "wasmtime_context_set_epoch_deadline", "wasmtime_instance_pre_instantiate",
    "wasmtime_instance_export_get", "wasmtime_func_call_unchecked", "wasmtime_memory_data",
    "wasmtime_memory_data_size", "wasmtime_error_new",
};

_Static_assert(sizeof(api_t) == sizeof api_names / sizeof *api_names * sizeof(void *),
               "api_names lists every function of api_t");

/* ---- the guest's io block (guest/ABI.md) ------------------------------------------------- */

#include "abi.h" /* guest/abi.h: the io block and the out-of-memory mark */

/* ---- engines and instances --------------------------------------------------------------- */

typedef struct {
    api_t api;
    wasm_engine_t *engine;
    const wasmtime_instance_pre_t *pre;
    uint32_t io_addr; /* the same in every instance of the snapshot: learnt from the first */
} engine_t;

typedef struct answers answers_t; /* answers.c */
int32_t wxa_get(answers_t *a, const uint8_t *input, uint32_t input_len, uint8_t *out, uint32_t cap);

#define EXPORT_CACHE 8

#define EXPORT_NAME_MAX 24

typedef struct {
    char name[EXPORT_NAME_MAX]; /* a copy: the caller's buffer may not outlive the call */
    size_t len;
    extern_ref func;
} cached_export;

void wxm_select(void *image); /* memory.c */

typedef struct {
    engine_t *engine;
    int64_t memory_limit;
    void *image; /* memory.c's image the memory starts as; NULL: the engine's snapshot */
    wasmtime_store_t *store; /* NULL until the first crossing */
    wasmtime_context_t *ctx;
    instance_ref instance;
    extern_ref memory;
    uint8_t *base; /* linear memory: it never moves (the engine forbids it) */
    int nexports;
    cached_export exports[EXPORT_CACHE];
    answers_t *answers; /* its tenant's shared.get answers (wxi_answer_from); NULL: none */
    uint32_t area;      /* where its shared area is (guest/ABI.md) */
} instance_t;

/* The instance whose export runs on this thread (a host call may cross into another). */
static __thread instance_t *current;

/* What a crossing hands back: the guest's answer, or why there is none. */
typedef struct {
    const uint8_t *head; /* the output: head_len bytes of JSON header, then blob_len of blob */
    uint32_t head_len, blob_len;
    int32_t rc;                /* the export's result: negative if it refused the envelope */
    uint32_t out_of_memory;    /* it trapped at its memory cap */
    wasmtime_error_t *error;   /* owned by the caller now */
    wasm_trap_t *trap;         /* owned by the caller now */
    size_t memory_len;         /* linear memory's size once it returned: its high-water mark */
} crossing_t;

/* An engine handle over the wasmtime library at lib_path (already loaded by the host), or
 * NULL if a function is missing or this build's handle layouts differ from the host's.
 * A few hundred bytes, never freed: instances may outlive the host's engine object. */
engine_t *wxi_open(const char *lib_path, wasm_engine_t *engine, const wasmtime_instance_pre_t *pre,
                   size_t instance_size, size_t extern_size, size_t extern_of, size_t val_size)
{
    if (instance_size != sizeof(instance_ref) || extern_size != sizeof(extern_ref)
        || extern_of != offsetof(extern_ref, of) || val_size != sizeof(val_raw))
        return NULL;
    void *lib = dlopen(lib_path, RTLD_NOW | RTLD_NOLOAD);
    if (!lib)
        return NULL;
    engine_t *e = calloc(1, sizeof *e);
    if (e) {
        void **slots = (void **)&e->api; /* api_t is api_names' functions, in order */
        for (size_t i = 0; i < sizeof api_names / sizeof *api_names; i++) {
            if (!(slots[i] = dlsym(lib, api_names[i]))) {
                free(e);
                e = NULL;
                break;
            }
        }
    }
    dlclose(lib); /* the host's own reference keeps it loaded */
    if (e) {
        e->engine = engine;
        e->pre = pre;
    }
    return e;
}

instance_t *wxi_new(engine_t *e, int64_t memory_limit, void *image)
{
    instance_t *in = calloc(1, sizeof *in);
    if (in) {
        in->engine = e;
        in->memory_limit = memory_limit;
        in->image = image;
    }
    return in;
}

/* Linear memory now: its address, and its size in *len (0 before the first crossing). */
uint8_t *wxi_memory(instance_t *in, size_t *len)
{
    *len = in->store ? in->engine->api.memory_data_size(in->ctx, &in->memory.of) : 0;
    return in->base;
}

/* Drop the store (its memory goes back to memory.c's pool) and the handle. */
void wxi_free(instance_t *in)
{
    if (in->store)
        in->engine->api.store_delete(in->store);
    free(in);
}

static const extern_ref *export_func(instance_t *in, const char *name, size_t len)
{
    for (int i = 0; i < in->nexports; i++) {
        cached_export *c = &in->exports[i];
        if (c->len == len && !memcmp(c->name, name, len))
            return &c->func;
    }
    static __thread extern_ref scratch;
    bool keep = in->nexports < EXPORT_CACHE && len <= EXPORT_NAME_MAX;
    extern_ref *item = keep ? &in->exports[in->nexports].func : &scratch;
    if (!in->engine->api.export_get(in->ctx, &in->instance, name, len, item) || item->kind != EXTERN_FUNC)
        return NULL;
    if (keep) {
        cached_export *c = &in->exports[in->nexports++];
        memcpy(c->name, name, len);
        c->len = len;
    }
    return item;
}

/* Call export `name` with up to two i32 arguments (any it does not take are ignored); its i32
 * result in *rc. */
static bool call(instance_t *in, const char *name, size_t len, uint64_t ticks, int32_t a,
                 int32_t b, int32_t *rc, crossing_t *out)
{
    const api_t *api = &in->engine->api;
    const extern_ref *f = export_func(in, name, len);
    if (!f) {
        char why[96];
        snprintf(why, sizeof why, "the guest module has no function export %.*s", (int)len, name);
        out->error = api->error_new(why);
        return false;
    }
    val_raw args[2] = { { .i32 = a }, { .i32 = b } };
    api->set_epoch_deadline(in->ctx, ticks);
    instance_t *outer = current;
    current = in;
    out->error = api->call_unchecked(in->ctx, &f->of, args, 2, &out->trap);
    current = outer;
    if (out->error || out->trap)
        return false;
    *rc = args[0].i32;
    return true;
}

/* Make the store and instance, and find linear memory and the io block. */
static bool instantiate(instance_t *in, crossing_t *out)
{
    engine_t *e = in->engine;
    const api_t *api = &e->api;
    in->store = api->store_new(e->engine, NULL, NULL);
    in->ctx = api->store_context(in->store);
    api->store_limiter(in->store, in->memory_limit, -1, -1, -1, -1);
    out->error = api->set_wasi(in->ctx, api->wasi_config_new());
    if (!out->error) {
        wxm_select(in->image);
        out->error = api->pre_instantiate(e->pre, in->ctx, &in->instance, &out->trap);
        wxm_select(NULL);
    }
    if (out->error || out->trap)
        return false;
    extern_ref *mem = &in->memory;
    if (!api->export_get(in->ctx, &in->instance, "memory", 6, mem) || mem->kind != EXTERN_MEMORY) {
        out->error = api->error_new("the guest module exports no memory");
        return false;
    }
    in->base = api->memory_data(in->ctx, &mem->of);
    if (!__atomic_load_n(&e->io_addr, __ATOMIC_RELAXED)) {
        int32_t io;
        if (!call(in, "wx_io", 5, UINT64_MAX >> 2, 0, 0, &io, out))
            return false;
        __atomic_store_n(&e->io_addr, (uint32_t)io, __ATOMIC_RELAXED);
    }
    return true;
}

/* Make the store and instance now rather than at the first crossing; 0, or -1 with the
 * failure in *out (and no store). */
int wxi_start(instance_t *in, crossing_t *out)
{
    *out = (crossing_t){ 0 };
    if (in->store || instantiate(in, out))
        return 0;
    if (in->store)
        in->engine->api.store_delete(in->store);
    in->store = NULL;
    in->nexports = 0;
    return -1;
}

/* The crossing: the envelope (header, then blob) into export `name`, and the output found. */
int wxi_cross(instance_t *in, const char *name, size_t name_len, const uint8_t *header,
              uint32_t header_len, const uint8_t *blob, uint32_t blob_len, uint64_t ticks,
              crossing_t *out)
{
    if (!in->store && wxi_start(in, out))
        return -1;
    *out = (crossing_t){ 0 };
    volatile uint32_t *io = (uint32_t *)(in->base + in->engine->io_addr);
    uint32_t total = header_len + blob_len;
    int32_t rc = 0;
    if (total > io[IO_IN_CAP]) {
        if (!call(in, "wx_reserve", 10, ticks, (int32_t)total, 0, &rc, out))
            return -1;
        if (rc < 0) {
            out->error = in->engine->api.error_new("the guest cannot hold the input envelope");
            return -1;
        }
    }
    uint8_t *dst = in->base + io[IO_IN_PTR];
    memcpy(dst, header, header_len);
    if (blob_len)
        memcpy(dst + header_len, blob, blob_len);
    if (!call(in, name, name_len, ticks, (int32_t)header_len, (int32_t)blob_len, &rc, out)) {
        out->out_of_memory = io[IO_OUT_JSON] == OOM_MARK;
        return -1;
    }
    out->rc = rc;
    out->head = in->base + io[IO_OUT_PTR];
    out->head_len = io[IO_OUT_JSON];
    out->blob_len = io[IO_OUT_BLOB];
    out->memory_len = in->engine->api.memory_data_size(in->ctx, &in->memory.of);
    return 0;
}

/* ---- host_call (guest/ABI.md) ------------------------------------------------------------- */

/* The host's own host_call (a wasmtime unchecked callback): what wxi_host_call cannot answer. */
typedef void *(*host_fn)(void *env, void *caller, val_raw *args, size_t n);

/* From now on, answer the instance's shared.get calls from `answers` when they hold a good
 * answer and its area's log is empty (the host applies a log before it answers a call). */
void wxi_answer_from(instance_t *in, answers_t *answers, uint32_t area)
{
    in->area = area;
    in->answers = answers;
}

/* Whether the call in args (ABI.md's six i32) was shared.get answered here; its result then
 * in args[0]. Every buffer must lie in linear memory as it is now. */
static bool answered(instance_t *in, val_raw *args)
{
    uint32_t name = (uint32_t)args[0].i32, input = (uint32_t)args[2].i32, out = (uint32_t)args[4].i32;
    int32_t name_len = args[1].i32, input_len = args[3].i32, cap = args[5].i32;
    uint64_t size = in->engine->api.memory_data_size(in->ctx, &in->memory.of);
    if (name_len != 10 || input_len < 0 || cap < 0 || (uint64_t)name + 10 > size
        || (uint64_t)input + (uint32_t)input_len > size || (uint64_t)out + (uint32_t)cap > size
        || (uint64_t)in->area + 32 > size)
        return false;
    const uint8_t *m = in->base;
    uint32_t logged;
    memcpy(&logged, m + in->area + 24, sizeof logged);
    if (logged || memcmp(m + name, "shared.get", 10))
        return false;
    int32_t n = wxa_get(in->answers, m + input, (uint32_t)input_len, in->base + out, (uint32_t)cap);
    if (n < 0)
        return false;
    args[0].i32 = n;
    return true;
}

/* The guest's host_call import: `env` holds the host's own callback, which answers whatever
 * this does not. */
void *wxi_host_call(void *env, void *caller, val_raw *args, size_t n)
{
    instance_t *in = current;
    if (in && in->answers && answered(in, args))
        return NULL;
    return (*(host_fn *)env)(NULL, caller, args, n);
}
