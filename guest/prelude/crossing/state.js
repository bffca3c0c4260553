// The one object a request writes (a fresh instance copies one page of the snapshot for it),
// its streaming counterpart, and the output blob's references.

import { W } from '../natives.js';

const LOG_BYTES_PER_CROSSING = 1 << 20;
const LOG_MESSAGE_MAX = 64 * 1024;

// Everything the prelude reassigns per request lives in this one object: a
// fresh instance then copies one page of the snapshot for it, rather than a
// page per closure variable.

const state = {
  // What a crossing reports; each list exists only once something was added.
  done: null, failed: null, ops: null, cancel: null, logs: null, skipped: null,
  logBytes: 0, logsDropped: 0,
  handler: null, // the loaded script's
  script: '', // and its path
  nextId: 1, // of operations and timers
  meta: undefined, // what the global `metadata` reads outside any request
  loaded: false, // a script was loaded in this instance
  shared: null, // host/shared.js's cache of top-level keys, kept while the host's state is
  sharedDeep: null, // unchanged, and of the keys below them
};

// What streamed responses add to a crossing's report. Apart from `state`: only a
// streamed response writes here, so other requests copy no page for it.
const streaming = {
  started: null, // heads of streamed responses
  flowing: null, // streaming flights with chunks to report
  ended: null, // streamed responses that ended
  open: null, // flights whose res.write() output awaits res.end()
};

// Appends x (a string, bytes, or a list of them) to the output blob. The blob's
// length lives in the shim only, so a reference is always right.
const blob = (x) => {
  const off = W.blob(undefined);
  return { off, len: W.blob(x) - off };
};

export { LOG_BYTES_PER_CROSSING, LOG_MESSAGE_MAX, blob, state, streaming };
