// ReadableStream, as much of it as a script needs to produce a body.

import { UTF8, W } from '../natives.js';
import { partOf } from '../crossing/stream.js';
import { Buffer } from './buffer.js';

// What a script needs to produce a body: an underlying source with start and pull, its
// controller (enqueue, close, error), a reader, and async iteration. No byte streams,
// tees, pipes or queuing strategies.

class ReadableStream {
  constructor(source = {}) {
    this._source = source;
    this._queue = [];
    this._closing = false; // close() was called: done once the queue is read
    this._failed = false;
    this._error = undefined;
    this._wakers = []; // reads waiting for a chunk, close or error
    this._reader = null;
    const self = this;
    this._controller = {
      enqueue(chunk) {
        if (self._closing || self._failed) throw new TypeError('Cannot enqueue a chunk into a closed stream');
        self._queue.push(chunk);
        self._notify();
      },
      close() {
        if (self._closing || self._failed) throw new TypeError('The stream is already closed');
        self._closing = true;
        self._notify();
      },
      error(e) {
        if (self._failed) return;
        self._failed = true;
        self._error = e;
        self._queue.length = 0;
        self._notify();
      },
      get desiredSize() { return self._failed ? null : self._closing ? 0 : 1 - self._queue.length; },
    };
    const begun = typeof source.start === 'function' ? source.start(this._controller) : undefined;
    this._ready = Promise.resolve(begun).then(null, (e) => this._controller.error(e));
  }
  get locked() { return this._reader !== null; }
  _notify() {
    const wakers = this._wakers;
    this._wakers = [];
    for (const wake of wakers) wake();
  }
  async _read() {
    await this._ready;
    for (;;) {
      if (this._failed) throw this._error;
      if (this._queue.length) return { value: this._queue.shift(), done: false };
      if (this._closing) return { value: undefined, done: true };
      const woken = new Promise((r) => this._wakers.push(r));
      if (typeof this._source.pull === 'function') {
        try {
          await this._source.pull(this._controller);
        } catch (e) {
          this._controller.error(e);
        }
        if (this._failed || this._queue.length || this._closing) continue;
      }
      await woken;
    }
  }
  cancel(reason) {
    this._closing = true;
    this._queue.length = 0;
    this._notify();
    return Promise.resolve(typeof this._source.cancel === 'function' ? this._source.cancel(reason) : undefined);
  }
  getReader() {
    if (this._reader) throw new TypeError('ReadableStream is locked to a reader');
    // methods, not arrows: the bundle names an arrow where it is made (--keep-names)
    const stream = this;
    const reader = {
      read() { return stream._read(); },
      releaseLock() { if (stream._reader === reader) stream._reader = null; },
      cancel(reason) { return stream.cancel(reason); },
    };
    this._reader = reader;
    return reader;
  }
  async *[Symbol.asyncIterator]() {
    const reader = this.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }
  values() { return this[Symbol.asyncIterator](); }
}

// A stream's chunks joined, for Response.text() and friends.
const gatherStream = async (source) => {
  const parts = [];
  for await (const c of source) {
    const part = partOf(c);
    parts.push(typeof part === 'string' ? new Uint8Array(W.encode(part, UTF8)) : part);
  }
  return Buffer.concat(parts);
};

export { ReadableStream, gatherStream };
