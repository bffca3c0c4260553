// The guest half of runtime/host/ai.py: the Vercel AI SDK's calls (generateText, streamText,
// generateObject), the script's default `model`, and `openai` (a model factory, and the
// chat.completions.create passthrough). Every call is the op ai.chat or ai.object; the host
// holds the key, applies the script's defaults and checks objects against their schema.

import { op, unsent } from '../crossing/ops.js';
import { readsFrom } from '../crossing/stream.js';
import { ReadableStream } from '../lib/streams.js';
import { TextDecoder } from '../lib/encoding.js';
import { Response } from '../lib/http.js';

class LanguageModel {
  constructor(modelId, provider) {
    this.modelId = modelId;
    this.provider = provider;
    this.specificationVersion = 'v1';
  }
}

// The script's model: `// @ai-model`, else the server's WEXEC_AI_MODEL (the host resolves it).
const model = new LanguageModel(undefined, 'wexec');

const modelName = (m) => {
  if (m === undefined || m === null || m === model) return undefined;
  if (typeof m === 'string') return m;
  if (typeof m === 'object' && typeof m.modelId === 'string') return m.modelId;
  throw new TypeError('model must be a model name, `model`, or openai("name")');
};

const messagesOf = (o) => {
  if (o.messages !== undefined) return o.messages;
  if (o.prompt === undefined) throw new TypeError('an AI call needs prompt or messages');
  return [{ role: 'user', content: String(o.prompt) }];
};

// The AI SDK's settings, named as the provider takes them (undefined ones are left out).
const request = (o) => {
  if (o === null || typeof o !== 'object') throw new TypeError('an AI call takes one options object');
  return {
    model: modelName(o.model),
    system: o.system,
    messages: messagesOf(o),
    options: {
      temperature: o.temperature,
      max_tokens: o.maxTokens ?? o.maxOutputTokens,
      top_p: o.topP,
      stop: o.stopSequences,
      seed: o.seed,
      presence_penalty: o.presencePenalty,
      frequency_penalty: o.frequencyPenalty,
    },
  };
};

const usageOf = (u) => (u ? {
  promptTokens: u.prompt_tokens,
  completionTokens: u.completion_tokens,
  totalTokens: u.total_tokens,
  inputTokens: u.prompt_tokens,
  outputTokens: u.completion_tokens,
} : undefined);

const generateText = async (o) => {
  const c = await op('ai.chat', request(o));
  const choice = c.choices[0] || { message: {} };
  return {
    text: choice.message.content ?? '',
    usage: usageOf(c.usage),
    finishReason: choice.finish_reason,
    response: { id: c.id, modelId: c.model },
  };
};

// The provider's chunks of the op ai.stream, one JSON object per line: those up to the first
// token come with the op's answer, the rest from its host stream, read with streams.read as
// they are wanted (a ReadableStream and its reader there would only cost the first token time).
async function* chunksOf(started) {
  const { handle, head } = await started;
  let open = true; // the host stream may have more: cancelled if we stop early
  let decoder = null;
  let buffered = head;
  try {
    for (;;) {
      let end;
      while ((end = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        yield JSON.parse(line);
      }
      let value;
      try {
        value = await op('streams.read', { handle });
      } catch (e) {
        open = false; // the host ended it with the error
        throw e;
      }
      if (value === null) {
        open = false;
        return;
      }
      buffered += (decoder || (decoder = new TextDecoder())).decode(value, { stream: true });
    }
  } finally {
    if (open) op('streams.cancel', { handle }).catch(() => {});
  }
}

// A stream pulled from an async iterator, one item per pull (nothing read ahead). Returned as a
// response's body untouched, it is not read at all: the response pumps the iterator, or `pipe`s
// it (crossing/stream.js readsFrom).
const streamOf = (it, pipe = null) => readsFrom(new ReadableStream({
  async pull(controller) {
    const { value, done } = await it.next();
    if (done) controller.close();
    else controller.enqueue(value);
  },
  cancel() { return it.return(); },
}, { highWaterMark: 0 }), it, pipe);

// What streamText returns: the AI SDK's textStream, and text, usage and finishReason as
// promises settled when the stream ends. Returned from a handler it streams the text: when
// the provider call is still to be sent (returned in the crossing that called streamText, as
// it usually is), the host feeds the text to the client itself and answers the op with text,
// usage and finishReason at the end, so no token crosses into the guest on its way.
class StreamTextResult {
  constructor(args) {
    const started = op('ai.stream', args);
    let settle, fail;
    this._end = new Promise((resolve, reject) => { settle = resolve; fail = reject; });
    this._end.catch(() => {}); // rejects with the stream too: unhandled only if nobody reads
    let text = '', usage, finishReason;
    const chunks = (async function* () {
      try {
        for await (const c of chunksOf(started)) {
          if (c.usage) usage = usageOf(c.usage);
          const choice = c.choices && c.choices[0];
          if (choice && choice.finish_reason) finishReason = choice.finish_reason;
          const delta = choice && choice.delta && choice.delta.content;
          if (delta) {
            text += delta;
            yield delta;
          }
        }
        settle({ text, usage, finishReason });
      } catch (e) {
        fail(e);
        throw e;
      }
    })();
    const pipe = (f) => {
      if (!unsent(args, f.rid)) return null;
      args.pipe = true;
      return started.then((r) => {
        settle({ text: r.text, usage: usageOf(r.usage), finishReason: r.finishReason });
      }, (e) => {
        fail(e);
        throw e;
      });
    };
    this.textStream = streamOf(chunks, pipe);
  }
  _drained() {
    if (!this.textStream.locked) (async () => { for await (const _ of this.textStream); })().catch(() => {});
    return this._end;
  }
  get text() { return this._drained().then((r) => r.text); }
  get usage() { return this._drained().then((r) => r.usage); }
  get finishReason() { return this._drained().then((r) => r.finishReason); }
  toTextStreamResponse(init = {}) {
    const headers = { 'content-type': 'text/plain; charset=utf-8', ...(init.headers || {}) };
    return new Response(this.textStream, { status: init.status || 200, headers });
  }
  [Symbol.asyncIterator]() { return this.textStream[Symbol.asyncIterator](); }
}

const streamText = (o) => new StreamTextResult(request(o));

// A JSON Schema as given, or wrapped by jsonSchema() as the AI SDK does.
const jsonSchema = (schema) => ({ jsonSchema: schema });
const schemaOf = (s) => (s !== null && typeof s === 'object' && s.jsonSchema !== undefined ? s.jsonSchema : s);

const generateObject = async (o) => {
  const r = await op('ai.object', { ...request(o), schema: schemaOf(o.schema) });
  return { object: r.object, usage: usageOf(r.usage), finishReason: r.finishReason };
};

// With stream: true, the chunks as the OpenAI SDK gives them, as a ReadableStream (an async
// iterable).
const create = (body) => {
  if (body === null || typeof body !== 'object') throw new TypeError('create takes one request object');
  const { model: name, messages, stream, stream_options, ...options } = body;
  const args = { model: modelName(name), messages, options };
  if (!stream) return op('ai.chat', args);
  const started = op('ai.stream', args);
  return started.then(() => streamOf(chunksOf(started)));
};

const openai = Object.assign((modelId) => new LanguageModel(String(modelId), 'openai'), {
  chat: { completions: { create } },
});

const ai = { generateText, streamText, generateObject, model, openai, jsonSchema };

export { ai, generateObject, generateText, jsonSchema, model, openai, streamText };
