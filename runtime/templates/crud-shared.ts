// @mode worker
// @description Create, read, update and delete {{collection}}, kept in shared state
type Entry = { id: string; [field: string]: unknown };

const KEY = 'crud:{{collection}}';
const all = (): { [id: string]: Entry } => shared[KEY] ?? {};
const save = (records: { [id: string]: Entry }) => { shared[KEY] = records; };
const id = ([] as string[]).concat(metadata.parameters.id ?? [])[0];
const records = all();
const fields = () => {
  if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) return null;
  const { id: _ignored, ...rest } = req.body;
  return rest;
};

switch (metadata.method) {
  case 'GET':
    if (id === undefined) return { {{collection}}: Object.values(records) };
    return records[id] ?? res.status(404).json({ error: `no ${id} in {{collection}}` });
  case 'POST': {
    const data = fields();
    if (data === null) return res.status(400).json({ error: 'send a JSON object' });
    const record = { id: crypto.randomUUID(), ...data };
    save({ ...records, [record.id]: record });
    return res.status(201).json(record);
  }
  case 'PUT':
  case 'PATCH': {
    const data = fields();
    if (id === undefined || records[id] === undefined) {
      return res.status(404).json({ error: `no ${id} in {{collection}}` });
    }
    if (data === null) return res.status(400).json({ error: 'send a JSON object' });
    const record = metadata.method === 'PUT' ? { id, ...data } : { ...records[id], ...data, id };
    save({ ...records, [id]: record });
    return record;
  }
  case 'DELETE': {
    if (id === undefined || records[id] === undefined) {
      return res.status(404).json({ error: `no ${id} in {{collection}}` });
    }
    const kept = { ...records };
    delete kept[id];
    save(kept);
    return { deleted: id };
  }
  default:
    return res.status(405).json({ error: 'use GET, POST, PUT, PATCH or DELETE' });
}
