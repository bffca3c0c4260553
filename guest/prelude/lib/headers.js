// Headers (Fetch Standard): a header list of [lower-case name, value] pairs, each name and value
// checked; read back sorted and combined, except Set-Cookie, whose values stay apart (and go
// out as separate header lines: handler/run.js sends the list as it is, wirePairs()).
//
// Every Response a handler returns makes one, so the common case costs one native regular
// expression test per name and per value (a loop over the characters costs more in the guest's
// interpreter); the messages of the rare failures are worked out after.

const LOWER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// No leading or trailing HTTP whitespace, no NUL, CR or LF, nothing above U+00FF.
const PLAIN_VALUE = /^(?:[^\0\t\n\r \u0100-\uffff](?:[^\0\n\r\u0100-\uffff]*[^\0\t\n\r \u0100-\uffff])?)?$/;
const EDGE_SPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

const show = (s) => JSON.stringify(s.slice(0, 80));
const ABOVE_BYTE = /[\u0100-\uffff]/;

const checkName = (name) => {
  const s = typeof name === 'string' ? name : String(name);
  if (LOWER_TOKEN.test(s)) return s;
  if (TOKEN.test(s)) return s.toLowerCase();
  // A ByteString (WebIDL) has no code unit above 0xFF: a TypeError, like any other bad name.
  if (ABOVE_BYTE.test(s)) throw new TypeError('Header name has a character above U+00FF: ' + show(s));
  throw new TypeError('Invalid header name: ' + show(s));
};

const checkValue = (value) => {
  const s = typeof value === 'string' ? value : String(value);
  if (PLAIN_VALUE.test(s)) return s;
  if (ABOVE_BYTE.test(s)) throw new TypeError('Header value has a character above U+00FF: ' + show(s));
  const t = s.replace(EDGE_SPACE, '');
  if (/[\0\r\n]/.test(t)) throw new TypeError('Invalid header value (NUL, CR or LF): ' + show(s));
  return t;
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
  #writable() {
    if (this.#guard === 'immutable') throw new TypeError('Headers are immutable');
    this.#sorted = null;
    return this.#list;
  }
  append(name, value) {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'append' on 'Headers': 2 arguments required.");
    this.#append(name, value);
  }
  #append(name, value) {
    const n = checkName(name), v = checkValue(value);
    this.#writable().push([n, v]);
  }
  set(name, value) {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'set' on 'Headers': 2 arguments required.");
    const n = checkName(name), v = checkValue(value);
    const list = this.#writable();
    let first = -1;
    for (let i = 0; i < list.length; i++) {
      if (list[i][0] === n) {
        first = i;
        break;
      }
    }
    if (first < 0) {
      list.push([n, v]);
      return;
    }
    list[first] = [n, v];
    for (let i = list.length - 1; i > first; i--) if (list[i][0] === n) list.splice(i, 1);
  }
  delete(name) {
    const n = checkName(name);
    const list = this.#writable();
    for (let i = list.length - 1; i >= 0; i--) if (list[i][0] === n) list.splice(i, 1);
  }
  get(name) {
    const n = checkName(name);
    const list = this.#list;
    let out = null;
    for (let i = 0; i < list.length; i++) if (list[i][0] === n) out = out === null ? list[i][1] : out + ', ' + list[i][1];
    return out;
  }
  has(name) {
    const n = checkName(name);
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i][0] === n) return true;
    return false;
  }
  getSetCookie() {
    const values = [];
    for (const p of this.#list) if (p[0] === 'set-cookie') values.push(p[1]);
    return values;
  }
  forEach(fn, thisArg) {
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
    if (self.#sorted) return self.#sorted;
    const list = self.#list;
    if (list.length <= 1) return (self.#sorted = list.map((p) => [p[0], p[1]]));
    const names = [...new Set(list.map((p) => p[0]))].sort();
    const out = [];
    for (const n of names) {
      if (n === 'set-cookie') {
        for (const p of list) if (p[0] === n) out.push([n, p[1]]);
      } else {
        out.push([n, self.get(n)]);
      }
    }
    return (self.#sorted = out);
  }
  // What goes on the wire: the header list itself, each pair a header line in the order set. A
  // field sent as several lines means what its combined value means (RFC 9110, 5.3), and
  // Set-Cookie must be several lines; sorting and combining would only cost the request time.
  static wire(self) { return self.#list; }
  static guard(self, guard) { self.#guard = guard; }
  static appendChecked(self, name, value) { self.#append(name, value); }
  // For the Response and Request constructors: a name and value known to be valid.
  static appendTrusted(self, name, value) {
    self.#sorted = null;
    self.#list.push([name, value]);
  }
  // A Headers guarded as `guard` over `list`, pairs the host already checked (lower-case
  // names, values as checkValue leaves them), taken as they are: fetch()'s answers.
  static ofChecked(list, guard) {
    const h = new Headers();
    h.#list = list;
    h.#guard = guard;
    return h;
  }
  static hasTrusted(self, name) {
    const list = self.#list;
    for (let i = 0; i < list.length; i++) if (list[i][0] === name) return true;
    return false;
  }
}
const { pairs, wire, guard, appendTrusted, appendChecked, hasTrusted, ofChecked } = Headers;
for (const k of ['pairs', 'wire', 'guard', 'appendTrusted', 'appendChecked', 'hasTrusted', 'ofChecked']) delete Headers[k];

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
      const p = Array.isArray(pair) ? pair : [...pair];
      if (p.length !== 2) throw new TypeError('Headers init: a header pair has ' + p.length + ' items, not 2');
      appendChecked(h, p[0], p[1]);
    }
    return;
  }
  for (const key of Reflect.ownKeys(init)) {
    const d = Reflect.getOwnPropertyDescriptor(init, key);
    if (d === undefined || !d.enumerable) continue;
    if (typeof key === 'symbol') throw new TypeError('Headers init: a header name cannot be a Symbol');
    appendChecked(h, key, init[key]);
  }
}

const ITER = Symbol('headers iterator');
const HeadersIterator = Object.create(Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())), {
  next: {
    value: function next() {
      const s = this !== null && typeof this === 'object' ? this[ITER] : undefined;
      if (s === undefined) throw new TypeError('Illegal invocation: not a Headers iterator');
      const list = pairs(s.headers);
      if (s.index >= list.length) return { value: undefined, done: true };
      const [k, v] = list[s.index++];
      return { value: s.kind === 'keys' ? k : s.kind === 'values' ? v : [k, v], done: false };
    },
    writable: true, configurable: true, enumerable: true,
  },
  [Symbol.toStringTag]: { value: 'Headers Iterator', configurable: true },
});
const iterate = (headers, kind) => {
  pairs(headers);
  const it = Object.create(HeadersIterator);
  Object.defineProperty(it, ITER, { value: { headers, kind, index: 0 } });
  return it;
};
Object.defineProperty(Headers.prototype, Symbol.toStringTag, { value: 'Headers', configurable: true });

export { Headers, appendTrusted, guard as guardHeaders, hasTrusted, ofChecked as checkedHeaders, pairs as headerPairs, wire as wirePairs };
