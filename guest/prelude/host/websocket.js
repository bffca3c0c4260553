// The guest half of runtime/host/websocket: the `ws` global, a worker script's sockets, and
// how their events run. An event enters a crossing beside the operations' results
// ({"ws": [kind, rid, socket id, ...]}, ABI.md) and runs as a request of its own (rid), so its
// handler has a request's timeout, operations and console attribution; what scripts do with
// sockets is listed for the host (`actions`, reported by flush as "ws"), where rooms live.

import { push } from '../crossing/intrinsics.js';
import { blob } from '../crossing/state.js';
import { FLIGHT, enter, fromShape, respond } from '../crossing/flight.js';
import { fail } from '../crossing/errors.js';
import { log } from '../lib/console.js';
import { viewOf } from '../lib/encoding.js';

const out = { actions: null }; // for the host, in order; flush takes them
const sockets = new Map(); // id -> the socket of an open connection
const HANDLERS = ['open', 'message', 'close', 'error'];

const act = (a) => {
  push(out.actions || (out.actions = []), a);
};

// A message as the host takes it: short text as is; bytes, and text too long to be worth
// escaping into the report's JSON, as a reference into the output blob.
const payload = (data) => {
  if (typeof data === 'string') {
    if (data.length < 512) return data;
    const ref = blob(data);
    ref.text = true;
    return ref;
  }
  const view = viewOf(data);
  if (view) return blob(view);
  throw new TypeError('a WebSocket message is a string, an ArrayBuffer or a typed array, not ' + typeof data);
};

const roomName = (room) => {
  if (typeof room !== 'string' || room === '') throw new TypeError('a room name is a non-empty string');
  return room;
};

class WebSocketConnection {
  constructor(id, remoteAddress, metadata) {
    this.id = id;
    this.remoteAddress = remoteAddress;
    this.metadata = metadata;
    this.data = {}; // the script's own, per connection
    this.readyState = 1; // OPEN; 2 CLOSING once close() was called, 3 CLOSED
  }

  send(data) {
    if (this.readyState !== 1) return false;
    act(['send', this.id, payload(data)]);
    return true;
  }

  close(code, reason) {
    if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999 && code === (code | 0))) {
      throw new RangeError('a script closes a WebSocket with 1000 or a code from 3000 to 4999, not ' + code);
    }
    if (this.readyState !== 1) return;
    this.readyState = 2;
    act(['close', this.id, code === undefined ? 1000 : code, reason === undefined ? '' : String(reason)]);
  }

  subscribe(room) {
    act(['sub', this.id, roomName(room)]);
  }

  unsubscribe(room) {
    act(['unsub', this.id, roomName(room)]);
  }

  // To every other member of `room`.
  publish(room, data) {
    act(['pub', this.id, roomName(room), payload(data)]);
  }
}

const ws = {
  open: null,
  message: null,
  close: null,
  error: null,
  // To every member of `room` (null: every socket of the script), the sender included.
  broadcast(room, data) {
    act(['bcast', room === null || room === undefined ? null : roomName(room), payload(data)]);
  },
  connections() {
    return [...sockets.values()];
  },
};

// The handlers of the export form (module.exports = { fetch, websocket: { open, ... } }).
const setHandlers = (handlers) => {
  for (const name of HANDLERS) {
    const h = handlers ? handlers[name] : null;
    if (h !== undefined && h !== null && typeof h !== 'function') {
      throw new TypeError('websocket.' + name + ' is ' + typeof h + ', not a function');
    }
    ws[name] = h || null;
  }
};

const ended = (f) => respond(f, 204, '[]', undefined);

// A handler threw or rejected: ws.error hears of it, and the host closes the socket (1011).
const failed = (f, socket, e) => {
  if (typeof ws.error === 'function') {
    try {
      ws.error(socket, e);
    } catch (e2) {
      log('error', ['ws.error threw:', e2]);
    }
  }
  fail(f, e);
};

const socketEvent = (r, blobBuf) => {
  const e = r.ws;
  const kind = e[0];
  const id = e[2];
  let socket = sockets.get(id);
  if (kind === 'open') {
    socket = new WebSocketConnection(id, e[3], e[4]);
    sockets.set(id, socket);
  }
  const f = fromShape(FLIGHT, e[1], false, null, socket ? socket.metadata : undefined);
  enter(f);
  if (!socket) {
    ended(f);
    return;
  }
  let data;
  if (kind === 'message') {
    data = r.len === undefined ? e[3] : new Uint8Array(blobBuf || new ArrayBuffer(0), r.off, r.len);
  } else if (kind === 'close') {
    sockets.delete(id);
    socket.readyState = 3;
  }
  const h = ws[kind];
  if (typeof h !== 'function') {
    ended(f);
    return;
  }
  let v;
  try {
    v = kind === 'close' ? h(socket, e[3], e[4]) : h(socket, data);
  } catch (err) {
    failed(f, socket, err);
    return;
  }
  if (v !== null && typeof v === 'object' && typeof v.then === 'function') {
    v.then(() => ended(f), (err) => failed(f, socket, err));
  } else {
    ended(f);
  }
};

export { WebSocketConnection, out as socketActions, setHandlers, socketEvent, ws };
