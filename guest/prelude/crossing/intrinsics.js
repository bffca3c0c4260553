// The built-ins the crossing code calls after a script ran, captured when the prelude loads: a
// script may replace JSON.stringify or Array.prototype.join (or the globals JSON, Object,
// String), and must not change by doing so how its answer, its logs and its operations are
// encoded. A method is bound to the original Function.prototype.call, so `join(list, ',')` is
// list.join(',') as the engine shipped it, with no allocation per call.

const uncurry = Function.prototype.bind.bind(Function.prototype.call);

const { stringify } = JSON;
const { getPrototypeOf, prototype: ObjectPrototype } = Object;
const { isArray, prototype: ArrayPrototype } = Array;
const toString = String;
const push = uncurry(ArrayPrototype.push);
const join = uncurry(ArrayPrototype.join);
const splice = uncurry(ArrayPrototype.splice);
const filter = uncurry(ArrayPrototype.filter);
const findIndex = uncurry(ArrayPrototype.findIndex);
const slice = uncurry(String.prototype.slice);
const split = uncurry(String.prototype.split);
const includes = uncurry(String.prototype.includes);
const endsWith = uncurry(String.prototype.endsWith);
const exec = uncurry(RegExp.prototype.exec);

export {
  ArrayPrototype, ObjectPrototype, endsWith, exec, filter, findIndex, getPrototypeOf, includes,
  isArray, join, push, slice, splice, split, stringify, toString,
};
