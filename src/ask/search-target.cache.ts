import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import type { SearchTarget } from './chunk-search.repository.js';

/** More collections than this in use at once is unusual; past it the oldest entry goes. */
const MAX_ENTRIES = 1000;

/**
 * What /ask looked up about a collection (uuid, dimension, HNSW index), per name, for
 * SEARCH_TARGET_CACHE_TTL_MS: a search is a few milliseconds, and the lookup was one of its round
 * trips. This process's VectorIndexService invalidates the entry when it builds or drops an index;
 * other processes' changes (the CLI, another replica of the service, direct SQL) are seen after
 * the TTL, and AskService looks up again at once when a cached entry looks stale (a dimension
 * error, or no rows: the collection was deleted or recreated under a new uuid). A stale entry can
 * never yield another collection's rows: every search filters on the cached uuid, and uuids are
 * not reused.
 *
 * Only collections that hold vectors are kept: an empty one changes with its first chunk.
 */
@Injectable()
export class SearchTargetCache {
  private readonly ttlMs: number;
  private readonly entries = new Map<string, { target: SearchTarget; expiresAt: number }>();

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.ttlMs = config.search.targetCacheTtlMs;
  }

  get(name: string): SearchTarget | undefined {
    const entry = this.entries.get(name);
    if (!entry) return undefined;
    if (entry.expiresAt > Date.now()) return entry.target;
    this.entries.delete(name);
    return undefined;
  }

  /** Remembers a fresh lookup; null (no such collection) or a collection without vectors is forgotten. */
  set(name: string, target: SearchTarget | null): void {
    this.entries.delete(name);
    if (this.ttlMs === 0 || !target || target.dimension === null) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(name, { target, expiresAt: Date.now() + this.ttlMs });
  }

  invalidate(name: string): void {
    this.entries.delete(name);
  }
}
