// @description A JSON API for {{resource}}: GET lists them (?q= filters by name), POST adds one
// @cors {{cors}}
type Item = { id: number; name: string };

const items: Item[] = [
  { id: 1, name: 'first' },
  { id: 2, name: 'second' },
];

if (metadata.method === 'GET') {
  const q = String(metadata.query.q ?? '').toLowerCase();
  const found = q ? items.filter((item) => item.name.toLowerCase().includes(q)) : items;
  return { {{resource}}: found, count: found.length };
}
if (metadata.method === 'POST') {
  const name = req.body?.name;
  if (typeof name !== 'string' || name === '') {
    return res.status(400).json({ error: 'send a JSON body with a "name" string' });
  }
  return res.status(201).json({ id: items.length + 1, name });
}
res.setHeader('allow', 'GET, POST');
return res.status(405).json({ error: `${metadata.method} is not supported; use GET or POST` });
