// @description Webhook receiver: accepts a request only when its {{header}} HMAC-SHA256 matches
// @concurrent false
// @env WEBHOOK_SECRET={{secret}}
const crypto = require('crypto');

// The signature covers the bytes as sent, so it is checked on the raw body, never on a
// re-serialised one.
const signature = String(req.headers['{{header}}'] ?? '');
const expected = 'sha256=' + crypto
  .createHmac('sha256', process.env.WEBHOOK_SECRET ?? '')
  .update(req.rawBody)
  .digest('hex');
const valid = signature.length === expected.length
  && crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
if (!valid) {
  return res.status(401).json({ error: 'bad signature: expected {{header}}: sha256=<hex HMAC of the body>' });
}
console.log('webhook accepted', req.headers['x-github-event'] ?? '');
return { accepted: true, payload: req.body };
