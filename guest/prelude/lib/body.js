// The body of a Request or Response (Fetch Standard's Body mixin): what it may be made from, its
// stream, and reading it once.
//
// A body made from a string or bytes keeps them, and makes its ReadableStream only when a script
// asks for `.body`: a handler returning `new Response('hi')` pays no stream. A body made from a
// stream is read from it.

import { UTF8, W } from '../natives.js';
import { concatBytes, toUSVString, utf8, viewOf } from './encoding.js';
import { ReadableStream, isReadableStream } from './streams.js';
import { Blob, blobBytes } from './blob.js';
import { FormData, multipart, parseForm } from './formdata.js';
import { URLSearchParams } from './url.js';

// A body: { src: string | Uint8Array | ReadableStream, used }, or null for none.
// extract returns [body, its default content type or null].
const extract = (init) => {
  if (init === undefined || init === null) return [null, null];
  if (typeof init === 'string') return [{ src: toUSVString(init), used: false }, 'text/plain;charset=UTF-8'];
  if (isReadableStream(init)) {
    if (init.locked || disturbed(init)) throw new TypeError('The body stream is locked or was already read');
    return [{ src: init, used: false }, null];
  }
  if (init instanceof Blob) return [{ src: blobBytes(init), used: false }, init.type || null];
  const v = viewOf(init);
  if (v) return [{ src: v.slice(), used: false }, null];
  if (init instanceof FormData) {
    const [bytes, type] = multipart(init);
    return [{ src: bytes, used: false }, type];
  }
  if (init instanceof URLSearchParams) {
    return [{ src: init.toString(), used: false }, 'application/x-www-form-urlencoded;charset=UTF-8'];
  }
  return [{ src: toUSVString(String(init)), used: false }, 'text/plain;charset=UTF-8'];
};

// Whether a stream was ever read from (the reference implementation's own flag).
const disturbed = (stream) => stream._disturbed === true;

const bytesStream = (bytes) =>
  new ReadableStream({
    type: 'bytes',
    start(controller) {
      if (bytes.length) controller.enqueue(bytes.slice());
      controller.close();
    },
  });

// The body's stream, made on first use for a body that has its bytes already.
const streamOf = (body) => {
  if (body === null) return null;
  if (!isReadableStream(body.src)) body.src = bytesStream(typeof body.src === 'string' ? utf8(body.src) : body.src);
  return body.src;
};

const isUsed = (body) => body !== null && (body.used || (isReadableStream(body.src) && disturbed(body.src)));

// Reads the whole body once; a promise of its bytes (a string body stays a string, for text()).
const consume = (body) => {
  if (body === null) return Promise.resolve(new Uint8Array(0));
  if (isUsed(body)) return Promise.reject(new TypeError('Body is unusable: Body has already been read'));
  const src = body.src;
  if (!isReadableStream(src)) {
    body.used = true;
    return Promise.resolve(src);
  }
  if (src.locked) return Promise.reject(new TypeError('Body is unusable: its stream is locked to a reader'));
  body.used = true;
  const reader = src.getReader();
  const chunks = [];
  const next = () =>
    reader.read().then(({ value, done }) => {
      if (done) return concatBytes(chunks);
      if (!(value instanceof Uint8Array)) {
        const e = new TypeError('A body stream yielded a ' + (value === null ? 'null' : typeof value) + ' chunk; chunks must be Uint8Array');
        return reader.cancel(e).then(() => { throw e; });
      }
      chunks.push(value);
      return next();
    });
  return next();
};

const asBytes = (x) => (typeof x === 'string' ? utf8(x) : x);
const asText = (x) => (typeof x === 'string' ? x : decodeUtf8(x));
// UTF-8 decode of a body: a leading BOM is dropped (the Encoding Standard's "UTF-8 decode").
const decodeUtf8 = (bytes) => {
  const s = W.decode(bytes, UTF8);
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
};

// The Body mixin's methods, on Request.prototype and Response.prototype; `of` finds the body
// and headers of `this` (and throws for a foreign receiver).
const bodyMethods = (of) => ({
  get body() { return streamOf(of(this).body); },
  get bodyUsed() { return isUsed(of(this).body); },
  arrayBuffer() { return consume(of(this).body).then((x) => (typeof x === 'string' ? utf8(x).buffer : x.slice().buffer)); },
  bytes() { return consume(of(this).body).then((x) => (typeof x === 'string' ? utf8(x) : x.slice())); },
  text() { return consume(of(this).body).then(asText); },
  json() { return consume(of(this).body).then((x) => JSON.parse(asText(x))); },
  blob() {
    const o = of(this);
    return consume(o.body).then((x) => new Blob([asBytes(x)], { type: o.headers.get('content-type') || '' }));
  },
  formData() {
    const o = of(this);
    return consume(o.body).then((x) => {
      const form = parseForm(asBytes(x), o.headers.get('content-type'));
      if (form === null) throw new TypeError('Could not parse the body as FormData: its Content-Type is neither multipart/form-data nor application/x-www-form-urlencoded');
      return form;
    });
  },
});

// A copy of a body for clone(): a stream body is teed, one branch each.
const cloneBody = (body) => {
  if (body === null) return null;
  if (isUsed(body) || (isReadableStream(body.src) && body.src.locked)) throw new TypeError('Cannot clone a body that was already read or is locked');
  if (!isReadableStream(body.src)) return { src: body.src, used: false };
  const [a, b] = body.src.tee();
  body.src = a;
  return { src: b, used: false };
};

const installBody = (C, of) => {
  const methods = Object.getOwnPropertyDescriptors(bodyMethods(of));
  for (const k of Object.keys(methods)) methods[k].enumerable = true;
  Object.defineProperties(C.prototype, methods);
};

export { cloneBody, consume, extract, installBody, isUsed, streamOf };
