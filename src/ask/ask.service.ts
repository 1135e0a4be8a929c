import {
  BadRequestException,
  Inject,
  Injectable,
  NotFoundException,
  Optional,
  ServiceUnavailableException,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { performance } from 'node:perf_hooks';
import type { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ReadReplicas } from '../database/read-replicas.service.js';
import { ChunkStore } from '../embeddings/chunk.store.js';
import type { VectorComponents } from '../embeddings/dto/embedding.dto.js';
import { describeModelMismatch } from '../embeddings/collection-model.check.js';
import { EMBEDDING_PROVIDER, type EmbeddingProvider } from '../embeddings/providers/embedding-provider.js';
import { MetricsService } from '../observability/metrics.service.js';
import { ANSWER_GENERATOR, type AnswerGenerator } from './answer/answer-generator.js';
import {
  type ChunkHit,
  ChunkSearchRepository,
  type ChunkSearchQuery,
  hybridCandidates,
  type HybridHits,
  type SearchTarget,
  setLocalSearchSettings,
} from './chunk-search.repository.js';
import type { AskRequestDto, AskResponseDto, AskResultDto, SearchMode } from './dto/ask.dto.js';
import { compileLangChainFilter, InvalidFilterError } from './filter/langchain-filter.js';
import { SearchTargetCache } from './search-target.cache.js';
import { firstBeyondHalfvec } from './vector-index.js';
import { vectorDimensionProblem } from '../common/database-exception.filter.js';

export const DEFAULT_K = 5;

/** Lookups of the collection one search may make after the first, on signs that it changed meanwhile. */
const MAX_LOOKUPS_PER_SEARCH = 3;
/** pgvector's upper bound for hnsw.ef_search. */
const MAX_EF_SEARCH = 1000;

/** The query vector of a hybrid search in a collection that holds no vectors (see AskService.ask). */
const TEXT_ONLY_VECTOR: VectorComponents = Float32Array.of(1);

@Injectable()
export class AskService {
  private session?: Promise<SessionSettings>;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(EMBEDDING_PROVIDER) private readonly provider: EmbeddingProvider,
    @Inject(ANSWER_GENERATOR) private readonly answers: AnswerGenerator | null,
    private readonly chunks: ChunkStore,
    private readonly search: ChunkSearchRepository,
    private readonly targets: SearchTargetCache,
    private readonly replicas: ReadReplicas,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  async ask(dto: AskRequestDto): Promise<AskResponseDto> {
    const started = performance.now();
    const k = dto.k ?? DEFAULT_K;
    const mode = dto.mode ?? 'vector';
    const collectionName = dto.collection ?? this.config.embeddings.defaultCollection;
    if (dto.answer && !this.answers) {
      throw new BadRequestException(
        'answer: true needs an LLM, and none is configured: set LLM_BASE_URL to an OpenAI-compatible API (e.g. https://api.openai.com/v1 or http://localhost:11434/v1), LLM_MODEL and, if it needs one, LLM_API_KEY',
      );
    }
    assertValidFilter(dto.filter, this.config.search.rejectSqlProbes);

    if (collectionName.includes('\u0000')) throw new NotFoundException(`Collection not found`);
    // A cached target may be stale (another process deleted or recreated the collection, or changed
    // its index): whatever looks like staleness is looked up again once, then trusted.
    const cached = this.targets.get(collectionName);
    let target = cached ?? (await this.lookUp(collectionName));
    let embedding: VectorComponents | undefined;
    let hits: ChunkHit[] = [];
    // Each re-lookup follows a sign that the collection changed since the last one. Bounded: with
    // read replicas, a lagging one can answer the lookups while a current one answers the searches.
    let lookUps = 0;
    const lookUpAgain = (): Promise<SearchTarget> => {
      lookUps += 1;
      if (lookUps > MAX_LOOKUPS_PER_SEARCH) {
        throw new ServiceUnavailableException(
          `Collection "${collectionName}" kept changing during the search (a read replica behind the others?); retry shortly`,
        );
      }
      return this.lookUp(collectionName);
    };
    for (;;) {
      const fromCache = target === cached;
      // No stored vector to compare with: a vector search finds nothing, a hybrid one still finds
      // chunks by their text (score null). Its vector side is empty whatever the query vector, so
      // none is computed: a one-component stand-in, compared with no row, and no index.
      const textOnly = target.dimension === null;
      if (textOnly && mode !== 'hybrid') break;
      let queryVector: VectorComponents = TEXT_ONLY_VECTOR;
      if (!textOnly) {
        embedding ??= dto.queryEmbedding ?? (await this.provider.embed([dto.question]))[0];
        if (embedding.length !== target.dimension) {
          if (fromCache) {
            target = await lookUpAgain();
            continue;
          }
          throw new BadRequestException(
            dto.queryEmbedding
              ? `queryEmbedding has ${embedding.length} dimensions, but collection "${target.name}" holds ${target.dimension}-dimensional vectors`
              : (describeModelMismatch(target, this.provider) ??
                  `Collection "${target.name}" holds ${target.dimension}-dimensional vectors, but the configured embedding model "${this.provider.model}" produces ${embedding.length}: configure EMBEDDINGS_PROVIDER/EMBEDDINGS_MODEL/EMBEDDINGS_DIMENSIONS to match the collection, or pass queryEmbedding`),
          );
        }
        queryVector = embedding;
      }
      try {
        hits = await this.searchIn(target, queryVector, textOnly ? { ...dto, exact: true } : dto, mode, k);
      } catch (error) {
        // Vectors of another dimension under the cached uuid: the collection changed meanwhile (and
        // the stand-in of a text-only search met the first vectors written since the lookup).
        if ((!fromCache && !textOnly) || !isDimensionError(error)) throw error;
        target = await lookUpAgain();
        continue;
      }
      if (fromCache && hits.length === 0) {
        // Nothing under the cached uuid: maybe the collection was deleted (then a 404) or recreated
        // under a new uuid; or the search rightly found nothing (then the same target, same answer).
        const fresh = await lookUpAgain();
        if (!sameTarget(fresh, target)) {
          target = fresh;
          continue;
        }
      }
      break;
    }

    const results = hits
      .filter((h) => dto.minScore === undefined || (h.score !== null && h.score >= dto.minScore))
      .map(toAskResult);
    const response: AskResponseDto = { question: dto.question, mode, collection: target.name, results, tookMs: 0 };
    if (dto.answer && this.answers) {
      const generated = await this.answers.generate(
        dto.question,
        results.map((r) => ({ id: r.id, content: r.content ?? '' })),
      );
      response.answer = { text: generated.answer, citations: generated.citations, model: this.answers.model };
    }
    response.tookMs = Math.round((performance.now() - started) * 10) / 10;
    return response;
  }

  /** The collection (404 when there is none), looked up now and remembered for the next searches. */
  private async lookUp(collectionName: string): Promise<SearchTarget> {
    // Reads only: on a read replica when there are some (see ReadReplicas for the lag).
    const target = await this.replicas.run((manager) => this.search.findTarget(manager, collectionName));
    this.targets.set(collectionName, target);
    if (!target) throw new NotFoundException(`Collection "${collectionName}" not found`);
    return target;
  }

  private async searchIn(
    target: SearchTarget,
    embedding: VectorComponents,
    dto: AskRequestDto,
    mode: SearchMode,
    k: number,
  ): Promise<ChunkHit[]> {
    const query: ChunkSearchQuery = {
      collectionUuid: target.uuid,
      embedding,
      k,
      question: dto.question,
      // null is "no filter" (docs/FILTERS.md): not a filtered search, which may be run again exactly.
      filter: dto.filter ?? undefined,
      // Without the index's expression the planner cannot use the HNSW index: every chunk that
      // passes the filter is compared, as in a collection that has none. So too for a query vector a
      // half-precision index cannot hold (a component beyond ±65504): the cast would fail, the
      // exact distance does not.
      index: dto.exact || !fitsIndex(target.index, embedding) ? null : target.index,
      metadataTerms: target.metadataTerms,
    };
    const started = performance.now();
    try {
      const { hits, vectorCandidates } = await this.runSearch(query, mode);
      // A filtered index scan walks the graph until k chunks pass the filter, but visits at most
      // hnsw.max_scan_tuples: when few chunks pass, it can stop with fewer than k though more exist.
      // Fewer than k from the scan is the sign (in hybrid mode the text side fills the fused hits
      // up to k whatever the scan found); the exact search over the chunks the filter passes is the
      // answer (and when it is an equality, ix_cmetadata_terms reads only those).
      if (query.index === null || query.filter === undefined || vectorCandidates >= k) return hits;
      this.metrics?.countExactRetry(mode);
      return (await this.runSearch({ ...query, index: null }, mode)).hits;
    } finally {
      this.metrics?.observeSearch(mode, (performance.now() - started) / 1000);
    }
  }

  /** One search statement, in a transaction that sets what the connection did not start with. */
  private async runSearch(query: ChunkSearchQuery, mode: SearchMode): Promise<HybridHits> {
    const run = async (manager: EntityManager): Promise<HybridHits> => {
      if (mode === 'hybrid') return this.search.hybridSearch(manager, query, this.config.search.hybridTextMatchLimit);
      const hits = await this.search.vectorSearch(manager, query);
      return { hits, vectorCandidates: hits.length };
    };
    const session = await this.sessionSettings();
    if (!query.index) {
      // Exact distances: of the settings, only the parallel workers matter.
      if (session.parallelWorkersPreset) return this.replicas.run(run);
      return this.replicas.transaction(async (manager) => {
        await setLocalSearchSettings(manager, { max_parallel_workers_per_gather: this.config.search.parallelWorkers });
        return run(manager);
      });
    }
    // hnsw.ef_search caps how many rows one index scan returns: below k, or below the hybrid
    // candidate count, a search would silently return fewer rows. With a filter, pgvector 0.8's
    // iterative scan keeps walking the graph until enough rows pass it.
    const wanted = mode === 'hybrid' ? hybridCandidates(query.k) : query.k;
    if (session.hnswPreset && wanted <= this.config.search.hnswEfSearch) {
      // Every pooled connection already has these settings (see searchSessionOptions): one statement.
      return this.replicas.run(run);
    }
    const iterative = query.filter !== undefined && session.iterativeScans;
    return this.replicas.transaction(async (manager) => {
      // SET LOCAL, not SET: the pool hands this connection to other requests afterwards.
      await setLocalSearchSettings(manager, {
        'hnsw.ef_search': Math.min(Math.max(this.config.search.hnswEfSearch, wanted), MAX_EF_SEARCH),
        'hnsw.iterative_scan': iterative ? 'relaxed_order' : undefined,
        'hnsw.max_scan_tuples': iterative ? this.config.search.hnswMaxScanTuples : undefined,
        // The workers too: a filter few chunks pass is read through ix_cmetadata_terms and sorted
        // exactly, not by the index.
        max_parallel_workers_per_gather: session.parallelWorkersPreset ? undefined : this.config.search.parallelWorkers,
      });
      return run(manager);
    });
  }

  /**
   * Whether pgvector has iterative index scans (≥ 0.8), and whether connections start with the
   * search settings (searchSessionSettings): a server connection and the embedded session do; a
   * pooler that drops the startup `options` does not, and then every search sets what it needs with
   * SET LOCAL. Asked once per process.
   */
  private sessionSettings(): Promise<SessionSettings> {
    this.session ??= this.dataSource
      .query<
        Array<{ v: string | null; ef: string | null; it: string | null; scan: string | null; workers: string | null }>
      >(
        `SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS v,
                current_setting('hnsw.ef_search', true) AS ef, current_setting('hnsw.iterative_scan', true) AS it,
                current_setting('hnsw.max_scan_tuples', true) AS scan,
                current_setting('max_parallel_workers_per_gather') AS workers`,
      )
      .then(([row]) => {
        const [major, minor] = (row?.v ?? '0.0').split('.').map(Number);
        const iterativeScans = major > 0 || minor >= 8;
        const hnswPreset =
          row?.ef === String(this.config.search.hnswEfSearch) &&
          (!iterativeScans ||
            (row.it === 'relaxed_order' && row.scan === String(this.config.search.hnswMaxScanTuples)));
        const parallelWorkersPreset = row?.workers === String(this.config.search.parallelWorkers);
        return { iterativeScans, hnswPreset, parallelWorkersPreset };
      })
      .catch((error: unknown) => {
        // Not cached when the database was unreachable: the next request asks again.
        this.session = undefined;
        throw error;
      });
    return this.session;
  }
}

/** What AskService.sessionSettings found on a connection. */
interface SessionSettings {
  iterativeScans: boolean;
  /** hnsw.ef_search, hnsw.iterative_scan and hnsw.max_scan_tuples as configured. */
  hnswPreset: boolean;
  /** max_parallel_workers_per_gather as configured (SEARCH_PARALLEL_WORKERS). */
  parallelWorkersPreset: boolean;
}

/** A malformed filter is the client's mistake: a 400 naming the part, before any query runs. */
function assertValidFilter(filter: Record<string, unknown> | undefined, rejectSqlProbes: boolean): void {
  try {
    compileLangChainFilter(filter, { column: 'e.cmetadata', firstParameterIndex: 1, rejectSqlProbes });
  } catch (error) {
    if (error instanceof InvalidFilterError) throw new BadRequestException(error.message);
    throw error;
  }
}

/**
 * Smallest magnitude that half precision does not round to zero (half its smallest subnormal,
 * 2^-24 / 2): pgvector turns smaller components into 0 when it casts to halfvec.
 */
const HALFVEC_MIN_NONZERO = 2 ** -25;

/**
 * Whether the query vector can be cast to the index's type: a halfvec index holds up to ±65504,
 * and a query all of whose components are tinier than half precision holds became a zero vector,
 * whose cosine distance is NaN for every chunk (the index scan then answered arbitrary chunks).
 * Such queries are searched exactly instead.
 */
function fitsIndex(index: SearchTarget['index'], embedding: VectorComponents): boolean {
  if (index?.type !== 'halfvec') return true;
  return firstBeyondHalfvec(embedding) === -1 && embedding.some((c) => Math.abs(c) >= HALFVEC_MIN_NONZERO);
}

/** pgvector's errors for vectors of two dimensions meeting (a distance, or a cast to vector(N)). */
function isDimensionError(error: unknown): boolean {
  return vectorDimensionProblem(error) !== null;
}

function sameTarget(a: SearchTarget, b: SearchTarget): boolean {
  return (
    a.uuid === b.uuid &&
    a.dimension === b.dimension &&
    a.index?.name === b.index?.name &&
    a.index?.dimensions === b.index?.dimensions &&
    a.index?.type === b.index?.type
  );
}

/** A search hit as /ask returns it (exported for the benchmark's floor, which answers the same JSON). */
export function toAskResult(hit: ChunkHit): AskResultDto {
  const documentId = hit.metadata.document_id;
  return {
    id: hit.id,
    // LangChain writers may store a numeric id; anything else is not a document reference.
    documentId:
      typeof documentId === 'string' ? documentId : typeof documentId === 'number' ? String(documentId) : null,
    content: hit.content,
    score: hit.score,
    metadata: hit.metadata,
    ...(hit.fusedScore !== undefined
      ? { fusedScore: hit.fusedScore, vectorRank: hit.vectorRank, textRank: hit.textRank }
      : {}),
  };
}
