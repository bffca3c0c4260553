// The guest half of runtime/host/streams.py: a host stream's handle as a ReadableStream of
// Uint8Array chunks. Each pull is one 'streams.read' op, made only when the script reads
// (highWaterMark 0: nothing is read ahead); cancelling the stream is 'streams.cancel'.

import { op } from '../crossing/ops.js';
import { ReadableStream } from '../lib/streams.js';

const hostStream = (handle) => {
  let open = true;
  return new ReadableStream({
    pull(controller) {
      return op('streams.read', { handle }).then((chunk) => {
        if (chunk === null) {
          open = false;
          controller.close();
        } else {
          controller.enqueue(chunk);
        }
      }, (e) => {
        open = false;
        throw e;
      });
    },
    cancel() {
      if (!open) return undefined;
      open = false;
      return op('streams.cancel', { handle });
    },
  }, { highWaterMark: 0 });
};

export { hostStream };
