// @description A page that uses the chat (/chat) and the live counter (/live) over WebSockets.

const page = `<!doctype html>
<meta charset="utf-8">
<title>wexec chat</title>
<p>Live counter: <b id="count">…</b> <button id="add">+1</button></p>
<form id="say"><input id="text" autocomplete="off" placeholder="say something"> <button>send</button></form>
<ul id="log"></ul>
<script>
const url = (path) => location.origin.replace(/^http/, 'ws') + path;
const room = new URLSearchParams(location.search).get('room') || 'lobby';
const chat = new WebSocket(url('/chat?room=' + encodeURIComponent(room)));
chat.onmessage = (e) => {
  const m = JSON.parse(e.data);
  const li = document.createElement('li');
  li.textContent = m.type === 'message' ? m.name + ': ' + m.text : m.name + ' ' + (m.type === 'join' ? 'joined' : 'left');
  document.getElementById('log').append(li);
};
document.getElementById('say').onsubmit = (e) => {
  e.preventDefault();
  chat.send(document.getElementById('text').value);
  document.getElementById('text').value = '';
};
const live = new WebSocket(url('/live'));
live.onmessage = (e) => { document.getElementById('count').textContent = e.data; };
document.getElementById('add').onclick = () => fetch('/live', { method: 'POST' });
</script>`;

return new Response(page, { headers: { 'content-type': 'text/html; charset=utf-8' } });
