/*
 * The wexec guest: QuickJS-NG behind the envelope ABI of guest/ABI.md.
 *
 * One translation unit (quickjs.c is included, not linked) so the shim reaches engine
 * internals a snapshot would otherwise freeze, and the compiler inlines across the parts as
 * before. The parts are topic files under shim/, included in dependency order. The ABI side
 * (entry.c, envelope.c, run.c) moves envelopes, enforces limits and drains jobs; heap.c,
 * freeze.c and json.c reach QuickJS internals; natives.c is what the prelude calls, with url.c's
 * natives over ada, the URL parser. Requests, responses and operations live in the prelude,
 * which returns the entry functions the exports call (see `struct entries`).
 */
#include "shim/hot.c"
#include "shim/heap.c"
#include "shim/budget.c"
#include "shim/freeze.c"
#include "shim/envelope.c"
#include "shim/json.c"
#include "shim/url.c"
#include "shim/natives.c"
#include "shim/run.c"
#include "shim/entry.c"
