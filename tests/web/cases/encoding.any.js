// wexec's own cases for TextEncoder/TextDecoder, written for testharness so Node runs them too.

const bytes = (...b) => new Uint8Array(b);

test(() => {
  const d = new TextDecoder();
  let out = '';
  for (const b of [0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x92, 0xa9]) out += d.decode(bytes(b), { stream: true });
  assert_equals(out + d.decode(), '\u20ac\u{1f4a9}');
}, 'a character split across streamed chunks is decoded whole');

test(() => {
  const d = new TextDecoder();
  assert_equals(d.decode(bytes(0xf0, 0x9f), { stream: true }), '');
  assert_equals(d.decode(), '\ufffd');
}, 'an incomplete sequence at the end of the stream is one U+FFFD');

test(() => {
  assert_equals(new TextDecoder().decode(bytes(0x61, 0xe0, 0x41, 0xed, 0xa0, 0x80, 0xff)), 'a\ufffdA\ufffd\ufffd\ufffd\ufffd');
}, 'invalid UTF-8 is replaced per maximal subpart');

test(() => {
  assert_throws_js(TypeError, () => new TextDecoder('utf-8', { fatal: true }).decode(bytes(0xc3)));
  assert_throws_js(TypeError, () => new TextDecoder('utf-16le', { fatal: true }).decode(bytes(0x00, 0xd8)));
  assert_equals(new TextDecoder('utf-8', { fatal: true }).decode(bytes(0xc3, 0xa9)), '\u00e9');
}, 'fatal decoders throw a TypeError on malformed input');

test(() => {
  const bom = bytes(0xef, 0xbb, 0xbf, 0x61);
  assert_equals(new TextDecoder().decode(bom), 'a');
  assert_equals(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bom), '\ufeffa');
  const d = new TextDecoder();
  assert_equals(d.decode(bytes(0xef, 0xbb), { stream: true }) + d.decode(bytes(0xbf, 0x62)), 'b');
  assert_equals(d.decode(bom), 'a', 'the BOM is looked for again after the stream ended');
}, 'a leading BOM is dropped unless ignoreBOM, also when streamed in pieces');

test(() => {
  assert_equals(new TextDecoder('utf-16le').decode(bytes(0x3d, 0xd8, 0xa9, 0xdc, 0x41, 0x00)), '\u{1f4a9}A');
  assert_equals(new TextDecoder('utf-16be').decode(bytes(0xd8, 0x3d, 0xdc, 0xa9)), '\u{1f4a9}');
  assert_equals(new TextDecoder('utf-16').encoding, 'utf-16le');
  const d = new TextDecoder('utf-16le');
  assert_equals(d.decode(bytes(0x3d), { stream: true }) + d.decode(bytes(0xd8, 0xa9), { stream: true }) + d.decode(bytes(0xdc)), '\u{1f4a9}');
  assert_equals(new TextDecoder('utf-16le').decode(bytes(0x41, 0x00, 0x42)), 'A\ufffd');
}, 'UTF-16LE and UTF-16BE decode, streamed surrogate pairs too');

test(() => {
  const labels = { latin1: 'windows-1252', 'ISO-8859-2': 'iso-8859-2', ' koi8-r\n': 'koi8-r', mac: 'macintosh',
    cp1251: 'windows-1251', 'x-user-defined': 'x-user-defined', 'unicode-1-1-utf-8': 'utf-8', 'utf-16be': 'utf-16be' };
  for (const [label, name] of Object.entries(labels)) assert_equals(new TextDecoder(label).encoding, name, label);
  assert_throws_js(RangeError, () => new TextDecoder('iso-2022-kr'), 'the replacement encoding');
  assert_throws_js(RangeError, () => new TextDecoder('no-such-encoding'));
}, 'labels resolve to their encoding, with whitespace and case ignored');

test(() => {
  assert_equals(new TextDecoder('windows-1252').decode(bytes(0x80, 0x9f, 0xe9)), '\u20ac\u0178\u00e9');
  assert_equals(new TextDecoder('koi8-r').decode(bytes(0xc1, 0xc2)), '\u0430\u0431');
  assert_equals(new TextDecoder('iso-8859-7').decode(bytes(0xe1)), '\u03b1');
  assert_equals(new TextDecoder('windows-1253').decode(bytes(0xaa)), '\ufffd');
  assert_throws_js(TypeError, () => new TextDecoder('windows-1253', { fatal: true }).decode(bytes(0xaa)));
}, 'single-byte encodings decode from their index');

test(() => {
  assert_equals(new TextEncoder().encode('a\ud800b').join(), '97,239,191,189,98');
  assert_equals(new TextEncoder().encode('\udc00').join(), '239,191,189');
  const dest = new Uint8Array(5);
  const r = new TextEncoder().encodeInto('a\u00e9\u20ac', dest);
  assert_equals(r.read, 2);
  assert_equals(r.written, 3);
  assert_equals(dest.join(), '97,195,169,0,0');
}, 'TextEncoder replaces lone surrogates, and encodeInto writes only whole characters');

promise_test(async () => {
  const chunks = [];
  const ts = new TextEncoderStream();
  const writer = ts.writable.getWriter();
  writer.write('\ud83d');
  writer.write('\udca9!');
  writer.close();
  for await (const c of ts.readable) chunks.push(...c);
  assert_equals(chunks.join(), '240,159,146,169,33');
}, 'TextEncoderStream joins a surrogate pair split across chunks');

promise_test(async () => {
  const source = new ReadableStream({
    start(c) {
      c.enqueue(bytes(0xe2));
      c.enqueue(bytes(0x82, 0xac));
      c.close();
    },
  });
  let out = '';
  for await (const s of source.pipeThrough(new TextDecoderStream())) out += s;
  assert_equals(out, '\u20ac');
}, 'TextDecoderStream decodes a character split across chunks');
