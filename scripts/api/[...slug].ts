// @description Endpoints that write themselves: a request to an /api path no script answers asks the model for a handler, runs it sandboxed, and saves it as a script of its own, which answers every later request to that path.
// @mode serverless
// @ai true
// @timeout 60000

const SYSTEM = `You write the body of one HTTP endpoint in JavaScript for wexec.
In scope: req (method, path, query, headers, body parsed from JSON), res (status(), setHeader(), json()) and metadata.
End with a top-level return of a JSON-serialisable value, or return res.status(code).json(value).
No imports, no require, no network calls. Answer with the code only: no Markdown, no explanation.`;

const slug: string[] = metadata.parameters.slug ?? [];
// Only plain names become a file: nothing hidden, nothing that climbs out of api/.
if (slug.some((part) => !/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(part))) {
  return res.status(404).json({
    error: 'not_found',
    message: `no endpoint at ${metadata.path}, and one is only written for paths made of letters, digits, - and _`,
  });
}
const file = `api/${slug.join('/')}.ts`;

// Saved by a request a moment ago: run what was saved rather than ask again.
if (await fs.exists(file)) {
  return isolate.eval(await fs.read(file), [req, res, fetch]);
}

const { text } = await generateText({
  model,
  system: SYSTEM,
  prompt: `${metadata.method} ${metadata.path}\n`
    + `Query: ${JSON.stringify(metadata.query)}\n`
    + `Body: ${JSON.stringify(req.body ?? null)}`,
});
const handler = text.trim().replace(/^```[a-z]*\n([\s\S]*?)\n?```$/, '$1');

let result;
try {
  result = await isolate.eval(handler, [req, res, fetch], { timeout: 5000 });
} catch (e) {
  return res.status(502).json({
    error: 'generated_handler_failed',
    message: `the handler written for ${metadata.path} failed, so it was not saved: ${e.name}: ${e.message}`,
  });
}
// The saved script starts with code ("use strict"), so no comment the model wrote can act as
// a magic comment: it gets no @ai, @token or @env of its own, only the defaults.
await fs.write(file, `"use strict"; // written by api/[...slug].ts for ${metadata.method} ${metadata.path}\n${handler}\n`);
return result;
