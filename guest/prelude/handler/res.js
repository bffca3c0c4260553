// res: the Express-style response a handler may write to, and metadata's template.

import { isArray, push, stringify } from '../crossing/intrinsics.js';
import { streaming } from '../crossing/state.js';
import { respond } from '../crossing/flight.js';
import { endStream, feed, partOf, stream, streamOf } from '../crossing/stream.js';
import { viewOf } from '../lib/encoding.js';
import { Buffer } from '../lib/buffer.js';

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
      push(streaming.open || (streaming.open = []), f);
    }
    push(this._chunks, part);
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
    const s = stringify(v);
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
      if (isArray(v)) for (let i = 0; i < v.length; i++) push(list, [k, v[i]]);
      else push(list, [k, v]);
    }
    return stringify(list);
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
const META = { method: '', path: '', query: null, parameters: null, headers: null, scriptPath: '',
  trigger: '' };

export { META, RES, TYPES, TYPE_HEADERS };
