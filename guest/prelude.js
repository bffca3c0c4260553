/*
 * The wexec prelude: the JavaScript half of the guest (see guest/ABI.md).
 *
 * wx_init evaluates this file once, before the snapshot is taken, and calls the
 * function it evaluates to with the shim's native bindings. It installs the
 * globals scripts expect (console, timers, Buffer, URL, require, ...) and
 * returns the entry functions the shim's exports call. Work done here is paid
 * at build time; work done per request must stay small.
 *
 * Native bindings (W):
 *   blob(x)            append a string (UTF-8), bytes, or a list of them to the output blob;
 *                      returns its length (undefined appends nothing)
 *   encode(s, enc)     string -> ArrayBuffer          decode(bytes, enc) -> string
 *   random(view)       fill from WASI random_get      hostCall(name, parts) -> ArrayBuffer
 *   parseJSON(x)       JSON.parse of a string or UTF-8 bytes, safe against deep nesting
 *   done(rid, status, headers, body)  append body to the blob; returns the report's
 *                      "[rid,status,headers,off,len]" entry for the finished response
 *   fromShape(template, ...values)    a new object shaped like template, holding values
 *   jobsPending()      whether a promise job waits    zeroTimer()  a zero-delay timer was queued
 *   enter(f)           the code that runs next, and the jobs and promise reactions it queues,
 *                      belong to flight f (null: none); a reaction runs in the flight current
 *                      when it was registered, whoever settles its promise
 *   current()          the flight the running code belongs to
 *   ready()            something the host waits for is in this crossing's report
 *   leftOver()         the flights of the jobs still queued
 */
(function (W) {
  'use strict';

  const G = globalThis;
  const UTF8 = 0, LATIN1 = 1, HEX = 2, BASE64 = 3, BASE64URL = 4, UTF8_FATAL = 5, UTF16LE = 6;
  const LOG_BYTES_PER_CROSSING = 1 << 20;
  const LOG_MESSAGE_MAX = 64 * 1024;
  const STREAM_FLUSH_BYTES = 64 * 1024;
  const UNSET = Symbol('unset');

  const define = (obj, props) => {
    for (const k of Object.keys(props)) {
      Object.defineProperty(obj, k, { value: props[k], writable: true, configurable: true });
    }
  };

  // ---- Crossing state ------------------------------------------------------
  // Everything the prelude reassigns per request lives in this one object: a
  // fresh instance then copies one page of the snapshot for it, rather than a
  // page per closure variable.

  const state = {
    // What a crossing reports; each list exists only once something was added.
    done: null, failed: null, ops: null, cancel: null, logs: null, skipped: null,
    logBytes: 0, logsDropped: 0,
    handler: null, // the loaded script's
    script: '', // and its path
    nextId: 1, // of operations and timers
    meta: undefined, // what the global `metadata` reads outside any request
    loaded: false, // a script was loaded in this instance
  };

  // What streamed responses add to a crossing's report. Apart from `state`: only a
  // streamed response writes here, so other requests copy no page for it.
  const streaming = {
    started: null, // heads of streamed responses
    flowing: null, // streaming flights with chunks to report
    ended: null, // streamed responses that ended
    open: null, // flights whose res.write() output awaits res.end()
  };

  // Appends x (a string, bytes, or a list of them) to the output blob. The blob's
  // length lives in the shim only, so a reference is always right.
  const blob = (x) => {
    const off = W.blob(undefined);
    return { off, len: W.blob(x) - off };
  };

  // ---- Requests in flight --------------------------------------------------

  const shared = {};
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
      if (state.ops) state.ops = state.ops.filter((o) => o.rid !== f.rid);
    }
  };

  // Finished responses are kept as JSON text: stringifying generic objects is the
  // single biggest cost of a small request. `headers` is JSON text too.
  const respond = (f, status, headers, body) => {
    if (f.finished || f.parts) return;
    (state.done || (state.done = [])).push(W.done(f.rid, status, headers, body));
    finish(f);
  };

  // ---- Streamed responses ------------------------------------------------------
  // The head is reported at once; the pump runs in the job loop like any script code,
  // and what it produced goes out at the end of each crossing (flush).

  const streamOf = (v) =>
    v !== null && typeof v === 'object' && typeof v[Symbol.asyncIterator] === 'function' ? v : null;

  // Reports the head of f's response and makes f a streaming flight.
  const startStream = (f, status, headers) => {
    (streaming.started || (streaming.started = [])).push('{"rid":' + f.rid + ',"status":' + status + ',"headers":' + headers + '}');
    W.ready();
    f.parts = [];
    f.partBytes = 0;
  };

  const stream = (f, status, headers, source) => {
    if (f.finished || f.parts) return;
    startStream(f, status, headers);
    pump(f, source).then(() => endStream(f), (e) => fail(f, e));
  };

  const endStream = (f) => {
    if (f.finished) return;
    const ref = blob(f.parts);
    f.parts.length = 0;
    (streaming.ended || (streaming.ended = [])).push('[' + f.rid + ',' + ref.off + ',' + ref.len + ']');
    W.ready();
    finish(f);
  };

  // Adds a chunk to a streaming flight; false once this crossing has produced enough of them.
  const feed = (f, part) => {
    if (!f.parts.length) (streaming.flowing || (streaming.flowing = [])).push(f);
    f.parts.push(part);
    f.partBytes += part.length;
    return f.partBytes < STREAM_FLUSH_BYTES;
  };

  // At the end of a crossing, a response that res.write() began and res.end() has not
  // finished starts streaming: what was written goes out now, the rest as it is written.
  const openStreams = () => {
    for (const f of streaming.open) {
      const res = f.res;
      if (f.finished || f.parts || !res._chunks) continue;
      startStream(f, res.statusCode, res._headersJSON());
      for (const part of res._chunks) feed(f, part);
      res._chunks = null;
      res._streaming = true;
    }
    streaming.open = null;
  };

  const partOf = (chunk) => {
    const part = typeof chunk === 'string' ? chunk : viewOf(chunk);
    if (part === null) {
      throw new TypeError('a streamed body yields strings or bytes, not ' + (chunk === null ? 'null' : typeof chunk));
    }
    return part;
  };

  const pump = async (f, source) => {
    for await (const chunk of source) {
      if (f.finished) return;
      if (!feed(f, partOf(chunk))) {
        f.partBytes = 0;
        await op('drain', {}); // ends the crossing; resumes once the client has taken most of it
      }
    }
  };

  // Frames of the prelude and of native functions say nothing to a script author.
  const scriptFrames = (stack) =>
    typeof stack === 'string'
      ? stack.split('\n').filter((l) => l && !l.includes('prelude.js:') && !l.endsWith('(native)')).join('\n')
      : '';

  const errorInfo = (e) => {
    if (e !== null && typeof e === 'object' && 'message' in e) {
      return { name: String(e.name || 'Error'), message: String(e.message), stack: scriptFrames(e.stack) };
    }
    return { name: 'Error', message: typeof e === 'string' ? e : inspect(e), stack: '' };
  };

  const fail = (f, e) => {
    if (f.finished) {
      log('error', ['Uncaught error after the response was sent:', e], f.rid);
      return;
    }
    (state.failed || (state.failed = [])).push({ rid: f.rid, error: errorInfo(e) });
    W.ready();
    finish(f);
  };

  // ---- Operations ------------------------------------------------------------

  const opsById = new Map(); // id -> {flight, resolve, reject} or {flight, timer}

  // Requests list their operations for the host; code outside a request (a
  // script's top level) has no host to wait on, so its operations never settle.
  const listOp = (rec, name, args) => {
    const id = state.nextId++;
    const f = current();
    rec.flight = f;
    if (!f || f.finished) return id;
    opsById.set(id, rec);
    f.pending++;
    (state.ops || (state.ops = [])).push({ id, rid: f.rid, op: name, args });
    return id;
  };

  const dropOp = (id) => {
    const rec = opsById.get(id);
    if (!rec) return;
    opsById.delete(id);
    rec.flight.pending--;
    const i = state.ops ? state.ops.findIndex((o) => o.id === id) : -1;
    if (i >= 0) state.ops.splice(i, 1);
    else (state.cancel || (state.cancel = [])).push(id);
  };

  const op = (name, args) =>
    new Promise((resolve, reject) => {
      listOp({ resolve, reject }, name, args === undefined ? {} : args);
    });

  const opError = (err) => {
    if (err !== null && typeof err === 'object') {
      const e = new Error(String(err.message || 'operation failed'));
      if (err.name) e.name = String(err.name);
      return e;
    }
    return new Error(String(err));
  };

  // The host gave up on a request (its time ran out, its client left): forget the flight, so
  // nothing keeps it parked on operations that will never settle.
  const abandon = (rid) => {
    for (const rec of opsById.values()) {
      if (rec.flight.rid === rid) {
        finish(rec.flight);
        return;
      }
    }
  };

  const settle = (r, blobBuf) => {
    if (r.end !== undefined) {
      abandon(r.end);
      return;
    }
    const rec = opsById.get(r.id);
    if (!rec) return;
    opsById.delete(r.id);
    rec.flight.pending--;
    enter(rec.flight);
    if (rec.timer) {
      if (r.ok) fireTimer(rec.timer);
      else { // the host refused it (a cap on pending operations): it never fires
        clearTimer(rec.timer);
        uncaught(opError(r.error));
      }
    } else if (r.ok) {
      let v = r.value;
      if (r.bytes && v) v = new Uint8Array(blobBuf || new ArrayBuffer(0), v.off, v.len);
      rec.resolve(v);
    } else {
      rec.reject(opError(r.error));
    }
  };

  // ---- Timers ------------------------------------------------------------------

  const timers = new Map(); // handle id -> Timer
  let zero = [];

  class Timeout {
    constructor(fn, ms, args, repeat) {
      this._fn = fn;
      this._ms = ms;
      this._args = args;
      this._repeat = repeat;
      this._op = 0;
      this._flight = current();
      this._id = 0;
      this._cleared = false;
    }
    ref() { return this; }
    unref() { return this; }
    hasRef() { return true; }
    refresh() { return this; }
    [Symbol.toPrimitive]() { return this._id; }
  }

  const armTimer = (t) => {
    if (t._ms <= 0) {
      t._op = 0;
      zero.push(t);
      W.zeroTimer();
    } else {
      t._op = listOp({ timer: t }, 'timer', { ms: t._ms });
    }
    if (!t._id) t._id = t._op || state.nextId++;
  };

  const fireTimer = (t) => {
    if (t._cleared) return;
    if (t._repeat) armTimer(t);
    else timers.delete(t._id);
    try {
      t._fn.apply(undefined, t._args);
    } catch (e) {
      uncaught(e);
    }
  };

  const toMs = (ms) => {
    ms = Number(ms);
    return ms > 0 ? Math.min(ms, 2147483647) : 0;
  };

  const setTimeout = (fn, ms, ...args) => {
    if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
    const t = new Timeout(fn, toMs(ms), args, false);
    armTimer(t);
    timers.set(t._id, t);
    return t;
  };

  const setInterval = (fn, ms, ...args) => {
    if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
    // An interval always goes through the host: a 0 ms one would spin in here.
    const t = new Timeout(fn, Math.max(1, toMs(ms)), args, true);
    armTimer(t);
    timers.set(t._id, t);
    return t;
  };

  const clearTimer = (h) => {
    const t = h instanceof Timeout ? h : timers.get(Number(h));
    if (!t || t._cleared) return;
    t._cleared = true;
    timers.delete(t._id);
    if (t._op) dropOp(t._op);
  };

  const setImmediate = (fn, ...args) => setTimeout(fn, 0, ...args);

  // ---- Unhandled rejections ------------------------------------------------------
  // A rejection still unhandled when the crossing ends is logged, like Node's warning.

  const unhandled = new Map(); // promise -> [reason, flight]

  const rejection = (promise, reason, handled) => {
    if (handled) unhandled.delete(promise);
    else unhandled.set(promise, [reason, current()]);
  };

  const reportUnhandled = () => {
    for (const [reason, f] of unhandled.values()) {
      log('error', ['Unhandled promise rejection:', reason], f ? f.rid : 0);
    }
    unhandled.clear();
  };

  // Runs the next due 0 ms timer; the shim drains microtasks between calls.
  const tick = () => {
    while (zero.length) {
      const t = zero.shift();
      if (t._cleared || (t._flight && t._flight.finished)) {
        timers.delete(t._id);
        continue;
      }
      enter(t._flight);
      fireTimer(t);
      return true;
    }
    return false;
  };

  // ---- Console -------------------------------------------------------------------

  const inspect = (v, opts) => {
    const depth = opts && typeof opts.depth === 'number' ? opts.depth : 2;
    return fmt(v, depth, [], true);
  };

  const quote = (s) => "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n') + "'";
  const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

  const fmtKey = (k) => (typeof k === 'symbol' ? '[' + k.toString() + ']' : IDENT.test(k) ? k : quote(k));

  const fmtList = (open, items, close, more) => {
    if (more > 0) items.push('... ' + more + ' more item' + (more > 1 ? 's' : ''));
    return items.length ? open + ' ' + items.join(', ') + ' ' + close : open + close;
  };

  const fmt = (v, depth, seen, top) => {
    switch (typeof v) {
      case 'string': return top ? v : quote(v);
      case 'number': return Object.is(v, -0) ? '-0' : String(v);
      case 'bigint': return v + 'n';
      case 'symbol': return v.toString();
      case 'undefined': return 'undefined';
      case 'boolean': return String(v);
      case 'function': {
        const src = Function.prototype.toString.call(v);
        const kind = /^class[\s{]/.test(src) ? 'class' : 'Function';
        return '[' + kind + (v.name ? ': ' + v.name : kind === 'class' ? ' (anonymous)' : ' (anonymous)') + ']';
      }
    }
    if (v === null) return 'null';
    if (seen.includes(v)) return '[Circular]';
    if (v instanceof Error) {
      const head = (v.name || 'Error') + (v.message ? ': ' + v.message : '');
      const stack = scriptFrames(v.stack);
      return stack ? head + '\n' + stack : head;
    }
    if (v instanceof Date) return isNaN(v) ? 'Invalid Date' : v.toISOString();
    if (v instanceof RegExp) return String(v);
    if (v instanceof Promise) return 'Promise {}';
    if (v instanceof Buffer) {
      const n = Math.min(v.length, 50);
      let s = '<Buffer';
      for (let i = 0; i < n; i++) s += ' ' + (v[i] < 16 ? '0' : '') + v[i].toString(16);
      return s + (v.length > n ? ' ... ' + (v.length - n) + ' more bytes>' : '>');
    }
    if (v instanceof ArrayBuffer) return 'ArrayBuffer { byteLength: ' + v.byteLength + ' }';
    const nested = depth < 0;
    seen.push(v);
    try {
      if (Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) {
        const name = Array.isArray(v) ? '' : v.constructor.name + '(' + v.length + ') ';
        if (nested) return Array.isArray(v) ? '[Array]' : '[' + v.constructor.name + ']';
        const n = Math.min(v.length, 100);
        const items = [];
        for (let i = 0; i < n; i++) items.push(fmt(v[i], depth - 1, seen, false));
        return name + fmtList('[', items, ']', v.length - n);
      }
      if (v instanceof Map) {
        if (nested) return '[Map]';
        const items = [];
        for (const [k, x] of v) items.push(fmt(k, depth - 1, seen, false) + ' => ' + fmt(x, depth - 1, seen, false));
        return 'Map(' + v.size + ') ' + fmtList('{', items, '}', 0);
      }
      if (v instanceof Set) {
        if (nested) return '[Set]';
        const items = [];
        for (const x of v) items.push(fmt(x, depth - 1, seen, false));
        return 'Set(' + v.size + ') ' + fmtList('{', items, '}', 0);
      }
      const proto = Object.getPrototypeOf(v);
      const ctor = proto === null ? '[Object: null prototype]'
        : proto === Object.prototype || !proto.constructor ? '' : proto.constructor.name;
      if (nested) return ctor && ctor !== 'Object' ? '[' + ctor + ']' : '[Object]';
      const items = [];
      for (const k of Reflect.ownKeys(v)) {
        const d = Object.getOwnPropertyDescriptor(v, k);
        if (!d || !d.enumerable) continue;
        const val = 'value' in d ? fmt(d.value, depth - 1, seen, false) : d.set ? '[Getter/Setter]' : '[Getter]';
        items.push(fmtKey(k) + ': ' + val);
      }
      return (ctor ? ctor + ' ' : '') + fmtList('{', items, '}', 0);
    } finally {
      seen.pop();
    }
  };

  const format = (args) => {
    let i = 0;
    let head = '';
    if (typeof args[0] === 'string' && args.length > 1 && args[0].includes('%')) {
      i = 1;
      head = args[0].replace(/%[sdifjoOc%]/g, (m) => {
        if (m === '%%') return '%';
        if (i >= args.length) return m;
        const a = args[i++];
        switch (m) {
          case '%s': return typeof a === 'string' ? a : fmt(a, 1, [], true);
          case '%d': case '%i': return typeof a === 'bigint' ? a + 'n' : String(m === '%i' ? parseInt(a) : Number(a));
          case '%f': return String(parseFloat(a));
          case '%j': try { return JSON.stringify(a); } catch { return '[Circular]'; }
          case '%c': return '';
          default: return fmt(a, 4, [], false);
        }
      });
    }
    let s = head;
    for (; i < args.length; i++) {
      const a = args[i];
      s += (s || i > 0 ? ' ' : '') + (typeof a === 'string' ? a : fmt(a, 2, [], true));
    }
    return s;
  };

  const ridNow = () => {
    const f = current();
    return f ? f.rid : 0;
  };

  const log = (level, args, rid) => {
    let msg = args.length === 1 && typeof args[0] === 'string' ? args[0] : format(args);
    if (state.logBytes >= LOG_BYTES_PER_CROSSING) {
      state.logsDropped++;
      return;
    }
    if (msg.length > LOG_MESSAGE_MAX) msg = msg.slice(0, LOG_MESSAGE_MAX) + '... (truncated)';
    state.logBytes += msg.length;
    (state.logs || (state.logs = [])).push({ rid: rid === undefined ? ridNow() : rid, level, msg });
  };

  const counts = new Map();
  const marks = new Map();
  const console = {
    log: (...a) => log('log', a),
    info: (...a) => log('info', a),
    warn: (...a) => log('warn', a),
    error: (...a) => log('error', a),
    debug: (...a) => log('debug', a),
    trace: (...a) => log('debug', [format(a) + '\n' + String(new Error().stack || '')]),
    dir: (v, o) => log('log', [inspect(v, o)]),
    table: (v) => log('log', [v]),
    assert: (ok, ...a) => { if (!ok) log('error', ['Assertion failed' + (a.length ? ':' : ''), ...a]); },
    count: (label = 'default') => {
      const n = (counts.get(label) || 0) + 1;
      counts.set(label, n);
      log('info', [label + ': ' + n]);
    },
    countReset: (label = 'default') => counts.delete(label),
    time: (label = 'default') => marks.set(label, performance.now()),
    timeLog: (label = 'default', ...a) => {
      if (marks.has(label)) log('info', [label + ': ' + (performance.now() - marks.get(label)).toFixed(3) + 'ms', ...a]);
    },
    timeEnd: (label = 'default') => {
      if (!marks.has(label)) return;
      log('info', [label + ': ' + (performance.now() - marks.get(label)).toFixed(3) + 'ms']);
      marks.delete(label);
    },
    group: () => {},
    groupEnd: () => {},
  };

  // ---- Encodings and Buffer ----------------------------------------------------

  const encodingCode = (enc) => {
    if (enc === undefined || enc === null) return UTF8;
    switch (String(enc).toLowerCase()) {
      case 'utf8': case 'utf-8': return UTF8;
      case 'latin1': case 'binary': case 'ascii': return LATIN1;
      case 'hex': return HEX;
      case 'base64': return BASE64;
      case 'base64url': return BASE64URL;
      case 'ucs2': case 'ucs-2': case 'utf16le': case 'utf-16le': return UTF16LE;
    }
    const e = new TypeError('Unknown encoding: ' + enc);
    e.code = 'ERR_UNKNOWN_ENCODING';
    throw e;
  };

  const encode = (s, code) => {
    if (code !== UTF16LE) return W.encode(s, code);
    const out = new Uint8Array(s.length * 2);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      out[2 * i] = c & 255;
      out[2 * i + 1] = c >> 8;
    }
    return out.buffer;
  };

  const decode = (bytes, code) => {
    if (code !== UTF16LE) return W.decode(bytes, code);
    let s = '';
    for (let i = 0; i + 1 < bytes.length; i += 2) s += String.fromCharCode(bytes[i] | (bytes[i + 1] << 8));
    return s;
  };

  const viewOf = (x) => {
    if (x instanceof Uint8Array) return x;
    if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    if (x instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && x instanceof SharedArrayBuffer)) return new Uint8Array(x);
    return null;
  };

  class Buffer extends Uint8Array {
    constructor(a, b, c) {
      if (typeof a === 'string' || Array.isArray(a)) return Buffer.from(a, b);
      super(a, b, c);
    }

    static from(v, encOrOffset, length) {
      if (typeof v === 'string') return new Buffer(encode(v, encodingCode(encOrOffset)));
      if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer)) {
        const off = encOrOffset === undefined ? 0 : Number(encOrOffset) | 0;
        return new Buffer(v, off, length === undefined ? v.byteLength - off : Number(length) | 0);
      }
      if (ArrayBuffer.isView(v)) {
        if (v instanceof Uint8Array) {
          const b = new Buffer(v.length);
          b.set(v);
          return b;
        }
        if (v instanceof DataView) return Buffer.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
        return new Buffer(Uint8Array.from(v, (x) => Number(x) & 255).buffer);
      }
      if (v !== null && typeof v === 'object') {
        if (v.type === 'Buffer' && Array.isArray(v.data)) return Buffer.from(v.data);
        if (typeof v.length === 'number' || Array.isArray(v)) {
          const b = new Buffer(v.length >>> 0);
          for (let i = 0; i < b.length; i++) b[i] = Number(v[i]) & 255;
          return b;
        }
        const prim = v.valueOf();
        if (prim !== v && prim !== null && prim !== undefined) return Buffer.from(prim, encOrOffset, length);
      }
      throw new TypeError('The first argument must be of type string or an instance of Buffer, '
        + 'ArrayBuffer, or Array or an Array-like Object.');
    }

    static alloc(n, fill, enc) {
      const b = new Buffer(n);
      if (fill !== undefined && fill !== 0) b.fill(fill, 0, b.length, enc);
      return b;
    }

    static allocUnsafe(n) { return new Buffer(n); }
    static allocUnsafeSlow(n) { return new Buffer(n); }
    static isBuffer(b) { return b instanceof Buffer; }

    static isEncoding(enc) {
      try { encodingCode(enc); return typeof enc === 'string'; } catch { return false; }
    }

    static byteLength(v, enc) {
      if (typeof v === 'string') return encode(v, encodingCode(enc)).byteLength;
      if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v.byteLength;
      throw new TypeError('The "string" argument must be of type string or an instance of Buffer or ArrayBuffer.');
    }

    static concat(list, total) {
      if (total === undefined) {
        total = 0;
        for (const b of list) total += b.length;
      }
      const out = new Buffer(total);
      let off = 0;
      for (const b of list) {
        if (off >= total) break;
        const v = viewOf(b);
        const n = Math.min(v.length, total - off);
        out.set(n === v.length ? v : v.subarray(0, n), off);
        off += n;
      }
      return out;
    }

    static compare(a, b) {
      const n = Math.min(a.length, b.length);
      for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
      return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
    }

    toString(enc, start, end) {
      const code = encodingCode(enc);
      const v = start === undefined && end === undefined ? this : this.subarray(start || 0, end === undefined ? this.length : end);
      return decode(v, code);
    }

    toLocaleString(enc, start, end) { return this.toString(enc, start, end); }
    equals(o) { return Buffer.compare(this, o) === 0; }
    compare(o) { return Buffer.compare(this, o); }
    slice(start, end) { return this.subarray(start, end); }
    toJSON() { return { type: 'Buffer', data: Array.from(this) }; }

    write(s, offset, length, enc) {
      if (typeof offset === 'string') { enc = offset; offset = 0; length = undefined; }
      else if (typeof length === 'string') { enc = length; length = undefined; }
      offset = offset >>> 0;
      const bytes = new Uint8Array(encode(String(s), encodingCode(enc)));
      const n = Math.min(bytes.length, this.length - offset, length === undefined ? Infinity : length >>> 0);
      this.set(n === bytes.length ? bytes : bytes.subarray(0, n), offset);
      return n;
    }

    fill(v, start, end, enc) {
      if (typeof start === 'string') { enc = start; start = 0; end = this.length; }
      start = start === undefined ? 0 : start;
      end = end === undefined ? this.length : end;
      if (typeof v === 'number' || typeof v === 'boolean') return super.fill(Number(v) & 255, start, end);
      const pat = typeof v === 'string' ? new Uint8Array(encode(v, encodingCode(enc))) : viewOf(v);
      if (!pat || pat.length === 0) return super.fill(0, start, end);
      for (let i = start, j = 0; i < end; i++, j = (j + 1) % pat.length) this[i] = pat[j];
      return this;
    }

    indexOf(v, from, enc) {
      if (typeof v === 'number') return super.indexOf(v & 255, from);
      const pat = typeof v === 'string' ? new Uint8Array(encode(v, encodingCode(enc))) : viewOf(v);
      let i = from === undefined ? 0 : from < 0 ? Math.max(0, this.length + from) : from;
      outer: for (; i <= this.length - pat.length; i++) {
        for (let j = 0; j < pat.length; j++) if (this[i + j] !== pat[j]) continue outer;
        return i;
      }
      return -1;
    }

    includes(v, from, enc) { return this.indexOf(v, from, enc) !== -1; }

    _dv() { return new DataView(this.buffer, this.byteOffset, this.byteLength); }
    readUInt8(o = 0) { return this._dv().getUint8(o); }
    readInt8(o = 0) { return this._dv().getInt8(o); }
    readUInt16LE(o = 0) { return this._dv().getUint16(o, true); }
    readUInt16BE(o = 0) { return this._dv().getUint16(o, false); }
    readInt16LE(o = 0) { return this._dv().getInt16(o, true); }
    readInt16BE(o = 0) { return this._dv().getInt16(o, false); }
    readUInt32LE(o = 0) { return this._dv().getUint32(o, true); }
    readUInt32BE(o = 0) { return this._dv().getUint32(o, false); }
    readInt32LE(o = 0) { return this._dv().getInt32(o, true); }
    readInt32BE(o = 0) { return this._dv().getInt32(o, false); }
    readBigUInt64LE(o = 0) { return this._dv().getBigUint64(o, true); }
    readBigUInt64BE(o = 0) { return this._dv().getBigUint64(o, false); }
    readFloatLE(o = 0) { return this._dv().getFloat32(o, true); }
    readFloatBE(o = 0) { return this._dv().getFloat32(o, false); }
    readDoubleLE(o = 0) { return this._dv().getFloat64(o, true); }
    readDoubleBE(o = 0) { return this._dv().getFloat64(o, false); }
    writeUInt8(v, o = 0) { this._dv().setUint8(o, v); return o + 1; }
    writeInt8(v, o = 0) { this._dv().setInt8(o, v); return o + 1; }
    writeUInt16LE(v, o = 0) { this._dv().setUint16(o, v, true); return o + 2; }
    writeUInt16BE(v, o = 0) { this._dv().setUint16(o, v, false); return o + 2; }
    writeUInt32LE(v, o = 0) { this._dv().setUint32(o, v, true); return o + 4; }
    writeUInt32BE(v, o = 0) { this._dv().setUint32(o, v, false); return o + 4; }
    writeInt32LE(v, o = 0) { this._dv().setInt32(o, v, true); return o + 4; }
    writeInt32BE(v, o = 0) { this._dv().setInt32(o, v, false); return o + 4; }
    writeDoubleLE(v, o = 0) { this._dv().setFloat64(o, v, true); return o + 8; }
    writeDoubleBE(v, o = 0) { this._dv().setFloat64(o, v, false); return o + 8; }
  }
  Buffer.poolSize = 8192;
  for (const name of Object.getOwnPropertyNames(Buffer.prototype)) {
    if (/^(read|write)U/.test(name)) Buffer.prototype[name.replace('UInt', 'Uint')] = Buffer.prototype[name];
  }

  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(s = '') { return new Uint8Array(W.encode(String(s), UTF8)); }
    encodeInto(s, dest) {
      s = String(s);
      const all = new Uint8Array(W.encode(s, UTF8));
      if (all.length <= dest.length) {
        dest.set(all);
        return { read: s.length, written: all.length };
      }
      let read = 0, written = 0;
      for (const ch of s) {
        const b = new Uint8Array(W.encode(ch, UTF8));
        if (written + b.length > dest.length) break;
        dest.set(b, written);
        written += b.length;
        read += ch.length;
      }
      return { read, written };
    }
  }

  const DECODERS = {
    'utf-8': UTF8, utf8: UTF8, 'unicode-1-1-utf-8': UTF8,
    latin1: LATIN1, 'iso-8859-1': LATIN1, ascii: LATIN1, 'us-ascii': LATIN1, 'windows-1252': LATIN1,
    'utf-16le': UTF16LE, 'utf-16': UTF16LE,
  };

  class TextDecoder {
    constructor(label = 'utf-8', options = {}) {
      const key = String(label).trim().toLowerCase();
      if (!(key in DECODERS)) throw new RangeError('The "' + label + '" encoding is not supported');
      this._code = DECODERS[key];
      this._name = this._code === UTF8 ? 'utf-8' : this._code === UTF16LE ? 'utf-16le' : 'windows-1252';
      this.fatal = !!options.fatal;
      this.ignoreBOM = !!options.ignoreBOM;
    }
    get encoding() { return this._name; }
    decode(input) {
      if (input === undefined) return '';
      const v = viewOf(input);
      if (!v) throw new TypeError('The "input" argument must be an ArrayBuffer or ArrayBufferView');
      let s = decode(v, this._code === UTF8 && this.fatal ? UTF8_FATAL : this._code);
      if (!this.ignoreBOM && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
      return s;
    }
  }

  // ---- Web crypto, Node crypto --------------------------------------------------

  const randomFill = (view) => W.random(view);

  const getRandomValues = (ta) => {
    if (!ArrayBuffer.isView(ta) || ta instanceof Float32Array || ta instanceof Float64Array || ta instanceof DataView) {
      throw new TypeError('The data argument must be an integer-type TypedArray');
    }
    if (ta.byteLength > 65536) {
      throw new DOMException('The ArrayBufferView byte length exceeds 65536', 'QuotaExceededError');
    }
    return randomFill(ta);
  };

  const HEXBYTE = [];
  for (let i = 0; i < 256; i++) HEXBYTE.push((i < 16 ? '0' : '') + i.toString(16));

  const randomUUID = () => {
    const b = randomFill(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = (i) => HEXBYTE[b[i]];
    return h(0) + h(1) + h(2) + h(3) + '-' + h(4) + h(5) + '-' + h(6) + h(7) + '-'
      + h(8) + h(9) + '-' + h(10) + h(11) + h(12) + h(13) + h(14) + h(15);
  };

  const DIGESTS = { sha1: 'sha1', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512', md5: 'md5' };

  const digestName = (alg) => {
    const name = DIGESTS[String(alg).toLowerCase().replace('-', '')];
    if (!name) throw new Error('Digest method not supported: ' + alg);
    return name;
  };

  // Bytes for the host: strings pass as UTF-8 unless another encoding is named.
  const dataPart = (data, enc) => {
    if (typeof data === 'string') return enc === undefined || encodingCode(enc) === UTF8 ? data : encode(data, encodingCode(enc));
    const v = viewOf(data);
    if (!v) throw new TypeError('The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView.');
    return v;
  };

  const keyBytes = (key) => (typeof key === 'string' ? new Uint8Array(W.encode(key, UTF8)) : dataPart(key));

  const outputAs = (ab, enc) => {
    const buf = new Buffer(ab);
    return enc === undefined || enc === 'buffer' ? buf : buf.toString(enc);
  };

  class Hash {
    constructor(alg, key) {
      this._alg = digestName(alg);
      this._parts = [];
      if (key !== undefined) {
        const k = keyBytes(key);
        const len = new Uint8Array(4);
        new DataView(len.buffer).setUint32(0, k.length, true);
        this._parts.push(len, k);
      }
      this._hmac = key !== undefined;
      this._done = false;
    }
    update(data, enc) {
      if (this._done) throw new Error('Digest already called');
      this._parts.push(dataPart(data, enc));
      return this;
    }
    digest(enc) {
      if (this._done) throw new Error('Digest already called');
      this._done = true;
      const ab = W.hostCall(this._hmac ? 'crypto.hmac' : 'crypto.hash', [this._alg + '\n', ...this._parts]);
      return outputAs(ab, enc);
    }
    copy() {
      const h = Object.create(Hash.prototype);
      Object.assign(h, this, { _parts: this._parts.slice() });
      return h;
    }
  }

  const timingSafeEqual = (a, b) => {
    const x = viewOf(a), y = viewOf(b);
    if (!x || !y) throw new TypeError('The "buf1" and "buf2" arguments must be Buffers, TypedArrays or DataViews');
    if (x.length !== y.length) {
      const e = new RangeError('Input buffers must have the same byte length');
      e.code = 'ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH';
      throw e;
    }
    let diff = 0;
    for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
    return diff === 0;
  };

  const randomBytes = (n, cb) => {
    const b = randomFill(new Buffer(n >>> 0));
    if (typeof cb === 'function') {
      queueMicrotask(() => cb(null, b));
      return undefined;
    }
    return b;
  };

  const randomInt = (min, max, cb) => {
    if (max === undefined || typeof max === 'function') { cb = max; max = min; min = 0; }
    const range = max - min;
    if (!(range > 0) || range > 2 ** 48) throw new RangeError('The value of "max" is out of range.');
    const b = randomFill(new Uint32Array(2));
    const r = min + Math.floor(((b[0] * 2 ** 21 + (b[1] >>> 11)) / 2 ** 53) * range);
    if (typeof cb === 'function') { queueMicrotask(() => cb(null, r)); return undefined; }
    return r;
  };

  const subtle = {
    digest: (alg, data) => new Promise((resolve) => {
      const name = digestName(typeof alg === 'object' && alg ? alg.name : alg);
      resolve(W.hostCall('crypto.hash', [name + '\n', dataPart(data)]));
    }),
  };

  const webcrypto = { getRandomValues, randomUUID, subtle };

  const cryptoModule = {
    createHash: (alg) => new Hash(alg),
    createHmac: (alg, key) => new Hash(alg, key),
    hash: (alg, data, enc = 'hex') => new Hash(alg).update(data).digest(enc),
    randomBytes,
    randomUUID,
    randomInt,
    randomFillSync: (view) => randomFill(view),
    getRandomValues,
    timingSafeEqual,
    getHashes: () => Object.keys(DIGESTS),
    webcrypto,
    subtle,
  };

  // ---- URL ----------------------------------------------------------------------

  const SPECIAL = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443', 'ftp:': '21', 'file:': '' };

  const pctEncode = (s, keep) => {
    let out = '';
    for (const ch of s) {
      const c = ch.codePointAt(0);
      if (c > 0x20 && c < 0x7f && !keep.includes(ch)) out += ch;
      else if (c <= 0x7f) out += '%' + HEXBYTE[c].toUpperCase();
      else for (const byte of new Uint8Array(W.encode(ch, UTF8))) out += '%' + HEXBYTE[byte].toUpperCase();
    }
    return out;
  };

  const PATH_ESC = ' "#<>?`{}';
  const QUERY_ESC = ' "#<>';
  const FRAG_ESC = ' "<>`';
  const USER_ESC = ' "#<>?`{}/:;=@[\\]^|';

  const removeDots = (path) => {
    const out = [];
    const segs = path.split('/');
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      const last = i === segs.length - 1;
      if (s === '..' || s.toLowerCase() === '%2e%2e') {
        if (out.length > 1) out.pop();
        if (last) out.push('');
      } else if (s === '.' || s.toLowerCase() === '%2e') {
        if (last) out.push('');
      } else {
        out.push(s);
      }
    }
    const p = out.join('/');
    return p.startsWith('/') ? p : '/' + p;
  };

  const invalidURL = (input) => {
    const e = new TypeError('Invalid URL');
    e.code = 'ERR_INVALID_URL';
    e.input = input;
    return e;
  };

  const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.\-]*):/;

  class URL {
    constructor(input, base) {
      input = String(input).replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '');
      const m = SCHEME.exec(input);
      if (m) {
        this._parse(m[1].toLowerCase() + ':', input.slice(m[0].length), input);
        return;
      }
      if (base === undefined) throw invalidURL(input);
      const b = base instanceof URL ? base : new URL(base);
      this._parse(b.protocol, this._relative(b, input), input);
    }

    _relative(b, input) {
      const special = b.protocol in SPECIAL;
      if (special) input = input.replace(/\\/g, '/');
      if (b._opaque) {
        if (input.startsWith('#')) return b._opaquePath + b.search + input;
        throw invalidURL(input);
      }
      const auth = '//' + b._authority();
      if (input.startsWith('//')) return input;
      if (input.startsWith('/')) return auth + input;
      if (input === '') return auth + b.pathname + b.search;
      if (input.startsWith('?')) return auth + b.pathname + input;
      if (input.startsWith('#')) return auth + b.pathname + b.search + input;
      const dir = b.pathname.slice(0, b.pathname.lastIndexOf('/') + 1);
      return auth + (dir || '/') + input;
    }

    _parse(scheme, rest, input) {
      const special = scheme in SPECIAL;
      if (special) rest = rest.replace(/\\/g, '/');
      this._protocol = scheme;
      this._username = '';
      this._password = '';
      this._hostname = '';
      this._port = '';
      this._opaque = false;
      this._params = null;
      let hash = '', search = '';
      const h = rest.indexOf('#');
      if (h >= 0) { hash = rest.slice(h); rest = rest.slice(0, h); }
      const q = rest.indexOf('?');
      if (q >= 0) { search = rest.slice(q); rest = rest.slice(0, q); }
      if (special || rest.startsWith('//')) {
        rest = special ? rest.replace(/^\/*/, '') : rest.slice(2);
        const slash = rest.indexOf('/');
        let auth = slash >= 0 ? rest.slice(0, slash) : rest;
        rest = slash >= 0 ? rest.slice(slash) : '';
        const at = auth.lastIndexOf('@');
        if (at >= 0) {
          const cred = auth.slice(0, at);
          auth = auth.slice(at + 1);
          const colon = cred.indexOf(':');
          this._username = pctEncode(colon >= 0 ? cred.slice(0, colon) : cred, USER_ESC);
          this._password = colon >= 0 ? pctEncode(cred.slice(colon + 1), USER_ESC) : '';
        }
        let host = auth, port = '';
        const pm = /:(\d*)$/.exec(auth);
        if (pm && !auth.endsWith(']')) { host = auth.slice(0, pm.index); port = pm[1]; }
        if (/[\s#%/:<>?@[\\\]^|]/.test(host.replace(/^\[[0-9a-fA-F:.]+\]$/, 'x'))) throw invalidURL(input);
        if (special && scheme !== 'file:' && host === '') throw invalidURL(input);
        this._hostname = host.toLowerCase();
        if (port !== '') {
          const n = Number(port);
          if (n > 65535) throw invalidURL(input);
          this._port = SPECIAL[scheme] === String(n) ? '' : String(n);
        }
        this._pathname = rest === '' && special ? '/' : special || rest ? removeDots(pctEncode(rest, PATH_ESC)) : '';
      } else {
        this._opaque = !rest.startsWith('/');
        this._pathname = this._opaque ? pctEncode(rest, '') : removeDots(pctEncode(rest, PATH_ESC));
        this._opaquePath = this._pathname;
      }
      this._search = search.length > 1 ? pctEncode(search, QUERY_ESC) : '';
      this._hash = hash.length > 1 ? pctEncode(hash, FRAG_ESC) : '';
    }

    _authority() {
      const cred = this._username || this._password
        ? this._username + (this._password ? ':' + this._password : '') + '@' : '';
      return cred + this.host;
    }

    get protocol() { return this._protocol; }
    set protocol(v) {
      const m = /^([a-zA-Z][a-zA-Z0-9+.\-]*):?/.exec(String(v));
      if (m && (m[1].toLowerCase() + ':' in SPECIAL) === (this._protocol in SPECIAL)) this._protocol = m[1].toLowerCase() + ':';
    }
    get username() { return this._username; }
    set username(v) { this._username = pctEncode(String(v), USER_ESC); }
    get password() { return this._password; }
    set password(v) { this._password = pctEncode(String(v), USER_ESC); }
    get hostname() { return this._hostname; }
    set hostname(v) { this._hostname = String(v).toLowerCase(); }
    get port() { return this._port; }
    set port(v) {
      const s = String(v);
      if (s === '') { this._port = ''; return; }
      const n = parseInt(s, 10);
      if (n >= 0 && n <= 65535) this._port = SPECIAL[this._protocol] === String(n) ? '' : String(n);
    }
    get host() { return this._hostname + (this._port ? ':' + this._port : ''); }
    set host(v) {
      const s = String(v);
      const m = /^(.*?)(?::(\d*))?$/.exec(s);
      this.hostname = m[1];
      if (m[2] !== undefined) this.port = m[2];
    }
    get origin() {
      return this._protocol in SPECIAL && this._protocol !== 'file:' ? this._protocol + '//' + this.host : 'null';
    }
    get pathname() { return this._pathname; }
    set pathname(v) {
      if (this._opaque) return;
      const s = String(v);
      this._pathname = removeDots(pctEncode(s.startsWith('/') ? s : '/' + s, PATH_ESC));
    }
    get search() { return this._search; }
    set search(v) {
      const s = String(v);
      this._search = s === '' || s === '?' ? '' : pctEncode(s.startsWith('?') ? s : '?' + s, QUERY_ESC);
      if (this._params) this._params._list = parseQuery(this._search);
    }
    get searchParams() {
      if (!this._params) {
        this._params = new URLSearchParams(this._search);
        this._params._url = this;
      }
      return this._params;
    }
    get hash() { return this._hash; }
    set hash(v) {
      const s = String(v);
      this._hash = s === '' || s === '#' ? '' : pctEncode(s.startsWith('#') ? s : '#' + s, FRAG_ESC);
    }
    get href() {
      const auth = this._protocol in SPECIAL || this._hostname || !this._opaque && this._pathname.startsWith('//')
        ? '//' + this._authority() : '';
      return this._protocol + auth + this._pathname + this._search + this._hash;
    }
    set href(v) {
      const u = new URL(v);
      Object.assign(this, u);
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
    static canParse(input, base) {
      try { new URL(input, base); return true; } catch { return false; }
    }
    static parse(input, base) {
      try { return new URL(input, base); } catch { return null; }
    }
  }

  const formDecode = (s) => {
    if (!/[%+]/.test(s)) return s;
    s = s.replace(/\+/g, ' ');
    if (!s.includes('%')) return s;
    try {
      return decodeURIComponent(s);
    } catch {
      const bytes = [];
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c === 37 && /^[0-9a-fA-F]{2}$/.test(s.substr(i + 1, 2))) {
          bytes.push(parseInt(s.substr(i + 1, 2), 16));
          i += 2;
        } else if (c < 128) {
          bytes.push(c);
        } else {
          for (const b of new Uint8Array(W.encode(s[i], UTF8))) bytes.push(b);
        }
      }
      return W.decode(new Uint8Array(bytes), UTF8);
    }
  };

  const formEncode = (s) =>
    encodeURIComponent(s).replace(/[!'()~]|%20/g, (c) => (c === '%20' ? '+' : '%' + HEXBYTE[c.charCodeAt(0)].toUpperCase()));

  const parseQuery = (s) => {
    const list = [];
    if (s.startsWith('?')) s = s.slice(1);
    if (!s) return list;
    for (const part of s.split('&')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      list.push(eq >= 0 ? [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))] : [formDecode(part), '']);
    }
    return list;
  };

  class URLSearchParams {
    constructor(init) {
      this._url = null;
      if (init === undefined || init === null) {
        this._list = [];
      } else if (typeof init === 'string') {
        this._list = parseQuery(init);
      } else if (init instanceof URLSearchParams) {
        this._list = init._list.map((p) => p.slice());
      } else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
        this._list = [];
        for (const pair of init) {
          const p = Array.from(pair);
          if (p.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
          this._list.push([String(p[0]), String(p[1])]);
        }
      } else if (typeof init === 'object') {
        this._list = Object.keys(init).map((k) => [k, String(init[k])]);
      } else {
        this._list = parseQuery(String(init));
      }
    }
    _update() {
      if (this._url) {
        const s = this.toString();
        this._url._search = s ? '?' + s : '';
      }
    }
    get size() { return this._list.length; }
    append(k, v) { this._list.push([String(k), String(v)]); this._update(); }
    delete(k, v) {
      k = String(k);
      this._list = this._list.filter((p) => p[0] !== k || (v !== undefined && p[1] !== String(v)));
      this._update();
    }
    get(k) {
      k = String(k);
      for (const p of this._list) if (p[0] === k) return p[1];
      return null;
    }
    getAll(k) {
      k = String(k);
      return this._list.filter((p) => p[0] === k).map((p) => p[1]);
    }
    has(k, v) {
      k = String(k);
      return this._list.some((p) => p[0] === k && (v === undefined || p[1] === String(v)));
    }
    set(k, v) {
      k = String(k);
      v = String(v);
      const i = this._list.findIndex((p) => p[0] === k);
      if (i < 0) this._list.push([k, v]);
      else {
        this._list[i][1] = v;
        this._list = this._list.filter((p, j) => j <= i || p[0] !== k);
      }
      this._update();
    }
    sort() {
      this._list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      this._update();
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this._list) fn.call(thisArg, v, k, this);
    }
    keys() { return this._list.map((p) => p[0])[Symbol.iterator](); }
    values() { return this._list.map((p) => p[1])[Symbol.iterator](); }
    entries() { return this._list.map((p) => [p[0], p[1]])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this._list.map((p) => formEncode(p[0]) + '=' + formEncode(p[1])).join('&'); }
  }

  // ---- structuredClone ----------------------------------------------------------

  const cloneError = (what) => new DOMException(what + ' could not be cloned.', 'DataCloneError');

  const clone = (v, seen) => {
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'function' || typeof v === 'symbol') throw cloneError(String(v));
      return v;
    }
    if (seen.has(v)) return seen.get(v);
    let out;
    if (Array.isArray(v)) {
      out = new Array(v.length);
      seen.set(v, out);
      for (let i = 0; i < v.length; i++) if (i in v) out[i] = clone(v[i], seen);
      return out;
    }
    if (v instanceof Date) out = new Date(v.getTime());
    else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
    else if (v instanceof ArrayBuffer) out = v.slice(0);
    else if (ArrayBuffer.isView(v)) {
      const buf = clone(v.buffer, seen);
      const Ctor = v instanceof Buffer ? Uint8Array : v.constructor;
      out = v instanceof DataView ? new DataView(buf, v.byteOffset, v.byteLength)
        : new Ctor(buf, v.byteOffset, v.length);
    } else if (v instanceof Map) {
      out = new Map();
      seen.set(v, out);
      for (const [k, x] of v) out.set(clone(k, seen), clone(x, seen));
      return out;
    } else if (v instanceof Set) {
      out = new Set();
      seen.set(v, out);
      for (const x of v) out.add(clone(x, seen));
      return out;
    } else if (v instanceof Error) {
      out = new (G[v.name] && G[v.name].prototype instanceof Error ? G[v.name] : Error)(v.message);
      if (v.stack !== undefined) out.stack = v.stack;
    } else if (v instanceof Boolean || v instanceof Number || v instanceof String) {
      out = Object(v.valueOf());
    } else if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet) {
      throw cloneError(Object.prototype.toString.call(v));
    } else {
      out = {};
      seen.set(v, out);
      for (const k of Object.keys(v)) out[k] = clone(v[k], seen);
      return out;
    }
    seen.set(v, out);
    return out;
  };

  const structuredClone = (v) => clone(v, new Map());

  // ---- ReadableStream ---------------------------------------------------------------
  // What a script needs to produce a body: an underlying source with start and pull, its
  // controller (enqueue, close, error), a reader, and async iteration. No byte streams,
  // tees, pipes or queuing strategies.

  class ReadableStream {
    constructor(source = {}) {
      this._source = source;
      this._queue = [];
      this._closing = false; // close() was called: done once the queue is read
      this._failed = false;
      this._error = undefined;
      this._wakers = []; // reads waiting for a chunk, close or error
      this._reader = null;
      const self = this;
      this._controller = {
        enqueue(chunk) {
          if (self._closing || self._failed) throw new TypeError('Cannot enqueue a chunk into a closed stream');
          self._queue.push(chunk);
          self._notify();
        },
        close() {
          if (self._closing || self._failed) throw new TypeError('The stream is already closed');
          self._closing = true;
          self._notify();
        },
        error(e) {
          if (self._failed) return;
          self._failed = true;
          self._error = e;
          self._queue.length = 0;
          self._notify();
        },
        get desiredSize() { return self._failed ? null : self._closing ? 0 : 1 - self._queue.length; },
      };
      const begun = typeof source.start === 'function' ? source.start(this._controller) : undefined;
      this._ready = Promise.resolve(begun).then(null, (e) => this._controller.error(e));
    }
    get locked() { return this._reader !== null; }
    _notify() {
      const wakers = this._wakers;
      this._wakers = [];
      for (const wake of wakers) wake();
    }
    async _read() {
      await this._ready;
      for (;;) {
        if (this._failed) throw this._error;
        if (this._queue.length) return { value: this._queue.shift(), done: false };
        if (this._closing) return { value: undefined, done: true };
        const woken = new Promise((r) => this._wakers.push(r));
        if (typeof this._source.pull === 'function') {
          try {
            await this._source.pull(this._controller);
          } catch (e) {
            this._controller.error(e);
          }
          if (this._failed || this._queue.length || this._closing) continue;
        }
        await woken;
      }
    }
    cancel(reason) {
      this._closing = true;
      this._queue.length = 0;
      this._notify();
      return Promise.resolve(typeof this._source.cancel === 'function' ? this._source.cancel(reason) : undefined);
    }
    getReader() {
      if (this._reader) throw new TypeError('ReadableStream is locked to a reader');
      const reader = {
        read: () => this._read(),
        releaseLock: () => { if (this._reader === reader) this._reader = null; },
        cancel: (reason) => this.cancel(reason),
      };
      this._reader = reader;
      return reader;
    }
    async *[Symbol.asyncIterator]() {
      const reader = this.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          yield value;
        }
      } finally {
        reader.releaseLock();
      }
    }
    values() { return this[Symbol.asyncIterator](); }
  }

  // A stream's chunks joined, for Response.text() and friends.
  const gatherStream = async (source) => {
    const parts = [];
    for await (const c of source) {
      const part = partOf(c);
      parts.push(typeof part === 'string' ? new Uint8Array(W.encode(part, UTF8)) : part);
    }
    return Buffer.concat(parts);
  };

  // ---- Headers, Response -----------------------------------------------------------

  class Headers {
    constructor(init) {
      this._map = new Map();
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        for (const [k, v] of init._map) this._map.set(k, v);
      } else if (typeof init[Symbol.iterator] === 'function') {
        for (const [k, v] of init) this.append(k, v);
      } else {
        for (const k of Object.keys(init)) this.append(k, init[k]);
      }
    }
    append(k, v) {
      k = String(k).toLowerCase();
      v = String(v);
      const old = this._map.get(k);
      this._map.set(k, old === undefined ? v : old + ', ' + v);
    }
    set(k, v) { this._map.set(String(k).toLowerCase(), String(v)); }
    get(k) {
      const v = this._map.get(String(k).toLowerCase());
      return v === undefined ? null : v;
    }
    has(k) { return this._map.has(String(k).toLowerCase()); }
    delete(k) { this._map.delete(String(k).toLowerCase()); }
    forEach(fn, thisArg) { for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this); }
    getSetCookie() { const v = this._map.get('set-cookie'); return v === undefined ? [] : [v]; }
    entries() { return [...this._map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))[Symbol.iterator](); }
    keys() { return [...this.entries()].map((p) => p[0])[Symbol.iterator](); }
    values() { return [...this.entries()].map((p) => p[1])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
  }

  // A body as the output blob takes it (string or bytes) and its default type.
  const bodyOf = (body) => {
    if (body === undefined || body === null) return [undefined, null];
    if (typeof body === 'string') return [body, 'text/plain;charset=UTF-8'];
    if (streamOf(body)) return [body, null];
    if (body instanceof URLSearchParams) return [body.toString(), 'application/x-www-form-urlencoded;charset=UTF-8'];
    const v = viewOf(body);
    if (v) return [v, null];
    return [String(body), 'text/plain;charset=UTF-8'];
  };

  class Response {
    constructor(body, init = {}) {
      const [data, type] = bodyOf(body);
      this._body = data;
      this.status = init.status === undefined ? 200 : Number(init.status) | 0;
      if (this.status < 200 || this.status > 599) throw new RangeError('init["status"] must be in the range of 200 to 599, inclusive.');
      this.statusText = init.statusText === undefined ? '' : String(init.statusText);
      this.headers = new Headers(init.headers);
      if (type && !this.headers.has('content-type')) this.headers.set('content-type', type);
      this.bodyUsed = false;
      this.type = 'default';
      this.url = '';
      this.redirected = false;
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    get body() { return this._body === undefined ? null : this._body; }
    _bytes() {
      if (this.bodyUsed) return Promise.reject(new TypeError('Body is unusable: Body has already been read'));
      this.bodyUsed = true;
      const b = this._body;
      if (streamOf(b)) return gatherStream(b);
      return Promise.resolve(b === undefined ? new Uint8Array(0) : typeof b === 'string' ? new Uint8Array(W.encode(b, UTF8)) : b);
    }
    text() { return this._bytes().then((b) => W.decode(b, UTF8)); }
    json() { return this.text().then(JSON.parse); }
    bytes() { return this._bytes().then((b) => new Uint8Array(b)); }
    arrayBuffer() { return this._bytes().then((b) => b.slice().buffer); }
    clone() {
      const r = new Response(null, this);
      r._body = this._body;
      r.headers = new Headers(this.headers);
      return r;
    }
    static json(data, init = {}) {
      const r = new Response(JSON.stringify(data), init);
      if (!new Headers(init.headers).has('content-type')) r.headers.set('content-type', 'application/json');
      return r;
    }
    static redirect(url, status = 302) {
      return new Response(null, { status, headers: { location: String(url) } });
    }
    static error() {
      const r = new Response(null, { status: 200 });
      r.status = 0;
      r.type = 'error';
      return r;
    }
  }

  // ---- req, res, metadata -------------------------------------------------------------

  const parseForm = (text) => {
    const out = {};
    for (const [k, v] of parseQuery(text)) {
      const old = out[k];
      out[k] = old === undefined ? v : Array.isArray(old) ? (old.push(v), old) : [old, v];
    }
    return out;
  };

  const parseBody = (type, raw) => {
    if (!raw || raw.length === 0) return undefined;
    const t = type ? String(type).toLowerCase() : '';
    if (t.startsWith('application/json') || /^[^;]*\+json/.test(t)) {
      try {
        return W.parseJSON(raw);
      } catch {
        return W.decode(raw, UTF8);
      }
    }
    if (t.startsWith('application/x-www-form-urlencoded')) return parseForm(W.decode(raw, UTF8));
    if (t.startsWith('text/')) return W.decode(raw, UTF8);
    return new Buffer(raw.buffer, raw.byteOffset, raw.length);
  };

  class Request {
    get body() {
      if (this._body === UNSET) this._body = parseBody(this.headers['content-type'], this._raw);
      return this._body;
    }
    set body(v) { this._body = v; }
    get rawBody() {
      if (this._text === UNSET) this._text = this._raw ? W.decode(this._raw, UTF8) : '';
      return this._text;
    }
    get(name) { return this.headers[String(name).toLowerCase()]; }
    header(name) { return this.get(name); }
    text() { return Promise.resolve(this.rawBody); }
    json() { return new Promise((resolve) => resolve(JSON.parse(this.rawBody))); }
    arrayBuffer() { return Promise.resolve(this._raw ? this._raw.slice().buffer : new ArrayBuffer(0)); }
    bytes() { return Promise.resolve(this._raw ? this._raw.slice() : new Uint8Array(0)); }
  }
  // _raw (undefined), _body and _text (UNSET) default on the prototype: most requests
  // have no body, and never read it
  Object.assign(Request.prototype, { _raw: undefined, _body: UNSET, _text: UNSET });
  const REQUEST = Object.assign(Object.create(Request.prototype), {
    method: '', url: '', path: '', headers: null, query: null, params: null, ip: '',
  });
  // q: a request as the host sends it, [rid, method, url, path, headers, query, params, ip,
  // body length] (ABI.md)
  const newRequest = (q, raw) => {
    const req = fromShape(REQUEST, q[1], q[2], q[3], q[4] || {}, q[5] || {}, q[6] || {}, q[7]);
    if (raw !== undefined) req._raw = raw;
    return req;
  };

  const TYPES = {
    json: 'application/json; charset=utf-8',
    html: 'text/html; charset=utf-8',
    text: 'text/plain; charset=utf-8',
    txt: 'text/plain; charset=utf-8',
    xml: 'application/xml',
    js: 'text/javascript; charset=utf-8',
    css: 'text/css; charset=utf-8',
    bin: 'application/octet-stream',
    form: 'application/x-www-form-urlencoded',
  };
  const TYPE_HEADERS = {};
  for (const k of Object.keys(TYPES)) TYPE_HEADERS[k] = JSON.stringify([['content-type', TYPES[k]]]);

  class Res {
    // Only the flight is res's own from the start (RES): the defaults below live on the
    // prototype, and a response that never changes one (most) has a one-property res.
    get headersSent() {
      const f = this._flight;
      return f.finished || f.parts !== undefined;
    }
    status(code) {
      this.statusCode = Number(code) | 0;
      this._touched = true;
      return this;
    }
    setHeader(name, value) {
      if (typeof name === 'object' && name !== null) {
        for (const k of Object.keys(name)) this.setHeader(k, name[k]);
        return this;
      }
      (this._headers || (this._headers = Object.create(null)))[String(name).toLowerCase()] =
        Array.isArray(value) ? value.map(String) : String(value);
      this._touched = true;
      return this;
    }
    set(name, value) { return this.setHeader(name, value); }
    header(name, value) { return this.setHeader(name, value); }
    append(name, value) {
      const k = String(name).toLowerCase();
      const old = this._headers && this._headers[k];
      const add = Array.isArray(value) ? value.map(String) : [String(value)];
      return this.setHeader(k, old === undefined ? (add.length === 1 ? add[0] : add) : [].concat(old, add));
    }
    getHeader(name) { return this._headers ? this._headers[String(name).toLowerCase()] : undefined; }
    get(name) { return this.getHeader(name); }
    hasHeader(name) { return this.getHeader(name) !== undefined; }
    removeHeader(name) {
      if (this._headers) delete this._headers[String(name).toLowerCase()];
      return this;
    }
    getHeaders() { return Object.assign({}, this._headers); }
    type(t) {
      t = String(t);
      return this.setHeader('content-type', TYPES[t.replace(/^\./, '')] || (t.includes('/') ? t : 'application/octet-stream'));
    }
    contentType(t) { return this.type(t); }
    location(url) { return this.setHeader('location', url); }
    cookie(name, value, opts = {}) {
      let c = name + '=' + encodeURIComponent(String(value));
      if (opts.maxAge !== undefined) c += '; Max-Age=' + Math.floor(opts.maxAge / 1000);
      if (opts.domain) c += '; Domain=' + opts.domain;
      c += '; Path=' + (opts.path || '/');
      if (opts.expires) c += '; Expires=' + new Date(opts.expires).toUTCString();
      if (opts.httpOnly) c += '; HttpOnly';
      if (opts.secure) c += '; Secure';
      if (opts.sameSite) c += '; SameSite=' + (opts.sameSite === true ? 'Strict' : opts.sameSite);
      return this.append('set-cookie', c);
    }
    // Written chunks are sent with res.end() when it comes in the same crossing, and
    // streamed when the crossing ends with the response still open (see openStreams).
    write(chunk, enc) {
      const f = this._flight;
      if (f.finished) return false;
      const part = partOf(typeof chunk === 'string' && enc !== undefined ? Buffer.from(chunk, enc) : chunk);
      this._touched = true;
      if (this._streaming) return feed(f, part);
      if (!this._chunks) {
        this._chunks = [];
        (streaming.open || (streaming.open = [])).push(f);
      }
      this._chunks.push(part);
      return true;
    }
    end(chunk, enc) {
      if (typeof chunk === 'function') chunk = undefined;
      if (chunk !== undefined && chunk !== null) this.write(chunk, enc);
      if (this._streaming) endStream(this._flight);
      else this._send(this._chunks || undefined);
      return this;
    }
    json(v) {
      if (!this.hasHeader('content-type')) this.setHeader('content-type', TYPES.json);
      const s = JSON.stringify(v);
      this._send(s === undefined ? '' : s);
      return this;
    }
    send(v) {
      if (v === undefined || v === null) {
        this._send(undefined);
      } else if (typeof v === 'string') {
        if (!this.hasHeader('content-type')) this.setHeader('content-type', TYPES.html);
        this._send(v);
      } else if (viewOf(v)) {
        if (!this.hasHeader('content-type')) this.setHeader('content-type', 'application/octet-stream');
        this._send(viewOf(v));
      } else if (streamOf(v)) {
        stream(this._flight, this.statusCode, this._headersJSON(), v);
      } else {
        this.json(v);
      }
      return this;
    }
    sendStatus(code) {
      this.status(code);
      if (!this.hasHeader('content-type')) this.setHeader('content-type', TYPES.text);
      this._send(String(code));
      return this;
    }
    redirect(a, b) {
      const [status, url] = typeof a === 'number' ? [a, b] : [b === undefined ? 302 : b, a];
      this.status(status).location(url);
      this._send(undefined);
      return this;
    }
    _headersJSON() {
      const h = this._headers;
      if (!h) return '[]';
      const list = [];
      for (const k in h) {
        const v = h[k];
        if (Array.isArray(v)) for (const x of v) list.push([k, x]);
        else list.push([k, v]);
      }
      return JSON.stringify(list);
    }
    _send(body) {
      const f = this._flight;
      if (f.finished) return;
      respond(f, this.statusCode, this._headersJSON(), body);
    }
  }

  Object.assign(Res.prototype, {
    statusCode: 200,
    _headers: null, // lower-case name -> string | string[]
    _chunks: null, // what res.write() buffered
    _touched: false,
  });
  const RES = Object.assign(Object.create(Res.prototype), { _flight: null });
  const META = { method: '', path: '', query: null, parameters: null, headers: null, scriptPath: '' };

  // The return value of a handler, turned into a response (see ABI.md).
  const respondWith = (f, v, atFlush) => {
    const res = f.res;
    const bare = v === undefined || v === res;
    if (res._streaming || (res._chunks && bare)) { // written, not ended: ended once nothing can write more
      if (!atFlush || f.pending > 0) waiting.push(f);
      else if (res._streaming) endStream(f);
      else res._send(res._chunks);
      return;
    }
    if (bare) {
      if (res._touched) res._send(undefined);
      else if (atFlush && f.pending === 0) respond(f, 204, '[]', undefined);
      else waiting.push(f); // queued work may still use res; decided when the crossing ends
      return;
    }
    const proto = v !== null && typeof v === 'object' ? Object.getPrototypeOf(v) : undefined;
    const plain = proto === Object.prototype || proto === Array.prototype; // most answers: JSON
    if (!plain && v instanceof Response) {
      const headers = JSON.stringify([...v.headers._map]);
      if (streamOf(v._body)) stream(f, v.status, headers, v._body);
      else respond(f, v.status, headers, v._body);
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
      body = JSON.stringify(v);
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
      fromShape(META, req.method, req.path, req.query, req.params, req.headers, state.script));
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

  // The requests whose work the crossing leaves queued (0: work of none).
  const leftOver = () => {
    const rids = new Set();
    for (const f of W.leftOver()) rids.add(f ? f.rid : 0);
    for (const t of zero) if (!t._cleared) rids.add(t._flight ? t._flight.rid : 0);
    return [...rids];
  };

  // The report of a crossing; `more` when the guest stopped with work left (ABI.md).
  const flush = (more) => {
    if (waiting.length) {
      for (let i = waiting.length - 1; i >= 0; i--) {
        const f = waiting[i];
        if (f.finished || f.pending === 0) {
          waiting.splice(i, 1);
          if (!f.finished) {
            enter(f);
            respondWith(f, undefined, true);
          }
        }
      }
    }
    if (streaming.open) openStreams();
    if (unhandled.size) reportUnhandled();
    if (state.logsDropped) {
      (state.logs || (state.logs = [])).push({ rid: ridNow(), level: 'warn', msg: '[wexec] ' + state.logsDropped + ' log lines dropped (limit ' + LOG_BYTES_PER_CROSSING + ' bytes per call)' });
    }
    let s = '';
    if (streaming.started) {
      s += ',"started":[' + streaming.started.join(',') + ']';
      streaming.started = null;
    }
    if (streaming.flowing) {
      const chunks = [];
      for (const f of streaming.flowing) {
        if (!f.parts.length) continue;
        const ref = blob(f.parts);
        f.parts.length = 0;
        f.partBytes = 0;
        chunks.push('{"rid":' + f.rid + ',"body":{"off":' + ref.off + ',"len":' + ref.len + '}}');
      }
      if (chunks.length) s += ',"chunks":[' + chunks.join(',') + ']';
      streaming.flowing = null;
    }
    if (streaming.ended) {
      s += ',"ended":[' + streaming.ended.join(',') + ']';
      streaming.ended = null;
    }
    if (state.done) s += ',"done":[' + state.done.join(',') + ']';
    if (state.skipped) s += ',"skipped":[' + state.skipped.join(',') + ']';
    if (state.failed) s += ',"failed":' + JSON.stringify(state.failed);
    if (state.ops && state.ops.length) s += ',"ops":' + JSON.stringify(state.ops);
    if (state.cancel) s += ',"cancel":' + JSON.stringify(state.cancel);
    if (state.logs) s += ',"logs":' + JSON.stringify(state.logs);
    if (more) s += ',"more":' + JSON.stringify(leftOver());
    state.done = state.failed = state.ops = state.cancel = state.logs = state.skipped = null;
    state.logBytes = state.logsDropped = 0;
    return s ? '{' + s.slice(1) + '}' : '{}';
  };

  // ---- Loading a script ----------------------------------------------------------------

  const errorJSON = (e) => {
    const info = errorInfo(e);
    const at = /:(\d+):(\d+)\)?\s*$/m.exec(info.stack);
    if (at) {
      info.line = Number(at[1]);
      info.col = Number(at[2]);
    }
    const out = { error: info };
    if (state.logs) out.logs = state.logs;
    state.logs = null;
    return JSON.stringify(out);
  };

  // With keepLogs (a load and its first request in one crossing), success returns null and
  // leaves what the top level logged for that request's flush.
  const load = (h, factory, keepLogs) => {
    enter(null);
    state.handler = null;
    state.script = h.filename;
    // A fresh instance keeps the snapshot's empty process.env when there is
    // nothing to put in it (the host leaves `env` out): a new object would copy the
    // page of `process`. An instance loading a second script (only tests do) starts
    // that one on a new object too.
    if (state.loaded || (h.env !== undefined && !isEmpty(h.env))) {
      process.env = Object.assign({}, h.env);
    }
    state.loaded = true;
    try {
      if (typeof factory !== 'function') throw new TypeError('the compiled script is not a module factory');
      const module = { exports: {}, id: h.filename, filename: h.filename, loaded: false, require };
      factory.call(module.exports, module, module.exports, require);
      module.loaded = true;
      const ex = module.exports;
      const fn = ex === null || ex === undefined ? ex : ex.default ?? ex;
      if (typeof fn !== 'function') {
        throw new TypeError((h.filename || 'the script') + ' does not export a handler function (module.exports is '
          + (fn === null ? 'null' : typeof fn) + ')');
      }
      state.handler = fn;
      if (keepLogs) return null;
      const out = state.logs ? JSON.stringify({ logs: state.logs }) : '{}';
      state.logs = null;
      return out;
    } catch (e) {
      return errorJSON(e);
    }
  };

  // ---- Node-ish globals and modules -------------------------------------------------------

  const hrtime = (prev) => {
    const now = performance.now();
    let s = Math.floor(now / 1000), ns = Math.round((now % 1000) * 1e6);
    if (prev) {
      s -= prev[0];
      ns -= prev[1];
      if (ns < 0) { s--; ns += 1e9; }
    }
    return [s, ns];
  };
  hrtime.bigint = () => BigInt(Math.round(performance.now() * 1e6));

  const process = {
    env: {},
    version: 'v20.0.0',
    versions: { node: '20.0.0', wexec: '0.1.0' },
    platform: 'linux',
    arch: 'wasm32',
    pid: 1,
    argv: ['wexec'],
    execArgv: [],
    exitCode: undefined,
    release: { name: 'node' },
    hrtime,
    uptime: () => performance.now() / 1000,
    cwd: () => '/',
    nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)),
    memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }),
    emitWarning: (w) => log('warn', [w]),
    exit: (code) => { throw new Error('process.exit(' + (code === undefined ? '' : code) + ') is not available in wexec scripts'); },
    on() { return process; },
    once() { return process; },
    off() { return process; },
  };

  const snapshotEnv = process.env;
  const isEmpty = (o) => {
    for (const k in o) return false;
    return true;
  };

  const util = {
    inspect,
    format: (...a) => format(a),
    TextEncoder,
    TextDecoder,
    isDeepStrictEqual: (a, b) => JSON.stringify(a) === JSON.stringify(b),
    promisify: (fn) => (...args) => new Promise((resolve, reject) =>
      fn(...args, (err, v) => (err ? reject(err) : resolve(v)))),
    types: {
      isDate: (v) => v instanceof Date,
      isRegExp: (v) => v instanceof RegExp,
      isPromise: (v) => v instanceof Promise,
      isUint8Array: (v) => v instanceof Uint8Array,
    },
  };

  const builtins = {
    crypto: cryptoModule,
    buffer: { Buffer, constants: { MAX_LENGTH: 2 ** 31 - 1 }, kMaxLength: 2 ** 31 - 1 },
    url: { URL, URLSearchParams },
    util,
    timers: { setTimeout, clearTimeout: clearTimer, setInterval, clearInterval: clearTimer, setImmediate, clearImmediate: clearTimer },
    process,
  };

  function require(name) {
    let key = String(name);
    if (key.startsWith('node:')) key = key.slice(5);
    if (Object.prototype.hasOwnProperty.call(builtins, key)) return builtins[key];
    const e = new Error("Cannot find module '" + name + "'");
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }

  // JSON.parse without a reviver goes through the stack-safe native parser.
  const jsonParse = JSON.parse;
  define(JSON, {
    parse: {
      parse(text, reviver) {
        return reviver === undefined ? W.parseJSON(String(text)) : jsonParse(text, reviver);
      },
    }.parse,
  });

  define(G, {
    global: G,
    console,
    setTimeout,
    clearTimeout: clearTimer,
    setInterval,
    clearInterval: clearTimer,
    setImmediate,
    clearImmediate: clearTimer,
    TextEncoder,
    TextDecoder,
    URL,
    URLSearchParams,
    structuredClone,
    Headers,
    Response,
    ReadableStream,
    Buffer,
    process,
    require,
    shared,
    __wexec: { op, bytes: (x) => blob(viewOf(x) || x) },
  });
  // The metadata of the request whose code runs (see enter). Outside any request it is kept in
  // `state` rather than in a property of the global object, which has a page of its own in the
  // snapshot.
  Object.defineProperty(G, 'metadata', {
    get() {
      const f = current();
      return f ? f.meta : state.meta;
    },
    set(v) {
      const f = current();
      if (f) f.meta = v;
      else state.meta = v;
    },
    configurable: true,
  });
  Object.defineProperty(G, 'crypto', {
    value: webcrypto, writable: true, configurable: true, enumerable: false,
  });

  // One request through load, run and flush before the snapshot, while the shim
  // keeps every shape made (JS_SHAPE_PIN in build/guest.py): requests then find
  // the shapes of their headers, req, res, metadata, ... one property after
  // another in the snapshot, instead of making and hashing their own. The
  // headers have their keys in the order the host sends them (ABI.md).
  const warm = () => {
    load(W.parseJSON('{"filename":"warm-up.js","env":{},"mem_limit":0,"budget_ms":null}'),
      // answers at once, so the settling job that follows has nothing left to do
      function (module) { module.exports = (req, res) => { res.json({}); }; });
    run(W.parseJSON('[1,"GET","http://localhost/","/",{},{},{},"",0]'), undefined);
    flush();
    // and both headers of wx_run, with and without a load
    W.parseJSON('{"budget_ms":null,"batch":[]}');
    W.parseJSON('{"budget_ms":null,"load":{"filename":"warm-up.js","mem_limit":0,"code":0},"batch":[]}');
    state.handler = null;
    state.loaded = false;
    enter(null);
    state.meta = undefined;
    return state; // the shim moves its properties next to what requests allocate
  };

  // A request of a batch left unrun: an earlier one of the crossing used up its time.
  const skip = (rid) => {
    (state.skipped || (state.skipped = [])).push(rid);
  };

  return { load, error: errorJSON, run, settle, tick, flush, timeout, uncaught, rejection, warm, skip };
})
