/**
 * Bounds on reading one file, and their defaults: the one copy the configuration
 * (INGEST_READ_TIMEOUT_MS, INGEST_READER_HEAP_MB) and text-extraction.ts share. A module of its own,
 * without imports, so the configuration does not load the parsers.
 */
export interface ExtractionLimits {
  /** How long an HTML, .docx or PDF file may take to read: a 422 beyond. */
  readTimeoutMs: number;
  /** The heap the reader of a .docx or PDF may use (its worker's old generation): a 413 beyond. */
  readerHeapMb: number;
}

export const EXTRACTION_LIMITS: Readonly<ExtractionLimits> = { readTimeoutMs: 30_000, readerHeapMb: 512 };
