// The guest half of runtime/host/fs.py: `fs`, the tenant's folder, as promises. Paths are
// relative to the folder the tenant's scripts are in; every check is the host's.

import { BASE64, UTF8, W } from '../natives.js';
import { op } from '../crossing/ops.js';
import { decode, encodingCode, viewOf } from '../lib/encoding.js';

const LARGER = 0x3e; // '>': fs.peek's answer for a file it does not carry (runtime/host/fs.py)

// What write and append send: text as it is, bytes as base64 (op arguments are JSON).
const dataArgs = (path, data) => {
  if (typeof data === 'string') return { path, text: data };
  const v = viewOf(data);
  if (!v) throw new TypeError('fs: data must be a string, an ArrayBuffer or a typed array');
  return { path, base64: decode(v, BASE64) };
};

// read(path, 'utf8' | {encoding}): null (or 'buffer') for the bytes as a Uint8Array.
const encodingOf = (options) => {
  const enc = options !== null && typeof options === 'object' ? options.encoding : options;
  if (enc === null || enc === 'buffer') return null;
  return enc === undefined ? UTF8 : encodingCode(enc);
};

const withKinds = (e) => {
  e.isFile = e.kind === 'file';
  e.isDirectory = e.kind === 'folder';
  return e;
};

const fs = {
  // A small file comes back at once (fs.peek, answered in this crossing); a larger one is
  // read by the op.
  async read(path, options) {
    const code = encodingOf(options);
    if (typeof path !== 'string') throw new TypeError('fs.read: path must be a string');
    const peeked = W.hostCall('fs.peek', [path]);
    const bytes = new Uint8Array(peeked)[0] === LARGER
      ? await op('fs.read', { path }) : new Uint8Array(peeked, 1);
    return code === null ? new Uint8Array(bytes) : decode(bytes, code);
  },
  write(path, data) {
    return op('fs.write', dataArgs(path, data));
  },
  append(path, data) {
    return op('fs.append', dataArgs(path, data));
  },
  exists(path) {
    return op('fs.exists', { path });
  },
  async stat(path) {
    return withKinds(await op('fs.stat', { path }));
  },
  async list(path = '', options) {
    const entries = await op('fs.list', { path, recursive: !!(options && options.recursive) });
    return entries.map(withKinds);
  },
  mkdir(path) {
    return op('fs.mkdir', { path });
  },
  delete(path) {
    return op('fs.delete', { path });
  },
  move(from, to, options) {
    return op('fs.move', { from, to, overwrite: !!(options && options.overwrite) });
  },
};

export { fs };
