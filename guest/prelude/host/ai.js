// The guest half of runtime/host/ai.py: the Vercel AI SDK's calls (generateText, streamText,
// generateObject), the script's default `model`, and `openai` (a model factory, and the
// chat.completions.create passthrough). Every call is the op ai.chat or ai.object; the host
// holds the key, applies the script's defaults and checks objects against their schema.

import { op } from '../crossing/ops.js';

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

// A JSON Schema as given, or wrapped by jsonSchema() as the AI SDK does.
const jsonSchema = (schema) => ({ jsonSchema: schema });
const schemaOf = (s) => (s !== null && typeof s === 'object' && s.jsonSchema !== undefined ? s.jsonSchema : s);

const generateObject = async (o) => {
  const r = await op('ai.object', { ...request(o), schema: schemaOf(o.schema) });
  return { object: r.object, usage: usageOf(r.usage), finishReason: r.finishReason };
};

const create = (body) => {
  if (body === null || typeof body !== 'object') throw new TypeError('create takes one request object');
  const { model: name, messages, ...options } = body;
  return op('ai.chat', { model: modelName(name), messages, options });
};

const openai = Object.assign((modelId) => new LanguageModel(String(modelId), 'openai'), {
  chat: { completions: { create } },
});

const ai = { generateText, generateObject, model, openai, jsonSchema };

export { ai, generateObject, generateText, jsonSchema, model, openai };
