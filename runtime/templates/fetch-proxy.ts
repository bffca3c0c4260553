// @mode worker
// @description Forwards every request under this route to {{upstream}} and streams the answer back
const UPSTREAM = new URL('{{upstream}}');
const FORWARDED = ['accept', 'accept-language', 'authorization', 'content-type', 'user-agent'];

const rest = ([] as string[]).concat(metadata.parameters.path ?? []);
const target = new URL(UPSTREAM.pathname.replace(/\/?$/, '/') + rest.join('/'), UPSTREAM);
for (const [name, value] of Object.entries(metadata.query)) {
  for (const one of ([] as string[]).concat(value ?? [])) target.searchParams.append(name, one);
}
const headers: Record<string, string> = {};
for (const name of FORWARDED) if (req.headers[name] !== undefined) headers[name] = req.headers[name];

const method = metadata.method;
const upstream = await fetch(target, {
  method,
  headers,
  body: method === 'GET' || method === 'HEAD' ? undefined : await req.arrayBuffer(),
});
return new Response(upstream.body, {
  status: upstream.status,
  headers: { 'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream' },
});
