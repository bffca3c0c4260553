// FormData (XMLHttpRequest Standard), and its two wire forms: multipart/form-data, written for a
// body and parsed from one, and application/x-www-form-urlencoded, parsed.

import { LATIN1, UTF8, W } from '../natives.js';
import { concatBytes, toUSVString, utf8 } from './encoding.js';
import { Blob, File, blobBytes } from './blob.js';
import { parseQuery } from './url.js';

// An entry's value: a string, or a File (a Blob becomes one, named "blob" unless a name is given).
const entryValue = (value, filename, argc) => {
  if (value instanceof Blob) {
    if (!(value instanceof File) || filename !== undefined) {
      return new File([value], filename === undefined ? (value instanceof File ? value.name : 'blob') : String(filename), {
        type: value.type,
        lastModified: value instanceof File ? value.lastModified : undefined,
      });
    }
    return value;
  }
  if (argc > 2) throw new TypeError("Failed to execute 'append' on 'FormData': parameter 2 is not of type 'Blob'.");
  return toUSVString(String(value));
};

const need = (argc, n, what) => {
  if (argc < n) throw new TypeError("Failed to execute '" + what + "' on 'FormData': " + n + ' arguments required, but only ' + argc + ' present.');
};

class FormData {
  #entries = []; // [name, value]

  constructor(form) {
    if (form !== undefined) throw new TypeError("Failed to construct 'FormData': there are no HTML forms in a wexec script");
  }
  static #of(self) {
    if (!(self !== null && typeof self === 'object' && #entries in self)) throw new TypeError('Illegal invocation: not a FormData');
    return self.#entries;
  }
  append(name, value, filename) {
    need(arguments.length, 2, 'append');
    FormData.#of(this).push([toUSVString(String(name)), entryValue(value, filename, arguments.length)]);
  }
  delete(name) {
    const list = FormData.#of(this);
    name = toUSVString(String(name));
    for (let i = list.length - 1; i >= 0; i--) if (list[i][0] === name) list.splice(i, 1);
  }
  get(name) {
    need(arguments.length, 1, 'get');
    name = toUSVString(String(name));
    const e = FormData.#of(this).find((x) => x[0] === name);
    return e === undefined ? null : e[1];
  }
  getAll(name) {
    need(arguments.length, 1, 'getAll');
    name = toUSVString(String(name));
    return FormData.#of(this).filter((x) => x[0] === name).map((x) => x[1]);
  }
  has(name) {
    need(arguments.length, 1, 'has');
    name = toUSVString(String(name));
    return FormData.#of(this).some((x) => x[0] === name);
  }
  set(name, value, filename) {
    need(arguments.length, 2, 'set');
    const list = FormData.#of(this);
    name = toUSVString(String(name));
    const entry = [name, entryValue(value, filename, arguments.length)];
    const first = list.findIndex((x) => x[0] === name);
    if (first < 0) {
      list.push(entry);
      return;
    }
    list[first] = entry;
    for (let i = list.length - 1; i > first; i--) if (list[i][0] === name) list.splice(i, 1);
  }
  forEach(fn, thisArg) {
    const list = FormData.#of(this);
    for (let i = 0; i < list.length; i++) fn.call(thisArg, list[i][1], list[i][0], this);
  }
  *entries() {
    const list = FormData.#of(this);
    for (let i = 0; i < list.length; i++) yield [list[i][0], list[i][1]];
  }
  *keys() { for (const [k] of this.entries()) yield k; }
  *values() { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
}
Object.defineProperty(FormData.prototype, Symbol.toStringTag, { value: 'FormData', configurable: true });

const escapeName = (s) => s.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
const crlf = (s) => s.replace(/\r\n|\r|\n/g, '\r\n');

// A FormData as a multipart/form-data body: [bytes, content type].
const multipart = (form) => {
  const random = new Uint8Array(12);
  W.random(random);
  const boundary = '----wexec' + [...random].map((b) => b.toString(16).padStart(2, '0')).join('');
  const chunks = [];
  for (const [name, value] of form) {
    let head = '--' + boundary + '\r\nContent-Disposition: form-data; name="' + escapeName(crlf(name)) + '"';
    if (typeof value === 'string') {
      chunks.push(utf8(head + '\r\n\r\n' + crlf(value) + '\r\n'));
    } else {
      head += '; filename="' + escapeName(value.name) + '"\r\nContent-Type: ' + (value.type || 'application/octet-stream');
      chunks.push(utf8(head + '\r\n\r\n'), blobBytes(value), utf8('\r\n'));
    }
  }
  chunks.push(utf8('--' + boundary + '--\r\n'));
  return [concatBytes(chunks), 'multipart/form-data; boundary=' + boundary];
};

// The value of parameter `key` in a header value such as `form-data; name="a"`.
const param = (header, key) => {
  const m = new RegExp('(?:^|;)\\s*' + key + '\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))', 'i').exec(header);
  return m ? (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]) : undefined;
};

const formError = (what) => new TypeError('Could not parse the body as FormData: ' + what);

// A body as FormData, from its bytes and content type (null: neither form type).
const parseForm = (bytes, type) => {
  const t = String(type || '').toLowerCase();
  const form = new FormData();
  if (t.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of parseQuery(W.decode(bytes, UTF8))) form.append(k, v);
    return form;
  }
  if (!t.startsWith('multipart/form-data')) return null;
  const boundary = param(String(type), 'boundary');
  if (!boundary) throw formError('multipart/form-data without a boundary');
  const text = W.decode(bytes, LATIN1); // one character per byte: indexes are byte offsets
  const delimiter = '--' + boundary;
  let at = text.indexOf(delimiter);
  if (at < 0) throw formError('the boundary never occurs');
  for (;;) {
    at += delimiter.length;
    if (text.startsWith('--', at)) return form;
    if (!text.startsWith('\r\n', at)) throw formError('a boundary is not followed by CRLF');
    const headEnd = text.indexOf('\r\n\r\n', at + 2);
    if (headEnd < 0) throw formError('a part has no end of headers');
    const next = text.indexOf('\r\n' + delimiter, headEnd + 4);
    if (next < 0) throw formError('a part has no closing boundary');
    const head = W.decode(bytes.subarray(at + 2, headEnd), UTF8);
    let disposition = '', partType = '';
    for (const line of head.split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      if (name === 'content-disposition') disposition = line.slice(colon + 1);
      else if (name === 'content-type') partType = line.slice(colon + 1).trim();
    }
    const name = param(disposition, 'name');
    if (name === undefined) throw formError('a part has no name in its Content-Disposition');
    const filename = param(disposition, 'filename');
    const body = bytes.subarray(headEnd + 4, next);
    if (filename === undefined) form.append(name, W.decode(body, UTF8));
    else form.append(name, new File([body], filename, { type: partType || 'text/plain' }));
    at = next + 2;
  }
};

export { FormData, multipart, parseForm };
