/**
 * Turns texts into vectors. Injected by the EMBEDDING_PROVIDER token and chosen by
 * EMBEDDINGS_PROVIDER, so tests and offline laptops use the local provider and production a real one.
 */
export interface EmbeddingProvider {
  /** Model name recorded in a collection's cmetadata (`embedding_model`). */
  readonly model: string;
  /** Length of every vector this provider returns. */
  readonly dimensions: number;
  embed(texts: string[]): Promise<number[][]>;
}

export const EMBEDDING_PROVIDER = Symbol('EMBEDDING_PROVIDER');
