import { BadRequestException, Inject, Injectable, NotFoundException, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { performance } from 'node:perf_hooks';
import type { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ReadReplicas } from '../database/read-replicas.service.js';
import { ChunkStore } from '../embeddings/chunk.store.js';
import { describeModelMismatch } from '../embeddings/collection-model.check.js';
import { EMBEDDING_PROVIDER, type EmbeddingProvider } from '../embeddings/providers/embedding-provider.js';
import { MetricsService } from '../observability/metrics.service.js';
import { ANSWER_GENERATOR, type AnswerGenerator } from './answer/answer-generator.js';
import { type ChunkHit, ChunkSearchRepository, hybridCandidates } from './chunk-search.repository.js';
import type { AskRequestDto, AskResponseDto, AskResultDto } from './dto/ask.dto.js';
import { compileLangChainFilter, InvalidFilterError } from './filter/langchain-filter.js';
import { VectorIndexService } from './vector-index.service.js';

export const DEFAULT_K = 5;
/** pgvector's upper bound for hnsw.ef_search. */
const MAX_EF_SEARCH = 1000;

@Injectable()
export class AskService {
  /** pgvector ≥ 0.8 has iterative index scans; asked once per process. */
  private iterativeScans?: Promise<boolean>;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(EMBEDDING_PROVIDER) private readonly provider: EmbeddingProvider,
    @Inject(ANSWER_GENERATOR) private readonly answers: AnswerGenerator | null,
    private readonly chunks: ChunkStore,
    private readonly search: ChunkSearchRepository,
    private readonly indexes: VectorIndexService,
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
    assertValidFilter(dto.filter);

    // Reads only: on a read replica when there are some (see ReadReplicas for the lag).
    if (collectionName.includes('\u0000')) throw new NotFoundException(`Collection not found`);
    const target = await this.replicas.run((manager) => this.search.findTarget(manager, collectionName));
    if (!target) throw new NotFoundException(`Collection "${collectionName}" not found`);

    let hits: ChunkHit[] = [];
    if (target.dimension !== null) {
      const embedding = dto.queryEmbedding ?? (await this.provider.embed([dto.question]))[0];
      if (embedding.length !== target.dimension) {
        throw new BadRequestException(
          dto.queryEmbedding
            ? `queryEmbedding has ${embedding.length} dimensions, but collection "${target.name}" holds ${target.dimension}-dimensional vectors`
            : (describeModelMismatch(target, this.provider) ??
                `Collection "${target.name}" holds ${target.dimension}-dimensional vectors, but the configured embedding model "${this.provider.model}" produces ${embedding.length}: configure EMBEDDINGS_PROVIDER/EMBEDDINGS_MODEL/EMBEDDINGS_DIMENSIONS to match the collection, or pass queryEmbedding`),
        );
      }
      const query = {
        collectionUuid: target.uuid,
        embedding,
        k,
        question: dto.question,
        filter: dto.filter,
        index: target.index,
      };
      const run = (manager: EntityManager) =>
        mode === 'hybrid' ? this.search.hybridSearch(manager, query) : this.search.vectorSearch(manager, query);
      const searchStarted = performance.now();
      if (!target.index) {
        // Exact distances: no index settings to scope, so no transaction (two round trips fewer).
        hits = await this.replicas.run(run);
      } else {
        const iterative = dto.filter !== undefined && (await this.supportsIterativeScans());
        hits = await this.replicas.transaction(async (manager) => {
          // SET LOCAL, not SET: the pool hands this connection to other requests afterwards.
          // hnsw.ef_search caps how many rows one index scan returns (default 40): below k, or
          // below the hybrid candidate count, a search would silently return fewer rows. With a
          // filter, pgvector 0.8's iterative scan keeps walking the graph until enough rows pass it.
          const wanted = mode === 'hybrid' ? hybridCandidates(k) : k;
          const efSearch = Math.min(Math.max(this.config.search.hnswEfSearch, wanted), MAX_EF_SEARCH);
          await manager.query(
            iterative
              ? `SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)`
              : `SELECT set_config('hnsw.ef_search', $1, true)`,
            [String(efSearch)],
          );
          return run(manager);
        });
      }
      this.metrics?.observeSearch(mode, (performance.now() - searchStarted) / 1000);
    }

    const results = hits.filter((h) => dto.minScore === undefined || h.score >= dto.minScore).map(toResult);
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

  private supportsIterativeScans(): Promise<boolean> {
    this.iterativeScans ??= this.dataSource
      .query<Array<{ v: string | null }>>(`SELECT extversion AS v FROM pg_extension WHERE extname = 'vector'`)
      .then(([row]) => {
        const [major, minor] = (row?.v ?? '0.0').split('.').map(Number);
        return major > 0 || minor >= 8;
      })
      .catch((error: unknown) => {
        // Not cached when the database was unreachable: the next request asks again.
        this.iterativeScans = undefined;
        throw error;
      });
    return this.iterativeScans;
  }
}

/** A malformed filter is the client's mistake: a 400 naming the part, before any query runs. */
function assertValidFilter(filter: Record<string, unknown> | undefined): void {
  try {
    compileLangChainFilter(filter, { column: 'e.cmetadata', firstParameterIndex: 1 });
  } catch (error) {
    if (error instanceof InvalidFilterError) throw new BadRequestException(error.message);
    throw error;
  }
}

function toResult(hit: ChunkHit): AskResultDto {
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
