// How a failed request is reported: the error's name, message and the script's own frames.

import { endsWith, filter, includes, join, push, split, toString } from './intrinsics.js';
import { W } from '../natives.js';
import { state } from './state.js';
import { finish } from './flight.js';
import { inspect, log } from '../lib/console.js';

// Frames of the prelude and of native functions say nothing to a script author.
const scriptFrames = (stack) =>
  typeof stack === 'string'
    ? join(filter(split(stack, '\n'), (l) => l && !includes(l, 'prelude.js:') && !endsWith(l, '(native)')), '\n')
    : '';

const errorInfo = (e) => {
  if (e !== null && typeof e === 'object' && 'message' in e) {
    return { name: toString(e.name || 'Error'), message: toString(e.message), stack: scriptFrames(e.stack) };
  }
  return { name: 'Error', message: typeof e === 'string' ? e : inspect(e), stack: '' };
};

const fail = (f, e) => {
  if (f.finished) {
    log('error', ['Uncaught error after the response was sent:', e], f.rid);
    return;
  }
  push(state.failed || (state.failed = []), { rid: f.rid, error: errorInfo(e) });
  W.ready();
  finish(f);
};

export { errorInfo, fail, scriptFrames };
