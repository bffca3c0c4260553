// Blob and File (File API): immutable bytes with a type, held in memory as one Uint8Array.

import { concatBytes, toUSVString, utf8, viewOf } from './encoding.js';
import { ReadableStream } from './streams.js';
import { UTF8, W } from '../natives.js';

// A Blob's type: lower-cased, or empty when it has a character outside U+0020-U+007E.
const normaliseType = (t) => {
  t = t === undefined ? '' : String(t);
  return /^[\x20-\x7e]*$/.test(t) ? t.toLowerCase() : '';
};

// The bytes of a Blob or buffer part: a Blob's own (immutable), a copy of a buffer's.
const partBytes = (part) => (part instanceof Blob ? blobBytes(part) : viewOf(part).slice());

class Blob {
  #bytes;
  #type;
  // Arguments convert left to right: every part, then the options (endings before type).
  constructor(parts = undefined, options = undefined) {
    const chunks = [];
    const texts = []; // which chunks came from strings: 'native' endings apply to those only
    if (parts !== undefined) {
      if (parts === null || typeof parts !== 'object' || typeof parts[Symbol.iterator] !== 'function') {
        throw new TypeError("Failed to construct 'Blob': The provided value cannot be converted to a sequence.");
      }
      for (const p of parts) {
        if (p instanceof Blob || viewOf(p)) {
          chunks.push(partBytes(p));
        } else {
          texts.push(chunks.length);
          chunks.push(toUSVString(String(p)));
        }
      }
    }
    if (options !== undefined && options !== null && typeof options !== 'object' && typeof options !== 'function') {
      throw new TypeError("Failed to construct 'Blob': The provided value is not of type 'BlobPropertyBag'.");
    }
    const o = options || {};
    const e = o.endings;
    const endings = e === undefined ? 'transparent' : String(e);
    if (endings !== 'transparent' && endings !== 'native') {
      throw new TypeError("Failed to construct 'Blob': The provided value '" + endings + "' is not a valid enum value of type EndingType.");
    }
    const type = normaliseType(o.type);
    for (const i of texts) chunks[i] = utf8(endings === 'native' ? chunks[i].replace(/\r\n|\r/g, '\n') : chunks[i]);
    this.#bytes = concatBytes(chunks);
    this.#type = type;
  }
  static #of(self) {
    if (!(self !== null && typeof self === 'object' && #bytes in self)) throw new TypeError('Illegal invocation: not a Blob');
    return self;
  }
  // A Blob's bytes, for bodies and FormData, without a copy (blobBytes below).
  static bytesOf(b) { return Blob.#of(b).#bytes; }
  get size() { return Blob.#of(this).#bytes.length; }
  get type() { return Blob.#of(this).#type; }
  slice(start, end, contentType) {
    const bytes = Blob.#of(this).#bytes;
    const n = bytes.length;
    const at = (x, dflt) => {
      if (x === undefined) return dflt;
      x = Math.trunc(Number(x)) || 0;
      return x < 0 ? Math.max(n + x, 0) : Math.min(x, n);
    };
    const from = at(start, 0), to = at(end, n);
    const b = new Blob([], { type: contentType });
    b.#bytes = bytes.subarray(from, Math.max(from, to));
    return b;
  }
  text() { return Promise.resolve().then(() => W.decode(Blob.#of(this).#bytes, UTF8)); }
  arrayBuffer() { return Promise.resolve().then(() => Blob.#of(this).#bytes.slice().buffer); }
  bytes() { return Promise.resolve().then(() => Blob.#of(this).#bytes.slice()); }
  stream() {
    const bytes = Blob.#of(this).#bytes;
    let at = 0;
    return new ReadableStream({
      type: 'bytes',
      pull(controller) {
        if (at >= bytes.length) {
          controller.close();
          return;
        }
        const chunk = bytes.slice(at, at + 65536);
        at += chunk.length;
        controller.enqueue(chunk);
      },
    });
  }
}
Object.defineProperty(Blob.prototype, Symbol.toStringTag, { value: 'Blob', configurable: true });

class File extends Blob {
  #name;
  #lastModified;
  constructor(bits, name, options = undefined) {
    if (arguments.length < 2) throw new TypeError("Failed to construct 'File': 2 arguments required, but only " + arguments.length + ' present.');
    super(bits, options);
    this.#name = String(name);
    const lm = options && options.lastModified !== undefined ? Number(options.lastModified) : Date.now();
    this.#lastModified = Number.isFinite(lm) ? Math.trunc(lm) : 0;
  }
  get name() { return this.#name; }
  get lastModified() { return this.#lastModified; }
  get webkitRelativePath() { return ''; }
}
Object.defineProperty(File.prototype, Symbol.toStringTag, { value: 'File', configurable: true });

const blobBytes = Blob.bytesOf;
delete Blob.bytesOf;

export { Blob, File, blobBytes };
