// The report of a crossing (ABI.md): what flush() returns to the shim as the output header.

import { join, push, slice, splice, stringify } from './intrinsics.js';
import { W } from '../natives.js';
import { LOG_BYTES_PER_CROSSING, blob, state, streaming } from './state.js';
import { enter, waiting } from './flight.js';
import { openStreams } from './stream.js';
import { reportUnhandled, unhandled } from './rejections.js';
import { zero } from '../host/timers.js';
import { ridNow } from '../lib/console.js';
import { respondWith } from '../handler/run.js';
import { socketActions } from '../host/websocket.js';

// The requests whose work the crossing leaves queued (0: work of none).
const leftOver = () => {
  const rids = new Set();
  for (const f of W.leftOver()) rids.add(f ? f.rid : 0);
  for (const t of zero) if (!t._cleared) rids.add(t._flight ? t._flight.rid : 0);
  return [...rids];
};

// The report of a crossing; `more` when the guest stopped with work left (ABI.md).
const flush = (more) => {
  if (waiting.length) {
    for (let i = waiting.length - 1; i >= 0; i--) {
      const f = waiting[i];
      if (f.finished || f.pending === 0) {
        splice(waiting, i, 1);
        if (!f.finished) {
          enter(f);
          respondWith(f, undefined, true);
        }
      }
    }
  }
  if (streaming.open) openStreams();
  if (unhandled.size) reportUnhandled();
  if (state.logsDropped) {
    push(state.logs || (state.logs = []), { rid: ridNow(), level: 'warn', msg: '[wexec] ' + state.logsDropped + ' log lines dropped (limit ' + LOG_BYTES_PER_CROSSING + ' bytes per call)' });
  }
  let s = '';
  if (streaming.started) {
    s += ',"started":[' + join(streaming.started, ',') + ']';
    streaming.started = null;
  }
  if (streaming.flowing) {
    const chunks = [];
    for (const f of streaming.flowing) {
      if (!f.parts.length) continue;
      const ref = blob(f.parts);
      f.parts.length = 0;
      f.partBytes = 0;
      push(chunks, '{"rid":' + f.rid + ',"body":{"off":' + ref.off + ',"len":' + ref.len + '}}');
    }
    if (chunks.length) s += ',"chunks":[' + join(chunks, ',') + ']';
    streaming.flowing = null;
  }
  if (streaming.ended) {
    s += ',"ended":[' + join(streaming.ended, ',') + ']';
    streaming.ended = null;
  }
  if (socketActions.actions) {
    s += ',"ws":' + stringify(socketActions.actions);
    socketActions.actions = null;
  }
  if (state.done) s += ',"done":[' + join(state.done, ',') + ']';
  if (state.skipped) s += ',"skipped":[' + join(state.skipped, ',') + ']';
  if (state.failed) s += ',"failed":' + stringify(state.failed);
  if (state.ops && state.ops.length) s += ',"ops":' + stringify(state.ops);
  if (state.cancel) s += ',"cancel":' + stringify(state.cancel);
  if (state.logs) s += ',"logs":' + stringify(state.logs);
  if (more) s += ',"more":' + stringify(leftOver());
  state.done = state.failed = state.ops = state.cancel = state.logs = state.skipped = null;
  state.logBytes = state.logsDropped = 0;
  return s ? '{' + slice(s, 1) + '}' : '{}';
};

export { flush };
