// The guest half of runtime/host/isolate.py: isolate.eval(code, bindings, options) runs code as a
// script of its own in a fresh sandbox (the op isolate.eval) and gives back what it answered.
// Bindings: an object whose keys become the code's variables (JSON values; a req and res bound
// by name become the code's own), or the array form [req, res, fetch]. The code has its own
// fetch either way, under the caller's grants.

import { op } from '../crossing/ops.js';
import { log } from '../lib/console.js';
import { Buffer } from '../lib/buffer.js';

const isReq = (v) => v !== null && typeof v === 'object' && typeof v.method === 'string'
  && typeof v.get === 'function' && 'rawBody' in v;
const isRes = (v) => v !== null && typeof v === 'object' && typeof v.status === 'function'
  && typeof v.setHeader === 'function' && 'statusCode' in v;

const requestOf = (req) => ({
  method: req.method, url: req.url, path: req.path, headers: req.headers, query: req.query,
  params: req.params, ip: req.ip,
  body: req._raw && req._raw.length ? new Buffer(req._raw.buffer, req._raw.byteOffset, req._raw.length).toString('base64') : undefined,
});

// What the op takes: {request, res, values} from either form of bindings.
const bindingsOf = (bindings) => {
  const out = { request: undefined, res: undefined, values: undefined };
  const take = (v, key) => {
    if (isReq(v) && (key === undefined || key === 'req')) out.request = requestOf(v);
    else if (isRes(v) && (key === undefined || key === 'res')) out.res = v;
    else if (typeof v === 'function' && (key === undefined || key === 'fetch')) return; // it has its own
    else if (key === undefined) throw new TypeError('isolate.eval: the array form of bindings takes req, res and fetch; pass other values as an object');
    else if (typeof v === 'function' || typeof v === 'symbol') throw new TypeError('isolate.eval: binding ' + key + ' is a ' + typeof v + '; only JSON values (and req, res, fetch) reach the evaluated code');
    else (out.values || (out.values = {}))[key] = v;
  };
  if (bindings === undefined || bindings === null) return out;
  if (Array.isArray(bindings)) for (const v of bindings) take(v);
  else if (typeof bindings === 'object') for (const k of Object.keys(bindings)) take(bindings[k], k);
  else throw new TypeError('isolate.eval: bindings must be an object or an array');
  return out;
};

const replay = (logs) => {
  if (logs) for (const [level, msg] of logs) log(level, ['[isolate.eval] ' + msg]);
};

const valueOf = (r) => {
  const type = (r.headers.find(([k]) => k.toLowerCase() === 'content-type') || [])[1] || '';
  if (r.base64 !== undefined) return new Uint8Array(Buffer.from(r.base64, 'base64'));
  if (r.status === 204 || r.body === '') return undefined;
  if (/^application\/([^;]*\+)?json/i.test(type)) return JSON.parse(r.body);
  return r.body;
};

const evaluate = async (code, bindings, options) => {
  if (typeof code !== 'string') throw new TypeError('isolate.eval: code must be a string of JS or TS');
  const b = bindingsOf(bindings);
  const timeout = options && options.timeout != null ? Number(options.timeout) : undefined;
  const r = await op('isolate.eval', { code, bindings: b.values, request: b.request, timeout });
  replay(r.logs);
  if (r.error) {
    const e = new Error(r.error.message);
    e.name = r.error.name;
    if (r.error.line != null) {
      e.line = r.error.line;
      e.column = r.error.column;
      e.message += ' (isolate.eval:' + e.line + ':' + e.column + ')';
    }
    throw e;
  }
  if (b.res) {
    b.res.status(r.status);
    for (const [k, v] of r.headers) if (k.toLowerCase() !== 'content-length') b.res.setHeader(k, v);
  }
  return valueOf(r);
};

const isolate = { eval: evaluate };

export { isolate };
