// @mode worker
// @websocket
// @description A live counter: POST /live adds one and every connected page sees it at once.

let count = 0;

export default {
  fetch(req: { method: string }) {
    if (req.method === 'POST') {
      count += 1;
      ws.broadcast(null, String(count));
    }
    return { count, watching: ws.connections().length };
  },
  websocket: {
    open(socket: WexecSocket) {
      socket.send(String(count));
    },
  },
};
