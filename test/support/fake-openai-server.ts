import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LocalEmbeddingProvider } from '../../src/embeddings/providers/local-embedding.provider.js';

export interface FakeOpenAIServerOptions {
  /** Vector length when a request does not ask for one (`dimensions`); default 64. */
  dimensions?: number;
  /** When set, requests without `Authorization: Bearer <apiKey>` get a 401 that echoes the key sent. */
  apiKey?: string;
  /**
   * When set, an embeddings input longer than this many characters gets OpenAI's 400 for an input
   * beyond the model's context (a character counted as a token).
   */
  maxInputChars?: number;
  /**
   * When set, an embeddings request whose inputs hold more characters than this together gets
   * OpenAI's 400 for a request over its tokens per request (a character counted as a token).
   */
  maxRequestChars?: number;
}

/** The fields of OpenAI requests the tests look at; anything else is kept as sent. */
export interface FakeRequestBody {
  model?: string;
  input?: string | string[];
  dimensions?: number;
  encoding_format?: string;
  messages?: Array<{ role: string; content: string }>;
  [field: string]: unknown;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; null when it was empty or not JSON. */
  body: FakeRequestBody | null;
}

export interface FakeOpenAIServer {
  /** Base URL including `/v1`, as EMBEDDINGS_BASE_URL / LLM_BASE_URL take it. */
  readonly url: string;
  /** Every request received, in arrival order (scripted failures included). */
  readonly requests: RecordedRequest[];
  /**
   * The next `times` requests get this status (with these headers) and an OpenAI-style error body,
   * or `body` as plain text.
   */
  failNext(status: number, times?: number, headers?: Record<string, string>, body?: string): void;
  /** Waits this long before answering each following request (0 = answer at once). */
  setDelay(ms: number): void;
  /** Holds every answer from now on until release(): a slow provider without a race against a timeout. */
  hold(): void;
  /** Sends the answers held since hold(), and answers at once again. */
  release(): void;
  close(): Promise<void>;
}

/**
 * A local stand-in for an OpenAI-compatible API on 127.0.0.1. `/v1/embeddings` answers with the
 * local provider's deterministic vectors (so searches over them behave like the local provider),
 * in reverse `index` order to prove that clients sort; `/v1/chat/completions` answers citing the
 * first passage id of the prompt (the `Passage <n> [<id>]:` headings of formatAnswerPrompt).
 */
export async function startFakeOpenAIServer(options: FakeOpenAIServerOptions = {}): Promise<FakeOpenAIServer> {
  const requests: RecordedRequest[] = [];
  const failures: Array<{ status: number; headers: Record<string, string>; body?: string }> = [];
  const timers = new Set<NodeJS.Timeout>();
  let delayMs = 0;
  let held: Array<() => void> | null = null;

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
    let body: FakeRequestBody | null = null;
    try {
      body = raw ? (JSON.parse(raw) as FakeRequestBody) : null;
    } catch {
      body = null;
    }
    const path = (req.url ?? '').split('?')[0];
    requests.push({ method: req.method ?? '', path, headers: req.headers, body });
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
    };
    const answer = () => {
      const failure = failures.shift();
      if (failure?.body !== undefined) {
        if (res.destroyed) return;
        res.writeHead(failure.status, { 'content-type': 'text/plain', ...failure.headers });
        res.end(failure.body);
        return;
      }
      if (failure) {
        send(
          failure.status,
          { error: { message: `Scripted failure ${failure.status}`, type: 'server_error' } },
          failure.headers,
        );
        return;
      }
      const auth = req.headers.authorization;
      if (options.apiKey !== undefined && auth !== `Bearer ${options.apiKey}`) {
        // Real servers echo (part of) the rejected key; clients must not pass that on.
        const sent = auth?.replace(/^Bearer /, '') ?? '';
        send(401, { error: { message: `Incorrect API key provided: ${sent}`, type: 'invalid_request_error' } });
        return;
      }
      const inputs = body?.input === undefined ? [] : Array.isArray(body.input) ? body.input : [body.input];
      const longest = Math.max(0, ...inputs.map((input) => input.length));
      if (path === '/v1/embeddings' && options.maxInputChars !== undefined && longest > options.maxInputChars) {
        send(400, {
          error: {
            message: `This model's maximum context length is ${options.maxInputChars} tokens, however you requested ${longest} tokens (${longest} in your prompt; 0 for the completion). Please reduce your prompt; or completion length.`,
            type: 'invalid_request_error',
            param: null,
            code: null,
          },
        });
        return;
      }
      const total = inputs.reduce((sum, input) => sum + input.length, 0);
      if (path === '/v1/embeddings' && options.maxRequestChars !== undefined && total > options.maxRequestChars) {
        send(400, {
          error: {
            message: `Requested ${total} tokens, max ${options.maxRequestChars} tokens per request`,
            type: 'max_tokens_per_request',
            param: null,
            code: 'max_tokens_per_request',
          },
        });
        return;
      }
      if (req.method === 'POST' && path === '/v1/embeddings') send(200, embeddings(body, options.dimensions ?? 64));
      else if (req.method === 'POST' && path === '/v1/chat/completions') send(200, chatCompletion(body));
      else send(404, { error: { message: `Unknown route ${req.method} ${path}` } });
    };
    if (held !== null) {
      held.push(answer);
    } else if (delayMs > 0) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer();
      }, delayMs);
      timers.add(timer);
    } else {
      answer();
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    failNext(status, times = 1, headers = {}, body) {
      for (let i = 0; i < times; i++) failures.push({ status, headers, body });
    },
    setDelay(ms) {
      delayMs = ms;
    },
    hold() {
      held ??= [];
    },
    release() {
      const answers = held ?? [];
      held = null;
      answers.forEach((answer) => answer());
    },
    close: () => {
      timers.forEach(clearTimeout);
      timers.clear();
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

function embeddings(body: FakeRequestBody | null, defaultDimensions: number): unknown {
  const input = typeof body?.input === 'string' ? [body.input] : (body?.input ?? []);
  const dimensions = typeof body?.dimensions === 'number' ? body.dimensions : defaultDimensions;
  const provider = new LocalEmbeddingProvider(dimensions);
  const data = input.map((text, index) => ({ object: 'embedding', index, embedding: provider.embedOne(text) }));
  return { object: 'list', model: body?.model, data: data.reverse(), usage: { prompt_tokens: 0, total_tokens: 0 } };
}

function chatCompletion(body: FakeRequestBody | null): unknown {
  const messages = body?.messages ?? [];
  const prompt = messages.find((m) => m.role === 'user')?.content ?? '';
  const first = /^Passage \d+ \[(.+)\]:$/m.exec(prompt);
  const content = first
    ? `According to the context, the answer is in passage [${first[1]}].`
    : 'I do not know: the context does not say.';
  return {
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    model: body?.model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  };
}
