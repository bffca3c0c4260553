// @mode worker
// @description Counts requests: a worker keeps its module state between requests.
let count = 0;
const started = Date.now();

export default (req: unknown, res: unknown) => {
  count += 1;
  return { count, upSince: new Date(started).toISOString() };
};
