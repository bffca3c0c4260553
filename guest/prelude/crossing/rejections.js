// Unhandled promise rejections, logged when a crossing ends, as Node warns of them.

import { current } from './flight.js';
import { log } from '../lib/console.js';

// A rejection still unhandled when the crossing ends is logged, like Node's warning.

const unhandled = new Map(); // promise -> [reason, flight]

const rejection = (promise, reason, handled) => {
  if (handled) unhandled.delete(promise);
  else unhandled.set(promise, [reason, current()]);
};

const reportUnhandled = () => {
  for (const [reason, f] of unhandled.values()) {
    log('error', ['Unhandled promise rejection:', reason], f ? f.rid : 0);
  }
  unhandled.clear();
};

export { rejection, reportUnhandled, unhandled };
