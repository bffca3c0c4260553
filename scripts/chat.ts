// @mode worker
// @websocket
// @description A chat server in one file: connect to ws://host/chat?room=lobby&name=ann; every message goes to the room.

ws.open = (socket) => {
  const room = String(socket.metadata.query.room || 'lobby');
  const name = String(socket.metadata.query.name || 'guest-' + socket.id.slice(-4));
  socket.data = { room, name };
  socket.subscribe(room);
  ws.broadcast(room, JSON.stringify({ type: 'join', name, room }));
};

ws.message = (socket, data) => {
  const { room, name } = socket.data;
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
  ws.broadcast(room, JSON.stringify({ type: 'message', name, text, at: new Date().toISOString() }));
};

ws.close = (socket) => {
  const { room, name } = socket.data;
  ws.broadcast(room, JSON.stringify({ type: 'leave', name, room }));
};

// Plain HTTP to the same route: who is connected, by room.
export default () => {
  const rooms: Record<string, string[]> = {};
  for (const socket of ws.connections()) (rooms[socket.data.room] ||= []).push(socket.data.name);
  return { rooms };
};
