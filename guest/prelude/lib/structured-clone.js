// structuredClone.

import { G } from '../globals.js';
import { Buffer } from './buffer.js';

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

export { clone, structuredClone };
