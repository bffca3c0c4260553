// The guest half of runtime/host/timers.py: setTimeout and friends. A timer with a delay is
// the host op 'timers.sleep'; a 0 ms one runs in the guest, between microtasks.

import { W } from '../natives.js';
import { state } from '../crossing/state.js';
import { current, enter } from '../crossing/flight.js';
import { dropOp, listOp } from '../crossing/ops.js';
import { uncaught } from '../handler/run.js';

const timers = new Map(); // handle id -> Timer
let zero = [];

class Timeout {
  constructor(fn, ms, args, repeat) {
    this._fn = fn;
    this._ms = ms;
    this._args = args;
    this._repeat = repeat;
    this._op = 0;
    this._flight = current();
    this._id = 0;
    this._cleared = false;
  }
  ref() { return this; }
  unref() { return this; }
  hasRef() { return true; }
  refresh() { return this; }
  [Symbol.toPrimitive]() { return this._id; }
}

const armTimer = (t) => {
  if (t._ms <= 0) {
    t._op = 0;
    zero.push(t);
    W.zeroTimer();
  } else {
    t._op = listOp({ timer: t }, 'timers.sleep', { ms: t._ms });
  }
  if (!t._id) t._id = t._op || state.nextId++;
};

const fireTimer = (t) => {
  if (t._cleared) return;
  if (t._repeat) armTimer(t);
  else timers.delete(t._id);
  try {
    t._fn.apply(undefined, t._args);
  } catch (e) {
    uncaught(e);
  }
};

const toMs = (ms) => {
  ms = Number(ms);
  return ms > 0 ? Math.min(ms, 2147483647) : 0;
};

const setTimeout = (fn, ms, ...args) => {
  if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
  const t = new Timeout(fn, toMs(ms), args, false);
  armTimer(t);
  timers.set(t._id, t);
  return t;
};

const setInterval = (fn, ms, ...args) => {
  if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
  // An interval always goes through the host: a 0 ms one would spin in here.
  const t = new Timeout(fn, Math.max(1, toMs(ms)), args, true);
  armTimer(t);
  timers.set(t._id, t);
  return t;
};

const clearTimer = (h) => {
  const t = h instanceof Timeout ? h : timers.get(Number(h));
  if (!t || t._cleared) return;
  t._cleared = true;
  timers.delete(t._id);
  if (t._op) dropOp(t._op);
};

const setImmediate = (fn, ...args) => setTimeout(fn, 0, ...args);

// Runs the next due 0 ms timer; the shim drains microtasks between calls.
const tick = () => {
  while (zero.length) {
    const t = zero.shift();
    if (t._cleared || (t._flight && t._flight.finished)) {
      timers.delete(t._id);
      continue;
    }
    enter(t._flight);
    fireTimer(t);
    return true;
  }
  return false;
};

export { clearTimer, fireTimer, setImmediate, setInterval, setTimeout, tick, timers, zero };
