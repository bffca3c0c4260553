// wexec's own cases for events, abort, Blob/File and streams, written for testharness so Node
// runs them too.

test(() => {
  const target = new EventTarget();
  const seen = [];
  const listener = (e) => seen.push(e.type + ':' + (e.target === target));
  target.addEventListener('ping', listener);
  target.addEventListener('ping', listener);
  target.addEventListener('ping', { handleEvent: () => seen.push('object') }, { once: true });
  const e = new CustomEvent('ping', { detail: 7, cancelable: true });
  assert_true(target.dispatchEvent(e));
  target.dispatchEvent(new Event('ping'));
  assert_array_equals(seen, ['ping:true', 'object', 'ping:true']);
  assert_equals(e.detail, 7);
  target.addEventListener('stop', (ev) => ev.preventDefault());
  assert_false(target.dispatchEvent(new Event('stop', { cancelable: true })));
}, 'EventTarget: listeners once each, once, handleEvent, preventDefault');

promise_test(async () => {
  const c = new AbortController();
  let fired = 0;
  c.signal.onabort = () => fired++;
  const any = AbortSignal.any([c.signal, new AbortController().signal]);
  c.abort('why');
  c.abort('again');
  assert_true(c.signal.aborted);
  assert_equals(c.signal.reason, 'why');
  assert_equals(fired, 1);
  assert_true(any.aborted);
  assert_equals(any.reason, 'why');
  assert_throws_exactly('why', () => c.signal.throwIfAborted());
  const t = AbortSignal.timeout(10);
  await new Promise((resolve) => t.addEventListener('abort', resolve));
  assert_equals(t.reason.name, 'TimeoutError');
  assert_equals(AbortSignal.abort().reason.name, 'AbortError');
  assert_throws_js(TypeError, () => new AbortSignal());
}, 'AbortController, AbortSignal.any, timeout and abort');

promise_test(async () => {
  const b = new Blob(['ab', new Uint8Array([99]), new Blob(['d'])], { type: 'Text/Plain' });
  assert_equals(b.size, 4);
  assert_equals(b.type, 'text/plain');
  assert_equals(await b.text(), 'abcd');
  assert_equals(await b.slice(1, -1).text(), 'bc');
  assert_equals(await b.slice(-2).text(), 'cd');
  const reader = b.stream().getReader();
  let n = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) n += r.value.length;
  assert_equals(n, 4);
  const f = new File(['x'], 'x.txt', { type: 'text/plain', lastModified: 42 });
  assert_true(f instanceof Blob);
  assert_equals(f.name, 'x.txt');
  assert_equals(f.lastModified, 42);
}, 'Blob parts, slice, stream; File');

promise_test(async () => {
  const written = [];
  const ws = new WritableStream({ write(chunk) { written.push(chunk); } }, new CountQueuingStrategy({ highWaterMark: 2 }));
  const doubled = new TransformStream({ transform(chunk, c) { c.enqueue(chunk * 2); } });
  await ReadableStream.from([1, 2, 3]).pipeThrough(doubled).pipeTo(ws);
  assert_array_equals(written, [2, 4, 6]);
  const [a, b] = ReadableStream.from(['x']).tee();
  assert_equals((await a.getReader().read()).value, 'x');
  assert_equals((await b.getReader().read()).value, 'x');
}, 'streams: pipeThrough, pipeTo, tee, queuing strategies');

promise_test(async () => {
  const rs = new ReadableStream({
    type: 'bytes',
    pull(c) {
      const view = c.byobRequest.view;
      view[0] = 42;
      c.byobRequest.respond(1);
      c.close();
    },
  });
  const reader = rs.getReader({ mode: 'byob' });
  const { value } = await reader.read(new Uint8Array(4));
  assert_equals(value.length, 1);
  assert_equals(value[0], 42);
}, 'byte streams with a BYOB reader');

promise_test(async () => {
  const c = new AbortController();
  const rs = new ReadableStream({ pull(ctl) { ctl.enqueue(1); } });
  const ws = new WritableStream({ write() { c.abort(new Error('enough')); } });
  await promise_rejects_js(null, Error, rs.pipeTo(ws, { signal: c.signal }));
}, 'pipeTo stops on an AbortSignal');
