/*
 * The wexec prelude: the JavaScript half of the guest (see guest/ABI.md), bundled from this
 * entry by build/guest.py.
 *
 * wx_init evaluates the bundle once, before the snapshot is taken, and calls the function it
 * evaluates to with the shim's natives (natives.js). This module installs the globals scripts
 * expect, in the one list below, and exports the entry functions the shim's exports call.
 * Work done here is paid at build time; work done per request must stay small.
 *
 * The modules: crossing/ is the envelope side (state, flights, ops, streams, the report);
 * handler/ is what a handler receives (req, res, metadata) and how its answer becomes a
 * response; lib/ is what scripts see that needs no host, one file per global family; host/
 * holds the guest half of each runtime/host/<unit>.py, with the same stem.
 */

import { W } from './natives.js';
import { G, define } from './globals.js';
import { blob, state } from './crossing/state.js';
import { current, enter } from './crossing/flight.js';
import { shared } from './host/shared.js';
import { fs } from './host/fs.js';
import { op, settle } from './crossing/ops.js';
import { clearTimer, setImmediate, setInterval, setTimeout, tick } from './host/timers.js';
import { console } from './lib/console.js';
import { TextDecoder, TextEncoder, viewOf } from './lib/encoding.js';
import { Buffer } from './lib/buffer.js';
import { webcrypto } from './host/crypto.js';
import { hostStream } from './host/streams.js';
import { fetch } from './host/fetch.js';
import { URL, URLSearchParams } from './lib/url.js';
import { structuredClone } from './lib/structured-clone.js';
import * as streams from './lib/streams.js';
import { Headers, Request, Response } from './lib/http.js';
import { CustomEvent, Event, EventTarget } from './lib/events.js';
import { AbortController, AbortSignal } from './lib/abort.js';
import { Blob, File } from './lib/blob.js';
import { FormData } from './lib/formdata.js';
import { URLPattern } from 'urlpattern-polyfill/urlpattern';
import { run, skip, timeout, uncaught } from './handler/run.js';
import { flush } from './crossing/report.js';
import { rejection } from './crossing/rejections.js';
import { errorJSON, load } from './crossing/load.js';
import { process, require } from './lib/node.js';
import { isolate } from './host/isolate.js';
import { ai, generateObject, generateText, jsonSchema, model, openai, streamText } from './host/ai.js';
import { ws } from './host/websocket.js';

// JSON.parse without a reviver goes through the stack-safe native parser.
const jsonParse = JSON.parse;
define(JSON, {
  parse: {
    parse(text, reviver) {
      return reviver === undefined ? W.parseJSON(String(text)) : jsonParse(text, reviver);
    },
  }.parse,
});

define(G, {
  global: G,
  console,
  setTimeout,
  clearTimeout: clearTimer,
  setInterval,
  clearInterval: clearTimer,
  setImmediate,
  clearImmediate: clearTimer,
  TextEncoder,
  TextDecoder,
  URL,
  URLSearchParams,
  structuredClone,
  Headers,
  Request,
  Response,
  ReadableStream: streams.ReadableStream,
  ReadableStreamDefaultReader: streams.ReadableStreamDefaultReader,
  ReadableStreamBYOBReader: streams.ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest: streams.ReadableStreamBYOBRequest,
  ReadableStreamDefaultController: streams.ReadableStreamDefaultController,
  ReadableByteStreamController: streams.ReadableByteStreamController,
  WritableStream: streams.WritableStream,
  WritableStreamDefaultWriter: streams.WritableStreamDefaultWriter,
  WritableStreamDefaultController: streams.WritableStreamDefaultController,
  TransformStream: streams.TransformStream,
  TransformStreamDefaultController: streams.TransformStreamDefaultController,
  ByteLengthQueuingStrategy: streams.ByteLengthQueuingStrategy,
  CountQueuingStrategy: streams.CountQueuingStrategy,
  TextEncoderStream: streams.TextEncoderStream,
  TextDecoderStream: streams.TextDecoderStream,
  Event,
  EventTarget,
  CustomEvent,
  AbortController,
  AbortSignal,
  Blob,
  File,
  FormData,
  URLPattern,
  fetch,
  Buffer,
  process,
  require,
  shared,
  ai,
  model,
  openai,
  generateText,
  streamText,
  generateObject,
  jsonSchema,
  isolate,
  fs,
  ws,
  __wexec: { op, bytes: (x) => blob(viewOf(x) || x), stream: hostStream },
});
// The metadata of the request whose code runs (see enter). Outside any request it is kept in
// `state` rather than in a property of the global object, which has a page of its own in the
// snapshot.
Object.defineProperty(G, 'metadata', {
  get() {
    const f = current();
    return f ? f.meta : state.meta;
  },
  set(v) {
    const f = current();
    if (f) f.meta = v;
    else state.meta = v;
  },
  configurable: true,
});
Object.defineProperty(G, 'crypto', {
  value: webcrypto, writable: true, configurable: true, enumerable: false,
});

// One request through load, run and flush before the snapshot, while the shim
// keeps every shape made (JS_SHAPE_PIN in build/guest.py): requests then find
// the shapes of their headers, req, res, metadata, ... one property after
// another in the snapshot, instead of making and hashing their own. The
// headers have their keys in the order the host sends them (ABI.md).
const warm = () => {
  load(W.parseJSON('{"filename":"warm-up.js","env":{},"mem_limit":0,"budget_ms":null}'),
    // answers at once, so the settling job that follows has nothing left to do; /response
    // answers as handlers returning a Response do, whose Headers and body have shapes too
    function (module) {
      module.exports = (req, res) => (req.path === '/response'
        ? new Response(new Response('hi').headers.get('content-type'), { status: 200, headers: { 'x-a': '1' } })
        : res.json({}));
    });
  run(W.parseJSON('[1,"GET","http://localhost/","/",{},{},{},"",0]'), undefined);
  flush();
  run(W.parseJSON('[2,"GET","http://localhost/response","/response",{},{},{},"",0]'), undefined);
  flush();
  // and both headers of wx_run, with and without a load
  W.parseJSON('{"budget_ms":null,"batch":[]}');
  W.parseJSON('{"budget_ms":null,"load":{"filename":"warm-up.js","mem_limit":0,"code":0},"batch":[]}');
  state.handler = null;
  state.loaded = false;
  enter(null);
  state.meta = undefined;
  return state; // the shim moves its properties next to what requests allocate
};

export { load, errorJSON as error, run, settle, tick, flush, timeout, uncaught, rejection, warm, skip };
