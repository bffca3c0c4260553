// @description A form: GET shows it, POST checks that {{fields}} are filled in and answers with what was sent
const FIELDS = '{{fields}}'.split(',').map((field) => field.trim()).filter(Boolean);
const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

if (metadata.method === 'GET') {
  const inputs = FIELDS.map((field) =>
    `<label>${escape(field)} <input name="${escape(field)}" required></label>`).join('\n');
  res.type('html');
  return `<!doctype html>\n<form method="post">\n${inputs}\n<button>Send</button>\n</form>\n`;
}
if (metadata.method !== 'POST') return res.status(405).json({ error: 'use GET to see the form, POST to send it' });
const form = req.body && typeof req.body === 'object' ? req.body : {};
const missing = FIELDS.filter((field) => String(form[field] ?? '').trim() === '');
if (missing.length > 0) {
  return res.status(422).json({ error: `fill in: ${missing.join(', ')}`, missing });
}
const received = Object.fromEntries(FIELDS.map((field) => [field, String(form[field]).trim()]));
return { ok: true, received };
