// The echo of benches/ws_load.py on Cloudflare's workerd: a text message comes back as it was.
// Plain HTTP answers the hello the bench polls until the server is up. There is no fan-out row:
// a Worker may not send on a socket another request accepted (that takes a Durable Object).
export default {
  fetch(request) {
    if (request.headers.get('Upgrade') !== 'websocket') {
      return Response.json({ message: 'hello' });
    }
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', (event) => server.send(event.data));
    server.addEventListener('close', (event) => server.close(event.code, event.reason));
    return new Response(null, { status: 101, webSocket: client });
  },
};
