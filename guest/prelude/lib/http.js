// Headers and Response, what a handler may return.

import { UTF8, W } from '../natives.js';
import { streamOf } from '../crossing/stream.js';
import { viewOf } from './encoding.js';
import { URLSearchParams } from './url.js';
import { clone } from './structured-clone.js';
import { gatherStream } from './streams.js';

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

export { Headers, Response };
