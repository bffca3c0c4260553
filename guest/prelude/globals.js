// The global object and how the prelude installs properties on it (writable, configurable,
// not enumerable, as built-ins are).

const G = globalThis;

const define = (obj, props) => {
  for (const k of Object.keys(props)) {
    Object.defineProperty(obj, k, { value: props[k], writable: true, configurable: true });
  }
};

export { G, define };
