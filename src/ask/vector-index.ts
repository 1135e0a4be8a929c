import { sqlState } from '../database/connection-errors.js';

/**
 * The shape of a per-collection HNSW index, shared by the index command (which builds it) and the
 * search query (which must repeat its expression exactly, or the planner cannot use it).
 *
 * `langchain_pg_embedding.embedding` is unsized (collections differ in dimension), and pgvector can
 * only index a sized column. So each collection gets a partial expression index:
 *   USING hnsw ((embedding::vector(N)) vector_cosine_ops) WHERE collection_id = '<uuid>'
 * Above 2000 dimensions HNSW cannot index `vector`; it can index `halfvec` up to 4000, so the cast
 * is to halfvec(N) with halfvec_cosine_ops (pgvector ≥ 0.7). 3072-dim OpenAI vectors land there.
 */

/** HNSW on `vector` stops at 2000 dimensions, on `halfvec` at 4000 (pgvector limits). */
export const MAX_VECTOR_INDEX_DIMENSIONS = 2000;
export const MAX_HALFVEC_INDEX_DIMENSIONS = 4000;

/** The largest finite half-precision value: a halfvec index cannot hold a component beyond ±this. */
export const HALFVEC_MAX = 65504;

/** The index of the first component a half-precision index cannot hold (beyond ±HALFVEC_MAX), or -1. */
export function firstBeyondHalfvec(components: ArrayLike<number>): number {
  for (let i = 0; i < components.length; i++) {
    if (Math.abs(components[i]) > HALFVEC_MAX) return i;
  }
  return -1;
}

/** Whether an error is PostgreSQL's numeric_value_out_of_range (22003), e.g. pgvector's halfvec cast. */
export function isOutOfRangeError(error: unknown): boolean {
  return sqlState(error) === '22003';
}

/** Every index this service manages starts with this; schema comparison (db:check) ignores them. */
export const VECTOR_INDEX_PREFIX = 'ix_embedding_hnsw_';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface VectorIndexSpec {
  /** `ix_embedding_hnsw_<collection uuid without dashes>`: 50 characters, under PostgreSQL's 63. */
  readonly name: string;
  readonly collectionUuid: string;
  readonly dimensions: number;
  readonly type: 'vector' | 'halfvec';
}

/**
 * The index for a collection of `dimensions`-dimensional vectors. Throws a RangeError for a
 * dimension HNSW cannot index or a malformed uuid: both are spliced into DDL (which takes no bound
 * parameters), so they are checked here, where the statement is built.
 */
export function vectorIndexSpec(collectionUuid: string, dimensions: number): VectorIndexSpec {
  if (!UUID.test(collectionUuid)) throw new RangeError(`"${collectionUuid}" is not a collection uuid`);
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_HALFVEC_INDEX_DIMENSIONS) {
    throw new RangeError(
      `HNSW cannot index ${dimensions}-dimensional vectors: pgvector indexes up to ${MAX_HALFVEC_INDEX_DIMENSIONS} (as halfvec)`,
    );
  }
  return {
    name: vectorIndexName(collectionUuid),
    collectionUuid,
    dimensions,
    type: dimensions > MAX_VECTOR_INDEX_DIMENSIONS ? 'halfvec' : 'vector',
  };
}

/** The name of a collection's index (whether or not it exists). */
export function vectorIndexName(collectionUuid: string): string {
  return `${VECTOR_INDEX_PREFIX}${collectionUuid.replace(/-/g, '')}`;
}

/** The collection uuid an index name carries (the inverse of vectorIndexName), or null for another name. */
export function collectionUuidOf(indexName: string): string | null {
  if (!indexName.startsWith(VECTOR_INDEX_PREFIX)) return null;
  const hex = indexName.slice(VECTOR_INDEX_PREFIX.length);
  if (!/^[0-9a-f]{32}$/.test(hex)) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** `...::vector(384))` / `...::halfvec(3072))` in pg_get_indexdef output. */
export const INDEXED_CAST = /::(vector|halfvec)\((\d+)\)/;

/** The spec of an existing index from its pg_get_indexdef() text; null when it is not ours. */
export function parseIndexDefinition(collectionUuid: string, definition: string | null): VectorIndexSpec | null {
  const cast = definition ? INDEXED_CAST.exec(definition) : null;
  return cast ? vectorIndexSpec(collectionUuid, Number(cast[2])) : null;
}

/**
 * A scalar subquery: the dimension of one stored vector of the collection whose uuid the SQL
 * expression `collectionUuid` gives (a column or a parameter; null when it holds none). One row is
 * enough: every vector of a collection has its dimension (the writers check it).
 */
export function storedDimensionSql(collectionUuid: string): string {
  return `(SELECT vector_dims(e.embedding) FROM langchain_pg_embedding e
            WHERE e.collection_id = ${collectionUuid} AND e.embedding IS NOT NULL LIMIT 1)`;
}

/**
 * A scalar subquery: the definition (pg_get_indexdef) of the vector index of the collection whose
 * uuid the SQL expression `collectionUuid` gives, or null; `prefixParam` is the parameter bound to
 * VECTOR_INDEX_PREFIX. `state` says which index counts: a search may use one that is `indisvalid`;
 * a write must respect one that is only `indisready` too (a concurrent build in progress already
 * receives the new rows, and refuses a row of another dimension).
 */
export function vectorIndexDefinitionSql(
  collectionUuid: string,
  prefixParam: string,
  state: 'indisvalid' | 'indisready',
): string {
  return `(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
             JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
            WHERE n.nspname = current_schema() AND i.${state}
              AND ic.relname = ${prefixParam} || replace(${collectionUuid}::text, '-', ''))`;
}

/** `embedding::vector(N)` (or halfvec): the indexed expression, over the given column reference. */
export function indexedExpression(spec: VectorIndexSpec, column: string): string {
  return `(${column}::${spec.type}(${spec.dimensions}))`;
}

/**
 * The cosine distance between the chunk column and the query vector in `param`. With an index, the
 * index's expression (so the planner can use it); without one, the exact full-precision distance.
 * The parameter is always typed `vector` (ChunkSearchRepository sends it in pgvector's binary
 * `vector` format), and cast from there to a halfvec index's type.
 */
export function cosineDistance(spec: VectorIndexSpec | null, column: string, param: string): string {
  if (!spec) return `(${column} <=> ${param}::vector)`;
  return `(${indexedExpression(spec, column)} <=> ${param}::vector::${spec.type}(${spec.dimensions}))`;
}

export interface HnswBuildOptions {
  /** Max connections per layer (pgvector default 16). */
  m?: number;
  /**
   * Candidate list size while building. 128, not pgvector's 64: at 64 recall@10 sat right at 0.95 on
   * the 100k × 384 benchmark; a better graph costs a slower build once (docs/PERFORMANCE-HISTORY.md).
   */
  efConstruction?: number;
}

/** The CREATE INDEX statement; CONCURRENTLY on a server so chunk writers keep writing meanwhile. */
export function createIndexStatement(
  spec: VectorIndexSpec,
  options: HnswBuildOptions & { concurrently: boolean },
): string {
  const m = options.m ?? 16;
  const efConstruction = options.efConstruction ?? 128;
  if (!Number.isInteger(m) || m < 2 || m > 100) throw new RangeError('m must be an integer from 2 to 100');
  if (!Number.isInteger(efConstruction) || efConstruction < 4 || efConstruction > 1000 || efConstruction < 2 * m) {
    throw new RangeError('ef_construction must be an integer from 4 to 1000 and at least 2 × m');
  }
  const ops = spec.type === 'halfvec' ? 'halfvec_cosine_ops' : 'vector_cosine_ops';
  return (
    `CREATE INDEX ${options.concurrently ? 'CONCURRENTLY ' : ''}${spec.name} ON langchain_pg_embedding ` +
    `USING hnsw (${indexedExpression(spec, 'embedding')} ${ops}) WITH (m = ${m}, ef_construction = ${efConstruction}) ` +
    `WHERE collection_id = '${spec.collectionUuid}'::uuid`
  );
}
