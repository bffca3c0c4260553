// wexec's own cases for Headers, Request and Response, written for testharness so Node runs them too.

test(() => {
  assert_throws_js(TypeError, () => new Headers({ 'a b': 'x' }));
  assert_throws_js(TypeError, () => new Headers({ a: 'x\r\ny' }));
  assert_throws_js(TypeError, () => new Headers({ a: '\u0100' }));
  assert_throws_js(TypeError, () => new Headers([['a']]));
  const h = new Headers({ A: '  padded\t' });
  assert_equals(h.get('a'), 'padded');
}, 'Headers validates names and values and trims whitespace');

test(() => {
  const h = new Headers();
  h.append('Set-Cookie', 'a=1');
  h.append('set-cookie', 'b=2');
  h.append('Accept', 'x');
  h.append('accept', 'y');
  assert_array_equals(h.getSetCookie(), ['a=1', 'b=2']);
  assert_equals(h.get('set-cookie'), 'a=1, b=2');
  assert_equals(JSON.stringify([...h]), '[["accept","x, y"],["set-cookie","a=1"],["set-cookie","b=2"]]');
}, 'Set-Cookie values stay apart; other names are combined and sorted');

promise_test(async () => {
  const r = new Response('héllo', { status: 201, statusText: 'Created', headers: { 'X-A': '1' } });
  assert_equals(r.status, 201);
  assert_true(r.ok);
  assert_equals(r.headers.get('content-type'), 'text/plain;charset=UTF-8');
  assert_true(r.body instanceof ReadableStream);
  assert_false(r.bodyUsed);
  const c = r.clone();
  assert_equals(await r.text(), 'héllo');
  assert_true(r.bodyUsed);
  assert_equals(new TextDecoder().decode(await c.arrayBuffer()), 'héllo');
  await promise_rejects_js(null, TypeError, r.text());
}, 'Response body: read once as text, a clone reads its own copy');

promise_test(async () => {
  assert_equals(new Response().body, null);
  assert_equals(new Response(null, { status: 204 }).body, null);
  assert_throws_js(TypeError, () => new Response('x', { status: 204 }));
  assert_throws_js(RangeError, () => new Response('x', { status: 600 }));
  assert_equals(await new Response().text(), '');
}, 'Response without a body has a null body and reads as empty');

promise_test(async () => {
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode('{"a":'));
      c.enqueue(new TextEncoder().encode('1}'));
      c.close();
    },
  });
  const r = new Response(stream);
  assert_equals(r.body, stream);
  assert_equals((await r.json()).a, 1);
  assert_true(r.bodyUsed);
}, 'Response from a ReadableStream reads it whole');

promise_test(async () => {
  const r = new Response(new Blob(['ab'], { type: 'text/x-test' }));
  assert_equals(r.headers.get('content-type'), 'text/x-test');
  const blob = await r.blob();
  assert_equals(blob.size, 2);
  assert_equals(blob.type, 'text/x-test');
  const bytes = await new Response(new Uint8Array([1, 2, 3])).bytes();
  assert_true(bytes instanceof Uint8Array);
  assert_equals(bytes.join(), '1,2,3');
}, 'Blob and byte bodies');

promise_test(async () => {
  const form = new FormData();
  form.append('name', 'Zoë');
  form.append('file', new Blob(['data'], { type: 'text/plain' }), 'a.txt');
  const r = new Response(form);
  assert_true(r.headers.get('content-type').startsWith('multipart/form-data; boundary='));
  const back = await r.formData();
  assert_equals(back.get('name'), 'Zoë');
  assert_equals(back.get('file').name, 'a.txt');
  assert_equals(await back.get('file').text(), 'data');
  const url = await new Response(new URLSearchParams('a=1&b=2&a=3')).formData();
  assert_array_equals(url.getAll('a'), ['1', '3']);
}, 'FormData bodies go out as multipart and come back');

promise_test(async () => {
  const req = new Request('https://example.com/x', { method: 'post', body: 'hi', headers: { 'x-a': '1' } });
  assert_equals(req.method, 'POST');
  assert_equals(req.url, 'https://example.com/x');
  assert_equals(req.headers.get('content-type'), 'text/plain;charset=UTF-8');
  assert_true(req.signal instanceof AbortSignal);
  const copy = new Request(req, { headers: { 'x-b': '2' } });
  assert_equals(copy.headers.get('x-a'), null);
  assert_equals(await copy.text(), 'hi');
  assert_true(req.bodyUsed, 'the body moved to the new request');
  assert_equals(new Request('https://e.com', { method: 'patch' }).method, 'patch');
  assert_throws_js(TypeError, () => new Request('https://e.com', { method: 'CONNECT' }));
  assert_throws_js(TypeError, () => new Request('https://e.com', { body: 'x' }));
  assert_throws_js(TypeError, () => new Request('https://u:p@e.com'));
}, 'Request: method normalisation, body rules, a Request from a Request');

test(() => {
  const r = Response.redirect('https://example.com/next', 301);
  assert_equals(r.status, 301);
  assert_equals(r.headers.get('location'), 'https://example.com/next');
  assert_throws_js(TypeError, () => r.headers.set('x', 'y'));
  assert_throws_js(RangeError, () => Response.redirect('https://example.com/', 200));
  assert_equals(Response.error().type, 'error');
  assert_equals(Response.json({ a: 1 }).headers.get('content-type'), 'application/json');
}, 'Response.redirect, error and json');
