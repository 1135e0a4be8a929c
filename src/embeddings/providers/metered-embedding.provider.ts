import type { EmbeddingProviderName } from '../../config/app-config.js';
import { UnprocessableEntityException } from '@nestjs/common';
import type { EmbeddingOutcome, MetricsService } from '../../observability/metrics.service.js';
import type { EmbeddingProvider } from './embedding-provider.js';

/**
 * The provider with every `embed` call counted and timed (MetricsService.observeEmbedding): a
 * remote model is the one dependency of a write or a search that is outside the database, and its
 * latency and failures are what an operator needs to see apart from the service's own.
 */
export function meteredProvider(
  provider: EmbeddingProvider,
  name: EmbeddingProviderName,
  metrics: MetricsService,
): EmbeddingProvider {
  return {
    model: provider.model,
    dimensions: provider.dimensions,
    async embed(texts: string[]): Promise<number[][]> {
      const started = performance.now();
      let outcome: EmbeddingOutcome = 'error';
      try {
        const vectors = await provider.embed(texts);
        outcome = 'ok';
        return vectors;
      } catch (error) {
        // A text the model refuses as too long is the client's (a 422), not the provider failing.
        if (error instanceof UnprocessableEntityException) outcome = 'rejected';
        throw error;
      } finally {
        metrics.observeEmbedding(name, texts.length, (performance.now() - started) / 1000, outcome);
      }
    },
  };
}
