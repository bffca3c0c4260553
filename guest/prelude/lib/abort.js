// AbortController and AbortSignal (DOM Standard): how a script cancels a fetch, a stream pipe or
// its own work. AbortSignal.timeout runs on the script's timers (host/timers.js).

import { Event, EventTarget, trustedEvent } from './events.js';
import { clearTimer, setTimeout } from '../host/timers.js';

const MINT = Symbol('mint'); // only this module makes signals: `new AbortSignal()` is a TypeError

class AbortSignal extends EventTarget {
  #aborted = false;
  #reason = undefined;
  #algorithms = []; // run on abort, before the event: signals that follow this one (any)
  #onabort = null;

  constructor(key) {
    if (key !== MINT) throw new TypeError('Illegal constructor: use new AbortController().signal or AbortSignal.abort()');
    super();
  }
  static #of(self) {
    if (!(self !== null && typeof self === 'object' && #aborted in self)) throw new TypeError('Illegal invocation: not an AbortSignal');
    return self;
  }
  get aborted() { return AbortSignal.#of(this).#aborted; }
  get reason() { return AbortSignal.#of(this).#reason; }
  get onabort() { return AbortSignal.#of(this).#onabort; }
  set onabort(fn) {
    const s = AbortSignal.#of(this);
    if (s.#onabort) s.removeEventListener('abort', s.#onabort);
    s.#onabort = typeof fn === 'function' ? fn : null;
    if (s.#onabort) s.addEventListener('abort', s.#onabort);
  }
  throwIfAborted() {
    const s = AbortSignal.#of(this);
    if (s.#aborted) throw s.#reason;
  }

  static abort(reason) {
    const s = new AbortSignal(MINT);
    s.#aborted = true;
    s.#reason = reason === undefined ? abortError() : reason;
    return s;
  }
  static timeout(ms) {
    ms = Number(ms);
    if (!Number.isFinite(ms) || ms < 0 || ms > Number.MAX_SAFE_INTEGER) {
      throw new TypeError('AbortSignal.timeout: the delay must be a non-negative number of milliseconds');
    }
    const s = new AbortSignal(MINT);
    const t = setTimeout(() => signalAbort(s, new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
    s.#algorithms.push(() => clearTimer(t));
    return s;
  }
  static any(signals) {
    const list = [...signals];
    for (const x of list) AbortSignal.#of(x);
    const s = new AbortSignal(MINT);
    const done = list.find((x) => x.#aborted);
    if (done) {
      s.#aborted = true;
      s.#reason = done.#reason;
      return s;
    }
    for (const x of list) x.#algorithms.push(() => signalAbort(s, x.#reason));
    return s;
  }

  // Aborts s with reason: its followers first, then its 'abort' event.
  static signalAbort(s, reason) {
    if (s.#aborted) return;
    s.#aborted = true;
    s.#reason = reason === undefined ? abortError() : reason;
    const algorithms = s.#algorithms;
    s.#algorithms = [];
    for (const run of algorithms) run();
    s.dispatchEvent(trustedEvent(new Event('abort')));
  }
}
const { signalAbort } = AbortSignal;
delete AbortSignal.signalAbort;

const abortError = () => new DOMException('This operation was aborted', 'AbortError');

class AbortController {
  #signal = new AbortSignal(MINT);

  static #of(self) {
    if (!(self !== null && typeof self === 'object' && #signal in self)) throw new TypeError('Illegal invocation: not an AbortController');
    return self;
  }
  get signal() { return AbortController.#of(this).#signal; }
  abort(reason) { signalAbort(AbortController.#of(this).#signal, reason); }
}

for (const C of [AbortSignal, AbortController]) {
  Object.defineProperty(C.prototype, Symbol.toStringTag, { value: C.name, configurable: true });
}

export { AbortController, AbortSignal };
