// The guest half of runtime/host/shared.py: `shared`, the tenant's state in the host, read and
// written with plain property access. Each access is one bound host call (the host knows the
// calling tenant); an object is a Proxy of its own over its path, so `shared.a.b = 1` writes
// one key and `shared.a.b` reads one, never the whole state. Arrays and other values are read
// as copies: change one, then assign it back.

import { isArray, slice, stringify } from '../crossing/intrinsics.js';
import { UTF8, W } from '../natives.js';

const UPDATE_TRIES = 100;
const PATH = Symbol('path'); // on each Proxy's target: the keys leading to it
const O = 0x6f; // 'o': the host's answer for an object (runtime/host/shared.py OBJECT)
const ONE = 0x31;

const pathJSON = (path, k) => {
  if (typeof k !== 'string') k = String(k);
  const p = path.slice();
  p.push(k);
  return stringify(p);
};

const valueJSON = (where, v) => {
  const json = stringify(v);
  if (json === undefined) throw new TypeError(where + ': only JSON values can be kept in shared (got ' + typeof v + ')');
  return json;
};

const shown = (path, k) => 'shared.' + (path.length ? path.join('.') + '.' : '') + String(k);

const read = (p) => {
  const ab = W.hostCall('shared.get', [p]);
  if (ab.byteLength === 0) return undefined;
  if (ab.byteLength === 1 && new Uint8Array(ab)[0] === O) return node(W.parseJSON(p));
  return W.parseJSON(ab);
};

const yes = (ab) => new Uint8Array(ab)[0] === ONE;

const traps = {
  get(t, k) {
    if (typeof k === 'symbol') return undefined;
    return read(pathJSON(t[PATH], k));
  },
  set(t, k, v) {
    if (typeof k === 'symbol') throw new TypeError('shared keys are strings');
    const p = pathJSON(t[PATH], k);
    if (v === undefined) W.hostCall('shared.delete', [p]);
    else W.hostCall('shared.set', [p, '\n', valueJSON(shown(t[PATH], k), v)]);
    return true;
  },
  deleteProperty(t, k) {
    if (typeof k !== 'symbol') W.hostCall('shared.delete', [pathJSON(t[PATH], k)]);
    return true;
  },
  has(t, k) {
    return typeof k !== 'symbol' && yes(W.hostCall('shared.has', [pathJSON(t[PATH], k)]));
  },
  ownKeys(t) {
    return W.parseJSON(W.hostCall('shared.keys', [stringify(t[PATH])]));
  },
  getOwnPropertyDescriptor(t, k) {
    if (typeof k === 'symbol') return undefined;
    const v = read(pathJSON(t[PATH], k));
    if (v === undefined) return undefined;
    return { value: v, writable: true, enumerable: true, configurable: true };
  },
  defineProperty(t, k, d) {
    return traps.set(t, k, d.value);
  },
};

// The target only carries the path (configurable, so the traps need not report it): the
// Proxy's traps answer everything else from the host.
const node = (path) => {
  const target = {};
  target[PATH] = path;
  return new Proxy(target, traps);
};

// update(key, fn): fn gets the key's value (a copy) and returns the new one (undefined
// deletes it); written only if nobody wrote the key meanwhile, else fn runs again on the value
// that won. Atomic across instances, scripts and server processes.
const update = (key, fn) => {
  if (typeof fn !== 'function') throw new TypeError('shared.update(key, fn): fn must be a function');
  const p = stringify([String(key)]);
  for (let i = 0; i < UPDATE_TRIES; i++) {
    const taken = W.decode(W.hostCall('shared.take', [p]), UTF8);
    const nl = taken.indexOf('\n');
    const raw = slice(taken, nl + 1);
    const next = fn(raw === '' ? undefined : W.parseJSON(raw));
    if (next !== null && typeof next === 'object' && !isArray(next) && typeof next.then === 'function') {
      throw new TypeError('shared.update(key, fn): fn must return the new value, not a promise');
    }
    const json = next === undefined ? '' : valueJSON('shared.' + String(key), next);
    if (yes(W.hostCall('shared.swap', [p, '\n', slice(taken, 0, nl), '\n', json]))) return next;
  }
  throw new Error('shared.update(' + stringify(String(key)) + '): the key kept changing; tried ' + UPDATE_TRIES + ' times');
};

const increment = (key, by = 1) => update(key, (v) => {
  if (v !== undefined && typeof v !== 'number') throw new TypeError('shared.increment: shared.' + String(key) + ' is not a number');
  return (v === undefined ? 0 : v) + by;
});

const HELPERS = { update, increment };

// The root: `update` and `increment` are its helpers, every other name a key.
const shared = new Proxy({ [PATH]: [] }, {
  ...traps,
  get(t, k) {
    if (typeof k === 'string' && (k === 'update' || k === 'increment')) return HELPERS[k];
    return traps.get(t, k);
  },
});

export { shared };
