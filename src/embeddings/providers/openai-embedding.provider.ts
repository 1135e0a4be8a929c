import { BadGatewayException, Logger } from '@nestjs/common';
import type { AppConfig } from '../../config/app-config.js';
import { componentsProblem, float32FromLittleEndian } from '../dto/embedding.dto.js';
import type { EmbeddingProvider } from './embedding-provider.js';
import { OpenAIHttpClient, ProviderBatchTooLargeException, type RetryPolicy } from './openai-http.js';

export type OpenAIEmbeddingOptions = NonNullable<AppConfig['embeddings']['openai']>;

/** Requests in flight at once: faster than one at a time, gentle on a local model server's queue. */
const CONCURRENT_REQUESTS = 2;

interface EmbeddingsResponse {
  data?: Array<{ index?: unknown; embedding?: unknown }>;
}

/**
 * Embeddings from an OpenAI-compatible `POST /embeddings` (OpenAI, Azure, Ollama, vLLM, TEI,
 * LiteLLM...). Texts go in batches of `requestBatch`; every vector must have EMBEDDINGS_DIMENSIONS
 * components, because that is what the collections were created with. Failures are HttpExceptions
 * (502/503/504, see OpenAIHttpClient) since the caller is a request handler.
 */
export class OpenAIEmbeddingProvider implements EmbeddingProvider {
  readonly model: string;
  private readonly http: OpenAIHttpClient;
  private readonly logger = new Logger(OpenAIEmbeddingProvider.name);
  /** Whether the provider has refused a batch as too large yet (said once per process, not per batch). */
  private warnedBatchTooLarge = false;

  constructor(
    private readonly options: OpenAIEmbeddingOptions,
    readonly dimensions: number,
    retry: Partial<RetryPolicy> = {},
  ) {
    this.model = options.model;
    this.http = new OpenAIHttpClient(
      { ...options, serviceName: 'Embedding service', inputTooLongIsClientError: true },
      retry,
    );
  }

  async embed(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    const size = this.options.requestBatch;
    const batches = Array.from({ length: Math.ceil(texts.length / size) }, (_, i) =>
      texts.slice(i * size, (i + 1) * size),
    );
    const results: number[][][] = new Array<number[][]>(batches.length);
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      // After one batch fails the whole call fails: send no further requests.
      while (next < batches.length && !failed) {
        const i = next++;
        try {
          results[i] = await this.embedInHalvesIfRefused(batches[i], () => failed);
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENT_REQUESTS, batches.length) }, worker));
    return results.flat();
  }

  /**
   * One batch; when the provider refuses it as too much for one request (OpenAI's 300,000 tokens
   * per request, whatever the model's per-text limit: 128 texts of 3,000 tokens are refused), the
   * two halves, each split again as long as it is refused and holds more than one text. A single
   * text refused so is the provider's 502.
   */
  private async embedInHalvesIfRefused(input: string[], callFailed: () => boolean): Promise<number[][]> {
    try {
      return await this.embedBatch(input);
    } catch (error) {
      // Not split further once another batch of the call has failed: nobody waits for the rest.
      if (!(error instanceof ProviderBatchTooLargeException) || input.length === 1 || callFailed()) throw error;
      if (!this.warnedBatchTooLarge) {
        this.warnedBatchTooLarge = true;
        this.logger.warn(
          `${error.message}: sending its ${input.length} texts in smaller requests. Lower EMBEDDINGS_REQUEST_BATCH ` +
            `(now ${this.options.requestBatch}) to spare the refused requests.`,
        );
      }
      const half = Math.ceil(input.length / 2);
      const first = await this.embedInHalvesIfRefused(input.slice(0, half), callFailed);
      if (callFailed()) throw error;
      return first.concat(await this.embedInHalvesIfRefused(input.slice(half), callFailed));
    }
  }

  private async embedBatch(input: string[]): Promise<number[][]> {
    const body: Record<string, unknown> = { model: this.model, input, encoding_format: 'float' };
    // Only the text-embedding-3 family can shorten its vectors; other servers reject the field.
    if (this.model.startsWith('text-embedding-3')) body.dimensions = this.dimensions;
    const response = (await this.http.postJson('/embeddings', body)) as EmbeddingsResponse | null;
    const data = response?.data;
    if (!Array.isArray(data) || data.length !== input.length) {
      throw this.badResponse(
        `expected ${input.length} embeddings, got ${Array.isArray(data) ? data.length : 'no data array'}`,
      );
    }
    // The API does not promise that `data` comes in input order; `index` says where each belongs.
    const vectors = new Array<number[] | undefined>(input.length);
    data.forEach((item, position) => {
      const index = item?.index ?? position;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= input.length) {
        throw this.badResponse(`embedding index ${JSON.stringify(index)} is out of range`);
      }
      if (vectors[index]) throw this.badResponse(`embedding index ${index} appears twice`);
      vectors[index] = this.toVector(item.embedding);
    });
    return vectors as number[][];
  }

  private toVector(embedding: unknown): number[] {
    // Some servers ignore encoding_format and send base64 little-endian float32 anyway.
    const vector = typeof embedding === 'string' ? decodeBase64Floats(embedding) : embedding;
    if (!Array.isArray(vector) || !vector.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw this.badResponse('an embedding is not an array of finite numbers');
    }
    if (vector.length !== this.dimensions) {
      // Upstream answered, but with vectors the collections cannot hold: a misconfigured gateway, hence 502.
      throw new BadGatewayException(
        `Embedding model "${this.model}" at ${this.http.host} returned ${vector.length}-dimensional vectors ` +
          `but EMBEDDINGS_DIMENSIONS is ${this.dimensions}`,
      );
    }
    // What a client could not send either (an all-zero vector, squares beyond float32, a component
    // beyond float4): stored or searched with, it scores nothing or fails as the client's 400.
    const problem = componentsProblem(vector, 'an embedding');
    if (problem !== null) throw this.badResponse(problem);
    return vector as number[];
  }

  private badResponse(problem: string): BadGatewayException {
    return new BadGatewayException(`Embedding service at ${this.http.host} returned an unusable response: ${problem}`);
  }
}

function decodeBase64Floats(encoded: string): number[] | null {
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.length % 4 !== 0) return null;
  return Array.from(float32FromLittleEndian(bytes));
}
