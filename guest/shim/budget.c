/* The time budget: the interrupt handler that ends a script past its deadline. */

static uint64_t now_ns(void)
{
    __wasi_timestamp_t t = 0;
    if (__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1000, &t) != 0)
        return 0;
    return t;
}

static int on_interrupt(JSRuntime *r, void *opaque)
{
    (void)r;
    (void)opaque;
    if (hot.deadline_ns && now_ns() >= hot.deadline_ns) {
        hot.timed_out = true;
        return 1;
    }
    return 0;
}

static void start_budget(double ms)
{
    hot.budget_ms = ms;
    hot.budget_ns = ms > 0 ? (uint64_t)(ms * 1e6) : 0;
    hot.deadline_ns = hot.budget_ns ? now_ns() + hot.budget_ns : 0;
    hot.timed_out = false;
}
