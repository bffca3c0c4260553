// Loading a script: evaluating its factory and keeping its handler.

import { exec, stringify } from './intrinsics.js';
import { state } from './state.js';
import { enter } from './flight.js';
import { errorInfo } from './errors.js';
import { isEmpty, process, require } from '../lib/node.js';
import { setHandlers } from '../host/websocket.js';

const errorJSON = (e) => {
  const info = errorInfo(e);
  const at = exec(/:(\d+):(\d+)\)?\s*$/m, info.stack);
  if (at) {
    info.line = Number(at[1]);
    info.col = Number(at[2]);
  }
  const out = { error: info };
  if (state.logs) out.logs = state.logs;
  state.logs = null;
  return stringify(out);
};

const noFetch = () => {
  throw new TypeError('this script exports no fetch handler: it answers WebSocket upgrades only');
};

// With keepLogs (a load and its first request in one crossing), success returns null and
// leaves what the top level logged for that request's flush.
const load = (h, factory, keepLogs) => {
  enter(null);
  state.handler = null;
  state.shared = null;
  state.script = h.filename;
  // A fresh instance keeps the snapshot's empty process.env when there is
  // nothing to put in it (the host leaves `env` out): a new object would copy the
  // page of `process`. An instance loading a second script (only tests do) starts
  // that one on a new object too.
  if (state.loaded || (h.env !== undefined && !isEmpty(h.env))) {
    process.env = Object.assign({}, h.env);
  }
  state.loaded = true;
  try {
    setHandlers(null);
    if (typeof factory !== 'function') throw new TypeError('the compiled script is not a module factory');
    const module = { exports: {}, id: h.filename, filename: h.filename, loaded: false, require };
    factory.call(module.exports, module, module.exports, require);
    module.loaded = true;
    const ex = module.exports;
    let fn = ex === null || ex === undefined ? ex : ex.default ?? ex;
    if (fn !== null && typeof fn === 'object' && ('fetch' in fn || 'websocket' in fn)) {
      setHandlers(fn.websocket); // the export form: { fetch(req, res), websocket: { open, ... } }
      fn = fn.fetch ?? noFetch;
    }
    if (typeof fn !== 'function') {
      throw new TypeError((h.filename || 'the script') + ' does not export a handler function (module.exports is '
        + (fn === null ? 'null' : typeof fn) + ')');
    }
    state.handler = fn;
    if (keepLogs) return null;
    const out = state.logs ? stringify({ logs: state.logs }) : '{}';
    state.logs = null;
    return out;
  } catch (e) {
    return errorJSON(e);
  }
};

export { errorJSON, load };
