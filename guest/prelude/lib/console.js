// console, and the formatting util.inspect and util.format share with it.

import { push, slice } from '../crossing/intrinsics.js';
import { LOG_BYTES_PER_CROSSING, LOG_MESSAGE_MAX, state } from '../crossing/state.js';
import { current } from '../crossing/flight.js';
import { scriptFrames } from '../crossing/errors.js';
import { Buffer } from './buffer.js';

// What Node's util.inspect.custom is: an object's own way to be shown, (depth, options, inspect).
const INSPECT_CUSTOM = Symbol.for('nodejs.util.inspect.custom');

const inspect = (v, opts) => {
  const depth = opts && typeof opts.depth === 'number' ? opts.depth : 2;
  return fmt(v, depth, [], true);
};

const quote = (s) => "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n') + "'";
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

const fmtKey = (k) => (typeof k === 'symbol' ? '[' + k.toString() + ']' : IDENT.test(k) ? k : quote(k));

const fmtList = (open, items, close, more) => {
  if (more > 0) items.push('... ' + more + ' more item' + (more > 1 ? 's' : ''));
  return items.length ? open + ' ' + items.join(', ') + ' ' + close : open + close;
};

const fmt = (v, depth, seen, top) => {
  switch (typeof v) {
    case 'string': return top ? v : quote(v);
    case 'number': return Object.is(v, -0) ? '-0' : String(v);
    case 'bigint': return v + 'n';
    case 'symbol': return v.toString();
    case 'undefined': return 'undefined';
    case 'boolean': return String(v);
    case 'function': {
      const src = Function.prototype.toString.call(v);
      const kind = /^class[\s{]/.test(src) ? 'class' : 'Function';
      return '[' + kind + (v.name ? ': ' + v.name : kind === 'class' ? ' (anonymous)' : ' (anonymous)') + ']';
    }
  }
  if (v === null) return 'null';
  if (seen.includes(v)) return '[Circular]';
  if (v instanceof Error) {
    const head = (v.name || 'Error') + (v.message ? ': ' + v.message : '');
    const stack = scriptFrames(v.stack);
    return stack ? head + '\n' + stack : head;
  }
  if (v instanceof Date) return isNaN(v) ? 'Invalid Date' : v.toISOString();
  if (v instanceof RegExp) return String(v);
  if (v instanceof Promise) return 'Promise {}';
  if (v instanceof Buffer) {
    const n = Math.min(v.length, 50);
    let s = '<Buffer';
    for (let i = 0; i < n; i++) s += ' ' + (v[i] < 16 ? '0' : '') + v[i].toString(16);
    return s + (v.length > n ? ' ... ' + (v.length - n) + ' more bytes>' : '>');
  }
  if (v instanceof ArrayBuffer) return 'ArrayBuffer { byteLength: ' + v.byteLength + ' }';
  const custom = v[INSPECT_CUSTOM];
  if (typeof custom === 'function') {
    const shown = custom.call(v, depth, {}, inspect);
    if (shown !== v) return typeof shown === 'string' ? shown : fmt(shown, depth, seen, false);
  }
  const nested = depth < 0;
  seen.push(v);
  try {
    if (Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) {
      const name = Array.isArray(v) ? '' : v.constructor.name + '(' + v.length + ') ';
      if (nested) return Array.isArray(v) ? '[Array]' : '[' + v.constructor.name + ']';
      const n = Math.min(v.length, 100);
      const items = [];
      for (let i = 0; i < n; i++) items.push(fmt(v[i], depth - 1, seen, false));
      return name + fmtList('[', items, ']', v.length - n);
    }
    if (v instanceof Map) {
      if (nested) return '[Map]';
      const items = [];
      for (const [k, x] of v) items.push(fmt(k, depth - 1, seen, false) + ' => ' + fmt(x, depth - 1, seen, false));
      return 'Map(' + v.size + ') ' + fmtList('{', items, '}', 0);
    }
    if (v instanceof Set) {
      if (nested) return '[Set]';
      const items = [];
      for (const x of v) items.push(fmt(x, depth - 1, seen, false));
      return 'Set(' + v.size + ') ' + fmtList('{', items, '}', 0);
    }
    const proto = Object.getPrototypeOf(v);
    const ctor = proto === null ? '[Object: null prototype]'
      : proto === Object.prototype || !proto.constructor ? '' : proto.constructor.name;
    if (nested) return ctor && ctor !== 'Object' ? '[' + ctor + ']' : '[Object]';
    const items = [];
    for (const k of Reflect.ownKeys(v)) {
      const d = Object.getOwnPropertyDescriptor(v, k);
      if (!d || !d.enumerable) continue;
      const val = 'value' in d ? fmt(d.value, depth - 1, seen, false) : d.set ? '[Getter/Setter]' : '[Getter]';
      items.push(fmtKey(k) + ': ' + val);
    }
    return (ctor ? ctor + ' ' : '') + fmtList('{', items, '}', 0);
  } finally {
    seen.pop();
  }
};

const format = (args) => {
  let i = 0;
  let head = '';
  if (typeof args[0] === 'string' && args.length > 1 && args[0].includes('%')) {
    i = 1;
    head = args[0].replace(/%[sdifjoOc%]/g, (m) => {
      if (m === '%%') return '%';
      if (i >= args.length) return m;
      const a = args[i++];
      switch (m) {
        case '%s': return typeof a === 'string' ? a : fmt(a, 1, [], true);
        case '%d': case '%i': return typeof a === 'bigint' ? a + 'n' : String(m === '%i' ? parseInt(a) : Number(a));
        case '%f': return String(parseFloat(a));
        case '%j': try { return JSON.stringify(a); } catch { return '[Circular]'; }
        case '%c': return '';
        default: return fmt(a, 4, [], false);
      }
    });
  }
  let s = head;
  for (; i < args.length; i++) {
    const a = args[i];
    s += (s || i > 0 ? ' ' : '') + (typeof a === 'string' ? a : fmt(a, 2, [], true));
  }
  return s;
};

const ridNow = () => {
  const f = current();
  return f ? f.rid : 0;
};

const log = (level, args, rid) => {
  let msg = args.length === 1 && typeof args[0] === 'string' ? args[0] : format(args);
  if (state.logBytes >= LOG_BYTES_PER_CROSSING) {
    state.logsDropped++;
    return;
  }
  if (msg.length > LOG_MESSAGE_MAX) msg = slice(msg, 0, LOG_MESSAGE_MAX) + '... (truncated)';
  state.logBytes += msg.length;
  push(state.logs || (state.logs = []), { rid: rid === undefined ? ridNow() : rid, level, msg });
};

const counts = new Map();
const marks = new Map();
const console = {
  log: (...a) => log('log', a),
  info: (...a) => log('info', a),
  warn: (...a) => log('warn', a),
  error: (...a) => log('error', a),
  debug: (...a) => log('debug', a),
  trace: (...a) => log('debug', [format(a) + '\n' + String(new Error().stack || '')]),
  dir: (v, o) => log('log', [inspect(v, o)]),
  table: (v) => log('log', [v]),
  assert: (ok, ...a) => { if (!ok) log('error', ['Assertion failed' + (a.length ? ':' : ''), ...a]); },
  count: (label = 'default') => {
    const n = (counts.get(label) || 0) + 1;
    counts.set(label, n);
    log('info', [label + ': ' + n]);
  },
  countReset: (label = 'default') => counts.delete(label),
  time: (label = 'default') => marks.set(label, performance.now()),
  timeLog: (label = 'default', ...a) => {
    if (marks.has(label)) log('info', [label + ': ' + (performance.now() - marks.get(label)).toFixed(3) + 'ms', ...a]);
  },
  timeEnd: (label = 'default') => {
    if (!marks.has(label)) return;
    log('info', [label + ': ' + (performance.now() - marks.get(label)).toFixed(3) + 'ms']);
    marks.delete(label);
  },
  group: () => {},
  groupEnd: () => {},
};

export { console, format, inspect, log, ridNow };
