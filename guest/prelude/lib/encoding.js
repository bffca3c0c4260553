// Text encodings: the native codecs, TextEncoder and TextDecoder, and viewOf (bytes of any view).

import { BASE64, BASE64URL, HEX, LATIN1, UTF16LE, UTF8, UTF8_FATAL, W } from '../natives.js';

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
  let s = '';
  for (let i = 0; i + 1 < bytes.length; i += 2) s += String.fromCharCode(bytes[i] | (bytes[i + 1] << 8));
  return s;
};

const viewOf = (x) => {
  if (x instanceof Uint8Array) return x;
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (x instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && x instanceof SharedArrayBuffer)) return new Uint8Array(x);
  return null;
};

class TextEncoder {
  get encoding() { return 'utf-8'; }
  encode(s = '') { return new Uint8Array(W.encode(String(s), UTF8)); }
  encodeInto(s, dest) {
    s = String(s);
    const all = new Uint8Array(W.encode(s, UTF8));
    if (all.length <= dest.length) {
      dest.set(all);
      return { read: s.length, written: all.length };
    }
    let read = 0, written = 0;
    for (const ch of s) {
      const b = new Uint8Array(W.encode(ch, UTF8));
      if (written + b.length > dest.length) break;
      dest.set(b, written);
      written += b.length;
      read += ch.length;
    }
    return { read, written };
  }
}

const DECODERS = {
  'utf-8': UTF8, utf8: UTF8, 'unicode-1-1-utf-8': UTF8,
  latin1: LATIN1, 'iso-8859-1': LATIN1, ascii: LATIN1, 'us-ascii': LATIN1, 'windows-1252': LATIN1,
  'utf-16le': UTF16LE, 'utf-16': UTF16LE,
};

class TextDecoder {
  constructor(label = 'utf-8', options = {}) {
    const key = String(label).trim().toLowerCase();
    if (!(key in DECODERS)) throw new RangeError('The "' + label + '" encoding is not supported');
    this._code = DECODERS[key];
    this._name = this._code === UTF8 ? 'utf-8' : this._code === UTF16LE ? 'utf-16le' : 'windows-1252';
    this.fatal = !!options.fatal;
    this.ignoreBOM = !!options.ignoreBOM;
  }
  get encoding() { return this._name; }
  decode(input) {
    if (input === undefined) return '';
    const v = viewOf(input);
    if (!v) throw new TypeError('The "input" argument must be an ArrayBuffer or ArrayBufferView');
    let s = decode(v, this._code === UTF8 && this.fatal ? UTF8_FATAL : this._code);
    if (!this.ignoreBOM && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
    return s;
  }
}

// Two lower-case hex digits per byte value.
const HEXBYTE = [];
for (let i = 0; i < 256; i++) HEXBYTE.push((i < 16 ? '0' : '') + i.toString(16));

export { HEXBYTE, TextDecoder, TextEncoder, decode, encode, encodingCode, viewOf };
