// @description Streams a countdown, a line every 100 ms: each line reaches the client as it is made.
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const from = Math.min(Number(metadata.query.from ?? 3) || 3, 10);

res.type('text');
return (async function* () {
  for (let n = from; n > 0; n--) {
    yield `${n}\n`;
    await sleep(100);
  }
  yield 'liftoff\n';
})();
