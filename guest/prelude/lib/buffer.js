// Node's Buffer, over the native codecs.

import { decode, encode, encodingCode, viewOf } from './encoding.js';

class Buffer extends Uint8Array {
  constructor(a, b, c) {
    if (typeof a === 'string' || Array.isArray(a)) return Buffer.from(a, b);
    super(a, b, c);
  }

  static from(v, encOrOffset, length) {
    if (typeof v === 'string') return new Buffer(encode(v, encodingCode(encOrOffset)));
    if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer)) {
      const off = encOrOffset === undefined ? 0 : Number(encOrOffset) | 0;
      return new Buffer(v, off, length === undefined ? v.byteLength - off : Number(length) | 0);
    }
    if (ArrayBuffer.isView(v)) {
      if (v instanceof Uint8Array) {
        const b = new Buffer(v.length);
        b.set(v);
        return b;
      }
      if (v instanceof DataView) return Buffer.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      return new Buffer(Uint8Array.from(v, (x) => Number(x) & 255).buffer);
    }
    if (v !== null && typeof v === 'object') {
      if (v.type === 'Buffer' && Array.isArray(v.data)) return Buffer.from(v.data);
      if (typeof v.length === 'number' || Array.isArray(v)) {
        const b = new Buffer(v.length >>> 0);
        for (let i = 0; i < b.length; i++) b[i] = Number(v[i]) & 255;
        return b;
      }
      const prim = v.valueOf();
      if (prim !== v && prim !== null && prim !== undefined) return Buffer.from(prim, encOrOffset, length);
    }
    throw new TypeError('The first argument must be of type string or an instance of Buffer, '
      + 'ArrayBuffer, or Array or an Array-like Object.');
  }

  static alloc(n, fill, enc) {
    const b = new Buffer(n);
    if (fill !== undefined && fill !== 0) b.fill(fill, 0, b.length, enc);
    return b;
  }

  static allocUnsafe(n) { return new Buffer(n); }
  static allocUnsafeSlow(n) { return new Buffer(n); }
  static isBuffer(b) { return b instanceof Buffer; }

  static isEncoding(enc) {
    try { encodingCode(enc); return typeof enc === 'string'; } catch { return false; }
  }

  static byteLength(v, enc) {
    if (typeof v === 'string') return encode(v, encodingCode(enc)).byteLength;
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v.byteLength;
    throw new TypeError('The "string" argument must be of type string or an instance of Buffer or ArrayBuffer.');
  }

  static concat(list, total) {
    if (total === undefined) {
      total = 0;
      for (const b of list) total += b.length;
    }
    const out = new Buffer(total);
    let off = 0;
    for (const b of list) {
      if (off >= total) break;
      const v = viewOf(b);
      const n = Math.min(v.length, total - off);
      out.set(n === v.length ? v : v.subarray(0, n), off);
      off += n;
    }
    return out;
  }

  static compare(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
  }

  toString(enc, start, end) {
    const code = encodingCode(enc);
    const v = start === undefined && end === undefined ? this : this.subarray(start || 0, end === undefined ? this.length : end);
    return decode(v, code);
  }

  toLocaleString(enc, start, end) { return this.toString(enc, start, end); }
  equals(o) { return Buffer.compare(this, o) === 0; }
  compare(o) { return Buffer.compare(this, o); }
  slice(start, end) { return this.subarray(start, end); }
  toJSON() { return { type: 'Buffer', data: Array.from(this) }; }

  write(s, offset, length, enc) {
    if (typeof offset === 'string') { enc = offset; offset = 0; length = undefined; }
    else if (typeof length === 'string') { enc = length; length = undefined; }
    offset = offset >>> 0;
    const bytes = new Uint8Array(encode(String(s), encodingCode(enc)));
    const n = Math.min(bytes.length, this.length - offset, length === undefined ? Infinity : length >>> 0);
    this.set(n === bytes.length ? bytes : bytes.subarray(0, n), offset);
    return n;
  }

  fill(v, start, end, enc) {
    if (typeof start === 'string') { enc = start; start = 0; end = this.length; }
    start = start === undefined ? 0 : start;
    end = end === undefined ? this.length : end;
    if (typeof v === 'number' || typeof v === 'boolean') return super.fill(Number(v) & 255, start, end);
    const pat = typeof v === 'string' ? new Uint8Array(encode(v, encodingCode(enc))) : viewOf(v);
    if (!pat || pat.length === 0) return super.fill(0, start, end);
    for (let i = start, j = 0; i < end; i++, j = (j + 1) % pat.length) this[i] = pat[j];
    return this;
  }

  indexOf(v, from, enc) {
    if (typeof v === 'number') return super.indexOf(v & 255, from);
    const pat = typeof v === 'string' ? new Uint8Array(encode(v, encodingCode(enc))) : viewOf(v);
    let i = from === undefined ? 0 : from < 0 ? Math.max(0, this.length + from) : from;
    outer: for (; i <= this.length - pat.length; i++) {
      for (let j = 0; j < pat.length; j++) if (this[i + j] !== pat[j]) continue outer;
      return i;
    }
    return -1;
  }

  includes(v, from, enc) { return this.indexOf(v, from, enc) !== -1; }

  _dv() { return new DataView(this.buffer, this.byteOffset, this.byteLength); }
  readUInt8(o = 0) { return this._dv().getUint8(o); }
  readInt8(o = 0) { return this._dv().getInt8(o); }
  readUInt16LE(o = 0) { return this._dv().getUint16(o, true); }
  readUInt16BE(o = 0) { return this._dv().getUint16(o, false); }
  readInt16LE(o = 0) { return this._dv().getInt16(o, true); }
  readInt16BE(o = 0) { return this._dv().getInt16(o, false); }
  readUInt32LE(o = 0) { return this._dv().getUint32(o, true); }
  readUInt32BE(o = 0) { return this._dv().getUint32(o, false); }
  readInt32LE(o = 0) { return this._dv().getInt32(o, true); }
  readInt32BE(o = 0) { return this._dv().getInt32(o, false); }
  readBigUInt64LE(o = 0) { return this._dv().getBigUint64(o, true); }
  readBigUInt64BE(o = 0) { return this._dv().getBigUint64(o, false); }
  readFloatLE(o = 0) { return this._dv().getFloat32(o, true); }
  readFloatBE(o = 0) { return this._dv().getFloat32(o, false); }
  readDoubleLE(o = 0) { return this._dv().getFloat64(o, true); }
  readDoubleBE(o = 0) { return this._dv().getFloat64(o, false); }
  writeUInt8(v, o = 0) { this._dv().setUint8(o, v); return o + 1; }
  writeInt8(v, o = 0) { this._dv().setInt8(o, v); return o + 1; }
  writeUInt16LE(v, o = 0) { this._dv().setUint16(o, v, true); return o + 2; }
  writeUInt16BE(v, o = 0) { this._dv().setUint16(o, v, false); return o + 2; }
  writeUInt32LE(v, o = 0) { this._dv().setUint32(o, v, true); return o + 4; }
  writeUInt32BE(v, o = 0) { this._dv().setUint32(o, v, false); return o + 4; }
  writeInt32LE(v, o = 0) { this._dv().setInt32(o, v, true); return o + 4; }
  writeInt32BE(v, o = 0) { this._dv().setInt32(o, v, false); return o + 4; }
  writeDoubleLE(v, o = 0) { this._dv().setFloat64(o, v, true); return o + 8; }
  writeDoubleBE(v, o = 0) { this._dv().setFloat64(o, v, false); return o + 8; }
}
Buffer.poolSize = 8192;
for (const name of Object.getOwnPropertyNames(Buffer.prototype)) {
  if (/^(read|write)U/.test(name)) Buffer.prototype[name.replace('UInt', 'Uint')] = Buffer.prototype[name];
}

export { Buffer };
