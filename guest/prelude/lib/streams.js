// Streams: the WHATWG Streams Standard from web-streams-polyfill (the reference implementation,
// pinned in build/npm.py), and the encoding streams built on its TransformStream.

import {
  ByteLengthQueuingStrategy, CountQueuingStrategy, ReadableByteStreamController, ReadableStream,
  ReadableStreamBYOBReader, ReadableStreamBYOBRequest, ReadableStreamDefaultController,
  ReadableStreamDefaultReader, TransformStream, TransformStreamDefaultController, WritableStream,
  WritableStreamDefaultController, WritableStreamDefaultWriter,
} from 'web-streams-polyfill';
import { TextDecoder, TextEncoder, toUSVString } from './encoding.js';

// The transform and the codec are private to each instance, so a script sees only the
// standard members (encoding, fatal, ignoreBOM, readable, writable).
const CODEC = Symbol('codec');
const PAIR = Symbol('pair');

const brand = (self, kind) => {
  if (self === null || typeof self !== 'object' || !(PAIR in self)) {
    throw new TypeError('Illegal invocation: not a ' + kind);
  }
  return self[PAIR];
};

class TextEncoderStream {
  constructor() {
    const encoder = new TextEncoder();
    let high = ''; // a high surrogate that ended the last chunk, waiting for its low half
    this[PAIR] = new TransformStream({
      transform(chunk, controller) {
        let s = high + String(chunk);
        high = '';
        const last = s.charCodeAt(s.length - 1);
        if (last >= 0xd800 && last <= 0xdbff) {
          high = s[s.length - 1];
          s = s.slice(0, -1);
        }
        if (s.length) controller.enqueue(encoder.encode(toUSVString(s)));
      },
      flush(controller) {
        if (high) controller.enqueue(new Uint8Array([0xef, 0xbf, 0xbd]));
      },
    });
  }
  get encoding() { brand(this, 'TextEncoderStream'); return 'utf-8'; }
  get readable() { return brand(this, 'TextEncoderStream').readable; }
  get writable() { return brand(this, 'TextEncoderStream').writable; }
}

class TextDecoderStream {
  constructor(label = 'utf-8', options = {}) {
    const decoder = new TextDecoder(label, options);
    this[CODEC] = decoder;
    this[PAIR] = new TransformStream({
      transform(chunk, controller) {
        const s = decoder.decode(chunk, { stream: true });
        if (s) controller.enqueue(s);
      },
      flush(controller) {
        const s = decoder.decode();
        if (s) controller.enqueue(s);
      },
    });
  }
  get encoding() { brand(this, 'TextDecoderStream'); return this[CODEC].encoding; }
  get fatal() { brand(this, 'TextDecoderStream'); return this[CODEC].fatal; }
  get ignoreBOM() { brand(this, 'TextDecoderStream'); return this[CODEC].ignoreBOM; }
  get readable() { return brand(this, 'TextDecoderStream').readable; }
  get writable() { return brand(this, 'TextDecoderStream').writable; }
}

for (const C of [TextEncoderStream, TextDecoderStream]) {
  Object.defineProperty(C.prototype, Symbol.toStringTag, { value: C.name, configurable: true });
}

const isReadableStream = (v) => v instanceof ReadableStream;

export {
  ByteLengthQueuingStrategy, CountQueuingStrategy, ReadableByteStreamController, ReadableStream,
  ReadableStreamBYOBReader, ReadableStreamBYOBRequest, ReadableStreamDefaultController,
  ReadableStreamDefaultReader, TextDecoderStream, TextEncoderStream, TransformStream,
  TransformStreamDefaultController, WritableStream, WritableStreamDefaultController,
  WritableStreamDefaultWriter, isReadableStream,
};
