// Text encodings: the native codecs, TextEncoder and TextDecoder per the Encoding Standard, and
// viewOf (bytes of any view).
//
// UTF-8 goes through the shim's native codec (the bulk of a 1 MiB decode is one native call); the
// JavaScript here only holds back a sequence a streamed chunk cut in two. UTF-16 and the
// single-byte encodings decode here, the latter from tables build/encodings.py generates from
// the WHATWG indexes. The legacy multi-byte encodings (Shift_JIS, EUC-JP, ISO-2022-JP, GBK,
// gb18030, Big5, EUC-KR) resolve by label but throw a RangeError naming the encoding: their
// tables would more than double the guest image.

import { BASE64, BASE64URL, HEX, LATIN1, UTF16LE, UTF8, UTF8_FATAL, W } from '../natives.js';
import { LABELS, SINGLE_BYTE } from 'wexec-encodings';

const encodingCode = (enc) => {
  if (enc === undefined || enc === null) return UTF8;
  switch (String(enc).toLowerCase()) {
    case 'utf8': case 'utf-8': return UTF8;
    case 'latin1': case 'binary': case 'ascii': return LATIN1;
    case 'hex': return HEX;
    case 'base64': return BASE64;
    case 'base64url': return BASE64URL;
    case 'ucs2': case 'ucs-2': case 'utf16le': case 'utf-16le': return UTF16LE;
  }
  const e = new TypeError('Unknown encoding: ' + enc);
  e.code = 'ERR_UNKNOWN_ENCODING';
  throw e;
};

const encode = (s, code) => {
  if (code !== UTF16LE) return W.encode(s, code);
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[2 * i] = c & 255;
    out[2 * i + 1] = c >> 8;
  }
  return out.buffer;
};

const decode = (bytes, code) => {
  if (code !== UTF16LE) return W.decode(bytes, code);
  return utf16(bytes, 0, bytes.length & ~1, true);
};

const viewOf = (x) => {
  if (x instanceof Uint8Array) return x;
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (x instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && x instanceof SharedArrayBuffer)) return new Uint8Array(x);
  return null;
};

// A string with each lone surrogate replaced by U+FFFD: what UTF-8 can encode.
const toUSVString = (s) => (s.isWellFormed() ? s : s.toWellFormed());

const utf8 = (s) => new Uint8Array(W.encode(toUSVString(s), UTF8));

class TextEncoder {
  get encoding() { return 'utf-8'; }
  encode(s = '') { return utf8(String(s)); }
  encodeInto(s, dest) {
    if (!(dest instanceof Uint8Array)) throw new TypeError('encodeInto: the destination must be a Uint8Array');
    s = toUSVString(String(s));
    const all = new Uint8Array(W.encode(s, UTF8));
    if (all.length <= dest.length) {
      dest.set(all);
      return { read: s.length, written: all.length };
    }
    // Only whole characters fit: walk the string until the next one would not.
    let read = 0, written = 0;
    while (read < s.length) {
      const c = s.codePointAt(read);
      const n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      if (written + n > dest.length) break;
      read += c > 0xffff ? 2 : 1;
      written += n;
    }
    dest.set(all.subarray(0, written));
    return { read, written };
  }
}

// How many bytes a UTF-8 sequence starting with `lead` has (0: not a lead byte), and the range
// its second byte must fall in (the Encoding Standard's UTF-8 decoder).
const utf8Needs = (lead) => (lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0);
const secondOk = (lead, b) =>
  lead === 0xe0 ? b >= 0xa0 && b <= 0xbf : lead === 0xed ? b >= 0x80 && b <= 0x9f :
    lead === 0xf0 ? b >= 0x90 && b <= 0xbf : lead === 0xf4 ? b >= 0x80 && b <= 0x8f : b >= 0x80 && b <= 0xbf;

// Where the complete sequences of `v` end: before a trailing sequence that is a valid beginning
// but lacks bytes, which a streamed decode keeps for the next chunk.
const utf8Cut = (v) => {
  const n = v.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    const b = v[n - k];
    if (b >= 0x80 && b <= 0xbf) continue; // a continuation byte: look further back
    const need = utf8Needs(b);
    if (need <= k) return n;
    if (k >= 2 && !secondOk(b, v[n - k + 1])) return n;
    for (let j = n - k + 2; j < n; j++) if (v[j] < 0x80 || v[j] > 0xbf) return n;
    return n - k;
  }
  return n;
};

// Code units from bytes [start, end) of v, two by two; little-endian unless `le` is false.
const utf16 = (v, start, end, le) => {
  const parts = [];
  const units = new Array(Math.min(8192, (end - start) >> 1));
  let k = 0;
  for (let i = start; i + 1 < end; i += 2) {
    units[k++] = le ? v[i] | (v[i + 1] << 8) : (v[i] << 8) | v[i + 1];
    if (k === units.length) {
      parts.push(String.fromCharCode.apply(null, units));
      k = 0;
    }
  }
  if (k) parts.push(String.fromCharCode.apply(null, units.slice(0, k)));
  return parts.join('');
};

const decodeError = (name) => new TypeError('The encoded data was not valid for encoding ' + name);

const concat = (a, b) => {
  if (!a.length) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

const NONE = new Uint8Array(0);
const DECODER = Symbol('decoder');

class TextDecoder {
  constructor(label = 'utf-8', options = {}) {
    const name = LABELS[String(label).replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, '').toLowerCase()];
    if (name === undefined || name === 'replacement') {
      throw new RangeError('The "' + label + '" encoding is not supported');
    }
    if (name !== 'utf-8' && name !== 'utf-16le' && name !== 'utf-16be' && !(name in SINGLE_BYTE)) {
      throw new RangeError('The "' + name + '" encoding is a legacy multi-byte encoding, which wexec does not decode (its tables would more than double the guest image); decode it outside the script or use UTF-8');
    }
    options = options === undefined || options === null ? {} : options;
    this[DECODER] = {
      name,
      fatal: !!options.fatal,
      ignoreBOM: !!options.ignoreBOM,
      pending: NONE, // bytes of a character the last streamed chunk cut off
      started: false, // the stream's first character is past: no BOM from here on
    };
  }
  get encoding() { return state(this).name; }
  get fatal() { return state(this).fatal; }
  get ignoreBOM() { return state(this).ignoreBOM; }
  decode(input, options) {
    const d = state(this);
    const stream = options !== undefined && options !== null && !!options.stream;
    let v = NONE;
    if (input !== undefined) {
      v = viewOf(input);
      if (!v) throw new TypeError('The "input" argument must be an ArrayBuffer or ArrayBufferView');
    }
    if (d.pending.length) v = concat(d.pending, v);
    d.pending = NONE;
    let s;
    try {
      s = run(d, v, stream);
    } catch (e) {
      d.started = false;
      throw e;
    }
    if (!d.started && s.length) {
      if (!d.ignoreBOM && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
      d.started = true;
    }
    if (!stream) d.started = false;
    return s;
  }
}

function state(self) {
  const d = self !== null && typeof self === 'object' ? self[DECODER] : undefined;
  if (d === undefined) throw new TypeError('Illegal invocation: not a TextDecoder');
  return d;
}

// Decodes v whole, or up to what a later chunk completes when `stream`; keeps that in d.pending.
const run = (d, v, stream) => {
  const name = d.name;
  if (name === 'utf-8') {
    const cut = stream ? utf8Cut(v) : v.length;
    if (cut < v.length) {
      d.pending = v.slice(cut);
      v = v.subarray(0, cut);
    }
    return W.decode(v, d.fatal ? UTF8_FATAL : UTF8);
  }
  if (name === 'utf-16le' || name === 'utf-16be') {
    const le = name === 'utf-16le';
    let end = v.length & ~1;
    if (stream && end >= 2) {
      const last = le ? v[end - 2] | (v[end - 1] << 8) : (v[end - 2] << 8) | v[end - 1];
      if (last >= 0xd800 && last <= 0xdbff) end -= 2; // a high surrogate: its pair may follow
    }
    if (stream) d.pending = v.slice(end);
    let s = utf16(v, 0, end, le);
    if (!stream && end < v.length) s += '\ufffd';
    if (s.isWellFormed() && (stream || end === v.length)) return s;
    if (d.fatal) throw decodeError(name);
    return s.toWellFormed();
  }
  const table = SINGLE_BYTE[name];
  const units = new Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const b = v[i];
    const c = b < 0x80 ? b : table.charCodeAt(b - 0x80);
    if (c === 0xfffd && d.fatal) throw decodeError(name);
    units[i] = c;
  }
  let s = '';
  for (let i = 0; i < units.length; i += 8192) s += String.fromCharCode.apply(null, units.slice(i, i + 8192));
  return s;
};

// Two lower-case hex digits per byte value.
const HEXBYTE = [];
for (let i = 0; i < 256; i++) HEXBYTE.push((i < 16 ? '0' : '') + i.toString(16));

// Byte arrays copied into one new array, which owns its buffer.
const concatBytes = (chunks) => {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
};

export { HEXBYTE, TextDecoder, TextEncoder, concatBytes, decode, encode, encodingCode, toUSVString, utf8, viewOf };
