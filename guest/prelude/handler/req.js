// req: the request as a handler receives it, its body parsed on first read.

import { UTF8, W } from '../natives.js';
import { fromShape } from '../crossing/flight.js';
import { Buffer } from '../lib/buffer.js';
import { parseQuery } from '../lib/url.js';
import { Blob } from '../lib/blob.js';
import { parseForm as parseFormData } from '../lib/formdata.js';

const UNSET = Symbol('unset');

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
  blob() { return this.bytes().then((b) => new Blob([b], { type: this.headers['content-type'] || '' })); }
  // The body, within the body limit the host already applied, as FormData: multipart/form-data
  // or application/x-www-form-urlencoded.
  formData() {
    return new Promise((resolve) => {
      const form = parseFormData(this._raw || new Uint8Array(0), this.headers['content-type']);
      if (form === null) throw new TypeError('req.formData(): the Content-Type is ' + JSON.stringify(this.headers['content-type'] || '') + ', not multipart/form-data or application/x-www-form-urlencoded');
      resolve(form);
    });
  }
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

export { newRequest };
