// URL and URLSearchParams (the WHATWG URL Standard), and the query parser requests use.
//
// URL stands on ada, the parser Node uses (guest/shim/url.c): a URL is its href and the offsets
// of its components, which one native call returns after each parse or setter; the getters
// slice the href. URLSearchParams is plain JS: the form-urlencoded parser and serialiser.

import { UTF8, UTF8_FATAL, W } from '../natives.js';

// What the url natives return: [href, then the offsets of ada_url_components], -1 marking an
// absent port, search or hash; HOST_BEGIN is past the '@' that ends credentials, if any.
const HREF_ = 0, PROTOCOL_END = 1, USERNAME_END = 2, HOST_BEGIN = 3, HOST_END = 4, PORT_ = 5,
  PATHNAME_START = 6, SEARCH_START = 7, HASH_START = 8;
// The fields urlSet edits, in the order of the URL_* enum of guest/shim/url.c.
const HREF = 0, PROTOCOL = 1, USERNAME = 2, PASSWORD = 3, HOST = 4, HOSTNAME = 5, PORT = 6,
  PATHNAME = 7, SEARCH = 8, HASH = 9;
const SPECIAL_ORIGIN = new Set(['http:', 'https:', 'ws:', 'wss:', 'ftp:']);
const INSPECT_CUSTOM = Symbol.for('nodejs.util.inspect.custom');
const URL_SHOWN = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname',
  'search', 'searchParams', 'hash'];

const quote = (s) => JSON.stringify(s.length > 200 ? s.slice(0, 200) + '...' : s);

const invalidURL = (input, base) => {
  const e = new TypeError(`Invalid URL: ${quote(input)}` + (base === undefined ? '' : ` against base ${quote(base)}`));
  e.code = 'ERR_INVALID_URL';
  e.input = input;
  if (base !== undefined) e.base = base;
  return e;
};

const needArgs = (name, given, want) => {
  if (given < want) throw new TypeError(`${name} requires ${want} argument${want > 1 ? 's' : ''}, ${given} given`);
};

let resetParams; // (params, query): the query object's list parsed from a new query
let bindParams; // (params, url): a URL's own URLSearchParams, whose changes update it
let setQuery; // (url, serialized params): the URLSearchParams update steps

class URL {
  #c; // what the url natives returned
  #params; // searchParams, made on first use

  constructor(input, base = undefined) {
    input = `${input}`;
    if (base !== undefined) base = `${base}`;
    const c = W.urlParse(input, base);
    if (c === null) throw invalidURL(input, base);
    this.#c = c;
  }

  // Runs ada's setter of `field`; a value the setter refuses leaves the URL as it was.
  #set(field, value) {
    const c = W.urlSet(this.#c[HREF_], field, `${value}`);
    if (c !== null) this.#c = c;
    return c !== null;
  }

  static {
    setQuery = (url, query) => {
      url.#set(SEARCH, query);
    };
  }

  get href() { return this.#c[HREF_]; }
  set href(value) {
    value = `${value}`;
    if (!this.#set(HREF, value)) throw invalidURL(value);
    if (this.#params) resetParams(this.#params, this.search);
  }

  get origin() {
    const protocol = this.protocol;
    if (SPECIAL_ORIGIN.has(protocol)) return protocol + '//' + this.host;
    if (protocol !== 'blob:') return 'null';
    const inner = URL.parse(this.pathname);
    return inner && (inner.protocol === 'http:' || inner.protocol === 'https:') ? inner.origin : 'null';
  }

  get protocol() { return this.#c[HREF_].slice(0, this.#c[PROTOCOL_END]); }
  set protocol(value) { this.#set(PROTOCOL, value); }

  get username() {
    const c = this.#c;
    const start = c[PROTOCOL_END] + 2;
    return start < c[USERNAME_END] ? c[HREF_].slice(start, c[USERNAME_END]) : '';
  }
  set username(value) { this.#set(USERNAME, value); }

  get password() {
    const c = this.#c;
    const at = c[HOST_BEGIN] - 1; // the '@' after a password
    return at > c[USERNAME_END] ? c[HREF_].slice(c[USERNAME_END] + 1, at) : '';
  }
  set password(value) { this.#set(PASSWORD, value); }

  get host() {
    const c = this.#c;
    return c[HOST_BEGIN] === c[HOST_END] ? '' : c[HREF_].slice(c[HOST_BEGIN], c[PATHNAME_START]);
  }
  set host(value) { this.#set(HOST, value); }

  get hostname() { return this.#c[HREF_].slice(this.#c[HOST_BEGIN], this.#c[HOST_END]); }
  set hostname(value) { this.#set(HOSTNAME, value); }

  get port() {
    const c = this.#c;
    return c[PORT_] === -1 ? '' : c[HREF_].slice(c[HOST_END] + 1, c[PATHNAME_START]);
  }
  set port(value) { this.#set(PORT, value); }

  get pathname() {
    const c = this.#c;
    const end = c[SEARCH_START] !== -1 ? c[SEARCH_START] : c[HASH_START] !== -1 ? c[HASH_START] : c[HREF_].length;
    return c[HREF_].slice(c[PATHNAME_START], end);
  }
  set pathname(value) { this.#set(PATHNAME, value); }

  get search() {
    const c = this.#c;
    const start = c[SEARCH_START];
    if (start === -1) return '';
    const end = c[HASH_START] !== -1 ? c[HASH_START] : c[HREF_].length;
    return end - start > 1 ? c[HREF_].slice(start, end) : '';
  }
  set search(value) {
    this.#set(SEARCH, value);
    if (this.#params) resetParams(this.#params, this.search);
  }

  get searchParams() {
    if (this.#params === undefined) {
      this.#params = new URLSearchParams(this.search);
      bindParams(this.#params, this);
    }
    return this.#params;
  }

  get hash() {
    const c = this.#c;
    const start = c[HASH_START];
    return start !== -1 && c[HREF_].length - start > 1 ? c[HREF_].slice(start) : '';
  }
  set hash(value) { this.#set(HASH, value); }

  toString() { return this.#c[HREF_]; }
  toJSON() { return this.#c[HREF_]; }

  // console.log and util.inspect show the components, as Node does.
  [INSPECT_CUSTOM](depth, options, inspect) {
    const shown = {};
    for (const key of URL_SHOWN) shown[key] = this[key];
    return depth < 0 ? '[URL]' : 'URL ' + inspect(shown, { depth });
  }

  static canParse(input, base = undefined) {
    needArgs("Failed to execute 'canParse' on 'URL'", arguments.length, 1);
    return W.urlCanParse(`${input}`, base === undefined ? undefined : `${base}`);
  }

  static parse(input, base = undefined) {
    needArgs("Failed to execute 'parse' on 'URL'", arguments.length, 1);
    try {
      return new URL(input, base);
    } catch {
      return null;
    }
  }
}

// application/x-www-form-urlencoded (URL Standard §5): the parser and the serialiser.

const PLUS = /\+/g;

// The Encoding Standard's UTF-8 decoder: one U+FFFD per maximal invalid subpart, no surrogate
// code points. For bytes the engine's decoder refuses, or reads as a lone surrogate.
const decodeUTF8 = (bytes) => {
  const units = [];
  let cp = 0, needed = 0, seen = 0, lower = 0x80, upper = 0xbf;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (needed === 0) {
      if (b <= 0x7f) units.push(b);
      else if (b >= 0xc2 && b <= 0xdf) { needed = 1; cp = b & 0x1f; }
      else if (b >= 0xe0 && b <= 0xef) {
        if (b === 0xe0) lower = 0xa0;
        else if (b === 0xed) upper = 0x9f;
        needed = 2;
        cp = b & 0xf;
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (b === 0xf0) lower = 0x90;
        else if (b === 0xf4) upper = 0x8f;
        needed = 3;
        cp = b & 0x7;
      } else units.push(0xfffd);
      continue;
    }
    if (b < lower || b > upper) {
      cp = needed = seen = 0;
      lower = 0x80;
      upper = 0xbf;
      units.push(0xfffd);
      i--; // the byte is read again, as the start of what follows
      continue;
    }
    lower = 0x80;
    upper = 0xbf;
    cp = (cp << 6) | (b & 0x3f);
    if (++seen === needed) {
      if (cp > 0xffff) units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
      else units.push(cp);
      cp = needed = seen = 0;
    }
  }
  if (needed) units.push(0xfffd);
  let out = '';
  for (let i = 0; i < units.length; i += 8192) out += String.fromCharCode(...units.slice(i, i + 8192));
  return out;
};

// Percent-decodes s (with '+' as space) and reads the bytes as UTF-8, U+FFFD for what is not.
const formDecode = (s) => {
  if (s.includes('+')) s = s.replace(PLUS, ' ');
  if (!s.includes('%')) return s.toWellFormed();
  const bytes = new Uint8Array(W.encode(s, UTF8));
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x25 && i + 2 < bytes.length && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
      bytes[n++] = hexValue(bytes[i + 1]) * 16 + hexValue(bytes[i + 2]);
      i += 2;
    } else {
      bytes[n++] = b;
    }
  }
  const decoded = bytes.subarray(0, n);
  try {
    const text = W.decode(decoded, UTF8_FATAL);
    if (text.isWellFormed()) return text;
  } catch {}
  return decodeUTF8(decoded);
};

const isHex = (b) => (b >= 0x30 && b <= 0x39) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66);
const hexValue = (b) => (b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x57);

// The list of name-value pairs of a query (a leading '?' is the caller's to strip).
const parseQuery = (s) => {
  const list = [];
  if (!s) return list;
  for (const part of s.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    list.push(eq >= 0 ? [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))] : [formDecode(part), '']);
  }
  return list;
};

const FORM_SAFE = /^[A-Za-z0-9*\-._]*$/;
const FORM_ESCAPE = /[!'()~]|%20/g;
const escapeChar = (c) => (c === '%20' ? '+' : '%' + c.charCodeAt(0).toString(16).toUpperCase());

const formEncode = (s) =>
  FORM_SAFE.test(s) ? s : encodeURIComponent(s.toWellFormed()).replace(FORM_ESCAPE, escapeChar);

class URLSearchParams {
  #list = [];
  #url = null;

  constructor(init = '') {
    if (init !== null && (typeof init === 'object' || typeof init === 'function')) {
      const iterator = init[Symbol.iterator];
      if (iterator !== undefined && iterator !== null) {
        if (typeof iterator !== 'function') throw new TypeError("Failed to construct 'URLSearchParams': the init's @@iterator is not a function");
        for (const pair of init) {
          if (pair === null || (typeof pair !== 'object' && typeof pair !== 'function') || typeof pair[Symbol.iterator] !== 'function') {
            throw new TypeError("Failed to construct 'URLSearchParams': each pair must be an iterable [name, value]");
          }
          const p = Array.from(pair);
          if (p.length !== 2) throw new TypeError("Failed to construct 'URLSearchParams': each pair must have exactly two items, [name, value]");
          this.#list.push([`${p[0]}`.toWellFormed(), `${p[1]}`.toWellFormed()]);
        }
      } else {
        for (const key of Reflect.ownKeys(init)) {
          if (typeof key !== 'string') continue;
          const d = Reflect.getOwnPropertyDescriptor(init, key);
          if (d === undefined || !d.enumerable) continue;
          this.#list.push([key.toWellFormed(), `${init[key]}`.toWellFormed()]);
        }
      }
    } else {
      const s = `${init}`;
      this.#list = parseQuery(s.charCodeAt(0) === 0x3f ? s.slice(1) : s);
    }
  }

  static {
    resetParams = (params, query) => {
      params.#list = parseQuery(query.slice(1));
    };
    bindParams = (params, url) => {
      params.#url = url;
    };
  }

  // The update steps: the URL this object belongs to takes its serialisation as its query.
  #update() {
    if (this.#url !== null) setQuery(this.#url, this.toString());
  }

  get size() { return this.#list.length; }

  append(name, value) {
    needArgs("Failed to execute 'append' on 'URLSearchParams'", arguments.length, 2);
    this.#list.push([`${name}`.toWellFormed(), `${value}`.toWellFormed()]);
    this.#update();
  }

  delete(name, value = undefined) {
    needArgs("Failed to execute 'delete' on 'URLSearchParams'", arguments.length, 1);
    name = `${name}`.toWellFormed();
    if (value !== undefined) value = `${value}`.toWellFormed();
    const list = this.#list;
    let n = 0;
    for (let i = 0; i < list.length; i++) {
      const p = list[i];
      if (p[0] !== name || (value !== undefined && p[1] !== value)) list[n++] = p;
    }
    list.length = n;
    this.#update();
  }

  get(name) {
    needArgs("Failed to execute 'get' on 'URLSearchParams'", arguments.length, 1);
    name = `${name}`.toWellFormed();
    for (const p of this.#list) if (p[0] === name) return p[1];
    return null;
  }

  getAll(name) {
    needArgs("Failed to execute 'getAll' on 'URLSearchParams'", arguments.length, 1);
    name = `${name}`.toWellFormed();
    const out = [];
    for (const p of this.#list) if (p[0] === name) out.push(p[1]);
    return out;
  }

  has(name, value = undefined) {
    needArgs("Failed to execute 'has' on 'URLSearchParams'", arguments.length, 1);
    name = `${name}`.toWellFormed();
    if (value !== undefined) value = `${value}`.toWellFormed();
    for (const p of this.#list) if (p[0] === name && (value === undefined || p[1] === value)) return true;
    return false;
  }

  set(name, value) {
    needArgs("Failed to execute 'set' on 'URLSearchParams'", arguments.length, 2);
    name = `${name}`.toWellFormed();
    value = `${value}`.toWellFormed();
    const list = this.#list;
    let n = 0, found = false;
    for (let i = 0; i < list.length; i++) {
      const p = list[i];
      if (p[0] !== name) list[n++] = p;
      else if (!found) {
        found = true;
        p[1] = value;
        list[n++] = p;
      }
    }
    list.length = n;
    if (!found) list.push([name, value]);
    this.#update();
  }

  // Stable, by the names' UTF-16 code units (Array.prototype.sort is stable).
  sort() {
    this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.#update();
  }

  forEach(callback, thisArg = undefined) {
    needArgs("Failed to execute 'forEach' on 'URLSearchParams'", arguments.length, 1);
    if (typeof callback !== 'function') throw new TypeError("Failed to execute 'forEach' on 'URLSearchParams': the callback is not a function");
    const list = this.#list;
    for (let i = 0; i < list.length; i++) callback.call(thisArg, list[i][1], list[i][0], this);
  }

  // The iterators are live, as the standard's are: they see pairs added or removed meanwhile.
  *keys() { const list = this.#list; for (let i = 0; i < list.length; i++) yield list[i][0]; }
  *values() { const list = this.#list; for (let i = 0; i < list.length; i++) yield list[i][1]; }
  *entries() { const list = this.#list; for (let i = 0; i < list.length; i++) yield [list[i][0], list[i][1]]; }
  [Symbol.iterator]() { return this.entries(); }

  [INSPECT_CUSTOM](depth) {
    if (depth < 0) return '[URLSearchParams]';
    const shown = (s) => "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
    const pairs = this.#list.map(([name, value]) => shown(name) + ' => ' + shown(value));
    return pairs.length ? 'URLSearchParams { ' + pairs.join(', ') + ' }' : 'URLSearchParams {}';
  }

  toString() {
    let out = '';
    for (const [name, value] of this.#list) out += (out ? '&' : '') + formEncode(name) + '=' + formEncode(value);
    return out;
  }
}

// WebIDL members are enumerable; the class syntax makes them not.
for (const C of [URL, URLSearchParams]) {
  for (const key of Object.getOwnPropertyNames(C.prototype)) {
    if (key !== 'constructor') Object.defineProperty(C.prototype, key, { enumerable: true });
  }
  Object.defineProperty(C.prototype, Symbol.toStringTag, { value: C.name, configurable: true });
}

// url.domainToASCII and domainToUnicode (Node): the host parser of a special URL, '' for a
// domain it refuses.
const domainToASCII = (domain) => {
  const c = W.urlSet('ws://x', HOSTNAME, `${domain}`);
  return c === null ? '' : c[HREF_].slice(c[HOST_BEGIN], c[HOST_END]);
};
const domainToUnicode = (domain) => {
  const ascii = domainToASCII(domain);
  return ascii && W.domainToUnicode(ascii);
};

export { URL, URLSearchParams, domainToASCII, domainToUnicode, parseQuery };
