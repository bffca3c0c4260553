// Requests in flight: the Flight a request's code runs in, and how a finished one is reported.

import { filter, push } from './intrinsics.js';
import { W } from '../natives.js';
import { state } from './state.js';
import { opsById } from './ops.js';
import { timers } from '../host/timers.js';

const waiting = []; // flights whose handler returned nothing while work is pending

// Per-request objects (flights, req, res, metadata) are made by W.fromShape from a
// template: the template's properties, in order, get the values given. That is one
// allocation, where a constructor or a literal adds one property at a time.
const fromShape = W.fromShape;

class Flight {}
Flight.prototype.pending = 0; // ops listed and not yet settled: own once a request lists one
// A streamed response adds `parts` (chunks not yet reported) and `partBytes`;
// other flights never carry them, so their objects stay as small as before.
const FLIGHT = Object.assign(Object.create(Flight.prototype), { rid: 0, finished: false, res: null, meta: null });

// Code that runs next belongs to flight f (null: outside any request). Entry points say so;
// promise reactions, timers and operations carry theirs (W.enter), so everything global per
// request (metadata, console attribution, operations) follows the request whose code runs.
const enter = W.enter;
const current = W.current;

// The host cancels what a finished request still had listed; forget it here too.
const finish = (f) => {
  f.finished = true;
  f.res = null; // res keeps its flight: without this the pair is a cycle, freed only by the GC
  if (f.pending > 0) {
    for (const [id, rec] of opsById) if (rec.flight === f) opsById.delete(id);
    for (const [id, t] of timers) if (t._flight === f) timers.delete(id);
    if (state.ops) state.ops = filter(state.ops, (o) => o.rid !== f.rid);
  }
};

// Finished responses are kept as JSON text: stringifying generic objects is the
// single biggest cost of a small request. `headers` is JSON text too.
const respond = (f, status, headers, body) => {
  if (f.finished || f.parts) return;
  push(state.done || (state.done = []), W.done(f.rid, status, headers, body));
  finish(f);
};

export { FLIGHT, current, enter, finish, fromShape, respond, waiting };
