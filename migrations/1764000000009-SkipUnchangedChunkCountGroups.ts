import type { MigrationInterface, QueryRunner } from 'typeorm';
import { chunkCountsSearchPath, trackFunctionSql } from './1764000000004-AddChunkCounts.js';

/**
 * Before: the chunk_counts trigger function (AddChunkCounts) kept in its upsert every group whose
 * new rows had a vector, also when the group's count did not change and its dimension was the one
 * already recorded: a LangChain upsert (`INSERT … ON CONFLICT (id) DO UPDATE`) rewriting chunks in
 * place locked their groups' rows, since ON CONFLICT DO UPDATE locks a row even when its WHERE is
 * false. Such a statement fires the UPDATE trigger and then the INSERT trigger, each locking its
 * groups in key order, but in two passes: two writers each rewriting a chunk of one document and
 * adding one to the other locked the two groups in opposite orders, and the server cancelled one
 * of them (deadlock detected), where on the Python schema they never waited for each other.
 *
 * Now a group whose count does not change is left out unless its vectors' dimension differs from
 * the one its row records (read without a lock: at worst a dimension written by two writers at
 * once is the other's). Only the function changes, in place (CREATE OR REPLACE): no table is
 * locked, and statements running meanwhile finish with the old one. Frozen history: no entity imports.
 */
export class SkipUnchangedChunkCountGroups1764000000009 implements MigrationInterface {
  name = 'SkipUnchangedChunkCountGroups1764000000009';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(trackFunctionSql(await chunkCountsSearchPath(q), { replace: true, skipUnchangedDimensions: true }));
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(trackFunctionSql(await chunkCountsSearchPath(q), { replace: true }));
  }
}
