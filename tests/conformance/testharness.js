// A small runner compatible with the Web Platform Tests' testharness.js, for `.any.js` files run
// unchanged inside one sandboxed script (and under Node, for its figure beside ours).
//
// It defines what those files call: test, async_test, promise_test, setup, done, the assert_*
// functions, promise_rejects_*, EventWatcher, step_timeout. Tests run as testharness.js runs
// them: a test() at once, promise_tests one after another, async_tests side by side, each with
// a time limit. harness.py puts each file (after the resources its META lines name) in a
// function of its own, between __wpt.file(name) and __wpt.fileDone(), and awaits
// __wpt.finish(), which resolves to { "<file>: <test name>": failure message } and the count.

const __wpt = (() => {
  const TEST_TIMEOUT_MS = 5000;
  const results = {}; // id -> null (pass) | message
  const queue = []; // promise tests and async tests, in order, per file
  let file = '';
  let setupError = null;

  const fmt = (v) => {
    try {
      if (typeof v === 'string') return JSON.stringify(v);
      if (typeof v === 'symbol' || typeof v === 'bigint') return String(v);
      if (Object.is(v, -0)) return '-0';
      if (v instanceof Error || (v && typeof v === 'object' && 'name' in v && 'message' in v)) return v.name + ': ' + v.message;
      if (Array.isArray(v)) return '[' + v.map(fmt).join(', ') + ']';
      return String(v);
    } catch {
      return '<value>';
    }
  };

  class AssertionError extends Error {}
  AssertionError.prototype.name = 'AssertionError';
  const fail = (msg, description) => {
    throw new AssertionError((description ? description + ': ' : '') + msg);
  };

  const same = (a, b) => Object.is(a, b);
  const asserts = {
    assert_true(v, d) { if (v !== true) fail('expected true got ' + fmt(v), d); },
    assert_false(v, d) { if (v !== false) fail('expected false got ' + fmt(v), d); },
    assert_equals(a, b, d) { if (!same(a, b)) fail('expected ' + fmt(b) + ' but got ' + fmt(a), d); },
    assert_not_equals(a, b, d) { if (same(a, b)) fail('got disallowed value ' + fmt(a), d); },
    assert_in_array(a, list, d) { if (!list.some((x) => same(x, a))) fail('value ' + fmt(a) + ' not in array ' + fmt(list), d); },
    assert_array_equals(a, b, d) {
      if (!a || typeof a.length !== 'number') fail('value is not array-like: ' + fmt(a), d);
      if (a.length !== b.length) fail('lengths differ, expected ' + b.length + ' got ' + a.length, d);
      for (let i = 0; i < a.length; i++) {
        if (!same(a[i], b[i])) fail('expected ' + fmt(b[i]) + ' but got ' + fmt(a[i]) + ' at index ' + i, d);
      }
    },
    assert_array_approx_equals(a, b, eps, d) {
      if (a.length !== b.length) fail('lengths differ', d);
      for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > eps) fail('index ' + i + ' differs', d);
    },
    assert_approx_equals(a, b, eps, d) {
      if (typeof a !== 'number' || Math.abs(a - b) > eps) fail('expected ' + fmt(b) + ' +/- ' + eps + ' but got ' + fmt(a), d);
    },
    assert_less_than(a, b, d) { if (!(typeof a === 'number' && a < b)) fail('expected a number less than ' + b + ' got ' + fmt(a), d); },
    assert_greater_than(a, b, d) { if (!(typeof a === 'number' && a > b)) fail('expected a number greater than ' + b + ' got ' + fmt(a), d); },
    assert_less_than_equal(a, b, d) { if (!(typeof a === 'number' && a <= b)) fail('expected a number <= ' + b + ' got ' + fmt(a), d); },
    assert_greater_than_equal(a, b, d) { if (!(typeof a === 'number' && a >= b)) fail('expected a number >= ' + b + ' got ' + fmt(a), d); },
    assert_between_exclusive(a, lo, hi, d) { if (!(a > lo && a < hi)) fail(fmt(a) + ' not in (' + lo + ', ' + hi + ')', d); },
    assert_between_inclusive(a, lo, hi, d) { if (!(a >= lo && a <= hi)) fail(fmt(a) + ' not in [' + lo + ', ' + hi + ']', d); },
    assert_regexp_match(s, re, d) { if (!re.test(s)) fail(fmt(s) + ' does not match ' + re, d); },
    assert_class_string(v, name, d) {
      const got = Object.prototype.toString.call(v);
      if (got !== '[object ' + name + ']') fail('expected [object ' + name + '] got ' + got, d);
    },
    assert_own_property(o, p, d) { if (!Object.prototype.hasOwnProperty.call(o, p)) fail('expected own property ' + fmt(p), d); },
    assert_not_own_property(o, p, d) { if (Object.prototype.hasOwnProperty.call(o, p)) fail('unexpected own property ' + fmt(p), d); },
    assert_inherits(o, p, d) {
      if (Object.prototype.hasOwnProperty.call(o, p) || !(p in o)) fail('expected inherited property ' + fmt(p), d);
    },
    assert_idl_attribute(o, p, d) { asserts.assert_inherits(o, p, d); },
    assert_readonly(o, p, d) {
      const before = o[p];
      try { o[p] = before + 'x'; } catch { /* strict mode setters may throw */ }
      if (!same(o[p], before)) fail('property ' + fmt(p) + ' was changed', d);
    },
    assert_object_equals(a, b, d) {
      const walk = (x, y, path) => {
        if (typeof x !== 'object' || x === null) {
          if (!same(x, y)) fail('at ' + path + ' expected ' + fmt(y) + ' got ' + fmt(x), d);
          return;
        }
        for (const k of Object.keys(y)) {
          if (!(k in x)) fail('missing property ' + path + '.' + k, d);
          walk(x[k], y[k], path + '.' + k);
        }
        for (const k of Object.keys(x)) if (!(k in y)) fail('unexpected property ' + path + '.' + k, d);
      };
      walk(a, b, '');
    },
    assert_unreached(d) { fail('reached unreachable code', d); },
    assert_implements(cond, d) { if (!cond) fail('not implemented', d); },
    assert_implements_optional(cond, d) { if (!cond) fail('optional feature not implemented', d); },
    assert_throws_js(ctor, fn, d) {
      try {
        fn();
      } catch (e) {
        if (!(e instanceof ctor) && !(e && e.constructor && e.constructor.name === ctor.name)) {
          fail('expected ' + ctor.name + ' but got ' + fmt(e), d);
        }
        return;
      }
      fail('expected ' + ctor.name + ' to be thrown', d);
    },
    assert_throws_dom(type, ctorOrFn, fnOrD, d2) {
      const fn = typeof ctorOrFn === 'function' && fnOrD !== undefined && typeof fnOrD === 'function' ? fnOrD : ctorOrFn;
      const d = fn === fnOrD ? d2 : fnOrD;
      try {
        fn();
      } catch (e) {
        checkDom(type, e, d);
        return;
      }
      fail('expected DOMException ' + type + ' to be thrown', d);
    },
    assert_throws_exactly(v, fn, d) {
      try {
        fn();
      } catch (e) {
        if (!same(e, v)) fail('expected ' + fmt(v) + ' thrown but got ' + fmt(e), d);
        return;
      }
      fail('expected ' + fmt(v) + ' to be thrown', d);
    },
  };
  const DOM_CODES = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5, NoModificationAllowedError: 7,
    NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12, InvalidModificationError: 13,
    NamespaceError: 14, InvalidAccessError: 15, TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20,
    URLMismatchError: 21, QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
  };
  const checkDom = (type, e, d) => {
    const name = typeof type === 'number' ? Object.keys(DOM_CODES).find((k) => DOM_CODES[k] === type) : type;
    if (!(e instanceof DOMException)) fail('expected DOMException ' + name + ' but got ' + fmt(e), d);
    if (e.name !== name) fail('expected DOMException ' + name + ' but got ' + e.name, d);
  };

  class Test {
    constructor(name, properties) {
      this.name = name;
      this.id = file + ': ' + name;
      this.properties = properties || {};
      this.cleanups = [];
      this.finished = false;
      this.timeouts = [];
      this.settle = null;
      this.completion = new Promise((resolve) => { this.settle = resolve; });
    }
    step(fn, thisObj, ...args) {
      if (this.finished) return undefined;
      try {
        return fn.apply(thisObj === undefined ? this : thisObj, args);
      } catch (e) {
        this.finish(e);
        throw e;
      }
    }
    step_func(fn, thisObj) {
      return (...args) => {
        try {
          return this.step(fn, thisObj, ...args);
        } catch {
          return undefined;
        }
      };
    }
    step_func_done(fn, thisObj) {
      return (...args) => {
        try {
          if (fn) this.step(fn, thisObj, ...args);
          this.done();
        } catch {
          /* recorded by step */
        }
      };
    }
    unreached_func(d) { return this.step_func(() => asserts.assert_unreached(d)); }
    step_timeout(fn, ms, ...args) {
      const h = setTimeout(this.step_func(() => fn(...args)), ms);
      this.timeouts.push(h);
      return h;
    }
    step_wait(cond, d, timeout = 3000, interval = 10) {
      const start = Date.now();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (cond()) resolve();
          else if (Date.now() - start > timeout) reject(new AssertionError('timed out waiting: ' + (d || '')));
          else setTimeout(check, interval);
        };
        check();
      });
    }
    step_wait_func(cond, fn, d, timeout, interval) { this.step_wait(cond, d, timeout, interval).then(this.step_func(fn), (e) => this.finish(e)); }
    step_wait_func_done(cond, fn, d, timeout, interval) { this.step_wait(cond, d, timeout, interval).then(this.step_func_done(fn), (e) => this.finish(e)); }
    add_cleanup(fn) { this.cleanups.push(fn); }
    done() { this.finish(null); }
    finish(error) {
      if (this.finished) return;
      this.finished = true;
      for (const h of this.timeouts) clearTimeout(h);
      for (const fn of this.cleanups) {
        try {
          const r = fn();
          if (r && typeof r.then === 'function') r.then(null, () => {});
        } catch (e) {
          if (!error) error = e;
        }
      }
      results[this.id] = error ? String((error && error.message) || error).slice(0, 300) || String(error) : null;
      this.settle();
    }
  }

  const withTimeout = (t) => {
    const h = setTimeout(() => t.finish(new Error('timed out after ' + TEST_TIMEOUT_MS + ' ms')), TEST_TIMEOUT_MS);
    return t.completion.then(() => clearTimeout(h));
  };

  const api = {
    ...asserts,
    test(fn, name, properties) {
      const t = new Test(name || 'test', properties);
      if (setupError) return t.finish(setupError);
      try {
        t.step(fn, t, t);
        t.done();
      } catch {
        /* recorded */
      }
    },
    async_test(fn, name, properties) {
      if (typeof fn !== 'function') {
        properties = name;
        name = fn;
        fn = null;
      }
      const t = new Test(name || 'async test', properties);
      if (setupError) {
        t.finish(setupError);
        return t;
      }
      if (fn) {
        try {
          t.step(fn, t, t);
        } catch {
          /* recorded */
        }
      }
      queue.push({ start: () => withTimeout(t), parallel: true });
      return t;
    },
    promise_test(fn, name, properties) {
      const t = new Test(name || 'promise test', properties);
      queue.push({
        parallel: false,
        start: () => {
          if (setupError) {
            t.finish(setupError);
            return t.completion;
          }
          let p;
          try {
            p = fn(t);
          } catch (e) {
            t.finish(e);
            return t.completion;
          }
          if (!p || typeof p.then !== 'function') {
            t.finish(new Error('promise_test: the test function did not return a promise'));
            return t.completion;
          }
          p.then(() => t.done(), (e) => t.finish(e || new Error('rejected with ' + fmt(e))));
          return withTimeout(t);
        },
      });
    },
    promise_rejects_js(t, ctor, p, d) {
      return p.then(() => fail('expected a rejection with ' + ctor.name, d), (e) => {
        if (!(e instanceof ctor) && !(e && e.constructor && e.constructor.name === ctor.name)) fail('expected ' + ctor.name + ' but got ' + fmt(e), d);
      });
    },
    promise_rejects_dom(t, type, pOrCtor, pOrD, d2) {
      const p = pOrCtor && typeof pOrCtor.then === 'function' ? pOrCtor : pOrD;
      const d = p === pOrCtor ? pOrD : d2;
      return p.then(() => fail('expected a rejection with DOMException ' + type, d), (e) => checkDom(type, e, d));
    },
    promise_rejects_exactly(t, v, p, d) {
      return p.then(() => fail('expected a rejection with ' + fmt(v), d), (e) => {
        if (!same(e, v)) fail('expected ' + fmt(v) + ' but got ' + fmt(e), d);
      });
    },
    setup(fnOrOptions) {
      if (typeof fnOrOptions === 'function') {
        try {
          fnOrOptions();
        } catch (e) {
          setupError = e;
        }
      }
    },
    promise_setup(fn) {
      queue.push({ parallel: false, start: () => Promise.resolve().then(fn).then(null, (e) => { setupError = e; }) });
    },
    done() {},
    add_completion_callback() {},
    add_result_callback() {},
    step_timeout(fn, ms, ...args) { return setTimeout(() => fn(...args), ms); },
    format_value: fmt,
    generate_tests(fn, cases, properties) {
      for (const [name, ...args] of cases) api.test(() => fn(...args), name, properties);
    },
    EventWatcher: class EventWatcher {
      constructor(t, target, types) {
        this.queue = [];
        this.waiting = null;
        for (const type of [].concat(types)) {
          target.addEventListener(type, t.step_func((e) => {
            if (this.waiting && this.waiting.types[0] === e.type) {
              this.waiting.events.push(e);
              this.waiting.types.shift();
              if (!this.waiting.types.length) {
                const w = this.waiting;
                this.waiting = null;
                w.resolve(w.events.length === 1 ? w.events[0] : w.events);
              }
            } else {
              asserts.assert_unreached('unexpected event ' + e.type);
            }
          }));
        }
      }
      wait_for(types) {
        return new Promise((resolve) => { this.waiting = { types: [].concat(types), events: [], resolve }; });
      }
    },
    GLOBAL: { isWindow: () => false, isWorker: () => false, isShadowRealm: () => false },
    garbageCollect() {},
    delay: (ms) => new Promise((r) => setTimeout(r, ms)),
    flushAsyncEvents: () => new Promise((r) => setTimeout(r, 0)),
  };

  return {
    api,
    file(name) {
      file = name;
      setupError = null;
    },
    fileError(name, e) {
      results[name + ': (file)'] = 'the file threw while loading: ' + String((e && e.message) || e).slice(0, 300);
    },
    // Runs what the files queued, in order; promise tests wait for every earlier test.
    async finish() {
      let running = [];
      for (const item of queue) {
        if (item.parallel) {
          running.push(item.start());
        } else {
          await Promise.all(running);
          running = [];
          await item.start();
        }
      }
      await Promise.all(running);
      const failed = {};
      for (const [id, message] of Object.entries(results)) if (message !== null) failed[id] = message;
      return { total: Object.keys(results).length, failed };
    },
  };
})();
Object.assign(globalThis, __wpt.api, { self: globalThis });
