import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { encodeVector } from '../embeddings/chunk.store.js';
import type { VectorComponents } from '../embeddings/dto/embedding.dto.js';
import { type CompiledFilter, compileLangChainFilter } from './filter/langchain-filter.js';
import {
  cosineDistance,
  parseIndexDefinition,
  storedDimensionSql,
  VECTOR_INDEX_PREFIX,
  vectorIndexDefinitionSql,
  type VectorIndexSpec,
} from './vector-index.js';

export interface ChunkSearchQuery {
  collectionUuid: string;
  /** The query vector, already checked against the collection's dimension. */
  embedding: VectorComponents;
  k: number;
  /** The question text: the full-text side of hybrid search. */
  question: string;
  filter?: Record<string, unknown>;
  /** The collection's HNSW index, when it has one: the distance is then written its way. */
  index: VectorIndexSpec | null;
  /** Whether chunk_metadata_terms exists (AddMetadataTermsIndex applied): see searchFilter. */
  metadataTerms: boolean;
}

/** What a search needs to know about its collection, read in one statement. */
export interface SearchTarget {
  uuid: string;
  name: string;
  cmetadata: Record<string, unknown> | null;
  /** Dimension of its stored vectors; null while it holds none. */
  dimension: number | null;
  /** Its valid HNSW index, if it has one. */
  index: VectorIndexSpec | null;
  /** Whether chunk_metadata_terms exists; false on a database where AddMetadataTermsIndex is pending. */
  metadataTerms: boolean;
}

export interface ChunkHit {
  id: string;
  content: string | null;
  metadata: Record<string, unknown>;
  /** Null for a chunk without a vector, which only a hybrid search finds (by its text). */
  score: number | null;
  fusedScore?: number;
  vectorRank?: number | null;
  textRank?: number | null;
}

/** A hybrid search's fused hits, and how many candidates its vector side found. */
export interface HybridHits {
  hits: ChunkHit[];
  /**
   * The vector side's candidates (at most hybridCandidates(k)). Fewer than k from a filtered index
   * scan means it may have stopped at hnsw.max_scan_tuples: the fused hits, which the text side
   * fills up to k, cannot tell.
   */
  vectorCandidates: number;
}

interface HitRow {
  id: string;
  document: string | null;
  cmetadata: Record<string, unknown> | null;
  score: number | null;
  fused_score?: number;
  vector_rank?: string | null;
  text_rank?: string | null;
  vector_candidates?: number;
}

/**
 * The full-text expression of the GIN index ix_embedding_document_fts (AddChunkFullTextIndex,
 * BoundChunkFullTextIndex), verbatim: the first 100,000 characters of a chunk are searchable by text.
 */
const CHUNK_TSVECTOR = `to_tsvector('simple'::regconfig, left(coalesce(e.document, ''), 100000))`;

/** Reciprocal rank fusion constant (Cormack et al. 2009): damps the weight of the very top ranks. */
export const RRF_K = 60;

/** Candidates each side of a hybrid search contributes to the fusion. */
export function hybridCandidates(k: number): number {
  return Math.min(Math.max(k * 4, 40), 400);
}

/**
 * The settings a search may set for its own transaction. Every connection starts with them
 * (searchSessionSettings); these are for a connection that did not (a pooler that drops the startup
 * options: see AskService). Names from this fixed list only.
 */
export interface LocalSearchSettings {
  'hnsw.ef_search'?: number;
  'hnsw.iterative_scan'?: 'relaxed_order';
  'hnsw.max_scan_tuples'?: number;
  max_parallel_workers_per_gather?: number;
}

/**
 * SET LOCAL of each given setting (set_config's is_local), in ONE statement whatever the settings:
 * behind a pooler a search needs up to three, and each statement more is a round trip more on a
 * search of a few milliseconds. One SQL text, so it is prepared once; names and values are bound.
 */
export const SET_LOCAL_SEARCH_SETTINGS_SQL = `SELECT set_config(s.name, s.value, true) FROM unnest($1::text[], $2::text[]) AS s(name, value)`;

export async function setLocalSearchSettings(manager: EntityManager, settings: LocalSearchSettings): Promise<void> {
  const entries = Object.entries(settings).filter(([, value]) => value !== undefined);
  if (entries.length === 0) return;
  await manager.query(SET_LOCAL_SEARCH_SETTINGS_SQL, [
    entries.map(([name]) => name),
    entries.map(([, value]) => String(value)),
  ]);
}

/**
 * The search statements over LangChain's chunk table. Every value is a bound parameter; the only
 * spliced text is the distance expression built from a VectorIndexSpec (a validated uuid and
 * integer) and the filter compiler's output (which holds no user text). Callers run these inside
 * the transaction where they set hnsw.ef_search.
 */
@Injectable()
export class ChunkSearchRepository {
  /**
   * The collection, the dimension of one of its stored vectors, the definition of its valid HNSW
   * index and whether the metadata terms function exists, in ONE round trip (a search is a
   * handful of milliseconds: each statement counts).
   */
  async findTarget(manager: EntityManager, name: string): Promise<SearchTarget | null> {
    const [row] = await manager.query<
      Array<{
        uuid: string;
        name: string;
        cmetadata: Record<string, unknown> | null;
        dims: number | null;
        def: string | null;
        terms: boolean;
      }>
    >(
      `SELECT c.uuid, c.name, c.cmetadata,
              ${storedDimensionSql('c.uuid')} AS dims,
              ${vectorIndexDefinitionSql('c.uuid', '$2', 'indisvalid')} AS def,
              to_regprocedure('chunk_metadata_terms(jsonb)') IS NOT NULL AS terms
         FROM langchain_pg_collection c WHERE c.name = $1`,
      [name, VECTOR_INDEX_PREFIX],
    );
    if (!row) return null;
    return {
      uuid: row.uuid,
      name: row.name,
      cmetadata: row.cmetadata,
      dimension: row.dims === null ? null : Number(row.dims),
      index: parseIndexDefinition(row.uuid, row.def),
      metadataTerms: row.terms,
    };
  }

  /** The k nearest chunks by cosine distance, nearest first. */
  async vectorSearch(manager: EntityManager, query: ChunkSearchQuery): Promise<ChunkHit[]> {
    const distance = cosineDistance(query.index, 'e.embedding', '$1');
    const filter = searchFilter(query, 4);
    // MATERIALIZED + outer ORDER BY: with pgvector's relaxed_order iterative scan the index may
    // return rows slightly out of order; the outer sort restores exact order over the k rows.
    // The ranking carries only each row's ctid and distance: an exact search sorts every chunk
    // that passes the filter, and copying each one's text and metadata into the sort cost more than
    // fetching the k winners again. It fetches them by ctid (a TID scan), not by primary key:
    // carrying the varchar id through the sort and probing the primary key took 0.8 ms more of a
    // 17 ms exact search over 19,857 chunks (docs/PERFORMANCE.md). A ctid names the same row
    // version for the whole statement, since both parts read with one snapshot; and it is unique
    // because the chunk table is a plain table (its migrations build indexes CONCURRENTLY, which a
    // partitioned table refuses). A chunk without a vector has a NULL distance, which sorts after
    // every other: dropping it after the LIMIT gives the same rows as testing
    // `embedding IS NOT NULL` on every chunk the filter passes, which took 0.2 ms of the 17.
    // A halfvec index ranks in half precision, which is what finds the k rows; they are then scored
    // and ordered on the stored vectors, as exact search and hybrid mode score them, so a chunk has
    // one score whichever path found it (and a minScore cut-off does not depend on the path).
    const score = query.index?.type === 'halfvec' ? `(e.embedding <=> $1::vector)` : 'h.distance';
    const rows = await manager.query<HitRow[]>(
      `WITH hits AS MATERIALIZED (
         SELECT e.ctid AS tid, ${distance} AS distance
           FROM langchain_pg_embedding e
          WHERE e.collection_id = $2 AND (${filter.sql})
          ORDER BY ${distance}
          LIMIT $3)
       SELECT e.id, e.document, e.cmetadata, (1 - ${score})::float8 AS score
         FROM hits h JOIN langchain_pg_embedding e ON e.ctid = h.tid
        WHERE h.distance IS NOT NULL
        ORDER BY ${score}, e.id`,
      [encodeVector(query.embedding), query.collectionUuid, query.k, ...filter.params],
    );
    return rows.map(toHit);
  }

  /**
   * Reciprocal rank fusion of the vector ranking and the full-text ranking (ts_rank_cd over the
   * `simple` configuration), each limited to hybridCandidates(k). The question's words are ORed:
   * a question rarely contains every word of the chunk that answers it, and ranking does the rest.
   *
   * Ranking a chunk by its text recomputes its tsvector from the text (the index holds the
   * expression, not the value): about 80 µs for 750 characters. So the text side ranks every chunk
   * that contains a word of the question only when there are at most `textMatchLimit` of them
   * (SEARCH_HYBRID_TEXT_MATCH_LIMIT), which it learns by reading at most one more match than that.
   * When there are more, the words are so common that they say little about which chunk answers
   * (Vietnamese syllables such as "là", "của", "thuế" are in most chunks of a legal corpus), and
   * the text side ranks the vector side's candidates that contain one: a re-ranking of chunks
   * already found by meaning. Without any (a collection without vectors, or a filter that leaves
   * none), it ranks the first matches it read instead: at most one more than the limit. A question whose words were in every chunk took 15–17 s on 100,000
   * chunks before (docs/PERFORMANCE.md). Each pooled chunk's tsvector is computed once
   * (text_pool is MATERIALIZED), then tested and ranked.
   */
  async hybridSearch(manager: EntityManager, query: ChunkSearchQuery, textMatchLimit: number): Promise<HybridHits> {
    const distance = cosineDistance(query.index, 'e.embedding', '$1');
    const filter = searchFilter(query, 8);
    const rows = await manager.query<HitRow[]>(
      // The candidates are ranked after the LIMIT: a window function over the whole scan made the
      // planner sort every chunk (100,000: 58 ms, spilling to disk) instead of keeping the top ones.
      `WITH vector_hits AS MATERIALIZED (
         SELECT c.id, row_number() OVER (ORDER BY c.distance, c.id) AS rank
           FROM (SELECT e.id, ${distance} AS distance
                   FROM langchain_pg_embedding e
                  WHERE e.collection_id = $2 AND e.embedding IS NOT NULL AND (${filter.sql})
                  ORDER BY ${distance}, e.id
                  LIMIT $3) c),
       text_query AS (
         SELECT replace(plainto_tsquery('simple'::regconfig, $4)::text, ' & ', ' | ')::tsquery AS q),
       text_matches AS MATERIALIZED (
         SELECT e.id
           FROM langchain_pg_embedding e, text_query t
          WHERE e.collection_id = $2 AND ${CHUNK_TSVECTOR} @@ t.q AND (${filter.sql})
          LIMIT $7 + 1),
       text_pool AS MATERIALIZED (
         SELECT e.id, ${CHUNK_TSVECTOR} AS tsv
           FROM text_matches m JOIN langchain_pg_embedding e ON e.id = m.id
          WHERE (SELECT count(*) FROM text_matches) <= $7 OR NOT EXISTS (SELECT 1 FROM vector_hits)
         UNION ALL
         SELECT e.id, ${CHUNK_TSVECTOR} AS tsv
           FROM vector_hits v JOIN langchain_pg_embedding e ON e.id = v.id
          WHERE (SELECT count(*) FROM text_matches) > $7),
       text_hits AS MATERIALIZED (
         SELECT p.id, row_number() OVER (ORDER BY ts_rank_cd(p.tsv, t.q) DESC, p.id) AS rank
           FROM text_pool p, text_query t
          WHERE p.tsv @@ t.q
          ORDER BY ts_rank_cd(p.tsv, t.q) DESC, p.id
          LIMIT $3),
       fused AS (
         SELECT coalesce(v.id, t.id) AS id, v.rank AS vector_rank, t.rank AS text_rank,
                coalesce(1.0 / ($5 + v.rank), 0) + coalesce(1.0 / ($5 + t.rank), 0) AS fused_score
           FROM vector_hits v FULL OUTER JOIN text_hits t ON t.id = v.id
          ORDER BY fused_score DESC, id
          LIMIT $6)
       SELECT e.id, e.document, e.cmetadata, f.vector_rank, f.text_rank, f.fused_score::float8 AS fused_score,
              (1 - (e.embedding <=> $1::vector))::float8 AS score,
              (SELECT count(*) FROM vector_hits)::int AS vector_candidates
         FROM fused f JOIN langchain_pg_embedding e ON e.id = f.id
        ORDER BY f.fused_score DESC, e.id`,
      [
        encodeVector(query.embedding),
        query.collectionUuid,
        hybridCandidates(query.k),
        textSearchWords(query.question),
        RRF_K,
        query.k,
        textMatchLimit,
        ...filter.params,
      ],
    );
    // No row: nothing fused, so the vector side found nothing either.
    return { hits: rows.map(toHit), vectorCandidates: rows[0]?.vector_candidates ?? 0 };
  }
}

/**
 * The question's words for the full-text side, composed (NFC) and decomposed (NFD) when the two
 * differ: full-text search compares code points, so "Luật" typed as u + U+031B + U+0323 matches no
 * chunk written composed, as the chunker writes them, and the other way round for chunks stored
 * decomposed (POST /embeddings and LangChain store texts as sent). The words are ORed anyway.
 */
export function textSearchWords(question: string): string {
  const composed = question.normalize('NFC');
  const decomposed = question.normalize('NFD');
  return composed === decomposed ? composed : `${composed} ${decomposed}`;
}

/**
 * The query's filter as SQL for a search statement whose own parameters end before
 * `firstParameterIndex`. AskService has validated the filter, probe policy included; here it only
 * becomes SQL. Its equalities are written so the GIN index ix_cmetadata_terms can find the chunks
 * that match. Without an HNSW index, the terms test alone: an exact search reads only the matching
 * chunks. With one, the terms test and the jsonpath test: the planner reads the terms index when
 * few chunks match (measured at 100,000 chunks, filtered to one document: 111 ms and recall 0.22
 * through the HNSW scan, 1.5 ms and exact through the terms index), and otherwise keeps the HNSW scan,
 * checking its rows with the jsonpath test first. Where AddMetadataTermsIndex is still pending (a
 * server upgraded before `db:migrate`), the jsonpath form alone answers the same, only slower.
 */
function searchFilter(query: ChunkSearchQuery, firstParameterIndex: number): CompiledFilter {
  return compileLangChainFilter(query.filter, {
    column: 'e.cmetadata',
    firstParameterIndex,
    rejectSqlProbes: false,
    equalityForm: !query.metadataTerms ? 'jsonpath' : query.index === null ? 'terms' : 'terms-and-jsonpath',
  });
}

function toHit(row: HitRow): ChunkHit {
  const hit: ChunkHit = {
    id: row.id,
    content: row.document,
    metadata: row.cmetadata ?? {},
    // NULL for a chunk without a vector (a hybrid text match): no distance, so no score, not 0.
    score: row.score === null ? null : Number(row.score),
  };
  if (row.fused_score !== undefined) {
    hit.fusedScore = Number(row.fused_score);
    hit.vectorRank = row.vector_rank == null ? null : Number(row.vector_rank);
    hit.textRank = row.text_rank == null ? null : Number(row.text_rank);
  }
  return hit;
}
