// Operations: what a request asks the host to do, and how the host's answer settles it.

import { findIndex, push, splice } from './intrinsics.js';
import { state } from './state.js';
import { current, enter, finish } from './flight.js';
import { clearTimer, fireTimer } from '../host/timers.js';
import { uncaught } from '../handler/run.js';
import { socketEvent } from '../host/websocket.js';

const opsById = new Map(); // id -> {flight, resolve, reject} or {flight, timer}

// Requests list their operations for the host; code outside a request (a
// script's top level) has no host to wait on, so its operations never settle.
// `bytes` names the args that are references into the output blob (blob()).
const listOp = (rec, name, args, bytes) => {
  const id = state.nextId++;
  const f = current();
  rec.flight = f;
  if (!f || f.finished) return id;
  opsById.set(id, rec);
  f.pending++;
  push(state.ops || (state.ops = []), bytes ? { id, rid: f.rid, op: name, args, bytes } : { id, rid: f.rid, op: name, args });
  return id;
};

const dropOp = (id) => {
  const rec = opsById.get(id);
  if (!rec) return;
  opsById.delete(id);
  rec.flight.pending--;
  const i = state.ops ? findIndex(state.ops, (o) => o.id === id) : -1;
  if (i >= 0) splice(state.ops, i, 1);
  else push(state.cancel || (state.cancel = []), id);
};

const op = (name, args, bytes) =>
  new Promise((resolve, reject) => {
    listOp({ resolve, reject }, name, args === undefined ? {} : args, bytes);
  });

// Whether the op listed with `args` for request `rid` is still in this crossing's list, not yet
// handed to the host: until the crossing ends, what it asks may still change.
const unsent = (args, rid) => {
  const ops = state.ops;
  const i = ops ? findIndex(ops, (o) => o.args === args) : -1;
  return i >= 0 && ops[i].rid === rid;
};

const opError = (err) => {
  if (err !== null && typeof err === 'object') {
    const e = new Error(String(err.message || 'operation failed'));
    if (err.name) e.name = String(err.name);
    return e;
  }
  return new Error(String(err));
};

// The host gave up on a request (its time ran out, its client left): forget the flight, so
// nothing keeps it parked on operations that will never settle.
const abandon = (rid) => {
  for (const rec of opsById.values()) {
    if (rec.flight.rid === rid) {
      finish(rec.flight);
      return;
    }
  }
};

const settle = (r, blobBuf) => {
  if (r.end !== undefined) {
    abandon(r.end);
    return;
  }
  if (r.ws !== undefined) { // a WebSocket event: a request of its own
    socketEvent(r, blobBuf);
    return;
  }
  const rec = opsById.get(r.id);
  if (!rec) return;
  opsById.delete(r.id);
  rec.flight.pending--;
  enter(rec.flight);
  if (rec.timer) {
    if (r.ok) fireTimer(rec.timer);
    else { // the host refused it (a cap on pending operations): it never fires
      clearTimer(rec.timer);
      uncaught(opError(r.error));
    }
  } else if (r.ok) {
    let v = r.value;
    if (r.bytes && v) v = new Uint8Array(blobBuf || new ArrayBuffer(0), v.off, v.len);
    rec.resolve(v);
  } else {
    rec.reject(opError(r.error));
  }
};

export { dropOp, listOp, op, opsById, settle, unsent };
