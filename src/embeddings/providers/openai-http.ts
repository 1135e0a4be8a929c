import {
  BadGatewayException,
  GatewayTimeoutException,
  type HttpException,
  Logger,
  ServiceUnavailableException,
  UnprocessableEntityException,
} from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import { ServiceUnavailableWithRetryAfter } from '../../common/database-exception.filter.js';
import { redactConnectionStrings } from '../../observability/redact.js';

/** Where and how to reach an OpenAI-compatible API (OpenAI, Azure, Ollama, vLLM, TEI, LiteLLM...). */
export interface OpenAIHttpOptions {
  /** Base URL including the version segment, e.g. `http://localhost:11434/v1`; a trailing slash is ignored. */
  readonly baseUrl: string;
  readonly apiKey?: string;
  /** Per attempt, including reading the response body. */
  readonly timeoutMs: number;
  /** Extra attempts after the first one on 408/429/5xx and network errors. */
  readonly maxRetries: number;
  /** Names the upstream in error messages and logs, e.g. `Embedding service`. */
  readonly serviceName: string;
  /**
   * A 400 saying an input is longer than the model takes is the request's fault (422), not the
   * upstream's (502): true for embeddings, whose inputs are the client's texts; false for the LLM,
   * whose prompt the service builds (LLM_CONTEXT_MAX_CHARS is then set too high for the model).
   */
  readonly inputTooLongIsClientError?: boolean;
}

/**
 * How OpenAI ("This model's maximum context length is 8192 tokens, however you requested …"),
 * Azure OpenAI and Ollama ("input length exceeds the context length") word an input too long for
 * the model in a 400.
 */
const INPUT_TOO_LONG = /maximum context length|exceeds the context length|context length exceeded/i;

/**
 * How OpenAI ("Requested 453357 tokens, max 300000 tokens per request", code max_tokens_per_request),
 * Mistral ("Too many tokens in batch") and servers with a cap on inputs per request ("too many
 * inputs") word a 400 for a request whose texts together are more than it takes, though each alone
 * is not: the same texts pass in smaller requests.
 */
const BATCH_TOO_LARGE = /tokens per request|too many tokens in (?:the )?batch|too many inputs/i;

/**
 * The provider refused a request for holding too much at once (BATCH_TOO_LARGE, or a proxy's 413):
 * a 502 if it reaches a client, but the embedding provider sends such a request again in halves.
 */
export class ProviderBatchTooLargeException extends BadGatewayException {}

/** Backoff tuning; the defaults suit production, tests pass tiny delays or a recording `sleep`. */
export interface RetryPolicy {
  /** First backoff; doubled on each further retry. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the caller is an HTTP request that should not hang. */
  readonly maxRetryAfterMs: number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
}

const DEFAULT_RETRY_POLICY: RetryPolicy = {
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 30_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

const DETAIL_MAX_CHARS = 200;

/**
 * Statuses whose structured error message a client is told: they say what was wrong with the
 * request (an input too long, an unknown model, too much at once, an unprocessable input).
 */
const CLIENT_FAULTS: ReadonlySet<number> = new Set([400, 404, 413, 422]);

/** One failed attempt, before it is known whether it will be retried. */
interface Failure {
  readonly kind: 'http' | 'network' | 'timeout' | 'invalid';
  readonly status?: number;
  /** What a client is told: the status, and a 4xx's structured error message. */
  readonly detail: string;
  /** What the log is told: the same with the upstream's own words, whatever they are. */
  readonly logDetail: string;
  /** A 400 whose message says an input is longer than the model takes (INPUT_TOO_LONG). */
  readonly inputTooLong?: boolean;
  /** A 400 whose message says the request holds more than the provider takes at once (BATCH_TOO_LARGE), or a 413. */
  readonly batchTooLarge?: boolean;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
}

/**
 * JSON POST to an OpenAI-compatible API with a timeout per attempt and retries with exponential
 * backoff and jitter (honouring Retry-After) on 408/429/5xx and network errors.
 *
 * Callers sit behind REST handlers, so every failure is a Nest HttpException naming the upstream
 * host and its status, with a 4xx's structured error message; a 5xx's, a proxy's or an unusable
 * answer's own text goes to the log only (never the API key, nor a connection string's password):
 * - 504 Gateway Timeout: the upstream did not answer within timeoutMs (not retried: the client has
 *   already waited that long, and a stalled model rarely recovers within the next attempt);
 * - 503 Service Unavailable: the upstream is unreachable or still rate-limits us (429) after the
 *   retries, a temporary condition the client may retry later;
 * - 502 Bad Gateway: the upstream answered with an error that retrying does not fix (4xx such as
 *   401/404, a 5xx that persisted through the retries) or with a body we cannot use.
 */
export class OpenAIHttpClient {
  /** `host[:port]` of the base URL, for messages. */
  readonly host: string;
  private readonly baseUrl: string;
  private readonly retry: RetryPolicy;
  private readonly logger = new Logger(OpenAIHttpClient.name);

  constructor(
    private readonly options: OpenAIHttpOptions,
    retry: Partial<RetryPolicy> = {},
  ) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.host = new URL(this.baseUrl).host;
    this.retry = { ...DEFAULT_RETRY_POLICY, ...retry };
  }

  /** POSTs `body` as JSON to `${baseUrl}${path}` and returns the parsed JSON answer. */
  async postJson(path: string, body: unknown): Promise<unknown> {
    const url = `${this.baseUrl}${path}`;
    const payload = JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(url, payload);
      if (!('kind' in result)) return result.json;
      const retriesLeft = attempt <= this.options.maxRetries;
      const delay = result.retryable && retriesLeft ? this.backoff(attempt, result.retryAfterMs) : null;
      if (delay === null) throw this.toHttpException(result, attempt);
      this.logger.warn(
        `${this.describe(result, 'log')}; retry ${attempt}/${this.options.maxRetries} in ${Math.round(delay)} ms`,
      );
      await this.retry.sleep(delay);
    }
  }

  private async attempt(url: string, payload: string): Promise<{ json: unknown } | Failure> {
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: this.headers(),
        body: payload,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      text = await response.text();
    } catch (err) {
      // Duck-typed, not instanceof: fetch's errors may come from another realm (e.g. a jest VM context).
      const name = (err as { name?: unknown } | null)?.name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        const detail = `no answer within ${this.options.timeoutMs} ms`;
        return { kind: 'timeout', detail, logDetail: detail, retryable: false };
      }
      const detail = networkErrorDetail(err);
      return { kind: 'network', detail, logDetail: detail, retryable: true };
    }
    if (!response.ok) {
      const status = response.status;
      const statusLine = `${status} ${response.statusText || STATUS_CODES[status] || ''}`.trim();
      // The upstream's own words. Redacted before they are shortened: a key cut at the excerpt's end
      // would no longer match.
      const words = upstreamMessageOf(this.redact(text));
      // A client hears them only from the structured error ({"error": {"message": …}} and the like)
      // of a status that says what was wrong with the request itself (CLIENT_FAULTS), an API's answer
      // meant for its callers. A 5xx's or a proxy's body is the provider's own failure, and may hold
      // its traceback, paths or a connection string; a 429 names the account: those go to the log
      // only, since the answer reaches anonymous clients. A refused key gets no upstream text:
      // OpenAI's quotes the key partly masked ("sk-proj-ab****wxyz"), which the redaction of the
      // whole key cannot find; the log has it (an Azure 403 may be a firewall, not the key).
      const keyRefused = status === 401 || status === 403;
      const told = CLIENT_FAULTS.has(status) && words.structured ? excerpt(words.text) : '';
      return {
        kind: 'http',
        status,
        detail: statusLine + (keyRefused ? ' (the provider refused the configured API key)' : told),
        logDetail: statusLine + excerpt(words.text),
        retryable: status === 408 || status === 429 || status >= 500,
        retryAfterMs: retryAfterMs(response.headers),
        // The two 400s that are not the upstream failing.
        inputTooLong: status === 400 && INPUT_TOO_LONG.test(words.text),
        batchTooLarge: status === 413 || (status === 400 && BATCH_TOO_LARGE.test(words.text)),
      };
    }
    try {
      return { json: JSON.parse(text) as unknown };
    } catch {
      return {
        kind: 'invalid',
        detail: 'invalid JSON in the response',
        logDetail: `invalid JSON in the response${excerpt(redactConnectionStrings(this.redact(text)))}`,
        retryable: false,
      };
    }
  }

  private headers(): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    const key = this.options.apiKey;
    if (key) {
      headers.authorization = `Bearer ${key}`;
      // Azure OpenAI authenticates API keys by this header rather than the bearer token.
      if (this.host.endsWith('.openai.azure.com')) headers['api-key'] = key;
    }
    return headers;
  }

  /** The wait before the next attempt, or null to give up now (Retry-After asks for too long). */
  private backoff(attempt: number, retryAfter: number | undefined): number | null {
    if (retryAfter !== undefined) return retryAfter <= this.retry.maxRetryAfterMs ? retryAfter : null;
    const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    // "Equal jitter": half fixed, half random, so concurrent callers spread out but still back off.
    return ceiling / 2 + (this.retry.random() * ceiling) / 2;
  }

  /** The failure for a client (`detail`) or for the log (`logDetail`, the upstream's own words too). */
  private describe(failure: Failure, audience: 'client' | 'log'): string {
    const at = `${this.options.serviceName} at ${this.host}`;
    const detail = audience === 'client' ? failure.detail : failure.logDetail;
    switch (failure.kind) {
      case 'timeout':
        return `${at} timed out: ${detail}`;
      case 'network':
        return `${at} is unreachable: ${detail}`;
      case 'http':
      case 'invalid':
        return `${at} failed: ${detail}`;
    }
  }

  private toHttpException(failure: Failure, attempts: number): HttpException {
    const suffix = attempts > 1 ? ` (gave up after ${attempts} attempts)` : '';
    const message = this.redact(this.describe(failure, 'client') + suffix);
    // What the client is not told goes to the log; not for a batch too large, which the embedding
    // provider sends again in halves (and warns about once).
    if (failure.logDetail !== failure.detail && !failure.batchTooLarge) {
      this.logger.warn(this.describe(failure, 'log') + suffix);
    }
    if (failure.kind === 'timeout') return new GatewayTimeoutException(message);
    if (failure.inputTooLong && this.options.inputTooLongIsClientError) {
      return new UnprocessableEntityException(
        `${message}: a text is longer than the embedding model takes; shorten it`,
      );
    }
    // Still rate-limited, and it said for how long: the client is told the same (see the filter).
    if (failure.status === 429 && failure.retryAfterMs !== undefined) {
      return new ServiceUnavailableWithRetryAfter(message, Math.max(1, Math.ceil(failure.retryAfterMs / 1000)));
    }
    if (failure.kind === 'network' || failure.status === 429) return new ServiceUnavailableException(message);
    if (failure.batchTooLarge) return new ProviderBatchTooLargeException(message);
    return new BadGatewayException(message);
  }

  /** Some servers echo the key they rejected; it must not reach a response or a log line. */
  redact(message: string): string {
    const key = this.options.apiKey;
    return key ? message.split(key).join('***') : message;
  }
}

/**
 * The upstream's error message: from a JSON error body as OpenAI, Azure, Ollama, vLLM or TEI write
 * it (`structured`), else the whole text (proxies answer with HTML or plain text). Connection
 * strings' passwords are taken out: a provider's traceback may quote its database's URL.
 */
function upstreamMessageOf(text: string): { text: string; structured: boolean } {
  let message: unknown;
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown; detail?: unknown } | null;
    const error = body?.error;
    message =
      (typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : error) ??
      body?.message ??
      body?.detail;
  } catch {
    // Not JSON.
  }
  if (message === undefined || message === null) return { text: redactConnectionStrings(text), structured: false };
  const words = typeof message === 'string' ? message : JSON.stringify(message);
  return { text: redactConnectionStrings(words), structured: true };
}

function excerpt(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  if (!oneLine) return '';
  return ` (${oneLine.length > DETAIL_MAX_CHARS ? `${oneLine.slice(0, DETAIL_MAX_CHARS)}…` : oneLine})`;
}

/** fetch() wraps the socket error (ECONNREFUSED, ENOTFOUND...) in a TypeError's cause. */
function networkErrorDetail(err: unknown): string {
  const error = err as { message?: unknown; cause?: { code?: unknown; message?: unknown } } | null;
  const cause = error?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return typeof error?.message === 'string' ? error.message : String(err);
}

/** Retry-After as milliseconds: OpenAI's `retry-after-ms`, or `retry-after` in seconds or as an HTTP date. */
function retryAfterMs(headers: Headers): number | undefined {
  const ms = Number(headers.get('retry-after-ms') ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
