// URL and URLSearchParams (WHATWG), and the query parser requests use.

import { UTF8, W } from '../natives.js';
import { HEXBYTE } from './encoding.js';

const SPECIAL = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443', 'ftp:': '21', 'file:': '' };

const pctEncode = (s, keep) => {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (c > 0x20 && c < 0x7f && !keep.includes(ch)) out += ch;
    else if (c <= 0x7f) out += '%' + HEXBYTE[c].toUpperCase();
    else for (const byte of new Uint8Array(W.encode(ch, UTF8))) out += '%' + HEXBYTE[byte].toUpperCase();
  }
  return out;
};

const PATH_ESC = ' "#<>?`{}';
const QUERY_ESC = ' "#<>';
const FRAG_ESC = ' "<>`';
const USER_ESC = ' "#<>?`{}/:;=@[\\]^|';

const removeDots = (path) => {
  const out = [];
  const segs = path.split('/');
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    const last = i === segs.length - 1;
    if (s === '..' || s.toLowerCase() === '%2e%2e') {
      if (out.length > 1) out.pop();
      if (last) out.push('');
    } else if (s === '.' || s.toLowerCase() === '%2e') {
      if (last) out.push('');
    } else {
      out.push(s);
    }
  }
  const p = out.join('/');
  return p.startsWith('/') ? p : '/' + p;
};

const invalidURL = (input) => {
  const e = new TypeError('Invalid URL');
  e.code = 'ERR_INVALID_URL';
  e.input = input;
  return e;
};

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.\-]*):/;

class URL {
  constructor(input, base) {
    input = String(input).replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '');
    const m = SCHEME.exec(input);
    if (m) {
      this._parse(m[1].toLowerCase() + ':', input.slice(m[0].length), input);
      return;
    }
    if (base === undefined) throw invalidURL(input);
    const b = base instanceof URL ? base : new URL(base);
    this._parse(b.protocol, this._relative(b, input), input);
  }

  _relative(b, input) {
    const special = b.protocol in SPECIAL;
    if (special) input = input.replace(/\\/g, '/');
    if (b._opaque) {
      if (input.startsWith('#')) return b._opaquePath + b.search + input;
      throw invalidURL(input);
    }
    const auth = '//' + b._authority();
    if (input.startsWith('//')) return input;
    if (input.startsWith('/')) return auth + input;
    if (input === '') return auth + b.pathname + b.search;
    if (input.startsWith('?')) return auth + b.pathname + input;
    if (input.startsWith('#')) return auth + b.pathname + b.search + input;
    const dir = b.pathname.slice(0, b.pathname.lastIndexOf('/') + 1);
    return auth + (dir || '/') + input;
  }

  _parse(scheme, rest, input) {
    const special = scheme in SPECIAL;
    if (special) rest = rest.replace(/\\/g, '/');
    this._protocol = scheme;
    this._username = '';
    this._password = '';
    this._hostname = '';
    this._port = '';
    this._opaque = false;
    this._params = null;
    let hash = '', search = '';
    const h = rest.indexOf('#');
    if (h >= 0) { hash = rest.slice(h); rest = rest.slice(0, h); }
    const q = rest.indexOf('?');
    if (q >= 0) { search = rest.slice(q); rest = rest.slice(0, q); }
    if (special || rest.startsWith('//')) {
      rest = special ? rest.replace(/^\/*/, '') : rest.slice(2);
      const slash = rest.indexOf('/');
      let auth = slash >= 0 ? rest.slice(0, slash) : rest;
      rest = slash >= 0 ? rest.slice(slash) : '';
      const at = auth.lastIndexOf('@');
      if (at >= 0) {
        const cred = auth.slice(0, at);
        auth = auth.slice(at + 1);
        const colon = cred.indexOf(':');
        this._username = pctEncode(colon >= 0 ? cred.slice(0, colon) : cred, USER_ESC);
        this._password = colon >= 0 ? pctEncode(cred.slice(colon + 1), USER_ESC) : '';
      }
      let host = auth, port = '';
      const pm = /:(\d*)$/.exec(auth);
      if (pm && !auth.endsWith(']')) { host = auth.slice(0, pm.index); port = pm[1]; }
      if (/[\s#%/:<>?@[\\\]^|]/.test(host.replace(/^\[[0-9a-fA-F:.]+\]$/, 'x'))) throw invalidURL(input);
      if (special && scheme !== 'file:' && host === '') throw invalidURL(input);
      this._hostname = host.toLowerCase();
      if (port !== '') {
        const n = Number(port);
        if (n > 65535) throw invalidURL(input);
        this._port = SPECIAL[scheme] === String(n) ? '' : String(n);
      }
      this._pathname = rest === '' && special ? '/' : special || rest ? removeDots(pctEncode(rest, PATH_ESC)) : '';
    } else {
      this._opaque = !rest.startsWith('/');
      this._pathname = this._opaque ? pctEncode(rest, '') : removeDots(pctEncode(rest, PATH_ESC));
      this._opaquePath = this._pathname;
    }
    this._search = search.length > 1 ? pctEncode(search, QUERY_ESC) : '';
    this._hash = hash.length > 1 ? pctEncode(hash, FRAG_ESC) : '';
  }

  _authority() {
    const cred = this._username || this._password
      ? this._username + (this._password ? ':' + this._password : '') + '@' : '';
    return cred + this.host;
  }

  get protocol() { return this._protocol; }
  set protocol(v) {
    const m = /^([a-zA-Z][a-zA-Z0-9+.\-]*):?/.exec(String(v));
    if (m && (m[1].toLowerCase() + ':' in SPECIAL) === (this._protocol in SPECIAL)) this._protocol = m[1].toLowerCase() + ':';
  }
  get username() { return this._username; }
  set username(v) { this._username = pctEncode(String(v), USER_ESC); }
  get password() { return this._password; }
  set password(v) { this._password = pctEncode(String(v), USER_ESC); }
  get hostname() { return this._hostname; }
  set hostname(v) { this._hostname = String(v).toLowerCase(); }
  get port() { return this._port; }
  set port(v) {
    const s = String(v);
    if (s === '') { this._port = ''; return; }
    const n = parseInt(s, 10);
    if (n >= 0 && n <= 65535) this._port = SPECIAL[this._protocol] === String(n) ? '' : String(n);
  }
  get host() { return this._hostname + (this._port ? ':' + this._port : ''); }
  set host(v) {
    const s = String(v);
    const m = /^(.*?)(?::(\d*))?$/.exec(s);
    this.hostname = m[1];
    if (m[2] !== undefined) this.port = m[2];
  }
  get origin() {
    return this._protocol in SPECIAL && this._protocol !== 'file:' ? this._protocol + '//' + this.host : 'null';
  }
  get pathname() { return this._pathname; }
  set pathname(v) {
    if (this._opaque) return;
    const s = String(v);
    this._pathname = removeDots(pctEncode(s.startsWith('/') ? s : '/' + s, PATH_ESC));
  }
  get search() { return this._search; }
  set search(v) {
    const s = String(v);
    this._search = s === '' || s === '?' ? '' : pctEncode(s.startsWith('?') ? s : '?' + s, QUERY_ESC);
    if (this._params) this._params._list = parseQuery(this._search);
  }
  get searchParams() {
    if (!this._params) {
      this._params = new URLSearchParams(this._search);
      this._params._url = this;
    }
    return this._params;
  }
  get hash() { return this._hash; }
  set hash(v) {
    const s = String(v);
    this._hash = s === '' || s === '#' ? '' : pctEncode(s.startsWith('#') ? s : '#' + s, FRAG_ESC);
  }
  get href() {
    const auth = this._protocol in SPECIAL || this._hostname || !this._opaque && this._pathname.startsWith('//')
      ? '//' + this._authority() : '';
    return this._protocol + auth + this._pathname + this._search + this._hash;
  }
  set href(v) {
    const u = new URL(v);
    Object.assign(this, u);
  }
  toString() { return this.href; }
  toJSON() { return this.href; }
  static canParse(input, base) {
    try { new URL(input, base); return true; } catch { return false; }
  }
  static parse(input, base) {
    try { return new URL(input, base); } catch { return null; }
  }
}

const formDecode = (s) => {
  if (!/[%+]/.test(s)) return s;
  s = s.replace(/\+/g, ' ');
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    const bytes = [];
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 37 && /^[0-9a-fA-F]{2}$/.test(s.substr(i + 1, 2))) {
        bytes.push(parseInt(s.substr(i + 1, 2), 16));
        i += 2;
      } else if (c < 128) {
        bytes.push(c);
      } else {
        for (const b of new Uint8Array(W.encode(s[i], UTF8))) bytes.push(b);
      }
    }
    return W.decode(new Uint8Array(bytes), UTF8);
  }
};

const formEncode = (s) =>
  encodeURIComponent(s).replace(/[!'()~]|%20/g, (c) => (c === '%20' ? '+' : '%' + HEXBYTE[c.charCodeAt(0)].toUpperCase()));

const parseQuery = (s) => {
  const list = [];
  if (s.startsWith('?')) s = s.slice(1);
  if (!s) return list;
  for (const part of s.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    list.push(eq >= 0 ? [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))] : [formDecode(part), '']);
  }
  return list;
};

class URLSearchParams {
  constructor(init) {
    this._url = null;
    if (init === undefined || init === null) {
      this._list = [];
    } else if (typeof init === 'string') {
      this._list = parseQuery(init);
    } else if (init instanceof URLSearchParams) {
      this._list = init._list.map((p) => p.slice());
    } else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
      this._list = [];
      for (const pair of init) {
        const p = Array.from(pair);
        if (p.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
        this._list.push([String(p[0]), String(p[1])]);
      }
    } else if (typeof init === 'object') {
      this._list = Object.keys(init).map((k) => [k, String(init[k])]);
    } else {
      this._list = parseQuery(String(init));
    }
  }
  _update() {
    if (this._url) {
      const s = this.toString();
      this._url._search = s ? '?' + s : '';
    }
  }
  get size() { return this._list.length; }
  append(k, v) { this._list.push([String(k), String(v)]); this._update(); }
  delete(k, v) {
    k = String(k);
    this._list = this._list.filter((p) => p[0] !== k || (v !== undefined && p[1] !== String(v)));
    this._update();
  }
  get(k) {
    k = String(k);
    for (const p of this._list) if (p[0] === k) return p[1];
    return null;
  }
  getAll(k) {
    k = String(k);
    return this._list.filter((p) => p[0] === k).map((p) => p[1]);
  }
  has(k, v) {
    k = String(k);
    return this._list.some((p) => p[0] === k && (v === undefined || p[1] === String(v)));
  }
  set(k, v) {
    k = String(k);
    v = String(v);
    const i = this._list.findIndex((p) => p[0] === k);
    if (i < 0) this._list.push([k, v]);
    else {
      this._list[i][1] = v;
      this._list = this._list.filter((p, j) => j <= i || p[0] !== k);
    }
    this._update();
  }
  sort() {
    this._list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this._update();
  }
  forEach(fn, thisArg) {
    for (const [k, v] of this._list) fn.call(thisArg, v, k, this);
  }
  keys() { return this._list.map((p) => p[0])[Symbol.iterator](); }
  values() { return this._list.map((p) => p[1])[Symbol.iterator](); }
  entries() { return this._list.map((p) => [p[0], p[1]])[Symbol.iterator](); }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return this._list.map((p) => formEncode(p[0]) + '=' + formEncode(p[1])).join('&'); }
}

export { URL, URLSearchParams, parseQuery };
