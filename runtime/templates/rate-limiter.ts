// @mode worker
// @description Allows {{limit}} requests per client IP every {{windowSeconds}} seconds, counted in shared state
const LIMIT = {{limit}};
const WINDOW_MS = {{windowSeconds}} * 1000;

const key = `ratelimit:${req.ip}`;
const now = Date.now();
let entry = shared[key];
if (!entry || entry.reset <= now) entry = { count: 0, reset: now + WINDOW_MS };
entry = { count: entry.count + 1, reset: entry.reset };
shared[key] = entry;

res.setHeader('x-ratelimit-limit', String(LIMIT));
res.setHeader('x-ratelimit-remaining', String(Math.max(0, LIMIT - entry.count)));
if (entry.count > LIMIT) {
  res.setHeader('retry-after', String(Math.ceil((entry.reset - now) / 1000)));
  return res.status(429).json({ error: 'too many requests', retryAt: new Date(entry.reset).toISOString() });
}
return { ok: true, remaining: LIMIT - entry.count };
