/* Running JS: calling prelude entries, handling what escapes them, draining the job queue. */

/* Handles an exception that escaped a prelude entry: a timeout or an error the
 * prelude could not turn into a script failure (typically out of memory). */
static void on_escape(void)
{
    JSValue exc = JS_GetException(ctx);
    JSValue r;
    if (hot.timed_out) {
        hot.deadline_ns = 0;
        hot.timed_out = false;
        JSValue ms = JS_NewFloat64(ctx, hot.budget_ms);
        r = JS_Call(ctx, E.timeout, JS_UNDEFINED, 1, &ms);
        hot.deadline_ns = hot.budget_ns ? now_ns() + hot.budget_ns : 0;
    } else {
        r = JS_Call(ctx, E.uncaught, JS_UNDEFINED, 1, &exc);
    }
    if (JS_IsException(r))
        JS_FreeValue(ctx, JS_GetException(ctx));
    JS_FreeValue(ctx, r);
    JS_FreeValue(ctx, exc);
}

/* Rejections nobody handles by the end of a crossing are logged by the prelude. */
static void on_rejection(JSContext *c, JSValueConst promise, JSValueConst reason,
                         bool is_handled, void *opaque)
{
    (void)opaque;
    JSValueConst argv[3] = { promise, reason, JS_NewBool(c, is_handled) };
    JSValue r = JS_Call(c, E.rejection, JS_UNDEFINED, 3, argv);
    if (JS_IsException(r))
        JS_FreeValue(c, JS_GetException(c));
    JS_FreeValue(c, r);
}

static JSValue call(JSValueConst fn, int argc, JSValueConst *argv)
{
    JSValue r = JS_Call(ctx, fn, JS_UNDEFINED, argc, argv);
    if (JS_IsException(r))
        on_escape();
    return r;
}

static void call_void(JSValueConst fn, int argc, JSValueConst *argv)
{
    JS_FreeValue(ctx, call(fn, argc, argv));
}

/* How long the jobs of a crossing may go on once it has an answer to report (ABI.md). */
#define READY_SLICE_NS 1000000

/* Whether drain() must hand the crossing back with work left: its answer waits for no
 * microtask storm. The slice starts at the first job after the answer. Past the deadline, the
 * next job polls for interrupts at once: a storm of jobs too small to reach a poll within the
 * slice still ends at its deadline. */
static bool slice_over(void)
{
    if (!hot.ready)
        return false;
    uint64_t now = now_ns();
    if (hot.deadline_ns && now >= hot.deadline_ns)
        ctx->interrupt_counter = 1;
    if (!hot.slice_end_ns) {
        hot.slice_end_ns = now + READY_SLICE_NS;
        return false;
    }
    if (now < hot.slice_end_ns)
        return false;
    hot.more = true;
    return true;
}

/* Runs microtasks to exhaustion, then 0 ms timers one at a time, each
 * followed by the microtasks it queued; within a slice once the crossing is ready. */
static void drain(void)
{
    for (;;) {
        JSContext *c;
        while (JS_IsJobPending(rt)) {
            if (slice_over())
                return;
            if (JS_ExecutePendingJob(rt, &c) < 0)
                on_escape();
        }
        if (!hot.zero_timers || slice_over())
            return;
        JSValue more = call(E.tick, 0, NULL);
        bool again = JS_IsBool(more) && JS_VALUE_GET_BOOL(more);
        if (JS_IsBool(more) && !again)
            hot.zero_timers = false; /* tick found none left */
        JS_FreeValue(ctx, more);
        if (!again)
            return;
    }
}

static int32_t flush(void)
{
    hot.deadline_ns = 0;
    JSValue more = JS_NewBool(ctx, hot.more);
    return out_value(JS_Call(ctx, E.flush, JS_UNDEFINED, 1, &more));
}
