// @ai true
// @mode worker
// @description An OpenAI-compatible chat completions endpoint that refuses prompts naming blocked terms, redacts e-mail addresses and forwards the rest, streaming when asked
const BLOCKED = '{{blocked}}'.split(',').map((term) => term.trim().toLowerCase()).filter(Boolean);
const EMAIL = /[\w.+-]+@[\w-]+\.[\w.-]+/g;

type Message = { role: string; content: string };
const fail = (status: number, message: string, type: string) =>
  res.status(status).json({ error: { message, type } });

if (metadata.method !== 'POST') return fail(405, 'POST a chat completion request', 'invalid_request_error');
const request = req.body;
if (!request || !Array.isArray(request.messages)) {
  return fail(400, 'the body must be a chat completion request with a "messages" array', 'invalid_request_error');
}
const messages: Message[] = request.messages;
const blocked = BLOCKED.find((term) =>
  messages.some((message) => String(message.content).toLowerCase().includes(term)));
if (blocked !== undefined) {
  console.warn('blocked a prompt naming', blocked);
  return fail(403, `the prompt was blocked by policy: it names "${blocked}"`, 'policy_violation');
}
const forwarded = {
  ...request,
  messages: messages.map((message) => ({ ...message, content: String(message.content).replace(EMAIL, '[email]') })),
};
if (!request.stream) return await openai.chat.completions.create(forwarded);

const chunks = await openai.chat.completions.create({ ...forwarded, stream: true });
res.setHeader('content-type', 'text/event-stream');
res.setHeader('cache-control', 'no-cache');
return (async function* () {
  for await (const chunk of chunks) yield `data: ${JSON.stringify(chunk)}\n\n`;
  yield 'data: [DONE]\n\n';
})();
