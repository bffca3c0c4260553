// Headers (Fetch Standard): a header list of [lower-case name, value] pairs, each name and value
// checked; read back sorted and combined, except Set-Cookie, whose values stay apart (and go
// out as separate header lines: handler/run.js sends pairs()).

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INVALID_VALUE = /[\0\r\n]/;
const WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

// A ByteString (WebIDL): a TypeError for a code unit above 0xFF.
const byteString = (v, what) => {
  const s = String(v);
  if (!/^[\0-\xff]*$/.test(s)) throw new TypeError(what + ' has a character above U+00FF: ' + JSON.stringify(s.slice(0, 80)));
  return s;
};
const checkName = (name) => {
  const s = byteString(name, 'Header name');
  if (!TOKEN.test(s)) throw new TypeError('Invalid header name: ' + JSON.stringify(s.slice(0, 80)));
  return s.toLowerCase();
};
const checkValue = (value) => {
  const s = byteString(value, 'Header value').replace(WHITESPACE, '');
  if (INVALID_VALUE.test(s)) throw new TypeError('Invalid header value (NUL, CR or LF): ' + JSON.stringify(s.slice(0, 80)));
  return s;
};

// Guards: 'none' (a script's own Headers), 'immutable' (Response.error/redirect), 'request' and
// 'response' (a Request's or Response's). Forbidden request headers have no meaning in a
// server-side runtime, as in Node and Deno, so request guards check nothing more.
class Headers {
  #list = [];
  #guard = 'none';
  #sorted = null; // sort-and-combine of #list, until it changes

  constructor(init) {
    if (init !== undefined) fill(this, init);
  }
  static #of(self) {
    if (!(self !== null && typeof self === 'object' && #list in self)) throw new TypeError('Illegal invocation: not a Headers');
    return self;
  }
  static #writable(self) {
    const h = Headers.#of(self);
    if (h.#guard === 'immutable') throw new TypeError('Headers are immutable');
    h.#sorted = null;
    return h.#list;
  }
  append(name, value) {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'append' on 'Headers': 2 arguments required.");
    const n = checkName(name), v = checkValue(value);
    Headers.#writable(this).push([n, v]);
  }
  set(name, value) {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'set' on 'Headers': 2 arguments required.");
    const n = checkName(name), v = checkValue(value);
    const list = Headers.#writable(this);
    const first = list.findIndex((p) => p[0] === n);
    if (first < 0) {
      list.push([n, v]);
      return;
    }
    list[first] = [n, v];
    for (let i = list.length - 1; i > first; i--) if (list[i][0] === n) list.splice(i, 1);
  }
  delete(name) {
    const n = checkName(name);
    const list = Headers.#writable(this);
    for (let i = list.length - 1; i >= 0; i--) if (list[i][0] === n) list.splice(i, 1);
  }
  get(name) {
    const n = checkName(name);
    const values = [];
    for (const p of Headers.#of(this).#list) if (p[0] === n) values.push(p[1]);
    return values.length ? values.join(', ') : null;
  }
  has(name) {
    const n = checkName(name);
    return Headers.#of(this).#list.some((p) => p[0] === n);
  }
  getSetCookie() {
    const values = [];
    for (const p of Headers.#of(this).#list) if (p[0] === 'set-cookie') values.push(p[1]);
    return values;
  }
  forEach(fn, thisArg) {
    Headers.#of(this);
    if (typeof fn !== 'function') throw new TypeError("Failed to execute 'forEach' on 'Headers': parameter 1 is not a function.");
    for (let i = 0; i < pairs(this).length; i++) {
      const [k, v] = pairs(this)[i];
      fn.call(thisArg, v, k, this);
    }
  }
  entries() { return iterate(this, 'entries'); }
  keys() { return iterate(this, 'keys'); }
  values() { return iterate(this, 'values'); }
  [Symbol.iterator]() { return iterate(this, 'entries'); }

  // The sorted and combined pairs; what iteration and the response's header lines read.
  static pairs(self) {
    const h = Headers.#of(self);
    if (h.#sorted) return h.#sorted;
    const names = [...new Set(h.#list.map((p) => p[0]))].sort();
    const out = [];
    for (const n of names) {
      if (n === 'set-cookie') {
        for (const p of h.#list) if (p[0] === n) out.push([n, p[1]]);
      } else {
        out.push([n, self.get(n)]);
      }
    }
    return (h.#sorted = out);
  }
  static guard(self, guard) { Headers.#of(self).#guard = guard; }
}
const { pairs, guard } = Headers;
delete Headers.pairs;
delete Headers.guard;

// Fills h from a HeadersInit: a sequence of pairs (a Headers is one) or a record.
function fill(h, init) {
  if (init === null || (typeof init !== 'object' && typeof init !== 'function')) {
    throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.");
  }
  const iter = init[Symbol.iterator];
  if (iter !== undefined && iter !== null) {
    if (typeof iter !== 'function') throw new TypeError('Headers init: @@iterator is not a function');
    for (const pair of init) {
      if (pair === null || typeof pair !== 'object' || typeof pair[Symbol.iterator] !== 'function') {
        throw new TypeError('Headers init: each header must be a [name, value] pair');
      }
      const p = [...pair];
      if (p.length !== 2) throw new TypeError('Headers init: a header pair has ' + p.length + ' items, not 2');
      h.append(p[0], p[1]);
    }
    return;
  }
  for (const key of Reflect.ownKeys(init)) {
    const d = Reflect.getOwnPropertyDescriptor(init, key);
    if (d === undefined || !d.enumerable) continue;
    if (typeof key === 'symbol') throw new TypeError('Headers init: a header name cannot be a Symbol');
    h.append(key, init[key]);
  }
}

const HeadersIterator = Object.create(Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())), {
  next: {
    value: function next() {
      const it = this;
      if (!it || !(ITER in it)) throw new TypeError('Illegal invocation: not a Headers iterator');
      const s = it[ITER];
      const list = pairs(s.headers);
      if (s.index >= list.length) return { value: undefined, done: true };
      const [k, v] = list[s.index++];
      return { value: s.kind === 'keys' ? k : s.kind === 'values' ? v : [k, v], done: false };
    },
    writable: true, configurable: true, enumerable: true,
  },
  [Symbol.toStringTag]: { value: 'Headers Iterator', configurable: true },
});
const ITER = Symbol('headers iterator');
const iterate = (headers, kind) => {
  pairs(headers);
  const it = Object.create(HeadersIterator);
  Object.defineProperty(it, ITER, { value: { headers, kind, index: 0 } });
  return it;
};
Object.defineProperty(Headers.prototype, Symbol.toStringTag, { value: 'Headers', configurable: true });

export { Headers, guard as guardHeaders, pairs as headerPairs };
