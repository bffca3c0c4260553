// Event, CustomEvent and EventTarget, per the DOM Standard's parts that exist without a document:
// a target has no parent, so an event is dispatched at its target only (no capture or bubble
// path). AbortSignal (abort.js) is the EventTarget scripts meet most.

import { log } from './console.js';

const NONE = 0, CAPTURING_PHASE = 1, AT_TARGET = 2, BUBBLING_PHASE = 3;

class Event {
  #type;
  #bubbles;
  #cancelable;
  #composed;
  #target = null;
  #current = null;
  #phase = NONE;
  #canceled = false;
  #stop = false;
  #stopNow = false;
  #dispatching = false;
  #passive = false;
  #initialized = true;
  #trusted = false; // dispatched by the runtime (an AbortSignal's abort), not by a script
  #timeStamp = performance.now(); // ms since the time origin, as performance.now()

  constructor(type, init) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'Event': 1 argument required, but only 0 present.");
    if (init !== undefined && init !== null && typeof init !== 'object' && typeof init !== 'function') {
      throw new TypeError("Failed to construct 'Event': The provided value is not of type 'EventInit'.");
    }
    init = init || {};
    this.#type = String(type);
    this.#bubbles = !!init.bubbles;
    this.#cancelable = !!init.cancelable;
    this.#composed = !!init.composed;
  }
  static #of(self) {
    if (!(self !== null && typeof self === 'object' && #type in self)) throw new TypeError('Illegal invocation: not an Event');
    return self;
  }
  get type() { return Event.#of(this).#type; }
  get target() { return Event.#of(this).#target; }
  get srcElement() { return Event.#of(this).#target; }
  get currentTarget() { return Event.#of(this).#current; }
  get eventPhase() { return Event.#of(this).#phase; }
  get bubbles() { return Event.#of(this).#bubbles; }
  get cancelable() { return Event.#of(this).#cancelable; }
  get composed() { return Event.#of(this).#composed; }
  get defaultPrevented() { return Event.#of(this).#canceled; }
  get isTrusted() { return Event.#of(this).#trusted; }
  get timeStamp() { return Event.#of(this).#timeStamp; }
  get returnValue() { return !Event.#of(this).#canceled; }
  set returnValue(v) { if (!v) this.preventDefault(); }
  get cancelBubble() { return Event.#of(this).#stop; }
  set cancelBubble(v) { if (v) Event.#of(this).#stop = true; }
  composedPath() { const e = Event.#of(this); return e.#dispatching && e.#current ? [e.#current] : []; }
  stopPropagation() { Event.#of(this).#stop = true; }
  stopImmediatePropagation() {
    const e = Event.#of(this);
    e.#stop = true;
    e.#stopNow = true;
  }
  preventDefault() {
    const e = Event.#of(this);
    if (e.#cancelable && !e.#passive) e.#canceled = true;
  }
  initEvent(type, bubbles = false, cancelable = false) {
    const e = Event.#of(this);
    if (e.#dispatching) return;
    e.#initialized = true;
    e.#stop = e.#stopNow = e.#canceled = false;
    e.#target = null;
    e.#type = String(type);
    e.#bubbles = !!bubbles;
    e.#cancelable = !!cancelable;
  }

  // What EventTarget.dispatchEvent needs of an event; not reachable from scripts.
  static dispatching(e, target) {
    Event.#of(e);
    if (e.#dispatching || !e.#initialized) {
      throw new DOMException("Failed to execute 'dispatchEvent': The event is already being dispatched.", 'InvalidStateError');
    }
    e.#dispatching = true;
    e.#target = target;
    e.#current = target;
    e.#phase = AT_TARGET;
  }
  static stopped(e) { return e.#stopNow; }
  static trusted(e) {
    e.#trusted = true;
    return e;
  }
  static passive(e, on) { e.#passive = on; }
  static dispatched(e) {
    e.#dispatching = false;
    e.#current = null;
    e.#phase = NONE;
    e.#stop = e.#stopNow = false;
    return !e.#canceled;
  }
}
for (const [k, v] of Object.entries({ NONE, CAPTURING_PHASE, AT_TARGET, BUBBLING_PHASE })) {
  Object.defineProperty(Event, k, { value: v, enumerable: true });
  Object.defineProperty(Event.prototype, k, { value: v, enumerable: true });
}
const { dispatching, stopped, passive, dispatched, trusted } = Event;
for (const k of ['dispatching', 'stopped', 'passive', 'dispatched', 'trusted']) delete Event[k];

class CustomEvent extends Event {
  #detail;
  constructor(type, init) {
    super(type, init);
    this.#detail = init && init.detail !== undefined ? init.detail : null;
  }
  get detail() { return this.#detail; }
  initCustomEvent(type, bubbles, cancelable, detail) {
    this.initEvent(type, bubbles, cancelable);
    this.#detail = detail === undefined ? null : detail;
  }
}

const flatten = (options) => (typeof options === 'boolean' ? { capture: options } : options || {});

class EventTarget {
  #listeners = new Map(); // type -> [{ callback, capture, once, passive, removed }]

  static #of(self) {
    if (!(self !== null && typeof self === 'object' && #listeners in self)) throw new TypeError('Illegal invocation: not an EventTarget');
    return self;
  }
  addEventListener(type, callback, options) {
    const t = EventTarget.#of(this);
    const o = flatten(options);
    const capture = !!o.capture, once = !!o.once, passive = !!o.passive, signal = o.signal;
    if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) {
      throw new TypeError("Failed to execute 'addEventListener': member signal is not of type AbortSignal.");
    }
    if (callback === null || callback === undefined) return;
    if (typeof callback !== 'function' && typeof callback !== 'object') {
      throw new TypeError("Failed to execute 'addEventListener': parameter 2 is not of type 'Object'.");
    }
    if (signal !== undefined && signal.aborted) return;
    type = String(type);
    let list = t.#listeners.get(type);
    if (!list) t.#listeners.set(type, (list = []));
    if (list.some((l) => l.callback === callback && l.capture === capture)) return;
    list.push({ callback, capture, once, passive, removed: false });
    if (signal !== undefined) signal.addEventListener('abort', () => this.removeEventListener(type, callback, { capture }));
  }
  removeEventListener(type, callback, options) {
    const t = EventTarget.#of(this);
    const capture = !!flatten(options).capture;
    const list = t.#listeners.get(String(type));
    if (!list) return;
    const i = list.findIndex((l) => l.callback === callback && l.capture === capture);
    if (i < 0) return;
    list[i].removed = true;
    list.splice(i, 1);
  }
  dispatchEvent(event) {
    const t = EventTarget.#of(this);
    if (!(event instanceof Event)) throw new TypeError("Failed to execute 'dispatchEvent': parameter 1 is not of type 'Event'.");
    dispatching(event, this);
    const list = t.#listeners.get(event.type);
    for (const l of list ? list.slice() : []) {
      if (l.removed) continue;
      if (l.once) this.removeEventListener(event.type, l.callback, { capture: l.capture });
      passive(event, l.passive);
      try {
        if (typeof l.callback === 'function') l.callback.call(this, event);
        else if (typeof l.callback.handleEvent === 'function') l.callback.handleEvent(event);
        else throw new TypeError("The listener's handleEvent is not a function");
      } catch (e) {
        log('error', ['Uncaught (in event listener)', e]);
      }
      passive(event, false);
      if (stopped(event)) break;
    }
    return dispatched(event);
  }
}

export { CustomEvent, Event, EventTarget, trusted as trustedEvent };
