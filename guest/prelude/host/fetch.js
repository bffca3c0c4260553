// The guest half of runtime/host/fetch/: fetch(). Every check (where a URL may go, how many
// fetches, how large) is the host's: this file only shapes what the script gives into one
// 'fetch.request' op and what comes back into a Response (lib/http.js).

import { UTF8, W } from '../natives.js';
import { blob } from '../crossing/state.js';
import { dropOp, listOp } from '../crossing/ops.js';
import { current } from '../crossing/flight.js';
import { stringify } from '../crossing/intrinsics.js';
import { streamOf } from '../crossing/stream.js';
import { viewOf } from '../lib/encoding.js';
import { URL, URLSearchParams } from '../lib/url.js';
import { Headers, Request, Response, hostResponse, responseInternals } from '../lib/http.js';
import { hostStream } from './streams.js';

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
// URL string, so a relative one never meets a constructor that needs a base. `headers` are the
// [name, value] pairs the host gets: no Headers is made when neither side has any.
const optionsOf = (input, init) => {
  const from = requestLike(input) ? input : null;
  const method = String(init.method || (from ? from.method : 'GET'));
  const body = init.body !== undefined ? init.body : from ? from.body : null;
  const m = method.toUpperCase();
  if ((m === 'GET' || m === 'HEAD') && body !== null && body !== undefined) {
    throw new TypeError('Request with GET/HEAD method cannot have body.');
  }
  const given = init.headers || (from ? from.headers : undefined);
  const headers = [];
  let type = null; // the content type the script set, if any
  if (given !== undefined && given !== null) {
    const h = new Headers(given);
    for (const [k, v] of h) headers.push([k, v]);
    type = h.get('content-type');
  }
  return {
    url: from ? from.url : urlOf(input),
    method,
    headers,
    type,
    redirect: String(init.redirect || (from ? from.redirect : 'follow')),
    signal: init.signal || (from ? from.signal : null) || null,
    body,
  };
};

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
const ANSWER = 0x3d; // '=': fetch.local's answer; 't': a ticket for it (runtime/host/fetch/unit.py)
const TICKET = 0x74;

// A relative fetch, answered inside this crossing when the script it calls can take it there
// (then no second crossing resumes this one); otherwise, or for a larger or later answer (a
// ticket), the 'fetch.request' op makes it.
const local = (args, bytes) => {
  const f = current();
  if (!f || f.finished) return undefined;
  const h = args.headers;
  const head = f.rid + '\n' + args.method + '\n' + args.url + '\n' + (h.length ? stringify(h) : '') + '\n';
  const got = new Uint8Array(W.hostCall('fetch.local', bytes ? [head, bytes] : [head]));
  if (got[0] === ANSWER) return got.subarray(1);
  if (got[0] === TICKET) args.ticket = +W.decode(got.subarray(1), UTF8);
  return undefined;
};

// The op's answer: a little-endian u32 length, the head as JSON, a small body inline. A head
// marked `checked` has headers the guest may take as they are (host/fetch/unit.py, Head):
// fetch() then makes its Response without checking each name and value again.
const responseOf = (answer, method) => {
  const length = answer[0] | (answer[1] << 8) | (answer[2] << 16) | (answer[3] << 24);
  const head = JSON.parse(W.decode(answer.subarray(4, 4 + length), UTF8));
  const nullBody = NULL_BODY.includes(head.status);
  let body = null;
  if (head.stream !== null) body = hostStream(head.stream);
  else if (!nullBody && method !== 'HEAD') body = answer.subarray(4 + length);
  if (head.checked && head.status >= 200) {
    return [hostResponse(head.status, head.statusText, head.headers, nullBody ? null : body, head.url, head.redirected), body];
  }
  const res = new Response(nullBody ? null : body, {
    status: head.status, statusText: head.statusText, headers: head.headers,
  });
  const r = responseInternals(res);
  r.url = head.url;
  r.redirected = head.redirected;
  return [res, body];
};

const fetch = async (input, init = {}) => {
  const o = optionsOf(input, init === null || init === undefined ? {} : init);
  const signal = o.signal;
  if (signal) signal.throwIfAborted();
  const headers = o.headers;
  const args = { url: o.url, method: o.method, headers, redirect: o.redirect };
  let bytes = null;
  if (o.body !== null && o.body !== undefined) { // a fetch without a body waits for nothing here
    let type;
    [bytes, type] = await bodyBytes(o.body);
    if (type && o.type === null) headers.push(['content-type', type]);
    if (signal) signal.throwIfAborted();
  }
  const relative = args.url[0] === '/' && args.url[1] !== '/' && !args.url.includes('\n');
  const here = relative && !signal ? local(args, bytes) : undefined;
  const answer = here || await new Promise((resolve, reject) => {
    if (bytes) args.body = blob(bytes);
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

export { fetch };
