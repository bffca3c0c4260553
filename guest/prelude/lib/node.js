// Node-ish globals and modules: process, util, and require's built-in modules.

import { clearTimer, setImmediate, setInterval, setTimeout } from '../host/timers.js';
import { format, inspect, log } from './console.js';
import { TextDecoder, TextEncoder } from './encoding.js';
import { Buffer } from './buffer.js';
import { cryptoModule } from '../host/crypto.js';
import { URL, URLSearchParams, domainToASCII, domainToUnicode } from './url.js';

const hrtime = (prev) => {
  const now = performance.now();
  let s = Math.floor(now / 1000), ns = Math.round((now % 1000) * 1e6);
  if (prev) {
    s -= prev[0];
    ns -= prev[1];
    if (ns < 0) { s--; ns += 1e9; }
  }
  return [s, ns];
};
hrtime.bigint = () => BigInt(Math.round(performance.now() * 1e6));

const process = {
  env: {},
  version: 'v20.0.0',
  versions: { node: '20.0.0', wexec: '0.1.0' },
  platform: 'linux',
  arch: 'wasm32',
  pid: 1,
  argv: ['wexec'],
  execArgv: [],
  exitCode: undefined,
  release: { name: 'node' },
  hrtime,
  uptime: () => performance.now() / 1000,
  cwd: () => '/',
  nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)),
  memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }),
  emitWarning: (w) => log('warn', [w]),
  exit: (code) => { throw new Error('process.exit(' + (code === undefined ? '' : code) + ') is not available in wexec scripts'); },
  on() { return process; },
  once() { return process; },
  off() { return process; },
};

const snapshotEnv = process.env;
const isEmpty = (o) => {
  for (const k in o) return false;
  return true;
};

const util = {
  inspect,
  format: (...a) => format(a),
  TextEncoder,
  TextDecoder,
  isDeepStrictEqual: (a, b) => JSON.stringify(a) === JSON.stringify(b),
  promisify: (fn) => (...args) => new Promise((resolve, reject) =>
    fn(...args, (err, v) => (err ? reject(err) : resolve(v)))),
  types: {
    isDate: (v) => v instanceof Date,
    isRegExp: (v) => v instanceof RegExp,
    isPromise: (v) => v instanceof Promise,
    isUint8Array: (v) => v instanceof Uint8Array,
  },
};

const builtins = {
  crypto: cryptoModule,
  buffer: { Buffer, constants: { MAX_LENGTH: 2 ** 31 - 1 }, kMaxLength: 2 ** 31 - 1 },
  url: { URL, URLSearchParams, domainToASCII, domainToUnicode },
  util,
  timers: { setTimeout, clearTimeout: clearTimer, setInterval, clearInterval: clearTimer, setImmediate, clearImmediate: clearTimer },
  process,
};

function require(name) {
  let key = String(name);
  if (key.startsWith('node:')) key = key.slice(5);
  if (Object.prototype.hasOwnProperty.call(builtins, key)) return builtins[key];
  const e = new Error("Cannot find module '" + name + "'");
  e.code = 'MODULE_NOT_FOUND';
  throw e;
}

export { isEmpty, process, require };
