// LangChain JS over the service's tables, configured as the performance issue prescribes: the
// chunk and collection tables by name, their columns, cosine distance, no initialisation check.
import { PGVectorStore } from '@langchain/community/vectorstores/pgvector';

/** The bench always passes precomputed vectors: embedding anything is a bug in the bench. */
const embeddingsStub = {
  embedQuery: () => Promise.reject(new Error('the bench passes vectors')),
  embedDocuments: () => Promise.reject(new Error('the bench passes vectors')),
};

export function langchainStore(pool, collectionName) {
  return new PGVectorStore(embeddingsStub, {
    pool,
    tableName: 'langchain_pg_embedding',
    collectionTableName: 'langchain_pg_collection',
    collectionName,
    columns: {
      idColumnName: 'id',
      vectorColumnName: 'embedding',
      contentColumnName: 'document',
      metadataColumnName: 'cmetadata',
    },
    distanceStrategy: 'cosine',
    skipInitializationCheck: true,
  });
}
