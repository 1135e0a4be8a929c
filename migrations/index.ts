import { InitialSchema1764000000000 } from './1764000000000-InitialSchema.js';
import { AlignLegacySchema1764000000001 } from './1764000000001-AlignLegacySchema.js';
import { BuildChunkIndexesConcurrently1764000000002 } from './1764000000002-BuildChunkIndexesConcurrently.js';
import { AddChunkFullTextIndex1764000000003 } from './1764000000003-AddChunkFullTextIndex.js';
import { AddChunkCounts1764000000004 } from './1764000000004-AddChunkCounts.js';
import { AddMetadataTermsIndex1764000000005 } from './1764000000005-AddMetadataTermsIndex.js';
import { AddDocumentsCreatedAtIndex1764000000006 } from './1764000000006-AddDocumentsCreatedAtIndex.js';
import { KeepChunkVectorsInline1764000000007 } from './1764000000007-KeepChunkVectorsInline.js';
import { HashLongMetadataTerms1764000000008 } from './1764000000008-HashLongMetadataTerms.js';
import { SkipUnchangedChunkCountGroups1764000000009 } from './1764000000009-SkipUnchangedChunkCountGroups.js';
import { BoundChunkFullTextIndex1764000000010 } from './1764000000010-BoundChunkFullTextIndex.js';
import { AlignBaselineColumnTypes1764000000011 } from './1764000000011-AlignBaselineColumnTypes.js';

/**
 * Every migration, in order. Listed explicitly (not globbed) so the app, the CLI and the tests load
 * the same classes whether they run from TypeScript or from the compiled output.
 * `npm run migration:create` / `migration:generate` append new ones here.
 */
export const MIGRATIONS = [
  InitialSchema1764000000000,
  AlignLegacySchema1764000000001,
  BuildChunkIndexesConcurrently1764000000002,
  AddChunkFullTextIndex1764000000003,
  AddChunkCounts1764000000004,
  AddMetadataTermsIndex1764000000005,
  AddDocumentsCreatedAtIndex1764000000006,
  KeepChunkVectorsInline1764000000007,
  HashLongMetadataTerms1764000000008,
  SkipUnchangedChunkCountGroups1764000000009,
  BoundChunkFullTextIndex1764000000010,
  AlignBaselineColumnTypes1764000000011,
];

/** The migration that `db:stamp` records by default: the schema the Python service created. */
export const BASELINE_MIGRATION = 'InitialSchema1764000000000';
