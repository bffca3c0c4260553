// Streamed responses: the head at once, then chunks at the end of each crossing.

import { push } from './intrinsics.js';
import { W } from '../natives.js';
import { blob, streaming } from './state.js';
import { finish } from './flight.js';
import { fail } from './errors.js';
import { op } from './ops.js';
import { viewOf } from '../lib/encoding.js';
import { ReadableStream } from '../lib/streams.js';

const { defineProperty } = Object;
const { asyncIterator } = Symbol;

const STREAM_FLUSH_BYTES = 64 * 1024;

// The head is reported at once; the pump runs in the job loop like any script code,
// and what it produced goes out at the end of each crossing (flush).

const streamOf = (v) =>
  v !== null && typeof v === 'object' && typeof v[Symbol.asyncIterator] === 'function' ? v : null;

// Reports the head of f's response and makes f a streaming flight.
const startStream = (f, status, headers) => {
  push(streaming.started || (streaming.started = []), '{"rid":' + f.rid + ',"status":' + status + ',"headers":' + headers + '}');
  W.ready();
  f.parts = [];
  f.partBytes = 0;
};

const stream = (f, status, headers, source) => {
  if (f.finished || f.parts) return;
  startStream(f, status, headers);
  pump(f, source).then(() => endStream(f), (e) => fail(f, e));
};

const endStream = (f) => {
  if (f.finished) return;
  const ref = blob(f.parts);
  f.parts.length = 0;
  push(streaming.ended || (streaming.ended = []), '[' + f.rid + ',' + ref.off + ',' + ref.len + ']');
  W.ready();
  finish(f);
};

// Adds a chunk to a streaming flight; false once this crossing has produced enough of them.
const feed = (f, part) => {
  if (!f.parts.length) push(streaming.flowing || (streaming.flowing = []), f);
  push(f.parts, part);
  f.partBytes += part.length;
  return f.partBytes < STREAM_FLUSH_BYTES;
};

// At the end of a crossing, a response that res.write() began and res.end() has not
// finished starts streaming: what was written goes out now, the rest as it is written.
const openStreams = () => {
  for (const f of streaming.open) {
    const res = f.res;
    if (f.finished || f.parts || !res._chunks) continue;
    startStream(f, res.statusCode, res._headersJSON());
    for (const part of res._chunks) feed(f, part);
    res._chunks = null;
    res._streaming = true;
  }
  streaming.open = null;
};

const partOf = (chunk) => {
  const part = typeof chunk === 'string' ? chunk : viewOf(chunk);
  if (part === null) {
    throw new TypeError('a streamed body yields strings or bytes, not ' + (chunk === null ? 'null' : typeof chunk));
  }
  return part;
};

// ReadableStreams the prelude made over an async iterator (readsFrom): a response pumps the
// iterator itself while nobody else has read or locked the stream, which spares each chunk a
// round through the streams machinery (most of what an AI stream's first token costs the guest).
// Such a stream may also have a pipe: given the response's flight, it has the host feed the
// response directly and returns a promise of the end, or returns null when it cannot (then the
// iterator is pumped). A piped body crosses into the guest not at all.
const sources = new WeakMap(); // stream -> { it, pipe }
const readsFrom = (stream, it, pipe = null) => {
  sources.set(stream, { it, pipe });
  defineProperty(stream, asyncIterator, { value: iterate, writable: true, configurable: true });
  return stream;
};

// A script's own for-await over such a stream takes the iterator too while nobody else has read
// or locked the stream: each item skips a reader, a pull and the promises of both. The stream
// is locked meanwhile, as the standard iterator would leave it, and released at the end.
function iterate(options) {
  const own = sources.get(this);
  if (own === undefined || this.locked || this._disturbed === true || (options && options.preventCancel)) {
    return ReadableStream.prototype[asyncIterator].call(this, options);
  }
  const stream = this;
  const reader = stream.getReader();
  const it = own.it;
  let open = true;
  const release = () => {
    if (open) {
      open = false;
      reader.releaseLock();
    }
  };
  return {
    next() {
      if (!open) return Promise.resolve({ value: undefined, done: true });
      stream._disturbed = true; // read, as a read through the reader would mark it
      return it.next().then((r) => {
        if (r.done) release();
        return r;
      }, (e) => {
        release();
        throw e;
      });
    },
    return(value) {
      if (!open) return Promise.resolve({ value, done: true });
      release();
      return Promise.resolve(it.return()).then(() => ({ value, done: true }));
    },
    [asyncIterator]() { return this; },
  };
}

const ownSource = (source) => {
  const own = sources.get(source);
  if (own === undefined || source.locked || source._disturbed === true) return null;
  source.getReader(); // the stream is the response's now: locked, as reading it would leave it
  return own;
};

const pump = async (f, source) => {
  const own = ownSource(source);
  const piped = own && own.pipe ? own.pipe(f) : null;
  if (piped) return piped;
  for await (const chunk of own ? own.it : source) {
    if (f.finished) return;
    if (!feed(f, partOf(chunk))) {
      f.partBytes = 0;
      await op('response.drain', {}); // ends the crossing; resumes once the client has taken most of it
    }
  }
};

export { endStream, feed, openStreams, partOf, readsFrom, stream, streamOf };
