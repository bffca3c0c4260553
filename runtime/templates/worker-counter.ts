// @mode worker
// @description A counter kept in a worker's memory: every request adds one
let count = {{start}};
const started = new Date().toISOString();

export default () => {
  count += 1;
  return { count, started };
};
