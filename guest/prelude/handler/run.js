// Running a request: calling the handler and turning what it returns into a response.

import { ArrayPrototype, ObjectPrototype, getPrototypeOf, push, stringify } from '../crossing/intrinsics.js';
import { W } from '../natives.js';
import { state } from '../crossing/state.js';
import { FLIGHT, current, enter, fromShape, respond, waiting } from '../crossing/flight.js';
import { shared } from '../host/shared.js';
import { endStream, stream, streamOf } from '../crossing/stream.js';
import { fail } from '../crossing/errors.js';
import { log } from '../lib/console.js';
import { viewOf } from '../lib/encoding.js';
import { Response, responseParts } from '../lib/http.js';
import { newRequest } from './req.js';
import { META, RES, TYPES, TYPE_HEADERS } from './res.js';

// The return value of a handler, turned into a response (see ABI.md).
const respondWith = (f, v, atFlush) => {
  const res = f.res;
  const bare = v === undefined || v === res;
  if (res._streaming || (res._chunks && bare)) { // written, not ended: ended once nothing can write more
    if (!atFlush || f.pending > 0) push(waiting, f);
    else if (res._streaming) endStream(f);
    else res._send(res._chunks);
    return;
  }
  if (bare) {
    if (res._touched) res._send(undefined);
    else if (atFlush && f.pending === 0) respond(f, 204, '[]', undefined);
    else push(waiting, f); // queued work may still use res; decided when the crossing ends
    return;
  }
  const proto = v !== null && typeof v === 'object' ? getPrototypeOf(v) : undefined;
  const plain = proto === ObjectPrototype || proto === ArrayPrototype; // most answers: JSON
  if (!plain && v instanceof Response) {
    const [status, headers, body] = responseParts(v);
    if (streamOf(body)) stream(f, status, headers, body);
    else respond(f, status, headers, body);
    return;
  }
  let body, kind;
  if (typeof v === 'string') {
    body = v;
    kind = 'text';
  } else if (!plain && viewOf(v)) {
    body = viewOf(v);
    kind = 'bin';
  } else if (!plain && streamOf(v)) {
    stream(f, res.statusCode, res._headersJSON(), v);
    return;
  } else {
    body = stringify(v);
    kind = 'json';
    if (body === undefined) {
      respond(f, res.statusCode === 200 ? 204 : res.statusCode, res._headersJSON(), undefined);
      return;
    }
  }
  if (!res._headers) {
    respond(f, res.statusCode, TYPE_HEADERS[kind], body);
    return;
  }
  if (!res.hasHeader('content-type')) res.setHeader('content-type', TYPES[kind]);
  respond(f, res.statusCode, res._headersJSON(), body);
};

const onSettled = (f, v) => {
  // finished, or already streaming what it gave res.send (but res.write's stream ends here)
  if (f.finished || (f.parts && !f.res._streaming)) return;
  try {
    respondWith(f, v);
  } catch (e) {
    fail(f, e);
  }
};

const run = (q, raw) => {
  const rid = q[0];
  const req = newRequest(q, raw);
  const f = fromShape(FLIGHT, rid, false, null,
    fromShape(META, req.method, req.path, req.query, req.params, req.headers, state.script,
      q[9]));
  const res = fromShape(RES, f);
  f.res = res;
  enter(f);
  if (!state.handler) {
    fail(f, new Error('no script is loaded in this instance'));
    return;
  }
  let v;
  try {
    v = state.handler(req, res, f.meta, shared);
  } catch (e) {
    fail(f, e);
    return;
  }
  if (v !== null && typeof v === 'object' && typeof v.then === 'function') {
    v.then((x) => onSettled(f, x), (e) => fail(f, e));
  } else if (W.jobsPending()) {
    // Where `await handler()` would see it: after the jobs the handler queued.
    queueMicrotask(() => onSettled(f, v));
  } else {
    onSettled(f, v); // no job queued: the microtask would run next anyway
  }
};

// An exception thrown outside any promise (a timer callback, a microtask).
const uncaught = (e) => {
  const f = current();
  if (f && !f.finished) fail(f, e);
  else log('error', ['Uncaught', e]);
};

const timeout = (ms) => {
  const e = { name: 'TimeoutError', message: 'the script ran longer than its budget of ' + ms + ' ms', stack: '' };
  const f = current();
  if (f && !f.finished) fail(f, e);
};

// A request of a batch left unrun: an earlier one of the crossing used up its time.
const skip = (rid) => {
  push(state.skipped || (state.skipped = []), rid);
};

export { respondWith, run, skip, timeout, uncaught };
