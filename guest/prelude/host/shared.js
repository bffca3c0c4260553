// The guest half of runtime/host/shared.py: `shared`, the tenant's state in the host, read and
// written with plain property access. Each access is one bound host call (the host knows the
// calling tenant); an object is a Proxy of its own over its path, so `shared.a.b = 1` writes
// one key and `shared.a.b` reads one, never the whole state. Arrays and other values are read
// as copies: change one, then assign it back.
//
// Within one crossing (a stretch of synchronous code, until the script awaits) a key read
// again is answered from what the host said the first time: the script sees one view of the
// state, its own writes included (a write forgets every answer kept). The next crossing asks
// the host again.

import { ObjectPrototype, includes, isArray, slice, stringify } from '../crossing/intrinsics.js';
import { UTF8, W } from '../natives.js';
import { state } from '../crossing/state.js';

const UPDATE_TRIES = 100;
const PATH = Symbol('path'); // on each Proxy's target: the keys leading to it
// and what its keys are kept under in state.shared: its keys joined, each followed by NUL (no
// key holding a NUL is kept: null then, for it and below)
const KEY = Symbol('key');
const O = 0x6f; // 'o': the host's answer for an object (runtime/host/shared.py OBJECT)
const ONE = 0x31;

const childPath = (path, k) => {
  const p = path.slice();
  p.push(String(k));
  return p;
};

const keptAs = (t, k) => (t[KEY] === null || includes(k, '\0') ? null : t[KEY] + k);

// The JSON of the paths used, by their key (keptAs): building it costs more than the host call
// it names. Kept for the instance's life, up to PATHS_KEPT of them.
const PATHS_KEPT = 4096;
let paths = null;
const pathJSON = (t, k) => {
  const key = keptAs(t, k);
  let json = key !== null && paths !== null ? paths.get(key) : undefined;
  if (json === undefined) {
    json = stringify(childPath(t[PATH], k));
    if (key !== null) {
      if (paths === null || paths.size >= PATHS_KEPT) paths = new Map();
      paths.set(key, json);
    }
  }
  return json;
};

const valueJSON = (where, v) => {
  const json = stringify(v);
  if (json === undefined) throw new TypeError(where + ': only JSON values can be kept in shared (got ' + typeof v + ')');
  return json;
};

const shown = (path, k) => 'shared.' + (path.length ? path.join('.') + '.' : '') + String(k);

const MISSING = {}; // kept for a key that holds nothing

// What a read answers, as kept in state.shared: a primitive or a node as it is, an array (or
// anything holding objects) as its JSON, so that each read gets a copy of its own.
const answer = (t, k, key, ab) => {
  if (ab.byteLength === 0) return MISSING;
  if (ab.byteLength === 1 && new Uint8Array(ab)[0] === O) {
    return node(childPath(t[PATH], k), key === null ? null : key + '\0');
  }
  const v = W.parseJSON(ab);
  return typeof v === 'object' && v !== null ? ab : v;
};

const read = (t, k) => {
  const key = keptAs(t, k);
  const kept = state.shared;
  let e = key !== null && kept !== null ? kept.get(key) : undefined;
  if (e === undefined) {
    e = answer(t, k, key, W.hostCall('shared.get', [pathJSON(t, k)]));
    if (key !== null) (kept || (state.shared = new Map())).set(key, e);
  }
  if (e === MISSING) return k in ObjectPrototype ? ObjectPrototype[k] : undefined; // as {} does
  if (typeof e !== 'object' || e === null) return e;
  return e instanceof ArrayBuffer ? W.parseJSON(e) : e;
};

const yes = (ab) => new Uint8Array(ab)[0] === ONE;

const traps = {
  get(t, k) {
    if (typeof k === 'symbol') return undefined;
    return read(t, k);
  },
  set(t, k, v) {
    if (typeof k === 'symbol') throw new TypeError('shared keys are strings');
    const p = pathJSON(t, k);
    state.shared = null;
    if (v === undefined) W.hostCall('shared.delete', [p]);
    else W.hostCall('shared.set', [p + '\n' + valueJSON(shown(t[PATH], k), v)]);
    return true;
  },
  deleteProperty(t, k) {
    state.shared = null;
    if (typeof k !== 'symbol') W.hostCall('shared.delete', [pathJSON(t, k)]);
    return true;
  },
  has(t, k) {
    if (typeof k === 'symbol') return false;
    const key = keptAs(t, k);
    const e = key !== null && state.shared !== null ? state.shared.get(key) : undefined;
    return e !== undefined ? e !== MISSING : yes(W.hostCall('shared.has', [pathJSON(t, k)]));
  },
  ownKeys(t) {
    return W.parseJSON(W.hostCall('shared.keys', [stringify(t[PATH])]));
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
    state.shared = null; // fn reads shared as it is now
    const taken = W.decode(W.hostCall('shared.take', [p]), UTF8);
    const nl = taken.indexOf('\n');
    const raw = slice(taken, nl + 1);
    const next = fn(raw === '' ? undefined : W.parseJSON(raw));
    if (next !== null && typeof next === 'object' && !isArray(next) && typeof next.then === 'function') {
      throw new TypeError('shared.update(key, fn): fn must return the new value, not a promise');
    }
    const json = next === undefined ? '' : valueJSON('shared.' + String(key), next);
    if (yes(W.hostCall('shared.swap', [p, '\n', slice(taken, 0, nl), '\n', json]))) {
      state.shared = null; // fn may have read the key through shared
      return next;
    }
  }
  throw new Error('shared.update(' + stringify(String(key)) + '): the key kept changing; tried ' + UPDATE_TRIES + ' times');
};

const increment = (key, by = 1) => update(key, (v) => {
  if (v !== undefined && typeof v !== 'number') throw new TypeError('shared.increment: shared.' + String(key) + ' is not a number');
  return (v === undefined ? 0 : v) + by;
});

const HELPERS = { update, increment };

// The root: `update` and `increment` are its helpers, every other name a key.
const shared = new Proxy({ [PATH]: [], [KEY]: '' }, {
  ...traps,
  get(t, k) {
    if (typeof k === 'string' && (k === 'update' || k === 'increment')) return HELPERS[k];
    return traps.get(t, k);
  },
});

export { shared };
