// wexec.d.ts — the globals a wexec script sees, for editors and `tsc --noEmit`.
//
// Written by `wexec types` and served at GET /api/v1/exec/types. The Web APIs scripts see
// (fetch, Request, Response, Headers, URL, URLSearchParams, ReadableStream, TextEncoder,
// TextDecoder, crypto, AbortController, console, setTimeout/setInterval, atob/btoa,
// structuredClone, queueMicrotask, performance) are TypeScript's own declarations, from its
// `dom` library; this file declares what wexec adds. Names only a browser has (document,
// window) type-check but do not exist in a script.
//
// A script's top-level `return` is reported by TypeScript as error TS1108; wexec accepts it
// (the script body is a function). With `moduleDetection: "force"` (the tsconfig.json that
// `wexec types` writes) each script is its own module, so top-level `await` type-checks and
// two scripts' top-level names never collide.

/// <reference lib="es2022" />
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />

/** A JSON value, as `shared`, request bodies and AI objects hold. */
type WexecJSON = string | number | boolean | null | WexecJSON[] | { [key: string]: WexecJSON };

/** Query and route parameters: a repeated query name or a catch-all segment is an array. */
type WexecParams = { [name: string]: string | string[] | undefined };

/** What a script may return: serialised as JSON, text or bytes, or streamed. */
type WexecAnswer =
  | WexecJSON
  | object
  | string
  | Uint8Array
  | ArrayBuffer
  | Response
  | ReadableStream
  | AsyncIterable<string | Uint8Array>
  | undefined
  | void;

/** The request as a handler receives it (Express-like), its body parsed on first read. */
interface WexecRequest {
  readonly method: string;
  /** The full URL, scheme and host included. */
  readonly url: string;
  /** The path, without the query. */
  readonly path: string;
  /** Lower-case names; credentials (Authorization, X-Token) are removed for @token scripts. */
  readonly headers: { [name: string]: string | undefined };
  readonly query: WexecParams;
  readonly params: WexecParams;
  /** The client's address. */
  readonly ip: string;
  /**
   * The body: parsed JSON for application/json and +json, an object for
   * application/x-www-form-urlencoded (a repeated field is an array), a string for text/*,
   * a Buffer otherwise; undefined without a body.
   */
  body: any;
  /** The body as UTF-8 text ('' without a body): what a signature is computed on. */
  readonly rawBody: string;
  get(name: string): string | undefined;
  header(name: string): string | undefined;
  text(): Promise<string>;
  json(): Promise<any>;
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array>;
}

interface WexecCookieOptions {
  /** Milliseconds. */
  maxAge?: number;
  domain?: string;
  path?: string;
  expires?: Date | string | number;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: boolean | 'Strict' | 'Lax' | 'None';
}

/** The response a handler may build (Express-like); returning a value is the other way. */
interface WexecResponse {
  statusCode: number;
  readonly headersSent: boolean;
  status(code: number): this;
  setHeader(name: string, value: string | number | readonly string[]): this;
  setHeader(headers: { [name: string]: string | number | readonly string[] }): this;
  set(name: string, value: string | number | readonly string[]): this;
  header(name: string, value: string | number | readonly string[]): this;
  append(name: string, value: string | readonly string[]): this;
  getHeader(name: string): string | string[] | undefined;
  get(name: string): string | string[] | undefined;
  hasHeader(name: string): boolean;
  removeHeader(name: string): this;
  getHeaders(): { [name: string]: string | string[] };
  /** A content type, or a short name: json, html, text, xml, js, css, bin, form. */
  type(type: string): this;
  contentType(type: string): this;
  location(url: string): this;
  cookie(name: string, value: string, options?: WexecCookieOptions): this;
  /** Node-style streaming: a response still open when the script waits starts streaming. */
  write(chunk: string | Uint8Array, encoding?: string): boolean;
  end(chunk?: string | Uint8Array, encoding?: string): this;
  json(value: unknown): this;
  /** Strings as HTML, bytes as they are, a stream or async iterable streamed, else JSON. */
  send(value?: unknown): this;
  sendStatus(code: number): this;
  redirect(url: string): this;
  redirect(status: number, url: string): this;
  redirect(url: string, status: number): this;
}

/** What the router and the request tell a script about itself. */
interface WexecMetadata {
  readonly method: string;
  readonly path: string;
  readonly query: WexecParams;
  /** Route parameters from the file name: `[id]` a string, `[...slug]` an array. */
  readonly parameters: WexecParams;
  readonly headers: { [name: string]: string | undefined };
  /** The script's path in its tenant's folder. */
  readonly scriptPath: string;
  /** What started this run: a request (`http`) or the script's `@schedule` (`schedule`). */
  readonly trigger: 'http' | 'schedule';
}

/**
 * State every script of the tenant shares: plain property access, JSON values. An object read
 * from it reads and writes through; an array or a number read is a copy, assigned back.
 */
interface WexecShared {
  [key: string]: any;
  /** Atomic read-modify-write of one top-level key: `fn` runs again if another write won. */
  update<T = any>(key: string, fn: (value: T | undefined) => T | undefined): T | undefined;
  /** Atomically adds `by` (default 1) to a number key; the new value. */
  increment(key: string, by?: number): number;
}

type WexecHandler = (
  req: WexecRequest, res: WexecResponse, metadata: WexecMetadata, shared: WexecShared,
) => WexecAnswer | Promise<WexecAnswer>;

/** A file or folder of the tenant, as `fs.stat` and `fs.list` give it. */
interface WexecFileEntry {
  /** Relative to the tenant's folder. */
  path: string;
  name: string;
  kind: 'file' | 'folder';
  isFile: boolean;
  isDirectory: boolean;
  size: number;
  /** Last modified, milliseconds since the epoch. */
  mtimeMs: number;
}

/** The tenant's folder (the one holding its scripts); paths are relative to it and never
 * leave it. Writes are atomic; a `.ts`/`.js` written here is a live route at once. */
interface WexecFS {
  /** Text (UTF-8 unless another encoding is named), or the bytes with encoding null. */
  read(path: string, options: { encoding: null | 'buffer' } | null | 'buffer'): Promise<Uint8Array>;
  read(path: string, options?: { encoding?: string } | string): Promise<string>;
  write(path: string, data: string | ArrayBuffer | ArrayBufferView): Promise<void>;
  append(path: string, data: string | ArrayBuffer | ArrayBufferView): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** The entries of a folder ('' is the tenant's folder). */
  list(path?: string, options?: { recursive?: boolean }): Promise<WexecFileEntry[]>;
  stat(path: string): Promise<WexecFileEntry>;
  mkdir(path: string): Promise<void>;
  /** A file, or an empty folder. */
  delete(path: string): Promise<void>;
  move(from: string, to: string, options?: { overwrite?: boolean }): Promise<void>;
}

interface WexecChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content: string;
  [field: string]: unknown;
}

/** A model for the AI helpers: `model` (the script's `@ai-model`, else the server's) or
 * `openai('name')`. */
interface WexecModel {
  readonly modelId: string | undefined;
  readonly provider: string;
}

interface WexecUsage {
  promptTokens?: number;
  completionTokens?: number;
  totalTokens?: number;
  inputTokens?: number;
  outputTokens?: number;
}

/** The Vercel AI SDK's call settings that wexec passes on to the provider. */
interface WexecGenerateOptions {
  model?: WexecModel | string;
  system?: string;
  /** A prompt, or `messages`. */
  prompt?: string;
  messages?: WexecChatMessage[];
  temperature?: number;
  maxTokens?: number;
  maxOutputTokens?: number;
  topP?: number;
  stopSequences?: string[];
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
}

interface WexecTextResult {
  text: string;
  usage: WexecUsage | undefined;
  finishReason: string | undefined;
  response: { id: string; modelId: string };
}

interface WexecTextStream extends AsyncIterable<string> {
  /** The text as it is produced; return it to stream it to the client. */
  readonly textStream: ReadableStream<string>;
  readonly text: Promise<string>;
  readonly usage: Promise<WexecUsage | undefined>;
  readonly finishReason: Promise<string | undefined>;
  /** The text stream as a `text/plain` response. */
  toTextStreamResponse(init?: { status?: number; headers?: { [name: string]: string } }): Response;
}

interface WexecObjectResult<T> {
  object: T;
  usage: WexecUsage | undefined;
  finishReason: string | undefined;
}

/** A JSON Schema, as given or wrapped by `jsonSchema()`. */
type WexecSchema = object | { jsonSchema: object };

/** Calls in the provider's own (OpenAI) shape, and `openai('name')` for a model by name. */
interface WexecOpenAI {
  (modelId: string): WexecModel;
  chat: {
    completions: {
      create(request: { model?: string | WexecModel; messages: WexecChatMessage[];
                        stream?: false; [field: string]: unknown }): Promise<any>;
      /** The provider's chunks, as the OpenAI SDK gives them. */
      create(request: { model?: string | WexecModel; messages: WexecChatMessage[];
                        stream: true; [field: string]: unknown }): Promise<ReadableStream<any>>;
    };
  };
}

interface WexecIsolateOptions {
  /** Milliseconds; never more than the caller's remaining time less a margin. */
  timeout?: number;
}

// Node's modules that `require` gives.

interface WexecHash {
  update(data: string | Uint8Array | ArrayBuffer, encoding?: string): this;
  digest(): Buffer;
  digest(encoding: 'hex' | 'base64' | 'base64url' | 'latin1' | 'binary'): string;
  copy(): WexecHash;
}

interface WexecCryptoModule {
  createHash(algorithm: string): WexecHash;
  createHmac(algorithm: string, key: string | Uint8Array | ArrayBuffer): WexecHash;
  hash(algorithm: string, data: string | Uint8Array, encoding?: string): string;
  randomBytes(size: number): Buffer;
  randomUUID(): string;
  randomInt(max: number): number;
  randomInt(min: number, max: number): number;
  randomFillSync<T extends ArrayBufferView>(view: T): T;
  getRandomValues<T extends ArrayBufferView>(view: T): T;
  timingSafeEqual(a: ArrayBufferView, b: ArrayBufferView): boolean;
  getHashes(): string[];
  webcrypto: Crypto;
  subtle: SubtleCrypto;
}

interface WexecUtilModule {
  inspect(value: unknown, options?: object): string;
  format(...args: unknown[]): string;
  isDeepStrictEqual(a: unknown, b: unknown): boolean;
  promisify(fn: (...args: any[]) => void): (...args: any[]) => Promise<any>;
  TextEncoder: typeof TextEncoder;
  TextDecoder: typeof TextDecoder;
  types: {
    isDate(value: unknown): value is Date;
    isRegExp(value: unknown): value is RegExp;
    isPromise(value: unknown): value is Promise<unknown>;
    isUint8Array(value: unknown): value is Uint8Array;
  };
}

interface WexecProcess {
  /** Only what `// @env NAME=value` gives the script. */
  env: { [name: string]: string | undefined };
  version: string;
  versions: { [name: string]: string };
  platform: string;
  arch: string;
  pid: number;
  argv: string[];
  hrtime: { (previous?: [number, number]): [number, number]; bigint(): bigint };
  uptime(): number;
  cwd(): string;
  nextTick(fn: (...args: any[]) => void, ...args: any[]): void;
  memoryUsage(): { rss: number; heapTotal: number; heapUsed: number; external: number;
                   arrayBuffers: number };
  /** Throws: a script cannot end the server's process. */
  exit(code?: number): never;
}

/** Node's Buffer: a Uint8Array with encodings. */
declare class Buffer extends Uint8Array {
  static from(value: string, encoding?: BufferEncoding): Buffer;
  static from(value: ArrayBuffer, byteOffset?: number, length?: number): Buffer;
  static from(value: ArrayLike<number> | Iterable<number>): Buffer;
  static alloc(size: number, fill?: string | number, encoding?: BufferEncoding): Buffer;
  static allocUnsafe(size: number): Buffer;
  static isBuffer(value: unknown): value is Buffer;
  static isEncoding(encoding: string): encoding is BufferEncoding;
  static byteLength(value: string | ArrayBufferView | ArrayBuffer, encoding?: BufferEncoding): number;
  static concat(list: readonly Uint8Array[], totalLength?: number): Buffer;
  static compare(a: Uint8Array, b: Uint8Array): -1 | 0 | 1;
  toString(encoding?: BufferEncoding, start?: number, end?: number): string;
  equals(other: Uint8Array): boolean;
  compare(other: Uint8Array): -1 | 0 | 1;
  slice(start?: number, end?: number): Buffer;
  subarray(start?: number, end?: number): Buffer;
  toJSON(): { type: 'Buffer'; data: number[] };
  write(text: string, offset?: number, length?: number, encoding?: BufferEncoding): number;
  indexOf(value: string | number | Uint8Array, from?: number, encoding?: BufferEncoding): number;
  includes(value: string | number | Uint8Array, from?: number, encoding?: BufferEncoding): boolean;
  readUInt8(offset?: number): number;
  readUInt16LE(offset?: number): number;
  readUInt16BE(offset?: number): number;
  readUInt32LE(offset?: number): number;
  readUInt32BE(offset?: number): number;
  readInt32LE(offset?: number): number;
  readInt32BE(offset?: number): number;
  readFloatLE(offset?: number): number;
  readDoubleLE(offset?: number): number;
  writeUInt8(value: number, offset?: number): number;
  writeUInt32LE(value: number, offset?: number): number;
  writeUInt32BE(value: number, offset?: number): number;
  writeDoubleLE(value: number, offset?: number): number;
}
type BufferEncoding =
  | 'utf8' | 'utf-8' | 'hex' | 'base64' | 'base64url' | 'latin1' | 'binary' | 'ascii'
  | 'utf16le' | 'ucs2';

/** The request. */
declare const req: WexecRequest;
/** The response, for scripts that build it rather than return a value. */
declare const res: WexecResponse;
/** The request's method, path, query, route parameters and headers. */
declare const metadata: WexecMetadata;
/** The tenant's shared state. */
declare const shared: WexecShared;
/** The tenant's files. */
declare const fs: WexecFS;
/** Nested sandboxes. */
declare const isolate: {
  /**
   * Run `code` (JS or TS, top-level `return` allowed) in a fresh sandbox no wider than this
   * one. `bindings`: an object whose keys become its variables (JSON values; `req` and `res`
   * become its own), or `[req, res, fetch]`. Resolves to what it answered (JSON parsed, text
   * or bytes); rejects with its error, line and column.
   */
  eval(code: string, bindings?: { [name: string]: unknown } | unknown[],
       options?: WexecIsolateOptions): Promise<any>;
};

// The AI helpers: their calls are granted to scripts with `// @ai true` (or any @ai-* comment).
/** The script's model (`@ai-model`, else the server's). */
declare const model: WexecModel;
declare const openai: WexecOpenAI;
declare function generateText(options: WexecGenerateOptions): Promise<WexecTextResult>;
declare function streamText(options: WexecGenerateOptions): WexecTextStream;
/** An object the model produces, validated against `schema` (a JSON Schema). */
declare function generateObject<T = any>(
  options: WexecGenerateOptions & { schema: WexecSchema },
): Promise<WexecObjectResult<T>>;
/** Marks a JSON Schema for generateObject, as the AI SDK's jsonSchema() does. */
declare function jsonSchema(schema: object): { jsonSchema: object };
/** The AI helpers in one object. */
declare const ai: {
  generateText: typeof generateText;
  streamText: typeof streamText;
  generateObject: typeof generateObject;
  jsonSchema: typeof jsonSchema;
  model: WexecModel;
  openai: WexecOpenAI;
};

// CommonJS, as scripts may export a handler instead of returning.
/** One WebSocket connection of a worker script with `// @websocket`. */
interface WexecSocket {
  readonly id: string;
  readonly remoteAddress: string;
  /** The upgrade request's path, url, query, params and headers (credentials removed). */
  readonly metadata: { path: string; url: string; query: Record<string, string | string[]>; params: Record<string, string>; headers: Record<string, string> };
  /** The script's own state for this connection. */
  data: any;
  /** 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  send(data: string | ArrayBuffer | ArrayBufferView): boolean;
  close(code?: number, reason?: string): void;
  subscribe(room: string): void;
  unsubscribe(room: string): void;
  /** To every other member of `room`. */
  publish(room: string, data: string | ArrayBuffer | ArrayBufferView): void;
}
interface WexecSocketHandlers {
  open?: ((socket: WexecSocket) => unknown) | null;
  message?: ((socket: WexecSocket, data: string | Uint8Array) => unknown) | null;
  close?: ((socket: WexecSocket, code: number, reason: string) => unknown) | null;
  error?: ((socket: WexecSocket, error: unknown) => unknown) | null;
}
/** WebSocket handlers and helpers of a worker script with `// @websocket`. */
declare const ws: WexecSocketHandlers & {
  /** To every member of `room` (null: every socket of the script), the sender included. */
  broadcast(room: string | null, data: string | ArrayBuffer | ArrayBufferView): void;
  connections(): WexecSocket[];
};
declare const module: { exports: WexecHandler | { [name: string]: unknown } };
declare let exports: { [name: string]: unknown };
declare function require(name: 'crypto' | 'node:crypto'): WexecCryptoModule;
declare function require(name: 'buffer' | 'node:buffer'): { Buffer: typeof Buffer };
declare function require(name: 'url' | 'node:url'): { URL: typeof URL; URLSearchParams: typeof URLSearchParams };
declare function require(name: 'util' | 'node:util'): WexecUtilModule;
declare function require(name: 'timers' | 'node:timers'): {
  setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout;
  setInterval: typeof setInterval; clearInterval: typeof clearInterval;
  setImmediate: typeof setImmediate; clearImmediate: typeof clearImmediate;
};
declare function require(name: 'process' | 'node:process'): WexecProcess;
declare function require(name: string): any;

declare const process: WexecProcess;
declare const global: typeof globalThis;
declare function setImmediate(callback: (...args: any[]) => void, ...args: any[]): number;
declare function clearImmediate(id: number | undefined): void;
