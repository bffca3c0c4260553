// Request and Response (Fetch Standard), what a handler may return and what fetch() takes and
// gives. Their bodies are in body.js, their headers in headers.js.

import { stringify } from '../crossing/intrinsics.js';
import { Headers, appendTrusted, checkedHeaders, guardHeaders, hasTrusted, wirePairs } from './headers.js';
import { cloneBody, extract, installBody, isUsed } from './body.js';
import { AbortController, AbortSignal } from './abort.js';
import { URL } from './url.js';

const NULL_BODY = [101, 103, 204, 205, 304];
const REDIRECT = [301, 302, 303, 307, 308];
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;

// Fills a new Headers from init (a HeadersInit), guarded as `guard`.
const headersFrom = (init, guard) => {
  const h = new Headers(init);
  guardHeaders(h, guard);
  return h;
};

// Passed as the body, says `init` is the internal state itself: a Response the host made
// (fetch()'s answer), whose parts are already checked.
const HOST_MADE = Symbol('host-made');

class Response {
  #r;

  constructor(body = null, init = {}) {
    if (body === HOST_MADE) {
      this.#r = init;
      return;
    }
    if (init === null || (typeof init !== 'object' && typeof init !== 'function')) {
      if (init !== undefined) throw new TypeError("Failed to construct 'Response': The provided value is not of type 'ResponseInit'.");
      init = {};
    }
    const status = init.status === undefined ? 200 : toStatus(init.status);
    if (status < 200 || status > 599) throw new RangeError('Failed to construct \'Response\': The status provided (' + status + ') is outside the range [200, 599].');
    const statusText = init.statusText === undefined ? '' : String(init.statusText);
    if (statusText !== '' && !REASON_PHRASE.test(statusText)) throw new TypeError("Failed to construct 'Response': Invalid statusText.");
    const headers = headersFrom(init.headers === undefined ? undefined : init.headers, 'response');
    const [b, type] = extract(body);
    if (b !== null && NULL_BODY.includes(status)) {
      throw new TypeError("Failed to construct 'Response': Response with null body status (" + status + ') cannot have body');
    }
    if (type !== null && !hasTrusted(headers, 'content-type')) appendTrusted(headers, 'content-type', type);
    this.#r = { status, statusText, headers, body: b, type: 'default', url: '', redirected: false };
  }
  static #of(self) {
    if (!(self !== null && typeof self === 'object' && #r in self)) throw new TypeError('Illegal invocation: not a Response');
    return self.#r;
  }
  get type() { return Response.#of(this).type; }
  get url() { return Response.#of(this).url; }
  get redirected() { return Response.#of(this).redirected; }
  get status() { return Response.#of(this).status; }
  get ok() { const r = Response.#of(this); return r.status >= 200 && r.status <= 299; }
  get statusText() { return Response.#of(this).statusText; }
  get headers() { return Response.#of(this).headers; }
  clone() {
    const r = Response.#of(this);
    const c = new Response(null, { status: 200 });
    c.#r = { ...r, body: cloneBody(r.body), headers: headersFrom(r.headers, guardOf(r)) };
    return c;
  }
  static error() {
    const c = new Response(null, { status: 200 });
    const r = c.#r;
    r.status = 0;
    r.type = 'error';
    guardHeaders(r.headers, 'immutable');
    return c;
  }
  static redirect(url, status = 302) {
    let href;
    try {
      href = new URL(String(url)).href;
    } catch {
      throw new TypeError("Failed to execute 'redirect' on 'Response': Invalid URL " + JSON.stringify(String(url)));
    }
    status = toStatus(status);
    if (!REDIRECT.includes(status)) throw new RangeError("Failed to execute 'redirect' on 'Response': Invalid status code " + status);
    const c = new Response(null, { status, headers: { location: href } });
    guardHeaders(c.#r.headers, 'immutable');
    c.#r.guard = 'immutable';
    return c;
  }
  static json(data, init = {}) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Failed to execute 'json' on 'Response': The data is not JSON serializable");
    const r = new Response(text, init);
    const h = r.#r.headers;
    if (init === undefined || init === null || init.headers === undefined || !new Headers(init.headers).has('content-type')) {
      h.set('content-type', 'application/json');
    }
    return r;
  }

  // For fetch() and the handler's answer, not scripts: the response's internal state.
  static internals(self) { return Response.#of(self); }
  static { installBody(Response, (self) => Response.#of(self)); }
}
const responseInternals = Response.internals;
delete Response.internals;

// fetch()'s answer: headers (lower-case [name, value] pairs) and body as the host checked them;
// `body` is bytes the Response may keep (nobody else holds them) or a ReadableStream, or null.
const hostResponse = (status, statusText, headers, body, url, redirected) =>
  new Response(HOST_MADE, {
    status, statusText, headers: checkedHeaders(headers, 'response'), body: body === null ? null : { src: body, used: false },
    type: 'default', url, redirected,
  });
const guardOf = (r) => r.guard || (r.type === 'error' ? 'immutable' : 'response');
function toStatus(v) {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new RangeError('Invalid status code ' + String(v));
  return Math.trunc(n) & 0xffff;
}

// What the handler's Response becomes on the wire: [status, header pairs as JSON, body source].
// The body is marked used: a stream goes to the client once.
const responseParts = (resp) => {
  const r = responseInternals(resp);
  const b = r.body;
  if (b !== null && isUsed(b)) throw new TypeError('The returned Response\'s body was already read');
  if (b !== null) b.used = true;
  return [r.status, stringify(wirePairs(r.headers)), b === null ? undefined : b.src];
};

const METHODS = { delete: 'DELETE', get: 'GET', head: 'HEAD', options: 'OPTIONS', post: 'POST', put: 'PUT' };
const FORBIDDEN_METHODS = ['CONNECT', 'TRACE', 'TRACK'];
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const ENUMS = {
  mode: ['same-origin', 'no-cors', 'cors', 'navigate'],
  credentials: ['omit', 'same-origin', 'include'],
  cache: ['default', 'no-store', 'reload', 'no-cache', 'force-cache', 'only-if-cached'],
  redirect: ['follow', 'error', 'manual'],
  referrerPolicy: ['', 'no-referrer', 'no-referrer-when-downgrade', 'same-origin', 'origin', 'strict-origin', 'origin-when-cross-origin', 'strict-origin-when-cross-origin', 'unsafe-url'],
  priority: ['high', 'low', 'auto'],
};
const enumOf = (init, key, dflt) => {
  const v = init[key];
  if (v === undefined) return dflt;
  const s = String(v);
  if (!ENUMS[key].includes(s)) throw new TypeError("Failed to construct 'Request': The provided value '" + s + "' is not a valid enum value of type Request" + key[0].toUpperCase() + key.slice(1) + '.');
  return s;
};

const normaliseMethod = (m) => {
  const s = String(m);
  if (!TOKEN.test(s)) throw new TypeError("Failed to construct 'Request': '" + s + "' is not a valid HTTP method.");
  const upper = s.toUpperCase();
  if (FORBIDDEN_METHODS.includes(upper)) throw new TypeError("Failed to construct 'Request': '" + s + "' HTTP method is unsupported.");
  return METHODS[s.toLowerCase()] || s;
};

const parseURL = (input) => {
  let u;
  try {
    u = new URL(String(input));
  } catch {
    throw new TypeError("Failed to construct 'Request': Invalid URL " + JSON.stringify(String(input)));
  }
  if (u.username || u.password) throw new TypeError("Failed to construct 'Request': Request cannot be constructed from a URL that includes credentials: " + u.href);
  return u.href;
};

class Request {
  #q;

  constructor(input, init = {}) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'Request': 1 argument required, but only 0 present.");
    if (init === null || init === undefined) init = {};
    else if (typeof init !== 'object' && typeof init !== 'function') throw new TypeError("Failed to construct 'Request': The provided value is not of type 'RequestInit'.");
    const from = input instanceof Request ? input.#q : null;
    const q = from
      ? { ...from, headers: null, signal: null }
      : {
        url: parseURL(input), method: 'GET', body: null, mode: 'cors', credentials: 'same-origin', cache: 'default',
        redirect: 'follow', referrer: 'about:client', referrerPolicy: '', integrity: '', keepalive: false,
        destination: '', priority: 'auto', duplex: 'half',
      };
    if (init.window !== undefined && init.window !== null) throw new TypeError("Failed to construct 'Request': 'window' can only be null.");
    if (init.mode === 'navigate') throw new TypeError("Failed to construct 'Request': Cannot construct a Request with a RequestInit whose mode member is set as 'navigate'.");
    q.mode = enumOf(init, 'mode', q.mode);
    q.credentials = enumOf(init, 'credentials', q.credentials);
    q.cache = enumOf(init, 'cache', q.cache);
    if (q.cache === 'only-if-cached' && q.mode !== 'same-origin') throw new TypeError("Failed to construct 'Request': 'only-if-cached' can be set only with 'same-origin' mode");
    q.redirect = enumOf(init, 'redirect', q.redirect);
    q.referrerPolicy = enumOf(init, 'referrerPolicy', q.referrerPolicy);
    q.priority = enumOf(init, 'priority', q.priority);
    if (init.referrer !== undefined) {
      const r = String(init.referrer);
      q.referrer = r === '' ? '' : r === 'about:client' ? r : new URL(r).href;
    }
    if (init.integrity !== undefined) q.integrity = String(init.integrity);
    if (init.keepalive !== undefined) q.keepalive = !!init.keepalive;
    if (init.method !== undefined) q.method = normaliseMethod(init.method);
    let signal = from ? input.signal : null;
    if (init.signal !== undefined) {
      if (init.signal !== null && !(init.signal instanceof AbortSignal)) throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
      signal = init.signal;
    }
    q.signal = signal ? AbortSignal.any([signal]) : new AbortController().signal;
    q.headers = headersFrom(init.headers !== undefined ? init.headers : from ? from.headers : undefined, 'request');
    const hasBody = init.body !== undefined && init.body !== null;
    if ((hasBody || (from && from.body !== null && init.body === undefined)) && (q.method === 'GET' || q.method === 'HEAD')) {
      throw new TypeError("Failed to construct 'Request': Request with GET/HEAD method cannot have body.");
    }
    if (hasBody) {
      const [b, type] = extract(init.body);
      if (b !== null && typeof b.src === 'object' && b.src !== null && typeof b.src.getReader === 'function' && init.duplex !== 'half') {
        throw new TypeError("Failed to construct 'Request': The duplex member must be specified for a request with a streaming body");
      }
      q.body = b;
      if (type !== null && !hasTrusted(q.headers, 'content-type')) appendTrusted(q.headers, 'content-type', type);
    } else if (from && from.body !== null && init.body === undefined) {
      if (isUsed(from.body)) throw new TypeError("Failed to construct 'Request': Cannot construct a Request with a Request object that has already been used.");
      q.body = { src: from.body.src, used: false };
      from.body.used = true; // the body moves to the new request
    } else {
      q.body = null;
    }
    this.#q = q;
  }
  static #of(self) {
    if (!(self !== null && typeof self === 'object' && #q in self)) throw new TypeError('Illegal invocation: not a Request');
    return self.#q;
  }
  get method() { return Request.#of(this).method; }
  get url() { return Request.#of(this).url; }
  get headers() { return Request.#of(this).headers; }
  get destination() { return Request.#of(this).destination; }
  get referrer() { const r = Request.#of(this).referrer; return r === '' ? '' : r === 'about:client' ? 'about:client' : r; }
  get referrerPolicy() { return Request.#of(this).referrerPolicy; }
  get mode() { return Request.#of(this).mode; }
  get credentials() { return Request.#of(this).credentials; }
  get cache() { return Request.#of(this).cache; }
  get redirect() { return Request.#of(this).redirect; }
  get integrity() { return Request.#of(this).integrity; }
  get keepalive() { return Request.#of(this).keepalive; }
  get isReloadNavigation() { Request.#of(this); return false; }
  get isHistoryNavigation() { Request.#of(this); return false; }
  get signal() { return Request.#of(this).signal; }
  get duplex() { return Request.#of(this).duplex; }
  clone() {
    const q = Request.#of(this);
    const c = new Request(q.url);
    c.#q = { ...q, body: cloneBody(q.body), headers: headersFrom(q.headers, 'request'), signal: AbortSignal.any([q.signal]) };
    return c;
  }

  // For fetch(), not scripts: the request's internal state.
  static internals(self) { return Request.#of(self); }
  static { installBody(Request, (self) => Request.#of(self)); }
}
const requestInternals = Request.internals;
delete Request.internals;

for (const C of [Request, Response]) {
  Object.defineProperty(C.prototype, Symbol.toStringTag, { value: C.name, configurable: true });
}

export { Headers, Request, Response, hostResponse, requestInternals, responseInternals, responseParts };
