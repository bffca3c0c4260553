// The guest half of runtime/host/fetch/: fetch(), and the smallest standard-shaped Request,
// AbortController and AbortSignal it needs. Every check (where a URL may go, how many fetches,
// how large) is the host's: this file only shapes what the script gives into one
// 'fetch.request' op and what comes back into a Response. It uses only the standard public
// constructors of Headers, Response and ReadableStream.

import { UTF8, W } from '../natives.js';
import { blob } from '../crossing/state.js';
import { dropOp, listOp } from '../crossing/ops.js';
import { streamOf } from '../crossing/stream.js';
import { viewOf } from '../lib/encoding.js';
import { URL, URLSearchParams } from '../lib/url.js';
import { Headers, Response } from '../lib/http.js';
import { setTimeout } from './timers.js';
import { hostStream } from './streams.js';

const abortError = () => new DOMException('This operation was aborted', 'AbortError');

class AbortSignal {
  constructor() {
    this.aborted = false;
    this.reason = undefined;
    this.onabort = null;
    this._listeners = [];
  }
  throwIfAborted() { if (this.aborted) throw this.reason; }
  addEventListener(type, fn, options) {
    if (type !== 'abort' || typeof fn !== 'function') return;
    this._listeners.push({ fn, once: !!(options && options.once) });
  }
  removeEventListener(type, fn) {
    if (type === 'abort') this._listeners = this._listeners.filter((l) => l.fn !== fn);
  }
  _abort(reason) {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason === undefined ? abortError() : reason;
    const event = { type: 'abort', target: this };
    const listeners = this._listeners;
    this._listeners = listeners.filter((l) => !l.once);
    if (typeof this.onabort === 'function') this.onabort(event);
    for (const l of listeners) l.fn.call(this, event);
  }
  static abort(reason) {
    const s = new AbortSignal();
    s._abort(reason);
    return s;
  }
  static timeout(ms) {
    const s = new AbortSignal();
    setTimeout(() => s._abort(new DOMException('The operation timed out.', 'TimeoutError')), ms);
    return s;
  }
  static any(signals) {
    const s = new AbortSignal();
    for (const t of signals) {
      if (t.aborted) { s._abort(t.reason); break; }
      t.addEventListener('abort', () => s._abort(t.reason), { once: true });
    }
    return s;
  }
}

class AbortController {
  constructor() { this.signal = new AbortSignal(); }
  abort(reason) { this.signal._abort(reason); }
}

// A request body as bytes for the host, and the content type it implies.
const bodyBytes = async (body) => {
  if (body === undefined || body === null) return [null, null];
  if (typeof body === 'string') return [new Uint8Array(W.encode(body, UTF8)), 'text/plain;charset=UTF-8'];
  if (body instanceof URLSearchParams) {
    return [new Uint8Array(W.encode(body.toString(), UTF8)), 'application/x-www-form-urlencoded;charset=UTF-8'];
  }
  const view = viewOf(body);
  if (view) return [view, null];
  if (streamOf(body)) return [new Uint8Array(await new Response(body).arrayBuffer()), null];
  return [new Uint8Array(W.encode(String(body), UTF8)), 'text/plain;charset=UTF-8'];
};

// A Request of any implementation with the standard shape (url, method, headers, body).
const requestLike = (x) => x instanceof Request ||
  (x !== null && typeof x === 'object' && typeof x.url === 'string' && typeof x.method === 'string');

// What one fetch asks for, from fetch()'s arguments or a Request's: no Request is made for a
// URL string, so a relative one never meets a constructor that needs a base.
const optionsOf = (input, init) => {
  const from = requestLike(input) ? input : null;
  const method = String(init.method || (from ? from.method : 'GET'));
  const body = init.body !== undefined ? init.body : from ? ('_body' in from ? from._body : from.body) : null;
  const m = method.toUpperCase();
  if ((m === 'GET' || m === 'HEAD') && body !== null && body !== undefined) {
    throw new TypeError('Request with GET/HEAD method cannot have body.');
  }
  return {
    url: from ? from.url : urlOf(input),
    method,
    headers: new Headers(init.headers || (from ? from.headers : undefined)),
    redirect: String(init.redirect || (from ? from.redirect : 'follow')),
    signal: init.signal || (from ? from.signal : null) || null,
    body,
  };
};

class Request {
  constructor(input, init = {}) {
    const o = optionsOf(input, init);
    this.url = o.url;
    this.method = o.method;
    this.headers = o.headers;
    this.redirect = o.redirect;
    this.signal = o.signal || new AbortController().signal;
    this._body = o.body === undefined ? null : o.body;
  }
  get body() { return this._body; }
  clone() { return new Request(this); }
  text() { return new Response(this._body).text(); }
  json() { return new Response(this._body).json(); }
  arrayBuffer() { return new Response(this._body).arrayBuffer(); }
}

// The URL the host is asked for: a path stays relative (the tenant's own route, in-process),
// anything else must parse as an absolute URL. The host parses it again, its own way.
const urlOf = (input) => {
  const s = input instanceof URL ? input.href : String(input);
  if (s[0] === '/' && s[1] !== '/') return s;
  try {
    return new URL(s).href;
  } catch (e) {
    throw new TypeError('Failed to parse URL from ' + s);
  }
};

const NULL_BODY = [101, 204, 205, 304];

// The op's answer: a little-endian u32 length, the head as JSON, a small body inline.
const responseOf = (answer, method) => {
  const length = answer[0] | (answer[1] << 8) | (answer[2] << 16) | (answer[3] << 24);
  const head = JSON.parse(W.decode(answer.subarray(4, 4 + length), UTF8));
  let body = null;
  if (head.stream !== null) body = hostStream(head.stream);
  else if (!NULL_BODY.includes(head.status) && method !== 'HEAD') body = answer.subarray(4 + length);
  const res = new Response(NULL_BODY.includes(head.status) ? null : body, {
    status: head.status, statusText: head.statusText, headers: head.headers,
  });
  Object.defineProperty(res, 'url', { value: head.url, configurable: true });
  Object.defineProperty(res, 'redirected', { value: head.redirected, configurable: true });
  return [res, body];
};

const fetch = async (input, init = {}) => {
  const o = optionsOf(input, init === null || init === undefined ? {} : init);
  const signal = o.signal;
  if (signal) signal.throwIfAborted();
  const [bytes, type] = await bodyBytes(o.body);
  const headers = [];
  for (const [k, v] of o.headers) headers.push([k, v]);
  if (type && !o.headers.has('content-type')) headers.push(['content-type', type]);
  if (signal) signal.throwIfAborted();
  const args = { url: o.url, method: o.method, headers, redirect: o.redirect };
  if (bytes) args.body = blob(bytes);
  const answer = await new Promise((resolve, reject) => {
    const rec = { resolve, reject };
    const id = listOp(rec, 'fetch.request', args, bytes ? ['body'] : undefined);
    if (signal) {
      signal.addEventListener('abort', () => {
        dropOp(id); // the host cancels the request in flight
        reject(signal.reason);
      }, { once: true });
    }
  });
  const [res, body] = responseOf(answer, o.method.toUpperCase());
  if (signal && body && streamOf(body) && !signal.aborted) {
    signal.addEventListener('abort', () => { body.cancel(signal.reason); }, { once: true });
  }
  return res;
};

export { AbortController, AbortSignal, Request, fetch };
