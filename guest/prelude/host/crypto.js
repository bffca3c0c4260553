// The guest half of runtime/host/crypto.py: Web crypto and Node's crypto module. Digests and
// HMACs are the host calls crypto.hash and crypto.hmac; randomness is WASI's.

import { UTF8, W } from '../natives.js';
import { HEXBYTE, encode, encodingCode, viewOf } from '../lib/encoding.js';
import { Buffer } from '../lib/buffer.js';

const randomFill = (view) => W.random(view);

const getRandomValues = (ta) => {
  if (!ArrayBuffer.isView(ta) || ta instanceof Float32Array || ta instanceof Float64Array || ta instanceof DataView) {
    throw new TypeError('The data argument must be an integer-type TypedArray');
  }
  if (ta.byteLength > 65536) {
    throw new DOMException('The ArrayBufferView byte length exceeds 65536', 'QuotaExceededError');
  }
  return randomFill(ta);
};

const randomUUID = () => {
  const b = randomFill(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  let s = '';
  for (let i = 0; i < 16; i++) s += (i === 4 || i === 6 || i === 8 || i === 10 ? '-' : '') + HEXBYTE[b[i]];
  return s;
};

const DIGESTS = { sha1: 'sha1', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512', md5: 'md5' };

const digestName = (alg) => {
  const name = DIGESTS[String(alg).toLowerCase().replace('-', '')];
  if (!name) throw new Error('Digest method not supported: ' + alg);
  return name;
};

// Bytes for the host: strings pass as UTF-8 unless another encoding is named.
const dataPart = (data, enc) => {
  if (typeof data === 'string') return enc === undefined || encodingCode(enc) === UTF8 ? data : encode(data, encodingCode(enc));
  const v = viewOf(data);
  if (!v) throw new TypeError('The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView.');
  return v;
};

const keyBytes = (key) => (typeof key === 'string' ? new Uint8Array(W.encode(key, UTF8)) : dataPart(key));

const outputAs = (ab, enc) => {
  const buf = new Buffer(ab);
  return enc === undefined || enc === 'buffer' ? buf : buf.toString(enc);
};

class Hash {
  constructor(alg, key) {
    this._alg = digestName(alg);
    this._parts = [];
    if (key !== undefined) {
      const k = keyBytes(key);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, k.length, true);
      this._parts.push(len, k);
    }
    this._hmac = key !== undefined;
    this._done = false;
  }
  update(data, enc) {
    if (this._done) throw new Error('Digest already called');
    this._parts.push(dataPart(data, enc));
    return this;
  }
  digest(enc) {
    if (this._done) throw new Error('Digest already called');
    this._done = true;
    const ab = W.hostCall(this._hmac ? 'crypto.hmac' : 'crypto.hash', [this._alg + '\n', ...this._parts]);
    return outputAs(ab, enc);
  }
  copy() {
    const h = Object.create(Hash.prototype);
    Object.assign(h, this, { _parts: this._parts.slice() });
    return h;
  }
}

const timingSafeEqual = (a, b) => {
  const x = viewOf(a), y = viewOf(b);
  if (!x || !y) throw new TypeError('The "buf1" and "buf2" arguments must be Buffers, TypedArrays or DataViews');
  if (x.length !== y.length) {
    const e = new RangeError('Input buffers must have the same byte length');
    e.code = 'ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH';
    throw e;
  }
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
};

const randomBytes = (n, cb) => {
  const b = randomFill(new Buffer(n >>> 0));
  if (typeof cb === 'function') {
    queueMicrotask(() => cb(null, b));
    return undefined;
  }
  return b;
};

const randomInt = (min, max, cb) => {
  if (max === undefined || typeof max === 'function') { cb = max; max = min; min = 0; }
  const range = max - min;
  if (!(range > 0) || range > 2 ** 48) throw new RangeError('The value of "max" is out of range.');
  const b = randomFill(new Uint32Array(2));
  const r = min + Math.floor(((b[0] * 2 ** 21 + (b[1] >>> 11)) / 2 ** 53) * range);
  if (typeof cb === 'function') { queueMicrotask(() => cb(null, r)); return undefined; }
  return r;
};

const subtle = {
  digest: (alg, data) => new Promise((resolve) => {
    const name = digestName(typeof alg === 'object' && alg ? alg.name : alg);
    resolve(W.hostCall('crypto.hash', [name + '\n', dataPart(data)]));
  }),
};

const webcrypto = { getRandomValues, randomUUID, subtle };

const cryptoModule = {
  createHash: (alg) => new Hash(alg),
  createHmac: (alg, key) => new Hash(alg, key),
  hash: (alg, data, enc = 'hex') => new Hash(alg).update(data).digest(enc),
  randomBytes,
  randomUUID,
  randomInt,
  randomFillSync: (view) => randomFill(view),
  getRandomValues,
  timingSafeEqual,
  getHashes: () => Object.keys(DIGESTS),
  webcrypto,
  subtle,
};

export { cryptoModule, webcrypto };
