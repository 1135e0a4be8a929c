import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { EMBEDDING_PROVIDER, type EmbeddingProvider } from './providers/embedding-provider.js';

/**
 * Why a collection's vectors cannot be compared with the provider's, or null when they can (or
 * when the collection does not record its model, as collections made by other tools often do not).
 * Reads `cmetadata.embedding_model` and `cmetadata.dimensions`, which ChunkStore writes on creation.
 */
export function describeModelMismatch(
  collection: { name: string; cmetadata: Record<string, unknown> | null },
  provider: { model: string; dimensions: number },
): string | null {
  const recordedModel = collection.cmetadata?.embedding_model;
  const recordedDims = collection.cmetadata?.dimensions;
  const model = typeof recordedModel === 'string' && recordedModel !== '' ? recordedModel : null;
  const dims =
    (typeof recordedDims === 'number' || typeof recordedDims === 'string') && Number.isInteger(Number(recordedDims))
      ? Number(recordedDims)
      : null;
  const modelDiffers = model !== null && model !== provider.model;
  const dimsDiffer = dims !== null && dims !== provider.dimensions;
  if (!modelDiffers && !dimsDiffer) return null;
  const recorded = [model !== null ? `model "${model}"` : null, dims !== null ? `${dims} dimensions` : null]
    .filter(Boolean)
    .join(', ');
  return (
    `Collection "${collection.name}" was embedded with ${recorded}, but the configured provider is ` +
    `model "${provider.model}", ${provider.dimensions} dimensions: its vectors are not comparable with new ` +
    `query vectors. Configure EMBEDDINGS_PROVIDER/EMBEDDINGS_MODEL/EMBEDDINGS_DIMENSIONS to match, or re-embed the collection.`
  );
}

/**
 * Why requests that name no collection would miss the stored chunks, or null: the database holds
 * collections, but none named DEFAULT_COLLECTION. LangChain's own default is "langchain", so a
 * database that a LangChain service filled without naming a collection is the usual case: searches
 * answered 404 and writes started a second, empty collection beside it.
 */
export function describeMissingDefaultCollection(names: readonly string[], defaultCollection: string): string | null {
  if (names.length === 0 || names.includes(defaultCollection)) return null;
  const listed = names.slice(0, 5).map((n) => `"${n}"`);
  if (names.length > 5) listed.push(`and ${names.length - 5} more`);
  const hint = names.includes('langchain')
    ? ' (LangChain\'s default collection is "langchain": set DEFAULT_COLLECTION=langchain to serve it)'
    : '';
  return (
    `DEFAULT_COLLECTION is "${defaultCollection}", but the database has no collection of that name; it has ${listed.join(', ')}${hint}. ` +
    'Searches that name no collection answer 404, and writes that name none create it.'
  );
}

/**
 * Warns at startup about collections embedded with another model, and about a DEFAULT_COLLECTION
 * that names none of the stored collections; never stops the service.
 */
@Injectable()
export class CollectionModelCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger(CollectionModelCheck.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(EMBEDDING_PROVIDER) private readonly provider: EmbeddingProvider,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      const collections = await this.dataSource.query<
        Array<{ name: string; cmetadata: Record<string, unknown> | null }>
      >(`SELECT name, cmetadata FROM langchain_pg_collection ORDER BY name`);
      for (const collection of collections) {
        const problem = describeModelMismatch(collection, this.provider);
        if (problem) this.logger.warn(problem);
      }
      // Only in the HTTP service, whose requests it is about: a CLI's output is its answer.
      const serving = Boolean(this.adapterHost.httpAdapter); // null in an application context
      const missing =
        serving &&
        describeMissingDefaultCollection(
          collections.map((c) => c.name),
          this.config.embeddings.defaultCollection,
        );
      if (missing) this.logger.warn(missing);
    } catch (err) {
      // A server database that is not migrated yet has no such table; the check is advice, not a gate.
      this.logger.warn(`Could not compare collections with the embedding model: ${(err as Error).message}`);
    }
  }
}
