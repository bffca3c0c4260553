// The guest half of runtime/host/shared.py: `shared`, the tenant's state in the host, read and
// written with plain property access. An object is a Proxy of its own over its path, so
// `shared.a.b = 1` writes one key and `shared.a.b` reads one, never the whole state. Arrays and
// other values are read as copies: change one, then assign it back.
//
// Reads are kept (state.shared) across crossings and requests for as long as the host says
// nothing changed the tenant's state: before every crossing it stamps the state's generation
// into this instance's area (guest/shim/natives.c shared_area), and a cache kept at another
// generation is dropped at the next access. A crossing that began before another script's
// write may still read what it kept; the next crossing reads the write.
//
// A write of a top-level key is logged in the area (W.sharedPut) and kept as the key's value
// here; the host applies the log when the crossing ends, trap included, or before any call
// this instance makes to it, so other scripts see the write once this one waits or answers.
// Its own writes do not drop the cache: the host moves `valid` on when nobody else wrote
// between. Other writes (nested paths, large values, a write the room left before the
// tenant's cap cannot hold) are host calls, as are the misses of the cache and the atomic
// helpers; a host call that changes the state drops the cache.

import { ObjectPrototype, includes, isArray, slice, stringify } from '../crossing/intrinsics.js';
import { UTF8, W } from '../natives.js';
import { state } from '../crossing/state.js';

const UPDATE_TRIES = 100;
const PATH = Symbol('path'); // on each Proxy's target: the keys leading to it
// and what its keys are kept under in the cache: its keys joined, each followed by NUL (no
// key holding a NUL is kept: null then, for it and below)
const KEY = Symbol('key');
const O = 0x6f; // 'o': the host's answer for an object (runtime/host/shared.py OBJECT)
const ONE = 0x31;
const { isFinite } = Number;
const GEN = 0, VALID = 2; // the area's cells (ROOM, 1, is the shim's to read)
const KEPT = 4096; // entries the cache, and the paths' JSON, keep at most

let cells = null; // a Float64Array over the area's cells, from the first host call on
let head = null; // what a call starts with: the area's address and a newline until the host
// has it, then the newline alone

// What every host call starts with (shared.py _request).
const linked = () => {
  if (head === null) {
    const area = W.sharedArea();
    cells = new Float64Array(area[0]);
    head = area[1] + '\n';
  }
  return head;
};

const hostCall = (name, parts) => {
  const ab = W.hostCall(name, parts);
  head = '\n';
  return ab;
};

const forget = () => {
  state.shared = state.sharedDeep = null;
};

// The cache holds what the host's state was at cells[VALID]: drop it if the state moved on.
const fresh = () => {
  const c = cells;
  if (c !== null && c[GEN] !== c[VALID]) {
    forget();
    c[VALID] = c[GEN];
  }
};

const childPath = (path, k) => {
  const p = path.slice();
  p.push(String(k));
  return p;
};

// A key below the root is kept under keptAs (the root's own keys under themselves, in
// state.shared); MISSING is kept for a key that holds nothing.
const keptAs = (t, k) => (t[KEY] === null || includes(k, '\0') ? null : t[KEY] + k);
const below = (k) => (includes(k, '\0') ? null : k + '\0'); // a root key's node's key
const MISSING = {};

// The JSON of the paths used, by their key (keptAs; a root key's in rootPaths, by itself):
// building it costs more than the host call it names. Kept for the instance's life, up to KEPT
// of them.
let paths = null;
let rootPaths = null;
const rootPath = (k) => {
  let json = rootPaths !== null ? rootPaths.get(k) : undefined;
  if (json === undefined) {
    json = stringify([k]);
    if (rootPaths === null || rootPaths.size >= KEPT) rootPaths = new Map();
    rootPaths.set(k, json);
  }
  return json;
};
const pathJSON = (t, k) => {
  if (t === root) return rootPath(k);
  const key = keptAs(t, k);
  let json = key !== null && paths !== null ? paths.get(key) : undefined;
  if (json === undefined) {
    json = stringify(childPath(t[PATH], k));
    if (key !== null) {
      if (paths === null || paths.size >= KEPT) paths = new Map();
      paths.set(key, json);
    }
  }
  return json;
};

const valueJSON = (path, k, v) => {
  const json = stringify(v);
  if (json === undefined) throw new TypeError(shown(path, k) + ': only JSON values can be kept in shared (got ' + typeof v + ')');
  return json;
};

const shown = (path, k) => 'shared.' + (path.length ? path.join('.') + '.' : '') + String(k);

const keepDeep = (key, e) => {
  let kept = state.sharedDeep;
  if (kept === null || kept.size >= KEPT) kept = state.sharedDeep = new Map();
  kept.set(key, e);
};

// What a read answers, as kept: a primitive as it is, NODE for an object, an array as its
// JSON, so that each read gets a copy of its own. Once the host has the area, W.sharedGet
// answers so itself; the first call of an instance hands the host its area's address.
const NODE = {};
const answer = (p) => {
  if (head === '\n') return W.sharedGet(p, MISSING, NODE);
  const ab = hostCall('shared.get', [linked(), p]);
  if (ab.byteLength === 0) return MISSING;
  if (ab.byteLength === 1 && new Uint8Array(ab)[0] === O) return NODE;
  const v = W.parseJSON(ab);
  return typeof v === 'object' && v !== null ? ab : v;
};

const value = (e, k) => {
  if (e === MISSING) return k in ObjectPrototype ? ObjectPrototype[k] : undefined; // as {} does
  if (typeof e !== 'object' || e === null) return e;
  return e instanceof ArrayBuffer ? W.parseJSON(e) : e;
};

// A read below the root that the cache does not hold (readRoot asks for a root key itself).
const ask = (t, k, key) => {
  let e = answer(pathJSON(t, k));
  if (e === NODE) e = node(childPath(t[PATH], k), key === null ? null : key + '\0');
  if (key !== null) {
    fresh(); // the call applied the log: someone else may have written before
    keepDeep(key, e);
  }
  return e;
};

// A read of a root key: the common one, kept short (a miss asks as ask(root, k, k) does).
const readRoot = (k) => {
  fresh();
  let kept = state.shared;
  let e = kept !== null ? kept.get(k) : undefined;
  if (e === undefined) {
    e = answer(rootPath(k));
    if (e === NODE) e = node([k], below(k));
    fresh(); // as in ask
    kept = state.shared;
    if (kept === null || kept.size >= KEPT) kept = state.shared = new Map();
    kept.set(k, e);
  }
  return value(e, k);
};

const read = (t, k) => {
  if (t === root) return readRoot(k);
  fresh();
  const key = keptAs(t, k);
  const kept = state.sharedDeep;
  const e = key !== null && kept !== null ? kept.get(key) : undefined;
  return value(e === undefined ? ask(t, k, key) : e, k);
};

// What the host will hold for a root key written as json (v's JSON), as the cache keeps it;
// undefined when a read must ask (an array: kept as the host's bytes only).
const written = (k, v, json) => {
  const c = json[0];
  if (c === '{') return node([k], below(k));
  if (c === '[') return undefined;
  if (typeof v === 'string' || v === null) return v;
  return W.parseJSON(json); // an object with toJSON
};

const yes = (ab) => new Uint8Array(ab)[0] === ONE;

// A write that is not logged: a host call, after which the cache is dropped (json undefined:
// a delete).
const hostWrite = (t, k, json) => {
  const p = pathJSON(t, k);
  if (json === undefined) hostCall('shared.delete', [linked(), p]);
  else hostCall('shared.set', [linked(), p, '\n', json]);
  forget();
  return true;
};

// A write of a root key (json undefined: a delete; e: what the cache keeps, undefined: work it
// out from json), logged if the area takes it: its cache entry is then what it holds now, and
// nothing kept below it stays.
const writeRoot = (k, v, json, e) => {
  if (cells === null || !W.sharedPut(rootPath(k), json)) return hostWrite(root, k, json);
  fresh();
  const deep = state.sharedDeep;
  if (deep !== null) {
    const under = k + '\0';
    for (const d of deep.keys()) if (slice(d, 0, under.length) === under) deep.delete(d);
  }
  if (e === undefined) e = json === undefined ? MISSING : written(k, v, json);
  let kept = state.shared;
  if (e === undefined) {
    if (kept !== null) kept.delete(k);
  } else {
    if (kept === null || kept.size >= KEPT) kept = state.shared = new Map();
    kept.set(k, e);
  }
  return true;
};

const traps = {
  get(t, k) {
    if (typeof k === 'symbol') return undefined;
    return read(t, k);
  },
  set(t, k, v) {
    if (typeof k === 'symbol') throw new TypeError('shared keys are strings');
    return hostWrite(t, k, v === undefined ? undefined : valueJSON(t[PATH], k, v));
  },
  deleteProperty(t, k) {
    return typeof k === 'symbol' || hostWrite(t, k, undefined);
  },
  has(t, k) {
    if (typeof k === 'symbol') return false;
    fresh();
    const key = t === root ? k : keptAs(t, k);
    const kept = t === root ? state.shared : state.sharedDeep;
    const e = key !== null && kept !== null ? kept.get(key) : undefined;
    return e !== undefined ? e !== MISSING : yes(hostCall('shared.has', [linked(), pathJSON(t, k)]));
  },
  ownKeys(t) {
    return W.parseJSON(hostCall('shared.keys', [linked(), stringify(t[PATH])]));
  },
  getOwnPropertyDescriptor(t, k) {
    if (typeof k === 'symbol') return undefined;
    const v = read(t, k);
    if (v === undefined) return undefined;
    return { value: v, writable: true, enumerable: true, configurable: true };
  },
  defineProperty(t, k, d) {
    return traps.set(t, k, d.value);
  },
};

// The target only carries its path and key (configurable, so the traps need not report
// them): the Proxy's traps answer everything else from the host.
const node = (path, key) => {
  const target = {};
  target[PATH] = path;
  target[KEY] = key;
  return new Proxy(target, traps);
};

// update(key, fn): fn gets the key's value (a copy) and returns the new one (undefined
// deletes it); written only if nobody wrote the key meanwhile, else fn runs again on the value
// that won. Atomic across instances, scripts and server processes.
const update = (key, fn) => {
  if (typeof fn !== 'function') throw new TypeError('shared.update(key, fn): fn must be a function');
  const p = stringify([String(key)]);
  for (let i = 0; i < UPDATE_TRIES; i++) {
    const taken = W.decode(hostCall('shared.take', [linked(), p]), UTF8);
    forget(); // fn reads shared as it is now
    const nl = taken.indexOf('\n');
    const raw = slice(taken, nl + 1);
    const next = fn(raw === '' ? undefined : W.parseJSON(raw));
    if (next !== null && typeof next === 'object' && !isArray(next) && typeof next.then === 'function') {
      throw new TypeError('shared.update(key, fn): fn must return the new value, not a promise');
    }
    const json = next === undefined ? '' : valueJSON([], key, next);
    const done = yes(hostCall('shared.swap', [linked(), p, '\n', slice(taken, 0, nl), '\n', json]));
    forget(); // fn may have read the key through shared
    if (done) return next;
  }
  throw new Error('shared.update(' + stringify(String(key)) + '): the key kept changing; tried ' + UPDATE_TRIES + ' times');
};

const increment = (key, by = 1) => update(key, (v) => {
  if (v !== undefined && typeof v !== 'number') throw new TypeError('shared.increment: shared.' + String(key) + ' is not a number');
  return (v === undefined ? 0 : v) + by;
});

const HELPERS = { update, increment };

// The root: `update` and `increment` are its helpers, every other name a key.
const root = { [PATH]: [], [KEY]: '' };
const shared = new Proxy(root, {
  ...traps,
  get(t, k) {
    if (typeof k !== 'string') return undefined;
    if (k === 'update' || k === 'increment') return HELPERS[k];
    return readRoot(k);
  },
  set(t, k, v) {
    if (typeof k !== 'string') throw new TypeError('shared keys are strings');
    switch (typeof v) {
      case 'number': // JSON writes a number as String does, and what is not finite as null
        return isFinite(v) ? writeRoot(k, v, '' + v, v + 0) : writeRoot(k, v, 'null', null);
      case 'boolean':
        return writeRoot(k, v, v ? 'true' : 'false', v);
      case 'undefined':
        return writeRoot(k, v, undefined, MISSING);
      default:
        return writeRoot(k, v, valueJSON([], k, v), undefined);
    }
  },
  deleteProperty(t, k) {
    return typeof k !== 'string' || writeRoot(k, undefined, undefined, MISSING);
  },
});

export { shared };
